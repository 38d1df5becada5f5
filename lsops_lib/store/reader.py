"""`StoreReader`: what analysis asks of a metrics history.

The analysis functions, their bundles and the memo (`analysis._memo.MemoStore`) take any
object with these read methods: a `Store`, a `MemoStore` in front of one, or a fake in a
test. Every method returns a pandas DataFrame with `ts` as `Timestamp(tz="UTC")` (columns
as `Store` documents them), for the window [start, end) (None = unbounded) of one target
or, with `target=None`, of all of them.

Optional, looked up with `getattr` by `analysis._reads.scrape_figures`:
`scrape_figures(start, end, target, *, with_health=False)` (a narrowed `scrapes`); a
reader without it is answered from `scrapes`; and by `security.auth.covered_hours`:
`answered_hours(start, end, target)` (ts: each UTC hour with an answered scrape); a reader
without it is answered from `counter_intervals(bucket="hour")`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class StoreReader(Protocol):
    """The read methods analysis and the reports use (`Store` has them all)."""

    def scrapes(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """One row per scrape, oldest first."""
        ...

    def health(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, status (OK | DEGRADED | ERROR | NO_ANSWER), http_status, target, failure_kind."""
        ...

    def services(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, service, status, message, response_time_ms, target."""
        ...

    def error_records(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, endpoint, method, status_code, error, target, first_seen."""
        ...

    def resets(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, kind (restart | reset | counter_drop), target, uptime_start_ms, last_reset_ms."""
        ...

    def endpoint_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        """ts (bucket start), endpoint, requests, errors, time_sum_ms, mean_ms, error_rate,
        resets."""
        ...

    def counter_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
    ) -> pd.DataFrame:
        """ts, requests, cache_hits, cache_misses, cache_hit_ratio, resets, scrapes, failures."""
        ...

    def targets(self) -> list[str]:
        """The names of the targets with stored scrapes."""
        ...

    def extent(self, target: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """(first ts, last ts) of the stored scrapes, or None when there are none."""
        ...
