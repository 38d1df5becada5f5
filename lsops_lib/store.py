"""The metrics store: schema, writes, and reads that aggregate in SQL.

One SQLAlchemy Core schema serves SQLite (the embedded default, in WAL mode) and
PostgreSQL (the shared store, through psycopg 3). Every table is prefixed `lsops_` so a
shared PostgreSQL database can hold the history next to anything else.

Writes: `record_scrape` stores one `models.Scrape` in ONE transaction (scrape row,
health services, per-endpoint samples, new error records, compressed raw payloads), so a
process killed mid-write leaves either the whole scrape or none of it. The scrape's UUID
is unique: a retried write of the same scrape returns False and stores nothing twice.

Reads return pandas DataFrames whose instants are `Timestamp(tz="UTC")`; the interval
figures (`endpoint_intervals`, `counter_intervals`, `resets`) are computed IN SQL with
window functions, so a year of one-minute scrapes is never loaded raw. The rule of the
deltas is written once, in `_SERIES_SQL`, and documented at `endpoint_intervals`.

Hourly rollup (schema version 2): `record_scrape` also adds the new scrape's
per-endpoint deltas to `lsops_rollup` (per target, hour, endpoint) in the same
transaction, or recomputes the affected hours from the samples when the scrape arrives
out of order; `endpoint_intervals` reads the hour and day buckets from it for the whole
hours of a window and from the samples for the partial hours at its edges. Opening a
version-1 store fills the rollup from the samples; scrapes written by anything that keeps
no rollup (above the mark `rollup_sid`) are rolled up at the next open. See
docs/internals.md (store).

Per-endpoint samples are kept compact (a benchmark wants <= 40 bytes each on disk):
SQLite `WITHOUT ROWID` table with the composite primary key (scrape_sid, endpoint_id)
and no other index; `ts` and the target come from the scrape row through the join.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
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
    func,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from .config import redact_url
from .exceptions import ConfigError, StoreError, StoreVersionError
from .models import ErrorRecord, Scrape, is_monitoring
from .times import to_ms

SCHEMA_VERSION = 2  # 2: lsops_rollup


class StoreUrlError(StoreError, ConfigError):
    """The store URL is malformed or names a backend lsops does not support (a config error)."""


BUCKETS: dict[str, int | None] = {
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "scrape": None,
}

_MIN_MS = -(2**62)
_MAX_MS = 2**62

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
    Column("sid", _ID, primary_key=True, autoincrement=True),
    Column("scrape_id", String(36), nullable=False, unique=True),
    Column("target_id", Integer, ForeignKey("lsops_targets.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),  # collector clock, epoch ms
    Column("server_ts", BigInteger),  # the server's own `timestamp`, epoch ms
    Column("duration_ms", Float),
    Column("ok", Boolean, nullable=False),
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
    Column("uptime_start_ms", BigInteger),
    Column("uptime_duration_ms", BigInteger),
    Column("last_reset_ms", BigInteger),
    Column("requests_total", BigInteger),  # NULL <=> the scrape has no metrics
    Column("status_2xx", BigInteger),
    Column("status_4xx", BigInteger),
    Column("status_5xx", BigInteger),
    Column("cache_hits", BigInteger),
    Column("cache_misses", BigInteger),
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
# `record_scrape` in the scrape's own transaction; `endpoint_intervals` reads it.
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

DB_SIZE_COLUMNS = [
    "schema",
    "table",
    "total_bytes",
    "table_bytes",
    "index_bytes",
    "toast_bytes",
    "rows_estimate",
]
DB_QUERY_COLUMNS = ["queryid", "query", "calls", "total_ms", "rows"]

SCRAPE_COLUMNS = [
    "ts",
    "target",
    "ok",
    "failure_kind",
    "failure_message",
    "http_status",
    "health_status",
    "uptime_start_ms",
    "last_reset_ms",
    "requests_total",
    "cache_hits",
    "cache_misses",
    "rss",
    "heap_used",
    "heap_total",
    "rt_count",
    "rt_avg",
    "rt_min",
    "rt_p50",
    "rt_p95",
    "rt_p99",
    "rt_max",
    "errors_recent",
    "server_ts",
    "duration_ms",
    "scrape_id",
]


# The SQL expression of each `Store.scrapes` column (over lsops_scrapes s and
# lsops_targets t), in its order: SCRAPE_COLUMNS, then the per-part details.
_SCRAPE_DETAILS = [
    "health_failure", "metrics_failure", "health_http_status", "metrics_http_status",
    "uptime_s", "pid", "external", "checks_passed", "checks_total", "deep",
    "status_2xx", "status_4xx", "status_5xx", "errors_kept", "uptime_duration_ms",
]  # fmt: skip
_SCRAPE_COMPUTED = {
    "target": "t.name",
    "failure_kind": "COALESCE(s.health_failure, s.metrics_failure)",
    "http_status": (
        "CASE WHEN s.health_failure IS NOT NULL THEN s.health_http_status"
        " WHEN s.metrics_failure IS NOT NULL THEN s.metrics_http_status"
        " ELSE s.health_http_status END"
    ),
}
_SCRAPE_SELECT: dict[str, str] = {
    c: _SCRAPE_COMPUTED.get(c, f"s.{c}") for c in [*SCRAPE_COLUMNS, *_SCRAPE_DETAILS]
}

# The columns of `Store.health`, read from the same scrape rows.
_HEALTH_SELECT: dict[str, str] = {
    "ts": "s.ts",
    "status": "COALESCE(s.health_status, 'NO_ANSWER')",
    "http_status": "s.health_http_status",
    "target": "t.name",
    "failure_kind": "s.health_failure",
}
HEALTH_COLUMNS = list(_HEALTH_SELECT)

# The scrape fields behind the review's figures (memory, latency time slices, percentile
# sanity): `Store.scrape_figures`.
FIGURE_COLUMNS = [
    "uptime_start_ms", "rss", "heap_used", "heap_total", "rt_count",
    "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max",
]  # fmt: skip


def engine_url(url: str) -> str:
    """`postgresql://` and `postgres://` -> `postgresql+psycopg://` (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _ms(value: datetime | None, default: int) -> int:
    return default if value is None else to_ms(value)


def _fingerprint(target_id: int, rec: ErrorRecord, occurrence: int) -> str:
    key = json.dumps(
        [
            target_id,
            rec.timestamp_ms,
            rec.endpoint,
            rec.method,
            rec.status_code,
            rec.error,
            occurrence,
        ],
        default=str,
    )
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def _truncate(value: str | None, limit: int = 4000) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


# --- the series rule, shared by every interval read ----------------------------------
#
# b  : per target, the lower bound of the scan: the last scrape WITH METRICS before
#      :start (the predecessor that makes windows additive), else the last scrape of any
#      kind before :start, else :start.
# sc : every scrape of the scan, with the ts of the scrape before it (any kind).
# mk : the scrapes with metrics, each with its predecessor with metrics (p_*) and a kind:
#      base         no predecessor with metrics, and the process did not (re)start after
#                   the scrape before it: the values are a baseline, the delta unknown.
#      restart      a new uptime.start (or, with no predecessor with metrics, an
#                   uptime.start/lastReset after the previous known scrape: the counters
#                   started while we were watching).
#      reset        a new uptime.lastReset (POST /api/metrics/reset).
#      counter_drop requests.total went down with neither changing.
#      same         the same series: deltas are differences.
def _series_sql(target_where: str, *, p: str = "", start: str = ":start", end: str = ":end") -> str:
    """The CTEs b, sc, ms, mk above (names prefixed with `p`, bounds as given), so that one
    statement can scan two windows (the partial hours at both edges of a rollup read)."""
    return f"""
{p}b AS (
  SELECT t.id AS target_id, t.name AS target,
         COALESCE(
           (SELECT s.ts FROM lsops_scrapes s
             WHERE s.target_id = t.id AND s.ts < {start} AND s.requests_total IS NOT NULL
             ORDER BY s.ts DESC LIMIT 1),  -- MAX(ts), found walking the index back
           (SELECT MAX(s.ts) FROM lsops_scrapes s WHERE s.target_id = t.id AND s.ts < {start}),
           {start}) AS lo
  FROM lsops_targets t {target_where}
),
{p}sc AS (
  SELECT s.sid, s.target_id, {p}b.target, s.ts, s.ok,
         s.uptime_start_ms AS us, s.last_reset_ms AS lr, s.requests_total AS rq,
         s.cache_hits AS ch, s.cache_misses AS cm,
         LAG(s.ts) OVER (PARTITION BY s.target_id ORDER BY s.ts, s.sid) AS prev_any_ts
  FROM lsops_scrapes s JOIN {p}b ON s.target_id = {p}b.target_id
  WHERE s.ts >= {p}b.lo AND s.ts < {end}
),
{p}ms AS (
  SELECT {p}sc.*,
         LAG(sid) OVER w AS p_sid, LAG(us) OVER w AS p_us, LAG(lr) OVER w AS p_lr,
         LAG(rq) OVER w AS p_rq, LAG(ch) OVER w AS p_ch, LAG(cm) OVER w AS p_cm
  FROM {p}sc WHERE rq IS NOT NULL
  WINDOW w AS (PARTITION BY target_id ORDER BY ts, sid)
),
{p}mk AS (
  SELECT {p}ms.*,
         CASE
           WHEN p_sid IS NULL THEN
             CASE WHEN prev_any_ts IS NOT NULL
                       AND (COALESCE(us, -1) > prev_any_ts OR COALESCE(lr, -1) > prev_any_ts)
                  THEN 'restart' ELSE 'base' END
           WHEN COALESCE(us, -1) <> COALESCE(p_us, -1) THEN 'restart'
           WHEN COALESCE(lr, -1) <> COALESCE(p_lr, -1) THEN 'reset'
           WHEN rq < p_rq THEN 'counter_drop'
           ELSE 'same'
         END AS kind
  FROM {p}ms
)"""


# `_SERIES_SQL.format(target_where=...)`: the CTEs over [:start, :end)
_SERIES_SQL = _series_sql("{target_where}")

_NEW_SERIES = "('restart', 'reset', 'counter_drop')"


def _bucket_sql(bucket: str, column: str = "ts") -> str:
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r} (expected one of {', '.join(BUCKETS)})")
    size = BUCKETS[bucket]
    # integer division of epoch ms: the same in SQLite and PostgreSQL (ts is an integer)
    return column if size is None else f"(({column} / {size}) * {size})"


def _delta_columns(kind: str) -> str:
    """The per-sample deltas of sample x against its predecessor's px (NULL when the
    endpoint is absent from it), for a scrape of the given kind (an SQL expression):
    is_reset, d_n (requests), d_t (time sum, ms), d_e (errors). Shared by the raw reads
    and the rollup writes, so both compute the very same numbers."""
    whole = f"{kind} IN {_NEW_SERIES} OR px.count IS NULL OR x.count < px.count"
    return f"""CASE WHEN {kind} IN {_NEW_SERIES} THEN 1
                      WHEN px.count IS NOT NULL AND x.count < px.count THEN 1
                      ELSE 0 END AS is_reset,
                 CASE WHEN {whole} THEN x.count ELSE x.count - px.count END AS d_n,
                 CASE WHEN {whole} THEN x.avg_time * x.count
                      WHEN x.count = px.count
                           OR x.avg_time * x.count < px.avg_time * px.count THEN 0
                      ELSE x.avg_time * x.count - px.avg_time * px.count END AS d_t,
                 CASE WHEN {whole} THEN ROUND(x.error_rate * x.count)
                      WHEN ROUND(x.error_rate * x.count) < ROUND(px.error_rate * px.count) THEN 0
                      ELSE ROUND(x.error_rate * x.count) - ROUND(px.error_rate * px.count)
                 END AS d_e"""


def _rollup_select(target_where: str) -> str:
    """INSERT INTO lsops_rollup the hourly sums of the deltas of the scrapes in
    [:start, :end) of the targets selected by `target_where` (all endpoints)."""
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets)
        WITH {_SERIES_SQL.format(target_where=target_where)},
        ed AS (
          SELECT mk.target_id, {_bucket_sql("hour", "mk.ts")} AS bts, x.endpoint_id,
                 {_delta_columns("mk.kind")}
          FROM mk
          JOIN lsops_samples x ON x.scrape_sid = mk.sid
          LEFT JOIN lsops_samples px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.ts >= :start AND mk.kind <> 'base'
        )
        SELECT target_id, bts, endpoint_id, SUM(d_n), SUM(d_e), SUM(d_t), SUM(is_reset)
        FROM ed GROUP BY target_id, bts, endpoint_id"""


@functools.cache
def _rollup_upsert(kind: str) -> str:
    """Add the deltas of scrape :sid (of that kind, predecessor :psid) to the rollup rows
    (:tid, :hour, endpoint)."""
    assert kind in ("restart", "reset", "counter_drop", "same")
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets)
        SELECT CAST(:tid AS INTEGER), CAST(:hour AS BIGINT), endpoint_id, d_n, d_e, d_t, is_reset
        FROM (
          SELECT x.endpoint_id, {_delta_columns(f"'{kind}'")}
          FROM lsops_samples x
          LEFT JOIN lsops_samples px ON px.scrape_sid = :psid AND px.endpoint_id = x.endpoint_id
          WHERE x.scrape_sid = :sid
        ) d
        WHERE 1 = 1
        ON CONFLICT (target_id, hour_ts, endpoint_id) DO UPDATE SET
          requests = lsops_rollup.requests + excluded.requests,
          errors = lsops_rollup.errors + excluded.errors,
          time_sum_ms = lsops_rollup.time_sum_ms + excluded.time_sum_ms,
          resets = lsops_rollup.resets + excluded.resets"""


def _series_kind(me: Any, pred: Any, prev_ts: int | None) -> str:
    """The kind `_SERIES_SQL` gives scrape `me` (uptime_start_ms, last_reset_ms,
    requests_total) with its predecessor with metrics `pred` (or None) and the ts of the
    scrape before it of any kind (or None)."""
    us = -1 if me.uptime_start_ms is None else me.uptime_start_ms
    lr = -1 if me.last_reset_ms is None else me.last_reset_ms
    if pred is None:
        return "restart" if prev_ts is not None and (us > prev_ts or lr > prev_ts) else "base"
    if us != (-1 if pred.uptime_start_ms is None else pred.uptime_start_ms):
        return "restart"
    if lr != (-1 if pred.last_reset_ms is None else pred.last_reset_ms):
        return "reset"
    if me.requests_total < pred.requests_total:
        return "counter_drop"
    return "same"


def _set_meta(conn: Connection, key: str, value: str) -> None:
    """Update in place (a PostgreSQL writer waiting on that row then sees the new one)."""
    done = conn.execute(meta_table.update().where(meta_table.c.key == key).values(value=value))
    if done.rowcount == 0:
        conn.execute(meta_table.insert().values(key=key, value=value))


_NEW_SERIES_KINDS = ("restart", "reset", "counter_drop")

# The scrape (ts, sid) itself, the scrape just before it and the one just after it, of
# one target, in (ts, sid) order: two short walks of the index (target_id, ts).
_NEIGHBOURS_SQL = """
SELECT * FROM (
  SELECT CASE WHEN s.sid = :sid THEN 'me' ELSE 'prev' END AS side, s.sid, s.ts,
         s.uptime_start_ms, s.last_reset_ms, s.requests_total
  FROM lsops_scrapes s
  WHERE s.target_id = :tid AND s.ts <= :ts AND (s.ts < :ts OR s.sid <= :sid)
  ORDER BY s.ts DESC, s.sid DESC LIMIT 2
) a
UNION ALL
SELECT * FROM (
  SELECT 'next' AS side, s.sid, s.ts, s.uptime_start_ms, s.last_reset_ms, s.requests_total
  FROM lsops_scrapes s
  WHERE s.target_id = :tid AND s.ts >= :ts AND (s.ts > :ts OR s.sid > :sid)
  ORDER BY s.ts, s.sid LIMIT 1
) b"""


_RAISE_MARK_SQL = (
    "UPDATE lsops_meta SET value = :value WHERE key = 'rollup_sid' AND CAST(value AS BIGINT) < :sid"
)

_PG_PARAMS: dict[str, str] = {}


def _driver(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute a statement of the write path straight through the driver (no SQLAlchemy
    compilation: about a tenth of a millisecond less per statement). The statements are
    written with :name parameters (sqlite3's named style); psycopg gets %(name)s."""
    if conn.dialect.name == "postgresql":
        if sql not in _PG_PARAMS:
            _PG_PARAMS[sql] = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)
        sql = _PG_PARAMS[sql]
    return conn.exec_driver_sql(sql, params)


def _ts_or_none(row: Any) -> int | None:
    return None if row is None else int(row.ts)


def _sid_or_none(row: Any) -> int | None:
    return None if row is None else int(row.sid)


_HOUR = 3_600_000


def _hour_of(ts: int) -> int:
    """The rollup hour of ts, as the SQL computes it ((ts / h) * h truncates toward 0)."""
    q = abs(ts) // _HOUR
    return (q if ts >= 0 else -q) * _HOUR


def _hour_span(hour: int) -> tuple[int, int]:
    """[lo, hi): the instants whose `_hour_of` is `hour` (the hour 0 spans two hours)."""
    return (hour if hour > 0 else hour - _HOUR + 1), (hour + _HOUR if hour >= 0 else hour + 1)


class Store:
    """The metrics history behind a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str):
        self._url = url
        self._lock = threading.Lock()
        self._target_ids: dict[str, int] = {}
        self._endpoint_ids: dict[str, int] = {}
        try:
            self.engine = self._make_engine(url)
            self._init_schema()
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open store {self.url}: {_one_line(exc)}") from None

    # --- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The store URL with any password redacted."""
        return redact_url(self._url) or ""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_engine(self, url: str) -> Engine:
        try:
            parsed = make_url(engine_url(url))
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError & co
            raise StoreUrlError(f"not a store URL: {redact_url(url)} ({_one_line(exc)})") from None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            database = parsed.database or ""
            memory = database in ("", ":memory:") or database.startswith("file::memory:")
            kwargs: dict[str, Any] = {}
            if memory:
                kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs = {"connect_args": {"timeout": 30}}
            engine = create_engine(parsed, **kwargs)
            _sqlite_setup(engine, wal=not memory)
            return engine
        if backend == "postgresql":
            return create_engine(parsed, pool_pre_ping=True)
        raise StoreUrlError(
            f"unsupported store backend {backend!r}: use sqlite:/// or postgresql://"
        )

    def _init_schema(self) -> None:
        with self._write() as conn:
            version = self._stored_version(conn)
            if version is not None and version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.url} has schema version {version}, newer than this lsops "
                    f"understands ({SCHEMA_VERSION}): upgrade lsops"
                )
            # a version-2 store without its rollup table (dropped by hand): roll up anew
            lost = version is not None and not inspect(conn).has_table(rollup_table.name)
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except SQLAlchemyError:
            # another process created the schema at the same moment: check once more
            metadata.create_all(self.engine, checkfirst=True)
        with self._write() as conn:
            if self._stored_version(conn) is None:
                _insert_ignore(
                    conn,
                    meta_table,
                    [
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": "rollup_sid", "value": "0"},
                    ],
                )
            if lost:
                conn.execute(meta_table.delete().where(meta_table.c.key == "rollup_sid"))
            self._catch_up(conn)

    def _rollup_state(self, conn: Connection) -> tuple[int, int | None, int | None]:
        """(schema version, rollup mark, MAX(sid)) in one statement (one snapshot)."""
        version, mark, max_sid = conn.execute(
            text(
                "SELECT (SELECT value FROM lsops_meta WHERE key = 'schema_version'), "
                "(SELECT value FROM lsops_meta WHERE key = 'rollup_sid'), "
                "(SELECT MAX(sid) FROM lsops_scrapes)"
            )
        ).one()
        return (
            int(version),
            None if mark is None else int(mark),
            None if max_sid is None else int(max_sid),
        )

    @staticmethod
    def _stale(state: tuple[int, int | None, int | None]) -> bool:
        version, mark, max_sid = state
        return version < SCHEMA_VERSION or mark is None or (max_sid or 0) > mark

    def _catch_up(self, conn: Connection) -> None:
        """Bring the rollup up to date with the samples, in one transaction.

        A version-1 store (no rollup yet) is rolled up whole by one INSERT ... SELECT of
        the delta rule, then marked version 2. `record_scrape` keeps the rollup current
        and raises the mark `rollup_sid` to the sid it wrote; scrapes above the mark were
        written by something else (an older lsops still running, a bulk loader): each
        such target is rolled up again from the hour of its first such scrape on."""
        if not self._stale(self._rollup_state(conn)):
            return  # every open: one small statement
        if conn.dialect.name == "postgresql":
            # the writers' lock order: target rows, then the meta rows
            conn.execute(select(targets_table.c.id).order_by(targets_table.c.id).with_for_update())
            conn.execute(select(meta_table.c.key).order_by(meta_table.c.key).with_for_update())
        state = self._rollup_state(conn)
        if not self._stale(state):
            return
        version, mark, max_sid = state
        if version < 2 or mark is None:
            conn.execute(rollup_table.delete())
            conn.execute(text(_rollup_select("")), {"start": _MIN_MS, "end": _MAX_MS})
        else:
            firsts = conn.execute(
                select(scrapes_table.c.target_id, func.min(scrapes_table.c.ts))
                .where(scrapes_table.c.sid > mark)
                .group_by(scrapes_table.c.target_id)
            ).all()
            for target_id, first in firsts:
                hour = _hour_of(int(first))
                conn.execute(
                    rollup_table.delete().where(
                        rollup_table.c.target_id == target_id,
                        rollup_table.c.hour_ts >= hour,
                    )
                )
                conn.execute(
                    text(_rollup_select("WHERE t.id = :tid")),
                    {"tid": target_id, "start": _hour_span(hour)[0], "end": _MAX_MS},
                )
        _set_meta(conn, "rollup_sid", str(max_sid or 0))
        _set_meta(conn, "schema_version", str(SCHEMA_VERSION))

    def _stored_version(self, conn: Connection) -> int | None:
        if not inspect(conn).has_table(meta_table.name):
            return None
        value = conn.execute(
            select(meta_table.c.value).where(meta_table.c.key == "schema_version")
        ).scalar()
        try:
            return int(value) if value is not None else None
        except ValueError:
            raise StoreError(f"store {self.url} has a malformed schema version {value!r}") from None

    def schema_version(self) -> int | None:
        with self.engine.connect() as conn:
            return self._stored_version(conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so writers queue, never deadlock)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(lsops_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read store {self.url}: {_one_line(exc)}") from None

    # --- writes ---------------------------------------------------------------------

    def record_scrape(self, scrape: Scrape) -> bool:
        """Store one scrape in one transaction. False when that scrape id is already stored."""
        with self._lock:
            try:
                return self._record(scrape)
            except IntegrityError:
                # the same scrape id written concurrently (or a retry racing its original)
                if self._has_scrape(scrape.id):
                    return False
                raise StoreError(
                    f"cannot write scrape {scrape.id} to {self.url}: integrity error"
                ) from None
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot write scrape to {self.url}: {_one_line(exc)}") from None

    def _has_scrape(self, scrape_id: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute(
                    select(scrapes_table.c.sid).where(scrapes_table.c.scrape_id == scrape_id)
                ).first()
                is not None
            )

    def _record(self, scrape: Scrape) -> bool:
        new_targets: dict[str, int] = {}
        new_endpoints: dict[str, int] = {}
        with self._write() as conn:
            exists = conn.execute(
                select(scrapes_table.c.sid).where(scrapes_table.c.scrape_id == scrape.id)
            ).first()
            if exists is not None:
                return False
            target_id = self._target_id(conn, scrape.target, new_targets)
            if conn.dialect.name == "postgresql":
                # one writer per target at a time: the rollup reads the target's latest
                # scrapes (SQLite's BEGIN IMMEDIATE already serializes every writer)
                conn.execute(
                    select(targets_table.c.id)
                    .where(targets_table.c.id == target_id)
                    .with_for_update()
                )
            row = _scrape_row(scrape, target_id)
            sid = conn.execute(scrapes_table.insert().values(**row)).inserted_primary_key[0]

            health = scrape.health
            if health is not None and health.services:
                conn.execute(
                    services_table.insert(),
                    [
                        {
                            "scrape_sid": sid,
                            "service": name[:100],
                            "status": svc.status,
                            "message": _truncate(svc.message),
                            "response_time_ms": svc.response_time_ms,
                        }
                        for name, svc in health.services.items()
                    ],
                )

            metrics = scrape.metrics
            if metrics is not None:
                if metrics.endpoints:
                    ids = self._endpoint_id_map(conn, list(metrics.endpoints), new_endpoints)
                    conn.execute(
                        samples_table.insert(),
                        [
                            {
                                "scrape_sid": sid,
                                "endpoint_id": ids[path],
                                "count": int(stats.count),
                                "avg_time": float(stats.avg_time_ms or 0.0),
                                "error_rate": float(stats.error_rate or 0.0),
                            }
                            for path, stats in metrics.endpoints.items()
                        ],
                    )
                if metrics.recent_errors:
                    _insert_ignore(
                        conn, errors_table, _error_rows(metrics.recent_errors, target_id, row["ts"])
                    )

            self._roll_up(conn, target_id, sid, row["ts"])

            if scrape.raw:
                conn.execute(
                    raw_table.insert(),
                    [
                        {"scrape_sid": sid, "part": part[:16], "body": zlib.compress(body, 6)}
                        for part, body in scrape.raw.items()
                    ],
                )
        # ids are only trusted once their transaction committed
        self._target_ids.update(new_targets)
        self._endpoint_ids.update(new_endpoints)
        return True

    def _roll_up(self, conn: Connection, target_id: int, sid: int, ts: int) -> None:
        """Add the deltas of the scrape just inserted (sid, ts) to the hourly rollup, in
        its transaction, then raise the mark `rollup_sid` to sid.

        A scrape's deltas depend only on the scrapes before it: its predecessor with
        metrics (`pred`) and, without one, the scrape just before it (`prev`). So the new
        scrape's own deltas are computed from those (found by the index (target_id, ts);
        kind decided as `_SERIES_SQL` decides it, `_series_kind`) and upserted into its
        hour's rows (one INSERT ... SELECT over both scrapes' samples by primary key).
        Written out of order (a backfill, segments collected side by side), it can change
        the deltas of ONE later scrape: the next one with metrics (`succ`), whose
        predecessor may now be this scrape, or whose scrape-before changed. When its kind
        or predecessor really changes (two new-series kinds count the same: whole values),
        succ's hour is recomputed from the samples (this scrape included when it falls in
        the same hour)."""
        rows = _driver(conn, _NEIGHBOURS_SQL, {"tid": target_id, "ts": ts, "sid": sid}).all()
        me = next(r for r in rows if r.side == "me")
        prev = next((r for r in rows if r.side == "prev"), None)
        nxt = next((r for r in rows if r.side == "next"), None)
        pred = prev
        if prev is not None and prev.requests_total is None:
            pred = self._neighbour(conn, target_id, ts, sid, before=True)
        has_metrics = me.requests_total is not None
        recompute: int | None = None
        succ = nxt
        if nxt is not None and nxt.requests_total is None:
            # failed scrapes right after this one: succ's scrape-before is not this one,
            # so only a new predecessor (this scrape, with metrics) can change it
            succ = self._neighbour(conn, target_id, ts, sid, before=False) if has_metrics else None
        if succ is not None:
            new_pred = me if has_metrics else pred
            if succ is nxt:
                old_kind = _series_kind(succ, pred, _ts_or_none(prev))
                new_kind = _series_kind(succ, new_pred, int(me.ts))
            elif pred is not None:  # the scrape-before does not count with a predecessor
                old_kind = _series_kind(succ, pred, None)
                new_kind = _series_kind(succ, new_pred, None)
            else:  # its scrape-before (not fetched) decided its kind: recompute
                old_kind, new_kind = "?", "!"
            same_deltas = (
                (old_kind == new_kind == "base")
                or (old_kind in _NEW_SERIES_KINDS and new_kind in _NEW_SERIES_KINDS)
                or (old_kind == new_kind and _sid_or_none(pred) == _sid_or_none(new_pred))
            )
            if not same_deltas:
                recompute = _hour_of(int(succ.ts))
        hour = _hour_of(int(me.ts))
        if has_metrics and recompute != hour:
            kind = _series_kind(me, pred, _ts_or_none(prev))
            if kind != "base":
                _driver(
                    conn,
                    _rollup_upsert(kind),
                    {"tid": target_id, "hour": hour, "sid": sid, "psid": _sid_or_none(pred)},
                )
        if recompute is not None:
            self._roll_up_hour(conn, target_id, recompute)
        _driver(conn, _RAISE_MARK_SQL, {"value": str(sid), "sid": sid})

    @staticmethod
    def _neighbour(conn: Connection, target_id: int, ts: int, sid: int, *, before: bool) -> Any:
        """The nearest scrape WITH METRICS before (or after) (ts, sid) of the target."""
        s = scrapes_table.c
        if before:
            where = [s.ts <= ts, or_(s.ts < ts, s.sid < sid)]
            order = (s.ts.desc(), s.sid.desc())
        else:
            where = [s.ts >= ts, or_(s.ts > ts, s.sid > sid)]
            order = (s.ts.asc(), s.sid.asc())
        return conn.execute(
            select(s.sid, s.ts, s.uptime_start_ms, s.last_reset_ms, s.requests_total)
            .where(s.target_id == target_id, s.requests_total.is_not(None), *where)
            .order_by(*order)
            .limit(1)
        ).first()

    def _roll_up_hour(self, conn: Connection, target_id: int, hour: int) -> None:
        """Recompute the rollup rows of one hour of one target from the samples."""
        conn.execute(
            rollup_table.delete().where(
                rollup_table.c.target_id == target_id, rollup_table.c.hour_ts == hour
            )
        )
        lo, hi = _hour_span(hour)
        conn.execute(
            text(_rollup_select("WHERE t.id = :tid")), {"tid": target_id, "start": lo, "end": hi}
        )

    def _target_id(self, conn: Connection, name: str, new: dict[str, int]) -> int:
        if name in self._target_ids:
            return self._target_ids[name]
        _insert_ignore(conn, targets_table, [{"name": name}])
        tid = conn.execute(
            select(targets_table.c.id).where(targets_table.c.name == name)
        ).scalar_one()
        new[name] = tid
        return tid

    def _endpoint_id_map(
        self, conn: Connection, paths: list[str], new: dict[str, int]
    ) -> dict[str, int]:
        ids = {p: self._endpoint_ids[p] for p in paths if p in self._endpoint_ids}
        missing = [p for p in paths if p not in ids]
        if missing:
            _insert_ignore(
                conn,
                endpoints_table,
                [{"path": p, "monitoring": is_monitoring(p)} for p in missing],
            )
            for chunk in _chunks(missing, 500):
                rows = conn.execute(
                    select(endpoints_table.c.path, endpoints_table.c.id).where(
                        endpoints_table.c.path.in_(chunk)
                    )
                )
                for path, eid in rows:
                    ids[path] = eid
                    new[path] = eid
        return ids

    def record_db_sizes(self, database: str, taken_at: datetime, tables: pd.DataFrame) -> int:
        """Store one snapshot of table sizes (columns DB_SIZE_COLUMNS). Returns rows stored."""
        rows = _snapshot_rows(database, taken_at, tables, DB_SIZE_COLUMNS)
        return self._insert_rows(db_sizes_table, rows)

    def record_db_queries(self, database: str, taken_at: datetime, queries: pd.DataFrame) -> int:
        """Store one snapshot of query statistics (columns DB_QUERY_COLUMNS). Returns rows stored."""
        rows = _snapshot_rows(database, taken_at, queries, DB_QUERY_COLUMNS)
        for row in rows:
            row["query"] = _truncate(row.get("query"), 10_000)
        return self._insert_rows(db_queries_table, rows)

    def _insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        try:
            with self._lock, self._write() as conn:
                conn.execute(table.insert(), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to {self.url}: {_one_line(exc)}") from None
        return len(rows)

    # --- reads ----------------------------------------------------------------------

    def targets(self) -> list[str]:
        with self._read() as conn:
            return list(
                conn.execute(select(targets_table.c.name).order_by(targets_table.c.name)).scalars()
            )

    def extent(self, target: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """(first ts, last ts) of the stored scrapes, or None when there are none."""
        sql = "SELECT MIN(s.ts), MAX(s.ts) FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id"
        params: dict[str, Any] = {}
        if target is not None:
            sql += " WHERE t.name = :target"
            params["target"] = target
        with self._read() as conn:
            lo, hi = conn.execute(text(sql), params).one()
        if lo is None:
            return None
        return pd.Timestamp(int(lo), unit="ms", tz="UTC"), pd.Timestamp(
            int(hi), unit="ms", tz="UTC"
        )

    def scrapes(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        target: str | None = None,
        columns: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """One row per scrape, oldest first (columns SCRAPE_COLUMNS, plus per-part details).

        failure_kind is the first failure's kind (health before metrics), http_status the
        status of that failure, else of the health answer.

        `columns` narrows the read to those columns, in that order (the same rows, values
        and types as the whole read's columns of those names); an unknown name is a
        ValueError.
        """
        names = list(_SCRAPE_SELECT) if columns is None else list(columns)
        unknown = [c for c in names if c not in _SCRAPE_SELECT]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"scrape columns: {', '.join(unknown) if unknown else names!r} "
                f"(each once, of: {', '.join(_SCRAPE_SELECT)})"
            )
        return self._scrape_read({c: _SCRAPE_SELECT[c] for c in names}, start, end, target)

    def health(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, status (OK | DEGRADED | ERROR | NO_ANSWER), http_status, target, failure_kind."""
        return self._scrape_read(_HEALTH_SELECT, start, end, target)

    def scrape_figures(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        target: str | None = None,
        *,
        with_health: bool = False,
    ) -> pd.DataFrame:
        """`scrapes(columns=["ts", "target", *FIGURE_COLUMNS])`, the scrape fields behind
        the review's figures (a month of one-minute scrapes is 43,200 rows: the whole rows
        cost most of the read). `with_health`: the same statement also reads the columns
        of `health` (HEALTH_COLUMNS, its very expressions and types), before the figure
        columns, so that one pass over the scrape rows answers both reads."""
        figures = {c: _SCRAPE_SELECT[c] for c in FIGURE_COLUMNS}
        if with_health:
            return self._scrape_read({**_HEALTH_SELECT, **figures}, start, end, target)
        return self.scrapes(start, end, target, columns=["ts", "target", *FIGURE_COLUMNS])

    def _scrape_read(
        self,
        select: Mapping[str, str],
        start: datetime | None,
        end: datetime | None,
        target: str | None,
    ) -> pd.DataFrame:
        """The columns `select` ({name: SQL expression over s, t}) of the scrapes of the
        window, oldest first, typed as `scrapes` types them."""
        sql = f"""
        SELECT {", ".join(f"{expr} AS {name}" for name, expr in select.items())}
        FROM lsops_scrapes s JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid"""
        df = self._frame(sql, start, end, target, ts_columns=("ts", "server_ts"))
        if "ok" in df.columns:
            df["ok"] = df["ok"].astype(bool)
        if "deep" in df.columns:
            df["deep"] = df["deep"].astype("boolean")
        _typed(df, _INT_COLUMNS, "Int64")
        _typed(df, _FLOAT_COLUMNS, "float64")
        return df

    def services(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """ts, service, status, message, response_time_ms, target."""
        sql = f"""
        SELECT s.ts, v.service, v.status, v.message, v.response_time_ms, t.name AS target
        FROM lsops_services v
        JOIN lsops_scrapes s ON s.sid = v.scrape_sid
        JOIN lsops_targets t ON t.id = s.target_id
        WHERE s.ts >= :start AND s.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY s.ts, s.sid, v.service"""
        df = self._frame(sql, start, end, target)
        _typed(df, ["response_time_ms"], "float64")
        return df

    def error_records(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """Distinct error records by their own timestamp: ts, endpoint, method, status_code,
        error, target, first_seen (ts of the scrape that first saw the record)."""
        sql = f"""
        SELECT e.ts, e.endpoint, e.method, e.status_code, e.error, t.name AS target, e.first_seen
        FROM lsops_errors e JOIN lsops_targets t ON t.id = e.target_id
        WHERE e.ts >= :start AND e.ts < :end {"AND t.name = :target" if target else ""}
        ORDER BY e.ts, e.id"""
        df = self._frame(sql, start, end, target, ts_columns=("ts", "first_seen"))
        _typed(df, ["status_code"], "Int64")
        return df

    def raw_payload(self, scrape_id: str, part: str) -> bytes | None:
        """The body of `part` ("health" | "metrics") of a scrape as received, or None."""
        query = (
            select(raw_table.c.body)
            .select_from(
                raw_table.join(scrapes_table, scrapes_table.c.sid == raw_table.c.scrape_sid)
            )
            .where(scrapes_table.c.scrape_id == scrape_id, raw_table.c.part == part)
        )
        with self._read() as conn:
            body = conn.execute(query).scalar()
        return None if body is None else zlib.decompress(body)

    def endpoint_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        """Per time bucket and endpoint: ts (bucket start), endpoint, requests, errors,
        time_sum_ms, mean_ms, error_rate, resets. Computed in SQL from the cumulative
        per-endpoint counters; summed over targets when `target` is None.

        The delta rule, scrape by scrape within one target (scrapes ordered by ts):
        - The predecessor of a scrape is the previous scrape WITH METRICS of the target,
          looked up before `start` too, so that [a, b) + [b, c) = [a, c).
        - A new uptime.start (restart), a new uptime.lastReset (reset) or requests.total
          going down (counter_drop) starts a new series: the delta of every endpoint is
          its new value itself (a lower bound), never a difference. So does an endpoint's
          own count going down.
        - An endpoint absent from the predecessor (first request after it) contributes its
          whole count.
        - The first scrape with metrics of a target has no predecessor: its values are a
          BASELINE and contribute nothing (what happened before we watched is unknown),
          unless its uptime.start or lastReset lies after the scrape before it (a failed
          one): the counters then started while we watched, and count whole.
        - Failed scrapes have no samples; the delta after a gap spans the gap and lands in
          the bucket of the scrape that closes it.
        Latency: mean_ms = delta(avgTime x count) / delta(count); errors = delta(round(
        errorRate x count)); never an average of averages. `resets` counts the series starts
        seen in the bucket. Monitoring endpoints (/health, /metrics...) are left out unless
        include_monitoring.

        The hour and day buckets are read from the hourly rollup (`lsops_rollup`, written
        by `record_scrape`) for the whole hours of [start, end), and from the samples for
        the partial hours at its edges; "minute" and "scrape" read the samples. Both give
        the same figures (the rollup holds, per target, hour and endpoint, the sums of the
        very deltas computed here, filed by the hour of the scrape that closes them).
        """
        if bucket not in ("hour", "day"):
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        with self._read() as conn:
            stale = self._stale(self._rollup_state(conn))
        if stale:  # scrapes written since this Store opened by a writer keeping no rollup
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        lo, hi = _ms(start, _MIN_MS), _ms(end, _MAX_MS)
        # whole hours [a, b) from the rollup; hour rows start at 1970-01-01T01:00 at the
        # earliest (the SQL's integer division truncates toward zero: the "hour" 0 would
        # also hold the last hour before the epoch)
        a = max(-(-lo // _HOUR) * _HOUR, _HOUR)
        b = (hi // _HOUR) * _HOUR
        if b <= a:
            return self._endpoint_intervals_raw(
                start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
            )
        target_where = "WHERE t.name = :target" if target else ""
        monitoring = "" if include_monitoring else "WHERE NOT e.monitoring"
        endpoint_filter = f"endpoint_id IN (SELECT e.id FROM lsops_endpoints e {monitoring})"
        ctes: list[str] = []
        parts: list[str] = []
        for p, (e_lo, e_hi) in (("l_", (":start", ":a")), ("r_", (":b", ":end"))):
            if (p == "l_" and lo >= a) or (p == "r_" and hi <= b):
                continue  # no partial hour at this edge
            ctes.append(_series_sql(target_where, p=p, start=e_lo, end=e_hi))
            ctes.append(
                f"""{p}ed AS (
          SELECT {_bucket_sql(bucket, f"{p}mk.ts")} AS bts, x.endpoint_id,
                 {_delta_columns(f"{p}mk.kind")}
          FROM {p}mk
          JOIN lsops_samples x ON x.scrape_sid = {p}mk.sid
          LEFT JOIN lsops_samples px ON px.scrape_sid = {p}mk.p_sid
                                    AND px.endpoint_id = x.endpoint_id
          WHERE {p}mk.ts >= {e_lo} AND {p}mk.kind <> 'base' AND x.{endpoint_filter}
        )"""
            )
            parts.append(f"SELECT bts, endpoint_id, d_n, d_e, d_t, is_reset FROM {p}ed")
        parts.append(
            f"""SELECT {_bucket_sql(bucket, "r.hour_ts")} AS bts, r.endpoint_id,
                 r.requests AS d_n, r.errors AS d_e, r.time_sum_ms AS d_t, r.resets AS is_reset
          FROM lsops_rollup r
          WHERE r.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
            AND r.hour_ts >= :a AND r.hour_ts < :b AND r.{endpoint_filter}"""
        )
        union = "\n          UNION ALL\n          ".join(parts)
        sql = f"""
        WITH {",".join(ctes) + "," if ctes else ""}
        u AS (
          {union}
        ),
        g AS (
          SELECT bts, endpoint_id, SUM(d_n) AS requests, SUM(d_e) AS errors,
                 SUM(d_t) AS time_sum_ms, SUM(is_reset) AS resets
          FROM u GROUP BY bts, endpoint_id
        )
        SELECT g.bts AS ts, e.path AS endpoint, g.requests, g.errors, g.time_sum_ms, g.resets
        FROM g JOIN lsops_endpoints e ON e.id = g.endpoint_id
        ORDER BY g.bts, e.path"""
        return _endpoint_frame(self._frame(sql, start, end, target, extra={"a": a, "b": b}))

    def _endpoint_intervals_raw(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
        include_monitoring: bool = False,
    ) -> pd.DataFrame:
        """`endpoint_intervals` computed from the samples alone, whatever the bucket (the
        rule's one statement; the oracle of the rollup in the tests)."""
        monitoring = "" if include_monitoring else "WHERE NOT e.monitoring"
        # Each sample is paired with the same endpoint's sample in the predecessor scrape
        # (mk.p_sid) by a primary-key lookup: no window sort over every sample (2.16 M rows
        # for a month of one-minute scrapes of 50 endpoints; see docs/benchmarks.md). An
        # endpoint absent from the predecessor has no pair (px.count IS NULL): it counts
        # whole, as does a new series or the endpoint's own count going down.
        sql = f"""
        WITH {_SERIES_SQL.format(target_where="WHERE t.name = :target" if target else "")},
        ed AS (
          SELECT {_bucket_sql(bucket, "mk.ts")} AS bts, x.endpoint_id,
                 {_delta_columns("mk.kind")}
          FROM mk
          JOIN lsops_samples x ON x.scrape_sid = mk.sid
          LEFT JOIN lsops_samples px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.ts >= :start AND mk.kind <> 'base'
            AND x.endpoint_id IN (SELECT e.id FROM lsops_endpoints e {monitoring})
        ),
        g AS (
          SELECT bts, endpoint_id, SUM(d_n) AS requests, SUM(d_e) AS errors,
                 SUM(d_t) AS time_sum_ms, SUM(is_reset) AS resets
          FROM ed GROUP BY bts, endpoint_id
        )
        SELECT g.bts AS ts, e.path AS endpoint, g.requests, g.errors, g.time_sum_ms, g.resets
        FROM g JOIN lsops_endpoints e ON e.id = g.endpoint_id
        ORDER BY g.bts, e.path"""
        return _endpoint_frame(self._frame(sql, start, end, target))

    def counter_intervals(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: str = "hour",
        target: str | None = None,
    ) -> pd.DataFrame:
        """Per time bucket: ts, requests (requests.total), cache_hits, cache_misses,
        cache_hit_ratio, resets, scrapes, failures. Same delta rule as
        `endpoint_intervals` (a counter going down on its own also takes its new value).
        `scrapes` counts every scrape of the bucket, `failures` those not ok."""
        bucket_expr = _bucket_sql(bucket)
        sql = f"""
        WITH {_SERIES_SQL.format(target_where="WHERE t.name = :target" if target else "")},
        cd AS (
          SELECT {bucket_expr} AS bts,
                 CASE WHEN kind IN {_NEW_SERIES} THEN 1 ELSE 0 END AS is_reset,
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {_NEW_SERIES} OR p_rq IS NULL OR rq < p_rq THEN rq
                      ELSE rq - p_rq END AS d_rq,
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {_NEW_SERIES} OR p_ch IS NULL OR ch < p_ch THEN ch
                      ELSE ch - p_ch END AS d_ch,
                 CASE WHEN kind = 'base' THEN NULL
                      WHEN kind IN {_NEW_SERIES} OR p_cm IS NULL OR cm < p_cm THEN cm
                      ELSE cm - p_cm END AS d_cm
          FROM mk WHERE ts >= :start
        ),
        c1 AS (
          SELECT bts, SUM(d_rq) AS requests, SUM(d_ch) AS cache_hits, SUM(d_cm) AS cache_misses,
                 SUM(is_reset) AS resets
          FROM cd GROUP BY bts
        ),
        c2 AS (
          SELECT {bucket_expr} AS bts, COUNT(*) AS scrapes,
                 SUM(CASE WHEN ok THEN 0 ELSE 1 END) AS failures
          FROM sc WHERE ts >= :start GROUP BY {bucket_expr}
        )
        SELECT c2.bts AS ts, c1.requests, c1.cache_hits, c1.cache_misses, c1.resets,
               c2.scrapes, c2.failures
        FROM c2 LEFT JOIN c1 ON c1.bts = c2.bts
        ORDER BY c2.bts"""
        df = self._frame(sql, start, end, target)
        columns = [
            "ts",
            "requests",
            "cache_hits",
            "cache_misses",
            "cache_hit_ratio",
            "resets",
            "scrapes",
            "failures",
        ]
        if df.empty:
            return _empty(columns)
        for col in ("requests", "cache_hits", "cache_misses", "resets", "scrapes", "failures"):
            df[col] = pd.to_numeric(df[col]).fillna(0).round().astype("int64")
        ops = (df["cache_hits"] + df["cache_misses"]).where(lambda s: s > 0)
        df["cache_hit_ratio"] = df["cache_hits"] / ops
        return df[columns]

    def resets(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """Series starts seen in [start, end): ts, kind (restart | reset | counter_drop),
        target, uptime_start_ms, last_reset_ms. A restart observed after failed scrapes
        (no predecessor with metrics, process started after the last failed one) counts."""
        sql = f"""
        WITH {_SERIES_SQL.format(target_where="WHERE t.name = :target" if target else "")}
        SELECT ts, kind, target, us AS uptime_start_ms, lr AS last_reset_ms
        FROM mk WHERE ts >= :start AND kind IN {_NEW_SERIES}
        ORDER BY ts, sid"""
        df = self._frame(sql, start, end, target)
        _typed(df, ["uptime_start_ms", "last_reset_ms"], "Int64")
        return df

    def db_sizes(
        self, database: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """ts + DB_SIZE_COLUMNS, one row per table per snapshot, oldest first."""
        cols = ", ".join(f'"{c}"' for c in DB_SIZE_COLUMNS)
        sql = f"""SELECT ts, {cols} FROM lsops_db_sizes
                  WHERE database = :database AND ts >= :start AND ts < :end ORDER BY ts, id"""
        return self._frame(sql, start, end, None, extra={"database": database})

    def db_queries(
        self, database: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """ts + DB_QUERY_COLUMNS, one row per query per snapshot, oldest first."""
        cols = ", ".join(f'"{c}"' for c in DB_QUERY_COLUMNS)
        sql = f"""SELECT ts, {cols} FROM lsops_db_queries
                  WHERE database = :database AND ts >= :start AND ts < :end ORDER BY ts, id"""
        return self._frame(sql, start, end, None, extra={"database": database})

    def _frame(
        self,
        sql: str,
        start: datetime | None,
        end: datetime | None,
        target: str | None,
        *,
        ts_columns: Iterable[str] = ("ts",),
        extra: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        params: dict[str, Any] = {
            "start": _ms(start, _MIN_MS),
            "end": _ms(end, _MAX_MS),
            **(extra or {}),
        }
        if target is not None:
            params["target"] = target
        with self._read() as conn:
            result = conn.execute(text(sql), params)
            columns = list(result.keys())
            # the driver's plain tuples (a text() query has no result processing to skip):
            # no Row object per row, which was ~45 % of a long read
            rows = result.cursor.fetchall() if result.cursor is not None else []
            result.close()
        df = pd.DataFrame.from_records(rows, columns=columns)
        for col in ts_columns:
            if col in df.columns:
                df[col] = pd.to_datetime(pd.to_numeric(df[col]), unit="ms", utc=True)
        return df


# --- helpers --------------------------------------------------------------------------


_INT_COLUMNS = [
    "http_status", "uptime_start_ms", "last_reset_ms", "requests_total", "cache_hits", "cache_misses",
    "rss", "heap_used", "heap_total", "rt_count", "errors_recent", "health_http_status",
    "metrics_http_status", "pid", "external", "checks_passed", "checks_total", "status_2xx",
    "status_4xx", "status_5xx", "errors_kept", "uptime_duration_ms",
]  # fmt: skip
_FLOAT_COLUMNS = [
    "rt_avg",
    "rt_min",
    "rt_p50",
    "rt_p95",
    "rt_p99",
    "rt_max",
    "duration_ms",
    "uptime_s",
]


def _typed(df: pd.DataFrame, columns: Iterable[str], dtype: str) -> None:
    """Nullable integers stay integers (Int64), floats are float64 with NaN for NULL."""
    for col in columns:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].astype(object).where(df[col].notna(), None)).astype(
                dtype
            )


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip().splitlines()
    return message[0] if message else type(exc).__name__


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_ENDPOINT_COLUMNS = [
    "ts",
    "endpoint",
    "requests",
    "errors",
    "time_sum_ms",
    "mean_ms",
    "error_rate",
    "resets",
]


def _endpoint_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The typed `endpoint_intervals` frame from its SQL rows."""
    if df.empty:
        return _empty(_ENDPOINT_COLUMNS)
    for col in ("requests", "errors", "resets"):
        df[col] = pd.to_numeric(df[col]).round().astype("int64")
    df["time_sum_ms"] = pd.to_numeric(df["time_sum_ms"]).astype(float)
    requests = df["requests"].where(df["requests"] > 0)
    df["mean_ms"] = df["time_sum_ms"] / requests
    df["error_rate"] = df["errors"] / requests
    return df[_ENDPOINT_COLUMNS]


def _empty(columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    if "ts" in df.columns:
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
    if "endpoint" in df.columns:
        df["endpoint"] = df["endpoint"].astype(object)
    return df


def _sqlite_setup(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control from pysqlite: SQLAlchemy's begin() emits BEGIN below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 30000")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("lsops_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
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


def _scrape_row(scrape: Scrape, target_id: int) -> dict[str, Any]:
    health, metrics = scrape.health, scrape.metrics
    failures = {f.part: f for f in scrape.failures}
    hf, mf = failures.get("health"), failures.get("metrics")
    message = "; ".join(f"{f.part}: {f.message}" for f in scrape.failures) or None
    server_ts = (
        metrics.timestamp
        if metrics and metrics.timestamp
        else (health.timestamp if health else None)
    )
    row: dict[str, Any] = {
        "scrape_id": scrape.id,
        "target_id": target_id,
        "ts": to_ms(scrape.collected_at),
        "server_ts": to_ms(server_ts) if server_ts else None,
        "duration_ms": scrape.duration_ms,
        "ok": scrape.ok,
        "deep": health.deep if health else None,
        "health_status": health.status if health else None,
        "health_http_status": health.http_status if health else (hf.http_status if hf else None),
        "health_failure": hf.kind if hf else None,
        "health_error": _truncate(health.error) if health else None,
        "metrics_http_status": (200 if metrics else (mf.http_status if mf else None)),
        "metrics_failure": mf.kind if mf else None,
        "failure_message": _truncate(message),
    }
    if health is not None:
        mem = health.memory
        row.update(
            uptime_s=health.uptime_s,
            pid=health.pid,
            rss=mem.rss,
            heap_total=mem.heap_total,
            heap_used=mem.heap_used,
            external=mem.external,
            checks_passed=health.checks_passed,
            checks_total=health.checks_total,
        )
    if metrics is not None:
        rt = metrics.response_times
        row.update(
            uptime_start_ms=metrics.uptime.start_ms,
            uptime_duration_ms=metrics.uptime.duration_ms,
            last_reset_ms=metrics.uptime.last_reset_ms,
            requests_total=int(metrics.requests_total),
            status_2xx=metrics.by_status.get("2xx"),
            status_4xx=metrics.by_status.get("4xx"),
            status_5xx=metrics.by_status.get("5xx"),
            cache_hits=metrics.cache.hits,
            cache_misses=metrics.cache.misses,
            errors_kept=metrics.errors_kept,
            errors_recent=metrics.errors_recent,
            time_window_ms=metrics.time_window_ms,
        )
        if rt is not None:
            row.update(
                rt_count=rt.count,
                rt_avg=rt.avg,
                rt_min=rt.min,
                rt_p50=rt.p50,
                rt_p95=rt.p95,
                rt_p99=rt.p99,
                rt_max=rt.max,
            )
    return row


def _error_rows(records: list[ErrorRecord], target_id: int, scrape_ts: int) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for rec in records:
        key = (rec.timestamp_ms, rec.endpoint, rec.method, rec.status_code, rec.error)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        fp = _fingerprint(target_id, rec, occurrence)
        rows[fp] = {
            "target_id": target_id,
            "fingerprint": fp,
            "ts": int(rec.timestamp_ms) if rec.timestamp_ms is not None else scrape_ts,
            "first_seen": scrape_ts,
            "endpoint": _truncate(rec.endpoint, 1000),
            "method": (rec.method or None) and rec.method[:16],
            "status_code": rec.status_code,
            "error": _truncate(rec.error),
            "context": _truncate(json.dumps(rec.context, default=str))
            if rec.context is not None
            else None,
        }
    return list(rows.values())


def _snapshot_rows(
    database: str, taken_at: datetime, frame: pd.DataFrame, columns: list[str]
) -> list[dict[str, Any]]:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StoreError(f"snapshot of {database} lacks columns: {', '.join(missing)}")
    ts = to_ms(taken_at)
    rows: list[dict[str, Any]] = []
    for record in frame[columns].to_dict("records"):
        row: dict[str, Any] = {"database": database, "ts": ts}
        for key, value in record.items():
            if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
                row[key] = None
            elif hasattr(value, "item"):
                row[key] = value.item()
            else:
                row[key] = value
        rows.append(row)
    return rows
