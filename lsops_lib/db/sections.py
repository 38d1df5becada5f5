"""The DB optimization report's sections: the record each check fills, and the rule by
which a check's failure costs its own figure only.

`Section` holds a section's DataFrames, notes, errors and what it could not check;
`attempt` runs one check into a section (a missing extension, table, column or privilege
is an absence, any other database error an error); `drift_notes` carries the Inspector's
schema-drift messages into the section. `db.gather` fills the sections, `db.report`
bundles them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..exceptions import DatabaseError, ExtensionMissing
from .connect import Inspector
from .drift import SchemaMissing

__all__ = ["FROM_STORE", "SECTION_TITLES", "Section", "attempt", "drift_notes"]

SECTION_TITLES = {
    "space": "Space",
    "indexes": "Indexes",
    "retrieval": "Retrieval quality",
    "queries": "Queries",
    "maintenance": "Maintenance",
    "backups": "Backups",  # issue 12: from the metrics store (`lsops backup check`)
    "embeddings": "Embeddings indexing",
    "reindex": "Re-index",  # issue 12: the counts of `lsops reindex-list`
}
# sections read from the metrics store alone: shown even when the database is unreachable
FROM_STORE = frozenset({"backups"})


@dataclass
class Section:
    name: str
    title: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # what this section could not check (an extension missing, no snapshots stored, not a
    # LongSang database): also among the notes; errors are failures, these are absences
    unavailable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def missing(self, message: str) -> None:
        """Note that something could not be checked (shown, and in the key figures)."""
        self.notes.append(message)
        self.unavailable.append(message)


def attempt(section: Section, what: str, fn: Callable[[], Any]) -> Any:
    """`fn()`, or None: a missing extension, table, column or privilege is noted as
    unavailable (schema drift costs that figure only), any other error is an error."""
    try:
        return fn()
    except ExtensionMissing as exc:
        section.missing(str(exc))
    except SchemaMissing as exc:
        text = str(exc)
        section.missing(text if text.startswith(f"{what}:") else f"{what}: {text}")
    except DatabaseError as exc:
        section.errors.append(f"{what}: {exc}")
    return None


def drift_notes(section: Section, insp: Inspector, seen: int) -> None:
    """The parts of figures this section could not compute (`insp.unavailable` since
    `seen`): unavailable too, said in the section."""
    for message in insp.unavailable[seen:]:
        section.missing(message)
