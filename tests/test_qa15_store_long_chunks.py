"""The long raw reads, chunk by chunk: `endpoint_intervals` at the minute and scrape
buckets (and `_endpoint_intervals_raw`, the raw fallback, at every bucket) read their
window in chunks of `intervals.RAW_CHUNK_MS` (a week; a few minutes here), each chunk's
samples decoded on their own, so that a year's read costs time in proportion to its rows
and memory near its answer (the figures are in the module's comment).

By the delta rule ([a, b) + [b, c) = [a, c): a scrape's predecessor found wherever its ts
lies), the chunked answer must be the one-piece answer (bit for bit on SQLite; on
PostgreSQL, whose SUM adds a bucket's doubles in the order of its plan, to the last bits
of the time sums), and both the
oracle's (`tests.fixtures.store.Oracle`, plain Python over the scrapes as written): on a
seeded history of two targets with restarts, resets, counter drops, failed scrapes, ts
ties, late and repeated writes, in a store packing 20-minute periods (the latest hour
rows, the periods before it blocks, late samples rows beside their block), on SQLite and
PostgreSQL. And a chunked read never holds more than a few periods of decoded samples.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from lsops_lib.models import Scrape
from lsops_lib.store import Store, intervals, pack
from lsops_lib.times import to_ms
from tests.fixtures.store import Oracle, assert_same_intervals, make_scrape
from tests.test_store_rollup import history, span, write_order

PERIOD = 20 * 60_000  # packed periods of 20 minutes: a few hours of history, many blocks
SMALL = 13 * 60_000  # chunks of 13 minutes (rounded up to the bucket): cuts inside periods
ONE_PIECE = 2**62  # no cut


def record(store: Store, seed: int, scrapes: int) -> list[Scrape]:
    """The two-target history of test_store_rollup, written as there (late, repeated)."""
    written = history(seed, "a", scrapes=scrapes) + history(seed, "b", scrapes=scrapes)
    order = write_order(seed, sorted(written, key=lambda s: s.collected_at))
    for s in order:
        store.record_scrape(s)
    return order


class Reads:
    """`endpoint_intervals` and `_endpoint_intervals_raw` with RAW_CHUNK_MS set; counts
    the chunks read (`pack.samples_source` calls) and the most decoded samples held."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.store, self.mp = store, monkeypatch
        self.chunks = 0
        self.held = 0
        source = pack.samples_source

        def counting(conn: Any, *args: Any, **kwargs: Any) -> str:
            expr = source(conn, *args, **kwargs)
            self.chunks += 1
            if expr != "lsops_samples":
                held = conn.execute(text(f"SELECT COUNT(*) FROM {pack.UNPACKED}")).scalar()
                self.held = max(self.held, int(held))
            return expr

        monkeypatch.setattr(pack, "samples_source", counting)

    def read(self, chunk_ms: int, *args: Any, raw: bool = False, **kwargs: Any) -> pd.DataFrame:
        self.mp.setattr(intervals, "RAW_CHUNK_MS", chunk_ms)
        if raw:
            return self.store._endpoint_intervals_raw(*args, **kwargs)
        return self.store.endpoint_intervals(*args, **kwargs)


def windows(first: datetime, last: datetime) -> list[tuple[Any, Any]]:
    """Unbounded, the whole span, unaligned pieces, one across a gap, an empty one."""
    mid = first + (last - first) / 2
    odd = timedelta(minutes=37, seconds=11, milliseconds=5)
    return [
        (None, None),
        (first, last),
        (first + odd, mid + odd),
        (mid - odd, None),
        (None, first + 3 * odd),
        (last + timedelta(hours=1), None),
    ]


SCOPES: list[dict[str, Any]] = [{}, {"target": "a"}, {"target": "b", "include_monitoring": True}]


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_chunked_reads_equal_one_piece_and_the_oracle(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    with Store(store_url) as store:
        written = record(store, 5, 50)
        with store.engine.connect() as conn:
            blocks = conn.execute(text("SELECT COUNT(*) FROM lsops_sample_blocks")).scalar()
            rows = conn.execute(text("SELECT COUNT(*) FROM lsops_samples")).scalar()
        assert blocks and blocks > 10 and rows  # packed periods and rows, side by side
        oracle = Oracle(written)
        reads = Reads(store, monkeypatch)
        exact = store.dialect == "sqlite"  # bit for bit; PostgreSQL: to the last bits
        first, last = span(written)
        compared = 0
        for start, end in windows(first, last):
            for kwargs in SCOPES:
                for bucket, raw in (("minute", False), ("scrape", False), ("hour", True),
                                    ("day", True)):  # fmt: skip
                    context = (start, end, bucket, kwargs)
                    reads.chunks = 0
                    whole = reads.read(ONE_PIECE, start, end, bucket=bucket, raw=raw, **kwargs)
                    assert reads.chunks <= 1, context
                    chunked = reads.read(SMALL, start, end, bucket=bucket, raw=raw, **kwargs)
                    if exact:
                        pd.testing.assert_frame_equal(chunked, whole, check_exact=True, obj=context)
                    else:  # PostgreSQL's SUM adds a bucket's doubles in its plan's order
                        assert_same_intervals(chunked, whole, context)
                    want = oracle.endpoint_intervals(start, end, bucket=bucket, **kwargs)
                    assert_same_intervals(chunked, want, context)
                    compared += len(chunked)
        assert compared > 1000  # the comparison compared something
        # the history holds what the rule is about, across the cuts
        assert set(store.resets()["kind"]) == {"restart", "reset", "counter_drop"}
        # the whole history read at once, and in chunks: many, each of a few periods
        reads.chunks = reads.held = 0
        reads.read(ONE_PIECE, bucket="minute", include_monitoring=True)
        whole_held = reads.held
        reads.chunks = reads.held = 0
        reads.read(SMALL, bucket="minute", include_monitoring=True)
        assert reads.chunks > 50
        assert 0 < reads.held < whole_held / 5, (reads.held, whole_held)


def test_no_cut_at_the_epoch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQL's integer division truncates toward 0: the minute bucket 0 holds the instants
    from -59,999 ms to 59,999 ms. A chunked read must not cut it in two."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    minutes = (epoch - (datetime(2026, 10, 1, tzinfo=UTC))).total_seconds() / 60
    start = to_ms(epoch) - 86_400_000
    written = [
        make_scrape(minutes + m, {"/api/a": (n, 10.0, 0.0)}, uptime_start=start)
        for m, n in ((-1.5, 1), (-0.5, 4), (0.5, 9), (1.5, 16))
    ]
    for s in written:
        store.record_scrape(s)
    reads = Reads(store, monkeypatch)
    whole = reads.read(ONE_PIECE, bucket="minute")
    chunked = reads.read(60_000, bucket="minute")
    assert whole["requests"].tolist() == [8, 7]  # buckets 0 (-30 s and +30 s), 60 s
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    assert_same_intervals(chunked, Oracle(written).endpoint_intervals(bucket="minute"))
