"""The demo's embeddings with structure (issue 15), where its PostgreSQL has pgvector (the
`pgserver` one; Debian's PostgreSQL usually has not, and the DB optimization report's
"Retrieval quality" section then says that pgvector is missing).

`world` fills `context_embeddings` with random vectors, in which no neighbour means
anything. `structure_embeddings`, run once the month is grown, gives every embedding a
direction near its project's topic (an execution: its workflow's project), each with its
own spread, unit length as OpenAI's; plants what `lsops db vectors` must find (duplicate
groups: one embedding stored for several entities; zero vectors); and rebuilds the HNSW
index with parameters low enough (`HNSW_OPTIONS`) that recall@10 at the default
`hnsw.ef_search` (40) is visibly below 0.95 and improves with a larger one.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

__all__ = ["DUPLICATE_GROUPS", "HNSW_OPTIONS", "ZERO_VECTORS", "structure_embeddings"]

DIMS = 1536
SPREAD = (0.6, 1.0)  # noise around a topic: tight to loose entities
HNSW_OPTIONS = "m = 5, ef_construction = 10"  # recall@10 about 0.9 at ef_search 40
DUPLICATE_GROUPS = (3, 2)  # planted: two embeddings each stored for several entities
ZERO_VECTORS = 3  # planted: embeddings with no direction (a failed call stored as zeros)
INDEX = "idx_context_embeddings_embedding"

_FLUSH_STATISTICS = """
DO $$ BEGIN
  IF to_regproc('pg_stat_force_next_flush') IS NOT NULL THEN  -- PostgreSQL 15+
    PERFORM pg_stat_force_next_flush();
  END IF;
END $$
"""
_ROWS = """
SELECT ce.id::text, COALESCE(ce.project_id, w.project_id)::text
FROM context_embeddings ce
LEFT JOIN workflow_executions we ON ce.entity_type = 'execution' AND we.id = ce.entity_id
LEFT JOIN workflows w ON w.id = we.workflow_id
WHERE ce.embedding IS NOT NULL
ORDER BY ce.id
"""


def _vectors(rng: np.random.Generator, projects: list[str | None]) -> np.ndarray:
    """Unit vectors around one topic per project (rows without a project: a random one)."""
    names = sorted({p for p in projects if p})
    topics = max(1, len(names))
    centres = rng.normal(size=(topics, DIMS))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    where = {name: i for i, name in enumerate(names)}
    topic = np.array([where.get(p, -1) if p else -1 for p in projects])
    loose = topic < 0
    topic[loose] = rng.integers(0, topics, int(loose.sum()))
    spread = rng.uniform(*SPREAD, len(projects))[:, None]
    x = centres[topic] + spread * rng.normal(size=(len(projects), DIMS)) / np.sqrt(DIMS)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _plant(rng: np.random.Generator, x: np.ndarray) -> dict[str, int]:
    """Duplicate groups and zero vectors, at rows chosen by `rng` (none shared)."""
    need = sum(DUPLICATE_GROUPS) + ZERO_VECTORS
    if len(x) < need + 1:
        return {"duplicate_groups": 0, "zero_vectors": 0}
    rows = rng.choice(len(x), need, replace=False)
    at = 0
    for size in DUPLICATE_GROUPS:
        group = rows[at : at + size]
        x[group[1:]] = x[group[0]]
        at += size
    x[rows[at:]] = 0.0
    return {"duplicate_groups": len(DUPLICATE_GROUPS), "zero_vectors": ZERO_VECTORS}


def _binary_copy(ids: list[str], x: np.ndarray) -> bytes:
    """(id uuid, embedding vector) rows in COPY's binary format (pgvector's binary form:
    int16 dimensions, int16 unused, float4s; all big-endian)."""
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", "V16"),
            ("vec_len", ">i4"),
            ("dims", ">i2"),
            ("unused", ">i2"),
            ("values", ">f4", (x.shape[1],)),
        ]
    )
    out = np.zeros(len(ids), dtype=row)
    out["fields"] = 2
    out["id_len"] = 16
    out["id"] = [uuid.UUID(i).bytes for i in ids]
    out["vec_len"] = 4 + 4 * x.shape[1]
    out["dims"] = x.shape[1]
    out["values"] = x
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    return header + out.tobytes() + (-1).to_bytes(2, "big", signed=True)


def structure_embeddings(conn: Any, p: Any, *, vector: bool) -> dict[str, Any]:
    """Give the demo's embeddings structure, plant duplicates and zero vectors, and rebuild
    the HNSW index low (see the module). `conn`: psycopg, autocommit; `p`: the world's
    plan (its seed). Without pgvector (`vector` False) nothing changes. Returns what was
    done: rows, duplicate_groups, zero_vectors, index options."""
    if not vector:
        return {"vector": False}
    found = conn.execute(_ROWS).fetchall()
    if not found:
        return {"vector": True, "rows": 0}
    rng = np.random.default_rng(int(getattr(p, "seed", 0)) + 15)
    ids = [str(r[0]) for r in found]
    x = _vectors(rng, [r[1] for r in found])
    planted = _plant(rng, x)
    conn.execute(f"DROP INDEX IF EXISTS {INDEX}")  # rebuilt below, once, with low options
    conn.execute("CREATE TEMP TABLE lsops_demo_vectors (id uuid PRIMARY KEY, embedding vector)")
    with (
        conn.cursor() as cur,
        cur.copy("COPY lsops_demo_vectors (id, embedding) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(_binary_copy(ids, x))
    conn.execute(
        "UPDATE context_embeddings ce SET embedding = v.embedding "
        "FROM lsops_demo_vectors v WHERE ce.id = v.id"
    )
    conn.execute("DROP TABLE lsops_demo_vectors")
    conn.execute(
        f"CREATE INDEX {INDEX} ON context_embeddings "
        f"USING hnsw (embedding vector_cosine_ops) WITH ({HNSW_OPTIONS})"
    )
    # the update leaves no dead tuples behind (the report's planted ones are elsewhere): its
    # pending statistics first, else they would land after the VACUUM's count of zero
    conn.execute(_FLUSH_STATISTICS)
    conn.execute("VACUUM (ANALYZE) context_embeddings")
    return {"vector": True, "rows": len(ids), **planted, "index": HNSW_OPTIONS}
