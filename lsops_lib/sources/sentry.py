"""Sentry's issues API: `GET /api/0/projects/{org}/{project}/issues/`, every page.

    with SentryClient(settings.sentry) as client:
        issues = client.issues(since=start, stats_period="24h")

The client sends the token as `Authorization: Bearer` and nothing else ever sees it: it
is not in a URL, an error message, a log line or the store. Pages follow the `Link`
header (`<url>; rel="next"; results="true"; cursor="..."`) until `results="false"`.
401/403 are one clear line; 429 is retried after `Retry-After` when that still fits in the
client's timeout budget, else it is a failure saying so. The waits between tries are at
least MIN_WAIT and double at each try (a `Retry-After: 0`, or a date in the past, never
makes a burst of requests). A token that is not printable ASCII (an accent, a trailing
carriage return) is refused before anything is sent, without being shown; a token that
Sentry's answer echoes (an issue's title) is masked as soon as the answer is read.

The window's issues are asked with `query=lastSeen:>=<start>` (every status, not only the
implied `is:unresolved`) and `statsPeriod` `24h` (hourly event counts) or `14d` (daily):
an issue's events in a window are the sum of its stats buckets that start in it.
"""

from __future__ import annotations

import functools
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import fmt
from ..config import redact_url
from ..urls import masked
from .common import SourceError, one_line
from .settings import SentrySettings

if TYPE_CHECKING:  # imported where a request is made: reading what was collected needs none
    import httpx

MAX_PAGES = 200
MIN_WAIT = 0.5  # s: the first wait after a 429, doubled at each further try
MAX_INT = 2**63 - 1  # what an INTEGER column holds (SQLite, PostgreSQL's bigint)
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what an HTTP header's token can be: printable ASCII
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_PARAM = re.compile(r';\s*([a-zA-Z_]+)\s*=\s*"?([^";]*)"?')


def parse_link(header: str | None) -> dict[str, dict[str, str]]:
    """`Link` header -> {rel: {"url", "results", "cursor"}}."""
    out: dict[str, dict[str, str]] = {}
    for match in _LINK.finditer(header or ""):
        params = {k.lower(): v for k, v in _PARAM.findall(match.group(2))}
        rel = params.get("rel")
        if rel:
            out[rel] = {"url": match.group(1), **params}
    return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_instant(value: Any) -> datetime | None:
    """Sentry's ISO 8601 instants ("2026-10-16T09:12:01.123456Z") as aware datetimes."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (loading the CA bundle takes ~0.2 s: a collector
    making a client every round should not pay it each time)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class SentryClient:
    """The issues API of one Sentry project (`sources.settings.SentrySettings`)."""

    def __init__(
        self,
        settings: SentrySettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stop: threading.Event | None = None,
    ) -> None:
        missing = settings.missing()
        if missing:
            raise SourceError("sentry", missing)
        if not _TOKEN.fullmatch(settings.token or ""):
            raise SourceError(
                "sentry",
                f"the token is malformed (only printable ASCII, no space, accent or line end): "
                f"check {settings.token_env} or LSOPS_SENTRY_TOKEN",
            )
        import httpx

        self.settings = settings
        # the collector's stop request (SIGTERM): no further request, and a wait for
        # Retry-After cut short, as the API client's; a request in progress ends within
        # timeout_s at most
        self.stop = stop
        self._sleep = stop.wait if stop is not None and sleep is time.sleep else sleep
        self._http = httpx.Client(
            base_url=settings.url,
            timeout=settings.timeout_s,
            headers={"Authorization": f"Bearer {settings.token}", "Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
            verify=_tls(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SentryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        s = self.settings
        return f"/api/0/projects/{s.org}/{s.project}/issues/"

    def _get(self, url: str, params: dict[str, str] | None, deadline: float) -> httpx.Response:
        """One GET; 429 waits for Retry-After while that fits before `deadline`."""
        import httpx

        shown_url = redact_url(self.settings.url)
        tries = 0
        while True:
            tries += 1
            self._check_stop()
            try:
                response = self._http.get(url, params=params)
            except httpx.TimeoutException:
                raise SourceError(
                    "sentry", f"no answer within {self.settings.timeout_s:g} s from {shown_url}"
                ) from None
            except httpx.HTTPError as exc:
                raise SourceError(
                    "sentry", f"cannot reach {shown_url}: {type(exc).__name__}"
                ) from None
            if response.status_code != 429:
                return response
            wait = _retry_after(response.headers.get("Retry-After"))
            if wait is not None:  # never a burst: at least MIN_WAIT, doubled at each try
                wait = max(wait, MIN_WAIT * 2 ** (tries - 1))
            left = deadline - time.monotonic()
            if tries > 1 and (wait is None or wait > left):
                raise SourceError(
                    "sentry",
                    f"rate limited: Sentry kept answering 429 after "
                    f"{fmt.counted(tries, 'try', 'tries')} within the "
                    f"{self.settings.timeout_s:g} s timeout",
                )
            if wait is None or wait > left:
                shown = f"{wait:g} s" if wait is not None else "an unknown time"
                raise SourceError(
                    "sentry",
                    f"rate limited (429): Retry-After {shown} does not fit in the "
                    f"{self.settings.timeout_s:g} s timeout",
                )
            self._sleep(wait)

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise SourceError("sentry", "stopped (SIGTERM/SIGINT) before the issues were all read")

    def pages(self, params: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
        """Every page of the issues list (the `Link` header's next until results="false")."""
        deadline = time.monotonic() + self.settings.timeout_s
        url: str = self.path
        query: dict[str, str] | None = params
        for _ in range(MAX_PAGES):
            response = self._get(url, query, deadline)
            _check(response, self.settings)
            try:
                body = response.json()
            except ValueError:
                raise SourceError("sentry", "the issues list is not JSON") from None
            if not isinstance(body, list):
                raise SourceError("sentry", "the issues list is not a JSON array")
            yield [masked(i, [self.settings.token]) for i in body if isinstance(i, dict)]
            nxt = parse_link(response.headers.get("Link")).get("next")
            if not nxt or nxt.get("results", "false").lower() != "true":
                return
            url, query = _same_origin(nxt["url"], self.settings.url, self.path), None
            deadline = time.monotonic() + self.settings.timeout_s
        raise SourceError("sentry", f"more than {MAX_PAGES} pages of issues")

    def issues(
        self, *, since: datetime, stats_period: str = "24h", query: str = ""
    ) -> list[dict[str, Any]]:
        """Every issue last seen at or after `since` (all statuses unless `query` says)."""
        q = f"lastSeen:>={_iso(since)}" + (f" {query}" if query else "")
        params = {"query": q, "statsPeriod": stats_period, "limit": "100"}
        found: dict[str, dict[str, Any]] = {}
        for page in self.pages(params):
            for issue in page:
                found[str(issue.get("id"))] = issue
        return list(found.values())

    def unresolved(self) -> list[dict[str, Any]]:
        """Every issue unresolved now, however old (`query=is:unresolved`)."""
        found: dict[str, dict[str, Any]] = {}
        for page in self.pages({"query": "is:unresolved", "statsPeriod": "", "limit": "100"}):
            for issue in page:
                found[str(issue.get("id"))] = issue
        return list(found.values())


def _same_origin(url: str, base: str, path: str) -> str:
    """The next page's URL, refused when it leaves the configured Sentry (the token goes
    only there)."""
    import httpx

    target = httpx.URL(url)
    origin = httpx.URL(base)
    if target.is_relative_url:
        return str(target)
    if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
        raise SourceError("sentry", "a Link header pointed to another host: not followed")
    return str(target)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check(response: httpx.Response, settings: SentrySettings) -> None:
    code = response.status_code
    if code in (401, 403):
        raise SourceError(
            "sentry",
            f"the token was refused ({code}): check {settings.token_env} or LSOPS_SENTRY_TOKEN "
            f"(scopes event:read, project:read) and [sentry] org/project",
        )
    if code == 404:
        raise SourceError(
            "sentry",
            f"project {settings.org}/{settings.project} not found (404) at "
            f"{redact_url(settings.url)}",
        )
    if code >= 400:
        raise SourceError("sentry", f"HTTP {code} from {redact_url(settings.url)}")


# --- issues as lsops sees them ---------------------------------------------------------


def _int(value: Any) -> int | None:
    """An integer of Sentry's answer; None when it is not one, or does not fit in an
    INTEGER column (a count of 10^23: unknown, rather than a failed collection)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -MAX_INT - 1 <= number <= MAX_INT else None


def issue_row(issue: dict[str, Any]) -> dict[str, Any]:
    """The stored columns of one issue (lsops_sentry_issues), instants in epoch ms."""
    from ..times import to_ms

    first = parse_instant(issue.get("firstSeen"))
    last = parse_instant(issue.get("lastSeen"))
    return {
        "issue_id": str(issue.get("id")),
        "short_id": one_line(str(issue.get("shortId") or ""), 200),
        "title": str(issue.get("title") or ""),
        "culprit": str(issue.get("culprit") or ""),
        "level": str(issue.get("level") or "error").lower(),
        "status": str(issue.get("status") or "unresolved").lower(),
        "substatus": str(issue.get("substatus") or "") or None,
        "first_seen": to_ms(first) if first else None,
        "last_seen": to_ms(last) if last else None,
        "events": _int(issue.get("count")),
        "users": _int(issue.get("userCount")),
        "permalink": str(issue.get("permalink") or ""),
    }


def stats_buckets(issue: dict[str, Any]) -> list[tuple[int, int]]:
    """(bucket start in epoch s, events) from the issue's `stats` (24h or 14d)."""
    stats = issue.get("stats") or {}
    out: list[tuple[int, int]] = []
    if not isinstance(stats, dict):
        return out
    for series in stats.values():
        if not isinstance(series, list):
            continue
        for point in series:
            if isinstance(point, list | tuple) and len(point) == 2:
                ts, n = _int(point[0]), _int(point[1])
                if ts is not None and n is not None:
                    out.append((ts, n))
        break  # one period only
    return out


def hourly_rows(issue: dict[str, Any]) -> list[dict[str, Any]]:
    """lsops_sentry_events rows from the hourly (`24h`) stats of one issue."""
    stats = issue.get("stats") or {}
    if not isinstance(stats, dict) or "24h" not in stats:
        return []
    return [
        {"issue_id": str(issue.get("id")), "hour": ts * 1000, "events": n}
        for ts, n in stats_buckets({"stats": {"24h": stats["24h"]}})
    ]


def stats_period_for(start: datetime, now: datetime) -> str:
    """`24h` when the window starts within the last 24 hours, else `14d`."""
    return "24h" if now - start <= timedelta(hours=24) else "14d"


def events_in(issue: dict[str, Any], start: datetime, end: datetime) -> int:
    """The issue's events in the stats buckets that start in [start, end)."""
    lo, hi = start.timestamp(), end.timestamp()
    return sum(n for ts, n in stats_buckets(issue) if lo <= ts < hi)
