"""Redundant collectors: any number of collectors scraping one target into one store, with
skewed clocks and writes interleaved in any order, give the figures of one collector.

- hand-built: a process whose true counters are known (a restart and a metrics reset on
  the way), answered to three collectors with skewed clocks (sometimes the very same
  answer to two of them), written in a shuffled order: totals equal the truth, the series
  starts are the one restart and the one reset, and every daily figure equals that of
  one collector taking the same answers; the collector-clock order (the old rule) is
  shown to fail on the same scrapes;
- worked examples of the rule (a lower reading older by the server's clock is no reset,
  an identical answer adds nothing, a drop newer by the server's clock still is one);
- the real collector (`collect_forever`) in two and three threads with skewed clocks
  against the simulated API in real time, with a restart: totals equal its ledger.
Each on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from lsops_lib.api import Client
from lsops_lib.collect import collect_forever
from lsops_lib.models import Scrape
from lsops_lib.sim import EndpointSpec, Scenario, SimulatedAPI
from lsops_lib.store import Store
from lsops_lib.times import from_ms, to_ms
from tests.fixtures.faults import wait_for
from tests.fixtures.store import T0, Oracle, assert_same_intervals, at, make_scrape

PATHS = ["/api/copilot/chat", "/api/projects", "/api/agents", "/health", "/api/metrics"]


def totals(frame: pd.DataFrame) -> dict[str, tuple[int, int, float]]:
    """endpoint -> (requests, errors, time_sum_ms) summed over the frame's buckets."""
    g = frame.groupby("endpoint")[["requests", "errors", "time_sum_ms"]].sum()
    return {str(e): (int(r.requests), int(r.errors), float(r.time_sum_ms)) for e, r in g.iterrows()}


def assert_same_totals(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want)
    for endpoint, (n, e, t) in want.items():
        assert got[endpoint][:2] == (n, e), endpoint
        assert got[endpoint][2] == pytest.approx(t, rel=1e-9, abs=1e-6), endpoint


# --- a process with known counters, answered to skewed collectors --------------------------


@dataclass
class Truth:
    """The API process: cumulative counters per endpoint, and what happened in total."""

    uptime_start: int
    last_reset: int
    counts: dict[str, list[int]] = field(default_factory=dict)  # path -> [n, time, errors]

    def serve(self, rng: random.Random) -> None:
        for path in PATHS:
            c = self.counts.setdefault(path, [0, 0, 0])
            n = rng.choice([0, 1, 2, 5, 9])
            c[0] += n
            c[1] += n * rng.randint(5, 400)  # integer ms: sums are exact
            c[2] += sum(rng.random() < 0.1 for _ in range(n))

    def answer(self) -> dict[str, tuple[int, float, float]]:
        return {
            p: (n, t / n if n else 0.0, e / n if n else 0.0) for p, (n, t, e) in self.counts.items()
        }


def three_collectors(seed: int) -> tuple[list[Scrape], list[Scrape], dict[str, list[int]]]:
    """(the scrapes of three collectors in a shuffled write order, the same answers as one
    collector on the server's clock would have them, the true totals since the first
    answer). Server minutes 600..720 of T0's day: a restart at 650, a metrics reset at 690."""
    rng = random.Random(seed)
    proc = Truth(uptime_start=to_ms(T0) - 86_400_000, last_reset=to_ms(T0) - 86_400_000)
    skews = [0.0, 290.0, -170.0]  # seconds the collectors' clocks are ahead of the server's
    many: list[tuple[float, Scrape]] = []  # (write instant, scrape)
    one: list[Scrape] = []
    truth: dict[str, list[int]] = {}
    base: dict[str, list[int]] | None = None  # the counters of the first answer seen
    minute = 600.0
    events: set[str] = set()
    while minute < 720:
        if minute >= 650 and "restart" not in events:
            events.add("restart")
            _add(truth, proc.counts, base)
            base = {}  # a new process: every counter from zero
            proc = Truth(uptime_start=to_ms(at(minute - 0.1)), last_reset=to_ms(at(minute - 0.1)))
        if minute >= 690 and "reset" not in events:
            events.add("reset")
            _add(truth, proc.counts, base)
            base = {}
            proc.counts, proc.last_reset = {}, to_ms(at(minute - 0.05))
        proc.serve(rng)
        answer = proc.answer()
        kwargs = {"uptime_start": proc.uptime_start, "last_reset": proc.last_reset}
        one.append(make_scrape(minute, answer, **kwargs))
        if base is None:
            base = {p: list(c) for p, c in proc.counts.items()}
        takers = [c for c in range(3) if rng.random() < 0.5] or [rng.randrange(3)]
        for c in takers:  # the same answer to each taker (an instant of the server)
            s = make_scrape(minute, answer, skew_s=skews[c] + rng.uniform(-5, 5), **kwargs)
            many.append((minute + rng.uniform(0.0, 12.0), s))  # written up to 12 min late
        if rng.random() < 0.1:  # a collector finds the API down
            failed = make_scrape(minute + 0.1, None, skew_s=skews[rng.randrange(3)])
            many.append((minute + rng.uniform(0.0, 3.0), failed))
            one.append(make_scrape(minute + 0.1, None))
        minute += rng.choice([0.25, 0.5, 1.0, 1.0, 2.0])
    _add(truth, proc.counts, base)
    return [s for _, s in sorted(many, key=lambda x: x[0])], one, truth


def _add(truth: dict[str, list[int]], counts: dict[str, list[int]], base: Any) -> None:
    for path, c in counts.items():
        b = (base or {}).get(path, [0, 0, 0])
        acc = truth.setdefault(path, [0, 0, 0])
        for i in range(3):
            acc[i] += c[i] - b[i]


@pytest.mark.parametrize("seed", [1, 2])
def test_three_skewed_collectors_give_the_figures_of_one(store_url: str, seed: int) -> None:
    many, one, truth = three_collectors(seed)
    want = {p: (n, e, float(t)) for p, (n, t, e) in truth.items()}
    with Store(store_url) as store:
        for s in many:
            assert store.record_scrape(s)
        for s in one:  # one collector on the server's clock, the same answers: target "one"
            assert store.record_scrape(replace(s, target="one"))
        mon = {"include_monitoring": True}
        got = store.endpoint_intervals(bucket="day", target="default", **mon)
        assert_same_totals(totals(got), want)
        assert store.resets(target="default")["kind"].tolist() == ["restart", "reset"]
        # every daily figure is the one collector's
        for kwargs in ({}, mon):
            assert_same_intervals(
                store.endpoint_intervals(bucket="day", target="default", **kwargs),
                store.endpoint_intervals(bucket="day", target="one", **kwargs),
            )
        many_c = store.counter_intervals(bucket="day", target="default")
        one_c = store.counter_intervals(bucket="day", target="one")
        for col in ("requests", "cache_hits", "cache_misses", "resets"):
            assert many_c[col].tolist() == one_c[col].tolist(), col
        # and scrape by scrape, what the independent oracle computes
        assert_same_intervals(
            store.endpoint_intervals(bucket="scrape", target="default", **mon),
            Oracle(many).endpoint_intervals(bucket="scrape", **mon),
        )
    # the collector-clock order (the old rule) invents resets on the very same scrapes
    old = Oracle(many, skip={"server_order"})
    wrong = totals(old.endpoint_intervals(bucket="day", **mon))
    assert wrong["/api/copilot/chat"][0] > 2 * want["/api/copilot/chat"][0]
    assert len(old.resets()) > 2


# --- worked examples of the rule -------------------------------------------------------------


def test_a_lower_reading_older_by_the_server_clock_is_no_reset(store: Store) -> None:
    """Collector B's clock is 10 minutes ahead: its scrape of server minute 1 is stored with
    a later ts than A's scrape of minute 2, and written after it. Ordered by the server's
    clock, nothing went down: no reset, and every request is counted once."""
    a0 = make_scrape(0, {"/api/agents": (100, 10.0, 0.0)})
    b1 = make_scrape(1, {"/api/agents": (110, 10.0, 0.0)}, skew_s=600)
    a2 = make_scrape(2, {"/api/agents": (130, 10.0, 0.0)})
    for s in (a0, a2, b1):
        assert store.record_scrape(s)
    got = store.endpoint_intervals(bucket="scrape")
    assert got["requests"].tolist() == [20, 10]  # a2 closes 110 -> 130, b1 closes 100 -> 110
    assert got["ts"].tolist() == [pd.Timestamp(at(2)), pd.Timestamp(at(11))]
    assert got["resets"].sum() == 0 and store.resets().empty


def test_a_lower_reading_newer_by_the_server_clock_still_is_a_reset(store: Store) -> None:
    """Same process and reset, but the server's clock says the lower reading came later:
    the counters really went down (a counter drop), whatever the collectors' clocks say."""
    store.record_scrape(make_scrape(0, {"/api/agents": (100, 10.0, 0.0)}, skew_s=300))
    store.record_scrape(make_scrape(1, {"/api/agents": (7, 10.0, 0.0)}))
    assert store.resets()["kind"].tolist() == ["counter_drop"]
    assert store.endpoint_intervals(bucket="scrape")["requests"].tolist() == [7]


def test_an_identical_answer_adds_nothing(store: Store) -> None:
    """Two collectors get the same answer (same server instant, same counters); stored
    under two scrape ids at two collector instants, it counts once."""
    first = make_scrape(0, {"/api/agents": (100, 10.0, 0.1)})
    answer = {"/api/agents": (150, 12.0, 0.2)}
    twins = [make_scrape(1, answer), make_scrape(1, answer, skew_s=-40)]
    for s in (first, *twins):
        assert store.record_scrape(s)
    got = store.endpoint_intervals(bucket="day")
    assert got["requests"].tolist() == [50] and got["errors"].tolist() == [20]
    assert got["time_sum_ms"].tolist() == pytest.approx([800.0])
    scrape = store.endpoint_intervals(bucket="scrape")
    # by collector ts: the twin whose collector was 40 s behind first; written second, it
    # follows its twin in the series and adds 0, the other one closes 100 -> 150
    assert scrape["ts"].tolist() == [
        pd.Timestamp(at(1) - timedelta(seconds=40)),
        pd.Timestamp(at(1)),
    ]
    assert scrape["requests"].tolist() == [0, 50]
    assert store.resets().empty


# --- the real collector in threads, against the simulated API in real time --------------------


def real_time_scenario() -> Scenario:
    endpoints = [
        EndpointSpec("/copilot/chat", "POST", 900.0, 80.0, 0.05),
        EndpointSpec("/projects/:id", "GET", 1500.0, 20.0, 0.1),
        EndpointSpec("/agents", "GET", 600.0, 10.0, 0.0),
    ]
    return Scenario(endpoints=endpoints, seed=13, start=datetime.now(UTC) - timedelta(seconds=5))


@pytest.mark.parametrize("collectors", [2, 3])
def test_concurrent_collectors_totals_equal_the_ledger(store_url: str, collectors: int) -> None:
    """`collect_forever` in `collectors` threads, each its own Store and client and a clock
    skewed by up to a minute, every 200 ms on the same grid (so they scrape at the same
    instants), against the simulated API in real time, restarted half-way: the store's
    totals are what the API sent (its ledger) over what the scrapes cover, and the one
    restart is the one series start."""
    Store(store_url).close()  # the schema, before the collectors race to create it
    api = SimulatedAPI(real_time_scenario())  # real time: the server's clock is this host's
    api.start()
    stop = threading.Event()
    skews = [timedelta(0), timedelta(seconds=47), timedelta(seconds=-31)][:collectors]
    errors: list[BaseException] = []
    counts = [0] * collectors

    def run(i: int) -> None:
        try:
            with Store(store_url) as store:
                client = Client(api.url, retries=0, timeout_s=5.0)
                try:

                    def counted(_s: Scrape, stored: bool) -> None:
                        counts[i] += 1 if stored else 0

                    collect_forever(
                        client,
                        store,
                        timedelta(milliseconds=200),
                        stop=stop,
                        deep=False,
                        clock=lambda: datetime.now(UTC) + skews[i],
                        on_scrape=counted,
                        on_error=errors.append,
                    )
                finally:
                    client.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(collectors)]
    try:
        for t in threads:
            t.start()
        # each collector stores 5 scrapes of each process (~1 s at 200 ms; was 2.5 s each)
        wait_for(lambda: min(counts) >= 5 or bool(errors), 30.0)
        before = list(counts)
        api.restart()
        wait_for(
            lambda: all(n >= b + 5 for n, b in zip(counts, before, strict=True)) or bool(errors),
            30.0,
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        api.stop()
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    assert min(counts) >= 5, counts
    with Store(store_url) as store:
        scrapes = store.scrapes()
        assert len(scrapes) == sum(counts) and scrapes["ok"].all()
        got = totals(store.endpoint_intervals(bucket="day"))
        restarts = store.resets()
    # the truth: what the API sent between the first and the last answer of the first
    # process, and from the restart to the last answer of the second (what the first one
    # counted after its last answer died with it)
    up = scrapes.groupby("uptime_start_ms")["server_ts"].agg(["min", "max"]).sort_index()
    assert len(up) == 2, up
    first, last = (t.to_pydatetime() for t in up.iloc[0])
    start2, last2 = from_ms(int(up.index[1])), up.iloc[1]["max"].to_pydatetime()
    sent = pd.concat(
        [
            api.ledger(first, last, include_monitoring=False),
            api.ledger(start2, last2, include_monitoring=False),
        ]
    )
    want = sent.groupby("endpoint")[["requests", "errors", "time_sum_ms"]].sum()
    assert_same_totals(
        got,
        {
            str(e): (int(r.requests), int(r.errors), float(r.time_sum_ms))
            for e, r in want.iterrows()
        },
    )
    assert restarts["kind"].tolist() == ["restart"]
    assert int(restarts["uptime_start_ms"].iloc[0]) == to_ms(start2)
