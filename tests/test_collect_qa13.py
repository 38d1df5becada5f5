"""Answers and settings the collector and the morning checks must refuse in one line (QA 13):
numbers no counter holds (huge, infinite, negative), base URLs with a query or fragment,
an in-memory store, a store that does not exist; `collect --once --json` as ONE document;
the quick 503 health and the missing cache object said as they are.

The API is a canned loopback server (tests/test_api.py's), the store a real SQLite file
read back with sqlite3 (not through the store's code).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lsops_lib.cli import main
from tests.test_api import Canned, CannedServer, sample
from tests.test_api import canned as canned  # noqa: PLC0414 - the fixture, used here

TOKEN = "tok-qa13-5e1d"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no lsops.toml around
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    return {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store' / 'metrics.sqlite'}",
        "LSOPS_DATA": str(tmp_path / "data"),
        "LSOPS_PM2": "off",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def one_line_error(result: Result) -> str:
    err = result.stderr.strip()
    assert err.startswith("lsops: ") and len(err.splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    return err


def rows(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    path = env["LSOPS_STORE"][len("sqlite:///") :]
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def serve(canned: CannedServer, *, health: Any = None, metrics: Any = None) -> None:
    """The quick health and metrics samples, `metrics` as raw JSON text when given."""
    body = json.dumps(sample("health-quick.json") if health is None else health)
    canned.set("/api/health", Canned(body=body.encode()))
    canned.set(
        "/api/metrics", Canned(body=(metrics or json.dumps(sample("metrics.json"))).encode())
    )


def metrics_with(path: list[Any], raw: str) -> str:
    """The metrics sample with the value at `path` replaced by the JSON text `raw`."""
    doc = sample("metrics.json")
    node = doc["metrics"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@VALUE@@"
    return json.dumps(doc).replace('"@@VALUE@@"', raw)


# --- numbers no counter holds ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (["requests", "total"], "1e20", "metrics.requests.total"),
        (["requests", "total"], "100000000000000000000", "metrics.requests.total"),
        (["requests", "total"], "1e400", "metrics.requests.total"),
        (["requests", "total"], "-5", "metrics.requests.total"),
        (["requests", "byEndpoint", "/copilot/chat", "count"], "1e20", "'/copilot/chat'].count"),
        # (a cache counter no server holds is unknown, the answer kept: test_qa23_answers)
        (["uptime", "start"], "1e20", "metrics.uptime.start"),
        (["errors", "recentErrors", 0, "timestamp"], "1e20", "recentErrors[0].timestamp"),
        (["responseTimes", "count"], "1e12", "metrics.responseTimes.count"),
    ],
)
def test_a_number_no_counter_holds_is_a_stored_bad_shape(
    canned: CannedServer, cli_env: dict[str, str], path: list[Any], raw: str, field: str
) -> None:
    serve(canned, metrics=metrics_with(path, raw))
    result = run({**cli_env, "LSOPS_API_URL": canned.url}, "collect", "--once", "--quick")
    assert result.exit_code == 1, result.output
    err = one_line_error(result)
    assert "unexpected payload" in err and field in err
    # the failure is stored: the scrape row, no counters, the failure kind and message
    (stored,) = rows(
        cli_env,
        "SELECT s.requests_total, d.metrics_failure, d.failure_message, d.health_status "
        "FROM lsops_scrapes s JOIN lsops_scrape_details d ON d.sid = s.sid",
    )
    assert stored[0] is None and stored[1] == "bad_shape" and field in stored[2]
    assert stored[3] == "OK"  # the health answer was fine and is kept


@pytest.mark.parametrize(("key", "raw"), [("pid", "1e400"), ("pid", "1e20"), ("rss", "1e400")])
def test_health_with_a_number_no_figure_holds_is_one_line(
    canned: CannedServer, cli_env: dict[str, str], key: str, raw: str
) -> None:
    health = sample("health-quick.json")
    if key == "rss":
        health["memory"]["rss"] = "@@VALUE@@"
    else:
        health[key] = "@@VALUE@@"
    body = json.dumps(health).replace('"@@VALUE@@"', raw)
    canned.set("/api/health", Canned(body=body.encode()))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "health")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "unexpected payload" in result.output and key in result.output
    data = json.loads(run(env, "health", "--json").output)
    assert data["status"] == "NO_ANSWER" and data["kind"] == "bad_shape"


# --- base URLs and stores -----------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix", [f"/?token={TOKEN}", "/#part", f"/api?key={TOKEN}&x=1", "/?"], ids=str
)
def test_a_base_url_with_a_query_or_fragment_is_refused(
    canned: CannedServer, cli_env: dict[str, str], suffix: str
) -> None:
    serve(canned)
    env = {**cli_env, "LSOPS_API_URL": canned.url + suffix}
    for args, code in ((["collect", "--once", "--quick"], 2), (["health"], 3), (["cache"], 2)):
        result = run(env, *args)
        assert result.exit_code == code, (args, result.output)
        err = one_line_error(result)
        assert "query or fragment" in err and TOKEN not in result.output
    assert canned.hits == {}  # nothing was asked of the server


@pytest.mark.parametrize("store", ["sqlite://", "sqlite:///:memory:"])
def test_collect_refuses_an_in_memory_store(
    canned: CannedServer, cli_env: dict[str, str], store: str
) -> None:
    serve(canned)
    env = {**cli_env, "LSOPS_API_URL": canned.url, "LSOPS_STORE": store}
    for args in (["collect", "--once"], ["collect", "--every", "1m"]):
        result = run(env, *args)
        assert result.exit_code == 2, result.output
        assert "in memory" in one_line_error(result)
    assert canned.hits == {}


@pytest.mark.parametrize(
    ("args", "code"),
    [(["endpoints"], 1), (["incidents"], 1), (["checklist"], 3), (["endpoints", "--json"], 1)],
)
def test_readers_say_the_store_does_not_exist_and_create_nothing(
    tmp_path: Path, cli_env: dict[str, str], args: list[str], code: int
) -> None:
    typo = tmp_path / "some" / "typo" / "never.sqlite"
    result = run({**cli_env, "LSOPS_STORE": f"sqlite:///{typo}"}, *args)
    assert result.exit_code == code, result.output
    assert "does not exist" in one_line_error(result) and result.stdout == ""
    assert not (tmp_path / "some").exists()


# --- collect --once --json: one document ----------------------------------------------------


def test_collect_once_json_is_one_document_with_the_source_runs(
    canned: CannedServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    serve(canned)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api-out.log").write_text("2026-10-16 08:00:00 +00:00: server listening on 3001\n")
    env = {**cli_env, "LSOPS_API_URL": canned.url, "LSOPS_LOGS": str(logs / "api-*.log")}
    result = run(env, "collect", "--once", "--quick", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # ONE document (raises on a second one)
    assert {"ts", "target", "scrape_id", "ok", "stored", "health", "failures"} <= set(doc)
    assert (
        doc["ok"] is True
        and doc["requests_total"] == sample("metrics.json")["metrics"]["requests"]["total"]
    )
    (run_,) = doc["source_runs"]
    assert run_["source"] == "logs" and run_["ok"] is True
    assert rows(env, "SELECT COUNT(*) FROM lsops_scrapes") == [(1,)]


def test_collect_all_targets_json_lines_tie_each_source_run_to_its_target(
    canned: CannedServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """JSON Lines (--all-targets, --every): a source run is a line of its own, with the
    target whose round it followed and when."""
    serve(canned)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api-out.log").write_text("2026-10-16 08:00:00 +00:00: server listening on 3001\n")
    env = {**cli_env, "LSOPS_API_URL": canned.url, "LSOPS_LOGS": str(logs / "api-*.log")}
    result = run(env, "collect", "--once", "--all-targets", "--quick", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    scrapes = [x for x in lines if "scrape_id" in x]
    runs = [x for x in lines if "source_run" in x]
    assert len(scrapes) == 1 and len(runs) == 1, lines
    assert runs[0]["target"] == scrapes[0]["target"] == "default"
    assert runs[0]["source_run"]["source"] == "logs" and runs[0]["ts"] >= scrapes[0]["ts"]
    text = run(env, "collect", "--once", "--quick")  # the text: a line each, as before
    assert text.exit_code == 0 and "logs: OK" in text.stdout and "stored" in text.stdout


# --- the quick 503 health and the missing cache object --------------------------------------


def test_the_quick_503_health_claims_no_services(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    body = {"status": "ERROR", "timestamp": "2026-10-01T00:00:00Z", "error": "boom"}
    canned.set("/api/health", Canned(503, json.dumps(body).encode()))
    result = run({**cli_env, "LSOPS_API_URL": canned.url}, "health")
    assert result.exit_code == 2 and "boom" in result.output
    assert "Configured" not in result.output
    serve(canned)  # a quick answer with services still says what they mean
    assert (
        "services say 'Configured'"
        in run({**cli_env, "LSOPS_API_URL": canned.url}, "health").output
    )


def test_a_missing_cache_object_is_not_reported_not_zero(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    doc = sample("metrics.json")
    del doc["metrics"]["cache"]
    serve(canned, metrics=json.dumps(doc))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    text = run(env, "cache", "--no-deep")
    assert text.exit_code == 0 and "not reported" in text.output and "0 hits" not in text.output
    data = json.loads(run(env, "cache", "--no-deep", "--json").output)
    assert data["reported"] is False and data["hits"] is None and data["misses"] is None
    serve(canned)  # the sample's cache object: its very figures
    data = json.loads(run(env, "cache", "--no-deep", "--json").output)
    cache = sample("metrics.json")["metrics"]["cache"]
    assert data["reported"] is True and (data["hits"], data["misses"]) == (
        cache["hits"],
        cache["misses"],
    )


def test_health_json_gives_the_checks_share_as_a_fraction(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    health = sample("health-quick.json")
    health["checks"] = {
        "a": True,
        "b": False,
        "summary": {"passed": 3, "total": 5, "percentage": "60.0"},
    }
    serve(canned, health=health)
    data = json.loads(run({**cli_env, "LSOPS_API_URL": canned.url}, "health", "--json").output)
    summary = data["checks_summary"]
    assert summary["percentage"] == 60.0 and summary["fraction"] == pytest.approx(3 / 5)


def test_health_with_no_checks_gives_no_share(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    """0 of 0 checks: the server's percentage is the number 0 (quirk 5), not a measured 0 %."""
    health = sample("health-quick.json")
    health["checks"] = {"summary": {"passed": 0, "total": 0, "percentage": 0}}
    serve(canned, health=health)
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    data = json.loads(run(env, "health", "--json").output)
    assert data["checks_summary"]["total"] == 0 and data["checks_summary"]["fraction"] is None
    text = run(env, "health").output
    assert "checks passed: 0 of 0" in text and "%" not in text.split("checks passed")[1]
