"""The bundles behind the reports: the monthly review and the incident postmortem.

Notebooks call `monthly_review(store, month)` / `postmortem(store, start, end)` and draw;
every figure comes from the functions of this package, over the store's SQL-aggregated
reads. Monitoring endpoints are excluded unless `include_monitoring=True`, and each bundle
says what was left out (`excluded`) and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..config import Thresholds
from ..times import parse_month, previous_month
from ._common import MONITORING_REASON, empty, ensure_ts, iso, py, ratio, ts
from .availability import Availability, availability_from_health
from .incidents import COLUMNS as INCIDENT_COLUMNS
from .incidents import incidents as find_incidents
from .incidents import with_commands
from .memory import MemoryTrend, memory_trend
from .slo import error_budget, latency_slices, latency_timeslices, percentile_sanity
from .traffic import (
    cache_stats,
    cache_summary,
    endpoint_changes,
    endpoint_summary,
    excluded_monitoring,
    request_totals,
    traffic_series,
)


def _health(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.health(start, end, target=target)
    if df.empty:
        return empty(["ts", "status", "http_status"])
    df = ensure_ts(df.copy(), "ts")
    df["status"] = df["status"].fillna("NO_ANSWER").astype(str).str.upper()
    return df.sort_values("ts").reset_index(drop=True)


def _scrapes(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.scrapes(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


def _resets(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.resets(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not df.empty
        else empty(["ts", "kind"])
    )


def _period_figures(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds,
    *,
    target: str | None,
    include_monitoring: bool,
) -> dict[str, Any]:
    """The headline figures of one period (used for the month and the one before it)."""
    health = _health(store, start, end, target)
    avail = availability_from_health(health, start, end)
    summary = endpoint_summary(
        store, start, end, target=target, include_monitoring=include_monitoring
    )
    scrapes = _scrapes(store, start, end, target)
    lat = latency_timeslices(
        store, start, end, threshold_ms=thresholds.latency_p95_ms, target=target, scrapes=scrapes
    )
    cache = cache_summary(store, start, end, target=target)
    return {
        "health": health,
        "availability": avail,
        "summary": summary,
        "scrapes": scrapes,
        "latency": lat,
        "cache": cache,
        "totals": {
            **request_totals(summary),
            "availability": avail.availability,
            "latency_share": lat["share"],
            "cache_hit_ratio": cache["hit_ratio"],
            "coverage": avail.coverage,
            "covered_days": avail.covered_s / 86400.0,
            "requests_per_day": ratio(
                request_totals(summary)["requests"], avail.covered_s / 86400.0
            ),
        },
    }


@dataclass
class MonthlyReview:
    """Everything the monthly review notebook shows. Rates are fractions 0-1.

    targets: key, target, figure, threshold, met (True | False | None when unknown), detail
        for availability, error_rate, latency (timeslices), cache_hit_rate, memory.
    error_budget / request_budget / latency_budget: `error_budget()` dicts for the
        availability SLO (health observations), the error-rate target (requests) and the
        latency SLO (time slices).
    totals / previous_totals: requests, errors, error_rate, mean_ms, availability,
        latency_share, cache_hit_ratio, coverage.
    changes: metric, current, previous, change (current - previous), relative_change.
    daily: day, requests, errors, error_rate, mean_ms, cache_hits, cache_misses,
        cache_hit_ratio, observations, availability, latency_slices, latency_met_share, peak_rss.
    endpoints: `endpoint_changes()` of this month vs the previous one, worst first.
    latency: timeslices dict + `mean_ms` (weighted, from counter deltas) + `percentiles`
        (`percentile_sanity()`).
    incidents: `incidents()` columns + postmortem_command.
    data_quality: observations, no_answer, interval_s, coverage, gap_s, gaps (DataFrame
        start, end, duration_s), resets (DataFrame ts, kind), first, last, excluded
        (DataFrame endpoint, requests, errors, reason), percentiles_disordered_share.
    """

    month: str
    start: datetime
    end: datetime
    previous_month: str
    target: str | None
    thresholds: Thresholds
    include_monitoring: bool
    has_data: bool
    targets: pd.DataFrame = field(repr=False)
    availability: Availability = field(repr=False)
    error_budget: dict[str, Any] = field(repr=False)
    request_budget: dict[str, Any] = field(repr=False)
    latency_budget: dict[str, Any] = field(repr=False)
    totals: dict[str, Any] = field(repr=False)
    previous_totals: dict[str, Any] = field(repr=False)
    changes: pd.DataFrame = field(repr=False)
    daily: pd.DataFrame = field(repr=False)
    endpoints: pd.DataFrame = field(repr=False)
    latency: dict[str, Any] = field(repr=False)
    cache: dict[str, Any] = field(repr=False)
    cache_daily: pd.DataFrame = field(repr=False)
    memory: MemoryTrend = field(repr=False)
    incidents: pd.DataFrame = field(repr=False)
    data_quality: dict[str, Any] = field(repr=False)
    excluded: pd.DataFrame = field(repr=False)
    excluded_reason: str = MONITORING_REASON
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The headline figures, flat (for a first cell, logs or JSON)."""
        met = self.targets.set_index("key")["met"].to_dict() if not self.targets.empty else {}
        return {
            "month": self.month,
            "has_data": self.has_data,
            **{f"{k}_met": v for k, v in met.items()},
            "availability": self.availability.availability,
            "coverage": self.availability.coverage,
            "error_rate": self.totals["error_rate"],
            "requests": self.totals["requests"],
            "mean_ms": self.totals["mean_ms"],
            "latency_share": self.latency["share"],
            "cache_hit_ratio": self.cache["hit_ratio"],
            "memory_peak_fraction": self.memory.peak_fraction,
            "possible_leak": self.memory.leak,
            "error_budget_left_share": self.error_budget["left_share"],
            "burn_rate": self.error_budget["burn_rate"],
            "incidents": int(len(self.incidents)),
            "excluded": list(self.excluded["endpoint"]) if not self.excluded.empty else [],
        }


def _changes(current: dict[str, Any], previous: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for metric in [
        "requests",
        "requests_per_day",
        "errors",
        "error_rate",
        "mean_ms",
        "availability",
        "latency_share",
        "cache_hit_ratio",
        "coverage",
    ]:
        cur, prev = current.get(metric), previous.get(metric)
        cur = float("nan") if cur is None else float(cur)
        prev = float("nan") if prev is None else float(prev)
        rows.append(
            {
                "metric": metric,
                "current": cur,
                "previous": prev,
                "change": cur - prev,
                "relative_change": ratio(cur - prev, prev),
            }
        )
    return pd.DataFrame(rows)


def _memory_detail(memory: MemoryTrend) -> str:
    if memory.peak_rss is None:
        return "no memory figure collected"
    text = f"peak rss {memory.peak_rss / 2**20:.0f} MiB ({memory.peak_fraction:.0%} of the limit); "
    text += f"{len(memory.restarts)} restarts; possible leak: "
    if not memory.leak:
        return text + "no"
    seg = memory.leak_segments.iloc[0]
    return text + (
        f"yes, +{seg['climb_growth_per_hour']:.1%}/h from {iso(seg['climb_start'])} to {iso(seg['climb_end'])}"
    )


def _met(value: float | None, threshold: float, above: bool) -> bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return bool(value > threshold) if above else bool(value < threshold)


def monthly_review(
    store: Any,
    month: str,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> MonthlyReview:
    """The month's review (`month` = "YYYY-MM"), compared with the month before."""
    th = thresholds or Thresholds()
    start, end = parse_month(month)
    prev_month = previous_month(month)
    p_start, p_end = parse_month(prev_month)
    cur = _period_figures(
        store, start, end, th, target=target, include_monitoring=include_monitoring
    )
    prev = _period_figures(
        store, p_start, p_end, th, target=target, include_monitoring=include_monitoring
    )
    avail: Availability = cur["availability"]
    totals = cur["totals"]
    notes: list[str] = []
    has_data = avail.observations > 0
    if not has_data:
        notes.append(f"no observation collected in {month}: nothing below is a measurement")
    if prev["availability"].observations == 0:
        notes.append(
            f"no observation collected in {prev_month}: no comparison with the previous month"
        )
    elif has_data and abs(prev["availability"].coverage - avail.coverage) > 0.1:
        notes.append(
            f"collection covered {avail.coverage:.0%} of {month} but {prev['availability'].coverage:.0%} of "
            f"{prev_month}: compare rates and requests_per_day, not totals"
        )

    period = end - start
    period_s = period.total_seconds()
    budget = error_budget(th.availability_slo, avail.ok, avail.observations, period)
    request_budget = error_budget(
        1 - th.error_rate, totals["requests"] - totals["errors"], totals["requests"], period
    )
    lat = cur["latency"]
    latency_budget = error_budget(th.latency_slo, lat["met"], lat["slices"], period)
    sanity = percentile_sanity(store, start, end, target=target, scrapes=cur["scrapes"])
    memory = memory_trend(store, start, end, th, target=target, scrapes=cur["scrapes"])
    cache = cur["cache"]
    if avail.gap_s > 0:
        notes.append(
            f"collection gaps cover {avail.gap_s / 3600:.1f} h ({avail.gap_s / period_s:.1%} of the month): "
            "not counted as uptime"
        )

    targets = pd.DataFrame(
        [
            {
                "key": "availability",
                "target": f"health OK in at least {th.availability_slo:.1%} of observations",
                "figure": avail.availability,
                "threshold": th.availability_slo,
                "met": None
                if np.isnan(avail.availability)
                else bool(avail.availability >= th.availability_slo),
                "detail": (
                    f"{avail.ok} OK, {avail.degraded} DEGRADED, {avail.error} ERROR, {avail.no_answer} no answer "
                    f"of {avail.observations} observations; coverage {avail.coverage:.1%}"
                ),
            },
            {
                "key": "error_rate",
                "target": f"error rate < {th.error_rate:.0%}",
                "figure": totals["error_rate"],
                "threshold": th.error_rate,
                "met": _met(totals["error_rate"], th.error_rate, above=False),
                "detail": f"{totals['errors']} errors of {totals['requests']} requests",
            },
            {
                "key": "latency",
                "target": f"reported p95 < {th.latency_p95_ms:g} ms in at least {th.latency_slo:.0%} of time slices",
                "figure": lat["share"],
                "threshold": th.latency_slo,
                "met": None if np.isnan(lat["share"]) else bool(lat["share"] >= th.latency_slo),
                "detail": f"{lat['met']} of {lat['slices']} slices; {lat['label']}",
            },
            {
                "key": "cache_hit_rate",
                "target": f"cache hit rate > {th.cache_hit_rate:.0%}",
                "figure": cache["hit_ratio"],
                "threshold": th.cache_hit_rate,
                "met": _met(cache["hit_ratio"], th.cache_hit_rate, above=True),
                "detail": f"{cache['hits']} hits, {cache['misses']} misses (counter deltas)",
            },
            {
                "key": "memory",
                "target": f"memory < {th.memory_fraction:.0%} of {th.memory_limit_bytes / 2**20:.0f} MiB and no leak",
                "figure": memory.peak_fraction,
                "threshold": th.memory_fraction,
                "met": None
                if memory.peak_fraction is None
                else bool(not memory.leak and memory.peak_fraction < th.memory_fraction),
                "detail": _memory_detail(memory),
            },
        ]
    )

    # daily trends
    traffic = traffic_series(
        store, start, end, bucket="day", target=target, include_monitoring=include_monitoring
    )
    cache_daily = cache_stats(store, start, end, bucket="day", target=target)
    daily = pd.DataFrame({"day": pd.date_range(ts(start), ts(end), freq="D", inclusive="left")})
    if not traffic.empty:
        t = traffic.assign(day=traffic["ts"].dt.floor("D"))[
            ["day", "requests", "errors", "error_rate", "mean_ms"]
        ]
        daily = daily.merge(t, on="day", how="left")
    else:
        daily = daily.assign(requests=0, errors=0, error_rate=np.nan, mean_ms=np.nan)
    if not cache_daily.empty:
        c = cache_daily.assign(day=cache_daily["ts"].dt.floor("D"))
        c = c.rename(columns={"hit_ratio": "cache_hit_ratio"})[
            ["day", "cache_hits", "cache_misses", "cache_hit_ratio"]
        ]
        daily = daily.merge(c, on="day", how="left")
    else:
        daily = daily.assign(cache_hits=0, cache_misses=0, cache_hit_ratio=np.nan)
    if not avail.daily.empty:
        daily = daily.merge(
            avail.daily[["day", "observations", "availability"]], on="day", how="left"
        )
    else:
        daily = daily.assign(observations=0, availability=np.nan)
    slices = latency_slices(
        store, start, end, threshold_ms=th.latency_p95_ms, target=target, scrapes=cur["scrapes"]
    )
    if not slices.empty:
        s = (
            slices.assign(day=slices["ts"].dt.floor("D"))
            .groupby("day")["met"]
            .agg(["size", "mean"])
        )
        s = s.rename(columns={"size": "latency_slices", "mean": "latency_met_share"}).reset_index()
        daily = daily.merge(s, on="day", how="left")
    else:
        daily = daily.assign(latency_slices=0, latency_met_share=np.nan)
    if not memory.frame.empty:
        m = memory.frame.assign(day=memory.frame["ts"].dt.floor("D")).groupby("day")["rss"].max()
        daily = daily.merge(m.rename("peak_rss").reset_index(), on="day", how="left")
    else:
        daily = daily.assign(peak_rss=np.nan)
    for col in [
        "requests",
        "errors",
        "cache_hits",
        "cache_misses",
        "observations",
        "latency_slices",
    ]:
        daily[col] = pd.to_numeric(daily[col], errors="coerce").fillna(0).astype("int64")

    endpoints = endpoint_changes(cur["summary"], prev["summary"])
    found = with_commands(
        find_incidents(store, start, end, th, target=target, include_monitoring=include_monitoring)
    )
    resets = _resets(store, start, end, target)
    excluded = (
        empty(["endpoint", "requests", "errors", "reason"])
        if include_monitoring
        else excluded_monitoring(store, start, end, target=target)
    )
    if sanity["disordered"]:
        notes.append(
            f"the server's percentiles were out of order in {sanity['disordered']} of {sanity['snapshots']} "
            "snapshots (quirk 1): latency is judged by time slices and by mean latency from counter deltas"
        )
    data_quality = {
        "observations": avail.observations,
        "no_answer": avail.no_answer,
        "interval_s": avail.interval_s,
        "coverage": avail.coverage,
        "gap_s": avail.gap_s,
        "gaps": avail.gaps,
        "resets": resets,
        "first": cur["health"]["ts"].min() if has_data else None,
        "last": cur["health"]["ts"].max() if has_data else None,
        "excluded": excluded,
        "excluded_reason": None if include_monitoring else MONITORING_REASON,
        "percentiles_disordered_share": sanity["disordered_share"],
    }
    return MonthlyReview(
        month=month,
        start=start,
        end=end,
        previous_month=prev_month,
        target=target,
        thresholds=th,
        include_monitoring=include_monitoring,
        has_data=has_data,
        targets=targets,
        availability=avail,
        error_budget=budget,
        request_budget=request_budget,
        latency_budget=latency_budget,
        totals=totals,
        previous_totals=prev["totals"],
        changes=_changes(totals, prev["totals"]),
        daily=daily,
        endpoints=endpoints,
        latency={**lat, "mean_ms": totals["mean_ms"], "percentiles": sanity},
        cache=cache,
        cache_daily=cache_daily,
        memory=memory,
        incidents=found,
        data_quality=data_quality,
        excluded=excluded,
        notes=notes,
    )


# --- postmortem -------------------------------------------------------------------------


@dataclass
class Postmortem:
    """The facts a postmortem starts from. Root cause, trigger, action items and lessons
    are left for a person.

    impact_start / impact_end: first breach start and last breach end (incidents other
        than restarts) in [start, end); None when nothing breached. duration_s.
    requests / failed / error_rate: requests and failed requests in the impact window
        (the window when there was no breach), monitoring excluded unless asked.
    no_answer / observations: health observations in the impact window.
    endpoints: endpoint, requests, errors, error_rate, mean_ms, baseline_error_rate,
        baseline_mean_ms, excess_errors (errors beyond the baseline rate),
        extra_latency_ms (requests x mean increase over baseline), rank (1 = most harm).
    errors: sampled error records (ts, endpoint, method, status_code, error), at most
        `sample_errors`, spread over the window; error_counts: endpoint, status_code,
        error, count.
    restarts: ts, kind. timeline: ts, event, detail, endpoint (health changes, threshold
        crossings (incident start/end), resets, collection gaps), by time.
    incidents: `incidents()` rows of the window. comparison: metric, window, baseline.
    series: ts, period ("baseline" | "window"), requests, errors, error_rate, mean_ms
        for charts; health: ts, status; availability: `Availability` of the window.
    """

    title: str | None
    start: datetime
    end: datetime
    baseline_start: datetime
    baseline_end: datetime
    target: str | None
    thresholds: Thresholds
    include_monitoring: bool
    impact_start: pd.Timestamp | None
    impact_end: pd.Timestamp | None
    duration_s: float | None
    requests: int
    failed: int
    error_rate: float
    no_answer: int
    observations: int
    endpoints: pd.DataFrame = field(repr=False)
    errors: pd.DataFrame = field(repr=False)
    error_counts: pd.DataFrame = field(repr=False)
    restarts: pd.DataFrame = field(repr=False)
    timeline: pd.DataFrame = field(repr=False)
    incidents: pd.DataFrame = field(repr=False)
    comparison: pd.DataFrame = field(repr=False)
    series: pd.DataFrame = field(repr=False)
    health: pd.DataFrame = field(repr=False)
    availability: Availability = field(repr=False)
    memory: MemoryTrend = field(repr=False)
    excluded: pd.DataFrame = field(repr=False)
    excluded_reason: str = MONITORING_REASON
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The headline figures, flat (for a first cell, logs or JSON)."""
        top = self.endpoints.iloc[0]["endpoint"] if not self.endpoints.empty else None
        return {
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "impact_start": self.impact_start,
            "impact_end": self.impact_end,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "failed": self.failed,
            "error_rate": self.error_rate,
            "no_answer": self.no_answer,
            "observations": self.observations,
            "most_harmed_endpoint": top,
            "restarts": int(len(self.restarts)),
            "incidents": int(len(self.incidents)),
            "excluded": list(self.excluded["endpoint"]) if not self.excluded.empty else [],
        }


def _baseline(
    start: datetime, baseline: tuple[datetime, datetime] | timedelta | None
) -> tuple[datetime, datetime]:
    if baseline is None:
        baseline = timedelta(hours=24)
    if isinstance(baseline, timedelta):
        return start - baseline, start
    return py(baseline[0]), py(baseline[1])


def _timeline(
    health: pd.DataFrame, found: pd.DataFrame, resets: pd.DataFrame, gaps: pd.DataFrame
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if not health.empty:
        status = health["status"]
        changed = status.ne(status.shift())
        for i in health.index[changed]:
            before = status.shift().loc[i]
            rows.append(
                {
                    "ts": health.loc[i, "ts"],
                    "event": "health",
                    "detail": f"health {before} -> {status.loc[i]}"
                    if isinstance(before, str)
                    else f"health {status.loc[i]} (first observation)",
                    "endpoint": None,
                }
            )
    for row in found.itertuples():
        if row.kind in ("restart", "no_answer", "health_error", "health_degraded"):
            continue
        where = f" on {row.endpoint}" if row.endpoint else ""
        rows.append(
            {
                "ts": row.start,
                "event": "threshold crossed",
                "detail": f"{row.kind}{where}: {row.detail}",
                "endpoint": row.endpoint,
            }
        )
        if not row.ongoing:
            rows.append(
                {
                    "ts": row.end,
                    "event": "back within threshold",
                    "detail": f"{row.kind}{where}",
                    "endpoint": row.endpoint,
                }
            )
    for row in resets.itertuples():
        rows.append({"ts": row.ts, "event": "reset", "detail": str(row.kind), "endpoint": None})
    for row in gaps.itertuples():
        rows.append(
            {
                "ts": row.start,
                "event": "collection gap",
                "detail": f"no scrape for {row.duration_s / 60:.0f} min (until {iso(row.end)})",
                "endpoint": None,
            }
        )
    if not rows:
        return empty(["ts", "event", "detail", "endpoint"])
    out = pd.DataFrame(rows)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def _rank(window: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "endpoint",
        "requests",
        "errors",
        "error_rate",
        "mean_ms",
        "baseline_error_rate",
        "baseline_mean_ms",
        "excess_errors",
        "extra_latency_ms",
        "rank",
    ]
    if window.empty:
        return empty(cols)
    b = (
        base[["endpoint", "error_rate", "mean_ms"]].rename(
            columns={"error_rate": "baseline_error_rate", "mean_ms": "baseline_mean_ms"}
        )
        if not base.empty
        else empty(["endpoint", "baseline_error_rate", "baseline_mean_ms"])
    )
    out = window.merge(b, on="endpoint", how="left")
    out["baseline_error_rate"] = pd.to_numeric(out["baseline_error_rate"], errors="coerce")
    out["baseline_mean_ms"] = pd.to_numeric(out["baseline_mean_ms"], errors="coerce")
    expected = out["requests"] * out["baseline_error_rate"].fillna(0)
    out["excess_errors"] = (out["errors"] - expected).clip(lower=0)
    extra = (out["mean_ms"] - out["baseline_mean_ms"]).clip(lower=0).fillna(0)
    out["extra_latency_ms"] = out["requests"] * extra
    out = out.sort_values(
        ["excess_errors", "extra_latency_ms", "requests"], ascending=False
    ).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[cols]


def postmortem(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    baseline: tuple[datetime, datetime] | timedelta | None = None,
    title: str | None = None,
    target: str | None = None,
    include_monitoring: bool = False,
    sample_errors: int = 20,
) -> Postmortem:
    """The facts of an incident window [start, end) against a baseline before it
    (`baseline`: a (start, end) pair, or a duration before `start`; default the 24 h before)."""
    th = thresholds or Thresholds()
    start, end = py(start), py(end)
    b_start, b_end = _baseline(start, baseline)
    notes: list[str] = []
    health = _health(store, start, end, target)
    avail = availability_from_health(health, start, end)
    base_summary = endpoint_summary(
        store, b_start, b_end, target=target, include_monitoring=include_monitoring
    )
    if base_summary.empty:
        notes.append("no traffic collected in the baseline period: no baseline comparison")
    fine = "scrape" if (end - b_start) <= timedelta(days=3) else "hour"
    found = find_incidents(
        store,
        start,
        end,
        th,
        target=target,
        include_monitoring=include_monitoring,
        baseline=(b_start, b_end) if not base_summary.empty else None,
        bucket=fine,
        min_requests=5 if fine == "scrape" else 10,
    )
    found = with_commands(found)
    breaches = found[found["kind"] != "restart"] if not found.empty else found
    if breaches.empty:
        impact_start = impact_end = None
        duration_s = None
        i_start, i_end = start, end
        notes.append("no threshold breach found in the window: figures cover the whole window")
    else:
        impact_start = ts(breaches["start"].min())
        impact_end = ts(breaches["end"].max())
        duration_s = (impact_end - impact_start).total_seconds()
        # the first good scrape's delta still covers the end of the breach: include it
        i_start, i_end = py(impact_start), py(impact_end + pd.Timedelta(milliseconds=1))
    window_summary = endpoint_summary(
        store, i_start, i_end, target=target, include_monitoring=include_monitoring
    )
    totals = request_totals(window_summary)
    i_health = (
        health[(health["ts"] >= ts(i_start)) & (health["ts"] < ts(i_end))]
        if not health.empty
        else health
    )

    errors = store.error_records(start, end, target=target)
    errors = (
        ensure_ts(errors.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not errors.empty
        else empty(["ts", "endpoint", "method", "status_code", "error"])
    )
    if not include_monitoring and not errors.empty:
        from ..models import is_monitoring

        errors = errors[~errors["endpoint"].fillna("").astype(str).map(is_monitoring)].reset_index(
            drop=True
        )
    if errors.empty:
        error_counts = empty(["endpoint", "status_code", "error", "count"])
        sample = errors
    else:
        error_counts = (
            errors.fillna({"error": ""})
            .groupby(["endpoint", "status_code", "error"], dropna=False)
            .size()
            .rename("count")
            .reset_index()
            .sort_values("count", ascending=False)
            .reset_index(drop=True)
        )
        idx = np.unique(
            np.linspace(0, len(errors) - 1, min(sample_errors, len(errors))).round().astype(int)
        )
        sample = errors.iloc[idx].reset_index(drop=True)

    resets = _resets(store, start, end, target)
    timeline = _timeline(health, found, resets, avail.gaps)
    base_health = _health(store, b_start, b_end, target)
    base_avail = availability_from_health(base_health, b_start, b_end)
    base_totals = request_totals(base_summary)
    whole = request_totals(
        endpoint_summary(store, start, end, target=target, include_monitoring=include_monitoring)
    )
    comparison = pd.DataFrame(
        [
            {
                "metric": "requests per hour",
                "window": ratio(whole["requests"], (end - start).total_seconds() / 3600),
                "baseline": ratio(
                    base_totals["requests"], (b_end - b_start).total_seconds() / 3600
                ),
            },
            {
                "metric": "error_rate",
                "window": whole["error_rate"],
                "baseline": base_totals["error_rate"],
            },
            {"metric": "mean_ms", "window": whole["mean_ms"], "baseline": base_totals["mean_ms"]},
            {
                "metric": "availability",
                "window": avail.availability,
                "baseline": base_avail.availability,
            },
        ]
    )
    bucket = "scrape" if fine == "scrape" else "hour"
    w_series = traffic_series(
        store, start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    b_series = traffic_series(
        store, b_start, b_end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    series = (
        pd.concat(
            [b_series.assign(period="baseline"), w_series.assign(period="window")],
            ignore_index=True,
        )[["ts", "period", "requests", "errors", "error_rate", "mean_ms"]]
        if not (w_series.empty and b_series.empty)
        else empty(["ts", "period", "requests", "errors", "error_rate", "mean_ms"])
    )
    memory = memory_trend(store, b_start, end, th, target=target)
    excluded = (
        empty(["endpoint", "requests", "errors", "reason"])
        if include_monitoring
        else excluded_monitoring(store, start, end, target=target)
    )
    return Postmortem(
        title=title,
        start=start,
        end=end,
        baseline_start=b_start,
        baseline_end=b_end,
        target=target,
        thresholds=th,
        include_monitoring=include_monitoring,
        impact_start=impact_start,
        impact_end=impact_end,
        duration_s=duration_s,
        requests=totals["requests"],
        failed=totals["errors"],
        error_rate=totals["error_rate"],
        no_answer=int((i_health["status"] == "NO_ANSWER").sum()) if not i_health.empty else 0,
        observations=int(len(i_health)),
        endpoints=_rank(window_summary, base_summary),
        errors=sample,
        error_counts=error_counts,
        restarts=resets,
        timeline=timeline,
        incidents=found if not found.empty else empty([*INCIDENT_COLUMNS, "postmortem_command"]),
        comparison=comparison,
        series=series,
        health=health[["ts", "status"]] if not health.empty else empty(["ts", "status"]),
        availability=avail,
        memory=memory,
        excluded=excluded,
        notes=notes,
    )
