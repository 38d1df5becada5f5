"""lsops_lib.db against a real throwaway PostgreSQL with a planted scenario of known answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from lsops_lib import db
from lsops_lib.db import embeddings, indexes, maintenance, queries, recommend, space
from lsops_lib.db.schema import LONGSANG_TABLES, load_longsang_schema, schema_sql
from lsops_lib.exceptions import DatabaseError, ExtensionMissing
from lsops_lib.pgtemp import PostgresCluster
from tests.fixtures.dbreport import DbNotebook
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def insp(longsang_db: Planted) -> Iterator[db.Inspector]:
    with db.connect(longsang_db.password_url) as inspector:
        yield inspector


def _planted(df: pd.DataFrame, planted: Planted) -> pd.DataFrame:
    return df[df["table"].isin(planted.tables)]


def _write(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


# --- sessions ----------------------------------------------------------------------------


def test_sessions_are_read_only_with_timeout_and_name(insp: db.Inspector) -> None:
    assert insp.scalar("SHOW transaction_read_only") == "on"
    assert insp.scalar("SHOW default_transaction_read_only") == "on"
    assert insp.scalar("SHOW application_name") == "lsops"
    assert insp.scalar("SHOW statement_timeout") == "30s"


def test_a_write_through_an_inspection_session_fails(insp: db.Inspector) -> None:
    with pytest.raises(DatabaseError, match="read-only"):
        insp.execute("CREATE TABLE lsops_was_here (x int)")
    with pytest.raises(DatabaseError, match="read-only"):
        insp.frame("INSERT INTO plant_events (payload) VALUES ('x') RETURNING id")
    with pytest.raises(DatabaseError, match="read-only"):
        insp.execute("DROP INDEX idx_plant_orders_note")
    assert insp.has_table("plant_events") and not insp.has_table("lsops_was_here")
    assert "idx_plant_orders_note" in set(indexes.index_catalog(insp)["index"])


def test_statement_timeout_applies(longsang_db: Planted) -> None:
    with db.connect(longsang_db.url, statement_timeout_ms=200) as short:
        with pytest.raises(DatabaseError, match="statement timeout"):
            short.scalar("SELECT pg_sleep(2)")


def test_unreachable_database_is_one_line_without_the_password(pg_cluster: PostgresCluster) -> None:
    url = f"postgresql://lsops_reader:S3cretPW@127.0.0.1:{_closed_port()}/nowhere"
    with pytest.raises(DatabaseError) as info:
        db.connect(url)
    message = str(info.value)
    assert "\n" not in message and "S3cretPW" not in message
    assert "***" in message and "cannot connect" in message
    # wrong password: the server's answer, not the password
    bad = pg_cluster.password_url("postgres").replace(pg_cluster.password, "WrongPW123")
    with pytest.raises(DatabaseError) as info:
        db.connect(bad)
    assert "WrongPW123" not in str(info.value) and pg_cluster.password not in str(info.value)
    assert "password authentication failed" in str(info.value)
    assert pg_cluster.password not in repr(db.Inspector(pg_cluster.password_url("postgres")))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- schema --------------------------------------------------------------------------------


def test_longsang_schema(insp: db.Inspector, longsang_db: Planted) -> None:
    for table in LONGSANG_TABLES:
        assert insp.has_table(table), table
    assert len(LONGSANG_TABLES) == 11
    cat = indexes.index_catalog(insp)
    ce = set(cat[cat["table"] == "context_embeddings"]["index"])
    assert {
        "idx_context_embeddings_entity_type",
        "idx_context_embeddings_entity_id",
        "idx_context_embeddings_project_id",
        "idx_context_embeddings_created_at",
        "context_embeddings_entity_type_entity_id_key",
        "context_embeddings_pkey",
    } <= ce
    created = cat[cat["index"] == "idx_context_embeddings_created_at"]["definition"].iloc[0]
    assert "created_at DESC" in created
    kind = insp.scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'context_embeddings'::regclass AND attname = 'embedding'"
    )
    assert kind == ("vector(1536)" if longsang_db.vector else "real[]")
    assert "stand-in" in schema_sql()


# --- space ---------------------------------------------------------------------------------


def test_space(insp: db.Inspector) -> None:
    assert space.database_size(insp) > 1_000_000
    sizes = space.table_sizes(insp)
    assert list(sizes.columns) == space.SIZE_COLUMNS
    assert set(LONGSANG_TABLES) <= set(sizes["table"])
    assert (
        sizes["total_bytes"] == sizes["table_bytes"] + sizes["index_bytes"] + sizes["toast_bytes"]
    ).all()
    orders = sizes.set_index("table").loc["plant_orders"]
    assert orders["rows_estimate"] == 5000 and orders["index_bytes"] > 0
    assert sizes["total_bytes"].is_monotonic_decreasing


def test_growth_from_stored_snapshots(tmp_path: Path, insp: db.Inspector) -> None:
    store_mod = pytest.importorskip("lsops_lib.store")
    sizes = space.table_sizes(insp)
    day0 = datetime(2026, 11, 1, tzinfo=UTC)
    with store_mod.Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
        store.record_db_sizes("prod", day0, sizes)
        bigger = sizes.copy()
        bigger.loc[bigger["table"] == "plant_orders", "total_bytes"] += 86_400 * 2
        store.record_db_sizes("prod", day0 + timedelta(days=2), bigger)
        snaps = space.growth(store, "prod")
    totals = space.total_growth(snaps)
    assert len(totals) == 2
    assert totals["total_bytes"].iloc[1] - totals["total_bytes"].iloc[0] == 86_400 * 2
    per_table = space.table_growth(snaps)
    top = per_table.iloc[0]
    assert top["table"] == "plant_orders" and top["growth_bytes"] == 86_400 * 2
    assert top["bytes_per_day"] == pytest.approx(86_400)


# --- indexes -------------------------------------------------------------------------------


def test_planted_index_findings_exactly(insp: db.Inspector, longsang_db: Planted) -> None:
    cat = indexes.index_catalog(insp)
    unused = indexes.unused_indexes(insp, cat)
    assert set(_planted(unused, longsang_db)["index"]) == set(longsang_db.unused)
    row = unused[unused["index"] == "idx_plant_orders_note"].iloc[0]
    assert row["scans"] == 0 and row["size_bytes"] > 0
    assert {"stats_reset", "stats_age_days"} <= set(unused.columns)
    # never a primary key, unique or constraint index, never an invalid one
    assert not unused["index"].str.endswith(("_pkey", "_key")).any()
    assert "idx_plant_orders_customer_unique" not in set(unused["index"])

    dup = indexes.duplicate_indexes(insp, cat)
    pairs = set(zip(dup["index"], dup["covered_by"], strict=True))
    assert pairs == {
        *longsang_db.duplicate,
        ("idx_context_embeddings_entity_type", "context_embeddings_entity_type_entity_id_key"),
    }

    invalid = indexes.invalid_indexes(insp, cat)
    assert list(invalid["index"]) == list(longsang_db.invalid)

    fks = indexes.fk_without_index(insp)
    assert [(t, tuple(c)) for t, c in zip(fks["table"], fks["columns"], strict=True)] == list(
        longsang_db.fk_without_index
    )

    seq = indexes.seq_scan_tables(insp)
    assert set(_planted(seq, longsang_db)["table"]) == set(longsang_db.seq_scan)

    vec = indexes.vector_indexes(insp)
    if longsang_db.vector:
        assert list(vec["index"]) == ["idx_context_embeddings_embedding"]
        assert "m=16" in vec["options"].iloc[0]
    else:
        assert vec.empty


def test_duplicate_rules(pg_url: str) -> None:
    _write(
        pg_url,
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c text, d int)",
        "CREATE UNIQUE INDEX t_a_unique ON t (a)",
        "CREATE INDEX t_a ON t (a)",  # covered by the unique index
        "CREATE INDEX t_a_b ON t (a, b)",  # covers t_a too; the unique index is never dropped
        "CREATE INDEX t_id_b ON t (id, b)",  # the primary key is not covered by it
        "CREATE INDEX t_b_1 ON t (b)",
        "CREATE INDEX t_b_2 ON t (b)",  # exact duplicates: exactly one is reported
        "CREATE INDEX t_d_partial ON t (d) WHERE d > 0",
        "CREATE INDEX t_d ON t (d)",  # different predicate: not covered
        "CREATE INDEX t_lower_c ON t (lower(c))",
        "CREATE INDEX t_lower_c_2 ON t (lower(c))",  # same expression: duplicate
        "CREATE INDEX t_c_hash ON t USING hash (c)",
        "CREATE INDEX t_c ON t (c)",  # different method: not covered
        "CREATE INDEX t_c_desc_d ON t (c DESC, d)",  # other sort order: does not cover t_c
    )
    with db.connect(pg_url) as insp:
        dup = indexes.duplicate_indexes(insp)
        unused = indexes.unused_indexes(insp)
    found = dict(zip(dup["index"], dup["covered_by"], strict=True))
    assert found.pop("t_a") == "t_a_unique"
    assert len([k for k in found if k in ("t_b_1", "t_b_2")]) == 1
    assert found.pop("t_b_2", found.pop("t_b_1", None)) in ("t_b_1", "t_b_2")
    assert found.pop("t_lower_c_2", found.pop("t_lower_c", None)) in ("t_lower_c", "t_lower_c_2")
    assert found == {}, found
    assert not {"t_a_unique", "t_pkey"} & set(unused["index"])


def test_fk_supported_by_a_multicolumn_index_in_any_order(pg_url: str) -> None:
    _write(
        pg_url,
        "CREATE TABLE p (a int, b int, PRIMARY KEY (a, b))",
        "CREATE TABLE c1 (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES p)",
        "CREATE INDEX c1_b_a ON c1 (b, a)",  # leading columns, other order: supports
        "CREATE TABLE c2 (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES p)",
        "CREATE INDEX c2_a ON c2 (a)",  # only part of the key: does not
        "CREATE TABLE c3 (id int, a int, b int, FOREIGN KEY (a, b) REFERENCES p)",
        "CREATE INDEX c3_x_a_b ON c3 (id, a, b)",  # not leading: does not
    )
    with db.connect(pg_url) as insp:
        fks = indexes.fk_without_index(insp)
    assert sorted(fks["table"]) == ["c2", "c3"]
    assert list(fks["columns"].iloc[0]) == ["a", "b"]


# --- queries ---------------------------------------------------------------------------------


def test_queries_with_pg_stat_statements_in_another_schema(
    insp: db.Inspector, longsang_db: Planted
) -> None:
    if not longsang_db.has_pg_stat_statements:
        pytest.skip("these binaries have no pg_stat_statements")
    status = queries.status(insp)
    assert status["available"] and status["schema"] == "extensions"
    top = queries.top_by_total(insp, 5)
    assert list(top.columns) == queries.QUERY_COLUMNS and len(top) == 5
    assert longsang_db.slow_query_marker in top["query"].iloc[0]
    assert top["total_ms"].is_monotonic_decreasing
    by_mean = queries.top_by_mean(insp, 3)
    assert by_mean["mean_ms"].is_monotonic_decreasing
    slow = queries.slow_queries(insp)
    assert len(slow) == 1 and longsang_db.slow_query_marker in slow["query"].iloc[0]
    assert slow["calls"].iloc[0] >= 100 and slow["mean_ms"].iloc[0] >= 20
    # thresholds are settings: stricter ones find nothing
    assert queries.slow_queries(insp, db.DbThresholds(slow_query_mean_ms=1000)).empty
    snap = queries.snapshot(insp)
    assert list(snap.columns) == queries.SNAPSHOT_COLUMNS


def test_the_top_queries_leave_out_lsops_own_inspection(
    insp: db.Inspector, longsang_db: Planted
) -> None:
    """lsops's statements are in pg_stat_statements (marked with connect.OWN_MARK, read
    here straight from the view), never in the top or slow queries it shows."""
    if not longsang_db.has_pg_stat_statements:
        pytest.skip("these binaries have no pg_stat_statements")
    from lsops_lib.db import space
    from lsops_lib.db.connect import OWN_MARK

    space.table_sizes(insp)  # an inspection: lsops's own statements, counted by the server
    engine = sa.create_engine(longsang_db.url)
    with engine.connect() as conn:
        raw = conn.execute(
            sa.text(
                "SELECT queryid, query FROM extensions.pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).fetchall()
    engine.dispose()
    own = [q for _, q in raw if OWN_MARK in q]
    assert any("pg_total_relation_size" in q for q in own), own[:5]
    assert any(q.startswith("SET LOCAL enable_indexscan = off") for q in own), own
    # a statement is counted per user: a queryid lsops ran may also have rows of others
    # (comments do not change a queryid), and those rows alone are shown
    others = {i for i, q in raw if OWN_MARK not in q}
    own_only = {i for i, q in raw if OWN_MARK in q} - others
    assert own_only
    top = queries.query_stats(insp)
    assert not any(OWN_MARK in q for q in top["query"])
    assert not own_only & set(top["queryid"])
    assert others <= set(top["queryid"])  # everything else is shown
    assert longsang_db.slow_query_marker in queries.top_by_total(insp, 1)["query"].iloc[0]


def test_queries_without_pg_stat_statements(pg_url: str) -> None:
    with db.connect(pg_url) as insp:
        status = queries.status(insp)
        assert status["available"] is False
        assert "shared_preload_libraries" in status["message"]
        assert "CREATE EXTENSION pg_stat_statements" in status["message"]
        with pytest.raises(ExtensionMissing):
            queries.top_by_total(insp)


def test_extension_created_but_not_preloaded(pg_cluster_no_pgss: PostgresCluster) -> None:
    url = pg_cluster_no_pgss.create_database("nopreload")
    _write(url, "CREATE EXTENSION pg_stat_statements")
    with db.connect(url) as insp:
        status = queries.status(insp)
        assert status["available"] is False and "shared_preload_libraries" in status["message"]
        with pytest.raises(ExtensionMissing, match="shared_preload_libraries"):
            queries.slow_queries(insp)


def test_slow_per_hour_from_the_store(tmp_path: Path) -> None:
    store_mod = pytest.importorskip("lsops_lib.store")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with store_mod.Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
        for i, (calls, total) in enumerate([(100, 1000.0), (150, 3500.0), (160, 3600.0)]):
            snap = pd.DataFrame(
                [
                    {
                        "queryid": 42,
                        "query": "SELECT slow()",
                        "calls": calls,
                        "total_ms": total,
                        "rows": 0,
                    }
                ]
            )
            store.record_db_queries("prod", t0 + timedelta(minutes=40 * i), snap)
        per_hour = queries.slow_per_hour_from_store(store, "prod")
    # 00:40: 50 calls at 50 ms (slow) in 40 minutes; 01:20: 10 calls at 10 ms (not slow)
    assert per_hour["slow_calls"].tolist() == [50, 0]
    assert per_hour["slow_per_hour"].tolist() == pytest.approx([75.0, 0.0])
    assert per_hour["over_threshold"].tolist() == [True, False]


def test_slow_per_hour_from_snapshot_deltas() -> None:
    t0 = pd.Timestamp("2026-11-01T00:00:00Z")
    rows = []
    # statement 1: 30 slow calls an interval (mean 50 ms); statement 2: fast
    for i in range(5):
        ts = t0 + pd.Timedelta(minutes=30 * i)
        rows.append(
            {
                "ts": ts,
                "queryid": 1,
                "query": "slow",
                "calls": 30 * i,
                "total_ms": 1500.0 * i,
                "rows": 0,
            }
        )
        rows.append(
            {
                "ts": ts,
                "queryid": 2,
                "query": "fast",
                "calls": 1000 * i,
                "total_ms": 100.0 * i,
                "rows": 0,
            }
        )
    # a reset at 02:30: counts start again (delta = the new value)
    rows.append(
        {
            "ts": t0 + pd.Timedelta(minutes=150),
            "queryid": 1,
            "query": "slow",
            "calls": 5,
            "total_ms": 250.0,
            "rows": 0,
        }
    )
    per_hour = queries.slow_per_hour(pd.DataFrame(rows))
    got = dict(zip(per_hour["hour"].dt.hour, per_hour["slow_calls"], strict=True))
    assert got == {0: 30, 1: 60, 2: 35}  # 00:30 | 01:00+01:30 | 02:00 + 5 after the reset
    # rates: 30 calls in half an hour | 60 in an hour | 30 + 5 in an hour
    assert per_hour["hours"].tolist() == [0.5, 1.0, 1.0]
    assert per_hour["slow_per_hour"].tolist() == [60.0, 60.0, 35.0]
    assert list(per_hour["over_threshold"]) == [True, True, True]
    assert (per_hour["slow_calls"] >= 0).all()
    assert queries.slow_per_hour(pd.DataFrame(rows), db.DbThresholds(slow_queries_per_hour=40))[
        "over_threshold"
    ].tolist() == [True, True, False]
    assert queries.slow_per_hour(pd.DataFrame()).empty


def test_slow_per_hour_is_a_rate_between_daily_snapshots() -> None:
    """A collector run once a day: a day's slow calls are spread over its 24 hours before
    they meet the runbook's "more than 10 slow queries an hour"."""
    t0 = pd.Timestamp("2026-11-01T02:00:00Z")
    rows = []
    for day in range(4):  # statement 1: 120 slow calls (50 ms) a day, 5 an hour
        rows.append(
            {"ts": t0 + pd.Timedelta(days=day), "queryid": 1, "query": "a", "rows": 0}
            | {"calls": 120 * day, "total_ms": 6000.0 * day}
        )
    for day in (0, 3):  # statement 2: seen on days 0 and 3 only, 1,080 slow calls: 15 an hour
        rows.append(
            {"ts": t0 + pd.Timedelta(days=day), "queryid": 2, "query": "b", "rows": 0}
            | {"calls": 360 * day, "total_ms": 18000.0 * day}
        )
    per_hour = queries.slow_per_hour(pd.DataFrame(rows))
    assert per_hour["over_threshold"].tolist() == [False, False, True]
    assert [h.day for h in per_hour["hour"]] == [2, 3, 4]
    assert per_hour["slow_calls"].tolist() == [120, 120, 120 + 1080]
    assert per_hour["hours"].tolist() == [24.0, 24.0, 72.0]
    assert per_hour["slow_per_hour"].tolist() == [5.0, 5.0, 20.0]
    recs = recommend.recommendations({"slow_per_hour": per_hour})
    (rec,) = recs[recs["kind"] == "slow_per_hour"].itertuples()
    assert rec.title == "More than 10 slow queries an hour in 1 hour"
    assert "20.0 slow calls an hour" in rec.evidence


# --- maintenance -----------------------------------------------------------------------------


def test_dead_tuples_and_vacuum_times(insp: db.Inspector, longsang_db: Planted) -> None:
    tables = maintenance.table_maintenance(insp)
    assert {
        "schema",
        "table",
        "dead_tuples",
        "live_tuples",
        "last_vacuum",
        "last_autovacuum",
        "last_analyze",
        "last_autoanalyze",
    } <= set(tables.columns)
    events = tables.set_index("table").loc["plant_events"]
    assert events["dead_tuples"] == 2000 and events["live_tuples"] == 1000
    assert not events["autovacuum_enabled"]
    dead = maintenance.dead_tuple_tables(insp)
    assert set(dead["table"]) == set(longsang_db.dead_tuples)
    analyzed = tables.set_index("table").loc["plant_orders", "last_analyze"]
    assert isinstance(analyzed, pd.Timestamp) and analyzed.tzinfo is not None


def test_wraparound_bloat_cache_connections(insp: db.Inspector) -> None:
    wrap = maintenance.database_wraparound(insp)
    assert "longsang_planted" in set(wrap["database"])
    assert (wrap["severity"] == "ok").all() and (wrap["xid_fraction"] < 0.01).all()
    assert {"mxid_age", "mxid_fraction"} <= set(wrap.columns)
    assert len(maintenance.table_wraparound(insp, 3)) == 3
    bloat = maintenance.table_bloat(insp)
    assert not bloat["flagged"].any()
    assert (bloat["bloat_bytes"] >= 0).all()
    cache = maintenance.cache_hit_ratios(insp)
    assert list(cache["kind"]) == ["table", "index", "database"]
    conns = maintenance.connections(insp)
    assert conns["total"].iloc[0] >= 1 and conns["max_connections"].iloc[0] == 40


def test_sequences_near_max(pg_url: str) -> None:
    _write(
        pg_url,
        "CREATE TABLE s (id serial PRIMARY KEY)",
        "SELECT setval('s_id_seq', 2000000000)",
        "CREATE TABLE b (id int)",
        "CREATE SEQUENCE b_seq AS bigint OWNED BY b.id",
        "SELECT setval('b_seq', 1900000000)",  # a bigint sequence feeding an int column
        "CREATE SEQUENCE fine_seq",
        "SELECT setval('fine_seq', 1000)",
    )
    with db.connect(pg_url) as insp:
        seqs = maintenance.sequences_near_max(insp)
    got = dict(zip(seqs["sequence"], seqs["max_value"], strict=True))
    assert got == {"s_id_seq": 2147483647, "b_seq": 2147483647}
    assert set(seqs["column"]) == {"s.id", "b.id"}


def test_long_running_and_idle_in_transaction(longsang_db: Planted) -> None:
    idle = psycopg.connect(
        sa.engine.make_url(longsang_db.url).set(drivername="postgresql").render_as_string()
    )
    idle.execute("SELECT 1")  # opens a transaction and leaves it open
    busy_url = sa.engine.make_url(longsang_db.url).set(drivername="postgresql").render_as_string()
    done = threading.Event()

    def run() -> None:
        with psycopg.connect(busy_url, autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(1.5)")
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(0.6)
        t = db.DbThresholds(long_running_s=0.3, idle_in_transaction_s=0.3)
        with db.connect(longsang_db.url) as insp:
            long_running = maintenance.long_running_queries(insp, t)
            idling = maintenance.idle_in_transaction(insp, t)
            default = maintenance.long_running_queries(insp)
        assert any("pg_sleep" in q for q in long_running["query"])
        assert idle.info.backend_pid in set(idling["pid"])
        assert default.empty  # 300 s by default
    finally:
        thread.join()
        idle.close()


# --- embeddings --------------------------------------------------------------------------------


def test_embeddings(insp: db.Inspector, longsang_db: Planted) -> None:
    by_type = embeddings.by_entity_type(insp)
    assert list(zip(by_type["entity_type"], by_type["count"], strict=True)) == list(
        longsang_db.embeddings_by_type
    )
    assert by_type["last_indexed"].notna().all()
    log = embeddings.log_by_status(insp)
    assert list(zip(log["status"], log["count"], strict=True)) == list(longsang_db.log)
    summary = embeddings.log_summary(insp)
    assert summary["failed"] == 2 and summary["pending"] == 1
    assert summary["tokens_used"] == longsang_db.tokens_used
    failures = embeddings.latest_failures(insp)
    assert len(failures) == 2 and failures["created_at"].is_monotonic_decreasing
    assert failures["tokens_used"].sum() == longsang_db.failed_tokens
    cov = embeddings.coverage(insp).set_index("entity_type")
    assert cov.loc["project", ["entities", "embedded", "missing", "stale"]].tolist() == [6, 5, 1, 0]
    assert cov.loc["execution", "missing"] == 2
    assert cov.loc["agent", "stale"] == 1
    assert cov.loc["workflow", "null_embeddings"] == 1
    assert cov.loc["post", "source_table"] is None and cov.loc["post", "embedded"] == 2
    missing = embeddings.missing_entities(insp)
    assert sorted(missing["entity_type"]) == ["execution", "execution", "project", "workflow"]


def test_embeddings_need_the_longsang_tables(pg_url: str) -> None:
    with db.connect(pg_url) as insp, pytest.raises(DatabaseError, match="context_embeddings"):
        embeddings.by_entity_type(insp)


# --- recommendations and the whole report ----------------------------------------------------


def test_report_and_recommendations(longsang_db: Planted) -> None:
    # statistics of a cluster started minutes ago: no DROP for an unused index by default
    fresh = db.optimization_report(url=longsang_db.password_url, top_n=5, store=None)
    unused = fresh.recommendations[fresh.recommendations["kind"] == "unused_index"]
    assert "public.idx_plant_orders_note" in set(unused["object"])
    # (an index a foreign key needs is kept whatever the statistics' age: QA 24)
    assert unused["sql"].isna().all()
    assert unused["title"].str.contains("too early|: kept, foreign key").all()
    # ... and with the minimum age at 0 days, it is proposed
    report = db.optimization_report(
        url=longsang_db.password_url, top_n=5, store=None, unused_index_min_age=0
    )
    assert report.reachable and report.error is None
    recs = report.recommendations
    sql = "\n".join(s for s in recs["sql"] if isinstance(s, str))
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.idx_plant_orders_note;" in sql
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.idx_plant_orders_status;" in sql
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.idx_plant_orders_customer_unique;" in sql
    assert "CREATE INDEX CONCURRENTLY ON public.plant_orders (customer_id);" in sql
    assert "VACUUM (ANALYZE) public.plant_events;" in sql
    assert "idx_plant_orders_status_created" not in set(
        recs[recs["kind"] == "unused_index"]["object"]
    )
    assert set(recs["severity"]) <= set(recommend.SEVERITIES)
    assert recs["evidence"].map(bool).all()
    summary = report.by_severity.set_index("severity")["count"]
    assert summary.sum() == len(recs) and summary["warning"] >= 5
    if longsang_db.has_pg_stat_statements:
        assert "slow_query" in set(recs["kind"])
    # printed, never executed: the planted problems are all still there
    with db.connect(longsang_db.url) as insp:
        assert "idx_plant_orders_note" in set(indexes.index_catalog(insp)["index"])
        assert (
            maintenance.table_maintenance(insp)
            .set_index("table")
            .loc["plant_events", "dead_tuples"]
            == 2000
        )
    for section in report.sections.values():
        assert section.ok, section.errors


def test_report_on_an_unreachable_database() -> None:
    report = db.optimization_report(url=f"postgresql://u:TopSecret9@127.0.0.1:{_closed_port()}/x")
    assert not report.reachable and "cannot connect" in str(report.error)
    assert "TopSecret9" not in str(report.error)
    assert list(report.recommendations["kind"]) == ["unreachable"]
    # every section says so, but Backups: it reads the metrics store, not the database (issue 12)
    assert all(not s.ok for s in report.sections.values() if s.name != "backups")


def test_report_unknown_database_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LSOPS_DATABASE_URL", raising=False)
    monkeypatch.delenv("LSOPS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    report = db.optimization_report("nosuchdb")
    assert not report.reachable and "nosuchdb" in str(report.error)


def test_report_without_pg_stat_statements(pg_url: str) -> None:
    load_longsang_schema(pg_url)
    report = db.optimization_report(url=pg_url)
    assert report.reachable
    assert any("pg_stat_statements" in n for n in report.sections["queries"].notes)
    assert "extension" in set(report.recommendations["kind"])
    assert all(s.ok for s in report.sections.values())


def test_thresholds_from_settings() -> None:
    from lsops_lib.config import Thresholds

    t = db.DbThresholds.from_settings(Thresholds(slow_query_mean_ms=50.0), slow_query_calls=10)
    assert (t.slow_query_mean_ms, t.slow_query_calls, t.slow_queries_per_hour) == (50.0, 10, 10)
    assert (
        db.DbThresholds().slow_query_mean_ms == 20.0 and db.DbThresholds().slow_query_calls == 100
    )
    with pytest.raises(Exception, match="unknown database threshold"):
        db.DbThresholds().with_overrides(nope=1)


# --- the db_optimization notebook under plain papermill ----------------------------------------

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "db_optimization.ipynb"


def _outputs(nb: Any) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            texts.append(str(data.get("text/html", "")) + str(data.get("text/plain", "")))
            texts.append(str(out.get("text", "")))
            if out.get("output_type") == "error":
                texts.append("ERROR " + out.get("ename", ""))
    return "\n".join(texts)


CELL_IDS = [
    "362de527",
    "1b089420",
    "c1bb1cb9",
    "f77984ef",
    "cee92c12",
    "fc1527a4",
    "51250749",
    "4c96d6af",
    "2fe695ab",
    "358edac9",  # Retrieval quality (issue 15)
    "f91c8571",
    "fdb90594",
    "053ee156",
    "e7e08c1b",
    "c0464480",
    "b4c6a2d1",  # Backups (issue 12)
    "b4c6a2d2",
    "46e23f12",
    "98e9bd9d",
    "9d2a6e13",  # issue 12: Re-index
    "e4b7c058",
    "ef5ce931",
    "ddc17529",
    "5e3b6efb",
    "0a05b05b",
    "7d1f0c42",
    "a3e9b5d8",
]
PARAMETERS = {  # name -> default: `lsops report db-optimization --param` depends on them
    "database": "None",
    "top_n": "20",
    "store": "None",
    "slow_query_mean_ms": "None",
    "slow_query_calls": "None",
    "slow_queries_per_hour": "None",
    "dead_tuples_min": "None",
    "dead_tuple_ratio": "None",
}


def test_notebook_shape() -> None:
    """The style the three report notebooks share: a title cell, one typed parameter a
    line, a setup cell, a heading and one cell per section, key figures last; stable ids,
    no outputs, no SQL."""
    import re

    import nbformat
    import papermill

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert [c.id for c in nb.cells] == CELL_IDS
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0] is nb.cells[1]
    declared = papermill.inspect_notebook(str(NOTEBOOK))
    assert {k: v["default"] for k, v in declared.items()} == PARAMETERS
    for line in params[0].source.splitlines():
        assert line.startswith("#") or re.match(r"^\w+: \w+ = \S+  # \S", line), line
    setup = nb.cells[2].source
    for line in (
        "%matplotlib inline",
        "from lsops_lib import plots, present",
        "from lsops_lib.config import load_settings",
        "present.begin()",
        "settings = load_settings()",
        "report = optimization_report(",
    ):
        assert line in setup, line
    for heading, body in zip(nb.cells[3::2], nb.cells[4::2], strict=True):
        assert heading.cell_type == "markdown" and heading.source.startswith("## ")
        assert body.cell_type == "code" and "present." in body.source
    assert "plots.top_tables(tables" in nb.cells[6].source
    last = nb.cells[-1]
    assert last.metadata.get("tags") == ["lsops-key-figures"]
    assert last.source.strip() == "figures = present.key_figures(report.summary())"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for sql in ("SELECT ", "FROM pg_", "CREATE INDEX", "sqlalchemy", "psycopg", "db.report"):
        assert sql not in code
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def _papermill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, **params: Any) -> Any:
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("LSOPS_DATABASE_URL", url)
    monkeypatch.setenv("LSOPS_STORE", f"sqlite:///{tmp_path / 'absent' / 'metrics.sqlite'}")
    monkeypatch.setenv("LSOPS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("LSOPS_CONFIG", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "out.ipynb"
    return papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )


@pytest.mark.slow
def test_notebook_runs_against_the_planted_database(
    db_notebook: DbNotebook, longsang_db: Planted, pg_cluster: PostgresCluster
) -> None:
    """The session's one run (tests/fixtures/dbreport.py: top_n=20, slow_query_calls=50,
    a store of two size snapshots), also read by test_reindex_report.py."""
    nb, sizes = db_notebook.nb, db_notebook.sizes
    text = _outputs(nb)
    assert "Size of all tables per snapshot" in text
    assert "ERROR" not in text and "Traceback" not in text
    for expected in (
        "idx_plant_orders_note",
        "idx_plant_orders_customer_unique",
        "DROP INDEX CONCURRENTLY IF EXISTS public.idx_plant_orders_status;",
        "CREATE INDEX CONCURRENTLY ON public.plant_orders (customer_id);",
        "VACUUM (ANALYZE) public.plant_events;",
        "Embeddings per entity type",
    ):
        assert expected in text, expected
    # untrusted text is escaped, never live HTML
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)</script>" not in text
    assert pg_cluster.password not in db_notebook.path.read_text()
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    # the key figures, read back from the executed notebook, against independent queries
    from lsops_lib.present import read_key_figures

    figures = read_key_figures(db_notebook.path)
    engine = sa.create_engine(longsang_db.url)
    with engine.connect() as conn:

        def q(sql: str) -> Any:
            return conn.execute(sa.text(sql)).scalar()

        assert figures["invalid_indexes"] == q("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        assert figures["embeddings"] == q("SELECT count(*) FROM context_embeddings")
        assert figures["embeddings_failed"] == q(
            "SELECT count(*) FROM context_indexing_log WHERE status = 'failed'"
        )
        assert figures["tables_due_vacuum"] == q(
            "SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup >= 1000 "
            "AND n_dead_tup >= 0.10 * (n_live_tup + n_dead_tup)"
        )
        size = q("SELECT pg_database_size(current_database())")
        snapshot_total = sum(int(v) for v in sizes["total_bytes"])
    engine.dispose()
    assert abs(figures["database_bytes"] - size) <= 0.02 * size
    assert figures["reachable"] is True and figures["database"] == "default"
    assert figures["top_n"] == 20 and figures["snapshots"] == 2 and figures["growth_bytes"] == 0
    assert figures["findings"] == figures["critical"] + figures["warning"] + figures["info"]
    assert figures["findings"] == sum(figures["kinds"].values()) and figures["warning"] >= 5
    assert figures["largest_table_bytes"] <= snapshot_total
    # this store holds no backup check: the Backups section says so (issue 12)
    # and without pgvector the Retrieval quality section is partial too (QA 20: what a section
    # could not check counts as a problem of the run, as README says)
    assert [p["section"] for p in figures["problems"]] == (
        [] if longsang_db.vector else ["Retrieval quality"]
    ) + ["Backups"]
    # the machine's PostgreSQL has no pgvector: the retrieval section says so (issue 15)
    vector = [u for u in figures["unavailable"] if u.startswith("Retrieval quality:")]
    assert longsang_db.vector or vector == ["Retrieval quality: " + db.vectors.ENABLE_HINT]
    if longsang_db.has_pg_stat_statements:
        rest = [u.split(":")[0] for u in figures["unavailable"] if u not in vector]
        assert rest == ["Backups"] and figures["slow_queries"] >= 1


@pytest.mark.slow
def test_notebook_on_an_unreachable_database_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _papermill(
        tmp_path, monkeypatch, f"postgresql://ops:NbSecret77@127.0.0.1:{_closed_port()}/x"
    )
    text = _outputs(nb)
    assert "ERROR" not in text and "Traceback" not in text
    assert "could not be inspected" in text and "cannot connect" in text
    assert "NbSecret77" not in (tmp_path / "out.ipynb").read_text()
    from lsops_lib.present import read_key_figures

    figures = read_key_figures(tmp_path / "out.ipynb")
    assert figures["reachable"] is False and figures["critical"] == 1
    assert figures["kinds"] == {"unreachable": 1} and figures["tables"] is None
    # Backups reads the store, not the database: absent here, it says so too (issue 12)
    sections = [
        "Space",
        "Indexes",
        "Retrieval quality",  # issue 15
        "Queries",
        "Maintenance",
        "Backups",
        "Embeddings indexing",
        "Re-index",
    ]
    assert [p["section"] for p in figures["problems"]] == sections
    assert [u.split(":")[0] for u in figures["unavailable"]] == sections


def test_hypothetical_index_needs_hypopg(insp: db.Inspector) -> None:
    # hypopg is not installed here: no check, and the recommendation still stands
    assert insp.extension_schema("hypopg") is None
    assert recommend.hypothetical_index(insp, "public", "plant_orders", ["customer_id"]) is None
    # the planner cost it compares is read with bound values, in a read-only session
    cost = recommend._plan_cost(
        insp,
        "SELECT * FROM public.plant_orders WHERE customer_id = CAST(:v0 AS integer)",
        {"v0": "7"},
    )
    assert cost > 0
    assert recommend.quote_ident("plant_orders") == "plant_orders"
    assert recommend.quote_ident("Weird Name") == '"Weird Name"'
    assert recommend.quote_ident("user") == '"user"'


def test_a_pooler_refusing_startup_options_gets_a_second_try(
    longsang_db: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transaction poolers may refuse `options`; every transaction is still READ ONLY."""
    inspector = db.Inspector(longsang_db.url)
    real = db.Inspector.scalar
    calls: list[str] = []

    def scalar(self: db.Inspector, sql: str, params: dict[str, Any] | None = None) -> Any:
        calls.append(sql)
        if len(calls) == 1:
            raise DatabaseError(
                "cannot connect to x: FATAL: unsupported startup parameter: options"
            )
        return real(self, sql, params)

    monkeypatch.setattr(db.Inspector, "scalar", scalar)
    inspector.check()
    monkeypatch.setattr(db.Inspector, "scalar", real)
    try:
        assert inspector.scalar("SHOW transaction_read_only") == "on"
        with pytest.raises(DatabaseError, match="read-only"):
            inspector.execute("CREATE TABLE nope (x int)")
    finally:
        inspector.close()


def test_hypothetical_index_with_hypopg(pg_url: str) -> None:
    """Where hypopg exists, a suggested index is checked with a hypothetical index: the
    planner's cost of the lookup drops, and nothing is created for real."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        available = conn.execute(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
        ).first()
        if available is None:
            engine.dispose()
            pytest.skip("the hypopg extension is not installed on this machine")
        conn.execute(sa.text("CREATE EXTENSION hypopg"))
        conn.execute(sa.text("CREATE TABLE hypo_orders (id int PRIMARY KEY, customer_id int)"))
        conn.execute(
            sa.text("INSERT INTO hypo_orders SELECT g, g % 500 FROM generate_series(1, 20000) g")
        )
        conn.execute(sa.text("ANALYZE hypo_orders"))
    insp = db.connect(pg_url)
    try:
        check = recommend.hypothetical_index(insp, "public", "hypo_orders", ["customer_id"])
    finally:
        insp.close()
    with engine.connect() as conn:
        indexes = conn.execute(
            sa.text("SELECT count(*) FROM pg_indexes WHERE tablename = 'hypo_orders'")
        ).scalar()
    engine.dispose()
    assert check is not None and check["uses_index"]
    assert check["after"] < check["before"]
    assert indexes == 1  # the primary key only: the hypothetical index was never real
