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


def reset_frame(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.resets(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not df.empty
        else empty(["ts", "kind"])
    )
