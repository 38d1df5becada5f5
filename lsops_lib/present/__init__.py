"""What the report notebooks show: escaped HTML, tables, charts in the shared look, and
one machine-readable block of key figures per report.

    present.display      display primitives: escaped HTML, boxes, tables, `guarded`
    present.figures     key figures (`key_figures`, `read_key_figures`)
    present.source      where a report's data comes from (`open_store`, `resolve_month`)
    present.monthly     the monthly performance review
    present.database    the database section of the review
    present.dboptimization  the DB optimization report
    present.postmortem  the incident postmortem
    present.alerts      alerting in the reports (issue 11)

Rules kept here, once:

- Every piece of text that comes from data (endpoint names, error messages, titles,
  failure reasons) is escaped; no HTML is ever built from data without escaping.
- A section whose data is missing or whose source is down shows a visible box saying
  what is missing and why (`unavailable`), never a traceback: every `show_*` function is
  guarded (`guarded`), and a failure is recorded in `PROBLEMS` (listed in the key figures).
- No SQL, HTTP or business rule here: figures and rules come from `lsops_lib.analysis`,
  database facts from `lsops_lib.db`, text formats from `lsops_lib.fmt`.
"""

from __future__ import annotations

from . import alerts as alerts  # issue 11: the alerts of the month, the first alert
from .database import (
    EMBEDDINGS_HEADERS,
    DatabaseOverview,
    database_overview,
    show_database,
)
from .display import (
    DASH,
    PROBLEMS,
    TO_BE_WRITTEN,
    badge_html,
    begin,
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
    more_rows,
    show_html,
    show_notes,
    show_table,
    show_text,
    status_label,
    table_html,
    todo,
    unavailable,
)
from .figures import (
    KEY_FIGURES_TAG,
    jsonable,
    key_figures,
    read_key_figures,
)
from .monthly import (
    ENDPOINT_COLUMNS,
    ENDPOINT_FORMATS,
    INCIDENT_COLUMNS,
    budget_frame,
    changes_frame,
    load_review,
    main_changes,
    month_window,
    review_figures,
    show_daily_trends,
    show_data_quality,
    show_endpoints,
    show_incidents,
    show_latency,
    show_memory,
    show_review_header,
    show_summary,
    targets_frame,
)
from .postmortem import (
    ACTION_COLUMNS,
    Window,
    choose_window,
    finding,
    harm_table,
    impact_sentence,
    load_postmortem,
    postmortem_figures,
    show_action_items,
    show_detection,
    show_evidence,
    show_impact,
    show_lessons,
    show_pm_summary,
    show_postmortem_header,
    show_resolution,
    show_timeline,
    show_window_charts,
)
from .source import (
    StoreSource,
    month_title,
    open_store,
    resolve_month,
    resolve_target,
)

__all__ = [
    "DASH",
    "PROBLEMS",
    "TO_BE_WRITTEN",
    "begin",
    "show_html",
    "esc",
    "show_text",
    "show_notes",
    "box_html",
    "unavailable",
    "todo",
    "guarded",
    "fmt_pct",
    "fmt_ms",
    "fmt_bytes",
    "fmt_int",
    "fmt_num",
    "fmt_ts",
    "fmt_duration",
    "fmt_hours",
    "fmt_rel",
    "fmt_pp",
    "status_label",
    "badge_html",
    "table_html",
    "more_rows",
    "show_table",
    "facts_html",
    "KEY_FIGURES_TAG",
    "jsonable",
    "key_figures",
    "read_key_figures",
    "StoreSource",
    "open_store",
    "resolve_target",
    "resolve_month",
    "month_title",
    "load_review",
    "targets_frame",
    "budget_frame",
    "changes_frame",
    "main_changes",
    "show_summary",
    "show_latency",
    "show_daily_trends",
    "show_memory",
    "ENDPOINT_COLUMNS",
    "ENDPOINT_FORMATS",
    "show_endpoints",
    "INCIDENT_COLUMNS",
    "show_incidents",
    "show_data_quality",
    "review_figures",
    "month_window",
    "show_review_header",
    "DatabaseOverview",
    "database_overview",
    "EMBEDDINGS_HEADERS",
    "show_database",
    "Window",
    "choose_window",
    "finding",
    "harm_table",
    "impact_sentence",
    "load_postmortem",
    "show_postmortem_header",
    "show_pm_summary",
    "show_impact",
    "show_timeline",
    "show_detection",
    "show_resolution",
    "show_evidence",
    "show_window_charts",
    "ACTION_COLUMNS",
    "show_action_items",
    "show_lessons",
    "postmortem_figures",
]

# the DB optimization report (present/dboptimization.py)
from .dboptimization import (  # noqa: E402
    db_cell,
    db_table_html,
    show_db_section,
    show_db_table,
    show_optimization_header,
    show_recommendations,
)

__all__ += [
    "db_cell",
    "db_table_html",
    "show_db_section",
    "show_db_table",
    "show_optimization_header",
    "show_recommendations",
]

# issue 12: the monthly review's security section (present.security.show_security)
# issue 10: the monthly review's Errors section (present.errors.show_errors)
from . import errors, security  # noqa: E402, F401
