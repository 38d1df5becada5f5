"""The charts of the monthly review: each takes the DataFrame the review bundle holds
(`analysis.MonthlyReview`), and the thresholds where it draws a target, and returns what
it drew on (an Axes, or the Figure of a chart of several panels).

    daily = review.daily
    plots.daily_trends(daily, settings.thresholds)

Titles state the finding. A frame with nothing to draw gives an empty chart saying so
(the notebook shows an "unavailable" box instead: `present.monthly.show_*` returns False).
Nothing here calls `plt.show()`: the notebook shows the figure at the end of its cell.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import fmt
from ..config import Thresholds
from ..times import parse_month
from .look import (
    BAD,
    COLORS,
    WIDTH_IN,
    bar_ranked,
    count_axis,
    figure,
    memory_lines,
    ms_axis,
    pct_axis,
    settle_date_ticks,
    settle_titles,
    target_line,
    utc_axis,
)

__all__ = [
    "daily_bars",
    "daily_trends",
    "endpoint_errors",
    "latency_days",
    "memory_usage",
]

NO_DATA_COLOR = "#9e9e9e"


def _nothing(ax: Axes, title: str, why: str) -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", color="#616161")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _days(daily: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(daily["day"], utc=True)


def _month_limits(ax: Axes, daily: pd.DataFrame) -> None:
    """The whole month on the time axis (its days with and without data)."""
    if len(daily):
        days = _days(daily)
        ax.set_xlim(days.min(), days.max() + pd.Timedelta(days=1))


def daily_bars(
    ax: Axes | None,
    daily: pd.DataFrame,
    column: str,
    title: str,
    *,
    target: float | None = None,
    target_label: str | None = None,
    ylabel: str | None = None,
    formatter: Callable[[Axes], None] | None = None,
    missed: Callable[[float], bool] | None = None,
) -> Axes:
    """One bar per UTC day of `daily` (columns day, observations, `column`) that has
    observations; days without data stay empty, shaded "no data"; days where
    `missed(value)` in the "bad" colour; an optional dashed target."""
    ax = ax if ax is not None else figure()[1]
    seen = daily[(daily["observations"] > 0) & daily[column].notna()]
    values = seen[column].astype(float)
    colors = [BAD if missed is not None and missed(v) else COLORS[0] for v in values]
    ax.bar(_days(seen), values, width=0.85, align="edge", color=colors)
    for i, day in enumerate(_days(daily[daily["observations"] == 0])):
        ax.axvspan(
            day,
            day + pd.Timedelta(days=1),
            color=NO_DATA_COLOR,
            alpha=0.12,
            label="no data" if i == 0 else None,
            linewidth=0,
        )
    target_line(ax, target, target_label)
    if formatter is not None:
        formatter(ax)
    utc_axis(ax, "day (UTC)")
    ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    _month_limits(ax, daily)
    _, labels = ax.get_legend_handles_labels()
    if labels:  # above the bars, right of the title: never over a bar or the target line
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=3)
    return ax


def latency_days(
    daily: pd.DataFrame, thresholds: Thresholds | None = None, *, mean_ms: float | None = None
) -> Figure:
    """Two panels per day: the share of time slices whose reported p95 met the target
    (days under the objective in red), and the mean latency from counter deltas
    (`mean_ms`: the month's, for the title; without it, the days' means weighted by their
    requests, when `daily` has both columns, else the title states no mean)."""
    th = thresholds or Thresholds()
    over = "over the month"
    if fmt.missing(mean_ms) and {"requests", "mean_ms"} <= set(daily.columns):
        days = daily[(daily["requests"] > 0) & daily["mean_ms"].notna()]
        if not days.empty:
            weights = days["requests"].astype(float)
            mean_ms = float((days["mean_ms"].astype(float) * weights).sum() / weights.sum())
            over = f"over the {fmt.counted(len(daily), 'day')} shown"
    mean_clause = f": {fmt.ms(mean_ms)} {over}" if not fmt.missing(mean_ms) else ""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH_IN, 6), sharex=True)
    judged = daily["latency_met_share"].dropna()
    days_met = int((judged >= th.latency_slo).sum())
    daily_bars(
        top,
        daily,
        "latency_met_share",
        f"Reported p95 met {th.latency_p95_ms:g} ms in at least {fmt.exact_pct(th.latency_slo)} "
        f"of time slices on {days_met} of {len(judged)} days",
        target=th.latency_slo,
        target_label=f"objective {fmt.exact_pct(th.latency_slo)}",
        ylabel="share of slices\nwith p95 met",
        formatter=pct_axis,
        missed=lambda v: v < th.latency_slo,
    )
    daily_bars(
        bottom,
        daily,
        "mean_ms",
        f"Mean latency from counter deltas{mean_clause}",
        ylabel="mean latency",
        formatter=ms_axis,
    )
    settle_date_ticks(fig)
    settle_titles(fig)
    return fig


def daily_trends(daily: pd.DataFrame, thresholds: Thresholds | None = None) -> Figure:
    """Four panels per day: requests, error rate (target dashed, days over it red), mean
    latency, cache hit rate (target dashed, days under it red)."""
    th = thresholds or Thresholds()
    fig, axes = plt.subplots(4, 1, figsize=(WIDTH_IN, 11), sharex=True)
    busiest = daily.loc[daily["requests"].idxmax()] if len(daily) else None
    daily_bars(
        axes[0],
        daily,
        "requests",
        f"{fmt.integer(daily['requests'].sum())} requests"
        + (
            f"; busiest day {busiest['day']:%Y-%m-%d} ({fmt.integer(busiest['requests'])})"
            if busiest is not None
            else ""
        ),
        ylabel="requests / day",
        formatter=count_axis,
    )
    with_traffic = daily[daily["requests"] > 0]
    over = int((with_traffic["error_rate"] >= th.error_rate).sum())
    daily_bars(
        axes[1],
        daily,
        "error_rate",
        f"Error rate at or above {fmt.exact_pct(th.error_rate)} on {over} of "
        f"{len(with_traffic)} days with traffic",
        target=th.error_rate,
        target_label=f"target < {fmt.exact_pct(th.error_rate)}",
        ylabel="error rate",
        formatter=lambda ax: pct_axis(ax, digits=1),
        missed=lambda v: v >= th.error_rate,
    )
    slowest = with_traffic.loc[with_traffic["mean_ms"].idxmax()] if not with_traffic.empty else None
    daily_bars(
        axes[2],
        daily,
        "mean_ms",
        "Mean latency per day (counter deltas)"
        + (
            f"; slowest {slowest['day']:%Y-%m-%d} at {fmt.ms(slowest['mean_ms'])}"
            if slowest is not None
            else ""
        ),
        ylabel="mean latency",
        formatter=ms_axis,
    )
    with_cache = daily[daily["cache_hit_ratio"].notna()]
    under = int((with_cache["cache_hit_ratio"] <= th.cache_hit_rate).sum())
    daily_bars(
        axes[3],
        daily,
        "cache_hit_ratio",
        f"Cache hit rate at or below {fmt.exact_pct(th.cache_hit_rate)} on {under} of "
        f"{len(with_cache)} days",
        target=th.cache_hit_rate,
        target_label=f"target > {fmt.exact_pct(th.cache_hit_rate)}",
        ylabel="cache hit rate",
        formatter=pct_axis,
        missed=lambda v: v <= th.cache_hit_rate,
    )
    settle_date_ticks(fig)
    settle_titles(fig)
    return fig


def memory_usage(
    frame: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    restarts: pd.DataFrame | None = None,
    climbs: pd.DataFrame | None = None,
    month: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """RSS per scrape (`frame`: ts, rss; hourly median and max beyond a few thousand
    scrapes), the memory target when the curve comes near it, `restarts` (ts) as dotted
    lines and the steady climbs (`climbs`: `MemoryTrend.leak_segments`, climb_start /
    climb_end, else start / end) shaded "possible leak" (without `climbs` the title says
    nothing of climbs); `month` ("YYYY-MM") fixes the time axis to the whole month;
    `title` replaces the finding the chart states."""
    th = thresholds or Thresholds()
    ax = ax if ax is not None else figure()[1]
    if frame.empty or frame["rss"].isna().all():
        return _nothing(ax, "Memory", "no memory reading")
    limit_bytes = th.memory_limit_bytes
    peak = float(frame["rss"].max())
    leak = climbs is not None and not climbs.empty
    finding = (  # without `climbs`, nothing said of climbs: they were not looked for
        ""
        if climbs is None
        else "; a steady climb between restarts: possible leak"
        if leak
        else "; no steady climb between restarts"
    )
    share = (
        f"{fmt.pct(peak / limit_bytes, 0)} of {fmt.size(limit_bytes)}"
        if limit_bytes > 0
        else "no memory limit set"
    )
    title = title or f"Memory peaked at {fmt.size(peak)} ({share}){finding}"
    memory_lines(
        ax,
        frame,
        title,
        limit_bytes=limit_bytes or None,
        fraction=th.memory_fraction,
        restarts=restarts["ts"] if restarts is not None and not restarts.empty else None,
        climbs=climbs if leak else None,
    )
    if month:
        start, end = parse_month(month)
        ax.set_xlim(pd.Timestamp(start), pd.Timestamp(end))
    settle_date_ticks(ax.figure)
    settle_titles(ax.figure)
    return ax


def endpoint_errors(endpoints: pd.DataFrame, *, top: int = 10, ax: Axes | None = None) -> Axes:
    """The endpoints with the most errors in the month (`endpoints`: endpoint, requests,
    errors), as ranked bars; without any error, the busiest endpoints by requests."""
    current = endpoints[endpoints["requests"] > 0]
    if current.empty:
        return _nothing(ax if ax is not None else figure()[1], "Endpoints", "no request counted")
    if current["errors"].sum() > 0:
        worst = current.loc[current["errors"].idxmax()]
        ax = bar_ranked(
            ax,
            current,
            "endpoint",
            "errors",
            f"{worst['endpoint']} had the most errors ({fmt.integer(worst['errors'])})",
            top=top,
            xlabel="errors in the month",
            formatter=fmt.integer,
        )
        settle_titles(ax.figure)
        return ax
    busiest = current.loc[current["requests"].idxmax()]
    ax = bar_ranked(
        ax,
        current,
        "endpoint",
        "requests",
        f"No endpoint errors; {busiest['endpoint']} was the busiest",
        top=top,
        xlabel="requests in the month",
        formatter=fmt.integer,
    )
    settle_titles(ax.figure)
    return ax
