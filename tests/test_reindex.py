"""`lsops reindex-list` and `db.reindex`: against the planted LongSang database (known
answers, and counts recomputed here with independent SQL), a drifted variant (no
`updated_at` anywhere, no `agents` table: tests/fixtures/reindex.py) and an empty database."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import embeddings, reindex
from lsops_lib.exceptions import ParameterError
from lsops_lib.pgtemp import PostgresCluster
from tests.fixtures.pg import Planted
from tests.fixtures.reindex import Drift

pytestmark = pytest.mark.postgres

COMMAND = "node scripts/index-production-data.js"


def _id(group: int, n: int) -> str:
    return f"00000000-0000-0000-{group:04d}-{n:012d}"


# --- independent SQL: what each count must be, written differently from db.reindex -------------

SOURCES = {"project": "projects", "workflow": "workflows", "execution": "workflow_executions"}
SOURCES["agent"] = "agents"


def _sql(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).fetchall()
    finally:
        engine.dispose()


def _missing_ids(url: str, entity_type: str) -> set[str]:
    table = SOURCES[entity_type]
    rows = _sql(
        url,
        f"""
        SELECT id::text FROM {table}
        EXCEPT
        SELECT entity_id::text FROM context_embeddings
        WHERE entity_type = '{entity_type}' AND embedding IS NOT NULL
        """,
    )
    return {r[0] for r in rows}


def _stale_ids(url: str, entity_type: str) -> set[str]:
    table = SOURCES[entity_type]
    rows = _sql(
        url,
        f"""
        SELECT s.id::text FROM {table} s, context_embeddings e
        WHERE e.entity_type = '{entity_type}' AND e.entity_id = s.id
          AND e.embedding IS NOT NULL AND e.updated_at < s.updated_at
        """,
    )
    return {r[0] for r in rows}


def _failed_ids(url: str) -> set[tuple[str, str]]:
    rows = _sql(
        url,
        """
        SELECT entity_type, entity_id::text FROM (
            SELECT entity_type, entity_id,
                   (array_agg(status ORDER BY created_at DESC))[1] AS last_status
            FROM context_indexing_log GROUP BY entity_type, entity_id
        ) x WHERE last_status = 'failed'
        """,
    )
    return {(r[0], r[1]) for r in rows}


def _listed(listing: reindex.ReindexList, entity_type: str, reason: str) -> set[str]:
    e = listing.entities
    return set(e[(e["entity_type"] == entity_type) & (e["reason"] == reason)]["entity_id"])


def _row(listing: reindex.ReindexList, entity_type: str) -> dict[str, Any]:
    rows = listing.by_type[listing.by_type["entity_type"] == entity_type].to_dict("records")
    assert len(rows) == 1, entity_type
    return rows[0]


# --- the planted database -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(longsang_db: Planted) -> reindex.ReindexList:
    with db.connect(longsang_db.password_url) as insp:
        return reindex.reindex_list(insp)


def test_missing_and_stale_match_independent_sql(
    planted: reindex.ReindexList, longsang_db: Planted
) -> None:
    url = longsang_db.url
    for entity_type in ("project", "workflow", "execution", "agent"):
        missing = _missing_ids(url, entity_type)
        assert _listed(planted, entity_type, "missing") == missing, entity_type
        assert _row(planted, entity_type)["missing"] == len(missing)
        (entities,) = _sql(url, f"SELECT count(*) FROM {SOURCES[entity_type]}")[0]
        assert _row(planted, entity_type)["entities"] == entities
    for entity_type in ("project", "workflow", "agent"):
        stale = _stale_ids(url, entity_type)
        assert _listed(planted, entity_type, "stale") == stale, entity_type
        assert _row(planted, entity_type)["stale"] == len(stale)
        assert _row(planted, entity_type)["stale_known"] is True
    failed = _failed_ids(url)
    listed = {
        (r.entity_type, r.entity_id) for r in planted.entities.itertuples() if r.reason == "failed"
    }
    assert listed == failed and len(failed) == 2


def test_the_planted_answers(planted: reindex.ReindexList) -> None:
    # the seed: project 6 has no embedding; workflow 4 none and workflow 3 a NULL one;
    # executions 2 and 3 none; agent 2 changed after its embedding; two failed projects
    assert _listed(planted, "project", "missing") == {_id(0, 6)}
    assert _listed(planted, "workflow", "missing") == {_id(1, 3), _id(1, 4)}
    assert _listed(planted, "execution", "missing") == {_id(2, 2), _id(2, 3)}
    assert _listed(planted, "agent", "stale") == {_id(3, 2)}
    assert _listed(planted, "agent", "missing") == set()
    details = dict(zip(planted.entities["entity_id"], planted.entities["detail"], strict=True))
    assert details[_id(1, 3)] == "embedding is NULL" and details[_id(1, 4)] == "no embedding"
    counts = planted.counts()
    assert (counts["missing"], counts["stale"], counts["failed"]) == (5, 1, 2)
    assert counts["to_reindex"] == 8 == planted.total
    assert planted.command == COMMAND


def test_executions_are_dated_by_their_completion_as_the_coverage_dates_them(
    planted: reindex.ReindexList, longsang_db: Planted
) -> None:
    # workflow_executions has no updated_at column in the LongSang schema: an execution
    # changed when it completed (or, unfinished, when it was created), as `db.embeddings`'s
    # coverage dates it; the two never disagree (the DB report said "0 stale" in Coverage
    # and "stale unknown" in Re-index)
    (stale,) = _sql(
        longsang_db.url,
        """
        SELECT count(*) FROM workflow_executions s, context_embeddings e
        WHERE e.entity_type = 'execution' AND e.entity_id = s.id AND e.embedding IS NOT NULL
          AND e.updated_at < COALESCE(s.completed_at, s.created_at)
        """,
    )[0]
    execution = _row(planted, "execution")
    assert execution["stale_known"] is True and execution["stale"] == stale
    assert not execution["note"]
    with db.connect(longsang_db.url) as insp:
        coverage = embeddings.coverage(insp)
    covered = coverage[coverage["entity_type"] == "execution"].iloc[0]
    assert int(covered["stale"]) == execution["stale"]
    assert execution["route"] == "POST /api/context/index/executions"
    # posts have embeddings but no source table lsops knows
    post = _row(planted, "post")
    assert post["source_table"] is None and post["missing"] is None and post["stale"] is None
    assert post["failed"] == 0 and "no source table" in post["note"]


def test_type_and_stale_filters(longsang_db: Planted) -> None:
    with db.connect(longsang_db.url) as insp:
        agents = reindex.reindex_list(insp, entity_type="agent", stale_only=True)
        projects = reindex.reindex_list(insp, entity_type="project")
        stale = reindex.reindex_list(insp, stale_only=True)
        with pytest.raises(ParameterError, match="unknown entity type 'projects'"):
            reindex.reindex_list(insp, entity_type="projects")
        keyword = reindex.reindex_list(insp, entity_type="keyword")  # a known type, no rows
    assert list(agents.by_type["entity_type"]) == ["agent"]
    assert list(agents.entities["entity_id"]) == [_id(3, 2)]
    assert set(projects.entities["reason"]) == {"missing", "failed"}
    assert set(projects.entities["entity_type"]) == {"project"} and projects.total == 3
    # --stale lists the stale ones only; the counts per type keep every reason
    assert set(stale.entities["reason"]) == {"stale"} and stale.total == 1
    assert _row(stale, "workflow")["missing"] == 2
    assert keyword.total == 0 and _row(keyword, "keyword")["missing"] is None


# --- schema drift ---------------------------------------------------------------------------------


def test_drifted_schema_gives_unknowns_never_an_error(longsang_drift_db: Drift) -> None:
    with db.connect(longsang_drift_db.url) as insp:
        listing = reindex.reindex_list(insp)
    d = longsang_drift_db
    for entity_type in ("project", "workflow"):
        row = _row(listing, entity_type)
        assert row["stale"] is None and "has no updated_at column" in row["note"]
    # executions are dated by completed_at / created_at, which the drift keeps
    assert _row(listing, "execution")["stale"] == 0 and not _row(listing, "execution")["note"]
    assert _listed(listing, "project", "missing") == set(d.missing_projects)
    assert _listed(listing, "workflow", "missing") == set(d.missing_workflows)
    agent = _row(listing, "agent")  # its table is gone: only the log knows it
    assert agent["missing"] is None and "agents is absent" in agent["note"]
    assert agent["failed"] == 1
    failed = {
        (r.entity_type, r.entity_id) for r in listing.entities.itertuples() if r.reason == "failed"
    }
    assert failed == set(d.failed)  # project 4 failed, then completed: not listed
    assert "context_embeddings has no updated_at" in " ".join(listing.notes)
    assert listing.counts()["stale"] == 0  # known for executions only (the others: notes)


def test_a_database_without_the_longsang_tables(pg_url: str) -> None:
    with db.connect(pg_url) as insp:
        listing = reindex.reindex_list(insp)
    assert listing.total is None and listing.counts()["missing"] is None  # never 0
    assert all(n is not None for n in listing.by_type["note"])
    assert any("no context_embeddings table" in n for n in listing.notes)
    assert any("no context_indexing_log table" in n for n in listing.notes)


# --- the command ----------------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, args, env=env)


def test_cli_json_and_text(
    lsops_env: dict[str, str], longsang_db: Planted, pg_cluster: PostgresCluster
) -> None:
    env = {**lsops_env, "LSOPS_DATABASE_URL": longsang_db.password_url}
    result = _run(["reindex-list", "--json"], env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == COMMAND
    assert (data["missing"], data["stale"], data["failed"], data["to_reindex"]) == (5, 1, 2, 8)
    by_type = {r["entity_type"]: r for r in data["by_type"]}
    assert by_type["execution"]["stale"] == 0 and by_type["agent"]["stale"] == 1
    assert {e["entity_id"] for e in data["entities"] if e["reason"] == "stale"} == {_id(3, 2)}
    text = _run(["reindex-list", "--type", "agent", "--stale"], env)
    assert text.exit_code == 0
    assert _id(3, 2) in text.stdout and COMMAND in text.stdout
    assert "lsops never runs it" in text.stdout
    failed = _run(["reindex-list", "--type", "project"], env).stdout
    assert "<script>" in failed  # plain text in a terminal (never markup), as stored
    assert pg_cluster.password not in result.output + text.output + failed


def test_cli_title_and_footer_count_entities_and_rows_alike(
    lsops_env: dict[str, str], longsang_drift_db: Drift
) -> None:
    """An entity both missing and failed is listed once per reason: the title counts the
    entities and the rows, the footer the rows not shown."""
    d = longsang_drift_db
    entities = {
        *(("project", i) for i in d.missing_projects),
        *(("workflow", i) for i in d.missing_workflows),
        *d.failed,
    }
    rows = len(d.missing_projects) + len(d.missing_workflows) + len(d.failed)
    assert rows == len(entities) + 1  # project 3: missing and failed
    env = {**lsops_env, "LSOPS_DATABASE_URL": d.url, "COLUMNS": "250"}
    result = _run(["reindex-list", "--limit", "2"], env)
    assert result.exit_code == 0, result.output
    assert (
        f"Entities to re-index: {len(entities)} entities in {rows} rows "
        "(an entity missing and failed has two)"
    ) in result.stdout
    assert f"… {rows - 2} more rows (use --json for all)" in result.stdout
    data = json.loads(_run(["reindex-list", "--json"], env).stdout)
    assert (data["to_reindex"], len(data["entities"])) == (len(entities), rows)
    # a list without an entity under two reasons says one count
    one = _run(["reindex-list", "--type", "workflow"], env).stdout
    titles = [t.strip() for t in one.splitlines() if t.startswith("Entities to re-index")]
    assert titles == [f"Entities to re-index: {len(d.missing_workflows)} entities"]


def test_cli_errors_are_one_line(lsops_env: dict[str, str], longsang_db: Planted) -> None:
    env = {**lsops_env, "LSOPS_DATABASE_URL": longsang_db.url}
    bad = _run(["reindex-list", "--type", "nope"], env)
    assert bad.exit_code == 2 and "unknown entity type 'nope'" in bad.stderr
    none = _run(["reindex-list"], lsops_env)
    assert none.exit_code == 2 and "no database configured" in none.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = _run(
        ["reindex-list"],
        {**lsops_env, "LSOPS_DATABASE_URL": f"postgresql://u:Hush9@127.0.0.1:{port}/x"},
    )
    assert down.exit_code == 1 and "cannot connect" in down.stderr
    assert "Hush9" not in down.stderr + down.stdout and "Traceback" not in down.output
    for result in (bad, none, down):
        assert len(result.stderr.strip().splitlines()) == 1
