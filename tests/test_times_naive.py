"""A naive datetime is UTC everywhere in lsops, whatever the machine's time zone: the
store read it as local time (datetime.timestamp()), while the analysis labelled it UTC,
so an analyst at UTC+7 asking for a fully collected day saw a 7-hour gap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from lsops_lib.times import to_ms
from tests.fixtures.store import T0, make_scrape


@pytest.fixture
def hanoi(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process in UTC+7 (no DST), as the LongSang hosts are."""
    monkeypatch.setenv("TZ", "Asia/Ho_Chi_Minh")
    time.tzset()
    assert time.timezone == -7 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_naive_instant_is_utc_not_local_time(hanoi: None) -> None:
    assert to_ms(datetime(2026, 11, 25)) == 1_795_564_800_000  # date -u -d 2026-11-25 +%s
    assert to_ms(pd.Timestamp("2026-11-25")) == 1_795_564_800_000
    assert to_ms("2026-11-25T00:00") == 1_795_564_800_000
    assert to_ms(datetime(2026, 11, 25, 7, tzinfo=UTC) - timedelta(hours=7)) == 1_795_564_800_000
    with pytest.raises(ParameterError, match="not a time"):
        to_ms("yesterday")


def test_a_store_read_with_naive_bounds_is_the_utc_read(store: Store, hanoi: None) -> None:
    for minute in range(0, 8 * 60, 30):  # 8 hours of scrapes from T0 (UTC midnight)
        store.record_scrape(make_scrape(minute, {"/copilot/chat": (10 * (minute + 30), 40.0, 0.0)}))
    aware = store.endpoint_intervals(T0, T0 + timedelta(hours=4), bucket="hour")
    naive = store.endpoint_intervals(
        T0.replace(tzinfo=None), datetime(2026, 10, 1, 4), bucket="hour"
    )
    assert len(aware) == 4 and aware["requests"].sum() > 0
    pd.testing.assert_frame_equal(naive, aware)
