"""Space: how big the database and its tables are, and how fast they grow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from ._frames import TS, empty, typed
from .connect import Inspector

__all__ = ["database_size", "growth", "table_growth", "table_sizes", "total_growth"]

SIZE_COLUMNS = [
    "schema",
    "table",
    "total_bytes",
    "table_bytes",
    "index_bytes",
    "toast_bytes",
    "rows_estimate",
]

# the types of the frames below when they have rows (an empty one has them too)
_DTYPES = {
    "ts": TS,
    "schema": "str",
    "table": "str",
    **dict.fromkeys(SIZE_COLUMNS[2:], "int64"),
    "first_ts": TS,
    "last_ts": TS,
    "first_bytes": "int64",
    "last_bytes": "int64",
    "growth_bytes": "int64",
    "bytes_per_day": "float64",
}


def _empty(columns: list[str]) -> pd.DataFrame:
    return empty({c: _DTYPES[c] for c in columns})


def _instants(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its instants in UTC, us, whatever the unit of the snapshots given."""
    return typed(df, {c: TS for c in ("ts", "first_ts", "last_ts")})


_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


def database_size(insp: Inspector) -> int:
    """Bytes of the current database (the runbook's `pg_database_size(current_database())`)."""
    return int(insp.scalar("SELECT pg_database_size(current_database())"))


def table_sizes(insp: Inspector) -> pd.DataFrame:
    """Per table: heap, TOAST, index and total bytes and the planner's row estimate.

    Columns: schema, table, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate
    (largest first). table_bytes is the heap (main fork + free space and visibility maps);
    rows_estimate is the planner's (`reltuples`), or the live tuple count before any ANALYZE.
    """
    df = insp.frame(
        f"""
        SELECT n.nspname AS schema,
               c.relname AS "table",
               pg_total_relation_size(c.oid) AS total_bytes,
               pg_table_size(c.oid) - COALESCE(pg_total_relation_size(c.reltoastrelid), 0)
                   AS table_bytes,
               pg_indexes_size(c.oid) AS index_bytes,
               COALESCE(pg_total_relation_size(c.reltoastrelid), 0) AS toast_bytes,
               (CASE WHEN c.reltuples < 0 THEN COALESCE(s.n_live_tup, 0)
                     ELSE c.reltuples END)::bigint AS rows_estimate
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
        WHERE c.relkind IN ('r', 'm', 'p')
          AND n.nspname NOT IN {_SYSTEM_SCHEMAS}
          AND n.nspname NOT LIKE 'pg_temp%'
        ORDER BY total_bytes DESC, schema, "table"
        """
    )
    return _ints(df, SIZE_COLUMNS[2:])


def _ints(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for col in columns:
        if col in df:
            df[col] = df[col].astype("int64")
    return df


def growth(
    store: Any, database: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """Size snapshots (`lsops collect --db`) of `database` as stored: ts + the size columns."""
    try:
        df = store.db_sizes(database, start, end)
    except TypeError:  # a store whose db_sizes takes the database only
        df = store.db_sizes(database)
    if df is None:
        return _empty(["ts", *SIZE_COLUMNS])
    return df


def total_growth(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Database total per snapshot: ts, total_bytes, table_bytes, index_bytes, toast_bytes."""
    cols = ["total_bytes", "table_bytes", "index_bytes", "toast_bytes"]
    if snapshots is None or snapshots.empty:
        return _empty(["ts", *cols])
    return _instants(snapshots.groupby("ts", as_index=False)[cols].sum().sort_values("ts"))


def table_growth(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per table between its first and last snapshot: schema, table, first_ts, last_ts,
    first_bytes, last_bytes, growth_bytes, bytes_per_day (fastest growing first)."""
    columns = [
        "schema",
        "table",
        "first_ts",
        "last_ts",
        "first_bytes",
        "last_bytes",
        "growth_bytes",
        "bytes_per_day",
    ]
    if snapshots is None or snapshots.empty:
        return _empty(columns)
    ordered = snapshots.sort_values("ts")
    grouped = ordered.groupby(["schema", "table"], as_index=False)
    first = grouped.first()[["schema", "table", "ts", "total_bytes"]]
    last = grouped.last()[["schema", "table", "ts", "total_bytes"]]
    out = first.merge(last, on=["schema", "table"], suffixes=("_first", "_last"))
    out = out.rename(
        columns={
            "ts_first": "first_ts",
            "ts_last": "last_ts",
            "total_bytes_first": "first_bytes",
            "total_bytes_last": "last_bytes",
        }
    )
    out["growth_bytes"] = out["last_bytes"] - out["first_bytes"]
    days = (out["last_ts"] - out["first_ts"]).dt.total_seconds() / 86400.0
    out["bytes_per_day"] = (out["growth_bytes"] / days.where(days > 0)).astype(float)
    out = out[columns].sort_values("growth_bytes", ascending=False).reset_index(drop=True)
    return _instants(out)
