"""The LongSang schema (`lsops_lib/sql/longsang_schema.sql`) for tests and the demo.

Loading WRITES, so it does not go through the read-only Inspector.
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa

from ..config import redact_url
from ..exceptions import DatabaseError
from .connect import psycopg_url

__all__ = ["LONGSANG_TABLES", "load_longsang_schema", "schema_sql"]

LONGSANG_TABLES = (
    "projects",
    "workflows",
    "workflow_executions",
    "agents",
    "context_embeddings",
    "context_indexing_log",
    "documents",
    "conversations",
    "agent_executions",
    "response_cache",
    "news_digests",
)


def schema_sql() -> str:
    """The schema as plain SQL (also runnable with `psql -f`)."""
    return resources.files("lsops_lib").joinpath("sql/longsang_schema.sql").read_text("utf-8")


def load_longsang_schema(url: str) -> bool:
    """Create the eleven LongSang tables in the database at `url` (which must be empty of
    them). Returns True when `embedding` is a real pgvector `vector(1536)` with its HNSW
    index, False when it is the `real[]` stand-in."""
    engine = sa.create_engine(psycopg_url(url))
    try:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            conn.autocommit = True
            conn.execute(schema_sql())  # several statements, no parameters
            row = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'context_embeddings'::regclass AND attname = 'embedding'"
            ).fetchone()
        finally:
            raw.close()
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot load the LongSang schema into {redact_url(url)}: {exc}"
        ) from None
    except Exception as exc:  # psycopg errors from the raw connection
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot load the LongSang schema into {redact_url(url)}: {line}"
        ) from None
    finally:
        engine.dispose()
    return bool(row and str(row[0]).startswith("vector"))
