"""The interval reads: deltas of the cumulative counters, per time bucket, in SQL.

`endpoint_intervals` (per endpoint; hour and day buckets from the hourly rollup plus the
samples of the partial hours at the window's edges), `counter_intervals` (requests.total
and the cache counters, scrapes and failures) and `resets` (the series starts). Every
statement is built from the delta rule's fragments in `series.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError

from ..times import TS
from . import pack
from .core import StoreCore, targets_in
from .reads import empty, typed
from .rollup import is_stale, rollup_state
from .series import (
    BUCKETS,
    HOUR_MS,
    NEW_SERIES,
    bucket_sql,
    delta_columns,
    series_sql,
    window_ms,
)

# the columns of each read and their types (the types of a read of some rows: an empty
# answer has them too)
ENDPOINT_DTYPES = {
    "ts": TS,
    "endpoint": "str",
    "requests": "int64",
    "errors": "int64",
    "time_sum_ms": "float64",
    "mean_ms": "float64",
    "error_rate": "float64",
    "resets": "int64",
}
ENDPOINT_COLUMNS = list(ENDPOINT_DTYPES)

COUNTER_DTYPES = {
    "ts": TS,
    "requests": "int64",
    "cache_hits": "int64",
    "cache_misses": "int64",
    "cache_hit_ratio": "float64",
    "resets": "int64",
    "scrapes": "int64",
    "failures": "int64",
}
COUNTER_COLUMNS = list(COUNTER_DTYPES)

# The raw reads (minute and scrape buckets) read their window a chunk at a time: a week
# (seven of the store's default periods, a day each), rounded up to a multiple of the
# bucket. One statement over a year of samples (5 M rows of one target, a 0.32 GB frame)
# held them all at once, decoded, materialized and sorted: 2.2 GB; week by week, 0.7 GB,
# its time in proportion to the rows (~10 us a row on SQLite). (Tests set a few minutes.)
RAW_CHUNK_MS = 7 * 86_400_000

# the first and last scrape with metrics of the targets read in [:start, :end)
_EXTENT_SQL = """SELECT MIN(s.ts), MAX(s.ts) FROM lsops_scrapes s
    WHERE s.target_id IN (SELECT t.id FROM lsops_targets t {})
      AND s.ts >= :start AND s.ts < :end AND s.requests_total IS NOT NULL"""


def _cuts(first: int, last: int, size: int) -> range:
    """Where a raw read of the scrapes from `first` to `last` (epoch ms) is cut: the
    multiples of RAW_CHUNK_MS rounded up to a multiple of the bucket's `size`, in
    (first, last], above 0 (SQL's integer division truncates toward 0: the bucket 0
    holds the instants on both sides of it)."""
    step = -(-RAW_CHUNK_MS // size) * size
    return range(max(first // step + 1, 1) * step, last + 1, step)


class IntervalReads(StoreCore):
    """The interval reads of `Store` (see the module docstring)."""

    def _stale(self) -> bool:
        """True while scrapes written by a writer that keeps no links (and no rollup) wait
        for the next open to be linked: reads then compute the links themselves."""
        with self._read() as conn:
            return is_stale(rollup_state(conn))

    def endpoint_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        """Per time bucket and endpoint: ts (bucket start), endpoint, requests, errors,
        time_sum_ms, mean_ms, error_rate, resets. Computed in SQL from the cumulative
        per-endpoint counters; summed over targets when `target` is None.

        The delta rule, scrape by scrape within one target:
        - The scrapes WITH METRICS of a target form one series, ordered by what the API
          answered, not by who collected them or when: by uptime.start, lastReset, the
          server's own `timestamp`, then requests.total (`series.py`). So any number of
          collectors, with skewed clocks, writing in any order, give the same series; an
          answer identical to one stored adds nothing. The predecessor of a scrape is the
          one before it in that series, wherever its ts lies, so that
          [a, b) + [b, c) = [a, c).
        - A new uptime.start (restart), a new uptime.lastReset (reset) or requests.total
          going down (counter_drop: with neither changing, lower than the reading before
          it by the server's clock) starts a new series: the delta of every endpoint is
          its new value itself (a lower bound), never a difference. So does an endpoint's
          own count going down.
        - An endpoint absent from the predecessor (first request after it) contributes its
          whole count.
        - The first scrape of a target's series has no predecessor: its values are a
          BASELINE and contribute nothing (what happened before we watched is unknown),
          unless its uptime.start or lastReset lies after the latest failed scrape before
          it (collector ts): the counters then started while we watched, and count whole.
        - Failed scrapes have no samples; the delta after a gap spans the gap and lands in
          the bucket (collector ts) of the scrape that closes it.
        Latency: mean_ms = delta(avgTime x count) / delta(count); errors = delta(round(
        errorRate x count)); never an average of averages. `resets` counts the series starts
        seen in the bucket. Monitoring endpoints (/health, /metrics...) are left out unless
        include_monitoring.

        The hour and day buckets are read from the hourly rollup (`lsops_rollup`, written
        by `record_scrape`) for the whole hours of [start, end), and from the samples for
        the partial hours at its edges; "minute" and "scrape" read the samples. Both give
        the same figures (the rollup holds, per target, hour and endpoint, the sums of the
        very deltas computed here, filed by the hour of the scrape that closes them).
        A "minute" (or "scrape") read of a long window visits every sample, a week at a
        time: its time grows with its rows (a year of one target, 50 endpoints scraped
        every 5 minutes: 5 M rows, ~50 s of CPU on SQLite) and its memory stays within
        about twice the frame it answers (64 bytes a row); an hourly or daily read of a
        year takes ~1 s.
        """
        bucket_sql(bucket)  # an unknown bucket: ParameterError before any read
        lo, hi = window_ms(start, end)  # a value that is no instant: ParameterError
        if bucket not in ("hour", "day"):
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        if self._stale():  # scrapes written by a writer keeping no links, since this open
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        # whole hours [a, b) from the rollup; hour rows start at 1970-01-01T01:00 at the
        # earliest (the SQL's integer division truncates toward zero: the "hour" 0 would
        # also hold the last hour before the epoch)
        a = max(-(-lo // HOUR_MS) * HOUR_MS, HOUR_MS)
        b = (hi // HOUR_MS) * HOUR_MS
        if b <= a:
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        target_where = "WHERE t.name = :target" if target else ""
        monitoring = "" if include_monitoring else "WHERE NOT e.monitoring"
        endpoint_filter = f"endpoint_id IN (SELECT e.id FROM lsops_endpoints e {monitoring})"
        ctes: list[str] = []
        parts: list[str] = []
        for p, (e_lo, e_hi) in (("l_", (":start", ":a")), ("r_", (":b", ":end"))):
            if (p == "l_" and lo >= a) or (p == "r_" and hi <= b):
                continue  # no partial hour at this edge
            ctes.append(series_sql(target_where, p=p, start=e_lo, end=e_hi))
            ctes.append(
                f"""{p}ed AS (
          SELECT {bucket_sql(bucket, f"{p}mk.ts")} AS bts, x.endpoint_id,
                 {delta_columns(f"{p}mk.kind")}
          FROM {p}mk
          JOIN __SAMPLES__ x ON x.scrape_sid = {p}mk.sid
          LEFT JOIN __SAMPLES__ px ON px.scrape_sid = {p}mk.p_sid
                                    AND px.endpoint_id = x.endpoint_id
          WHERE {p}mk.kind <> 'base' AND x.{endpoint_filter}
        )"""
            )
            parts.append(f"SELECT bts, endpoint_id, d_n, d_e, d_t, is_reset FROM {p}ed")
        # the rollup's rows as they are stored (no GROUP BY, no ORDER BY: summed over
        # targets and ordered below, in numpy); the partial hours grouped in SQL
        rollup_from = f"""
        FROM lsops_rollup r
        WHERE r.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
          AND r.hour_ts >= :a AND r.hour_ts < :b AND r.{endpoint_filter}"""
        union = "\n          UNION ALL\n          ".join(parts)
        edges_sql = f"""
        WITH {",".join(ctes)},
        u AS (
          {union}
        )
        SELECT bts, endpoint_id, SUM(d_n), SUM(d_e), SUM(d_t), SUM(is_reset)
        FROM u GROUP BY bts, endpoint_id"""
        params = self._params(start, end, target, {"a": a, "b": b})
        with self._read() as conn:
            conn = self._snapshot(conn)  # one snapshot for the statements below
            # the endpoints in the database's own order of their paths (its collation:
            # the order the SQL's ORDER BY e.path gave)
            endpoints = conn.execute(
                text("SELECT id, path FROM lsops_endpoints ORDER BY path")
            ).all()
            rows = _rollup_rows(conn, rollup_from, params)
            if bucket == "day":  # hour_ts > 0: floor division = the SQL's integer division
                rows["ts"] = (rows["ts"] // BUCKETS["day"]) * BUCKETS["day"]
            if ctes:
                windows = [w for w in ((lo, a), (b, hi)) if w[0] < w[1]]
                source = pack.samples_source(conn, windows, target_where, params, stale=False)
                result = conn.execute(text(edges_sql.replace("__SAMPLES__", source)), params)
                edges = [
                    (int(t), int(e), round(float(n)), round(float(er)), float(d), round(float(r)))
                    for t, e, n, er, d, r in result
                ]
                rows = np.concatenate([np.array(edges, dtype=_ROW_DTYPE), rows])
        return _grouped_frame(rows, endpoints, BUCKETS[bucket] or 1)

    def _endpoint_intervals_raw(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
        targets: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """`endpoint_intervals` computed from the samples alone, whatever the bucket (the
        rule's one statement; compared with the rollup in the tests). `targets` (instead
        of `target`, not empty): those targets, NOT summed: per target (a `target` column
        first), each target's rows those of its own read."""
        monitoring = "" if include_monitoring else "WHERE NOT e.monitoring"
        # Each sample is paired with the same endpoint's sample in the predecessor scrape
        # (mk.p_sid) by a primary-key lookup: no window sort over every sample (2.16 M rows
        # for a month of one-minute scrapes of 50 endpoints; see docs/benchmarks.md). An
        # endpoint absent from the predecessor has no pair (px.count IS NULL): it counts
        # whole, as does a new series or the endpoint's own count going down.
        stale = self._stale()
        target_where = "WHERE t.name = :target" if target else ""
        extra: dict[str, str] = {}
        if targets is not None:  # the IN list of `targets` (alerts/burnrate.py: one read)
            cond, extra = targets_in(targets)
            target_where = f"WHERE {cond}"
        by = "tg, " if targets is not None else ""
        series = series_sql(target_where, stored=not stale)
        deltas = f"""
        WITH {series},
        ed AS (
          SELECT {"mk.target AS tg, " if by else ""}{bucket_sql(bucket, "mk.ts")} AS bts, x.endpoint_id,
                 {delta_columns("mk.kind")}
          FROM mk
          JOIN __SAMPLES__ x ON x.scrape_sid = mk.sid
          LEFT JOIN __SAMPLES__ px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.kind <> 'base'
            AND x.endpoint_id IN (SELECT e.id FROM lsops_endpoints e {monitoring})
        )"""
        if targets is None:
            return self._raw_chunks(deltas, start, end, target, bucket, target_where, stale)
        sql = f"""{deltas},
        g AS (
          SELECT {by}bts, endpoint_id, SUM(d_n) AS requests, SUM(d_e) AS errors,
                 SUM(d_t) AS time_sum_ms, SUM(is_reset) AS resets
          FROM ed GROUP BY {by}bts, endpoint_id
        )
        SELECT {"g.tg AS target, " if by else ""}g.bts AS ts, e.path AS endpoint, g.requests,
               g.errors, g.time_sum_ms, g.resets
        FROM g JOIN lsops_endpoints e ON e.id = g.endpoint_id
        ORDER BY {"g.tg, " if by else ""}g.bts, e.path"""
        window = [window_ms(start, end)]
        df = self._frame(
            sql, start, end, target, extra=extra, samples=(window, target_where, stale)
        )
        names = df["target"].astype(str) if not df.empty else pd.Series(dtype=str)
        out = _endpoint_frame(df.drop(columns="target"))
        out.insert(0, "target", names.to_numpy())
        return out

    def _raw_chunks(
        self,
        deltas: str,
        start: datetime | None,
        end: datetime | None,
        target: str | None,
        bucket: str,
        target_where: str,
        stale: bool,
    ) -> pd.DataFrame:
        """The raw read summed over targets: the statement `deltas` (its CTE `ed`: the
        deltas of each sample) grouped per bucket and endpoint, over [start, end) cut into
        chunks of RAW_CHUNK_MS (`_cuts`), each chunk's samples (`pack.samples_source`) and
        rows read on their own, in one snapshot, and summed and ordered as arrays
        (`_grouped_columns`: its buckets come after those of the chunk before), joined
        at the end. A bucket lies in one chunk (the cuts are multiples of its size,
        above 0), a scrape's deltas are the same whichever chunk reads it (its
        predecessor found by its link, its samples wherever they are): the chunks' rows
        are the whole window's. Links computed on the fly (`stale`: a window function
        over the whole history, each statement) read the window in one piece."""
        size = BUCKETS[bucket] or 1
        sql = f"""{deltas}
        SELECT bts, endpoint_id, CAST(SUM(d_n) AS BIGINT), CAST(ROUND(SUM(d_e)) AS BIGINT),
               SUM(d_t), CAST(SUM(is_reset) AS BIGINT)
        FROM ed GROUP BY bts, endpoint_id"""
        params = self._params(start, end, target)
        lo, hi = params["start"], params["end"]
        with self._read() as conn:
            conn = self._snapshot(conn)  # one snapshot for every chunk
            endpoints = conn.execute(
                text("SELECT id, path FROM lsops_endpoints ORDER BY path")
            ).all()
            bounds = [lo, hi]
            if not stale:
                first, last = conn.execute(text(_EXTENT_SQL.format(target_where)), params).one()
                if first is None:
                    return empty(ENDPOINT_DTYPES)
                bounds = [lo, *_cuts(int(first), int(last), size), hi]
            rank_of = _ranks(endpoints)
            parts = []  # each chunk's columns (its buckets after those of the chunk before)
            for a, b in zip(bounds, bounds[1:], strict=False):
                chunk = {**params, "start": a, "end": b}
                source = pack.samples_source(conn, [(a, b)], target_where, chunk, stale=stale)
                rows = _rollup_tuples(conn, sql.replace("__SAMPLES__", source), chunk)
                if len(rows):
                    parts.append(_grouped_columns(rows, rank_of, size))
                del rows
        if not parts:
            return empty(ENDPOINT_DTYPES)
        # one column at a time: the chunks' arrays of a column dropped once it is joined
        names = list(parts[0])
        return _columns_frame(
            {c: np.concatenate([p.pop(c) for p in parts]) for c in names}, endpoints
        )

    def counter_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
    ) -> pd.DataFrame:
        """Per time bucket: ts, requests (requests.total), cache_hits, cache_misses,
        cache_hit_ratio, resets, scrapes, failures. Same delta rule as
        `endpoint_intervals` (a counter going down on its own also takes its new value).
        `scrapes` counts every scrape of the bucket, `failures` those not ok. A cache
        counter the API gave no usable figure for (stored unknown, QA 23) makes the cache
        deltas of its interval and of the next one unknown (left out), never the whole
        counter counted as if it had reset; hits and misses are counted as a pair."""
        bucket_expr = bucket_sql(bucket)
        series = series_sql("WHERE t.name = :target" if target else "", stored=not self._stale())
        sql = f"""
        WITH {series},
        cd AS (
          SELECT {bucket_expr} AS bts,
                 CASE WHEN kind IN {NEW_SERIES} THEN 1 ELSE 0 END AS is_reset,
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {NEW_SERIES} OR p_rq IS NULL OR rq < p_rq THEN rq
                      ELSE rq - p_rq END AS d_rq,
                 CASE WHEN kind = 'base' OR ch IS NULL OR cm IS NULL THEN NULL
                      WHEN kind IN {NEW_SERIES} THEN ch
                      WHEN p_ch IS NULL OR p_cm IS NULL THEN NULL
                      WHEN ch < p_ch THEN ch
                      ELSE ch - p_ch END AS d_ch,
                 CASE WHEN kind = 'base' OR ch IS NULL OR cm IS NULL THEN NULL
                      WHEN kind IN {NEW_SERIES} THEN cm
                      WHEN p_ch IS NULL OR p_cm IS NULL THEN NULL
                      WHEN cm < p_cm THEN cm
                      ELSE cm - p_cm END AS d_cm
          FROM mk
        ),
        c1 AS (
          SELECT bts, SUM(d_rq) AS requests, SUM(d_ch) AS cache_hits, SUM(d_cm) AS cache_misses,
                 SUM(is_reset) AS resets
          FROM cd GROUP BY bts
        ),
        c2 AS (
          SELECT {bucket_expr} AS bts, COUNT(*) AS scrapes,
                 SUM(CASE WHEN ok THEN 0 ELSE 1 END) AS failures
          FROM sc GROUP BY {bucket_expr}
        )
        SELECT c2.bts AS ts, c1.requests, c1.cache_hits, c1.cache_misses, c1.resets,
               c2.scrapes, c2.failures
        FROM c2 LEFT JOIN c1 ON c1.bts = c2.bts
        ORDER BY c2.bts"""
        df = self._frame(sql, start, end, target)
        if df.empty:
            return empty(COUNTER_DTYPES)
        for col in ("requests", "cache_hits", "cache_misses", "resets", "scrapes", "failures"):
            df[col] = pd.to_numeric(df[col]).fillna(0).round().astype("int64")
        ops = (df["cache_hits"] + df["cache_misses"]).where(lambda s: s > 0)
        df["cache_hit_ratio"] = df["cache_hits"] / ops
        return df[COUNTER_COLUMNS]

    def resets(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """Series starts seen in [start, end): ts, kind (restart | reset | counter_drop),
        target, uptime_start_ms, last_reset_ms. A restart observed after failed scrapes
        (no predecessor with metrics, process started after the last failed one) counts.
        Each new process or reset is one series start, however many collectors saw it."""
        series = series_sql("WHERE t.name = :target" if target else "", stored=not self._stale())
        sql = f"""
        WITH {series}
        SELECT ts, kind, target, us AS uptime_start_ms, lr AS last_reset_ms
        FROM mk WHERE kind IN {NEW_SERIES}
        ORDER BY ts, sid"""
        df = self._frame(sql, start, end, target)
        typed(df, ["uptime_start_ms", "last_reset_ms"], "Int64")
        return df


def _endpoint_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The typed `endpoint_intervals` frame from its SQL rows."""
    if df.empty:
        return empty(ENDPOINT_DTYPES)
    for col in ("requests", "errors", "resets"):
        df[col] = pd.to_numeric(df[col]).round().astype("int64")
    df["time_sum_ms"] = pd.to_numeric(df["time_sum_ms"]).astype(float)
    return _with_ratios(df)


def _with_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """The frame of the sums with mean_ms and error_rate (NaN without requests), in
    ENDPOINT_COLUMNS order."""
    requests = df["requests"].where(df["requests"] > 0)
    df["mean_ms"] = df["time_sum_ms"] / requests
    df["error_rate"] = df["errors"] / requests
    return df[ENDPOINT_COLUMNS]


# rows fetched at a time: a chunk's array (48 bytes a row, 96 KiB) stays under glibc's
# mmap threshold (128 KiB), so it comes from (and goes back to) the heap, never a fresh
# mapping whose pages fault in again on every read
_CHUNK = 2048

# one row of the hourly read: bucket start (epoch ms), endpoint id, the sums
_ROW_DTYPE = np.dtype(
    [
        ("ts", "i8"),
        ("endpoint_id", "i8"),
        ("requests", "i8"),
        ("errors", "i8"),
        ("time_sum_ms", "f8"),
        ("resets", "i8"),
    ]
)


def _rollup_rows(conn: Connection, rollup_from: str, params: dict[str, Any]) -> np.ndarray:
    """The rollup rows of `rollup_from` (a FROM ... WHERE over `lsops_rollup r`) as one
    structured array (_ROW_DTYPE), in the order the database reads them. SQLite: each
    column as one text of its values (`_rollup_columns`), else (PostgreSQL, or a value
    that text would not carry exactly) the driver's rows."""
    if conn.dialect.name == "sqlite":
        rows = _rollup_columns(conn, rollup_from, params)
        if rows is not None:
            return rows
    return _rollup_tuples(conn, f"SELECT {_ROLLUP_COLUMNS} {rollup_from}", params)


_ROLLUP_COLUMNS = "r.hour_ts, r.endpoint_id, r.requests, r.errors, r.time_sum_ms, r.resets"
_INTEGERS = ("hour_ts", "endpoint_id", "requests", "errors", "resets")

# time_sum_ms (a double) as two integers, each exact in text: its integer part and its
# fraction in units of 2**-52. Both exact when the double is 0 or 1 <= |x| < 2**63 (its
# last bit is worth 2**-52 or more), and then float(whole) + float(frac) / 2**52 is that
# double again, bit for bit (each step exact: the fraction is x minus its integer part, a
# power of 2 scales exactly). SQLite adds and divides as numpy does (IEEE doubles): the
# `inexact` count compares that very reconstruction with the stored value, row by row.
_P52 = "4503599627370496.0"  # 2**52, an integer: parsed exactly
_WHOLE = "CAST(r.time_sum_ms AS INTEGER)"
_FRAC = f"CAST((r.time_sum_ms - {_WHOLE}) * {_P52} AS INTEGER)"
_COLUMNS_SQL = f"""SELECT COUNT(*), SUM({_WHOLE} + {_FRAC} / {_P52} <> r.time_sum_ms),
  {", ".join(f"CAST(group_concat(r.{c}) AS BLOB)" for c in _INTEGERS)},
  CAST(group_concat({_WHOLE}) AS BLOB), CAST(group_concat({_FRAC}) AS BLOB)"""
_INTEGER_TEXT = b"0123456789,-"  # what SQLite writes of integers and group_concat's commas


def _rollup_columns(
    conn: Connection, rollup_from: str, params: dict[str, Any]
) -> np.ndarray | None:
    """SQLite: the rows of `rollup_from` read as one row of texts, a column each
    (`group_concat`: every aggregate of one statement sees the rows in one order, so the
    i-th value of each text is the i-th row's), parsed by numpy. A row is one step of the
    driver (the GIL released and taken again, a tuple and six objects made); a value in a
    text is SQLite's integer formatting and numpy's parsing. None when a value would not
    come back exactly: a time sum outside the exact range (`_COLUMNS_SQL`), an integer
    column holding anything but integers (its text then holds other characters), or a
    text longer than SQLite allows (SQLITE_LIMIT_LENGTH, 1e9 bytes by default)."""
    try:
        n, inexact, *texts = conn.execute(text(f"{_COLUMNS_SQL} {rollup_from}"), params).one()
    except DataError:  # a text above SQLite's length limit (~1 GB: hundreds of targets)
        return None
    if not n:
        return np.empty(0, dtype=_ROW_DTYPE)
    if inexact or any(t.translate(None, _INTEGER_TEXT) for t in texts):
        return None
    # integers only: numpy's parser reads them exactly
    columns = [np.fromstring(t, dtype=np.int64, sep=",") for t in texts]
    if any(len(c) != n for c in columns):
        return None
    ts, eid, requests, errors, resets, whole, frac = columns
    rows = np.empty(int(n), dtype=_ROW_DTYPE)
    for name, values in (
        ("ts", ts),
        ("endpoint_id", eid),
        ("requests", requests),
        ("errors", errors),
        ("resets", resets),
    ):
        rows[name] = values
    rows["time_sum_ms"] = whole.astype(np.float64) + frac.astype(np.float64) / 2.0**52
    return rows


def _rollup_tuples(conn: Connection, sql: str, params: dict[str, Any]) -> np.ndarray:
    """The rows of `sql` (_ROW_DTYPE's six columns, none NULL: the rollup's, a raw read's
    sums) as one structured array, from the driver's plain tuples (no Row objects, no
    DataFrame of Python objects), a chunk at a time: the tuples of a year's read
    (~420,000) are never all alive at once."""
    result = conn.execute(text(sql), params)
    parts = [np.empty(0, dtype=_ROW_DTYPE)]
    try:
        if result.cursor is not None:
            while chunk := result.cursor.fetchmany(_CHUNK):
                parts.append(np.fromiter(chunk, dtype=_ROW_DTYPE, count=len(chunk)))
    finally:
        result.close()
    return np.concatenate(parts)


def _grouped_frame(
    rows: np.ndarray, endpoints: Sequence[tuple[int, str]], size: int
) -> pd.DataFrame:
    """The `endpoint_intervals` frame of `rows` (_ROW_DTYPE, any order, a (ts, endpoint)
    may repeat: targets, edge hours, hours of one day; ts multiples of the bucket's
    `size` in ms): summed per (ts, endpoint),
    ordered by ts, then by the position of the endpoint in `endpoints` (id, path), the
    paths in the database's order."""
    if len(rows) == 0:
        return empty(ENDPOINT_DTYPES)
    return _columns_frame(_grouped_columns(rows, _ranks(endpoints), size), endpoints)


def _ranks(endpoints: Sequence[tuple[int, str]]) -> np.ndarray:
    """The position of each endpoint id in `endpoints` (id, path), indexed by id."""
    ids = np.array([int(i) for i, _ in endpoints], dtype=np.int64)
    rank_of = np.full(int(ids.max(initial=0)) + 1, -1, dtype=np.int64)
    rank_of[ids] = np.arange(len(ids))
    return rank_of


def _grouped_columns(rows: np.ndarray, rank_of: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """`_grouped_frame`'s sums of `rows` (not empty) as arrays: ts (epoch ms), rank (of
    the endpoint), requests, errors, time_sum_ms, resets, in the frame's order."""
    n = len(rank_of)  # a key per (bucket, endpoint position) below
    ts = rows["ts"]
    # stable sorts: equal keys keep their order in `rows`; one int64 key (bucket number
    # x endpoints + rank: the ts are multiples of `size`) sorts 3x faster than two keys.
    # The key computed in place (one array of the rows' length, not four: a year's read
    # is 420,480 rows, each such array 3.4 MB of fresh pages)
    lowest, span = int(ts.min()), int(ts.max()) - int(ts.min())
    if (span // size + 1) * n < 2**62:
        key = ts - lowest
        key //= size
        key *= n
        key += rank_of[rows["endpoint_id"]]
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = np.empty(len(key), dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        head = key[starts]
        del key
        out_ts = head // n * size + lowest
        out_rank = head % n
    else:
        rank = rank_of[rows["endpoint_id"]]
        order = np.lexsort((rank, ts))
        ts, rank = ts[order], rank[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (ts[1:] != ts[:-1]) | (rank[1:] != rank[:-1])
        starts = np.flatnonzero(first)
        out_ts, out_rank = ts[starts], rank[starts]
    sums = {
        c: _sums(rows[c][order], starts) for c in ("requests", "errors", "time_sum_ms", "resets")
    }
    return {"ts": out_ts, "rank": out_rank, **sums}


def _columns_frame(
    columns: dict[str, np.ndarray], endpoints: Sequence[tuple[int, str]]
) -> pd.DataFrame:
    """The `endpoint_intervals` frame of `_grouped_columns` (emptied on the way: each
    array dropped once in the frame)."""
    # the endpoint names taken from one array of the distinct paths (typed as the
    # database's strings are): no string object per row
    paths = pd.Series([path for _, path in endpoints]).array
    df = pd.DataFrame(
        {
            "ts": pd.to_datetime(pd.Series(columns.pop("ts")), unit="ms", utc=True),
            "endpoint": paths.take(columns.pop("rank")),
            **{c: columns.pop(c) for c in ("requests", "errors", "time_sum_ms", "resets")},
        }
    )
    return _with_ratios(df)


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The sums of the runs of `values` beginning at `starts`, each added up one value
    after the other in its order, as the database's SUM does (np.add.reduceat would add
    floats pairwise, in another order: other last bits)."""
    if len(starts) == len(values):
        return values  # every run one value
    sizes = np.diff(starts, append=len(values))
    out = values[starts].copy()
    for j in range(1, int(sizes.max())):
        longer = np.flatnonzero(sizes > j)  # the runs with a (j+1)-th value
        out[longer] += values[starts[longer] + j]
    return out
