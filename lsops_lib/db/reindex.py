"""What to re-index: the entities whose embeddings are missing, stale or failed.

The runbook's "Data issues - missing context: re-index data, check indexing logs, verify
embeddings", as a list by entity type with ids, and the runbook's command to run for them
(`node scripts/index-production-data.js`, in the API's checkout). lsops never triggers
indexing: every question here is a read in the Inspector's READ ONLY session.

    listing = reindex_list(insp, entity_type="project", stale_only=False)
    listing.by_type      # per type: entities, missing, stale, failed (None = unknown), note
    listing.entities     # one row per entity and reason: entity_type, entity_id, name, ...
    listing.command      # the runbook's command

Reasons: `missing` and `stale` as `db.embeddings` defines them, the one definition that
`lsops index-stats`'s coverage counts by too (a NULL embedding is missing, never stale;
here, a table without context_embeddings.updated_at dates embeddings by `created_at`,
with a note), and `failed` (the entity's latest entry in `context_indexing_log` is
`failed`). An entity may be listed under two reasons (missing and failed).

`to_reindex` per type is None (unknown, never 0) when the type's missing and stale could
not be checked (no source table lsops knows, an absent one, no embeddings table; with
`stale_only`, when its stale could not be); the total (the entities listed, their failed
ones included) is then a lower bound (`ReindexList.lower_bound`, `unknown_types`).

Schema drift never raises: a source table without an `updated_at` column gives "stale
unknown" for its type, a missing source table "missing and stale unknown", a missing
embeddings table or indexing log makes the matching counts unknown (None), each with a
note saying why. Each question is a small function with its SQL beside it (pgHero style).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..exceptions import ParameterError
from ._frames import TS, typed
from .connect import Inspector
from .embeddings import SOURCES, missing_sql, stale_sql

__all__ = [
    "BY_TYPE_COLUMNS",
    "ENTITY_COLUMNS",
    "ENTITY_TYPES",
    "INDEX_ROUTES",
    "REASONS",
    "RUNBOOK_COMMAND",
    "SOURCE_TABLES",
    "ReindexList",
    "entity_count",
    "failed_in_log",
    "known_types",
    "missing_embeddings",
    "reindex_list",
    "stale_embeddings",
    "table_columns",
]

# the runbook's "Weekly Maintenance - Data Indexing: Index New Data"
RUNBOOK_COMMAND = "node scripts/index-production-data.js"
# context_embeddings.entity_type's CHECK constraint
ENTITY_TYPES = ("project", "workflow", "execution", "agent", "post", "keyword")
# entity type -> (source table, the column naming an entity or None); posts and keywords
# have no source table lsops knows of
SOURCE_TABLES: dict[str, tuple[str, str | None]] = {
    "project": ("projects", "name"),
    "workflow": ("workflows", "name"),
    "execution": ("workflow_executions", None),
    "agent": ("agents", "name"),
}
# the API's targeted re-index (reference: POST /api/context/index/{projects|workflows|
# executions}); the other types only through /api/context/index/all or the script
INDEX_ROUTES = {
    "project": "POST /api/context/index/projects",
    "workflow": "POST /api/context/index/workflows",
    "execution": "POST /api/context/index/executions",
}
REASONS = ("missing", "stale", "failed")
EMBEDDINGS = "context_embeddings"
LOG = "context_indexing_log"

BY_TYPE_COLUMNS = [
    "entity_type",
    "source_table",
    "entities",
    "missing",
    "stale",
    "failed",
    "to_reindex",
    "stale_known",
    "route",
    "note",
]
ENTITY_COLUMNS = [
    "entity_type",
    "entity_id",
    "name",
    "reason",
    "detail",
    "changed_at",
    "embedded_at",
    "failed_at",
]
# the dtypes of `entities`, with rows or without (text with NULLs stays text: NaN)
ENTITY_DTYPES = {
    **dict.fromkeys(("entity_type", "entity_id", "name", "reason", "detail"), "str"),
    **dict.fromkeys(("changed_at", "embedded_at", "failed_at"), TS),
}


def _ident(name: str) -> str:
    """A table or column name as an SQL identifier (the names here are lsops's own)."""
    return '"' + name.replace('"', '""') + '"'


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """An answer with the dtypes of ENTITY_DTYPES (and `error_message` text) for the
    columns it has: the same with rows or without, a column all NULL included."""
    return typed(df, {**ENTITY_DTYPES, "error_message": "str"})


# --- the questions ----------------------------------------------------------------------------


def table_columns(insp: Inspector, tables: Iterable[str]) -> dict[str, set[str]]:
    """The columns of each table that exists (found on the search path, as `to_regclass`
    finds it); an absent table is absent from the answer."""
    names = sorted(set(tables))
    df = insp.frame(
        """
        SELECT t.name AS table_name, a.attname AS column_name
        FROM unnest(CAST(:tables AS text[])) AS t(name)
        JOIN pg_attribute a ON a.attrelid = to_regclass(t.name)
        WHERE a.attnum > 0 AND NOT a.attisdropped
        """,
        {"tables": names},
    )
    out: dict[str, set[str]] = {}
    for row in df.itertuples(index=False):
        out.setdefault(str(row.table_name), set()).add(str(row.column_name))
    return out


def unusable_schemas(insp: Inspector) -> list[str]:
    """The schemas of the search path that exist but the role may not use (no USAGE): the
    tables in them are out of its reach, and `to_regclass` answers NULL as for an absent one."""
    df = insp.frame(
        """
        SELECT n.nspname AS schema
        FROM pg_namespace n
        WHERE n.nspname = ANY (current_schemas(false) || string_to_array(
                  replace(replace(current_setting('search_path'), ' ', ''), '"', ''), ','))
          AND NOT has_schema_privilege(n.oid, 'USAGE')
        ORDER BY n.nspname
        """
    )
    return [str(x) for x in df["schema"]]


def entity_count(insp: Inspector, table: str) -> int:
    """How many rows (entities) a source table holds."""
    return int(insp.scalar(f"SELECT count(*) FROM {_ident(table)}"))


def _changed_sql(columns: str | tuple[str, ...] | None) -> str | None:
    """When a source entity last changed, as SQL: its column, or the first non-NULL of
    several (`COALESCE(src.completed_at, src.created_at)`)."""
    cols = [columns] if isinstance(columns, str) else list(columns or ())
    refs = [f"src.{_ident(c)}" for c in cols]
    if not refs:
        return None
    return refs[0] if len(refs) == 1 else f"COALESCE({', '.join(refs)})"


def missing_embeddings(
    insp: Inspector,
    entity_type: str,
    table: str,
    name_column: str | None,
    *,
    null_check: bool = True,
    changed_column: str | tuple[str, ...] | None = "updated_at",
) -> pd.DataFrame:
    """Source entities with no embedding row, or (`null_check`) whose embedding is NULL:
    entity_type, entity_id, name, detail ("no embedding" | "embedding is NULL"),
    changed_at (the source's `changed_column`, the first non-NULL of several, None
    without one)."""
    name = f"src.{_ident(name_column)}::text" if name_column else "NULL::text"
    changed = _changed_sql(changed_column) or "NULL::timestamptz"
    null_detail = "WHEN ce.embedding IS NULL THEN 'embedding is NULL'" if null_check else ""
    df = insp.frame(
        f"""
        SELECT :entity_type AS entity_type, src.id::text AS entity_id, {name} AS name,
               CASE WHEN ce.entity_id IS NULL THEN 'no embedding' {null_detail} END AS detail,
               {changed} AS changed_at
        FROM {_ident(table)} src
        LEFT JOIN {EMBEDDINGS} ce ON ce.entity_type = :entity_type AND ce.entity_id = src.id
        WHERE {missing_sql(null_check=null_check)}
        ORDER BY src.id
        """,
        {"entity_type": entity_type},
    )
    return _typed(df)


def stale_embeddings(
    insp: Inspector,
    entity_type: str,
    table: str,
    name_column: str | None,
    *,
    embedded_column: str = "updated_at",
    null_check: bool = True,
    changed_column: str | tuple[str, ...] = "updated_at",
) -> pd.DataFrame:
    """Embeddings older than their source entity (its `changed_column`, the first non-NULL
    of several, after the embedding's `embedded_column`); NULL embeddings are `missing`,
    not stale: entity_type, entity_id, name, changed_at, embedded_at. The source table
    must have the changed column(s)."""
    name = f"src.{_ident(name_column)}::text" if name_column else "NULL::text"
    changed = _changed_sql(changed_column) or "NULL::timestamptz"
    embedded = f"ce.{_ident(embedded_column)}"
    df = insp.frame(
        f"""
        SELECT :entity_type AS entity_type, src.id::text AS entity_id, {name} AS name,
               {changed} AS changed_at, {embedded} AS embedded_at
        FROM {_ident(table)} src
        JOIN {EMBEDDINGS} ce ON ce.entity_type = :entity_type AND ce.entity_id = src.id
        WHERE {stale_sql(changed, embedded, null_check=null_check)}
        ORDER BY src.id
        """,
        {"entity_type": entity_type},
    )
    return _typed(df)


def failed_in_log(
    insp: Inspector, entity_type: str | None = None, *, names: bool = True
) -> pd.DataFrame:
    """Entities whose LATEST indexing-log entry is `failed` (a failure followed by a
    completed, pending or processing entry is not listed): entity_type, entity_id, name
    (the embedding's entity_name when there is one; `names=False`: None), error_message,
    failed_at. `entity_type`: that type only. An undated entry (created_at NULL) is never
    the latest while a dated one exists (NULLS LAST, as `embeddings.latest_failures`)."""
    name = "ce.entity_name" if names else "NULL::text"
    join = (
        f"LEFT JOIN {EMBEDDINGS} ce ON ce.entity_type = l.entity_type "
        "AND ce.entity_id = l.entity_id"
        if names
        else ""
    )
    where = "WHERE entity_type = :entity_type" if entity_type else ""
    df = insp.frame(
        f"""
        SELECT l.entity_type, l.entity_id::text AS entity_id, {name} AS name,
               l.error_message, l.created_at AS failed_at
        FROM (
            SELECT DISTINCT ON (entity_type, entity_id)
                   entity_type, entity_id, status, error_message, created_at
            FROM {LOG}
            {where}
            ORDER BY entity_type, entity_id, created_at DESC NULLS LAST
        ) l
        {join}
        WHERE l.status = 'failed'
        ORDER BY l.entity_type, l.created_at DESC NULLS LAST, l.entity_id
        """,
        {"entity_type": entity_type} if entity_type else None,
    )
    return _typed(df)


def known_types(insp: Inspector, *, embeddings: bool, log: bool) -> list[str]:
    """Entity types present in the embeddings table and the indexing log (those that exist)."""
    parts = []
    if embeddings:
        parts.append(f"SELECT DISTINCT entity_type FROM {EMBEDDINGS}")
    if log:
        parts.append(f"SELECT DISTINCT entity_type FROM {LOG}")
    if not parts:
        return []
    df = insp.frame(" UNION ".join(parts))
    return sorted(str(t) for t in df["entity_type"] if isinstance(t, str))


# --- the list ---------------------------------------------------------------------------------


@dataclass
class ReindexList:
    """The answer of `reindex_list`: counts per type, the entities, notes, the command."""

    by_type: pd.DataFrame
    entities: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    command: str = RUNBOOK_COMMAND
    entity_type: str | None = None
    stale_only: bool = False

    @property
    def total(self) -> int | None:
        """Distinct entities to re-index (the listed ones); None when no type has a reason
        lsops could check (every count unknown: never 0). A lower bound when a type's
        count is unknown (`lower_bound`)."""
        checked = ("stale",) if self.stale_only else REASONS
        if self.by_type.empty or self.by_type[list(checked)].isna().all().all():
            return None
        if self.entities.empty:
            return 0
        return int(len(self.entities.drop_duplicates(["entity_type", "entity_id"])))

    @property
    def unknown_types(self) -> list[str]:
        """The types whose count to re-index is unknown (None): left out of `total`, but
        for what lsops could check of them (their failed entities)."""
        return [
            str(r.entity_type)
            for r in self.by_type.itertuples(index=False)
            if r.to_reindex is None or pd.isna(r.to_reindex)
        ]

    @property
    def lower_bound(self) -> bool | None:
        """`total` is a lower bound: some type's count is unknown (None when `total` is)."""
        return None if self.total is None else bool(self.unknown_types)

    def counts(self) -> dict[str, Any]:
        """{missing, stale, failed}: sums over the types where each is known (None when it
        is known for no type), `to_reindex`, `to_reindex_lower_bound` and
        `to_reindex_unknown_types` (see `total`), and `unknown`: "<type>: <reason>" notes."""
        out: dict[str, Any] = {}
        for reason in REASONS:
            known = [int(v) for v in self.by_type[reason] if v is not None and not pd.isna(v)]
            out[reason] = sum(known) if known else None
        out["to_reindex"] = self.total
        out["to_reindex_lower_bound"] = self.lower_bound
        out["to_reindex_unknown_types"] = self.unknown_types
        out["unknown"] = [
            f"{r.entity_type}: {r.note}"
            for r in self.by_type.itertuples(index=False)
            if isinstance(r.note, str) and r.note
        ]
        return out


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows as a frame of Python values: counts stay ints, unknown ones None."""
    return pd.DataFrame(rows, columns=columns, dtype=object)


def reindex_list(
    insp: Inspector, *, entity_type: str | None = None, stale_only: bool = False
) -> ReindexList:
    """The entities to re-index, by type (`entity_type`: one type; `stale_only`: only the
    stale ones are listed, the counts per type still show every reason). Never raises for
    a drifted schema (see the module docstring); a database error is a `DatabaseError`."""
    columns = table_columns(insp, [EMBEDDINGS, LOG, *(t for t, _ in SOURCE_TABLES.values())])
    ce = columns.get(EMBEDDINGS)
    log = columns.get(LOG)
    notes: list[str] = []
    unusable = unusable_schemas(insp)
    if unusable:  # its tables look absent to the role: say why before "absent"
        notes.append(
            f"the role has no USAGE on schema {', '.join(unusable)}: the tables there are "
            "out of its reach (GRANT USAGE ON SCHEMA ... TO the role), read as absent below"
        )
    embedded_column: str | None = None
    null_check = False
    if ce is None:
        notes.append(f"no {EMBEDDINGS} table: missing and stale embeddings unknown")
    elif not {"entity_type", "entity_id", "id"} <= ce:
        notes.append(f"{EMBEDDINGS} lacks entity_type, entity_id or id: missing and stale unknown")
        ce = None
    else:
        null_check = "embedding" in ce
        if not null_check:
            notes.append(f"{EMBEDDINGS} has no embedding column: NULL embeddings not checked")
        if "updated_at" in ce:
            embedded_column = "updated_at"
        elif "created_at" in ce:
            embedded_column = "created_at"
            notes.append(f"{EMBEDDINGS} has no updated_at: embeddings dated by created_at")
        else:
            notes.append(f"{EMBEDDINGS} has no updated_at nor created_at: stale unknown")
    log_ok = log is not None and {"entity_type", "entity_id", "status", "created_at"} <= log
    if log is None:
        notes.append(f"no {LOG} table: failed indexing unknown")
    elif not log_ok:
        notes.append(f"{LOG} lacks entity_type, entity_id, status or created_at: failed unknown")

    types = list(SOURCE_TABLES)
    for t in known_types(insp, embeddings=ce is not None, log=log_ok):
        if t not in types:
            types.append(t)
    if entity_type is not None:
        if entity_type not in types and entity_type not in ENTITY_TYPES:
            known = ", ".join(sorted({*types, *ENTITY_TYPES}))
            raise ParameterError(f"unknown entity type {entity_type!r} (known: {known})")
        types = [entity_type]

    failed = (
        failed_in_log(insp, entity_type, names=ce is not None and "entity_name" in ce)
        if log_ok
        else None
    )
    by_type: list[dict[str, Any]] = []
    listed: list[pd.DataFrame] = []
    for t in types:
        row: dict[str, Any] = dict.fromkeys(BY_TYPE_COLUMNS)
        row.update(entity_type=t, route=INDEX_ROUTES.get(t), stale_known=False)
        why: list[str] = []
        source = SOURCE_TABLES.get(t)
        src_columns = columns.get(source[0]) if source else None
        if source is None:
            why.append("no source table known: missing and stale unknown")
        elif src_columns is None:
            why.append(f"source table {source[0]} is absent: missing and stale unknown")
        elif "id" not in src_columns:
            why.append(f"source table {source[0]} has no id column: missing and stale unknown")
        else:
            table, name_column = source
            name_column = name_column if name_column in src_columns else None
            # when an entity last changed, as the coverage figures date it (an execution
            # by COALESCE(completed_at, created_at)): both say the same of staleness
            wanted = SOURCES[t].changed if t in SOURCES else ("updated_at",)
            changed = tuple(c for c in wanted if c in src_columns)
            row.update(source_table=table, entities=entity_count(insp, table))
            if ce is not None:
                missing = missing_embeddings(
                    insp,
                    t,
                    table,
                    name_column,
                    null_check=null_check,
                    changed_column=changed or None,
                )
                row["missing"] = len(missing)
                if not stale_only:
                    listed.append(missing.assign(reason="missing"))
            if not changed:
                why.append(f"{table} has no {' or '.join(wanted)} column: stale unknown")
            elif ce is not None and embedded_column is not None:
                stale = stale_embeddings(
                    insp,
                    t,
                    table,
                    name_column,
                    embedded_column=embedded_column,
                    null_check=null_check,
                    changed_column=changed,
                )
                row.update(stale=len(stale), stale_known=True)
                listed.append(stale.assign(reason="stale", detail="changed after its embedding"))
        if failed is not None:
            mine = failed[failed["entity_type"] == t]
            row["failed"] = len(mine)
            if not stale_only:
                listed.append(
                    mine.rename(columns={"error_message": "detail"}).assign(reason="failed")
                )
        row["note"] = "; ".join(why) or None
        by_type.append(row)

    frames = [f for f in listed if not f.empty]
    entities = _typed(
        pd.concat(frames, ignore_index=True).reindex(columns=ENTITY_COLUMNS)
        if frames
        else pd.DataFrame(columns=ENTITY_COLUMNS)
    )
    order = {r: i for i, r in enumerate(REASONS)}
    if len(entities):
        entities = entities.sort_values(
            ["entity_type", "reason", "entity_id"],
            key=lambda s: s.map(order) if s.name == "reason" else s,
            kind="stable",
        ).reset_index(drop=True)
    counts = entities.drop_duplicates(["entity_type", "entity_id"])["entity_type"].value_counts()
    for row in by_type:
        # a type whose missing and stale could not be checked (no source table, none lsops
        # knows, no embeddings table) has no count, not 0 nor its failures alone; with
        # `stale_only`, one whose stale could not be
        known = row["stale"] is not None if stale_only else row["missing"] is not None
        row["to_reindex"] = int(counts.get(row["entity_type"], 0)) if known else None
    return ReindexList(
        by_type=_frame(by_type, BY_TYPE_COLUMNS),
        entities=entities,
        notes=notes,
        entity_type=entity_type,
        stale_only=stale_only,
    )
