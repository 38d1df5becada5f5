"""A Sentry stand-in: a real HTTP server on loopback answering the issues API as Sentry
documents it (`GET /api/0/projects/{org}/{project}/issues/`), for the tests and the demo.

- Authentication: `Authorization: Bearer <token>`; anything else is 401
  `{"detail": "Invalid token"}`.
- `query`: `is:unresolved` (implied when absent), `lastSeen:>=<ISO>`; an empty query lists
  every status.
- `statsPeriod`: `24h` (24 hourly buckets to the current hour), `14d` (14 daily buckets),
  `""` (no stats); each bucket `[start epoch s, events]` counted from the issue's events.
- Pages of `page_size` issues (lastSeen newest first); a `Link` header with `previous` and
  `next`, each `results="true"|"false"` and `cursor="0:<offset>:0"`.
- `rate_limit(n, retry_after)`: the next n requests answer 429 with `Retry-After`.
- `requests`: every request's path, query and Authorization header (to check the token
  is sent only here).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .server import serve


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SimIssue:
    """One issue and the instants of its events."""

    id: str
    short_id: str
    title: str
    culprit: str = ""
    level: str = "error"
    status: str = "unresolved"
    substatus: str | None = "ongoing"
    events: list[datetime] = field(default_factory=list)
    users: int = 1
    resolved_at: datetime | None = None  # from then on its status is "resolved"

    def status_at(self, now: datetime) -> str:
        if self.resolved_at is not None and now >= self.resolved_at:
            return "resolved"
        return self.status

    def first_seen(self, now: datetime | None = None) -> datetime:
        return min(e for e in self.events if now is None or e <= now)

    def last_seen(self, now: datetime | None = None) -> datetime:
        return max(e for e in self.events if now is None or e <= now)


class SentryStandIn:
    """The stand-in's state and server. `start()` -> base URL; `stop()`."""

    def __init__(
        self,
        *,
        org: str = "longsang",
        project: str = "longsang-api",
        token: str = "sntrys-test-token",
        page_size: int = 100,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.org, self.project, self.token = org, project, token
        self.page_size = page_size
        self.now = now or (lambda: datetime.now(UTC))
        self.issues: list[SimIssue] = []
        self.requests: list[dict[str, Any]] = []
        self._limited = 0
        self._retry_after = "1"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def rate_limit(self, count: int, retry_after: str = "1") -> None:
        with self._lock:
            self._limited, self._retry_after = count, retry_after

    # --- the answer -----------------------------------------------------------------------

    def _stats(self, issue: SimIssue, period: str) -> dict[str, list[list[int]]] | None:
        if period not in ("24h", "14d"):
            return None
        now = self.now().astimezone(UTC)
        if period == "24h":
            step, count = timedelta(hours=1), 24
            top = now.replace(minute=0, second=0, microsecond=0)
        else:
            step, count = timedelta(days=1), 14
            top = now.replace(hour=0, minute=0, second=0, microsecond=0)
        buckets = []
        for i in range(count - 1, -1, -1):
            lo = top - i * step
            n = sum(1 for e in issue.events if lo <= e < lo + step and e <= now)
            buckets.append([int(lo.timestamp()), n])
        return {period: buckets}

    def _body(self, issue: SimIssue, period: str) -> dict[str, Any]:
        now = self.now()
        body: dict[str, Any] = {
            "id": issue.id,
            "shortId": issue.short_id,
            "title": issue.title,
            "culprit": issue.culprit,
            "level": issue.level,
            "status": issue.status_at(now),
            "substatus": issue.substatus,
            "isUnhandled": issue.level == "fatal",
            "count": str(sum(1 for e in issue.events if e <= now)),
            "userCount": issue.users,
            "firstSeen": _iso(issue.first_seen(now)),
            "lastSeen": _iso(issue.last_seen(now)),
            "permalink": f"{self.url}/organizations/{self.org}/issues/{issue.id}/",
            "project": {"slug": self.project},
            "metadata": {"value": issue.title},
        }
        stats = self._stats(issue, period)
        if stats is not None:
            body["stats"] = stats
        return body

    def _select(self, query: str) -> list[SimIssue]:
        now = self.now()
        # what Sentry knows at `now`: the events until then
        chosen = [i for i in self.issues if any(e <= now for e in i.events)]
        for token in query.split():
            if token == "is:unresolved":
                chosen = [i for i in chosen if i.status_at(now) == "unresolved"]
            elif token.startswith("lastSeen:>="):
                since = datetime.fromisoformat(token[len("lastSeen:>=") :].replace("Z", "+00:00"))
                since = since if since.tzinfo else since.replace(tzinfo=UTC)
                chosen = [i for i in chosen if i.last_seen(now) >= since]
        return sorted(chosen, key=lambda i: (i.last_seen(now), i.id), reverse=True)

    def answer(
        self, path: str, params: dict[str, str], auth: str | None
    ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append({"path": path, "params": dict(params), "authorization": auth})
            if self._limited > 0:
                self._limited -= 1
                return 429, {"Retry-After": self._retry_after}, {"detail": "rate limited"}
        if auth != f"Bearer {self.token}":
            return 401, {}, {"detail": "Invalid token"}
        expected = f"/api/0/projects/{self.org}/{self.project}/issues/"
        if path != expected:
            return 404, {}, {"detail": "The requested resource does not exist"}
        query = params.get("query", "is:unresolved")
        period = params.get("statsPeriod", "24h")
        limit = max(1, min(int(params.get("limit", "100") or 100), self.page_size))
        try:
            offset = int(params.get("cursor", "0:0:0").split(":")[1])
        except (IndexError, ValueError):
            return 400, {}, {"detail": "Invalid cursor parameter."}
        with self._lock:
            chosen = self._select(query)
            page = [self._body(i, period) for i in chosen[offset : offset + limit]]
        base = {k: v for k, v in params.items() if k != "cursor"}

        def link(rel: str, off: int, results: bool) -> str:
            cursor = f"0:{off}:{1 if rel == 'previous' else 0}"
            url = f"{self.url}{path}?{urlencode({**base, 'cursor': cursor})}"
            return f'<{url}>; rel="{rel}"; results="{str(results).lower()}"; cursor="{cursor}"'

        header = ", ".join(
            [
                link("previous", max(0, offset - limit), offset > 0),
                link("next", offset + limit, offset + limit < len(chosen)),
            ]
        )
        return 200, {"Link": header}, page

    # --- the server -----------------------------------------------------------------------

    def start(self) -> str:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                params = {
                    k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()
                }
                code, headers, body = stand_in.answer(
                    parts.path, params, self.headers.get("Authorization")
                )
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        serve(self._server)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
