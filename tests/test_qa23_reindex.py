"""QA 23: `lsops index-stats` and `lsops reindex-list` count missing and stale alike, an
unknown count to re-index is never 0, and the empty answers of `db.embeddings` and
`db.reindex` have the dtypes of full ones. On a real PostgreSQL (tests/fixtures/pg.py).

The expected figures are computed here from the rows each test inserts (a table of states
written out below), never by the code under test:

- missing: no embedding row, or a NULL embedding (README, "Re-index list");
- stale: a non-NULL embedding whose `updated_at` is before the entity's last change (an
  execution: `completed_at`, else `created_at`);
- null: the NULL embeddings stored.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import embeddings, reindex
from lsops_lib.db.schema import load_longsang_schema
from lsops_lib.pgtemp import PostgresCluster
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres

TS = "datetime64[us, UTC]"  # the library's instants (README "Guarantees"; lsops_lib/db/connect.py)


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def _id(group: int, n: int) -> str:
    return f"00000000-0000-0000-{group:04d}-{n:012d}"


def _run(args: list[str], url: str, env: dict[str, str]) -> Any:
    result = CliRunner().invoke(main, args, env={**env, "LSOPS_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def fresh_db(pg_cluster: PostgresCluster) -> Iterator[tuple[str, str]]:
    """A fresh database with the LongSang schema: (SQLAlchemy URL, the embedding literal)."""
    name = f"qa23_{uuid.uuid4().hex[:10]}"
    url = pg_cluster.create_database(name)
    try:
        vector = load_longsang_schema(url)
        yield url, "array_fill(0.01::real, ARRAY[1536])" + ("::vector" if vector else "")
    finally:
        pg_cluster.drop_database(name)


# --- 1. one definition of missing and stale -------------------------------------------------

# each source entity's state: no embedding row, a NULL embedding dated before / after the
# entity's last change, a vector dated before it (stale) or after it (fresh); every entity
# changed 10 days ago, an "old" embedding is dated 20 days ago, a "new" one 5 days ago
STATES: dict[str, list[str]] = {
    "project": ["none", "none", "null_old", "null_old", "null_new"] + ["stale"] * 3 + ["fresh"] * 4,
    "workflow": ["fresh", "none", "null_new"],
    "agent": ["none", "null_old", "stale", "stale", "fresh"],
    # executions completed 10 days ago but were created 30 days ago: an "old" embedding is
    # stale by completed_at, not by created_at; the unfinished one is dated by created_at
    # (10 days ago)
    "execution": ["none", "null_old", "stale", "fresh", "stale_unfinished"],
}
GROUP = {"project": 0, "workflow": 1, "execution": 2, "agent": 3}
TABLE = {
    "project": "projects",
    "workflow": "workflows",
    "execution": "workflow_executions",
    "agent": "agents",
}


def _expected(entity_type: str) -> dict[str, Any]:
    states = STATES[entity_type]
    ids = [_id(GROUP[entity_type], n) for n in range(1, len(states) + 1)]
    missing = {i for i, s in zip(ids, states, strict=True) if s == "none" or s.startswith("null")}
    stale = {i for i, s in zip(ids, states, strict=True) if s.startswith("stale")}
    nulls = sum(s.startswith("null") for s in states)
    return {
        "entities": len(states),
        "embedded": len(states) - len(missing),
        "missing": len(missing),
        "stale": len(stale),
        "null_embeddings": nulls,
        "missing_ids": missing,
        "stale_ids": stale,
    }


def _seed_states(url: str, embedding: str) -> None:
    sql: list[str] = []
    for entity_type, states in STATES.items():
        for n, state in enumerate(states, start=1):
            i = _id(GROUP[entity_type], n)
            if entity_type == "project":
                sql.append(
                    f"INSERT INTO projects (id, name, slug, updated_at) "
                    f"VALUES ('{i}', 'project {n}', 'p{n}', now() - interval '10 days')"
                )
            elif entity_type == "workflow":
                sql.append(
                    f"INSERT INTO workflows (id, name, updated_at) "
                    f"VALUES ('{i}', 'workflow {n}', now() - interval '10 days')"
                )
            elif entity_type == "agent":
                sql.append(
                    f"INSERT INTO agents (id, name, type, updated_at) "
                    f"VALUES ('{i}', 'agent {n}', 'assistant', now() - interval '10 days')"
                )
            else:
                unfinished = state.endswith("unfinished")
                created = "10 days" if unfinished else "30 days"
                completed = "NULL" if unfinished else "now() - interval '10 days'"
                sql.append(
                    "INSERT INTO workflow_executions (id, workflow_id, status, created_at, "
                    f"completed_at) VALUES ('{i}', '{_id(1, 1)}', "
                    f"'{'running' if unfinished else 'completed'}', "
                    f"now() - interval '{created}', {completed})"
                )
            if state == "none":
                continue
            vector = "NULL" if state.startswith("null") else embedding
            age = "20 days" if state.endswith("old") or state.startswith("stale") else "5 days"
            sql.append(
                "INSERT INTO context_embeddings (entity_type, entity_id, entity_name, embedding, "
                f"created_at, updated_at) VALUES ('{entity_type}', '{i}', '{entity_type} {n}', "
                f"{vector}, now() - interval '{age}', now() - interval '{age}')"
            )
    # posts: no source table lsops knows; one vector, one NULL
    sql.append(
        "INSERT INTO context_embeddings (entity_type, entity_id, entity_name, embedding) VALUES "
        f"('post', '{_id(4, 1)}', 'post 1', {embedding}), ('post', '{_id(4, 2)}', 'post 2', NULL)"
    )
    # a fresh project whose latest indexing failed: failed, neither missing nor stale
    sql.append(
        "INSERT INTO context_indexing_log (entity_type, entity_id, status, error_message) "
        f"VALUES ('project', '{_id(0, 12)}', 'failed', 'timeout')"
    )
    # workflows first: the executions reference workflow 1
    sql.sort(key=lambda s: not s.startswith("INSERT INTO workflows"))
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        for statement in sql:
            conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def states_db(fresh_db: tuple[str, str]) -> str:
    url, embedding = fresh_db
    _seed_states(url, embedding)
    return url


def test_the_states_are_what_the_seed_says(states_db: str) -> None:
    """The seed itself, checked with plain SQL: the expectations below are about rows that
    are there (not a test of lsops)."""
    engine = sa.create_engine(states_db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT entity_type, count(*), count(*) FILTER (WHERE embedding IS NULL) "
                    "FROM context_embeddings GROUP BY entity_type"
                )
            ).fetchall()
    finally:
        engine.dispose()
    stored = {t: (int(n), int(nulls)) for t, n, nulls in rows}
    for entity_type, states in STATES.items():
        assert stored[entity_type] == (
            sum(s != "none" for s in states),
            _expected(entity_type)["null_embeddings"],
        )
    assert stored["post"] == (2, 1)


def test_coverage_and_reindex_list_count_missing_and_stale_alike(states_db: str) -> None:
    with db.connect(states_db) as insp:
        cov = embeddings.coverage(insp).set_index("entity_type")
        listing = reindex.reindex_list(insp)
    by_type = listing.by_type.set_index("entity_type")
    e = listing.entities
    for entity_type in STATES:
        want = _expected(entity_type)
        got = cov.loc[entity_type]
        figures = ("entities", "embedded", "missing", "stale", "null_embeddings")
        assert {k: int(got[k]) for k in figures} == {k: want[k] for k in figures}, entity_type
        assert (by_type.loc[entity_type, "missing"], by_type.loc[entity_type, "stale"]) == (
            want["missing"],
            want["stale"],
        ), entity_type
        mine = e[e["entity_type"] == entity_type]
        assert set(mine[mine["reason"] == "missing"]["entity_id"]) == want["missing_ids"]
        assert set(mine[mine["reason"] == "stale"]["entity_id"]) == want["stale_ids"]
    # a NULL embedding dated before its entity changed is missing, not stale
    assert _id(0, 3) in _expected("project")["missing_ids"]
    assert _id(0, 3) not in set(e[e["reason"] == "stale"]["entity_id"])
    post = cov.loc["post"]
    assert (int(post["embedded"]), int(post["null_embeddings"])) == (1, 1)
    assert post["source_table"] is None and post[["missing", "stale"]].isna().all()


def test_index_stats_and_reindex_list_json_agree(states_db: str, lsops_env: dict[str, str]) -> None:
    stats = json.loads(_run(["index-stats", "--json"], states_db, lsops_env).stdout)
    listing = json.loads(_run(["reindex-list", "--json"], states_db, lsops_env).stdout)
    coverage = {r["entity_type"]: r for r in stats["coverage"]}
    by_type = {r["entity_type"]: r for r in listing["by_type"]}
    for entity_type in STATES:
        want = _expected(entity_type)
        row = coverage[entity_type]
        assert (row["missing"], row["stale"], row["null_embeddings"]) == (
            want["missing"],
            want["stale"],
            want["null_embeddings"],
        ), entity_type
        assert row["embedded"] + row["missing"] == row["entities"] == want["entities"]
        assert (by_type[entity_type]["missing"], by_type[entity_type]["stale"]) == (
            want["missing"],
            want["stale"],
        ), entity_type
    missing = sum(_expected(t)["missing"] for t in STATES)
    stale = sum(_expected(t)["stale"] for t in STATES)
    assert (listing["missing"], listing["stale"], listing["failed"]) == (missing, stale, 1)
    entities = set().union(
        *(_expected(t)["missing_ids"] | _expected(t)["stale_ids"] for t in STATES)
    )
    assert listing["to_reindex"] == len(entities | {_id(0, 12)})
    # the keys scripts read are all still there
    assert {"type", "stale_only", "command", "by_type", "entities", "notes"} <= set(listing)
    assert {"by_entity_type", "log", "latest_failures", "coverage", "unavailable"} <= set(stats)
    text = _run(["index-stats"], states_db, {**lsops_env, "COLUMNS": "200"}).stdout
    assert "missing: no embedding row or a NULL embedding" in " ".join(text.split())


# --- 2. an unknown count to re-index is unknown, and the total says it is a lower bound -------


@pytest.fixture
def dropped_db(fresh_db: tuple[str, str]) -> str:
    """agents dropped (its embeddings remain), posts embedded (no source table), one post
    failed; projects 1 fresh, 2 without a row, 3 with a NULL embedding."""
    url, embedding = fresh_db
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP TABLE agents CASCADE")
        sql = (
            "INSERT INTO projects (id, name, slug) "
            f"VALUES ('{_id(0, 1)}', 'p1', 'p1'), ('{_id(0, 2)}', 'p2', 'p2'), "
            f"('{_id(0, 3)}', 'p3', 'p3')"
        )
        conn.execute(sql)  # type: ignore[arg-type]
        later = "now() + interval '1 day'"  # after the projects' updated_at: not stale
        rows = (
            f"('project', '{_id(0, 1)}', 'p1', {embedding}, {later}), "
            f"('project', '{_id(0, 3)}', 'p3', NULL, {later}), "
            f"('agent', '{_id(3, 1)}', 'a1', {embedding}, now()), "
            f"('post', '{_id(4, 1)}', 'x1', {embedding}, now())"
        )
        sql = (
            "INSERT INTO context_embeddings (entity_type, entity_id, entity_name, embedding, "
            f"updated_at) VALUES {rows}"
        )
        conn.execute(sql)  # type: ignore[arg-type]
        sql = (
            "INSERT INTO context_indexing_log (entity_type, entity_id, status, error_message) "
            f"VALUES ('post', '{_id(4, 1)}', 'failed', 'timeout')"
        )
        conn.execute(sql)  # type: ignore[arg-type]
    return url


def _cells(text: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first` (rich's box characters)."""
    for row in text.splitlines():
        cells = [c.strip() for c in re.split("[│┃]", row.strip().strip("│┃"))]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_a_type_that_cannot_be_checked_has_no_count_and_the_total_is_a_lower_bound(
    dropped_db: str, lsops_env: dict[str, str]
) -> None:
    with db.connect(dropped_db) as insp:
        listing = reindex.reindex_list(insp)
    rows = {r["entity_type"]: r for r in listing.by_type.to_dict("records")}
    # agents is gone and nothing of it failed: unknown, not 0; posts have no source table:
    # unknown, not their one failure
    assert rows["agent"]["missing"] is None and rows["agent"]["to_reindex"] is None
    assert rows["post"]["failed"] == 1 and rows["post"]["to_reindex"] is None
    assert rows["project"]["to_reindex"] == 2  # projects 2 (no row) and 3 (NULL)
    assert rows["workflow"]["to_reindex"] == 0  # checked: nothing to re-index
    listed = {("project", _id(0, 2)), ("project", _id(0, 3)), ("post", _id(4, 1))}
    assert listing.total == len(listed) and listing.lower_bound is True
    assert set(listing.unknown_types) == {"agent", "post"}

    data = json.loads(_run(["reindex-list", "--json"], dropped_db, lsops_env).stdout)
    by_type = {r["entity_type"]: r for r in data["by_type"]}
    assert by_type["agent"]["to_reindex"] is None and by_type["post"]["to_reindex"] is None
    assert data["to_reindex"] == len(listed)
    assert data["to_reindex_lower_bound"] is True
    assert set(data["to_reindex_unknown_types"]) == {"agent", "post"}
    one = json.loads(
        _run(["reindex-list", "--type", "agent", "--json"], dropped_db, lsops_env).stdout
    )
    assert one["to_reindex"] == 0 and one["by_type"][0]["to_reindex"] is None
    assert one["to_reindex_lower_bound"] is True

    text = _run(["reindex-list"], dropped_db, {**lsops_env, "COLUMNS": "250"}).stdout
    header = next(t.strip() for t in text.splitlines() if t.startswith("Entities to re-index"))
    assert header.startswith(f"Entities to re-index: {len(listed)} entities")
    assert "a lower bound" in header and "agent" in header and "post" in header
    columns = _cells(text, "entity type")
    where = columns.index("to re-index")
    assert _cells(text, "agent")[where] == "unknown"
    assert _cells(text, "post")[where] == "unknown"
    assert _cells(text, "project")[where] == "2"
    # nothing listed for the one type asked for, and its count unknown: never "none"
    alone = _run(["reindex-list", "--type", "agent"], dropped_db, lsops_env).stdout
    said = " ".join(alone.split())
    assert "Entities to re-index: none found, a lower bound: agent unknown" in said
    assert not re.search(r"Entities to re-index: none(?! found)", said)


def test_every_type_checked_is_no_lower_bound(states_db: str) -> None:
    with db.connect(states_db) as insp:
        projects = reindex.reindex_list(insp, entity_type="project")
    want = _expected("project")
    assert projects.unknown_types == [] and projects.lower_bound is False
    assert projects.total == len(want["missing_ids"] | want["stale_ids"] | {_id(0, 12)})


# --- 3. empty answers have the dtypes of full ones --------------------------------------------

# written out: what each answer's columns are, with rows and without
TEXT = "str"
DTYPES: dict[str, dict[str, str]] = {
    "log_by_status": {"status": TEXT, "count": "int64", "tokens_used": "Int64", "latest": TS},
    "by_entity_type": {
        "entity_type": TEXT,
        "count": "int64",
        "last_indexed": TS,
        "last_updated": TS,
    },
    "latest_failures": {
        "entity_type": TEXT,
        "entity_id": TEXT,
        "error_message": TEXT,
        "tokens_used": "Int64",
        "created_at": TS,
        "completed_at": TS,
    },
    "missing_entities": {"entity_type": TEXT, "entity_id": TEXT, "name": TEXT, "changed_at": TS},
    "reindex entities": {
        "entity_type": TEXT,
        "entity_id": TEXT,
        "name": TEXT,
        "reason": TEXT,
        "detail": TEXT,
        "changed_at": TS,
        "embedded_at": TS,
        "failed_at": TS,
    },
    "missing_embeddings": {
        "entity_type": TEXT,
        "entity_id": TEXT,
        "name": TEXT,
        "detail": TEXT,
        "changed_at": TS,
    },
    "stale_embeddings": {
        "entity_type": TEXT,
        "entity_id": TEXT,
        "name": TEXT,
        "changed_at": TS,
        "embedded_at": TS,
    },
    "failed_in_log": {
        "entity_type": TEXT,
        "entity_id": TEXT,
        "name": TEXT,
        "error_message": TEXT,
        "failed_at": TS,
    },
}


def _answers(insp: db.Inspector) -> dict[str, Any]:
    return {
        "log_by_status": embeddings.log_by_status(insp),
        "by_entity_type": embeddings.by_entity_type(insp),
        "latest_failures": embeddings.latest_failures(insp),
        "missing_entities": embeddings.missing_entities(insp),
        "reindex entities": reindex.reindex_list(insp).entities,
        "missing_embeddings": reindex.missing_embeddings(insp, "project", "projects", "name"),
        # executions have no name column: a name of NULLs, still text
        "missing_embeddings executions": reindex.missing_embeddings(
            insp,
            "execution",
            "workflow_executions",
            None,
            changed_column=("completed_at", "created_at"),
        ),
        "stale_embeddings": reindex.stale_embeddings(insp, "agent", "agents", "name"),
        "failed_in_log": reindex.failed_in_log(insp),
    }


def _types(df: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in df.dtypes.items()}


def test_empty_answers_have_the_dtypes_of_full_ones(
    longsang_db: Planted, fresh_db: tuple[str, str]
) -> None:
    url, _ = fresh_db
    with db.connect(longsang_db.password_url) as planted, db.connect(url) as bare:
        full, empty = _answers(planted), _answers(bare)
    for what, frame in full.items():
        want = DTYPES[what.split(" executions")[0]]
        assert len(frame) > 0, what  # the planted database has rows for each
        assert _types(frame) == want, what
        assert len(empty[what]) == (4 if what == "log_by_status" else 0), what
        assert _types(empty[what]) == want, what
    # the log of an empty table: every status, zero, no latest instant, and an instant dtype
    log = empty["log_by_status"]
    assert log["count"].sum() == 0 and log["latest"].isna().all()
    assert log["latest"].dt.tz_convert("Europe/Paris").isna().all()


def test_a_log_whose_failures_never_completed_has_instant_columns(
    fresh_db: tuple[str, str],
) -> None:
    url, _ = fresh_db
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        sql = (
            "INSERT INTO context_indexing_log (entity_type, entity_id, status) "
            f"VALUES ('project', '{_id(0, 1)}', 'failed'), ('project', '{_id(0, 2)}', 'pending')"
        )
        conn.execute(sql)  # type: ignore[arg-type]
    with db.connect(url) as insp:
        failures = embeddings.latest_failures(insp)
        log = embeddings.log_by_status(insp)
        failed = reindex.failed_in_log(insp, names=False)
    assert len(failures) == 1 and failures["completed_at"].isna().all()
    assert _types(failures) == DTYPES["latest_failures"]
    assert _types(log) == DTYPES["log_by_status"]
    assert log.set_index("status")["latest"].isna().to_dict() == {
        "pending": False,
        "processing": True,
        "completed": True,
        "failed": False,
    }
    assert list(failed["entity_id"]) == [_id(0, 1)]
    assert _types(failed) == DTYPES["failed_in_log"]


# --- 2b. the DB optimization report's Re-index box says the lower bound ---------------------


def test_the_report_box_says_a_lower_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from lsops_lib.present import dboptimization

    shown: list[str] = []
    monkeypatch.setattr(dboptimization, "show_html", shown.append)
    monkeypatch.setattr(dboptimization, "show_db_table", lambda df, title: shown.append(df))
    counts = pd.DataFrame(
        {"entity_type": ["project", "post"], "missing": [2, None], "to_reindex": [3, None]}
    )
    section = SimpleNamespace(
        title="Re-index",
        errors=[],
        unavailable=[],
        notes=[],
        frames={"reindex_counts": counts, "reindex_entities": None},
    )

    def report(found: dict) -> SimpleNamespace:
        return SimpleNamespace(sections={"reindex": section}, findings={"reindex": found})

    bound = {"to_reindex_lower_bound": True, "to_reindex_unknown_types": ["post"]}
    dboptimization.show_reindex(report({"to_reindex": 3, "command": "node x.js", **bound}))
    assert "3 entities to re-index (a lower bound: post unknown)" in shown[0]
    table = shown[1]
    assert table["to_reindex"].tolist() == ["3", "unknown"]  # never a dash that reads 0
    shown.clear()
    dboptimization.show_reindex(report({"to_reindex": 0, **bound}))
    assert "Nothing to re-index found (a lower bound: post unknown)" in shown[0]
    shown.clear()
    dboptimization.show_reindex(report({"to_reindex": 0, "to_reindex_lower_bound": False}))
    assert "Nothing to re-index among what could be checked" in shown[0]
