"""QA 23, the types of `lsops_lib.db`'s answers (README "Guarantees"): an empty answer has
the columns and types of a full one, and a column without any value in a full answer has
its column's type too (text `str`, instants `datetime64[us, UTC]`, a ratio float64 NaN).
Each answer is checked against the literal types below, and its values against what the
test stored or planted: slow queries per hour from stored snapshots, the capacity
forecast and its tables, and on a real PostgreSQL (tests/fixtures/pg.py) the dead share of
tables without rows, sequences feeding no column, sessions over a unix socket, unused
indexes of statistics never reset, pgvector indexes without build options."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from lsops_lib import db
from lsops_lib.db import forecast, indexes, maintenance, queries, space
from lsops_lib.db.schema import LONGSANG_TABLES, load_longsang_schema
from lsops_lib.pgtemp import PostgresCluster
from lsops_lib.store import Store
from tests.test_db import _write  # one helper of the database tests

TS = "datetime64[us, UTC]"
T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)

SLOW_PER_HOUR = {
    "hour": TS,
    "slow_calls": "int64",
    "slow_statements": "int64",
    "calls": "int64",
    "hours": "float64",
    "slow_per_hour": "float64",
    "over_threshold": "bool",
}
GROWTH_RATES = {
    "schema": "str",
    "table": "str",
    "total_bytes": "int64",
    "growth_bytes_per_day": "float64",
    "share_of_growth": "float64",
}
FORECAST_FRAME = {
    "ts": TS,
    "observed": "float64",
    "fitted": "float64",
    "projected": "float64",
    "low": "float64",
    "high": "float64",
}
TABLE_MAINTENANCE = {
    "schema": "str",
    "table": "str",
    "live_tuples": "int64",
    "dead_tuples": "int64",
    "dead_ratio": "float64",
    "last_vacuum": TS,
    "last_autovacuum": TS,
    "last_analyze": TS,
    "last_autoanalyze": TS,
    "vacuum_count": "int64",
    "autovacuum_count": "int64",
    "analyze_count": "int64",
    "autoanalyze_count": "int64",
    "modified_since_analyze": "int64",
    "autovacuum_enabled": "bool",
}
SEQUENCES = {
    "schema": "str",
    "sequence": "str",
    "column": "str",
    "table_schema": "str",
    "table_name": "str",
    "column_name": "str",
    "sequence_type": "str",
    "column_type": "str",
    "increment_by": "int64",
    "cycle": "bool",
    "last_value": "int64",
    "sequence_max": "int64",
    "column_max": "object",  # Python ints and None, with rows or without
    "max_value": "int64",
    "fraction": "float64",
    "capped_by": "str",
    "severity": "str",
}
SESSIONS = {
    "pid": "int64",
    "user": "str",
    "application_name": "str",
    "client_addr": "str",
    "state": "str",
    "wait_event_type": "str",
    "wait_event": "str",
    "query_s": "float64",
    "transaction_s": "float64",
    "state_s": "float64",
    "query": "str",
}
UNUSED_INDEXES = {
    "schema": "str",
    "table": "str",
    "index": "str",
    "method": "str",
    "size_bytes": "int64",
    "scans": "int64",
    "definition": "str",
    "stats_reset": TS,
    "stats_since": TS,
    "stats_age_days": "float64",
    "drop_proposed": "bool",
    "is_partitioned": "bool",
    "foreign_key": "str",  # QA 24: the foreign key an unused index is kept for
    "foreign_key_references": "str",
}
VECTOR_INDEXES = {
    "schema": "str",
    "table": "str",
    "index": "str",
    "method": "str",
    "opclass": "str",
    "options": "str",
    "size_bytes": "int64",
    "table_bytes": "int64",
    "size_ratio": "float64",
    "scans": "int64",
    "is_valid": "bool",
    "definition": "str",
}


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(t) for c, t in df.dtypes.items()}


def assert_types(df: pd.DataFrame, want: dict[str, str], *, rows: bool, what: str = "") -> None:
    """`df` has exactly the columns and types `want`, and rows or none as said."""
    assert (len(df) > 0) is rows, f"{what}: {len(df)} rows"
    assert dtypes(df) == want, what


def assert_usable(df: pd.DataFrame) -> None:
    """What an analyst does with an answer works: instants convert, counts sum."""
    for col, dtype in dtypes(df).items():
        if dtype == TS:
            df[col].dt.tz_convert("Europe/Paris")
        if dtype == "int64":
            int(df[col].sum())


# --- slow queries per hour, from the store's snapshots ------------------------------------------


def _query_snapshot(calls: list[int], total_ms: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "queryid": [7, 8],
            "query": ["SELECT slow", "SELECT fast"],
            "calls": calls,
            "total_ms": total_ms,
            "rows": calls,
        }
    )


@pytest.fixture
def query_store(tmp_path: Path) -> Iterator[Store]:
    """Two snapshots an hour apart: statement 7 made 50 calls of 50 ms (slow), 8 made 10
    calls of 1 ms."""
    with Store(f"sqlite:///{tmp_path / 'metrics.sqlite'}") as store:
        store.record_db_queries("default", T0, _query_snapshot([100, 10], [1000.0, 10.0]))
        store.record_db_queries(
            "default", T0 + timedelta(hours=1), _query_snapshot([150, 20], [3500.0, 20.0])
        )
        yield store


def test_slow_per_hour_from_the_store_with_rows(query_store: Store) -> None:
    got = queries.slow_per_hour_from_store(
        query_store, "default", T0 - timedelta(minutes=1), T0 + timedelta(hours=2)
    )
    assert_types(got, SLOW_PER_HOUR, rows=True)
    assert got.to_dict("records") == [
        {
            "hour": pd.Timestamp(T0 + timedelta(hours=1)),
            "slow_calls": 50,
            "slow_statements": 1,
            "calls": 60,
            "hours": 1.0,
            "slow_per_hour": 50.0,
            "over_threshold": True,
        }
    ]


def test_slow_per_hour_without_a_snapshot_or_an_interval(query_store: Store) -> None:
    """The QA's case: every column was `object` (`hour.dt` failed)."""
    before = (T0 - timedelta(days=2), T0 - timedelta(days=1))
    one = (T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))  # one snapshot: no interval
    answers = {
        "no snapshot": queries.slow_per_hour_from_store(query_store, "default", *before),
        "one snapshot": queries.slow_per_hour_from_store(query_store, "default", *one),
        "unknown database": queries.slow_per_hour_from_store(query_store, "other"),
        "None": queries.slow_per_hour(None),  # type: ignore[arg-type]
        "an empty frame": queries.slow_per_hour(pd.DataFrame()),
    }
    for how, got in answers.items():
        assert_types(got, SLOW_PER_HOUR, rows=False, what=how)
        assert got["hour"].dt.tz_convert("Europe/Paris").empty, how
        assert int(got["slow_calls"].sum()) == 0, how


# --- the capacity forecast --------------------------------------------------------------------


def _sizes(days: int) -> pd.DataFrame:
    """Daily size snapshots as `space.growth` reads them from the store: `grow` gains
    1,000 bytes a day from 10,000, `flat` stays at 5,000."""
    rows = []
    for day in range(days):
        ts = pd.Timestamp(T0 + timedelta(days=day))
        for table, size in (("grow", 10_000 + 1_000 * day), ("flat", 5_000)):
            rows.append(
                {
                    "ts": ts,
                    "schema": "public",
                    "table": table,
                    "total_bytes": size,
                    "table_bytes": size,
                    "index_bytes": 0,
                    "toast_bytes": 0,
                    "rows_estimate": 1,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def size_store(tmp_path: Path) -> Iterator[Store]:
    """Ten daily size snapshots of `prod` (`_sizes`), recorded as `lsops collect --db` does."""
    with Store(f"sqlite:///{tmp_path / 'sizes.sqlite'}") as store:
        for ts, snapshot in _sizes(10).groupby("ts"):
            store.record_db_sizes("prod", ts.to_pydatetime(), snapshot.drop(columns="ts"))
        yield store


def test_table_growth_rates_with_rows_and_without(size_store: Store) -> None:
    snaps = space.growth(size_store, "prod")
    got = forecast.table_growth_rates(snaps, None)
    assert_types(got, GROWTH_RATES, rows=True)
    assert list(got["table"]) == ["grow", "flat"]
    assert list(got["total_bytes"]) == [19_000, 5_000]
    assert list(got["growth_bytes_per_day"]) == [1000.0, 0.0]
    assert got["share_of_growth"].iloc[0] == 1.0 and math.isnan(got["share_of_growth"].iloc[1])
    # too little history of their own: rows, and no growth figure (NaN, never None)
    short = forecast.table_growth_rates(snaps, None, min_snapshots=20)
    assert_types(short, GROWTH_RATES, rows=True)
    assert short["growth_bytes_per_day"].isna().all() and short["share_of_growth"].isna().all()
    for none in (None, space.growth(size_store, "nope")):
        assert_types(forecast.table_growth_rates(none, None), GROWTH_RATES, rows=False)


def test_capacity_forecast_frames_with_rows(size_store: Store) -> None:
    """The QA's case: the projection's `ts` was datetime64[ns, UTC]."""
    fc = forecast.capacity_forecast(space.growth(size_store, "prod"), 10**6)
    assert fc.status == "ok" and fc.growth_bytes_per_day == 1000.0
    assert fc.reaches_limit_on == (T0 + timedelta(days=9 + (10**6 - 24_000) / 1000)).date()
    assert_types(fc.frame, FORECAST_FRAME, rows=True)
    assert_types(fc.tables, GROWTH_RATES, rows=True)
    observed = fc.frame.dropna(subset=["observed"])
    assert list(observed["ts"]) == [pd.Timestamp(T0 + timedelta(days=d)) for d in range(10)]
    assert list(observed["observed"]) == [15_000.0 + 1_000 * d for d in range(10)]
    assert fc.frame["projected"].notna().sum() == 50
    assert dict(zip(fc.tables["table"], fc.tables["total_bytes"], strict=True)) == {
        "grow": 19_000,
        "flat": 5_000,
    }


def test_capacity_forecast_frames_without_rows_or_growth(size_store: Store) -> None:
    """The QA's case: `.frame` and `.tables` were all `object` without snapshots, and the
    tables' growth columns `object` (None) with too little history."""
    for snaps in (None, space.growth(size_store, "nope")):
        fc = forecast.capacity_forecast(snaps, 10**9)
        assert fc.status == "not_enough_history"
        assert_types(fc.frame, FORECAST_FRAME, rows=False)
        assert_types(fc.tables, GROWTH_RATES, rows=False)
        assert_usable(fc.frame)
    short = forecast.capacity_forecast(_sizes(2), 10**9)
    assert short.status == "not_enough_history"
    assert_types(short.tables, GROWTH_RATES, rows=True)
    assert short.tables["growth_bytes_per_day"].isna().all()
    assert [t["growth_bytes_per_day"] for t in short.as_dict()["tables"]] == [None, None]
    assert_types(short.frame, FORECAST_FRAME, rows=True)
    assert list(short.frame["observed"]) == [15_000.0, 16_000.0]


def test_size_totals_are_utc_instants_in_microseconds() -> None:
    """Snapshots in nanoseconds (a frame made by hand) give the library's instants."""
    snaps = _sizes(3).assign(ts=lambda d: d["ts"].astype("datetime64[ns, UTC]"))
    totals = space.total_growth(snaps)
    assert dtypes(totals) == dtypes(space.total_growth(None))  # type: ignore[arg-type]
    assert str(totals["ts"].dtype) == TS
    assert list(totals["total_bytes"]) == [15_000, 16_000, 17_000]
    per_table = space.table_growth(snaps)
    assert dtypes(per_table) == dtypes(space.table_growth(None))  # type: ignore[arg-type]
    assert str(per_table["first_ts"].dtype) == TS and str(per_table["last_ts"].dtype) == TS
    assert per_table.iloc[0]["growth_bytes"] == 2_000


# --- on a real PostgreSQL ---------------------------------------------------------------------


def _wait_for_stats(url: str, sql: str, want: object) -> None:
    """Until `sql` answers `want` (statistics reach shared memory when a backend ends)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
                if conn.execute(sa.text(sql)).scalar() == want:
                    return
            time.sleep(0.1)
        raise AssertionError(f"statistics never showed {want!r}: {sql}")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_table_maintenance_of_tables_without_rows(pg_url: str) -> None:
    """The QA's case: the schema loaded, no row anywhere: `dead_ratio` NULL in every row was
    `object`; then a table with 6 live and 4 dead tuples."""
    load_longsang_schema(pg_url)
    with db.connect(pg_url) as insp:
        tables = maintenance.table_maintenance(insp)
        due = maintenance.dead_tuple_tables(insp)
    assert_types(tables, TABLE_MAINTENANCE, rows=True)
    assert set(LONGSANG_TABLES) <= set(tables["table"])
    assert tables["dead_ratio"].isna().all() and (tables["dead_tuples"] == 0).all()
    assert_types(due, TABLE_MAINTENANCE, rows=False)
    assert_usable(due)

    _write(
        pg_url,
        "CREATE TABLE qa23_dead (id int) WITH (autovacuum_enabled = false)",
        "INSERT INTO qa23_dead SELECT generate_series(1, 10)",
        "DELETE FROM qa23_dead WHERE id <= 4",
    )
    _wait_for_stats(
        pg_url, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'qa23_dead'", 4
    )
    with db.connect(pg_url) as insp:
        tables = maintenance.table_maintenance(insp)
        due = maintenance.dead_tuple_tables(insp, db.DbThresholds(dead_tuples_min=1))
    assert_types(tables, TABLE_MAINTENANCE, rows=True)
    row = tables.set_index("table").loc["qa23_dead"]
    assert (row["live_tuples"], row["dead_tuples"], row["dead_ratio"]) == (6, 4, 0.4)
    assert tables.loc[tables["table"] != "qa23_dead", "dead_ratio"].isna().all()
    assert_types(due, TABLE_MAINTENANCE, rows=True)
    assert list(due["table"]) == ["qa23_dead"] and list(due["dead_ratio"]) == [0.4]


@pytest.mark.postgres
def test_sequences_near_max_with_rows_and_without(pg_url: str) -> None:
    """The QA's comparison: no sequence was an all-`object` frame; a sequence feeding no
    column left the column's names `object` (None in every row)."""
    _write(pg_url, "CREATE SEQUENCE qa23_fine MAXVALUE 100")
    with db.connect(pg_url) as insp:
        none = maintenance.sequences_near_max(insp)
    assert_types(none, SEQUENCES, rows=False)
    assert_usable(none)

    _write(pg_url, "CREATE SEQUENCE qa23_lone MAXVALUE 100", "SELECT setval('qa23_lone', 90)")
    with db.connect(pg_url) as insp:
        got = maintenance.sequences_near_max(insp)
    assert_types(got, SEQUENCES, rows=True)
    row = got.iloc[0].to_dict()
    assert len(got) == 1
    assert {k: row[k] for k in ("schema", "sequence", "sequence_type", "capped_by")} == {
        "schema": "public",
        "sequence": "qa23_lone",
        "sequence_type": "bigint",
        "capped_by": "sequence",
    }
    assert (row["last_value"], row["sequence_max"], row["max_value"]) == (90, 100, 100)
    assert row["fraction"] == pytest.approx(89 / 99) and row["severity"] == "warning"
    assert row["column_max"] is None
    for col in ("column", "table_schema", "table_name", "column_name", "column_type"):
        assert pd.isna(row[col]), col


def _socket_url(cluster: PostgresCluster, url: str) -> str:
    """`url`'s database over the cluster's unix socket (pg_stat_activity.client_addr NULL)."""
    folder = cluster.socket_dir or (cluster.host if cluster.host.startswith("/") else None)
    if folder is None:
        pytest.skip("the cluster has no unix socket")
    name = sa.engine.make_url(url).database
    return f"host={folder} port={cluster.port} user={cluster.superuser} dbname={name}"


@pytest.mark.postgres
def test_sessions_over_a_unix_socket(pg_cluster: PostgresCluster, pg_url: str) -> None:
    """Sessions all connected over a unix socket have no client address: `client_addr`
    is a text column of NULLs (was `object` of None)."""
    t = db.DbThresholds(long_running_s=0.3, idle_in_transaction_s=0.3)
    with db.connect(pg_url) as insp:
        for none in (maintenance.long_running_queries(insp), maintenance.idle_in_transaction(insp)):
            assert_types(none, SESSIONS, rows=False)
            assert_usable(none)
    conninfo = _socket_url(pg_cluster, pg_url)
    idle = psycopg.connect(conninfo)
    idle.execute("SELECT 23")  # opens a transaction and leaves it open
    idle_pid = idle.info.backend_pid

    def sleep() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(1.5) /* qa23 */")

    busy = threading.Thread(target=sleep)
    busy.start()
    try:
        time.sleep(0.7)
        with db.connect(pg_url) as insp:
            idling = maintenance.idle_in_transaction(insp, t)
            running = maintenance.long_running_queries(insp, t)
    finally:
        busy.join()
        idle.close()
    for got in (idling, running):  # the cluster's sessions: this test's alone
        assert_types(got, SESSIONS, rows=True)
    idle_row = idling[idling["pid"] == idle_pid].to_dict("records")
    busy_row = running[running["query"] == "SELECT pg_sleep(1.5) /* qa23 */"].to_dict("records")
    assert len(idle_row) == 1 and len(busy_row) == 1
    assert (idle_row[0]["query"], idle_row[0]["state"]) == ("SELECT 23", "idle in transaction")
    assert busy_row[0]["state"] == "active"
    assert pd.isna(idle_row[0]["client_addr"]) and pd.isna(busy_row[0]["client_addr"])


@pytest.mark.postgres
def test_unused_indexes_with_statistics_never_reset(pg_url: str) -> None:
    """Statistics never reset: `stats_reset` NULL in every row was `object` (None), rows or
    none; an instant column is `datetime64[us, UTC]` (NaT)."""
    with db.connect(pg_url) as insp:
        none = indexes.unused_indexes(insp)
        reset = indexes.stats_reset(insp)
    assert_types(none, UNUSED_INDEXES, rows=False)
    assert_usable(none)
    _write(pg_url, "CREATE TABLE qa23_t (a int, b text)", "CREATE INDEX qa23_t_b ON qa23_t (b)")
    with db.connect(pg_url) as insp:
        got = indexes.unused_indexes(insp)
        reset = indexes.stats_reset(insp)
    assert_types(got, UNUSED_INDEXES, rows=True)
    assert list(got["index"]) == ["qa23_t_b"] and list(got["scans"]) == [0]
    if reset["stats_reset"] is None:
        assert got["stats_reset"].isna().all()
    else:  # pragma: no cover - a server that dates a new database's statistics
        assert list(got["stats_reset"]) == [reset["stats_reset"]]
    assert list(got["stats_since"]) == [reset["stats_since"]]


@pytest.fixture
def vector_url(pgvector_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database of the pgvector cluster (tests/fixtures/vectors.py), dropped after."""
    name = f"qa23_{uuid.uuid4().hex[:12]}"
    url = pgvector_cluster.create_database(name)
    try:
        yield url
    finally:
        pgvector_cluster.drop_database(name)


@pytest.mark.postgres
def test_vector_indexes_without_build_options(vector_url: str) -> None:
    """pgvector indexes built with the defaults have no options: `options` NULL in every
    row is a text column (was `object` of None)."""
    pg_url = vector_url
    with db.connect(pg_url) as insp:
        none = indexes.vector_indexes(insp)
    assert_types(none, VECTOR_INDEXES, rows=False)
    _write(
        pg_url,
        "CREATE EXTENSION vector",
        "CREATE TABLE qa23_v (id int, e vector(3))",
        "INSERT INTO qa23_v VALUES (1, '[1,2,3]'), (2, '[3,2,1]')",
        "CREATE INDEX qa23_v_e ON qa23_v USING hnsw (e vector_l2_ops)",
    )
    with db.connect(pg_url) as insp:
        got = indexes.vector_indexes(insp)
    assert_types(got, VECTOR_INDEXES, rows=True)
    assert list(got["index"]) == ["qa23_v_e"] and list(got["method"]) == ["hnsw"]
    assert list(got["opclass"]) == ["vector_l2_ops"] and got["options"].isna().all()
