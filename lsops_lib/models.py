"""Typed records of what the LongSang API answers, after every quirk is absorbed.

Units are normalised here, once: times are epoch milliseconds (int) or ISO strings
turned into aware UTC datetimes, durations in milliseconds (float), rates are FRACTIONS
0-1 (the API speaks percents), sizes in bytes. The parsers live in `lsops_lib.api`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Memory:
    rss: int | None = None
    heap_total: int | None = None
    heap_used: int | None = None
    external: int | None = None
    array_buffers: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    status: str  # OK | WARN | ERROR (as the server said it, upper-cased)
    message: str | None = None
    response_time_ms: float | None = None  # "142ms" -> 142.0
    stats: dict[str, Any] = field(default_factory=dict)  # deep cache stats, table lists...


@dataclass(frozen=True)
class Health:
    status: str  # OK | DEGRADED | ERROR
    http_status: int
    timestamp: datetime | None
    uptime_s: float | None
    memory: Memory
    pid: int | None
    services: dict[str, Service]
    checks: dict[str, bool]
    checks_passed: int | None
    checks_total: int | None
    checks_percentage: float | None  # "80.0" or 0 -> float; None when absent (quick mode)
    error: str | None = None  # the 503 exception shape: {"status":"ERROR","error":...}
    deep: bool = False


@dataclass(frozen=True)
class EndpointStats:
    """Cumulative since process start (or last reset), as `requests.byEndpoint[path]`."""

    count: int
    avg_time_ms: float
    error_rate: float  # fraction 0-1 (server: percent)

    @property
    def errors(self) -> float:
        return self.error_rate * self.count

    @property
    def time_sum_ms(self) -> float:
        return self.avg_time_ms * self.count


# the server keeps its last 1000 requests: a window holding them all may cover less than
# the asked window (reference quirk 6)
WINDOW_CAP = 1000


@dataclass(frozen=True)
class ResponseTimes:
    """Window statistics over at most the last 1000 requests. Percentiles untrusted."""

    count: int
    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    @property
    def ordered(self) -> bool:
        """min <= p50 <= p95 <= p99 <= max (quirk 1: often false)."""
        values = [self.min, self.p50, self.p95, self.p99, self.max]
        if any(v is None for v in values):
            return False
        return all(a <= b for a, b in zip(values, values[1:], strict=False))

    @property
    def complete(self) -> bool:
        """The window holds fewer than the 1000 kept requests, so it covers all of it."""
        return self.count < WINDOW_CAP


@dataclass(frozen=True)
class ErrorRecord:
    """One of the two shapes of `errors.recentErrors`."""

    endpoint: str | None
    timestamp_ms: int | None
    method: str | None = None
    status_code: int | None = None  # HTTP-error shape
    error: str | None = None  # exception shape
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cache:
    """`metrics.cache`, cumulative. A figure no server can have is None (unknown, said in
    the answer's notes): never read it as 0, nor its absence as a counter reset."""

    hits: int | None
    misses: int | None
    hit_rate: float | None  # fraction 0-1 (server: percent, 0 when no operations)


@dataclass(frozen=True)
class Uptime:
    start_ms: int | None
    duration_ms: int | None
    last_reset_ms: int | None


@dataclass(frozen=True)
class Metrics:
    timestamp: datetime | None
    requests_total: int
    endpoints: dict[str, EndpointStats]
    by_method: dict[str, int]
    by_status: dict[str, int]
    response_times: ResponseTimes | None  # null when no request in the window
    errors_kept: int | None  # capped at 1000, NOT a counter; None: no figure (said)
    errors_recent: int | None
    recent_errors: list[ErrorRecord]
    cache: Cache
    performance: dict[str, dict[str, Any]]
    uptime: Uptime
    time_window_ms: int = 3_600_000


@dataclass(frozen=True)
class EndpointMetrics:
    endpoint: str
    count: int
    avg_ms: float | None
    min_ms: float | None
    max_ms: float | None


MONITORING_PREFIXES = ("/health", "/metrics")


def is_monitoring(path: str) -> bool:
    """True for the API's own monitoring endpoints (`/health`, `/metrics...`), quirk 2."""
    return any(
        path == p or path.startswith(p + "/") or path.startswith(p + "?")
        for p in MONITORING_PREFIXES
    )


@dataclass(frozen=True)
class Failure:
    """A scrape part that got no proper answer: "no answer" is a health datum too."""

    part: str  # "health" | "metrics"
    kind: str  # unreachable | timeout | bad_status | not_json | bad_shape (ApiError.kind)
    message: str  # one line, with the URL, never a credential
    http_status: int | None = None


@dataclass(frozen=True)
class Scrape:
    """One collection round of one target: health and metrics taken together.

    `id` is a UUID made once per round; the store keeps a scrape at most once per id, so
    a retried write never duplicates it. `raw` holds the bodies as received (bytes),
    keyed by part, for the compressed raw-payload table.
    """

    id: str
    target: str
    collected_at: datetime  # collector clock, aware UTC
    duration_ms: float
    health: Health | None
    metrics: Metrics | None
    failures: tuple[Failure, ...] = ()
    raw: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures and self.health is not None and self.metrics is not None
