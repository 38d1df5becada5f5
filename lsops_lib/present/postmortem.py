"""The incident postmortem, section by section: what the notebook shows of the bundle.

The rules are in `lsops_lib.analysis` (the window: `analysis.incidents.postmortem_window`;
harm: `analysis.harm`; the facts: `analysis.postmortem`), the charts in
`lsops_lib.plots.postmortem`; here, only text, tables and boxes. Every `show_*` takes the
frame its section shows (or the bundle) and is guarded: a failure is a box, never a
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import fmt, plots
from ..analysis.incidents import IncidentWindow, postmortem_window
from ..config import Thresholds
from ..plots.postmortem import ERROR_RATE_DIGITS
from ..times import utcnow
from .display import (
    DASH,
    TO_BE_WRITTEN,
    _default_format,
    _missing,
    box_html,
    esc,
    facts_html,
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
from .source import StoreSource

# the window a postmortem studies (start, end, title, how it was chosen): analysis's
Window = IncidentWindow


def choose_window(
    source: StoreSource,
    thresholds: Thresholds,
    *,
    start: Any = None,
    end: Any = None,
    title: str | None = None,
    target: str | None = None,
) -> IncidentWindow:
    """The incident window (`analysis.incidents.postmortem_window` over the report's store):
    the window given; else the most recent incident of the last 30 days of the history,
    `incident_window` around it (the window of the command the review prints for it);
    else the last 24 h of the history."""
    return postmortem_window(
        source.store, thresholds, start=start, end=end, title=title, target=target
    )


def load_postmortem(
    source: StoreSource,
    window: IncidentWindow,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    baseline_hours: float = 24.0,
    sample_errors: int = 20,
    include_monitoring: bool = False,
) -> Any:
    """`analysis.postmortem(...)` of the window against the `baseline_hours` before it
    (`include_monitoring`: count the collector's own /health and /metrics requests).
    When it cannot be computed: an "unavailable" box, and an empty bundle saying why
    (`pm.problem`), so that every cell after it still runs."""
    from datetime import timedelta

    from ..analysis import postmortem
    from ..analysis.postmortem import unavailable_postmortem

    baseline = timedelta(hours=float(baseline_hours))
    try:
        return postmortem(
            source.store,
            window.start,
            window.end,
            thresholds,
            baseline=baseline,
            title=window.title,
            target=target,
            sample_errors=int(sample_errors),
            include_monitoring=bool(include_monitoring),
        )
    except Exception as exc:  # noqa: BLE001 - shown, and the report goes on
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        unavailable("Postmortem facts", f"could not be computed: {reason}")
        return unavailable_postmortem(
            window.start,
            window.end,
            thresholds,
            problem=reason,
            baseline=baseline,
            title=window.title,
            target=target,
        )


def _need(pm: Any, section: str) -> bool:
    """False (and a box, not recorded again) when the bundle's figures are missing."""
    if pm is None or getattr(pm, "problem", None):
        unavailable(section, "the figures could not be computed (see above)", record=False)
        return False
    return True


@guarded("Header")
def show_postmortem_header(
    pm: Any, window: IncidentWindow, severity: str, source: StoreSource
) -> None:
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
    show_html(f"<h2>{esc(window.title)}</h2>" + facts_html(rows))
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    elif pm is not None and not pm.problem and pm.availability.observations == 0:
        unavailable(
            "Data",
            f"no observation in the window ({source.describe()}): every figure below is unknown",
        )


# --- summary ----------------------------------------------------------------------------------


def _ongoing(incidents: Any) -> bool:
    """True when a breach (an incident other than a restart: `pm.incidents`, or the
    summary's rows) lasts to the window's last observation: no recovery seen."""
    rows = incidents.to_dict("records") if isinstance(incidents, pd.DataFrame) else incidents
    return any(bool(r.get("ongoing")) and r.get("kind") != "restart" for r in rows or [])


def _what(incidents: Any) -> str:
    """'error rate on /projects/:id, no answer' from incident rows (restarts left out)."""
    rows = incidents.to_dict("records") if isinstance(incidents, pd.DataFrame) else incidents
    return ", ".join(
        sorted(
            {
                str(r["kind"]).replace("_", " ")
                + (f" on {r['endpoint']}" if isinstance(r.get("endpoint"), str) else "")
                for r in rows or []
                if r.get("kind") != "restart"
            }
        )
    )


def impact_sentence(summary: Mapping[str, Any]) -> str:
    """What the history shows, in two or three sentences, from `pm.summary()`."""
    if summary.get("computed") is False:  # its note already says so: the reason, said once
        said = "the figures could not be computed: "
        why = [n[len(said) :] if n.startswith(said) else n for n in summary.get("notes") or []]
        return "The figures could not be computed: " + "; ".join(why)
    if _unknown(summary):
        return (  # no breach found where nothing was observed: unknown, not "no breach"
            f"No observation between {fmt_ts(summary['window_start'])} and "
            f"{fmt_ts(summary['window_end'])}: whether a threshold was breached, and how many "
            "requests failed, is unknown."
        ) + _top_new_pattern(summary)
    if summary.get("impact_start") is None:
        return (
            (
                f"No threshold breach found between {fmt_ts(summary['window_start'])} and "
                f"{fmt_ts(summary['window_end'])}: {fmt_int(summary['failed'])} of "
                f"{fmt_int(summary['requests'])} requests failed in the whole window."
            )
            + _restarts(summary)
            + _top_new_pattern(summary)
        )
    requests = (
        f"{fmt_int(summary['failed'])} of {fmt_int(summary['requests'])} requests failed "
        f"({_rate(summary['error_rate'])})"  # as the Impact table writes it
        if summary["requests"]
        else "no request was counted"  # an API that does not answer counts none
    )
    text = (
        f"From {fmt_ts(summary['impact_start'])} to {fmt_ts(summary['impact_end'])} "
        f"({fmt_duration(summary['duration_s'])}"
        + (
            ", still breaching at the window's last observation"
            if _ongoing(summary.get("incidents"))
            else ""
        )
        + f"): {_what(summary.get('incidents'))}. "
        f"{requests[0].upper()}{requests[1:]}; {fmt_int(summary['no_answer'])} of "
        f"{fmt_int(summary['observations'])} health checks got no answer."
    )
    harmed = summary.get("harmed") or []
    if harmed:
        top = harmed[0]
        parts = []
        if top.get("excess_errors"):
            parts.append(f"{fmt_num(top['excess_errors'], 3)} {_beyond(top.get('reference'))}")
        if top.get("added_latency_s"):
            parts.append(f"{fmt_num(top['added_latency_s'], 3)} request-seconds of added latency")
        text += f" Most harmed endpoint: {top['endpoint']} ({' and '.join(parts)})."
        if len(harmed) > 1:
            more = fmt.counted(len(harmed) - 1, "more endpoint")
            text += f" {more} harmed beyond chance."
    else:
        text += " No endpoint shows errors or latency beyond what its baseline explains."
    return text + _restarts(summary) + _top_new_pattern(summary)


def _unknown(summary: Mapping[str, Any]) -> bool:
    """No breach found where nothing was observed: the window's figures are unknown."""
    return summary.get("impact_start") is None and not summary.get("observations")


def _rate(value: Any) -> str:
    """An error rate as every part of the postmortem writes it (tables, sentences, chart
    titles: `plots.postmortem.ERROR_RATE_DIGITS` decimals): one figure, one text."""
    return fmt_pct(value, ERROR_RATE_DIGITS)


def _restarts(summary: Mapping[str, Any]) -> str:
    """The restarts and counter resets of the window, in one sentence (none: nothing)."""
    count = summary.get("restarts") or 0
    if not count:
        return ""
    said = fmt.counted(count, "restart or counter reset", "restarts or counter resets")
    return f" The history shows {said} in the window (see Resolution)."


def _beyond(reference: Any) -> str:
    """What a harmed endpoint's excess errors were tested against (`harm`'s `reference`):
    its baseline, or the error-rate target when it had no baseline traffic."""
    if reference == "target":
        return "errors beyond the error-rate target (no baseline traffic)"
    return "errors beyond its baseline"


def _top_new_pattern(summary: Mapping[str, Any]) -> str:
    """Issue 10: the logs' top new error pattern of the window, in one sentence."""
    top_new = summary.get("top_new_pattern")
    if not top_new:
        return ""
    return (
        f" Top new error log pattern: {top_new['template']} "
        f"({fmt_int(top_new['count'])} lines, never seen before the window)."
    )


@guarded("Summary")
def show_pm_summary(summary: Any) -> None:
    """The "what the history shows" box and the box left for the incident owner.
    `summary`: `pm.summary()` (or the bundle)."""
    if hasattr(summary, "summary"):
        summary = summary.summary()
    if summary is None:
        unavailable("Summary", "the figures could not be computed (see above)", record=False)
        return
    unknown = summary.get("impact_start") is None and not summary.get("observations")
    kind = "info" if summary.get("computed", True) and not unknown else "unavailable"
    show_html(box_html("What the history shows", impact_sentence(summary), kind=kind))
    todo("Summary", "Two or three sentences: what happened, who was affected, how it was fixed.")


# --- impact -----------------------------------------------------------------------------------


def _p(value: Any) -> str:
    if _missing(value):
        return "not tested"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def finding(row: Mapping[str, Any], thresholds: Thresholds | None = None) -> str:
    """One endpoint's harm verdict in words: 'errors beyond the baseline (p < 0.001)' (or
    'beyond the 1 % error-rate target' when its `reference` is the target), 'slower
    (p < 0.001)', 'within noise (errors p = 0.088)', ..."""
    th = thresholds or Thresholds()
    found = []
    if row.get("errors_significant"):
        against = (
            f"the {th.error_rate * 100:g} % error-rate target (no baseline traffic)"
            if row.get("reference") == "target"
            else "the baseline"
        )
        found.append(f"errors beyond {against} ({_p(row['errors_p'])})")
    if row.get("latency_significant"):
        found.append(f"slower ({_p(row['latency_p'])})")
    if found:
        return " and ".join(found)
    p_err, p_lat = row.get("errors_p"), row.get("latency_p")
    small = [
        name
        for name, p in (("errors", p_err), ("latency", p_lat))
        if not _missing(p) and p < th.harm_significance
    ]
    if small:
        return f"{' and '.join(small)} beyond chance but below the minimum that counts"
    shown = [
        f"{name} {_p(p)}" for name, p in (("errors", p_err), ("latency", p_lat)) if not _missing(p)
    ]
    if _missing(p_lat) and row.get("requests", 0) < th.harm_min_requests:
        shown.append(f"latency not tested (under {th.harm_min_requests} requests)")
    return "within noise (" + ", ".join(shown) + ")" if shown else "within noise"


HARM_TABLE = {
    "rank": "rank",
    "endpoint": "endpoint",
    "requests": "requests",
    "errors": "errors",
    "error_rate": "error rate",
    "baseline_error_rate": "baseline error rate",
    "excess_errors": "errors beyond baseline",
    "mean_ms": "mean latency",
    "baseline_mean_ms": "baseline mean",
    "added_latency_s": "added latency (request-s)",
    "harm_s": "harm (request-s)",
    "finding": "finding",
}
HARM_FORMATS = {
    "error_rate": _rate,
    "baseline_error_rate": _rate,
    "mean_ms": fmt_ms,
    "baseline_mean_ms": fmt_ms,
    "excess_errors": lambda v: fmt_num(v, 3),
    "added_latency_s": lambda v: fmt_num(v, 3),
    "harm_s": lambda v: fmt_num(v, 3) if v else "0",
}


def harm_table(endpoints: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """The harm rows with their `finding` in words (what the Impact table shows)."""
    out = endpoints.copy()
    out["finding"] = [finding(r, thresholds) for r in out.to_dict("records")] if len(out) else []
    return out


@guarded("Impact")
def show_impact(pm: Any, endpoints: pd.DataFrame | None = None) -> None:
    """The impact window's figures, the endpoints ranked by harm (`endpoints`, default
    `pm.endpoints`) and the window against its baseline."""
    if not _need(pm, "Impact"):
        return
    endpoints = pm.endpoints if endpoints is None else endpoints
    th = pm.thresholds
    # nothing observed in the window: no breach and no request are unknown, not none
    unknown = pm.impact_start is None and pm.availability.observations == 0
    rows = [
        (
            "Impact window (first breach to last breach)",
            f"{fmt_ts(pm.impact_start)} to {fmt_ts(pm.impact_end)}"
            if pm.impact_start is not None
            else "unknown: no observation in the window"
            if unknown
            else "no breach found",
        ),
        ("Duration", fmt_duration(pm.duration_s)),
        ("Requests in the impact window", DASH if unknown else fmt_int(pm.requests)),
        (
            "Failed requests",
            DASH if unknown else f"{fmt_int(pm.failed)} ({_rate(pm.error_rate)})",
        ),
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
        harm_table(endpoints, th),
        "Endpoints ranked by harm (request-seconds: significant errors beyond the baseline "
        f"x {fmt_num(th.harm_seconds_per_error)} s, plus significant added latency)",
        HARM_FORMATS,
        columns=HARM_TABLE,
        empty="no request counted in the impact window",
    )
    cmp = pm.comparison.copy()
    fmts = {
        "requests per hour": lambda v: fmt_num(v, 4),
        "error_rate": _rate,
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
    show_excluded(pm)
    todo(
        "User and business impact",
        "Who noticed, which features were affected, any customer reports.",
    )


def show_excluded(pm: Any) -> None:
    """What the figures leave out, said as the monthly review says it (its Data quality
    section): the monitoring endpoints (/health, /metrics...: the collector's own scrapes),
    `pm.excluded_reason`, and their requests and errors over the whole window."""
    if pm.include_monitoring:
        return
    show_text(f"Excluded: {pm.excluded_reason}.")
    show_table(
        pm.excluded,
        "Excluded endpoints (over the whole window)",
        columns={"endpoint": "endpoint", "requests": "requests", "errors": "errors"},
        empty="nothing excluded",
    )


# --- timeline, detection, resolution, evidence --------------------------------------------------


@guarded("Timeline")
def show_timeline(timeline: Any) -> None:
    """The timeline from the history (`pm.timeline`, or the bundle)."""
    if hasattr(timeline, "timeline"):
        if not _need(timeline, "Timeline"):
            return
        timeline = timeline.timeline
    show_table(
        timeline,
        "Timeline from the history (UTC): health changes, threshold crossings, resets, gaps; "
        "Sentry issues, log patterns and pm2 restarts when collected",
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


def _breaches(incidents: pd.DataFrame) -> pd.DataFrame:
    return incidents[incidents["kind"] != "restart"] if not incidents.empty else incidents


@guarded("Detection")
def show_detection(incidents: Any, detection: dict[str, Any] | None = None, pm: Any = None) -> None:
    """The first breach in the history (`pm.incidents`, or the bundle), and (issue 11)
    the first alert against the start of impact (`detection`: present.alerts.alert_detection,
    time to detect and to recover). With the bundle (`incidents` or `pm`), a window without
    any observation says that its breaches are unknown, never that there was none."""
    if hasattr(incidents, "incidents"):
        if not _need(incidents, "Detection"):
            return
        pm = incidents
        incidents = incidents.incidents
    inc = _breaches(incidents)
    if inc.empty and pm is not None and pm.availability.observations == 0:
        show_text("No observation in this window: whether a threshold was breached is unknown.")
    elif inc.empty:
        show_text("The history shows no threshold breach in this window.")
    else:
        first = inc.sort_values("start").iloc[0]
        where = f" on {first['endpoint']}" if isinstance(first.get("endpoint"), str) else ""
        show_text(
            f"The first breaching observation in the history: {fmt_ts(first['start'])}, "
            f"{str(first['kind']).replace('_', ' ')}{where} ({first['detail']})."
        )
    if detection is not None:  # issue 11: what lsops alerting did
        show_text(str(detection["message"]))
        if detection.get("time_to_detect_s") is not None:
            show_text(
                f"Time to detect: {fmt_duration(max(0.0, detection['time_to_detect_s']))}; "
                "time to recover: "
                + (
                    fmt_duration(detection["time_to_recover_s"])
                    if detection.get("time_to_recover_s") is not None
                    else "not recovered in this window"
                )
                + " (from the start of impact)."
            )
    todo(
        "Detection",
        "How was the team alerted (alert, user report, on-call check)? When? Time to detect.",
    )


@guarded("Resolution")
def show_resolution(pm: Any, restarts: pd.DataFrame | None = None) -> None:
    """When the history is back within thresholds, and the restarts (`restarts`, default
    `pm.restarts`)."""
    if not _need(pm, "Resolution"):
        return
    restarts = pm.restarts if restarts is None else restarts
    if pm.impact_end is not None:
        if _ongoing(pm.incidents):  # its end is the last observation, a breaching one
            show_text(
                "Not back within thresholds in the window: still breaching at its last "
                f"observation, {fmt_ts(pm.impact_end)} (widen the window to see the recovery)."
            )
        else:
            show_text(f"Back within thresholds at {fmt_ts(pm.impact_end)}.")
    if not restarts.empty:
        show_table(
            restarts,
            "Restarts and counter resets in the window",
            columns={"started": "when", "kind": "kind", "ts": "seen by the scrape of"},
        )
    else:
        show_text("No restart or counter reset in the window.")
    todo("Resolution", "What was done to mitigate and to fix, by whom, and when.")


@guarded("Evidence")
def show_evidence(
    pm: Any, error_counts: pd.DataFrame | None = None, sample_errors: int | None = None
) -> None:
    """Error records grouped (`error_counts`, default `pm.error_counts`), a sample of them
    spread over the window (`sample_errors`: how many were asked for, the notebook's
    parameter), and the bundle's notes."""
    if not _need(pm, "Evidence"):
        return
    error_counts = pm.error_counts if error_counts is None else error_counts
    none_kept = "no error record kept by the API in this window"
    show_table(
        error_counts,
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
        empty=none_kept,
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
        empty=_no_sample(error_counts, sample_errors) or none_kept,
    )
    show_notes(pm.notes, title="Notes")


def _no_sample(error_counts: pd.DataFrame, sample_errors: int | None) -> str | None:
    """Why no record was sampled when the API kept some (the table above counts them):
    none was asked for (sample_errors 0, the only way the analysis samples none of them).
    None when there was none to sample."""
    if error_counts is None or error_counts.empty:
        return None
    kept = fmt.counted(int(error_counts["count"].sum()), "error record")
    if sample_errors not in (None, 0):
        return f"no record sampled ({kept} counted above)"
    return f"no sample: none was asked for (sample_errors 0); the {kept} are counted above"


# a note of the baseline's coverage (analysis.postmortem): "the history covers 1 d 0 h
# of the 1 d 0 h baseline period: ..."
@guarded("Charts")
def show_window_charts(pm: Any) -> None:
    """The window's charts in one call (the notebook draws them itself, from `plots`):
    requests, error rate and mean latency against the baseline, health, memory."""
    if not _need(pm, "Charts"):
        return
    import matplotlib.pyplot as plt

    with plots.style():
        plots.window_traffic(
            pm.series,
            pm.impact_start,
            pm.impact_end,
            restarts=pm.restarts["ts"] if not pm.restarts.empty else None,
            error_target=pm.thresholds.error_rate,
            counted=(pm.requests, pm.failed),  # the titles state the Impact table's figures
        )
        plots.window_health(pm.health)
        plots.window_memory(pm.memory, pm.thresholds)
        plt.show()


# --- left for a person ----------------------------------------------------------------------------

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


# --- key figures ----------------------------------------------------------------------------------


def postmortem_figures(
    pm: Any, window: IncidentWindow, severity: str, source: StoreSource
) -> dict[str, Any]:
    """The key figures: `pm.summary()` and what only the report knows (its kind, the
    severity given, how the window was chosen, the store's state)."""
    base = {
        "report": "postmortem",
        "severity": severity,
        "window_chosen": window.how,
        "store": {"available": source.available, "problem": source.problem},
    }
    if pm is None:
        return {**base, "title": window.title, "computed": False}
    summary = pm.summary()
    if not summary["computed"]:
        keep = ("title", "window_start", "window_end", "computed", "notes")
        return {**base, **{k: summary[k] for k in keep}}
    if _unknown(summary):  # nothing observed: what the report says is unknown is null
        summary["requests"] = summary["failed"] = None
    return {**base, **summary}
