"""The tables of issue 10's sources (Sentry, the service's logs, pm2) and their reads/writes.

Every table joins the store's shared `metadata` when this module is imported
(`lsops_lib.store` does), so `Store(url)` creates it on open (NEW tables only: no
schema-version bump). Everything is kept per target (the name `lsops collect` stores the
scrapes under), instants in epoch milliseconds.

    lsops_source_runs      one row per source per collection: ok or the failure's line
    lsops_sentry_issues    the latest state of each Sentry issue (upserted)
    lsops_sentry_events    events per issue per hour, from the issues' `stats` (upserted)
    lsops_log_files        per log file: identity (device, inode, hash of the first bytes),
                           offset read up to, the last entry (journald: the cursor)
    lsops_log_patterns     the log templates (drain3) with their ids
    lsops_log_lines        one row per log entry (a multi-line stack trace is ONE entry)
    lsops_pm2_samples      `pm2 jlist` of the app: status, restarts, CPU, memory, uptime

The Sentry token is never written here; nor is pm2's environment (it holds secrets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import StoreError
from ..times import to_ms
from .schema import _ID, metadata, one_line

__all__ = [
    "FileState",
    "LEVELS",
    "LINE_COLUMNS",
    "RUN_COLUMNS",
    "SENTRY_COLUMNS",
    "entries_by_id",
    "log_lines",
    "pattern_counts",
    "pattern_first_seen",
    "pm2_samples",
    "sentry_events",
    "sentry_issues",
    "source_runs",
    "templates_of",
    "log_files_table",
    "log_lines_table",
    "log_patterns_table",
    "pm2_samples_table",
    "sentry_events_table",
    "sentry_issues_table",
    "source_runs_table",
]

TEXT_LIMIT = 64 * 1024  # characters of a stored log entry (a 1 MB line is cut, and says so)

source_runs_table = Table(
    "lsops_source_runs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # sentry | logs | pm2
    Column("ts", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("items", Integer),
    Column("error", Text),
)
Index("lsops_source_runs_ts", source_runs_table.c.target, source_runs_table.c.ts)

sentry_issues_table = Table(
    "lsops_sentry_issues",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("issue_id", String(64), primary_key=True),
    Column("short_id", String(200)),
    Column("title", Text),
    Column("culprit", Text),
    Column("level", String(16)),
    Column("status", String(32)),
    Column("substatus", String(32)),
    Column("first_seen", BigInteger),
    Column("last_seen", BigInteger),
    Column("events", BigInteger),  # the issue's `count` as last seen
    Column("users", BigInteger),
    Column("permalink", Text),
    Column("updated", BigInteger, nullable=False),  # when this row was last written
)

sentry_events_table = Table(
    "lsops_sentry_events",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("issue_id", String(64), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # start of the hour, epoch ms
    Column("events", BigInteger, nullable=False),
)

log_files_table = Table(
    "lsops_log_files",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("path", Text, nullable=False),  # journald: "journal:UNIT"
    Column("device", BigInteger),
    Column("inode", BigInteger),
    Column("head_len", Integer),
    Column("head_hash", String(64)),  # SHA-256 of the first head_len bytes
    Column("start_hash", String(64)),  # SHA-256 of the first MIN_MATCH bytes (partial copies)
    Column("offset", BigInteger, nullable=False),  # bytes (of the decompressed stream) read
    Column("disk_size", BigInteger),  # bytes on disk when last read (.gz: unchanged = done)
    Column("last_entry", BigInteger),  # id of the last entry read (continuations join it)
    Column("last_ts", BigInteger),  # the last stamped instant read (for unstamped lines)
    Column("cursor", Text),  # journald's __CURSOR
)
Index("lsops_log_files_target", log_files_table.c.target)

log_patterns_table = Table(
    "lsops_log_patterns",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("pattern_id", Integer, primary_key=True),
    Column("template", Text, nullable=False),
)

log_lines_table = Table(
    "lsops_log_lines",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("estimated", Boolean, nullable=False),
    Column("source", Text, nullable=False),  # the file's path, or journal:UNIT
    Column("stream", String(16), nullable=False),  # out | error | journal
    Column("level", String(16), nullable=False),  # debug | info | warning | error | fatal
    Column("pattern_id", Integer, nullable=False),
    Column("text", Text, nullable=False),  # the entry: first line, continuation lines after
    Column("lines", Integer, nullable=False),  # physical lines in the entry
)
Index("lsops_log_lines_ts", log_lines_table.c.target, log_lines_table.c.ts)
Index(
    "lsops_log_lines_pattern",
    log_lines_table.c.target,
    log_lines_table.c.pattern_id,
    log_lines_table.c.ts,
)

pm2_samples_table = Table(
    "lsops_pm2_samples",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("app", String(200), nullable=False),
    Column("pm_id", Integer),
    Column("pid", Integer),
    Column("status", String(32)),
    Column("restarts", Integer),
    Column("unstable_restarts", Integer),
    Column("cpu", Float),  # percent of one core
    Column("memory", BigInteger),  # bytes (rss)
    Column("uptime_s", Float),
)
Index("lsops_pm2_samples_ts", pm2_samples_table.c.target, pm2_samples_table.c.ts)


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters not kept]"


# --- writes -------------------------------------------------------------------------------


def _write(store: Any) -> Any:
    return store._small_write()


def _fail(store: Any, exc: SQLAlchemyError, verb: str = "write to") -> StoreError:
    return StoreError(f"cannot {verb} {store.url}: {one_line(exc)}")


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    stmt = insert(table)
    changed = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed), rows)


def record_source_run(
    store: Any,
    target: str,
    source: str,
    ts: datetime,
    *,
    ok: bool,
    items: int | None,
    error: str | None,
) -> None:
    """One collection of one source: ok (with how many items) or its failure's line."""
    row = {
        "target": target,
        "source": source,
        "ts": to_ms(ts),
        "ok": ok,
        "items": items,
        "error": error,
    }
    try:
        with store._lock, _write(store) as conn:
            conn.execute(source_runs_table.insert(), [row])
    except SQLAlchemyError as exc:
        raise _fail(store, exc) from None


def record_sentry_issues(
    store: Any,
    target: str,
    ts: datetime,
    issues: Sequence[Mapping[str, Any]],
    hourly: Sequence[Mapping[str, Any]],
    *,
    unresolved: set[str] | None = None,
) -> None:
    """Upsert the issues (`sentry.issue_row` dicts) and their hourly events, one
    transaction. With `unresolved` (the ids Sentry lists as unresolved now), a stored
    unresolved issue not among them is marked resolved."""
    now = to_ms(ts)
    rows = [{**i, "target": target, "updated": now} for i in issues]
    events = [{**h, "target": target} for h in hourly]
    t = sentry_issues_table
    try:
        with store._lock, _write(store) as conn:
            if unresolved is not None:
                stale = [
                    r[0]
                    for r in conn.execute(
                        select(t.c.issue_id).where(t.c.target == target, t.c.status == "unresolved")
                    )
                    if r[0] not in unresolved
                ]
                for issue_id in stale:
                    conn.execute(
                        update(t)
                        .where(t.c.target == target, t.c.issue_id == issue_id)
                        .values(status="resolved", updated=now)
                    )
            _upsert(conn, sentry_issues_table, rows, ["target", "issue_id"])
            _upsert(conn, sentry_events_table, events, ["target", "issue_id", "hour"])
    except SQLAlchemyError as exc:
        raise _fail(store, exc) from None


def record_pm2(
    store: Any, target: str, ts: datetime | None, processes: Iterable[Mapping[str, Any]]
) -> int:
    """pm2 samples (`sources.pm2.parse_jlist` rows) taken at `ts` (None: each row's own
    `ts`, a datetime), one transaction. Returns the rows stored."""
    rows = [
        {**p, "target": target, "ts": to_ms(ts if ts is not None else p["ts"])} for p in processes
    ]
    if not rows:
        return 0
    try:
        with store._lock, _write(store) as conn:
            conn.execute(pm2_samples_table.insert(), rows)
    except SQLAlchemyError as exc:
        raise _fail(store, exc) from None
    return len(rows)


@dataclass
class FileState:
    """Where the reading of one log file (or journald unit) stands."""

    path: str
    device: int | None
    inode: int | None
    head_len: int
    head_hash: str
    offset: int
    start_hash: str | None = None
    disk_size: int | None = None
    last_entry: int | None = None
    last_ts: int | None = None
    cursor: str | None = None
    carried: bool = False  # kept unchanged from the last collection (no file continued it)


def file_states(store: Any, target: str) -> list[FileState]:
    t = log_files_table
    query = select(
        t.c.path,
        t.c.device,
        t.c.inode,
        t.c.head_len,
        t.c.head_hash,
        t.c.offset,
        t.c.start_hash,
        t.c.disk_size,
        t.c.last_entry,
        t.c.last_ts,
        t.c.cursor,
    ).where(t.c.target == target)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id)).fetchall()
    except SQLAlchemyError as exc:
        raise _fail(store, exc, "read store") from None
    return [FileState(*r) for r in rows]


def patterns(store: Any, target: str) -> dict[int, str]:
    """pattern_id -> template, of one target."""
    t = log_patterns_table
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.pattern_id, t.c.template).where(t.c.target == target)
            ).fetchall()
    except SQLAlchemyError as exc:
        raise _fail(store, exc, "read store") from None
    return {int(r[0]): str(r[1]) for r in rows}


@dataclass
class Entry:
    """One log entry to store (a first line and its continuation lines)."""

    ts: int
    estimated: bool
    source: str
    stream: str
    level: str
    pattern_id: int
    text: str
    lines: int = 1
    key: str = ""  # which FileState.path it came from (its last entry is remembered)


@dataclass
class Continuation:
    """Lines that continue an entry stored by an earlier collection."""

    entry_id: int
    text: str
    lines: int


def record_logs(
    store: Any,
    target: str,
    entries: Sequence[Entry],
    continuations: Sequence[Continuation],
    states: Sequence[FileState],
    templates: Mapping[int, str],
) -> None:
    """ONE transaction: the new entries, the continued ones, the templates, and the file
    states replacing the target's previous ones (a crash stores nothing: read again)."""
    t = log_lines_table
    try:
        with store._lock, _write(store) as conn:
            last: dict[str, int] = {}
            if entries:  # one executemany; each file's last entry is its highest new id
                first_id = conn.execute(select(func.max(t.c.id))).scalar() or 0
                conn.execute(
                    t.insert(),
                    [
                        {
                            "target": target,
                            "ts": e.ts,
                            "estimated": e.estimated,
                            "source": e.source,
                            "stream": e.stream,
                            "level": e.level,
                            "pattern_id": e.pattern_id,
                            "text": cut(e.text),
                            "lines": e.lines,
                        }
                        for e in entries
                    ],
                )
                keys = sorted({e.key for e in entries})
                found = conn.execute(
                    select(t.c.source, func.max(t.c.id))
                    .where(t.c.target == target, t.c.id > first_id, t.c.source.in_(keys))
                    .group_by(t.c.source)
                ).fetchall()
                last = {str(r[0]): int(r[1]) for r in found}
            for more in continuations:
                old = conn.execute(
                    select(t.c.text, t.c.lines).where(t.c.id == more.entry_id)
                ).first()
                if old is None:
                    continue
                conn.execute(
                    update(t)
                    .where(t.c.id == more.entry_id)
                    .values(text=cut(old.text + "\n" + more.text), lines=old.lines + more.lines)
                )
            _upsert(
                conn,
                log_patterns_table,
                [
                    {"target": target, "pattern_id": pid, "template": cut(tpl, 4000)}
                    for pid, tpl in templates.items()
                ],
                ["target", "pattern_id"],
            )
            conn.execute(delete(log_files_table).where(log_files_table.c.target == target))
            rows = []
            for s in states:
                rows.append(
                    {
                        "target": target,
                        "path": s.path,
                        "device": s.device,
                        "inode": s.inode,
                        "head_len": s.head_len,
                        "head_hash": s.head_hash,
                        "start_hash": s.start_hash,
                        "offset": s.offset,
                        "disk_size": s.disk_size,
                        "last_entry": s.last_entry if s.carried else last.get(s.path, s.last_entry),
                        "last_ts": s.last_ts,
                        "cursor": s.cursor,
                    }
                )
            if rows:
                conn.execute(log_files_table.insert(), rows)
    except SQLAlchemyError as exc:
        raise _fail(store, exc) from None


# the reads (a module of their own), under this module's name
from .source_reads import (  # noqa: E402
    LEVELS,
    LINE_COLUMNS,
    RUN_COLUMNS,
    SENTRY_COLUMNS,
    entries_by_id,
    log_lines,
    pattern_counts,
    pattern_first_seen,
    pm2_samples,
    sentry_events,
    sentry_issues,
    source_runs,
    templates_of,
)
