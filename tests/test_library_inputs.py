"""The library's calls answer a user's mistake with a ParameterError (lsops_lib.exceptions):
one line naming the parameter and what is allowed, never a pandas or builtins exception
nor a silent empty answer. Where lsops raised ValueError before, the error is a ValueError
too (code catching it goes on working). ISO strings for start and end read as the
datetimes they name. A window reaching into the future has its gaps end now."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lsops_lib import analysis, db
from lsops_lib.config import Thresholds
from lsops_lib.db import embeddings, forecast, maintenance, queries
from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History
from tests.fixtures.pg import Planted

END = T0 + timedelta(hours=4)


@dataclass(frozen=True)
class Collected:
    store: Store
    end: datetime  # the last scrape's instant + 5 min


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collected]:
    """Four hours of 5-minute scrapes with traffic, cache, a DEGRADED stretch and a restart."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('inputs') / 'store.sqlite'}")
    h = History(store)
    for i in range(48):
        h.cache(8, 2).traffic("/copilot/chat", 100, 50.0 if i < 24 else 900.0, i // 40)
        h.traffic("/projects/:id", 40, 20.0)
        if i == 30:
            h.restart()
        h.scrape("DEGRADED" if 10 <= i < 14 else "OK")
    try:
        yield Collected(store, h.t)
    finally:
        store.close()


def one_line(info: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    for word in words:
        assert word in message, (word, message)
    return message


# --- buckets ------------------------------------------------------------------------------------

BUCKET_CALLS: dict[str, Callable[[Store, str], Any]] = {
    "Store.endpoint_intervals": lambda s, b: s.endpoint_intervals(T0, END, bucket=b),
    "Store.counter_intervals": lambda s, b: s.counter_intervals(T0, END, bucket=b),
    "analysis.cache_stats": lambda s, b: analysis.cache_stats(s, T0, END, bucket=b),
    "analysis.traffic_series": lambda s, b: analysis.traffic_series(s, T0, END, bucket=b),
    "analysis.endpoint_series": lambda s, b: analysis.endpoint_series(s, T0, END, bucket=b),
    "analysis.incidents": lambda s, b: analysis.incidents(s, T0, END, bucket=b),
}


@pytest.mark.parametrize("call", list(BUCKET_CALLS))
@pytest.mark.parametrize("bucket", ["week", "1h", "Hour", ""])
def test_an_unknown_bucket_is_a_parameter_error(
    collected: Collected, call: str, bucket: str
) -> None:
    with pytest.raises(ParameterError) as info:
        BUCKET_CALLS[call](collected.store, bucket)
    one_line(info, "bucket", repr(bucket), "minute, hour, day, scrape")
    assert isinstance(info.value, ValueError)  # what these calls raised before


# --- instants -----------------------------------------------------------------------------------

STRING_CALLS: dict[str, Callable[[Store, Any, Any], Any]] = {
    "Store.endpoint_intervals": lambda s, a, b: s.endpoint_intervals(a, b),
    "Store.health": lambda s, a, b: s.health(a, b),
    "Store.scrapes": lambda s, a, b: s.scrapes(a, b),
    "analysis.endpoint_summary": lambda s, a, b: analysis.endpoint_summary(s, a, b),
    "analysis.traffic_series": lambda s, a, b: analysis.traffic_series(s, a, b, bucket="hour"),
    "analysis.incidents": lambda s, a, b: analysis.incidents(s, a, b),
    "analysis.collection_gaps": lambda s, a, b: analysis.collection_gaps(s, a, b),
    "analysis.availability": lambda s, a, b: analysis.availability(s, a, b).as_dict(),
    "analysis.postmortem": lambda s, a, b: analysis.postmortem(s, a, b).endpoints,
}


@pytest.mark.parametrize("call", list(STRING_CALLS))
def test_iso_strings_read_as_the_instants_they_name(collected: Collected, call: str) -> None:
    a, b = T0 + timedelta(hours=1), T0 + timedelta(hours=3, minutes=30)
    want = STRING_CALLS[call](collected.store, a, b)
    for first, last in (
        ("2026-10-01T01:00:00Z", "2026-10-01T03:30:00Z"),
        ("2026-10-01 01:00", "2026-10-01T03:30"),  # no offset: UTC
        ("2026-10-01T03:00:00+02:00", "2026-10-01T05:30:00+02:00"),
    ):
        got = STRING_CALLS[call](collected.store, first, last)
        if isinstance(want, pd.DataFrame):
            assert len(want) > 0 or call == "analysis.collection_gaps", call  # no gap
            pd.testing.assert_frame_equal(got, want)
        else:
            assert got == want


@pytest.mark.parametrize("call", list(STRING_CALLS))
@pytest.mark.parametrize("bad", ["x", "2026-13-01", "", 12345, ["2026-10-01"]])
def test_a_start_that_is_no_instant_is_a_parameter_error(
    collected: Collected, call: str, bad: Any
) -> None:
    with pytest.raises(ParameterError) as info:
        STRING_CALLS[call](collected.store, bad, END)
    one_line(info, "start", "not a time")
    with pytest.raises(ParameterError) as info:
        STRING_CALLS[call](collected.store, T0, bad)
    one_line(info, "end", "not a time")


INVERTED: dict[str, Callable[[Store, datetime, datetime], Any]] = {
    "availability": lambda s, a, b: analysis.availability(s, a, b),
    "availability_from_health": lambda s, a, b: analysis.availability_from_health(
        s.health(None, None), a, b
    ),
    "collection_gaps": lambda s, a, b: analysis.collection_gaps(s, a, b),
    "postmortem": lambda s, a, b: analysis.postmortem(s, a, b),
    "incidents": lambda s, a, b: analysis.incidents(s, a, b),
    "endpoint_summary": lambda s, a, b: analysis.endpoint_summary(s, a, b),
    "traffic_series": lambda s, a, b: analysis.traffic_series(s, a, b),
    "cache_stats": lambda s, a, b: analysis.cache_stats(s, a, b),
    "postmortem_window": lambda s, a, b: analysis.postmortem_window(s, start=a, end=b),
    "incident_window": lambda s, a, b: analysis.incident_window(a, b),
    # the store's own reads (they answered an inverted window with nothing)
    "Store.endpoint_intervals": lambda s, a, b: s.endpoint_intervals(a, b, bucket="hour"),
    "Store.counter_intervals": lambda s, a, b: s.counter_intervals(a, b, bucket="hour"),
    "Store.scrapes": lambda s, a, b: s.scrapes(a, b),
    "Store.health": lambda s, a, b: s.health(a, b),
}


@pytest.mark.parametrize("call", list(INVERTED))
def test_a_start_after_the_end_is_a_parameter_error(collected: Collected, call: str) -> None:
    """The QA's cases: availability, postmortem answered an inverted window with empty or
    negative figures; incident_window(03:15, 02:55) returned a window."""
    late, early = T0 + timedelta(hours=3, minutes=15), T0 + timedelta(hours=2, minutes=55)
    with pytest.raises(ParameterError) as info:
        INVERTED[call](collected.store, late, early)
    one_line(info, "start 2026-10-01T03:15:00Z", "after end 2026-10-01T02:55:00Z")
    INVERTED[call](collected.store, early, late)  # the same window the right way round


def test_incident_window_of_no_instants(collected: Collected) -> None:
    with pytest.raises(ParameterError) as info:
        analysis.incident_window("x", "y")
    one_line(info, "start", "'x'")
    margin = timedelta(minutes=Thresholds().incident_margin_minutes)
    start, end = analysis.incident_window("2026-10-01T02:55Z", "2026-10-01T02:55Z")
    at = pd.Timestamp("2026-10-01T02:55Z")
    assert (start, end) == (at - margin, at + margin)


# --- other parameters ---------------------------------------------------------------------------


def test_an_slo_in_percent_is_a_parameter_error() -> None:
    for slo in (99.9, 1, 0, -0.5):
        with pytest.raises(ParameterError) as info:
            analysis.error_budget(slo, 10, 10)
        one_line(info, "slo", "between 0 and 1")
        assert isinstance(info.value, ValueError)  # as before
    assert analysis.error_budget(0.999, 10, 10)["met"] is True


def test_unknown_scrape_columns_are_a_parameter_error(collected: Collected) -> None:
    for columns in (["nope"], ["ts", "ts"], []):
        with pytest.raises(ParameterError) as info:
            collected.store.scrapes(T0, END, columns=columns)
        one_line(info, "columns", "each once, of: ts, target, ok")
        assert isinstance(info.value, ValueError)  # as before
    assert list(collected.store.scrapes(T0, END, columns="rss").columns) == ["rss"]


def test_unknown_incident_kinds_are_a_parameter_error(collected: Collected) -> None:
    with pytest.raises(ParameterError) as info:
        analysis.incidents(collected.store, T0, END, kinds=("bogus",))
    one_line(info, "kinds", "'bogus'", "no_answer", "memory_climb")
    every = analysis.incidents(collected.store, T0, END)
    restarts = analysis.incidents(collected.store, T0, END, kinds="restart")  # one kind
    assert len(restarts) == 1 and set(every["kind"]) >= {"restart", "health_degraded"}
    pd.testing.assert_frame_equal(
        restarts, every[every["kind"] == "restart"].reset_index(drop=True)
    )


def test_a_negative_size_limit_is_a_parameter_error() -> None:
    for limit in (-5, "ten GB", None):  # 0 is no limit
        with pytest.raises(ParameterError) as info:
            forecast.capacity_forecast(None, limit)
        one_line(info, "limit_bytes", "expected")
    with pytest.raises(ParameterError) as info:
        forecast.capacity_forecast(None, 10**9, database_bytes=-1)
    one_line(info, "database_bytes", "0 or more")
    assert forecast.capacity_forecast(None, 10**9).status == "not_enough_history"


# --- a window reaching into the future ----------------------------------------------------------


def test_collection_gaps_end_now_as_availability_does(collected: Collected) -> None:
    """The QA's case: a window ending two days ahead reported a gap up to its end, while
    availability ends it now."""
    start = collected.end - timedelta(hours=2)
    before = pd.Timestamp.now(tz="UTC")
    gaps = analysis.collection_gaps(collected.store, start, before + timedelta(days=2))
    after = pd.Timestamp.now(tz="UTC")
    assert len(gaps) == 1
    last = collected.store.extent()[1]
    assert gaps["start"].iloc[0] == last and before <= gaps["end"].iloc[0] <= after
    assert gaps["duration_s"].iloc[0] == (gaps["end"].iloc[0] - last).total_seconds()


# --- the inspected PostgreSQL -------------------------------------------------------------------

DB_BAD: dict[str, tuple[Callable[[db.Inspector], Any], str]] = {
    "query_stats order_by": (lambda i: queries.query_stats(i, order_by="bogus"), "order_by"),
    "query_stats limit": (lambda i: queries.query_stats(i, limit=-1), "limit"),
    "top_by_total": (lambda i: queries.top_by_total(i, -1), "n"),
    "top_by_mean": (lambda i: queries.top_by_mean(i, -2), "n"),
    "latest_failures": (lambda i: embeddings.latest_failures(i, -1), "n"),
    "missing_entities": (lambda i: embeddings.missing_entities(i, -1), "n"),
    "table_wraparound": (lambda i: maintenance.table_wraparound(i, -1), "n"),
    "table_wraparound 2.5": (lambda i: maintenance.table_wraparound(i, 2.5), "n"),
}


@pytest.mark.postgres
def test_db_parameters_are_checked_before_postgresql_sees_them(longsang_db: Planted) -> None:
    """The QA's case: a negative n reached PostgreSQL as "LIMIT must not be negative"."""
    with db.connect(longsang_db.password_url) as insp:
        for what, (call, name) in DB_BAD.items():
            with pytest.raises(ParameterError) as info:
                call(insp)
            message = one_line(info, f"{name}: ")
            assert "LIMIT" not in message, what
        assert len(maintenance.table_wraparound(insp, 2)) == 2
    with pytest.raises(ParameterError) as info:
        db.optimization_report(url=longsang_db.password_url, top_n=-3)
    one_line(info, "top_n", "0 or more")


# --- words ----------------------------------------------------------------------------------


def test_the_review_counts_its_observations_with_separators(tmp_path: Path) -> None:
    """The monthly review's availability and latency details write counts as fmt does
    (`2,872 OK ... of 2,880 observations`), in the data itself."""
    with Store(f"sqlite:///{tmp_path / 'month.sqlite'}") as store:
        h = History(store, step=timedelta(minutes=1))
        for i in range(1100):
            h.traffic("/copilot/chat", 10, 40.0).scrape("DEGRADED" if i < 3 else "OK")
        for _ in range(2):
            h.scrape(answer=False)
        review = analysis.monthly_review(store, "2026-10")
    detail = dict(zip(review.targets["key"], review.targets["detail"], strict=True))
    assert detail["availability"].startswith(
        "1,097 OK, 3 DEGRADED, 0 ERROR, 2 no answer of 1,102 observations; coverage "
    )
    assert detail["latency"].startswith("1,100 of 1,100 slices; ")
