"""Backup checks (`lsops backup check`, issue 12): one row per check, its whole result kept.

    record_backup_check(store, check, database="prod")   # check: BackupCheck.as_dict()
    backup_checks(store, "prod")                          # every check, oldest first
    latest_backup_check(store, "prod")                    # the last one, as it was printed

The table `lsops_backup_checks` joins the store's metadata when this module is imported
(`lsops_lib.store` does), so `Store(url)` creates it on open like any other missing table.
It is a NEW table only: SCHEMA_VERSION is not bumped, and an older lsops opening the store
simply ignores it. Columns for what is read in SQL (the verdict of the newest dump, the
drill's time), and the check's JSON document for everything else (no secret is in it: paths,
verdicts, table names and counts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import StoreError
from ..times import to_ms
from .schema import _ID, metadata, one_line

__all__ = [
    "BACKUP_CHECK_COLUMNS",
    "backup_checks",
    "backup_checks_table",
    "latest_backup_check",
    "record_backup_check",
]

backup_checks_table = Table(
    "lsops_backup_checks",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),  # when the check ran, epoch ms
    Column("database", String(200)),  # the live database compared against (its NAME), or NULL
    Column("status", String(16), nullable=False),  # OK | WARNING | CRITICAL | UNKNOWN
    Column("exit_code", Integer, nullable=False),
    Column("files", Integer, nullable=False),
    Column("newest", Text),  # path of the newest dump
    Column("newest_verdict", String(32)),
    Column("newest_bytes", BigInteger),
    Column("newest_age_s", Float),
    Column("restore_seconds", Float),  # NULL: no drill, or it did not restore
    Column("restore_error", Text),
    Column("document", Text, nullable=False),  # the check's JSON, as `--json` printed it
)
Index("lsops_backup_checks_ts", backup_checks_table.c.ts)

BACKUP_CHECK_COLUMNS = [
    "ts",
    "database",
    "status",
    "exit_code",
    "files",
    "newest",
    "newest_verdict",
    "newest_bytes",
    "newest_age_s",
    "restore_seconds",
    "restore_error",
]


def _newest(check: Mapping[str, Any]) -> Mapping[str, Any]:
    for item in check.get("files") or []:
        if item.get("path") == check.get("newest"):
            return item
    return {}


def record_backup_check(
    store: Any,
    check: Mapping[str, Any],
    *,
    database: str | None = None,
    taken_at: datetime | None = None,
) -> None:
    """Store one check (`BackupCheck.as_dict()`: JSON types only). StoreError on failure."""
    newest = _newest(check)
    restore = check.get("restore") or {}
    try:
        document = json.dumps(check, allow_nan=False, default=str)
    except ValueError as exc:
        raise StoreError(f"backup check not storable: {exc}") from None
    row = {
        "ts": to_ms(taken_at or datetime.now(UTC)),
        "database": database,
        "status": str(check.get("status")),
        "exit_code": int(check.get("exit_code", 3)),
        "files": len(check.get("files") or []),
        "newest": check.get("newest"),
        "newest_verdict": newest.get("verdict"),
        "newest_bytes": newest.get("bytes"),
        "newest_age_s": newest.get("age_s"),
        "restore_seconds": restore.get("seconds"),
        "restore_error": restore.get("error"),
        "document": document,
    }
    try:
        with store._lock, store._small_write() as conn:
            conn.execute(backup_checks_table.insert(), [row])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write to {store.url}: {one_line(exc)}") from None


def _where(database: str | None) -> Any:
    t = backup_checks_table
    if database is None:
        return None
    return (t.c.database == database) | t.c.database.is_(None)


def backup_checks(store: Any, database: str | None = None) -> pd.DataFrame:
    """Every stored check (of `database`, and those made without a database; None: all),
    oldest first: BACKUP_CHECK_COLUMNS, `ts` as Timestamp(tz="UTC")."""
    t = backup_checks_table
    query = select(*[t.c[c] for c in BACKUP_CHECK_COLUMNS]).order_by(t.c.ts, t.c.id)
    where = _where(database)
    if where is not None:
        query = query.where(where)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {one_line(exc)}") from None
    df = pd.DataFrame([tuple(r) for r in rows], columns=BACKUP_CHECK_COLUMNS)
    df["ts"] = pd.to_datetime(pd.to_numeric(df["ts"]), unit="ms", utc=True)
    return df


def latest_backup_check(store: Any, database: str | None = None) -> dict[str, Any] | None:
    """The last stored check (of `database`, or made without one; None: any) as its JSON
    document plus `checked_at` (Timestamp, UTC) and `database`; None when there is none."""
    t = backup_checks_table
    query = select(t.c.ts, t.c.database, t.c.document).order_by(t.c.ts.desc(), t.c.id.desc())
    where = _where(database)
    if where is not None:
        query = query.where(where)
    try:
        with store.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {one_line(exc)}") from None
    if row is None:
        return None
    try:
        document = json.loads(row.document)
    except ValueError:
        raise StoreError(f"store {store.url}: a stored backup check is not JSON") from None
    return {
        **document,
        "checked_at": pd.Timestamp(row.ts, unit="ms", tz="UTC"),
        "database": row.database,
    }
