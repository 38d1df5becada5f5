"""Queries: `pg_stat_statements` top by total and mean time, slow queries, and slow queries
per hour (a rate: slow calls between two stored snapshots / the hours between them) from
stored snapshots (no need to reset the statistics to see a trend).

`pg_stat_statements` is found in whatever schema it was created in (Supabase: `extensions`).
When it is missing, the functions raise `ExtensionMissing` whose message says how to
enable it; `status()` answers without raising.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt
from ..exceptions import DatabaseError, ExtensionMissing, ParameterError
from ..times import shown
from . import drift
from ._frames import TS, empty, typed
from .connect import OWN_MARK, Inspector, count_param
from .indexes import _utc
from .settings import DbThresholds

__all__ = [
    "ENABLE_HINT",
    "SNAPSHOT_COLUMNS",
    "hidden_statements",
    "mask_secrets",
    "query_stats",
    "slow_per_hour",
    "slow_per_hour_from_store",
    "slow_queries",
    "snapshot",
    "status",
    "top_by_mean",
    "top_by_total",
]

ENABLE_HINT = (
    "pg_stat_statements is not enabled in this database; to enable it add "
    "'pg_stat_statements' to shared_preload_libraries (restart), then run "
    "CREATE EXTENSION pg_stat_statements; (Supabase: Database > Extensions, "
    "schema 'extensions')"
)
NOT_PRELOADED_HINT = (
    "pg_stat_statements is created but not loaded: add 'pg_stat_statements' to "
    "shared_preload_libraries and restart PostgreSQL"
)
QUERY_COLUMNS = ["queryid", "query", "calls", "total_ms", "mean_ms", "rows"]
SNAPSHOT_COLUMNS = ["queryid", "query", "calls", "total_ms", "rows"]
# `slow_per_hour`'s columns and their types, rows or none
SLOW_PER_HOUR_DTYPES = {
    "hour": TS,
    "slow_calls": "int64",
    "slow_statements": "int64",
    "calls": "int64",
    "hours": "float64",
    "slow_per_hour": "float64",
    "over_threshold": "bool",
}


# --- secrets in statement texts -----------------------------------------------------------
# Utility statements (ALTER ROLE ... PASSWORD '...', CREATE SUBSCRIPTION ... CONNECTION
# '... password=...') are not normalised by pg_stat_statements, and pg_stat_activity shows
# every statement as it was sent: their secrets are masked wherever lsops reads a statement
# text. A literal cut short (pg_stat_activity truncates) is masked to the end: masking too
# much is safe, too little is not.
_SQL_LITERAL = r"""
    (?:[Ee]|[Uu]&)?'(?:''|\\.|[^'\\])*(?:'|\Z)                   # 'x', E'x', U&'x'
  | \$(?P<tag>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?(?:\$(?P=tag)\$|\Z)  # $$x$$, $tag$x$tag$
"""
# PASSWORD then its literal, with or without a space or comment between (PASSWORD'x' is
# valid SQL); the other literals, quoted identifiers and comments are read past whole, so
# that a "password" inside one ('reset password' ...) never starts a literal of its own
_PASSWORD_LITERAL = re.compile(
    r"(?P<pw>\bPASSWORD(?:\s|/\*.*?\*/|--[^\n]*(?:\n|\Z))*)(?:" + _SQL_LITERAL + ")"
    r"""
  | (?P<comment>/\*.*?(?:\*/|\Z) | --[^\n]*)
  | "(?:""|[^"])*(?:"|\Z)                                          # "identifier"
  | [Ee]'(?:''|\\.|[^'\\])*(?:'|\Z) | (?:[Uu]&)?'(?:''|[^'])*(?:'|\Z)
  | \$(?P<other>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?(?:\$(?P=other)\$|\Z)
    """,
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


def _mask_password(m: re.Match[str]) -> str:
    if m.group("pw") is not None:
        return f"{m.group('pw')}'{MASK}'"
    comment = m.group("comment")
    if comment is not None:  # a statement commented out keeps its password masked too
        return comment[:2] + _PASSWORD_LITERAL.sub(_mask_password, comment[2:])
    return m.group(0)


# password = 'x' (a column, a connection string's key=value), postgresql://user:secret@host
_CONNINFO_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)(?:''(?:''''|[^'])*''|'(?:''|[^'])*(?:'|\Z)|[^\s']+)", re.I
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s']*:)[^@\s']+(@)")
MASK = "***"


def mask_secrets(text: Any) -> Any:
    """A statement text with its passwords masked: `PASSWORD 'x'` and `PASSWORD'x'`
    (ENCRYPTED PASSWORD too, E'' and '' escapes, dollar quoting) -> `PASSWORD '***'`
    (`PASSWORD'***'`); in connection strings
    `password=***` and `://user:***@`. What is not a string is returned as it is."""
    if not isinstance(text, str):
        return text
    text = _PASSWORD_LITERAL.sub(_mask_password, text)
    text = _CONNINFO_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(2)}", text)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(insp: Inspector) -> str:
    schema = insp.extension_schema("pg_stat_statements")
    if schema is None:
        raise ExtensionMissing(ENABLE_HINT)
    return f"{_quote_ident(schema)}.pg_stat_statements"


def _total_time_column(insp: Inspector, relation: str) -> str:
    """`total_exec_time` (pg_stat_statements 1.8+) or `total_time` (before): read from the
    view itself, since an extension not updated after a server upgrade keeps its old
    columns whatever the server's version."""
    have = drift.columns(insp, relation) or frozenset()
    for name in ("total_exec_time", "total_time"):
        if name in have:
            return name
    if not have:  # the view could not be read: go by the server's version
        return "total_exec_time" if insp.server_version_num >= 130000 else "total_time"
    raise drift.SchemaMissing(
        f"{relation} has neither total_exec_time nor total_time: an unknown "
        "pg_stat_statements version"
    )


def status(insp: Inspector) -> dict[str, Any]:
    """{available: bool, schema: str | None, message: str | None, stats_reset: Timestamp | None}"""
    schema = insp.extension_schema("pg_stat_statements")
    if schema is None:
        return {"available": False, "schema": None, "message": ENABLE_HINT, "stats_reset": None}
    try:
        query_stats(insp, limit=1)
    except (ExtensionMissing, drift.SchemaMissing) as exc:  # not loaded, not readable, unknown
        return {"available": False, "schema": schema, "message": str(exc), "stats_reset": None}
    reset = None
    try:
        reset = insp.scalar(
            f"SELECT stats_reset FROM {_quote_ident(schema)}.pg_stat_statements_info"
        )
    except DatabaseError:  # pg_stat_statements before 1.9 has no _info view
        reset = None
    return {
        "available": True,
        "schema": schema,
        "message": None,
        # the server's time zone (e.g. Etc/UTC) as every lsops instant: UTC
        "stats_reset": None if reset is None or pd.isna(reset) else _utc(reset),
    }


_ORDERS = ("total_ms", "mean_ms", "calls")


def query_stats(
    insp: Inspector,
    *,
    order_by: str = "total_ms",
    limit: int | None = None,
    min_calls: int = 0,
    min_mean_ms: float = 0.0,
) -> pd.DataFrame:
    """Statements of THIS database from pg_stat_statements, summed over users, lsops's
    own inspection left out (its statements carry `connect.OWN_MARK`). An entry's text is
    its first caller's, so lsops's statements are shaped as no application's is (its
    connection check is `connect.OWN_CHECK`, not `SELECT 1`): the mark hides none of the
    application's calls, nor are lsops's counted among them.

    Columns: queryid, query (passwords masked: `mask_secrets`), calls, total_ms, mean_ms,
    rows. Raises ExtensionMissing.
    """
    if order_by not in _ORDERS:
        raise ParameterError(f"order_by: {shown(order_by)} (expected one of {', '.join(_ORDERS)})")
    if limit is not None:
        limit = count_param(limit, "limit")
    relation = _relation(insp)
    total = _total_time_column(insp, relation)
    sql = f"""
        SELECT queryid,
               min(query) AS query,
               sum(calls)::bigint AS calls,
               sum({total})::float AS total_ms,
               (sum({total}) / NULLIF(sum(calls), 0))::float AS mean_ms,
               sum(rows)::bigint AS rows
        FROM {relation}
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND queryid IS NOT NULL
          AND query NOT LIKE :own  -- lsops's own inspection (connect.OWN_MARK)
        GROUP BY queryid
        HAVING sum(calls) >= :min_calls
           AND sum({total}) / NULLIF(sum(calls), 0) >= :min_mean_ms
        ORDER BY {order_by} DESC NULLS LAST, queryid
        {"LIMIT :limit" if limit is not None else ""}
    """
    params: dict[str, Any] = {
        "min_calls": int(min_calls),
        "min_mean_ms": float(min_mean_ms),
        "own": f"%{OWN_MARK}%",
    }
    if limit is not None:
        params["limit"] = int(limit)
    try:
        df = insp.frame(sql, params)
    except DatabaseError as exc:
        if "shared_preload_libraries" in str(exc):
            raise ExtensionMissing(NOT_PRELOADED_HINT) from None
        raise
    _note_hidden(insp)
    df["query"] = df["query"].map(mask_secrets)
    if not df.empty:
        df["calls"] = df["calls"].astype("int64")
        df["rows"] = df["rows"].astype("int64")
    return df


def hidden_statements(insp: Inspector, thresholds: DbThresholds | None = None) -> dict[str, Any]:
    """The statements of this database that pg_stat_statements hides from this role (it is
    neither superuser nor has the privileges of pg_read_all_stats: their queryid and text
    are NULL): {role, statements, slow (mean >= slow_query_mean_ms over >= slow_query_calls
    calls, as `slow_queries` would have listed them)}. Raises ExtensionMissing."""
    t = thresholds or DbThresholds()
    relation = _relation(insp)
    total = _total_time_column(insp, relation)
    row = insp.frame(
        f"""
        SELECT current_user AS role,
               count(*) AS statements,
               count(*) FILTER (WHERE calls >= :min_calls
                                  AND {total} / NULLIF(calls, 0) >= :min_mean_ms) AS slow
        FROM {relation}
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND queryid IS NULL
        """,
        {"min_calls": int(t.slow_query_calls), "min_mean_ms": float(t.slow_query_mean_ms)},
    ).iloc[0]
    return {
        "role": str(row["role"]),
        "statements": int(row["statements"]),
        "slow": int(row["slow"]),
    }


def _hidden_reason(role: str) -> str:
    return (
        f"role {role} is neither superuser nor a member of pg_read_all_stats or pg_monitor: "
        "their text and queryid are hidden"
    )


def _note_hidden(insp: Inspector) -> None:
    """Say on `insp` how many statements of other roles pg_stat_statements hides (never
    a silent "none")."""
    hidden = hidden_statements(insp)
    if hidden["statements"]:
        drift.note(
            insp,
            f"queries: {fmt.counted(hidden['statements'], 'statement')} of other roles not "
            f"seen ({_hidden_reason(hidden['role'])})",
        )


def top_by_total(insp: Inspector, n: int = 10) -> pd.DataFrame:
    """The n statements with the most total execution time (what the database spends on)."""
    return query_stats(insp, order_by="total_ms", limit=count_param(n, "n"))


def top_by_mean(insp: Inspector, n: int = 10, *, min_calls: int = 1) -> pd.DataFrame:
    """The n statements slowest on average."""
    return query_stats(insp, order_by="mean_ms", limit=count_param(n, "n"), min_calls=min_calls)


def slow_queries(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """pgHero's slow queries: mean >= slow_query_mean_ms over >= slow_query_calls calls.
    Slow statements of other roles that the role may not see are counted and noted on
    `insp` (`hidden_statements`)."""
    t = thresholds or DbThresholds()
    df = query_stats(
        insp,
        order_by="total_ms",
        min_calls=t.slow_query_calls,
        min_mean_ms=t.slow_query_mean_ms,
    )
    hidden = hidden_statements(insp, t)
    if hidden["slow"]:
        drift.note(
            insp,
            f"slow queries: {fmt.counted(hidden['slow'], 'slow statement')} of other roles "
            f"not listed ({_hidden_reason(hidden['role'])})",
        )
    return df


def snapshot(insp: Inspector) -> pd.DataFrame:
    """What `lsops collect --db` stores (`Store.record_db_queries`): queryid, query, calls,
    total_ms, rows - cumulative, for deltas later."""
    return query_stats(insp)[SNAPSHOT_COLUMNS]


def slow_per_hour(snapshots: pd.DataFrame, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Slow queries per hour, a RATE, from cumulative snapshots (ts, queryid, calls,
    total_ms, ...), however far apart they were taken.

    Between two consecutive snapshots of a statement, its calls and time are the deltas;
    a count going down (pg_stat_statements_reset, a restart) starts a new series and the
    delta is then the new value itself. A statement is slow in an interval when its mean
    there is >= slow_query_mean_ms; its calls then count as slow calls. Each interval is
    attributed to the hour it ends in, and per statement the slow calls of its intervals
    ending in that hour are divided by the hours those intervals cover (snapshots a day
    apart: a day's slow calls / 24); the statements' rates are summed. Columns: hour,
    slow_calls (counted in those intervals), slow_statements, calls, hours (the longest
    time a statement's intervals ending in that hour cover), slow_per_hour (the rate),
    over_threshold (slow_per_hour > slow_queries_per_hour, the runbook's "more than 10
    slow queries an hour").
    """
    t = thresholds or DbThresholds()
    if snapshots is None or snapshots.empty:
        return empty(SLOW_PER_HOUR_DTYPES)
    df = snapshots.copy()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df = df.sort_values(["queryid", "ts"])
    grp = df.groupby("queryid", sort=False)
    prev_calls = grp["calls"].shift()
    prev_total = grp["total_ms"].shift()
    prev_ts = grp["ts"].shift()
    first = prev_calls.isna()
    reset = ~first & (df["calls"] < prev_calls)
    df["d_calls"] = (df["calls"] - prev_calls).where(~reset, df["calls"])
    df["d_total"] = (df["total_ms"] - prev_total).where(~reset, df["total_ms"])
    df["d_hours"] = (df["ts"] - prev_ts).dt.total_seconds() / 3600
    df = df[~first & (df["d_hours"] > 0)].copy()
    if df.empty:
        return empty(SLOW_PER_HOUR_DTYPES)
    mean = df["d_total"] / df["d_calls"].where(df["d_calls"] > 0)
    df["slow"] = mean >= t.slow_query_mean_ms
    df["hour"] = df["ts"].dt.floor("h")
    df["slow_calls"] = df["d_calls"].where(df["slow"], 0)
    per_statement = df.groupby(["hour", "queryid"], as_index=False).agg(
        slow_calls=("slow_calls", "sum"), calls=("d_calls", "sum"), hours=("d_hours", "sum")
    )
    per_statement["rate"] = per_statement["slow_calls"] / per_statement["hours"]
    per_statement["slow_id"] = per_statement["queryid"].where(per_statement["slow_calls"] > 0)
    out = per_statement.groupby("hour", as_index=False).agg(
        slow_calls=("slow_calls", "sum"),
        slow_statements=("slow_id", "nunique"),
        calls=("calls", "sum"),
        hours=("hours", "max"),
        slow_per_hour=("rate", "sum"),
    )
    out["over_threshold"] = out["slow_per_hour"] > t.slow_queries_per_hour
    return typed(out[list(SLOW_PER_HOUR_DTYPES)], SLOW_PER_HOUR_DTYPES)


def slow_per_hour_from_store(
    store: Any,
    database: str,
    start: datetime | None = None,
    end: datetime | None = None,
    thresholds: DbThresholds | None = None,
) -> pd.DataFrame:
    """`slow_per_hour` over the snapshots `lsops collect --db` stored for `database`."""
    snaps = store.db_queries(database, start, end)
    return slow_per_hour(snaps, thresholds)
