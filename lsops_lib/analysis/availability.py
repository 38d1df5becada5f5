"""Availability from health observations, with collection gaps shown as gaps, not uptime."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ._common import (
    duration,
    empty,
    ensure_ts,
    entry,
    instants,
    median_interval_s,
    py,
    ratio,
    seconds,
    window,
)

STATUSES = ("OK", "DEGRADED", "ERROR", "NO_ANSWER")
GAP_FACTOR = 2.0


@dataclass
class Availability:
    """Share of health observations per status over the time the collector covered.

    `availability` = ok / observations. DEGRADED, ERROR and NO_ANSWER are counted apart.
    Time with no observation at all (a gap longer than 2x the median scrape interval) is
    NOT uptime: it is in `gaps` and `gap_s`, and `coverage` = 1 - gap_s / period_s.
    """

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    observations: int
    ok: int
    degraded: int
    error: int
    no_answer: int
    availability: float  # ok / observations, NaN without observations
    degraded_share: float
    error_share: float
    no_answer_share: float
    interval_s: float | None  # median spacing of observations (or the one given)
    period_s: float
    covered_s: float
    gap_s: float
    coverage: float  # covered_s / period_s
    gaps: pd.DataFrame = field(repr=False)  # start, end, duration_s
    daily: pd.DataFrame = field(
        repr=False
    )  # day, observations, ok, degraded, error, no_answer, availability

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "observations": self.observations,
            "ok": self.ok,
            "degraded": self.degraded,
            "error": self.error,
            "no_answer": self.no_answer,
            "availability": self.availability,
            "degraded_share": self.degraded_share,
            "error_share": self.error_share,
            "no_answer_share": self.no_answer_share,
            "interval_s": self.interval_s,
            "period_s": self.period_s,
            "covered_s": self.covered_s,
            "gap_s": self.gap_s,
            "coverage": self.coverage,
            "gaps": len(self.gaps),
        }


def _gaps(
    stamps: pd.Series,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    interval_s: float | None,
) -> pd.DataFrame:
    """Stretches without any observation longer than GAP_FACTOR x interval.

    Between two observations the gap runs from one to the next; before the first and
    after the last, from the window's edge (when the window is bounded).
    """
    cols = ["start", "end", "duration_s"]
    stamps = pd.to_datetime(stamps, utc=True).sort_values().reset_index(drop=True)
    if stamps.empty:
        if start is not None and end is not None and end > start:
            return pd.DataFrame(
                {"start": [start], "end": [end], "duration_s": [(end - start).total_seconds()]}
            )
        return empty(cols)
    if interval_s is None:
        return empty(cols)
    limit = GAP_FACTOR * interval_s
    rows = []
    first, last = stamps.iloc[0], stamps.iloc[-1]
    if start is not None and (first - start).total_seconds() > limit:
        rows.append((start, first))
    # the spacings as a whole (a month of one-minute scrapes: 43,200 of them), the same
    # seconds as Timedelta.total_seconds()
    spacing = stamps.diff().dt.total_seconds().to_numpy()[1:]
    for i in np.flatnonzero(spacing > limit):
        rows.append((stamps.iloc[i], stamps.iloc[i + 1]))
    if end is not None and (end - last).total_seconds() > limit:
        rows.append((last, end))
    if not rows:
        return empty(cols)
    out = pd.DataFrame(rows, columns=["start", "end"])
    out["duration_s"] = (out["end"] - out["start"]).dt.total_seconds()
    return out


DAILY_COLUMNS = [
    "day", "observations", "ok", "degraded", "error", "no_answer", "availability", "gap_s", "coverage",
]  # fmt: skip


def _daily(
    df: pd.DataFrame, gaps: pd.DataFrame, t0: pd.Timestamp | None, t1: pd.Timestamp | None
) -> pd.DataFrame:
    """Per UTC day of the window: status counts, availability, and the gap seconds and
    coverage of that day (a day the collector missed shows coverage 0, not 100 % up)."""
    if t0 is None or t1 is None or t1 <= t0:
        return empty(DAILY_COLUMNS, error="int64")  # ERROR observations
    days = pd.date_range(t0.floor("D"), t1.ceil("D"), freq="D", inclusive="left")
    out = pd.DataFrame({"day": days})
    if df.empty:
        counts = pd.DataFrame(0, index=days, columns=list(STATUSES))
    else:
        counts = pd.crosstab(df["ts"].dt.floor("D"), df["status"]).reindex(
            index=days, columns=list(STATUSES), fill_value=0
        )
    for col, status in zip(["ok", "degraded", "error", "no_answer"], STATUSES, strict=True):
        out[col] = counts[status].to_numpy().astype("int64")
    out["observations"] = out[["ok", "degraded", "error", "no_answer"]].sum(axis=1)
    out["availability"] = out["ok"] / out["observations"].where(out["observations"] > 0)
    gap, span = [], []
    for d in days:
        lo, hi = max(d, t0), min(d + pd.Timedelta(days=1), t1)
        span.append(max((hi - lo).total_seconds(), 0.0))
        total = 0.0
        for g in gaps.itertuples():
            a, b = max(g.start, lo), min(g.end, hi)
            if b > a:
                total += (b - a).total_seconds()
        gap.append(total)
    out["gap_s"] = gap
    out["coverage"] = [1 - g / s if s > 0 else float("nan") for g, s in zip(gap, span, strict=True)]
    return out[DAILY_COLUMNS]


def _health(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.health(start, end, target=target)
    df = ensure_ts(df.copy(), "ts")
    if not df.empty:
        df["status"] = df["status"].fillna("NO_ANSWER").astype(str).str.upper()
        df = df.sort_values("ts").reset_index(drop=True)
    return df


def _until_now(
    t0: pd.Timestamp | None, t1: pd.Timestamp | None, stamps: pd.Series
) -> pd.Timestamp | None:
    """The end of a window as far as it can be observed: a window reaching into the future
    (a month in progress) ends now, or at the last observation when the history is ahead
    of this clock (a simulated one); never before its start."""
    now = pd.Timestamp.now(tz="UTC")
    if t1 is None or t1 <= now:
        return t1
    t1 = max(now, stamps.max()) if not stamps.empty else now
    return max(t1, t0) if t0 is not None else t1


@entry
def collection_gaps(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    interval: timedelta | None = None,
    target: str | None = None,
) -> pd.DataFrame:
    """Stretches with no scrape at all (no answer is an observation; a gap is not): start,
    end, duration_s. A window reaching into the future ends now (as `availability`'s)."""
    t0, t1 = window(start, end)  # a start after the end: ParameterError
    start, end = py(t0), py(t1)
    interval = duration(interval, "interval") if interval is not None else None
    df = _health(store, start, end, target)
    stamps = df["ts"] if not df.empty else pd.Series([], dtype="datetime64[ns, UTC]")
    step = seconds(interval) if interval is not None else median_interval_s(stamps)
    return _gaps(stamps, t0, _until_now(t0, t1, stamps), step)


@entry
def availability(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    target: str | None = None,
    interval: timedelta | None = None,
) -> Availability:
    """Share of health observations that were OK, with the gaps in collection beside it."""
    start, end = instants(start, end)  # a start after the end: ParameterError, before any read
    interval = duration(interval, "interval") if interval is not None else None
    df = _health(store, start, end, target)
    return availability_from_health(df, start, end, interval=interval)


def availability_from_health(
    df: pd.DataFrame,
    start: datetime | None,
    end: datetime | None,
    *,
    interval: timedelta | None = None,
) -> Availability:
    """`availability` over an already-read health frame (ts, status)."""
    t0, t1 = window(start, end)  # a start after the end: ParameterError
    interval = duration(interval, "interval") if interval is not None else None
    stamps = df["ts"] if not df.empty else pd.Series([], dtype="datetime64[ns, UTC]")
    if t0 is None and not df.empty:
        t0 = stamps.min()
    if t1 is None and not df.empty:
        t1 = stamps.max()
    t1 = _until_now(t0, t1, stamps)
    step = seconds(interval) if interval is not None else median_interval_s(stamps)
    gaps = _gaps(stamps, t0, t1, step)
    counts = df["status"].value_counts() if not df.empty else pd.Series(dtype=int)
    n = int(len(df))
    ok, degraded, error, no_answer = (int(counts.get(s, 0)) for s in STATUSES)
    period_s = (t1 - t0).total_seconds() if t0 is not None and t1 is not None else 0.0
    gap_s = float(gaps["duration_s"].sum()) if not gaps.empty else 0.0
    covered_s = max(period_s - gap_s, 0.0)
    daily = _daily(df, gaps, t0, t1)
    return Availability(
        start=t0,
        end=t1,
        observations=n,
        ok=ok,
        degraded=degraded,
        error=error,
        no_answer=no_answer,
        availability=ratio(ok, n),
        degraded_share=ratio(degraded, n),
        error_share=ratio(error, n),
        no_answer_share=ratio(no_answer, n),
        interval_s=step,
        period_s=period_s,
        covered_s=covered_s,
        gap_s=gap_s,
        coverage=ratio(covered_s, period_s),
        gaps=gaps,
        daily=daily,
    )
