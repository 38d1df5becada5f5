"""The store's schema: tables, SCHEMA_VERSION, engine and URL handling, version checks.

One SQLAlchemy Core schema serves SQLite (the embedded default, in WAL mode) and
PostgreSQL (the shared store, through psycopg 3). Every table is prefixed `lsops_` so a
shared PostgreSQL database can hold the history next to anything else.

Per-endpoint samples are kept compact (a benchmark wants <= 40 bytes each on disk):
SQLite `WITHOUT ROWID` table with the composite primary key (scrape_sid, endpoint_id)
and no other index; `ts` and the target come from the scrape row through the join.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from ..exceptions import ConfigError, StoreError, StoreVersionError
from ..urls import STORE_DRIVERS, credentials_problem, redact_url

SCHEMA_VERSION = 5  # 2: lsops_rollup; 3: the series links; 4: packed sample blocks (pack.py);
# 5: raw payloads packed with their period (an lsops of version 4 would not find them)


class StoreUrlError(StoreError, ConfigError):
    """The store URL is malformed or names a backend lsops does not support (a config error)."""


# SQLite: a 64-bit INTEGER PRIMARY KEY is only the rowid alias when spelled INTEGER.
_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

meta_table = Table(
    "lsops_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

targets_table = Table(
    "lsops_targets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
)

scrapes_table = Table(
    "lsops_scrapes",
    metadata,
    # what the store's SQL reads (series order, links, rollup, intervals): kept for ever;
    # the rest of a scrape is its lsops_scrape_details row, packed with its period
    Column("sid", _ID, primary_key=True, autoincrement=True),
    Column("target_id", Integer, ForeignKey("lsops_targets.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),  # collector clock, epoch ms
    # the server's own `timestamp` (epoch ms) = ts + server_dt: a few ms, 1-2 bytes, where
    # the instant itself would take 6 (NULL: the answer had none)
    Column("server_dt", BigInteger),
    Column("ok", Boolean, nullable=False),
    Column("uptime_start_ms", BigInteger),
    Column("last_reset_ms", BigInteger),
    Column("requests_total", BigInteger),  # NULL <=> the scrape has no metrics
    Column("cache_hits", BigInteger),
    Column("cache_misses", BigInteger),
)

# The rest of each scrape (schema version 4): its UUID and its ~30 detail columns, one row
# per scrape until its period is packed; then they live in the period's
# lsops_scrape_blocks row (pack_scrapes.py) and the row is deleted. Columns in this order
# are the columns of a block (`pack_scrapes.WIDE`): add new ones at the end.
scrape_details_table = Table(
    "lsops_scrape_details",
    metadata,
    Column("sid", _ID, primary_key=True, autoincrement=False),  # = lsops_scrapes.sid
    Column("scrape_id", String(36), nullable=False, unique=True),
    Column("duration_ms", Float),
    Column("deep", Boolean),
    # health
    Column("health_status", String(16)),  # OK | DEGRADED | ERROR; NULL = no answer
    Column("health_http_status", Integer),  # status of the answer or of the failure
    Column("health_failure", String(32)),  # ApiError kind when health got no answer
    Column("health_error", Text),  # the 503 exception shape's message
    Column("uptime_s", Float),
    Column("pid", Integer),
    Column("rss", BigInteger),
    Column("heap_total", BigInteger),
    Column("heap_used", BigInteger),
    Column("external", BigInteger),
    Column("checks_passed", Integer),
    Column("checks_total", Integer),
    # metrics
    Column("metrics_http_status", Integer),
    Column("metrics_failure", String(32)),
    Column("failure_message", Text),  # every failure of the scrape, one line
    Column("uptime_duration_ms", BigInteger),
    Column("status_2xx", BigInteger),
    Column("status_4xx", BigInteger),
    Column("status_5xx", BigInteger),
    Column("rt_count", Integer),
    Column("rt_avg", Float),
    Column("rt_min", Float),
    Column("rt_p50", Float),
    Column("rt_p95", Float),
    Column("rt_p99", Float),
    Column("rt_max", Float),
    Column("errors_kept", Integer),
    Column("errors_recent", Integer),
    Column("time_window_ms", BigInteger),
)
Index("lsops_scrapes_target_ts", scrapes_table.c.target_id, scrapes_table.c.ts)

services_table = Table(
    "lsops_services",
    metadata,
    Column("scrape_sid", _ID, primary_key=True),
    Column("service", String(100), primary_key=True),
    Column("status", String(16)),
    Column("message", Text),
    Column("response_time_ms", Float),
)

endpoints_table = Table(
    "lsops_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", Text, nullable=False, unique=True),
    Column("monitoring", Boolean, nullable=False),
)

samples_table = Table(
    "lsops_samples",
    metadata,
    Column("scrape_sid", _ID, primary_key=True, autoincrement=False),
    Column("endpoint_id", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),  # cumulative, as byEndpoint[path].count
    Column("avg_time", Float, nullable=False),  # ms, over all `count` requests
    Column("error_rate", Float, nullable=False),  # FRACTION 0-1
    sqlite_with_rowid=False,
)

# Hourly rollup of the per-endpoint deltas (schema version 2): per target, hour (the
# scrape's ts truncated to the hour, as the reads bucket it) and endpoint, the sums of the
# deltas of the scrapes of that hour, monitoring endpoints included. Written by
# `record_scrape` in the scrape's own transaction (rollup.py); `endpoint_intervals` reads it.
rollup_table = Table(
    "lsops_rollup",
    metadata,
    Column("target_id", Integer, primary_key=True, autoincrement=False),
    Column("hour_ts", BigInteger, primary_key=True, autoincrement=False),
    Column("endpoint_id", Integer, primary_key=True, autoincrement=False),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("time_sum_ms", Float, nullable=False),
    Column("resets", Integer, nullable=False),
    sqlite_with_rowid=False,
)

errors_table = Table(
    "lsops_errors",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target_id", Integer, nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("ts", BigInteger, nullable=False),  # the error's own timestamp (epoch ms)
    Column("first_seen", BigInteger, nullable=False),  # ts of the scrape that saw it first
    Column("endpoint", Text),
    Column("method", String(16)),
    Column("status_code", Integer),
    Column("error", Text),
    Column("context", Text),  # JSON
    UniqueConstraint("target_id", "fingerprint", name="lsops_errors_fp"),
)
Index("lsops_errors_ts", errors_table.c.ts)

raw_table = Table(
    "lsops_raw",
    metadata,
    Column("scrape_sid", _ID, primary_key=True, autoincrement=False),
    Column("part", String(16), primary_key=True),
    Column("body", LargeBinary, nullable=False),  # zlib
)

db_sizes_table = Table(
    "lsops_db_sizes",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("database", String(200), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("schema", String(200)),
    Column("table", String(200)),
    Column("total_bytes", BigInteger),
    Column("table_bytes", BigInteger),
    Column("index_bytes", BigInteger),
    Column("toast_bytes", BigInteger),
    Column("rows_estimate", BigInteger),
)
Index("lsops_db_sizes_db_ts", db_sizes_table.c.database, db_sizes_table.c.ts)

db_queries_table = Table(
    "lsops_db_queries",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("database", String(200), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("queryid", BigInteger),
    Column("query", Text),
    Column("calls", BigInteger),
    Column("total_ms", Float),
    Column("rows", BigInteger),
)
Index("lsops_db_queries_db_ts", db_queries_table.c.database, db_queries_table.c.ts)


# --- schema version 3 (issue 13: redundant collectors) ------------------------------------
#
# Several collectors may scrape one target into one store, with skewed clocks: a scrape's
# place in its target's series is decided by what the API answered, not by the collector
# clock (`series.py`). Each scrape with metrics keeps a link to its predecessor in that
# order (`prev_sid`, maintained on write by `chain.py`); the series index finds the
# neighbours of a new scrape; each rollup row counts the samples it sums (`samples`), so
# that a row whose contributions were all taken back is deleted. Migration: `migrate_v3`.

SERIES_KEY = (
    "coalesce({a}uptime_start_ms, -1)",
    "coalesce({a}last_reset_ms, -1)",
    "({a}ts + coalesce({a}server_dt, 0))",  # the server's time, else the collector's
    "{a}requests_total",
    "{a}sid",
)

scrapes_table.append_column(Column("prev_sid", _ID))  # the series predecessor (with metrics)
rollup_table.append_column(Column("samples", Integer, nullable=False, server_default=text("0")))
# The index holds the key's first three parts (process, reset, instant): the last two
# (requests_total, sid) only break ties between scrapes of the very same instant, which a
# read sorts among themselves (SQLite: "temp b-tree for right part of ORDER BY"); 9 bytes
# a scrape less (schema version 4).
series_index = Index(
    "lsops_scrapes_series",
    scrapes_table.c.target_id,
    *(literal_column(k.format(a="")) for k in SERIES_KEY[:3]),
    sqlite_where=scrapes_table.c.requests_total.is_not(None),
    postgresql_where=scrapes_table.c.requests_total.is_not(None),
)


def migrate_v3(conn: Connection) -> None:
    """Give a store of schema version 1 or 2 the columns of version 3 (in the caller's
    write transaction; idempotent, safe when two processes migrate at once)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE lsops_scrapes ADD COLUMN IF NOT EXISTS prev_sid BIGINT")
        conn.exec_driver_sql(
            "ALTER TABLE lsops_rollup ADD COLUMN IF NOT EXISTS samples INTEGER NOT NULL DEFAULT 0"
        )
    else:
        have = {c["name"] for c in inspect(conn).get_columns(scrapes_table.name)}
        if "prev_sid" not in have:
            conn.exec_driver_sql("ALTER TABLE lsops_scrapes ADD COLUMN prev_sid INTEGER")
        have = {c["name"] for c in inspect(conn).get_columns(rollup_table.name)}
        if "samples" not in have:
            conn.exec_driver_sql(
                "ALTER TABLE lsops_rollup ADD COLUMN samples INTEGER NOT NULL DEFAULT 0"
            )
    # the series index comes with the layout of version 4 (`migrate_v4`, always next)


# --- schema version 4 (issue 14: the compact sample format) ---------------------------------
#
# The samples of the scrapes of one target in one period (`pack_period_ms` in lsops_meta,
# a day unless the store was created otherwise) are packed into one block once the
# target's scrapes have moved on to a later period (`pack.py`, codec in `codec.py`); the
# recent period stays in lsops_samples, and so do late samples until they are packed in.
# Migration from 1-3: the version is raised at once (rows are always valid), the old
# periods are then packed one transaction each (an interrupted migration resumes on open).


def migrate_v4(conn: Connection) -> None:
    """Split the scrape rows of a store of version 1-3 (in the caller's write transaction,
    after `migrate_v3`): each row's UUID and detail columns move into
    lsops_scrape_details, the row keeps what the SQL reads, its server instant as the
    difference to its own (`server_dt`); the indexes of version 4. SQLite rebuilds the
    table (a UNIQUE column cannot be dropped), PostgreSQL alters it. Idempotent."""
    have = {c["name"] for c in inspect(conn).get_columns(scrapes_table.name)}
    if "scrape_id" in have:
        details = [c.name for c in scrape_details_table.columns]
        moved = ", ".join(details)
        conn.exec_driver_sql(
            f"INSERT INTO {scrape_details_table.name} ({moved}) SELECT {moved} FROM lsops_scrapes"
        )
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP INDEX IF EXISTS lsops_scrapes_series")
            conn.exec_driver_sql("ALTER TABLE lsops_scrapes ADD COLUMN server_dt BIGINT")
            conn.exec_driver_sql("UPDATE lsops_scrapes SET server_dt = server_ts - ts")
            drop = ", ".join(f"DROP COLUMN {c}" for c in [*details[1:], "server_ts"])
            conn.exec_driver_sql(f"ALTER TABLE lsops_scrapes {drop}")
        else:
            thin = [c.name for c in scrapes_table.columns]
            source = ", ".join("server_ts - ts" if c == "server_dt" else c for c in thin)
            ddl = str(CreateTable(scrapes_table).compile(dialect=conn.dialect))
            conn.exec_driver_sql(ddl.replace("lsops_scrapes", "lsops_scrapes_v4", 1))
            conn.exec_driver_sql(
                f"INSERT INTO lsops_scrapes_v4 ({', '.join(thin)}) "
                f"SELECT {source} FROM lsops_scrapes"
            )
            conn.exec_driver_sql("DROP TABLE lsops_scrapes")
            conn.exec_driver_sql("ALTER TABLE lsops_scrapes_v4 RENAME TO lsops_scrapes")
    for index in scrapes_table.indexes:
        conn.execute(CreateIndex(index, if_not_exists=True))


sample_blocks_table = Table(
    "lsops_sample_blocks",
    metadata,
    Column("target_id", Integer, primary_key=True, autoincrement=False),
    Column("period_ts", BigInteger, primary_key=True, autoincrement=False),
    Column("scrapes", Integer, nullable=False),
    Column("until_ts", BigInteger, nullable=False),  # the scrapes before it are in the block
    Column("body", LargeBinary, nullable=False),
)


def _row_blocks(name: str) -> Table:
    """A table of row blocks (`codec.encode_rows`), one per (target, period)."""
    return Table(
        name,
        metadata,
        Column("target_id", Integer, primary_key=True, autoincrement=False),
        Column("period_ts", BigInteger, primary_key=True, autoincrement=False),
        Column("body", LargeBinary, nullable=False),
    )


# the health services of those scrapes, and their details rows (pack_scrapes.py)
service_blocks_table = _row_blocks("lsops_service_blocks")
scrape_blocks_table = _row_blocks("lsops_scrape_blocks")
# schema version 5: the raw payloads of those scrapes (`codec.payloads_block`)
raw_blocks_table = _row_blocks("lsops_raw_blocks")

# the packer's own state (kept out of lsops_meta): the period, per target the period below
# which all is packed, periods with late samples to merge in, an unfinished migration
pack_state_table = Table(
    "lsops_pack_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# --- engine and URL ------------------------------------------------------------------


def engine_url(url: str) -> str:
    """`postgresql://` and `postgres://` -> `postgresql+psycopg://` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _memory(database: str | None) -> bool:
    database = database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:")


def in_memory(url: str) -> bool:
    """True for a SQLite store held in memory (`sqlite://`, `sqlite:///:memory:`): it is
    gone when the process ends (a collector refuses it)."""
    try:
        parsed = make_url(engine_url(url))
    except Exception:  # noqa: BLE001 - a malformed URL: `make_engine` says why
        return False
    return parsed.get_backend_name() == "sqlite" and _memory(parsed.database)


def make_engine(url: str) -> Engine:
    """The engine of a store URL: SQLite (`~` expanded, parent folder created, WAL unless
    in memory, busy_timeout 30 s) or PostgreSQL (psycopg 3). Anything else is a
    StoreUrlError."""
    problem = credentials_problem(url)
    if problem is not None:  # else a piece of the password becomes a host name, and is shown
        raise StoreUrlError(f"not a store URL: {redact_url(url)} ({problem})")
    try:
        parsed = make_url(engine_url(url))
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError & co
        raise StoreUrlError(f"not a store URL: {redact_url(url)} ({one_line(exc)})") from None
    backend = parsed.get_backend_name()
    if backend not in STORE_DRIVERS:  # before its driver's name, which loads its dialect
        raise StoreUrlError(
            f"unsupported store backend {backend!r}: use sqlite:/// or postgresql://"
        )
    driver = parsed.get_driver_name()
    if backend in STORE_DRIVERS and driver != STORE_DRIVERS[backend]:
        raise StoreUrlError(
            f"unsupported store driver {driver!r}: lsops uses {backend}+{STORE_DRIVERS[backend]}://"
            f" (or {backend}://)"
        )
    if backend == "sqlite":
        database = parsed.database or ""
        memory = _memory(database)
        kwargs: dict[str, Any] = {}
        if memory:
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            path = Path(database).expanduser()  # the file config.sqlite_path names
            path.parent.mkdir(parents=True, exist_ok=True)
            parsed = parsed.set(database=str(path))
            kwargs = {"connect_args": {"timeout": SQLITE_BUSY_S}}
        engine = create_engine(parsed, **kwargs)
        _sqlite_setup(engine, wal=not memory)
        return engine
    # postgresql
    # a store host that does not answer (down, booting, a firewall dropping packets)
    # is an error after this long, not a collector hanging with no word
    args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        args["connect_timeout"] = PG_CONNECT_S
    if "options" not in parsed.query:
        # a lock another session holds (a migration, `LOCK TABLE`, a stuck transaction)
        # is waited for as long as SQLite's busy handler waits, then the statement fails
        # (a StoreError: the collector says so and scrapes again), not waited for forever
        args["options"] = f"-c lock_timeout={int(PG_LOCK_WAIT_S * 1000)}"
    # a store host lost mid-write (a network partition, a host gone): TCP keepalives and
    # libpq's tcp_user_timeout end the wait after about PG_LOST_S, a StoreError, not a
    # collector stalled with no word for TCP's ~15 minutes of retries (QA 23). (A server
    # process that hangs while its host still answers TCP: the collector's write is
    # bounded by `stall.StallGuard`.) The URL's own settings win.
    for key, value in PG_KEEPALIVE.items():
        if key not in parsed.query:
            args[key] = value
    return create_engine(parsed, pool_pre_ping=True, connect_args=args)


SQLITE_BUSY_S = 30.0  # how long a connection waits for another's lock (busy_timeout)
PG_CONNECT_S = 10  # libpq's connect_timeout for a PostgreSQL store (unless the URL sets one)
PG_LOCK_WAIT_S = SQLITE_BUSY_S  # lock_timeout of a PostgreSQL store (unless the URL sets options)
PG_LOST_S = 30  # a PostgreSQL store host that stopped answering mid-statement: an error after
PG_KEEPALIVE = {  # libpq's settings of it (the URL's own win)
    "keepalives": 1,
    "keepalives_idle": 10,  # s without traffic before the first probe
    "keepalives_interval": 5,  # s between probes: 10 + 4 x 5 = PG_LOST_S
    "keepalives_count": 4,
    "tcp_user_timeout": PG_LOST_S * 1000,  # ms a sent packet may stay unacknowledged
}


def _set_wal(cursor: Any) -> None:
    """WAL mode. Switching a new file to it needs a lock the busy handler does not wait
    for: two processes opening a new store at the same moment got "database is locked";
    the switch is tried again for up to SQLITE_BUSY_S."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_setup(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control from pysqlite: SQLAlchemy's begin() emits BEGIN below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_S * 1000)}")
            if wal:
                _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("lsops_write", False)
        # straight to the driver (pysqlite in autocommit mode, set above): SQLAlchemy's
        # statement machinery for one BEGIN cost a tenth of a stored scrape's CPU
        sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        try:
            conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
        except sqlite3.Error as exc:  # as SQLAlchemy raises it (a StoreError to callers)
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction (SQLite: BEGIN IMMEDIATE, so writers queue, never deadlock)."""
    with engine.connect() as conn:
        conn = conn.execution_options(lsops_write=True)
        with conn.begin():
            yield conn


def create_tables(engine: Engine) -> None:
    """Create the tables and indexes that do not exist yet, in one write transaction
    (SQLite: BEGIN IMMEDIATE, so two processes opening a new store at the same moment take
    turns within the busy timeout instead of one failing with "database is locked")."""
    try:
        with write_transaction(engine) as conn:
            metadata.create_all(conn, checkfirst=True)
    except SQLAlchemyError:
        # another process created the schema at the same moment: check once more
        with write_transaction(engine) as conn:
            metadata.create_all(conn, checkfirst=True)


# --- the meta rows and the version -----------------------------------------------------


def stored_version(conn: Connection, url: str) -> int | None:
    """The schema version the store holds, None for a store without the meta table yet."""
    if not inspect(conn).has_table(meta_table.name):
        return None
    value = conn.execute(
        select(meta_table.c.value).where(meta_table.c.key == "schema_version")
    ).scalar()
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise StoreError(f"store {url} has a malformed schema version {value!r}") from None


def refuse_newer(version: int | None, url: str) -> None:
    """StoreVersionError for a store written by a newer lsops."""
    if version is not None and version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"store {url} has schema version {version}, newer than this lsops "
            f"understands ({SCHEMA_VERSION}): upgrade lsops"
        )


def set_meta(conn: Connection, key: str, value: str, table: Table = meta_table) -> None:
    """Update in place (a PostgreSQL writer waiting on that row then sees the new one)."""
    done = conn.execute(table.update().where(table.c.key == key).values(value=value))
    if done.rowcount == 0:
        insert_ignore(conn, table, [{"key": key, "value": value}])
        conn.execute(table.update().where(table.c.key == key).values(value=value))


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect's own words."""
    if not rows:
        return
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - the Store refuses other backends
        raise StoreError(f"unsupported store backend {name!r}")
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


def one_line(exc: BaseException) -> str:
    """The first line of a database error (the driver's own message when there is one)."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip().splitlines()
    return message[0] if message else type(exc).__name__
