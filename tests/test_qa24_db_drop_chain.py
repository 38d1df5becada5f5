"""QA 24, every DROP lsops proposes run together, on a real PostgreSQL cluster: a redundant
index is dropped only while an index covering it stays. The catalog, read here with plain
SQL (never through lsops), says afterwards that

- every index that had scans still has an index serving its leading key columns (itself
  or one whose leading key columns start with them);
- every foreign key keeps a supporting index;
- of a chain of unused indexes covering one another, one stays.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lsops_lib import db
from lsops_lib.db import indexes, recommend
from tests.test_qa24_db_recommend import (
    FK_WITHOUT_INDEX,
    NO_MIN_AGE,
    _libpq,
    _rows,
    _statements,
    _wait_for_stats,
    _write,
)

pytestmark = pytest.mark.postgres

# (table, index, leading key attnums) of every index of the public tables, with its scans
INDEXES = """
SELECT t.relname, i.relname,
       (string_to_array(x.indkey::text, ' ')::int2[])[1:x.indnkeyatts],
       COALESCE(s.idx_scan, 0)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
WHERE t.relnamespace = 'public'::regnamespace
ORDER BY 1, 2
"""


def _proposed_drops(url: str) -> list[str]:
    """Every DROP INDEX lsops proposes (redundant and unused), as it prints them."""
    with db.connect(url) as insp:
        unused = indexes.unused_indexes(insp, thresholds=NO_MIN_AGE)
        duplicate = indexes.duplicate_indexes(insp)
        recs = recommend.recommendations(
            {"unused": unused, "duplicate": duplicate}, NO_MIN_AGE, insp=insp
        )
    return sorted(
        s
        for r in recs.itertuples()
        if isinstance(r.sql, str)
        for s in _statements(r.sql)
        if s.startswith("DROP INDEX")
    )


def _unserved(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> list[str]:
    """The indexes that had scans and whose leading key columns no index left leads."""
    return [
        name
        for table, name, keys, scans in before
        if scans
        and not any(t == table and list(k)[: len(keys)] == list(keys) for t, _, k, _ in after)
    ]


def _scan(url: str, *queries: str) -> None:
    """Run `queries` with index scans forced (no sequential nor bitmap scan)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        for query in queries:
            conn.execute(query).fetchall()  # type: ignore[arg-type]


def _scans(url: str, index: str) -> str:
    return f"SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = '{index}'"


def test_a_used_index_whose_cover_is_unused_is_kept(pg_url: str) -> None:
    """The QA's events: idx_events_ts (scanned) and idx_events_ts_dup are covered by
    idx_events_ts_kind, never scanned. Dropping the three left ts unindexed; now the
    unused cover and the duplicate go, idx_events_ts stays. Also a foreign key whose only
    supporting index in use is redundant under an unused one: one of them stays."""
    _write(
        pg_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, ts timestamptz, kind text)",
        "INSERT INTO events SELECT g, '2026-01-01'::timestamptz + g * interval '1 minute',"
        " 'k' || g % 7 FROM generate_series(1, 5000) g",
        "CREATE INDEX idx_events_ts ON events (ts)",
        "CREATE TABLE owners (id bigint PRIMARY KEY)",
        "INSERT INTO owners SELECT generate_series(1, 100)",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, owner_id bigint REFERENCES owners(id),"
        " created int)",
        "INSERT INTO orders (owner_id, created) SELECT 1 + g % 100, g"
        " FROM generate_series(1, 5000) g",
        "CREATE INDEX orders_owner ON orders (owner_id)",
        "ANALYZE",
    )
    # the scans before the other indexes exist: they go to these two only
    _scan(
        pg_url,
        "SELECT id FROM events WHERE ts = '2026-01-02'",
        "SELECT id FROM orders WHERE owner_id = 7",
    )
    _wait_for_stats(pg_url, _scans(pg_url, "idx_events_ts"), (1,))
    _wait_for_stats(pg_url, _scans(pg_url, "orders_owner"), (1,))
    _write(
        pg_url,
        "CREATE INDEX idx_events_ts_dup ON events (ts)",
        "CREATE INDEX idx_events_ts_kind ON events (ts, kind)",
        "CREATE INDEX orders_owner_created ON orders (owner_id, created)",
    )
    before = _rows(pg_url, INDEXES)
    drops = _proposed_drops(pg_url)
    _write(pg_url, *drops)
    after = _rows(pg_url, INDEXES)
    assert _unserved(before, after) == []
    assert _rows(pg_url, FK_WITHOUT_INDEX) == []
    assert drops == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.idx_events_ts_dup",
        "DROP INDEX CONCURRENTLY IF EXISTS public.idx_events_ts_kind",
        "DROP INDEX CONCURRENTLY IF EXISTS public.orders_owner_created",
    ]
    assert [(t, i) for t, i, _, _ in after] == [
        ("events", "events_pkey"),
        ("events", "idx_events_ts"),
        ("orders", "orders_owner"),
        ("orders", "orders_pkey"),
        ("owners", "owners_pkey"),
    ]
    # and lsops, asked again, says what is left: nothing redundant, nothing to drop
    assert _proposed_drops(pg_url) == []


def test_a_chain_of_unused_indexes_keeps_one(pg_url: str) -> None:
    """Two unused indexes, one covering the other: one of them is dropped, not both; of a
    chain of three unused ones, two. A used index elsewhere on the table stays served."""
    _write(
        pg_url,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int)",
        "INSERT INTO t SELECT g, g % 50, g % 7, g FROM generate_series(1, 3000) g",
        "CREATE INDEX t_c ON t (c)",
        "ANALYZE",
    )
    _scan(pg_url, "SELECT id FROM t WHERE c = 5")
    _wait_for_stats(pg_url, _scans(pg_url, "t_c"), (1,))
    _write(
        pg_url,
        "CREATE INDEX t_a ON t (a)",
        "CREATE INDEX t_a_b ON t (a, b)",
        "CREATE TABLE u (id int PRIMARY KEY, x int, y int, z int)",
        "CREATE INDEX u_x ON u (x)",
        "CREATE INDEX u_x_y ON u (x, y)",
        "CREATE INDEX u_x_y_z ON u (x, y, z)",
    )
    with db.connect(pg_url) as insp:
        unused = indexes.unused_indexes(insp, thresholds=NO_MIN_AGE)
        duplicate = indexes.duplicate_indexes(insp)
    recs = recommend.recommendations({"unused": unused, "duplicate": duplicate}, NO_MIN_AGE)
    before = _rows(pg_url, INDEXES)
    drops = _proposed_drops(pg_url)
    _write(pg_url, *drops)
    after = _rows(pg_url, INDEXES)
    assert _unserved(before, after) == []
    # one index still leads with a on t, one with x on u (both attnum 2)
    leading = sorted((t, i) for t, i, k, _ in after if list(k)[0] == 2)
    assert leading == [("t", "t_a"), ("u", "u_x_y")]
    assert drops == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_a_b",
        "DROP INDEX CONCURRENTLY IF EXISTS public.u_x",
        "DROP INDEX CONCURRENTLY IF EXISTS public.u_x_y_z",
    ]
    # the kept ones say why no DROP is proposed for them, and `lsops db indexes` agrees
    kept = recs[(recs["kind"] == "duplicate_index") & recs["sql"].isna()]
    assert list(kept["object"]) == ["public.t_a", "public.u_x_y"]
    assert "kept, its cover t_a_b is proposed for a drop" in kept.iloc[0]["title"]
    proposed = dict(zip(unused["index"], unused["drop_proposed"], strict=True))
    assert proposed == {
        "t_a": False,
        "t_a_b": True,
        "u_x": True,
        "u_x_y": False,
        "u_x_y_z": True,
    }
