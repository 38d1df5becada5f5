"""Embeddings indexing: the runbook's weekly check, the indexing log, and coverage (source
entities with no embedding, embeddings older than their entity, null embeddings).

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
from .connect import Inspector, count_param

__all__ = [
    "LOG_STATUSES",
    "SOURCES",
    "Source",
    "by_entity_type",
    "coverage",
    "latest_failures",
    "log_by_status",
    "log_summary",
    "missing_entities",
]

LOG_STATUSES = ("pending", "processing", "completed", "failed")
EMBEDDINGS = "context_embeddings"
LOG = "context_indexing_log"


@dataclass(frozen=True)
class Source:
    """The table an entity type is indexed from, over alias `src`: its name column (None:
    the id is the name) and the columns of its last change (COALESCE, in this order)."""

    table: str
    name: str | None
    changed: tuple[str, ...]

    def changed_sql(self) -> str:
        cols = [f"src.{c}" for c in self.changed]
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
        df[col] = pd.to_datetime(df[col], utc=True)
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
    df["latest"] = pd.to_datetime(df["latest"], utc=True)
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
        df[col] = pd.to_datetime(df[col], utc=True)
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
    """Per entity type: entities in its source table, embedded, missing (no embedding),
    stale (embedding older than the entity's last change), null_embeddings.

    Columns: entity_type, source_table (None for types without a table here, e.g. post),
    entities, embedded, missing, stale, null_embeddings. Needs context_embeddings
    (entity_type, entity_id); a source table it lacks leaves that type with what is
    stored only, a missing `updated_at` leaves `stale` None, a missing `embedding`
    leaves `null_embeddings` None - each said on the inspector.
    """
    what = "embeddings coverage"
    drift.require(insp, what, EMBEDDINGS, "entity_type", "entity_id")
    ce_updated = _or_null(insp, EMBEDDINGS, "updated_at", "ce.updated_at", what, "'stale'")
    parts = []
    for entity_type, src in _sources(insp, what).items():
        stale = "NULL::bigint"
        if ce_updated != "NULL":
            gone = drift.missing(insp, src.table, *src.changed)
            if gone:
                columns = ", ".join(f"{src.table}.{c}" for c in gone)
                drift.note(
                    insp, f"{what}: 'stale' of {entity_type} not computed: no column {columns}"
                )
            else:
                stale = f"COUNT(*) FILTER (WHERE ce.updated_at < {src.changed_sql()})"
        parts.append(
            f"""
            SELECT '{entity_type}'::text AS entity_type, '{src.table}'::text AS source_table,
                   COUNT(*) AS entities,
                   COUNT(ce.entity_id) AS embedded,
                   COUNT(*) FILTER (WHERE ce.entity_id IS NULL) AS missing,
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
    # types with no source table here (post, keyword): only what is stored is known
    no_source = df["source_table"].isna()
    df.loc[no_source, "embedded"] = df.loc[no_source, "stored"]
    if nulls == "NULL":
        df["null_embeddings"] = pd.array([None] * len(df), dtype="Int64")
    else:
        df["null_embeddings"] = df["null_embeddings"].fillna(0).astype("int64")
    df = df.drop(columns=["stored"])
    df["source_table"] = df["source_table"].astype(object).where(df["source_table"].notna(), None)
    return df.sort_values("entity_type").reset_index(drop=True)


def missing_entities(insp: Inspector, n: int = 20) -> pd.DataFrame:
    """Up to n source entities per type with no embedding (what to re-index): entity_type,
    entity_id, name, changed_at (most recently changed first; None where the source
    table lacks the column)."""
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
        ).astype({"changed_at": "datetime64[us, UTC]"})
    df = insp.frame(" UNION ALL ".join(parts), {"n": n})
    df["changed_at"] = pd.to_datetime(df["changed_at"], utc=True)
    return df
