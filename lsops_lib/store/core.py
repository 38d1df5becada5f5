"""What every part of `Store` stands on: the engine, opening (schema, version, catch-up),
connections and the one way a read becomes a DataFrame.

`StoreCore` is the base of the `Store` mixins (`reads.ScrapeReads`,
`intervals.IntervalReads`, `writes.Writes`, `snapshots.Snapshots`); `Store` itself is
assembled from them in `lsops_lib/store/__init__.py`.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import pandas as pd
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ..config import redact_url
from ..exceptions import StoreError
from ..fmt import instant
from ..times import from_ms
from . import codec, pack, rollup, stall
from .schema import (
    SCHEMA_VERSION,
    StoreUrlError,
    create_tables,
    insert_ignore,
    make_engine,
    meta_table,
    one_line,
    pack_state_table,
    refuse_newer,
    rollup_table,
    stored_version,
    write_transaction,
)
from .series import window_ms
from .stall import StallGuard


def targets_in(targets: Iterable[str]) -> tuple[str, dict[str, str]]:
    """`t.name IN (...)` of one parameter a target name, and those parameters: the reads
    of several targets at once (the collector's alert round)."""
    params = {f"tn{i}": name for i, name in enumerate(targets)}
    return f"t.name IN ({', '.join(':' + k for k in params)})", params


def _no_privilege(exc: SQLAlchemyError) -> bool:
    """Whether a database error is a missing privilege (PostgreSQL's 42501: permission
    denied) or a read-only SQLite file."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "42501":
        return True
    return "readonly database" in str(orig or exc)


def refuse_foreign(engine: Engine, url: str) -> None:
    """StoreError for a SQLite file of another application (tables, none of them
    lsops_meta): opening it as a store would write lsops's tables into it. Looked at
    read-only, before the engine's first connection (which would switch it to WAL). An
    empty or missing file becomes a store; a file that is no database is left to the
    engine's own error."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    if database.startswith("file:") or not path.is_file() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = [
                str(n)
                for (n,) in con.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
                )
            ]
        finally:
            con.close()
    except sqlite3.Error:
        return
    if "lsops_meta" in names:
        return
    others = [n for n in names if not n.startswith(("lsops_", "sqlite_"))]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise StoreError(f"{url} is not an lsops store: it holds other tables ({shown})")


def typed_texts(df: pd.DataFrame) -> pd.DataFrame:
    """A column of the driver's values without any value (a read of no row, or of rows
    all NULL there) as text (`str`), the type pandas infers for text when one is there:
    a text column has one type whatever the window holds (QA 22: `failure_kind` was
    `object` in a window without a failure, so `.str.contains()` gave None, no mask).
    Each read then types its numbers and instants as it types them in a read of some rows."""
    for col in df.columns:
        if df[col].dtype == object and not df[col].notna().any():
            df[col] = df[col].astype("str")
    return df


@dataclass
class Ids:
    """Target and endpoint ids by name (a Store's cache of committed ids, or the ids a
    write transaction met, trusted only once it committed)."""

    targets: dict[str, int] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)
    # the compact format (pack.py): the store's period; what a write left to pack
    period: int = pack.DEFAULT_PERIOD_MS
    written: tuple[int, int, bool] | None = None  # (target id, ts, dirty) of the write
    # per target: the error fingerprints of its last answer written (the next answer
    # repeats most of them: their rows exist, nothing to insert; writes.py)
    errors: dict[int, frozenset[str]] = field(default_factory=dict)

    def update(self, other: Ids) -> None:
        self.targets.update(other.targets)
        self.endpoints.update(other.endpoints)
        self.errors.update(other.errors)


class StoreCore:
    """The metrics history behind a SQLAlchemy URL (SQLite file or PostgreSQL): opening,
    connections, lifecycle."""

    def __init__(self, url: str):
        if not isinstance(url, str):  # Store(None): no store configured, or a Path
            raise StoreUrlError(
                f"not a store URL: {type(url).__name__} (expected a URL string such as "
                "sqlite:///path/to/metrics.sqlite or postgresql://user@host/db)"
            )
        self._url = url
        self._lock = threading.Lock()
        self._ids = Ids()  # target and endpoint ids of committed writes
        self._packed_below: dict[int, int] = {}  # per target: periods below are packed
        self._deferred: dict[int, tuple[int, int]] | None = None  # Writes.defer_packing
        self._said: set[str] = set()  # what `say_once` said
        try:
            self.engine = make_engine(url)
            self._stall = StallGuard(self.engine)  # bounds the collector's writes
            refuse_foreign(self.engine, self.url)
            self._init_schema()
        except StoreError:
            raise
        except codec.DamagedBlock as exc:  # the rollup's catch-up unpacks blocks
            raise StoreError(f"cannot open store {self.url}: {self.damaged(exc)}") from None
        except (SQLAlchemyError, OSError, *self._driver_errors()) as exc:
            raise StoreError(f"cannot open store {self.url}: {one_line(exc)}") from None

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _init_schema(self) -> None:
        """Refuse a newer store, create what is missing, migrate and catch the rollup up."""
        with self._write() as conn:
            version = stored_version(conn, self.url)
            refuse_newer(version, self.url)
            # a store without its rollup table (dropped by hand): roll up anew
            lost = version is not None and not inspect(conn).has_table(rollup_table.name)
        if version is not None and version < SCHEMA_VERSION:  # minutes for a long history
            self.say_once(
                f"migrating store {self.url} from schema version {version} to "
                f"{SCHEMA_VERSION} (once; a long history takes minutes, and an interrupted "
                "migration goes on at the next open)"
            )
        try:
            self._create_and_migrate(version, lost)
        except SQLAlchemyError as exc:
            if version is None or not _no_privilege(exc):
                raise
            # a role that may only read, on a store with writing left to do: say what it needs
            todo = (
                f"has schema version {version}, older than this lsops's ({SCHEMA_VERSION}), "
                "and its migration"
                if version < SCHEMA_VERSION
                else "has writes left to finish (its hourly rollup is behind), which"
            )
            raise StoreError(
                f"store {self.url} {todo} needs a role that may write its tables: open it "
                f"once as that role (e.g. run the collector), then read it again "
                f"({one_line(exc)})"
            ) from None

    def _create_and_migrate(self, version: int | None, lost: bool) -> None:
        """What `_init_schema` writes: missing tables, the version, an older store's
        migration, the rollup's catch-up, packing left to do."""
        fresh = version is None
        create_tables(self.engine)
        with self._write() as conn:
            if stored_version(conn, self.url) is None:
                insert_ignore(
                    conn,
                    meta_table,
                    [
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": rollup.MARK, "value": "0"},
                    ],
                )
            if lost:
                conn.execute(meta_table.delete().where(meta_table.c.key == rollup.MARK))
            if fresh or version < SCHEMA_VERSION:  # type: ignore[operator]
                # the compact format's period, and (an older store) its migration to do:
                # raised with the version, in this transaction (pack.py)
                rows = [{"key": pack.PERIOD_KEY, "value": str(pack.new_period())}]
                if not fresh:
                    rows.append({"key": pack.MIGRATING_KEY, "value": "1"})
                insert_ignore(conn, pack_state_table, rows)
            rollup.catch_up(conn)  # migrates an older store (version 1, 2, 3) too
        pack.pack_store(self.engine)  # an unfinished migration, periods left dirty
        with self.engine.connect() as conn:
            self._ids.period = pack.period_ms(conn)

    def schema_version(self) -> int | None:
        with self.engine.connect() as conn:
            return stored_version(conn, self.url)

    # --- connections ------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so writers queue, never deadlock)."""
        return write_transaction(self.engine)

    @contextmanager
    def _small_write(self, what: str = "") -> Iterator[Connection]:
        """One small write transaction of the collector's (a scrape, a source's run, an
        alert's state, a snapshot): on PostgreSQL a server that hangs while its host
        answers TCP fails it after `stall.PG_STALL_S` (StoreError "cannot <what>: ..."),
        the pool's pre-ping included, instead of never (`stall`)."""
        with (
            self._stall.bounded(stall.PG_STALL_S, what or f"write to {self.url}"),
            write_transaction(self.engine) as conn,
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for a read: any failure of it is a StoreError of one line (the
        driver's own errors too: rows fetched straight from its cursor; a block that does
        not decode)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except codec.DamagedBlock as exc:
            raise StoreError(f"cannot read store {self.url}: {self.damaged(exc)}") from None
        except (SQLAlchemyError, *self._driver_errors()) as exc:
            raise StoreError(f"cannot read store {self.url}: {one_line(exc)}") from None

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's error class (sqlite3.Error, psycopg.Error): raised as they are by
        a fetch from its own cursor, not as SQLAlchemy's."""
        engine = getattr(self, "engine", None)
        dbapi = getattr(getattr(engine, "dialect", None), "loaded_dbapi", None)
        return (getattr(dbapi, "Error", sqlite3.Error),)

    def damaged(self, exc: codec.DamagedBlock) -> str:
        """'a packed block of <target> <period> is damaged (<table>: <reason>)'."""
        if exc.where is None:
            return f"a packed block is damaged ({exc.reason})"
        table, target_id, period_ts = exc.where
        name = f"target #{target_id}"
        try:
            with self.engine.connect() as conn:
                found = conn.execute(
                    text("SELECT name FROM lsops_targets WHERE id = :id"), {"id": target_id}
                ).scalar()
            name = name if found is None else repr(str(found))
        except Exception:  # noqa: BLE001 - the message without the name, then
            pass
        when = instant(from_ms(period_ts))
        return f"a packed block of {name} {when} is damaged ({table}: {exc.reason})"

    def say_once(self, message: str) -> None:
        """One line on stderr, once in the life of this Store (the collector's packing:
        tried again at every pass, said the first time)."""
        if message not in self._said:
            self._said.add(message)
            print(f"lsops: {message}", file=sys.stderr, flush=True)

    def _params(
        self,
        start: datetime | None,
        end: datetime | None,
        target: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The parameters of a read: :start, :end (epoch ms), :target when given, `extra`.
        ParameterError for an instant that is none."""
        lo, hi = window_ms(start, end)
        params: dict[str, Any] = {"start": lo, "end": hi, **(extra or {})}
        if target is not None:
            params["target"] = target
        return params

    def _snapshot(self, conn: Connection) -> Connection:
        """`conn` reading one snapshot (PostgreSQL: REPEATABLE READ) for blocks and rows."""
        if self.dialect == "postgresql":
            return conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    def _frame(
        self,
        sql: str,
        start: datetime | None,
        end: datetime | None,
        target: str | None,
        *,
        ts_columns: Iterable[str] = ("ts",),
        extra: Mapping[str, Any] | None = None,
        samples: tuple[list[tuple[int, int]], str, bool] | None = None,
    ) -> pd.DataFrame:
        """The rows of `sql` (parameters :start, :end in epoch ms, :target when given, and
        `extra`) as a DataFrame, `ts_columns` as Timestamp(tz="UTC"). `samples`: (windows,
        target WHERE, stale): `__SAMPLES__` in `sql` becomes the samples those windows see,
        rows and packed blocks (`pack.samples_source`), read in the same snapshot. (The
        scrape and services reads complete packed rows themselves: reads.py.)"""
        params = self._params(start, end, target, extra)
        with self._read() as conn:
            if samples is not None:
                conn = self._snapshot(conn)
            if samples is not None:
                windows, target_where, stale = samples
                source = pack.samples_source(conn, windows, target_where, params, stale=stale)
                sql = sql.replace("__SAMPLES__", source)
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
        return typed_texts(df)
