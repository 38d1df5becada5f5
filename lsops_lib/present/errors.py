"""The monthly review's "Errors" section, shown (issue 10).

    errors = present.errors.errors_review(settings, source, start, end, target=target)
    present.errors.show_errors(errors)                              # boxes and tables
    plots.pm2_cpu(errors.cpu, settings.thresholds, restarts=errors.unseen_restarts)

The data is `lsops_lib.sources.review` (what `lsops collect` stored of Sentry, the logs
and pm2); nothing here asks Sentry or reads a log. Each part opens with a box: blue "not
configured" (saying how), red "unknown" when the month holds no data of it (no Sentry
collection in the month, no log line, no pm2 sample: no data is not a pass), green when
nothing needs a look, amber otherwise. Titles, culprits, templates and log lines are
untrusted: every cell is escaped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt
from ..config import Settings
from ..exceptions import ConfigError
from ..sources.review import ErrorsReview
from ..sources.review import errors_review as _errors_review
from ..sources.settings import source_settings
from ..store import sources as tables
from .display import box_html, esc, facts_html, guarded, show_html, show_table
from .source import StoreSource

__all__ = ["errors_review", "show_errors"]

_ISSUE_HEADERS = {
    "short_id": "issue",
    "level": "level",
    "title": "title",
    "culprit": "culprit",
    "events": "events (month)",
    "first_seen": "first seen",
    "last_seen": "last seen",
    "permalink": "link",
}
_PATTERN_HEADERS = {
    "pattern_id": "pattern",
    "level": "level",
    "template": "template",
    "count": "entries",  # a multi-line entry (a stack trace) is one
    "baseline": "month before",
    "first_seen": "first seen",
    "example": "example (first line)",
}


def errors_review(
    settings: Settings,
    source: StoreSource,
    start: datetime,
    end: datetime,
    *,
    target: str | None = None,
) -> ErrorsReview | None:
    """`sources.review.errors_review` of the review's store over [start, end); None when
    the store is not available (the section then says so). Its `collected`: the sources
    with a successful collection in the window (Sentry's issues are a snapshot: without
    a collection in the month, zero issues is not known)."""
    if not source.available:
        return None
    try:
        sources = source_settings(settings)
    except ConfigError:
        sources = None
    review = _errors_review(
        source.store, start, end, settings.thresholds, target=target, sources=sources
    )
    runs = tables.source_runs(source.store, target, start, end)
    ok = runs[runs["ok"].astype(bool)] if not runs.empty else runs
    review.collected = set(ok["source"].astype(str))  # type: ignore[attr-defined]
    return review


def _first_line(value: Any) -> str:
    return str(value).split("\n", 1)[0]


def _box(
    title: str, configured: bool, how: str, attention: bool, text: str, no_data: str | None = None
) -> None:
    """The part's box: not configured (how to), unknown (`no_data`: why), ok or attention."""
    if not configured:
        show_html(box_html(f"{title}: not configured", f"set {how}", kind="info"))
    elif no_data:
        show_html(box_html(f"{title}: unknown", no_data, kind="unavailable"))
    else:
        label = "attention" if attention else "ok"
        show_html(box_html(f"{title}: {label}", text, kind="warning" if attention else "good"))


@guarded("Errors")
def show_errors(review: ErrorsReview | None) -> None:
    """Sentry, the logs and pm2 of the month, each its box then its tables (escaped)."""
    if review is None:
        show_html(box_html("Errors: unavailable", "no usable metrics store", kind="unavailable"))
        return
    c, how = review.configured, review.how
    collected = getattr(review, "collected", None)  # None: not known (then judged on its data)
    opened = len(review.open_issues)
    _box(
        "Sentry",
        c["sentry"],
        how["sentry"],
        opened > 0 or not review.regressed_issues.empty,
        f"{len(review.new_issues)} new, {len(review.resolved_issues)} resolved, "
        f"{len(review.regressed_issues)} regressed, {opened} still open",
        None
        if collected is None or "sentry" in collected
        else "no collection of Sentry in the month: is `lsops collect` running?",
    )
    if c["sentry"]:
        for frame, title in (
            (review.new_issues, "New issues"),
            (review.regressed_issues, "Regressed issues"),
            (review.resolved_issues, "Resolved issues"),
            (review.open_issues, "Still open (at the last collection)"),
        ):
            show_table(frame, title, columns=_ISSUE_HEADERS, max_rows=15, empty="none")
    _box(
        "Logs",
        c["logs"],
        how["logs"],
        not review.new_patterns.empty,
        fmt.counted(len(review.new_patterns), "new error pattern"),
        "no log line collected in the month: is `lsops collect` running?"
        if review.top_patterns.empty
        else None,
    )
    if c["logs"]:
        formats = {"example": _first_line, "first_seen": fmt.instant}
        show_table(
            review.new_patterns,
            "New error patterns (never seen before the month)",
            formats,
            columns=_PATTERN_HEADERS,
            max_rows=15,
            empty="none",
        )
        show_table(
            review.top_patterns,
            "Top log patterns",
            formats,
            columns=_PATTERN_HEADERS,
            max_rows=10,
            empty="no log line collected in the month",
        )
    no_samples = review.cpu.empty
    _box(
        "pm2",
        c["pm2"],
        how["pm2"],
        review.restart_count > 0,
        f"{fmt.counted(review.restart_count, 'restart')}; "
        f"CPU p95 {fmt.number(review.cpu_p95, 3)} % of one core",
        "no pm2 sample collected in the month: is `lsops collect` running?" if no_samples else None,
    )
    if c["pm2"] and not no_samples:
        show_html(
            facts_html(
                [
                    ("Restarts (pm2's counter)", fmt.integer(review.restart_count)),
                    (
                        "Of them not seen by the scrapes",
                        fmt.integer(review.unseen_restart_count),
                    ),
                    ("CPU samples", f"{len(review.cpu):,}"),
                ]
            )
        )
        if isinstance(review.unseen_restarts, pd.DataFrame) and not review.unseen_restarts.empty:
            show_table(
                review.unseen_restarts,
                "Restarts the scrapes did not see",
                columns={"start": "after", "end": "before", "detail": "detail"},
            )
    show_html(f"<p><em>{esc('From what lsops collect stored of each source.')}</em></p>")
