"""QA 17, the live checks and what they read: hostile per-cache stats and figures of the
API (unknown and said, never a traceback or a 300-digit number), an API token echoed in
a 503 health body, `memory_limit_bytes = 0` (no limit), a checklist window ending in the
future, an error-rate incident's start, `--window` with `--until`, and counted words.

The API is the canned loopback server of tests/test_api.py serving the reference samples
(edited); the store is a real SQLite Store filled with known scrapes (tests.fixtures.analysis).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lsops_lib import analysis as A
from lsops_lib.api import Client, parse_health, parse_metrics
from lsops_lib.cli import main
from lsops_lib.cli.collect import summary_line
from lsops_lib.config import Thresholds
from lsops_lib.exceptions import ApiUnexpectedShape
from lsops_lib.store import Store
from lsops_lib.times import window
from tests.fixtures.analysis import T0, History, MiB
from tests.test_api import Canned, CannedServer, sample, sample_bytes
from tests.test_api import canned as canned  # noqa: PLC0414 - the fixture, used here
from tests.test_collect_qa13 import cli_env as cli_env  # noqa: PLC0414 - the fixture

TOKEN = "s3cr3tTOKEN-qa17"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _serve(
    canned: CannedServer, *, deep: dict[str, Any] | None = None, metrics: Any = None
) -> None:
    """/api/health: the deep-error sample (503), `deep` when given; /api/metrics: the sample."""
    body = sample_bytes("health-deep-error.json") if deep is None else json.dumps(deep).encode()
    canned.set("/api/health", Canned(503, body))
    canned.set("/api/metrics", Canned(body=json.dumps(metrics or sample("metrics.json")).encode()))


def _deep_with(context: dict[str, Any], **stats: Any) -> dict[str, Any]:
    deep = sample("health-deep-error.json")
    deep["services"]["cache"]["stats"]["context"] = context
    deep["services"]["cache"]["stats"].update(stats)
    return deep


# --- 1. lsops cache: the per-cache stats of the deep health ------------------------------


def test_per_cache_counts_given_as_strings_are_read_as_numbers(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    _serve(canned, deep=_deep_with({"keys": "3", "hits": "5", "misses": "1"}))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "cache", "--json")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    context = {c["cache"]: c for c in json.loads(result.output)["caches"]}["context"]
    assert (context["keys"], context["hits"], context["misses"]) == (3, 5, 1)
    assert context["hit_rate"] == pytest.approx(5 / 6)
    text = run(env, "cache")
    assert text.exit_code == 0 and "83.3 %" in text.output, text.output


def test_bad_per_cache_counts_are_unknown_and_said(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    deep = _deep_with({"keys": 3, "hits": 5, "misses": -10}, totalKeys="n/a")
    deep["services"]["cache"]["stats"]["embedding"] = {"keys": 1, "hits": True, "misses": 0}
    _serve(canned, deep=deep)
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    data = json.loads(run(env, "cache", "--json").output)
    caches = {c["cache"]: c for c in data["caches"]}
    assert caches["context"]["hits"] == 5 and caches["context"]["misses"] is None
    assert caches["context"]["hit_rate"] is None  # never -100 %
    assert caches["embedding"]["hits"] is None and caches["embedding"]["hit_rate"] is None
    assert data["total_keys"] is None
    said = " | ".join(data["notes"])
    assert "context.misses is negative" in said and "totalKeys is not a number" in said
    assert "embedding.hits" in said
    text = run(env, "cache")
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    assert "-100" not in text.output and "context.misses is negative" in text.output


def test_an_empty_cache_object_is_not_reported_and_a_hit_rate_beyond_100_is_recomputed(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    metrics = sample("metrics.json")
    metrics["metrics"]["cache"] = {}
    _serve(canned, metrics=metrics)
    data = json.loads(run(env, "cache", "--no-deep", "--json").output)
    assert data["reported"] is False and data["hits"] is None and data["hit_rate"] is None
    metrics["metrics"]["cache"] = {"hits": 30, "misses": 10, "hitRate": 10000}
    _serve(canned, metrics=metrics)
    result = run(env, "cache", "--no-deep", "--json")
    data = json.loads(result.output)
    assert data["reported"] is True and data["hit_rate"] == pytest.approx(30 / 40)
    assert any("hitRate is out of range" in n for n in data["notes"])
    text = run(env, "cache", "--no-deep").output
    assert "hit rate 75.0 %" in text and "10000.0 %" not in text, text


# --- 8. figures no process has: unknown and said -----------------------------------------


def test_a_negative_memory_figure_or_an_absurd_uptime_is_unknown_and_said(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    health = sample("health-quick.json")
    health["memory"]["rss"] = -5
    health["uptime"] = 1e300
    canned.set("/api/health", Canned(body=json.dumps(health).encode()))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "health", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "OK" and data["memory"]["rss"] is None and data["uptime_s"] is None
    assert data["memory"]["heap_used"] == health["memory"]["heapUsed"]  # the rest stands
    said = " | ".join(data["notes"])
    assert "health.memory.rss is negative" in said and "health.uptime is out of range" in said
    text = run(env, "health").output
    assert "-5 B" not in text and "0" * 30 not in text and "rss is negative" in text


def test_an_absurd_mean_latency_is_a_bad_shape_naming_the_field() -> None:
    payload = sample("metrics.json")
    payload["metrics"]["requests"]["byEndpoint"]["/copilot/chat"]["avgTime"] = 1e300
    with pytest.raises(ApiUnexpectedShape, match=r"/copilot/chat.*avgTime.*out of range"):
        parse_metrics(payload)
    notes: list[str] = []
    health = sample("health-quick.json")
    health["memory"]["heapTotal"] = -1
    assert parse_health(health, notes=notes).memory.heap_total is None and len(notes) == 1


# --- 3. the token echoed in a 503 health body ---------------------------------------------


def test_a_token_echoed_in_a_503_health_body_is_never_printed_nor_stored(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    body = {
        "status": "ERROR",
        "timestamp": "2026-11-29T05:50:43Z",
        "error": f"bad Authorization: Bearer {TOKEN}",
        "services": {"database": {"status": "ERROR", "message": f"rejected {TOKEN}"}},
    }
    canned.set("/api/health", Canned(503, json.dumps(body).encode()))
    canned.set("/api/metrics", Canned(body=sample_bytes("metrics.json")))
    with Client(canned.url, token=TOKEN, retries=0) as client:
        answer = client.get_health()
    assert TOKEN.encode() not in answer.body and answer.record.error is not None
    assert answer.record.error == "bad Authorization: Bearer ***"
    assert answer.record.services["database"].message == "rejected ***"
    env = {**cli_env, "LSOPS_API_URL": canned.url, "LSOPS_API_TOKEN": TOKEN}
    for args in (["health"], ["health", "--json"]):
        result = run(env, *args)
        assert result.exit_code == 2 and TOKEN not in result.output and "***" in result.output
    assert run(env, "collect", "--once", "--quick").exit_code == 0
    store_dir = Path(cli_env["LSOPS_STORE"].removeprefix("sqlite:///")).parent
    files = [p for p in store_dir.iterdir() if p.is_file()]
    assert files and not any(TOKEN.encode() in p.read_bytes() for p in files)


# --- 2. memory_limit_bytes = 0: no limit ----------------------------------------------------


def _memory(store: Store, climb_mib: int) -> None:
    """6 h of 10-minute scrapes, the RSS climbing `climb_mib` MiB each."""
    h = History(store, step=timedelta(minutes=10))
    for i in range(36):
        h.traffic("/a", 50, 20.0).scrape(rss=100 * MiB + i * climb_mib * MiB)


def test_no_memory_limit_neither_crashes_the_climbs_nor_fails_the_memory_line(
    sqlite_store: Store,
) -> None:
    _memory(sqlite_store, 3)
    end = T0 + timedelta(hours=12)
    climbing = A.incidents(sqlite_store, T0, end, Thresholds(), kinds=("memory_climb",))
    assert list(climbing["kind"]) == ["memory_climb"]  # with the 512 MiB limit: a climb
    no_limit = replace(Thresholds(), memory_limit_bytes=0)
    assert A.incidents(sqlite_store, T0, end, no_limit, kinds=("memory_climb",)).empty


def test_no_memory_limit_judges_the_memory_line_without_one(sqlite_store: Store) -> None:
    _memory(sqlite_store, 0)  # flat: no leak
    no_limit = replace(Thresholds(), memory_limit_bytes=0)
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, T0 + timedelta(hours=6), no_limit)}
    memory = checks["memory"]
    assert memory.status == "pass" and memory.value is None, memory
    assert "of 0 B" not in memory.detail and "no memory limit" in memory.detail


# --- 4. a checklist window ending in the future ---------------------------------------------


def test_a_window_ending_in_the_future_measures_staleness_from_now(sqlite_store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    h = History(sqlite_store, start=now - timedelta(hours=1))
    h.run(12, {"/a": (100, 20.0, 0)})  # up to 5 minutes ago
    later = now + timedelta(days=2)
    checks = {c.key: c for c in A.checklist(sqlite_store, now - timedelta(days=1), later)}
    assert checks["api"].status == "pass", checks["api"].detail
    assert "no observation for the last" not in checks["api"].detail


# --- 5. an error-rate incident starts at its first observation -------------------------------


def test_an_error_rate_incident_starts_at_the_first_scrape_of_its_bucket(
    sqlite_store: Store,
) -> None:
    first = T0 + timedelta(hours=2, minutes=42, seconds=37)
    h = History(sqlite_store, start=first)
    h.traffic("/b", 100, 10.0).scrape()
    h.traffic("/b", 100, 10.0, errors=100).scrape()
    found = A.incidents(sqlite_store, T0, T0 + timedelta(days=1), kinds=("error_rate",))
    assert len(found) == 1
    assert found["start"].iloc[0] == first  # not 02:00, before the store's first scrape
    assert found["duration_s"].iloc[0] == (found["end"].iloc[0] - first).total_seconds()


# --- 6. --window with --until -----------------------------------------------------------------


def test_window_with_until_ends_at_until() -> None:
    until = datetime(2026, 12, 1, tzinfo=UTC)
    assert window("7d", None, "2026-12-01T00:00Z") == (until - timedelta(days=7), until)
    with pytest.raises(Exception, match="--window or --since"):
        window("7d", "2026-11-01T00:00Z", None)


def test_window_with_until_on_the_command_line(
    sqlite_store: Store, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "LSOPS_STORE": str(sqlite_store.url)}
    History(sqlite_store).run(13, {"/a": (100, 20.0, 0)})
    args = ["--window", "1h", "--until", "2026-10-01T01:00Z", "--json"]
    rows = json.loads(run(env, "endpoints", *args).output)
    since = ["--since", "2026-10-01T00:00Z", "--until", "2026-10-01T01:00Z", "--json"]
    assert rows and rows == json.loads(run(env, "endpoints", *since).output)
    incidents = run(env, "incidents", *args)
    assert incidents.exit_code == 0 and json.loads(incidents.output) == []
    checklist = run(env, "checklist", *args)
    data = json.loads(checklist.output)
    assert (data["start"], data["end"]) == (
        "2026-10-01T00:00:00+00:00",
        "2026-10-01T01:00:00+00:00",
    )


# --- 7. counted words -------------------------------------------------------------------------


def test_one_endpoint_and_one_request_are_singular() -> None:
    s = {
        "ts": T0,
        "target": "default",
        "ok": True,
        "health": "OK",
        "endpoints": 1,
        "requests_total": 1,
        "failures": [],
        "duration_ms": 5.0,
        "stored": True,
    }
    assert "1 endpoint, 1 request  " in summary_line(s)
    assert "2 endpoints, 1,500 requests" in summary_line(
        {**s, "endpoints": 2, "requests_total": 1500}
    )


def test_restarts_alone_ask_for_no_postmortem(sqlite_store: Store, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "LSOPS_STORE": str(sqlite_store.url)}
    h = History(sqlite_store)
    h.run(3).restart().run(3)
    result = run(env, "incidents", "--since", "2026-10-01T00:00Z", "--until", "2026-10-01T02:00Z")
    assert result.exit_code == 0 and "restart" in result.output, result.output
    assert "postmortem" not in result.output


def test_one_busy_hour_is_one_hour(sqlite_store: Store) -> None:
    History(sqlite_store).run(13, {"/a": (100, 20.0, 20)})  # 00:00 .. 01:00, 20 % errors
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, T0 + timedelta(minutes=59))}
    assert "1 of 1 hour above 5 %" in checks["error_rate_stable"].detail


def test_one_hit_and_one_miss_are_singular(canned: CannedServer, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    metrics = sample("metrics.json")
    metrics["metrics"]["cache"] = {"hits": 3, "misses": 1, "hitRate": 75}
    _serve(canned, metrics=metrics)
    assert "cache: 3 hits, 1 miss, hit rate 75.0 %" in run(env, "cache", "--no-deep").output
    metrics["metrics"]["cache"] = {"hits": 1, "misses": 2, "hitRate": 33.3}
    _serve(canned, metrics=metrics)
    assert "cache: 1 hit, 2 misses," in run(env, "cache", "--no-deep").output
