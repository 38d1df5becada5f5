"""The reads of stored rows: scrapes, health, services, error records, raw payloads,
targets, extent; and the typing of the frames every read returns.

Each read is one statement over the scrape rows (the SQL beside its method) whose answer
becomes a DataFrame with `Timestamp(tz="UTC")` instants, nullable integers as `Int64`
and floats as float64. The interval reads (deltas) are in `intervals.py`.
"""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text

from ..exceptions import ParameterValueError, StoreError
from ..times import shown
from . import pack_scrapes
from .core import StoreCore, targets_in, typed_texts
from .schema import raw_table, scrape_details_table, targets_table
from .series import bucket_sql

SCRAPE_COLUMNS = [
    "ts",
    "target",
    "ok",
    "failure_kind",
    "failure_message",
    "http_status",
    "health_status",
    "uptime_start_ms",
    "last_reset_ms",
    "requests_total",
    "cache_hits",
    "cache_misses",
    "rss",
    "heap_used",
    "heap_total",
    "rt_count",
    "rt_avg",
    "rt_min",
    "rt_p50",
    "rt_p95",
    "rt_p99",
    "rt_max",
    "errors_recent",
    "server_ts",
    "duration_ms",
    "scrape_id",
]


# The SQL expression of each `Store.scrapes` column (over lsops_scrapes s and
# lsops_targets t), in its order: SCRAPE_COLUMNS, then the per-part details.
_SCRAPE_DETAILS = [
    "health_failure", "metrics_failure", "health_http_status", "metrics_http_status",
    "uptime_s", "pid", "external", "checks_passed", "checks_total", "deep",
    "status_2xx", "status_4xx", "status_5xx", "errors_kept", "uptime_duration_ms",
]  # fmt: skip
_SCRAPE_COMPUTED = {
    "target": "t.name",
    "server_ts": "s.ts + s.server_dt",
    "failure_kind": "COALESCE(s.health_failure, s.metrics_failure)",
    "http_status": (
        "CASE WHEN s.health_failure IS NOT NULL THEN s.health_http_status"
        " WHEN s.metrics_failure IS NOT NULL THEN s.metrics_http_status"
        " ELSE s.health_http_status END"
    ),
}
_SCRAPE_SELECT: dict[str, str] = {
    c: _SCRAPE_COMPUTED.get(c, f"s.{c}") for c in [*SCRAPE_COLUMNS, *_SCRAPE_DETAILS]
}

# The columns of `Store.health`, read from the same scrape rows.
_HEALTH_SELECT: dict[str, str] = {
    "ts": "s.ts",
    "status": "COALESCE(s.health_status, 'NO_ANSWER')",
    "http_status": "s.health_http_status",
    "target": "t.name",
    "failure_kind": "s.health_failure",
}
HEALTH_COLUMNS = list(_HEALTH_SELECT)

# The scrape fields behind the review's figures (memory, latency time slices, percentile
# sanity): `Store.scrape_figures`.
FIGURE_COLUMNS = [
    "uptime_start_ms", "rss", "heap_used", "heap_total", "rt_count",
    "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max",
]  # fmt: skip

_INT_COLUMNS = [
    "http_status", "uptime_start_ms", "last_reset_ms", "requests_total", "cache_hits", "cache_misses",
    "rss", "heap_used", "heap_total", "rt_count", "errors_recent", "health_http_status",
    "metrics_http_status", "pid", "external", "checks_passed", "checks_total", "status_2xx",
    "status_4xx", "status_5xx", "errors_kept", "uptime_duration_ms",
]  # fmt: skip
_FLOAT_COLUMNS = [
    "rt_avg",
    "rt_min",
    "rt_p50",
    "rt_p95",
    "rt_p99",
    "rt_max",
    "duration_ms",
    "uptime_s",
]


class ScrapeReads(StoreCore):
    """The row reads of `Store` (see the module docstring)."""

    def targets(self) -> list[str]:
        with self._read() as conn:
            return list(
                conn.execute(select(targets_table.c.name).order_by(targets_table.c.name)).scalars()
            )

    def extent(self, target: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """(first ts, last ts) of the stored scrapes, or None when there are none."""
        sql = "SELECT MIN(s.ts), MAX(s.ts) FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id"
        params: dict[str, Any] = {}
        if target is not None:
            sql += " WHERE t.name = :target"
            params["target"] = target
        with self._read() as conn:
            lo, hi = conn.execute(text(sql), params).one()
        if lo is None:
            return None
        return pd.Timestamp(int(lo), unit="ms", tz="UTC"), pd.Timestamp(
            int(hi), unit="ms", tz="UTC"
        )

    def scrapes(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        target: str | None = None,
        columns: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """One row per scrape, oldest first (columns SCRAPE_COLUMNS, plus per-part details).

        failure_kind is the first failure's kind (health before metrics), http_status the
        status of that failure, else of the health answer.

        `columns` narrows the read to those columns, in that order (the same rows, values
        and types as the whole read's columns of those names); an unknown name is a
        ParameterError (a ValueError too, as before).
        """
        names = list(_SCRAPE_SELECT) if columns is None else _names(columns)
        unknown = [c for c in names if c not in _SCRAPE_SELECT]
        if unknown or not names or len(set(names)) != len(names):
            raise ParameterValueError(
                f"columns: {shown(', '.join(map(str, unknown)) if unknown else names)} "
                f"(each once, of: {', '.join(_SCRAPE_SELECT)})"
            )
        return self._scrape_read({c: _SCRAPE_SELECT[c] for c in names}, start, end, target)

    def answered_hours(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts: each UTC hour of the window with at least one scrape that got an answer (ok),
        oldest first: the hours of `counter_intervals(bucket="hour")` whose scrapes outnumber
        their failures, from the scrape rows alone (no counter series)."""
        tw = "AND t.name = :target" if target else ""
        hour = bucket_sql("hour", "s.ts")
        sql = f"""
        SELECT DISTINCT {hour} AS ts
        FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {tw} AND s.ok
        ORDER BY ts"""
        return self._frame(sql, start, end, target)

    def health(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, status (OK | DEGRADED | ERROR | NO_ANSWER), http_status, target, failure_kind."""
        return self._scrape_read(_HEALTH_SELECT, start, end, target)

    def scrape_figures(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        target: str | None = None,
        *,
        with_health: bool = False,
    ) -> pd.DataFrame:
        """`scrapes(columns=["ts", "target", *FIGURE_COLUMNS])`, the scrape fields behind
        the review's figures (a month of one-minute scrapes is 43,200 rows: the whole rows
        cost most of the read). `with_health`: the same statement also reads the columns
        of `health` (HEALTH_COLUMNS, its very expressions and types), before the figure
        columns, so that one pass over the scrape rows answers both reads."""
        figures = {c: _SCRAPE_SELECT[c] for c in FIGURE_COLUMNS}
        if with_health:
            return self._scrape_read({**_HEALTH_SELECT, **figures}, start, end, target)
        return self.scrapes(start, end, target, columns=["ts", "target", *FIGURE_COLUMNS])

    def _scrape_read(
        self,
        exprs: Mapping[str, str],
        start: datetime | None,
        end: datetime | None,
        target: str | None,
        *,
        targets: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The columns `exprs` ({name: SQL expression over s, t}) of the scrapes of the
        window, oldest first, typed as `scrapes` types them. `targets` (instead of
        `target`): the scrapes of those targets (not empty), in one read.

        An expression over the details columns (`pack_scrapes.WIDE`) reads them through
        a LEFT JOIN of lsops_scrape_details; in a store that packs, it is computed here
        (`_PY_EXPRS`) from those columns completed by the blocks of packed scrapes (whose
        details rows are gone: `pack_scrapes.fill`); a read naming none of them reads
        the thin rows alone."""
        cond = "t.name = :target" if target else ""
        params = self._params(start, end, target)
        if targets is not None:  # the IN list of `targets` (alerts/burnrate.py: one read)
            cond, names = targets_in(targets)
            params.update(names)
        where = f"WHERE {cond}" if cond else ""
        wide = {n: _wide_of(e) for n, e in exprs.items()}
        needed = sorted({c for cs in wide.values() for c in cs}, key=pack_scrapes.WIDE.index)
        packs = bool(needed and self._ids.period)
        if packs:  # the thin rows alone; the details rows (few: unpacked periods) apart
            select_ = [f"{e} AS {n}" for n, e in exprs.items() if not wide[n]]
            select_ += ["s.sid AS w__sid"]
        else:
            select_ = [f"{_on_details(e)} AS {n}" for n, e in exprs.items()]
        details = (
            "LEFT JOIN lsops_scrape_details d ON d.sid = s.sid" if needed and not packs else ""
        )
        window = f"s.ts >= :start AND s.ts < :end {'AND ' + cond if cond else ''}"
        sql = f"""
        SELECT {", ".join(select_)}
        FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id {details}
        WHERE {window}
        ORDER BY s.ts, s.sid"""
        with self._read() as conn:
            conn = self._snapshot(conn)
            result = conn.execute(text(sql), params)
            names = list(result.keys())
            rows = result.cursor.fetchall() if result.cursor is not None else []
            result.close()
            if packs:
                got = dict(zip(names, _columns(rows, len(names)), strict=True))
                sids = np.asarray(got["w__sid"], np.int64) if rows else np.zeros(0, np.int64)
                raw = _details_columns(conn, window, params, sids, needed)
                pack_scrapes.fill(conn, where, params, self._ids.period, sids, raw)
                for n, e in exprs.items():
                    if wide[n]:
                        got[n] = _py_expr(e, raw)
                # object columns of the driver's values: typed below as from_records's are
                df = pd.DataFrame({n: got[n] for n in exprs})
            else:
                df = pd.DataFrame.from_records(rows, columns=names)
        for col in ("ts", "server_ts"):
            if col in df.columns:
                df[col] = pd.to_datetime(pd.to_numeric(df[col]), unit="ms", utc=True)
        if "ok" in df.columns:
            df["ok"] = df["ok"].astype(bool)
        if "deep" in df.columns:
            df["deep"] = df["deep"].astype("boolean")
        typed_texts(df)
        typed(df, _INT_COLUMNS, "Int64")
        typed(df, _FLOAT_COLUMNS, "float64")
        return df

    def services(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, service, status, message, response_time_ms, target.

        In a store that packs, the rows and the window's decoded service blocks are
        joined to their scrapes and ordered here (by ts, sid, then service in the
        database's own order of the names), not through a temporary table."""
        tw = "AND t.name = :target" if target else ""
        where = "WHERE t.name = :target" if target else ""
        if not self._ids.period:
            sql = f"""
            SELECT s.ts, v.service, v.status, v.message, v.response_time_ms, t.name AS target
            FROM lsops_services v
            JOIN lsops_scrapes s ON s.sid = v.scrape_sid
            JOIN lsops_targets t ON t.id = s.target_id
            WHERE s.ts >= :start AND s.ts < :end {tw}
            ORDER BY s.ts, s.sid, v.service"""
            df = self._frame(sql, start, end, target)
            typed(df, ["response_time_ms"], "float64")
            return df
        rows_sql = f"""
        SELECT s.ts, v.service, v.status, v.message, v.response_time_ms, t.name, s.sid
        FROM lsops_services v
        JOIN lsops_scrapes s ON s.sid = v.scrape_sid
        JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {tw}"""
        scrapes_sql = f"""SELECT s.sid, s.ts, t.name FROM lsops_scrapes s
        JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {tw}"""
        params = self._params(start, end, target)
        with self._read() as conn:
            conn = self._snapshot(conn)
            cols = _columns(_fetch(conn, rows_sql, params), 7)
            packed = pack_scrapes.service_columns(conn, where, params, self._ids.period)
            if packed:
                sid, ts, name = _columns(_fetch(conn, scrapes_sql, params), 3)
                cols = _with_packed(cols, packed, sid, ts, name)
            ranks = _name_ranks(conn, cols[1])
        if len(cols[0]):
            order = np.lexsort(
                (ranks, cols[6].astype(np.int64), cols[0].astype(np.int64))
            )  # last key first: ts, sid, service
            cols = [c[order] for c in cols]
        names = ["ts", "service", "status", "message", "response_time_ms", "target"]
        df = pd.DataFrame.from_records(list(zip(*cols[:6], strict=True)), columns=names)
        df["ts"] = pd.to_datetime(pd.to_numeric(df["ts"]), unit="ms", utc=True)
        typed_texts(df)
        typed(df, ["response_time_ms"], "float64")
        return df

    def error_records(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """Distinct error records by their own timestamp: ts, endpoint, method, status_code,
        error, target, first_seen (ts of the scrape that first saw the record)."""
        sql = f"""
        SELECT e.ts, e.endpoint, e.method, e.status_code, e.error, t.name AS target, e.first_seen
        FROM lsops_errors e JOIN lsops_targets t ON t.id = e.target_id
        WHERE e.ts >= :start AND e.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY e.ts, e.id"""
        df = self._frame(sql, start, end, target, ts_columns=("ts", "first_seen"))
        typed(df, ["status_code"], "Int64")
        return df

    def raw_payload(self, scrape_id: str, part: str) -> bytes | None:
        """The body of `part` ("health" | "metrics") of a scrape as received, whether its
        period is packed or not; None when the store has no such scrape (ids are compared
        as the text they are: an upper-case UUID is another id) or no such part of it (a
        part never stored, an unknown name). A scrape id or part that is no text (a
        number, None, a uuid.UUID) is a ParameterError (a ValueError too)."""
        for name, value in (("scrape_id", scrape_id), ("part", part)):
            if not isinstance(value, str):
                raise ParameterValueError(
                    f"{name}: {shown(value)} is a {type(value).__name__}, not text"
                    f"{' (str(...) of it)' if isinstance(value, uuid.UUID) else ''}"
                )
        find = select(scrape_details_table.c.sid).where(
            scrape_details_table.c.scrape_id == scrape_id
        )
        with self._read() as conn:
            conn = self._snapshot(conn)
            sid = conn.execute(find).scalar()
            packed = None
            if sid is None:  # packed with its period (or unknown)
                packed = pack_scrapes.find_raw(conn, scrape_id, self._ids.period)
                if packed is None:
                    return None
                sid = packed[0]
            body = conn.execute(
                select(raw_table.c.body).where(
                    raw_table.c.scrape_sid == sid, raw_table.c.part == part
                )
            ).scalar()
            if body is None and packed is not None:  # in its period's payload block
                return pack_scrapes.packed_payload(conn, *packed, part)
        if body is None:
            return None
        try:
            return zlib.decompress(body)
        except zlib.error as exc:
            raise StoreError(
                f"cannot read store {self.url}: the raw payload {part} of scrape {scrape_id}"
                f" is damaged ({exc})"
            ) from None


# --- the expressions over wide columns, computed in Python ------------------------------


def _wide_of(expr: str) -> list[str]:
    """The details columns (`pack_scrapes.WIDE`) the SQL expression `expr` reads."""
    return [c for c in re.findall(r"\bs\.(\w+)", expr) if c in pack_scrapes.WIDE]


def _on_details(expr: str) -> str:
    """`expr` (over `s`, the scrape as one row) over lsops_scrapes s and its details d."""
    return re.sub(r"\bs\.(\w+)", lambda m: f"d.{m[1]}" if m[1] in pack_scrapes.WIDE else m[0], expr)


def _isnull(x: np.ndarray) -> np.ndarray:
    return pd.isna(x)  # type: ignore[no-any-return]


def _coalesce(a: np.ndarray, b: Any) -> np.ndarray:
    out = a.copy()
    null = _isnull(a)
    out[null] = b[null] if isinstance(b, np.ndarray) else b
    return out


def _http_status(c: Mapping[str, np.ndarray]) -> np.ndarray:
    out = c["health_http_status"].copy()
    metrics = _isnull(c["health_failure"]) & ~_isnull(c["metrics_failure"])
    out[metrics] = c["metrics_http_status"][metrics]
    return out


# Each SQL expression of a read over wide columns (beside plain `s.column`), as Python
# over the columns' object arrays: the same values the SQL gives.
_PY_EXPRS: dict[str, Any] = {
    _SCRAPE_COMPUTED["failure_kind"]: lambda c: _coalesce(
        c["health_failure"], c["metrics_failure"]
    ),
    _SCRAPE_COMPUTED["http_status"]: _http_status,
    _HEALTH_SELECT["status"]: lambda c: _coalesce(c["health_status"], "NO_ANSWER"),
}


def _py_expr(expr: str, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    match = re.fullmatch(r"s\.(\w+)", expr)
    if match:
        return columns[match.group(1)]
    return _PY_EXPRS[expr](columns)  # type: ignore[no-any-return]


def _fetch(conn: Any, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql` as the driver's plain tuples (no Row object per row)."""
    result = conn.execute(text(sql), params)
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return rows  # type: ignore[no-any-return]


def _details_columns(
    conn: Any, window: str, params: Mapping[str, Any], sids: np.ndarray, names: list[str]
) -> dict[str, np.ndarray]:
    """The details columns `names` (`pack_scrapes.WIDE`) of the scrape rows `sids`, as the
    LEFT JOIN of lsops_scrape_details gives them (object arrays, None where a scrape has
    no details row or the column is NULL), from a read of the details rows of the scrapes
    of `window` (a condition over s, t) alone: in a store that packs, only the scrapes of
    periods not packed yet have such a row, and the thin scrape rows are read without
    joining them one by one. A details row of a scrape not among `sids` (written after
    their read) is left out."""
    out = {c: np.full(len(sids), None, object) for c in names}
    if not len(sids):
        return out
    sql = f"""
    SELECT d.sid, {", ".join(f"d.{c}" for c in names)}
    FROM lsops_scrape_details d JOIN lsops_scrapes s ON s.sid = d.sid
    JOIN lsops_targets t ON t.id = s.target_id
    WHERE {window}"""
    rows = _fetch(conn, sql, params)
    if not rows:
        return out
    cols = _columns(rows, len(names) + 1)
    dsids = cols[0].astype(np.int64)
    order = np.argsort(sids, kind="stable")
    ordered = sids[order]
    pos = np.minimum(np.searchsorted(ordered, dsids), len(sids) - 1)
    hit = ordered[pos] == dsids
    at = order[pos[hit]]
    for c, col in zip(names, cols[1:], strict=True):
        out[c][at] = col[hit]
    return out


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[np.ndarray]:
    """The columns of `rows` as object arrays (the driver's values, None for NULL)."""
    if not rows:
        return [np.empty(0, object) for _ in range(width)]
    table = np.empty((len(rows), width), object)
    table[:] = rows
    return list(table.T)


def _with_packed(
    cols: list[np.ndarray],
    packed: list[np.ndarray],
    sid: np.ndarray,
    ts: np.ndarray,
    name: np.ndarray,
) -> list[np.ndarray]:
    """The services rows `cols` (ts, service, status, message, response_time_ms, target,
    sid) and the packed rows (scrape_sid, service, status, message, response_time_ms) of
    the window's scrapes (`sid`, `ts`, `name`); a scrape whose services are rows already
    (packed meanwhile) is not taken twice."""
    bsid = np.asarray(packed[0], np.int64)
    sids = sid.astype(np.int64)
    order = np.argsort(sids, kind="stable")
    sorted_sids = sids[order]
    if not len(sorted_sids):
        return cols
    pos = np.minimum(np.searchsorted(sorted_sids, bsid), len(sorted_sids) - 1)
    keep = (sorted_sids[pos] == bsid) & ~np.isin(bsid, cols[6].astype(np.int64))
    at = order[pos[keep]]

    extra = [ts[at], *(p[keep] for p in packed[1:]), name[at]]
    extra.append(bsid[keep].astype(object))
    return [np.concatenate([a, b]) for a, b in zip(cols, extra, strict=True)]


def _name_ranks(conn: Any, names: np.ndarray) -> np.ndarray:
    """Each name's rank in the database's order of text (SQLite: BINARY, the code points;
    PostgreSQL: the database's collation), as ORDER BY would sort them."""
    distinct = sorted(set(names.tolist()))
    if conn.dialect.name == "postgresql" and len(distinct) > 1:
        distinct = list(
            conn.execute(
                text("SELECT n FROM unnest(CAST(:names AS text[])) AS n ORDER BY n"),
                {"names": distinct},
            ).scalars()
        )
    rank = {n: i for i, n in enumerate(distinct)}
    return np.fromiter((rank[n] for n in names.tolist()), np.int64, len(names))


# --- typing the frames ----------------------------------------------------------------


def typed(df: pd.DataFrame, columns: Iterable[str], dtype: str) -> None:
    """Nullable integers stay integers (Int64), floats are float64 with NaN for NULL."""
    for col in columns:
        if col not in df.columns:
            continue
        values = df[col]
        try:  # numbers, or Python values with None for NULL: converted as they are
            df[col] = pd.to_numeric(values).astype(dtype)
        except (TypeError, ValueError):  # another missing value (NaT...): made None first
            df[col] = pd.to_numeric(values.astype(object).where(values.notna(), None)).astype(dtype)


def empty(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame with these columns (name -> dtype) and no row: the types a read of some rows
    gives them, so that `df["ts"].dt` and integer sums work on an empty answer too."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})


def _names(columns: Iterable[str]) -> list[str]:
    """`columns` as a list (a single name given as a string is that one name)."""
    return [columns] if isinstance(columns, str) else list(columns)
