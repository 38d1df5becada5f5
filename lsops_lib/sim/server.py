"""The simulated process's HTTP side: a `ThreadingHTTPServer` on loopback, the routes,
and the life of the process behind them.

Routes: `GET /api/health[?deep=true]`, `GET /api/metrics[?timeWindow=MS]`,
`GET /api/metrics/endpoint/:endpoint` (ONE percent-encoded segment; the unencoded form
gets Express's HTML 404) and `POST /api/metrics/reset`, which empties the counters and
then "kills the process": connections are refused until a restart `restart_delay_s`
later, on the same port, with a new `uptime.start`. During an "outage" event a request
gets no answer (the socket just closes). Every request answered under /api is counted
(monitoring included) once its answer is sent.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import payloads
from .payloads import DEFAULT_WINDOW_MS
from .scenario import normalize_path
from .traffic import ENDPOINT_METRICS_KEY, HEALTH_KEY, METRICS_KEY, Traffic

# how long a loopback server's shutdown() may wait for its thread to notice (the
# socketserver default polls every 0.5 s: the demo's and the tests' every stop paid it)
SHUTDOWN_POLL_S = 0.05


def serve(server: socketserver.BaseServer, name: str | None = None) -> threading.Thread:
    """Serve `server` on a daemon thread, started; its `shutdown()` returns within
    SHUTDOWN_POLL_S. The simulated API, the Sentry stand-in, the demo's receivers."""
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=name,
        daemon=True,
    )
    thread.start()
    return thread


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    key: str | None = None  # counted under this byEndpoint key (None: not counted)
    duration_ms: int = 1
    after: str | None = None  # "die": the process dies once the answer is sent


def _json(status: int, payload: Any, key: str | None, duration_ms: int) -> Reply:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return Reply(status, body, key=key, duration_ms=duration_ms)


def _html_404(method: str, raw_path: str, key: str | None) -> Reply:
    body = payloads.express_404(method, urlsplit(raw_path).path)
    return Reply(404, body, "text/html; charset=utf-8", key=key, duration_ms=1)


def route(traffic: Traffic, method: str, raw_path: str, now: int) -> Reply:
    """The answer to `method raw_path` at `now` (nothing counted yet)."""
    parts = urlsplit(raw_path)
    path, query = parts.path, parse_qs(parts.query)
    window = DEFAULT_WINDOW_MS
    if "timeWindow" in query:
        try:
            window = int(float(query["timeWindow"][0]))
        except ValueError:
            window = DEFAULT_WINDOW_MS
    rng = traffic.misc_rng
    if not (path == "/api" or path.startswith("/api/")):
        return _html_404(method, raw_path, None)
    if method == "GET" and path in ("/api/health", "/api/health/"):
        deep = query.get("deep", ["false"])[0].lower() == "true"
        status, body, dur = payloads.health(traffic, now, deep)
        return _json(status, body, HEALTH_KEY, dur)
    if method == "GET" and path in ("/api/metrics", "/api/metrics/"):
        body = payloads.metrics(traffic, now, window)
        return _json(200, body, METRICS_KEY, int(rng.integers(1, 6)))
    prefix = "/api/metrics/endpoint/"
    if method == "GET" and path.startswith(prefix):
        segment = path[len(prefix) :]
        if segment and "/" not in segment:
            status, body = payloads.endpoint(traffic, now, unquote(segment), window)
            return _json(status, body, ENDPOINT_METRICS_KEY, int(rng.integers(0, 3)))
    if method == "POST" and path == "/api/metrics/reset":
        reply = _json(200, payloads.RESET_ANSWER, None, 1)
        reply.after = "die"
        return reply
    return _html_404(method, raw_path, normalize_path(path))


# --- the socket server ---------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: Server) -> None:
        super().__init__(address, _Handler)
        self.owner = owner
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
    server: _HTTPServer
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
        self.server.owner.serve(self, method)

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


# --- the process's life ----------------------------------------------------------------------


class Server:
    """Serves a `Traffic` engine over HTTP on host:port; the reset kills the process
    (listener closed, connections dropped) and a timer brings it back.

    `lock` guards the engine (shared with the owner); `now_ms` is the clock; with
    `measured` the answers' durations are the real ones (real-time mode), else the
    engine's draws (virtual time: reproducible)."""

    def __init__(
        self,
        traffic: Traffic,
        *,
        now_ms: Callable[[], int],
        lock: threading.RLock,
        host: str = "127.0.0.1",
        port: int = 0,
        restart_delay_s: float = 0.5,
        measured: bool = False,
    ) -> None:
        self.traffic = traffic
        self.now_ms = now_ms
        self.lock = lock
        self.host = host
        self.port = port
        self.restart_delay_s = float(restart_delay_s)
        self.measured = measured
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.dead = False
        self.dying = False  # answered the reset: nothing more is answered until revived
        self.stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the process answers (False after a reset, until it is back)."""
        return self._http is not None and not self.dead and not self.dying

    def start(self) -> None:
        with self.lock:
            self.stopped = False
            self.dead = False
            self.dying = False
            if self._http is None:
                self._listen()

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._close_listener()

    def _listen(self) -> None:
        deadline = time.monotonic() + 5.0
        while True:
            try:
                http = _HTTPServer((self.host, self.port), self)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = int(http.server_address[1])
        self._http, self._thread = http, serve(http, name="simapi")

    def _close_listener(self) -> None:
        http, thread = self._http, self._thread
        self._http = self._thread = None
        if http is not None:
            http.shutdown()
            http.server_close()
            http.drop_connections()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def serve(self, handler: _Handler, method: str) -> None:
        started = time.perf_counter()
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(min(length, 1 << 20))
        traffic = self.traffic
        with self.lock:
            now = self.now_ms()
            gone = self.dead or self.dying or self.stopped or handler.server is not self._http
            if gone or traffic.active(now, "outage"):
                handler.close_connection = True  # no answer: the socket just closes
                return
            traffic.advance(now)
            reply = route(traffic, method, handler.path, now)
            if reply.after == "die":
                self.dying = True  # from this answer on, nothing more is answered
            if reply.key is not None:
                if self.measured:
                    reply.duration_ms = int(round((time.perf_counter() - started) * 1000))
                traffic.count_answer(now, reply.key, method, reply.duration_ms, reply.status)
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

    def _die(self) -> None:
        """POST /api/metrics/reset: the counters are emptied, then the process exits."""
        with self.lock:
            if self.dead or self.stopped:
                return
            self.traffic.flush_pending(self.now_ms())
            self.traffic.empty_counters()
            self.dead = True
        self._close_listener()
        with self.lock:
            if self.stopped:
                return
            self._timer = threading.Timer(self.restart_delay_s, self._revive)
            self._timer.daemon = True
            self._timer.start()

    def _revive(self) -> None:
        """The process is started again (what went by while it was dead is lost)."""
        with self.lock:
            if self.stopped:
                return
            self._timer = None
            self.traffic.new_process(max(self.now_ms(), self.traffic.gen_until))
            self.dead = False
            self.dying = False
            self._listen()
