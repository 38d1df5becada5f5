"""QA 15, what the review's charts say: no finding from an argument the caller left out
(climbs, the month's mean latency), the reason an empty chart gives in its alt text, on
frames of real reviews (tests/fixtures/monthly.py, History) and expectations by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lsops_lib import analysis as A  # noqa: E402
from lsops_lib import plots  # noqa: E402
from lsops_lib.config import Thresholds  # noqa: E402
from lsops_lib.store import Store  # noqa: E402
from tests.fixtures.analysis import History, MiB  # noqa: E402
from tests.fixtures.monthly import two_months  # noqa: E402

TH = Thresholds()
HOUR = timedelta(hours=1)
OCT5 = datetime(2026, 10, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


def _title(ax: Any) -> str:
    return ax.get_title("left") or ax.get_title()


def _two_days(store: Store) -> A.MonthlyReview:
    """October 5: 24 hourly intervals of /a 100 requests at 20 ms; October 6: 24 of /a 10
    requests at 200 ms; RSS climbing 2 MiB per scrape from 100 MiB (49 scrapes).

    By hand: the month's mean latency (2,400 x 20 + 240 x 200) / 2,640 = 36.36 ms (the
    days' means unweighted would be 110 ms); the RSS peak 100 + 48 x 2 = 196 MiB, 38 % of
    512 MiB."""
    h = History(store, start=OCT5, step=HOUR)
    h.scrape(rss=100 * MiB)
    for k in range(1, 49):
        h.traffic("/a", 100 if k <= 24 else 10, 20.0 if k <= 24 else 200.0)
        h.scrape(rss=(100 + 2 * k) * MiB)
    return A.monthly_review(store, "2026-10", TH)


def test_the_memory_chart_says_nothing_of_climbs_it_was_not_given(sqlite_store: Store) -> None:
    review = _two_days(sqlite_store)
    frame = review.memory.frame
    assert frame["rss"].is_monotonic_increasing  # the curve climbs
    ax = plots.memory_usage(frame, TH)
    assert _title(ax) == "Memory peaked at 196.0 MiB (38 % of 512.0 MiB)"
    # told there is no climb (an empty frame of them), it says so; told of one, it shades it
    ax = plots.memory_usage(frame, TH, climbs=pd.DataFrame(columns=["start", "end"]))
    assert _title(ax).endswith("; no steady climb between restarts")
    climb = pd.DataFrame({"start": [frame["ts"].iloc[0]], "end": [frame["ts"].iloc[-1]]})
    ax = plots.memory_usage(frame, TH, climbs=climb)
    assert _title(ax).endswith("; a steady climb between restarts: possible leak")


def test_the_latency_chart_weighs_the_days_by_their_requests_without_mean_ms(
    sqlite_store: Store,
) -> None:
    review = _two_days(sqlite_store)
    daily = review.daily
    assert review.latency["mean_ms"] == pytest.approx(96_000 / 2_640)  # the analysis agrees
    fig = plots.latency_days(daily, TH)
    assert _title(fig.axes[1]) == "Mean latency from counter deltas: 36 ms over the 31 days shown"
    # given, the month's figure is the caller's (the notebook passes review.latency)
    fig = plots.latency_days(daily, TH, mean_ms=review.latency["mean_ms"])
    assert _title(fig.axes[1]) == "Mean latency from counter deltas: 36 ms over the month"
    # a frame without what it takes, or without a day of traffic: no mean stated, no dash
    for frame in (daily.drop(columns=["requests"]), daily.iloc[0:0], daily.tail(3)):
        fig = plots.latency_days(frame, TH)
        assert _title(fig.axes[1]) == "Mean latency from counter deltas", frame


def test_an_empty_chart_says_why_in_its_alt_text(sqlite_store: Store) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    ax = plots.endpoint_errors(review.endpoints.iloc[0:0])
    assert plots.describe(ax.figure) == "Chart: Endpoints; no request counted"
    ax = plots.memory_usage(review.memory.frame.iloc[0:0], TH)
    assert plots.describe(ax.figure) == "Chart: Memory; no memory reading"
    # a chart that draws: its titles only, never the labels written on its bars
    tables = pd.DataFrame(
        {
            "schema": ["public", "public"],
            "table": ["documents", "users"],
            "table_bytes": [6 * MiB, 1 * MiB],
            "toast_bytes": [1 * MiB, 0],
            "index_bytes": [1 * MiB, 0],
            "total_bytes": [8 * MiB, 1 * MiB],
        }
    )
    ax = plots.top_tables(tables, database_bytes=10 * MiB)
    assert [t.get_text() for t in ax.texts] == [" 1.0 MiB", " 8.0 MiB"]
    assert plots.describe(ax.figure) == f"Chart: {_title(ax)}"
