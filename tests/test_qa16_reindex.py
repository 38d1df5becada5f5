"""`lsops reindex-list` when nothing could be checked (QA 16): the count to re-index is
unknown, never 0 or "none" (README: "never an error and never 0"), and a role without USAGE
on the schema of the LongSang tables is told so, not that the tables are absent. On a real
PostgreSQL."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import reindex
from lsops_lib.db.schema import load_longsang_schema

pytestmark = pytest.mark.postgres


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def test_an_empty_database_has_an_unknown_count_not_0(
    pg_url: str, lsops_env: dict[str, str]
) -> None:
    with db.connect(pg_url) as insp:
        listing = reindex.reindex_list(insp)
    assert listing.total is None and listing.counts()["to_reindex"] is None
    assert listing.by_type["to_reindex"].isna().all()
    env = {**lsops_env, "LSOPS_DATABASE_URL": pg_url}
    data = json.loads(CliRunner().invoke(main, ["reindex-list", "--json"], env=env).stdout)
    assert data["to_reindex"] is None
    assert all(row["to_reindex"] is None for row in data["by_type"])
    text = CliRunner().invoke(main, ["reindex-list"], env=env)
    assert text.exit_code == 0, text.output
    assert "Entities to re-index: unknown" in text.stdout
    assert "Entities to re-index: none" not in text.stdout


def test_a_role_without_usage_on_the_schema_is_told_so(
    pg_url: str, lsops_env: dict[str, str]
) -> None:
    load_longsang_schema(pg_url)
    role, password = f"nousage_{uuid.uuid4().hex[:8]}", "NoUsage-7q"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # type: ignore[arg-type]
        conn.execute("REVOKE USAGE ON SCHEMA public FROM PUBLIC")
        usable = conn.execute("SELECT has_schema_privilege('public', 'USAGE')").fetchone()
    assert usable == (True,)  # the superuser still reaches the tables
    url = sa.engine.make_url(pg_url).set(username=role, password=password)
    with db.connect(url.render_as_string(False)) as insp:
        listing = reindex.reindex_list(insp)
    assert any("no USAGE on schema public" in n for n in listing.notes), listing.notes
    assert listing.total is None
    env = {**lsops_env, "LSOPS_DATABASE_URL": url.render_as_string(False)}
    result = CliRunner().invoke(main, ["reindex-list"], env=env)
    assert result.exit_code == 0, result.output
    assert "no USAGE on schema public" in result.stdout
    assert password not in result.output
