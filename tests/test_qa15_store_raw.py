"""The raw payloads packed with their period (schema version 5): `Store.raw_payload`
answers, byte for byte, what the API sent, whether the scrape's period is packed or not,
across a restart of the writer and a period boundary, on SQLite and PostgreSQL; a store
of version 4 (raw payloads all rows beside packed periods) is migrated on open, and a
migration killed by SIGKILL resumes on the next open; an lsops of version 4 refuses the
new layout with its message.

Every expectation is the bytes the test itself handed to `record_scrape`.
"""

from __future__ import annotations

import json
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
from pathlib import Path

import pytest
from sqlalchemy import text

from lsops_lib.models import Scrape
from lsops_lib.store import SCHEMA_VERSION, Store, StoreVersionError, pack, pack_scrapes, schema
from tests.fixtures.store import make_scrape

PERIOD = 20 * 60_000  # 20-minute periods: a few dozen scrapes cross several boundaries


def _payloads(n: int, seed: int, target: str = "default") -> list[Scrape]:
    """n one-minute scrapes whose raw payloads look like the API's answers (each a little
    different from the one before), now and then one with bytes that are no JSON, or
    without one of its parts, or a failed scrape."""
    rng = random.Random(seed)
    counts = {f"/api/e{i}": 0 for i in range(12)}
    out = []
    for minute in range(n):
        roll = rng.random()
        if roll < 0.05:
            out.append(make_scrape(minute, None, target=target))
            continue
        for p in counts:
            counts[p] += rng.randint(0, 9)
        by = {p: {"count": c, "avgTime": c / 7 if c else 0} for p, c in counts.items()}
        metrics = json.dumps({"success": True, "metrics": {"byEndpoint": by, "n": minute}})
        raw = {
            "metrics": metrics.encode(),
            "health": f'{{"status":"OK","uptime":{minute * 60.5}}}'.encode(),
        }
        if roll < 0.12:
            raw["metrics"] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        elif roll < 0.18:
            del raw["health"]
        out.append(
            make_scrape(
                minute,
                {p: (c, c / 7 if c else 0.0, 0.0) for p, c in counts.items()},
                target=target,
                raw=raw,
            )
        )
    return out


def _expected(scrapes: list[Scrape]) -> dict[tuple[str, str], bytes | None]:
    return {
        (s.id, part): (s.raw or {}).get(part) for s in scrapes for part in ("metrics", "health")
    }


def _answers(store: Store, scrapes: list[Scrape]) -> dict[tuple[str, str], bytes | None]:
    return {
        (s.id, part): store.raw_payload(s.id, part)
        for s in scrapes
        for part in ("metrics", "health")
    }


def _counts(store: Store) -> tuple[int, int]:
    """(raw rows, raw blocks)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM lsops_raw")).scalar()
        blocks = conn.execute(text("SELECT COUNT(*) FROM lsops_raw_blocks")).scalar()
    return int(rows or 0), int(blocks or 0)


def _urls(store_url: str, request: pytest.FixtureRequest, tmp_path: Path, n: int) -> list[str]:
    if store_url.startswith("sqlite"):
        return [f"sqlite:///{tmp_path / f'r{n}-{k}.sqlite'}" for k in ("a", "b")]
    cluster = request.getfixturevalue("pg_cluster")
    return [cluster.create_database(f"t_raw_{uuid.uuid4().hex[:12]}_{k}") for k in "ab"]


def test_packed_raw_payloads_answer_byte_for_byte(
    store_url: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two targets, 130 minutes (several periods packed whole, the last one hour by hour),
    the writer restarted midway (and again in another period), a late scrape written into
    a packed period: every payload comes back exactly, before and after a reopen, and the
    packed periods really hold no raw row any more."""
    packed_url, rows_url = _urls(store_url, request, tmp_path, 0)
    scrapes = _payloads(130, 1) + _payloads(130, 2, target="other")
    order = sorted(scrapes, key=lambda s: s.collected_at)
    late = order.pop(40)  # written after its period was packed
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    store = Store(packed_url)
    try:
        for i, s in enumerate(order):
            if i in (77, 201):  # the collector restarted
                store.close()
                store = Store(packed_url)
            store.record_scrape(s)
            if i == 150:
                store.record_scrape(late)
    finally:
        store.close()
    monkeypatch.setenv(pack.PERIOD_ENV, "0")
    with Store(rows_url) as plain:
        for s in order + [late]:
            plain.record_scrape(s)
        assert _counts(plain)[1] == 0
    want = _expected(scrapes)
    with Store(packed_url) as store:
        rows, blocks = _counts(store)
        # a block a target and packed period (the last period: its first hour packed too)
        assert blocks >= 2 * (130 // 20)
        # what stays rows: at most each target's latest hour, two parts a scrape
        assert rows <= 2 * 2 * 60
        assert _answers(store, scrapes) == want
        assert store.raw_payload(str(uuid.uuid4()), "metrics") is None
        assert store.raw_payload(scrapes[3].id, "other") is None
    with Store(rows_url) as plain:
        assert _answers(plain, scrapes) == want


def _v4_store(url: str, scrapes: list[Scrape], monkeypatch: pytest.MonkeyPatch) -> None:
    """A store as lsops of schema version 4 wrote it: samples, services and details of the
    past periods packed, every raw payload a row (the raw packing left out)."""
    with monkeypatch.context() as m:
        m.setenv(pack.PERIOD_ENV, str(60_000))  # a period a minute: many periods to migrate
        m.setattr(pack_scrapes, "pack_raw", lambda *a, **k: None)
        with Store(url) as store:
            for s in scrapes:
                store.record_scrape(s)
            with store.engine.begin() as conn:
                conn.execute(text("DROP TABLE lsops_raw_blocks"))
                conn.execute(text("UPDATE lsops_meta SET value = '4' WHERE key = 'schema_version'"))
                assert conn.execute(text("SELECT COUNT(*) FROM lsops_sample_blocks")).scalar()


def test_a_version_4_store_has_its_raw_payloads_packed_on_open(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrapes = _payloads(90, 3)
    _v4_store(store_url, scrapes, monkeypatch)
    with Store(store_url) as store:  # opening migrates
        assert store.schema_version() == SCHEMA_VERSION == 5
        rows, blocks = _counts(store)
        assert blocks >= 80 and rows <= 2  # the latest scrape's minute stays rows
        with store.engine.connect() as conn:
            keys = set(conn.execute(text("SELECT key FROM lsops_pack_state")).scalars())
        assert pack.MIGRATING_KEY not in keys
        assert _answers(store, scrapes) == _expected(scrapes)
        more = _payloads(95, 4)[90:]  # and it goes on packing what is written next
        for s in more:
            store.record_scrape(s)
        assert _answers(store, scrapes + more) == _expected(scrapes + more)


def test_a_raw_migration_killed_midway_resumes_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrapes = _payloads(300, 5)
    ref = tmp_path / "ref.sqlite"
    _v4_store(f"sqlite:///{ref}", scrapes, monkeypatch)
    with sqlite3.connect(ref) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    want = _expected(scrapes)
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
        proc = subprocess.Popen(
            [sys.executable, "-c", opener, f"sqlite:///{work}"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": root},
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
                con.execute("SELECT COUNT(*) FROM lsops_raw_blocks").fetchone()[0]
                if "lsops_raw_blocks" in tables
                else 0
            )
            migrating = con.execute(
                "SELECT COUNT(*) FROM lsops_pack_state WHERE key = 'pack_migrating'"
            ).fetchone()[0]
            rows = con.execute("SELECT COUNT(*) FROM lsops_raw").fetchone()[0]
        finally:
            con.close()
        if not (blocks and migrating):
            continue  # killed before it began packing, or after it finished: again
        partial = True
        assert rows > 2  # some periods still rows, some packed
        with Store(f"sqlite:///{work}") as store:  # finishes the migration
            assert store.schema_version() == 5
            rows, blocks = _counts(store)
            assert blocks >= 250 and rows <= 2
            assert _answers(store, scrapes) == want
        break
    assert partial, "no kill landed inside the migration"


def test_an_lsops_of_version_4_refuses_the_new_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It would not find the packed payloads: it must refuse the store, in one line."""
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    s = _payloads(1, 6)[0]
    with Store(url) as store:
        store.record_scrape(s)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 4)
    with pytest.raises(StoreVersionError, match=r"^store .* has schema version 5, newer than"):
        Store(url)
    monkeypatch.undo()
    with Store(url) as store:
        assert store.raw_payload(s.id, "metrics") == s.raw["metrics"]  # type: ignore[index]
