"""A simulated LongSang API: a real HTTP server on loopback, quirks included.

It answers `GET /api/health[?deep=true]`, `GET /api/metrics[?timeWindow=MS]`,
`GET /api/metrics/endpoint/:endpoint` and `POST /api/metrics/reset` (which kills the
process until a restart) in exactly the formats of the reference page, every quirk
included. Traffic is scripted by a `Scenario` (endpoints with rates, latencies and error
rates, plus timed `Event`s) and generated lazily when a request arrives, up to the
`SimClock`'s virtual now (or real time): a test or the demo scrapes a month in seconds
by advancing the clock. `SimulatedAPI.ledger()` is the ground truth of what was sent.

One concern per module:

    clock      SimClock (virtual time); instants as aware UTC datetimes / epoch ms
    scenario   EndpointSpec, Event, Scenario (Scenario.default), normalize_path
    traffic    the engine: the Node process's counters, generating and counting
               traffic between requests, the ground-truth ledger
    payloads   the bodies of /api/health, /api/metrics, /api/metrics/endpoint/:e
    server     the HTTP server, routes, the reset that kills the process, the restart
    api        SimulatedAPI: the engine served by the server, on one clock and one lock
"""

from __future__ import annotations

from .api import SimulatedAPI
from .clock import SimClock
from .payloads import DEFAULT_WINDOW_MS, NO_METRICS, RECENT_ERRORS, REQUIRED_TABLES, iso_ms
from .scenario import EVENT_KINDS, EndpointSpec, Event, Scenario, normalize_path
from .traffic import ENDPOINT_METRICS_KEY, ERRORS_KEEP, HEALTH_KEY, METRICS_KEY, WINDOW_KEEP

__all__ = [
    "DEFAULT_WINDOW_MS",
    "ENDPOINT_METRICS_KEY",
    "ERRORS_KEEP",
    "EVENT_KINDS",
    "HEALTH_KEY",
    "METRICS_KEY",
    "NO_METRICS",
    "RECENT_ERRORS",
    "REQUIRED_TABLES",
    "WINDOW_KEEP",
    "EndpointSpec",
    "Event",
    "Scenario",
    "SimClock",
    "SimulatedAPI",
    "iso_ms",
    "normalize_path",
]
