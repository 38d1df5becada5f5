"""Charts in one look for every lsops report, drawn from the DataFrames the library returns.

    plots.look        the look (style, colours, figure size) and the primitives: time
                      series, ranked bars, axes in bytes / ms / percent / counts (each
                      tick labelled with its exact value), event marks
    plots.review      the monthly review's charts
    plots.postmortem  the postmortem's charts
    plots.database    the database charts (sizes, growth, embeddings)
    plots.security    the security review's chart (auth failures per hour)
    plots.errors      the Errors section's chart (pm2 CPU), issue 10

Each chart function takes a DataFrame (and, where it draws a target, the thresholds),
draws on `ax` (a new figure when None) and returns the Axes, so a notebook cell reads
`plots.daily_trends(review.daily)` and an analyst can change it there.
"""

from __future__ import annotations

from . import database, errors, postmortem, review, security
from .database import *  # noqa: F403
from .errors import *  # noqa: F403  (issue 10: the Errors section's CPU chart)
from .look import (
    BAD,
    COLORS,
    DENSE_POINTS,
    DPI,
    EVENT_COLOR,
    GOOD,
    HEIGHT_IN,
    RC,
    TARGET_COLOR,
    WIDTH_IN,
    ExactFormatter,
    apply_style,
    bar_ranked,
    bytes_axis,
    count_axis,
    dense_timeseries,
    describe,
    figure,
    fmt_bytes,
    fmt_ms,
    fmt_number,
    fmt_pct,
    hourly_spread,
    mark_events,
    memory_lines,
    ms_axis,
    number_axis,
    numeric_text,
    pct_axis,
    settle_date_ticks,
    settle_titles,
    shade,
    style,
    table_markup,
    target_line,
    timeseries,
    utc_axis,
)
from .postmortem import *  # noqa: F403
from .review import *  # noqa: F403
from .security import *  # noqa: F403

__all__ = [
    "WIDTH_IN",
    "HEIGHT_IN",
    "DPI",
    "COLORS",
    "TARGET_COLOR",
    "EVENT_COLOR",
    "GOOD",
    "BAD",
    "RC",
    "ExactFormatter",
    "apply_style",
    "style",
    "figure",
    "fmt_bytes",
    "fmt_pct",
    "fmt_ms",
    "fmt_number",
    "bytes_axis",
    "count_axis",
    "pct_axis",
    "ms_axis",
    "number_axis",
    "utc_axis",
    "settle_date_ticks",
    "settle_titles",
    "target_line",
    "mark_events",
    "memory_lines",
    "shade",
    "timeseries",
    "DENSE_POINTS",
    "hourly_spread",
    "dense_timeseries",
    "describe",
    "bar_ranked",
    "numeric_text",
    "table_markup",
    *database.__all__,
    *errors.__all__,
    *postmortem.__all__,
    *review.__all__,
    *security.__all__,
]
