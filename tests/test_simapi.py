"""lsops_lib.simapi: a real loopback server speaking the reference formats and quirks."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lsops_lib.api import Client, parse_metrics
from lsops_lib.exceptions import ApiUnreachable
from lsops_lib.simapi import (
    EndpointSpec,
    Event,
    Scenario,
    SimClock,
    SimulatedAPI,
    iso_ms,
    normalize_path,
)

START = datetime(2026, 10, 1, tzinfo=UTC)


def keys_of(value: Any) -> Any:
    """The key structure of a JSON value (dicts: key -> structure; lists: first item)."""
    if isinstance(value, dict):
        return {k: keys_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys_of(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def get(api: SimulatedAPI, path: str) -> httpx.Response:
    return httpx.get(api.url + path, timeout=5.0)


def busy_scenario(per_minute: float = 60.0, **kwargs: Any) -> Scenario:
    endpoints = [
        EndpointSpec("/copilot/chat", "POST", per_minute, 400.0, 0.05),
        EndpointSpec("/projects/:id", "GET", per_minute, 20.0, 0.05),
    ]
    return Scenario(endpoints=endpoints, start=START, **kwargs)


def started(scenario: Scenario, clock: SimClock | None = None, **kwargs: Any) -> SimulatedAPI:
    return SimulatedAPI(scenario, clock=clock, **kwargs).start()


# --- formats, key for key ------------------------------------------------------------------


def test_health_quick_matches_sample_keys(
    sim_api: SimulatedAPI, sim_clock: SimClock, samples_dir: Path
) -> None:
    sim_clock.advance(timedelta(minutes=5))
    response = get(sim_api, "/api/health")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json"
    )
    body = response.json()
    reference = json.loads((samples_dir / "health-quick.json").read_text())
    assert keys_of(body).keys() == keys_of(reference).keys()
    assert keys_of(body["memory"]) == keys_of(reference["memory"])
    assert keys_of(body["services"]) == keys_of(reference["services"])
    assert keys_of(body["checks"]) == keys_of(reference["checks"])
    assert "percentage" not in body["checks"]["summary"]
    assert body["services"]["database"]["message"] == "Configured"
    assert isinstance(body["uptime"], float) and body["timestamp"] == iso_ms(sim_api.now_ms())


def test_health_deep_error_matches_sample_keys(samples_dir: Path) -> None:
    clock = SimClock(START + timedelta(minutes=10))
    scenario = busy_scenario(events=[Event("error", START, START + timedelta(hours=1))])
    with started(scenario, clock) as api:
        response = get(api, "/api/health?deep=true")
    reference = json.loads((samples_dir / "health-deep-error.json").read_text())
    body = response.json()
    assert response.status_code == 503
    assert keys_of(body).keys() == keys_of(reference).keys()
    assert keys_of(body["services"]) == keys_of(reference["services"])
    assert keys_of(body["checks"]) == keys_of(reference["checks"])
    assert body["status"] == "ERROR" and body["checks"]["summary"]["percentage"] == "60.0"
    assert body["services"]["database"]["responseTime"].endswith("ms")


def test_health_deep_ok_and_degraded() -> None:
    clock = SimClock(START + timedelta(minutes=10))
    scenario = busy_scenario(
        events=[Event("degraded", START + timedelta(hours=1), START + timedelta(hours=2))]
    )
    with started(scenario, clock) as api, Client(api.url, retries=0) as client:
        ok = client.health(deep=True)
        assert ok.status == "OK" and ok.checks_percentage == 100.0 and ok.checks_total == 5
        assert (
            ok.services["database"].message == "Connected"
            and ok.services["database"].response_time_ms
        )
        assert set(ok.services["cache"].stats) >= {"totalKeys", "context", "embedding"}
        clock.advance(timedelta(hours=1))
        degraded = client.get_health(deep=True)
        assert degraded.status == 200 and degraded.record.status == "DEGRADED"
        assert degraded.record.checks_percentage == 80.0
        assert client.health().status == "OK"  # quick mode only checks configuration


def test_health_exception_shape() -> None:
    clock = SimClock(START + timedelta(minutes=10))
    scenario = busy_scenario(events=[Event("error", START, START + timedelta(hours=1), value=1.0)])
    with started(scenario, clock) as api:
        response = get(api, "/api/health")
    assert response.status_code == 503
    assert set(response.json()) == {"status", "timestamp", "error"}


def test_metrics_matches_sample_keys(
    sim_api: SimulatedAPI, sim_clock: SimClock, samples_dir: Path
) -> None:
    sim_clock.advance(timedelta(hours=6))
    body = get(sim_api, "/api/metrics").json()
    reference = json.loads((samples_dir / "metrics.json").read_text())
    assert body.keys() == reference.keys() and body["success"] is True
    m, r = body["metrics"], reference["metrics"]
    assert m.keys() == r.keys()
    assert m["requests"].keys() == r["requests"].keys()
    assert set(m["requests"]["byStatus"]) <= {"2xx", "4xx", "5xx"}
    for stats in m["requests"]["byEndpoint"].values():
        assert stats.keys() == {"count", "avgTime", "errorRate"}
        assert 0 <= stats["errorRate"] <= 100
    assert m["responseTimes"].keys() == r["responseTimes"].keys()
    assert m["errors"].keys() == r["errors"].keys()
    assert m["cache"].keys() == r["cache"].keys() and 0 <= m["cache"]["hitRate"] <= 100
    assert m["uptime"].keys() == r["uptime"].keys()
    http_shape = set(r["errors"]["recentErrors"][0])
    shapes = {frozenset(e) for e in m["errors"]["recentErrors"]}
    assert shapes <= {
        frozenset(http_shape),
        frozenset({"endpoint", "error", "stack", "context", "timestamp"}),
    }
    assert all(not k.startswith("/api") for k in m["requests"]["byEndpoint"])
    assert m["timestamp"] == iso_ms(sim_api.now_ms())
    assert m["uptime"]["start"] == int(START.timestamp() * 1000)
    assert m["uptime"]["duration"] == 6 * 3_600_000
    parse_metrics(body)  # and lsops reads it


def test_both_error_shapes_and_min_null_occur() -> None:
    clock = SimClock(START)
    with started(busy_scenario(seed=3), clock) as api:
        shapes: set[frozenset[str]] = set()
        perf_min_null = False
        for _ in range(20):
            clock.advance(timedelta(minutes=10))
            m = get(api, "/api/metrics").json()["metrics"]
            shapes.update(frozenset(e) for e in m["errors"]["recentErrors"])
            perf_min_null |= any(op["min"] is None for op in m["performance"].values())
            assert len(m["errors"]["recentErrors"]) <= 10
    assert frozenset({"endpoint", "method", "statusCode", "timestamp"}) in shapes
    assert frozenset({"endpoint", "error", "stack", "context", "timestamp"}) in shapes
    assert perf_min_null


def test_endpoint_metrics_formats(
    sim_api: SimulatedAPI, sim_clock: SimClock, samples_dir: Path
) -> None:
    sim_clock.advance(timedelta(minutes=30))
    ok = get(sim_api, "/api/metrics/endpoint/%2Fcopilot%2Fchat")
    reference = json.loads((samples_dir / "endpoint-metrics.json").read_text())
    assert ok.status_code == 200 and keys_of(ok.json()).keys() == reference.keys()
    assert ok.json()["metrics"].keys() == reference["metrics"].keys()
    assert ok.json()["endpoint"] == "/copilot/chat"
    missing = get(sim_api, "/api/metrics/endpoint/%2Fnever%2Fcalled")
    assert missing.status_code == 404
    assert missing.json() == json.loads((samples_dir / "endpoint-metrics-404.json").read_text())
    unencoded = get(sim_api, "/api/metrics/endpoint/api/copilot/chat")
    assert unencoded.status_code == 404 and unencoded.headers["content-type"].startswith(
        "text/html"
    )
    assert unencoded.content == (samples_dir / "endpoint-metrics-unencoded-404.html").read_bytes()
    with Client(sim_api.url, retries=0) as client:
        chat = client.endpoint_metrics("/copilot/chat")
        assert chat is not None and chat.count > 0 and chat.min_ms <= chat.avg_ms <= chat.max_ms
        assert client.endpoint_metrics("/never/called") is None


# --- quirks ------------------------------------------------------------------------------------


def test_percentiles_by_index_unsorted() -> None:
    clock = SimClock(START)
    with started(busy_scenario(per_minute=5.0), clock) as api, Client(api.url, retries=0) as client:
        disordered = 0
        for _ in range(30):
            clock.advance(timedelta(minutes=7))
            rt = client.metrics().response_times
            assert rt is not None and rt.min <= rt.avg <= rt.max
            for p in (rt.p50, rt.p95, rt.p99):
                assert rt.min <= p <= rt.max
            disordered += not rt.ordered
    assert disordered > 0  # quirk 1 happens


def test_monitoring_traffic_is_counted(sim_api: SimulatedAPI, sim_clock: SimClock) -> None:
    with Client(sim_api.url, retries=0) as client:
        client.health()
        client.metrics()
        first = client.metrics()  # same instant: neither is counted yet
        assert "/health" not in first.endpoints
        sim_clock.advance(timedelta(seconds=1))
        second = client.metrics()
        assert second.endpoints["/health"].count == 1
        assert second.endpoints["/metrics"].count == 2
        client.endpoint_metrics("/copilot/chat")
        sim_clock.advance(timedelta(seconds=1))
        third = client.metrics()
        assert third.endpoints["/metrics/endpoint/:endpoint"].count == 1
        assert third.endpoints["/metrics"].count == 3


def test_deep_503_counts_as_health_error() -> None:
    clock = SimClock(START + timedelta(minutes=1))
    scenario = busy_scenario(events=[Event("error", START, START + timedelta(hours=1))])
    with started(scenario, clock) as api, Client(api.url, retries=0) as client:
        assert client.get_health(deep=True).status == 503
        clock.advance(timedelta(seconds=1))
        metrics = client.metrics()
    health = metrics.endpoints["/health"]
    assert health.count == 1 and health.error_rate == 1.0
    assert any(e.endpoint == "/health" and e.status_code == 503 for e in metrics.recent_errors)


def test_reset_kills_the_process_then_it_restarts() -> None:
    clock = SimClock(START + timedelta(hours=2))
    with (
        started(busy_scenario(), clock, restart_delay_s=0.3) as api,
        Client(api.url, retries=0) as client,
    ):
        before = client.metrics()
        port = api.port
        reset = httpx.post(api.url + "/api/metrics/reset", timeout=5)
        assert reset.status_code == 200 and reset.json()["success"] is True
        refused = False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not refused:
            try:
                client.health()
            except ApiUnreachable:
                refused = True
            time.sleep(0.01)
        assert refused
        clock.advance(timedelta(minutes=1))
        after = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and after is None:
            try:
                after = client.metrics()
            except ApiUnreachable:
                time.sleep(0.05)
        assert after is not None and api.port == port
    assert after.uptime.start_ms > before.uptime.start_ms
    assert after.uptime.last_reset_ms == after.uptime.start_ms
    assert after.requests_total < before.requests_total
    assert after.response_times is None and after.endpoints == {}


def test_restart_method_and_scheduled_restart() -> None:
    clock = SimClock(START + timedelta(hours=1))
    restart_at = START + timedelta(hours=3)
    scenario = busy_scenario(events=[Event("restart", restart_at)])
    with started(scenario, clock) as api, Client(api.url, retries=0) as client:
        first = client.health()
        api.restart()
        second = client.metrics()
        assert second.uptime.start_ms == int((START + timedelta(hours=1)).timestamp() * 1000)
        assert second.requests_total == 0 and client.health().pid != first.pid
        clock.set(START + timedelta(hours=4))
        third = client.metrics()
        assert third.uptime.start_ms == int(restart_at.timestamp() * 1000)
        assert 0 < third.requests_total < 2 * 120 * 60 * 1.3


def test_window_keeps_last_1000_requests() -> None:
    clock = SimClock(START)
    with (
        started(busy_scenario(per_minute=60.0), clock) as api,
        Client(api.url, retries=0) as client,
    ):
        clock.advance(timedelta(hours=4))  # ~29,000 requests, 5 % errors
        metrics = client.metrics(time_window_ms=3_600_000)
        rt = metrics.response_times
        assert rt is not None and rt.count == 1000 and not rt.complete
        assert metrics.errors_kept == 1000  # records, capped (not a counter)
        assert len(metrics.recent_errors) == 10 and metrics.errors_recent <= 1000
        stamps = [e.timestamp_ms for e in metrics.recent_errors]
        assert stamps == sorted(stamps) and stamps[-1] <= api.now_ms()
        small = client.metrics(time_window_ms=60_000)  # one minute: ~120 requests
        assert small.response_times is not None and small.response_times.count < 300
        clock.advance(timedelta(hours=2))
        api.restart()
        assert client.metrics().response_times is None  # null when none in the window


def test_virtual_clock_month_in_seconds() -> None:
    clock = SimClock(START)
    scenario = Scenario.default(START)
    with started(scenario, clock) as api, Client(api.url, retries=0, timeout_s=30) as client:
        t0 = time.perf_counter()
        clock.advance(timedelta(days=31))
        metrics = client.metrics()
        elapsed = time.perf_counter() - t0
        assert elapsed < 10
        assert metrics.timestamp == START + timedelta(days=31)
        # the default scenario restarts on day 26, 03:00
        assert metrics.uptime.start_ms == int(
            (START + timedelta(days=26, hours=3)).timestamp() * 1000
        )
        ledger = api.ledger(START, START + timedelta(days=31), include_monitoring=False)
    assert ledger["requests"].sum() > 500_000
    assert "/copilot/chat" in set(ledger["endpoint"])


def test_real_time_mode() -> None:
    scenario = busy_scenario(per_minute=600.0, seed=1)
    scenario.start = datetime.now(UTC) - timedelta(seconds=30)
    with started(scenario) as api, Client(api.url, retries=0) as client:
        metrics = client.metrics()
        assert metrics.requests_total > 100
        now = datetime.now(UTC)
        assert metrics.timestamp is not None and abs((metrics.timestamp - now).total_seconds()) < 5


# --- events --------------------------------------------------------------------------------------


def test_outage_gives_no_answer() -> None:
    clock = SimClock(START + timedelta(minutes=5))
    outage = Event("outage", START + timedelta(minutes=10), START + timedelta(minutes=20))
    with (
        started(busy_scenario(events=[outage]), clock) as api,
        Client(api.url, retries=0) as client,
    ):
        before = client.metrics()
        clock.set(START + timedelta(minutes=15))
        with pytest.raises(ApiUnreachable):
            client.health()
        clock.set(START + timedelta(minutes=25))
        after = client.metrics()
    assert (
        after.uptime.start_ms == before.uptime.start_ms
    )  # no restart, no traffic lost to counters
    sent = api.ledger(START + timedelta(minutes=10), START + timedelta(minutes=20))
    assert sent.empty  # nothing is served during an outage


def test_latency_errors_cache_and_memory_events() -> None:
    t = START + timedelta(hours=1)
    events = [
        Event("latency", t, t + timedelta(hours=1), "/projects/:id", 10.0),
        Event("errors", t, t + timedelta(hours=1), "/copilot/chat", 0.5),
        Event("cache", t, t + timedelta(hours=1), value=0.1),
        Event("memory_climb", t, t + timedelta(hours=1), value=50 * 1024 * 1024),
    ]
    clock = SimClock(START)
    with started(busy_scenario(events=events, cache_ops_per_minute=120), clock) as api:
        with Client(api.url, retries=0) as client:
            clock.set(t)
            m0, h0 = client.metrics(), client.health()
            clock.set(t + timedelta(hours=1))
            m1, h1 = client.metrics(), client.health()
    before = api.ledger(START, t, include_monitoring=False).set_index("endpoint")
    during = api.ledger(t, t + timedelta(hours=1), include_monitoring=False).set_index("endpoint")

    def mean(frame: Any, ep: str) -> float:
        return float(frame.loc[ep, "time_sum_ms"] / frame.loc[ep, "requests"])

    assert mean(during, "/projects/:id") > 5 * mean(before, "/projects/:id")
    assert during.loc["/copilot/chat", "errors"] / during.loc["/copilot/chat", "requests"] > 0.4
    hits = m1.cache.hits - m0.cache.hits
    ops = hits + m1.cache.misses - m0.cache.misses
    assert hits / ops < 0.2 and m0.cache.hit_rate > 0.7
    assert h1.memory.rss - h0.memory.rss > 40 * 1024 * 1024


def test_default_scenario_shape() -> None:
    scenario = Scenario.default(START)
    assert len(scenario.endpoints) >= 8
    assert {e.kind for e in scenario.events} >= {
        "outage",
        "restart",
        "latency",
        "errors",
        "degraded",
    }
    assert all(e.start >= START + timedelta(days=2) for e in scenario.events)
    assert not Scenario.default(START, incidents=False).events
    with pytest.raises(ValueError):
        Event("volcano", START, START)


def test_normalize_path() -> None:
    assert normalize_path("/api/projects/42") == "/projects/:id"
    assert (
        normalize_path("/api/agents/3f2b8c1e-1a2b-4c3d-8e9f-001122334455/runs?x=1")
        == "/agents/:id/runs"
    )
    assert normalize_path("/api/health") == "/health"


# --- ground truth ------------------------------------------------------------------------------


def _interval(prev: Any, cur: Any) -> dict[str, tuple[int, float, float]]:
    out = {}
    for path, stats in cur.endpoints.items():
        old = prev.endpoints.get(path)
        count = stats.count - (old.count if old else 0)
        if count:
            errors = stats.errors - (old.errors if old else 0)
            time_sum = stats.time_sum_ms - (old.time_sum_ms if old else 0.0)
            out[path] = (count, errors, time_sum)
    return out


@pytest.mark.parametrize("include_monitoring", [False, True])
def test_ledger_equals_scrape_deltas(include_monitoring: bool) -> None:
    clock = SimClock(START)
    scenario = Scenario.default(START, seed=7, incidents=False)
    with started(scenario, clock) as api, Client(api.url, retries=0) as client:
        snapshots = []
        for _ in range(12):
            clock.advance(timedelta(minutes=37))
            client.health(deep=True)
            snapshots.append((clock.now(), client.metrics()))
        for (t1, m1), (t2, m2) in zip(snapshots, snapshots[1:], strict=False):
            truth = api.ledger(t1, t2, include_monitoring=include_monitoring).set_index("endpoint")
            delta = _interval(m1, m2)
            if not include_monitoring:
                delta = {
                    k: v for k, v in delta.items() if not k.startswith(("/health", "/metrics"))
                }
            assert set(delta) == set(truth.index)
            for path, (count, errors, time_sum) in delta.items():
                assert count == truth.loc[path, "requests"]
                assert errors == pytest.approx(truth.loc[path, "errors"], abs=1e-6)
                assert time_sum == pytest.approx(truth.loc[path, "time_sum_ms"], rel=1e-9, abs=1e-6)
        total = api.ledger(START, snapshots[-1][0]).set_index("endpoint")
        assert int(total["requests"].sum()) == snapshots[-1][1].requests_total


def test_deterministic_for_a_seed() -> None:
    def run(seed: int) -> Any:
        clock = SimClock(START)
        with started(busy_scenario(seed=seed), clock) as api, Client(api.url, retries=0) as client:
            for _ in range(3):
                clock.advance(timedelta(minutes=20))
                client.metrics()
            return api.ledger()

    a, b, c = run(5), run(5), run(6)
    assert a.equals(b)
    assert not a.equals(c)


def test_fifty_endpoints_a_week_is_fast() -> None:
    specs = [EndpointSpec(f"/bench/e{i}", "GET", 2.0, 50.0 + i, 0.01) for i in range(50)]
    clock = SimClock(START)
    with started(Scenario(endpoints=specs, start=START, diurnal=0.5), clock) as api:
        t0 = time.perf_counter()
        clock.advance(timedelta(days=7))
        body = get(api, "/api/metrics").json()
        assert time.perf_counter() - t0 < 10
    counts = np.array([v["count"] for k, v in body["metrics"]["requests"]["byEndpoint"].items()])
    assert len(counts) == 50 and counts.sum() == pytest.approx(50 * 2 * 60 * 24 * 7, rel=0.05)


def test_stop_while_dead_does_not_revive() -> None:
    clock = SimClock(START + timedelta(minutes=5))
    api = started(busy_scenario(), clock, restart_delay_s=0.2)
    assert httpx.post(api.url + "/api/metrics/reset", timeout=5).status_code == 200
    api.stop()
    time.sleep(0.4)
    assert not api.alive
    with Client(api.url, retries=0, timeout_s=1) as client, pytest.raises(ApiUnreachable):
        client.health()
    api.stop()  # idempotent
