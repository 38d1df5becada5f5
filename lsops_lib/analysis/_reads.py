"""Store reads shared by the bundles, normalised (UTC ts, upper-case status, sorted)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from ._common import empty, ensure_ts


def health_frame(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.health(start, end, target=target)
    if df.empty:
        return empty(["ts", "status", "http_status"])
    df = ensure_ts(df.copy(), "ts")
    df["status"] = df["status"].fillna("NO_ANSWER").astype(str).str.upper()
    return df.sort_values("ts").reset_index(drop=True)


def scrape_frame(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.scrapes(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


# the scrape fields behind the review's figures (memory, latency time slices, percentile
# sanity), with the types `Store.scrapes` gives them
FIGURE_INT_COLUMNS = ("uptime_start_ms", "rss", "heap_used", "heap_total", "rt_count")
FIGURE_FLOAT_COLUMNS = ("rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max")


def scrape_figures(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    """`scrape_frame` narrowed to ts, target and the figure columns above: the same rows,
    order and values, without the other ~30 columns of each scrape (a month of one-minute
    scrapes is 43,200 rows: the whole rows cost most of the read). A store without the
    SQL read (`_frame`) gives its whole scrape rows."""
    read = getattr(getattr(store, "store", store), "_frame", None)
    if not callable(read):
        return scrape_frame(store, start, end, target)
    columns = ", ".join(f"s.{c}" for c in (*FIGURE_INT_COLUMNS, *FIGURE_FLOAT_COLUMNS))
    df = read(
        f"""SELECT s.ts, t.name AS target, {columns}
        FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid""",
        start,
        end,
        target,
    )
    for names, dtype in ((FIGURE_INT_COLUMNS, "Int64"), (FIGURE_FLOAT_COLUMNS, "float64")):
        for col in names:  # as Store.scrapes types them: NULL is <NA> / NaN
            df[col] = pd.to_numeric(df[col].astype(object).where(df[col].notna(), None)).astype(
                dtype
            )
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


def reset_frame(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.resets(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not df.empty
        else empty(["ts", "kind"])
    )
