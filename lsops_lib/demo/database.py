"""The demo's PostgreSQL: the LongSang database in a throwaway cluster, seeded and then
grown day by day over the history window with the application's workload (what
`world.seed_database` and `world.grow_day` do), so that its statistics are real:
pg_stat_statements when preloaded, dead tuples, an unused and a redundant index.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import vectors, world


def describe(cluster: Any) -> dict[str, Any]:
    """The cluster as state.json records it (where it lives, its port)."""
    return {
        "root": str(cluster.root) if cluster.root else None,
        "data_dir": str(cluster.data_dir) if cluster.data_dir else None,
        "port": cluster.port,
        "backend": cluster.backend,
    }


def create_longsang(cluster: Any) -> tuple[str, bool]:
    """Create the LongSang database with its schema in a started cluster (with
    pg_stat_statements when the cluster has it): (its URL, whether `embedding` is a real
    vector)."""
    from ..db.schema import load_longsang_schema

    url = cluster.create_database(world.DATABASE)
    vector = load_longsang_schema(url)
    with cluster.connect(world.DATABASE) as conn:
        if cluster.has_pg_stat_statements:
            conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA extensions")
    return url, vector


def grow(
    cluster: Any,
    p: world.Plan,
    *,
    vector: bool,
    snapshot: Callable[[datetime], None] | None = None,
) -> dict[str, Any]:
    """Seed the database, then one day of workload per day of the window, calling
    `snapshot(taken)` at each virtual day's end (5 minutes before midnight). Returns
    days, rows, bytes, pgss (pg_stat_statements) and vector."""
    rng = random.Random(p.seed)
    days = deleted = 0
    with cluster.connect(world.DATABASE) as conn:
        # the set-up is not the application's workload: not in pg_stat_statements
        untracked = "SET pg_stat_statements.track = 'none'"
        if cluster.has_pg_stat_statements:
            conn.execute(untracked)
        world.seed_database(conn, p, vector=vector)
        if cluster.has_pg_stat_statements:
            conn.execute("RESET pg_stat_statements.track")
        day = p.start
        while day < p.end:
            deleted += world.grow_day(conn, p, day, rng, vector=vector)
            if snapshot is not None:
                snapshot(day + timedelta(days=1) - timedelta(minutes=5))
            day += timedelta(days=1)
            days += 1
        if cluster.has_pg_stat_statements:
            conn.execute(untracked)
        vectors.structure_embeddings(conn, p, vector=vector)  # issue 15: topics, a low HNSW
        conn.execute("ANALYZE")
        from ..db.schema import LONGSANG_TABLES

        counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in LONGSANG_TABLES)
        rows = conn.execute(
            f"SELECT {counts}, pg_database_size(current_database())"  # noqa: S608 - our names
        ).fetchone()
    wait_statistics(cluster, deleted)
    return {
        "days": days,
        "rows": int(rows[0] or 0) if rows else 0,
        "bytes": int(rows[1] or 0) if rows else 0,
        "pgss": cluster.has_pg_stat_statements,
        "vector": vector,
    }


def wait_statistics(
    cluster: Any, deleted: int, timeout_s: float = 10.0, dbname: str = world.DATABASE
) -> None:
    """Statistics reach shared memory when a backend ends: wait until the `deleted` rows of
    the dead-tuples table show (its n_tup_del: n_dead_tup shrinks when a later read prunes a
    page). A 3-day demo deletes 400, fewer than the fixed 1,000 waited for before: every
    such demo slept the whole timeout."""
    if deleted <= 0:
        return
    deadline = time.monotonic() + timeout_s
    with cluster.connect(dbname) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = %s",
                (world.DEAD_TUPLES_TABLE,),
            ).fetchone()
            if row and (row[0] or 0) >= deleted:
                return
            time.sleep(0.1)
