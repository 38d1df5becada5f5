"""The error records a write stores (issue 14, the write path's CPU): a write inserts only
the records its target's previous answer did not hold (the rest are stored), and the
fingerprints are computed once per record. Checked against a plain computation of the
distinct records and the first scrape that saw each, over answers that repeat, drop and
bring back records, repeat one within an answer, from two targets and two writers.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from lsops_lib.models import ErrorRecord
from lsops_lib.store import Store
from lsops_lib.times import to_ms
from tests.fixtures.store import at, make_scrape

BASE = 1_790_000_000_000


def _pool(rng: random.Random) -> list[ErrorRecord]:
    out = []
    for i in range(25):
        if rng.random() < 0.5:
            out.append(ErrorRecord("/projects/:id", BASE + i * 1000, "GET", 404))
        else:
            out.append(
                ErrorRecord("/copilot/chat", BASE + i * 1000, error=f"E{i % 3}", context={"i": i})
            )
    return out


def _expected(answers: list[tuple[str, float, list[ErrorRecord]]]) -> list[tuple[Any, ...]]:
    """(target, ts, endpoint, error, first seen) of each distinct record, a record repeated
    within one answer counting once per occurrence."""
    first: dict[tuple[Any, ...], float] = {}
    for target, minute, records in answers:
        seen: dict[tuple[Any, ...], int] = {}
        for rec in records:
            what = (rec.timestamp_ms, rec.endpoint, rec.method, rec.status_code, rec.error)
            n = seen[what] = seen.get(what, 0) + 1
            key = (target, rec.timestamp_ms, rec.endpoint, rec.error, rec.status_code, n)
            first.setdefault(key, minute)
    return sorted((k[0], k[1], k[2], k[3], to_ms(at(m))) for k, m in first.items())


def test_the_stored_error_records_are_the_distinct_ones_first_seen(tmp_path: Any) -> None:
    rng = random.Random(3)
    pool = _pool(rng)
    url = f"sqlite:///{tmp_path / 'errors.sqlite'}"
    writers = [Store(url), Store(url)]
    answers: list[tuple[str, float, list[ErrorRecord]]] = []
    try:
        window = 0
        for k in range(60):
            target = "a" if k % 3 else "b"
            window = min(len(pool) - 8, window + rng.choice([0, 0, 1, 2]))
            records = pool[window : window + 8]
            records = [r for r in records if rng.random() < 0.8]  # some drop, come back
            if records and rng.random() < 0.2:
                records.append(records[0])  # the same record twice in one answer
            answers.append((target, float(k), records))
            scrape = make_scrape(k, {"/a": (k, 1.0, 0.0)}, target=target, errors=records)
            assert writers[k % 2].record_scrape(scrape)
    finally:
        for w in writers:
            w.close()
    with Store(url) as store:
        got = store.error_records()
    rows = sorted(
        (
            t,
            int(ts.value // 1_000_000),
            e,
            None if pd.isna(err) else err,
            int(fs.value // 1_000_000),
        )
        for t, ts, e, err, fs in zip(
            got["target"], got["ts"], got["endpoint"], got["error"], got["first_seen"], strict=True
        )
    )
    assert rows == _expected(answers)
    assert len(rows) > 25  # repeats within answers were stored as such
