"""QA round 16, db area: the SQL lsops prints is pasted into a real PostgreSQL and does what
it says (a table whose name holds a dot, reserved words, partitioned tables), a password
written without a space after PASSWORD is masked, an unused index is not hidden by a
redundant one of the same name in another schema. What is compared against is read from the
catalogs independently."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import indexes, maintenance, queries, recommend
from lsops_lib.pgtemp import PostgresCluster

pytestmark = pytest.mark.postgres


def _connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    plain = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)
    return psycopg.connect(plain, autocommit=autocommit)


def _statements(sql: str) -> list[str]:
    """The statements of a printed recommendation (comment lines and comments dropped)."""
    lines = [line.split("  --")[0] for line in sql.splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _by_object(recs: Any) -> dict[str, dict[str, Any]]:
    return {r["object"]: r for r in recs.to_dict("records")}


# --- 1. a sequence feeding a table whose name holds a dot --------------------------------------


def test_the_sequence_fix_alters_the_table_whose_name_holds_a_dot(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        conn.execute("CREATE TABLE public.v1 (other int)")  # the table the old SQL named
        conn.execute('CREATE TABLE public."v1.orders" (id serial PRIMARY KEY, x int)')
        conn.execute("""SELECT setval('public."v1.orders_id_seq"', 2100000000)""")
    with db.connect(pg_url) as insp:
        found = maintenance.sequences_near_max(insp)
    row = found[found["sequence"] == "v1.orders_id_seq"].iloc[0]
    assert (row["table_schema"], row["table_name"], row["column_name"]) == (
        "public",
        "v1.orders",
        "id",
    )
    sql = recommend.recommendations({"sequences": found})["sql"].iloc[0]
    conn = _connect(pg_url, autocommit=False)
    try:
        for statement in _statements(sql):
            conn.execute(statement)  # type: ignore[arg-type]
        types = dict(
            conn.execute(
                "SELECT table_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name IN ('id', 'other')"
            ).fetchall()
        )
        assert types == {"v1.orders": "bigint", "v1": "integer"}, (sql, types)
        conn.execute("""SELECT setval('public."v1.orders_id_seq"', 2147483647)""")
        conn.execute('INSERT INTO public."v1.orders" (x) VALUES (1)')  # past the old limit
    finally:
        conn.rollback()
        conn.close()


# --- 2. PASSWORD'x': no space before the literal --------------------------------------------

SECRET = "Leaky_Secret_5"


def test_a_password_without_a_space_is_masked_in_the_queries_command(
    pg_cluster: PostgresCluster, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("these binaries have no pg_stat_statements")
    role = f"leaky_{uuid.uuid4().hex[:8]}"
    with _connect(pg_url) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD'{SECRET}'")  # type: ignore[arg-type]
    try:
        monkeypatch.chdir(tmp_path)
        env = {"LSOPS_DATABASE_URL": pg_url, "COLUMNS": "400"}
        shown = []
        for args in (
            ["db", "queries", "--limit", "100"],
            ["db", "queries", "--limit", "100", "--json"],
        ):
            result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
            assert result.exit_code == 0, result.stderr
            shown.append(result.stdout + result.stderr)
        statements = [q["query"] for q in json.loads(shown[1])["top"] if role in q["query"]]
        assert statements == [f"CREATE ROLE {role} LOGIN PASSWORD'***'"], statements
        report = db.optimization_report(url=pg_url, store=None)
        assert report.reachable, report.error
        frames = [df.to_string() for s in report.sections.values() for df in s.frames.values()]
        text = "\n".join([*shown, report.recommendations.to_string(), *frames])
        assert role in text and SECRET not in text
    finally:
        with _connect(pg_url) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "masked"),
    [
        ("CREATE ROLE x LOGIN PASSWORD'secret'", "CREATE ROLE x LOGIN PASSWORD'***'"),
        (
            "alter user x password'it''s' valid until 'infinity'",
            "alter user x password'***' valid until 'infinity'",
        ),
        ("ALTER ROLE x PASSWORD/* c */'pw'", "ALTER ROLE x PASSWORD/* c */'***'"),
        ("ALTER ROLE x PASSWORD$$pw$$", "ALTER ROLE x PASSWORD'***'"),
        ("-- don't\nALTER ROLE x PASSWORD 'pw'", "-- don't\nALTER ROLE x PASSWORD '***'"),
        ("/* ALTER ROLE x PASSWORD'pw' */ SELECT 1", "/* ALTER ROLE x PASSWORD'***' */ SELECT 1"),
        # a "password" inside a literal or an identifier starts no literal of its own
        ("SELECT 'reset password', 'x' FROM t", "SELECT 'reset password', 'x' FROM t"),
        ("SELECT \"password\"'x' FROM t", "SELECT \"password\"'x' FROM t"),
    ],
)
def test_mask_secrets_without_a_space(sql: str, masked: str) -> None:
    assert queries.mask_secrets(sql) == masked


def test_masked_statements_still_run(pg_url: str) -> None:
    """Independently: PostgreSQL takes PASSWORD'x' as a password (the case is real)."""
    role = f"nospace_{uuid.uuid4().hex[:8]}"
    with _connect(pg_url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD'{SECRET}'")  # type: ignore[arg-type]
        try:
            (has,) = conn.execute(
                "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
            assert has is True
        finally:
            conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


# --- 3. reserved words ------------------------------------------------------------------------

PG16_RESERVED = {"json_array", "json_arrayagg", "json_object", "json_objectagg", "system_user"}


def test_the_reserved_words_are_the_servers(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        words = {
            w
            for (w,) in conn.execute(
                "SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'"
            ).fetchall()
        }
        (version,) = conn.execute("SHOW server_version_num").fetchone()
    if int(version) < 160000:
        words |= PG16_RESERVED  # quoted on older servers too: harmless
    assert recommend._RESERVED == words


def test_an_index_on_reserved_names_is_created_as_printed(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        conn.execute('CREATE TABLE public."check" (id int PRIMARY KEY)')
        conn.execute('INSERT INTO public."check" SELECT generate_series(1, 100)')
        conn.execute(
            'CREATE TABLE public."primary" ("default" int REFERENCES public."check"(id), '
            '"column" int)'
        )
    with db.connect(pg_url) as insp:
        recs = recommend.recommendations({"fk_without_index": indexes.fk_without_index(insp)})
    (sql,) = recs["sql"]
    assert sql == 'CREATE INDEX CONCURRENTLY ON public."primary" ("default");'
    with _connect(pg_url) as conn:
        for statement in _statements(sql):
            conn.execute(statement)  # type: ignore[arg-type]
        (n,) = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'public.\"primary\"'::regclass "
            "AND indisvalid"
        ).fetchone()
        assert n == 1
    with db.connect(pg_url) as insp:
        assert indexes.fk_without_index(insp).empty


# --- 4. partitioned tables -------------------------------------------------------------------

EVENTS = """
CREATE TABLE public.events (id bigint, ts timestamptz, kind text) PARTITION BY RANGE (ts);
CREATE TABLE public.events_2026_01 PARTITION OF public.events
    FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE public.events_2026_02 PARTITION OF public.events
    FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
INSERT INTO public.events
    SELECT g, '2026-01-01'::timestamptz + make_interval(mins => g), 'k' || g % 5
    FROM generate_series(1, 50000) g;
CREATE INDEX events_kind_idx ON public.events (kind);
CREATE INDEX events_ts_idx ON ONLY public.events (ts);
CREATE INDEX events_id_idx ON public.events (id);
"""


def _index_names(conn: psycopg.Connection[Any]) -> dict[str, bool]:
    return dict(
        conn.execute(
            "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        ).fetchall()
    )


def test_partitioned_indexes_get_sql_that_runs(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        conn.execute(EVENTS)  # type: ignore[arg-type]
        # events_id_idx is used, through one partition's index only
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        conn.execute("SELECT count(*) FROM public.events_2026_01 WHERE id = 7")
    with _connect(pg_url) as conn:  # the statistics of the session above are flushed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (scans,) = conn.execute(
                "SELECT COALESCE(sum(idx_scan), 0) FROM pg_stat_user_indexes "
                "WHERE indexrelname LIKE 'events_2026_01_id%'"
            ).fetchone()
            if scans:
                break
            time.sleep(0.1)
        assert scans > 0
        before = _index_names(conn)
    assert before["events_ts_idx"] is False  # ON ONLY: invalid until attached
    thresholds = db.DbThresholds(unused_index_min_age=0)
    with db.connect(pg_url) as insp:
        findings = {
            "unused": indexes.unused_indexes(insp, thresholds=thresholds),
            "duplicate": indexes.duplicate_indexes(insp),
            "invalid": indexes.invalid_indexes(insp),
        }
    recs = _by_object(recommend.recommendations(findings, thresholds))
    # the partitions' indexes are dropped with their parent, never on their own; the parent
    # of a used partition index is used
    assert not [o for o in recs if o.startswith("public.events_2026")], list(recs)
    assert "public.events_id_idx" not in recs
    unused, incomplete = recs["public.events_kind_idx"], recs["public.events_ts_idx"]
    assert "ON ONLY" in incomplete["title"] and "2 partitions" in incomplete["evidence"]
    with _connect(pg_url) as conn:
        for statement in _statements(incomplete["sql"]):
            conn.execute(statement)  # type: ignore[arg-type]
        assert _index_names(conn)["events_ts_idx"] is True
        for statement in _statements(unused["sql"]):
            conn.execute(statement)  # type: ignore[arg-type]
        after = _index_names(conn)
    assert not [name for name in after if "kind" in name], after
    with db.connect(pg_url) as insp:
        assert indexes.invalid_indexes(insp).empty


def test_the_alternative_drop_of_an_on_only_index_runs(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        conn.execute(EVENTS)  # type: ignore[arg-type]
    with db.connect(pg_url) as insp:
        recs = _by_object(recommend.recommendations({"invalid": indexes.invalid_indexes(insp)}))
    sql = recs["public.events_ts_idx"]["sql"]
    drop = [line[3:] for line in sql.splitlines() if line.startswith("-- DROP INDEX")]
    assert drop == [
        "DROP INDEX IF EXISTS public.events_ts_idx;  -- a partitioned index: not CONCURRENTLY "
        "(PostgreSQL cannot), it locks the table and its partitions"
    ]
    with _connect(pg_url) as conn:
        for statement in _statements(drop[0]):
            conn.execute(statement)  # type: ignore[arg-type]
        assert "events_ts_idx" not in _index_names(conn)


# --- 5. the same index name in two schemas -----------------------------------------------------


def test_an_unused_index_is_not_hidden_by_a_redundant_one_of_the_same_name(pg_url: str) -> None:
    with _connect(pg_url) as conn:
        conn.execute("CREATE SCHEMA s2")
        conn.execute("CREATE TABLE public.pt (a int, b int)")
        conn.execute("CREATE INDEX idx_cover ON public.pt (a, b)")
        conn.execute("CREATE INDEX idx_same ON public.pt (a)")  # redundant
        conn.execute("CREATE TABLE s2.t2 (c int)")
        conn.execute("CREATE INDEX idx_same ON s2.t2 (c)")  # unused, covered by nothing
    thresholds = db.DbThresholds(unused_index_min_age=0)
    with db.connect(pg_url) as insp:
        findings = {
            "unused": indexes.unused_indexes(insp, thresholds=thresholds),
            "duplicate": indexes.duplicate_indexes(insp),
        }
    recs = _by_object(recommend.recommendations(findings, thresholds))
    assert recs["public.idx_same"]["kind"] == "duplicate_index"
    assert recs["s2.idx_same"]["kind"] == "unused_index"
    assert recs["s2.idx_same"]["sql"] == "DROP INDEX CONCURRENTLY IF EXISTS s2.idx_same;"


# --- 7. counted words ---------------------------------------------------------------------------


def test_counts_of_one_are_singular() -> None:
    recs = recommend.recommendations(
        {
            "embeddings_log": {"failed": 1},
            "duplicate": pd.DataFrame(
                [
                    {
                        "schema": "public",
                        "table": "t",
                        "index": "t_a",
                        "covered_by": "t_a_b",
                        "size_bytes": 8192,
                        "scans": 1,
                        "definition": "CREATE INDEX t_a ON public.t USING btree (a)",
                        "covered_by_definition": "CREATE INDEX t_a_b ON public.t USING btree (a, b)",
                        "is_partitioned": False,
                    }
                ]
            ),
        }
    )
    texts = _by_object(recs)
    assert texts["context_indexing_log"]["title"] == "1 failed embedding indexing run"
    assert ", 1 scan (the covering index serves them)" in texts["public.t_a"]["evidence"]
