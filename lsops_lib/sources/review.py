"""The monthly review's "Errors" section, from what `lsops collect` stored of the sources:

- Sentry: the issues new in the month, resolved (seen in the month, resolved at the last
  collection), regressed, and still open (unresolved at the last collection), each with
  its events in the month (from the stored hourly counts);
- the logs: the month's top patterns and its new error patterns;
- pm2: the restarts (rises of the restart counter) and the CPU per sample.

A source neither configured nor ever collected is `configured = False` (the section says
how to configure it); nothing here asks Sentry, reads a log file or runs pm2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..config import Thresholds
from ..store import sources as tables
from .checks import ENABLE, _restarts
from .incidents import unseen_pm2_restarts
from .settings import SourceSettings
from .views import log_patterns

ISSUE_COLUMNS = [
    "short_id",
    "title",
    "culprit",
    "level",
    "status",
    "events",
    "users",
    "first_seen",
    "last_seen",
    "permalink",
]
TOP = 10


@dataclass
class ErrorsReview:
    """One month of the sources. `configured`: source -> bool; `how`: source -> the setting
    that enables it. DataFrames: `new_issues`, `resolved_issues`, `regressed_issues`,
    `open_issues` (ISSUE_COLUMNS), `top_patterns`, `new_patterns` (`views.log_patterns`
    rows), `cpu` (ts, cpu: percent of one core, the app's processes summed), `restarts`
    (the pm2_restart incidents: restarts the scrapes did not see)."""

    start: datetime
    end: datetime
    target: str | None
    configured: dict[str, bool]
    how: dict[str, str]
    new_issues: pd.DataFrame = field(repr=False)
    resolved_issues: pd.DataFrame = field(repr=False)
    regressed_issues: pd.DataFrame = field(repr=False)
    open_issues: pd.DataFrame = field(repr=False)
    top_patterns: pd.DataFrame = field(repr=False)
    new_patterns: pd.DataFrame = field(repr=False)
    cpu: pd.DataFrame = field(repr=False)
    restart_count: int = 0
    unseen_restarts: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    unseen_restart_count: int = 0  # the restarts in `unseen_restarts` (a row may hold several)
    cpu_p95: float | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "configured": dict(self.configured),
            "sentry_new": len(self.new_issues),
            "sentry_resolved": len(self.resolved_issues),
            "sentry_regressed": len(self.regressed_issues),
            "sentry_open": len(self.open_issues),
            "log_patterns": len(self.top_patterns),
            "new_error_patterns": len(self.new_patterns),
            "pm2_restarts": self.restart_count,
            "cpu_p95_percent": self.cpu_p95,
        }


def _issues(store: Any, target: str | None, start: datetime, end: datetime) -> pd.DataFrame:
    issues = tables.sentry_issues(store, target)
    if issues.empty:
        return pd.DataFrame(columns=[*ISSUE_COLUMNS, "substatus"])
    events = tables.sentry_events(store, target, start, end)
    counts = dict(zip(events["issue_id"], events["events"], strict=False))
    issues["events"] = [int(counts.get(i, 0) or 0) for i in issues["issue_id"]]
    return issues


def errors_review(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    sources: SourceSettings | None = None,
) -> ErrorsReview:
    """The section's data for [start, end) (see the module's docstring). `thresholds`:
    kept for the signature of the other sections (the chart draws `cpu_percent`)."""
    runs = tables.source_runs(store, target, None, None)  # ever collected: configured
    known = set(runs["source"]) if not runs.empty else set()
    chosen = set(sources.configured()) if sources is not None else set()
    configured = {n: n in known or n in chosen for n in ("sentry", "logs", "pm2")}
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)

    issues = _issues(store, target, start, end)
    seen = issues[(issues["last_seen"] >= lo) & (issues["first_seen"] < hi)]

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(["events", "last_seen"], ascending=[False, False])[
            ISSUE_COLUMNS
        ].reset_index(drop=True)

    new = seen[(seen["first_seen"] >= lo)]
    resolved = seen[seen["status"] == "resolved"]
    regressed = seen[seen["substatus"] == "regressed"]
    still_open = issues[(issues["status"] == "unresolved") & (issues["first_seen"] < hi)]

    patterns = pd.DataFrame(log_patterns(store, target, start, end))
    if patterns.empty:
        patterns = pd.DataFrame(
            columns=[
                "pattern_id",
                "template",
                "level",
                "count",
                "baseline",
                "first_seen",
                "last_seen",
                "new",
                "example",
            ]
        )
    top = patterns.sort_values(["count", "pattern_id"], ascending=[False, True]).head(TOP)
    new_errors = patterns[patterns["new"].astype(bool) & patterns["level"].isin(["error", "fatal"])]

    samples = tables.pm2_samples(store, target, start, end)
    cpu = (
        samples.groupby("ts", as_index=False)["cpu"].sum()
        if not samples.empty
        else pd.DataFrame(columns=["ts", "cpu"])
    )
    p95 = float(cpu["cpu"].quantile(0.95)) if not cpu.empty else None
    unseen, unseen_count = (
        unseen_pm2_restarts(store, start, end, target=target) if not samples.empty else (None, 0)
    )
    return ErrorsReview(
        start=start,
        end=end,
        target=target,
        configured=configured,
        how=dict(ENABLE),
        new_issues=pick(new),
        resolved_issues=pick(resolved),
        regressed_issues=pick(regressed),
        open_issues=pick(still_open),
        top_patterns=top.reset_index(drop=True),
        new_patterns=new_errors.reset_index(drop=True),
        cpu=cpu,
        restart_count=_restarts(samples) if not samples.empty else 0,
        unseen_restarts=unseen if unseen is not None else pd.DataFrame(),
        unseen_restart_count=unseen_count,
        cpu_p95=p95,
    )
