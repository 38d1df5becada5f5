"""The simulated LongSang API moved to the package `lsops_lib.sim`; this module keeps
`from lsops_lib.simapi import SimulatedAPI, Scenario, ...` working."""

from __future__ import annotations

from .sim import (
    DEFAULT_WINDOW_MS,
    ENDPOINT_METRICS_KEY,
    ERRORS_KEEP,
    EVENT_KINDS,
    HEALTH_KEY,
    METRICS_KEY,
    NO_METRICS,
    RECENT_ERRORS,
    REQUIRED_TABLES,
    WINDOW_KEEP,
    EndpointSpec,
    Event,
    Scenario,
    SimClock,
    SimulatedAPI,
    iso_ms,
    normalize_path,
)

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
