"""The answers of the simulated process, in exactly the formats of the reference page
(`reference/longsang-api.md`), quirks included: unsorted percentiles picked by index in
arrival order, monitoring traffic counted, percents, `"142ms"`, string percentages, the
1000-request window, the 10 recent errors in two shapes, `min: null`, Express's HTML 404.

Each function reads the state of a `Traffic` engine at an instant (epoch ms) and builds
a body; none of them counts anything (the server does, once the answer is sent).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .traffic import Operation, Traffic

RECENT_ERRORS = 10  # of the error records, the last 10 in the window are answered
DEFAULT_WINDOW_MS = 3_600_000
REQUIRED_TABLES = (
    "documents",
    "conversations",
    "agent_executions",
    "response_cache",
    "news_digests",
)
NO_METRICS = "No metrics found for endpoint"
RESET_ANSWER = {"success": True, "message": "Metrics reset successfully"}
_EXCEPTIONS = (
    "OpenAI API error: 502 Bad Gateway",
    "Database query timeout after 5000ms",
    "Cannot read properties of undefined (reading 'embedding')",
    "fetch failed",
)


def iso_ms(ms: int) -> str:
    """Epoch ms -> `2026-11-29T05:50:43.517Z` (JavaScript's `toISOString`)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def js_number(value: float) -> int | float:
    """A number as JavaScript would print it: integral floats without `.0`."""
    value = float(value)
    if math.isfinite(value) and value.is_integer():
        return int(value)
    return value


# --- GET /api/health ------------------------------------------------------------------


def health(traffic: Traffic, now: int, deep: bool) -> tuple[int, dict[str, Any], int]:
    """(HTTP status, body, duration ms) of GET /api/health[?deep=true] at `now`."""
    rng = traffic.misc_rng
    p = traffic.proc
    timestamp = iso_ms(now)
    if any(e.value == 1.0 for e in traffic.active(now, "error")):
        body = {
            "status": "ERROR",
            "timestamp": timestamp,
            "error": "Cannot read properties of undefined (reading 'from')",
        }
        return 503, body, int(rng.integers(1, 4))
    base = {
        "status": "OK",
        "timestamp": timestamp,
        "uptime": max(0.0, (now - p.start_ms) / 1000.0) + 0.35,
        "memory": _memory(traffic, now),
        "pid": p.pid,
    }
    if not deep:
        base["services"] = {
            "database": {"status": "OK", "message": "Configured"},
            "openai": {"status": "OK", "message": "Configured"},
            "cache": {"status": "OK", "message": "Available"},
        }
        base["checks"] = {
            "database": True,
            "openai": True,
            "cache": True,
            "summary": {"passed": 3, "total": 3},
        }
        return 200, base, int(rng.integers(1, 4))
    failing: set[str] = set()
    if traffic.active(now, "degraded"):
        failing.add("vectorDB")
    if traffic.active(now, "error"):
        failing.update(("database", "vectorDB"))
    db_ms = int(rng.integers(8, 40)) if "database" not in failing else int(rng.integers(10, 20))
    services: dict[str, Any] = {
        "database": (
            {
                "status": "ERROR",
                "message": "TypeError: fetch failed",
                "responseTime": f"{db_ms}ms",
            }
            if "database" in failing
            else {"status": "OK", "message": "Connected", "responseTime": f"{db_ms}ms"}
        ),
        "openai": {"status": "OK", "message": "API key configured"},
        "cache": {"status": "OK", "stats": _cache_stats(traffic)},
        "vectorDB": (
            {"status": "ERROR", "message": "TypeError: fetch failed"}
            if "vectorDB" in failing
            else {"status": "OK", "message": "pgvector extension available"}
        ),
        "tables": {
            "status": "OK",
            "message": "All required tables exist",
            "existing": len(REQUIRED_TABLES),
            "total": len(REQUIRED_TABLES),
            "missing": [],
        },
    }
    checks: dict[str, Any] = {name: name not in failing for name in services}
    passed, total = sum(checks.values()), len(checks)
    share = passed / total
    checks["summary"] = {"passed": passed, "total": total, "percentage": f"{share * 100:.1f}"}
    status = "OK" if passed == total else "DEGRADED" if share >= 0.7 else "ERROR"
    base.update(status=status, services=services, checks=checks)
    return (503 if status == "ERROR" else 200), base, db_ms + int(rng.integers(2, 12))


def _memory(traffic: Traffic, now: int) -> dict[str, int]:
    p = traffic.proc
    base_rss = traffic.scenario.base_rss
    climb = 0.0
    for e in traffic.events:
        if e.kind != "memory_climb":
            continue
        lo, hi = max(e.start_ms, p.start_ms), min(e.end_ms, now)
        if hi > lo:
            climb += float(e.value or 0.0) * (hi - lo) / 3_600_000.0
    noise = float(traffic.misc_rng.normal(0, 0.01)) * base_rss
    rss = int(base_rss + climb + noise)
    heap_total = int(rss * 0.42)
    return {
        "rss": rss,
        "heapTotal": heap_total,
        "heapUsed": int(heap_total * (0.55 + float(traffic.misc_rng.random()) * 0.1)),
        "external": 3_578_061,
        "arrayBuffers": 65_670,
    }


def _cache_stats(traffic: Traffic) -> dict[str, Any]:
    p = traffic.proc
    parts = {"context": 0.5, "embedding": 0.3, "suggestions": 0.15, "preferences": 0.05}
    stats: dict[str, Any] = {"totalKeys": 0}
    for name, share in parts.items():
        hits, misses = int(p.cache_hits * share), int(p.cache_misses * share)
        keys = min(misses, 500)
        stats[name] = {"keys": keys, "hits": hits, "misses": misses}
        stats["totalKeys"] += keys
    return stats


# --- GET /api/metrics -----------------------------------------------------------------


def metrics(traffic: Traffic, now: int, window_ms: int = DEFAULT_WINDOW_MS) -> dict[str, Any]:
    """The body of GET /api/metrics?timeWindow=window_ms at `now`."""
    p = traffic.proc
    p.grow(len(traffic.keys))
    by_endpoint = {}
    for k in p.order:
        count = int(p.count[k])
        by_endpoint[traffic.keys[k]] = {
            "count": count,
            "avgTime": js_number(float(p.time_sum[k]) / count),
            "errorRate": js_number(float(p.errors[k]) / count * 100.0),
        }
    cut = now - window_ms
    in_window = p.ring_ts >= cut
    times = p.ring_dur[in_window]  # arrival order, NOT sorted (quirk 1)
    response_times = None
    if len(times):
        n = len(times)
        response_times = {
            "count": n,
            "avg": js_number(float(times.mean())),
            "min": int(times.min()),
            "max": int(times.max()),
            "p50": int(times[int(n * 0.5)]),
            "p95": int(times[min(int(n * 0.95), n - 1)]),
            "p99": int(times[min(int(n * 0.99), n - 1)]),
        }
    err_window = np.flatnonzero(p.err_ts >= cut)
    recent = [_error_record(traffic, int(i)) for i in err_window[-RECENT_ERRORS:]]
    ops = p.cache_hits + p.cache_misses
    return {
        "success": True,
        "metrics": {
            "requests": {
                "total": p.total,
                "byEndpoint": by_endpoint,
                "byMethod": dict(p.by_method),
                "byStatus": dict(p.by_status),
            },
            "responseTimes": response_times,
            "errors": {
                "total": len(p.err_ts),
                "recent": len(err_window),
                "recentErrors": recent,
            },
            "cache": {
                "hits": p.cache_hits,
                "misses": p.cache_misses,
                "hitRate": js_number(p.cache_hits / ops * 100.0) if ops else 0,
            },
            "performance": {op: _operation(v) for op, v in p.performance.items()},
            "uptime": {
                "start": p.start_ms,
                "duration": max(0, now - p.start_ms),
                "lastReset": p.last_reset_ms,
            },
            "timestamp": iso_ms(now),
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    """One `performance` op; `min` stays null when never set (the server's JSON of
    Infinity)."""
    return {
        "count": op.count,
        "totalTime": js_number(op.total_time),
        "min": None if op.min is None else js_number(op.min),
        "max": js_number(op.max),
        "avg": js_number(round(op.total_time / op.count, 3)),
        "lastDuration": js_number(op.last_duration),
        "lastTimestamp": op.last_timestamp,
        "metadata": {},
    }


def _error_record(traffic: Traffic, i: int) -> dict[str, Any]:
    """One of the recent errors, in one of its two shapes: an exception (error, stack,
    context) or an HTTP error (method, statusCode)."""
    p = traffic.proc
    endpoint = traffic.keys[int(p.err_key[i])]
    method = traffic.methods[int(p.err_method[i])]
    ts = int(p.err_ts[i])
    if p.err_exc[i]:
        message = _EXCEPTIONS[ts % len(_EXCEPTIONS)]
        return {
            "endpoint": endpoint,
            "error": message,
            "stack": f"Error: {message}\n    at handler (/app/api/routes{endpoint.split('/:')[0]}.js:42:11)",
            "context": {"method": method, "path": endpoint},
            "timestamp": ts,
        }
    return {
        "endpoint": endpoint,
        "method": method,
        "statusCode": int(p.err_status[i]),
        "timestamp": ts,
    }


# --- GET /api/metrics/endpoint/:endpoint ----------------------------------------------


def endpoint(traffic: Traffic, now: int, key: str, window_ms: int) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of GET /api/metrics/endpoint/:endpoint (`key` decoded)."""
    p = traffic.proc
    idx = traffic.key_index.get(key)
    sel = (p.ring_ts >= now - window_ms) & (p.ring_key == idx) if idx is not None else None
    if sel is None or not sel.any():
        return 404, {"success": False, "error": NO_METRICS}
    times = p.ring_dur[sel]
    return 200, {
        "success": True,
        "endpoint": key,
        "metrics": {
            "count": int(len(times)),
            "avgResponseTime": js_number(float(times.mean())),
            "minResponseTime": int(times.min()),
            "maxResponseTime": int(times.max()),
        },
    }


# --- anything else ----------------------------------------------------------------------


def express_404(method: str, path: str) -> bytes:
    """Express's HTML page for a route it does not know."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {_html_escape(path)}</pre>\n"
        "</body>\n</html>\n"
    ).encode()


def _html_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
