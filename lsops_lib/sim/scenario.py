"""What the simulated service is asked to do: its routes (`EndpointSpec`), the timed
`Event`s that happen to it, and the `Scenario` that holds both (`Scenario.default`: a
realistic LongSang traffic mix with a month of incidents)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from .clock import aware, to_ms

EVENT_KINDS = frozenset(
    {"outage", "degraded", "error", "latency", "errors", "cache", "memory_climb", "restart"}
)
_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def normalize_path(path: str) -> str:
    """`/api/projects/42?x=1` -> `/projects/:id` (the key the server keeps)."""
    path = urlsplit(path).path or "/"
    if path == "/api" or path.startswith("/api/"):
        path = path[4:] or "/"
    segments = [":id" if _ID_SEGMENT.match(s) else s for s in path.split("/")]
    return "/".join(segments) or "/"


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
        self.start = aware(self.start)
        self.end = self.start if self.end is None else aware(self.end)
        if self.end < self.start:
            raise ValueError(f"event {self.kind} ends before it starts")
        if self.endpoint is not None:
            self.endpoint = normalize_path(self.endpoint)
        if self.kind in ("latency", "errors", "cache", "memory_climb") and self.value is None:
            raise ValueError(f"event {self.kind} needs a value")

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end if self.end is not None else self.start)


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
        self.start = aware(self.start)

    @classmethod
    def default(cls, start: datetime, *, seed: int = 0, incidents: bool = True) -> Scenario:
        """A realistic LongSang traffic mix (~23 requests a minute over 10 routes).

        With `incidents`, a month of them from day 3 on: a latency spike on
        /copilot/chat, an error burst on /projects/:id, a 20 min outage ended by a
        restart, a degraded and an erroring health, a cache hit-rate drop, and a memory
        climb ended by a restart. The first two days are clean.
        """
        start = aware(start)
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
