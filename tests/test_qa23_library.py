"""QA 23 (the library in an analyst's session): a store of two targets is never mixed in a
memory trend; the postmortem windows name the target they were asked for; NaT, dates and
numpy instants as window bounds; error_budget's objective and period; parameters that
select nothing sensible; a month typed with spaces; a URL or a dict where a Store or
Thresholds belongs; and empty answers with the columns and types of full ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lsops_lib import analysis
from lsops_lib.config import Thresholds
from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from lsops_lib.times import to_ms
from tests.fixtures.analysis import History, MiB
from tests.fixtures.store import START, T0, at, make_scrape
from tests.test_library_inputs import one_line

TH = Thresholds()
STEADY = {"/copilot/chat": (100, 50.0, 0), "/projects/:id": (40, 20.0, 0)}
SPIKE = {"/copilot/chat": (100, 900.0, 30), "/projects/:id": (40, 20.0, 0)}
END = T0 + timedelta(hours=7)  # after the last scrape of `one`


@dataclass(frozen=True)
class Stores:
    one: Store  # one target, "default"
    two: Store  # two targets, "a" and "b"
    url: str  # of `one`, with a password in it as a store URL may have


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    """`one`: 5-minute scrapes of one target from 2026-09-30 22:00 (two hours of
    September) to 2026-10-01 06:25: steady until 03:00, an hour of a slow and failing
    /copilot/chat (03:00-03:55), half an hour without an answer (04:00-04:25), a restart,
    two steady hours; the cache at 80 %, RSS rising 1 KiB a scrape. `two`: targets "a" and
    "b" answering every 5 minutes of the hour from T0, each its own process."""
    folder = tmp_path_factory.mktemp("qa23lib")
    one = Store(f"sqlite:///{folder / 'one.sqlite'}")
    two = Store(f"sqlite:///{folder / 'two.sqlite'}")
    h = History(one, start=T0 - timedelta(hours=2))
    n = 0

    def run(count: int, traffic: dict[str, tuple[int, float, int]]) -> None:
        nonlocal n
        for _ in range(count):
            h.cache(80, 20)
            for endpoint, (requests, mean, errors) in traffic.items():
                h.traffic(endpoint, requests, mean, errors)
            h.scrape(rss=100 * MiB + 1024 * n)
            n += 1

    run(24 + 36, STEADY)  # 22:00 .. 02:55
    run(12, SPIKE)  # 03:00 .. 03:55
    for _ in range(6):  # 04:00 .. 04:25
        h.scrape(answer=False)
    h.restart()
    run(24, STEADY)  # 04:30 .. 06:25
    for minute in range(0, 60, 5):
        two.record_scrape(make_scrape(minute, {"/x": (10 + minute, 5.0, 0.0)}, target="a"))
        two.record_scrape(
            make_scrape(
                minute + 1, {"/x": (20 + minute, 5.0, 0.0)}, target="b", uptime_start=START + 7
            )
        )
    try:
        yield Stores(one, two, f"sqlite://lsops:s3cret@localhost/{folder / 'one.sqlite'}")
    finally:
        one.close()
        two.close()


# --- 1. a memory trend of a store of two targets names one ---------------------------------------


def test_a_memory_trend_of_two_targets_asks_for_one(stores: Stores) -> None:
    """The QA's case: without target=, both processes' samples were interleaved (every row
    a restart, a one-point segment each). As monthly_review, checklist and postmortem do."""
    with pytest.raises(ParameterError) as info:
        analysis.memory_trend(stores.two, T0, at(60), TH)
    one_line(info, "memory trend", "several targets ('a', 'b')", "target=")
    for name in ("a", "b"):
        trend = analysis.memory_trend(stores.two, T0, at(60), TH, target=name)
        assert len(trend.frame) == 12 and not trend.frame["restart"].any()
        assert list(trend.segments["points"]) == [12]
        assert trend.peak_rss == 70_000_000.0
    # a store of one target still needs none
    assert len(analysis.memory_trend(stores.one, T0, END, TH).segments) == 2


# --- 2. the postmortem windows carry their target ------------------------------------------------

NO_ANSWER = "--start 2026-10-01T03:30:00Z --end 2026-10-01T05:00:00Z --title 'no answer 2026-10-01 04:00 UTC'"


def test_the_windows_carry_the_target_they_were_asked_for(stores: Stores) -> None:
    latest = analysis.latest_incident_window(stores.one, TH, target="default")
    assert latest is not None and latest.target == "default"
    assert latest.command == f"lsops --target default report postmortem {NO_ANSWER}"
    # with_commands names it the same way: one command for the same incident
    found = analysis.with_commands(
        analysis.incidents(stores.one, T0, END, TH, target="default"), TH, target="default"
    )
    assert latest.command in set(found["postmortem_command"])
    chosen = {
        "latest": analysis.postmortem_window(stores.one, TH, target="default"),
        "titled": analysis.postmortem_window(stores.one, TH, target="default", title="Outage"),
        "given": analysis.postmortem_window(
            stores.one, TH, start="2026-10-01T03:00Z", end="2026-10-01T05:00Z", target="default"
        ),
        "start": analysis.postmortem_window(
            stores.one, TH, start="2026-10-01T03:00Z", target="default"
        ),
        "end": analysis.postmortem_window(
            stores.one, TH, end="2026-10-01T05:00Z", target="default"
        ),
        "nothing": analysis.postmortem_window(
            stores.one, TH, target="default", last=T0 - timedelta(hours=1)
        ),
    }
    for how, window in chosen.items():
        assert window.target == "default", how
        assert window.command.startswith("lsops --target default report postmortem "), how
    assert chosen["latest"].command == latest.command
    assert chosen["titled"].command == (
        "lsops --target default report postmortem --start 2026-10-01T03:30:00Z "
        "--end 2026-10-01T05:00:00Z --title Outage"
    )
    # asked for no target: none named, as before
    assert (
        analysis.postmortem_window(stores.one, TH).command == f"lsops report postmortem {NO_ANSWER}"
    )


# --- 3. NaT, dates and numpy instants as bounds ---------------------------------------------------

NAT_CALLS: dict[str, Callable[[Store, Any, Any], Any]] = {
    "analysis.endpoint_summary": lambda s, a, b: analysis.endpoint_summary(s, a, b),
    "analysis.incidents": lambda s, a, b: analysis.incidents(s, a, b),
    "analysis.memory_trend": lambda s, a, b: analysis.memory_trend(s, a, b),
    "analysis.availability": lambda s, a, b: analysis.availability(s, a, b),
    "analysis.incident_window": lambda s, a, b: analysis.incident_window(a, b),
    "analysis.postmortem_window": lambda s, a, b: analysis.postmortem_window(s, start=a, end=b),
    "Store.scrapes": lambda s, a, b: s.scrapes(a, b),
    "Store.health": lambda s, a, b: s.health(a, b),
    "Store.endpoint_intervals": lambda s, a, b: s.endpoint_intervals(a, b),
    "Store.counter_intervals": lambda s, a, b: s.counter_intervals(a, b),
    "Store.resets": lambda s, a, b: s.resets(a, b),
}


@pytest.mark.parametrize("call", list(NAT_CALLS))
@pytest.mark.parametrize("nat", [pd.NaT, np.datetime64("NaT")], ids=["pd.NaT", "np.NaT"])
def test_a_nat_bound_is_a_parameter_error(stores: Stores, call: str, nat: Any) -> None:
    """The QA's cases: endpoint_summary read from the beginning, incident_window returned
    (NaT, ...), Store.scrapes raised "NaTType does not support timestamp"."""
    with pytest.raises(ParameterError) as info:
        NAT_CALLS[call](stores.one, nat, "2026-10-01T03:00Z")
    one_line(info, "start: not a time: 'NaT'")
    with pytest.raises(ParameterError) as info:
        NAT_CALLS[call](stores.one, "2026-10-01T01:00Z", nat)
    one_line(info, "end: not a time: 'NaT'")


def test_a_nat_bound_alone_is_a_parameter_error(stores: Stores) -> None:
    """One bound of the postmortem's window, the end of its history, a baseline's bounds."""
    for which in ("start", "end", "last"):
        with pytest.raises(ParameterError) as info:
            analysis.postmortem_window(stores.one, TH, **{which: pd.NaT})
        one_line(info, f"{which}: not a time: 'NaT'")
    with pytest.raises(ParameterError) as info:
        analysis.latest_incident_window(stores.one, TH, last=pd.NaT)
    one_line(info, "last: not a time: 'NaT'")
    for baseline in ((pd.NaT, T0), (T0 - timedelta(hours=1), pd.NaT)):
        with pytest.raises(ParameterError) as info:
            analysis.incidents(stores.one, T0, END, TH, baseline=baseline)
        one_line(info, "baseline: ", "not a time: 'NaT'")
        with pytest.raises(ParameterError) as info:
            analysis.postmortem(stores.one, T0, END, TH, baseline=baseline)
        one_line(info, "baseline: ", "not a time: 'NaT'")
    with pytest.raises(ParameterError) as info:
        to_ms(pd.NaT)
    one_line(info, "not a time: 'NaT'")


BOUNDS = {
    "date": (date(2026, 10, 1), date(2026, 10, 2)),
    "numpy day": (np.datetime64("2026-10-01"), np.datetime64("2026-10-02")),
    "numpy ns": (np.datetime64("2026-10-01T00:00:00.000000000"), np.datetime64("2026-10-02", "ns")),
    "Timestamp": (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-02")),
}
READS: dict[str, Callable[[Store, Any, Any], pd.DataFrame]] = {
    "Store.scrapes": lambda s, a, b: s.scrapes(a, b, columns=["ts"]),
    "Store.health": lambda s, a, b: s.health(a, b)[["ts"]],
    "Store.endpoint_intervals": lambda s, a, b: s.endpoint_intervals(a, b, bucket="day"),
    "Store.counter_intervals": lambda s, a, b: s.counter_intervals(a, b, bucket="day"),
    "analysis.endpoint_summary": lambda s, a, b: analysis.endpoint_summary(s, a, b),
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("bounds", list(BOUNDS))
def test_dates_and_numpy_instants_read_as_their_midnight_utc(
    stores: Stores, read: str, bounds: str
) -> None:
    """The QA's case: the store's reads refused a date or a numpy datetime64 ("not a time:
    '2026-10-01'") that the analysis took; a date is its midnight UTC."""
    got = READS[read](stores.one, *BOUNDS[bounds])
    want = READS[read](stores.one, "2026-10-01T00:00Z", "2026-10-02T00:00Z")
    pd.testing.assert_frame_equal(got, want)
    if read in ("Store.scrapes", "Store.health"):  # 00:00 .. 06:25, five minutes apart
        assert len(got) == 78
        assert got["ts"].iloc[0] == pd.Timestamp("2026-10-01T00:00Z")
        assert got["ts"].iloc[-1] == pd.Timestamp("2026-10-01T06:25Z")
    if read == "Store.endpoint_intervals":  # the day's two endpoints (the day of 00:00)
        assert sorted(got["endpoint"]) == ["/copilot/chat", "/projects/:id"]


def test_other_values_are_still_no_instant(stores: Stores) -> None:
    for bad in (12345, 1.5, True, ["2026-10-01"], np.array(["2026-10-01"], dtype="datetime64[D]")):
        with pytest.raises(ParameterError) as info:
            stores.one.scrapes(bad, END)
        one_line(info, "start: not a time")


# --- 4. error_budget ------------------------------------------------------------------------------


def test_error_budget_checks_its_period() -> None:
    """The QA's cases: period=-5 gave a negative budget and a positive 'left' though 50x
    overspent; period='30d' raised a raw ValueError."""
    for bad in (-5, 0, timedelta(0), timedelta(days=-1), "soon", "-5d", float("nan"), True):
        with pytest.raises(ParameterError) as info:
            analysis.error_budget(0.99, 1, 2, period=bad)
        one_line(info, "period")
        assert isinstance(info.value, ValueError)  # as the slo's and the events' errors
    days30 = analysis.error_budget(0.99, 1, 2, period="30d")
    assert days30["period_s"] == 2_592_000.0
    assert days30["budget_s"] == pytest.approx(25_920.0)
    assert days30["spent_s"] == pytest.approx(1_296_000.0)  # half the time: 50 x the budget
    assert days30["left_s"] == pytest.approx(25_920.0 - 1_296_000.0)
    assert analysis.error_budget(0.99, 1, 2, period=timedelta(days=30))["period_s"] == 2_592_000.0
    assert analysis.error_budget(0.99, 1, 2, period=2_592_000)["period_s"] == 2_592_000.0
    assert analysis.error_budget(0.99, 1, 2)["budget_s"] is None  # no period: no time figures


def test_error_budget_reads_its_objective_as_a_number() -> None:
    """The QA's case: slo='0.99' raised a raw TypeError ('<' between int and str)."""
    budget = analysis.error_budget("0.99", 1, 2)
    assert budget["slo"] == 0.99 and budget["spent_share"] == pytest.approx(50.0)
    for bad in ("high", "99.9", None, float("nan"), True, [0.99]):
        with pytest.raises(ParameterError) as info:
            analysis.error_budget(bad, 1, 2)
        one_line(info, "slo", "between 0 and 1")
        assert isinstance(info.value, ValueError)


# --- 5. parameters that select nothing sensible ---------------------------------------------------

BAD_PARAMETERS: dict[str, tuple[Callable[[Stores], Any], str, str]] = {
    "incidents latency_factor 0": (
        lambda s: analysis.incidents(s.one, T0, END, TH, latency_factor=0),
        "latency_factor",
        "1 or more",
    ),
    "incidents latency_factor -1": (
        lambda s: analysis.incidents(s.one, T0, END, TH, latency_factor=-1),
        "latency_factor",
        "1 or more",
    ),
    "incidents latency_factor text": (
        lambda s: analysis.incidents(s.one, T0, END, TH, latency_factor="x2"),
        "latency_factor",
        "'x2'",
    ),
    "endpoint_incidents latency_factor 0.5": (
        lambda s: analysis.endpoint_incidents(_series(s), TH, latency_factor=0.5),
        "latency_factor",
        "1 or more",
    ),
    "endpoint_incidents bucket week": (
        lambda s: analysis.endpoint_incidents(_series(s), TH, bucket="week"),
        "bucket",
        "'week' (expected one of minute, hour, day, scrape)",
    ),
    "endpoint_incidents bucket of no rows": (
        lambda s: analysis.endpoint_incidents(_series(s).iloc[0:0], TH, bucket="week"),
        "bucket",
        "'week'",
    ),
    "endpoint_incidents min_requests": (
        lambda s: analysis.endpoint_incidents(_series(s), TH, min_requests=-1),
        "min_requests",
        "0 or more",
    ),
    "memory_trend window_hours": (
        lambda s: analysis.memory_trend(s.one, T0, END, TH, window_hours=0),
        "window_hours",
        "more than 0",
    ),
    "memory_trend min_hours": (
        lambda s: analysis.memory_trend(s.one, T0, END, TH, min_hours=-1),
        "min_hours",
        "0 or more",
    ),
    "memory_trend min_r2": (
        lambda s: analysis.memory_trend(s.one, T0, END, TH, min_r2=2),
        "min_r2",
        "from 0 to 1",
    ),
    "latency_slices bucket_ms -1": (
        lambda s: analysis.latency_slices(s.one, T0, END, bucket_ms=-1),
        "bucket_ms",
        "0 or more",
    ),
    "latency_slices bucket_ms 1.5": (
        lambda s: analysis.latency_slices(s.one, T0, END, bucket_ms=1.5),
        "bucket_ms",
        "0 or more",
    ),
}


def _series(s: Stores) -> pd.DataFrame:
    return analysis.endpoint_series(s.one, T0, END)


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_a_parameter_that_selects_nothing_sensible_is_a_parameter_error(
    stores: Stores, case: str
) -> None:
    call, name, words = BAD_PARAMETERS[case]
    with pytest.raises(ParameterError) as info:
        call(stores)
    one_line(info, f"{name}: ", words)


def test_the_parameters_as_given_before_still_answer(stores: Stores) -> None:
    """The defaults and the values the callers use: one latency incident (the spike), the
    per-scrape latency slices of the alerts (bucket_ms=0)."""
    latency = analysis.incidents(stores.one, T0, END, TH, kinds=("latency",))
    assert list(latency["endpoint"]) == ["/copilot/chat"]
    assert list(latency["start"]) == [pd.Timestamp("2026-10-01T03:00Z")]
    same = analysis.incidents(stores.one, T0, END, TH, kinds=("latency",), latency_factor=1)
    pd.testing.assert_frame_equal(same.drop(columns="detail"), latency.drop(columns="detail"))
    assert same["detail"].str.endswith("flagged above x1").all()
    slices = analysis.latency_slices(stores.one, T0, END, bucket_ms=0)
    assert len(slices) == 72  # the 78 scrapes of the day but the 6 unanswered
    trend = analysis.memory_trend(stores.one, T0, END, TH, window_hours=0.5, min_hours=0, min_r2=0)
    assert len(trend.segments) == 2


# --- 6. a month as the command line reads it ------------------------------------------------------


def test_a_month_with_spaces_is_the_month(stores: Stores) -> None:
    """The QA's case: monthly_review(s, " 2026-11").month was " 2026-11"."""
    review = analysis.monthly_review(stores.one, " 2026-10 ", TH)
    assert review.month == "2026-10" and review.previous_month == "2026-09"
    assert review.summary()["month"] == "2026-10"
    assert review.start == datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(ParameterError) as info:
        analysis.monthly_review(stores.one, "2026-1", TH)
    one_line(info, "not a month: '2026-1'")


# --- 7. a URL or a dict where a Store or Thresholds belongs ---------------------------------------

ENTRY_POINTS: dict[str, Callable[[Any, Any], Any]] = {
    "monthly_review": lambda s, th: analysis.monthly_review(s, "2026-10", th),
    "postmortem": lambda s, th: analysis.postmortem(s, T0, END, th),
    "checklist": lambda s, th: analysis.checklist(s, T0, END, th),
    "incidents": lambda s, th: analysis.incidents(s, T0, END, th),
    "memory_trend": lambda s, th: analysis.memory_trend(s, T0, END, th),
    "latest_incident_window": lambda s, th: analysis.latest_incident_window(s, th),
    "postmortem_window": lambda s, th: analysis.postmortem_window(s, th),
    "cache_fall_incidents": lambda s, th: analysis.cache_fall_incidents(s, T0, END, th),
    "memory_climb_incidents": lambda s, th: analysis.memory_climb_incidents(s, T0, END, th),
    "monthly_review by name": lambda s, th: analysis.monthly_review(
        store=s, month="2026-10", thresholds=th
    ),
}
STORE_ONLY: dict[str, Callable[[Any], Any]] = {
    "endpoint_summary": lambda s: analysis.endpoint_summary(s, T0, END),
    "traffic_series": lambda s: analysis.traffic_series(s, T0, END),
    "cache_stats": lambda s: analysis.cache_stats(s, T0, END),
    "availability": lambda s: analysis.availability(s, T0, END),
    "collection_gaps": lambda s: analysis.collection_gaps(s, T0, END),
    "latency_timeslices": lambda s: analysis.latency_timeslices(s, T0, END),
    "percentile_sanity": lambda s: analysis.percentile_sanity(s, T0, END),
}


@pytest.mark.parametrize("call", [*ENTRY_POINTS, *STORE_ONLY])
def test_a_url_instead_of_a_store_is_a_parameter_error(stores: Stores, call: str) -> None:
    """The QA's case: AttributeError: 'str' object has no attribute 'scrapes'. The message
    says how to open it, and never repeats the URL (it may hold a password)."""
    run = ENTRY_POINTS.get(call, lambda s, th: STORE_ONLY[call](s))
    for url, kind in ((stores.url, "str"), (Path("/tmp/store.sqlite"), "PosixPath")):
        with pytest.raises(ParameterError) as info:
            run(url, TH)
        message = one_line(info, "store: expected a Store", f"got a {kind}", "Store(url)")
        assert "s3cret" not in message and "/tmp/store.sqlite" not in message
    for other, kind in ((None, "None"), ({"url": "x"}, "a dict"), (42, "an int")):
        with pytest.raises(ParameterError) as info:
            run(other, TH)
        one_line(info, "store: expected a Store", f"got {kind}")


@pytest.mark.parametrize("call", list(ENTRY_POINTS))
def test_a_dict_instead_of_thresholds_is_a_parameter_error(stores: Stores, call: str) -> None:
    """The QA's case: monthly_review(s, "2026-11", {"error_rate": .02}) -> AttributeError."""
    with pytest.raises(ParameterError) as info:
        ENTRY_POINTS[call](stores.one, {"error_rate": 0.02})
    one_line(info, "thresholds: expected a Thresholds", "got a dict", "Thresholds(**values)")
    with pytest.raises(ParameterError) as info:
        ENTRY_POINTS[call](stores.one, "strict")
    one_line(info, "thresholds: expected a Thresholds", "got a str")


def test_thresholds_of_other_calls_are_checked_too() -> None:
    row = {"start": T0, "end": T0, "kind": "no_answer", "endpoint": None}
    for call in (
        lambda th: analysis.incident_window(T0, END, th),
        lambda th: analysis.postmortem_command(row, th),
        lambda th: analysis.with_commands(pd.DataFrame([row]), th),
        lambda th: analysis.month_over_month({}, {}, th),
        lambda th: analysis.unavailable_postmortem(T0, END, th, problem="down"),
    ):
        with pytest.raises(ParameterError) as info:
            call({"incident_margin_minutes": 5})
        one_line(info, "thresholds: expected a Thresholds", "got a dict")


def test_a_store_and_thresholds_as_they_should_be_still_answer(stores: Stores) -> None:
    """Thresholds given or left out, a Store, the memo in front of one, and no store at all
    beside the scrapes a call is given (the alerts' per-scrape latency slices)."""
    assert analysis.incident_window(T0, T0, None) == analysis.incident_window(T0, T0, TH)
    scrapes = stores.one.scrapes(T0, END)
    slices = analysis.latency_slices(None, T0, END, scrapes=scrapes, bucket_ms=0)
    assert len(slices) == 72  # the answered scrapes of the day
    review = analysis.monthly_review(stores.one, "2026-10")
    assert review.has_data and review.thresholds == TH


# --- 8. empty answers have the columns and types of full ones -------------------------------------

INCIDENT_TYPES = {
    "start": "datetime64[us, UTC]",
    "end": "datetime64[us, UTC]",
    "duration_s": "float64",
    "kind": "str",
    "severity": "str",
    "detail": "str",
    "endpoint": "str",
    "ongoing": "bool",
    "postmortem_command": "str",
}


def _types(frame: pd.DataFrame) -> dict[str, str]:
    return dict(frame.dtypes.astype(str))


def test_incidents_and_their_commands_have_one_type_with_rows_or_without(stores: Stores) -> None:
    """The QA's cases: postmortem_command was float64 without a row (str with rows);
    endpoint was object while it is str in every other frame."""
    full = analysis.with_commands(analysis.incidents(stores.one, T0, END, TH), TH)
    none = analysis.with_commands(analysis.incidents(stores.one, END, END + timedelta(days=1)), TH)
    assert len(full) > 0 and len(none) == 0
    assert _types(full) == INCIDENT_TYPES and _types(none) == INCIDENT_TYPES
    # an incident of an endpoint and of the whole API (no endpoint: missing, never "None")
    by_kind = dict(zip(full["kind"], full["endpoint"], strict=False))
    assert by_kind["error_rate"] == "/copilot/chat" and pd.isna(by_kind["no_answer"])
    assert not full["detail"].str.contains("nan|None").any()
    # the postmortem of the spike: its incidents and its timeline, and a window without data
    pm = analysis.postmortem(stores.one, T0 + timedelta(hours=2), T0 + timedelta(hours=5), TH)
    empty_pm = analysis.postmortem(stores.one, END, END + timedelta(hours=3), TH)
    assert len(pm.incidents) and not len(empty_pm.incidents)
    assert _types(pm.incidents) == _types(empty_pm.incidents) == INCIDENT_TYPES
    assert len(pm.timeline) and str(pm.timeline["endpoint"].dtype) == "str"
    assert not pm.timeline["detail"].str.contains(" on nan| on None").any()
    assert {i["kind"]: i["endpoint"] for i in pm.summary()["incidents"]}["no_answer"] is None


REVIEW_TYPES = {  # the frames the QA found flipping, by month
    "daily.peak_rss": "Int64",
    "targets.met": "object",
    "endpoints.prev_requests": "Int64",
    "endpoints.prev_errors": "Int64",
    "endpoints.requests": "int64",
    "incidents.endpoint": "str",
    "incidents.postmortem_command": "str",
}


def test_a_month_without_data_has_the_types_of_a_month_with_data(stores: Stores) -> None:
    """The QA's cases: a month without data had daily.peak_rss float64 (Int64 with data),
    targets.met object (bool when every target was known), endpoints.prev_requests and
    prev_errors int64 or Int64 as the previous month had data or not."""
    reviews = {
        "2026-10": analysis.monthly_review(stores.one, "2026-10", TH),  # both months: data
        "2026-11": analysis.monthly_review(stores.one, "2026-11", TH),  # previous only
        "2026-08": analysis.monthly_review(stores.one, "2026-08", TH),  # neither
    }
    for month, review in reviews.items():
        for path, want in REVIEW_TYPES.items():
            frame, column = path.split(".")
            assert str(getattr(review, frame)[column].dtype) == want, (month, path)
    october = reviews["2026-10"]
    assert october.has_data and october.previous_has_data
    # availability 72 OK of 78, 360 errors of 10,080 requests: missed; p95 200 ms, the
    # cache at 80 %, memory at 20 % of 512 MiB without a leak: met
    assert list(october.targets["met"]) == [False, False, True, True, True]
    assert [type(m) for m in october.targets["met"]] == [bool] * 5  # Python values
    assert list(reviews["2026-08"].targets["met"]) == [None] * 5
    assert october.daily["peak_rss"].iloc[0] == 100 * MiB + 1024 * 95  # 06:25's, the 96th
    assert october.daily["peak_rss"].iloc[1:].isna().all()
    assert reviews["2026-08"].daily["peak_rss"].isna().all() and len(reviews["2026-08"].daily) == 31
    # September's two hours: 24 scrapes of 100 and 40 requests
    prev = october.endpoints.set_index("endpoint")["prev_requests"]
    assert prev.to_dict() == {"/copilot/chat": 2300, "/projects/:id": 920}
    november = reviews["2026-11"].endpoints.set_index("endpoint")
    assert november["requests"].to_dict() == {"/copilot/chat": 0, "/projects/:id": 0}
    assert reviews["2026-08"].endpoints.empty


def test_endpoint_changes_has_one_type_whether_the_previous_period_is_known() -> None:
    current = pd.DataFrame(
        {"endpoint": ["/a"], "requests": [10], "errors": [1], "error_rate": [0.1], "mean_ms": [5.0]}
    )
    previous = current.assign(requests=[8], errors=[0], error_rate=[0.0])
    known = analysis.endpoint_changes(current, previous)
    unknown = analysis.endpoint_changes(current, previous.iloc[0:0], previous_known=False)
    for frame in (known, unknown):
        assert str(frame["prev_requests"].dtype) == "Int64"
        assert str(frame["prev_errors"].dtype) == "Int64"
        assert str(frame["requests"].dtype) == "int64"
    assert known["prev_requests"].tolist() == [8] and known["requests_change"].tolist() == [0.25]
    assert unknown["prev_requests"].isna().all() and unknown["new"].isna().all()


# --- QA 23 (reports): a latency regression found in its own day, not only in a week --------


def test_a_regression_covering_most_of_a_short_window_is_found(sqlite_store: Store) -> None:
    """Three quiet days at 100 ms, then /slow at 500 ms from day 4 06:00 to 18:00. Over the
    day alone, the window's own median (half the hours at 500 ms) hid it; the 7 days
    ending with the window are the reference now, as a month's window already was."""
    h = History(sqlite_store, step=timedelta(minutes=30))
    day4 = T0 + timedelta(days=3)
    slow_from, slow_to = day4 + timedelta(hours=6), day4 + timedelta(hours=18)
    h.scrape()
    while h.t < T0 + timedelta(days=4):
        h.t += h.step
        slow = slow_from < h.t <= slow_to  # the traffic since the scrape before
        h.traffic("/slow", 50, 500.0 if slow else 100.0).traffic("/ok", 50, 100.0)
        h.scrape(at=h.t)
    th = Thresholds()
    week = analysis.incidents(sqlite_store, T0, T0 + timedelta(days=4), th, kinds=("latency",))
    for start, end in (
        (day4, day4 + timedelta(days=1)),  # the day
        (day4 + timedelta(hours=5, minutes=30), day4 + timedelta(hours=18, minutes=30)),
    ):
        found = analysis.incidents(sqlite_store, start, end, th, kinds=("latency",))
        assert list(found["endpoint"]) == ["/slow"], (start, found)
        (row,) = found.itertuples()
        # it starts where the week's scan starts it (the end of the shorter window cuts
        # the run there, as any window does)
        assert row.start == week.iloc[0]["start"]
        assert slow_from <= row.start <= slow_from + timedelta(hours=1)  # its first hour
        assert "vs baseline 100 ms (x5.0)" in row.detail
    assert len(week) == 1


# --- QA 23 (reports): a climb a restart ended ends at its last scrape, in every text ------------


def test_a_climb_ended_by_a_restart_ends_at_its_last_scrape_everywhere(
    sqlite_store: Store,
) -> None:
    """A day flat at 100 MiB, then 3 MiB an hour until the scrape of 2026-10-03 05:50, a
    restart, twelve flat hours. The review said "to 06:00" (the end of the last fitted
    hour, past the restart), the checklist "to 05:00" (its label): both say 05:50 now."""
    h = History(sqlite_store, step=timedelta(minutes=10))
    for i in range(324):  # 00:00 day 1 .. 05:50 day 3
        h.scrape(rss=int(100 * MiB + max(0.0, i / 6 - 24) * 3 * MiB))
    h.restart()
    for _ in range(72):
        h.scrape(rss=100 * MiB)
    last_before = T0 + timedelta(hours=53, minutes=50)
    said = f"to {last_before:%Y-%m-%d %H:%M} UTC"
    review = analysis.monthly_review(sqlite_store, "2026-10", Thresholds())
    memory = next(t for t in review.targets.to_dict("records") if t["key"] == "memory")
    assert memory["detail"].endswith(said), memory["detail"]
    end = T0 + timedelta(days=4)
    (line,) = [c for c in analysis.checklist(sqlite_store, T0, end) if c.key == "memory"]
    assert f"{said} without a restart" in line.detail, line.detail
    assert line.figures["leak_end"] == last_before


# --- QA 23 (truth): a window cut inside an hour judges that hour whole ---------------------------


def test_an_incident_in_its_own_postmortem_window_ends_where_it_ended(sqlite_store: Store) -> None:
    """/p at 20 % errors from 09:00 to 11:00, 0.5 % otherwise, scraped every 5 minutes. The
    window `incidents` prints for it (08:30-11:30) read its last half hour alone: the
    11:00 scrape's delta (the burst's last 5 minutes) and 25 minutes of recovery, 7.5 %,
    'ongoing' to 11:20, and a wider printed window each time. Judged by whole hours (the
    11:00 hour: 3.75 %, no breach), it ends at 11:00, as in the day's scan; a window
    ending inside the burst cuts it there, still breaching (ongoing)."""
    h = History(sqlite_store, step=timedelta(minutes=5))
    h.scrape()
    while h.t < T0 + timedelta(hours=14):
        h.t += h.step
        burst = T0 + timedelta(hours=9) < h.t <= T0 + timedelta(hours=11)
        h.traffic("/p", 2000, 50.0, errors=400 if burst else 10)
        h.scrape(at=h.t)
    th = Thresholds()

    def found(start: datetime, end: datetime) -> list[tuple]:
        got = analysis.incidents(sqlite_store, start, end, th, kinds=("error_rate",))
        return [(r.start, r.end, r.ongoing) for r in got.itertuples()]

    nine, eleven = T0 + timedelta(hours=9), T0 + timedelta(hours=11)
    assert found(T0, T0 + timedelta(days=1)) == [(nine, eleven, False)]
    assert found(nine - timedelta(minutes=30), eleven + timedelta(minutes=30)) == [
        (nine, eleven, False)
    ]
    ((start, end, ongoing),) = found(nine - timedelta(minutes=30), nine + timedelta(minutes=90))
    assert (start, ongoing) == (nine, True)
    assert nine + timedelta(minutes=75) <= end <= nine + timedelta(minutes=90)
