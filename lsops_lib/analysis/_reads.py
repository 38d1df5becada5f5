"""Store reads shared by the bundles, normalised (UTC ts, upper-case status, sorted)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from ._common import RESET_COLUMNS, empty, ensure_ts

if TYPE_CHECKING:  # the analysis itself imports no SQLAlchemy
    from ..store import StoreReader


def health_frame(
    store: StoreReader, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.health(start, end, target=target)
    if df.empty:
        return empty(["ts", "status", "http_status"])
    df = ensure_ts(df.copy(), "ts")
    df["status"] = df["status"].fillna("NO_ANSWER").astype(str).str.upper()
    return df.sort_values("ts").reset_index(drop=True)


def scrape_frame(
    store: StoreReader, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.scrapes(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


def scrape_figures(
    store: StoreReader, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    """`scrape_frame` narrowed to ts, target and the figure columns (`Store.scrape_figures`):
    the same rows, order and values, without the other ~30 columns of each scrape. Behind
    a `MemoStore` that has not read the period's health yet, the same read also gives the
    columns of `Store.health` and the memo answers the health read from them: one pass
    over the scrape rows instead of two, and the memo keeps the answer for the rest of the
    bundle (the memory-climb detector asks for the same period again). A store without
    that read gives its whole scrape rows."""
    derived = getattr(store, "derived", None)
    if callable(derived):  # behind a MemoStore: one read per period for the whole bundle
        return derived(
            ("scrape_figures", start, end, target),
            lambda: _scrape_figures(store, start, end, target),
        )
    return _scrape_figures(store, start, end, target)


def _scrape_figures(
    store: StoreReader, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    base = getattr(store, "store", store)
    read = getattr(base, "scrape_figures", None)
    if not callable(read):
        return scrape_frame(store, start, end, target)
    remember = getattr(store, "remember", None)
    with_health = callable(remember) and not store.remembers("health", start, end, target=target)
    df = read(start, end, target, with_health=with_health)
    if with_health:
        # the store's column names (imported here: the analysis itself needs no SQLAlchemy)
        from ..store import FIGURE_COLUMNS, HEALTH_COLUMNS

        remember("health", start, end, target=target, value=df[HEALTH_COLUMNS].copy())
        df = df[["ts", "target", *FIGURE_COLUMNS]].copy()
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


def reset_frame(
    store: StoreReader, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.resets(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not df.empty
        else empty(RESET_COLUMNS)
    )
