"""The monthly performance review, section by section."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from .. import plots
from ..config import Settings, Thresholds
from ..times import parse_month, previous_month, utcnow
from .database import DatabaseOverview, _month_axis
from .display import (
    DASH,
    _default_format,
    _missing,
    badge_html,
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
    show_notes,
    show_table,
    show_text,
    status_label,
    unavailable,
)
from .source import StoreSource, month_title

# --- the monthly review -----------------------------------------------------------------------


def load_review(
    source: StoreSource,
    month: str,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> Any:
    """`monthly_review(...)`, or None with an "unavailable" box when it cannot be computed."""
    from ..analysis import monthly_review

    try:
        return monthly_review(
            source.store,
            month,
            thresholds,
            target=target,
            include_monitoring=bool(include_monitoring),
        )
    except Exception as exc:  # noqa: BLE001
        unavailable(
            "Monthly review", f"the figures could not be computed: {type(exc).__name__}: {exc}"
        )
        return None


def _need(bundle: Any, section: str) -> bool:
    if bundle is None:
        unavailable(section, "the figures could not be computed (see above)", record=False)
        return False
    return True


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
        "objective": fmt_pct(budget["slo"], 2 if budget["slo"] > 0.99 else 1),
        "events": f"{fmt_int(budget['total'])} {unit}",
        "bad events": fmt_num(budget["bad"], 6),
        "allowed bad events": fmt_num(budget["budget_events"], 4),
        "budget spent": fmt_pct(budget["spent_share"], 0),
        "budget left": fmt_pct(budget["left_share"], 0),
        "burn rate": DASH if _missing(budget["burn_rate"]) else f"{budget['burn_rate']:.2f}x",
        "budget (time)": fmt_hours(budget.get("budget_s")),
        "spent (time)": fmt_hours(budget.get("spent_s")),
    }


def budget_frame(review: Any) -> pd.DataFrame:
    """Error budgets of the three objectives, formatted."""
    return pd.DataFrame(
        [
            _budget_row("availability (health OK)", review.error_budget, "observations"),
            _budget_row("requests without error", review.request_budget, "requests"),
            _budget_row("latency (time slices)", review.latency_budget, "slices"),
        ]
    )


_CHANGE_FORMAT: dict[str, tuple[str, Callable[[Any], str], Callable[[Any], str]]] = {
    "requests": ("Requests", fmt_int, fmt_rel),
    "requests_per_day": ("Requests per covered day", lambda v: fmt_num(v, 5), fmt_rel),
    "coverage": ("Coverage of the month by the collector", fmt_pct, fmt_pp),
    "errors": ("Errors", fmt_int, fmt_rel),
    "error_rate": ("Error rate", lambda v: fmt_pct(v, 2), fmt_pp),
    "mean_ms": ("Mean latency (counter deltas)", fmt_ms, fmt_rel),
    "availability": ("Availability", lambda v: fmt_pct(v, 2), fmt_pp),
    "latency_share": ("Slices whose reported p95 met the target", fmt_pct, fmt_pp),
    "cache_hit_ratio": ("Cache hit rate", fmt_pct, fmt_pp),
}


_RELATIVE = {"requests", "requests_per_day", "errors", "mean_ms"}


def changes_frame(review: Any) -> pd.DataFrame:
    rows = []
    for r in review.changes.to_dict("records"):
        name, fmt, fmt_change = _CHANGE_FORMAT.get(
            r["metric"], (r["metric"], _default_format, fmt_rel)
        )
        relative = r["metric"] in _RELATIVE or r["metric"] not in _CHANGE_FORMAT
        rows.append(
            {
                "figure": name,
                review.month: fmt(r["current"]),
                review.previous_month: fmt(r["previous"]),
                "change": fmt_change(r["relative_change"] if relative else r["change"]),
            }
        )
    return pd.DataFrame(rows)


def main_changes(review: Any, *, limit: int = 5) -> list[str]:
    """Sentences on what moved most against the previous month."""
    if review.previous_totals.get("requests", 0) == 0 and (
        _missing(review.previous_totals.get("availability"))
    ):
        return [f"no data for {review.previous_month}: nothing to compare with"]
    out: list[str] = []
    ch = review.changes.set_index("metric")
    volume = "requests_per_day" if "requests_per_day" in ch.index else "requests"
    if volume in ch.index and not _missing(ch.loc[volume, "relative_change"]):
        per = " per covered day" if volume == "requests_per_day" else ""
        out.append(
            f"traffic{per} {fmt_rel(ch.loc[volume, 'relative_change'])} "
            f"({fmt_int(ch.loc['requests', 'current'])} requests in the month)"
        )
    for metric, label in (
        ("error_rate", "error rate"),
        ("availability", "availability"),
        ("cache_hit_ratio", "cache hit rate"),
    ):
        if (
            metric in ch.index
            and not _missing(ch.loc[metric, "change"])
            and abs(ch.loc[metric, "change"]) >= 0.001
        ):
            out.append(
                f"{label} {fmt_pp(ch.loc[metric, 'change'])} ({fmt_pct(ch.loc[metric, 'previous'], 2)} -> {fmt_pct(ch.loc[metric, 'current'], 2)})"
            )
    if (
        "mean_ms" in ch.index
        and not _missing(ch.loc["mean_ms", "relative_change"])
        and abs(ch.loc["mean_ms", "relative_change"]) >= 0.05
    ):
        out.append(
            f"mean latency {fmt_rel(ch.loc['mean_ms', 'relative_change'])} ({fmt_ms(ch.loc['mean_ms', 'previous'])} -> {fmt_ms(ch.loc['mean_ms', 'current'])})"
        )
    eps = review.endpoints
    if not eps.empty:
        worse = eps[(eps["error_rate_change"] > 0.005) & (eps["requests"] > 0)].sort_values(
            "error_rate_change", ascending=False
        )
        for r in worse.head(2).to_dict("records"):
            out.append(
                f"{r['endpoint']}: error rate {fmt_pp(r['error_rate_change'])} ({fmt_pct(r['error_rate'], 2)})"
            )
        slower = eps[(eps["mean_ms_change"] > 0.2) & (eps["requests"] > 0)].sort_values(
            "mean_ms_change", ascending=False
        )
        for r in slower.head(2).to_dict("records"):
            out.append(
                f"{r['endpoint']}: mean latency {fmt_rel(r['mean_ms_change'])} ({fmt_ms(r['prev_mean_ms'])} -> {fmt_ms(r['mean_ms'])})"
            )
        new = eps[eps["new"] & (eps["requests"] > 0)]
        if not new.empty:
            out.append("new endpoints: " + ", ".join(str(e) for e in new["endpoint"].head(5)))
    return out[:limit] or ["no notable change against the previous month"]


@guarded("Summary")
def show_summary(review: Any, source: StoreSource) -> None:
    """The headline: data or not, each target met/missed, error budgets, main changes."""
    if not _need(review, "Summary"):
        return
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    if not review.has_data:
        where = source.describe()
        unavailable(
            "Data",
            f"no observation was collected in {review.month} ({where}). Every figure below "
            "is unknown rather than zero; run 'lsops collect --every 5m' to build a history.",
        )
    t = review.targets
    known = t[t["met"].map(lambda v: v is not None and not _missing(v))]
    met = int(known["met"].astype(bool).sum())
    missed = [
        _TARGET_NAMES.get(k, k) for k, m in zip(t["key"], t["met"], strict=True) if m is False
    ]
    headline = f"{met} of {len(t)} runbook targets met in {month_title(review.month)}"
    if known.empty:
        headline = f"No runbook target could be judged for {month_title(review.month)}: no data"
    elif len(known) < len(t):
        headline += f" ({len(t) - len(known)} unknown)"
    if missed:
        headline += "; missed: " + ", ".join(missed)
    parts = [f"<h3>{esc(headline)}</h3>", "<ul>"]
    for r in t.to_dict("records"):
        figure = _TARGET_FORMAT.get(r["key"], _default_format)(r["figure"])
        parts.append(
            f"<li>{badge_html(r['met'])} <strong>{esc(_TARGET_NAMES.get(r['key'], r['key']))}</strong>: "
            f"{esc(figure)} (target: {esc(r['target'])})</li>"
        )
    parts.append("</ul>")
    show_html("".join(parts))
    show_table(targets_frame(review), "Runbook targets")
    b = review.error_budget
    if not _missing(b["spent_share"]):
        verdict = (
            f"overspent by {fmt_pct(-b['left_share'], 0)}"
            if b["left_share"] < 0
            else f"{fmt_pct(b['left_share'], 0)} left"
        )
        show_text(
            f"Error budget of the availability SLO ({fmt_pct(b['slo'], 1)} of health observations OK): "
            f"{fmt_pct(b['spent_share'], 0)} spent, {verdict} "
            f"({fmt_num(b['bad'], 6)} bad of {fmt_int(b['total'])} observations; "
            f"budget {fmt_num(b['budget_events'], 3)} observations, about {fmt_hours(b['budget_s'])} of the month; "
            f"burn rate {b['burn_rate']:.2f}x)."
        )
    show_table(
        budget_frame(review),
        "Error budgets (budget = (1 - SLO) x period; burn rate = observed error ratio / (1 - SLO))",
    )
    show_table(changes_frame(review), f"Against the previous month ({review.previous_month})")
    show_notes(main_changes(review), title="Main changes")
    show_notes(review.notes, title="Notes")


def _daily_bars(
    ax: Any,
    review: Any,
    column: str,
    title: str,
    *,
    target: float | None = None,
    target_label: str | None = None,
    ylabel: str | None = None,
    formatter: Callable[[Any], None] | None = None,
    missed: Callable[[float], bool] | None = None,
) -> None:
    """One bar per UTC day that has observations (days without data stay empty, shaded);
    days where `missed(value)` are drawn in the "bad" colour."""
    daily = review.daily
    seen = daily[(daily["observations"] > 0) & daily[column].notna()]
    days = pd.to_datetime(seen["day"], utc=True)
    values = seen[column].astype(float)
    colors = [plots.BAD if missed is not None and missed(v) else plots.COLORS[0] for v in values]
    ax.bar(days, values, width=0.85, align="edge", color=colors)
    empty_days = pd.to_datetime(daily.loc[daily["observations"] == 0, "day"], utc=True)
    for i, day in enumerate(empty_days):
        ax.axvspan(
            day,
            day + pd.Timedelta(days=1),
            color="#9e9e9e",
            alpha=0.12,
            label="no data" if i == 0 else None,
            linewidth=0,
        )
    plots.target_line(ax, target, target_label)
    if formatter is not None:
        formatter(ax)
    plots.utc_axis(ax, "day (UTC)")
    ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    _month_axis(ax, review)
    handles, labels = ax.get_legend_handles_labels()
    if labels:  # above the bars, right of the title: never over a bar or the target line
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=3)


@guarded("Latency")
def show_latency(review: Any) -> None:
    """The latency SLO as time slices (labelled), the percentile sanity, mean latency."""
    if not _need(review, "Latency"):
        return
    import matplotlib.pyplot as plt

    from ..analysis import TIMESLICE_LABEL

    lat = review.latency
    pct = lat.get("percentiles") or {}
    th = review.thresholds
    label = TIMESLICE_LABEL.format(threshold=th.latency_p95_ms)
    rows = [
        (
            f"Share of time slices whose reported p95 met {th.latency_p95_ms:g} ms",
            fmt_pct(lat["share"]),
        ),
        (
            "Time slices (scrapes with a p95)",
            f"{fmt_int(lat['met'])} met of {fmt_int(lat['slices'])}",
        ),
        ("Objective", f"at least {fmt_pct(th.latency_slo, 0)} of slices"),
        ("Mean latency from counter deltas (all requests, weighted)", fmt_ms(lat.get("mean_ms"))),
        (
            "Server percentiles out of order (p50 > p95 or p95 > p99)",
            f"{fmt_int(pct.get('disordered'))} of {fmt_int(pct.get('snapshots'))} snapshots "
            f"({fmt_pct(pct.get('disordered_share'))})",
        ),
        ("  of which p50 > p95", fmt_int(pct.get("p50_gt_p95"))),
        ("  of which p95 > p99", fmt_int(pct.get("p95_gt_p99"))),
    ]
    show_html(facts_html(rows) + f"<p><em>Label: {esc(label)}.</em></p>")
    if not _missing(pct.get("disordered_share")) and pct.get("disordered"):
        show_text(
            "The server's percentiles are not trustworthy (reference quirk 1): no monthly p95 is "
            "given; the SLO counts slices, and mean latency comes from the counters."
        )
    daily = review.daily
    if daily["latency_slices"].sum() == 0:
        unavailable("Latency chart", "no p95 reported in this month", record=False)
        return
    days_met = int((daily["latency_met_share"] >= th.latency_slo).sum())
    days = int(daily["latency_met_share"].notna().sum())
    with plots.style():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(plots.WIDTH_IN, 6), sharex=True)
        _daily_bars(
            ax1,
            review,
            "latency_met_share",
            f"Reported p95 met {th.latency_p95_ms:g} ms in at least {fmt_pct(th.latency_slo, 0)} "
            f"of time slices on {days_met} of {days} days",
            target=th.latency_slo,
            target_label=f"objective {fmt_pct(th.latency_slo, 0)}",
            ylabel="share of slices\nwith p95 met",
            formatter=plots.pct_axis,
            missed=lambda v: v < th.latency_slo,
        )
        _daily_bars(
            ax2,
            review,
            "mean_ms",
            f"Mean latency from counter deltas: {fmt_ms(lat.get('mean_ms'))} over the month",
            ylabel="mean latency",
            formatter=plots.ms_axis,
        )
        plots.settle_date_ticks(fig)
        plt.show()


@guarded("Daily trends")
def show_daily_trends(review: Any) -> None:
    """Requests, error rate, mean latency and cache hit rate per day."""
    if not _need(review, "Daily trends"):
        return
    import matplotlib.pyplot as plt

    daily = review.daily
    th = review.thresholds
    if daily["requests"].sum() == 0 and daily["observations"].sum() == 0:
        unavailable(
            "Daily trends", f"no traffic and no observation in {review.month}", record=False
        )
        return
    with plots.style():
        fig, axes = plt.subplots(4, 1, figsize=(plots.WIDTH_IN, 11), sharex=True)
        busiest = daily.loc[daily["requests"].idxmax()]
        _daily_bars(
            axes[0],
            review,
            "requests",
            f"{fmt_int(daily['requests'].sum())} requests; busiest day "
            f"{busiest['day']:%Y-%m-%d} ({fmt_int(busiest['requests'])})",
            ylabel="requests / day",
            formatter=plots.count_axis,
        )
        with_traffic = daily[daily["requests"] > 0]
        over = int((with_traffic["error_rate"] >= th.error_rate).sum())
        _daily_bars(
            axes[1],
            review,
            "error_rate",
            f"Error rate at or above {fmt_pct(th.error_rate, 0)} on {over} of "
            f"{len(with_traffic)} days with traffic",
            target=th.error_rate,
            target_label=f"target < {fmt_pct(th.error_rate, 0)}",
            ylabel="error rate",
            formatter=lambda ax: plots.pct_axis(ax, digits=1),
            missed=lambda v: v >= th.error_rate,
        )
        slowest = (
            with_traffic.loc[with_traffic["mean_ms"].idxmax()] if not with_traffic.empty else None
        )
        _daily_bars(
            axes[2],
            review,
            "mean_ms",
            "Mean latency per day (counter deltas)"
            + (
                f"; slowest {slowest['day']:%Y-%m-%d} at {fmt_ms(slowest['mean_ms'])}"
                if slowest is not None
                else ""
            ),
            ylabel="mean latency",
            formatter=plots.ms_axis,
        )
        with_cache = daily[daily["cache_hit_ratio"].notna()]
        under = int((with_cache["cache_hit_ratio"] <= th.cache_hit_rate).sum())
        _daily_bars(
            axes[3],
            review,
            "cache_hit_ratio",
            f"Cache hit rate at or below {fmt_pct(th.cache_hit_rate, 0)} on {under} of "
            f"{len(with_cache)} days",
            target=th.cache_hit_rate,
            target_label=f"target > {fmt_pct(th.cache_hit_rate, 0)}",
            ylabel="cache hit rate",
            formatter=plots.pct_axis,
            missed=lambda v: v <= th.cache_hit_rate,
        )
        plots.settle_date_ticks(fig)
        plt.show()
    table = daily[daily["observations"] > 0]
    show_table(
        table,
        "Per day",
        {
            "day": lambda v: f"{pd.Timestamp(v):%Y-%m-%d}",
            "error_rate": lambda v: fmt_pct(v, 2),
            "mean_ms": fmt_ms,
            "cache_hit_ratio": fmt_pct,
            "availability": lambda v: fmt_pct(v, 2),
            "latency_met_share": fmt_pct,
            "peak_rss": fmt_bytes,
        },
        columns={
            "day": "day (UTC)",
            "requests": "requests",
            "errors": "errors",
            "error_rate": "error rate",
            "mean_ms": "mean latency",
            "cache_hit_ratio": "cache hit rate",
            "availability": "availability",
            "latency_met_share": "slices p95 met",
            "peak_rss": "peak RSS",
        },
        max_rows=31,
        empty="no day with observations",
    )


def _plot_memory(ax: Any, memory: Any, thresholds: Thresholds, title: str) -> None:
    frame = memory.frame
    plots.dense_timeseries(ax, frame, "ts", "rss", title, ylabel="RSS")
    limit = thresholds.memory_limit_bytes * thresholds.memory_fraction
    if frame["rss"].max() > limit * 0.5:  # only when the line would not flatten the curve
        plots.target_line(
            ax,
            limit,
            f"{fmt_pct(thresholds.memory_fraction, 0)} of {fmt_bytes(thresholds.memory_limit_bytes)}",
        )
    restarts = memory.restarts
    if not restarts.empty:
        plots.mark_events(ax, restarts["ts"], "restart / reset")
    for i, seg in enumerate(memory.leak_segments.to_dict("records")):
        # the steady climb itself when the analysis found where it starts and ends
        start, end = seg.get("climb_start"), seg.get("climb_end")
        if _missing(start) or _missing(end):
            start, end = seg["start"], seg["end"]
        plots.shade(ax, start, end, "possible leak" if i == 0 else None)
    plots.bytes_axis(ax)
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(loc="best")


@guarded("Memory")
def show_memory(review: Any) -> None:
    """RSS over the month with restarts marked and steady climbs flagged."""
    if not _need(review, "Memory"):
        return
    import matplotlib.pyplot as plt

    memory = review.memory
    th = review.thresholds
    if memory.frame.empty:
        unavailable("Memory", f"no memory reading in {review.month}", record=False)
        return
    leak = (
        "a steady climb between restarts: possible leak"
        if memory.leak
        else "no steady climb between restarts"
    )
    title = (
        f"Memory peaked at {fmt_bytes(memory.peak_rss)} ({fmt_pct(memory.peak_fraction, 0)} of "
        f"{fmt_bytes(memory.limit_bytes)}); {leak}"
    )
    with plots.style():
        fig, ax = plots.figure()
        _plot_memory(ax, memory, th, title)
        _month_axis(ax, review)
        plots.settle_date_ticks(fig)
        plt.show()
    show_text(
        f"{len(memory.restarts)} restarts or resets in the month. A segment between restarts is "
        f"flagged when it climbs steadily faster than {fmt_pct(memory.growth_threshold, 0)} an hour."
    )
    show_table(
        memory.segments,
        "Segments between restarts",
        {
            "rss_start": fmt_bytes,
            "rss_end": fmt_bytes,
            "slope_bytes_per_hour": lambda v: fmt_bytes(v) + "/h" if not _missing(v) else DASH,
            "growth_per_hour": lambda v: fmt_pct(v, 2) + "/h" if not _missing(v) else DASH,
            "duration_h": lambda v: fmt_num(v, 3),
            "r2": lambda v: DASH if _missing(v) else f"{float(v):.2f}",
        },
        columns={
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
        },
    )


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
def show_endpoints(review: Any, *, top: int = 30) -> None:
    """Per endpoint: volume, error rate, mean latency and the change, worst first."""
    if not _need(review, "Endpoints"):
        return
    import matplotlib.pyplot as plt

    eps = review.endpoints
    current = eps[eps["requests"] > 0]
    if current.empty:
        unavailable("Endpoints", f"no request counted in {review.month}", record=False)
        return
    worst = current.iloc[0]
    show_text(
        f"Worst endpoint: {worst['endpoint']} ({fmt_int(worst['errors'])} errors of "
        f"{fmt_int(worst['requests'])} requests, {fmt_pct(worst['error_rate'], 2)}; mean {fmt_ms(worst['mean_ms'])}). "
        "Worst first: most errors, then the largest mean-latency increase, then volume."
    )
    show_table(
        eps, "Endpoints, worst first", ENDPOINT_FORMATS, columns=ENDPOINT_COLUMNS, max_rows=top
    )
    gone = eps[(eps["requests"] == 0) & (eps["prev_requests"] > 0)]
    if not gone.empty:
        show_text(
            "Seen last month, no traffic this month: " + ", ".join(str(e) for e in gone["endpoint"])
        )
    with plots.style():
        if current["errors"].sum() > 0:
            plots.bar_ranked(
                None,
                current,
                "endpoint",
                "errors",
                f"{worst['endpoint']} had the most errors ({fmt_int(worst['errors'])})",
                xlabel="errors in the month",
                formatter=fmt_int,
            )
        else:
            busiest = current.loc[current["requests"].idxmax()]
            plots.bar_ranked(
                None,
                current,
                "endpoint",
                "requests",
                f"No endpoint errors; {busiest['endpoint']} was the busiest",
                xlabel="requests in the month",
                formatter=fmt_int,
            )
        plt.show()


INCIDENT_COLUMNS = {
    "start": "start",
    "end": "end",
    "duration_s": "duration",
    "kind": "kind",
    "severity": "severity",
    "endpoint": "endpoint",
    "detail": "detail",
}


@guarded("Incidents")
def show_incidents(review: Any) -> None:
    """Incidents of the month with start, end, duration and their postmortem command."""
    if not _need(review, "Incidents"):
        return
    found = review.incidents
    if found.empty:
        show_html(box_html("No incident found in the history of this month", "", kind="good"))
        return
    by_kind = found["kind"].value_counts()
    show_text(
        f"{len(found)} incidents: "
        + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in by_kind.items())
    )
    show_table(
        found,
        "Incidents",
        {"duration_s": fmt_duration, "endpoint": lambda v: DASH if _missing(v) else str(v)},
        columns=INCIDENT_COLUMNS,
        max_rows=100,
    )
    commands = "\n".join(str(c) for c in found["postmortem_command"] if c)
    show_html(
        "<p><strong>Write a postmortem</strong> (one command per incident):</p>"
        f"<pre>{esc(commands)}</pre>"
    )


# --- data quality -------------------------------------------------------------------------------


@guarded("Data quality")
def show_data_quality(review: Any, source: StoreSource) -> None:
    if not _need(review, "Data quality"):
        return
    dq = review.data_quality
    rows = [
        ("Source", source.describe()),
        ("Health observations in the month", fmt_int(dq["observations"])),
        ("  without an answer", fmt_int(dq["no_answer"])),
        ("Scrape interval (median)", fmt_duration(dq["interval_s"])),
        ("Coverage of the month", fmt_pct(dq["coverage"])),
        ("Time in collection gaps (not counted as uptime)", fmt_hours(dq["gap_s"])),
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
        empty="no gap in collection",
    )
    show_table(
        dq["resets"],
        "Resets and restarts (interval figures across them are lower bounds)",
        columns={"ts": "when", "kind": "kind", "target": "target"},
        empty="no reset or restart",
    )
    excluded = dq["excluded"]
    if dq.get("excluded_reason"):
        show_text(f"Excluded: {dq['excluded_reason']}.")
    show_table(
        excluded,
        "Excluded endpoints",
        columns={"endpoint": "endpoint", "requests": "requests", "errors": "errors"},
        empty="nothing excluded",
    )


def review_figures(review: Any, source: StoreSource, db: DatabaseOverview | None) -> dict[str, Any]:
    """The monthly review's key figures (JSON-able)."""
    if review is None:
        return {"report": "monthly-review", "computed": False, "store": source.describe()}
    t = review.targets
    return {
        "report": "monthly-review",
        "computed": True,
        "month": review.month,
        "previous_month": review.previous_month,
        "has_data": review.has_data,
        "store": {"available": source.available, "problem": source.problem},
        "targets": {
            r["key"]: {"figure": r["figure"], "threshold": r["threshold"], "met": r["met"]}
            for r in t.to_dict("records")
        },
        "targets_met": int(sum(1 for m in t["met"] if not _missing(m) and bool(m))),
        "totals": review.totals,
        "previous_totals": review.previous_totals,
        "error_budget": {
            k: review.error_budget[k]
            for k in ("spent_share", "left_share", "burn_rate", "bad", "total")
        },
        "request_budget": {
            k: review.request_budget[k] for k in ("spent_share", "left_share", "burn_rate")
        },
        "latency": {
            "timeslice_share": review.latency["share"],
            "slices": review.latency["slices"],
            "met": review.latency["met"],
            "mean_ms": review.latency.get("mean_ms"),
            "percentiles_disordered": (review.latency.get("percentiles") or {}).get("disordered"),
            "percentiles_disordered_share": (review.latency.get("percentiles") or {}).get(
                "disordered_share"
            ),
        },
        "endpoints_worst_first": [str(e) for e in review.endpoints["endpoint"]]
        if not review.endpoints.empty
        else [],
        "incidents": [
            {k: r.get(k) for k in ("kind", "start", "end", "duration_s", "endpoint", "severity")}
            for r in review.incidents.to_dict("records")
        ],
        "memory": {
            "leak": review.memory.leak,
            "peak_rss": review.memory.peak_rss,
            "restarts": len(review.memory.restarts),
        },
        "data_quality": {
            "observations": review.data_quality["observations"],
            "coverage": review.data_quality["coverage"],
            "gap_s": review.data_quality["gap_s"],
            "gaps": len(review.data_quality["gaps"]),
            "resets": len(review.data_quality["resets"]),
            "excluded": [str(e) for e in review.excluded["endpoint"]]
            if not review.excluded.empty
            else [],
        },
        "database": db.figures() if db is not None else None,
        "notes": review.notes,
    }


# --- headers ------------------------------------------------------------------------------------


def month_window(month: str) -> tuple[datetime, datetime]:
    return parse_month(month)


@guarded("Header")
def show_review_header(
    month: str, source: StoreSource, settings: Settings, *, target: str | None = None
) -> None:
    start, end = parse_month(month)
    th = settings.thresholds
    rows = [
        ("Month", f"{month_title(month)}: {fmt_ts(start)} to {fmt_ts(end)} (end exclusive)"),
        ("Compared with", month_title(previous_month(month))),
        ("API target", target or "every target in the store"),
        ("Data", source.describe()),
        (
            "Runbook targets",
            f"availability >= {fmt_pct(th.availability_slo, 1)} of health checks OK; error rate < "
            f"{fmt_pct(th.error_rate, 0)}; reported p95 < {th.latency_p95_ms:g} ms in >= "
            f"{fmt_pct(th.latency_slo, 0)} of time slices; cache hit rate > {fmt_pct(th.cache_hit_rate, 0)}; "
            f"memory < {fmt_pct(th.memory_fraction, 0)} of {fmt_bytes(th.memory_limit_bytes)}, no leak",
        ),
        ("Generated", fmt_ts(utcnow())),
    ]
    show_html(f"<h2>{esc(month_title(month))}</h2>" + facts_html(rows))
