"""The incident postmortem, section by section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import plots
from ..config import Thresholds
from ..times import parse_time, utcnow
from .display import (
    DASH,
    TO_BE_WRITTEN,
    _default_format,
    _missing,
    box_html,
    esc,
    facts_html,
    fmt_bytes,
    fmt_duration,
    fmt_int,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_ts,
    guarded,
    show_html,
    show_notes,
    show_table,
    show_text,
    todo,
    unavailable,
)
from .monthly import _need, _plot_memory
from .source import StoreSource

# --- the postmortem -----------------------------------------------------------------------------


@dataclass
class Window:
    start: datetime
    end: datetime
    title: str
    how: str  # how the window was chosen


def choose_window(
    source: StoreSource,
    thresholds: Thresholds,
    *,
    start: Any = None,
    end: Any = None,
    title: str | None = None,
    target: str | None = None,
    margin: timedelta = timedelta(minutes=30),
    lookback: timedelta = timedelta(days=30),
) -> Window:
    """The incident window. Given start and end: them. Otherwise the most recent incident
    (not a bare restart) in the last `lookback` of the history, with `margin` around it;
    without one, the last 24 h of the history (or before now when the store is empty)."""
    from ..analysis import incidents

    if start is not None and end is not None:
        s, e = parse_time(start), parse_time(end)
        return Window(s, e, title or f"Incident {fmt_ts(s)}", "the window given")
    if start is not None:
        s = parse_time(start)
        return Window(
            s,
            s + timedelta(hours=24),
            title or f"Incident {fmt_ts(s)}",
            "start given; end = start + 24 h",
        )
    if end is not None:
        e = parse_time(end)
        return Window(
            e - timedelta(hours=24),
            e,
            title or f"Incident before {fmt_ts(e)}",
            "end given; start = end - 24 h",
        )
    last = source.extent[1].to_pydatetime() if source.extent else utcnow()
    if source.extent:
        found = incidents(
            source.store, last - lookback, last + timedelta(seconds=1), thresholds, target=target
        )
        found = found[found["kind"] != "restart"] if not found.empty else found
        if not found.empty:
            row = found.sort_values("start").iloc[-1]
            s = pd.Timestamp(row["start"]).to_pydatetime() - margin
            e = pd.Timestamp(row["end"]).to_pydatetime() + margin
            where = f" on {row['endpoint']}" if isinstance(row.get("endpoint"), str) else ""
            name = f"{str(row['kind']).replace('_', ' ')}{where} {fmt_ts(row['start'])}"
            return Window(
                s, e, title or name, "the most recent incident in the history (no window given)"
            )
    return Window(
        last - timedelta(hours=24),
        last + timedelta(seconds=1),
        title or "Last 24 hours of the history",
        "no window given and no incident found: the last 24 h of the history",
    )


def load_postmortem(
    source: StoreSource,
    window: Window,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    baseline_hours: float = 24.0,
    sample_errors: int = 20,
) -> Any:
    from ..analysis import postmortem

    try:
        return postmortem(
            source.store,
            window.start,
            window.end,
            thresholds,
            baseline=timedelta(hours=float(baseline_hours)),
            title=window.title,
            target=target,
            sample_errors=int(sample_errors),
        )
    except Exception as exc:  # noqa: BLE001
        unavailable("Postmortem facts", f"could not be computed: {type(exc).__name__}: {exc}")
        return None


@guarded("Header")
def show_postmortem_header(pm: Any, window: Window, severity: str, source: StoreSource) -> None:
    title = window.title
    rows = [
        ("Severity", severity),
        ("API target", (pm.target if pm is not None else None) or "every target in the store"),
        ("Window examined", f"{fmt_ts(window.start)} to {fmt_ts(window.end)} ({window.how})"),
        (
            "Baseline",
            f"{fmt_ts(pm.baseline_start)} to {fmt_ts(pm.baseline_end)}" if pm is not None else DASH,
        ),
        (
            "Status",
            "DRAFT: facts filled from the metrics history; the marked sections are for the incident owner",
        ),
        ("Authors / incident owner", TO_BE_WRITTEN),
        ("Data", source.describe()),
        ("Generated", fmt_ts(utcnow())),
    ]
    show_html(f"<h2>{esc(title)}</h2>" + facts_html(rows))
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    elif pm is not None and pm.availability.observations == 0:
        unavailable(
            "Data",
            f"no observation in the window ({source.describe()}): every figure below is unknown",
        )


def _impact_sentence(pm: Any) -> str:
    if pm.impact_start is None:
        return (
            f"No threshold breach found between {fmt_ts(pm.start)} and {fmt_ts(pm.end)}: "
            f"{fmt_int(pm.failed)} of {fmt_int(pm.requests)} requests failed in the whole window."
        )
    kinds = (
        pm.incidents[pm.incidents["kind"] != "restart"] if not pm.incidents.empty else pm.incidents
    )
    what = ", ".join(
        sorted(
            {
                str(k).replace("_", " ") + (f" on {e}" if isinstance(e, str) else "")
                for k, e in zip(kinds["kind"], kinds["endpoint"], strict=True)
            }
        )
    )
    top = pm.endpoints.iloc[0]["endpoint"] if not pm.endpoints.empty else None
    text = (
        f"From {fmt_ts(pm.impact_start)} to {fmt_ts(pm.impact_end)} ({fmt_duration(pm.duration_s)}): {what}. "
        f"{fmt_int(pm.failed)} of {fmt_int(pm.requests)} requests failed ({fmt_pct(pm.error_rate, 1)}); "
        f"{fmt_int(pm.no_answer)} of {fmt_int(pm.observations)} health checks got no answer."
    )
    if top is not None and _harmed(pm.endpoints.iloc[0]):
        text += f" Most harmed endpoint: {top}."
    return text


def _harmed(row: Any) -> bool:
    """Errors beyond the baseline, or a mean latency at least 1.5x the baseline's."""
    slower = (
        not _missing(row["baseline_mean_ms"])
        and not _missing(row["mean_ms"])
        and row["mean_ms"] >= 1.5 * row["baseline_mean_ms"]
    )
    return bool(row["excess_errors"] >= 1 or slower)


@guarded("Summary")
def show_pm_summary(pm: Any) -> None:
    if not _need(pm, "Summary"):
        return
    show_html(box_html("What the history shows", _impact_sentence(pm), kind="info"))
    todo("Summary", "Two or three sentences: what happened, who was affected, how it was fixed.")


@guarded("Impact")
def show_impact(pm: Any) -> None:
    if not _need(pm, "Impact"):
        return
    rows = [
        (
            "Impact window (first breach to last breach)",
            f"{fmt_ts(pm.impact_start)} to {fmt_ts(pm.impact_end)}"
            if pm.impact_start is not None
            else "no breach found",
        ),
        ("Duration", fmt_duration(pm.duration_s)),
        ("Requests in the impact window", fmt_int(pm.requests)),
        ("Failed requests", f"{fmt_int(pm.failed)} ({fmt_pct(pm.error_rate, 2)})"),
        (
            "Health checks without an answer",
            f"{fmt_int(pm.no_answer)} of {fmt_int(pm.observations)}",
        ),
        ("Availability over the whole window", fmt_pct(pm.availability.availability, 2)),
    ]
    show_html(facts_html(rows))
    if pm.no_answer:
        show_text(
            "While the API did not answer, its requests were not counted by anyone: failed and "
            "total requests above are lower bounds."
        )
    show_table(
        pm.endpoints,
        "Endpoints ranked by harm (errors beyond the baseline rate, then added latency)",
        {
            "error_rate": lambda v: fmt_pct(v, 2),
            "baseline_error_rate": lambda v: fmt_pct(v, 2),
            "mean_ms": fmt_ms,
            "baseline_mean_ms": fmt_ms,
            "excess_errors": lambda v: fmt_num(v, 4),
            "extra_latency_ms": lambda v: fmt_ms(v) if not _missing(v) else DASH,
        },
        columns={
            "rank": "rank",
            "endpoint": "endpoint",
            "requests": "requests",
            "errors": "errors",
            "error_rate": "error rate",
            "baseline_error_rate": "baseline error rate",
            "excess_errors": "errors beyond baseline",
            "mean_ms": "mean latency",
            "baseline_mean_ms": "baseline mean",
            "extra_latency_ms": "added latency (total)",
        },
        empty="no request counted in the impact window",
    )
    cmp = pm.comparison.copy()
    fmts = {
        "requests per hour": lambda v: fmt_num(v, 4),
        "error_rate": lambda v: fmt_pct(v, 2),
        "mean_ms": fmt_ms,
        "availability": lambda v: fmt_pct(v, 2),
    }
    cmp["window"] = [
        fmts.get(m, _default_format)(v) for m, v in zip(cmp["metric"], cmp["window"], strict=True)
    ]
    cmp["baseline"] = [
        fmts.get(m, _default_format)(v) for m, v in zip(cmp["metric"], cmp["baseline"], strict=True)
    ]
    names = {"error_rate": "error rate", "mean_ms": "mean latency"}
    cmp["metric"] = [names.get(m, m) for m in cmp["metric"]]
    show_table(cmp, "The window against the baseline before it")
    todo(
        "User and business impact",
        "Who noticed, which features were affected, any customer reports.",
    )


@guarded("Timeline")
def show_timeline(pm: Any) -> None:
    if not _need(pm, "Timeline"):
        return
    show_table(
        pm.timeline,
        "Timeline from the history (UTC): health changes, threshold crossings, resets, gaps",
        {
            "ts": lambda v: fmt_ts(v, seconds=True),
            "endpoint": lambda v: DASH if _missing(v) else str(v),
        },
        columns={"ts": "when", "event": "event", "detail": "detail"},
        max_rows=200,
        empty="nothing happened in the history of this window",
    )
    todo(
        "Human timeline",
        "Add pages, acknowledgements, decisions and mitigation steps with their times.",
    )


@guarded("Detection")
def show_detection(pm: Any) -> None:
    if not _need(pm, "Detection"):
        return
    inc = (
        pm.incidents[pm.incidents["kind"] != "restart"] if not pm.incidents.empty else pm.incidents
    )
    if inc.empty:
        show_text("The history shows no threshold breach in this window.")
    else:
        first = inc.sort_values("start").iloc[0]
        where = f" on {first['endpoint']}" if isinstance(first.get("endpoint"), str) else ""
        show_text(
            f"The first breaching observation in the history: {fmt_ts(first['start'])}, "
            f"{str(first['kind']).replace('_', ' ')}{where} ({first['detail']})."
        )
    todo(
        "Detection",
        "How was the team alerted (alert, user report, on-call check)? When? Time to detect.",
    )


@guarded("Resolution")
def show_resolution(pm: Any) -> None:
    if not _need(pm, "Resolution"):
        return
    if pm.impact_end is not None:
        ongoing = bool(pm.incidents["ongoing"].any()) if "ongoing" in pm.incidents else False
        text = f"Back within thresholds at {fmt_ts(pm.impact_end)}" + (
            " (still breaching at the last observation of the window)" if ongoing else ""
        )
        show_text(text + ".")
    restarts = pm.restarts
    if not restarts.empty:
        show_table(
            restarts,
            "Restarts and counter resets in the window",
            columns={"ts": "when", "kind": "kind"},
        )
    else:
        show_text("No restart or counter reset in the window.")
    todo("Resolution", "What was done to mitigate and to fix, by whom, and when.")


@guarded("Evidence")
def show_evidence(pm: Any) -> None:
    if not _need(pm, "Evidence"):
        return
    show_table(
        pm.error_counts,
        "Error records by endpoint, status and message",
        {
            "status_code": lambda v: DASH if _missing(v) else str(int(v)),
            "error": lambda v: DASH if _missing(v) or v == "" else str(v),
        },
        columns={
            "endpoint": "endpoint",
            "status_code": "status",
            "error": "error",
            "count": "count",
        },
        max_rows=20,
        empty="no error record kept by the API in this window",
    )
    show_table(
        pm.errors,
        "Sampled error records (spread over the window)",
        {
            "ts": lambda v: fmt_ts(v, seconds=True),
            "status_code": lambda v: DASH if _missing(v) else str(int(v)),
        },
        columns={
            "ts": "when",
            "endpoint": "endpoint",
            "method": "method",
            "status_code": "status",
            "error": "error",
        },
        empty="no error record kept by the API in this window",
    )
    show_notes(pm.notes, title="Notes")


def _with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """A NaN row after each interval followed by a gap (> 1.5x the median spacing), so a
    line breaks where there was no data instead of carrying the last value over it."""
    if len(frame) < 3:
        return frame
    frame = frame.sort_values("ts").reset_index(drop=True)
    step = frame["ts"].diff()
    typical = step.median()
    holes = frame.loc[step > 1.5 * typical, "ts"] - step[step > 1.5 * typical] + typical
    if holes.empty:
        return frame
    filler = pd.DataFrame({"ts": holes.to_numpy()})
    return pd.concat([frame, filler], ignore_index=True).sort_values("ts", kind="stable")


@guarded("Charts")
def show_window_charts(pm: Any) -> None:
    """Requests, errors, error rate and mean latency of the window against the baseline."""
    if not _need(pm, "Charts"):
        return
    import matplotlib.pyplot as plt

    series = pm.series
    if series.empty:
        unavailable("Charts", "no traffic counted in the window or its baseline", record=False)
        return
    th = pm.thresholds
    series = series.sort_values("ts")
    win = series[series["period"] == "window"]
    # the charts show the end of the baseline only (3x the window, at least 2 h): enough to
    # compare, without squeezing the window; the figures use the whole baseline
    span = max(3 * (pm.end - pm.start), timedelta(hours=2))
    base = series[
        (series["period"] == "baseline") & (series["ts"] >= pd.Timestamp(pm.baseline_end - span))
    ]
    base_rate = pm.comparison.set_index("metric").loc["error_rate", "baseline"]
    win_rate = pm.error_rate
    with plots.style():
        fig, axes = plt.subplots(3, 1, figsize=(plots.WIDTH_IN, 9), sharex=True)
        base, win = _with_gaps(base), _with_gaps(win)
        for period, frame, color in (
            ("baseline", base, plots.COLORS[6]),
            ("window", win, plots.COLORS[0]),
        ):
            axes[0].step(frame["ts"], frame["requests"], where="post", color=color, label=period)
            axes[1].step(frame["ts"], frame["error_rate"], where="post", color=color, label=period)
            axes[2].step(frame["ts"], frame["mean_ms"], where="post", color=color, label=period)
        axes[0].set_title(
            f"Requests per interval: {fmt_int(pm.requests)} in the impact window"
            if pm.impact_start is not None
            else "Requests per interval"
        )
        axes[0].set_ylabel("requests")
        plots.target_line(axes[1], th.error_rate, f"target < {fmt_pct(th.error_rate, 0)}")
        axes[1].set_title(
            f"Error rate {fmt_pct(win_rate, 1)} in the impact window vs {fmt_pct(base_rate, 1)} in the baseline"
        )
        axes[1].set_ylabel("error rate")
        plots.pct_axis(axes[1])
        axes[1].set_ylim(bottom=0)
        cmp = pm.comparison.set_index("metric")
        axes[2].set_title(
            f"Mean latency {fmt_ms(cmp.loc['mean_ms', 'window'])} in the window vs {fmt_ms(cmp.loc['mean_ms', 'baseline'])} in the baseline"
        )
        axes[2].set_ylabel("mean latency")
        plots.ms_axis(axes[2])
        for ax in axes:
            if pm.impact_start is not None:
                plots.shade(
                    ax,
                    pm.impact_start,
                    max(pm.impact_end, pm.impact_start + pd.Timedelta(minutes=1)),
                    "impact window",
                )
            if not pm.restarts.empty:
                plots.mark_events(ax, pm.restarts["ts"], "restart / reset")
            ax.legend(loc="best")
        plots.utc_axis(axes[2])
        plt.show()
        health = pm.health
        if not health.empty:
            order = ["OK", "DEGRADED", "ERROR", "NO_ANSWER"]
            level = health["status"].map({s: i for i, s in enumerate(order)})
            bad = int((health["status"] != "OK").sum())
            fig, ax = plots.figure(2.2)
            ax.step(health["ts"], level, where="post", color=plots.BAD)
            ax.set_yticks(range(len(order)), order)
            ax.set_ylim(-0.5, len(order) - 0.5)
            ax.set_title(f"Health: {bad} of {len(health)} observations in the window were not OK")
            plots.utc_axis(ax)
            plt.show()
        if not pm.memory.frame.empty:
            fig, ax = plots.figure(3.0)
            leak = "possible leak" if pm.memory.leak else "no steady climb"
            _plot_memory(
                ax,
                pm.memory,
                th,
                f"Memory over the baseline and the window: peak {fmt_bytes(pm.memory.peak_rss)}, {leak}",
            )
            plt.show()


ACTION_COLUMNS = ["action item", "type", "owner", "due date", "tracking issue"]


@guarded("Action items")
def show_action_items(rows: int = 3) -> None:
    todo(
        "Action items",
        "Fill the table: one line per action (type: mitigate / prevent / detect / process), "
        "with an owner and a due date.",
    )
    frame = pd.DataFrame(
        [[TO_BE_WRITTEN, "prevent / mitigate / detect", "(owner)", "(YYYY-MM-DD)", "(link)"]]
        * rows,
        columns=ACTION_COLUMNS,
    )
    show_table(frame, "Action items")


@guarded("Lessons learned")
def show_lessons() -> None:
    for what, hint in (
        ("What went well", "Detection, tooling, people, luck-free wins."),
        ("What went wrong", "Gaps in detection, slow steps, missing runbook entries."),
        ("Where we got lucky", "Things that could have made it much worse."),
    ):
        todo(what, hint)


def postmortem_figures(
    pm: Any, window: Window, severity: str, source: StoreSource
) -> dict[str, Any]:
    base = {
        "report": "postmortem",
        "title": window.title,
        "severity": severity,
        "window_start": window.start,
        "window_end": window.end,
        "window_chosen": window.how,
        "store": {"available": source.available, "problem": source.problem},
    }
    if pm is None:
        return {**base, "computed": False}
    return {
        **base,
        "computed": True,
        "impact_start": pm.impact_start,
        "impact_end": pm.impact_end,
        "duration_s": pm.duration_s,
        "requests": pm.requests,
        "failed": pm.failed,
        "error_rate": pm.error_rate,
        "no_answer": pm.no_answer,
        "observations": pm.observations,
        "availability": pm.availability.availability,
        "endpoints_by_harm": [str(e) for e in pm.endpoints["endpoint"]]
        if not pm.endpoints.empty
        else [],
        "incidents": [
            {k: r.get(k) for k in ("kind", "start", "end", "duration_s", "endpoint", "severity")}
            for r in pm.incidents.to_dict("records")
        ],
        "restarts": len(pm.restarts),
        "timeline_events": len(pm.timeline),
        "error_records_sampled": len(pm.errors),
        "notes": pm.notes,
    }
