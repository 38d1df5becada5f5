"""The interval reads: deltas of the cumulative counters, per time bucket, in SQL.

`endpoint_intervals` (per endpoint; hour and day buckets from the hourly rollup plus the
samples of the partial hours at the window's edges), `counter_intervals` (requests.total
and the cache counters, scrapes and failures) and `resets` (the series starts). Every
statement is built from the delta rule's fragments in `series.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from .core import StoreCore
from .reads import empty, typed
from .rollup import is_stale, rollup_state
from .series import (
    HOUR_MS,
    MAX_MS,
    MIN_MS,
    NEW_SERIES,
    bucket_sql,
    delta_columns,
    ms,
    series_sql,
)

ENDPOINT_COLUMNS = [
    "ts",
    "endpoint",
    "requests",
    "errors",
    "time_sum_ms",
    "mean_ms",
    "error_rate",
    "resets",
]

COUNTER_COLUMNS = [
    "ts",
    "requests",
    "cache_hits",
    "cache_misses",
    "cache_hit_ratio",
    "resets",
    "scrapes",
    "failures",
]


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
        """
        if bucket not in ("hour", "day"):
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        if self._stale():  # scrapes written by a writer keeping no links, since this open
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        lo, hi = ms(start, MIN_MS), ms(end, MAX_MS)
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
        parts.append(
            f"""SELECT {bucket_sql(bucket, "r.hour_ts")} AS bts, r.endpoint_id,
                 r.requests AS d_n, r.errors AS d_e, r.time_sum_ms AS d_t, r.resets AS is_reset
          FROM lsops_rollup r
          WHERE r.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
            AND r.hour_ts >= :a AND r.hour_ts < :b AND r.{endpoint_filter}"""
        )
        union = "\n          UNION ALL\n          ".join(parts)
        sql = f"""
        WITH {",".join(ctes) + "," if ctes else ""}
        u AS (
          {union}
        ),
        g AS (
          SELECT bts, endpoint_id, SUM(d_n) AS requests, SUM(d_e) AS errors,
                 SUM(d_t) AS time_sum_ms, SUM(is_reset) AS resets
          FROM u GROUP BY bts, endpoint_id
        )
        SELECT g.bts AS ts, e.path AS endpoint, g.requests, g.errors, g.time_sum_ms, g.resets
        FROM g JOIN lsops_endpoints e ON e.id = g.endpoint_id
        ORDER BY g.bts, e.path"""
        windows = [w for w in ((lo, a), (b, hi)) if w[0] < w[1]]
        return _endpoint_frame(
            self._frame(
                sql,
                start,
                end,
                target,
                extra={"a": a, "b": b},
                samples=(windows, target_where, False) if ctes else None,
            )
        )

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
            extra = {f"tn{i}": name for i, name in enumerate(targets)}
            target_where = f"WHERE t.name IN ({', '.join(':' + k for k in extra)})"
        by = "tg, " if targets is not None else ""
        series = series_sql(target_where, stored=not stale)
        sql = f"""
        WITH {series},
        ed AS (
          SELECT {"mk.target AS tg, " if by else ""}{bucket_sql(bucket, "mk.ts")} AS bts, x.endpoint_id,
                 {delta_columns("mk.kind")}
          FROM mk
          JOIN __SAMPLES__ x ON x.scrape_sid = mk.sid
          LEFT JOIN __SAMPLES__ px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.kind <> 'base'
            AND x.endpoint_id IN (SELECT e.id FROM lsops_endpoints e {monitoring})
        ),
        g AS (
          SELECT {by}bts, endpoint_id, SUM(d_n) AS requests, SUM(d_e) AS errors,
                 SUM(d_t) AS time_sum_ms, SUM(is_reset) AS resets
          FROM ed GROUP BY {by}bts, endpoint_id
        )
        SELECT {"g.tg AS target, " if by else ""}g.bts AS ts, e.path AS endpoint, g.requests,
               g.errors, g.time_sum_ms, g.resets
        FROM g JOIN lsops_endpoints e ON e.id = g.endpoint_id
        ORDER BY {"g.tg, " if by else ""}g.bts, e.path"""
        window = [(ms(start, MIN_MS), ms(end, MAX_MS))]
        df = self._frame(
            sql, start, end, target, extra=extra, samples=(window, target_where, stale)
        )
        if targets is None:
            return _endpoint_frame(df)
        names = df["target"].astype(str) if not df.empty else pd.Series(dtype=str)
        out = _endpoint_frame(df.drop(columns="target"))
        out.insert(0, "target", names.to_numpy())
        return out

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
        `scrapes` counts every scrape of the bucket, `failures` those not ok."""
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
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {NEW_SERIES} OR p_ch IS NULL OR ch < p_ch THEN ch
                      ELSE ch - p_ch END AS d_ch,
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {NEW_SERIES} OR p_cm IS NULL OR cm < p_cm THEN cm
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
            return empty(COUNTER_COLUMNS)
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
        return empty(ENDPOINT_COLUMNS)
    for col in ("requests", "errors", "resets"):
        df[col] = pd.to_numeric(df[col]).round().astype("int64")
    df["time_sum_ms"] = pd.to_numeric(df["time_sum_ms"]).astype(float)
    requests = df["requests"].where(df["requests"] > 0)
    df["mean_ms"] = df["time_sum_ms"] / requests
    df["error_rate"] = df["errors"] / requests
    return df[ENDPOINT_COLUMNS]
