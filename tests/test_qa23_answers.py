"""QA 23, figures of the API's answers no process can have: unknown and said, the rest of
the answer kept.

1. A `metrics.cache` counter no server can have (negative, beyond the integers the store
   keeps, no number at all) is None and named in the notes, as a bad `hitRate` is: one
   bad cache counter no longer costs `lsops collect` every endpoint figure of the scrape,
   nor `lsops cache` its answer. The same for the other top-level figures nothing else is
   built on (`errors.total` / `errors.recent`, `uptime.duration`); the counters the
   history is built on (`requests.total`, per endpoint, `uptime.start`) stay strict.
2. A `heapUsed` above `heapTotal` (V8's used heap is a part of its total) is unknown and
   said, as a negative RSS is: `heapTotal` is kept.

The API is the canned loopback server of tests/test_api.py answering fixed payloads (the
reference samples, edited); the CLI runs through click's CliRunner; the store is a real
SQLite file, read back with sqlite3 and through `Store`. Every expected value is written
here (the sample's cache is 57 hits, 23 misses, hitRate 71.25; its heap 29859840 bytes).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lsops_lib.api import parse_health, parse_metrics
from lsops_lib.cli import main
from lsops_lib.exceptions import ApiUnexpectedShape
from lsops_lib.store import Store
from tests.test_api import Canned, CannedServer, client_of, sample
from tests.test_api import canned as canned  # noqa: PLC0414 - the fixture, used here
from tests.test_collect_qa13 import cli_env as cli_env  # noqa: PLC0414 - the fixture
from tests.test_collect_qa13 import rows

HEAP_TOTAL = 42_362_880  # 40.4 MiB
HEAP_USED_TWICE = 84_725_760  # 80.8 MiB: twice the total, the QA's answer


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def metrics_text(path: list[Any], raw: str, doc: dict[str, Any] | None = None) -> str:
    """The metrics sample (or `doc`) with the value at `path` replaced by the JSON text
    `raw`, as the wire carries it (1e400, true, "n/a")."""
    doc = sample("metrics.json") if doc is None else doc
    node = doc["metrics"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@VALUE@@"
    return json.dumps(doc).replace('"@@VALUE@@"', raw)


def serve(canned: CannedServer, *metrics: str, health: dict[str, Any] | None = None) -> None:
    """/api/health: the quick sample (or `health`); /api/metrics: the given bodies in turn."""
    body = json.dumps(sample("health-quick.json") if health is None else health)
    canned.set("/api/health", Canned(body=body.encode()))
    canned.set("/api/metrics", *(Canned(body=m.encode()) for m in metrics))


def said(notes: list[str] | tuple[str, ...]) -> str:
    return " | ".join(notes)


# --- 1. the metrics answer's cache: the parser ------------------------------------------

BAD_COUNTERS = [
    ("hits", "-1", "metrics.cache.hits is negative"),
    ("misses", "-13", "metrics.cache.misses is negative"),
    ("hits", "1e300", "metrics.cache.hits is out of range"),
    ("hits", "9007199254740993", "metrics.cache.hits is out of range"),  # 2**53 + 1
    ("misses", "1e400", "metrics.cache.misses is not a finite number"),
    ("hits", '"n/a"', "metrics.cache.hits is not a number"),
    ("misses", "true", "metrics.cache.misses is not a number"),
]


@pytest.mark.parametrize(("key", "raw", "note"), BAD_COUNTERS)
def test_a_cache_counter_no_server_has_is_unknown_and_said(key: str, raw: str, note: str) -> None:
    notes: list[str] = []
    metrics = parse_metrics(json.loads(metrics_text(["cache", key], raw)), notes=notes)
    other = "misses" if key == "hits" else "hits"
    assert getattr(metrics.cache, key) is None
    assert getattr(metrics.cache, other) == {"hits": 57, "misses": 23}[other]  # kept
    assert metrics.cache.hit_rate == pytest.approx(0.7125)  # the server's rate stands
    assert note in said(notes) and "shown as unknown" in said(notes), notes
    # the rest of the answer stands: every endpoint, the counters, the uptime
    assert metrics.requests_total == 122 and len(metrics.endpoints) == 4
    assert metrics.endpoints["/copilot/chat"].count == 40
    assert metrics.uptime.start_ms == 1795931440731 and metrics.errors_kept == 5


def test_a_bad_hit_rate_with_an_unknown_counter_is_unknown_not_zero() -> None:
    doc = sample("metrics.json")
    doc["metrics"]["cache"] = {"hits": -1, "misses": 23, "hitRate": "n/a"}
    notes: list[str] = []
    cache = parse_metrics(doc, notes=notes).cache
    assert (cache.hits, cache.misses, cache.hit_rate) == (None, 23, None)
    assert "metrics.cache.hitRate is not a number" in said(notes)
    assert "metrics.cache.hits is negative" in said(notes)


def test_a_bad_or_missing_hit_rate_is_the_counters_rate() -> None:
    doc = sample("metrics.json")
    doc["metrics"]["cache"] = {"hits": 30, "misses": 10, "hitRate": "n/a"}
    notes: list[str] = []
    assert parse_metrics(doc, notes=notes).cache.hit_rate == pytest.approx(0.75)
    assert "metrics.cache.hitRate is not a number" in said(notes)
    doc["metrics"]["cache"] = {"hits": 30, "misses": 10}  # none given: the counters' rate
    assert parse_metrics(doc).cache.hit_rate == pytest.approx(0.75)
    doc["metrics"]["cache"] = {"hits": 0, "misses": 0, "hitRate": 0}  # no operation: 0
    assert parse_metrics(doc).cache.hit_rate == 0.0


def test_a_cache_that_is_no_object_is_unknown_and_said() -> None:
    notes: list[str] = []
    metrics = parse_metrics(json.loads(metrics_text(["cache"], '"n/a"')), notes=notes)
    assert (metrics.cache.hits, metrics.cache.misses, metrics.cache.hit_rate) == (None,) * 3
    assert "metrics.cache is not an object (got str)" in said(notes)
    assert len(metrics.endpoints) == 4


def test_a_missing_cache_object_still_reads_as_no_operation() -> None:
    doc = sample("metrics.json")
    del doc["metrics"]["cache"]
    notes: list[str] = []
    cache = parse_metrics(doc, notes=notes).cache
    assert (cache.hits, cache.misses, cache.hit_rate) == (0, 0, 0.0) and notes == []


# --- 1. the other top-level figures ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "note"),
    [
        (["errors", "total"], "-5", "metrics.errors.total is negative (got -5)"),
        (["errors", "total"], "1e10", "metrics.errors.total is out of range"),
        (["errors", "recent"], "-1", "metrics.errors.recent is negative (got -1)"),
        (["errors", "recent"], "4294967296", "metrics.errors.recent is out of range"),
    ],
)
def test_an_errors_count_no_server_has_is_unknown_and_said(
    path: list[str], raw: str, note: str
) -> None:
    notes: list[str] = []
    metrics = parse_metrics(json.loads(metrics_text(path, raw)), notes=notes)
    bad, good = (
        ("errors_kept", "errors_recent") if path[1] == "total" else ("errors_recent", "errors_kept")
    )
    assert getattr(metrics, bad) is None and getattr(metrics, good) == 5
    assert note in said(notes)
    assert len(metrics.recent_errors) == 5 and len(metrics.endpoints) == 4


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("-2970", "metrics.uptime.duration is negative (got -2970)"),
        ("1e300", "metrics.uptime.duration is out of range"),
    ],
)
def test_an_uptime_duration_no_process_has_is_unknown_and_said(raw: str, note: str) -> None:
    notes: list[str] = []
    metrics = parse_metrics(json.loads(metrics_text(["uptime", "duration"], raw)), notes=notes)
    assert metrics.uptime.duration_ms is None and note in said(notes)
    # the series' own figures stand
    assert metrics.uptime.start_ms == 1795931440731
    assert metrics.uptime.last_reset_ms == 1795931440731


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (["requests", "total"], '"n/a"', "metrics.requests.total"),
        (["requests", "total"], "-5", "metrics.requests.total"),
        (["requests", "byEndpoint", "/copilot/chat", "count"], "-1", "'/copilot/chat'].count"),
        (["uptime", "start"], "1e20", "metrics.uptime.start"),
        (["uptime", "lastReset"], "1e20", "metrics.uptime.lastReset"),
        (["errors", "total"], '"n/a"', "metrics.errors.total"),
    ],
)
def test_the_figures_the_history_is_built_on_stay_strict(
    path: list[str], raw: str, field: str
) -> None:
    """requests and the uptime's start and reset make the series (a missing start reads as
    a restart in the store): an answer without a proper one is a bad shape, as is a
    figure that is no number at all outside the cache."""
    with pytest.raises(ApiUnexpectedShape, match=field.replace("[", r"\[").replace(".", r"\.")):
        parse_metrics(json.loads(metrics_text(path, raw)))


# --- 1. end to end: lsops collect and what lsops cache reads ----------------------------


def test_collect_keeps_every_endpoint_of_an_answer_with_a_bad_cache_counter(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    serve(canned, metrics_text(["cache", "hits"], "-1"))
    result = run({**cli_env, "LSOPS_API_URL": canned.url}, "collect", "--once", "--quick", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["ok"] is True and summary["failures"] == []
    assert summary["endpoints"] == 4 and summary["requests_total"] == 122
    (scrape,) = rows(
        cli_env, "SELECT ok, requests_total, cache_hits, cache_misses FROM lsops_scrapes"
    )
    assert scrape == (1, 122, None, 23)  # unknown stays unknown: NULL, never 0
    counts = dict(
        rows(
            cli_env,
            "SELECT e.path, s.count FROM lsops_samples s JOIN lsops_endpoints e "
            "ON e.id = s.endpoint_id",
        )
    )
    assert counts == {"/projects/:id": 40, "/copilot/suggestions": 40, "/copilot/chat": 40,
                      "/health": 2}  # fmt: skip


def _scrape_doc(total: int, chat: int, hits: str, misses: int, minute: int) -> str:
    """The metrics sample a few minutes on: `chat` requests of /copilot/chat so far, the
    cache's hits as the JSON text `hits`."""
    doc = sample("metrics.json")
    m = doc["metrics"]
    m["requests"]["total"] = total
    m["requests"]["byEndpoint"]["/copilot/chat"]["count"] = chat
    m["cache"]["misses"] = misses
    m["cache"].pop("hitRate")
    m["timestamp"] = f"2026-11-29T05:5{minute}:43.701Z"
    return metrics_text(["cache", "hits"], hits, doc)


def test_an_unknown_cache_counter_is_no_reset_and_loses_no_endpoint_figure(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    serve(
        canned,
        _scrape_doc(122, 40, "100", 20, 1),
        _scrape_doc(130, 45, "-1", 25, 2),
        _scrape_doc(140, 50, "150", 30, 3),
    )
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    for _ in range(3):
        result = run(env, "collect", "--once", "--quick")
        assert result.exit_code == 0, result.output
    stored = rows(env, "SELECT requests_total, cache_hits, cache_misses FROM lsops_scrapes "
                  "ORDER BY sid")  # fmt: skip
    assert stored == [(122, 100, 20), (130, None, 25), (140, 150, 30)]
    store = Store(env["LSOPS_STORE"])
    counters = store.counter_intervals(bucket="day")
    assert int(counters["resets"].sum()) == 0  # the unknown counter is no new series
    # hits 100 -> ? -> 150: never the whole cumulative 150 of a counter that started
    # again; the misses (20 -> 25 -> 30) of the same intervals left out with them: a rate
    # of misses without their hits would be a fall of the hit rate that never happened
    assert (int(counters["cache_hits"].sum()), int(counters["cache_misses"].sum())) == (0, 0)
    assert int(counters["requests"].sum()) == 18  # 122 -> 130 -> 140
    chat = store.endpoint_intervals(bucket="day")
    assert int(chat.loc[chat["endpoint"] == "/copilot/chat", "requests"].sum()) == 10


def test_the_client_reads_a_bad_cache_counter_as_unknown_and_says_so(
    canned: CannedServer,
) -> None:
    serve(canned, metrics_text(["cache", "misses"], "-13"))
    with client_of(canned.url) as client:
        answer = client.get_metrics()
    cache = answer.record.cache
    assert (cache.hits, cache.misses, cache.hit_rate) == (57, None, pytest.approx(0.7125))
    assert "metrics.cache.misses is negative (got -13): shown as unknown" in answer.notes
    assert len(answer.record.endpoints) == 4


def test_lsops_cache_says_a_cache_that_is_no_object(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    serve(canned, metrics_text(["cache"], "[1, 2]"))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "cache", "--no-deep", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["hits"] is None and data["misses"] is None and data["hit_rate"] is None
    assert "metrics.cache is not an object (got list): shown as unknown" in data["notes"]
    text = run(env, "cache", "--no-deep")
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    assert "not an object" in text.output


@pytest.mark.parametrize(("key", "raw"), [("hits", "-1"), ("misses", "-13"), ("hits", "1e300")])
def test_lsops_cache_shows_a_bad_cache_counter_as_unknown(
    canned: CannedServer, cli_env: dict[str, str], key: str, raw: str
) -> None:
    serve(canned, metrics_text(["cache", key], raw))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "cache", "--no-deep", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    other = "misses" if key == "hits" else "hits"
    assert data[key] is None and data[other] == {"hits": 57, "misses": 23}[other]
    assert data["operations"] is None
    assert any(f"metrics.cache.{key} is" in n for n in data["notes"]), data["notes"]
    text = run(env, "cache", "--no-deep")
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    flat = " ".join(text.output.split())
    assert f"metrics.cache.{key} is" in flat
    assert f"{raw} {key}" not in flat and "0" * 30 not in flat  # never -1 hits, nor 1e300


# --- 2. heapUsed above heapTotal ---------------------------------------------------------


def test_a_heap_used_above_its_total_is_unknown_and_said() -> None:
    health = sample("health-quick.json")
    health["memory"]["heapTotal"] = HEAP_TOTAL
    health["memory"]["heapUsed"] = HEAP_USED_TWICE
    notes: list[str] = []
    memory = parse_health(health, notes=notes).memory
    assert memory.heap_used is None and memory.heap_total == HEAP_TOTAL  # the total kept
    assert memory.rss == 70930432 and memory.external == 3578057  # the rest stands
    assert notes == [
        "health.memory.heapUsed is above heapTotal (got 84725760 > 42362880; a heap never "
        "uses more than it holds): heapUsed shown as unknown"
    ]


def test_a_heap_used_up_to_its_total_is_a_figure() -> None:
    health = sample("health-quick.json")
    health["memory"]["heapUsed"] = health["memory"]["heapTotal"]  # 29859840: all of it used
    notes: list[str] = []
    memory = parse_health(health, notes=notes).memory
    assert (memory.heap_used, memory.heap_total, notes) == (29859840, 29859840, [])


def test_a_negative_heap_total_is_said_once_and_the_used_heap_kept() -> None:
    health = sample("health-quick.json")
    health["memory"]["heapTotal"] = -1
    notes: list[str] = []
    memory = parse_health(health, notes=notes).memory
    assert memory.heap_total is None and memory.heap_used == 16828384
    assert notes == ["health.memory.heapTotal is negative (got -1): shown as unknown"]


def _deep_ok(**memory: int) -> dict[str, Any]:
    """The deep sample made an OK answer (every service and check passing), its memory
    edited."""
    deep = sample("health-deep-error.json")
    deep["status"] = "OK"
    for name in ("database", "vectorDB"):
        deep["services"][name] = {"status": "OK", "message": "Connected"}
    deep["checks"] = {name: True for name in deep["services"]}
    deep["checks"]["summary"] = {"passed": 5, "total": 5, "percentage": "100.0"}
    deep["memory"].update(memory)
    return deep


def test_lsops_health_deep_shows_a_heap_used_above_its_total_as_unknown(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    deep = _deep_ok(rss=-5, heapTotal=HEAP_TOTAL, heapUsed=HEAP_USED_TWICE)
    canned.set("/api/health", Canned(body=json.dumps(deep).encode()))
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    result = run(env, "health", "--deep", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "OK"
    assert data["memory"]["heap_used"] is None and data["memory"]["heap_total"] == HEAP_TOTAL
    assert data["memory"]["rss"] is None and data["memory"]["external"] == 3578061
    notes = said(data["notes"])
    assert "health.memory.rss is negative (got -5)" in notes
    assert "health.memory.heapUsed is above heapTotal (got 84725760 > 42362880" in notes
    text = run(env, "health", "--deep")
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    flat = " ".join(text.output.split())
    assert "80.8 MiB" not in flat and "of 40.4 MiB" in flat
    assert "heapUsed is above heapTotal" in flat and "heapUsed shown as unknown" in flat
