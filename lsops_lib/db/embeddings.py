"""Embeddings indexing: the runbook's weekly check, the indexing log, and coverage (source
entities with no embedding, embeddings older than their entity, null embeddings).

Missing and stale, the one definition (`lsops index-stats`'s coverage and `lsops
reindex-list` both count by it, through `missing_sql` and `stale_sql`):

- **missing**: a source entity with no row in context_embeddings, or whose row's
  `embedding` is NULL (similarity search cannot find it either way);
- **stale**: a source entity whose embedding is not NULL and older than the entity's last
  change: the embedding's `updated_at` before the entity's (`Source.changed`; an
  execution's `completed_at`, else its `created_at`). A NULL embedding is missing, never
  stale: no entity is both. (Without context_embeddings.updated_at, reindex-list dates
  embeddings by `created_at` and says so; coverage leaves stale unknown.)
- `null_embeddings` (coverage) counts the rows stored with a NULL embedding, per type: for
  a type with a source table they are among its `missing`.

Deployments differ (schema drift): every table here but the one a figure is about is
optional, and so is every column but the few a figure cannot do without. A missing table
or key column raises `drift.SchemaMissing` (that figure is unavailable); a missing
optional column leaves its part of the figure empty (None) and says so on the inspector
(`insp.unavailable`): "embeddings coverage: 'stale' of project not computed: no column
projects.updated_at".
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import drift
from ._frames import TS, instants
from .connect import Inspector, count_param

__all__ = [
    "LOG_STATUSES",
    "SOURCES",
    "TS",
    "Source",
    "by_entity_type",
    "coverage",
    "instants",
    "latest_failures",
    "log_by_status",
    "log_summary",
    "missing_entities",
    "missing_sql",
    "stale_sql",
]

LOG_STATUSES = ("pending", "processing", "completed", "failed")
EMBEDDINGS = "context_embeddings"
LOG = "context_indexing_log"


def missing_sql(*, null_check: bool = True) -> str:
    """`missing` (module docstring) as SQL over `src LEFT JOIN context_embeddings ce`:
    no embedding row, or (`null_check`: the table has an `embedding` column) a NULL one."""
    return (
        "(ce.entity_id IS NULL OR ce.embedding IS NULL)" if null_check else "ce.entity_id IS NULL"
    )


def stale_sql(changed: str, embedded: str = "ce.updated_at", *, null_check: bool = True) -> str:
    """`stale` (module docstring) as SQL over `src LEFT JOIN context_embeddings ce`: an
    embedding row (with a non-NULL embedding when `null_check`) dated `embedded` before
    the entity's last change `changed` (SQL)."""
    vector = " AND ce.embedding IS NOT NULL" if null_check else ""
    return f"(ce.entity_id IS NOT NULL{vector} AND {embedded} < {changed})"


@dataclass(frozen=True)
class Source:
    """The table an entity type is indexed from, over alias `src`: its name column (None:
    the id is the name) and the columns of its last change (COALESCE, in this order)."""

    table: str
    name: str | None
    changed: tuple[str, ...]

    def changed_sql(self, columns: tuple[str, ...] | None = None) -> str:
        """The last change as SQL: `columns` (default: all of `changed`), the first non-NULL."""
        cols = [f"src.{c}" for c in (self.changed if columns is None else columns)]
        return cols[0] if len(cols) == 1 else f"COALESCE({', '.join(cols)})"


SOURCES: dict[str, Source] = {
    "project": Source("projects", "name", ("updated_at",)),
    "workflow": Source("workflows", "name", ("updated_at",)),
    "execution": Source("workflow_executions", None, ("completed_at", "created_at")),
    "agent": Source("agents", "name", ("updated_at",)),
}


def _or_null(insp: Inspector, table: str, column: str, sql: str, figure: str, part: str) -> str:
    """`sql` when `table` has `column`; else NULL, and a note that `part` of `figure` is
    not computed."""
    if not drift.missing(insp, table, column):
        return sql
    drift.note(insp, f"{figure}: {part} not computed: no column {table}.{column}")
    return "NULL"


def by_entity_type(insp: Inspector) -> pd.DataFrame:
    """The runbook's weekly "Verify Indexing" query: per entity_type, count and
    last_indexed (MAX(created_at)); plus last_updated. Columns: entity_type, count,
    last_indexed, last_updated. Needs context_embeddings.entity_type."""
    what = "embeddings per entity type"
    drift.require(insp, what, EMBEDDINGS, "entity_type")
    indexed = _or_null(insp, EMBEDDINGS, "created_at", "MAX(created_at)", what, "last_indexed")
    updated = _or_null(insp, EMBEDDINGS, "updated_at", "MAX(updated_at)", what, "last_updated")
    df = insp.frame(
        f"""
        SELECT entity_type,
               COUNT(*) AS count,
               {indexed} AS last_indexed,
               {updated} AS last_updated
        FROM context_embeddings
        GROUP BY entity_type
        ORDER BY entity_type
        """
    )
    df["count"] = df["count"].astype("int64")
    for col in ("last_indexed", "last_updated"):
        df[col] = instants(df[col])
    return df


def log_by_status(insp: Inspector) -> pd.DataFrame:
    """The indexing log per status (every status, zero included): status, count,
    tokens_used (None without that column), latest (most recent created_at).
    Needs context_indexing_log.status."""
    what = "indexing log"
    drift.require(insp, what, LOG, "status")
    tokens = _or_null(
        insp, LOG, "tokens_used", "COALESCE(SUM(l.tokens_used), 0)::bigint", what, "tokens_used"
    )
    latest = _or_null(insp, LOG, "created_at", "MAX(l.created_at)", what, "latest")
    df = insp.frame(
        f"""
        SELECT s.status,
               COUNT(l.status) AS count,
               {tokens} AS tokens_used,
               {latest} AS latest
        FROM unnest(CAST(:statuses AS text[])) AS s(status)
        LEFT JOIN context_indexing_log l ON l.status = s.status
        GROUP BY s.status
        UNION ALL
        SELECT l.status, COUNT(*), {tokens}, {latest}
        FROM context_indexing_log l
        WHERE NOT (l.status = ANY(CAST(:statuses AS text[])))
        GROUP BY l.status
        """,
        {"statuses": list(LOG_STATUSES)},
    )
    df["count"] = df["count"].astype("int64")
    df["tokens_used"] = df["tokens_used"].astype("Int64")
    df["latest"] = instants(df["latest"])  # an empty log: every latest NULL, still `TS`
    order = {s: i for i, s in enumerate(LOG_STATUSES)}
    df = df.sort_values("status", key=lambda s: s.map(lambda v: order.get(v, 99)))
    return df.reset_index(drop=True)


def log_summary(insp: Inspector) -> dict[str, int | None]:
    """{pending, processing, completed, failed, total, tokens_used} from the indexing log
    (tokens_used None when the log has no tokens_used column)."""
    df = log_by_status(insp)
    out: dict[str, int | None] = {status: 0 for status in LOG_STATUSES}
    for row in df.itertuples(index=False):
        out[str(row.status)] = int(row.count)
    out["total"] = int(df["count"].sum())
    tokens = df["tokens_used"]
    out["tokens_used"] = None if len(tokens) and tokens.isna().all() else int(tokens.sum())
    return out


def latest_failures(insp: Inspector, n: int = 10) -> pd.DataFrame:
    """The runbook's troubleshooting query, newest first: entity_type, entity_id,
    error_message, tokens_used, created_at, completed_at. Needs context_indexing_log.status;
    a column the log lacks is None (and said)."""
    n = count_param(n, "n")
    what = "latest indexing failures"
    drift.require(insp, what, LOG, "status")
    select = ",\n               ".join(
        f"{_or_null(insp, LOG, column, expr, what, column)} AS {column}"
        for column, expr in (
            ("entity_type", "entity_type"),
            ("entity_id", "entity_id::text"),
            ("error_message", "error_message"),
            ("tokens_used", "tokens_used"),
            ("created_at", "created_at"),
            ("completed_at", "completed_at"),
        )
    )
    newest = "created_at DESC NULLS LAST" if not drift.missing(insp, LOG, "created_at") else "1"
    df = insp.frame(
        f"""
        SELECT {select}
        FROM context_indexing_log
        WHERE status = 'failed'
        ORDER BY {newest}
        LIMIT :n
        """,
        {"n": n},
    )
    for col in ("created_at", "completed_at"):
        df[col] = instants(df[col])  # none completed yet (all NULL): still `TS`
    for col in ("entity_type", "entity_id", "error_message"):
        df[col] = df[col].astype("str")  # all NULL (or a column the log lacks): still text
    df["tokens_used"] = df["tokens_used"].astype("Int64")  # a NULL keeps the others integers
    return df


def _sources(insp: Inspector, what: str) -> dict[str, Source]:
    """The source tables present (with an id); a missing one is noted, not an error."""
    out = {}
    for entity_type, src in SOURCES.items():
        why = drift.reason(insp, src.table, "id")
        if why is None:
            out[entity_type] = src
        else:
            drift.note(insp, f"{what}: {entity_type} not checked: {why}")
    return out


def coverage(insp: Inspector) -> pd.DataFrame:
    """Per entity type: entities in its source table, embedded (with a non-NULL
    embedding), missing and stale (as the module docstring defines them, the counts of
    `reindex.reindex_list`: entities = embedded + missing), null_embeddings (rows stored
    with a NULL embedding; for a type with a source table, part of its missing).

    Columns: entity_type, source_table (None for types without a table here, e.g. post),
    entities, embedded, missing, stale, null_embeddings. Needs context_embeddings
    (entity_type, entity_id); a source table it lacks leaves that type with what is
    stored only (embedded: its rows with a non-NULL embedding; missing and stale None),
    a missing `updated_at` leaves `stale` None (an execution without `completed_at` is
    dated by `created_at`), a missing `embedding` leaves `null_embeddings` None and
    counts only absent rows as missing - each said on the inspector.
    """
    what = "embeddings coverage"
    drift.require(insp, what, EMBEDDINGS, "entity_type", "entity_id")
    ce_updated = _or_null(insp, EMBEDDINGS, "updated_at", "ce.updated_at", what, "'stale'")
    null_check = not drift.missing(insp, EMBEDDINGS, "embedding")
    embedded = "NOT " + missing_sql(null_check=null_check)
    parts = []
    for entity_type, src in _sources(insp, what).items():
        stale = "NULL::bigint"
        if ce_updated != "NULL":
            gone = drift.missing(insp, src.table, *src.changed)
            present = tuple(c for c in src.changed if c not in gone)
            columns = ", ".join(f"{src.table}.{c}" for c in gone)
            if not present:
                drift.note(
                    insp, f"{what}: 'stale' of {entity_type} not computed: no column {columns}"
                )
            else:
                if gone:  # as reindex_list dates it: by the columns there are
                    by = ", ".join(f"{src.table}.{c}" for c in present)
                    drift.note(
                        insp,
                        f"{what}: 'stale' of {entity_type} dated by {by} only: no column {columns}",
                    )
                changed = src.changed_sql(present)
                stale = f"COUNT(*) FILTER (WHERE {stale_sql(changed, null_check=null_check)})"
        parts.append(
            f"""
            SELECT '{entity_type}'::text AS entity_type, '{src.table}'::text AS source_table,
                   COUNT(*) AS entities,
                   COUNT(*) FILTER (WHERE {embedded}) AS embedded,
                   COUNT(*) FILTER (WHERE {missing_sql(null_check=null_check)}) AS missing,
                   {stale} AS stale
            FROM {src.table} src
            LEFT JOIN context_embeddings ce
                   ON ce.entity_type = '{entity_type}' AND ce.entity_id = src.id
            """
        )
    columns = ["entity_type", "source_table", "entities", "embedded", "missing", "stale"]
    frames = [insp.frame(p) for p in parts]
    sources = (
        pd.concat([f.astype(object) for f in frames], ignore_index=True)
        if frames
        else pd.DataFrame(columns=columns)
    )
    nulls = _or_null(
        insp,
        EMBEDDINGS,
        "embedding",
        "COUNT(*) FILTER (WHERE embedding IS NULL)",
        what,
        "'null_embeddings'",
    )
    stored = insp.frame(
        f"""
        SELECT entity_type, COUNT(*) AS stored, {nulls} AS null_embeddings
        FROM context_embeddings GROUP BY entity_type
        """
    )
    df = sources.merge(stored, on="entity_type", how="outer")
    for col in ("entities", "embedded", "missing", "stale"):
        df[col] = pd.array([None if pd.isna(v) else int(v) for v in df[col]], dtype="Int64")
    if nulls == "NULL":
        df["null_embeddings"] = pd.array([None] * len(df), dtype="Int64")
    else:
        df["null_embeddings"] = df["null_embeddings"].fillna(0).astype("int64")
    # types with no source table here (post, keyword): only what is stored is known, and
    # embedded counts the rows with a vector, as it does for the others
    no_source = df["source_table"].isna()
    with_vector = df["stored"].fillna(0).astype("int64")
    if nulls != "NULL":
        with_vector = with_vector - df["null_embeddings"]
    df.loc[no_source, "embedded"] = with_vector[no_source]
    df = df.drop(columns=["stored"])
    df["source_table"] = df["source_table"].astype(object).where(df["source_table"].notna(), None)
    return df.sort_values("entity_type").reset_index(drop=True)


def missing_entities(insp: Inspector, n: int = 20) -> pd.DataFrame:
    """Up to n source entities per type with no embedding row (what to re-index): entity_type,
    entity_id, name, changed_at (most recently changed first; None where the source
    table lacks the column). Rows whose embedding is NULL, also `missing` (module
    docstring), are not listed here: `reindex.reindex_list` lists every missing one."""
    n = count_param(n, "n")
    what = "entities without embedding"
    drift.require(insp, what, EMBEDDINGS, "entity_type", "entity_id")
    parts = []
    for entity_type, src in _sources(insp, what).items():
        name = "src.id::text"
        if src.name is not None:
            name = _or_null(
                insp, src.table, src.name, f"src.{src.name}", what, f"name of {entity_type}"
            )
        changed = src.changed_sql()
        gone = drift.missing(insp, src.table, *src.changed)
        if gone:
            columns = ", ".join(f"{src.table}.{c}" for c in gone)
            drift.note(insp, f"{what}: changed_at of {entity_type} not known: no column {columns}")
            changed = "NULL"
        parts.append(
            f"""
            (SELECT '{entity_type}'::text AS entity_type, src.id::text AS entity_id,
                    ({name})::text AS name, ({changed})::timestamptz AS changed_at
             FROM {src.table} src
             WHERE NOT EXISTS (SELECT 1 FROM context_embeddings ce
                               WHERE ce.entity_type = '{entity_type}' AND ce.entity_id = src.id)
             ORDER BY changed_at DESC NULLS LAST
             LIMIT :n)
            """
        )
    if not parts:
        return pd.DataFrame(
            {"entity_type": [], "entity_id": [], "name": [], "changed_at": []}, dtype="str"
        ).astype({"changed_at": TS})
    df = insp.frame(" UNION ALL ".join(parts), {"n": n})
    df["name"] = df["name"].astype("str")  # a type without a name column: NULL, still text
    df["changed_at"] = instants(df["changed_at"])
    return df
