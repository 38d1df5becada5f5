"""A store holding two APIs, read by the library without a target (as README's example
does): the review mixed their scrapes, and every answer of the other API read as a new
process (a memory segment of one point each: a leak could never be found, thousands of
"segments", 50-100x the time). The analyses that follow one process refuse to mix them and
ask for a target; with one named, each API is its own."""

from __future__ import annotations

import pytest

from lsops_lib import analysis as A
from lsops_lib.config import Thresholds
from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from tests.fixtures.store import START, make_scrape


def _two_apis(store: Store) -> None:
    for minute in range(0, 24 * 60, 5):  # a day of 5-minute scrapes of each, interleaved
        for target, started in (("prod", START), ("staging", START + 3_600_000)):
            store.record_scrape(
                make_scrape(
                    minute, {"/a": (minute + 1, 10.0, 0.0)}, target=target, uptime_start=started
                )
            )


def test_the_reviews_of_a_two_api_store_name_their_target(sqlite_store: Store) -> None:
    _two_apis(sqlite_store)
    th = Thresholds()
    for call in (
        lambda t: A.monthly_review(sqlite_store, "2026-10", th, target=t),
        lambda t: A.checklist(sqlite_store, "2026-10-01T00:00Z", "2026-10-02T00:00Z", th, target=t),
        lambda t: A.postmortem(
            sqlite_store, "2026-10-01T06:00Z", "2026-10-01T07:00Z", th, target=t
        ),
    ):
        with pytest.raises(ParameterError, match=r"several targets \('prod', 'staging'\)"):
            call(None)
    review = A.monthly_review(sqlite_store, "2026-10", th, target="prod")
    segments = review.memory.segments
    assert len(segments) == 1 and int(segments["points"].iloc[0]) == 24 * 12, segments
    assert review.memory.restarts.empty or len(review.memory.restarts) == 0


def test_one_api_needs_no_target(sqlite_store: Store) -> None:
    for minute in range(0, 60, 5):
        sqlite_store.record_scrape(make_scrape(minute, {"/a": (minute + 1, 10.0, 0.0)}))
    review = A.monthly_review(sqlite_store, "2026-10", Thresholds())
    assert len(review.memory.segments) == 1
