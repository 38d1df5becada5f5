"""The incident kinds cache_fall and memory_climb (analysis/cache_fall.py, memory_climb.py).

Against the simulated API: a planted cache fall (with a process restart in its middle) and
a planted memory climb ended by a restart are found within one scrape interval of the
bounds the scenario planted (its events: the simulator's own record); a clean collected
history, and a month of the simulator's readings, have neither. Against hand-built histories (tests/fixtures/analysis.History, counters exact): a
metrics reset inside a fall neither splits nor hides it and one in a good stretch creates
none, a scrape gap does not split a fall, a fall on very little cache traffic is no
incident (`cache_fall_min_ops_per_minute`), and a memory climb that recovers ends there.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest

from lsops_lib import analysis as A
from lsops_lib.analysis.cache_fall import cache_falls
from lsops_lib.analysis.memory_climb import memory_climbs
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History, MiB
from tests.fixtures.history import ShortHistory

EVERY = timedelta(minutes=5)
TOLERANCE = EVERY.total_seconds()


def _kind(found: pd.DataFrame, kind: str) -> pd.DataFrame:
    return found[found["kind"] == kind].reset_index(drop=True)


def _off(a: object, b: datetime) -> float:
    return abs((pd.Timestamp(a) - pd.Timestamp(b)).total_seconds())


# --- the simulated API: planted bounds ----------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list]:
    """Two days of 5-minute scrapes of the simulated API (~5 s to collect): a cache fall
    to 35 % 08:00-14:00 with a restart at 11:00 in its middle (the counters start again
    from zero), and an RSS climb of 30 MiB/h 20:00 -> 06:00 ended by a restart at 06:00
    (pm2's max_memory_restart). The climb is steep against the simulator's RSS noise (1 %
    of 95 MiB per scrape) so that its first scrape is known to well within one interval."""
    from lsops_lib.api import Client
    from lsops_lib.collect import collect_once
    from lsops_lib.simapi import Event, Scenario, SimClock, SimulatedAPI

    def at(hours: float) -> datetime:
        return T0 + timedelta(hours=hours)

    events = [
        Event("cache", at(8), at(14), value=0.35),
        Event("restart", at(11)),
        Event("memory_climb", at(20), at(30), value=30 * MiB),
        Event("restart", at(30)),
    ]
    scenario = replace(
        Scenario.default(T0 - timedelta(hours=1), seed=5, incidents=False), events=events
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('planted') / 'store.sqlite'}"
    clock = SimClock(T0)
    with Store(url) as store, SimulatedAPI(scenario, clock=clock, restart_delay_s=0.05) as api:
        with Client(api.url, retries=0, timeout_s=5.0) as client:
            for i in range(int(timedelta(days=2) / EVERY) + 1):
                clock.set(T0 + i * EVERY)
                collect_once(client, store, clock=clock.now)
    return url, events


def test_planted_cache_fall_and_memory_climb_are_found_at_their_bounds(planted) -> None:
    url, events = planted
    cache = next(e for e in events if e.kind == "cache")
    climb = next(e for e in events if e.kind == "memory_climb")
    # the climb ends in the first restart at or after its end (the simulator's rule)
    restart = min(e.start for e in events if e.kind == "restart" and e.start >= climb.end)
    with Store(url) as store:
        found = A.incidents(store, None, None, Thresholds())
    falls = _kind(found, "cache_fall")
    assert len(falls) == 1, falls  # one fall: the restart in its middle does not split it
    assert _off(falls["start"][0], cache.start) <= TOLERANCE
    assert _off(falls["end"][0], cache.end) <= TOLERANCE
    assert falls["severity"][0] == "warning"  # 35 % is below the runbook's 50 % warning
    assert "target above 70 %" in falls["detail"][0]
    climbs = _kind(found, "memory_climb")
    assert len(climbs) == 1, climbs
    assert _off(climbs["start"][0], climb.start) <= TOLERANCE
    assert _off(climbs["end"][0], restart) <= TOLERANCE
    assert "ended by a restart" in climbs["detail"][0]
    assert not climbs["ongoing"][0]
    # the climb's figures add up: it climbed what its line rose from its start to its end
    # (QA 23: the observed peak stood where the line's end was meant); planted: 30 MiB an
    # hour for 10 hours
    said = re.search(
        r"climbed ([\d.]+) MiB .* from ([\d.]+) MiB to ([\d.]+) MiB", climbs["detail"][0]
    )
    assert said is not None, climbs["detail"][0]
    rise, low, high = (float(x) for x in said.groups())
    assert abs((high - low) - rise) <= 0.15 and abs(rise - 300) <= 30, said.groups()
    # the incident window rule applies to the new kinds as to the others
    th = Thresholds()
    start, end = A.incident_window(climbs["start"][0], climbs["end"][0], th)
    assert start == (pd.Timestamp(climbs["start"][0]) - pd.Timedelta(minutes=30)).floor("min")
    cmd = A.with_commands(climbs, th)["postmortem_command"][0]
    assert "--title 'memory climb 2026-10-01 20:" in cmd


def test_the_review_bundle_finds_the_incidents_and_memory_of_plain_reads(planted) -> None:
    """The monthly review reads each period's scrape figures and computes its memory
    trend once (the memory section and the memory-climb detector share them, the
    cache-fall detector's read is prefetched): its incidents and memory are those of the
    plain, unremembered calls on the store."""
    url, _ = planted
    th = Thresholds()
    start, end = datetime(2026, 10, 1, tzinfo=T0.tzinfo), datetime(2026, 11, 1, tzinfo=T0.tzinfo)
    with Store(url) as store:
        (target,) = store.targets()
        review = A.monthly_review(store, "2026-10", th, target=target)
        plain = A.incidents(store, start, end, th, target=target)
        trend = A.memory_trend(store, start, end, th, target=target)
    assert set(plain["kind"]) >= {"cache_fall", "memory_climb"}
    pd.testing.assert_frame_equal(review.incidents[plain.columns].reset_index(drop=True), plain)
    pd.testing.assert_frame_equal(review.memory.frame, trend.frame)
    pd.testing.assert_frame_equal(review.memory.segments, trend.segments)
    assert review.memory.peak_rss == trend.peak_rss


def test_a_clean_history_has_no_cache_fall_nor_memory_climb(short_history: ShortHistory) -> None:
    with Store(short_history.store_url) as store:
        found = A.incidents(store, None, None, Thresholds(), kinds=("cache_fall", "memory_climb"))
    assert found.empty, found


def test_a_month_of_the_simulators_noise_has_no_cache_fall_nor_memory_climb() -> None:
    """A month of 5-minute readings of the simulated process's counters and RSS, as its
    routes answer them (`health_payload`, `metrics_payload`; the engine driven directly,
    without HTTP and store: ~4 s): its hit rate (80 % on 30 operations a minute) and RSS
    (95 MiB, 1 % noise) stay clear of both detectors over 8,640 intervals."""
    from lsops_lib.sim import EndpointSpec, Scenario, SimulatedAPI
    from lsops_lib.times import to_ms

    scenario = Scenario(endpoints=[EndpointSpec("/a", "GET", 0.1, 30.0, 0.0)], start=T0, seed=2)
    api = SimulatedAPI(scenario)  # never started: its answers are read directly
    readings = []
    for i in range(1, 30 * 288 + 1):
        now = to_ms(T0 + i * EVERY)
        api.traffic.advance(now)
        cache = api.metrics_payload(now)["metrics"]["cache"]
        rss = api.health_payload(now, False)[1]["memory"]["rss"]
        readings.append((T0 + i * EVERY, cache["hits"], cache["misses"], rss))
    df = pd.DataFrame(readings, columns=["ts", "hits", "misses", "rss"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    intervals = pd.DataFrame(
        {
            "start": df["ts"].shift(),
            "end": df["ts"],
            "hits": df["hits"].diff(),
            "misses": df["misses"].diff(),
        }
    ).iloc[1:]
    intervals = intervals.astype({"hits": "int64", "misses": "int64"})
    intervals["ops"] = intervals["hits"] + intervals["misses"]
    intervals["minutes"] = EVERY.total_seconds() / 60
    assert intervals["ops"].mean() == pytest.approx(150, rel=0.05)  # the scenario's traffic
    assert cache_falls(intervals, Thresholds()).empty
    assert memory_climbs(df.assign(segment=0), Thresholds()).empty


# --- hand-built histories: exact counters -----------------------------------------------


def test_a_metrics_reset_inside_a_fall_neither_splits_nor_hides_it(store: Store) -> None:
    """On both store backends (the deltas are the store's SQL)."""
    h = History(store)
    h.scrape()  # 00:00
    for _ in range(12):  # 00:05 .. 01:00 at 80 %
        h.cache(80, 20).scrape()
    for i in range(12):  # 01:05 .. 02:00 at 30 %, the counters reset before 01:35
        if i == 6:
            h.reset()
        h.cache(30, 70).scrape()
    for i in range(12):  # 02:05 .. 03:00 at 80 %, a reset in the middle of it too
        if i == 6:
            h.reset()
        h.cache(80, 20).scrape()
    found = _kind(A.incidents(store, None, None, Thresholds()), "cache_fall")
    assert len(found) == 1
    # the first interval below target is (01:00, 01:05], the last (01:55, 02:00]
    assert found["start"][0] == pd.Timestamp(T0 + timedelta(hours=1))
    assert found["end"][0] == pd.Timestamp(T0 + timedelta(hours=2))
    assert found["duration_s"][0] == 3600
    assert "30.0 % (360 hits of 1,200 operations over 12 scrape intervals)" in found["detail"][0]


def test_a_scrape_gap_inside_a_fall_does_not_split_it(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.scrape()
    for _ in range(12):
        h.cache(80, 20).scrape()
    for i in range(12):  # 01:05 .. 02:00: the scrapes at 01:30 and 01:35 get no answer
        h.cache(30, 70)
        h.scrape(answer=i not in (5, 6))
    for _ in range(12):
        h.cache(80, 20).scrape()
    found = _kind(A.incidents(sqlite_store, None, None, Thresholds()), "cache_fall")
    assert len(found) == 1
    assert (found["start"][0], found["end"][0]) == (
        pd.Timestamp(T0 + timedelta(hours=1)),
        pd.Timestamp(T0 + timedelta(hours=2)),
    )
    assert "360 hits of 1,200 operations" in found["detail"][0]  # the gap's ops counted once


def test_a_fall_on_very_little_cache_traffic_is_no_incident(sqlite_store: Store) -> None:
    """2 cache operations per 5 minutes (0.4 a minute, below cache_fall_min_ops_per_minute
    = 1): an hour of hits, an hour of misses only, an hour of hits."""
    h = History(sqlite_store)
    h.scrape()
    for i in range(36):
        h.cache(*((0, 2) if 12 <= i < 24 else (2, 0))).scrape()
    th = Thresholds()
    assert _kind(A.incidents(sqlite_store, None, None, th), "cache_fall").empty
    # the threshold is what decides: judged from 0.4 a minute, the same hour is a fall
    low = replace(th, cache_fall_min_ops_per_minute=0.4)
    found = _kind(A.incidents(sqlite_store, None, None, low), "cache_fall")
    assert len(found) == 1
    assert (found["start"][0], found["end"][0]) == (
        pd.Timestamp(T0 + timedelta(hours=1)),
        pd.Timestamp(T0 + timedelta(hours=2)),
    )


def test_a_short_dip_or_one_at_the_target_is_no_fall(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.scrape()
    for i in range(36):  # 25 minutes at 30 % (shorter than 30 min), then exactly 70 %
        h.cache(*((30, 70) if 6 <= i < 11 else (70, 30))).scrape()
    assert _kind(A.incidents(sqlite_store, None, None, Thresholds()), "cache_fall").empty


def test_a_memory_climb_that_recovers_ends_when_it_is_back(sqlite_store: Store) -> None:
    """RSS flat at 100 MiB for 2 h, climbing 10 MiB/h for 4 h (5-minute scrapes), flat for
    an hour at 140 MiB, then back at 100 MiB (the garbage collector gave it back): the
    climb starts at its first rising scrape and ends at the first scrape back below the
    middle of the climb (120 MiB); no restart."""
    h = History(sqlite_store)
    rss = [100 * MiB] * 24 + [int((100 + 10 * (i + 1) / 12) * MiB) for i in range(48)]
    rss += [140 * MiB] * 12 + [100 * MiB] * 24
    for value in rss:
        h.scrape(rss=value)
    found = _kind(A.incidents(sqlite_store, None, None, Thresholds()), "memory_climb")
    assert len(found) == 1
    # index 23 (01:55) is the last flat scrape; the climb's line starts there
    assert _off(found["start"][0], T0 + 23 * EVERY) <= TOLERANCE
    assert found["end"][0] == pd.Timestamp(T0 + 84 * EVERY)  # the first scrape at 100 MiB
    assert "(recovered)" in found["detail"][0] and found["severity"][0] == "warning"
    # slower than memory_climb_per_hour: no incident
    limit = Thresholds().memory_limit_bytes
    slow = replace(Thresholds(), memory_climb_per_hour=15 * MiB / limit)
    assert _kind(A.incidents(sqlite_store, None, None, slow), "memory_climb").empty


def test_daily_counters_summed_from_the_per_scrape_read_equal_the_stores_day_read(
    sqlite_store: Store,
) -> None:
    """The review's daily cache and request counters come from the per-scrape read the
    cache-fall detector needs (`MemoStore.counter_intervals`): over two midnights, with a
    restart, a metrics reset, scrapes without an answer and hours without cache traffic,
    they equal the store's own day buckets."""
    from lsops_lib.analysis._memo import MemoStore, daily_counters

    h = History(sqlite_store, start=T0 - timedelta(hours=6), step=timedelta(minutes=30))
    h.run(10, {"/api/a": (40, 20.0, 1)})
    for _ in range(12):
        h.cache(30, 10).traffic("/api/a", 25, 30.0)
        h.scrape()
    h.restart()
    h.run(4, {"/api/b": (10, 50.0, 2)})
    h.scrape(answer=False)
    h.scrape(answer=False)
    h.reset()
    for _ in range(40):
        h.cache(5, 20).traffic("/api/b", 7, 40.0)
        h.scrape()
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=2)
    plain = sqlite_store.counter_intervals(start, end, bucket="day", target="default")
    assert len(plain) == 3 and plain["failures"].sum() == 2 and plain["resets"].sum() >= 2
    per_scrape = sqlite_store.counter_intervals(start, end, bucket="scrape", target="default")
    pd.testing.assert_frame_equal(daily_counters(per_scrape), plain)
    memo = MemoStore(sqlite_store)
    memo.prefetch("counter_intervals", start, end, bucket="scrape", target="default")
    assert memo.remembers("counter_intervals", start, end, bucket="scrape", target="default")
    try:
        derived = memo.counter_intervals(start, end, bucket="day", target="default")
    finally:
        memo.close()
    pd.testing.assert_frame_equal(derived, plain)
    hourly = memo.counter_intervals(start, end, bucket="hour", target="default")  # as read
    pd.testing.assert_frame_equal(
        hourly, sqlite_store.counter_intervals(start, end, bucket="hour", target="default")
    )


# --- error-rate and latency incidents in the latest bucket (QA 13) ------------------------


def test_an_endpoint_incident_still_breaching_at_the_last_scrape_is_ongoing(
    sqlite_store: Store,
) -> None:
    """Hand-built: three hours of clean traffic, then from 03:00 half the requests of /a
    fail and they are 10x slower, up to the last scrape at 03:40. Both incidents are
    ongoing and end at that scrape (not at 04:00, the end of its hour, later than anything
    seen); once a clean hour followed, the incident ends at its hour's end, not ongoing."""
    h = History(sqlite_store)
    h.scrape()
    h.run(36, {"/a": (100, 20.0, 0), "/b": (100, 20.0, 0)})  # 00:05 .. 03:00
    h.run(8, {"/a": (100, 200.0, 50), "/b": (100, 20.0, 0)})  # 03:05 .. 03:40
    began, last = T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=40)
    found = A.incidents(sqlite_store, None, None, Thresholds(), kinds=("error_rate", "latency"))
    now = found[found["endpoint"] == "/a"].set_index("kind")
    assert set(now.index) == {"error_rate", "latency"} and len(found) == 2
    for kind in ("error_rate", "latency"):
        row = now.loc[kind]
        assert bool(row["ongoing"]) is True, kind
        assert row["start"] == pd.Timestamp(began)
        assert row["end"] == pd.Timestamp(last) and row["duration_s"] == 40 * 60
    # the window's end before the history's: the latest scrape IN the window ends it
    until = T0 + timedelta(hours=3, minutes=32)  # scrapes up to 03:30
    cut = A.incidents(sqlite_store, None, until, Thresholds(), kinds=("error_rate",))
    assert cut["ongoing"].tolist() == [True]
    assert cut["end"][0] == pd.Timestamp(T0 + timedelta(hours=3, minutes=30))
    # a later clean hour: the incident ended with its bucket, and is over
    h.run(13, {"/a": (100, 20.0, 0), "/b": (100, 20.0, 0)})  # 03:45 .. 04:45
    done = A.incidents(sqlite_store, None, None, Thresholds(), kinds=("error_rate",))
    assert done["ongoing"].tolist() == [False]
    assert done["end"][0] == pd.Timestamp(T0 + timedelta(hours=4))
