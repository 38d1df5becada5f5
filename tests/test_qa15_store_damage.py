"""A damaged store is a StoreError of one line, never a driver's or zstd's traceback:

- a packed block cut short: the reads that decode it say which target and period;
- a flipped bit in a block: an error (the zstd frame's checksum), never other figures;
- the collector writing on while the block of its current period is damaged: every scrape
  stored, the failed packing said once, not at every write;
- a SQLite page overwritten: the driver's error raised while fetching becomes a StoreError;
- another application's SQLite file: refused, nothing written into it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from lsops_lib.exceptions import StoreError
from lsops_lib.store import Store, codec, pack
from tests.fixtures.store import at, make_scrape

PERIOD = 20 * 60_000


def _history(url: str, minutes: int, target: str = "web") -> list:
    scrapes = []
    with Store(url) as store:
        for m in range(minutes):
            body = json.dumps({"n": m, "byEndpoint": {"/a": {"count": 3 * m}}}).encode()
            s = make_scrape(
                m,
                {"/a": (3 * m, 12.5, 0.0), "/b": (m, 40.0, 0.25)},
                target=target,
                raw={"metrics": body},
            )
            store.record_scrape(s)
            scrapes.append(s)
    return scrapes


def _cut(path: Path, table: str, period_ts: int, by: int = 20) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute(
            f"UPDATE {table} SET body = substr(body, 1, length(body) - {by}) WHERE period_ts = ?",
            (period_ts,),
        )
    con.close()


def _one_line(exc: pytest.ExceptionInfo[StoreError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_block_cut_short_is_one_line_naming_target_and_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    path = tmp_path / "s.sqlite"
    url = f"sqlite:///{path}"
    scrapes = _history(url, 90)
    first = int(at(0).timestamp() * 1000)
    for table in ("lsops_sample_blocks", "lsops_scrape_blocks"):
        _cut(path, table, first)
    _cut(path, "lsops_raw_blocks", first + PERIOD)
    with Store(url) as store:  # opening does not fail for it
        with pytest.raises(StoreError) as info:
            store.endpoint_intervals(at(0), at(30), bucket="minute")
        message = _one_line(info)
        assert message.startswith(f"cannot read store {url}: a packed block of 'web' ")
        assert "2026-10-01 00:00 UTC is damaged (lsops_sample_blocks: " in message
        with pytest.raises(StoreError, match=r"'web' 2026-10-01 00:00 UTC is damaged \(lsops_scr"):
            store.health(at(0), at(30))
        with pytest.raises(
            StoreError, match=r"'web' 2026-10-01 00:20 UTC is damaged \(lsops_raw_bl"
        ):
            store.raw_payload(scrapes[25].id, "metrics")
        # the periods that are whole still answer
        later = store.endpoint_intervals(at(40), at(60), bucket="minute")
        assert set(later["requests"]) == {3, 1}
        assert store.raw_payload(scrapes[50].id, "metrics") == scrapes[50].raw["metrics"]


def test_a_flipped_bit_is_an_error_never_other_figures() -> None:
    rng = np.random.default_rng(5)
    n, e = 300, 20
    c = np.cumsum(rng.poisson(5, (n, e)), 0)
    samples = codec.Samples(
        np.repeat(np.arange(1, n + 1), e),
        np.tile(np.arange(1, e + 1), n),
        c.ravel(),
        (np.cumsum(rng.integers(0, 900, (n, e)), 0) / np.maximum(c, 1)).ravel(),
        np.zeros(n * e),
    )
    body = codec.encode(samples)
    want = codec.decode(body).rows()
    silent = []
    for pos in range(0, len(body), max(1, len(body) // 300)):
        flipped = bytearray(body)
        flipped[pos] ^= 0x10
        try:
            got = codec.decode(bytes(flipped)).rows()
        except codec.DamagedBlock:
            continue
        if got != want:
            silent.append(pos)
    assert silent == []


def test_the_collector_writes_on_and_says_a_damaged_block_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Periods of 2 hours packed hour by hour: the block of the current period damaged,
    its merge at the period's end fails; the writes go on, through two more period ends."""
    monkeypatch.setenv(pack.PERIOD_ENV, str(2 * 3_600_000))
    path = tmp_path / "c.sqlite"
    url = f"sqlite:///{path}"
    _history(url, 70)  # the first hour packed as a chunk of the period's block
    _cut(path, "lsops_sample_blocks", int(at(0).timestamp() * 1000), by=30)
    capsys.readouterr()
    stored = []
    with Store(url) as store:
        for m in range(70, 400, 2):
            s = make_scrape(m, {"/a": (3 * m, 12.5, 0.0), "/b": (m, 40.0, 0.25)}, target="web")
            stored.append(store.record_scrape(s))
        assert all(stored)
        assert len(store.scrapes(at(70), at(400))) == len(stored)
        # the periods after the damaged one were packed
        with store.engine.connect() as conn:
            periods = conn.execute(text("SELECT period_ts FROM lsops_sample_blocks")).scalars()
            assert len(set(periods)) >= 3
    err = capsys.readouterr().err.splitlines()
    said = [line for line in err if "is damaged" in line]
    assert len(said) == 1, err
    assert said[0].startswith(f"lsops: cannot pack {url}: a packed block of 'web' 2026-10-01")


def test_a_damaged_sqlite_page_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        for m in range(3000):
            store.record_scrape(make_scrape(m, None, target="web"))
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = con.execute("PRAGMA page_size").fetchone()[0]
    # the leaf pages of lsops_scrapes (its rowid b-tree: the table's own pages)
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'lsops_scrapes'").fetchone()
    con.close()
    with open(path, "r+b") as f:
        f.seek((root[0] - 1) * size)
        page = f.read(size)
        assert page[0] == 0x05  # an interior page: its children are the leaves
        last = int.from_bytes(page[8:12], "big")  # its right-most child: the last leaf
        f.seek((last - 1) * size + 2000)  # read while fetching, after the first rows
        f.write(bytes(range(256)) + bytes(44))
    with Store(url) as store, pytest.raises(StoreError) as info:
        store.scrapes(target="web")  # in the index's order: rows fetched as they are read
    assert _one_line(info).startswith(f"cannot read store {url}: ")


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(f"sqlite:///{path}")
    assert _one_line(info) == (
        f"sqlite:///{path} is not an lsops store: it holds other tables (orders, users)"
    )
    assert path.read_bytes() == before  # no table, no WAL mode
    assert not Path(f"{path}-wal").exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with Store(f"sqlite:///{empty}") as store:  # an empty file becomes a store
        store.record_scrape(make_scrape(0, None))
        assert len(store.scrapes()) == 1
