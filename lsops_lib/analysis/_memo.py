"""One read of the store per period for a whole bundle (monthly review, postmortem).

A bundle asks the store for the same period several times: the endpoint summary (daily
buckets, monitoring left out), the monitoring endpoints it left out (daily, monitoring
included), the traffic series (daily) and the incident scan (hourly). Each of those is a
pass over every per-endpoint sample of the period (2.16 M for a month of one-minute
scrapes of 50 endpoints). `MemoStore` answers them all from ONE hourly read with the
monitoring endpoints included: the daily figures are sums of the hourly ones (the deltas
are per scrape, the buckets only group them), the default view drops the monitoring
endpoints (`models.is_monitoring`, the rule the store's own flag is made from). Other
reads are remembered by their arguments. Every answer is a copy: callers may modify it.

Only for the duration of one bundle computation (the store does not change under it in a
way the bundle could see consistently anyway).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from ._common import monitoring_mask

_REMEMBERED = frozenset(
    {"scrapes", "health", "services", "error_records", "resets", "counter_intervals"}
)
_DERIVED_BUCKETS = frozenset({"hour", "day"})
_COLUMNS = [
    "ts",
    "endpoint",
    "requests",
    "errors",
    "time_sum_ms",
    "mean_ms",
    "error_rate",
    "resets",
]


class MemoStore:
    """A read-through memo over a `Store` (see the module docstring)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], pd.DataFrame] = {}

    @property
    def store(self) -> Any:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in _REMEMBERED or not callable(attr):
            return attr

        def remembered(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())))
            if key not in self._memo:
                self._memo[key] = attr(*args, **kwargs)
            value = self._memo[key]
            return value.copy() if isinstance(value, pd.DataFrame) else value

        return remembered

    def endpoint_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        if bucket not in _DERIVED_BUCKETS:
            return self._store.endpoint_intervals(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        key = ("endpoint_intervals", start, end, target)
        if key not in self._memo:
            self._memo[key] = self._store.endpoint_intervals(
                start, end, bucket="hour", target=target, include_monitoring=True
            )
        df = self._memo[key]
        if df.empty:
            return df.copy()
        if not include_monitoring:
            df = df.loc[~monitoring_mask(df["endpoint"], as_text=True)]
        if bucket == "hour":
            return df.reset_index(drop=True).copy()
        days = df.assign(ts=df["ts"].dt.floor("D"))
        out = days.groupby(["ts", "endpoint"], as_index=False, sort=True)[
            ["requests", "errors", "time_sum_ms", "resets"]
        ].sum()
        for col in ("requests", "errors", "resets"):
            out[col] = out[col].astype("int64")
        out["time_sum_ms"] = out["time_sum_ms"].astype(float)
        requests = out["requests"].where(out["requests"] > 0)
        out["mean_ms"] = out["time_sum_ms"] / requests
        out["error_rate"] = out["errors"] / requests
        return out[_COLUMNS]


def memo(store: Any) -> Any:
    """`store` behind a MemoStore (once: a MemoStore is returned as it is)."""
    return store if isinstance(store, MemoStore) or store is None else MemoStore(store)
