"""A simulated LongSang API: a real HTTP server on loopback, quirks included.

It answers `GET /api/health[?deep=true]`, `GET /api/metrics[?timeWindow=MS]`,
`GET /api/metrics/endpoint/:endpoint` (ONE percent-encoded segment; the unencoded form
gets Express's HTML 404) and `POST /api/metrics/reset` (which empties the counters and
then "kills the process": connections are refused until a restart `restart_delay_s`
later, on the same port, with a new `uptime.start`), in exactly the formats of the
reference page, with every quirk: unsorted percentiles picked by index in arrival
order, monitoring traffic counted, percents, `"142ms"`, string percentages, the
1000-request window, the 10 recent errors in two shapes, `min: null`.

Traffic is scripted by a `Scenario` (endpoints with rates, latencies and error rates,
plus timed `Event`s) and generated lazily, vectorized with numpy from a seeded
Generator: when a request arrives, everything the scenario sent between the previous
request and now (the `SimClock`'s virtual now, or real time) is added to the counters.
A test or the demo can therefore scrape a month in seconds by advancing the clock.

Timing rule (so that interval totals are exact): a counter snapshot taken at instant T
contains exactly the requests that arrived before T. A monitoring request answered at T
is counted at T + its duration (as the server counts a request when its response
finishes), so a health check and a metrics scrape at the same virtual instant do not
see each other. `ledger()` is the ground truth of what was sent, per endpoint.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pandas as pd

from .models import is_monitoring

WINDOW_KEEP = 1000  # the server keeps the last 1000 requests for window statistics
ERRORS_KEEP = 1000  # and the last 1000 error records
RECENT_ERRORS = 10  # of which the last 10 in the window are answered
DEFAULT_WINDOW_MS = 3_600_000
REQUIRED_TABLES = (
    "documents",
    "conversations",
    "agent_executions",
    "response_cache",
    "news_digests",
)
EVENT_KINDS = frozenset(
    {"outage", "degraded", "error", "latency", "errors", "cache", "memory_climb", "restart"}
)
HEALTH_KEY = "/health"
METRICS_KEY = "/metrics"
ENDPOINT_METRICS_KEY = "/metrics/endpoint/:endpoint"
NO_METRICS = "No metrics found for endpoint"
_LAT_SIGMA = 0.5
_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_EXCEPTIONS = (
    "OpenAI API error: 502 Bad Gateway",
    "Database query timeout after 5000ms",
    "Cannot read properties of undefined (reading 'embedding')",
    "fetch failed",
)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime) -> int:
    return int(round(_aware(value).timestamp() * 1000))


def iso_ms(ms: int) -> str:
    """Epoch ms -> `2026-11-29T05:50:43.517Z` (JavaScript's `toISOString`)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def _js(value: float) -> int | float:
    """A number as JavaScript would print it: integral floats without `.0`."""
    value = float(value)
    if math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def normalize_path(path: str) -> str:
    """`/api/projects/42?x=1` -> `/projects/:id` (the key the server keeps)."""
    path = urlsplit(path).path or "/"
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    segments = [":id" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
    return "/".join(segments) or "/"


# --- scenario ------------------------------------------------------------------------


class SimClock:
    """Virtual time, set and advanced by the test or the demo. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._now = _aware(dt)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now

    def __repr__(self) -> str:
        return f"SimClock({self.now().isoformat()})"


@dataclass
class EndpointSpec:
    """One route of the scenario: its key (below /api), rate, mean latency, error share."""

    path: str
    method: str = "GET"
    per_minute: float = 1.0
    latency_ms: float = 50.0  # mean of a log-normal
    error_rate: float = 0.0  # fraction of responses with status >= 400

    def __post_init__(self) -> None:
        self.path = normalize_path(self.path if self.path.startswith("/") else "/" + self.path)
        self.method = self.method.upper()
        if self.per_minute < 0 or self.latency_ms < 0 or not 0 <= self.error_rate <= 1:
            raise ValueError(f"invalid endpoint spec for {self.path}")


@dataclass
class Event:
    """Something that happens to the service between `start` and `end`.

    kinds: "outage" (connections get no answer), "degraded" (deep health: vectorDB
    fails, 80 % of checks pass), "error" (deep health: database and vectorDB fail,
    60 %, HTTP 503; with value=1 the handler throws: the 503 `{status, timestamp,
    error}` shape, in both modes), "latency" (latency x value on `endpoint`, all when
    None), "errors" (error rate = value on `endpoint`, all when None), "cache" (hit
    rate = value), "memory_climb" (rss grows by value bytes per hour, until the next
    restart), "restart" (the process restarts at `start`).
    """

    kind: str
    start: datetime
    end: datetime | None = None
    endpoint: str | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(
                f"unknown event kind {self.kind!r} (known: {', '.join(sorted(EVENT_KINDS))})"
            )
        self.start = _aware(self.start)
        self.end = self.start if self.end is None else _aware(self.end)
        if self.end < self.start:
            raise ValueError(f"event {self.kind} ends before it starts")
        if self.endpoint is not None:
            self.endpoint = normalize_path(self.endpoint)
        if self.kind in ("latency", "errors", "cache", "memory_climb") and self.value is None:
            raise ValueError(f"event {self.kind} needs a value")

    @property
    def start_ms(self) -> int:
        return _ms(self.start)

    @property
    def end_ms(self) -> int:
        return _ms(self.end if self.end is not None else self.start)


@dataclass
class Scenario:
    endpoints: list[EndpointSpec]
    events: list[Event] = field(default_factory=list)
    cache_hit_rate: float = 0.8
    cache_ops_per_minute: float = 30.0
    base_rss: int = 95 * 1024 * 1024
    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    diurnal: float = 0.0  # amplitude of the daily traffic wave (0: flat, 0.5: +-50 %)

    def __post_init__(self) -> None:
        self.start = _aware(self.start)

    @classmethod
    def default(cls, start: datetime, *, seed: int = 0, incidents: bool = True) -> Scenario:
        """A realistic LongSang traffic mix (~23 requests a minute over 10 routes).

        With `incidents`, a month of them from day 3 on: a latency spike on
        /copilot/chat, an error burst on /projects/:id, a 20 min outage ended by a
        restart, a degraded and an erroring health, a cache hit-rate drop, and a memory
        climb ended by a restart. The first two days are clean.
        """
        start = _aware(start)
        endpoints = [
            EndpointSpec("/copilot/chat", "POST", 4.0, 850.0, 0.01),
            EndpointSpec("/copilot/suggestions", "GET", 6.0, 120.0, 0.005),
            EndpointSpec("/projects", "GET", 3.0, 40.0, 0.002),
            EndpointSpec("/projects/:id", "GET", 5.0, 25.0, 0.02),
            EndpointSpec("/context/search", "POST", 2.0, 300.0, 0.01),
            EndpointSpec("/context/index/all", "POST", 0.02, 8000.0, 0.05),
            EndpointSpec("/agents", "GET", 1.0, 30.0, 0.0),
            EndpointSpec("/workflows", "GET", 1.0, 35.0, 0.002),
            EndpointSpec("/workflows/:id/executions", "GET", 0.8, 60.0, 0.005),
            EndpointSpec("/copilot/feedback", "POST", 0.5, 20.0, 0.0),
        ]
        events: list[Event] = []
        if incidents:

            def at(days: float, hours: float = 0.0) -> datetime:
                return start + timedelta(days=days, hours=hours)

            events = [
                Event("latency", at(3, 14), at(3, 16), "/copilot/chat", 4.0),
                Event("errors", at(9, 10), at(9, 11), "/projects/:id", 0.3),
                Event("outage", at(12, 2), at(12, 2.34)),
                Event("restart", at(12, 2.34)),
                Event("degraded", at(17, 8), at(17, 11)),
                Event("cache", at(21, 0), at(21, 6), value=0.4),
                Event("memory_climb", at(23), at(26), value=6 * 1024 * 1024),
                Event("restart", at(26, 3)),
                Event("error", at(27, 15), at(27, 15.5)),
            ]
        return cls(endpoints=endpoints, events=events, seed=seed, start=start, diurnal=0.5)


# --- the process state -----------------------------------------------------------------


class _Process:
    """The counters one Node process keeps in memory (gone when it dies)."""

    def __init__(self, start_ms: int, pid: int) -> None:
        self.start_ms = start_ms
        self.last_reset_ms = start_ms
        self.pid = pid
        self.count = np.zeros(0, np.int64)
        self.time_sum = np.zeros(0, np.float64)
        self.errors = np.zeros(0, np.int64)
        self.order: list[int] = []  # byEndpoint keys in first-seen order
        self.by_method: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.total = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.ring_ts = np.zeros(0, np.int64)
        self.ring_key = np.zeros(0, np.int32)
        self.ring_dur = np.zeros(0, np.int64)
        self.err_ts = np.zeros(0, np.int64)
        self.err_key = np.zeros(0, np.int32)
        self.err_method = np.zeros(0, np.int16)
        self.err_status = np.zeros(0, np.int16)
        self.err_exc = np.zeros(0, bool)
        self.performance: dict[str, dict[str, Any]] = {}

    def grow(self, n_keys: int) -> None:
        if len(self.count) < n_keys:
            extra = n_keys - len(self.count)
            self.count = np.concatenate([self.count, np.zeros(extra, np.int64)])
            self.time_sum = np.concatenate([self.time_sum, np.zeros(extra, np.float64)])
            self.errors = np.concatenate([self.errors, np.zeros(extra, np.int64)])


@dataclass
class _Batch:
    ts: np.ndarray  # int64 epoch ms, sorted
    key: np.ndarray  # int32 index into the key registry
    method: np.ndarray  # int16 index into the method registry
    dur: np.ndarray  # int64 ms
    status: np.ndarray  # int16
    exc: np.ndarray  # bool: an exception record is logged too

    @classmethod
    def empty(cls) -> _Batch:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int16),
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, bool),
        )

    @classmethod
    def concat(cls, parts: Iterable[_Batch]) -> _Batch:
        parts = [p for p in parts if len(p.ts)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        merged = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _BATCH_FIELDS))
        if all(b.ts[0] >= a.ts[-1] for a, b in zip(parts, parts[1:], strict=False)):
            return merged  # each part is sorted and they follow each other
        order = np.argsort(merged.ts, kind="stable")
        return cls(*(getattr(merged, f)[order] for f in _BATCH_FIELDS))


_BATCH_FIELDS = ("ts", "key", "method", "dur", "status", "exc")


# --- the server --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: SimulatedAPI

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def drop_connections(self) -> None:
        """The process is gone: its open (keep-alive) connections are closed too."""
        with self.connections_lock:
            conns, self.connections = list(self.connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Node answers
    timeout = 60  # idle keep-alive connections are closed after a minute
    disable_nagle_algorithm = True  # headers and body go in separate writes

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _dispatch(self, method: str) -> None:
        self.server.sim._serve(self, method)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    key: str | None = None  # counted under this byEndpoint key (None: not counted)
    duration_ms: int = 1
    after: str | None = None  # "die": the process dies once the answer is sent


class SimulatedAPI:
    """The LongSang API on 127.0.0.1, driven by a Scenario (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        restart_delay_s: float = 0.5,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.host = host
        self.port = port
        self.restart_delay_s = float(restart_delay_s)
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(scenario.seed)  # traffic
        self._rng_misc = np.random.default_rng([scenario.seed, 1])  # answers, pids, noise
        self._keys: list[str] = []
        self._key_index: dict[str, int] = {}
        self._methods: list[str] = []
        self._method_index: dict[str, int] = {}
        specs = scenario.endpoints
        self._spec_key = np.array([self._key(s.path) for s in specs], np.int32)
        self._spec_method = np.array([self._method(s.method) for s in specs], np.int16)
        self._spec_rate = np.array([s.per_minute for s in specs], np.float64)
        self._spec_latency = np.array([max(s.latency_ms, 0.1) for s in specs], np.float64)
        self._spec_error = np.array([s.error_rate for s in specs], np.float64)
        self._spec_code4 = np.array([404 if ":id" in s.path else 400 for s in specs], np.int16)
        self._spec_paths = [s.path for s in specs]
        for key in (HEALTH_KEY, METRICS_KEY, ENDPOINT_METRICS_KEY):
            self._key(key)
        self._events = sorted(scenario.events, key=lambda e: e.start_ms)
        self._restarts = sorted({e.start_ms for e in self._events if e.kind == "restart"})
        bounds = set()
        for e in self._events:
            bounds.update((e.start_ms, e.end_ms))
        self._bounds = np.array(sorted(bounds), np.int64)
        self._start_ms = _ms(scenario.start)
        self._gen_until = self._start_ms
        self._restart_pos = int(np.searchsorted(self._restarts, self._start_ms, side="right"))
        self._proc = _Process(self._start_ms, self._new_pid(None))
        self._pending: list[_Batch] = []
        self._ledger_parts: list[_Batch] = []
        self._ledger_cache: _Batch | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._dead = False
        self._dying = False  # answered the reset: nothing more is answered until revived
        self._stopped = False

    # -- registries -----------------------------------------------------------------

    def _key(self, path: str) -> int:
        idx = self._key_index.get(path)
        if idx is None:
            idx = len(self._keys)
            self._keys.append(path)
            self._key_index[path] = idx
        return idx

    def _method(self, method: str) -> int:
        idx = self._method_index.get(method)
        if idx is None:
            idx = len(self._methods)
            self._methods.append(method)
            self._method_index[method] = idx
        return idx

    def _new_pid(self, old: int | None) -> int:
        while True:
            pid = int(self._rng_misc.integers(1000, 65000))
            if pid != old:
                return pid

    # -- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def now_ms(self) -> int:
        return _ms(self.clock.now()) if self.clock is not None else _ms(datetime.now(UTC))

    def start(self) -> SimulatedAPI:
        with self._lock:
            self._stopped = False
            self._dead = False
            self._dying = False
            if self._server is None:
                self._listen()
        return self

    def _listen(self) -> None:
        deadline = time.monotonic() + 5.0
        while True:
            try:
                server = _Server((self.host, self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.sim = self
        self.port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="simapi", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._close_listener()

    def __enter__(self) -> SimulatedAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the simulated process answers (False after a reset, until it is back)."""
        return self._server is not None and not self._dead and not self._dying

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def uptime_start_ms(self) -> int:
        return self._proc.start_ms

    def restart(self) -> None:
        """The process restarts now: counters from zero, a new uptime.start and pid."""
        with self._lock:
            now = self._flush_pending(self.now_ms())
            self._new_process(now)

    def _flush_pending(self, now: int) -> int:
        """Count everything up to now; monitoring requests already answered go to the
        current process even when their counting instant (answer + duration) is later."""
        self._advance(now)
        if self._pending:
            batch, self._pending = _Batch.concat(self._pending), []
            self._apply(batch, 0, 0)
        return now

    def _new_process(self, at_ms: int) -> None:
        at_ms = max(at_ms, self._proc.start_ms + 1)
        self._proc = _Process(at_ms, self._new_pid(self._proc.pid))
        self._gen_until = max(self._gen_until, at_ms)
        self._restart_pos = int(np.searchsorted(self._restarts, self._gen_until, side="right"))

    def _die(self) -> None:
        """POST /api/metrics/reset: the counters are emptied, then the process exits."""
        with self._lock:
            if self._dead or self._stopped:
                return
            self._flush_pending(self.now_ms())
            self._proc = _Process(self._proc.start_ms, self._proc.pid)  # emptied
            self._dead = True
        self._close_listener()
        with self._lock:
            if self._stopped:
                return
            self._timer = threading.Timer(self.restart_delay_s, self._revive)
            self._timer.daemon = True
            self._timer.start()

    def _revive(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = None
            now = max(self.now_ms(), self._gen_until)
            self._gen_until = now
            self._new_process(now)
            self._dead = False
            self._dying = False
            self._listen()

    # -- traffic ----------------------------------------------------------------------

    def _active(self, t_ms: int, kind: str) -> list[Event]:
        return [e for e in self._events if e.kind == kind and e.start_ms <= t_ms < e.end_ms]

    def in_outage(self, t_ms: int | None = None) -> bool:
        return bool(self._active(self.now_ms() if t_ms is None else t_ms, "outage"))

    def _generate(self, a: int, b: int) -> tuple[_Batch, int, int]:
        """Scenario traffic in [a, b) (constant conditions), plus cache hits/misses."""
        if b <= a or self._active(a, "outage"):
            return _Batch.empty(), 0, 0
        rng = self._rng
        minutes = (b - a) / 60_000.0
        latency = self._spec_latency.copy()
        error = self._spec_error.copy()
        for e in self._active(a, "latency"):
            mask = (
                np.ones(len(latency), bool) if e.endpoint is None else self._spec_mask(e.endpoint)
            )
            latency[mask] *= float(e.value or 1.0)
        for e in self._active(a, "errors"):
            mask = np.ones(len(error), bool) if e.endpoint is None else self._spec_mask(e.endpoint)
            error[mask] = min(max(float(e.value or 0.0), 0.0), 1.0)
        hit_rate = self.scenario.cache_hit_rate
        for e in self._active(a, "cache"):
            hit_rate = min(max(float(e.value or 0.0), 0.0), 1.0)
        ops = int(rng.poisson(self.scenario.cache_ops_per_minute * minutes))
        hits = int(rng.binomial(ops, hit_rate)) if ops else 0

        amp = max(0.0, float(self.scenario.diurnal))
        counts = rng.poisson(self._spec_rate * minutes * (1.0 + amp))
        spec = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        ts = rng.integers(a, b, size=len(spec), dtype=np.int64)
        if amp > 0 and len(ts):
            hours = (ts % 86_400_000) / 3_600_000.0
            factor = 1.0 + amp * np.sin(2 * np.pi * (hours - 8.0) / 24.0)
            keep = rng.random(len(ts)) * (1.0 + amp) < factor
            spec, ts = spec[keep], ts[keep]
        order = np.argsort(ts, kind="stable")
        spec, ts = spec[order], ts[order]
        n = len(ts)
        mu = np.log(latency) - _LAT_SIGMA**2 / 2
        dur = np.rint(np.exp(mu[spec] + _LAT_SIGMA * rng.standard_normal(n))).astype(np.int64)
        failed = rng.random(n) < error[spec]
        server_side = rng.random(n) < 0.4
        status = np.full(n, 200, np.int16)
        status[failed & ~server_side] = self._spec_code4[spec][failed & ~server_side]
        status[failed & server_side] = 500
        exc = failed & server_side & (rng.random(n) < 0.5)
        batch = _Batch(ts, self._spec_key[spec], self._spec_method[spec], dur, status, exc)
        return batch, hits, ops - hits

    def _spec_mask(self, path: str) -> np.ndarray:
        return np.array([p == path for p in self._spec_paths], bool)

    def _advance(self, t1: int) -> None:
        """Count everything sent in [generated-until, t1): scenario traffic and answered
        monitoring requests, crossing scheduled restarts."""
        t0 = self._gen_until
        if t1 <= t0:
            return
        inner = self._bounds[(self._bounds > t0) & (self._bounds < t1)]
        points = [t0, *(int(x) for x in inner), t1]
        for a, b in zip(points, points[1:], strict=False):
            while (
                self._restart_pos < len(self._restarts) and self._restarts[self._restart_pos] <= a
            ):
                self._proc = _Process(a, self._new_pid(self._proc.pid))
                self._restart_pos += 1
            batch, hits, misses = self._generate(a, b)
            due = [p for p in self._pending if len(p.ts) and p.ts[0] < b]
            if due:
                self._pending = [p for p in self._pending if not (len(p.ts) and p.ts[0] < b)]
                batch = _Batch.concat([batch, *due])
            self._apply(batch, hits, misses)
        self._gen_until = t1

    def _apply(self, batch: _Batch, hits: int, misses: int) -> None:
        p = self._proc
        p.cache_hits += hits
        p.cache_misses += misses
        n = len(batch.ts)
        if not n:
            return
        self._ledger_parts.append(batch)
        self._ledger_cache = None
        n_keys = len(self._keys)
        p.grow(n_keys)
        counts = np.bincount(batch.key, minlength=n_keys)
        fresh = set(np.flatnonzero((p.count == 0) & (counts > 0)).tolist())
        if fresh:
            _, first = np.unique(batch.key, return_index=True)
            keys_first = sorted(
                (int(i), int(batch.key[i])) for i in first if int(batch.key[i]) in fresh
            )
            p.order.extend(k for _, k in keys_first)
        p.count += counts
        p.time_sum += np.bincount(batch.key, weights=batch.dur.astype(np.float64), minlength=n_keys)
        failed = batch.status >= 400
        p.errors += np.bincount(batch.key[failed], minlength=n_keys)
        for m, c in enumerate(np.bincount(batch.method, minlength=len(self._methods)).tolist()):
            if c:
                name = self._methods[m]
                p.by_method[name] = p.by_method.get(name, 0) + c
        for cls, c in enumerate(np.bincount(batch.status // 100, minlength=6).tolist()):
            if c:
                label = f"{cls}xx"
                p.by_status[label] = p.by_status.get(label, 0) + c
        p.total += n
        tail = slice(-WINDOW_KEEP, None)
        p.ring_ts = np.concatenate([p.ring_ts, batch.ts[tail]])[tail]
        p.ring_key = np.concatenate([p.ring_key, batch.key[tail]])[tail]
        p.ring_dur = np.concatenate([p.ring_dur, batch.dur[tail]])[tail]
        if failed.any():
            idx = np.flatnonzero(failed)[-ERRORS_KEEP:]
            exc_idx = idx[batch.exc[idx]]
            # an exception is logged (error handler) before the HTTP error response
            rec = np.concatenate([exc_idx, idx])
            is_exc = np.concatenate([np.ones(len(exc_idx), bool), np.zeros(len(idx), bool)])
            order = np.lexsort((~is_exc, batch.ts[rec]))
            rec, is_exc = rec[order], is_exc[order]
            keep = slice(-ERRORS_KEEP, None)
            p.err_ts = np.concatenate([p.err_ts, batch.ts[rec]])[keep]
            p.err_key = np.concatenate([p.err_key, batch.key[rec]])[keep]
            p.err_method = np.concatenate([p.err_method, batch.method[rec]])[keep]
            p.err_status = np.concatenate([p.err_status, batch.status[rec]])[keep]
            p.err_exc = np.concatenate([p.err_exc, is_exc])[keep]
        self._track_performance(batch)

    def _track_performance(self, batch: _Batch) -> None:
        """`performance` ops the server tracks around OpenAI and vector calls; the
        OpenAI one keeps `min: null` (the server's JSON of Infinity)."""
        for op, key, share, keep_min in (
            ("openai.chat", "/copilot/chat", 0.85, False),
            ("vector.search", "/context/search", 0.6, True),
        ):
            idx = self._key_index.get(key)
            if idx is None:
                continue
            sel = batch.key == idx
            if not sel.any():
                continue
            times = np.rint(batch.dur[sel] * share)
            perf = self._proc.performance.setdefault(
                op,
                {
                    "count": 0,
                    "totalTime": 0,
                    "min": None,
                    "max": 0,
                    "avg": 0,
                    "lastDuration": 0,
                    "lastTimestamp": 0,
                    "metadata": {},
                },
            )
            perf["count"] += int(sel.sum())
            perf["totalTime"] = _js(perf["totalTime"] + float(times.sum()))
            perf["max"] = _js(max(float(perf["max"]), float(times.max())))
            if keep_min:
                low = float(times.min())
                perf["min"] = _js(low if perf["min"] is None else min(float(perf["min"]), low))
            perf["avg"] = _js(round(float(perf["totalTime"]) / perf["count"], 3))
            perf["lastDuration"] = _js(float(times[-1]))
            perf["lastTimestamp"] = int(batch.ts[sel][-1])

    # -- answers ----------------------------------------------------------------------

    def _json(self, status: int, payload: Any, key: str | None, duration_ms: int) -> _Reply:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        return _Reply(status, body, key=key, duration_ms=duration_ms)

    def _html_404(self, method: str, raw_path: str, key: str | None) -> _Reply:
        path = urlsplit(raw_path).path
        body = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {_html_escape(path)}</pre>\n"
            "</body>\n</html>\n"
        ).encode()
        return _Reply(404, body, "text/html; charset=utf-8", key=key, duration_ms=1)

    def _memory(self, now: int) -> dict[str, int]:
        p = self._proc
        climb = 0.0
        for e in self._events:
            if e.kind != "memory_climb":
                continue
            lo, hi = max(e.start_ms, p.start_ms), min(e.end_ms, now)
            if hi > lo:
                climb += float(e.value or 0.0) * (hi - lo) / 3_600_000.0
        noise = float(self._rng_misc.normal(0, 0.01)) * self.scenario.base_rss
        rss = int(self.scenario.base_rss + climb + noise)
        heap_total = int(rss * 0.42)
        return {
            "rss": rss,
            "heapTotal": heap_total,
            "heapUsed": int(heap_total * (0.55 + float(self._rng_misc.random()) * 0.1)),
            "external": 3_578_061,
            "arrayBuffers": 65_670,
        }

    def health_payload(self, now: int, deep: bool) -> tuple[int, dict[str, Any], int]:
        """(HTTP status, body, duration ms) of GET /api/health at `now`."""
        rng = self._rng_misc
        p = self._proc
        timestamp = iso_ms(now)
        if any(e.value == 1.0 for e in self._active(now, "error")):
            body = {
                "status": "ERROR",
                "timestamp": timestamp,
                "error": "Cannot read properties of undefined (reading 'from')",
            }
            return 503, body, int(rng.integers(1, 4))
        base = {
            "status": "OK",
            "timestamp": timestamp,
            "uptime": max(0.0, (now - p.start_ms) / 1000.0) + 0.35,
            "memory": self._memory(now),
            "pid": p.pid,
        }
        if not deep:
            base["services"] = {
                "database": {"status": "OK", "message": "Configured"},
                "openai": {"status": "OK", "message": "Configured"},
                "cache": {"status": "OK", "message": "Available"},
            }
            base["checks"] = {
                "database": True,
                "openai": True,
                "cache": True,
                "summary": {"passed": 3, "total": 3},
            }
            return 200, base, int(rng.integers(1, 4))
        failing: set[str] = set()
        if self._active(now, "degraded"):
            failing.add("vectorDB")
        if self._active(now, "error"):
            failing.update(("database", "vectorDB"))
        db_ms = int(rng.integers(8, 40)) if "database" not in failing else int(rng.integers(10, 20))
        services: dict[str, Any] = {
            "database": (
                {
                    "status": "ERROR",
                    "message": "TypeError: fetch failed",
                    "responseTime": f"{db_ms}ms",
                }
                if "database" in failing
                else {"status": "OK", "message": "Connected", "responseTime": f"{db_ms}ms"}
            ),
            "openai": {"status": "OK", "message": "API key configured"},
            "cache": {"status": "OK", "stats": self._cache_stats()},
            "vectorDB": (
                {"status": "ERROR", "message": "TypeError: fetch failed"}
                if "vectorDB" in failing
                else {"status": "OK", "message": "pgvector extension available"}
            ),
            "tables": {
                "status": "OK",
                "message": "All required tables exist",
                "existing": len(REQUIRED_TABLES),
                "total": len(REQUIRED_TABLES),
                "missing": [],
            },
        }
        checks: dict[str, Any] = {name: name not in failing for name in services}
        passed, total = sum(checks.values()), len(checks)
        share = passed / total
        checks["summary"] = {"passed": passed, "total": total, "percentage": f"{share * 100:.1f}"}
        status = "OK" if passed == total else "DEGRADED" if share >= 0.7 else "ERROR"
        base.update(status=status, services=services, checks=checks)
        return (503 if status == "ERROR" else 200), base, db_ms + int(rng.integers(2, 12))

    def _cache_stats(self) -> dict[str, Any]:
        p = self._proc
        parts = {"context": 0.5, "embedding": 0.3, "suggestions": 0.15, "preferences": 0.05}
        stats: dict[str, Any] = {"totalKeys": 0}
        for name, share in parts.items():
            hits, misses = int(p.cache_hits * share), int(p.cache_misses * share)
            keys = min(misses, 500)
            stats[name] = {"keys": keys, "hits": hits, "misses": misses}
            stats["totalKeys"] += keys
        return stats

    def metrics_payload(self, now: int, window_ms: int = DEFAULT_WINDOW_MS) -> dict[str, Any]:
        """The body of GET /api/metrics?timeWindow=window_ms at `now`."""
        p = self._proc
        p.grow(len(self._keys))
        by_endpoint = {}
        for k in p.order:
            count = int(p.count[k])
            by_endpoint[self._keys[k]] = {
                "count": count,
                "avgTime": _js(float(p.time_sum[k]) / count),
                "errorRate": _js(float(p.errors[k]) / count * 100.0),
            }
        cut = now - window_ms
        in_window = p.ring_ts >= cut
        times = p.ring_dur[in_window]  # arrival order, NOT sorted (quirk 1)
        response_times = None
        if len(times):
            n = len(times)
            response_times = {
                "count": n,
                "avg": _js(float(times.mean())),
                "min": int(times.min()),
                "max": int(times.max()),
                "p50": int(times[int(n * 0.5)]),
                "p95": int(times[min(int(n * 0.95), n - 1)]),
                "p99": int(times[min(int(n * 0.99), n - 1)]),
            }
        err_window = np.flatnonzero(p.err_ts >= cut)
        recent = [self._error_record(int(i)) for i in err_window[-RECENT_ERRORS:]]
        ops = p.cache_hits + p.cache_misses
        return {
            "success": True,
            "metrics": {
                "requests": {
                    "total": p.total,
                    "byEndpoint": by_endpoint,
                    "byMethod": dict(p.by_method),
                    "byStatus": dict(p.by_status),
                },
                "responseTimes": response_times,
                "errors": {
                    "total": len(p.err_ts),
                    "recent": len(err_window),
                    "recentErrors": recent,
                },
                "cache": {
                    "hits": p.cache_hits,
                    "misses": p.cache_misses,
                    "hitRate": _js(p.cache_hits / ops * 100.0) if ops else 0,
                },
                "performance": {k: dict(v) for k, v in p.performance.items()},
                "uptime": {
                    "start": p.start_ms,
                    "duration": max(0, now - p.start_ms),
                    "lastReset": p.last_reset_ms,
                },
                "timestamp": iso_ms(now),
            },
        }

    def _error_record(self, i: int) -> dict[str, Any]:
        p = self._proc
        endpoint = self._keys[int(p.err_key[i])]
        method = self._methods[int(p.err_method[i])]
        ts = int(p.err_ts[i])
        if p.err_exc[i]:
            message = _EXCEPTIONS[ts % len(_EXCEPTIONS)]
            return {
                "endpoint": endpoint,
                "error": message,
                "stack": f"Error: {message}\n    at handler (/app/api/routes{endpoint.split('/:')[0]}.js:42:11)",
                "context": {"method": method, "path": endpoint},
                "timestamp": ts,
            }
        return {
            "endpoint": endpoint,
            "method": method,
            "statusCode": int(p.err_status[i]),
            "timestamp": ts,
        }

    def endpoint_payload(self, now: int, key: str, window_ms: int) -> tuple[int, dict[str, Any]]:
        p = self._proc
        idx = self._key_index.get(key)
        sel = (p.ring_ts >= now - window_ms) & (p.ring_key == idx) if idx is not None else None
        if sel is None or not sel.any():
            return 404, {"success": False, "error": NO_METRICS}
        times = p.ring_dur[sel]
        return 200, {
            "success": True,
            "endpoint": key,
            "metrics": {
                "count": int(len(times)),
                "avgResponseTime": _js(float(times.mean())),
                "minResponseTime": int(times.min()),
                "maxResponseTime": int(times.max()),
            },
        }

    def _route(self, method: str, raw_path: str, now: int) -> _Reply:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        window = DEFAULT_WINDOW_MS
        if "timeWindow" in query:
            try:
                window = int(float(query["timeWindow"][0]))
            except ValueError:
                window = DEFAULT_WINDOW_MS
        rng = self._rng_misc
        if not (path == "/api" or path.startswith("/api/")):
            return self._html_404(method, raw_path, None)
        if method == "GET" and path in ("/api/health", "/api/health/"):
            deep = query.get("deep", ["false"])[0].lower() == "true"
            status, body, dur = self.health_payload(now, deep)
            return self._json(status, body, HEALTH_KEY, dur)
        if method == "GET" and path in ("/api/metrics", "/api/metrics/"):
            return self._json(
                200, self.metrics_payload(now, window), METRICS_KEY, int(rng.integers(1, 6))
            )
        prefix = "/api/metrics/endpoint/"
        if method == "GET" and path.startswith(prefix):
            segment = path[len(prefix) :]
            if segment and "/" not in segment:
                status, body = self.endpoint_payload(now, unquote(segment), window)
                return self._json(status, body, ENDPOINT_METRICS_KEY, int(rng.integers(0, 3)))
        if method == "POST" and path == "/api/metrics/reset":
            reply = self._json(
                200, {"success": True, "message": "Metrics reset successfully"}, None, 1
            )
            reply.after = "die"
            return reply
        return self._html_404(method, raw_path, normalize_path(path))

    def _serve(self, handler: _Handler, method: str) -> None:
        started = time.perf_counter()
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(min(length, 1 << 20))
        with self._lock:
            now = self.now_ms()
            gone = self._dead or self._dying or self._stopped or handler.server is not self._server
            if gone or self._active(now, "outage"):
                handler.close_connection = True  # no answer: the socket just closes
                return
            self._advance(now)
            reply = self._route(method, handler.path, now)
            if reply.after == "die":
                self._dying = True  # from this answer on, nothing more is answered
            if reply.key is not None:
                if self.clock is None:
                    reply.duration_ms = int(round((time.perf_counter() - started) * 1000))
                key, meth = self._key(reply.key), self._method(method)
                self._pending.append(
                    _Batch(
                        np.array([now + reply.duration_ms], np.int64),
                        np.array([key], np.int32),
                        np.array([meth], np.int16),
                        np.array([reply.duration_ms], np.int64),
                        np.array([reply.status], np.int16),
                        np.zeros(1, bool),
                    )
                )
        handler.send_response(reply.status)
        handler.send_header("X-Powered-By", "Express")
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        if reply.after == "die":
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(reply.body)
        handler.wfile.flush()
        if reply.after == "die":
            threading.Thread(target=self._die, name="simapi-die", daemon=True).start()

    # -- ground truth -----------------------------------------------------------------

    def ledger(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        include_monitoring: bool = True,
    ) -> pd.DataFrame:
        """What the scenario SENT in [start, end), per endpoint: requests, errors, time_sum_ms.

        Includes monitoring requests already answered (counted at answer time +
        duration). Traffic is generated up to the clock's now first.
        """
        with self._lock:
            if not self._dead and not self._stopped:
                self._advance(self.now_ms())
            if self._ledger_cache is None:
                self._ledger_cache = _Batch.concat(self._ledger_parts)
                self._ledger_parts = [self._ledger_cache] if len(self._ledger_cache.ts) else []
            batch = _Batch.concat([self._ledger_cache, *self._pending])
            keys = list(self._keys)
        lo = 0 if start is None else int(np.searchsorted(batch.ts, _ms(start), side="left"))
        hi = len(batch.ts) if end is None else int(np.searchsorted(batch.ts, _ms(end), side="left"))
        key, dur, status = batch.key[lo:hi], batch.dur[lo:hi], batch.status[lo:hi]
        n = len(keys)
        requests = np.bincount(key, minlength=n)
        errors = np.bincount(key[status >= 400], minlength=n)
        time_sum = np.bincount(key, weights=dur.astype(np.float64), minlength=n)
        frame = pd.DataFrame(
            {
                "endpoint": keys,
                "requests": requests.astype(np.int64),
                "errors": errors.astype(np.int64),
                "time_sum_ms": time_sum.astype(np.float64),
            }
        )
        frame = frame[frame["requests"] > 0]
        if not include_monitoring:
            frame = frame[~frame["endpoint"].map(is_monitoring)]
        return frame.sort_values(["requests", "endpoint"], ascending=[False, True]).reset_index(
            drop=True
        )


def _html_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
