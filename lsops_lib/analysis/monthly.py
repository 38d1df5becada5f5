"""The monthly review bundle: every figure the monthly review notebook shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import Thresholds
from ..times import EARLIEST, parse_month, previous_month
from ._common import MONITORING_REASON, empty, entry, nan_to_none, one_target, ratio, ts
from ._memo import memo
from ._reads import health_frame, reset_frame, scrape_figures
from .availability import Availability, availability_from_health
from .changes import month_over_month
from .incidents import incidents as find_incidents
from .incidents import with_commands
from .memory import MemoryTrend, climb_span, period_memory_trend
from .slo import (
    app_traffic,
    error_budget,
    latency_slices,
    latency_timeslices,
    percentile_sanity,
)
from .traffic import (
    cache_stats,
    cache_summary,
    endpoint_changes,
    endpoint_summary,
    excluded_monitoring,
    request_totals,
    traffic_series,
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
    scrapes = scrape_figures(store, start, end, target)  # first: it reads the health too
    health = health_frame(store, start, end, target)
    avail = availability_from_health(health, start, end)
    summary = endpoint_summary(
        store, start, end, target=target, include_monitoring=include_monitoring
    )
    app = app_traffic(store, start, end, target=target)  # (the memo's hourly read)
    lat = latency_timeslices(
        store,
        start,
        end,
        threshold_ms=thresholds.latency_p95_ms,
        target=target,
        scrapes=scrapes,
        app=app,
    )
    cache = cache_summary(store, start, end, target=target)
    return {
        "health": health,
        "availability": avail,
        "summary": summary,
        "scrapes": scrapes,
        "latency": lat,
        "app": app,  # the application's hourly requests: the daily slices' too
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
        latency_share, cache_hit_ratio, coverage, covered_days, requests_per_day (the
        counters as counted; has_data / previous_has_data say whether a month has any
        observation at all).
    changes: `changes.month_over_month()`: metric, current, previous, change,
        relative_change, measure, moved, notable (NaN figures for a month without data).
    daily: day, requests, errors, error_rate, mean_ms, cache_hits, cache_misses,
        cache_hit_ratio, observations, availability, coverage (share of the day the
        collector covered), latency_slices, latency_met_share, peak_rss.
    endpoints: `endpoint_changes()` of this month vs the previous one, worst first.
    latency: timeslices dict + `mean_ms` (weighted, from counter deltas) + `percentiles`
        (`percentile_sanity()`).
    incidents: `incidents()` columns + postmortem_command.
    data_quality: observations, no_answer, interval_s, coverage, gap_s, gaps (DataFrame
        start, end, duration_s), elapsed_s (the month's length, or the part of it passed
        while it is in progress, 0 before it starts), started (False for a month still to
        come: coverage unknown, no gap yet), resets (DataFrame ts, kind), first, last, excluded
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
    previous_has_data: bool
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
        """The review's headline figures: what its key figures are built from (the report
        adds only where the data came from and what it could not show). Values are Python
        numbers, strings, lists and dicts, and UTC Timestamps (`present.jsonable` makes
        JSON of them); unknown is None or NaN, never 0 %."""
        targets = self.targets.to_dict("records")
        pct = self.latency.get("percentiles") or {}
        dq = self.data_quality
        return {
            "month": self.month,
            "previous_month": self.previous_month,
            "has_data": self.has_data,
            "targets": {
                r["key"]: {"figure": r["figure"], "threshold": r["threshold"], "met": r["met"]}
                for r in targets
            },
            "targets_met": sum(1 for r in targets if _known(r["met"]) and bool(r["met"])),
            "totals": dict(self.totals),
            "previous_totals": dict(self.previous_totals),
            "error_budget": {
                k: self.error_budget[k]
                for k in ("spent_share", "left_share", "burn_rate", "bad", "total")
            },
            "request_budget": {
                k: self.request_budget[k] for k in ("spent_share", "left_share", "burn_rate")
            },
            "latency": {
                "timeslice_share": self.latency["share"],
                "slices": self.latency["slices"],
                "met": self.latency["met"],
                # the slices left out: their hour held monitoring requests alone (quirk 2)
                "monitoring_only": self.latency.get("monitoring_only"),
                "mean_ms": self.latency.get("mean_ms"),
                "percentiles_disordered": pct.get("disordered"),
                "percentiles_disordered_share": pct.get("disordered_share"),
            },
            "endpoints_worst_first": [str(e) for e in self.endpoints["endpoint"]]
            if not self.endpoints.empty
            else [],
            "incidents": [
                {
                    k: nan_to_none(r.get(k)) if k == "endpoint" else r.get(k)
                    for k in ("kind", "start", "end", "duration_s", "endpoint", "severity")
                }  # endpoint: None for an incident of the whole API
                for r in self.incidents.to_dict("records")
            ],
            "memory": {
                "leak": self.memory.leak,
                "peak_rss": self.memory.peak_rss,
                "restarts": len(self.memory.restarts),
            },
            "data_quality": {
                "observations": dq["observations"],
                "coverage": dq["coverage"],
                "gap_s": dq["gap_s"],
                "elapsed_s": dq["elapsed_s"],
                "started": dq["started"],
                "gaps": len(dq["gaps"]),
                "resets": len(dq["resets"]),
                "excluded": [str(e) for e in self.excluded["endpoint"]]
                if not self.excluded.empty
                else [],
            },
            "notes": list(self.notes),
        }


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _memory_target(memory: MemoryTrend, th: Thresholds) -> dict[str, Any]:
    """The memory line: under `memory_fraction` of the limit and no leak; with
    `memory_limit_bytes = 0` (no limit), no leak alone."""
    if th.memory_limit_bytes <= 0:
        return {
            "key": "memory",
            "target": "no leak (no memory limit: memory_limit_bytes = 0)",
            "figure": None,
            "threshold": None,
            "met": None if memory.peak_rss is None else bool(not memory.leak),
            "detail": _memory_detail(memory),
        }
    return {
        "key": "memory",
        "target": f"memory < {fmt.exact_pct(th.memory_fraction)} of {th.memory_limit_bytes / 2**20:.0f} MiB and no leak",
        "figure": memory.peak_fraction,
        "threshold": th.memory_fraction,
        "met": None
        if memory.peak_fraction is None
        else bool(not memory.leak and memory.peak_fraction < th.memory_fraction),
        "detail": _memory_detail(memory),
    }


def _memory_detail(memory: MemoryTrend) -> str:
    if memory.peak_rss is None:
        return "no memory figure collected"
    share = (
        f"{memory.peak_fraction:.0%} of the limit"
        if memory.limit_bytes > 0 and memory.peak_fraction is not None
        else "no limit set"
    )
    text = f"peak rss {memory.peak_rss / 2**20:.0f} MiB ({share}); "
    text += f"{fmt.counted(len(memory.restarts), 'restart')}; possible leak: "
    if not memory.leak:
        return text + "no"
    seg = memory.leak_segments.iloc[0]
    start, end = climb_span(seg)
    return text + (
        f"yes, +{seg['climb_growth_per_hour']:.1%}/h from {fmt.instant(start)} "
        f"to {fmt.instant(end)}"
    )


def _met(value: float | None, threshold: float, above: bool) -> bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return bool(value > threshold) if above else bool(value < threshold)


def _several_targets(store: Any) -> bool:
    """Whether the store holds the scrapes of more than one target."""
    try:
        return len(list(store.targets())) > 1
    except Exception:  # noqa: BLE001 - an unreadable store: the reads say why
        return False


@entry
def monthly_review(
    store: Any,
    month: str,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> MonthlyReview:
    """The month's review (`month` = "YYYY-MM", read as the command line reads it:
    `times.parse_month`; the review's `month` is that normal form), compared with the month
    before; of `target`, which may be left out when the store holds one target only."""
    start, end = parse_month(month)
    month = f"{start.year:04d}-{start.month:02d}"  # " 2026-11" is 2026-11
    target = one_target(store, target, "monthly review")
    memoized = memo(store)  # one pass over the samples per period, whatever the figures ask
    if memoized is not store:
        # the statements that scan every scrape of a period run beside the pandas work
        # (the very calls the figures make below, answered from the memo)
        if target is not None:
            # the cache-fall detector's read (per target: one named); the month's daily
            # counters are summed from it (MemoStore.counter_intervals)
            memoized.prefetch("counter_intervals", start, end, bucket="scrape", target=target)
        else:
            memoized.prefetch("counter_intervals", start, end, bucket="day", target=target)
        if start > EARLIEST:  # the earliest month has no previous one to read
            p_start, p_end = parse_month(previous_month(month))
            memoized.prefetch("counter_intervals", p_start, p_end, bucket="day", target=target)
        memoized.prefetch("resets", start, end, target=target)
    try:
        return _monthly_review(
            memoized, month, thresholds, target=target, include_monitoring=include_monitoring
        )
    finally:
        if memoized is not store:
            memoized.close()


def _monthly_review(
    store: Any,
    month: str,
    thresholds: Thresholds | None,
    *,
    target: str | None,
    include_monitoring: bool,
) -> MonthlyReview:
    th = thresholds or Thresholds()
    start, end = parse_month(month)
    prev_month = previous_month(month)
    cur = _period_figures(
        store, start, end, th, target=target, include_monitoring=include_monitoring
    )
    avail: Availability = cur["availability"]
    totals = cur["totals"]
    notes: list[str] = []
    has_data = avail.observations > 0
    started = avail.period_s > 0  # a month still to come has no time passed, no coverage
    if start <= EARLIEST:
        # the month before lsops' earliest is no month a user can give: nothing to read,
        # nothing to compare (every previous figure unknown)
        prev = {
            "summary": cur["summary"].iloc[0:0],
            "totals": {key: float("nan") for key in totals},
            "availability": None,
        }
        previous_has_data = False
    else:
        p_start, p_end = parse_month(prev_month)
        prev = _period_figures(
            store, p_start, p_end, th, target=target, include_monitoring=include_monitoring
        )
        previous_has_data = prev["availability"].observations > 0
    if not started:
        notes.append(f"{month} has not started: no observation could be collected yet")
    elif not has_data:
        notes.append(f"no observation collected in {month}: nothing below is a measurement")
    if prev["availability"] is None:
        notes.append(
            f"{month} is the earliest month lsops handles: no previous month to compare with"
        )
    elif not previous_has_data:
        notes.append(
            f"no observation collected in {prev_month}: no comparison with the previous month"
        )
    elif has_data and abs(prev["availability"].coverage - avail.coverage) > 0.1:
        notes.append(
            f"collection covered {avail.coverage:.0%} of {month} but {prev['availability'].coverage:.0%} of "
            f"{prev_month}: compare rates and requests_per_day, not totals"
        )

    # the budgets' time figures are over the part of the month that has passed: the whole
    # month once it is over, the time elapsed until now while it is in progress (the
    # availability's window, which ends now): never a spent time longer than the time that
    # has passed (a month not begun yet keeps its length: nothing observed, nothing spent)
    month_s = (end - start).total_seconds()
    period_s = avail.period_s if 0 < avail.period_s < month_s else month_s
    in_progress = period_s < month_s
    budget = error_budget(th.availability_slo, avail.ok, avail.observations, period_s)
    request_budget = error_budget(
        1 - th.error_rate,
        max(totals["requests"] - totals["errors"], 0),  # counter deltas may disagree
        totals["requests"],
        period_s,
    )
    lat = cur["latency"]
    latency_budget = error_budget(th.latency_slo, lat["met"], lat["slices"], period_s)
    sanity = percentile_sanity(store, start, end, target=target, scrapes=cur["scrapes"])
    memory = period_memory_trend(store, start, end, th, target=target, scrapes=cur["scrapes"])
    cache = cur["cache"]
    if avail.gap_s > 0:
        notes.append(
            f"collection gaps cover {avail.gap_s / 3600:.1f} h ({avail.gap_s / period_s:.1%} of the "
            f"{'month so far' if in_progress else 'month'}): not counted as uptime"
        )

    targets = pd.DataFrame(
        [
            {
                "key": "availability",
                "target": f"health OK in at least {fmt.exact_pct(th.availability_slo)} of observations",
                "figure": avail.availability,
                "threshold": th.availability_slo,
                "met": None
                if np.isnan(avail.availability)
                else bool(avail.availability >= th.availability_slo),
                "detail": (
                    f"{fmt.integer(avail.ok)} OK, {fmt.integer(avail.degraded)} DEGRADED, "
                    f"{fmt.integer(avail.error)} ERROR, {fmt.integer(avail.no_answer)} no answer "
                    f"of {fmt.counted(avail.observations, 'observation')}; "
                    + (f"coverage {avail.coverage:.1%}" if started else "month not started")
                ),
            },
            {
                "key": "error_rate",
                "target": f"error rate < {fmt.exact_pct(th.error_rate)}",
                "figure": totals["error_rate"],
                "threshold": th.error_rate,
                "met": _met(totals["error_rate"], th.error_rate, above=False),
                "detail": (
                    f"{fmt.counted(totals['errors'], 'error')} of "
                    f"{fmt.counted(totals['requests'], 'request')}"
                ),
            },
            {
                "key": "latency",
                "target": f"reported p95 < {th.latency_p95_ms:g} ms in at least {fmt.exact_pct(th.latency_slo)} of time slices",
                "figure": lat["share"],
                "threshold": th.latency_slo,
                "met": None if np.isnan(lat["share"]) else bool(lat["share"] >= th.latency_slo),
                "detail": f"{fmt.integer(lat['met'])} of {fmt.counted(lat['slices'], 'slice')}; "
                f"{lat['label']}",
            },
            {
                "key": "cache_hit_rate",
                "target": f"cache hit rate > {fmt.exact_pct(th.cache_hit_rate)}",
                "figure": cache["hit_ratio"],
                "threshold": th.cache_hit_rate,
                "met": _met(cache["hit_ratio"], th.cache_hit_rate, above=True),
                "detail": f"{fmt.counted(cache['hits'], 'hit')}, "
                f"{fmt.counted(cache['misses'], 'miss', 'misses')} (counter deltas)",
            },
            _memory_target(memory, th),
        ]
    )
    # met: True, False or None (unknown), as Python values: one type (object) whether
    # some target is unknown or none is (pandas would make a column without None `bool`)
    targets["met"] = pd.Series(
        [None if m is None else bool(m) for m in targets["met"]], index=targets.index, dtype=object
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
            avail.daily[["day", "observations", "availability", "coverage"]], on="day", how="left"
        )
    else:
        daily = daily.assign(observations=0, availability=np.nan, coverage=0.0)
    traffic, since = cur["app"]
    slices = latency_slices(
        store,
        start,
        end,
        threshold_ms=th.latency_p95_ms,
        target=target,
        scrapes=cur["scrapes"],
        app=traffic,
        since=since,
    )
    slices = slices[~slices["monitoring_only"].astype(bool)]  # as the month's share counts
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
        daily = daily.assign(peak_rss=pd.NA)
    # bytes, as `rss` (Int64): NA on a day without a memory figure, whether any day has one
    daily["peak_rss"] = pd.to_numeric(daily["peak_rss"], errors="coerce").round().astype("Int64")
    for col in [
        "requests",
        "errors",
        "cache_hits",
        "cache_misses",
        "observations",
        "latency_slices",
    ]:
        daily[col] = pd.to_numeric(daily[col], errors="coerce").fillna(0).astype("int64")

    endpoints = endpoint_changes(cur["summary"], prev["summary"], previous_known=previous_has_data)
    found = with_commands(
        find_incidents(store, start, end, th, target=target, include_monitoring=include_monitoring),
        th,
        # a store of several targets: the postmortems name the one reviewed (with one,
        # `lsops report postmortem` reads it without being told)
        target=target if target is not None and _several_targets(store) else None,
    )
    resets = reset_frame(store, start, end, target)
    excluded = (
        empty(["endpoint", "requests", "errors", "reason"])
        if include_monitoring
        else excluded_monitoring(store, start, end, target=target)
    )
    if sanity["disordered"]:
        notes.append(
            f"the server's percentiles were out of order in {fmt.number(sanity['disordered'])} of "
            f"{fmt.number(sanity['snapshots'])} "
            "snapshots (quirk 1): latency is judged by time slices and by mean latency from counter deltas"
        )
    data_quality = {
        "observations": avail.observations,
        "no_answer": avail.no_answer,
        "interval_s": avail.interval_s,
        "coverage": avail.coverage,
        "gap_s": avail.gap_s,
        "gaps": avail.gaps,
        # the month's length, or the part passed while in progress (0: not started)
        "elapsed_s": period_s if started else 0.0,
        "started": started,
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
        previous_has_data=previous_has_data,
        targets=targets,
        availability=avail,
        error_budget=budget,
        request_budget=request_budget,
        latency_budget=latency_budget,
        totals=totals,
        previous_totals=prev["totals"],
        changes=month_over_month(
            totals,
            prev["totals"],
            th,
            current_known=has_data,
            previous_known=previous_has_data,
        ),
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
