"""`StoreReader`, the read protocol analysis accepts: a `Store`, the analysis memo in front
of one, and a small fake all satisfy it, and analysis answers from the fake."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from lsops_lib import analysis
from lsops_lib.analysis._memo import MemoStore, memo
from lsops_lib.store import Store, StoreReader
from tests.fixtures.store import T0, at, make_scrape

When = datetime | None


class FakeReader:
    """Health observations every minute (OK but for minute 3: DEGRADED; 4: no answer);
    every other read answers with no rows."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _none(self, name: str) -> pd.DataFrame:
        self.calls.append(name)
        return pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]")})

    def scrapes(
        self, start: When = None, end: When = None, target: str | None = None
    ) -> pd.DataFrame:
        return self._none("scrapes")

    def health(
        self, start: When = None, end: When = None, target: str | None = None
    ) -> pd.DataFrame:
        self.calls.append("health")
        status = ["OK", "OK", "OK", "DEGRADED", "NO_ANSWER", "OK", "OK", "OK", "OK", "OK"]
        return pd.DataFrame(
            {
                "ts": [pd.Timestamp(at(m)) for m in range(len(status))],
                "status": status,
                "http_status": [200] * len(status),
            }
        )

    def services(
        self, start: When = None, end: When = None, target: str | None = None
    ) -> pd.DataFrame:
        return self._none("services")

    def error_records(
        self, start: When = None, end: When = None, target: str | None = None
    ) -> pd.DataFrame:
        return self._none("error_records")

    def resets(
        self, start: When = None, end: When = None, target: str | None = None
    ) -> pd.DataFrame:
        return self._none("resets")

    def endpoint_intervals(
        self,
        start: When = None,
        end: When = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        return self._none("endpoint_intervals")

    def counter_intervals(
        self,
        start: When = None,
        end: When = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
    ) -> pd.DataFrame:
        return self._none("counter_intervals")

    def targets(self) -> list[str]:
        return ["default"]

    def extent(self, target: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        return pd.Timestamp(at(0)), pd.Timestamp(at(9))


def test_store_and_memo_are_readers(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
        store.record_scrape(make_scrape(0, {"/api/agents": (1, 2.0, 0.0)}))
        assert isinstance(store, StoreReader)
        memoized = memo(store)
        assert isinstance(memoized, MemoStore) and isinstance(memoized, StoreReader)
        assert memoized.targets() == ["default"]
        memoized.close()


def test_not_a_reader() -> None:
    assert not isinstance(object(), StoreReader)

    class HealthOnly:
        def health(self, start: datetime | None = None) -> pd.DataFrame:
            return pd.DataFrame()

    assert not isinstance(HealthOnly(), StoreReader)


def test_analysis_answers_from_a_fake_reader() -> None:
    fake = FakeReader()
    assert isinstance(fake, StoreReader)
    for reader in (fake, memo(fake)):
        got = analysis.availability(reader, T0, T0 + timedelta(minutes=10))
        assert (got.observations, got.ok, got.degraded, got.no_answer) == (10, 8, 1, 1)
        assert got.availability == 0.8
    assert fake.calls == ["health", "health"]
