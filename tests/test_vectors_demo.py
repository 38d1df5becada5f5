"""The demo's embeddings (`demo.vectors`) on pgserver's pgvector: entities in topics (a
project's embeddings are each other's neighbours), the planted duplicates and zero
vectors found by `db.vectors`, and an HNSW index low enough that recall improves with a
larger ef_search; without pgvector nothing changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lsops_lib import db
from lsops_lib.db import vectors
from lsops_lib.demo import vectors as demo_vectors
from lsops_lib.demo import world

pytestmark = pytest.mark.postgres


def _parse(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.strip("[]").split(",")])


@pytest.fixture(scope="module")
def demo_db(pgvector_cluster: Any) -> tuple[str, dict[str, Any]]:
    name = "vectors_demo"
    url = pgvector_cluster.create_database(name)
    assert db.load_longsang_schema(url) is True
    p = world.plan(days=3)
    with pgvector_cluster.connect(name) as conn:
        world.seed_database(conn, p, vector=True)
        done = demo_vectors.structure_embeddings(conn, p, vector=True)
    return url, done


def test_the_demo_embeddings_are_in_topics(
    demo_db: tuple[str, dict], pgvector_cluster: Any
) -> None:
    _url, done = demo_db
    with pgvector_cluster.connect("vectors_demo") as conn:
        rows = conn.execute(
            "SELECT project_id::text, embedding::text FROM context_embeddings "
            "WHERE embedding IS NOT NULL AND vector_norm(embedding) > 0 AND project_id IS NOT NULL"
        ).fetchall()
        options = conn.execute(
            "SELECT array_to_string(reloptions, ', ') FROM pg_class "
            "WHERE relname = 'idx_context_embeddings_embedding'"
        ).fetchone()[0]
        dead = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'context_embeddings'"
        ).fetchone()[0]
    assert done["vector"] is True and done["rows"] > 100
    assert options == "m=5, ef_construction=10" and dead == 0
    projects = np.array([r[0] for r in rows])
    x = np.stack([_parse(r[1]) for r in rows])
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)  # unit, as OpenAI's
    sims = x @ x.T
    same = projects[:, None] == projects[None, :]
    np.fill_diagonal(same, False)
    other = projects[:, None] != projects[None, :]
    # independent, well above chance: neighbours mean something
    assert sims[same].mean() > 0.4 > 0.05 > abs(sims[other].mean())


def test_the_inspection_finds_what_the_demo_planted(demo_db: tuple[str, dict]) -> None:
    url, done = demo_db
    with db.connect(url) as insp:
        rq = vectors.retrieval_quality(insp, sample=30)
    c = rq.columns.iloc[0]
    assert c["zero_vectors"] == done["zero_vectors"] == demo_vectors.ZERO_VECTORS
    assert c["duplicate_groups"] == done["duplicate_groups"] == len(demo_vectors.DUPLICATE_GROUPS)
    assert c["duplicate_rows"] == sum(demo_vectors.DUPLICATE_GROUPS)
    assert c["nulls"] >= 1  # world's own NULL embeddings are left as they are
    curve = rq.curves[rq.curves["index"] == "idx_context_embeddings_embedding"]
    assert curve["recall_at_k"].max() >= curve["recall_at_k"].iloc[0]


def test_without_pgvector_nothing_changes() -> None:
    class NoConnection:
        def execute(self, *_a: Any, **_k: Any) -> Any:
            raise AssertionError("no statement without pgvector")

    assert demo_vectors.structure_embeddings(NoConnection(), world.plan(days=3), vector=False) == {
        "vector": False
    }


def test_the_demo_indexing_log_never_completes_before_it_starts(pgvector_cluster: Any) -> None:
    import random

    url = pgvector_cluster.create_database("indexing_log_demo")
    assert db.load_longsang_schema(url) is True
    p = world.plan(days=3)
    with pgvector_cluster.connect("indexing_log_demo") as conn:
        world.seed_database(conn, p, vector=True)
        world.grow_day(conn, p, p.start, random.Random(1), vector=True)  # its failed attempts
        rows, backwards = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE completed_at < created_at) "
            "FROM context_indexing_log"
        ).fetchone()
    assert rows > 0 and backwards == 0
