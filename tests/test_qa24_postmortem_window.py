"""QA 24: the postmortem's impact window and figures.

A delta is labelled by the scrape that closes it: the delta of the scrape at t covers
(the scrape before, t]. An incident is (start, end] in time and its figures are the
deltas closed in it:

- a run of breaching scrapes spans (the observation before its first, its last]: not
  one interval late, and its figures leave out the first good scrape's delta (a burst of
  one interval shows its own rate, an ongoing one its whole length);
- a health incident runs from its first bad check to its first good one: its figures
  are the deltas closed after its first check;
- requests per hour are over the time the counted deltas cover, also where the window
  reaches past either end of the history (whose first counters may have started while
  watched) or starts after a collection gap;
- a restart is at the instant its process says it started, in the key figures as in the
  timeline.

Every store is planted scrape by scrape with a ledger of what each delta holds; the
expected figures are sums over that ledger, never a call to lsops.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lsops_lib import analysis as A
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import History

STEP = timedelta(minutes=5)
DAY = datetime(2026, 10, 2, tzinfo=UTC)
NORMAL = {"/a": (100, 50.0, 0), "/b": (60, 80.0, 0)}  # 160 requests an interval
PER_HOUR = 160 * 12

# what each answered scrape's delta holds, as planted: its instant -> endpoint ->
# [requests, errors]
Ledger = dict[datetime, dict[str, list[int]]]
Traffic = Callable[[datetime], dict[str, tuple[int, float, int]]]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def plant(
    store: Store,
    first: datetime,
    last: datetime,
    traffic: Traffic = lambda t: NORMAL,
    *,
    status: Callable[[datetime], str] = lambda t: "OK",
    restarts: dict[datetime, datetime] | None = None,
) -> Ledger:
    """Scrapes every 5 min from `first` to `last`, the interval before each holding
    `traffic(t)` (endpoint -> (requests, mean ms, errors)). `status(t)`: the health
    answered, or "NONE" for a scrape without an answer (its interval's traffic then lands
    in the next answered scrape's delta). `restarts`: scrape -> the instant the process
    restarted before it (that interval's traffic all after it). The first scrape is a
    baseline: no delta (or, unanswered, nothing)."""
    h = History(store, start=first, step=STEP)
    h.scrape(answer=status(first) != "NONE")
    ledger: Ledger = {}
    pending: dict[str, list[int]] = {}
    t = first + STEP
    while t <= last:
        if restarts and t in restarts:
            h.restart(at=restarts[t] + timedelta(seconds=1))  # History: 1 s before
            pending = {}  # the old process's uncounted traffic died with it
        for endpoint, (n, mean, errors) in traffic(t).items():
            h.traffic(endpoint, n, mean, errors)
            got = pending.setdefault(endpoint, [0, 0])
            got[0] += n
            got[1] += errors
        answered = status(t) != "NONE"
        if answered:
            h.scrape(status(t), at=t)
            ledger[t] = pending
            pending = {}
        else:
            h.scrape(answer=False, at=t)
        t += STEP
    return ledger


def closed_in(ledger: Ledger, lo: datetime, hi: datetime) -> dict[str, list[int]]:
    """The planted deltas closed in (lo, hi], summed per endpoint, and in "all"."""
    out: dict[str, list[int]] = {"all": [0, 0]}
    for t, delta in ledger.items():
        if lo < t <= hi:
            for endpoint, (n, errors) in delta.items():
                for key in (endpoint, "all"):
                    got = out.setdefault(key, [0, 0])
                    got[0] += n
                    got[1] += errors
    return out


def burst(lo: datetime, hi: datetime, endpoint: str = "/b", errors: int = 30) -> Traffic:
    """NORMAL traffic, `endpoint` failing `errors` of its requests in the intervals
    closed by the scrapes of lo .. hi."""

    def traffic(t: datetime) -> dict[str, tuple[int, float, int]]:
        if lo <= t <= hi:
            n, mean, _ = NORMAL[endpoint]
            return {**NORMAL, endpoint: (n, mean, errors)}
        return NORMAL

    return traffic


def postmortem(store: Store, start: str, end: str) -> A.Postmortem:
    return A.postmortem(store, at(start), at(end), Thresholds())


def assert_figures(pm: A.Postmortem, want: dict[str, list[int]]) -> None:
    """The impact figures and the per-endpoint rows are the planted deltas `want`."""
    n, errors = want["all"]
    assert (pm.requests, pm.failed) == (n, errors)
    assert pm.error_rate == pytest.approx(errors / n)
    rows = pm.endpoints.set_index("endpoint")
    for endpoint, (n, errors) in want.items():
        if endpoint != "all":
            assert (rows.loc[endpoint, "requests"], rows.loc[endpoint, "errors"]) == (n, errors)


# --- 1. a burst: the scrape before its first breaching one to its last -----------------------


def test_a_burst_s_impact_is_its_breaching_intervals(sqlite_store: Store) -> None:
    """/b fails 30 of 60 in each interval from 10:00 to 10:30 (the scrapes of 10:05 ..
    10:30 close them): the impact is 10:00-10:30, 960 requests, 180 failed (18.75 %)."""
    ledger = plant(
        sqlite_store,
        DAY,
        DAY + timedelta(hours=13),
        burst(at("2026-10-02T10:05"), at("2026-10-02T10:30")),
    )
    pm = postmortem(sqlite_store, "2026-10-02T09:30", "2026-10-02T11:30")
    lo, hi = at("2026-10-02T10:00"), at("2026-10-02T10:30")
    assert (pm.impact_start, pm.impact_end, pm.duration_s) == (lo, hi, 1800.0)
    want = closed_in(ledger, lo, hi)
    assert want["all"] == [6 * 160, 6 * 30] and want["/b"] == [360, 180]
    assert_figures(pm, want)
    (row,) = pm.incidents[pm.incidents["kind"] == "error_rate"].to_dict("records")
    assert (row["start"], row["end"]) == (lo, hi)
    # the health checks of the window, both bounds included: 10:00 .. 10:30
    assert (pm.no_answer, pm.observations) == (0, 7)


def test_a_window_starting_inside_a_burst_counts_from_its_start(sqlite_store: Store) -> None:
    """The same burst, a window from 10:12: the impact is cut there (10:12-10:30), its
    figures the deltas closed after 10:12 (10:15 .. 10:30)."""
    ledger = plant(
        sqlite_store,
        DAY,
        DAY + timedelta(hours=13),
        burst(at("2026-10-02T10:05"), at("2026-10-02T10:30")),
    )
    pm = postmortem(sqlite_store, "2026-10-02T10:12", "2026-10-02T11:30")
    lo, hi = at("2026-10-02T10:12"), at("2026-10-02T10:30")
    assert (pm.impact_start, pm.impact_end) == (lo, hi)
    want = closed_in(ledger, lo, hi)
    assert want["all"] == [4 * 160, 4 * 30]
    assert_figures(pm, want)


def test_a_one_interval_burst_shows_its_own_rate(sqlite_store: Store) -> None:
    """Scrapes at :17 past the 5-minute grid; /b fails 30 of 60 in the one interval closed
    at 10:20:17: the impact is 10:15:17-10:20:17, 160 requests, 30 failed (18.75 %), not
    half of it."""
    first = DAY + timedelta(seconds=17)
    bad = at("2026-10-02T10:20:17")
    ledger = plant(sqlite_store, first, first + timedelta(hours=13), burst(bad, bad))
    pm = postmortem(sqlite_store, "2026-10-02T09:50", "2026-10-02T10:50")
    lo = bad - STEP
    assert (pm.impact_start, pm.impact_end, pm.duration_s) == (lo, bad, 300.0)
    want = closed_in(ledger, lo, bad)
    assert want["all"] == [160, 30]
    assert_figures(pm, want)
    assert pm.error_rate == pytest.approx(0.1875)


def test_a_burst_astride_midnight(sqlite_store: Store) -> None:
    """/b fails 20 of 60 in the 12 intervals closed at 23:35:17 .. 00:30:17."""
    first = DAY + timedelta(seconds=17)
    lo, hi = at("2026-10-02T23:30:17"), at("2026-10-03T00:30:17")
    ledger = plant(
        sqlite_store, first, first + timedelta(hours=26), burst(lo + STEP, hi, errors=20)
    )
    pm = postmortem(sqlite_store, "2026-10-02T22:30", "2026-10-03T01:30")
    assert (pm.impact_start, pm.impact_end, pm.duration_s) == (lo, hi, 3600.0)
    want = closed_in(ledger, lo, hi)
    assert want["all"] == [12 * 160, 12 * 20]
    assert_figures(pm, want)


def test_a_restart_inside_a_burst_and_one_ending_it(sqlite_store: Store) -> None:
    """/b fails half its requests in the intervals closed at 12:05 .. 12:40; the process
    restarts at 12:22 (the delta of 12:25 is all after it, half of /b failing still) and
    at 12:38 (the burst's last breaching scrape, 12:40, began a new series: its delta is
    the breach's). Then a second burst, closed at 14:05 .. 14:20, ended by a restart at
    14:23 (the first good scrape, 14:25, begins a new series)."""
    restarts = {at("2026-10-02T12:25"): at("2026-10-02T12:22")}
    restarts[at("2026-10-02T12:40")] = at("2026-10-02T12:38")
    restarts[at("2026-10-02T14:25")] = at("2026-10-02T14:23")
    first, second = (
        burst(at("2026-10-02T12:05"), at("2026-10-02T12:40")),
        burst(at("2026-10-02T14:05"), at("2026-10-02T14:20")),
    )

    def traffic(t: datetime) -> dict[str, tuple[int, float, int]]:
        if t in restarts:  # only what came after the restart: half an interval
            return {e: (n // 2, mean, errors // 2) for e, (n, mean, errors) in first(t).items()}
        return second(t) if t >= at("2026-10-02T14:00") else first(t)

    ledger = plant(sqlite_store, DAY, DAY + timedelta(hours=16), traffic, restarts=restarts)
    pm = postmortem(sqlite_store, "2026-10-02T11:30", "2026-10-02T13:30")
    lo, hi = at("2026-10-02T12:00"), at("2026-10-02T12:40")
    assert (pm.impact_start, pm.impact_end) == (lo, hi)
    want = closed_in(ledger, lo, hi)
    assert want["all"] == [6 * 160 + 2 * 80, 6 * 30 + 2 * 15]
    assert_figures(pm, want)
    # ended by a restart: the new process's delta (after the recovery) is not the breach's
    pm = postmortem(sqlite_store, "2026-10-02T13:30", "2026-10-02T15:30")
    lo, hi = at("2026-10-02T14:00"), at("2026-10-02T14:20")
    assert (pm.impact_start, pm.impact_end) == (lo, hi)
    assert_figures(pm, closed_in(ledger, lo, hi))
    assert not any("began a new series" in n for n in pm.notes), pm.notes


def test_an_ongoing_burst_lasts_its_whole_length(sqlite_store: Store) -> None:
    """/b fails in the last 6 intervals of the history (closed at 23:30 .. 23:55): the
    impact is 23:25-23:55 (30 min), still breaching."""
    last = at("2026-10-02T23:55")
    ledger = plant(sqlite_store, DAY, last, burst(at("2026-10-02T23:30"), last))
    pm = postmortem(sqlite_store, "2026-10-02T22:30", "2026-10-03T00:30")
    lo = at("2026-10-02T23:25")
    assert (pm.impact_start, pm.impact_end, pm.duration_s) == (lo, last, 1800.0)
    assert bool(pm.incidents["ongoing"].any())
    want = closed_in(ledger, lo, last)
    assert want["all"] == [6 * 160, 6 * 30]
    assert_figures(pm, want)


# --- 2. a health incident: from its first bad check to its first good one ---------------------


def test_a_degraded_run_counts_the_deltas_closed_after_its_first_check(
    sqlite_store: Store,
) -> None:
    """Health DEGRADED at the 9 checks of 02:00 .. 02:40, OK again at 02:45; /a fails one
    request in each interval closed on the hour. The impact is 02:00-02:45: the deltas
    closed at 02:05 .. 02:45, 1,440 requests, none failed (not the 02:00 one, which
    covers the time before the first DEGRADED check)."""

    def traffic(t: datetime) -> dict[str, tuple[int, float, int]]:
        return {**NORMAL, "/a": (100, 50.0, 1 if t.minute == 0 else 0)}

    lo, hi = at("2026-10-02T02:00"), at("2026-10-02T02:45")
    ledger = plant(
        sqlite_store,
        DAY - timedelta(hours=1),
        DAY + timedelta(hours=4),
        traffic,
        status=lambda t: "DEGRADED" if lo <= t < hi else "OK",
    )
    pm = postmortem(sqlite_store, "2026-10-02T01:30", "2026-10-02T03:15")
    assert (pm.impact_start, pm.impact_end) == (lo, hi)
    want = closed_in(ledger, lo, hi)
    assert want["all"] == [9 * 160, 0]
    assert (pm.requests, pm.failed) == tuple(want["all"])
    assert (pm.no_answer, pm.observations) == (0, 10)  # 9 DEGRADED and the first OK


# --- 3. requests per hour over the time the counted deltas cover ------------------------------


GAP = (at("2026-10-02T04:00"), at("2026-10-02T04:55"))


@pytest.mark.parametrize(
    ("start", "end", "covered"),
    [
        # past the history's last scrape (12:00): the deltas of 11:00 .. 12:00, from 10:55
        ("2026-10-02T11:00", "2026-10-02T13:00", ("2026-10-02T10:55", "2026-10-02T12:00")),
        # before its first (00:00, a baseline): the deltas of 00:05 .. 00:55, from 00:00
        ("2026-10-01T23:00", "2026-10-02T01:00", ("2026-10-02T00:00", "2026-10-02T00:55")),
        # just after a collection gap: the delta of 05:00 covers it, from 03:55
        ("2026-10-02T05:00", "2026-10-02T06:00", ("2026-10-02T03:55", "2026-10-02T05:55")),
    ],
)
def test_requests_per_hour_are_over_the_time_the_deltas_cover(
    sqlite_store: Store, start: str, end: str, covered: tuple[str, str]
) -> None:
    """160 requests every 5 minutes, 1,920 an hour, from 00:00 to 12:00, every scrape
    from 04:00 to 04:55 unanswered (the traffic is counted by the scrape of 05:00)."""
    ledger = plant(
        sqlite_store,
        DAY,
        DAY + timedelta(hours=12),
        status=lambda t: "NONE" if GAP[0] <= t <= GAP[1] else "OK",
    )
    lo, hi = at(start), at(end)
    requests = closed_in(ledger, lo - timedelta(microseconds=1), hi - timedelta(microseconds=1))
    hours = (at(covered[1]) - at(covered[0])).total_seconds() / 3600
    assert requests["all"][0] / hours == pytest.approx(PER_HOUR)  # the planted rate
    pm = postmortem(sqlite_store, start, end)
    rates = pm.comparison.set_index("metric").loc["requests per hour"]
    assert rates["window"] == pytest.approx(PER_HOUR)


def test_a_history_whose_counters_started_while_watched(sqlite_store: Store) -> None:
    """The scrapes of 00:00 .. 00:25 get no answer, the process starts at 00:26: the
    scrape of 00:30 counts its whole counters (160 requests), a delta from 00:25. The
    window 23:00-01:30 holds the deltas of 00:30 .. 01:25, 12 x 160 requests in 1 h."""
    ledger = plant(
        sqlite_store,
        DAY,
        DAY + timedelta(hours=3),
        status=lambda t: "NONE" if t < at("2026-10-02T00:30") else "OK",
        restarts={at("2026-10-02T00:30"): at("2026-10-02T00:26")},
    )
    requests = closed_in(ledger, DAY, at("2026-10-02T01:25"))
    assert requests["all"][0] == 12 * 160
    pm = postmortem(sqlite_store, "2026-10-01T23:00", "2026-10-02T01:30")
    rates = pm.comparison.set_index("metric").loc["requests per hour"]
    assert rates["window"] == pytest.approx(12 * 160 / 1.0)


def test_the_baseline_rate_where_the_history_begins_inside_it(sqlite_store: Store) -> None:
    """The 24 h baseline of a window at 10:00 holds the history's first 10 hours: its
    deltas (closed at 00:05 .. 09:55) cover 9 h 55 min, at 1,920 requests an hour."""
    plant(sqlite_store, DAY, DAY + timedelta(hours=12))
    pm = postmortem(sqlite_store, "2026-10-02T10:00", "2026-10-02T11:00")
    rates = pm.comparison.set_index("metric").loc["requests per hour"]
    assert rates["baseline"] == pytest.approx(PER_HOUR)
    assert any("covers 9 h 55 min of the 1 d 0 h baseline" in n for n in pm.notes), pm.notes


# --- 4. one restart, one instant --------------------------------------------------------------


def test_a_restart_is_at_the_instant_its_process_started_everywhere(sqlite_store: Store) -> None:
    """The process restarts at 20:02:30, seen by the scrape of 20:05: the key figures'
    incident, the restarts and the timeline all say 20:02:30."""
    seen, began = at("2026-10-02T20:05"), at("2026-10-02T20:02:30")
    plant(sqlite_store, DAY, DAY + timedelta(hours=22), restarts={seen: began})
    pm = postmortem(sqlite_store, "2026-10-02T19:35", "2026-10-02T20:35")
    (incident,) = [r for r in pm.summary()["incidents"] if r["kind"] == "restart"]
    assert (incident["start"], incident["end"]) == (began, began)
    assert list(pm.restarts["started"]) == [began] and list(pm.restarts["ts"]) == [seen]
    assert list(pm.timeline.loc[pm.timeline["event"] == "reset", "ts"]) == [began]


# --- 5. the rule itself, on per-scrape figures --------------------------------------------------


def test_a_run_of_scrape_deltas_spans_the_observation_before_it_to_its_last() -> None:
    """Deltas closed at 10:05 .. 10:30 breach; the observations (every 5 min) say the one
    before the first is 10:00. Without observations before it, the run starts at its first
    scrape."""
    instants = pd.date_range("2026-10-02T09:00Z", "2026-10-02T11:00Z", freq="5min")
    bad = (instants > at("2026-10-02T10:00")) & (instants <= at("2026-10-02T10:30"))
    series = pd.DataFrame(
        {
            "ts": instants,
            "endpoint": "/b",
            "requests": 60,
            "errors": [30 if b else 0 for b in bad],
            "time_sum_ms": 60 * 80.0,
            "mean_ms": 80.0,
            "error_rate": [0.5 if b else 0.0 for b in bad],
        }
    )
    found = A.endpoint_incidents(series, Thresholds(), bucket="scrape", seen=instants)
    (row,) = found.to_dict("records")
    assert (row["start"], row["end"], row["duration_s"]) == (
        at("2026-10-02T10:00"),
        at("2026-10-02T10:30"),
        1800.0,
    )
    assert "180 of 360 requests" in row["detail"]
    alone = A.endpoint_incidents(series[bad], Thresholds(), bucket="scrape", seen=instants[bad])
    assert (alone["start"].iloc[0], alone["end"].iloc[0]) == (
        at("2026-10-02T10:05"),
        at("2026-10-02T10:30"),
    )
