"""Inspection does not disturb what it measures: lsops's own queries never count as index
use. A day of lsops's checks (every db command, index-stats, the optimization report,
several times over) leaves every index's `idx_scan` - read independently from
pg_stat_user_indexes - and so the unused-index list exactly as they were. The control:
the same checks with the planner settings of `connect.OWN_SCAN_SETTINGS` taken away DO
scan indexes (the shrinking unused-index list of issue 13)."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import indexes

pytestmark = pytest.mark.postgres

SESSIONS = importlib.import_module("lsops_lib.db.connect")  # `db.connect` is the function

SEED = """
INSERT INTO projects (id, name, slug)
    SELECT gen_random_uuid(), 'project ' || g, 'p' || g FROM generate_series(1, 3000) g;
INSERT INTO context_embeddings (entity_type, entity_id, entity_name)
    SELECT 'project', id, name FROM projects ORDER BY slug LIMIT 2700;
INSERT INTO context_indexing_log (entity_type, entity_id, status, tokens_used, created_at)
    SELECT 'project', gen_random_uuid(),
           CASE WHEN g % 4000 = 0 THEN 'failed' ELSE 'completed' END, 100,
           now() - make_interval(mins => g)
    FROM generate_series(1, 20000) g;
"""
CHECKS = [
    ["index-stats", "--json"],
    ["db", "indexes", "--json"],
    ["db", "maintenance", "--json"],
    ["db", "queries", "--json"],
    ["db", "size", "--json"],
]


def _plain(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
def busy_db(pg_url: str) -> Iterator[str]:
    """The LongSang schema with tables big enough for the planner to prefer an index."""
    db.load_longsang_schema(pg_url)
    with psycopg.connect(_plain(pg_url), autocommit=True) as conn:
        conn.execute(SEED)  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE")
    yield pg_url


def _index_scans(url: str) -> dict[str, int]:
    """Every index's idx_scan, once no lsops session is left (a backend hands its counts
    over when it ends)."""
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            (left,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'lsops' AND datname = current_database()"
            ).fetchone()
            if left == 0:
                break
            time.sleep(0.1)
        rows = conn.execute(
            "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes ORDER BY 1"
        ).fetchall()
    return {str(name): int(scans) for name, scans in rows}


def _unused(url: str) -> set[str]:
    with db.connect(url) as insp:
        return set(indexes.unused_indexes(insp)["index"])


def _a_round_of_checks(url: str) -> None:
    runner = CliRunner()
    for args in CHECKS:
        result = runner.invoke(main, args, env={"LSOPS_DATABASE_URL": url})
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
    report = db.optimization_report(url=url, store=None)
    assert report.reachable and all(s.ok for s in report.sections.values())


def test_a_day_of_checks_leaves_index_usage_and_the_unused_list_as_they_were(
    busy_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans_before = _index_scans(busy_db)
    unused_before = _unused(busy_db)
    assert "idx_context_indexing_log_status" in unused_before
    for _ in range(3):
        _a_round_of_checks(busy_db)
    assert _index_scans(busy_db) == scans_before
    assert _unused(busy_db) == unused_before

    # the control: without those planner settings the same checks scan indexes
    monkeypatch.setattr(SESSIONS, "OWN_SCAN_SETTINGS", ())
    _a_round_of_checks(busy_db)
    scans_after: dict[str, Any] = _index_scans(busy_db)
    assert sum(scans_after.values()) > sum(scans_before.values())
    monkeypatch.undo()
    assert _unused(busy_db) < unused_before  # the list shrank: what issue 13 saw
