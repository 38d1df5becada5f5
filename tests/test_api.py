"""lsops_lib.api: parsers of every reference sample and quirk; the client against real
sockets (a canned loopback server), plus httpx.MockTransport for fault injection."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsops_lib.answers import parse_ms
from lsops_lib.api import (
    Answer,
    Client,
    parse_endpoint_metrics,
    parse_health,
    parse_metrics,
    safe_url,
)
from lsops_lib.config import Target
from lsops_lib.exceptions import (
    ApiBadStatus,
    ApiError,
    ApiNotJSON,
    ApiTimeout,
    ApiUnexpectedShape,
    ApiUnreachable,
    LsopsError,
)
from lsops_lib.models import EndpointMetrics, Health, Metrics

TOKEN = "s3cr3t-T0KEN-value"


def _samples() -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "samples"
    if (shared / "metrics.json").is_file():
        return shared
    return Path(__file__).resolve().parent / "data" / "samples"


SAMPLES = _samples()


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# --- a canned loopback server ----------------------------------------------------------


@dataclass
class Canned:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json; charset=utf-8"
    delay_s: float = 0.0
    mode: str = "normal"  # normal | truncate | drop | drip


@dataclass
class CannedServer:
    routes: dict[str, list[Canned]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    raw_paths: list[str] = field(default_factory=list)
    url: str = ""

    def set(self, path: str, *answers: Canned) -> None:
        self.routes[path] = list(answers)

    def answer(self, path: str) -> Canned | None:
        route = path.split("?", 1)[0]
        self.hits[route] = self.hits.get(route, 0) + 1
        answers = self.routes.get(route)
        if not answers:
            return None
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    state = CannedServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            state.headers.append(dict(self.headers))
            state.raw_paths.append(self.path)
            answer = state.answer(self.path)
            if answer is None:
                answer = Canned(404, b"<html>nope</html>", "text/html")
            if answer.delay_s:
                time.sleep(answer.delay_s)
            self.close_connection = True
            if answer.mode == "drop":
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            extra = 100 if answer.mode == "truncate" else 0
            self.send_header("Content-Length", str(len(answer.body) + extra))
            self.end_headers()
            try:
                if answer.mode == "drip":  # one byte every 50 ms
                    for i in range(len(answer.body)):
                        self.wfile.write(answer.body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    self.wfile.write(answer.body)
                    self.wfile.flush()
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def client_of(url: str, **kwargs: Any) -> Client:
    kwargs.setdefault("timeout_s", 2.0)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("backoff_s", 0.0)
    return Client(url, **kwargs)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- every reference sample parses -------------------------------------------------------


def test_samples_are_present() -> None:
    names = {p.name for p in SAMPLES.iterdir()}
    assert {
        "health-quick.json",
        "health-deep-error.json",
        "metrics.json",
        "endpoint-metrics.json",
        "endpoint-metrics-404.json",
        "endpoint-metrics-unencoded-404.html",
    } <= names


def test_health_quick_sample() -> None:
    health = parse_health(sample("health-quick.json"))
    assert health.status == "OK" and health.http_status == 200 and not health.deep
    assert health.timestamp is not None and health.timestamp.tzinfo is not None
    assert health.uptime_s == pytest.approx(2.799905132)
    assert health.memory.rss == 70930432 and health.memory.array_buffers == 65670
    assert health.pid == 6046
    assert health.services["database"].message == "Configured"
    assert health.checks == {"database": True, "openai": True, "cache": True}
    assert (health.checks_passed, health.checks_total) == (3, 3)
    assert health.checks_percentage is None  # quick mode: no percentage


def test_health_deep_error_sample() -> None:
    health = parse_health(sample("health-deep-error.json"), http_status=503, deep=True)
    assert health.status == "ERROR" and health.http_status == 503 and health.deep
    db = health.services["database"]
    assert db.status == "ERROR" and db.response_time_ms == 15.0  # "15ms"
    assert health.services["cache"].stats["context"] == {"keys": 0, "hits": 0, "misses": 0}
    assert health.services["tables"].stats["missing"] == []
    assert health.services["tables"].stats["existing"] == 5
    assert health.checks["vectorDB"] is False and health.checks["tables"] is True
    assert health.checks_percentage == 60.0  # "60.0", a string
    assert health.error is None


def test_metrics_sample() -> None:
    metrics = parse_metrics(sample("metrics.json"))
    assert metrics.requests_total == 122
    chat = metrics.endpoints["/copilot/chat"]
    assert chat.count == 40 and chat.avg_time_ms == 45.825
    assert chat.error_rate == pytest.approx(0.025)  # 2.5 percent -> fraction
    assert chat.errors == pytest.approx(1.0)
    assert metrics.endpoints["/health"].error_rate == pytest.approx(0.5)
    assert metrics.by_method == {"GET": 82, "POST": 40}
    assert metrics.by_status == {"2xx": 117, "4xx": 3, "5xx": 2}
    rt = metrics.response_times
    assert rt is not None and rt.count == 122 and rt.complete
    assert (rt.p50, rt.p95, rt.p99) == (17, 13, 1)
    assert not rt.ordered  # quirk 1: p50 > p95 > p99 in the reference sample
    assert metrics.errors_kept == 5 and metrics.errors_recent == 5
    assert [e.status_code for e in metrics.recent_errors] == [404, 500, 404, 404, 503]
    assert metrics.cache.hit_rate == pytest.approx(0.7125)
    assert metrics.performance == {}
    assert metrics.uptime.start_ms == 1795931440731 and metrics.uptime.duration_ms == 2970
    assert metrics.timestamp is not None


def test_endpoint_metrics_samples() -> None:
    record = parse_endpoint_metrics(sample("endpoint-metrics.json"))
    assert record == EndpointMetrics("/copilot/chat", 40, 45.825, 2.0, 79.0)
    assert parse_endpoint_metrics(sample("endpoint-metrics-404.json")) is None


# --- each quirk ------------------------------------------------------------------------------


def test_quirk_null_response_times() -> None:
    payload = sample("metrics.json")
    payload["metrics"]["responseTimes"] = None
    assert parse_metrics(payload).response_times is None


def test_quirk_percents_become_fractions() -> None:
    payload = sample("metrics.json")
    payload["metrics"]["cache"] = {"hits": 0, "misses": 0, "hitRate": 0}
    payload["metrics"]["requests"]["byEndpoint"]["/x"] = {
        "count": 4,
        "avgTime": 1,
        "errorRate": 100,
    }
    metrics = parse_metrics(payload)
    assert metrics.cache.hit_rate == 0.0
    assert metrics.endpoints["/x"].error_rate == 1.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("142ms", 142.0), ("15 ms", 15.0), (7, 7.0), ("1.5s", 1500.0), (None, None), ("n/a", None)],
)
def test_quirk_response_time_strings(raw: Any, expected: float | None) -> None:
    assert parse_ms(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("80.0", 80.0), (0, 0.0), (66.7, 66.7), (None, None)]
)
def test_quirk_percentage_string_number_or_absent(raw: Any, expected: float | None) -> None:
    payload = sample("health-deep-error.json")
    if raw is None:
        del payload["checks"]["summary"]["percentage"]
    else:
        payload["checks"]["summary"]["percentage"] = raw
    assert parse_health(payload, deep=True).checks_percentage == expected


def test_quirk_min_null() -> None:
    payload = sample("metrics.json")
    payload["metrics"]["performance"] = {
        "openai.chat": {
            "count": 3,
            "totalTime": 30,
            "min": None,
            "max": 12,
            "avg": 10,
            "lastDuration": 9,
            "lastTimestamp": 1,
            "metadata": {},
        }
    }
    payload["metrics"]["responseTimes"]["min"] = None
    metrics = parse_metrics(payload)
    assert metrics.performance["openai.chat"]["min"] is None
    assert metrics.response_times is not None and metrics.response_times.min is None
    assert not metrics.response_times.ordered


def test_quirk_both_error_record_shapes() -> None:
    payload = sample("metrics.json")
    payload["metrics"]["errors"]["recentErrors"].append(
        {
            "endpoint": "/copilot/chat",
            "error": "OpenAI API error: 502",
            "stack": "Error: OpenAI API error: 502\n    at x.js:1:1",
            "context": {"method": "POST"},
            "timestamp": 1795931443600,
        }
    )
    records = parse_metrics(payload).recent_errors
    http, exc = records[0], records[-1]
    assert (http.endpoint, http.method, http.status_code, http.error) == (
        "/projects/:id",
        "GET",
        404,
        None,
    )
    assert exc.status_code is None and exc.error == "OpenAI API error: 502"
    assert exc.context == {"method": "POST"} and exc.timestamp_ms == 1795931443600


def test_quirk_health_503_exception_shape() -> None:
    payload = {
        "status": "ERROR",
        "timestamp": "2026-11-29T05:50:43.517Z",
        "error": "boom\nat line 2",
    }
    health = parse_health(payload, http_status=503, deep=True)
    assert health.status == "ERROR" and health.error == "boom at line 2"
    assert health.services == {} and health.checks == {} and health.memory.rss is None
    assert health.checks_percentage is None and health.uptime_s is None


def test_unexpected_shapes_name_the_field() -> None:
    with pytest.raises(ApiUnexpectedShape, match=r"\bmetrics\b.*missing"):
        parse_metrics({"success": True})
    payload = sample("metrics.json")
    payload["metrics"]["requests"]["byEndpoint"]["/copilot/chat"]["count"] = "forty"
    with pytest.raises(ApiUnexpectedShape, match=r"/copilot/chat.*count.*not a number"):
        parse_metrics(payload)
    payload = sample("metrics.json")
    payload["metrics"]["requests"]["total"] = None
    with pytest.raises(ApiUnexpectedShape, match=r"requests\.total"):
        parse_metrics(payload)
    with pytest.raises(ApiUnexpectedShape, match=r"health\.status"):
        parse_health({"timestamp": "x"})
    with pytest.raises(ApiUnexpectedShape, match="not an object"):
        parse_health(["OK"])  # type: ignore[arg-type]
    with pytest.raises(ApiUnexpectedShape, match=r"count"):
        parse_endpoint_metrics({"success": True, "endpoint": "/x", "metrics": {"count": True}})


# --- the client over real sockets ----------------------------------------------------------


def test_client_reads_every_sample_over_http(canned: CannedServer) -> None:
    canned.set("/api/health", Canned(200, sample_bytes("health-quick.json")))
    canned.set("/api/metrics", Canned(200, sample_bytes("metrics.json")))
    canned.set(
        "/api/metrics/endpoint/%2Fcopilot%2Fchat",
        Canned(200, sample_bytes("endpoint-metrics.json")),
    )
    canned.set(
        "/api/metrics/endpoint/%2Fidle", Canned(404, sample_bytes("endpoint-metrics-404.json"))
    )
    with client_of(canned.url, token=TOKEN) as client:
        health = client.get_health()
        assert isinstance(health, Answer) and isinstance(health.record, Health)
        assert health.status == 200 and health.body == sample_bytes("health-quick.json")
        assert health.elapsed_ms > 0 and health.url == canned.url + "/api/health"
        metrics = client.get_metrics(time_window_ms=600_000)
        assert isinstance(metrics.record, Metrics) and metrics.record.time_window_ms == 600_000
        assert metrics.url.endswith("/api/metrics?timeWindow=600000")
        chat = client.endpoint_metrics("/copilot/chat")
        assert chat is not None and chat.count == 40
        idle = client.get_endpoint_metrics("/idle")
        assert idle.record is None and idle.status == 404  # JSON 404: an answer, no record
    assert "/api/metrics/endpoint/%2Fcopilot%2Fchat?timeWindow=3600000" in canned.raw_paths
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for h in canned.headers)


def test_deep_health_503_is_an_answer_not_retried(canned: CannedServer) -> None:
    canned.set("/api/health", Canned(503, sample_bytes("health-deep-error.json")))
    with client_of(canned.url, retries=3) as client:
        answer = client.get_health(deep=True)
    assert answer.status == 503 and answer.record.status == "ERROR" and answer.record.deep
    assert answer.url.endswith("/api/health?deep=true")
    assert canned.hits["/api/health"] == 1


def test_health_503_exception_shape_over_http(canned: CannedServer) -> None:
    body = json.dumps(
        {"status": "ERROR", "timestamp": "2026-11-29T05:50:43.517Z", "error": "db"}
    ).encode()
    canned.set("/api/health", Canned(503, body))
    with client_of(canned.url, retries=2) as client:
        health = client.health(deep=True)
    assert health.status == "ERROR" and health.error == "db" and health.http_status == 503
    assert canned.hits["/api/health"] == 1


def test_metrics_500_is_bad_status_with_server_text_after_retries(canned: CannedServer) -> None:
    body = json.dumps({"success": False, "error": "Cannot read properties of undefined"}).encode()
    canned.set("/api/metrics", Canned(500, body))
    delays: list[float] = []
    with client_of(canned.url, retries=2, backoff_s=0.1, sleep=delays.append) as client:
        with pytest.raises(ApiBadStatus) as info:
            client.get_metrics()
    err = info.value
    assert err.status == 500 and err.kind == "bad_status"
    assert "Cannot read properties of undefined" in str(err) and "3 attempts" in str(err)
    assert canned.url + "/api/metrics" in str(err) and "\n" not in str(err)
    assert canned.hits["/api/metrics"] == 3
    assert delays == [pytest.approx(0.1), pytest.approx(0.2)]  # exponential backoff


def test_5xx_then_success_recovers(canned: CannedServer) -> None:
    canned.set(
        "/api/metrics",
        Canned(502, b"<html>bad gateway</html>", "text/html"),
        Canned(200, sample_bytes("metrics.json")),
    )
    with client_of(canned.url, retries=2, sleep=lambda s: None) as client:
        assert client.metrics().requests_total == 122
    assert canned.hits["/api/metrics"] == 2


def test_4xx_is_not_retried(canned: CannedServer) -> None:
    canned.set("/api/metrics", Canned(401, json.dumps({"error": "Unauthorized"}).encode()))
    with client_of(canned.url, retries=3, sleep=lambda s: None) as client:
        with pytest.raises(ApiBadStatus, match="HTTP 401: Unauthorized") as info:
            client.metrics()
    assert info.value.status == 401 and canned.hits["/api/metrics"] == 1


def test_html_404_says_percent_encode(canned: CannedServer) -> None:
    page = sample_bytes("endpoint-metrics-unencoded-404.html")
    canned.set(
        "/api/metrics/endpoint/%2Fcopilot%2Fchat", Canned(404, page, "text/html; charset=utf-8")
    )
    with client_of(canned.url) as client:
        with pytest.raises((ApiBadStatus, ApiNotJSON), match="percent-encoded") as info:
            client.endpoint_metrics("/copilot/chat")
    assert info.value.status == 404


def test_html_200_is_not_json(canned: CannedServer) -> None:
    canned.set("/api/metrics", Canned(200, b"<!DOCTYPE html><p>login</p>", "text/html"))
    with client_of(canned.url) as client:
        with pytest.raises(ApiNotJSON, match="not JSON") as info:
            client.metrics()
    assert info.value.kind == "not_json" and info.value.status == 200


def test_truncated_body(canned: CannedServer) -> None:
    body = sample_bytes("metrics.json")
    canned.set("/api/metrics", Canned(200, body, mode="truncate"))
    with client_of(canned.url, retries=1, sleep=lambda s: None) as client:
        with pytest.raises(ApiUnreachable, match="unreachable") as info:
            client.metrics()
    assert canned.hits["/api/metrics"] == 2  # a broken transfer is retried
    canned.set("/api/metrics", Canned(200, body[: len(body) // 2]))  # cut JSON, honest length
    with client_of(canned.url) as client:
        with pytest.raises(ApiNotJSON):
            client.metrics()
    assert "\n" not in str(info.value)


def test_no_answer_at_all(canned: CannedServer) -> None:
    canned.set("/api/health", Canned(mode="drop"))
    with client_of(canned.url) as client:
        with pytest.raises(ApiUnreachable) as info:
            client.health()
    assert info.value.kind == "unreachable" and "/api/health" in str(info.value)


def test_timeout_is_bounded(canned: CannedServer) -> None:
    canned.set("/api/health", Canned(200, sample_bytes("health-quick.json"), delay_s=1.5))
    started = time.monotonic()
    with client_of(canned.url, timeout_s=0.2, retries=1, backoff_s=0.05) as client:
        with pytest.raises(ApiTimeout, match="no answer within 0.2 s") as info:
            client.health()
    assert time.monotonic() - started < 1.2
    assert info.value.kind == "timeout" and info.value.status is None


def test_dripping_server_cannot_hold_the_client(canned: CannedServer) -> None:
    canned.set("/api/metrics", Canned(200, sample_bytes("metrics.json"), mode="drip"))
    started = time.monotonic()
    with client_of(canned.url, timeout_s=0.3) as client:
        with pytest.raises(ApiTimeout):
            client.metrics()
    assert time.monotonic() - started < 1.5


def test_dead_port_is_unreachable() -> None:
    url = f"http://127.0.0.1:{dead_port()}"
    delays: list[float] = []
    with client_of(url, retries=2, backoff_s=0.01, sleep=delays.append) as client:
        with pytest.raises(ApiUnreachable) as info:
            client.metrics()
    assert url in str(info.value) and len(delays) == 2
    assert isinstance(info.value, ApiError) and isinstance(info.value, LsopsError)


def test_token_never_in_messages_or_repr(canned: CannedServer) -> None:
    # a server that echoes the token back in its error text must not leak it either
    canned.set("/api/metrics", Canned(500, json.dumps({"error": f"bad token {TOKEN}"}).encode()))
    client = client_of(
        f"http://user:pw-{TOKEN}@127.0.0.1:{canned.url.rsplit(':', 1)[1]}", token=TOKEN
    )
    assert TOKEN not in repr(client) and "***" in repr(client)
    with client, pytest.raises(ApiBadStatus) as info:
        client.metrics()
    assert TOKEN not in str(info.value) and TOKEN not in info.value.url
    with client_of(f"http://127.0.0.1:{dead_port()}", token=TOKEN) as dead:
        with pytest.raises(ApiUnreachable) as info2:
            dead.health()
    assert TOKEN not in str(info2.value)


def test_safe_url_drops_credentials_and_query_tokens() -> None:
    assert (
        safe_url("http://u:p@h:1/api/x?token=abc&timeWindow=5")
        == "http://h:1/api/x?token=%2A%2A%2A&timeWindow=5"
    )


def test_from_target_uses_token_and_settings(canned: CannedServer) -> None:
    canned.set("/api/health", Canned(200, sample_bytes("health-quick.json")))
    target = Target(name="t", url=canned.url, token=TOKEN, timeout_s=1.5, retries=1)
    with Client.from_target(target) as client:
        assert client.timeout_s == 1.5 and client.retries == 1
        assert client.health().status == "OK"
    assert canned.headers[-1]["Authorization"] == f"Bearer {TOKEN}"


# --- fault injection with MockTransport ---------------------------------------------------------


def test_endpoint_path_is_one_encoded_segment() -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json=sample("endpoint-metrics.json"))

    client = Client("http://api.test", transport=httpx.MockTransport(handler), retries=0)
    client.endpoint_metrics("/projects/:id")
    assert seen == [b"/api/metrics/endpoint/%2Fprojects%2F%3Aid?timeWindow=3600000"]


def test_unexpected_shape_from_the_wire_carries_url() -> None:
    payload = copy.deepcopy(sample("metrics.json"))
    del payload["metrics"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=payload)

    client = Client("http://api.test", transport=httpx.MockTransport(handler), retries=0)
    with pytest.raises(ApiUnexpectedShape) as info:
        client.metrics()
    assert "metrics" in str(info.value) and "http://api.test/api/metrics" in str(info.value)
    assert info.value.kind == "bad_shape" and info.value.status == 200


def test_retries_on_connect_errors_then_succeeds() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=sample("health-quick.json"))

    delays: list[float] = []
    client = Client(
        "http://api.test",
        transport=httpx.MockTransport(handler),
        retries=2,
        backoff_s=0.5,
        sleep=delays.append,
    )
    assert client.health().status == "OK"
    assert calls["n"] == 3 and delays == [0.5, 1.0]


def test_read_timeout_via_transport_is_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = Client(
        "http://api.test", transport=httpx.MockTransport(handler), retries=0, timeout_s=0.1
    )
    with pytest.raises(ApiTimeout):
        client.metrics()


# --- the quick path of a byEndpoint entry against the checked one ---------------------------

_entry_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.sampled_from(["2.5%", "80.0", "", "n/a"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["count", "avgTime", "errorRate", "extra"]), _entry_values))
def test_an_endpoint_entry_reads_the_same_on_the_quick_path(raw: dict[str, Any]) -> None:
    """`_endpoint` reads a plain dict of three numbers at once; any Mapping that is no dict
    takes the checked path: both give the same stats, or both the same error."""
    from types import MappingProxyType

    from lsops_lib.answers import _endpoint

    def outcome(value: Any) -> Any:
        try:
            return _endpoint("/api/x", value)
        except ApiUnexpectedShape as exc:
            return str(exc)

    assert outcome(raw) == outcome(MappingProxyType(raw))
