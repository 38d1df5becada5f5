"""QA 24, the database recommendations, on real PostgreSQL clusters: what lsops proposes is
run where it can be, and the catalog (read here with plain SQL, never through lsops) says
whether it did what it claims. Expected values are written out.

- an invalid `<index>_ccnew` left by an interrupted REINDEX CONCURRENTLY is dropped, never
  re-created as a second unique index beside its valid original;
- an unused index that alone supports a foreign key is kept (no DROP proposed, and why);
- sequential-scan index candidates are judged by the rows the scans read, with minimums
  (`seq_scan_min_scans`, `seq_scan_min_rows_read`);
- `autovacuum_enabled` reloptions read as PostgreSQL reads a boolean; `autovacuum = off`
  server-wide is said;
- the re-index route of an entity type is one the API has;
- a role denied pg_stat_statements gets the GRANTs, which do work;
- a table never analyzed gets ANALYZE; a unique index repeating a UNIQUE constraint's is a
  duplicate, dropped while the constraint stays.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from lsops_lib import db
from lsops_lib.db import embeddings, indexes, maintenance, queries, recommend
from lsops_lib.pgtemp import PostgresCluster, PostgresUnavailable
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def _write(url: str, *statements: str) -> None:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def _statements(sql: str) -> list[str]:
    """The statements of a printed recommendation (comment lines and comments dropped)."""
    lines = [line.split("  --")[0] for line in sql.splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _wait_for_stats(url: str, sql: str, want: object) -> None:
    """Until `sql` answers `want` (a backend's counters reach shared memory a moment after
    its transaction ends)."""
    deadline = time.monotonic() + 15
    got: object = None
    while time.monotonic() < deadline:
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            got = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        if got == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"statistics never showed {want!r} (last {got!r}): {sql}")


def _by_object(recs: Any, kind: str) -> dict[str, Any]:
    return {r.object: r for r in recs[recs["kind"] == kind].itertuples(index=False)}


# --- finding 2: a REINDEX CONCURRENTLY leftover ----------------------------------------------


def test_an_interrupted_reindex_leftover_is_dropped_never_recreated(pg_url: str) -> None:
    """The QA's case: REINDEX INDEX CONCURRENTLY events_pkey cancelled leaves
    events_pkey_ccnew INVALID beside the valid events_pkey (planted here as the superuser:
    the same catalog state, without the timing). Also a `_ccold` leftover, and a failed
    build that a valid index covers; an invalid index nothing covers is still rebuilt."""
    _write(
        pg_url,
        "CREATE TABLE events (id bigint PRIMARY KEY, kind text, at int)",
        "INSERT INTO events SELECT g, 'k' || g % 7, g FROM generate_series(1, 2000) g",
        "CREATE UNIQUE INDEX events_pkey_ccnew ON events (id)",
        "CREATE INDEX events_kind_at ON events (kind, at)",
        "CREATE INDEX events_kind_at_ccold ON events (kind, at)",
        "CREATE INDEX events_kind_failed ON events (kind)",  # covered by events_kind_at
        "CREATE INDEX events_at_failed ON events (at)",  # nothing covers it
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid IN ("
        "'events_pkey_ccnew'::regclass, 'events_kind_at_ccold'::regclass, "
        "'events_kind_failed'::regclass, 'events_at_failed'::regclass)",
    )
    with db.connect(pg_url) as insp:
        invalid = indexes.invalid_indexes(insp)
        recs = recommend.recommendations({"invalid": invalid}, insp=insp)
    got = _by_object(recs, "invalid_index")
    ccnew = got["public.events_pkey_ccnew"]
    assert _statements(ccnew.sql) == ["DROP INDEX CONCURRENTLY IF EXISTS public.events_pkey_ccnew"]
    assert "CREATE" not in ccnew.sql and "duplicate keys" not in ccnew.title
    assert "REINDEX CONCURRENTLY" in ccnew.title and "events_pkey" in ccnew.evidence
    assert _statements(got["public.events_kind_at_ccold"].sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.events_kind_at_ccold"
    ]
    assert _statements(got["public.events_kind_failed"].sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.events_kind_failed"
    ]
    assert _statements(got["public.events_at_failed"].sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.events_at_failed",
        "CREATE INDEX CONCURRENTLY events_at_failed ON public.events USING btree (at)",
    ]
    # the index that makes each needless, as invalid_indexes names it
    twins = {
        r.index: (r.equivalent_index if isinstance(r.equivalent_index, str) else None)
        for r in invalid.itertuples()
    }
    assert twins == {
        "events_pkey_ccnew": "events_pkey",
        "events_kind_at_ccold": "events_kind_at",
        "events_kind_failed": "events_kind_at",
        "events_at_failed": None,
    }
    # run every printed statement: no invalid index is left, and no second unique index
    for rec in got.values():
        _write(pg_url, *_statements(rec.sql))
    assert _rows(
        pg_url,
        "SELECT c.relname, x.indisvalid, x.indisunique FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = 'events'::regclass "
        "ORDER BY 1",
    ) == [
        ("events_at_failed", True, False),
        ("events_kind_at", True, False),
        ("events_pkey", True, True),
    ]


def test_a_leftover_whose_original_is_invalid_too_is_dropped(pg_url: str) -> None:
    """REINDEX CONCURRENTLY of an invalid index, cancelled: both invalid. The leftover is
    dropped; the original is rebuilt (its own recommendation), never both."""
    _write(
        pg_url,
        "CREATE TABLE t (a int)",
        "INSERT INTO t SELECT generate_series(1, 100)",
        "CREATE INDEX t_a ON t (a)",
        "CREATE INDEX t_a_ccnew ON t (a)",
        "UPDATE pg_index SET indisvalid = false WHERE indrelid = 't'::regclass",
    )
    with db.connect(pg_url) as insp:
        recs = recommend.recommendations({"invalid": indexes.invalid_indexes(insp)}, insp=insp)
    got = _by_object(recs, "invalid_index")
    assert _statements(got["public.t_a_ccnew"].sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_a_ccnew"
    ]
    assert _statements(got["public.t_a"].sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.t_a",
        "CREATE INDEX CONCURRENTLY t_a ON public.t USING btree (a)",
    ]


# --- finding 3: the unused index a foreign key needs ----------------------------------------

NO_MIN_AGE = db.DbThresholds(unused_index_min_age=0)

FK_WITHOUT_INDEX = """
SELECT con.conname FROM pg_constraint con
WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
  AND NOT EXISTS (
      SELECT 1 FROM pg_index x
      WHERE x.indrelid = con.conrelid AND x.indisvalid AND x.indpred IS NULL
        AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]
            @> con.conkey
        AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]
            <@ con.conkey)
ORDER BY 1
"""


def test_the_only_index_of_a_foreign_key_is_kept_not_dropped(pg_url: str) -> None:
    """The QA's flip-flop: DROP proposed for idx_orders_owner_id, then, once dropped, its
    CREATE demanded. Also two unused indexes supporting one foreign key (one kept, the
    redundant one dropped), and an unused index whose foreign key a used index supports
    (dropped as before). Every DROP lsops proposes, run, leaves every foreign key
    supported."""
    _write(
        pg_url,
        "CREATE TABLE owners (id bigint PRIMARY KEY)",
        "INSERT INTO owners SELECT generate_series(1, 100)",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, owner_id bigint REFERENCES owners(id))",
        "INSERT INTO orders (owner_id) SELECT 1 + g % 100 FROM generate_series(1, 5000) g",
        "CREATE INDEX idx_orders_owner_id ON orders (owner_id)",
        # two unused indexes for one foreign key: the narrower is covered by the wider
        "CREATE TABLE lines (id bigserial PRIMARY KEY, owner_id bigint REFERENCES owners(id),"
        " n int)",
        "CREATE INDEX lines_owner ON lines (owner_id)",
        "CREATE INDEX lines_owner_n ON lines (owner_id, n)",
        # a foreign key on (a, b): the unused (a, b) index is not needed, (b, a) is used
        "CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b))",
        "INSERT INTO pairs SELECT g, g FROM generate_series(1, 50) g",
        "CREATE TABLE refs (a int, b int, FOREIGN KEY (a, b) REFERENCES pairs (a, b))",
        "INSERT INTO refs SELECT g % 50 + 1, g % 50 + 1 FROM generate_series(1, 500) g",
        "CREATE INDEX refs_a_b ON refs (a, b)",
        "CREATE INDEX refs_b_a ON refs (b, a)",
        "ANALYZE",
    )
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        conn.execute("SELECT count(*) FROM refs WHERE b = 7").fetchall()  # refs_b_a used
    _wait_for_stats(
        pg_url,
        "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'refs_b_a'",
        (1,),
    )
    with db.connect(pg_url) as insp:
        unused = indexes.unused_indexes(insp, thresholds=NO_MIN_AGE)
        duplicate = indexes.duplicate_indexes(insp)
        recs = recommend.recommendations(
            {"unused": unused, "duplicate": duplicate}, NO_MIN_AGE, insp=insp
        )
    # every DROP lsops proposes (unused and duplicate): none of the foreign keys' indexes
    drops = [
        s
        for r in recs.itertuples()
        if isinstance(r.sql, str)
        for s in _statements(r.sql)
        if s.startswith("DROP INDEX")
    ]
    assert sorted(drops) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.lines_owner",
        "DROP INDEX CONCURRENTLY IF EXISTS public.refs_a_b",
    ]
    rows = {r.index: r for r in unused.itertuples()}
    assert set(rows) == {"idx_orders_owner_id", "lines_owner", "lines_owner_n", "refs_a_b"}
    kept = {
        name: (r.foreign_key, r.foreign_key_references)
        for name, r in rows.items()
        if isinstance(r.foreign_key, str)
    }
    assert kept == {
        "idx_orders_owner_id": ("orders_owner_id_fkey", "owners"),
        "lines_owner_n": ("lines_owner_id_fkey", "owners"),
    }
    proposed = {name for name, r in rows.items() if r.drop_proposed}
    assert proposed == {"lines_owner", "refs_a_b"}
    got = _by_object(recs, "unused_index")
    fk_rec = got["public.idx_orders_owner_id"]
    assert pd.isna(fk_rec.sql)  # nothing to run
    assert "kept" in fk_rec.title and "orders_owner_id_fkey" in fk_rec.title
    assert "owners" in fk_rec.evidence
    # `lsops db indexes` says why it is kept, beside "drop proposed"
    from click.testing import CliRunner

    from lsops_lib.cli import main

    text = CliRunner().invoke(
        main, ["db", "indexes"], env={"LSOPS_DATABASE_URL": pg_url, "COLUMNS": "300"}
    )
    assert text.exit_code == 0, text.output
    (line,) = [r for r in text.output.splitlines() if "idx_orders_owner_id" in r]
    assert "foreign key orders_owner_id_fkey" in line, line
    (line,) = [r for r in text.output.splitlines() if " refs_a_b " in r]
    assert "foreign key" not in line, line
    # run, they leave every foreign key supported
    _write(pg_url, *drops)
    assert _rows(pg_url, FK_WITHOUT_INDEX) == []
    with db.connect(pg_url) as insp:
        assert indexes.fk_without_index(insp).empty


# --- finding 4: sequential-scan index candidates -----------------------------------------------

SEQ = "SELECT seq_scan, seq_tup_read, COALESCE(idx_scan, 0) FROM pg_stat_user_tables "


def test_index_candidates_are_judged_by_the_rows_sequential_scans_read(pg_url: str) -> None:
    """The QA's three tables: an insert-only table read 3 times in full (lsops's own
    reads) and a table scanned once while empty are noise; a table read 30 times in full
    (360,000 rows) besides 50 primary-key lookups (a 38 % share of scans) is the
    candidate."""
    _write(
        pg_url,
        "CREATE TABLE log (id bigserial PRIMARY KEY, v text) WITH (autovacuum_enabled = off)",
        "INSERT INTO log (v) SELECT 'x' FROM generate_series(1, 20000)",
        "CREATE TABLE order_lines (id bigserial PRIMARY KEY, v text)"
        " WITH (autovacuum_enabled = off)",
        "SELECT count(*) FROM order_lines",  # 1 scan, 0 rows read
        "INSERT INTO order_lines (v) SELECT 'x' FROM generate_series(1, 15000)",
        "CREATE TABLE events (id bigint PRIMARY KEY, kind text) WITH (autovacuum_enabled = off)",
        "INSERT INTO events SELECT g, 'k' || g % 9 FROM generate_series(1, 12000) g",
        "DO $$ BEGIN FOR i IN 1..3 LOOP PERFORM count(*) FROM log; END LOOP; END $$",
        "DO $$ BEGIN FOR i IN 1..30 LOOP PERFORM count(*) FROM events WHERE kind = 'k1';"
        " END LOOP; END $$",
    )
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for i in range(1, 51):
            conn.execute("SELECT kind FROM events WHERE id = %s", (i,)).fetchall()
    # each count one more: building a primary key's index on the new table is a
    # sequential scan (of 0 rows)
    _wait_for_stats(pg_url, SEQ + "WHERE relname = 'events'", (31, 360_000, 50))
    _wait_for_stats(pg_url, SEQ + "WHERE relname = 'log'", (4, 60_000, 0))
    _wait_for_stats(pg_url, SEQ + "WHERE relname = 'order_lines'", (2, 0, 0))
    with db.connect(pg_url) as insp:
        seq = indexes.seq_scan_tables(insp)
    assert list(seq["table"]) == ["events"]
    row = seq.iloc[0]
    assert (row["seq_scan"], row["seq_tup_read"], row["idx_scan"]) == (31, 360_000, 50)
    assert row["seq_scan_share"] == pytest.approx(31 / 81)
    assert row["seq_read_share"] == pytest.approx(360_000 / 360_050)
    (rec,) = recommend.recommendations({"seq_scan": seq}).itertuples()
    assert rec.object == "public.events" and "360,000 rows" in rec.evidence
    # the minimums are the named thresholds: lowered, the insert-only table is one too
    with db.connect(pg_url) as insp:
        loose = indexes.seq_scan_tables(
            insp, db.DbThresholds(seq_scan_min_scans=4, seq_scan_min_rows_read=60_000)
        )
    assert list(loose["table"]) == ["events", "log"]


def test_the_seq_scan_minimums_are_thresholds_of_lsops_toml() -> None:
    t = db.DbThresholds()
    assert (t.seq_scan_min_scans, t.seq_scan_min_rows_read) == (20, 100_000)
    assert db.DbThresholds.from_settings(None, seq_scan_min_scans="5").seq_scan_min_scans == 5


# --- finding 5 and 10: autovacuum off, never analyzed (a cluster of their own) ----------------


@pytest.fixture(scope="module")
def autovacuum_off() -> Iterator[PostgresCluster]:
    """A cluster started with `autovacuum = off` (as the QA's), so nothing analyzes a table
    behind the test's back."""
    cluster = PostgresCluster(settings={"autovacuum": "off"})
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL can be started here: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def off_url(autovacuum_off: PostgresCluster) -> Iterator[str]:
    name = f"q_{uuid.uuid4().hex[:12]}"
    url = autovacuum_off.create_database(name)
    try:
        yield url
    finally:
        autovacuum_off.drop_database(name)


# reloption as written -> whether PostgreSQL vacuums the table automatically (its own
# setting): parse_bool's spellings, any case
RELOPTIONS = {
    "t_default": (None, True),
    "t_false": ("false", False),
    "t_off": ("off", False),
    "t_off_upper": ("'OFF'", False),
    "t_zero": ("0", False),
    "t_no": ("no", False),
    "t_n": ("'N'", False),
    "t_fa": ("'Fa'", False),
    "t_of": ("'of'", False),
    "t_on": ("on", True),
    "t_one": ("1", True),
    "t_yes": ("yes", True),
    "t_true_upper": ("'TRUE'", True),
}


def test_autovacuum_reloptions_read_as_postgresql_reads_a_boolean(off_url: str) -> None:
    statements = []
    for table, (value, _) in RELOPTIONS.items():
        with_ = f" WITH (autovacuum_enabled = {value})" if value else ""
        statements += [
            f"CREATE TABLE {table} (id int, v text){with_}",
            f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 2000) g",
            f"DELETE FROM {table} WHERE id <= 1500",
        ]
    # the TOAST table's own setting is not the table's
    statements.append("CREATE TABLE t_toast_off (id int) WITH (toast.autovacuum_enabled = off)")
    _write(off_url, *statements)
    _wait_for_stats(
        off_url,
        "SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup = 1500",
        (len(RELOPTIONS),),
    )
    with db.connect(off_url) as insp:
        tables = maintenance.table_maintenance(insp)
    got = dict(zip(tables["table"], tables["autovacuum_enabled"], strict=True))
    assert got == {**{t: on for t, (_, on) in RELOPTIONS.items()}, "t_toast_off": True}
    with db.connect(off_url) as insp:
        due = maintenance.dead_tuple_tables(insp)
        settings = maintenance.autovacuum_settings(insp)
    recs = recommend.recommendations({"dead_tuples": due, "autovacuum": settings})
    assert settings == {
        "autovacuum": False,
        "track_counts": True,
        "analyze_threshold": 50,
        "running": False,
    }
    (server,) = recs[recs["kind"] == "autovacuum"].itertuples()
    assert "autovacuum = off" in server.title
    assert _statements(server.sql) == [
        "ALTER SYSTEM SET autovacuum = on",
        "SELECT pg_reload_conf()",
    ]
    vacuum = _by_object(recs, "vacuum")
    assert set(vacuum) == {f"public.{t}" for t in RELOPTIONS}
    for table, (_, on) in RELOPTIONS.items():
        evidence = vacuum[f"public.{table}"].evidence
        assert ("autovacuum is DISABLED on this table" in evidence) is (not on), table
        assert "autovacuum is off server-wide (autovacuum = off)" in evidence


def test_a_never_analyzed_table_gets_analyze_and_the_report_says_why(off_url: str) -> None:
    """The QA's 15,000-row table, never analyzed (reltuples -1, autovacuum off): ANALYZE is
    recommended, the maintenance section says the server's autovacuum is off and which
    table has no statistics (so no bloat estimate); run, the ANALYZE ends both."""
    _write(
        off_url,
        "CREATE TABLE never_analyzed (id int, v text)",
        "INSERT INTO never_analyzed SELECT g, 'x' FROM generate_series(1, 15000) g",
        "CREATE TABLE small (id int)",  # fewer changes than autovacuum_analyze_threshold (50)
        "INSERT INTO small SELECT generate_series(1, 10)",
    )
    _wait_for_stats(
        off_url,
        "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'never_analyzed'",
        (15000,),
    )
    assert _rows(off_url, "SELECT reltuples FROM pg_class WHERE relname = 'never_analyzed'") == [
        (-1.0,)
    ]
    report = db.optimization_report(url=off_url)
    recs = report.recommendations
    (analyze,) = recs[recs["kind"] == "analyze"].itertuples()
    assert analyze.object == "public.never_analyzed" and analyze.severity == "warning"
    assert _statements(analyze.sql) == ["ANALYZE public.never_analyzed"]
    assert "15,000 row changes" in analyze.evidence and "bloat" in analyze.evidence
    assert list(recs.loc[recs["kind"] == "autovacuum", "object"]) == ["autovacuum"]
    notes = report.sections["maintenance"].notes
    assert any(n.startswith("autovacuum = off server-wide") for n in notes), notes
    assert any("never analyzed" in n and "public.never_analyzed" in n for n in notes), notes
    # `lsops db maintenance` says both, in its text and its JSON
    import json

    from click.testing import CliRunner

    from lsops_lib.cli import main

    env = {"LSOPS_DATABASE_URL": off_url, "COLUMNS": "300"}
    data = json.loads(CliRunner().invoke(main, ["db", "maintenance", "--json"], env=env).stdout)
    assert data["autovacuum"]["autovacuum"] is False and data["autovacuum"]["running"] is False
    assert [r["table"] for r in data["never_analyzed"]] == ["never_analyzed"]
    text = CliRunner().invoke(main, ["db", "maintenance"], env=env).output
    assert "autovacuum = off server-wide: no table is vacuumed or analyzed" in text, text
    assert "never analyzed (no planner statistics" in text and "public.never_analyzed" in text
    _write(off_url, *_statements(analyze.sql))
    with db.connect(off_url) as insp:
        assert maintenance.never_analyzed_tables(insp).empty
        bloat = maintenance.table_bloat(insp)
    assert "never_analyzed" in set(bloat["table"])


# --- finding 10: a unique index repeating a UNIQUE constraint's --------------------------------


def test_a_unique_index_repeating_a_constraint_is_a_duplicate(pg_url: str) -> None:
    """The QA's accounts: UNIQUE (email) and CREATE UNIQUE INDEX accounts_email_uq2 on the
    same column. The plain one is dropped, the constraint stays and still refuses a
    duplicate. Not duplicates: NULLS NOT DISTINCT against a plain constraint, immediate
    against DEFERRABLE, and a unique index no unique one covers."""
    _write(
        pg_url,
        "CREATE TABLE accounts (id int PRIMARY KEY,"
        " email text CONSTRAINT accounts_email_key UNIQUE, code text, ref text, n int)",
        "INSERT INTO accounts SELECT g, 'u' || g, 'c' || g, 'r' || g, g"
        " FROM generate_series(1, 500) g",
        "CREATE UNIQUE INDEX accounts_email_uq2 ON accounts (email)",
        # stricter than the constraint it repeats (NULLs may not repeat): kept
        "ALTER TABLE accounts ADD CONSTRAINT accounts_code_key UNIQUE (code)",
        "CREATE UNIQUE INDEX accounts_code_nnd ON accounts (code) NULLS NOT DISTINCT",
        # immediate, the constraint DEFERRABLE: kept
        "ALTER TABLE accounts ADD CONSTRAINT accounts_ref_key UNIQUE (ref) DEFERRABLE",
        "CREATE UNIQUE INDEX accounts_ref_now ON accounts (ref)",
        # two plain unique indexes alike: either one (not both) is the duplicate
        "CREATE UNIQUE INDEX accounts_n_a ON accounts (n)",
        "CREATE UNIQUE INDEX accounts_n_b ON accounts (n)",
    )
    with db.connect(pg_url) as insp:
        dup = indexes.duplicate_indexes(insp)
        recs = recommend.recommendations({"duplicate": dup})
    found = dict(zip(dup["index"], dup["covered_by"], strict=True))
    assert found.pop("accounts_email_uq2") == "accounts_email_key"
    assert found in ({"accounts_n_a": "accounts_n_b"}, {"accounts_n_b": "accounts_n_a"})
    ((n_dropped, n_kept),) = found.items()
    sql = [s for r in recs.itertuples() for s in _statements(r.sql)]
    assert sorted(sql) == [
        "DROP INDEX CONCURRENTLY IF EXISTS public.accounts_email_uq2",
        f"DROP INDEX CONCURRENTLY IF EXISTS public.{n_dropped}",
    ]
    _write(pg_url, *sql)
    assert _rows(
        pg_url,
        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = 'accounts'::regclass AND x.indkey::text IN "
        "(SELECT attnum::text FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
        "AND attname IN ('email', 'n')) ORDER BY 1",
    ) == [("accounts_email_key",), (n_kept,)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        _write(pg_url, "INSERT INTO accounts (id, email) VALUES (9999, 'u1')")


# --- finding 7: the re-index routes the API has ------------------------------------------------

ROUTES = {
    "project": "re-index: POST /api/context/index/projects",
    "workflow": "re-index: POST /api/context/index/workflows",
    "execution": "re-index: POST /api/context/index/executions",
}


def test_the_reindex_route_is_one_the_api_has(longsang_db: Planted) -> None:
    """The planted LongSang database: projects, workflows, executions miss embeddings and an
    agent's is stale. The API re-indexes projects, workflows and executions on their own
    routes and the rest only through /api/context/index/all."""
    with db.connect(longsang_db.password_url) as insp:
        coverage = embeddings.coverage(insp)
    recs = recommend.recommendations({"embeddings_coverage": coverage})
    got = {r.object: r.evidence for r in recs[recs["kind"] == "embeddings_coverage"].itertuples()}
    assert set(got) == {"project", "workflow", "execution", "agent"}
    for kind, route in ROUTES.items():
        assert got[kind].endswith(route), got[kind]
    assert "/api/context/index/agents" not in got["agent"]
    assert "no route for agent" in got["agent"]
    assert "POST /api/context/index/all" in got["agent"]


# --- finding 8: pg_stat_statements denied to the role -------------------------------------------


def test_a_role_denied_pg_stat_statements_gets_the_grants_that_work(
    pg_cluster: PostgresCluster, pg_url: str
) -> None:
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("no pg_stat_statements in this PostgreSQL")
    role, password = f"qa24_{uuid.uuid4().hex[:8]}", "Qa24-pw-9x"
    _write(
        pg_url,
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'",
        "REVOKE ALL ON pg_stat_statements FROM PUBLIC",
        "REVOKE ALL ON FUNCTION pg_stat_statements(boolean) FROM PUBLIC",
    )
    url = sa.engine.make_url(pg_url).set(username=role, password=password)
    as_role = url.render_as_string(False)
    try:
        with db.connect(as_role) as insp:
            status = queries.status(insp)
            recs = recommend.recommendations({"queries_status": status}, insp=insp)
        assert not status["available"] and "permission denied" in status["message"]
        (rec,) = recs.itertuples()
        assert rec.kind == "extension" and "CREATE EXTENSION" not in rec.sql
        assert _statements(rec.sql) == [
            f"GRANT SELECT ON public.pg_stat_statements TO {role}",
            f"GRANT EXECUTE ON FUNCTION public.pg_stat_statements(boolean) TO {role}",
            f"GRANT pg_read_all_stats TO {role}",
        ]
        _write(pg_url, *_statements(rec.sql))  # the superuser runs what lsops printed
        with db.connect(as_role) as insp:
            assert queries.status(insp)["available"] is True
    finally:
        _write(
            pg_url,
            "GRANT SELECT ON pg_stat_statements TO PUBLIC",
            "GRANT EXECUTE ON FUNCTION pg_stat_statements(boolean) TO PUBLIC",
            f"DROP OWNED BY {role}",
            f"DROP ROLE IF EXISTS {role}",
        )
