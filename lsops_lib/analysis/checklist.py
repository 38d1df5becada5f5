"""The runbook's Monitoring Checklist, evaluated from the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from .. import fmt
from ..config import Thresholds
from ..models import WINDOW_CAP
from ._common import (
    count,
    ensure_ts,
    entry,
    filter_monitoring,
    instants,
    median_interval_s,
    one_target,
    ts,
)
from ._reads import scrape_figures
from .memory import climb_span, memory_trend
from .slo import app_traffic, latency_timeslices, percentile_sanity
from .traffic import cache_summary, request_totals, series_of, summary_of

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


@dataclass
class Check:
    """One checklist line. `severity` says how bad a fail is: "critical" or "warning"."""

    key: str
    name: str
    status: str  # pass | fail | unknown
    value: Any
    threshold: Any
    detail: str
    severity: str = "warning"
    # the counts and instants `detail` states, as data (`--json`): e.g. the latency line's
    # slices, met and monitoring_only (the slices left out, README "Guarantees")
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_code(checks: list[Check]) -> int:
    """Monitoring-plugin convention: 0 all known lines pass, 1 a warning-level fail,
    2 a critical fail, 3 nothing known, or nothing recent: "API server responding" is
    unknown (no health observation in the window, or none lately: the collector stopped)
    and no line failed."""
    if not checks or all(c.status == UNKNOWN for c in checks):
        return 3
    fails = [c for c in checks if c.status == FAIL]
    if any(c.severity == "critical" for c in fails):
        return 2
    if fails:
        return 1
    return 3 if any(c.key == "api" and c.status == UNKNOWN for c in checks) else 0


def _latest_services(services: pd.DataFrame) -> dict[str, Any]:
    if services.empty:
        return {}
    last = services.sort_values("ts", kind="stable").groupby("service").tail(1)
    return {row.service: row for row in last.itertuples()}


CHECKED_SERVICES = frozenset({"database", "openai", "cache", "tables"})


def _last_services(
    store: Any, health: pd.DataFrame, end: datetime | None, target: str | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The services rows of the window's last scrape (`health`'s last ts: health has a row
    for every scrape) and each service's last row of the window (`_latest_services`), read
    back from the last scrape: its own rows first, then windows doubling from an hour back
    until every service the checklist names has a row or the window's first scrape is
    reached. A year of one-minute scrapes holds 2.6 M services rows; the checklist needs a
    handful."""
    if health.empty:  # no scrape in the window: no services row either
        return pd.DataFrame(), {}
    first, last_ts = health["ts"].iloc[0], health["ts"].iloc[-1]
    rows = store.services(last_ts, end, target=target)
    rows = ensure_ts(rows.copy(), "ts") if not rows.empty else rows
    latest = _latest_services(rows)
    hi, span = last_ts, pd.Timedelta(hours=1)
    while hi > first and not CHECKED_SERVICES <= latest.keys():
        lo = max(first, hi - span)
        older = store.services(lo, hi, target=target)
        older = ensure_ts(older.copy(), "ts") if not older.empty else older
        for service, row in _latest_services(older).items():
            latest.setdefault(service, row)  # a later window's row is the later one
        hi, span = lo, span * 2
    return (rows[rows["ts"] == last_ts] if not rows.empty else rows), latest


def _traffic(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    target: str | None,
    include_monitoring: bool,
) -> tuple[tuple[pd.DataFrame, Any], pd.DataFrame, pd.DataFrame]:
    """`app_traffic` from two hours before `start`, `endpoint_summary` and the hourly
    `traffic_series` of [start, end), from ONE hourly read of the window (monitoring
    included) and one of the two hours before it: the deltas are per scrape, filed by the
    scrape's instant, so [a, b) + [b, c) = [a, c) (the hour holding `start` comes in two
    rows); an endpoint's requests and errors are the sums of its own rows, whatever their
    buckets (whole numbers: the same sums; only its summed time, which no line shows, may
    differ from the daily read's in the last digit)."""

    def read(a: datetime | None, b: datetime | None) -> pd.DataFrame:
        df = store.endpoint_intervals(a, b, bucket="hour", target=target, include_monitoring=True)
        return ensure_ts(df.copy(), "ts")

    hours = read(start, end)
    before = start - timedelta(hours=2) if start is not None else None
    earlier = read(before, start) if start is not None else hours.iloc[:0]
    parts = [p for p in (earlier, hours) if not p.empty]
    both = pd.concat(parts, ignore_index=True) if len(parts) == 2 else (parts or [hours])[0]
    app = app_traffic(store, before, end, target=target, intervals=both)
    own = filter_monitoring(hours, include_monitoring)
    return app, summary_of(own), series_of(own)


QUICK_MESSAGES = {"configured", "available"}


def _runbook_pct(threshold: float) -> str:
    """A threshold in a check's name, written as the runbook writes it ("Error rate < 1%"),
    never rounded ("Error rate < 0.5%")."""
    return fmt.exact_pct(threshold).replace(" %", "%")


def stored_span(store: Any, target: str | None) -> str:
    """For a window without a scrape: " (the store's observations of 'T': A .. B)", when
    the store holds some elsewhere (the collector stopped at B; a window asked before A),
    else ""."""
    span = store.extent(target)
    if span is None:
        return ""
    whose = "" if target is None else f" of {target!r}"
    return f" (the store's observations{whose}: {fmt.instant(span[0])} .. {fmt.instant(span[1])})"


@entry
def checklist(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
    min_requests: int = 10,
    sources: Any = None,
) -> list[Check]:
    """Each line of the runbook's Monitoring Checklist over [start, end): pass, fail or unknown.

    `sources` (`sources.settings.SourceSettings`, issue 10): which of Sentry, the logs and pm2 are
    configured (without it: those the store ever collected). A source line is judged on
    the sources collected in the window, and is unknown when none was (`sources.checks`)."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    min_requests = count(min_requests, "min_requests")
    th = thresholds or Thresholds()
    target = one_target(store, target, "checklist")
    from ..sources.checks import source_checks  # issue 10: CPU and the error lines

    fed = source_checks(
        store,
        start if start is not None else datetime(1970, 1, 1, tzinfo=UTC),
        end if end is not None else datetime.now(UTC),
        th,
        target=target,
        sources=sources,
    )
    checks: list[Check] = []
    health = store.health(start, end, target=target)
    health = ensure_ts(health.copy(), "ts").sort_values("ts") if not health.empty else health
    services, latest = _last_services(store, health, end, target)  # the last scrape's, each last
    last_status = str(health["status"].iloc[-1]).upper() if not health.empty else None
    last_ts = health["ts"].iloc[-1] if not health.empty else None
    critical_health = last_status == "ERROR"
    # an observation older than this at the window's end (or now, when the window ends
    # later: nothing is observed in the future) is stale: the collector stopped
    interval = (median_interval_s(health["ts"]) if not health.empty else None) or 300.0
    stale_after = max(3 * interval, 900)
    seen_by = None if end is None else min(ts(end), ts(datetime.now(UTC)))

    def age_s(at: pd.Timestamp) -> float:
        return (seen_by - at).total_seconds() if seen_by is not None else 0.0

    # --- health monitoring
    if health.empty:
        checks.append(
            Check(
                "api",
                "API server responding",
                UNKNOWN,
                None,
                "OK",
                "no health observation in the window: is the collector running?"
                + stored_span(store, target),
                "critical",
            )
        )
    else:
        counts = health["status"].astype(str).str.upper().value_counts()
        no_answer = int(counts.get("NO_ANSWER", 0))
        stale_s = age_s(last_ts)
        api_figures = {
            "last_observation": last_ts,
            "scrapes": len(health),
            "no_answer": no_answer,
            "observed_s_ago": stale_s,
        }
        detail = (
            f"last observation {fmt.instant(last_ts)}: {last_status}; "
            f"{no_answer:,} of {len(health):,} scrapes without answer"
        )
        if stale_s > stale_after:
            checks.append(
                Check(
                    "api",
                    "API server responding",
                    UNKNOWN,
                    last_status,
                    "OK",
                    detail + f"; no observation for the last {fmt.duration(stale_s)}",
                    "critical",
                    api_figures,
                )
            )
        else:
            # the runbook's targets: health OK; DEGRADED a warning; ERROR or no answer critical
            if last_status != "OK" and last_status != "NO_ANSWER" and not services.empty:
                bad = services[services["status"].astype(str).str.upper() != "OK"]
                if not bad.empty:
                    detail += (
                        " ("
                        + "; ".join(
                            f"{r.service} {r.status}"
                            + (f": {r.message}" if isinstance(r.message, str) else "")
                            for r in bad.itertuples()
                        )
                        + ")"
                    )
            checks.append(
                Check(
                    "api",
                    "API server responding",
                    PASS if last_status == "OK" else FAIL,
                    last_status,
                    "OK",
                    detail,
                    "warning" if last_status == "DEGRADED" else "critical",
                    api_figures,
                )
            )

    sev = "critical" if critical_health else "warning"

    def service_check(
        key: str, name: str, service: str, quick_unknown: bool, note: str = ""
    ) -> None:
        row = latest.get(service)
        if row is None:
            why = "not reported" + (
                " (only the deep health check reports it)" if service == "tables" else ""
            )
            checks.append(Check(key, name, UNKNOWN, None, "OK", f"{service}: {why}", sev))
            return
        status = str(row.status).upper()
        message = "" if row.message is None or pd.isna(row.message) else str(row.message)
        text = (
            f"{service} {status} at {fmt.instant(row.ts)}"
            + (f": {message}" if message else "")
            + note
        )
        age = age_s(row.ts)
        if age > stale_after:  # judged on what the API said long ago: not known now
            text += f"; no observation for the last {fmt.duration(age)}"
            checks.append(Check(key, name, UNKNOWN, status, "OK", text, sev))
            return
        if quick_unknown and message.strip().lower() in QUICK_MESSAGES:
            checks.append(
                Check(
                    key,
                    name,
                    UNKNOWN,
                    status,
                    "OK",
                    text + " (quick health check only: collect deep checks to test the connection)",
                    sev,
                )
            )
            return
        checks.append(Check(key, name, PASS if status == "OK" else FAIL, status, "OK", text, sev))

    service_check("database", "Database connected", "database", True)
    service_check(
        "openai",
        "OpenAI API accessible",
        "openai",
        False,
        " (the server checks that its API key is configured, not a live call)",
    )
    service_check("cache", "Cache working", "cache", False)
    service_check("tables", "All tables exist", "tables", False)

    # --- performance monitoring
    scrapes = scrape_figures(store, start, end, target)  # the columns the lines below use
    app, summary, hourly = _traffic(store, start, end, target, include_monitoring)
    lat = latency_timeslices(
        store, start, end, threshold_ms=th.latency_p95_ms, target=target, scrapes=scrapes, app=app
    )
    sanity = percentile_sanity(store, start, end, target=target, scrapes=scrapes)
    name = f"Response times < {th.latency_p95_ms:g}ms (95th percentile)"
    own = lat["monitoring_only"]
    latency_figures = {
        "slices": lat["slices"],
        "met": lat["met"],
        "monitoring_only": own,
        "capped": lat["capped"],
        "disordered": sanity["disordered"],
        "snapshots": sanity["snapshots"],
    }
    left_out = (
        f"{fmt.counted(own, 'time slice')} left out: no application request in its hour, "
        "only monitoring ones (the collector's /health and /metrics, quirk 2)"
    )
    if lat["slices"] == 0:
        checks.append(
            Check(
                "latency",
                name,
                UNKNOWN,
                None,
                th.latency_slo,
                left_out if own else "no scrape reported window statistics",
                figures=latency_figures,
            )
        )
    else:
        detail = (
            f"{lat['met']:,} of {lat['slices']:,} time slices had a reported p95 below {th.latency_p95_ms:g} ms "
            f"(target: at least {fmt.exact_pct(th.latency_slo)} of slices); the server's percentiles were out of order "
            f"in {sanity['disordered']:,} of {sanity['snapshots']:,} snapshots (untrusted, quirk 1)"
            + (f"; {left_out}" if own else "")
            + (
                f"; {fmt.counted(lat['capped'], 'slice')} held the server's last "
                f"{WINDOW_CAP:,} requests, less than an hour (quirk 6)"
                if lat["capped"]
                else ""
            )
        )
        checks.append(
            Check(
                "latency",
                name,
                PASS if lat["share"] >= th.latency_slo else FAIL,
                lat["share"],
                th.latency_slo,
                detail,
                figures=latency_figures,
            )
        )

    cache = cache_summary(store, start, end, target=target)
    name = f"Cache hit rate > {_runbook_pct(th.cache_hit_rate)}"
    if cache["operations"] == 0:
        checks.append(
            Check(
                "cache_hit_rate",
                name,
                UNKNOWN,
                None,
                th.cache_hit_rate,
                "no cache operations counted",
            )
        )
    else:
        detail = (
            f"{fmt.counted(cache['hits'], 'hit')}, {fmt.counted(cache['misses'], 'miss', 'misses')} "
            "(from counter deltas)"
        )
        if cache["hit_ratio"] < th.cache_hit_rate_warn:
            detail += f"; below the warning level {fmt.exact_pct(th.cache_hit_rate_warn)}"
        checks.append(
            Check(
                "cache_hit_rate",
                name,
                PASS if cache["hit_ratio"] > th.cache_hit_rate else FAIL,
                cache["hit_ratio"],
                th.cache_hit_rate,
                detail,
                figures={"hits": cache["hits"], "misses": cache["misses"]},
            )
        )

    totals = request_totals(summary)
    name = f"Error rate < {_runbook_pct(th.error_rate)}"
    excluded = "" if include_monitoring else " (monitoring endpoints excluded)"
    if totals["requests"] == 0:
        checks.append(
            Check(
                "error_rate", name, UNKNOWN, None, th.error_rate, "no requests counted" + excluded
            )
        )
    else:
        rate = totals["error_rate"]
        severity = "critical" if rate > th.error_rate_critical else "warning"
        detail = f"{fmt.counted(totals['errors'], 'error')} of {fmt.counted(totals['requests'], 'request')}{excluded}"
        checks.append(
            Check(
                "error_rate",
                name,
                PASS if rate < th.error_rate else FAIL,
                rate,
                th.error_rate,
                detail,
                severity,
                {"errors": totals["errors"], "requests": totals["requests"]},
            )
        )

    mem = memory_trend(store, start, end, th, target=target, scrapes=scrapes)
    name = "Memory usage stable"
    leak = ""
    memory_figures: dict[str, Any] = {
        "peak_rss": None if mem.peak_rss is None else int(mem.peak_rss),
        "limit_bytes": mem.limit_bytes,
        "restarts": len(mem.restarts),
        "leak_growth_per_hour": None,
        "leak_start": None,
        "leak_end": None,
    }
    if mem.leak:
        seg = mem.leak_segments.iloc[0]
        climb_start, climb_end = climb_span(seg)
        leak = (
            f"; possible leak: rss climbing {fmt.rel(seg['climb_growth_per_hour'])}/h from "
            f"{fmt.instant(climb_start)} to {fmt.instant(climb_end)} without a restart "
            f"(flagged above {fmt.exact_pct(th.memory_growth_per_hour)}/h)"
        )
        memory_figures["leak_growth_per_hour"] = seg["climb_growth_per_hour"]
        memory_figures["leak_start"] = climb_start
        memory_figures["leak_end"] = climb_end
    restarts = fmt.counted(len(mem.restarts), "restart")
    if mem.peak_rss is None:
        checks.append(
            Check("memory", name, UNKNOWN, None, th.memory_fraction, "no memory figure collected")
        )
    elif mem.limit_bytes <= 0:  # memory_limit_bytes = 0: no limit, judged on a leak alone
        detail = (
            f"peak rss {fmt.size(mem.peak_rss)}; no memory limit (memory_limit_bytes = 0): "
            f"judged on a leak alone; {restarts}{leak}"
        )
        checks.append(
            Check(
                "memory",
                name,
                FAIL if mem.leak else PASS,
                None,
                None,
                detail,
                "warning",
                memory_figures,
            )
        )
    else:
        detail = (
            f"peak rss {fmt.size(mem.peak_rss)} = {fmt.pct(mem.peak_fraction, 0)} of "
            f"{fmt.size(mem.limit_bytes)}; {restarts}{leak}"
        )
        ok = not mem.leak and mem.peak_fraction < th.memory_fraction
        severity = "critical" if mem.peak_fraction > th.memory_critical_fraction else "warning"
        checks.append(
            Check(
                "memory",
                name,
                PASS if ok else FAIL,
                mem.peak_fraction,
                th.memory_fraction,
                detail,
                severity,
                memory_figures,
            )
        )

    checks.append(fed["cpu"])  # issue 10: pm2's CPU (unknown without [pm2])
    checks.append(fed["critical_errors"])  # the runbook's Error Monitoring lines, in its order

    # --- error monitoring
    busy = hourly[hourly["requests"] >= min_requests] if not hourly.empty else hourly
    name = "Error rate stable"
    if busy.empty:
        checks.append(
            Check(
                "error_rate_stable",
                name,
                UNKNOWN,
                None,
                th.error_rate_warn,
                f"no hour with at least {min_requests} requests",
            )
        )
    else:
        worst = busy.loc[busy["error_rate"].idxmax()]
        above = int((busy["error_rate"] > th.error_rate_warn).sum())
        detail = (
            f"worst hour {fmt.instant(worst['ts'])}: {fmt.pct(worst['error_rate'])} "
            f"({int(worst['errors']):,} of {int(worst['requests']):,}); {above:,} of "
            f"{fmt.counted(len(busy), 'hour')} above {fmt.exact_pct(th.error_rate_warn)}{excluded}"
        )
        checks.append(
            Check(
                "error_rate_stable",
                name,
                PASS if above == 0 else FAIL,
                float(worst["error_rate"]),
                th.error_rate_warn,
                detail,
                figures={
                    "worst_hour": worst["ts"],
                    "worst_errors": int(worst["errors"]),
                    "worst_requests": int(worst["requests"]),
                    "hours_above": above,
                    "hours": len(busy),
                },
            )
        )
    checks.append(fed["new_error_patterns"])  # issue 10
    checks.append(fed["errors_resolved"])
    return checks
