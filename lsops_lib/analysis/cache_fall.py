"""Incident kind `cache_fall`: the API cache's hit rate below the runbook's target
("Cache hit rate > 70%", `Thresholds.cache_hit_rate`) for a sustained period.

The hit rate of each scrape interval comes from the cumulative `cache.hits` /
`cache.misses` counters of /api/metrics, as deltas computed by the store's interval read
(`Store.counter_intervals(bucket="scrape")`): a restart, a metrics reset or a counter going
down starts a new series and the delta is the new value itself, never a difference, so a
counter reset neither creates nor hides a fall. A scrape without an answer has no delta:
the delta of the next answered scrape spans the gap, so a gap inside a fall does not split
it (as the error-rate incidents merge across gaps).

An interval is below target when it had at least `cache_fall_min_ops_per_minute` cache
operations a minute (fewer: not judged) and its hit rate is below the target. Runs of such
intervals are merged across a stretch not below it shorter than `cache_fall_min_minutes`
when the run before is below target beyond chance (below) and that stretch and the run
after it are below target together. A run is an incident when it lasts at
least `cache_fall_min_minutes` and the upper bound of the Wilson score interval of its hit
rate (one-sided 95 %) is below the target (chance on a few operations is no fall), from
the start of its first interval (the answered scrape before it) to the end of its last;
severity `warning` when its hit rate is below `cache_hit_rate_warn` (the runbook's
warning), `info` otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import Thresholds
from ..stats import wilson_lower
from ._common import ensure_ts, entry, instants
from .incident_base import frame, row, runs

KIND = "cache_fall"
Z = 1.645  # one-sided 95 %: the Wilson bound that chance on few operations stays above

INTERVAL_COLUMNS = ["start", "end", "hits", "misses", "ops", "minutes"]


def cache_intervals(counters: pd.DataFrame) -> pd.DataFrame:
    """The answered scrape intervals of one target from `counter_intervals(bucket="scrape")`
    rows: start (the answered scrape before), end (this scrape), hits, misses, ops, minutes.

    A row without an answer (every scrape of it failed, no counter moved) is a gap: it is
    no interval, and the next answered scrape's interval spans it. The first answered row
    has no known start and opens the first interval."""
    if counters.empty:
        return pd.DataFrame(columns=INTERVAL_COLUMNS)
    df = ensure_ts(counters.copy(), "ts").sort_values("ts").reset_index(drop=True)
    hits = pd.to_numeric(df["cache_hits"]).fillna(0).astype("int64")
    misses = pd.to_numeric(df["cache_misses"]).fillna(0).astype("int64")
    moved = (hits + misses + pd.to_numeric(df["requests"]).fillna(0)) > 0
    answered = (df["scrapes"] > df["failures"]) | moved
    df = df.assign(hits=hits, misses=misses).loc[answered].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "start": df["ts"].shift(),
            "end": df["ts"],
            "hits": df["hits"],
            "misses": df["misses"],
            "ops": df["hits"] + df["misses"],
        }
    ).iloc[1:]
    out["minutes"] = (out["end"] - out["start"]).dt.total_seconds() / 60.0
    return out.reset_index(drop=True)[INTERVAL_COLUMNS]


def _seconds(stamps: pd.Series) -> np.ndarray:
    """UTC instants as float seconds since the epoch."""
    naive = pd.to_datetime(stamps, utc=True).dt.tz_convert(None)
    return (naive - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)


def _upper(hits: int, ops: int) -> float:
    """Upper bound of the Wilson score interval of hits / ops (one-sided, `Z`; 1 without
    operations): one minus the lower bound of the misses' share."""
    if ops <= 0:
        return 1.0
    return 1.0 - float(wilson_lower((ops - hits) / ops, ops, Z))


def cache_falls(intervals: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """cache_fall incidents from `cache_intervals` (see the module docstring)."""
    if intervals.empty:
        return frame([])
    th = thresholds
    ops = intervals["ops"].astype(float)
    judged = (ops > 0) & (ops >= th.cache_fall_min_ops_per_minute * intervals["minutes"])
    below = (judged & (intervals["hits"] < th.cache_hit_rate * ops)).to_numpy()
    hits, total = intervals["hits"].to_numpy(), intervals["ops"].to_numpy()
    hit_sum = np.concatenate([[0], np.cumsum(hits)])
    ops_sum = np.concatenate([[0], np.cumsum(total)])
    min_s = th.cache_fall_min_minutes * 60
    # seconds since the epoch (plain floats: quick to compare in the loops below)
    starts = _seconds(intervals["start"])
    ends = _seconds(intervals["end"])

    def upper(first: int, last: int) -> float:
        return _upper(
            int(hit_sum[last + 1] - hit_sum[first]), int(ops_sum[last + 1] - ops_sum[first])
        )

    # runs of intervals below target; a stretch not below it shorter than the minimum
    # duration does not end a fall below target beyond chance when, with the run after
    # it, it is below target
    merged: list[tuple[int, int]] = []
    for first, last in runs(below):
        if merged:
            was, until = merged[-1]
            back = starts[first] - ends[until]
            bridge_hits = hit_sum[last + 1] - hit_sum[until + 1]
            bridge_ops = ops_sum[last + 1] - ops_sum[until + 1]
            if (
                back < min_s
                and bridge_hits < th.cache_hit_rate * bridge_ops
                and upper(was, until) < th.cache_hit_rate
            ):
                merged[-1] = (was, last)
                continue
        merged.append((first, last))
    rows = []
    for first, last in merged:
        if ends[last] - starts[first] < min_s:
            continue
        if upper(first, last) >= th.cache_hit_rate:
            continue
        run = intervals.iloc[first : last + 1]
        start, end = run["start"].iloc[0], run["end"].iloc[-1]
        n_hits, n_ops = int(run["hits"].sum()), int(run["ops"].sum())
        rate = n_hits / n_ops
        lowest = float((run["hits"] / run["ops"].where(run["ops"] > 0)).min())
        detail = (
            f"cache hit rate {fmt.pct(rate)} ({fmt.integer(n_hits)} hits of "
            f"{fmt.integer(n_ops)} operations over {len(run)} scrape intervals), lowest "
            f"{fmt.pct(lowest)}; target above {fmt.exact_pct(th.cache_hit_rate)}, warning below "
            f"{fmt.exact_pct(th.cache_hit_rate_warn)}"
        )
        ongoing = last + 1 >= len(intervals)
        if ongoing:
            detail += "; still below at the last observation"
        severity = "warning" if rate < th.cache_hit_rate_warn else "info"
        rows.append(row(start, end, KIND, severity, detail, ongoing=ongoing))
    return frame(rows)


@entry
def cache_fall_incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    """The detector of `cache_fall` (`incident_base.Detector`): each target on its own."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    thresholds = thresholds or Thresholds()
    names = [target] if target is not None else list(store.targets())
    parts = [
        cache_falls(
            cache_intervals(store.counter_intervals(start, end, bucket="scrape", target=name)),
            thresholds,
        )
        for name in names
    ]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else frame([])
