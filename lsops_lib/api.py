"""The httpx client of the LongSang API's three monitoring endpoints; their answers are
parsed by `lsops_lib.answers` (parse_health, parse_metrics, parse_endpoint_metrics are
importable from here too). A 503 from `/api/health` with a health body is an ANSWER
(status ERROR).

Failures raise `ApiUnreachable | ApiTimeout | ApiBadStatus | ApiNotJSON |
ApiUnexpectedShape`, each with a one-line message naming what failed and the URL
(without credentials or query tokens), never the token.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from .answers import (
    DEFAULT_WINDOW_MS,
    NO_METRICS_FOR_ENDPOINT,
    _one_line,
    parse_endpoint_metrics,
    parse_health,
    parse_metrics,
)
from .exceptions import (
    ApiBadStatus,
    ApiError,
    ApiNotJSON,
    ApiTimeout,
    ApiUnexpectedShape,
    ApiUnreachable,
    ConfigError,
)
from .models import EndpointMetrics, Health, Metrics
from .urls import masked, masked_name

T = TypeVar("T")

_SENSITIVE_QUERY = re.compile(r"token|key|secret|pass|auth|sig|credential", re.IGNORECASE)


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A proper answer of the API: the parsed record and what came over the wire. Both as
    kept: the record parsed from the answer as received, then the token a server echoed
    masked in its texts; `body` the raw payload with the same echoes masked (QA 24)."""

    record: T
    status: int
    body: bytes = field(repr=False)  # the raw payload the collector stores
    elapsed_ms: float
    url: str  # safe to print: no credentials, no query tokens
    notes: tuple[str, ...] = ()  # figures of the answer read as unknown, and why


MAX_BODY_BYTES = 32 * 2**20  # the client stops reading an answer beyond this (issue 13)


@dataclass(frozen=True)
class _Raw:
    """What came over the wire (the parts of an httpx.Response the client uses)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class _TooLarge(Exception):
    pass


# --- helpers -------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """The URL without user:password and without query parameters that look like secrets."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SENSITIVE_QUERY.search(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# --- the client ----------------------------------------------------------------------


def check_base_url(url: str) -> str:
    """`url` as a base the client appends `/api/...` to; ConfigError when it has no host,
    or a query or fragment (the paths would land inside them: `/?token=x/api/health`)."""
    from .config import redact_url

    try:
        parts = urlsplit(str(url))
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        raise ConfigError(f"API URL has no host: {redact_url(url)}")
    if parts.query or parts.fragment or str(url).rstrip("/").endswith(("?", "#")):
        host = parts.netloc.rsplit("@", 1)[-1]  # shown without credentials, query, fragment
        raise ConfigError(
            f"API URL {parts.scheme}://{host}{parts.path} has a query or fragment (not shown): "
            "give the base address only (a token goes in LSOPS_API_TOKEN or the target's "
            "token_env)"
        )
    return url


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults) shared by every Client: building one loads the
    CA bundle (~30 ms), which was most of a collection round over 100 targets."""
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS


class Client:
    """GETs of `/api/health`, `/api/metrics`, `/api/metrics/endpoint/:endpoint`.

    Retries (`retries` more attempts, backoff `backoff_s * 2**attempt`) on unreachable,
    timeout and 5xx; never on 4xx, nor on a 503 that carries a health body.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = check_base_url(str(base_url)).rstrip("/")
        self.timeout_s = float(timeout_s)
        self.retries = max(0, int(retries))
        self.backoff_s = max(0.0, float(backoff_s))
        self._token = token
        self._sleep = sleep
        # set (e.g. the collector's SIGTERM/SIGINT event): no further try after this one,
        # so a stop request waits for one timeout at most, not for every retry
        self.stop: threading.Event | None = None
        headers = {"Accept": "application/json", "User-Agent": "lsops"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            headers=headers,
            transport=transport,
            follow_redirects=False,
            verify=_tls_context() if transport is None else True,
        )

    @classmethod
    def from_target(cls, target: Any) -> Client:
        return cls(
            target.url,
            token=target.checked_token() if hasattr(target, "checked_token") else target.token,
            timeout_s=getattr(target, "timeout_s", 5.0),
            retries=getattr(target, "retries", 2),
        )

    def __repr__(self) -> str:
        auth = ", token=***" if self._token else ""
        return f"Client({safe_url(self.base_url)!r}{auth})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the endpoints ----------------------------------------------------------------

    def get_health(self, *, deep: bool = False) -> Answer[Health]:
        params = {"deep": "true"} if deep else None
        response, url, elapsed = self._get("/api/health", params, health=True)
        data = self._json(response, url)
        notes: list[str] = []
        try:
            record = parse_health(data, http_status=response.status_code, deep=deep, notes=notes)
        except ApiUnexpectedShape as exc:
            raise self._shape_error(exc, url, response.status_code) from None
        return self._answer(record, response, data, elapsed, url, notes)

    def get_metrics(self, *, time_window_ms: int = DEFAULT_WINDOW_MS) -> Answer[Metrics]:
        response, url, elapsed = self._get("/api/metrics", {"timeWindow": str(int(time_window_ms))})
        data = self._json(response, url)
        notes: list[str] = []
        try:
            record = parse_metrics(data, time_window_ms=time_window_ms, notes=notes)
        except ApiUnexpectedShape as exc:
            raise self._shape_error(exc, url, response.status_code) from None
        return self._answer(record, response, data, elapsed, url, notes)

    def get_endpoint_metrics(
        self, path: str, *, time_window_ms: int = DEFAULT_WINDOW_MS
    ) -> Answer[EndpointMetrics | None]:
        segment = quote(str(path), safe="")
        response, url, elapsed = self._get(
            f"/api/metrics/endpoint/{segment}",
            {"timeWindow": str(int(time_window_ms))},
            endpoint=True,
        )
        data = self._json(response, url)
        try:
            record = parse_endpoint_metrics(data)
        except ApiUnexpectedShape as exc:
            raise self._shape_error(exc, url, response.status_code) from None
        return self._answer(record, response, data, elapsed, url, [])

    def health(self, deep: bool = False) -> Health:
        return self.get_health(deep=deep).record

    def metrics(self, time_window_ms: int = DEFAULT_WINDOW_MS) -> Metrics:
        return self.get_metrics(time_window_ms=time_window_ms).record

    def endpoint_metrics(
        self, path: str, time_window_ms: int = DEFAULT_WINDOW_MS
    ) -> EndpointMetrics | None:
        return self.get_endpoint_metrics(path, time_window_ms=time_window_ms).record

    # -- the token: what is parsed is the answer as received; what is kept or shown of it
    # (the record's texts and names, the raw payload, the notes, the error messages) has
    # the token masked where the server echoed it. Parsing first, masking after, the
    # figures never depend on the token: a short token that is a JSON key or a status
    # word (`status`, `OK`, `t`) no longer turns the answer into a bad shape or `***`.

    def _secrets(self) -> list[str]:
        """The token, and the token as JSON escapes it (an echo inside a string that
        the parser re-serialized: an error object's `json.dumps`)."""
        token = self._token
        if not token:
            return []
        escaped = json.dumps(token)[1:-1]
        return [token, escaped] if escaped != token else [token]

    def _scrub(self, text: str) -> str:
        return self._masked_text(_one_line(text))

    def _masked_text(self, text: str | None) -> str | None:
        """A text with the token masked; a text cut short (`...` or `…` at its end) also
        loses a beginning of the token left at the cut."""
        if text is None:
            return None
        secrets = self._secrets()
        text = masked(text, secrets)
        if not secrets:
            return text
        for mark in ("...", "…"):
            if text.endswith(mark):
                body = text[: -len(mark)]
                token = secrets[0]
                for k in range(len(token) - 1, 0, -1):
                    if body.endswith(token[:k]):
                        return body[:-k] + "***" + mark
        return text

    def _echoed(self, content: bytes) -> bool:
        """Whether the token may be in `content` (as it is, or behind a JSON escape)."""
        token = self._token
        if not token:
            return False
        return token.encode() in content or b"\\" in content

    def _shape_error(self, exc: ApiUnexpectedShape, url: str, status: int) -> ApiUnexpectedShape:
        return ApiUnexpectedShape(self._masked_text(str(exc)) or "", url=url, status=status)

    def _answer(
        self, record: Any, response: _Raw, data: Any, elapsed: float, url: str, notes: list[str]
    ) -> Answer[Any]:
        """The Answer of a parsed `record`: its texts, the notes and the raw payload with
        the token masked (`_scrub_body`), the figures as parsed."""
        body = response.content
        if self._echoed(body):
            record = self._masked_record(record)
            body = self._scrub_body(body, data)
            notes = [self._masked_text(n) or "" for n in notes]
        return Answer(record, response.status_code, body, elapsed, url, tuple(notes))

    def _scrub_body(self, content: bytes, data: Any = None) -> bytes:
        """The raw payload kept (the collector stores it) without the token a server
        echoed (a 503 health body's `error`, a service's message, an endpoint path...):
        JSON (`data`, the answer parsed) re-written with the token masked in every string
        and in the keys as `urls.masked` masks them; anything else masked as bytes; the
        payload as received when it holds no echo."""
        secrets = self._secrets()
        if not secrets:
            return content
        if data is None:
            try:
                data = json.loads(content)
            except (ValueError, UnicodeDecodeError):
                for secret in secrets:
                    content = content.replace(secret.encode(), b"***")
                return content
        scrubbed = masked(data, secrets)
        if scrubbed == data:  # no echo (a JSON escape made it look like one could be)
            return content
        return json.dumps(scrubbed, ensure_ascii=False).encode()

    def _masked_record(self, record: Any) -> Any:
        """`record` (Health, Metrics, EndpointMetrics) with the token masked in its texts
        (an error, a service's message, an error record, the stats and performance
        objects) and in its names as `urls.masked_name` masks one (an endpoint path, a
        service, a method: not a token of letters alone, which may be the answer's own
        word); never in a status word or a figure."""
        secrets = self._secrets()

        def name(text: str) -> str:
            return masked_name(text, secrets)

        if isinstance(record, Health):
            return replace(
                record,
                error=self._masked_text(record.error),
                services={
                    name(key): replace(
                        service,
                        name=name(service.name),
                        message=self._masked_text(service.message),
                        stats=masked(service.stats, secrets),
                    )
                    for key, service in record.services.items()
                },
                checks={name(k): v for k, v in record.checks.items()},
            )
        if isinstance(record, Metrics):
            return replace(
                record,
                endpoints={name(k): v for k, v in record.endpoints.items()},
                by_method={name(k): v for k, v in record.by_method.items()},
                by_status={name(k): v for k, v in record.by_status.items()},
                recent_errors=[
                    replace(
                        e,
                        endpoint=None if e.endpoint is None else name(e.endpoint),
                        method=None if e.method is None else name(e.method),
                        error=masked(e.error, secrets),
                        context=masked(e.context, secrets),
                    )
                    for e in record.recent_errors
                ],
                performance={name(k): masked(v, secrets) for k, v in record.performance.items()},
            )
        if isinstance(record, EndpointMetrics):
            return replace(record, endpoint=name(record.endpoint))
        return record

    # -- transport --------------------------------------------------------------------

    def _json(self, response: _Raw, url: str) -> Any:
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            ctype = response.headers.get("content-type", "").split(";")[0] or "no content type"
            raise ApiNotJSON(
                f"HTTP {response.status_code} answer is not JSON ({ctype}, {len(response.content)} bytes)",
                url=url,
                status=response.status_code,
            ) from None

    @staticmethod
    def _error_text(response: _Raw) -> str | None:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return None
        if isinstance(data, Mapping) and data.get("error") is not None:
            return _one_line(str(data["error"]))
        return None

    @staticmethod
    def _is_health_body(response: _Raw) -> bool:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(data, Mapping) and isinstance(data.get("status"), str)

    def _fetch(self, url: str, started: float) -> _Raw:
        """GET url and read the whole body within `timeout_s` (a server dripping bytes
        cannot hold the collector) and at most MAX_BODY_BYTES."""
        with self._http.stream("GET", url) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _TooLarge()  # said so up front: not a byte of the body is read
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge()
                chunks.append(chunk)
                if time.perf_counter() - started > self.timeout_s:
                    raise httpx.ReadTimeout("answer not complete in time")
            return _Raw(response.status_code, response.headers, b"".join(chunks))  # as received

    def _get(
        self,
        path: str,
        params: dict[str, str] | None,
        *,
        health: bool = False,
        endpoint: bool = False,
    ) -> tuple[_Raw, str, float]:
        full = self.base_url + path + ("?" + urlencode(params) if params else "")
        url = safe_url(full)
        attempts = self.retries + 1
        last: tuple[type[ApiError], str, int | None] | None = None
        tried = 0
        for attempt in range(attempts):
            if attempt:
                if self.stop is not None and self.stop.is_set():
                    break  # asked to stop: the last failure stands
                self._sleep(self.backoff_s * (2 ** (attempt - 1)))
            started = time.perf_counter()
            tried += 1
            try:
                response = self._fetch(full, started)
            except httpx.TimeoutException:
                last = (ApiTimeout, f"no answer within {self.timeout_s:g} s", None)
                continue
            except _TooLarge:
                raise ApiUnexpectedShape(
                    f"answer larger than {MAX_BODY_BYTES // 2**20} MiB", url=url
                ) from None
            except httpx.InvalidURL as exc:
                raise ApiUnreachable(f"invalid URL: {self._scrub(str(exc))}", url=url) from None
            except httpx.TransportError as exc:
                reason = self._scrub(str(exc)) or type(exc).__name__
                last = (ApiUnreachable, f"unreachable: {reason}", None)
                continue
            elapsed = (time.perf_counter() - started) * 1000.0
            status = response.status_code
            if 200 <= status < 300:
                return response, url, elapsed
            if health and status == 503 and self._is_health_body(response):
                return response, url, elapsed  # an answer: the service says ERROR
            if endpoint and status == 404:
                text = self._error_text(response)
                if text is not None and NO_METRICS_FOR_ENDPOINT.lower() in text.lower():
                    return response, url, elapsed
                if text is None:
                    raise ApiBadStatus(
                        "HTTP 404 (an HTML page, not JSON): the endpoint path must be "
                        "percent-encoded as ONE segment, e.g. %2Fcopilot%2Fchat",
                        url=url,
                        status=status,
                    )
            text = self._error_text(response)
            detail = f": {self._scrub(text)}" if text else ""
            if 300 <= status < 400:
                location = response.headers.get("location", "")
                where = f" to {safe_url(urljoin(full, location))}" if location else ""
                detail = (
                    f" (a redirect{where}; lsops does not follow redirects: set the target's "
                    "URL to the final address)"
                )
            if status >= 500:
                last = (ApiBadStatus, f"HTTP {status}{detail}", status)
                continue
            raise ApiBadStatus(f"HTTP {status}{detail}", url=url, status=status)
        assert last is not None
        cls, message, status = last
        if tried > 1:
            message = f"{message} (after {tried} attempts)"
        raise cls(message, url=url, status=status)
