"""Database snapshots (`lsops collect --db`): table sizes and query statistics of the
production database, one row per table (per query) per snapshot, by `database` name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import StoreError
from ..times import TS, to_ms
from .core import StoreCore
from .reads import empty
from .schema import db_queries_table, db_sizes_table, one_line
from .writes import truncate

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

# the types of a read of some rows (an empty answer has them too)
_SIZE_DTYPES = {"ts": TS, "schema": "str", "table": "str"} | {
    c: "int64" for c in DB_SIZE_COLUMNS[2:]
}
_QUERY_DTYPES = {
    "ts": TS,
    "queryid": "int64",
    "query": "str",
    "calls": "int64",
    "total_ms": "float64",
    "rows": "int64",
}


class Snapshots(StoreCore):
    """The database snapshots of `Store`: record_db_sizes / db_sizes, record_db_queries /
    db_queries."""

    def record_db_sizes(self, database: str, taken_at: datetime, tables: pd.DataFrame) -> int:
        """Store one snapshot of table sizes (columns DB_SIZE_COLUMNS). Returns rows stored."""
        rows = _snapshot_rows(database, taken_at, tables, DB_SIZE_COLUMNS)
        return self._insert_rows(db_sizes_table, rows)

    def record_db_queries(self, database: str, taken_at: datetime, queries: pd.DataFrame) -> int:
        """Store one snapshot of query statistics (columns DB_QUERY_COLUMNS). Returns rows stored."""
        rows = _snapshot_rows(database, taken_at, queries, DB_QUERY_COLUMNS)
        for row in rows:
            row["query"] = truncate(row.get("query"), 10_000)
        return self._insert_rows(db_queries_table, rows)

    def db_sizes(
        self, database: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """ts + DB_SIZE_COLUMNS, one row per table per snapshot, oldest first."""
        cols = ", ".join(f'"{c}"' for c in DB_SIZE_COLUMNS)
        sql = f"""SELECT ts, {cols} FROM lsops_db_sizes
                  WHERE database = :database AND ts >= :start AND ts < :end ORDER BY ts, id"""
        df = self._frame(sql, start, end, None, extra={"database": database})
        return empty(_SIZE_DTYPES) if df.empty else df

    def db_queries(
        self, database: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """ts + DB_QUERY_COLUMNS, one row per query per snapshot, oldest first."""
        cols = ", ".join(f'"{c}"' for c in DB_QUERY_COLUMNS)
        sql = f"""SELECT ts, {cols} FROM lsops_db_queries
                  WHERE database = :database AND ts >= :start AND ts < :end ORDER BY ts, id"""
        df = self._frame(sql, start, end, None, extra={"database": database})
        return empty(_QUERY_DTYPES) if df.empty else df

    def _insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        try:
            with self._lock, self._small_write() as conn:
                conn.execute(table.insert(), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to {self.url}: {one_line(exc)}") from None
        return len(rows)


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
