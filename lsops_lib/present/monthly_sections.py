"""The monthly review's sections after the summary: latency, daily trends, memory,
endpoints, incidents, data quality (re-exported by `present.monthly`).

Each `show_*` takes the frame (or dict) of the review bundle the notebook cell put in a
variable, shows the verdict and the table, and returns True when there is something to
chart: otherwise it has shown an "unavailable" box and the cell draws nothing. A section
whose data could not be computed at all (`load_review` failed: the data is None) shows
that instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from .. import fmt
from ..analysis.slo import TIMESLICE_LABEL
from ..config import Thresholds
from .display import (
    DASH,
    _missing,
    box_html,
    esc,
    facts_html,
    fmt_bytes,
    fmt_duration,
    fmt_hours,
    fmt_int,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_pp,
    fmt_rel,
    fmt_ts,
    guarded,
    show_html,
    show_table,
    show_text,
    unavailable,
)
from .source import StoreSource


class NotComputed:
    """The stand-in for a review that could not be computed: falsy, every figure None."""

    def __init__(self, month: str, reason: str) -> None:
        self.month = month
        self.reason = reason

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # IPython's and copy's probes: not a figure
            raise AttributeError(name)
        return None


def need(data: Any, section: str) -> bool:
    """False, with an "unavailable" box, when the section's data could not be computed."""
    if data is None or isinstance(data, NotComputed):
        unavailable(section, "the figures could not be computed (see above)", record=False)
        return False
    return True


def _month_of(daily: pd.DataFrame) -> str:
    return f"{pd.Timestamp(daily['day'].iloc[0]):%Y-%m}" if len(daily) else "the month"


# --- latency ----------------------------------------------------------------------------------


@guarded("Latency")
def show_latency(latency: dict[str, Any], daily: pd.DataFrame, thresholds: Thresholds) -> bool:
    """The latency SLO as time slices (labelled), the percentile sanity, mean latency
    (`latency`: `review.latency`); True when `daily` has time slices to chart."""
    if not need(latency, "Latency") or not need(daily, "Latency"):
        return False
    pct = latency.get("percentiles") or {}
    th = thresholds
    rows = [
        (
            f"Share of time slices whose reported p95 met {th.latency_p95_ms:g} ms",
            fmt_pct(latency["share"]),
        ),
        (
            "Time slices (scrapes with a p95)",
            f"{fmt_int(latency['met'])} met of {fmt_int(latency['slices'])}",
        ),
        ("Objective", f"at least {fmt.exact_pct(th.latency_slo)} of slices"),
        (
            "Slices left out: only monitoring requests in their hour (quirk 2)",
            fmt_int(latency.get("monitoring_only", 0)),
        ),
        (
            "Slices whose window held the server's last 1,000 requests (under an hour, quirk 6)",
            fmt_int(latency.get("capped", 0)),
        ),
        (
            "Mean latency from counter deltas (all requests, weighted)",
            fmt_ms(latency.get("mean_ms")),
        ),
        (
            "Server percentiles out of order (p50 > p95 or p95 > p99)",
            f"{fmt_int(pct.get('disordered'))} of {fmt_int(pct.get('snapshots'))} snapshots "
            f"({fmt_pct(pct.get('disordered_share'))})",
        ),
        ("  of which p50 > p95", fmt_int(pct.get("p50_gt_p95"))),
        ("  of which p95 > p99", fmt_int(pct.get("p95_gt_p99"))),
    ]
    label = TIMESLICE_LABEL.format(threshold=th.latency_p95_ms)
    show_html(facts_html(rows) + f"<p><em>Label: {esc(label)}.</em></p>")
    if not _missing(pct.get("disordered_share")) and pct.get("disordered"):
        show_text(
            "The server's percentiles are not trustworthy (reference quirk 1): no monthly p95 is "
            "given; the SLO counts slices, and mean latency comes from the counters."
        )
    if daily["latency_slices"].sum() == 0:
        unavailable("Latency chart", "no p95 reported in this month", record=False)
        return False
    return True


# --- daily trends -----------------------------------------------------------------------------

DAY_COLUMNS = {
    "day": "day (UTC)",
    "requests": "requests",
    "errors": "errors",
    "error_rate": "error rate",
    "mean_ms": "mean latency",
    "cache_hit_ratio": "cache hit rate",
    "availability": "availability",
    "latency_met_share": "slices p95 met",
    "peak_rss": "peak RSS",
}
DAY_FORMATS: dict[str, Callable[[Any], str]] = {
    "day": lambda v: f"{pd.Timestamp(v):%Y-%m-%d}",
    "error_rate": lambda v: fmt_pct(v, 2),
    "mean_ms": fmt_ms,
    "cache_hit_ratio": fmt_pct,
    "availability": lambda v: fmt_pct(v, 2),
    "latency_met_share": fmt_pct,
    "peak_rss": fmt_bytes,
}


@guarded("Daily trends")
def show_daily_trends(daily: pd.DataFrame) -> bool:
    """The table of the days with observations (`daily`: `review.daily`); True when the
    month has traffic or observations to chart."""
    if not need(daily, "Daily trends"):
        return False
    if daily["requests"].sum() == 0 and daily["observations"].sum() == 0:
        unavailable(
            "Daily trends", f"no traffic and no observation in {_month_of(daily)}", record=False
        )
        return False
    show_table(
        daily[daily["observations"] > 0],
        "Per day",
        DAY_FORMATS,
        columns=DAY_COLUMNS,
        max_rows=31,
        empty="no day with observations",
    )
    return True


# --- memory -----------------------------------------------------------------------------------

SEGMENT_COLUMNS = {
    "start": "from",
    "end": "to",
    "points": "scrapes",
    "duration_h": "hours",
    "rss_start": "RSS at start",
    "rss_end": "RSS at end",
    "slope_bytes_per_hour": "slope",
    "growth_per_hour": "growth",
    "r2": "r²",
    "leak": "possible leak",
    "climb_growth_per_hour": "steady climb",
}
SEGMENT_FORMATS: dict[str, Callable[[Any], str]] = {
    "rss_start": fmt_bytes,
    "rss_end": fmt_bytes,
    "slope_bytes_per_hour": lambda v: fmt_bytes(v) + "/h" if not _missing(v) else DASH,
    "growth_per_hour": lambda v: fmt_pct(v, 2) + "/h" if not _missing(v) else DASH,
    "climb_growth_per_hour": lambda v: fmt_pct(v, 2) + "/h" if not _missing(v) else DASH,
    "duration_h": lambda v: fmt_num(v, 3),
    "r2": lambda v: DASH if _missing(v) else f"{float(v):.2f}",
}


@guarded("Memory")
def show_memory(memory: Any, month: str) -> bool:
    """Restarts, the leak rule and the segments between restarts (`memory`:
    `review.memory`, a `MemoryTrend`); True when there is a memory reading to chart."""
    if not need(memory, "Memory"):
        return False
    if memory.frame.empty:
        unavailable("Memory", f"no memory reading in {month}", record=False)
        return False
    show_text(
        f"{fmt.counted(len(memory.restarts), 'restart or reset', 'restarts or resets')} in the "
        "month. A segment between restarts is "
        f"flagged when it climbs steadily faster than {fmt.exact_pct(memory.growth_threshold)} an hour. "
        "Growth is the slope over the segment's level after its restart; a steady climb's "
        "is fitted over the climb alone."
    )
    show_table(
        memory.segments, "Segments between restarts", SEGMENT_FORMATS, columns=SEGMENT_COLUMNS
    )
    return True


# --- endpoints --------------------------------------------------------------------------------

ENDPOINT_COLUMNS = {
    "endpoint": "endpoint",
    "requests": "requests",
    "requests_change": "requests vs prev.",
    "errors": "errors",
    "error_rate": "error rate",
    "error_rate_change": "error rate vs prev.",
    "mean_ms": "mean latency",
    "mean_ms_change": "mean latency vs prev.",
    "new": "new",
}
ENDPOINT_FORMATS: dict[str, Callable[[Any], str]] = {
    "requests_change": fmt_rel,
    "error_rate": lambda v: fmt_pct(v, 2),
    "error_rate_change": fmt_pp,
    "mean_ms": fmt_ms,
    "mean_ms_change": fmt_rel,
}


@guarded("Endpoints")
def show_endpoints(endpoints: pd.DataFrame, month: str, *, top: int = 30) -> bool:
    """Per endpoint: volume, error rate, mean latency and the change, worst first
    (`endpoints`: `review.endpoints`); True when an endpoint had traffic this month."""
    if not need(endpoints, "Endpoints"):
        return False
    current = endpoints[endpoints["requests"] > 0]
    if current.empty:
        unavailable("Endpoints", f"no request counted in {month}", record=False)
        return False
    worst = current.iloc[0]
    show_text(
        f"Worst endpoint: {worst['endpoint']} ({fmt_int(worst['errors'])} errors of "
        f"{fmt_int(worst['requests'])} requests, {fmt_pct(worst['error_rate'], 2)}; mean "
        f"{fmt_ms(worst['mean_ms'])}). Worst first: most errors, then the largest "
        "mean-latency increase, then volume."
    )
    show_table(
        endpoints,
        "Endpoints, worst first",
        ENDPOINT_FORMATS,
        columns=ENDPOINT_COLUMNS,
        max_rows=top,
    )
    gone = endpoints[(endpoints["requests"] == 0) & (endpoints["prev_requests"].fillna(0) > 0)]
    if not gone.empty:
        show_text(
            "Seen last month, no traffic this month: " + ", ".join(str(e) for e in gone["endpoint"])
        )
    return True


# --- incidents --------------------------------------------------------------------------------

INCIDENT_COLUMNS = {
    "start": "start",
    "end": "end",
    "duration_s": "duration",
    "kind": "kind",
    "severity": "severity",
    "endpoint": "endpoint",
    "detail": "detail",
}


# an incident kind counted in words: (singular, plural); "2 restarts, 1 cache fall"
KIND_NOUNS = {
    "no_answer": ("no-answer period", None),
    "health_error": ("health error", None),
    "health_degraded": ("degraded-health period", None),
    "error_rate": ("error-rate breach", "error-rate breaches"),
    "latency": ("latency breach", "latency breaches"),
    "restart": ("restart", None),
    "cache_fall": ("cache fall", None),
    "memory_climb": ("memory climb", None),
    "log_burst": ("log burst", None),
    "pm2_restart": ("pm2 restart", None),
}


@guarded("Incidents")
def show_incidents(incidents: pd.DataFrame, review: Any = None) -> None:
    """Incidents of the month with start, end, duration and their postmortem command
    (`incidents`: `review.incidents`). With `review`, a month without any observation says
    that its incidents are unknown (nothing was watched), never that there was none."""
    if not need(incidents, "Incidents"):
        return
    if incidents.empty and review is not None and not review.has_data:
        show_html(
            box_html(
                "Incidents: unknown",
                f"no observation was collected in {review.month}: no incident could be found",
                kind="unavailable",
            )
        )
        return
    if incidents.empty:
        show_html(box_html("No incident found in the history of this month", "", kind="good"))
        return
    by_kind = incidents["kind"].value_counts()
    show_text(
        f"{fmt.counted(len(incidents), 'incident')}: "
        + ", ".join(
            fmt.counted(n, *KIND_NOUNS.get(str(k), (str(k).replace("_", " "), None)))
            for k, n in by_kind.items()
        )
    )
    show_table(
        incidents,
        "Incidents",
        {"duration_s": fmt_duration, "endpoint": lambda v: DASH if _missing(v) else str(v)},
        columns=INCIDENT_COLUMNS,
        max_rows=100,
    )
    commands = "\n".join(str(c) for c in incidents["postmortem_command"] if c)
    show_html(
        "<p><strong>Write a postmortem</strong> (one command per incident):</p>"
        f"<pre>{esc(commands)}</pre>"
    )


# --- data quality -----------------------------------------------------------------------------


@guarded("Data quality")
def show_data_quality(quality: dict[str, Any], source: StoreSource) -> None:
    """Coverage, gaps, resets and exclusions (`quality`: `review.data_quality`)."""
    if not need(quality, "Data quality"):
        return
    dq = quality
    started = dq.get("started", True)  # a month still to come: nothing to cover yet
    rows = [
        ("Source", source.describe()),
        ("Health observations in the month", fmt_int(dq["observations"])),
        ("  without an answer", fmt_int(dq["no_answer"])),
        ("Scrape interval (median)", fmt_duration(dq["interval_s"])),
        ("Coverage of the month", fmt_pct(dq["coverage"]) if started else "not started"),
        (
            "Time in collection gaps (not counted as uptime)",
            fmt_hours(dq["gap_s"]) if started else "not started",
        ),
        ("First / last observation", f"{fmt_ts(dq['first'])} / {fmt_ts(dq['last'])}"),
        ("Counter resets and restarts", fmt_int(len(dq["resets"]))),
        ("Server percentiles out of order", fmt_pct(dq["percentiles_disordered_share"])),
    ]
    show_html(facts_html(rows))
    show_table(
        dq["gaps"],
        "Collection gaps",
        {"duration_s": fmt_duration},
        columns={"start": "from", "end": "to", "duration_s": "duration"},
        empty="no gap in collection" if started else "the month has not started",
    )
    show_table(
        dq["resets"],
        "Resets and restarts (interval figures across them are lower bounds)",
        columns={"ts": "when", "kind": "kind", "target": "target"},
        empty="no reset or restart",
    )
    if dq.get("excluded_reason"):
        show_text(f"Excluded: {dq['excluded_reason']}.")
    show_table(
        dq["excluded"],
        "Excluded endpoints",
        columns={"endpoint": "endpoint", "requests": "requests", "errors": "errors"},
        empty="nothing excluded",
    )
