"""The security review's chart: authentication failures and rate limiting per hour.

    plots.auth_failures(review.hourly, bursts=review.auth["bursts"])

Takes the hourly frame of `lsops_lib.security` (hour, auth_failures, rate_limited: every
hour the collector covered), draws on `ax` (a new figure when None) and returns the Axes;
given nothing to draw (None, or no covered hour) it draws nothing and returns None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from .look import (
    BAD,
    COLORS,
    count_axis,
    figure,
    settle_date_ticks,
    settle_titles,
    style,
    utc_axis,
)

__all__ = ["auth_failures"]


def auth_failures(
    hourly: pd.DataFrame | None,
    ax: Any = None,
    *,
    bursts: Iterable[Mapping[str, Any]] | None = None,
    start: Any = None,
    end: Any = None,
) -> Any:
    """Per hour: 401/403 and 429 records, stacked as two filled step areas (one artist
    each, not a bar per hour: a month is 744 hours); hours the collector did not cover are
    gaps; burst hours marked with a red triangle; the title says the totals and how many
    hours burst. `start`/`end`: the x-axis limits (the month)."""
    if not isinstance(hourly, pd.DataFrame) or hourly.empty:
        return None
    frame = hourly.assign(hour=pd.to_datetime(hourly["hour"], utc=True)).set_index("hour")
    grid = pd.date_range(frame.index.min(), frame.index.max() + pd.Timedelta(hours=1), freq="h")
    covered = grid.isin(frame.index)
    auth = frame["auth_failures"].astype(float).reindex(grid, fill_value=0.0).to_numpy()
    limited = frame["rate_limited"].astype(float).reindex(grid, fill_value=0.0).to_numpy()
    marks = sorted({pd.Timestamp(b["hour"]) for b in (bursts or [])})
    with style():
        if ax is None:
            _fig, ax = figure(3.2)
        # step="post": the value of an hour spans [hour, hour + 1 h); `where` leaves the
        # hours nobody watched empty (the grid's last edge closes the last covered hour)
        where = covered | np.roll(covered, 1)
        ax.fill_between(grid, 0, auth, step="post", where=where, color=COLORS[0],
                        linewidth=0, label="401/403")  # fmt: skip
        ax.fill_between(grid, auth, auth + limited, step="post", where=where, color=COLORS[1],
                        linewidth=0, label="429")  # fmt: skip
        if marks:
            top = dict(zip(grid, auth + limited, strict=True))
            ax.plot(
                [m + pd.Timedelta(minutes=30) for m in marks],
                [top.get(m, 0.0) * 1.05 + 0.5 for m in marks],
                linestyle="none",
                marker="v",
                color=BAD,
                label="burst",
            )
        count_axis(ax)
        utc_axis(ax, "hour (UTC)")
        if start is not None and end is not None:
            ax.set_xlim(pd.Timestamp(start), pd.Timestamp(end))
            settle_date_ticks(ax.figure)  # the month's ticks, fixed
        ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))  # none at all: 0 to 1
        ax.set_ylabel("records")
        ax.set_title(_title(int(auth.sum()), int(limited.sum()), len(marks), int(covered.sum())))
        ax.legend(loc="upper left")
        settle_titles(ax.figure)
    return ax


def _title(auth: int, limited: int, burst_hours: int, hours: int) -> str:
    bursts = fmt.counted(burst_hours, "burst hour") if burst_hours else "no burst"
    return f"{auth:,} x 401/403 and {limited:,} x 429 over {hours:,} hours: {bursts}"
