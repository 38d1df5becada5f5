"""A role without privileges never gets a false "none": what it may not see (sequences and
tables it may not read, other roles' sessions) is said in `unavailable`, and index-stats
says a permission problem is one. On a real PostgreSQL, against what the superuser sees."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from lsops_lib.cli import main
from lsops_lib.db.schema import load_longsang_schema
from lsops_lib.pgtemp import PostgresCluster

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Setup:
    url: str  # superuser
    nopriv_url: str  # a role that may log in and nothing else
    role: str
    tables: int  # ordinary tables of the database (as the superuser counts them)
    idle_pid: int  # the superuser's session idle in a transaction


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
def setup(pg_cluster: PostgresCluster, pg_url: str) -> Iterator[Setup]:
    load_longsang_schema(pg_url)
    role, password = f"nopriv_{uuid.uuid4().hex[:8]}", "NoPriv-9x"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # type: ignore[arg-type]
        conn.execute("CREATE SEQUENCE s_near MAXVALUE 100")
        conn.execute("SELECT setval('s_near', 95)")  # 95 % used: near its maximum
        conn.execute("ANALYZE")
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')"
        ).fetchone()[0]  # type: ignore[index]
    idle = psycopg.connect(_libpq(pg_url))
    idle.execute("SELECT 1")  # opens a transaction and leaves it open
    nopriv = sa.engine.make_url(pg_url).set(username=role, password=password)
    try:
        time.sleep(0.2)
        yield Setup(pg_url, nopriv.render_as_string(False), role, tables, idle.info.backend_pid)
    finally:
        idle.close()
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


def run(args: list[str], url: str, tmp_path: Path) -> Result:
    return CliRunner().invoke(
        main, args, env={"LSOPS_DATABASE_URL": url, "COLUMNS": "300"}, catch_exceptions=False
    )


@pytest.fixture(autouse=True)
def _thresholds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LSOPS_DATABASE_URL", "LSOPS_CONFIG", "LSOPS_STORE", "LSOPS_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lsops.toml").write_text("[thresholds]\nidle_in_transaction_s = 0\n")


def _maintenance(url: str, tmp_path: Path) -> Any:
    result = run(["db", "maintenance", "--json"], url, tmp_path)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_superuser_sees_everything(setup: Setup, tmp_path: Path) -> None:
    data = _maintenance(setup.url, tmp_path)
    assert [s["sequence"] for s in data["sequences"]] == ["s_near"]
    assert setup.idle_pid in {s["pid"] for s in data["idle_in_transaction"]}
    assert data["unavailable"] == []


def test_a_role_without_privileges_is_told_what_it_did_not_see(
    setup: Setup, tmp_path: Path
) -> None:
    data = _maintenance(setup.nopriv_url, tmp_path)
    # what it could see is still there, partial: no sequence, no idle session of others
    assert data["sequences"] == [] and data["idle_in_transaction"] == []
    notes = data["unavailable"]
    by_figure = {n.split(":")[0]: n for n in notes}
    assert set(by_figure) == {
        "sequences",
        "bloat",
        "long-running queries",
        "idle in transaction",
        "connections",
    }, notes
    assert by_figure["sequences"].startswith("sequences: 1 sequence not checked")
    assert "public.s_near" in by_figure["sequences"] and setup.role in by_figure["sequences"]
    assert by_figure["bloat"].startswith(f"bloat: {setup.tables} tables not checked")
    assert "pg_read_all_stats" in by_figure["idle in transaction"]
    assert "of other roles not seen" in by_figure["connections"]
    text = run(["db", "maintenance"], setup.nopriv_url, tmp_path)
    assert text.exit_code == 0
    assert "not available: sequences: 1 sequence not checked" in text.stdout


def test_index_stats_says_a_permission_problem_is_one(setup: Setup, tmp_path: Path) -> None:
    result = run(["index-stats"], setup.nopriv_url, tmp_path)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"lsops: permission denied: role {setup.role} may not read")
    assert "not a LongSang database" not in result.stderr
    assert "NoPriv-9x" not in result.stderr
    # a database without the LongSang tables is still told so
    empty = run(["index-stats"], setup.url.rsplit("/", 1)[0] + "/postgres", tmp_path)
    assert empty.exit_code == 1 and "not a LongSang database" in empty.stderr
