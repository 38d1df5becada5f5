"""Read-only inspection sessions.

Every session lsops opens on an inspected database is READ ONLY
(`default_transaction_read_only = on`), has a `statement_timeout` and the
`application_name` `lsops`. A write attempted through it fails with `DatabaseError`.
Connection failures are one line with the URL redacted.

Inspection must not disturb what it measures: every transaction also turns the planner's
index scans off (`OWN_SCAN_SETTINGS`), so lsops's own queries never scan an index of the
inspected tables and `pg_stat_user_indexes.idx_scan` (the unused-index list) counts the
application's use alone. lsops's reads of the LongSang tables are sequential scans, and
those DO count in `pg_stat_user_tables.seq_scan` (a few per check).

Nor must lsops count among what it measures: every statement it sends carries the comment
`OWN_MARK` (as sqlcommenter tags an application's SQL), which pg_stat_statements keeps in
the statement's text, and `db.queries` leaves those statements out of the top and slow
queries. The text is the first caller's of a queryid, and the queryid ignores comments,
constants and aliases: a statement of lsops's shaped like an application's (`SELECT 1`, a
health ping) would share its entry, hiding the application's calls or adding lsops's to
them. So lsops's own statements are shaped as no application's is; the connection check
is `OWN_CHECK` (a `name` constant beside `pg_backend_pid()`), never `SELECT 1`.

A query failing on a missing table, column or privilege raises `drift.SchemaMissing`
(a `DatabaseError`): the figure that needed it is unavailable, the others carry on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from ..config import redact_url
from ..exceptions import ConfigError, DatabaseError, ParameterError
from ..times import shown
from .drift import SchemaMissing

__all__ = ["OWN_CHECK", "OWN_MARK", "Inspector", "connect", "psycopg_url"]

APPLICATION_NAME = "lsops"
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
# planner settings of every inspection transaction: no index scan of any kind, so that
# lsops's own queries never count as index use (the unused-index list stays the same
# however often lsops looks); `planner_defaults()` turns them back on for EXPLAIN only.
# Merge joins too: costing one makes the planner read the join keys' actual minimum and
# maximum from their indexes (get_actual_variable_range), and those probes count as scans.
OWN_SCAN_SETTINGS = (
    "enable_indexscan",
    "enable_indexonlyscan",
    "enable_bitmapscan",
    "enable_mergejoin",
)
# the comment ending every statement lsops sends (see the module docstring)
OWN_MARK = "/* lsops */"
# the connection check: a statement no application sends, so that its pg_stat_statements
# entry (queryid) is lsops's alone; `SELECT 1 /* lsops */` was the applications' `SELECT 1`
OWN_CHECK = "SELECT 'lsops'::name AS lsops_check, pg_catalog.pg_backend_pid() AS backend_pid"


def _marked(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> tuple:
    """SQLAlchemy's before_cursor_execute hook: the statement with OWN_MARK at its end
    (after the last statement of a string of several: each SET of `_session` has its own)."""
    return f"{statement} {OWN_MARK}", parameters


# PostgreSQL type OIDs -> the dtype pandas gives the driver's values of that type
# (numeric is Decimal objects, arrays are lists, inet is ipaddress: `object`)
_DTYPES = {
    16: "bool",
    20: "int64",  # int8
    21: "int64",  # int2
    23: "int64",  # int4
    26: "int64",  # oid
    700: "float64",  # float4
    701: "float64",  # float8
    18: "str",  # "char"
    19: "str",  # name
    25: "str",  # text
    1042: "str",  # bpchar
    1043: "str",  # varchar
    1114: "datetime64[us]",  # timestamp
    1184: "datetime64[us, UTC]",  # timestamptz
}


def typed_empty(columns: list[str], types: list[Any]) -> pd.DataFrame:
    """A frame of no row whose columns have the types (PostgreSQL OIDs) `types`, each as
    pandas types the driver's values of that type in a frame of some rows: `df["ts"].dt`
    and integer arithmetic work on an empty answer too."""
    dtypes = [_DTYPES.get(t, "object") if isinstance(t, int) else "object" for t in types]
    if len(dtypes) != len(columns):
        dtypes = ["object"] * len(columns)
    return pd.DataFrame({i: pd.Series(dtype=d) for i, d in enumerate(dtypes)}).set_axis(
        columns, axis=1
    )


MAX_COUNT = 2**63 - 1  # PostgreSQL's bigint, the type of a LIMIT


def count_param(value: Any, name: str) -> int:
    """A count of rows asked for (`n`, `limit`, `top_n`) as an int: ParameterError when it
    is none or negative (PostgreSQL would refuse it as a LIMIT)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"{name}: not a whole number: {shown(value)}") from None
    if number < 0 or number != value:
        raise ParameterError(f"{name}: {shown(value)} (expected a whole number, 0 or more)")
    if number > MAX_COUNT:  # a LIMIT is a bigint: bad usage, never a database error
        raise ParameterError(f"{name}: {shown(value)} (expected at most {MAX_COUNT:,})")
    return number


def psycopg_url(url: str) -> str:
    """`postgres://` / `postgresql://` -> SQLAlchemy's psycopg 3 driver (`postgresql+psycopg://`)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _one_line(exc: BaseException, secret: str | None) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # psycopg puts the useful part last: 'connection ... failed: FATAL: ...'
    line = " ".join(lines[:2]) if lines else type(orig).__name__
    line = re.sub(r"\s+", " ", line)
    if secret:
        line = line.replace(secret, "***")
    return line[:300]


class Inspector:
    """A read-only handle on one PostgreSQL database. Use `frame(sql)` to ask it things."""

    def __init__(
        self,
        url: str,
        *,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        connect_timeout_s: int = 5,
    ) -> None:
        self.raw_url = psycopg_url(url)
        self.url = redact_url(url) or ""  # as the user wrote it, password hidden
        self.statement_timeout_ms = int(statement_timeout_ms)
        try:
            parsed = make_url(self.raw_url)
        except ArgumentError:
            raise ConfigError(f"not a database URL: {redact_url(url)}") from None
        if not parsed.drivername.startswith("postgresql"):
            raise ConfigError(f"not a PostgreSQL URL: {self.url}")
        self._password = parsed.password
        self._connect_timeout_s = connect_timeout_s
        self.engine: Engine = self._make_engine(with_options=True)
        self._cache: dict[str, Any] = {}
        # what this session found missing (schema drift): "<figure>: <what>: <why>"
        self.unavailable: list[str] = []

    def _make_engine(self, *, with_options: bool) -> Engine:
        connect_args: dict[str, Any] = {
            "application_name": APPLICATION_NAME,
            "connect_timeout": self._connect_timeout_s,
        }
        if with_options:
            connect_args["options"] = (
                f"-c default_transaction_read_only=on -c statement_timeout={self.statement_timeout_ms}"
            )
        try:
            engine = sa.create_engine(
                self.raw_url,
                pool_size=1,
                max_overflow=2,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
        except (NoSuchModuleError, ArgumentError) as exc:
            raise ConfigError(f"cannot use database URL {self.url}: {exc}") from None
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "before_cursor_execute", _marked, retval=True)
        return engine

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET default_transaction_read_only = on {OWN_MARK}")
            cur.execute(f"SET statement_timeout = {self.statement_timeout_ms} {OWN_MARK}")
            cur.execute(f"SET application_name = '{APPLICATION_NAME}' {OWN_MARK}")
        dbapi_conn.autocommit = autocommit

    @contextmanager
    def _session(self) -> Iterator[sa.Connection]:
        """A connection whose transaction is READ ONLY with the statement timeout, set per
        transaction too: with a transaction-mode pooler (PgBouncer, Supavisor) the session
        settings of the connect hook may belong to another server connection."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql(
                f"SET TRANSACTION READ ONLY {OWN_MARK}; "
                f"SET LOCAL statement_timeout = {self.statement_timeout_ms} {OWN_MARK}; "
                + " ".join(f"SET LOCAL {name} = off {OWN_MARK};" for name in OWN_SCAN_SETTINGS)
            )
            yield conn

    # --- context manager ------------------------------------------------------------

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Inspector({self.url!r})"

    # --- asking -----------------------------------------------------------------------

    def _error(self, exc: BaseException, what: str) -> DatabaseError:
        line = f"{what} {self.url}: {_one_line(exc, self._password)}"
        if _is_schema_error(exc):
            return SchemaMissing(line)
        return DatabaseError(line)

    def note_unavailable(self, message: str) -> None:
        """Record that a part of a figure could not be computed, and why (once)."""
        if message not in self.unavailable:
            self.unavailable.append(message)

    @staticmethod
    def planner_defaults() -> tuple[str, None]:
        """A statement for `frames()` turning index scans back on in that transaction:
        for EXPLAIN (hypothetical indexes), which plans but never scans."""
        return (" ".join(f"SET LOCAL {name} = on;" for name in OWN_SCAN_SETTINGS), None)

    def check(self) -> None:
        """Connect once; raises DatabaseError (one line, URL redacted) when unreachable.

        A pooler refusing the `options` startup parameter gets a second try without it
        (the connect hook and every transaction still set READ ONLY and the timeout).
        The statement is `OWN_CHECK`: never counted among an application's statements."""
        try:
            self.scalar(OWN_CHECK)
        except DatabaseError as exc:
            if "options" not in str(exc) or "startup parameter" not in str(exc):
                raise
            self.engine.dispose()
            self.engine = self._make_engine(with_options=False)
            self.scalar(OWN_CHECK)

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run one read-only query; the answer as a DataFrame (columns as the SQL names them;
        without a row, each typed as its values would type it: `typed_empty`)."""
        try:
            with self._session() as conn:
                result = conn.execute(sa.text(sql), params or {})
                cursor = result.cursor  # None once every row is fetched
                types = [getattr(c, "type_code", None) for c in cursor.description or ()]
                rows = result.fetchall()
                columns = list(result.keys())
                conn.rollback()
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_connect_error(exc):
                raise self._error(exc, "cannot connect to") from None
            raise self._error(exc, "query failed on") from None
        except SQLAlchemyError as exc:
            raise self._error(exc, "cannot use") from None
        if not rows:
            return typed_empty(columns, types)
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)

    def frames(self, statements: list[tuple[str, dict[str, Any] | None]]) -> list[pd.DataFrame]:
        """Several queries in ONE session (for session state such as hypopg's hypothetical
        indexes), rolled back at the end. Statements that return no rows give an empty frame."""
        out: list[pd.DataFrame] = []
        try:
            with self._session() as conn:
                for sql, params in statements:
                    result = conn.execute(sa.text(sql), params or {})
                    if result.returns_rows:
                        rows = result.fetchall()
                        out.append(
                            pd.DataFrame([tuple(r) for r in rows], columns=list(result.keys()))
                        )
                    else:
                        out.append(pd.DataFrame())
                conn.rollback()
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_connect_error(exc):
                raise self._error(exc, "cannot connect to") from None
            raise self._error(exc, "query failed on") from None
        return out

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        df = self.frame(sql, params)
        return None if df.empty else df.iat[0, 0]

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run a statement in a (read-only) session; a write fails with DatabaseError."""
        try:
            with self._session() as conn:
                conn.execute(sa.text(sql), params or {})
                conn.commit()
        except DBAPIError as exc:
            raise self._error(exc, "statement failed on") from None

    # --- facts asked often (cached per inspector) -------------------------------------

    @property
    def server_version_num(self) -> int:
        if "version" not in self._cache:
            self._cache["version"] = int(self.scalar("SHOW server_version_num"))
        return int(self._cache["version"])

    def extension_schema(self, name: str) -> str | None:
        """The schema an extension is installed in (`extensions` on Supabase), or None."""
        key = f"ext:{name}"
        if key not in self._cache:
            self._cache[key] = self.scalar(
                """
                SELECT n.nspname FROM pg_extension e
                JOIN pg_namespace n ON n.oid = e.extnamespace
                WHERE e.extname = :name
                """,
                {"name": name},
            )
        return self._cache[key]

    def extension_available(self, name: str) -> bool:
        """Whether the server could `CREATE EXTENSION name` (its files are installed)."""
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_available_extensions WHERE name = :name", {"name": name}
            )
        )

    def setting(self, name: str) -> str | None:
        return self.scalar("SELECT current_setting(:name, true)", {"name": name})

    def has_table(self, name: str, schema: str | None = None) -> bool:
        qualified = f"{schema}.{name}" if schema else name
        return bool(self.scalar("SELECT to_regclass(:name) IS NOT NULL", {"name": qualified}))


def _is_schema_error(exc: BaseException) -> bool:
    """A missing table, column or function, or a missing privilege: drift, not failure."""
    import psycopg

    orig = getattr(exc, "orig", None)
    return isinstance(
        orig,
        (
            psycopg.errors.UndefinedTable,
            psycopg.errors.UndefinedColumn,
            psycopg.errors.UndefinedFunction,
            psycopg.errors.InsufficientPrivilege,
        ),
    )


def _is_connect_error(exc: DBAPIError) -> bool:
    import psycopg

    orig = exc.orig
    return isinstance(orig, psycopg.OperationalError) and not isinstance(
        orig, psycopg.errors.QueryCanceled
    )


def connect(
    url: str,
    *,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    connect_timeout_s: int = 5,
    check: bool = True,
) -> Inspector:
    """A read-only Inspector of the database at `url`; `check` connects once right away."""
    inspector = Inspector(
        url, statement_timeout_ms=statement_timeout_ms, connect_timeout_s=connect_timeout_s
    )
    if check:
        try:
            inspector.check()
        except DatabaseError:
            inspector.close()
            raise
    return inspector
