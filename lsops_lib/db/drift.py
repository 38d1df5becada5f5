"""Schema drift: what the inspected database lacks, and which figure that costs.

The LongSang schema differs between deployments (a column added later, an optional table
never created, a table the read-only role may not read). Each figure needs some tables
and columns; when one is missing, THAT figure alone is unavailable, and the reason says
which and why. Two ways a function degrades:

    drift.require(insp, "indexing log", "context_indexing_log", "status")
        # the whole figure needs it: raises SchemaMissing("indexing log: no table ...")
    gone = drift.missing(insp, "projects", "updated_at")     # ["updated_at"] or []
    drift.note(insp, "embeddings coverage: 'stale' of project not computed: ...")
        # a part of a figure is unknown (None in its frame): said on the inspector

    insp.unavailable          # every note of this inspection session, in order
    drift.figure(notes, "indexing log", lambda: embeddings.log_summary(insp))
        # the caller's side: the value, or None with "<figure>: <reason>" in notes

A query that fails on a missing table or column, or on a missing privilege, raises
SchemaMissing too (see `Inspector.frame`), so drift nobody foresaw degrades the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import DatabaseError

if TYPE_CHECKING:  # pragma: no cover
    from .connect import Inspector

__all__ = ["SchemaMissing", "columns", "figure", "missing", "note", "reason", "require"]

T = TypeVar("T")


class SchemaMissing(DatabaseError):
    """A table, column or privilege a figure needs is missing in the inspected database:
    that figure is unavailable (an absence to report, not a failure of the inspection)."""


def columns(insp: Inspector, table: str) -> frozenset[str] | None:
    """The column names of `table` (as the session's search_path resolves it), None when
    there is no such table. Cached per inspector."""
    key = f"columns:{table}"
    if key not in insp._cache:
        if not insp.has_table(table):
            insp._cache[key] = None
        else:
            df = insp.frame(
                """
                SELECT a.attname::text AS name FROM pg_attribute a
                WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped
                """,
                {"table": table},
            )
            insp._cache[key] = frozenset(df["name"])
    return insp._cache[key]


def missing(insp: Inspector, table: str, *needed: str) -> list[str]:
    """Which of the columns `needed` `table` lacks (all of them when there is no table)."""
    have = columns(insp, table)
    if have is None:
        return list(needed)
    return [c for c in needed if c not in have]


def reason(insp: Inspector, table: str, *needed: str) -> str | None:
    """Why `table` cannot serve `needed`: 'no table t' / 'no column t.c', None when it can."""
    if columns(insp, table) is None:
        return f"no table {table}"
    gone = missing(insp, table, *needed)
    if not gone:
        return None
    return "no column " + ", ".join(f"{table}.{c}" for c in gone)


def require(insp: Inspector, what: str, table: str, *needed: str) -> None:
    """Raise SchemaMissing('<what>: no table t' / 'no column t.c') unless `table` has
    every column in `needed`."""
    why = reason(insp, table, *needed)
    if why is not None:
        raise SchemaMissing(f"{what}: {why}")


def note(insp: Inspector, message: str) -> None:
    """Say on the inspector that a part of a figure could not be computed, and why."""
    insp.note_unavailable(message)


def figure(notes: list[str], what: str, fn: Callable[[], T], default: Any = None) -> T | Any:
    """`fn()`, or `default` when the figure needs something the database lacks: then
    '<what>: <reason>' is appended to `notes`. Other errors pass through."""
    try:
        return fn()
    except SchemaMissing as exc:
        text = str(exc)
        notes.append(text if text.startswith(f"{what}:") else f"{what}: {text}")
        return default
