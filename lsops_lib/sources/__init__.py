"""The other things lsops reads (issue 10): Sentry's issues API, the service's logs
(pm2 log files, journald) and `pm2 jlist`. One module a source:

    sentry      the issues API client (bearer token, Link pagination, 401, 429)
    logs        pm2 log files and journald: offsets, rotation, entries, levels
    pm2         `pm2 jlist`: status, restarts, CPU, memory, uptime of the app
    patterns    log templates (drain3) with stable, stored ids
    collect     one collection of the configured sources into the store
"""

from __future__ import annotations

from .collect import SourceResult, collect_sources
from .common import LEVELS, SourceError

__all__ = ["LEVELS", "SourceError", "SourceResult", "collect_sources"]
