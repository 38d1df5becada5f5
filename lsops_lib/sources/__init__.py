"""The other things lsops reads (issue 10): Sentry's issues API, the service's logs
(pm2 log files, journald) and `pm2 jlist`. One module a source:

    sentry      the issues API client (bearer token, Link pagination, 401, 429)
    logs        pm2 log files and journald: offsets, rotation, entries, levels
    pm2         `pm2 jlist`: status, restarts, CPU, memory, uptime of the app
    patterns    log templates (drain3) with stable, stored ids
    collect     one collection of the configured sources into the store
    views       what `lsops errors`, `lsops logs`, the checklist and the alerts see
    checks      the checklist's four lines fed by these sources
    settings    [sentry], [logs], [pm2] of lsops.toml and their LSOPS_* variables

For the alert rules (issue 11), from the store:

    new_fatal_sentry_issues(store, target, since, until) -> list[dict]
        id, short_id, title, level, first_seen, permalink
    new_error_log_patterns(store, target, since, until) -> list[dict]
        pattern_id, template, count, first_seen, example
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .common import LEVELS, SourceError
from .settings import SourceSettings, source_settings
from .views import (
    AROUND,
    errors_view,
    lines_around,
    log_patterns,
    new_error_log_patterns,
    new_fatal_sentry_issues,
)

__all__ = [
    "AROUND",
    "LEVELS",
    "SourceError",
    "SourceResult",
    "SourceSettings",
    "collect_sources",
    "errors_view",
    "lines_around",
    "log_patterns",
    "new_error_log_patterns",
    "new_fatal_sentry_issues",
    "source_settings",
]

if TYPE_CHECKING:
    from .collect import SourceResult, collect_sources


def __getattr__(name: str) -> Any:
    """`collect_sources` and `SourceResult` imported when first asked for: collecting needs
    the HTTP client (httpx, which imports its own command line: click, rich) and drain3,
    reading what was collected (the monthly review's Errors section) needs neither."""
    if name in ("SourceResult", "collect_sources"):
        from . import collect

        return getattr(collect, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
