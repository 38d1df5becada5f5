"""The hourly rollup and the interval reads of the store against two other computations.

`Store.endpoint_intervals` answers the hour and day buckets from `lsops_rollup` (whole
hours) plus the samples (partial hours at the edges), the minute and scrape buckets from
the samples. Its answers are compared with:

- the raw computation, `Store._endpoint_intervals_raw`: the delta rule's one SQL statement
  over the samples, for the hour and day buckets (the rollup must give its very figures);
- the oracle, `tests.fixtures.store.Oracle`: the delta rule in plain Python over the
  scrapes as they were written (no SQL, no store code), for every bucket.

Seeded random histories of two targets (restarts, resets, counter drops, an endpoint's
own count dropping, failed scrapes, endpoints appearing and disappearing, ts ties,
out-of-order writes, duplicate writes, two collectors with skewed clocks and the
identical answers they sometimes both get) must give the same frames for many windows,
aligned or not, on SQLite and PostgreSQL; so must a store migrated from version 1 or 2
and a store written in part by a writer that kept no links and no rollup. Each rule of
the oracle, left out, makes the comparison fail: the data exercises every one of them.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from lsops_lib.models import Scrape
from lsops_lib.store import SCHEMA_VERSION, Store, chain, rollup
from lsops_lib.times import to_ms
from tests.fixtures.store import (
    RULES,
    T0,
    Oracle,
    assert_same_intervals,
    make_scrape,
    scrape_ids,
    to_v3_layout,
)

HOUR = timedelta(hours=1)
PATHS = [
    "/api/copilot/chat",
    "/api/projects",
    "/api/projects/:id",
    "/api/agents",
    "/api/context/search",
    "/health",
    "/api/metrics",
]


@dataclass
class Process:
    """One target's API process: cumulative counters as the API keeps them."""

    uptime_start: int
    last_reset: int | None = None
    counts: dict[str, list[float]] = field(default_factory=dict)  # path -> [n, time, errors]
    total_extra: int = 0  # requests.total above the sum of the endpoints (keeps it from dropping)


SKEW_S = {"a": 400.0, "b": -250.0}  # the second collector's clock, ahead of the server's


def history(seed: int, target: str, *, scrapes: int = 110) -> list[Scrape]:
    """A seeded history of one target, in server time order. Two collectors take it:
    the first on the server's clock, the second `SKEW_S[target]` (+- 20 s) off, so that
    collector order and series order differ; both sometimes get the very same answer."""
    rng = random.Random(f"{seed}-{target}")
    minute = rng.uniform(-90.0, 30.0)
    proc = Process(uptime_start=to_ms(T0) - 86_400_000)
    out: list[Scrape] = []

    def skew(first: bool = False) -> float:
        if first or rng.random() < 0.6:
            return 0.0
        return SKEW_S[target] + rng.uniform(-20.0, 20.0)

    if target == "b":  # starts with failed scrapes, then a process started after them
        for _ in range(rng.randint(1, 3)):
            out.append(make_scrape(minute, None, target=target))
            minute += rng.uniform(1.0, 20.0)
        proc.uptime_start = to_ms(T0 + timedelta(minutes=minute - 0.5))
    for i in range(scrapes):
        roll = rng.random()
        if roll < 0.10 and (i > 0 or target != "b"):  # b answers first after its failures
            out.append(make_scrape(minute, None, target=target, skew_s=skew()))
        else:
            ts_ms = to_ms(T0 + timedelta(minutes=minute))
            # a new process starts after the last one, a reset after the last one (the
            # server's clock): uptime.start and lastReset only grow
            if roll < 0.15:  # restart: counters from nothing, a new uptime.start
                proc.uptime_start = max(ts_ms - rng.randint(1, 60_000), proc.uptime_start + 1)
                proc.last_reset = None
                proc.counts = {}
            elif roll < 0.19:  # POST /api/metrics/reset
                proc.last_reset = max(
                    ts_ms - rng.randint(1, 60_000), (proc.last_reset or proc.uptime_start) + 1
                )
                proc.counts = {}
            elif roll < 0.22 and proc.counts:  # requests.total goes down on its own
                for c in proc.counts.values():
                    c[0] = int(c[0] * rng.uniform(0.0, 0.6))
                    c[1] *= 0.5
                    c[2] = min(c[2], c[0])
                proc.total_extra = 0
            elif roll < 0.26 and proc.counts:  # one endpoint's own count goes down
                c = proc.counts[rng.choice(sorted(proc.counts))]
                proc.total_extra += int(c[0])
                c[0] = int(c[0] * rng.uniform(0.0, 0.5))
                c[2] = min(c[2], c[0])
            # after a new series, sometimes a burst: counts above the old ones (a difference
            # would then look plausible, the rule must still count them whole)
            burst = 500 if roll < 0.19 and rng.random() < 0.5 else 0
            for path in rng.sample(PATHS, rng.randint(1, len(PATHS))):
                c = proc.counts.setdefault(path, [0, 0.0, 0])
                n = rng.choice([0, 0, 1, 3, 10, 40]) + burst
                c[0] += n
                c[1] += n * rng.uniform(5.0, 400.0)
                c[2] += sum(rng.random() < 0.1 for _ in range(n))
            # the error rate a little off, as a rounded percent is: errorRate x count lies
            # within 0.3 of the errors counted, so errors per sample, round(errorRate x
            # count), are the counted ones (never an exact half, which the backends round
            # differently) and a sum of unrounded products would not be
            shown = {
                p: (
                    int(c[0]),
                    (c[1] / c[0]) if c[0] else 0.0,
                    max(0.0, c[2] + rng.uniform(-0.3, 0.3)) / c[0] if c[0] else 0.0,
                )
                for p, c in proc.counts.items()
                if rng.random() < 0.9  # an endpoint sometimes missing from an answer
            }
            total = int(sum(c[0] for c in proc.counts.values())) + proc.total_extra
            answer = {
                "target": target,
                "uptime_start": proc.uptime_start,
                "last_reset": proc.last_reset,
                "total": total,
            }
            out.append(make_scrape(minute, shown, skew_s=skew(i == 0), **answer))
            if rng.random() < 0.08:  # the other collector got the very same answer
                out.append(make_scrape(minute, shown, skew_s=skew(), **answer))
        if rng.random() > 0.04:  # else a tie: the next scrape at the same instant
            minute += rng.choice([0.3, 1.0, 5.0, 17.0, 45.0, 61.0, 130.0]) * rng.uniform(0.8, 1.2)
    return out


def write_order(seed: int, scrapes: list[Scrape]) -> list[Scrape]:
    """Mostly in time order; some scrapes written late (backfills), some written twice."""
    rng = random.Random(f"order-{seed}")
    on_time = [s for s in scrapes if rng.random() > 0.12]
    late = [s for s in scrapes if s not in on_time]
    order = list(on_time)
    for s in late:  # written at any point: before or after the scrapes around it
        order.insert(rng.randint(0, len(order)), s)
    for s in rng.sample(scrapes, 8):
        order.insert(rng.randint(order.index(s) + 1, len(order)), s)  # a retried write
    return order


def record_all(store: Store, seed: int) -> list[Scrape]:
    """Write the seeded two-target history; the scrapes in the order they were written."""
    scrapes = history(seed, "a") + history(seed, "b")
    ids: set[str] = set()
    order = write_order(seed, sorted(scrapes, key=lambda s: s.collected_at))
    for s in order:
        assert store.record_scrape(s) is (s.id not in ids)
        ids.add(s.id)
    return order


def span(scrapes: list[Scrape]) -> tuple[datetime, datetime]:
    """(first, last) scrape instants."""
    instants = [s.collected_at for s in scrapes]
    return min(instants), max(instants)


def windows(seed: int, first: datetime, last: datetime, n: int) -> list[tuple[Any, Any]]:
    rng = random.Random(f"windows-{seed}")
    lo, hi = first - 2 * HOUR, last + 2 * HOUR
    span = (hi - lo).total_seconds()
    out: list[tuple[Any, Any]] = [(None, None), (first, None), (None, last), (lo, hi)]
    while len(out) < n:
        a = lo + timedelta(seconds=rng.uniform(0, span))
        b = a + timedelta(seconds=rng.choice([600, 3600, 4 * 3600, 20 * 3600, span]) * rng.random())
        if rng.random() < 0.4:  # hour-aligned
            a = a.replace(minute=0, second=0, microsecond=0)
            b = b.replace(minute=0, second=0, microsecond=0)
        elif rng.random() < 0.2:  # exactly on a scrape
            a = first + timedelta(seconds=rng.uniform(0, span / 2))
        out.append((a, max(a, b)))  # a start after the end is a ParameterError
    return out


def check_windows(
    store: Store,
    cases: list[tuple[Any, Any]],
    oracle: Oracle | None = None,
    *,
    buckets: tuple[str, ...] = ("hour", "day"),
    **kwargs: Any,
) -> int:
    """Compare `endpoint_intervals` for every window and bucket with the raw computation
    (hour and day) and with the oracle (every bucket, when given); rows compared."""
    rows = 0
    for start, end in cases:
        for bucket in buckets:
            context = (start, end, bucket, kwargs)
            got = store.endpoint_intervals(start, end, bucket=bucket, **kwargs)
            if bucket in ("hour", "day"):
                raw = store._endpoint_intervals_raw(start, end, bucket=bucket, **kwargs)
                assert_same_intervals(got, raw, ("raw", *context))
            if oracle is not None:
                want = oracle.endpoint_intervals(start, end, bucket=bucket, **kwargs)
                assert_same_intervals(got, want, ("oracle", *context))
            rows += len(got)
    return rows


def rollup_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT target_id, hour_ts, endpoint_id, requests, errors, resets, samples, "
                    "time_sum_ms FROM lsops_rollup ORDER BY target_id, hour_ts, endpoint_id"
                )
            )
        ]


def assert_same_rollup(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert [r[:7] for r in got] == [r[:7] for r in want]
    np.testing.assert_allclose([r[7] for r in got], [r[7] for r in want], rtol=1e-12, atol=1e-9)


def make_old(url: str, version: int) -> None:
    """Turn a store into what lsops wrote at schema version 1 (no rollup, no links) or 2
    (a rollup without sample counts, by another rule: its figures made wrong here, no
    links, the mark `rollup_sid`)."""
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            to_v3_layout(conn)
            conn.execute(text("DROP INDEX lsops_scrapes_series"))
            conn.execute(text("ALTER TABLE lsops_scrapes DROP COLUMN prev_sid"))
            if version == 1:
                conn.execute(text("DROP TABLE lsops_rollup"))
                conn.execute(text("DELETE FROM lsops_meta WHERE key = 'series_sid'"))
            else:
                conn.execute(text("ALTER TABLE lsops_rollup DROP COLUMN samples"))
                conn.execute(text("UPDATE lsops_rollup SET requests = requests + 1"))
                conn.execute(
                    text("UPDATE lsops_meta SET key = 'rollup_sid' WHERE key = 'series_sid'")
                )
            conn.execute(
                text("UPDATE lsops_meta SET value = :v WHERE key = 'schema_version'"),
                {"v": str(version)},
            )
    finally:
        store.close()


def make_v1(url: str) -> None:
    make_old(url, 1)


def store_links(store: Store) -> dict[str, str | None]:
    """scrape id -> the scrape id of its series predecessor (None: none, or no metrics)."""
    with store.engine.connect() as conn:
        ids = scrape_ids(conn)
        rows = conn.execute(text("SELECT sid, prev_sid FROM lsops_scrapes")).all()
    return {ids[a]: (None if b is None else ids[b]) for a, b in rows}


# --- the tests -------------------------------------------------------------------------

SCOPES: list[dict[str, Any]] = [
    {},
    {"include_monitoring": True},
    {"target": "a"},
    {"target": "b", "include_monitoring": True},
    {"target": "nobody"},
]


# three seeded histories on SQLite, one on PostgreSQL (the same rule and SQL on other data;
# each PostgreSQL seed took ~17 s of the suite)
@pytest.mark.parametrize(
    ("store_url", "seed"),
    [("sqlite", 1), ("sqlite", 2), ("sqlite", 3), ("postgresql", 2)],
    indirect=["store_url"],
)
def test_rollup_equals_raw_and_oracle(store_url: str, seed: int) -> None:
    with Store(store_url) as store:
        written = record_all(store, seed)
        oracle = Oracle(written)
        first, last = span(written)
        cases = windows(seed, first, last, 40)
        rows = sum(check_windows(store, cases, oracle, **kwargs) for kwargs in SCOPES)
        assert rows > 1000  # the comparison compared something
        # the history really holds what the rule is about
        kinds = set(store.resets()["kind"])
        assert kinds == {"restart", "reset", "counter_drop"}
        full = store._endpoint_intervals_raw(bucket="hour", include_monitoring=True)
        assert full["resets"].sum() > 0 and full["requests"].sum() > 0
        # the rollup written scrape by scrape = the rollup computed at once from the samples
        incremental = rollup_rows(store)
    make_v1(store_url)
    with Store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert_same_rollup(rollup_rows(store), incremental)


def test_every_bucket_equals_the_oracle(store: Store) -> None:
    """minute, scrape, hour and day, for windows of every kind, per target and summed; and
    the series starts (`resets`)."""
    written = record_all(store, 4)
    oracle = Oracle(written)
    first, last = span(written)
    cases = windows(4, first, last, 12)
    buckets = ("minute", "scrape", "hour", "day")
    rows = sum(check_windows(store, cases, oracle, buckets=buckets, **kw) for kw in SCOPES)
    assert rows > 1000
    for (start, end), target in zip(cases, [None, "a", "b"] * 4, strict=False):
        got = store.resets(start, end, target=target)
        assert sorted(zip(got["ts"], got["kind"], got["target"], strict=True)) == (
            oracle.resets(start, end, target=target)
        ), (start, end, target)


def test_the_oracle_tells_each_rule(store: Store) -> None:
    """The comparison can fail: the oracle without any one of its rules disagrees with the
    store on the seeded history (so the data exercises every rule)."""
    written = record_all(store, 4)
    scrape = store.endpoint_intervals(bucket="scrape", include_monitoring=True)
    hour = store.endpoint_intervals(bucket="hour", include_monitoring=True)
    resets = store.resets()
    starts = sorted(zip(resets["ts"], resets["kind"], resets["target"], strict=True))
    assert_same_intervals(
        scrape, Oracle(written).endpoint_intervals(bucket="scrape", include_monitoring=True)
    )

    def agrees(oracle: Oracle) -> bool:
        try:
            for got, bucket in ((scrape, "scrape"), (hour, "hour")):
                want = oracle.endpoint_intervals(bucket=bucket, include_monitoring=True)
                assert_same_intervals(got, want)
        except AssertionError:
            return False
        return starts == oracle.resets()

    assert agrees(Oracle(written))
    for rule in sorted(RULES):
        assert not agrees(Oracle(written, skip={rule})), f"nothing tells the rule {rule!r}"


def test_errors_of_a_sample_round_halves_alike(
    store: Store, request: pytest.FixtureRequest
) -> None:
    """round(errorRate x count) of an exact half: SQLite's ROUND goes away from zero,
    PostgreSQL's round(double precision) to the even integer: the two backends count
    errors differently (a known divergence, not fixed: it would change stored figures)."""
    if store.dialect == "postgresql":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="PostgreSQL rounds a double's half to even")
        )
    written = [
        make_scrape(0, {"/api/agents": (0, 0.0, 0.0)}),
        make_scrape(1, {"/api/agents": (5, 10.0, 0.5)}),  # 2.5 errors
    ]
    for s in written:
        store.record_scrape(s)
    got = store.endpoint_intervals(bucket="scrape")
    assert got["errors"].tolist() == [3]
    assert_same_intervals(got, Oracle(written).endpoint_intervals(bucket="scrape"))


@dataclass(frozen=True)
class Seeded:
    """The seed-5 store of the migration test as lsops writes it now, and what it answered
    before any migration (the same for every `old`: written once per backend)."""

    url: str  # the store to copy (SQLite file or PostgreSQL template database)
    written: list[Scrape]
    cases: list[tuple[Any, Any]]
    before: list[Any]  # the day buckets of `cases`
    links: dict[str, str | None]
    rows: list[tuple[Any, ...]]


@pytest.fixture(scope="session")
def seeded_stores() -> dict[str, Seeded]:
    """Backend -> the seeded store, filled by `seeded_copy` on first use."""
    return {}


@pytest.fixture
def seeded_copy(
    store_url: str,
    seeded_stores: dict[str, Seeded],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Seeded:
    """`store_url` made a copy of the seed-5 store (the store of this test alone)."""
    sqlite = store_url.startswith("sqlite")
    backend = "sqlite" if sqlite else "postgresql"
    if backend not in seeded_stores:
        if sqlite:
            url = f"sqlite:///{tmp_path_factory.mktemp('rollup-seed5') / 'metrics.sqlite'}"
        else:
            name = f"rollup_seed5_{uuid.uuid4().hex[:8]}"
            url = request.getfixturevalue("pg_cluster").create_database(name)
        with Store(url) as store:
            written = record_all(store, 5)
            cases = windows(5, *span(written), 25)
            before = [store.endpoint_intervals(a, b, bucket="day") for a, b in cases]
            seeded_stores[backend] = Seeded(
                url, written, cases, before, store_links(store), rollup_rows(store)
            )
    seeded = seeded_stores[backend]
    if sqlite:
        target = Path(store_url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            closing(sqlite3.connect(seeded.url.removeprefix("sqlite:///"))) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name, template = store_url.rsplit("/", 1)[-1], seeded.url.rsplit("/", 1)[-1]
        cluster.drop_database(name)
        cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return seeded


@pytest.mark.parametrize("old", [1, 2])
def test_migration_from_an_older_version(store_url: str, seeded_copy: Seeded, old: int) -> None:
    written, cases, before = seeded_copy.written, seeded_copy.cases, seeded_copy.before
    first, last = span(written)
    with Store(store_url) as store:  # the copy answers as the store it was copied from
        assert store_links(store) == seeded_copy.links
        assert_same_rollup(rollup_rows(store), seeded_copy.rows)
    make_old(store_url, old)
    with Store(store_url) as store:  # migrates: links, fills the rollup anew, version 5
        assert store.schema_version() == SCHEMA_VERSION == 5
        assert store_links(store) == seeded_copy.links
        assert_same_rollup(rollup_rows(store), seeded_copy.rows)
        with store.engine.connect() as conn:
            keys = set(conn.execute(text("SELECT key FROM lsops_meta")).scalars())
        assert keys == {"schema_version", "series_sid"}
        oracle = Oracle(written)
        check_windows(store, cases, oracle)
        check_windows(store, cases, oracle, include_monitoring=True, target="a")
        after = [store.endpoint_intervals(a, b, bucket="day") for a, b in cases]
        for (a, b), x, y in zip(cases, before, after, strict=True):
            assert_same_intervals(y, x, (a, b))
        # and it keeps rolling up what is written next, out of order too
        more = history(55, "a", scrapes=30)[::-1]
        for s in more:
            store.record_scrape(s)
        cases = windows(55, first, max(s.collected_at for s in more), 20)
        check_windows(store, cases, Oracle(written + more))
    with Store(store_url) as store:  # opening again: nothing to migrate
        assert store.schema_version() == SCHEMA_VERSION


def test_scrapes_written_without_rollup_are_caught_up(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scrapes stored by a writer that keeps no links and no rollup (an older lsops still
    running, a bulk loader) lie above the mark: reads compute the links themselves until
    the next open links and rolls them up; a current writer that goes on writing
    meanwhile does not hide them."""
    scrapes = sorted(history(6, "a") + history(6, "b"), key=lambda s: s.collected_at)
    half = len(scrapes) // 2
    with Store(store_url) as store:
        for s in scrapes[:half]:
            store.record_scrape(s)
    current = Store(store_url)  # opened before: sees the store fall behind, keeps writing
    late = scrapes[half::3]  # some of them written later still, out of order
    bulk = [s for s in scrapes[half:] if s not in late]
    with monkeypatch.context() as m:
        m.setattr(rollup, "roll_up", lambda conn, target_id, sid, changes: None)
        m.setattr(chain, "link", lambda conn, target_id, sid: [])
        with Store(store_url) as store:
            for s in bulk:
                store.record_scrape(s)
    first, last = scrapes[0].collected_at, scrapes[-1].collected_at
    with current:
        oracle = Oracle(scrapes[:half] + bulk)
        check_windows(current, windows(8, first, last, 10), oracle, include_monitoring=True)
        for s in late:
            current.record_scrape(s)
        with current.engine.connect() as conn:
            assert rollup.is_stale(rollup.rollup_state(conn))
        oracle = Oracle(scrapes[:half] + bulk + late)
        check_windows(current, windows(9, first, last, 10), oracle, target="a")
        got = current.resets()
        assert sorted(zip(got["ts"], got["kind"], got["target"], strict=True)) == oracle.resets()
    with Store(store_url) as store:  # opening: links and rolls up every scrape
        with store.engine.connect() as conn:
            assert not rollup.is_stale(rollup.rollup_state(conn))
        check_windows(store, windows(6, first, last, 30), oracle, include_monitoring=True)
        check_windows(store, windows(7, first, last, 10), oracle, target="b")


def test_edges_of_a_window_inside_one_hour(store: Store) -> None:
    """Partial hours only, one whole hour, and windows whose edges fall on scrapes."""
    base = T0 + timedelta(hours=5)
    written = [
        make_scrape(minute + 300, {"/api/agents": (10 * (i + 1), 20.0 + i, 0.1)}, uptime_start=0)
        for i, minute in enumerate([0, 10, 30, 59.99, 60, 60.5, 119, 185])
    ]
    for s in written:
        store.record_scrape(s)
    scrape_at: Callable[[float], datetime] = lambda m: base + timedelta(minutes=m)  # noqa: E731
    cases = [
        (scrape_at(a), scrape_at(b))
        for a, b in [
            (0, 60),
            (10, 30),
            (10, 31),
            (0, 120),
            (5, 125),
            (60, 60.5),
            (0, 185),
            (30, 200),
        ]
    ]
    check_windows(store, cases, Oracle(written), buckets=("minute", "scrape", "hour", "day"))
    got = store.endpoint_intervals(scrape_at(0), scrape_at(120))
    assert got["requests"].tolist() == [30, 30]  # 10 -> 40 in 05:00, 40 -> 70 in 06:00


def test_segments_collected_side_by_side(store_url: str) -> None:
    """The demo's pattern: segments of one target's history (each starting with a process
    start) written by workers side by side, so that one worker's scrapes all land before
    scrapes already stored by another."""
    scrapes = history(9, "a", scrapes=150)
    thirds = [scrapes[k * 50 : (k + 1) * 50] for k in range(3)]
    order = [s for trio in zip(*thirds, strict=False) for s in trio[::-1]]
    with Store(store_url) as store:
        for s in order:
            assert store.record_scrape(s)
        first, last = scrapes[0].collected_at, scrapes[-1].collected_at
        oracle = Oracle(order)
        check_windows(store, windows(9, first, last, 30), oracle, include_monitoring=True)
        check_windows(store, windows(10, first, last, 10), oracle)


def test_a_dropped_rollup_table_is_rebuilt(store_url: str) -> None:
    with Store(store_url) as store:
        written = record_all(store, 11)
        want = rollup_rows(store)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE lsops_rollup"))
    with Store(store_url) as store:
        assert_same_rollup(rollup_rows(store), want)
        check_windows(store, windows(11, *span(written), 10), Oracle(written))
