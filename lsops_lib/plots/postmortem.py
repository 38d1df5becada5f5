"""The charts of the incident postmortem: each takes the DataFrame the library returns.

    harm_ranking(pm.endpoints)                       the harm of each harmed endpoint
    window_traffic(pm.series, pm.impact_start, pm.impact_end, restarts=pm.restarts["ts"],
                   error_target=pm.thresholds.error_rate)
                                                     requests, error rate, mean latency
    window_health(pm.health)                         health status over the window
    window_memory(pm.memory, pm.thresholds)          RSS over the baseline and the window

Each draws in the lsops look and returns what it drew (a Figure or an Axes), or None
when there is nothing to draw (no health observation, no memory figure, nobody harmed).
Titles state the finding, computed from the frame they are given.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .. import fmt
from .look import (
    BAD,
    COLORS,
    WIDTH_IN,
    count_axis,
    figure,
    mark_events,
    memory_lines,
    ms_axis,
    number_axis,
    pct_axis,
    shade,
    target_line,
    utc_axis,
)

__all__ = [
    "ERROR_RATE_DIGITS",
    "HEALTH_ORDER",
    "ending_at",
    "harm_ranking",
    "window_health",
    "window_memory",
    "window_traffic",
    "with_gaps",
]

HEALTH_ORDER = ["OK", "DEGRADED", "ERROR", "NO_ANSWER"]
# the decimals of an error rate wherever the postmortem writes one (its sentences, tables
# and chart titles): 3 of 5,920 is "0.05 %" everywhere, never "0.1 %" in one place
ERROR_RATE_DIGITS = 2
_BASELINE_COLOR = COLORS[6]
_WINDOW_COLOR = COLORS[0]


def with_gaps(frame: pd.DataFrame, x: str = "ts") -> pd.DataFrame:
    """A NaN row after each interval followed by a gap (> 1.5x the median spacing), so a
    line breaks where there was no data instead of carrying the last value over it."""
    if len(frame) < 3:
        return frame
    frame = frame.sort_values(x).reset_index(drop=True)
    step = frame[x].diff()
    typical = step.median()
    holes = frame.loc[step > 1.5 * typical, x] - step[step > 1.5 * typical] + typical
    if holes.empty:
        return frame
    filler = pd.DataFrame({x: holes.to_numpy()})
    return pd.concat([frame, filler], ignore_index=True).sort_values(x, kind="stable")


def ending_at(frame: pd.DataFrame, step: Any, x: str = "ts") -> pd.DataFrame:
    """Per-scrape rows ready to draw as steps that END at their scrape (`where="pre"`):
    the delta labelled t covers (previous scrape, t] (`Store.endpoint_intervals`), so its
    value spans the interval before t, never the one after it. The first row and a row
    closing a gap (> 1.5x `step`) span the `step` before their scrape; the rest of a gap
    stays blank (a NaN row where the row's span begins), as `with_gaps` leaves it."""
    if frame.empty:
        return frame
    frame = frame.sort_values(x).reset_index(drop=True)
    step = pd.Timedelta(step)
    spacing = frame[x].diff()
    closing = spacing > 1.5 * step  # the first row's spacing is NaT: not a gap
    first = frame.iloc[[0]].assign(**{x: frame[x].iloc[0] - step})  # its span's start
    blanks = pd.DataFrame({x: (frame.loc[closing, x] - step).to_numpy()})
    parts = [first, blanks, frame] if not blanks.empty else [first, frame]
    return pd.concat(parts, ignore_index=True).sort_values(x, kind="stable")


def _step(series: pd.DataFrame) -> pd.Timedelta:
    """The typical spacing of a series' intervals (its median; 5 min when unknown)."""
    steps = series["ts"].drop_duplicates().sort_values().diff().dropna()
    return steps.median() if not steps.empty else pd.Timedelta(minutes=5)


def _rate(frame: pd.DataFrame, num: str, den: str) -> float:
    total = float(frame[den].sum()) if len(frame) else 0.0
    return float(frame[num].sum()) / total if total else float("nan")


def window_traffic(
    series: pd.DataFrame,
    impact_start: Any = None,
    impact_end: Any = None,
    *,
    restarts: Any = None,
    error_target: float | None = None,
    baseline_span: timedelta | None = None,
    counted: tuple[Any, Any] | None = None,
) -> Any:
    """Requests, error rate and mean latency per interval: the end of the baseline in grey,
    the window in blue, the impact window shaded, restarts dotted; a dashed error-rate
    target when given. Returns the Figure (three Axes sharing the time axis). Per scrape,
    each value is a step over the interval its delta covers, ending at its scrape
    (`ending_at`); per hour, a step over the hour its bucket starts.

    series: ts, period ("baseline" | "window"), requests, errors, error_rate, mean_ms (and
    time_sum_ms when there: the mean latencies in the titles are weighted by it). Only
    the last `baseline_span` of the baseline is drawn (default: 3x the window, at least
    2 h): enough to compare without squeezing the window; the titles' figures use it all.
    The titles' requests and error rate are those of the intervals overlapping the impact
    window (the whole window without one); the mean latencies those of the whole window.
    Per scrape, the bundle's figures when given (`counted`: its requests and failed
    requests, `(pm.requests, pm.failed)`: one figure, one text); else the deltas closed in
    the impact window, (impact start, impact end], as the bundle counts them, less the
    one that closed the breach when it began a new series (a restart or reset in
    `restarts` at that instant): its requests came after the recovery. Per hour (a window
    over 3 days), the whole hours the impact window spans, which the titles name: their
    count is not the bundle's.
    """
    fig, axes = plt.subplots(3, 1, figsize=(WIDTH_IN, 9), sharex=True)
    if series is None or series.empty:
        axes[0].set_title("No traffic counted in the window or its baseline")
        for ax in axes:
            ax.set_yticks([])
        utc_axis(axes[2])
        return fig
    series = series.sort_values("ts")
    win = series[series["period"] == "window"]
    base_all = series[series["period"] == "baseline"]
    step = _step(series)
    base = base_all
    if not win.empty and not base_all.empty:
        length = win["ts"].max() - win["ts"].min() + step
        span = (
            pd.Timedelta(baseline_span) if baseline_span else max(3 * length, pd.Timedelta(hours=2))
        )
        base = base_all[base_all["ts"] >= win["ts"].min() - span]
    impact = win
    said = "in the window"
    if impact_start is not None and not pd.isna(impact_start):
        last = impact_end if impact_end is not None and not pd.isna(impact_end) else impact_start
        # the intervals of the impact window: per scrape, those closing in it (as the
        # bundle's figures count them); per hour (or longer), the buckets it spans
        first, last = pd.Timestamp(impact_start), pd.Timestamp(last)
        said = "in the impact window"
        if step >= pd.Timedelta(hours=1):
            impact = win[(win["ts"] >= first.floor("h")) & (win["ts"] < max(last, first + step))]
            if not impact.empty:  # whole buckets: not the bundle's count, so say their span
                lo, hi = impact["ts"].min(), impact["ts"].max() + step
                said = f"in the whole hours {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC"
        else:
            closing = restarts is not None and bool(
                (pd.to_datetime(pd.Series(list(restarts)), utc=True) == last).any()
            )
            upto = win["ts"] < last if closing else win["ts"] <= last
            impact = win[(win["ts"] > first) & upto]  # a delta at the start is before it
    # per scrape, a delta covers the interval that ENDS at its ts: a step ending there
    # (a 10:00-10:30 burst drawn from 10:00 to 10:30, not 10:05 to 10:35); per hour (or
    # longer), a bucket starts at its ts: a step starting there
    hourly = step >= pd.Timedelta(hours=1)
    where = "post" if hourly else "pre"
    for period, frame, color in (
        ("baseline", base, _BASELINE_COLOR),
        ("window", win, _WINDOW_COLOR),
    ):
        if frame.empty:
            continue
        frame = with_gaps(frame) if hourly else ending_at(frame, step)
        axes[0].step(frame["ts"], frame["requests"], where=where, color=color, label=period)
        axes[1].step(frame["ts"], frame["error_rate"], where=where, color=color, label=period)
        axes[2].step(frame["ts"], frame["mean_ms"], where=where, color=color, label=period)

    def mean_ms(frame: pd.DataFrame) -> float:
        if "time_sum_ms" in frame:
            return _rate(frame, "time_sum_ms", "requests")
        weights = frame["requests"].where(frame["mean_ms"].notna(), 0)
        return (
            float(np.average(frame["mean_ms"].fillna(0), weights=weights))
            if weights.sum()
            else float("nan")
        )

    requests, failed = impact["requests"].sum(), impact["errors"].sum()
    if counted is not None and said == "in the impact window":  # the bundle's own figures
        requests, failed = counted
    axes[0].set_title(f"Requests per interval: {fmt.integer(requests)} {said}")
    axes[0].set_ylabel("requests")
    count_axis(axes[0])  # whole requests, never 152.5
    if error_target is not None:
        target_line(axes[1], error_target, f"target < {fmt.exact_pct(error_target)}")
    # error rates with the digits of the postmortem's tables (ERROR_RATE_DIGITS): one
    # figure, one text (the baseline's 3 of 5,920 is 0.05 % there and here, never 0.1 %)
    axes[1].set_title(
        f"Error rate {fmt.pct(failed / requests if requests else None, ERROR_RATE_DIGITS)} "
        f"{said} vs "
        f"{fmt.pct(_rate(base_all, 'errors', 'requests'), ERROR_RATE_DIGITS)} in the baseline"
    )
    axes[1].set_ylabel("error rate")
    pct_axis(axes[1])  # 2.5 % steps labelled 2.5 %, 5.0 %, 7.5 % (the ticks' own decimals)
    axes[1].set_ylim(bottom=0)
    axes[2].set_title(
        f"Mean latency {fmt.ms(mean_ms(win))} in the window vs "
        f"{fmt.ms(mean_ms(base_all))} in the baseline"
    )
    axes[2].set_ylabel("mean latency")
    ms_axis(axes[2])
    for ax in axes:
        if impact_start is not None and not pd.isna(impact_start):
            end = impact_end if impact_end is not None and not pd.isna(impact_end) else impact_start
            end = max(pd.Timestamp(end), pd.Timestamp(impact_start) + pd.Timedelta(minutes=1))
            shade(ax, impact_start, end, "impact window")
        if restarts is not None:
            mark_events(ax, restarts, "restart / reset")
        ax.legend(loc="best")
    utc_axis(axes[2])
    return fig


def window_health(health: pd.DataFrame, ax: Axes | None = None) -> Axes | None:
    """Health status per observation (OK, DEGRADED, ERROR, NO_ANSWER) as a step line;
    None without observations."""
    if health is None or health.empty:
        return None
    level = health["status"].map({s: i for i, s in enumerate(HEALTH_ORDER)})
    bad = int((health["status"] != "OK").sum())
    if ax is None:
        _, ax = figure(2.2)
    ax.step(health["ts"], level, where="post", color=BAD)
    ax.set_yticks(range(len(HEALTH_ORDER)), HEALTH_ORDER)
    ax.set_ylim(-0.5, len(HEALTH_ORDER) - 0.5)
    ax.set_title(
        f"Health: {fmt.integer(bad)} of {fmt.integer(len(health))} observations in the window "
        "were not OK"
    )
    utc_axis(ax)
    return ax


def window_memory(
    memory: Any,
    thresholds: Any = None,
    *,
    restarts: Any = None,
    leaks: pd.DataFrame | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes | None:
    """RSS per scrape with restarts dotted, steady climbs (possible leaks) shaded and, when
    the curve comes near it, the runbook's memory target (thresholds.memory_fraction of
    thresholds.memory_limit_bytes). None without a figure.

    memory: a `MemoryTrend` (its frame, restarts and leak segments are used) or a frame
    with ts and rss (then `restarts`: instants, `leaks`: start, end rows)."""
    frame = getattr(memory, "frame", memory)
    if frame is None or frame.empty or frame["rss"].dropna().empty:
        return None
    if restarts is None and hasattr(memory, "restarts") and not memory.restarts.empty:
        restarts = memory.restarts["ts"]
    if leaks is None and hasattr(memory, "leak_segments"):
        leaks = memory.leak_segments
    if title is None:
        peak = frame["rss"].max()
        leak = "possible leak" if leaks is not None and not leaks.empty else "no steady climb"
        title = f"Memory over the baseline and the window: peak {fmt.size(peak)}, {leak}"
    if ax is None:
        _, ax = figure(3.0)
    return memory_lines(
        ax,
        frame,
        title,
        limit_bytes=getattr(thresholds, "memory_limit_bytes", None),
        fraction=getattr(thresholds, "memory_fraction", None),
        restarts=restarts,
        climbs=leaks,
    )


def harm_ranking(endpoints: pd.DataFrame, *, top: int = 10, ax: Axes | None = None) -> Axes | None:
    """The harmed endpoints' harm in request-seconds, most harmed at the top, split into
    its two parts: significant errors beyond the baseline (weighted by
    thresholds.harm_seconds_per_error) and significant added latency. None when no
    endpoint was harmed.

    endpoints: `analysis.harm.harm` rows (endpoint, harm_s, harmed, added_latency_s,
    latency_significant)."""
    if endpoints is None or endpoints.empty or not endpoints["harmed"].astype(bool).any():
        return None
    data = endpoints.loc[endpoints["harmed"].astype(bool)].nlargest(top, "harm_s")
    latency = data["added_latency_s"].where(data["latency_significant"].astype(bool), 0.0)
    latency = latency.fillna(0.0).clip(lower=0.0)
    errors = (data["harm_s"] - latency).clip(lower=0.0)
    if ax is None:
        _, ax = figure(max(2.0, 0.45 * len(data) + 1.4), width=WIDTH_IN)
    names = [str(v) for v in data["endpoint"]][::-1]
    ax.barh(
        names,
        list(errors)[::-1],
        color=BAD,
        label="errors beyond the baseline" if errors.any() else None,
    )
    ax.barh(
        names,
        list(latency)[::-1],
        left=list(errors)[::-1],
        color=COLORS[1],
        label="added latency" if latency.any() else None,
    )
    first = data.iloc[0]
    ax.set_title(
        f"Most harmed: {first['endpoint']}, {fmt.number(first['harm_s'], 3)} request-seconds "
        f"({fmt.duration(first['harm_s'])} of users' time)"
    )
    ax.set_xlabel("harm (request-seconds)")
    number_axis(ax, "x")  # a harm of 1.5 request-seconds is ticked 0.5, 1.0, 1.5
    ax.grid(axis="y", visible=False)
    ax.legend(loc="best")
    return ax
