"""What the reports show of alerting (issue 11): the month's alerts in the monthly review
(next to its incidents), and the first alert in the postmortem's Detection section.
The figures come from `lsops_lib.alerts.report`; here they are only shown, escaped."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import fmt
from ..exceptions import LsopsError
from .display import (
    box_html,
    fmt_duration,
    fmt_num,
    fmt_ts,
    guarded,
    show_html,
    show_table,
    show_text,
    unavailable,
)

__all__ = ["alert_detection", "alert_figures", "month_alerts", "show_month_alerts"]


def month_alerts(
    source: Any, month: str, target: str | None, incidents: Any, review: Any = None
) -> dict[str, Any] | None:
    """The alerts of `month` (`alerts.report.month_alerts`), with `observed` (False when
    `review` holds no observation of the month: whether alerts caught its incidents is
    unknown) and `incidents` (how many the review found, restarts aside; None without
    them); None without a usable store."""
    from ..alerts.report import month_alerts as compute
    from ..times import parse_month

    if source is None or not getattr(source, "available", False):
        return None
    start, end = parse_month(month)
    frame = incidents if isinstance(incidents, pd.DataFrame) else None
    try:
        found = compute(source.store, start, end, target, frame)
    except LsopsError as exc:  # the store cannot be read: the section says so
        return {"problem": str(exc)}
    found["observed"] = bool(review.has_data) if review else None
    found["incidents"] = (
        None if frame is None or "kind" not in frame else int((frame["kind"] != "restart").sum())
    )
    return found


def alert_figures(alerts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The month's alerts for the review's key figures: fired, pages, pages_per_week,
    by_name [{name, severity, fired, total_s, mean_resolve_s}] and uncaught [{kind, start,
    end, endpoint}] (the incidents no alert caught); None without an alert history, and
    {"problem": ...} when the store could not be read."""
    if alerts is None or "problem" in alerts:
        return alerts
    uncaught = alerts.get("uncaught")
    rows = [] if not isinstance(uncaught, pd.DataFrame) or uncaught.empty else uncaught
    return {
        "fired": alerts["fired"],
        "pages": alerts["pages"],
        "pages_per_week": alerts["pages_per_week"],
        "by_name": alerts["by_name"],
        "uncaught": [
            {"kind": r["kind"], "start": r["start"], "end": r["end"], "endpoint": r["endpoint"]}
            for r in (rows.to_dict("records") if len(rows) else [])
        ],
    }


def _count_cell(value: Any) -> str:
    """A count of episodes in a cell: 0 written, never a blank that reads as unknown."""
    return str(int(value)) if pd.notna(value) else "-"


@guarded("Alerts")
def show_month_alerts(alerts: dict[str, Any] | None) -> None:
    """The month's alerts: how many fired, pages per week, per alert its count and time to
    resolve, every episode, and the incidents no alert caught."""
    if alerts is None:
        show_text("Alerts: no metrics store, so no alert history.")
        return
    if "problem" in alerts:
        unavailable("Alerts", alerts["problem"])
        return
    before = sum(int(b.get("before") or 0) for b in alerts["by_name"])
    observed = alerts.get("observed") is not False
    if alerts["fired"] == 0 and not before:
        show_text(
            "No alert fired this month (lsops alerts: none in the store's alert history)."
            + ("" if observed else " No observation was collected in the month either.")
        )
    else:
        per_week = alerts["pages_per_week"]
        carried = (
            f" ({fmt.counted(before, 'alert')} fired before the month and still fired in it)"
            if before
            else ""
        )
        show_text(
            f"Alerts: {alerts['fired']} fired this month{carried}, {alerts['pages']} paged "
            f"someone ({fmt_num(per_week, 2) if per_week is not None else '-'} pages a week)."
        )
        show_table(
            pd.DataFrame(alerts["by_name"]),
            "Alerts of the month, by alert",
            {"total_s": fmt_duration, "mean_resolve_s": fmt_duration,
             "still_firing": _count_cell, "before": _count_cell},
            columns={"name": "alert", "severity": "severity", "fired": "fired",
                     "before": "fired before the month", "total_s": "firing in the month",
                     "still_firing": "still firing", "mean_resolve_s": "mean time to resolve"},
        )  # fmt: skip
        show_table(
            alerts["episodes"],
            "Every alert (fired, resolved, time to resolve)",
            {"fired_at": fmt_ts, "resolved_at": fmt_ts, "duration_s": fmt_duration},
            columns={"name": "alert", "severity": "severity", "fired_at": "fired",
                     "resolved_at": "resolved", "duration_s": "time to resolve",
                     "notified": "notified"},
            max_rows=100,
        )  # fmt: skip
    uncaught = alerts["uncaught"]
    if not observed:
        show_html(
            box_html(
                "Incidents caught by an alert: unknown",
                "no observation was collected in the month: neither its incidents nor the "
                "alerts that would have caught them could be evaluated",
                kind="unavailable",
            )
        )
        return
    if alerts.get("incidents") == 0:
        show_text("No incident in the history of the month: none for an alert to catch.")
        return
    if uncaught is None or uncaught.empty:
        show_html(box_html("Every incident of the month was caught by an alert", "", kind="good"))
        return
    show_table(
        uncaught,
        f"Incidents no alert caught ({len(uncaught)})",
        {"start": fmt_ts, "end": fmt_ts},
        columns={"kind": "kind", "start": "start", "end": "end", "detail": "detail"},
    )


def alert_detection(source: Any, pm: Any) -> dict[str, Any] | None:
    """The postmortem's first alert against the start of impact (`alerts.report.detection`);
    None without a usable store or figures."""
    from ..alerts.report import detection

    if source is None or not getattr(source, "available", False) or pm is None:
        return None
    if getattr(pm, "problem", None):
        return None
    try:
        return detection(
            source.store,
            pm.impact_start,
            pm.impact_end,
            pm.start,
            pm.end,
            pm.target,
            observations=pm.availability.observations,
        )
    except LsopsError as exc:
        return {"message": f"The alert history could not be read: {exc}"}
