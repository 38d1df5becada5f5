"""Schema drift degrades, never fails: every inspection function, the report, the review's
database overview and `lsops index-stats`, on the LongSang schema and on two variants of it
(no `updated_at` column anywhere; no indexing log and two source tables missing). A missing
table or column removes only the figure that needs it, and the output says which and why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.db import drift, embeddings, indexes, maintenance, overview, queries, space
from lsops_lib.exceptions import DatabaseError
from lsops_lib.pgtemp import PostgresCluster
from tests.fixtures.pg import Planted, SchemaVariant

pytestmark = pytest.mark.postgres

NO_UPDATED_AT_NOTES = {
    "embeddings per entity type: last_updated not computed: "
    "no column context_embeddings.updated_at",
    "embeddings coverage: 'stale' not computed: no column context_embeddings.updated_at",
    "entities without embedding: changed_at of project not known: no column projects.updated_at",
    "entities without embedding: changed_at of workflow not known: no column workflows.updated_at",
    "entities without embedding: changed_at of agent not known: no column agents.updated_at",
}
NO_TABLES_NOTES = {
    "embeddings coverage: execution not checked: no table workflow_executions",
    "embeddings coverage: agent not checked: no table agents",
    "entities without embedding: execution not checked: no table workflow_executions",
    "entities without embedding: agent not checked: no table agents",
}
NO_LOG = {
    "indexing log": "indexing log: no table context_indexing_log",
    "latest indexing failures": "latest indexing failures: no table context_indexing_log",
}


@dataclass(frozen=True)
class Schema:
    """One inspected schema and what must be said about it (written out, not derived)."""

    name: str
    url: str
    notes: frozenset[str]  # partial figures, said on the inspector
    gone: dict[str, str]  # whole figures unavailable -> the reason given


@pytest.fixture(params=["longsang", "no_updated_at", "no_optional_tables"])
def schema(request: pytest.FixtureRequest) -> Schema:
    if request.param == "longsang":
        planted: Planted = request.getfixturevalue("longsang_db")
        return Schema("longsang", planted.password_url, frozenset(), {})
    if request.param == "no_updated_at":
        variant: SchemaVariant = request.getfixturevalue("longsang_no_updated_at")
        return Schema(variant.name, variant.url, frozenset(NO_UPDATED_AT_NOTES), {})
    variant = request.getfixturevalue("longsang_no_optional_tables")
    return Schema(variant.name, variant.url, frozenset(NO_TABLES_NOTES), dict(NO_LOG))


@pytest.fixture
def insp(schema: Schema) -> Iterator[db.Inspector]:
    with db.connect(schema.url) as inspector:
        yield inspector


def _every_function(insp: db.Inspector) -> dict[str, Callable[[], Any]]:
    t = db.DbThresholds()
    return {
        "database size": lambda: space.database_size(insp),
        "table sizes": lambda: space.table_sizes(insp),
        "index catalog": lambda: indexes.index_catalog(insp),
        "unused": lambda: indexes.unused_indexes(insp, thresholds=t),
        "duplicate": lambda: indexes.duplicate_indexes(insp),
        "invalid": lambda: indexes.invalid_indexes(insp),
        "fk": lambda: indexes.fk_without_index(insp),
        "seq scan": lambda: indexes.seq_scan_tables(insp, t),
        "vector": lambda: indexes.vector_indexes(insp),
        "stats": lambda: indexes.stats_reset(insp),
        "queries status": lambda: queries.status(insp),
        "table maintenance": lambda: maintenance.table_maintenance(insp),
        "dead tuples": lambda: maintenance.dead_tuple_tables(insp, t),
        "bloat": lambda: maintenance.table_bloat(insp, t),
        "wraparound": lambda: maintenance.database_wraparound(insp, t),
        "table wraparound": lambda: maintenance.table_wraparound(insp),
        "sequences": lambda: maintenance.sequences_near_max(insp, t),
        "long running": lambda: maintenance.long_running_queries(insp, t),
        "idle": lambda: maintenance.idle_in_transaction(insp, t),
        "connections": lambda: maintenance.connections(insp, t),
        "cache": lambda: maintenance.cache_hit_ratios(insp, t),
        "embeddings per entity type": lambda: embeddings.by_entity_type(insp),
        "indexing log": lambda: embeddings.log_by_status(insp),
        "latest indexing failures": lambda: embeddings.latest_failures(insp),
        "embeddings coverage": lambda: embeddings.coverage(insp),
        "entities without embedding": lambda: embeddings.missing_entities(insp),
    }


# --- every inspection function -------------------------------------------------------------


def test_every_inspection_function_degrades_per_figure(schema: Schema, insp: db.Inspector) -> None:
    notes: list[str] = []
    got = {name: drift.figure(notes, name, fn) for name, fn in _every_function(insp).items()}
    unavailable = {name for name, value in got.items() if value is None}
    assert unavailable == set(schema.gone), notes
    assert set(notes) == set(schema.gone.values())
    assert set(insp.unavailable) == schema.notes
    # what does not need the missing parts is exactly what the full schema gives
    by_type = got["embeddings per entity type"]
    assert list(zip(by_type["entity_type"], by_type["count"], strict=True)) == list(
        Planted.embeddings_by_type
    )
    assert by_type["last_indexed"].notna().all()
    assert by_type["last_updated"].isna().all() == (schema.name == "longsang_no_updated_at")
    cov = got["embeddings coverage"].set_index("entity_type")
    assert cov.loc["project", ["entities", "embedded", "missing"]].tolist() == [6, 5, 1]
    assert cov.loc["workflow", ["entities", "embedded", "missing"]].tolist() == [
        4,
        2,
        2,
    ]  # the NULL embedding is missing (QA 23)
    assert cov.loc["workflow", "null_embeddings"] == 1
    assert cov.loc["post", "embedded"] == 2 and cov.loc["post", "source_table"] is None
    if schema.name == "longsang_no_updated_at":
        assert cov["stale"].isna().all()
    else:
        assert cov.loc["project", "stale"] == 0
    if schema.name == "longsang_no_optional_tables":
        # the types whose source table is gone: what is stored only, like posts
        assert (
            cov.loc["execution", "source_table"] is None and cov.loc["execution", "embedded"] == 1
        )
        assert cov.loc["agent", "source_table"] is None and cov.loc["agent", "embedded"] == 2
        assert pd.isna(cov.loc["agent", "missing"])
    else:
        agent_stale = cov.loc["agent", "stale"]
        assert pd.isna(agent_stale) if schema.name == "longsang_no_updated_at" else agent_stale == 1
        log = got["indexing log"]
        assert list(zip(log["status"], log["count"], strict=True)) == list(Planted.log)
        assert int(log["tokens_used"].sum()) == Planted.tokens_used
    missing = got["entities without embedding"]
    expected_types = ["project", "workflow"] + (
        [] if schema.name == "longsang_no_optional_tables" else ["execution", "execution"]
    )
    assert sorted(missing["entity_type"]) == sorted(expected_types)
    if schema.name == "longsang_no_updated_at":
        rows = missing.set_index("entity_type")
        assert pd.isna(rows.loc["project", "changed_at"])
        assert rows.loc["execution", "changed_at"].notna().all()  # its own columns are there


def test_a_query_on_a_missing_column_or_table_is_schema_missing(insp: db.Inspector) -> None:
    """The safety net under the checks above: drift nobody foresaw degrades the same way."""
    with pytest.raises(drift.SchemaMissing, match="does not exist"):
        insp.frame("SELECT no_such_column FROM context_embeddings")
    with pytest.raises(drift.SchemaMissing, match="does not exist"):
        insp.frame("SELECT 1 FROM no_such_table")
    with pytest.raises(DatabaseError) as info:  # anything else is still a failure
        insp.frame("SELECT 1/0")
    assert not isinstance(info.value, drift.SchemaMissing)


def test_a_table_the_role_may_not_read_costs_that_figure_only(
    longsang_no_updated_at: SchemaVariant, pg_cluster: PostgresCluster
) -> None:
    role = f"drift_{uuid.uuid4().hex[:8]}"
    name = longsang_no_updated_at.name
    pg_cluster.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'Drift-pw-42'", dbname=name)
    pg_cluster.execute(
        f"GRANT SELECT ON context_embeddings, projects, workflows, workflow_executions, agents "
        f"TO {role}",
        dbname=name,
    )
    url = longsang_no_updated_at.url.replace("postgres@", f"{role}:Drift-pw-42@", 1)
    try:
        result = CliRunner().invoke(
            main, ["index-stats", "--json"], env={"LSOPS_DATABASE_URL": url}
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["log"] is None and data["latest_failures"] is None
        assert [(e["entity_type"], e["count"]) for e in data["by_entity_type"]] == list(
            Planted.embeddings_by_type
        )
        denied = [u for u in data["unavailable"] if "permission denied" in u]
        assert [u.split(":")[0] for u in denied] == ["indexing log", "latest indexing failures"]
        assert all("context_indexing_log" in u for u in denied)
    finally:
        pg_cluster.execute(
            f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
            f"DROP ROLE {role}",
            dbname=name,
        )


# --- lsops index-stats (the failure: exit 1 on `column src.updated_at`) --------------


def _index_stats(url: str, *args: str) -> Any:
    return CliRunner().invoke(
        main, ["index-stats", *args], env={"LSOPS_DATABASE_URL": url, "COLUMNS": "200"}
    )


def test_index_stats_keeps_every_figure_it_can(schema: Schema) -> None:
    result = _index_stats(schema.url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(e["entity_type"], e["count"]) for e in data["by_entity_type"]] == list(
        Planted.embeddings_by_type
    )
    assert set(data["unavailable"]) == schema.notes - {
        n for n in schema.notes if n.startswith("entities without embedding")
    } | set(schema.gone.values())
    if "indexing log" in schema.gone:
        assert data["log"] is None and data["latest_failures"] is None
    else:
        assert data["log"]["failed"] == 2 and data["log"]["tokens_used"] == Planted.tokens_used
        assert len(data["latest_failures"]) == 2
    coverage = {e["entity_type"]: e for e in data["coverage"]}
    assert coverage["project"]["missing"] == 1
    stale = coverage["project"]["stale"]
    assert stale is None if schema.name == "longsang_no_updated_at" else stale == 0
    # the text says the same: each missing figure, which and why
    text = _index_stats(schema.url)
    assert text.exit_code == 0, text.output
    flat = " ".join(text.stdout.split())
    for note in data["unavailable"]:
        assert f"not available: {note}" in flat
    if "indexing log" in schema.gone:
        assert "indexing log: not available" in flat


def test_index_stats_on_a_database_without_the_longsang_tables(pg_url: str) -> None:
    result = _index_stats(pg_url, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "not a LongSang database" in result.stderr and "no table context_embeddings" in (
        result.stderr
    )


# --- the report and the review's database overview -----------------------------------------


def test_report_sections_say_what_is_missing(schema: Schema) -> None:
    report = db.optimization_report(url=schema.url, store=None)
    assert report.reachable
    for section in report.sections.values():
        assert section.ok, section.errors
    said = [u for u in report.unavailable() if u.startswith("Embeddings indexing: ")]
    said = {u.removeprefix("Embeddings indexing: ") for u in said}
    assert said == schema.notes | set(schema.gone.values())
    s = report.summary()
    assert s["embeddings"] == 13
    # the chart's title counts what the coverage counts: the workflows' NULL embedding is
    # none (4 workflows: 2 with an embedding, 1 NULL, 1 without a row; QA 23)
    by_type = report.sections["embeddings"].frames["by_entity_type"]
    assert by_type.attrs["embedded"]["workflow"] == 2
    assert s["embeddings_missing"] == (3 if schema.name == "longsang_no_optional_tables" else 5)
    assert s["embeddings_null"] == 1
    if "indexing log" in schema.gone:
        assert s["embeddings_failed"] is None and s["embeddings_pending"] is None
    else:
        assert s["embeddings_failed"] == 2 and s["embeddings_pending"] == 1


def test_overview_keeps_every_figure_it_can(schema: Schema, tmp_path: Path) -> None:
    settings = load_settings(env={"LSOPS_DATABASE_URL": schema.url}, cwd=tmp_path)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    got = overview.database_overview(settings, None, None, start, datetime(2026, 11, 1, tzinfo=UTC))
    assert got.available and got.size_bytes and got.tables is not None
    assert list(got.embeddings["by_entity_type"]["count"]) == [
        c for _, c in Planted.embeddings_by_type
    ]
    assert "coverage" in got.embeddings
    if "indexing log" in schema.gone:
        assert "log" not in got.embeddings
        assert "indexing log: no table context_indexing_log" in got.notes
    else:
        assert got.embeddings["log"]["count"].sum() == 11
    partial = {n for n in schema.notes if not n.startswith("entities without embedding")}
    assert partial <= set(got.notes)


def test_pg_stat_statements_not_updated_after_a_server_upgrade(
    pg_url: str, pg_cluster: PostgresCluster
) -> None:
    """An extension keeps its version (and its columns) across `pg_upgrade` until `ALTER
    EXTENSION ... UPDATE`: 1.7 has total_time where the server's own 1.8+ has
    total_exec_time. The columns are read from the view, not guessed from the server."""
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("these binaries have no pg_stat_statements")
    name = pg_url.rsplit("/", 1)[1]
    pg_cluster.execute("CREATE EXTENSION pg_stat_statements VERSION '1.7'", dbname=name)
    pg_cluster.execute("SELECT count(*) FROM pg_class", dbname=name)
    with db.connect(pg_url) as insp:
        assert insp.server_version_num >= 130000
        cols = drift.columns(insp, "pg_stat_statements")
        assert cols is not None and "total_time" in cols and "total_exec_time" not in cols
        assert queries.status(insp)["available"]
        top = queries.top_by_total(insp, 50)
    assert len(top) >= 1 and (top["total_ms"] >= 0).all()
