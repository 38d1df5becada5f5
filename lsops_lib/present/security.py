"""The monthly review's "Security review" section, shown.

    security = present.security.security_review(settings, source, start, end)   # the data
    present.security.show_security(security)                                    # shown
    plots.auth_failures(security.hourly, bursts=security.auth["bursts"])       # the chart

The data is `lsops_lib.security` (npm audit, the stored error records, the `[secrets]`
dates); this module runs nothing and asks nothing. Each part opens with a box: green
`ok`, amber `attention`, blue "not configured" (it says how to configure it), red when
its source failed (npm's error, the registry refusing). A part that is not configured is
not a problem of the report (nothing in the key figures' problems): the monthly review
is often run where only some sources exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt
from .. import security as sec
from ..config import Settings
from .display import (
    box_html,
    esc,
    facts_html,
    guarded,
    show_html,
    show_table,
)
from .source import StoreSource

__all__ = ["security_review", "show_security"]

PART_TITLES = {"audit": "Dependencies (npm audit)", "auth": "Access", "secrets": "Secrets"}
_BOX = {"ok": "good", "attention": "warning"}


def security_review(
    settings: Settings,
    source: StoreSource,
    start: datetime,
    end: datetime,
    *,
    target: str | None = None,
) -> sec.SecurityReview:
    """`lsops_lib.security.security_review` with the review's store and window [start,
    end) (the month). Never raises: an outside failure is a part's `unknown`."""
    return sec.security_review(
        settings,
        store=source.store if source.available else None,
        store_problem=None if source.available else source.problem,
        start=start,
        end=end,
        target=target,
    )


def _head(name: str, part: dict[str, Any]) -> None:
    status = part["status"]
    if status == "unknown":
        kind = "info" if not part.get("configured") else "unavailable"
        label = "not configured" if not part.get("configured") else "unknown"
    else:
        kind, label = _BOX[status], status
    show_html(box_html(f"{PART_TITLES[name]}: {label}", str(part["reason"]), kind=kind))


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _audit(a: dict[str, Any]) -> None:
    _head("audit", a)
    facts = []
    if a["source"]:
        facts.append(("Source", a["source"] + (f" ({a['tool']})" if a["tool"] else "")))
    if a["taken_at"] is not None:
        facts.append(("Taken", fmt.instant(a["taken_at"])))
    counts = a["counts"]
    if counts is not None:
        by = ", ".join(f"{counts[s]:,} {s}" for s in sec.audit.SEVERITIES)
        facts.append(("Vulnerable packages", f"{counts['total']:,} ({by})"))
        facts.append(
            (
                "Direct / transitive / with a fix",
                f"{a['direct']:,} / {a['transitive']:,} / {a['fixable']:,}",
            )
        )
    if facts:
        show_html(facts_html(facts))
    if a["vulnerabilities"]:
        df = _frame(
            a["vulnerabilities"], ["name", "severity", "direct", "via", "fix_available", "fix"]
        )
        show_table(
            df,
            "Vulnerable packages (most severe first)",
            {"via": lambda v: ", ".join(v), "fix": lambda v: v or fmt.DASH},
            columns={
                "name": "package",
                "severity": "severity",
                "direct": "direct",
                "via": "via",
                "fix_available": "fix available",
                "fix": "fix",
            },
            max_rows=30,
        )


def _auth(a: dict[str, Any]) -> None:
    _head("auth", a)
    if a["unauthorized"] is not None:  # unknown (no hour covered): no figure to show
        base = a["baseline"] or {}
        show_html(
            facts_html(
                [
                    ("Window", f"{fmt.instant(a['start'])} .. {fmt.instant(a['end'])}"),
                    ("Hours covered by the collector", f"{a['hours_covered']:,}"),
                    ("401 (unauthorized)", f"{a['unauthorized']:,}"),
                    ("403 (forbidden)", f"{a['forbidden']:,}"),
                    ("429 (rate limited)", f"{a['rate_limited']:,}"),
                    (
                        "Baseline per hour (median)",
                        f"{fmt.number(base.get('auth_failures'), 2)} x 401/403, "
                        f"{fmt.number(base.get('rate_limited'), 2)} x 429",
                    ),
                ]
            )
        )
        show_table(
            _frame(a["bursts"], ["hour", "kind", "count", "baseline", "threshold"]),
            "Bursts (hours above the baseline)",
            {"baseline": lambda v: fmt.number(v, 2), "threshold": lambda v: fmt.number(v, 2)},
            columns={
                "hour": "hour",
                "kind": "kind",
                "count": "records",
                "baseline": "baseline",
                "threshold": "threshold",
            },
            empty="no burst",
        )
        show_table(
            _frame(
                a["by_endpoint"],
                ["endpoint", "unauthorized", "forbidden", "rate_limited", "first", "last"],
            ),
            "Per endpoint (most records first)",
            columns={
                "endpoint": "endpoint",
                "unauthorized": "401",
                "forbidden": "403",
                "rate_limited": "429",
                "first": "first",
                "last": "last",
            },
            max_rows=10,
            empty="no 401, 403 or 429 recorded",
        )
        show_html(f"<p><em>{esc(a['note'])}</em></p>")
    if not a["sources"]["available"]:
        show_html(f"<p><em>Top sources: {esc(a['sources']['reason'])}</em></p>")


def _secrets(s: dict[str, Any]) -> None:
    _head("secrets", s)
    if s["secrets"]:
        show_table(
            _frame(s["secrets"], ["name", "rotated", "age_days", "due_on", "status"]),
            f"Secrets by last rotation (max age {s['max_age_days']} days, today {s['today']})",
            {"rotated": str, "due_on": str},
            columns={
                "name": "secret",
                "rotated": "last rotated",
                "age_days": "age (days)",
                "due_on": "due on",
                "status": "status",
            },
        )


@guarded("Security review")
def show_security(review: sec.SecurityReview | None) -> None:
    """The three parts, each its status box, then its figures and tables (escaped)."""
    if review is None:
        show_html(box_html("Security review: not computed", kind="info"))
        return
    _audit(review.audit)
    _auth(review.auth)
    _secrets(review.secrets)
