"""The LongSang API's answers, parsed: `/api/health`, `/api/metrics` and one endpoint's
metrics into the records of `lsops_lib.models` (the client, `lsops_lib.api`, fetches them).

Every quirk of the reference page is absorbed here, once: percents become fractions,
`"142ms"` becomes 142.0, `checks.summary.percentage` may be a string, a number or
absent, `responseTimes` may be null, `min` may be null, error records come in two
shapes. A payload that is not the documented shape raises `ApiUnexpectedShape` naming
the field; a figure no process can have (a negative RSS, an uptime of 1e300 s, a
`heapUsed` above `heapTotal`, a negative `uptime.duration`, an `errors.total` beyond 32
bits) is None, said in `notes`, and the rest of the answer stands.

The cache figures (`metrics.cache` and the deep health's per-cache stats) are read more
leniently still: a value that is no count at all ("n/a", true, 1e400) is None and said
too, as one out of range is. Nothing else depends on them, and one bad cache counter must
not cost a scrape every endpoint figure. The figures the history is built on stay strict:
`requests.total`, the per-endpoint, per-method and per-status counters and
`uptime.start` / `uptime.lastReset` (the store reads a missing start or reset as a new
series: a restart or a metrics reset) make an answer that has no proper value for them a
bad shape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .exceptions import ApiUnexpectedShape
from .models import (
    Cache,
    EndpointMetrics,
    EndpointStats,
    ErrorRecord,
    Health,
    Memory,
    Metrics,
    ResponseTimes,
    Service,
    Uptime,
)

DEFAULT_WINDOW_MS = 3_600_000
NO_METRICS_FOR_ENDPOINT = "No metrics found for endpoint"
_MS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s)?\s*$", re.IGNORECASE)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shape(where: str, problem: str) -> ApiUnexpectedShape:
    return ApiUnexpectedShape(f"unexpected payload: {where} {problem}")


def _obj(value: Any, where: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        if value is None:
            raise _shape(where, "is missing")
        raise _shape(where, f"is not an object (got {type(value).__name__})")
    return dict(value)


def _num(
    payload: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> float | None:
    """A number (or a numeric string such as "80.0"); None when absent/null unless required."""
    if key not in payload or payload[key] is None:
        if required:
            raise _shape(f"{where}.{key}", "is missing")
        return None
    value = payload[key]
    number: float | None = None
    if _is_number(value):
        try:
            number = float(value)
        except OverflowError:  # an integer of 400 digits: beyond any float
            number = math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            pass
    if number is None:
        raise _shape(f"{where}.{key}", f"is not a number (got {_one_line(repr(value), 40)})")
    if not math.isfinite(number):  # 1e400, Infinity, NaN: json reads them, nothing counts so
        raise _shape(f"{where}.{key}", f"is not a finite number (got {_one_line(repr(value), 40)})")
    return number


# The largest integer a JSON number of the (JavaScript) server holds exactly; the store
# keeps 64-bit integers: a count, instant or size beyond this is no figure of the API.
MAX_INT = 2**53 - 1
SMALL_INT = 2**31 - 1  # the figures the store keeps in 32 bits (pid, checks, status codes)
INSTANT_MS = 9_223_372_036_854  # the last epoch ms pandas holds (2262-04-11): reads show instants


def _in_range(value: float, where: str, *, minimum: float = -MAX_INT, limit: int = MAX_INT) -> int:
    if not max(minimum, -limit) <= value <= limit:
        problem = "is negative" if value < 0 <= minimum else "is out of range"
        raise _shape(where, f"{problem} (got {value:g})")
    return int(value)


def _int(
    payload: Mapping[str, Any],
    key: str,
    where: str,
    *,
    required: bool = False,
    limit: int = MAX_INT,
) -> int | None:
    value = _num(payload, key, where, required=required)
    return None if value is None else _in_range(value, f"{where}.{key}", limit=limit)


MAX_UPTIME_S = 100 * 365.25 * 86400  # a process up longer than a century is no figure


def _figure(
    payload: Mapping[str, Any],
    key: str,
    where: str,
    notes: list[str] | None,
    *,
    limit: float = MAX_INT,
) -> float | None:
    """An optional figure from 0 to `limit` (a number or a numeric string); a number out of
    that range (a negative RSS, an uptime of 1e300 s) is unknown: None, and said in `notes`
    (the rest of the answer stands). No number at all ("n/a", true, 1e400) is a bad shape."""
    value = _num(payload, key, where)
    if value is not None and not 0 <= value <= limit:
        if notes is not None:
            state = "negative" if value < 0 else "out of range"
            notes.append(f"{where}.{key} is {state} (got {value:g}): shown as unknown")
        return None
    return value


def _whole(payload: Mapping[str, Any], key: str, where: str, notes: list[str] | None) -> int | None:
    value = _figure(payload, key, where, notes)
    return None if value is None else int(value)


def _lenient(
    payload: Mapping[str, Any], key: str, where: str, notes: list[str], *, limit: float = MAX_INT
) -> float | None:
    """`_figure`, and a value that is no number at all ("n/a", true, 1e400) None as well,
    said in `notes`: for the figures whose loss must not spoil the rest of the answer."""
    try:
        return _figure(payload, key, where, notes, limit=limit)
    except ApiUnexpectedShape as exc:
        notes.append(str(exc).removeprefix("unexpected payload: ") + ": shown as unknown")
        return None


def _stat(payload: Mapping[str, Any], key: str, where: str, notes: list[str]) -> int | None:
    """A count of the deep health's cache stats: None when absent, or said in `notes` when
    it is none (a bad stat does not spoil the rest of the answer)."""
    value = _lenient(payload, key, where, notes)
    return None if value is None else int(value)


def cache_stats(
    stats: Mapping[str, Any], notes: list[str]
) -> tuple[int | None, list[dict[str, Any]]]:
    """The deep health's per-cache stats (`services.cache.stats`: `totalKeys` and, per
    cache, `{keys, hits, misses}`) -> (total keys, [{cache, keys, hits, misses}]). Each
    figure is a count from 0 to MAX_INT or None: a bad one ("5" is read as 5, "n/a", -10,
    true are not counts) is said in `notes`."""
    where = "health.services.cache.stats"
    total = _stat(stats, "totalKeys", where, notes)
    caches = []
    for name, value in stats.items():
        if isinstance(value, Mapping):
            at = f"{where}.{name}"
            caches.append(
                {
                    "cache": str(name),
                    "keys": _stat(value, "keys", at, notes),
                    "hits": _stat(value, "hits", at, notes),
                    "misses": _stat(value, "misses", at, notes),
                }
            )
    return total, caches


def _kept(
    payload: Mapping[str, Any],
    key: str,
    where: str,
    notes: list[str],
    *,
    lenient: bool = False,
    limit: int = MAX_INT,
) -> int | None:
    """An optional count (absent or null: 0) from 0 to `limit`; a number out of that range
    is unknown: None, said in `notes` (`lenient`: also a value that is no number)."""
    if payload.get(key) is None:
        return 0
    if lenient:
        value = _lenient(payload, key, where, notes, limit=limit)
    else:
        value = _figure(payload, key, where, notes, limit=limit)
    return None if value is None else int(value)


def _cache(raw: Any, notes: list[str]) -> Cache:
    """`metrics.cache` = {hits, misses, hitRate}: cumulative counters (absent or null: 0,
    as the server's empty object reads) and the rate in percent. A counter no server can
    have (negative, beyond MAX_INT, "n/a", true, 1e400) is None, said in `notes`, the other
    kept; a hitRate that is no percent (beyond 0-100, or no number) or none is the
    counters' rate (0 without any operation; None when a counter is unknown)."""
    where = "metrics.cache"
    if raw is not None and not isinstance(raw, Mapping):
        notes.append(f"{where} is not an object (got {type(raw).__name__}): shown as unknown")
        return Cache(hits=None, misses=None, hit_rate=None)
    cache: Mapping[str, Any] = raw or {}
    hits = _kept(cache, "hits", where, notes, lenient=True)
    misses = _kept(cache, "misses", where, notes, lenient=True)
    rate = _lenient(cache, "hitRate", where, notes, limit=100)
    if rate is None and hits is not None and misses is not None:
        rate = 100 * hits / (hits + misses) if hits + misses else 0.0
    return Cache(hits=hits, misses=misses, hit_rate=None if rate is None else rate / 100.0)


def _count(payload: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_INT) -> int:
    """A required counter: a JSON number (not a string, not a bool) from 0 to MAX_INT."""
    if key not in payload or payload[key] is None:
        raise _shape(f"{where}.{key}", "is missing")
    value = payload[key]
    if not _is_number(value):
        raise _shape(f"{where}.{key}", f"is not a number (got {_one_line(repr(value), 40)})")
    number = _num(payload, key, where)  # finite
    assert number is not None
    return _in_range(number, f"{where}.{key}", minimum=0, limit=limit)


def _str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return None if value is None else str(value)


def parse_iso(value: Any) -> datetime | None:
    """ISO 8601 (`2026-11-29T05:50:43.517Z`) -> aware UTC datetime; None when absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    raw = value.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_ms(value: Any) -> float | None:
    """`"142ms"` -> 142.0, `"1.5s"` -> 1500.0, `142` -> 142.0; None when absent/unparseable."""
    if value is None or isinstance(value, bool):
        return None
    if _is_number(value):
        return float(value) if math.isfinite(value) else None
    match = _MS.match(str(value))
    if not match:
        return None
    number = float(match.group(1))
    return number * 1000.0 if (match.group(2) or "").lower() == "s" else number


def _percent(payload: Mapping[str, Any], key: str, where: str) -> float:
    value = _num(payload, key, where)
    return 0.0 if value is None else value / 100.0


# --- parsers -------------------------------------------------------------------------


def _service(name: str, raw: Any) -> Service:
    where = f"health.services.{name}"
    data = _obj(raw, where)
    status = data.get("status")
    if not isinstance(status, str):
        raise _shape(f"{where}.status", "is missing")
    stats: dict[str, Any] = dict(data["stats"]) if isinstance(data.get("stats"), Mapping) else {}
    for key, value in data.items():
        if key not in ("status", "message", "responseTime", "stats"):
            stats[key] = value
    message = data.get("message")
    return Service(
        name=name,
        status=status.upper(),
        message=None if message is None else str(message),
        response_time_ms=parse_ms(data.get("responseTime")),
        stats=stats,
    )


def parse_health(
    payload: Any, *, http_status: int = 200, deep: bool = False, notes: list[str] | None = None
) -> Health:
    """A `/api/health` body (either shape: full, or the 503 `{status, timestamp, error}`).
    A memory figure or the uptime that is no figure (negative, beyond any process) is None,
    and said in `notes`; so is a `heapUsed` above `heapTotal` (heapTotal is kept)."""
    data = _obj(payload, "health")
    status = data.get("status")
    if not isinstance(status, str) or not status.strip():
        raise _shape("health.status", "is missing")
    memory = _obj(data.get("memory"), "health.memory", required=False)
    services_raw = _obj(data.get("services"), "health.services", required=False)
    checks_raw = _obj(data.get("checks"), "health.checks", required=False)
    summary = _obj(checks_raw.get("summary"), "health.checks.summary", required=False)
    checks = {k: bool(v) for k, v in checks_raw.items() if k != "summary" and isinstance(v, bool)}
    error = data.get("error")
    heap_total = _whole(memory, "heapTotal", "health.memory", notes)
    heap_used = _whole(memory, "heapUsed", "health.memory", notes)
    if heap_used is not None and heap_total is not None and heap_used > heap_total:
        # V8's heapUsed is a part of heapTotal. Where it was seen above it (io.js's
        # wrap-around past 4 GB, Bun counting ArrayBuffers as heap), heapUsed was the
        # wrong one: heapTotal is kept, heapUsed is unknown
        if notes is not None:
            notes.append(
                f"health.memory.heapUsed is above heapTotal (got {heap_used} > {heap_total}; "
                "a heap never uses more than it holds): heapUsed shown as unknown"
            )
        heap_used = None
    return Health(
        status=status.strip().upper(),
        http_status=int(http_status),
        timestamp=parse_iso(data.get("timestamp")),
        uptime_s=_figure(data, "uptime", "health", notes, limit=MAX_UPTIME_S),
        memory=Memory(
            rss=_whole(memory, "rss", "health.memory", notes),
            heap_total=heap_total,
            heap_used=heap_used,
            external=_whole(memory, "external", "health.memory", notes),
            array_buffers=_whole(memory, "arrayBuffers", "health.memory", notes),
        ),
        pid=_int(data, "pid", "health", limit=SMALL_INT),
        services={name: _service(name, raw) for name, raw in services_raw.items()},
        checks=checks,
        checks_passed=_int(summary, "passed", "health.checks.summary", limit=SMALL_INT),
        checks_total=_int(summary, "total", "health.checks.summary", limit=SMALL_INT),
        checks_percentage=_num(summary, "percentage", "health.checks.summary"),
        error=None if error is None else _one_line(str(error), 500),
        deep=deep,
    )


def _error_record(raw: Any, index: int) -> ErrorRecord:
    where = f"metrics.errors.recentErrors[{index}]"
    data = _obj(raw, where)
    context = data.get("context")
    error = data.get("error")
    if isinstance(error, Mapping):  # an Error serialised as an object
        error = error.get("message") or json.dumps(error, default=str)
    return ErrorRecord(
        endpoint=_str(data, "endpoint"),
        timestamp_ms=_int(data, "timestamp", where, limit=INSTANT_MS),
        method=_str(data, "method"),
        status_code=_int(data, "statusCode", where, limit=SMALL_INT),
        error=None if error is None else str(error),
        context=dict(context) if isinstance(context, Mapping) else None,
    )


def _endpoint(path: Any, raw: Any) -> EndpointStats:
    """One `byEndpoint` entry. The usual entry (three JSON numbers) is read at once: a
    scrape has one per endpoint, and this is most of a scrape's parsing; anything else
    takes the checked path (strings such as "2.5%", nulls, errors naming the field)."""
    if type(raw) is dict:
        c, a, e = raw.get("count"), raw.get("avgTime"), raw.get("errorRate")
        if (
            type(c) in _JSON_NUMBERS
            and type(a) in _JSON_NUMBERS
            and type(e) in _JSON_NUMBERS
            and 0 <= c <= MAX_INT  # else (negative, huge, NaN) the checked path says why
            and 0 <= a <= MAX_INT  # a mean of 1e300 ms is no figure: the checked path
            and -_HUGE < e < _HUGE
        ):
            return EndpointStats(count=int(c), avg_time_ms=float(a) or 0.0, error_rate=e / 100.0)
    where = f"metrics.requests.byEndpoint[{path!r}]"
    stats = _obj(raw, where)
    avg = _num(stats, "avgTime", where)
    if avg is not None and not 0 <= avg <= MAX_INT:
        problem = "is negative" if avg < 0 else "is out of range"
        raise _shape(f"{where}.avgTime", f"{problem} (got {avg:g})")
    return EndpointStats(
        count=_count(stats, "count", where),
        avg_time_ms=avg or 0.0,
        error_rate=_percent(stats, "errorRate", where),
    )


_JSON_NUMBERS = (int, float)  # exact types: a bool is no number here
_HUGE = float("inf")  # a finite float lies strictly within +-_HUGE (NaN nowhere)


def parse_metrics(
    payload: Any, *, time_window_ms: int = DEFAULT_WINDOW_MS, notes: list[str] | None = None
) -> Metrics:
    """A `/api/metrics` answer `{"success": true, "metrics": {...}}` -> Metrics. A cache
    figure no server can have is None (a bad hitRate: the rate of the hits and misses
    instead), as are an `errors` count beyond 32 bits or negative and a negative or
    absurd `uptime.duration`; each is said in `notes` and the rest of the answer stands."""
    said: list[str] = [] if notes is None else notes
    envelope = _obj(payload, "metrics answer")
    if envelope.get("success") is False:
        raise _shape(
            "metrics answer", f"says success=false: {_one_line(str(envelope.get('error')))}"
        )
    m = _obj(envelope.get("metrics"), "metrics")
    requests = _obj(m.get("requests"), "metrics.requests")
    endpoints: dict[str, EndpointStats] = {}
    for path, raw in _obj(
        requests.get("byEndpoint"), "metrics.requests.byEndpoint", required=False
    ).items():
        endpoints[str(path)] = _endpoint(path, raw)
    by_method = {
        str(k): _count({"v": v}, "v", f"metrics.requests.byMethod[{k!r}]")
        for k, v in _obj(
            requests.get("byMethod"), "metrics.requests.byMethod", required=False
        ).items()
    }
    by_status = {
        str(k): _count({"v": v}, "v", f"metrics.requests.byStatus[{k!r}]")
        for k, v in _obj(
            requests.get("byStatus"), "metrics.requests.byStatus", required=False
        ).items()
    }
    rt_raw = m.get("responseTimes")
    response_times = None
    if rt_raw is not None:
        rt = _obj(rt_raw, "metrics.responseTimes")
        w = "metrics.responseTimes"
        response_times = ResponseTimes(
            count=_count(rt, "count", w, limit=SMALL_INT),
            avg=_num(rt, "avg", w),
            min=_num(rt, "min", w),
            max=_num(rt, "max", w),
            p50=_num(rt, "p50", w),
            p95=_num(rt, "p95", w),
            p99=_num(rt, "p99", w),
        )
    errors = _obj(m.get("errors"), "metrics.errors", required=False)
    recent_raw = errors.get("recentErrors") or []
    if not isinstance(recent_raw, list):
        raise _shape("metrics.errors.recentErrors", "is not a list")
    cache = _cache(m.get("cache"), said)
    uptime = _obj(m.get("uptime"), "metrics.uptime", required=False)
    performance = {
        str(k): dict(v) if isinstance(v, Mapping) else {"value": v}
        for k, v in _obj(m.get("performance"), "metrics.performance", required=False).items()
    }
    return Metrics(
        timestamp=parse_iso(m.get("timestamp")),
        requests_total=_count(requests, "total", "metrics.requests"),
        endpoints=endpoints,
        by_method=by_method,
        by_status=by_status,
        response_times=response_times,
        errors_kept=_kept(errors, "total", "metrics.errors", said, limit=SMALL_INT),
        errors_recent=_kept(errors, "recent", "metrics.errors", said, limit=SMALL_INT),
        recent_errors=[_error_record(raw, i) for i, raw in enumerate(recent_raw)],
        cache=cache,
        performance=performance,
        uptime=Uptime(
            start_ms=_int(uptime, "start", "metrics.uptime", limit=INSTANT_MS),
            duration_ms=_whole(uptime, "duration", "metrics.uptime", said),
            last_reset_ms=_int(uptime, "lastReset", "metrics.uptime", limit=INSTANT_MS),
        ),
        time_window_ms=int(time_window_ms),
    )


def parse_endpoint_metrics(payload: Any) -> EndpointMetrics | None:
    """A `/api/metrics/endpoint/:endpoint` answer; None for "No metrics found for endpoint"."""
    envelope = _obj(payload, "endpoint metrics answer")
    if envelope.get("success") is False:
        error = str(envelope.get("error") or "")
        if NO_METRICS_FOR_ENDPOINT.lower() in error.lower():
            return None
        raise _shape("endpoint metrics answer", f"says success=false: {_one_line(error)}")
    m = _obj(envelope.get("metrics"), "endpoint metrics.metrics")
    w = "endpoint metrics.metrics"
    return EndpointMetrics(
        endpoint=str(envelope.get("endpoint") or ""),
        count=_count(m, "count", w),
        avg_ms=_num(m, "avgResponseTime", w),
        min_ms=_num(m, "minResponseTime", w),
        max_ms=_num(m, "maxResponseTime", w),
    )
