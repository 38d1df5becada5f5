"""Reads of the issue 10 source tables (`store/sources.py` defines them and their writes;
it re-exports everything here, so callers use `store.sources`)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, column, func, select, table
from sqlalchemy.exc import SQLAlchemyError

from ..times import to_ms
from .sources import (
    _fail,
    log_lines_table,
    log_patterns_table,
    pm2_samples_table,
    sentry_events_table,
    sentry_issues_table,
    source_runs_table,
)

_PG_COLLATION = table("pg_collation", column("collname"))
HOUR_MS = 3_600_000  # a Sentry stats bucket (lsops_sentry_events.hour is its start)

# --- reads --------------------------------------------------------------------------------


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _frame(store: Any, query: Any, columns: list[str], ts_columns: Sequence[str]) -> pd.DataFrame:
    try:
        with store.engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # SQLite's own lower() lowers ASCII only
                conn.connection.driver_connection.create_function(
                    "lsops_lower", 1, _lower, deterministic=True
                )
            rows = conn.execute(query).fetchall()
    except SQLAlchemyError as exc:
        raise _fail(store, exc, "read store") from None
    df = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for col in ts_columns:
        df[col] = pd.to_datetime(pd.to_numeric(df[col]), unit="ms", utc=True)
    return df


def _target_clause(column: Any, target: str | None) -> Any:
    return column == target if target is not None else None


def _where(query: Any, *clauses: Any) -> Any:
    real = [c for c in clauses if c is not None]
    return query.where(and_(*real)) if real else query


SENTRY_COLUMNS = [
    "issue_id",
    "short_id",
    "title",
    "culprit",
    "level",
    "status",
    "substatus",
    "first_seen",
    "last_seen",
    "events",
    "users",
    "permalink",
    "updated",
]


def sentry_issues(
    store: Any,
    target: str | None,
    *,
    seen_since: datetime | None = None,
    first_seen_since: datetime | None = None,
    first_seen_until: datetime | None = None,
) -> pd.DataFrame:
    """The stored issues (their latest state): SENTRY_COLUMNS, instants as Timestamps."""
    t = sentry_issues_table
    query = _where(
        select(*[t.c[c] for c in SENTRY_COLUMNS]),
        _target_clause(t.c.target, target),
        t.c.last_seen >= to_ms(seen_since) if seen_since else None,
        t.c.first_seen >= to_ms(first_seen_since) if first_seen_since else None,
        t.c.first_seen < to_ms(first_seen_until) if first_seen_until else None,
    ).order_by(t.c.first_seen, t.c.issue_id)
    return _frame(store, query, SENTRY_COLUMNS, ("first_seen", "last_seen", "updated"))


def sentry_events(store: Any, target: str | None, start: datetime, end: datetime) -> pd.DataFrame:
    """Events per issue in the hourly buckets that overlap [start, end): issue_id, events.
    A bucket cannot be split: like `lsops errors`, the whole hours the window touches
    count (09:05-09:50 counts the hour 09:00-10:00)."""
    t = sentry_events_table
    query = _where(
        select(t.c.issue_id, func.sum(t.c.events)),
        _target_clause(t.c.target, target),
        t.c.hour > to_ms(start) - HOUR_MS,
        t.c.hour < to_ms(end),
    ).group_by(t.c.issue_id)
    return _frame(store, query, ["issue_id", "events"], ())


RUN_COLUMNS = ["ts", "source", "ok", "items", "error"]


def collected_sources(store: Any, target: str | None) -> set[str]:
    """The sources ever collected for `target` (all targets: None): one DISTINCT read."""
    t = source_runs_table
    query = _where(select(t.c.source).distinct(), _target_clause(t.c.target, target))
    return set(_frame(store, query, ["source"], ())["source"].astype(str))


def source_runs_of(
    store: Any, targets: list[str] | None, start: datetime, end: datetime
) -> pd.DataFrame:
    """The collections (`source_runs`, with their target) of `targets` (None: all) in
    [start, end), oldest first."""
    t = source_runs_table
    query = _where(
        select(t.c.target, *[t.c[c] for c in RUN_COLUMNS]),
        t.c.target.in_(targets) if targets is not None else None,
        t.c.ts >= to_ms(start),
        t.c.ts < to_ms(end),
    ).order_by(t.c.ts, t.c.id)
    return _frame(store, query, ["target", *RUN_COLUMNS], ("ts",))


def last_collections(
    store: Any, targets: list[str] | None, end: datetime
) -> dict[str | None, dict[str, pd.Timestamp]]:
    """Each source's last successful collection at or before `end`, by name, for each of
    `targets` (None: of every target together, keyed None)."""
    t = source_runs_table
    query = _where(
        select(t.c.target, t.c.source, func.max(t.c.ts)),
        t.c.target.in_(targets) if targets is not None else None,
        t.c.ok.is_(True),
        t.c.ts <= to_ms(end),
    ).group_by(t.c.target, t.c.source)
    found = _frame(store, query, ["target", "source", "ts"], ("ts",))
    out: dict[str | None, dict[str, pd.Timestamp]] = {}
    for r in found.itertuples(index=False):
        if pd.isna(r.ts):
            continue
        mine = out.setdefault(str(r.target) if targets is not None else None, {})
        name = str(r.source)
        if name not in mine or r.ts > mine[name]:
            mine[name] = r.ts
    return out


def collected_sources_of(store: Any, targets: Sequence[str]) -> dict[str, set[str]]:
    """`collected_sources` of each of `targets` (not empty), in one DISTINCT read (the
    alert round of many targets)."""
    t = source_runs_table
    query = select(t.c.target, t.c.source).distinct().where(t.c.target.in_(list(targets)))
    found: dict[str, set[str]] = {name: set() for name in targets}
    for target, source in _frame(store, query, ["target", "source"], ()).itertuples(index=False):
        found[str(target)].add(str(source))
    return found


def source_runs(
    store: Any, target: str | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    t = source_runs_table
    query = _where(
        select(*[t.c[c] for c in RUN_COLUMNS]),
        _target_clause(t.c.target, target),
        t.c.ts >= to_ms(start) if start else None,
        t.c.ts < to_ms(end) if end else None,
    ).order_by(t.c.ts, t.c.id)
    return _frame(store, query, RUN_COLUMNS, ("ts",))


PM2_COLUMNS = [
    "ts",
    "app",
    "pm_id",
    "pid",
    "status",
    "restarts",
    "unstable_restarts",
    "cpu",
    "memory",
    "uptime_s",
]


def pm2_samples(
    store: Any, target: str | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    t = pm2_samples_table
    query = _where(
        select(*[t.c[c] for c in PM2_COLUMNS]),
        _target_clause(t.c.target, target),
        t.c.ts >= to_ms(start) if start else None,
        t.c.ts < to_ms(end) if end else None,
    ).order_by(t.c.ts, t.c.id)
    return _frame(store, query, PM2_COLUMNS, ("ts",))


LINE_COLUMNS = ["id", "ts", "estimated", "source", "stream", "level", "pattern_id", "text", "lines"]
LEVELS = ("debug", "info", "warning", "error", "fatal")


def _level_clause(level: str | None) -> Any:
    if not level:
        return None
    at_least = LEVELS[LEVELS.index(level) :]
    return log_lines_table.c.level.in_(at_least)


# PostgreSQL collations whose lower() lowers all of Unicode (under a database in the C
# locale, lower() lowers ASCII only): ICU's root one, else glibc's C.UTF-8
_FOLDING = ("und-x-icu", "C.utf8", "C.UTF-8")
_folding: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _folding_collation(store: Any) -> str | None:
    """The first of `_FOLDING` the PostgreSQL server has (None: its own lower())."""
    engine = store.engine
    if engine not in _folding:
        query = select(_PG_COLLATION.c.collname).where(_PG_COLLATION.c.collname.in_(_FOLDING))
        found = set(_frame(store, query, ["collname"], ())["collname"])
        _folding[engine] = next((c for c in _FOLDING if c in found), None)
    return _folding[engine]


def _grep_clause(store: Any, grep: str | None) -> Any:
    """The entry's text contains `grep` in any case, for all of Unicode (`str.lower`)."""
    if not grep:
        return None
    text: Any = log_lines_table.c.text
    if store.engine.dialect.name == "sqlite":
        lowered = func.lsops_lower(text)  # registered by _frame
    else:
        collation = _folding_collation(store) if store.engine.dialect.name == "postgresql" else None
        lowered = func.lower(text.collate(collation) if collation else text)
    return lowered.contains(grep.lower(), autoescape=True)


def log_lines(
    store: Any,
    target: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    level: str | None = None,
    grep: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The stored entries in [start, end), oldest first: LINE_COLUMNS."""
    t = log_lines_table
    query = _where(
        select(*[t.c[c] for c in LINE_COLUMNS]),
        _target_clause(t.c.target, target),
        t.c.ts >= to_ms(start) if start else None,
        t.c.ts < to_ms(end) if end else None,
        _level_clause(level),
        _grep_clause(store, grep),
    ).order_by(t.c.ts, t.c.id)
    if limit is not None:
        query = query.limit(limit)
    return _frame(store, query, LINE_COLUMNS, ("ts",))


def pattern_counts(
    store: Any,
    target: str | None,
    start: datetime | None,
    end: datetime | None,
    *,
    level: str | None = None,
    grep: str | None = None,
) -> pd.DataFrame:
    """Per pattern in [start, end): count, first, last (instants), worst level rank,
    the id of its first entry (the example)."""
    t = log_lines_table
    rank = _level_rank()
    query = _where(
        select(
            t.c.pattern_id,
            func.count(),
            func.min(t.c.ts),
            func.max(t.c.ts),
            func.max(rank),
            func.min(t.c.id),
        ),
        _target_clause(t.c.target, target),
        t.c.ts >= to_ms(start) if start else None,
        t.c.ts < to_ms(end) if end else None,
        _level_clause(level),
        _grep_clause(store, grep),
    ).group_by(t.c.pattern_id)
    return _frame(
        store,
        query,
        ["pattern_id", "count", "first", "last", "level_rank", "example_id"],
        ("first", "last"),
    )


def _level_rank() -> Any:
    return case({name: i for i, name in enumerate(LEVELS)}, value=log_lines_table.c.level, else_=1)


def pattern_first_seen(
    store: Any, target: str | None, pattern_ids: Sequence[int]
) -> dict[int, Any]:
    """pattern_id -> the first instant any line of it was seen (all history)."""
    if not pattern_ids:
        return {}
    t = log_lines_table
    query = _where(
        select(t.c.pattern_id, func.min(t.c.ts)),
        _target_clause(t.c.target, target),
        t.c.pattern_id.in_([int(p) for p in pattern_ids]),
    ).group_by(t.c.pattern_id)
    df = _frame(store, query, ["pattern_id", "first_seen"], ("first_seen",))
    return {int(r.pattern_id): r.first_seen for r in df.itertuples()}


def entries_by_id(store: Any, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    t = log_lines_table
    query = select(t.c.id, t.c.text).where(t.c.id.in_([int(i) for i in ids]))
    df = _frame(store, query, ["id", "text"], ())
    return {int(r.id): str(r.text) for r in df.itertuples()}


def templates_of(store: Any, target: str | None, pattern_ids: Sequence[int]) -> dict[int, str]:
    if not pattern_ids:
        return {}
    t = log_patterns_table
    query = _where(
        select(t.c.pattern_id, t.c.template),
        _target_clause(t.c.target, target),
        t.c.pattern_id.in_([int(p) for p in pattern_ids]),
    )
    df = _frame(store, query, ["pattern_id", "template"], ())
    return {int(r.pattern_id): str(r.template) for r in df.itertuples()}
