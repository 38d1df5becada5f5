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
    from .views import (
        AROUND,
        errors_view,
        lines_around,
        log_patterns,
        new_error_log_patterns,
        new_fatal_sentry_issues,
    )

_LAZY = {
    "SourceResult": "collect",
    "collect_sources": "collect",
    "AROUND": "views",
    "errors_view": "views",
    "lines_around": "views",
    "log_patterns": "views",
    "new_error_log_patterns": "views",
    "new_fatal_sentry_issues": "views",
}


def __getattr__(name: str) -> Any:
    """The collection and the views imported when first asked for. Collecting needs the
    HTTP client (httpx, which imports its own command line: click, rich) and drain3;
    reading what was collected (the monthly review's Errors section) needs neither. The
    views need the store (SQLAlchemy); `source_settings` needs nothing: a report's
    redaction asks it for the Sentry token before anything is read."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
