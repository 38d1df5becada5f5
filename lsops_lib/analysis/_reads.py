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


# Store.health's columns, as its statement reads them from the same scrape rows
_HEALTH_SELECT = (
    "COALESCE(s.health_status, 'NO_ANSWER') AS status, s.health_http_status AS http_status, "
    "t.name AS target, s.health_failure AS failure_kind"
)
_HEALTH_COLUMNS = ["ts", "status", "http_status", "target", "failure_kind"]


def _typed(df: pd.DataFrame, columns: tuple[str, ...] | list[str], dtype: str) -> None:
    for col in columns:  # as the store types them: NULL is <NA> / NaN
        df[col] = pd.to_numeric(df[col].astype(object).where(df[col].notna(), None)).astype(dtype)


def scrape_figures(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    """`scrape_frame` narrowed to ts, target and the figure columns above: the same rows,
    order and values, without the other ~30 columns of each scrape (a month of one-minute
    scrapes is 43,200 rows: the whole rows cost most of the read). Behind a `MemoStore`
    that has not read the period's health yet, the same statement also reads the columns
    of `Store.health` (its very SELECT) and the memo answers the health read from them:
    one pass over the scrape rows instead of two. A store without the SQL read (`_frame`)
    gives its whole scrape rows."""
    base = getattr(store, "store", store)
    read = getattr(base, "_frame", None)
    if not callable(read):
        return scrape_frame(store, start, end, target)
    remember = getattr(store, "remember", None)
    with_health = callable(remember) and not store.remembers("health", start, end, target=target)
    columns = ", ".join(f"s.{c}" for c in (*FIGURE_INT_COLUMNS, *FIGURE_FLOAT_COLUMNS))
    if with_health:
        columns = f"{_HEALTH_SELECT}, {columns}"
    else:
        columns = f"t.name AS target, {columns}"
    df = read(
        f"""SELECT s.ts, {columns}
        FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid""",
        start,
        end,
        target,
    )
    if with_health:
        health = df[_HEALTH_COLUMNS].copy()
        _typed(health, ["http_status"], "Int64")
        remember("health", start, end, target=target, value=health)
        df = df[["ts", "target", *FIGURE_INT_COLUMNS, *FIGURE_FLOAT_COLUMNS]].copy()
    _typed(df, FIGURE_INT_COLUMNS, "Int64")
    _typed(df, FIGURE_FLOAT_COLUMNS, "float64")
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
