"""Packing under two writers side by side (issue 14, the demo's history workers): one
backfills older hours of a target while the other writes its later hours, each through
its own Store. Each writer packs its own hours as it leaves them (not everything up to
the target's latest hour); the answers equal the oracle's and a never-packed store's.
Also: the borrow of a write's neighbours decodes only the chunks holding them
(`codec.decode_sids`), the same samples as the whole block filtered.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from lsops_lib.models import Scrape
from lsops_lib.store import Store, codec, pack
from lsops_lib.times import to_ms
from tests.fixtures.store import START, Oracle, assert_same_intervals, at, make_scrape

PATHS = ["/api/copilot/chat", "/api/projects", "/health", "/api/context/search"]
PERIOD = 2 * 3_600_000  # packed hour by hour in chunks, merged when over


def _history(seed: int, first: float, last: float) -> list[Scrape]:
    """Scrapes every 5 minutes in [first, last) (minutes after T0): growing counters, a
    restart, failed scrapes."""
    rng = random.Random(seed)
    start = START
    counts = {p: [0, 0, 0] for p in PATHS}
    out: list[Scrape] = []
    minute = first
    while minute < last:
        if rng.random() < 0.04:
            out.append(make_scrape(minute, None))
        else:
            if rng.random() < 0.02:  # a restart: counters from nothing
                start = to_ms(at(minute)) - 500
                counts = {p: [0, 0, 0] for p in PATHS}
            for c in counts.values():
                n = rng.choice([0, 1, 3, 12])
                c[0] += n
                c[1] += n * rng.randint(1, 400)
                c[2] += sum(rng.random() < 0.1 for _ in range(n))
            endpoints = {
                p: (c[0], c[1] / c[0] if c[0] else 0.0, c[2] / c[0] if c[0] else 0.0)
                for p, c in counts.items()
            }
            out.append(make_scrape(minute, endpoints, uptime_start=start))
        minute += 5
    return out


def _side_by_side(url: str, older: list[Scrape], newer: list[Scrape]) -> None:
    """Two Stores on one file writing alternately, as the demo's two workers."""
    a, b = Store(url), Store(url)
    try:
        for i in range(max(len(older), len(newer))):
            if i < len(older):
                assert a.record_scrape(older[i])
            if i < len(newer):
                assert b.record_scrape(newer[i])
    finally:
        a.close()
        b.close()


def _counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        blocks = conn.execute(text("SELECT COUNT(*) FROM lsops_sample_blocks")).scalar()
        rows = conn.execute(text("SELECT COUNT(*) FROM lsops_samples")).scalar()
    return int(blocks or 0), int(rows or 0)


def _assert_as_oracle_and_never_packed(packed: Store, plain: Store, written: list[Scrape]) -> None:
    """The packed store answers as the oracle of `written` and as the never-packed store,
    packed up to about each writer's last hour."""
    oracle = Oracle(written)
    blocks, rows = _counts(packed)
    assert blocks >= 4  # both writers' periods were packed ...
    assert rows <= 2 * 13 * len(PATHS)  # ... up to about each one's last hour
    for bucket in ("hour", "scrape", "minute"):
        want = oracle.endpoint_intervals(None, None, bucket=bucket)
        assert_same_intervals(packed.endpoint_intervals(bucket=bucket), want, bucket)
    got = packed.resets()
    assert sorted(zip(got["ts"], got["kind"], got["target"], strict=True)) == oracle.resets()
    for name in ("scrapes", "health", "services", "counter_intervals"):
        pd.testing.assert_frame_equal(getattr(packed, name)(), getattr(plain, name)(), obj=name)


def _halves_and_never_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> tuple[list[Scrape], list[Scrape], str, str]:
    """An older and a newer half of 10 hours (a late start), the never-packed store of
    both written side by side, and the URL of the store to pack (stores created from here
    on pack by PERIOD): (older, newer, packed_url, rows_url)."""
    older = _history(seed, 2, 300)
    newer = _history(seed + 100, 300, 600)
    packed_url = f"sqlite:///{tmp_path / 'packed.sqlite'}"
    rows_url = f"sqlite:///{tmp_path / 'rows.sqlite'}"
    monkeypatch.setenv(pack.PERIOD_ENV, "0")
    _side_by_side(rows_url, older, newer)
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    return older, newer, packed_url, rows_url


@pytest.mark.parametrize("seed", [1, 2])
def test_two_writers_side_by_side_answer_as_one_never_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    older, newer, packed_url, rows_url = _halves_and_never_packed(tmp_path, monkeypatch, seed)
    _side_by_side(packed_url, older, newer)

    written = [s for pair in zip(older, newer, strict=True) for s in pair]
    with Store(packed_url) as packed, Store(rows_url) as plain:
        _assert_as_oracle_and_never_packed(packed, plain, written)
        for s in written[::9]:
            assert packed.record_scrape(s) is False  # a retry stores nothing twice


@pytest.mark.parametrize("seed", [3, 4])
def test_deferred_packing_packs_once_at_the_end_and_answers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """`defer_packing` (the demo's workers, one segment of days at a time): the writes
    pack nothing, `pack_deferred` packs the periods they wrote up to the last one's hour,
    late writes into another writer's packed periods are merged; answers as the oracle's
    and a never-packed store's."""
    older, newer, packed_url, rows_url = _halves_and_never_packed(tmp_path, monkeypatch, seed)
    a, b = Store(packed_url), Store(packed_url)
    try:
        b.defer_packing()  # the newer half first, deferred, packed at its end
        for s in newer:
            assert b.record_scrape(s)
        assert _counts(b) == (0, sum(len(s.metrics.endpoints) for s in newer if s.metrics))
        assert b.pack_deferred() > 0
        blocks_b, rows_b = _counts(b)
        assert blocks_b >= 2 and rows_b <= 13 * len(PATHS)  # all but the last hour
        a.defer_packing()  # then the older half: its last hour is late into b's blocks
        for s in older:
            assert a.record_scrape(s)
        assert _counts(a)[0] == blocks_b
        a.pack_deferred()
        assert b.record_scrape(newer[-1]) is False  # written as usual again
    finally:
        a.close()
        b.close()

    with Store(packed_url) as packed, Store(rows_url) as plain:
        _assert_as_oracle_and_never_packed(packed, plain, newer + older)


def test_decode_sids_decodes_the_scrapes_asked_for() -> None:
    rng = np.random.default_rng(7)
    chunks: list[list[tuple[int, int, int, float, float]]] = []
    sid = 100
    for _ in range(3):  # three chunks, as three hours of a period
        rows = []
        for _ in range(12):
            sid += int(rng.integers(1, 3))
            for eid in sorted(rng.choice(np.arange(1, 9), size=5, replace=False).tolist()):
                n = int(rng.integers(0, 500))
                rows.append((sid, eid, n, float(rng.integers(0, 90_000)) / max(n, 1), 0.0))
        chunks.append(rows)
    body = codec.encode(codec.Samples.of_rows(chunks[0]))
    for rows in chunks[1:]:
        body = codec.append(body, codec.Samples.of_rows(rows))
    every = [r for rows in chunks for r in rows]
    all_sids = sorted({r[0] for r in every})
    for wanted in ([all_sids[0]], [all_sids[13], all_sids[30]], all_sids[-3:], [1, 10**9]):
        got = codec.decode_sids(body, np.array(sorted(wanted), np.int64)).rows()
        assert sorted(got) == sorted(r for r in every if r[0] in wanted)
        # in the order the whole block gives them (what the write path inserted before)
        whole = codec.decode(body)
        assert got == [r for r in whole.rows() if r[0] in wanted]
