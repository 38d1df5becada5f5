"""The delta rule, written once: series kinds, per-sample deltas and time buckets.

Interval figures are deltas of cumulative counters, computed in SQL with window
functions. Every interval read (`intervals.py`) and every rollup write (`rollup.py`)
builds its statement from the fragments here, so they compute the very same numbers:

- `series_sql` / `SERIES_SQL`: the CTEs that give each scrape with metrics of a target
  its predecessor with metrics and its kind (base, restart, reset, counter_drop, same);
- `delta_columns`: the per-endpoint deltas of one sample against its predecessor's;
- `series_kind`: the same kind decision in Python, for the rollup's write path;
- `bucket_sql` / `hour_of`: the buckets, as integer division of epoch milliseconds.

The rule itself is documented at `Store.endpoint_intervals` and in docs/internals.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..times import to_ms

BUCKETS: dict[str, int | None] = {
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "scrape": None,
}

# the bounds of an unbounded window, in epoch ms
MIN_MS = -(2**62)
MAX_MS = 2**62

HOUR_MS = 3_600_000

# the kinds that start a new series (every counter of the scrape counts whole)
NEW_SERIES_KINDS = ("restart", "reset", "counter_drop")
NEW_SERIES = "('restart', 'reset', 'counter_drop')"  # the same, as an SQL list


def ms(value: datetime | None, default: int) -> int:
    """An instant as epoch ms, `default` for None (an open window edge)."""
    return default if value is None else to_ms(value)


# --- the series rule, shared by every interval read ----------------------------------
#
# b  : per target, the lower bound of the scan: the last scrape WITH METRICS before
#      :start (the predecessor that makes windows additive), else the last scrape of any
#      kind before :start, else :start.
# sc : every scrape of the scan, with the ts of the scrape before it (any kind).
# mk : the scrapes with metrics, each with its predecessor with metrics (p_*) and a kind:
#      base         no predecessor with metrics, and the process did not (re)start after
#                   the scrape before it: the values are a baseline, the delta unknown.
#      restart      a new uptime.start (or, with no predecessor with metrics, an
#                   uptime.start/lastReset after the previous known scrape: the counters
#                   started while we were watching).
#      reset        a new uptime.lastReset (POST /api/metrics/reset).
#      counter_drop requests.total went down with neither changing.
#      same         the same series: deltas are differences.
def series_sql(target_where: str, *, p: str = "", start: str = ":start", end: str = ":end") -> str:
    """The CTEs b, sc, ms, mk above (names prefixed with `p`, bounds as given), so that one
    statement can scan two windows (the partial hours at both edges of a rollup read)."""
    return f"""
{p}b AS (
  SELECT t.id AS target_id, t.name AS target,
         COALESCE(
           (SELECT s.ts FROM lsops_scrapes s
             WHERE s.target_id = t.id AND s.ts < {start} AND s.requests_total IS NOT NULL
             ORDER BY s.ts DESC LIMIT 1),  -- MAX(ts), found walking the index back
           (SELECT MAX(s.ts) FROM lsops_scrapes s WHERE s.target_id = t.id AND s.ts < {start}),
           {start}) AS lo
  FROM lsops_targets t {target_where}
),
{p}sc AS (
  SELECT s.sid, s.target_id, {p}b.target, s.ts, s.ok,
         s.uptime_start_ms AS us, s.last_reset_ms AS lr, s.requests_total AS rq,
         s.cache_hits AS ch, s.cache_misses AS cm,
         LAG(s.ts) OVER (PARTITION BY s.target_id ORDER BY s.ts, s.sid) AS prev_any_ts
  FROM lsops_scrapes s JOIN {p}b ON s.target_id = {p}b.target_id
  WHERE s.ts >= {p}b.lo AND s.ts < {end}
),
{p}ms AS (
  SELECT {p}sc.*,
         LAG(sid) OVER w AS p_sid, LAG(us) OVER w AS p_us, LAG(lr) OVER w AS p_lr,
         LAG(rq) OVER w AS p_rq, LAG(ch) OVER w AS p_ch, LAG(cm) OVER w AS p_cm
  FROM {p}sc WHERE rq IS NOT NULL
  WINDOW w AS (PARTITION BY target_id ORDER BY ts, sid)
),
{p}mk AS (
  SELECT {p}ms.*,
         CASE
           WHEN p_sid IS NULL THEN
             CASE WHEN prev_any_ts IS NOT NULL
                       AND (COALESCE(us, -1) > prev_any_ts OR COALESCE(lr, -1) > prev_any_ts)
                  THEN 'restart' ELSE 'base' END
           WHEN COALESCE(us, -1) <> COALESCE(p_us, -1) THEN 'restart'
           WHEN COALESCE(lr, -1) <> COALESCE(p_lr, -1) THEN 'reset'
           WHEN rq < p_rq THEN 'counter_drop'
           ELSE 'same'
         END AS kind
  FROM {p}ms
)"""


# `SERIES_SQL.format(target_where=...)`: the CTEs over [:start, :end)
SERIES_SQL = series_sql("{target_where}")


def series_kind(me: Any, pred: Any, prev_ts: int | None) -> str:
    """The kind `SERIES_SQL` gives scrape `me` (uptime_start_ms, last_reset_ms,
    requests_total) with its predecessor with metrics `pred` (or None) and the ts of the
    scrape before it of any kind (or None)."""
    us = -1 if me.uptime_start_ms is None else me.uptime_start_ms
    lr = -1 if me.last_reset_ms is None else me.last_reset_ms
    if pred is None:
        return "restart" if prev_ts is not None and (us > prev_ts or lr > prev_ts) else "base"
    if us != (-1 if pred.uptime_start_ms is None else pred.uptime_start_ms):
        return "restart"
    if lr != (-1 if pred.last_reset_ms is None else pred.last_reset_ms):
        return "reset"
    if me.requests_total < pred.requests_total:
        return "counter_drop"
    return "same"


def delta_columns(kind: str) -> str:
    """The per-sample deltas of sample x against its predecessor's px (NULL when the
    endpoint is absent from it), for a scrape of the given kind (an SQL expression):
    is_reset, d_n (requests), d_t (time sum, ms), d_e (errors). Shared by the raw reads
    and the rollup writes, so both compute the very same numbers."""
    whole = f"{kind} IN {NEW_SERIES} OR px.count IS NULL OR x.count < px.count"
    return f"""CASE WHEN {kind} IN {NEW_SERIES} THEN 1
                      WHEN px.count IS NOT NULL AND x.count < px.count THEN 1
                      ELSE 0 END AS is_reset,
                 CASE WHEN {whole} THEN x.count ELSE x.count - px.count END AS d_n,
                 CASE WHEN {whole} THEN x.avg_time * x.count
                      WHEN x.count = px.count
                           OR x.avg_time * x.count < px.avg_time * px.count THEN 0
                      ELSE x.avg_time * x.count - px.avg_time * px.count END AS d_t,
                 CASE WHEN {whole} THEN ROUND(x.error_rate * x.count)
                      WHEN ROUND(x.error_rate * x.count) < ROUND(px.error_rate * px.count) THEN 0
                      ELSE ROUND(x.error_rate * x.count) - ROUND(px.error_rate * px.count)
                 END AS d_e"""


# --- buckets -------------------------------------------------------------------------


def bucket_sql(bucket: str, column: str = "ts") -> str:
    """The SQL expression of the bucket start of `column` (epoch ms)."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r} (expected one of {', '.join(BUCKETS)})")
    size = BUCKETS[bucket]
    # integer division of epoch ms: the same in SQLite and PostgreSQL (ts is an integer)
    return column if size is None else f"(({column} / {size}) * {size})"


def hour_of(ts: int) -> int:
    """The rollup hour of ts, as the SQL computes it ((ts / h) * h truncates toward 0)."""
    q = abs(ts) // HOUR_MS
    return (q if ts >= 0 else -q) * HOUR_MS


def hour_span(hour: int) -> tuple[int, int]:
    """[lo, hi): the instants whose `hour_of` is `hour` (the hour 0 spans two hours)."""
    return (hour if hour > 0 else hour - HOUR_MS + 1), (hour + HOUR_MS if hour >= 0 else hour + 1)
