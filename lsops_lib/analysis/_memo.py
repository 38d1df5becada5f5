"""One read of the store per period for a whole bundle (monthly review, postmortem).

A bundle asks the store for the same period several times: the endpoint summary (daily
buckets, monitoring left out), the monitoring endpoints it left out (daily, monitoring
included), the traffic series (daily) and the incident scan (hourly). Each of those is a
pass over every per-endpoint sample of the period (2.16 M for a month of one-minute
scrapes of 50 endpoints). `MemoStore` answers them all from ONE hourly read with the
monitoring endpoints included: the daily figures are sums of the hourly ones (the deltas
are per scrape, the buckets only group them), the default view drops the monitoring
endpoints (`models.is_monitoring`, the rule the store's own flag is made from). Other
reads are remembered by their arguments (a call with an argument that cannot be a key, a
list of columns, is read each time). Every answer is a copy: callers may modify it.

Only for the duration of one bundle computation (the store does not change under it in a
way the bundle could see consistently anyway).

`prefetch` starts a remembered read on a background thread, answered when the bundle asks
for it: the store's heaviest statements (resets and counter deltas, each a window over
every scrape of the period) run in SQLite or PostgreSQL without holding the GIL, so they
overlap the bundle's pandas work. Only on stores whose connection pool serves threads
(QueuePool: a SQLite file, PostgreSQL); `close()` ends the threads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._common import monitoring_mask

if TYPE_CHECKING:  # the analysis itself imports no SQLAlchemy
    from ..store import StoreReader

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

    def __init__(self, store: StoreReader) -> None:
        self._store = store
        self._memo: dict[tuple[Any, ...], Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def store(self) -> StoreReader:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in _REMEMBERED or not callable(attr):
            return attr

        def remembered(*args: Any, **kwargs: Any) -> Any:
            return self._remembered(name, attr, args, kwargs)

        return remembered

    def _remembered(
        self, name: str, read: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        key = (name, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # an argument that cannot be a key (a list of columns): not remembered
            return read(*args, **kwargs)
        if key not in self._memo:
            self._memo[key] = read(*args, **kwargs)
        value = self._memo[key]
        if isinstance(value, Future):  # prefetched: its answer (or its exception)
            value = self._memo[key] = value.result()
        return value.copy() if isinstance(value, pd.DataFrame) else value

    def counter_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
    ) -> pd.DataFrame:
        """`Store.counter_intervals`, remembered; the daily buckets of a period whose
        per-scrape intervals the memo holds (or is reading) are their sums per UTC day
        (the store's day bucket groups the same per-scrape deltas by the day of the
        scrape): one pass over the scrapes instead of two."""
        read = self._store.counter_intervals
        per_scrape = {"bucket": "scrape", "target": target}
        if (
            bucket == "day"
            and not self.remembers("counter_intervals", start, end, bucket="day", target=target)
            and self.remembers("counter_intervals", start, end, **per_scrape)
        ):
            scrapes = self._remembered("counter_intervals", read, (start, end), per_scrape)
            self.remember(
                "counter_intervals", start, end, bucket="day", target=target,
                value=daily_counters(scrapes),
            )  # fmt: skip
        kwargs = {"bucket": bucket, "target": target}
        return self._remembered("counter_intervals", read, (start, end), kwargs)

    def remembers(self, name: str, *args: Any, **kwargs: Any) -> bool:
        """True when the memo already holds (or is reading) that call's answer."""
        return (name, args, tuple(sorted(kwargs.items()))) in self._memo

    def remember(self, name: str, *args: Any, value: Any, **kwargs: Any) -> None:
        """`value` as the answer of `store.name(*args, **kwargs)` (a read made another
        way: see `_reads.scrape_figures`)."""
        self._memo[(name, args, tuple(sorted(kwargs.items())))] = value

    def derived(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """The answer of `compute()` remembered under `key` (a figure the bundle derives
        from its reads more than once, e.g. the period's scrape figures or its memory
        trend): computed the first time, the same answer after. A DataFrame answer is
        returned as a copy."""
        key = ("derived", *key)
        if key not in self._memo:
            self._memo[key] = compute()
        value = self._memo[key]
        return value.copy() if isinstance(value, pd.DataFrame) else value

    def prefetch(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Start `store.name(*args, **kwargs)` on a background thread; the same call
        later gets its answer. Nothing happens for a read that is not remembered, one
        already made, or a store whose connections cannot serve two threads."""
        key = (name, args, tuple(sorted(kwargs.items())))
        if name not in _REMEMBERED or key in self._memo or not _serves_threads(self._store):
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsops-prefetch")
        self._memo[key] = self._pool.submit(getattr(self._store, name), *args, **kwargs)

    def close(self) -> None:
        """End the prefetch threads (waiting for a read still running)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

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


def _serves_threads(store: StoreReader) -> bool:
    """True when the store's engine hands each thread its own connection (QueuePool: a
    SQLite file or PostgreSQL), not one shared connection (an in-memory SQLite store)."""
    pool = getattr(getattr(store, "engine", None), "pool", None)
    return type(pool).__name__ == "QueuePool"


def memo(store: StoreReader | None) -> Any:
    """`store` behind a MemoStore (once: a MemoStore is returned as it is)."""
    return store if isinstance(store, MemoStore) or store is None else MemoStore(store)


_COUNTS = ["requests", "cache_hits", "cache_misses", "resets", "scrapes", "failures"]


def daily_counters(per_scrape: pd.DataFrame) -> pd.DataFrame:
    """`counter_intervals(bucket="day")` from `counter_intervals(bucket="scrape")` of the
    same period: each count summed per UTC day of the scrape, the hit ratio of the sums
    (NaN for a day without cache operations)."""
    if per_scrape.empty:
        return per_scrape.copy()
    columns = list(per_scrape.columns)
    days = per_scrape.assign(ts=per_scrape["ts"].dt.floor("D"))
    out = days.groupby("ts", as_index=False, sort=True)[_COUNTS].sum()
    for col in _COUNTS:
        out[col] = out[col].astype("int64")
    ops = (out["cache_hits"] + out["cache_misses"]).where(lambda s: s > 0)
    out["cache_hit_ratio"] = out["cache_hits"] / ops
    return out[columns]
