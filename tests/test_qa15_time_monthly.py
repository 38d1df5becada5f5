"""QA 15 (time): the review of the earliest month lsops handles (1900-01) runs, with no
month to compare with (1899-12 is no month a user can give), and says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lsops_lib import analysis as A
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.monthly import _month

pytestmark = pytest.mark.timeout(120)


def test_the_earliest_month_is_reviewed_without_a_previous_month(sqlite_store: Store) -> None:
    """September's figures of tests/fixtures/monthly.py, planted in January 1900: 24 hourly
    intervals of /a 100 requests at 20 ms with 1 error and /b 50 at 100 ms, cache 80 / 20:
    requests 3,600, errors 24, mean 46.667 ms, cache 80 %."""
    _month(
        sqlite_store,
        datetime(1900, 1, 10, tzinfo=UTC),
        24,
        {"/a": (100, 20.0, 1), "/b": (50, 100.0, 0)},
        (80, 20),
    )
    review = A.monthly_review(sqlite_store, "1900-01", Thresholds())
    assert review.has_data and not review.previous_has_data
    assert review.notes[0] == (
        "1900-01 is the earliest month lsops handles: no previous month to compare with"
    )
    ch = review.changes.set_index("metric")
    assert ch.loc["requests", "current"] == 3600 and ch.loc["errors", "current"] == 24
    assert ch.loc["mean_ms", "current"] == pytest.approx(168000 / 3600)
    assert ch.loc["cache_hit_ratio", "current"] == pytest.approx(0.8)
    assert ch["previous"].isna().all() and not ch["notable"].any()
    summary = review.summary()
    assert all(v != v for v in summary["previous_totals"].values())  # unknown, never 0
    eps = review.endpoints.set_index("endpoint")
    assert eps["requests"].to_dict() == {"/a": 2400, "/b": 1200}
    assert eps["new"].isna().all()  # nothing to compare with: no endpoint is "new"


def test_the_earliest_months_header_and_changes_say_there_is_nothing_before(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsops_lib import present
    from lsops_lib.config import load_settings

    _month(sqlite_store, datetime(1900, 1, 10, tzinfo=UTC), 24, {"/a": (100, 20.0, 1)}, (80, 20))
    shown: list[str] = []
    monkeypatch.setattr(present.display, "show_html", shown.append)
    monkeypatch.setattr(present.monthly, "show_html", shown.append, raising=False)
    present.begin()
    source = present.StoreSource(store=sqlite_store, url="sqlite:///m", available=True)
    present.show_review_header("1900-01", source, load_settings(None, env={}))
    assert present.PROBLEMS == [], present.PROBLEMS  # the Header section did not fail
    assert "none (the earliest month lsops handles)" in "".join(shown)
    review = A.monthly_review(sqlite_store, "1900-01", Thresholds())
    assert present.monthly.main_changes(review) == [
        "1900-01 is the earliest month lsops handles: nothing to compare with"
    ]
