"""The compact sample format (schema version 4, issue 14; 5 packs the raw payloads too): packed answers equal unpacked ones.

- the codec: any samples come back from a block exactly (the doubles bit for bit),
  whatever their figures (API-like integers behind the doubles, or arbitrary doubles);
- randomized histories (hypothesis): restarts, metrics resets, failed scrapes, endpoints
  appearing and vanishing, skewed collectors, out-of-order (late) writes, store reopened
  midway, are written into a store that packs (periods of 20 minutes, packed whole; or
  of 2 hours, packed hour by hour in chunks, merged when over) and into one that never
  packs; every read that visits samples, at every bucket, and the other reads answer
  the same, and the packed store really holds blocks and few rows;
- migration from schema version 3 (all rows): the answers before equal those after, and
  a migration killed by SIGKILL mid-way leaves a store that opens, finishes it and
  answers the same.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lsops_lib.models import Scrape
from lsops_lib.store import Store, codec, pack
from lsops_lib.times import to_ms
from tests.fixtures.store import START, assert_same_intervals, at, make_scrape, to_v3_layout

PATHS = ["/api/copilot/chat", "/api/projects", "/api/agents", "/health", "/api/context/search"]
SMALL_PERIOD = 20 * 60_000
NEVER = 0  # LSOPS_PACK_PERIOD_MS=0: every sample stays a row


# --- the codec -----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def sample_sets(draw: Any) -> codec.Samples:
    n_s = draw(st.integers(1, 12))
    n_e = draw(st.integers(1, 6))
    sids = sorted(draw(st.sets(st.integers(1, 10**12), min_size=n_s, max_size=n_s)))
    eids = sorted(draw(st.sets(st.integers(1, 10**6), min_size=n_e, max_size=n_e)))
    api_like = draw(st.booleans())
    rows = []
    for s in sids:
        for e in eids:
            if draw(st.integers(0, 9)) == 0:
                continue  # the endpoint did not answer in that scrape
            c = draw(st.integers(0, 2**40))
            if api_like:
                t, k = draw(st.integers(0, 2**30)), draw(st.integers(0, max(c, 0)))
                avg = t / c if c else 0.0
                err = (k / c * 100) / 100 if c else 0.0
            else:
                avg, err = draw(finite), draw(finite)
            rows.append((s, e, c, avg, err))
    return codec.Samples.of_rows(rows)


@settings(max_examples=150, deadline=None)
@given(sample_sets())
def test_a_block_gives_back_exactly_what_was_packed(samples: codec.Samples) -> None:
    back = codec.decode(codec.encode(samples))
    want = sorted(samples.rows(), key=lambda r: (r[1], r[0]))
    got = back.rows()
    assert [r[:3] for r in got] == [r[:3] for r in want]
    bits = np.array([r[3:] for r in got], np.float64).view(np.int64)
    assert (bits == np.array([r[3:] for r in want], np.float64).view(np.int64)).all()


cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(width=64),
    st.text(max_size=8),
)


# scrape ids: canonical UUIDs (kept as 16 bytes), now and then one that only looks like one
ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 5), st.integers(1, 6), st.data())
def test_a_row_block_gives_back_exactly_what_was_packed(n: int, width: int, data: Any) -> None:
    """Columns of one type (the scrape and service columns, scrape UUIDs) and of mixed
    ones: values and their types come back exactly (NaN as NaN, -0.0 as -0.0, a UUID in
    any spelling as that spelling)."""
    kinds = [
        data.draw(st.sampled_from([cells, st.none() | st.integers(), st.none() | st.floats(), ids]))
        for _ in range(width)
    ]
    rows = [(i, *(data.draw(k) for k in kinds)) for i in range(n)]
    back = codec.decode_rows(codec.encode_rows(rows))
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        assert [type(x) for x in got] == [type(x) for x in want]
        for a, b in zip(got, want, strict=True):
            assert (a != a and b != b) or repr(a) == repr(b), (a, b)  # NaN, -0.0 kept


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(ids, max_size=4), min_size=1, max_size=3), st.data())
def test_a_scrape_id_is_found_in_its_block_as_the_rows_hold_it(
    chunks: list[list[str]], data: Any
) -> None:
    """`codec.find_id` (a packed scrape's sid from its id, the raw payloads' and the late
    writes' lookup) against the rows written, chunk after chunk: every id gives its own
    row; an id not written gives None, also one made of the bytes of two neighbours
    (the second half of one UUID and the first half of the next) and one not a UUID."""
    body: bytes | None = None
    written: dict[str, tuple[int, Any]] = {}
    sid = 0
    for chunk in chunks:
        rows = []
        for key in dict.fromkeys(chunk):  # ids unique within the block
            if key in written:
                continue
            sid += 1
            rows.append((sid, key, data.draw(st.none() | st.integers(-5, 5))))
            written[key] = (sid, rows[-1][2])
        if rows:
            body = codec.rows_block(body, rows, False)
    if body is None:
        return
    for key, (want_sid, value) in written.items():
        assert codec.find_id(body, 1, key, [0, 2]) == {0: want_sid, 2: value}, key
    canonical = [uuid.UUID(k).bytes for k in written if codec._is_uuid(k)]
    for a, b in zip(canonical, canonical[1:], strict=False):
        straddling = str(uuid.UUID(bytes=a[8:] + b[:8]))
        if straddling not in written:
            assert codec.find_id(body, 1, straddling, [0]) is None
    assert codec.find_id(body, 1, str(uuid.uuid4()), [0]) is None
    assert codec.find_id(body, 1, "not-an-id", [0]) is None


def test_api_like_figures_pack_small() -> None:
    """A day of 50 endpoints as the API computes them: under 2 bytes a sample."""
    rng = np.random.default_rng(3)
    n, e = 1440, 50
    new = rng.poisson(30 / (1 + np.arange(e)), (n, e))
    c = np.cumsum(new, 0)
    t = np.cumsum(np.rint(new * 40 * rng.gamma(8, 1 / 8, (n, 1))), 0)
    k = np.cumsum(rng.binomial(new, 0.02), 0)
    safe = np.maximum(c, 1)
    samples = codec.Samples(
        np.repeat(np.arange(1, n + 1), e),
        np.tile(np.arange(1, e + 1), n),
        c.ravel(),
        np.where(c > 0, t / safe, 0.0).ravel(),
        np.where(c > 0, k / safe, 0.0).ravel(),
    )
    body = codec.encode(samples)
    assert len(body) / (n * e) < 2.0
    assert codec.decode(body).rows() == sorted(samples.rows(), key=lambda r: (r[1], r[0]))


# --- randomized histories: packed against unpacked -----------------------------------------


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    seed = draw(st.integers(0, 2**32))
    rng = random.Random(seed)
    scrapes: list[Scrape] = []
    for target in ("a", "b")[: draw(st.integers(1, 2))]:
        start, reset = START, None
        counts = {p: [0, 0, 0] for p in PATHS}  # count, time sum (ms), errors
        minute = rng.uniform(-30, 10)
        for _ in range(draw(st.integers(20, 60))):
            minute += rng.choice([1, 1, 1, 2, 3, 7, 25])
            roll = rng.random()
            if roll < 0.06:
                scrapes.append(make_scrape(minute, None, target=target))
                continue
            if roll < 0.10:  # a restart: counters from nothing
                start = to_ms(at(minute)) - 500
                reset = None
                counts = {p: [0, 0, 0] for p in PATHS}
            elif roll < 0.13:  # POST /api/metrics/reset
                reset = to_ms(at(minute)) - 200
                counts = {p: [0, 0, 0] for p in PATHS}
            for c in counts.values():
                n = rng.choice([0, 0, 1, 3, 12])
                c[0] += n
                c[1] += n * rng.randint(1, 400)
                c[2] += sum(rng.random() < 0.1 for _ in range(n))
            shown = [p for p in PATHS if rng.random() < 0.9 or counts[p][0] == 0]
            odd = rng.random() < 0.1  # figures that are no API integers
            endpoints = {
                p: (
                    counts[p][0],
                    (counts[p][1] / counts[p][0] * (1.0000001 if odd else 1.0))
                    if counts[p][0]
                    else 0.0,
                    counts[p][2] / counts[p][0] if counts[p][0] else 0.0,
                )
                for p in shown
            }
            skew = rng.choice([0.0, 0.0, 0.0, 25.0, -40.0])
            raw = {"metrics": f"{target} {minute}".encode()} if rng.random() < 0.15 else None
            scrapes.append(
                make_scrape(
                    minute,
                    endpoints,
                    target=target,
                    uptime_start=start,
                    last_reset=reset,
                    skew_s=skew,
                    raw=raw,
                )
            )
            if rng.random() < 0.05:  # two collectors got the very same answer
                scrapes.append(
                    make_scrape(
                        minute,
                        endpoints,
                        target=target,
                        uptime_start=start,
                        last_reset=reset,
                        skew_s=skew + 3,
                    )
                )
    order = sorted(scrapes, key=lambda s: s.collected_at)
    for _ in range(len(order) // 8):  # late writes: a scrape written well after its time
        i = rng.randrange(len(order))
        late = order.pop(i)
        order.insert(min(len(order), i + rng.randint(5, 80)), late)
    reopen = sorted(rng.sample(range(len(order)), k=min(3, len(order))))
    return {"order": order, "reopen": reopen, "seed": seed}


def _write(url: str, order: list[Scrape], reopen: list[int]) -> None:
    store = Store(url)
    try:
        for i, s in enumerate(order):
            if i in reopen:
                store.close()
                store = Store(url)
            store.record_scrape(s)
            if i % 17 == 0:
                store.record_scrape(s)  # a retried write stores nothing twice
        for s in order[: len(order) // 2 : 7]:  # ... also once its period is packed
            assert store.record_scrape(s) is False
    finally:
        store.close()


def _reads(store: Store, order: list[Scrape], seed: int) -> dict[str, pd.DataFrame]:
    first = min(s.collected_at for s in order)
    last = max(s.collected_at for s in order)
    rng = random.Random(seed)
    windows: list[tuple[Any, Any]] = [(None, None)]
    for _ in range(3):
        a = first + timedelta(minutes=rng.uniform(-20, (last - first).total_seconds() / 60))
        windows.append((a, a + timedelta(minutes=rng.choice([7, 61, 150, 600]))))
    out: dict[str, pd.DataFrame] = {}
    for a, b in windows:
        for bucket in ("minute", "hour", "day", "scrape"):
            for kwargs in ({}, {"include_monitoring": True, "target": "a"}):
                key = f"intervals {a} {b} {bucket} {kwargs}"
                out[key] = store.endpoint_intervals(a, b, bucket=bucket, **kwargs)
        out[f"resets {a} {b}"] = store.resets(a, b)
        out[f"services {a} {b}"] = store.services(a, b)
        out[f"services a {a} {b}"] = store.services(a, b, target="a")
        # the scrape reads that complete packed rows from their blocks (only the columns
        # they name): the wide columns, the expressions over them, a target's scrapes
        out[f"health {a} {b}"] = store.health(a, b)
        out[f"figures {a} {b}"] = store.scrape_figures(a, b, with_health=True)
        out[f"scrapes a {a} {b}"] = store.scrapes(a, b, target="a")
        out[f"scrapes narrow {a} {b}"] = store.scrapes(
            a, b, columns=["http_status", "ts", "failure_kind", "requests_total"]
        )
        out[f"counters {a} {b}"] = store.counter_intervals(a, b, bucket="hour")
    out["scrapes"] = store.scrapes()
    # the raw payloads, found by scrape id (a packed scrape's id is in its block)
    out["raw"] = pd.DataFrame(
        {"id": [s.id for s in order], "raw": [store.raw_payload(s.id, "metrics") for s in order]}
    )
    return out


def _blocks(store: Store) -> tuple[int, int]:
    """(blocks, sample rows) of a store."""
    with store.engine.connect() as conn:
        blocks = conn.execute(text("SELECT COUNT(*) FROM lsops_sample_blocks")).scalar()
        rows = conn.execute(text("SELECT COUNT(*) FROM lsops_samples")).scalar()
    return int(blocks or 0), int(rows or 0)


def _assert_same_reads(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert got.keys() == want.keys()
    for key, frame in want.items():
        if key.startswith("intervals"):
            assert_same_intervals(got[key], frame, key)
        else:
            pd.testing.assert_frame_equal(got[key], frame, obj=key)


def _urls(store_url: str, request: pytest.FixtureRequest, tmp_path: Path, n: int) -> list[str]:
    if store_url.startswith("sqlite"):
        return [f"sqlite:///{tmp_path / f'h{n}-{k}.sqlite'}" for k in ("packed", "rows")]
    cluster = request.getfixturevalue("pg_cluster")
    return [cluster.create_database(f"t_compact_{uuid.uuid4().hex[:12]}_{k}") for k in "pr"]


@pytest.mark.parametrize(
    ("examples", "period"),
    [(5, SMALL_PERIOD), (5, 2 * 3_600_000)],  # packed when over; hour by hour, then merged
)
def test_packed_answers_equal_unpacked(
    store_url: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    examples: int,
    period: int,
) -> None:
    counter = iter(range(10**6))
    n_examples = examples if store_url.startswith("sqlite") else 2
    seen_blocks = []

    @settings(
        max_examples=n_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(histories())
    def check(h: dict[str, Any]) -> None:
        packed_url, rows_url = _urls(store_url, request, tmp_path, next(counter))
        monkeypatch.setenv(pack.PERIOD_ENV, str(NEVER))
        _write(rows_url, h["order"], [])
        monkeypatch.setenv(pack.PERIOD_ENV, str(period))
        _write(packed_url, h["order"], h["reopen"])
        with Store(rows_url) as plain, Store(packed_url) as packed:
            assert _blocks(plain)[0] == 0
            blocks, rows = _blocks(packed)
            seen_blocks.append(blocks)
            _assert_same_reads(
                _reads(packed, h["order"], h["seed"]), _reads(plain, h["order"], h["seed"])
            )
            # at most the current period of each target is left as rows
            assert rows <= _blocks(plain)[1]

    check()
    assert max(seen_blocks) > 0  # the comparison compared packed blocks


# --- migration from version 3 ------------------------------------------------------------------


def _v3_store(url: str, scrapes: list[Scrape]) -> None:
    """A store as lsops wrote it at schema version 3: one wide row a scrape, every sample a
    row, no blocks."""
    os.environ[pack.PERIOD_ENV] = str(NEVER)
    try:
        with Store(url) as store:
            for s in scrapes:
                store.record_scrape(s)
            with store.engine.begin() as conn:
                to_v3_layout(conn)
                conn.execute(text("DROP TABLE lsops_sample_blocks"))
                conn.execute(text("DROP TABLE lsops_scrape_blocks"))
                conn.execute(text("DROP TABLE lsops_service_blocks"))
                conn.execute(text("DROP TABLE lsops_pack_state"))
                conn.execute(text("UPDATE lsops_meta SET value = '3' WHERE key = 'schema_version'"))
    finally:
        del os.environ[pack.PERIOD_ENV]


def _month_like(n: int) -> list[Scrape]:
    rng = random.Random(7)
    counts = {f"/api/e{i}": [0, 0, 0] for i in range(20)}
    out = []
    for minute in range(n):
        for c in counts.values():
            k = rng.choice([0, 1, 4])
            c[0] += k
            c[1] += k * rng.randint(5, 90)
            c[2] += int(rng.random() < 0.05 * k)
        out.append(
            make_scrape(
                minute,
                {
                    p: (c[0], c[1] / c[0] if c[0] else 0.0, c[2] / c[0] if c[0] else 0.0)
                    for p, c in counts.items()
                },
            )
        )
    return out


def test_migration_from_version_3_packs_and_answers_the_same(
    store_url: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrapes = _month_like(240)
    migrated, reference = _urls(store_url, request, tmp_path, 0)
    _v3_store(migrated, scrapes)
    monkeypatch.setenv(pack.PERIOD_ENV, str(NEVER))
    _write(reference, scrapes, [])
    monkeypatch.setenv(pack.PERIOD_ENV, str(30 * 60_000))
    with Store(migrated) as store, Store(reference) as plain:  # opening migrates
        assert store.schema_version() == 5
        blocks, rows = _blocks(store)
        assert blocks == 240 // 30 - 1 and rows == 30 * 20  # all but the latest period
        with store.engine.connect() as conn:
            keys = set(conn.execute(text("SELECT key FROM lsops_pack_state")).scalars())
        assert pack.MIGRATING_KEY not in keys
        _assert_same_reads(_reads(store, scrapes, 5), _reads(plain, scrapes, 5))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_migration_killed_midway_resumes_on_open(tmp_path: Path, backend: str) -> None:
    scrapes = _month_like(400)
    ref = tmp_path / "ref.sqlite"
    _v3_store(f"sqlite:///{ref}", scrapes)
    with sqlite3.connect(ref) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # the answers of version 3 (read through the rows: nothing packed yet)
    plain = tmp_path / "plain.sqlite"
    shutil.copy(ref, plain)
    os.environ[pack.PERIOD_ENV] = str(NEVER)
    try:
        with Store(f"sqlite:///{plain}") as store:
            want = _reads(store, scrapes, 11)
    finally:
        del os.environ[pack.PERIOD_ENV]
    root = str(Path(__file__).resolve().parent.parent)
    opener = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {root!r})
        from lsops_lib.store import Store
        print("opening", flush=True)
        Store(sys.argv[1]).close()
        print("opened", flush=True)
        """
    )
    partial = False
    for attempt in range(12):
        work = tmp_path / f"m{attempt}.sqlite"
        shutil.copy(ref, work)
        env = {**os.environ, "PYTHONPATH": root, pack.PERIOD_ENV: str(60_000)}
        proc = subprocess.Popen(
            [sys.executable, "-c", opener, f"sqlite:///{work}"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "opening"
            time.sleep(0.05 + 0.1 * attempt)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        con = sqlite3.connect(work)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            blocks = (
                con.execute("SELECT COUNT(*) FROM lsops_sample_blocks").fetchone()[0]
                if "lsops_sample_blocks" in tables
                else 0
            )
            migrating = (
                con.execute(
                    "SELECT COUNT(*) FROM lsops_pack_state WHERE key = 'pack_migrating'"
                ).fetchone()[0]
                if "lsops_pack_state" in tables
                else 0
            )
        finally:
            con.close()
        if not (blocks and migrating):
            continue  # killed before it began packing, or after it finished: again
        partial = True
        with Store(f"sqlite:///{work}") as store:  # finishes the migration
            assert store.schema_version() == 5
            blocks, rows = _blocks(store)
            assert blocks >= 300 and rows <= 2 * 20  # every old period packed
            _assert_same_reads(_reads(store, scrapes, 11), want)
        break
    assert partial, "no kill landed inside the migration"


def test_an_older_lsops_refuses_the_packed_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lsops of schema version 3 (simulated: its SCHEMA_VERSION) opening a version-5 store:
    its clear message, nothing changed."""
    from lsops_lib.store import StoreVersionError, schema

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        store.record_scrape(make_scrape(0, {"/a": (1, 2.0, 0.0)}))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    with pytest.raises(StoreVersionError, match=r"schema version 5, newer than this lsops"):
        Store(url)
    monkeypatch.undo()
    with Store(url) as store:
        assert store.schema_version() == 5 and len(store.scrapes()) == 1
