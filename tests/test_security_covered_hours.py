"""`security.auth.covered_hours`: the UTC hours with at least one answered scrape, read
from the scrape rows (`Store.answered_hours`), equal to a hand count of the scrapes
written and to the hours `counter_intervals(bucket="hour")` says had more scrapes than
failures (the previous rule), per target and for all targets, both backends."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lsops_lib.security.auth import covered_hours
from lsops_lib.store import Store
from tests.fixtures.store import at, make_scrape

# minute -> answered? for target "a" (hours 0..4 after T0): hour 1 only failures, hour 3
# nothing at all; "b" answers in hour 3 only
A_MINUTES = {5: True, 50: False, 61: False, 62: False, 119: False, 125: True, 239: False, 245: True}
B_MINUTES = {190: True, 200: False}


class _CountersOnly:
    """A store offering only `counter_intervals` (the rule covered_hours had before)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def counter_intervals(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return self._store.counter_intervals(*args, **kwargs)


def _hours(minutes: list[int]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sorted({pd.Timestamp(at(m)).floor("h") for m in minutes}), name="hour")


def test_covered_hours_are_the_answered_hours(store: Store) -> None:
    for minutes, target in ((A_MINUTES, "a"), (B_MINUTES, "b")):
        for m, answered in minutes.items():
            endpoints = {"/api/x": (m + 1, 10.0, 0.0)} if answered else None
            store.record_scrape(make_scrape(m, endpoints, target=target))
    start, end = at(0), at(300)
    want = {
        "a": _hours([m for m, ok in A_MINUTES.items() if ok]),  # hours 0, 2, 4
        "b": _hours([m for m, ok in B_MINUTES.items() if ok]),  # hour 3
        None: _hours([m for d in (A_MINUTES, B_MINUTES) for m, ok in d.items() if ok]),
    }
    assert len(want["a"]) == 3 and len(want[None]) == 4
    for target, hours in want.items():
        got = covered_hours(store, start, end, target)
        assert list(got) == list(hours), target
        pd.testing.assert_index_equal(got, covered_hours(_CountersOnly(store), start, end, target))
    # a window without an answered scrape: no hour, as the counters say
    empty = covered_hours(store, at(50), at(119), "a")
    assert len(empty) == 0
    pd.testing.assert_index_equal(empty, covered_hours(_CountersOnly(store), at(50), at(119), "a"))
