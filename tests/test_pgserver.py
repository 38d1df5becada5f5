"""The `pgserver` fallback (PostgreSQL 16 with pgvector): a cluster starts, the LongSang
schema gets its real `vector(1536)` column with the HNSW index, and the inspection reports
that vector index with its build options."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lsops_lib import db
from lsops_lib.pgtemp import PostgresCluster, PostgresUnavailable

pytest.importorskip("pgserver", reason="the pgserver wheel is not installed")
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pgserver_cluster():
    mp = pytest.MonkeyPatch()
    mp.setenv("LSOPS_PG_BACKEND", "pgserver")
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailable as exc:  # pragma: no cover - depends on the machine
        mp.undo()
        pytest.skip(f"pgserver could not start here: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()
        mp.undo()


def test_pgserver_cluster_has_pgvector_and_the_hnsw_index_is_inspected(pgserver_cluster) -> None:
    assert pgserver_cluster.backend == "pgserver"
    url = pgserver_cluster.create_database("longsang_vec")
    assert db.load_longsang_schema(url) is True  # a real vector(1536), with its HNSW index
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        kind = conn.execute(
            sa.text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'context_embeddings'::regclass AND attname = 'embedding'"
            )
        ).scalar()
    engine.dispose()
    assert kind == "vector(1536)"
    insp = db.connect(url)
    try:
        vec = db.indexes.vector_indexes(insp)
    finally:
        insp.close()
    assert list(vec["table"]) == ["context_embeddings"]
    row = vec.iloc[0]
    assert row["method"] == "hnsw" and bool(row["is_valid"])
    assert row["options"] == "m=16, ef_construction=64"


def test_cluster_is_gone_after_stop() -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("LSOPS_PG_BACKEND", "pgserver")
    try:
        cluster = PostgresCluster()
        cluster.start()
        root = cluster.root
        cluster.stop()
    finally:
        mp.undo()
    assert root is not None and not root.exists()
