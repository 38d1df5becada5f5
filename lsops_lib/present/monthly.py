"""The monthly performance review: what its notebook shows, section by section.

Figures and rules come from `analysis.monthly_review` (the `MonthlyReview` bundle) and
`analysis.changes` (month over month); the charts are `plots.review`; this module words
and tables them, and builds the key figures from `review.summary()`. A section's `show_*`
takes the bundle's frame, shows the verdict and the table, and returns True when there is
something to chart (else it has shown an "unavailable" box), so that a cell reads:

    daily = review.daily
    if present.monthly.show_daily_trends(daily):
        plots.daily_trends(daily, settings.thresholds)

The sections of the review's second half (latency, daily trends, memory, endpoints,
incidents, data quality) live in `monthly_sections.py`, re-exported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import fmt, plots
from ..analysis.changes import notable_changes
from ..config import Settings, Thresholds
from ..times import EARLIEST, parse_month, previous_month, utcnow
from .database import DatabaseOverview
from .display import (
    DASH,
    _default_format,
    _missing,
    badge_html,
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
    show_notes,
    show_table,
    show_text,
    status_label,
    unavailable,
)
from .monthly_sections import (
    DAY_COLUMNS,
    DAY_FORMATS,
    ENDPOINT_COLUMNS,
    ENDPOINT_FORMATS,
    INCIDENT_COLUMNS,
    NotComputed,
    need,
    show_daily_trends,
    show_data_quality,
    show_endpoints,
    show_incidents,
    show_latency,
    show_memory,
)
from .source import StoreSource, month_title

__all__ = [
    "DAY_COLUMNS",
    "DAY_FORMATS",
    "ENDPOINT_COLUMNS",
    "ENDPOINT_FORMATS",
    "INCIDENT_COLUMNS",
    "NotComputed",
    "budget_frame",
    "changes_frame",
    "load_review",
    "main_changes",
    "month_window",
    "review_figures",
    "show_changes",
    "show_daily_trends",
    "show_data_quality",
    "show_endpoints",
    "show_incidents",
    "show_latency",
    "show_memory",
    "show_review_header",
    "show_summary",
    "targets_frame",
]


def load_review(
    source: StoreSource,
    month: str,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> Any:
    """`analysis.monthly_review(...)`; when it cannot be computed, an "unavailable" box and
    a `NotComputed` stand-in (falsy, every attribute None) on which every section shows
    that the figures are missing. Under `lsops report`, the runner may have computed the
    very same review while this kernel started (`lsops_lib.preload`): that one is taken."""
    from .. import preload
    from ..analysis import monthly_review
    from ..reports.parameters import check_parameter

    # as `lsops report` checks it: "false" (papermill -p, Airflow) is False, "maybe" an error
    include_monitoring = bool(
        check_parameter("monthly-review", "include_monitoring", include_monitoring)
    )
    try:
        if os.environ.get(preload.ENV):  # under `lsops report`: computed beside the kernel?
            key = preload.review_key(
                source.store.url, month, target, include_monitoring, thresholds
            )
            ready = preload.take("monthly_review", key)
            if ready is not None:
                return ready
        return monthly_review(
            source.store,
            month,
            thresholds,
            target=target,
            include_monitoring=include_monitoring,
        )
    except Exception as exc:  # noqa: BLE001
        reason = f"the figures could not be computed: {type(exc).__name__}: {exc}"
        unavailable("Monthly review", reason)
        return NotComputed(month, reason)


# --- summary: the runbook's targets and the error budgets ---------------------------------------

_TARGET_FORMAT = {
    "availability": fmt_pct,
    "error_rate": lambda v: fmt_pct(v, 2),
    "latency": fmt_pct,
    "cache_hit_rate": fmt_pct,
    "memory": lambda v: f"{fmt_pct(v, 0)} of the limit" if not _missing(v) else DASH,
}
_TARGET_NAMES = {
    "availability": "Availability",
    "error_rate": "Error rate",
    "latency": "Latency (time slices)",
    "cache_hit_rate": "Cache hit rate",
    "memory": "Memory",
}


def targets_frame(review: Any) -> pd.DataFrame:
    """The runbook's targets as text: target, runbook target, figure, verdict, detail."""
    rows = []
    for r in review.targets.to_dict("records"):
        rows.append(
            {
                "target": _TARGET_NAMES.get(r["key"], r["key"]),
                "runbook target": r["target"],
                "figure this month": _TARGET_FORMAT.get(r["key"], _default_format)(r["figure"]),
                "verdict": status_label(r["met"]),
                "detail": _separate_thousands(r["detail"]),
            }
        )
    return pd.DataFrame(rows)


_BARE_COUNT = re.compile(r"(?<![\w.,:/+-])(\d{4,})(?= [A-Za-z])")


def _separate_thousands(text: Any) -> Any:
    """'9125 errors of 1040608 requests' -> '9,125 errors of 1,040,608 requests' (a count
    followed by a word; years like 2026 are left alone)."""
    if not isinstance(text, str):
        return text
    return _BARE_COUNT.sub(lambda m: m[1] if 1900 <= int(m[1]) <= 2100 else f"{int(m[1]):,}", text)


def _budget_row(name: str, budget: Mapping[str, Any], unit: str) -> dict[str, Any]:
    return {
        "SLO": name,
        "objective": fmt.exact_pct(budget["slo"]),
        "events": f"{fmt_int(budget['total'])} {unit}",
        "bad events": fmt_num(budget["bad"], 6),
        "allowed bad events": fmt_num(budget["budget_events"], 4),
        "budget spent": fmt_pct(budget["spent_share"], 0),
        "budget left": fmt_pct(budget["left_share"], 0),
        "burn rate": DASH if _missing(budget["burn_rate"]) else f"{budget['burn_rate']:.2f}x",
        "budget (time)": fmt_hours(budget.get("budget_s")),
        "spent (time)": fmt_hours(budget.get("spent_s")),
    }


COVERED = 0.99  # collection covering less of the month: the time figures are a projection


def _elapsed_s(review: Any) -> float | None:
    """The seconds of a month in progress that had passed when its review was computed
    (the period of its budgets' time figures); None for a month that is over or has not
    started (its budgets are the whole month's)."""
    elapsed = (review.data_quality or {}).get("elapsed_s")
    if _missing(elapsed) or not 0 < elapsed < (review.end - review.start).total_seconds():
        return None
    return float(elapsed)


def _in_progress(review: Any) -> str:
    """The caveat of the budgets' time figures of a month in progress: they are over the
    part of the month that has passed, not the whole month."""
    elapsed = _elapsed_s(review)
    if elapsed is None:
        return ""
    return (
        f" {month_title(review.month)} is in progress: the time figures (budget, spent) are "
        f"over the {fmt_duration(elapsed)} passed until "
        f"{fmt_ts(review.start + timedelta(seconds=elapsed))}, not the whole month."
    )


def _partial_month(review: Any) -> str:
    """The caveat of the budgets' time figures when collection covered part of the month:
    they are the month's budget and the observed error ratio over the WHOLE month (a
    projection), not time observed down; over the part passed of a month in progress."""
    coverage = (review.data_quality or {}).get("coverage")
    if _missing(coverage) or coverage >= COVERED:
        return ""
    if _elapsed_s(review) is not None:
        return (
            f" Collection covered {fmt_pct(coverage, 0)} of the month so far: the time figures "
            "(budget, spent) project the observed error ratio over the part of the month "
            "passed; the event counts are what was observed."
        )
    return (
        f" Collection covered {fmt_pct(coverage, 0)} of the month: the time figures (budget, "
        "spent) project the observed error ratio over the whole month; the event counts are "
        "what was observed."
    )


def budget_frame(review: Any) -> pd.DataFrame:
    """Error budgets of the three objectives, formatted (the time columns marked as a
    projection when collection covered part of the month, and as the time so far of a
    month in progress)."""
    frame = pd.DataFrame(
        [
            _budget_row("availability (health OK)", review.error_budget, "observations"),
            _budget_row("requests without error", review.request_budget, "requests"),
            _budget_row("latency (time slices)", review.latency_budget, "slices"),
        ]
    )
    so_far = ", so far" if _in_progress(review) else ""
    spent = "projected" if _partial_month(review) else ""
    if so_far or spent:
        frame = frame.rename(
            columns={
                "budget (time)": f"budget (time{so_far})",
                "spent (time)": f"spent (time{', ' + spent if spent else ''}{so_far})",
            }
        )
    return frame


@guarded("Summary")
def show_summary(review: Any, source: StoreSource) -> None:
    """The headline: data or not, each target met/missed, the error budgets, the notes."""
    if not need(review, "Summary"):
        return
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    if not review.has_data:
        unavailable(
            "Data",
            f"no observation was collected in {review.month} ({source.describe()}). Every "
            "figure below is unknown rather than zero; run 'lsops collect --every 5m' to "
            "build a history.",
        )
    t = review.targets
    known = t[t["met"].map(lambda v: v is not None and not _missing(v))]
    missed = [
        _TARGET_NAMES.get(k, k) for k, m in zip(t["key"], t["met"], strict=True) if m is False
    ]
    headline = (
        f"{int(known['met'].astype(bool).sum())} of {len(t)} runbook targets met in "
        f"{month_title(review.month)}"
    )
    if known.empty:
        headline = f"No runbook target could be judged for {month_title(review.month)}: no data"
    elif len(known) < len(t):
        headline += f" ({len(t) - len(known)} unknown)"
    if missed:
        headline += "; missed: " + ", ".join(missed)
    items = "".join(
        f"<li>{badge_html(r['met'])} <strong>{esc(_TARGET_NAMES.get(r['key'], r['key']))}"
        f"</strong>: {esc(_TARGET_FORMAT.get(r['key'], _default_format)(r['figure']))} "
        f"(target: {esc(r['target'])})</li>"
        for r in t.to_dict("records")
    )
    show_html(f"<h3>{esc(headline)}</h3><ul>{items}</ul>")
    show_table(targets_frame(review), "Runbook targets")
    b = review.error_budget
    if not _missing(b["spent_share"]):
        verdict = (
            f"overspent by {fmt_pct(-b['left_share'], 0)}"
            if b["left_share"] < 0
            else f"{fmt_pct(b['left_share'], 0)} left"
        )
        show_text(
            f"Error budget of the availability SLO ({fmt.exact_pct(b['slo'])} of health "
            f"observations OK): {fmt_pct(b['spent_share'], 0)} spent, {verdict} "
            f"({fmt_num(b['bad'], 6)} bad of {fmt_int(b['total'])} observations; "
            f"budget {fmt_num(b['budget_events'], 3)} observations, about "
            f"{fmt_hours(b['budget_s'])} of the month{' so far' if _in_progress(review) else ''}; "
            f"burn rate {b['burn_rate']:.2f}x)." + _in_progress(review) + _partial_month(review)
        )
    show_table(
        budget_frame(review),
        "Error budgets (budget = (1 - SLO) x period; burn rate = observed error ratio / (1 - SLO))",
    )
    show_notes([_separate_thousands(n) for n in review.notes], title="Notes")


# --- against the previous month -------------------------------------------------------------------

NO_DATA = "no data"
# metric -> its name in the table and the format of its figures
_CHANGE_NAMES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "requests": ("Requests", fmt_int),
    "requests_per_day": ("Requests per covered day", lambda v: fmt_num(v, 5)),
    "coverage": ("Coverage of the month by the collector", fmt_pct),
    "errors": ("Errors", fmt_int),
    "error_rate": ("Error rate", lambda v: fmt_pct(v, 2)),
    "mean_ms": ("Mean latency (counter deltas)", fmt_ms),
    "availability": ("Availability", lambda v: fmt_pct(v, 2)),
    "latency_share": ("Slices whose reported p95 met the target", fmt_pct),
    "cache_hit_ratio": ("Cache hit rate", fmt_pct),
}


def changes_frame(review: Any, changes: pd.DataFrame | None = None) -> pd.DataFrame:
    """`changes` (default: `review.changes`) as text: figure, this month, the previous
    one ("no data" for a month without any observation), the change (relative or in
    percentage points, as `analysis.changes.RULES` measures it)."""
    changes = review.changes if changes is None else changes
    known = {review.month: review.has_data, review.previous_month: review.previous_has_data}
    rows = []
    for r in changes.to_dict("records"):
        name, fmt = _CHANGE_NAMES.get(r["metric"], (r["metric"], _default_format))
        row = {"figure": name}
        for month, column in ((review.month, "current"), (review.previous_month, "previous")):
            row[month] = fmt(r[column]) if known[month] else NO_DATA
        row["change"] = (fmt_rel if r["measure"] == "relative" else fmt_pp)(r["moved"])
        rows.append(row)
    return pd.DataFrame(rows)


_RATE_NAMES = {
    "error_rate": "error rate",
    "availability": "availability",
    "cache_hit_ratio": "cache hit rate",
}


def main_changes(review: Any, *, limit: int = 5) -> list[str]:
    """The notable changes against the previous month (`analysis.changes.notable_changes`,
    thresholds `Thresholds.notable_*`), in words."""
    if parse_month(review.month)[0] <= EARLIEST:
        return [f"{review.month} is the earliest month lsops handles: nothing to compare with"]
    if not review.previous_has_data:
        return [f"no data for {review.previous_month}: nothing to compare with"]
    if not review.has_data:
        return [f"no data for {review.month}: nothing to compare with {review.previous_month}"]
    requests = review.changes.set_index("metric").loc["requests", "current"]
    out: list[str] = []
    for f in notable_changes(review.changes, review.endpoints, review.thresholds):
        if f["kind"] == "metric" and f["metric"] == "requests_per_day":
            out.append(
                f"traffic per covered day {fmt_rel(f['moved'])} "
                f"({fmt_int(requests)} requests in the month)"
            )
        elif f["kind"] == "metric" and f["metric"] == "mean_ms":
            out.append(
                f"mean latency {fmt_rel(f['moved'])} "
                f"({fmt_ms(f['previous'])} -> {fmt_ms(f['current'])})"
            )
        elif f["kind"] == "metric":
            out.append(
                f"{_RATE_NAMES.get(f['metric'], f['metric'])} {fmt_pp(f['moved'])} "
                f"({fmt_pct(f['previous'], 2)} -> {fmt_pct(f['current'], 2)})"
            )
        elif f["kind"] == "endpoint_error_rate":
            out.append(
                f"{f['endpoint']}: error rate {fmt_pp(f['moved'])} ({fmt_pct(f['current'], 2)})"
            )
        elif f["kind"] == "endpoint_latency":
            out.append(
                f"{f['endpoint']}: mean latency {fmt_rel(f['moved'])} "
                f"({fmt_ms(f['previous'])} -> {fmt_ms(f['current'])})"
            )
        elif f["kind"] == "new_endpoints":
            out.append("new endpoints: " + ", ".join(f["endpoints"]))
    return out[:limit] or ["no notable change against the previous month"]


@guarded("Against the previous month")
def show_changes(changes: pd.DataFrame, review: Any) -> None:
    """The month-over-month table of `changes` (a month without data: "no data") and the
    main changes in words."""
    if not need(changes, "Against the previous month"):
        return
    show_table(
        changes_frame(review, changes), f"Against the previous month ({review.previous_month})"
    )
    show_notes(main_changes(review), title="Main changes")


# --- key figures ----------------------------------------------------------------------------------


def review_figures(review: Any, source: StoreSource, db: DatabaseOverview | None) -> dict[str, Any]:
    """The monthly review's key figures: `review.summary()`, plus what only the report
    knows (where the data came from, the database section); the problems are added by
    `present.key_figures`."""
    if not review:
        return {"report": "monthly-review", "computed": False, "store": source.describe()}
    return {
        "report": "monthly-review",
        "computed": True,
        **review.summary(),
        "store": {"available": source.available, "problem": source.problem},
        "database": db.figures() if db is not None else None,
    }


# --- kept for present.postmortem (until it draws with plots.memory_usage itself) -----------------

_need = need


def _plot_memory(ax: Any, memory: Any, thresholds: Thresholds, title: str) -> None:
    plots.memory_usage(
        memory.frame,
        thresholds,
        restarts=memory.restarts,
        climbs=memory.leak_segments,
        title=title,
        ax=ax,
    )


# --- header ---------------------------------------------------------------------------------------


def month_window(month: str) -> tuple[datetime, datetime]:
    return parse_month(month)


def _compared_with(month: str) -> str:
    """The previous month's title; none for the earliest month lsops handles."""
    start, _ = parse_month(month)
    if start <= EARLIEST:
        return "none (the earliest month lsops handles)"
    return month_title(previous_month(month))


@guarded("Header")
def show_review_header(
    month: str, source: StoreSource, settings: Settings, *, target: str | None = None
) -> None:
    start, end = parse_month(month)
    th = settings.thresholds
    rows = [
        ("Month", f"{month_title(month)}: {fmt_ts(start)} to {fmt_ts(end)} (end exclusive)"),
        ("Compared with", _compared_with(month)),
        ("API target", target or "every target in the store"),
        ("Data", source.describe()),
        (
            "Runbook targets",
            f"availability >= {fmt.exact_pct(th.availability_slo)} of health checks OK; error rate < "
            f"{fmt.exact_pct(th.error_rate)}; reported p95 < {th.latency_p95_ms:g} ms in >= "
            f"{fmt.exact_pct(th.latency_slo)} of time slices; cache hit rate > "
            f"{fmt.exact_pct(th.cache_hit_rate)}; "
            + (
                f"memory < {fmt.exact_pct(th.memory_fraction)} of "
                f"{fmt_bytes(th.memory_limit_bytes)}, no leak"
                if th.memory_limit_bytes > 0
                else "no memory leak (no memory limit set)"
            ),
        ),
        ("Generated", fmt_ts(utcnow())),
    ]
    show_html(f"<h2>{esc(month_title(month))}</h2>" + facts_html(rows))
