"""Embeddings indexing: the runbook's weekly check, the indexing log, and coverage (source
entities with no embedding, embeddings older than their entity, null embeddings)."""

from __future__ import annotations

import pandas as pd

from ..exceptions import DatabaseError
from .connect import Inspector

__all__ = [
    "LOG_STATUSES",
    "SOURCES",
    "by_entity_type",
    "coverage",
    "latest_failures",
    "log_by_status",
    "log_summary",
    "missing_entities",
]

LOG_STATUSES = ("pending", "processing", "completed", "failed")

# entity_type -> (source table, name expression, "changed at" expression), over alias src
SOURCES: dict[str, tuple[str, str, str]] = {
    "project": ("projects", "src.name", "src.updated_at"),
    "workflow": ("workflows", "src.name", "src.updated_at"),
    "execution": (
        "workflow_executions",
        "src.id::text",
        "COALESCE(src.completed_at, src.created_at)",
    ),
    "agent": ("agents", "src.name", "src.updated_at"),
}


def _require(insp: Inspector, table: str) -> None:
    if not insp.has_table(table):
        raise DatabaseError(f"{insp.url} has no table {table}: not a LongSang database?")


def by_entity_type(insp: Inspector) -> pd.DataFrame:
    """The runbook's weekly "Verify Indexing" query: per entity_type, count and
    last_indexed (MAX(created_at)); plus last_updated. Columns: entity_type, count,
    last_indexed, last_updated."""
    _require(insp, "context_embeddings")
    df = insp.frame(
        """
        SELECT entity_type,
               COUNT(*) AS count,
               MAX(created_at) AS last_indexed,
               MAX(updated_at) AS last_updated
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
    tokens_used, latest (most recent created_at)."""
    _require(insp, "context_indexing_log")
    df = insp.frame(
        """
        SELECT s.status,
               COUNT(l.id) AS count,
               COALESCE(SUM(l.tokens_used), 0)::bigint AS tokens_used,
               MAX(l.created_at) AS latest
        FROM unnest(CAST(:statuses AS text[])) AS s(status)
        LEFT JOIN context_indexing_log l ON l.status = s.status
        GROUP BY s.status
        UNION ALL
        SELECT l.status, COUNT(*), COALESCE(SUM(l.tokens_used), 0)::bigint, MAX(l.created_at)
        FROM context_indexing_log l
        WHERE NOT (l.status = ANY(CAST(:statuses AS text[])))
        GROUP BY l.status
        """,
        {"statuses": list(LOG_STATUSES)},
    )
    df["count"] = df["count"].astype("int64")
    df["tokens_used"] = df["tokens_used"].astype("int64")
    df["latest"] = pd.to_datetime(df["latest"], utc=True)
    order = {s: i for i, s in enumerate(LOG_STATUSES)}
    df = df.sort_values("status", key=lambda s: s.map(lambda v: order.get(v, 99)))
    return df.reset_index(drop=True)


def log_summary(insp: Inspector) -> dict[str, int]:
    """{pending, processing, completed, failed, total, tokens_used} from the indexing log."""
    df = log_by_status(insp)
    out = {status: 0 for status in LOG_STATUSES}
    for row in df.itertuples(index=False):
        out[str(row.status)] = int(row.count)
    out["total"] = int(df["count"].sum())
    out["tokens_used"] = int(df["tokens_used"].sum())
    return out


def latest_failures(insp: Inspector, n: int = 10) -> pd.DataFrame:
    """The runbook's troubleshooting query, newest first: entity_type, entity_id,
    error_message, tokens_used, created_at, completed_at."""
    _require(insp, "context_indexing_log")
    df = insp.frame(
        """
        SELECT entity_type, entity_id::text AS entity_id, error_message, tokens_used,
               created_at, completed_at
        FROM context_indexing_log
        WHERE status = 'failed'
        ORDER BY created_at DESC
        LIMIT :n
        """,
        {"n": int(n)},
    )
    for col in ("created_at", "completed_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def _sources(insp: Inspector) -> dict[str, tuple[str, str, str]]:
    return {k: v for k, v in SOURCES.items() if insp.has_table(v[0])}


def coverage(insp: Inspector) -> pd.DataFrame:
    """Per entity type: entities in its source table, embedded, missing (no embedding),
    stale (embedding older than the entity's last change), null_embeddings.

    Columns: entity_type, source_table (None for types without a table here, e.g. post),
    entities, embedded, missing, stale, null_embeddings.
    """
    _require(insp, "context_embeddings")
    parts = []
    for entity_type, (table, _name, changed) in _sources(insp).items():
        parts.append(
            f"""
            SELECT '{entity_type}'::text AS entity_type, '{table}'::text AS source_table,
                   COUNT(*) AS entities,
                   COUNT(ce.id) AS embedded,
                   COUNT(*) FILTER (WHERE ce.id IS NULL) AS missing,
                   COUNT(*) FILTER (WHERE ce.updated_at < {changed}) AS stale
            FROM {table} src
            LEFT JOIN context_embeddings ce
                   ON ce.entity_type = '{entity_type}' AND ce.entity_id = src.id
            """
        )
    sources = (
        pd.concat([insp.frame(p) for p in parts], ignore_index=True)
        if parts
        else pd.DataFrame(
            columns=["entity_type", "source_table", "entities", "embedded", "missing", "stale"]
        )
    )
    stored = insp.frame(
        """
        SELECT entity_type, COUNT(*) AS stored,
               COUNT(*) FILTER (WHERE embedding IS NULL) AS null_embeddings
        FROM context_embeddings GROUP BY entity_type
        """
    )
    df = sources.merge(stored, on="entity_type", how="outer")
    for col in ("entities", "embedded", "missing", "stale"):
        df[col] = df[col].astype("Int64")
    # types with no source table here (post, keyword): only what is stored is known
    no_source = df["source_table"].isna()
    df.loc[no_source, "embedded"] = df.loc[no_source, "stored"]
    df["null_embeddings"] = df["null_embeddings"].fillna(0).astype("int64")
    df = df.drop(columns=["stored"])
    df["source_table"] = df["source_table"].astype(object).where(df["source_table"].notna(), None)
    return df.sort_values("entity_type").reset_index(drop=True)


def missing_entities(insp: Inspector, n: int = 20) -> pd.DataFrame:
    """Up to n source entities per type with no embedding (what to re-index): entity_type,
    entity_id, name, changed_at."""
    _require(insp, "context_embeddings")
    parts = []
    for entity_type, (table, name, changed) in _sources(insp).items():
        parts.append(
            f"""
            (SELECT '{entity_type}'::text AS entity_type, src.id::text AS entity_id,
                    {name} AS name, {changed} AS changed_at
             FROM {table} src
             WHERE NOT EXISTS (SELECT 1 FROM context_embeddings ce
                               WHERE ce.entity_type = '{entity_type}' AND ce.entity_id = src.id)
             ORDER BY changed_at DESC
             LIMIT :n)
            """
        )
    if not parts:
        return pd.DataFrame(columns=["entity_type", "entity_id", "name", "changed_at"])
    df = insp.frame(" UNION ALL ".join(parts), {"n": int(n)})
    df["changed_at"] = pd.to_datetime(df["changed_at"], utc=True)
    return df
