"""`lsops db size|indexes|queries|maintenance` and `lsops index-stats` on a real PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lsops_lib.cli import main
from lsops_lib.db.schema import load_longsang_schema
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres

COMMANDS = [
    ["db", "size"],
    ["db", "indexes"],
    ["db", "queries"],
    ["db", "maintenance"],
    ["index-stats"],
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LSOPS_DATABASE_URL", "LSOPS_CONFIG", "LSOPS_STORE", "LSOPS_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(args: list[str], url: str | None = None, **env: str) -> Result:
    environment = {"LSOPS_DATABASE_URL": url} if url else {}
    environment.update(env)
    return CliRunner().invoke(main, args, env=environment, catch_exceptions=False)


def as_json(args: list[str], url: str) -> Any:
    result = run([*args, "--json"], url)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_db_size_json(longsang_db: Planted) -> None:
    data = as_json(["db", "size"], longsang_db.password_url)
    assert set(data) >= {"database_bytes", "tables"}
    assert isinstance(data["database_bytes"], int) and data["database_bytes"] > 0
    keys = {
        "schema",
        "table",
        "total_bytes",
        "table_bytes",
        "index_bytes",
        "toast_bytes",
        "rows_estimate",
    }
    assert all(set(t) == keys for t in data["tables"])
    assert all(isinstance(t[k], int) for t in data["tables"] for k in keys - {"schema", "table"})
    assert "context_embeddings" in {t["table"] for t in data["tables"]}


def test_db_indexes_json(longsang_db: Planted) -> None:
    data = as_json(["db", "indexes"], longsang_db.password_url)
    assert set(data) >= {"unused", "duplicate", "invalid", "fk_without_index"}
    # what the table shows, in the JSON too: when the usage counters start, seq-scan tables
    assert {"stats_reset", "stats_age_days", "seq_scan"} <= set(data)
    assert [e["table"] for e in data["seq_scan"]] == list(longsang_db.seq_scan)
    assert all(isinstance(e["seq_scan"], int) and e["seq_scan"] >= 3 for e in data["seq_scan"])
    for entry in data["unused"] + data["duplicate"] + data["invalid"]:
        assert {"schema", "table", "index"} <= set(entry)
    for entry in data["unused"]:
        assert isinstance(entry["size_bytes"], int) and entry["scans"] == 0
    assert all("covered_by" in e for e in data["duplicate"])
    assert all({"schema", "table", "columns"} <= set(e) for e in data["fk_without_index"])
    planted = set(longsang_db.tables)
    assert {e["index"] for e in data["unused"] if e["table"] in planted} == set(longsang_db.unused)
    assert {(e["index"], e["covered_by"]) for e in data["duplicate"]} == {
        *longsang_db.duplicate,
        ("idx_context_embeddings_entity_type", "context_embeddings_entity_type_entity_id_key"),
    }
    assert [e["index"] for e in data["invalid"]] == list(longsang_db.invalid)
    assert [(e["table"], e["columns"]) for e in data["fk_without_index"]] == [
        ("plant_orders", ["customer_id"])
    ]


def test_db_queries_json(longsang_db: Planted) -> None:
    data = as_json(["db", "queries"], longsang_db.password_url)
    assert set(data) >= {"available", "top", "slow"}
    assert data["by"] == "total" and data["limit"] == 10
    assert data["thresholds"] == {"slow_query_mean_ms": 20.0, "slow_query_calls": 100}
    assert data["available"] is longsang_db.has_pg_stat_statements
    for entry in data["top"] + data["slow"]:
        assert {"query", "calls", "total_ms", "mean_ms", "rows"} <= set(entry)
    if longsang_db.has_pg_stat_statements:
        assert len(data["slow"]) == 1 and "pg_sleep" in data["slow"][0]["query"]
        assert data["slow"][0]["calls"] >= 100


def test_db_maintenance_json(longsang_db: Planted) -> None:
    data = as_json(["db", "maintenance"], longsang_db.password_url)
    keys = {
        "schema",
        "table",
        "dead_tuples",
        "live_tuples",
        "last_vacuum",
        "last_autovacuum",
        "last_analyze",
        "last_autoanalyze",
    }
    assert data["tables"] and all(keys <= set(t) for t in data["tables"])
    events = next(t for t in data["tables"] if t["table"] == "plant_events")
    assert events["dead_tuples"] == 2000 and events["last_vacuum"] is None
    assert [t["table"] for t in data["needs_vacuum"]] == ["plant_events"]
    assert {
        "wraparound",
        "sequences",
        "connections",
        "cache",
        "long_running",
        "idle_in_transaction",
    } <= set(data)
    assert data["connections"]["max_connections"] == 40


def test_index_stats_json(longsang_db: Planted) -> None:
    data = as_json(["index-stats"], longsang_db.password_url)
    assert [set(e) for e in data["by_entity_type"]] == [
        {"entity_type", "count", "last_indexed"}
    ] * 5
    assert [(e["entity_type"], e["count"]) for e in data["by_entity_type"]] == list(
        longsang_db.embeddings_by_type
    )
    assert data["log"]["failed"] == 2 and data["log"]["pending"] == 1
    assert isinstance(data["log"]["failed"], int)
    assert data["log"]["tokens_used"] == longsang_db.tokens_used
    assert len(data["latest_failures"]) == 2


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_tables_and_no_password_anywhere(
    longsang_db: Planted, pg_cluster: Any, args: list[str]
) -> None:
    result = run(args, longsang_db.password_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    for output in (result.stdout, result.stderr):
        assert pg_cluster.password not in output


def test_text_formats_are_fmt_s(longsang_db: Planted) -> None:
    """Sizes in IEC units (never "kB" for 1,024 bytes), instants labelled UTC."""
    size = run(["db", "size"], longsang_db.password_url)
    assert size.exit_code == 0 and "KiB" in size.stdout and "MiB" in size.stdout
    assert not re.search(r"\d (kB|MB|GB)\b", size.stdout)
    stats = run(["index-stats"], longsang_db.password_url, COLUMNS="200")
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", stats.stdout)
    assert not re.search(r"\d{2}:\d{2} (?!UTC)\S", stats.stdout.replace("│", " "))


def test_named_database_from_lsops_toml(longsang_db: Planted, tmp_path: Path) -> None:
    (tmp_path / "lsops.toml").write_text('[databases.planted]\nurl_env = "PLANTED_DB_URL"\n')
    result = run(
        ["db", "size", "--json", "--database", "planted"], PLANTED_DB_URL=longsang_db.password_url
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["database_bytes"] > 0
    unknown = run(["db", "size", "--database", "nope"], PLANTED_DB_URL=longsang_db.password_url)
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_no_database_configured_exits_2(args: list[str]) -> None:
    result = run(args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no database configured" in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_database_exits_1_in_one_line(args: list[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run([*args, "--json"], f"postgresql://ops:Hunter2Secret@127.0.0.1:{port}/prod")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot connect" in result.stderr
    assert "Hunter2Secret" not in result.stderr and "***" in result.stderr


def test_every_command_works_without_pg_stat_statements(pg_url: str) -> None:
    load_longsang_schema(pg_url)  # a LongSang database where the extension was never created
    for args in COMMANDS:
        result = run(args, pg_url)
        assert result.exit_code == 0, (args, result.stderr)
    data = run(["db", "queries", "--json"], pg_url)
    assert data.exit_code == 0
    body = json.loads(data.stdout)
    assert {k: body[k] for k in ("available", "top", "slow")} == {
        "available": False,
        "top": [],
        "slow": [],
    }
    assert "pg_stat_statements" in body["message"]
    assert "pg_stat_statements" in data.stderr and "shared_preload_libraries" in data.stderr
    table = run(["db", "queries"], pg_url)
    assert "unavailable" in table.stdout and "CREATE EXTENSION pg_stat_statements" in table.stdout


def test_every_command_works_on_a_cluster_without_pg_stat_statements(
    pg_cluster_no_pgss: Any,
) -> None:
    url = pg_cluster_no_pgss.create_database("longsang_nopgss")
    load_longsang_schema(url)
    for args in COMMANDS:
        result = run([*args, "--json"], url)
        assert result.exit_code == 0, (args, result.stderr)
    assert json.loads(run(["db", "queries", "--json"], url).stdout)["available"] is False


# --- issue 13: statistics age, the unused-index gate, thresholds from lsops.toml ----------------


def _postmaster_start(url: str) -> Any:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT pg_postmaster_start_time()")).scalar()
    finally:
        engine.dispose()


def test_db_indexes_always_says_since_when_the_statistics_count(longsang_db: Planted) -> None:
    data = as_json(["db", "indexes"], longsang_db.password_url)
    assert data["stats_reset"] is None  # a fresh cluster: never reset
    assert data["stats_since_source"] == "postmaster start"
    start = _postmaster_start(longsang_db.url)
    assert data["stats_since"] == start.astimezone(UTC).isoformat()
    assert 0 <= data["stats_age_days"] < 1
    assert data["unused_index_min_age"] == 30.0 and data["unavailable"] == []
    assert data["unused"] and not any(e["drop_proposed"] for e in data["unused"])
    text = run(["db", "indexes"], longsang_db.password_url, COLUMNS="200")
    flat = " ".join(text.stdout.split())
    assert "usage statistics never reset: counting since the start" in flat
    assert "once they cover 30 days" in flat and "not yet" in flat
    # the age as a duration (the fresh cluster's few seconds or minutes), not "0.00 days"
    assert re.search(r"\((\d+ s|\d+ min|\d+ h \d\d min) ago\)", flat), flat


def test_thresholds_from_lsops_toml_reach_the_db_commands(
    longsang_db: Planted, tmp_path: Path
) -> None:
    (tmp_path / "lsops.toml").write_text(
        "[thresholds]\nlong_running_s = 7\nidle_in_transaction_s = 3\n"
        'unused_index_min_age = "0d"\ndead_tuples_min = 5000\n'
    )
    maintenance = as_json(["db", "maintenance"], longsang_db.password_url)
    assert maintenance["thresholds"] == {
        "dead_tuples_min": 5000,
        "dead_tuple_ratio": 0.10,
        "long_running_s": 7.0,
        "idle_in_transaction_s": 3.0,
    }
    assert maintenance["needs_vacuum"] == []  # plant_events has 2,000 dead: below 5,000 now
    indexes = as_json(["db", "indexes"], longsang_db.password_url)
    assert indexes["unused_index_min_age"] == 0.0
    unused = indexes["unused"]
    # all proposed once the age is 0, but those a foreign key needs: kept (QA 24)
    assert unused and all(e["drop_proposed"] is (e["foreign_key"] is None) for e in unused)
    assert {e["index"] for e in unused if e["drop_proposed"]} >= {"idx_plant_orders_note"}


def test_an_unknown_threshold_in_lsops_toml_exits_2(longsang_db: Planted, tmp_path: Path) -> None:
    (tmp_path / "lsops.toml").write_text("[thresholds]\nlong_running = 7\n")
    result = run(["db", "maintenance"], longsang_db.password_url)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "unknown threshold 'long_running'" in result.stderr
    assert "long_running_s" in result.stderr  # the known ones are listed
