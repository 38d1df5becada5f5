"""The delta rule, written once: the series order, series kinds, deltas and time buckets.

Interval figures are deltas of cumulative counters. Every interval read (`intervals.py`)
and every rollup write (`rollup.py`) builds its statement from the fragments here, so
they compute the very same numbers:

- `SERIES_KEY` / `key_sql`: the order of a target's scrapes with metrics, by what the API
  answered (process, reset, server clock, counters), never by the collector clock;
- `series_sql`: the CTEs that give each scrape with metrics of a window its predecessor
  in that order (the stored link `prev_sid`, or the link computed on the fly while a
  foreign writer left scrapes unlinked) and its kind (base, restart, reset,
  counter_drop, same);
- `delta_columns`: the per-endpoint deltas of one sample against its predecessor's;
- `series_kind`: the same kind decision in Python, for the write path;
- `bucket_sql` / `hour_of`: the buckets, as integer division of epoch milliseconds.

The rule itself is documented at `Store.endpoint_intervals` and in docs/internals.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..exceptions import ParameterError, ParameterValueError
from ..times import from_ms, shown, to_ms
from .schema import SERIES_KEY

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


def ms(value: datetime | date | str | None, default: int, name: str = "start") -> int:
    """An instant as epoch ms, `default` for None (an open window edge). A datetime (naive:
    UTC), a date (its midnight UTC), a numpy datetime64 or an ISO 8601 string, as the
    analysis reads them (`times.to_ms`); anything else, NaT too, is a ParameterError
    naming `name`."""
    if value is None:
        return default
    try:
        return to_ms(value)
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None


def _iso(value_ms: int) -> str:
    return from_ms(value_ms).isoformat().replace("+00:00", "Z")


def window_ms(start: datetime | str | None, end: datetime | str | None) -> tuple[int, int]:
    """(start, end) of a read as epoch ms (None: unbounded); ParameterError for a value that
    is no instant or a start after the end (as the analysis, `analysis._common.window`)."""
    lo, hi = ms(start, MIN_MS, "start"), ms(end, MAX_MS, "end")
    if lo > hi:
        raise ParameterError(
            f"start {_iso(lo)} is after end {_iso(hi)} (a window runs from start to end)"
        )
    return lo, hi


# --- the series order ----------------------------------------------------------------
#
# Per target, the scrapes WITH METRICS are ordered by
#   (uptime.start, uptime.lastReset, the server's `timestamp`, requests.total, sid)
# (a missing start or reset as -1, a missing server timestamp as the collector's): a
# later process starts later, a later reset happens later, and within one process and
# reset the server's own clock orders its answers, the counters breaking ties of a
# millisecond (they never go down within one process and reset). So the order does not
# depend on which collector took a scrape, on its clock, or on when it was written: any
# number of collectors give the same series, and an answer identical to one stored sits
# next to it (its deltas are zero: it adds nothing).


def key_sql(alias: str = "") -> str:
    """The series key as an SQL list (the series index holds its first three)."""
    a = f"{alias}." if alias else ""
    return ", ".join(k.format(a=a) for k in SERIES_KEY)


def key_of(row: Any) -> tuple[int, int, int, int, int]:
    """The series key of a row (sid, ts, server_ts, uptime_start_ms, last_reset_ms,
    requests_total), as the SQL computes it."""
    return (
        -1 if row.uptime_start_ms is None else int(row.uptime_start_ms),
        -1 if row.last_reset_ms is None else int(row.last_reset_ms),
        int(row.ts) if row.server_ts is None else int(row.server_ts),
        int(row.requests_total),
        int(row.sid),
    )


# The latest scrape WITHOUT metrics before scrape `s` in collector order (ts, sid): its
# ts decides whether the first scrape of a target is a baseline or a restart.
def prev_failed_sql(s: str) -> str:
    return f"""(SELECT MAX(f.ts) FROM lsops_scrapes f
               WHERE f.target_id = {s}.target_id AND f.requests_total IS NULL
                 AND f.ts <= {s}.ts AND (f.ts < {s}.ts OR f.sid < {s}.sid))"""


# --- the series rule, shared by every interval read ----------------------------------
#
# sel : the targets read.
# ln  : (computed links only) each scrape with metrics and its predecessor in the series
#       order, over the targets' whole history (a window function: only while scrapes
#       written by a writer that keeps no links wait for the next open to be linked).
# sc  : every scrape of the window (for the scrape and failure counts).
# ms  : the scrapes with metrics of the window, each with its predecessor (p_*) and, for
#       the first of its target's series (no predecessor), `pf`: the ts of the latest
#       scrape without metrics before it (collector order).
# mk  : ms with its kind:
#      base         no predecessor, and the process did not (re)start after the failed
#                   scrape before it: the values are a baseline, the delta unknown.
#      restart      a new uptime.start (or, with no predecessor, an uptime.start/lastReset
#                   after the failed scrape before it: the counters started while we
#                   were watching).
#      reset        a new uptime.lastReset (POST /api/metrics/reset).
#      counter_drop requests.total went down with neither changing (and the lower
#                   reading is the newer one by the server's clock: the order says so).
#      same         the same series: deltas are differences.
def series_sql(
    target_where: str,
    *,
    p: str = "",
    start: str = ":start",
    end: str = ":end",
    stored: bool = True,
) -> str:
    """The CTEs above (names prefixed with `p`, window bounds as given, so that one
    statement can scan two windows). `stored`: the links written with the scrapes
    (`prev_sid`); False: computed by a window function over the whole history."""
    if stored:
        links, prev = "", "s.prev_sid"
    else:
        links = f"""
{p}ln AS (
  SELECT s.sid, LAG(s.sid) OVER (PARTITION BY s.target_id ORDER BY {key_sql("s")}) AS prev_sid
  FROM lsops_scrapes s JOIN {p}sel ON s.target_id = {p}sel.target_id
  WHERE s.requests_total IS NOT NULL
),"""
        prev = f"{p}ln.prev_sid"
    join_links = "" if stored else f"JOIN {p}ln ON {p}ln.sid = s.sid"
    return f"""
{p}sel AS (
  SELECT t.id AS target_id, t.name AS target FROM lsops_targets t {target_where}
),{links}
{p}sc AS (
  SELECT s.sid, s.target_id, s.ts, s.ok
  FROM lsops_scrapes s JOIN {p}sel ON s.target_id = {p}sel.target_id
  WHERE s.ts >= {start} AND s.ts < {end}
),
{p}ms AS (
  SELECT s.sid, s.target_id, {p}sel.target, s.ts,
         s.uptime_start_ms AS us, s.last_reset_ms AS lr, s.requests_total AS rq,
         s.cache_hits AS ch, s.cache_misses AS cm,
         q.sid AS p_sid, q.uptime_start_ms AS p_us, q.last_reset_ms AS p_lr,
         q.requests_total AS p_rq, q.cache_hits AS p_ch, q.cache_misses AS p_cm,
         CASE WHEN q.sid IS NULL THEN {prev_failed_sql("s")} END AS pf
  FROM lsops_scrapes s JOIN {p}sel ON s.target_id = {p}sel.target_id
  {join_links}
  LEFT JOIN lsops_scrapes q ON q.sid = {prev}
  WHERE s.ts >= {start} AND s.ts < {end} AND s.requests_total IS NOT NULL
),
{p}mk AS (
  SELECT {p}ms.*,
         CASE
           WHEN p_sid IS NULL THEN
             CASE WHEN pf IS NOT NULL AND (COALESCE(us, -1) > pf OR COALESCE(lr, -1) > pf)
                  THEN 'restart' ELSE 'base' END
           WHEN COALESCE(us, -1) <> COALESCE(p_us, -1) THEN 'restart'
           WHEN COALESCE(lr, -1) <> COALESCE(p_lr, -1) THEN 'reset'
           WHEN rq < p_rq THEN 'counter_drop'
           ELSE 'same'
         END AS kind
  FROM {p}ms
)"""


def series_kind(me: Any, pred: Any, pf: int | None) -> str:
    """The kind `series_sql` gives scrape `me` (uptime_start_ms, last_reset_ms,
    requests_total) with its predecessor `pred` (or None) and, without one, the ts `pf`
    of the latest scrape without metrics before it (or None)."""
    us = -1 if me.uptime_start_ms is None else me.uptime_start_ms
    lr = -1 if me.last_reset_ms is None else me.last_reset_ms
    if pred is None:
        return "restart" if pf is not None and (us > pf or lr > pf) else "base"
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
    if not isinstance(bucket, str) or bucket not in BUCKETS:
        raise ParameterValueError(
            f"bucket: unknown bucket {shown(bucket)} (expected one of {', '.join(BUCKETS)})"
        )
    size = BUCKETS[bucket]
    # integer division of epoch ms: the same in SQLite and PostgreSQL (ts is an integer)
    return column if size is None else f"(({column} / {size}) * {size})"


def hour_of(ts: int) -> int:
    """The rollup hour of ts, as the SQL computes it ((ts / h) * h truncates toward 0)."""
    q = abs(ts) // HOUR_MS
    return (q if ts >= 0 else -q) * HOUR_MS
