"""Memory over time with restarts marked, and the possible-leak flag."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..config import Thresholds
from ._common import (
    RESET_COLUMNS,
    TS,
    count,
    empty,
    ensure_ts,
    entry,
    instants,
    number,
    one_target,
    positive,
    ratio,
)
from ._reads import scrape_figures


@dataclass
class MemoryTrend:
    """RSS per scrape split into segments between process restarts.

    frame: ts, rss, heap_used, heap_total, segment, restart (True on the first scrape
    after a restart). segments: segment, start, end, points, duration_h, rss_start,
    rss_end, slope_bytes_per_hour, growth_per_hour, r2 (a straight line over the whole
    segment), leak, climb_start, climb_end, climb_growth_per_hour, climb_r2. Growth is
    always slope / the segment's level after its restart (the median of its first three
    hourly medians); for the first segment, whose process started before the window, the
    level of that process's first scrapes in the store (`_level_before`): the same level,
    and so the same verdict, whatever window is asked. A segment is a possible leak when,
    between restarts, its hourly median RSS climbs steadily (a least-squares fit over
    `window_hours` hours with r2 >= min_r2) faster than thresholds.memory_growth_per_hour;
    the climb spans every such window, and climb_growth_per_hour is fitted over the climb
    only (a segment flat before it climbs grows less over its whole length). Segments
    shorter than `min_hours` or with fewer than `min_points` scrapes are not judged.
    """

    frame: pd.DataFrame = field(repr=False)
    segments: pd.DataFrame = field(repr=False)
    restarts: pd.DataFrame = field(repr=False)  # ts, kind (from the store's resets)
    leak: bool
    peak_rss: float | None
    peak_fraction: float | None  # of thresholds.memory_limit_bytes
    last_rss: float | None
    last_fraction: float | None
    limit_bytes: int
    growth_threshold: float

    @property
    def leak_segments(self) -> pd.DataFrame:
        return (
            self.segments.loc[self.segments["leak"]] if not self.segments.empty else self.segments
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "leak": self.leak,
            "peak_rss": self.peak_rss,
            "peak_fraction": self.peak_fraction,
            "last_rss": self.last_rss,
            "last_fraction": self.last_fraction,
            "limit_bytes": self.limit_bytes,
            "growth_threshold": self.growth_threshold,
            "restarts": len(self.restarts),
            "segments": len(self.segments),
        }


def climb_span(segment: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A leak segment's climb as instants: `climb_start` and `climb_end` label the hourly
    medians fitted (the hour each begins), so the climb runs from the start of its first
    hour to the end of its last one, or to the segment's last scrape when the process
    restarted within that hour (QA 23: the review said "to 01:00" of a climb a restart
    ended at 00:00:20). The one rule of every text that says a climb's end."""
    start, end = segment["climb_start"], segment["climb_end"]
    if pd.notna(end):
        end = min(end + pd.Timedelta(hours=1), segment["end"])
    return start, end


SEGMENT_COLUMNS = [
    "segment",
    "start",
    "end",
    "points",
    "duration_h",
    "rss_start",
    "rss_end",
    "slope_bytes_per_hour",
    "growth_per_hour",
    "r2",
    "leak",
    "climb_start",
    "climb_end",
    "climb_growth_per_hour",
    "climb_r2",
]


def _climb(
    hourly: pd.Series, window_hours: float, min_r2: float, threshold: float, base: float
) -> tuple[pd.Timestamp, pd.Timestamp, float, float] | None:
    """The steady climb of one segment, if any: (start, end, growth per hour, r2).

    `hourly`: its RSS reduced to hourly medians (`_hourly`); every window of
    `window_hours` hourly points (the whole segment when shorter, at least 4) is fitted
    by least squares; a window whose fit is good (r2 >= min_r2) and grows faster than
    `threshold` per hour (slope / `base`, the segment's level after its restart) is
    climbing. The climb spans the climbing windows.
    """
    if len(hourly) < 4:
        return None
    x = ((hourly.index - hourly.index[0]).total_seconds() / 3600.0).to_numpy()
    y = hourly.to_numpy()
    w = max(4, min(int(round(window_hours)), len(hourly)))
    if not base > 0:
        return None
    flagged = np.zeros(len(hourly), bool)
    for i in range(0, len(hourly) - w + 1):
        _, b, r2 = _fit(x[i : i + w], y[i : i + w])
        growth = b / base
        if r2 >= min_r2 and growth > threshold:
            flagged[i : i + w] = True
    if not flagged.any():
        return None
    idx = np.flatnonzero(flagged)
    i0, i1 = int(idx[0]), int(idx[-1])
    _, b, r2 = _fit(x[i0 : i1 + 1], y[i0 : i1 + 1])
    return hourly.index[i0], hourly.index[i1], b / base, r2


def _hourly(part: pd.DataFrame) -> pd.Series:
    """A segment's RSS reduced to hourly medians."""
    return part.set_index("ts")["rss"].astype(float).resample("1h").median().dropna()


def _level(hourly: pd.Series) -> float:
    """A segment's own level just after its (re)start: the median of its first three
    hourly medians."""
    return float(np.median(hourly.to_numpy()[:3]))


LEVEL_READ = timedelta(hours=24)  # at most this much of a process's first scrapes is read


def _level_before(
    store: Any, part: pd.DataFrame, start: datetime | None, target: str | None
) -> float | None:
    """The level after its start of the process of the window's first segment `part`
    (ts, rss, uptime_start_ms), when that process started before the window: read back
    from its start (or the store's first scrape, when the store began later), at most
    LEVEL_READ of the scrapes of the same process (same uptime start), and taken with the
    segment's own scrapes (a process started less than three hours before the window).
    None when the store holds none of its scrapes before the window."""
    known = part["uptime_start_ms"].dropna()
    if start is None or known.empty:
        return None
    up = int(known.iloc[0])
    first = part["ts"].iloc[0]
    lo = pd.Timestamp(up, unit="ms", tz="UTC") - timedelta(hours=1)  # the server's clock
    extent = getattr(store, "extent", None)  # optional: `Store.extent`
    stored = extent(target) if callable(extent) else None
    if stored is not None:
        lo = max(lo, stored[0])
    hi = min(first, lo + LEVEL_READ)
    if lo >= hi:
        return None
    before = scrape_figures(store, lo.to_pydatetime(), hi.to_pydatetime(), target)
    if before.empty:
        return None
    rss = pd.to_numeric(before["rss"], errors="coerce")
    same = pd.to_numeric(before["uptime_start_ms"], errors="coerce") == up
    before = before.loc[same & rss.notna() & (before["ts"] < first), ["ts"]].assign(rss=rss)
    if before.empty:
        return None
    return _level(_hourly(pd.concat([before, part[["ts", "rss"]]], ignore_index=True)))


def _fit(hours: np.ndarray, rss: np.ndarray) -> tuple[float, float, float]:
    """Least squares rss = a + b*h: (a, b, r2)."""
    b, a = np.polyfit(hours, rss, 1)
    pred = a + b * hours
    ss_res = float(((rss - pred) ** 2).sum())
    ss_tot = float(((rss - rss.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    return float(a), float(b), r2


@entry
def memory_trend(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    min_points: int = 6,
    min_hours: float = 3.0,
    min_r2: float = 0.7,
    window_hours: float = 6.0,
    scrapes: pd.DataFrame | None = None,
) -> MemoryTrend:
    """The `MemoryTrend` of [start, end) (see there) of one process: `target`, which may be
    left out when the store holds one target only (ParameterError otherwise). A segment
    is judged with at least `min_points` scrapes over `min_hours` (0 or more); its climb
    is fitted over `window_hours` (more than 0) with r2 >= `min_r2` (0 to 1)."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    min_points = count(min_points, "min_points")
    min_hours = number(min_hours, "min_hours")
    min_r2 = number(min_r2, "min_r2", 0.0, 1.0)
    window_hours = positive(window_hours, "window_hours")
    thresholds = thresholds or Thresholds()
    # one process's memory: two APIs' samples interleaved would read as a restart a scrape
    target = one_target(store, target, "memory trend")
    # the figure columns alone (ts, rss, heap, uptime start): not the ~40 of every scrape
    df = scrape_figures(store, start, end, target) if scrapes is None else scrapes
    resets = store.resets(start, end, target=target)
    resets = ensure_ts(resets.copy(), "ts") if not resets.empty else empty(RESET_COLUMNS)
    limit = int(thresholds.memory_limit_bytes)
    cols = ["ts", "rss", "heap_used", "heap_total", "segment", "restart"]
    if df.empty:
        return MemoryTrend(
            empty(cols),
            empty(SEGMENT_COLUMNS),
            resets,
            False,
            None,
            None,
            None,
            None,
            limit,
            thresholds.memory_growth_per_hour,
        )
    df = ensure_ts(df.copy(), "ts").sort_values("ts")
    frame = pd.DataFrame({"ts": df["ts"]})
    for col in ["rss", "heap_used", "heap_total"]:
        frame[col] = pd.to_numeric(df.get(col), errors="coerce")
    up = pd.to_numeric(df.get("uptime_start_ms"), errors="coerce")
    frame["uptime_start_ms"] = up
    frame = frame.loc[frame["rss"].notna()].reset_index(drop=True)
    # a new process: a different uptime start than the previous answered scrape
    upv = frame["uptime_start_ms"]
    new = upv.ne(upv.shift()) & upv.shift().notna() & upv.notna()
    # also an rss that was known before a restart the store saw between two scrapes
    if not resets.empty and not frame.empty:
        restart_ts = resets.loc[resets["kind"].isin(["restart", "reset"]), "ts"]
        for t in restart_ts:
            after = frame.index[frame["ts"] >= t]
            if len(after) and after[0] > 0:
                new.iloc[after[0]] = True
    frame["restart"] = new.astype(bool)
    frame["segment"] = frame["restart"].cumsum().astype(int)
    first_level = _level_before(store, frame.loc[frame["segment"] == 0], start, target)
    frame = frame[cols]

    rows = []
    for seg, part in frame.groupby("segment"):
        hours = ((part["ts"] - part["ts"].iloc[0]).dt.total_seconds() / 3600.0).to_numpy()
        rss = part["rss"].to_numpy(dtype=float)
        duration = float(hours[-1]) if len(hours) else 0.0
        slope = growth = r2 = float("nan")
        hourly = _hourly(part)
        # as the climb's: the level after the restart (the first segment's may be earlier)
        base = first_level if seg == 0 and first_level is not None else _level(hourly)
        if len(part) >= 2 and duration > 0:
            _, slope, r2 = _fit(hours, rss)
            growth = ratio(slope, base) if base > 0 else float("nan")
        climb = None
        if len(part) >= min_points and duration >= min_hours:
            climb = _climb(hourly, window_hours, min_r2, thresholds.memory_growth_per_hour, base)
        rows.append(
            {
                "segment": int(seg),
                "start": part["ts"].iloc[0],
                "end": part["ts"].iloc[-1],
                "points": int(len(part)),
                "duration_h": duration,
                "rss_start": float(rss[0]),
                "rss_end": float(rss[-1]),
                "slope_bytes_per_hour": slope,
                "growth_per_hour": growth,
                "r2": r2,
                "leak": climb is not None,
                "climb_start": climb[0] if climb else pd.NaT,
                "climb_end": climb[1] if climb else pd.NaT,
                "climb_growth_per_hour": climb[2] if climb else float("nan"),
                "climb_r2": climb[3] if climb else float("nan"),
            }
        )
    segments = pd.DataFrame(rows, columns=SEGMENT_COLUMNS) if rows else empty(SEGMENT_COLUMNS)
    for col in ("climb_start", "climb_end"):  # no climb at all: NaT, still UTC instants
        segments[col] = pd.to_datetime(segments[col], utc=True).astype(TS)
    peak = float(frame["rss"].max()) if not frame.empty else None
    last = float(frame["rss"].iloc[-1]) if not frame.empty else None
    return MemoryTrend(
        frame=frame,
        segments=segments,
        restarts=resets,
        leak=bool(segments["leak"].any()) if not segments.empty else False,
        peak_rss=peak,
        peak_fraction=ratio(peak, limit) if peak is not None else None,
        last_rss=last,
        last_fraction=ratio(last, limit) if last is not None else None,
        limit_bytes=limit,
        growth_threshold=thresholds.memory_growth_per_hour,
    )


def period_memory_trend(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None,
    scrapes: pd.DataFrame | None = None,
) -> MemoryTrend:
    """`memory_trend` (default parameters) of one period; behind a `MemoStore`, computed
    once for the whole bundle (the memory section and the memory-climb detector ask for
    the same one), each caller getting its own copies of the frames."""
    derived = getattr(store, "derived", None)
    if not callable(derived):
        return memory_trend(store, start, end, thresholds, target=target, scrapes=scrapes)
    trend = derived(
        ("memory_trend", start, end, target, repr(thresholds)),
        lambda: memory_trend(store, start, end, thresholds, target=target, scrapes=scrapes),
    )
    return replace(
        trend,
        frame=trend.frame.copy(),
        segments=trend.segments.copy(),
        restarts=trend.restarts.copy(),
    )
