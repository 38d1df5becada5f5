"""The reads of stored rows: scrapes, health, services, error records, raw payloads,
targets, extent; and the typing of the frames every read returns.

Each read is one statement over the scrape rows (the SQL beside its method) whose answer
becomes a DataFrame with `Timestamp(tz="UTC")` instants, nullable integers as `Int64`
and floats as float64. The interval reads (deltas) are in `intervals.py`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select, text

from .core import StoreCore
from .schema import raw_table, scrapes_table, targets_table

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
        ValueError.
        """
        names = list(_SCRAPE_SELECT) if columns is None else list(columns)
        unknown = [c for c in names if c not in _SCRAPE_SELECT]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"scrape columns: {', '.join(unknown) if unknown else names!r} "
                f"(each once, of: {', '.join(_SCRAPE_SELECT)})"
            )
        return self._scrape_read({c: _SCRAPE_SELECT[c] for c in names}, start, end, target)

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
    ) -> pd.DataFrame:
        """The columns `exprs` ({name: SQL expression over s, t}) of the scrapes of the
        window, oldest first, typed as `scrapes` types them."""
        sql = f"""
        SELECT {", ".join(f"{expr} AS {name}" for name, expr in exprs.items())}
        FROM __SCRAPES__ s JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid"""
        where = "WHERE t.name = :target" if target else ""
        df = self._frame(sql, start, end, target, ts_columns=("ts", "server_ts"), scrapes=where)
        if "ok" in df.columns:
            df["ok"] = df["ok"].astype(bool)
        if "deep" in df.columns:
            df["deep"] = df["deep"].astype("boolean")
        typed(df, _INT_COLUMNS, "Int64")
        typed(df, _FLOAT_COLUMNS, "float64")
        return df

    def services(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, service, status, message, response_time_ms, target."""
        sql = f"""
        SELECT s.ts, v.service, v.status, v.message, v.response_time_ms, t.name AS target
        FROM __SERVICES__ v
        JOIN lsops_scrapes s ON s.sid = v.scrape_sid
        JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid, v.service"""
        where = "WHERE t.name = :target" if target else ""
        df = self._frame(sql, start, end, target, services=where)
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
        """The body of `part` ("health" | "metrics") of a scrape as received, or None."""
        query = (
            select(raw_table.c.body)
            .select_from(
                raw_table.join(scrapes_table, scrapes_table.c.sid == raw_table.c.scrape_sid)
            )
            .where(scrapes_table.c.scrape_id == scrape_id, raw_table.c.part == part)
        )
        with self._read() as conn:
            body = conn.execute(query).scalar()
        return None if body is None else zlib.decompress(body)


# --- typing the frames ----------------------------------------------------------------


def typed(df: pd.DataFrame, columns: Iterable[str], dtype: str) -> None:
    """Nullable integers stay integers (Int64), floats are float64 with NaN for NULL."""
    for col in columns:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].astype(object).where(df[col].notna(), None)).astype(
                dtype
            )


def empty(columns: list[str]) -> pd.DataFrame:
    """A frame with these columns and no row (ts as UTC instants, endpoint as object)."""
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    if "ts" in df.columns:
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    if "endpoint" in df.columns:
        df["endpoint"] = df["endpoint"].astype(object)
    return df
