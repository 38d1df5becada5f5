"""QA24 (database inspection): lsops must not disturb, nor count among, what it measures,
and must not judge on a stale figure. On real PostgreSQL (the suite's clusters; pgvector
only in the pgserver one: those tests skip without it), every expected value asked here
independently (psycopg, the statistics views, count(*)), never through lsops.

1. The recall test of `db vectors` / the report's retrieval quality scans the vector index:
   those scans must not make a never-used index look used (pg_stat_user_indexes.idx_scan,
   the unused-index list), whatever the role.
6. The restore drill must not call a perfect dump "rows off" because the planner's row
   estimate (reltuples) is stale: such a table is counted exactly first.
9. lsops's connection check must not share its pg_stat_statements entry (queryid) with an
   application's `SELECT 1`: the application's pings stay listed, with their own count.
11. An undated (created_at NULL) indexing-log row is never an entity's latest entry while a
   dated one exists.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.db import indexes, queries, reindex, vectors
from lsops_lib.db.backups import check_backups, live_row_counts
from tests.fixtures.backups import pg_dump
from tests.fixtures.vectors import make_docs

pytestmark = pytest.mark.postgres

HNSW = "docs_embedding_hnsw"
PLAIN_ROLE = "qa24_plain"  # reads everything, may NOT turn track_counts off
PLAIN_PASSWORD = "qa24-plain-pw"


def _dbname(url: str) -> str:
    return str(sa.engine.make_url(url).database)


def _wait_for_lsops_to_leave(conn: psycopg.Connection) -> None:
    """No lsops session left in this database: a backend hands its counts over to the
    statistics before it leaves pg_stat_activity."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        (left,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'lsops' AND datname = current_database()"
        ).fetchone()
        if left == 0:
            return
        time.sleep(0.1)
    raise AssertionError("lsops sessions still open")


def _idx_scan(cluster: Any, dbname: str, index: str) -> int:
    """The index's idx_scan as pg_stat_user_indexes shows it, once lsops is gone."""
    with cluster.connect(dbname) as conn:
        _wait_for_lsops_to_leave(conn)
        (scans,) = conn.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (index,)
        ).fetchone()
    return int(scans)


def _unused(url: str) -> set[str]:
    with db.connect(url) as insp:
        return set(indexes.unused_indexes(insp)["index"])


# --- 1. the recall test leaves index usage as it was ---------------------------------------


@pytest.fixture
def docs(pgvector_cluster: Any) -> Any:
    """A database with 400 unit vectors (16 dims) and a fresh HNSW index nobody scanned."""
    name = f"qa24_vec_{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(24)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    url = make_docs(
        pgvector_cluster,
        name,
        x,
        f"CREATE INDEX {HNSW} ON docs USING hnsw (embedding vector_cosine_ops)",
    )
    try:
        yield name, url
    finally:
        pgvector_cluster.drop_database(name)


@pytest.fixture
def plain_role_url(pgvector_cluster: Any, docs: tuple[str, str]) -> str:
    """The docs database as a role that reads everything but may not SET track_counts."""
    with pgvector_cluster.connect("postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PLAIN_ROLE,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE ROLE {PLAIN_ROLE} LOGIN PASSWORD '{PLAIN_PASSWORD}'")
            conn.execute(f"GRANT pg_read_all_data, pg_monitor TO {PLAIN_ROLE}")
        (may,) = conn.execute(
            "SELECT has_parameter_privilege(%s, 'track_counts', 'SET')", (PLAIN_ROLE,)
        ).fetchone()
    assert may is False
    url = sa.engine.make_url(pgvector_cluster.password_url(docs[0]))
    return url.set(username=PLAIN_ROLE, password=PLAIN_PASSWORD).render_as_string(False)


def _app_scans_the_index(cluster: Any, dbname: str) -> None:
    """The application's one nearest-neighbour search through the HNSW index."""
    with cluster.connect(dbname) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT id FROM docs ORDER BY embedding <=> "
            "(SELECT embedding FROM docs WHERE id = 1) LIMIT 5"
        ).fetchall()
        assert HNSW in " ".join(r[0] for r in plan)
        conn.execute(
            "SELECT id FROM docs ORDER BY embedding <=> "
            "(SELECT embedding FROM docs WHERE id = 1) LIMIT 5"
        ).fetchall()


def test_db_vectors_and_the_report_leave_a_never_used_index_unused(
    pgvector_cluster: Any, docs: tuple[str, str]
) -> None:
    name, url = docs  # the superuser: may turn track_counts off for its transaction
    assert _idx_scan(pgvector_cluster, name, HNSW) == 0
    assert HNSW in _unused(url)

    result = CliRunner().invoke(
        main, ["db", "vectors", "--sample", "20", "--json"], env={"LSOPS_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    (index,) = [i for i in json.loads(result.stdout)["indexes"] if i["index"] == HNSW]
    report = db.optimization_report(url=url, store=None)
    assert report.reachable

    assert _idx_scan(pgvector_cluster, name, HNSW) == 0  # was 40, then 140
    assert HNSW in _unused(url)
    assert index["recall_at_k"] is not None and index["sample"] == 20  # measured all the same
    assert index["own_scans"] == 0


def test_a_role_that_may_not_stop_counting_measures_only_indexes_already_used(
    pgvector_cluster: Any, docs: tuple[str, str], plain_role_url: str
) -> None:
    name, _url = docs
    with db.connect(plain_role_url) as insp:
        rq = vectors.retrieval_quality(insp, sample=20, k=5)
    (row,) = rq.indexes[rq.indexes["index"] == HNSW].to_dict("records")
    assert row["recall_at_k"] is None and row["own_scans"] == 0
    assert row["note"].startswith("never scanned (idx_scan 0): recall not measured")
    assert "GRANT SET ON PARAMETER track_counts" in row["note"]
    assert _idx_scan(pgvector_cluster, name, HNSW) == 0
    assert HNSW in _unused(plain_role_url)

    # once the application used it, lsops measures it and says what it added
    _app_scans_the_index(pgvector_cluster, name)
    assert _idx_scan(pgvector_cluster, name, HNSW) == 1
    with db.connect(plain_role_url) as insp:
        rq = vectors.retrieval_quality(insp, sample=20, k=5)
    (row,) = rq.indexes[rq.indexes["index"] == HNSW].to_dict("records")
    after = _idx_scan(pgvector_cluster, name, HNSW)
    assert row["recall_at_k"] is not None
    assert after > 1 and row["own_scans"] == after - 1  # exactly what idx_scan grew by
    assert any(f"{HNSW} {after - 1:,}" in n and "count in idx_scan" in n for n in rq.notes)


# --- 6. a stale planner estimate alone never makes a mismatch -------------------------------

TABLES_SQL = """
CREATE TABLE t_stale (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
CREATE TABLE t_moved (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
INSERT INTO t_stale SELECT generate_series(1, 150000);
INSERT INTO t_moved SELECT generate_series(1, 150000);
ANALYZE t_stale, t_moved;
DELETE FROM t_stale WHERE id > 50000;  -- not analyzed: reltuples stays 150000
"""


def _reltuples(conn: psycopg.Connection, table: str) -> int:
    (n,) = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table,)
    ).fetchone()
    return int(n)


def _count(conn: psycopg.Connection, table: str) -> int:
    (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    return int(n)


def test_the_drill_counts_a_table_whose_stale_estimate_disagrees_with_the_dump(
    pg_cluster: Any, pg_url: str, tmp_path: Path
) -> None:
    name = _dbname(pg_url)
    with pg_cluster.connect(name) as conn:
        conn.execute(TABLES_SQL)  # type: ignore[arg-type]
    dump = pg_dump(pg_cluster, name, tmp_path / "nightly.dump", "-Fc")
    with pg_cluster.connect(name) as conn:
        # after the dump, t_moved really changes (and is analyzed): a true mismatch
        conn.execute("DELETE FROM t_moved WHERE id > 50000")
        conn.execute("ANALYZE t_moved")
        stale = (_reltuples(conn, "t_stale"), _count(conn, "t_stale"))
        moved = (_reltuples(conn, "t_moved"), _count(conn, "t_moved"))
    assert stale == (150000, 50000) and moved == (50000, 50000)

    with db.connect(pg_url) as insp:
        check = check_backups([dump], live=insp, restore=True)
    drill = check.restore
    assert drill is not None and drill.error is None
    shown = {t["table"]: t for t in drill.tables}
    # t_stale: dump 50,000 = live 50,000 (counted, not the estimate 150,000)
    assert shown["public.t_stale"] == {
        "table": "public.t_stale",
        "dump_rows": 50000,
        "live_rows": 50000,
        "match": True,
    }
    # t_moved: the dump holds 150,000, the live table 50,000 (exactly): still a mismatch
    assert shown["public.t_moved"] == {
        "table": "public.t_moved",
        "dump_rows": 150000,
        "live_rows": 50000,
        "match": False,
    }
    assert drill.mismatches == ["public.t_moved"] and drill.estimated == []
    assert check.exit_code == 1


def test_a_recount_that_cannot_finish_keeps_the_estimate_as_an_estimate(
    pg_cluster: Any, pg_url: str
) -> None:
    name = _dbname(pg_url)
    with pg_cluster.connect(name) as conn:
        conn.execute(TABLES_SQL)  # type: ignore[arg-type]
    expected = {"public.t_stale": 50000, "public.t_moved": 150000}
    t = Thresholds()
    with db.connect(pg_url, statement_timeout_ms=1000) as insp:
        counts = live_row_counts(
            insp,
            ["public"],
            t.backup_exact_rows,
            expected=expected,
            tolerance=t.backup_rows_tolerance,
        )
        assert counts == {"public.t_stale": (50000, True), "public.t_moved": (150000, False)}

        # t_stale locked ACCESS EXCLUSIVE: its count(*) meets the statement timeout
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            with pg_cluster.connect(name) as conn, conn.transaction():
                conn.execute("LOCK TABLE t_stale IN ACCESS EXCLUSIVE MODE")
                locked.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert locked.wait(30)
            started = time.monotonic()
            counts = live_row_counts(
                insp,
                ["public"],
                t.backup_exact_rows,
                expected=expected,
                tolerance=t.backup_rows_tolerance,
            )
            assert time.monotonic() - started < 10
        finally:
            release.set()
            holder.join(30)
    assert counts == {"public.t_stale": (150000, False), "public.t_moved": (150000, False)}


# --- 9. lsops's check has a pg_stat_statements entry of its own ----------------------------


def test_the_applications_select_1_keeps_its_own_entry_and_count(
    pg_cluster: Any, pg_url: str
) -> None:
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("pg_stat_statements is not available here")
    name = _dbname(pg_url)
    pg_cluster.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=name)
    with pg_cluster.connect(name) as conn:
        conn.execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database "
            "WHERE datname = current_database()), 0)"
        )
    with db.connect(pg_url):  # lsops first: its check names the entry it lands in
        pass
    with pg_cluster.connect(name) as app:  # the same role as lsops (one-role setups)
        for _ in range(500):
            app.execute("SELECT 1")  # the application's health ping
    with db.connect(pg_url) as insp:
        listed = queries.query_stats(insp)
    with pg_cluster.connect(name) as conn:
        rows = conn.execute(
            "SELECT query, calls FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query LIKE 'SELECT $1%' AND query NOT LIKE '%FROM%'"
        ).fetchall()
    entries = {str(q): int(c) for q, c in rows}
    assert entries["SELECT $1"] == 500  # the pings alone: none of lsops's calls in it
    pings = listed[listed["query"] == "SELECT $1"]
    assert pings["calls"].tolist() == [500]
    assert not listed["query"].str.contains("lsops").any()


# --- 11. an undated log row is never the latest --------------------------------------------

P1 = "00000000-0000-0000-0000-000000000001"  # undated failure, later a dated completed
P2 = "00000000-0000-0000-0000-000000000002"  # dated completed, then a dated failure
P3 = "00000000-0000-0000-0000-000000000003"  # only an undated failure


def test_an_undated_failure_does_not_outrank_a_dated_completion(pg_url: str) -> None:
    db.load_longsang_schema(pg_url)
    with psycopg.connect(
        sa.engine.make_url(pg_url).set(drivername="postgresql").render_as_string(False),
        autocommit=True,
    ) as conn:
        conn.execute(
            f"""
            INSERT INTO context_indexing_log
                (entity_type, entity_id, status, error_message, created_at) VALUES
              ('project', '{P1}', 'failed', 'old failure, undated', NULL),
              ('project', '{P1}', 'completed', NULL, now() - interval '1 hour'),
              ('project', '{P2}', 'completed', NULL, now() - interval '2 hours'),
              ('project', '{P2}', 'failed', 'dated failure', now() - interval '1 hour'),
              ('project', '{P3}', 'failed', 'only entry, undated', NULL)
            """  # type: ignore[arg-type]
        )
    with db.connect(pg_url) as insp:
        failed = reindex.failed_in_log(insp, names=False)
        listing = reindex.reindex_list(insp)
    assert sorted(zip(failed["entity_id"], failed["error_message"], strict=True)) == [
        (P2, "dated failure"),
        (P3, "only entry, undated"),
    ]
    # the dated failure first (newest first within a type), the undated one last
    assert failed["entity_id"].tolist() == [P2, P3]
    listed = listing.entities[listing.entities["reason"] == "failed"]
    assert sorted(listed["entity_id"]) == [P2, P3]
