"""Role passwords in statement texts never leave lsops: `ALTER ROLE ... PASSWORD '...'` is a
utility statement, which pg_stat_statements keeps as it was written, and pg_stat_activity
shows every statement as it was sent. On a real PostgreSQL: the queries command, the
maintenance command, the collector's store and the optimization report show them masked."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import maintenance, queries
from lsops_lib.pgtemp import PostgresCluster

pytestmark = pytest.mark.postgres

# each written as the statement below writes it: '' is one quote, $q$..$q$ dollar quoting
SECRETS = ("LeakMe123", "it's Secret9", "Dollar$Secret7", "IdleLeak42")


@dataclass(frozen=True)
class Leaky:
    url: str  # superuser: sees every session
    role: str
    idle_pid: int  # a session idle in a transaction whose last statement set a password


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
def leaky(pg_cluster: PostgresCluster, pg_url: str) -> Iterator[Leaky]:
    """A database whose pg_stat_statements holds CREATE ROLE / ALTER ROLE / ALTER USER
    statements with passwords, and a session idle in transaction after an ALTER ROLE."""
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("these binaries have no pg_stat_statements")
    role = f"leak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'LeakMe123'")  # type: ignore[arg-type]
        conn.execute(f"ALTER ROLE {role} ENCRYPTED PASSWORD 'it''s Secret9'")  # type: ignore[arg-type]
        conn.execute(f"ALTER USER {role} WITH PASSWORD $q$Dollar$Secret7$q$ LOGIN")  # type: ignore[arg-type]
    idle = psycopg.connect(_libpq(pg_url))
    idle.execute(f"ALTER ROLE {role} PASSWORD 'IdleLeak42'")  # type: ignore[arg-type]
    try:  # left open: idle in transaction
        time.sleep(0.2)
        yield Leaky(pg_url, role, idle.info.backend_pid)
    finally:
        idle.close()
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "Secret9" not in text and "Secret7" not in text  # no part of one either


def test_the_statements_are_there_and_their_passwords_masked(leaky: Leaky) -> None:
    with db.connect(leaky.url) as insp:
        stats = queries.query_stats(insp)
        idle = maintenance.idle_in_transaction(insp, db.DbThresholds(idle_in_transaction_s=0))
    role_statements = [q for q in stats["query"] if leaky.role in q]
    # CREATE ROLE, ALTER ROLE, ALTER USER, and the idle session's ALTER ROLE
    assert len(role_statements) == 4, role_statements
    assert all("PASSWORD '***'" in q.upper() for q in role_statements), role_statements
    assert any(q.endswith("LOGIN") for q in role_statements)  # what follows the literal stays
    _no_secret("\n".join(stats["query"]))
    mine = idle[idle["pid"] == leaky.idle_pid]
    assert list(mine["query"]) == [f"ALTER ROLE {leaky.role} PASSWORD '***'"]


def test_the_cli_never_shows_them(
    leaky: Leaky, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lsops.toml").write_text("[thresholds]\nidle_in_transaction_s = 0\n")
    env = {"LSOPS_DATABASE_URL": leaky.url, "COLUMNS": "400"}
    outputs, stdouts = [], []
    for args in (
        ["db", "queries", "--limit", "100"],
        ["db", "queries", "--limit", "100", "--json"],
        ["db", "maintenance"],
        ["db", "maintenance", "--json"],
    ):
        result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
        stdouts.append(result.stdout)
    data = json.loads(stdouts[3])
    idle = [s for s in data["idle_in_transaction"] if s["pid"] == leaky.idle_pid]
    assert idle and "PASSWORD '***'" in idle[0]["query"]
    assert "PASSWORD '***'" in outputs[1]
    _no_secret("\n".join(outputs))


def test_the_store_and_the_report_never_hold_them(leaky: Leaky, tmp_path: Path) -> None:
    from lsops_lib.collect import collect_db
    from lsops_lib.config import load_settings
    from lsops_lib.store import Store

    settings = load_settings(
        env={"LSOPS_DATABASE_URL": leaky.url, "LSOPS_DATA": str(tmp_path)}, cwd=tmp_path
    )
    path = tmp_path / "m.sqlite"
    with Store(f"sqlite:///{path}") as store:
        result = collect_db(settings, store, clock=lambda: datetime(2026, 11, 1, tzinfo=UTC))
    assert result["queries"] > 0
    with sqlite3.connect(path) as conn:
        stored = [q for (q,) in conn.execute("SELECT query FROM lsops_db_queries")]
    assert sum(leaky.role in q for q in stored) == 4
    _no_secret("\n".join(stored))

    report = db.optimization_report(url=leaky.url, store=None, idle_in_transaction_s=0)
    assert report.reachable, report.error
    shown = [report.recommendations.to_string()]
    for section in report.sections.values():
        shown += [df.to_string() for df in section.frames.values()]
    text = "\n".join(shown)
    assert leaky.role in text
    _no_secret(text)


@pytest.mark.parametrize(
    ("sql", "masked"),
    [
        ("ALTER ROLE a PASSWORD 'x1'", "ALTER ROLE a PASSWORD '***'"),
        (
            "alter user a with encrypted password 'it''s' login",
            "alter user a with encrypted password '***' login",
        ),
        (
            "CREATE USER a PASSWORD $$p$w$$ VALID UNTIL 'infinity'",
            "CREATE USER a PASSWORD '***' VALID UNTIL 'infinity'",
        ),
        ("ALTER ROLE a PASSWORD $t$p$$w$t$;", "ALTER ROLE a PASSWORD '***';"),
        ("ALTER ROLE a PASSWORD E'p\\'w' LOGIN", "ALTER ROLE a PASSWORD '***' LOGIN"),
        ("ALTER ROLE a PASSWORD /* new */ 'pw'", "ALTER ROLE a PASSWORD /* new */ '***'"),
        ("ALTER ROLE a PASSWORD 'cut sho", "ALTER ROLE a PASSWORD '***'"),  # truncated text
        ("ALTER ROLE a PASSWORD NULL", "ALTER ROLE a PASSWORD NULL"),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=h password=pw dbname=d' PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION 'host=h password=*** dbname=d' PUBLICATION p",
        ),
        (
            "SELECT dblink_connect('postgresql://u:pw@h/d')",
            "SELECT dblink_connect('postgresql://u:***@h/d')",
        ),
        ("SELECT password FROM users WHERE id = $1", "SELECT password FROM users WHERE id = $1"),
        ("SELECT 'password' FROM t", "SELECT 'password' FROM t"),
    ],
)
def test_mask_secrets(sql: str, masked: str) -> None:
    assert queries.mask_secrets(sql) == masked
