"""Incident kind `memory_climb`: the process's RSS climbing steadily towards its limit
(pm2's `max_memory_restart`: "a memory climb ends in a restart"; `memory_limit_bytes`).

Per process (the segments of `memory_trend`: a new uptime.start or a restart the store saw
starts a new one), every window of `memory_climb_min_hours` hours starting at a scrape is
fitted by least squares; a window with at least 3 scrapes over half its length whose
slope is at least `memory_climb_per_hour` x `memory_limit_bytes` an hour is climbing. Each
run of scrapes covered by climbing windows is one candidate climb; its start and end are
placed at the scrape that best splits a flat stretch from the climb (a broken line
fitted by least squares on each side: the climb's first and last scrapes, not the edges
of the windows). A climb lasting at least `memory_climb_min_hours` is an incident:

- start: the climb's first scrape;
- end: the first scrape at which the RSS is back below the middle of the climb (recovery),
  else the first scrape of the next process (a restart: pm2's limit, a deploy, a crash),
  else the last observation (`ongoing`);
- severity `critical` when the RSS reached `memory_critical_fraction` of the limit,
  `warning` otherwise.

Scrapes without a memory figure (no answer) are left out: the windows are spans of time,
so a gap inside a climb does not split it. `memory_limit_bytes = 0` is no limit: the
climb's rate has nothing to be a share of, and no climb is an incident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import Thresholds
from ._common import entry, instants
from ._reads import scrape_figures
from .incident_base import frame, row, runs
from .memory import period_memory_trend

KIND = "memory_climb"
MIN_POINTS = 3  # a line through two scrapes is no trend
FIT_WINDOWS = 8  # a climb's start and end are fitted on at most 8 windows of it


def _window_slopes(t: np.ndarray, y: np.ndarray, hours: float) -> tuple[np.ndarray, np.ndarray]:
    """For the window [t[i], t[i] + hours] of each scrape i: its least-squares slope (NaN
    when it has fewer than MIN_POINTS scrapes or spans less than half its length) and the
    index one past its last scrape."""
    j = np.searchsorted(t, t + hours, side="right")
    c = np.concatenate([[0.0], np.cumsum(np.ones_like(t))])
    cx = np.concatenate([[0.0], np.cumsum(t)])
    cy = np.concatenate([[0.0], np.cumsum(y)])
    cxx = np.concatenate([[0.0], np.cumsum(t * t)])
    cxy = np.concatenate([[0.0], np.cumsum(t * y)])
    i = np.arange(len(t))
    n = c[j] - c[i]
    sx, sy, sxx, sxy = cx[j] - cx[i], cy[j] - cy[i], cxx[j] - cxx[i], cxy[j] - cxy[i]
    den = n * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sxy - sx * sy) / den
    span = t[np.maximum(j - 1, i)] - t
    slope[(n < MIN_POINTS) | (span < hours / 2) | ~(den > 0)] = np.nan
    return slope, j


def _break(t: np.ndarray, y: np.ndarray, candidates: np.ndarray, *, flat_after: bool) -> int:
    """The candidate scrape index that best splits the data into a flat stretch and a
    climb (y = c + b max(0, t - t_k), or with `flat_after` y = c + b min(t, t_k)), by
    least squares with b > 0; the first candidate when none climbs."""
    times = t[candidates][:, None]
    u = np.minimum(t[None, :], times) if flat_after else np.maximum(0.0, t[None, :] - times)
    du = u - u.mean(axis=1, keepdims=True)
    dy = y - y.mean()
    sxx = (du * du).sum(axis=1)
    sxy = (du * dy).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(sxx > 0, sxy * sxy / sxx, -np.inf)
    gain[~(sxy > 0)] = -np.inf  # b = sxy / sxx must be positive: a climb
    return int(candidates[int(np.argmax(gain))])


def _index(t: np.ndarray, at: float) -> int:
    """The index of the first scrape at or after `at` (clipped to the last one)."""
    return int(min(np.searchsorted(t, at, side="left"), len(t) - 1))


def climbs(part: pd.DataFrame, thresholds: Thresholds) -> list[tuple[int, int]]:
    """The climbs of one process's scrapes (ts, rss; sorted, rss known): (first, last)
    positional indexes of each climb's first and last scrape."""
    th = thresholds
    hours = float(th.memory_climb_min_hours)
    t = ((part["ts"] - part["ts"].iloc[0]).dt.total_seconds() / 3600.0).to_numpy()
    y = part["rss"].to_numpy(dtype=float) / 2**20  # MiB: modest numbers for the sums
    if len(t) < MIN_POINTS:
        return []
    slope, j = _window_slopes(t, y, hours)
    threshold = th.memory_climb_per_hour * th.memory_limit_bytes / 2**20  # MiB an hour
    climbing = slope >= threshold
    cover = np.zeros(len(t) + 1, dtype=np.int64)
    np.add.at(cover, np.flatnonzero(climbing), 1)
    np.add.at(cover, j[climbing], -1)
    covered = np.cumsum(cover[:-1]) > 0
    out = []
    for lo, hi in runs(covered):
        t_lo, t_hi = t[lo], t[hi]
        # what is fitted ends two windows after the run, or where the RSS fell back below
        # the middle of the run's rise (a recovery is no plateau)
        stop = _index(t, t_hi + 2 * hours) + 1
        peak = lo + int(np.argmax(y[lo : hi + 1]))
        fell = np.flatnonzero(y[peak:stop] < (y[lo : peak + 1].min() + y[peak]) / 2)
        if len(fell):
            stop = peak + int(fell[0])
        # the start among the scrapes from the run's first to one window later, the end
        # among those from one window before the run's last to the end of what is fitted;
        # each fitted on the data up to the other (twice: the first start is fitted up to
        # the end of what is fitted)
        # the end of what is fitted, its start at most FIT_WINDOWS windows from the other
        first, last = lo, stop - 1
        for _ in range(2):
            cands = np.arange(lo, min(_index(t, t_lo + hours), last) + 1)
            data = slice(
                _index(t, t_lo - 2 * hours), min(last, _index(t, t_lo + FIT_WINDOWS * hours)) + 1
            )
            first = _break(t[data], y[data], cands - data.start, flat_after=False) + data.start
            cands = np.arange(max(first + 1, _index(t, t_hi - hours)), stop)
            if len(cands) == 0:
                break
            data = slice(max(first, _index(t, t_hi - FIT_WINDOWS * hours)), stop)
            last = _break(t[data], y[data], cands - data.start, flat_after=True) + data.start
        if t[last] - t[first] < hours or last - first + 1 < MIN_POINTS:
            continue
        b = np.polyfit(t[first : last + 1], y[first : last + 1], 1)[0]
        if b >= threshold:
            out.append((first, last))
    return out


def memory_climbs(trend_frame: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """memory_climb incidents from `MemoryTrend.frame` (ts, rss, segment; see the module
    docstring)."""
    th = thresholds
    df = trend_frame.loc[trend_frame["rss"].notna()].sort_values("ts").reset_index(drop=True)
    if df.empty or th.memory_limit_bytes <= 0:  # 0: no limit (module docstring)
        return frame([])
    limit = float(th.memory_limit_bytes)
    rows = []
    segments = list(df.groupby("segment", sort=True))
    for n, (_, part) in enumerate(segments):
        part = part.reset_index(drop=True)
        nxt = segments[n + 1][1]["ts"].iloc[0] if n + 1 < len(segments) else None
        rss = part["rss"].to_numpy(dtype=float)
        hours = ((part["ts"] - part["ts"].iloc[0]).dt.total_seconds() / 3600.0).to_numpy()
        for first, last in climbs(part, th):
            b, a = np.polyfit(hours[first : last + 1], rss[first : last + 1], 1)
            low, high = a + b * hours[first], a + b * hours[last]
            middle = low + (high - low) / 2
            back = np.flatnonzero(rss[last + 1 :] < middle)
            ongoing = False
            if len(back):
                end_i = last + 1 + int(back[0])
                end, how = part["ts"].iloc[end_i], f"back below {fmt.size(middle)} (recovered)"
            elif nxt is not None:
                end_i = len(part) - 1
                end, how = nxt, "ended by a restart"
            else:
                end_i = len(part) - 1
                end, ongoing = part["ts"].iloc[-1], True
                how = (
                    "still climbing at the last observation"
                    if last == end_i
                    else f"levelled off at {fmt.instant(part['ts'].iloc[last])}, still above "
                    f"{fmt.size(middle)} (the middle of the climb) at the last observation"
                )
            peak = float(rss[first : end_i + 1].max())
            climb_s = (part["ts"].iloc[last] - part["ts"].iloc[first]).total_seconds()
            # the climb's figures are the fitted line's (from `low` to `high`); the peak is
            # the highest reading (QA 23: "climbed 87.3 MiB from 94.9 MiB to a peak of
            # 183.7 MiB" read as a sum that did not add up)
            detail = (
                f"RSS climbed {fmt.size(high - low)} in {fmt.duration(climb_s)} at "
                f"{fmt.size(b)}/h ({fmt.pct(b / limit, 2)} of the {fmt.size(limit)} limit an "
                f"hour; threshold {fmt.exact_pct(th.memory_climb_per_hour)}), from "
                f"{fmt.size(low)} to {fmt.size(high)} (a straight line fitted to the readings); "
                f"highest reading {fmt.size(peak)} ({fmt.pct(peak / limit, 0)} of the limit); "
                f"{how}"
            )
            severity = "critical" if peak >= th.memory_critical_fraction * limit else "warning"
            rows.append(row(part["ts"].iloc[first], end, KIND, severity, detail, ongoing=ongoing))
    return frame(rows)


@entry
def memory_climb_incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    """The detector of `memory_climb` (`incident_base.Detector`): each target on its own,
    its processes told apart as the memory section does (`memory_trend`)."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    thresholds = thresholds or Thresholds()
    names = [target] if target is not None else list(store.targets())
    parts = []
    for name in names:
        scrapes = scrape_figures(store, start, end, name)
        trend = period_memory_trend(store, start, end, thresholds, target=name, scrapes=scrapes)
        parts.append(memory_climbs(trend.frame, thresholds))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else frame([])
