"""The Errors section's chart: pm2's CPU of the app per sample.

    plots.pm2_cpu(errors.cpu, settings.thresholds, restarts=errors.unseen_restarts)

Takes the `cpu` frame of `sources.review.ErrorsReview` (ts, cpu: percent of one core),
draws on `ax` (a new figure when None) and returns the Axes; given nothing to draw (None,
or no sample) it draws nothing and returns None.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .look import COLORS, figure, mark_events, style, target_line, utc_axis

__all__ = ["pm2_cpu"]


def pm2_cpu(
    cpu: pd.DataFrame | None,
    thresholds: Any = None,
    ax: Any = None,
    *,
    restarts: pd.DataFrame | None = None,
    start: Any = None,
    end: Any = None,
) -> Any:
    """CPU per pm2 sample (percent of one core), the `cpu_percent` threshold dashed, the
    restarts the scrapes did not see marked; the title says the p95 and the peak."""
    if not isinstance(cpu, pd.DataFrame) or cpu.empty:
        return None
    ts = pd.to_datetime(cpu["ts"], utc=True)
    values = cpu["cpu"].astype(float)
    with style():
        if ax is None:
            _fig, ax = figure(3.2)
        ax.plot(ts, values, color=COLORS[0], linewidth=1.0, label="CPU (pm2)")
        limit = getattr(thresholds, "cpu_percent", None)
        target_line(ax, limit, f"threshold {limit:g} %" if limit is not None else None)
        if isinstance(restarts, pd.DataFrame) and not restarts.empty:
            mark_events(ax, restarts["end"], "restart (pm2)")
        utc_axis(ax)
        if start is not None and end is not None:
            ax.set_xlim(pd.Timestamp(start), pd.Timestamp(end))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("% of one core")
        ax.set_title(
            f"pm2 CPU: p95 {values.quantile(0.95):.1f} %, peak {values.max():.1f} % "
            f"over {len(values):,} samples"
        )
        ax.legend(loc="upper left")
    return ax
