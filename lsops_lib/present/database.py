"""The database section of the monthly review, shown.

    db = present.database_overview(settings, database, source, start, end)   # the data
    present.show_database(db, review)                                         # shown

The data is `lsops_lib.db.overview` (this module opens no connection and runs no query);
the tables are formatted as in the DB optimization report (`present.dboptimization`), the
chart is `plots.database_month`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt, plots
from ..config import Settings
from ..db import overview
from ..db.overview import DatabaseOverview, RetrievalOverview
from .dboptimization import show_db_table
from .display import DASH, box_html, facts_html, guarded, show_html, show_notes, unavailable
from .source import StoreSource

__all__ = [
    "EMBEDDINGS_HEADERS",
    "DatabaseOverview",
    "RetrievalOverview",
    "database_overview",
    "retrieval_overview",
    "show_database",
    "show_retrieval",
]


def _month_axis(ax: Any, review: Any) -> None:
    ax.set_xlim(pd.Timestamp(review.start), pd.Timestamp(review.end))


def database_overview(
    settings: Settings,
    database: str | None,
    source: StoreSource,
    start: datetime,
    end: datetime,
) -> DatabaseOverview:
    """`lsops_lib.db.overview.database_overview` with the review's store: size, growth over
    [start, end) and embeddings indexing of the configured database. Never raises."""
    return overview.database_overview(settings, database, source.store, start, end)


# the review's embeddings tables: the DB report's headers, and the review's own wording
EMBEDDINGS_HEADERS = {
    "entity_type": "entity type",
    "last_indexed": "last indexed",
    "last_updated": "last updated",
    "tokens_used": "tokens used",
    "source_table": "source table",
    "null_embeddings": "NULL embeddings",
}
EMBEDDINGS_TITLES = {
    "by_entity_type": "Embeddings per entity type (the runbook's weekly check)",
    "log": "Indexing log by status",
    "coverage": "Coverage: entities, embedded, missing, stale",
}
TABLE_COLUMNS = [
    "schema",
    "table",
    "total_bytes",
    "table_bytes",
    "index_bytes",
    "toast_bytes",
    "rows_estimate",
]


@guarded("Database")
def show_database(db: DatabaseOverview | None, review: Any = None, *, chart: bool = True) -> None:
    """The facts (size, growth), the growth chart (`chart=False`: the notebook draws it, e.g.
    `plots.database_month(db.growth, review.start, review.end)`), the largest tables, the
    embeddings indexing, the notes. Not configured or down: a box saying so."""
    if db is None:
        unavailable("Database", "not inspected")
        return
    if not db.configured:
        unavailable("Database", str(db.reason or "no database configured"))
        return
    if not db.available:
        unavailable(
            "Database", f"{db.reason}. Size, tables and embeddings indexing are unknown this month."
        )
    else:
        show_html(
            facts_html(
                [
                    ("Database", db.name),
                    ("Size now", fmt.size(db.size_bytes)),
                    (
                        "Growth in the month (stored snapshots)",
                        fmt.size(db.growth_bytes) if db.growth_bytes is not None else DASH,
                    ),
                    *_forecast_rows(db),
                ]
            )
        )
    if chart and db.growth is not None and len(db.growth) > 1:
        import matplotlib.pyplot as plt

        start, end = (review.start, review.end) if review is not None else (None, None)
        plots.database_month(db.growth, start, end)
        plt.show()
    if db.tables is not None:
        tables = db.tables[[c for c in TABLE_COLUMNS if c in db.tables.columns]]
        show_db_table(tables, "Largest tables", max_rows=10, headers={"table_bytes": "heap"})
    log = db.embeddings.get("log")
    if log is not None and not log.empty and {"status", "count"} <= set(log.columns):
        counts = ", ".join(f"{int(r.count):,} {r.status}" for r in log.itertuples(index=False))
        failed = int(log.loc[log["status"] == "failed", "count"].sum())
        show_html(
            box_html(
                "Embeddings indexing log",
                counts + (" (see the DB optimization report for the failures)" if failed else ""),
                kind="warning" if failed else "good",
            )
        )
    for key, frame in db.embeddings.items():
        show_db_table(frame, EMBEDDINGS_TITLES.get(key, key), headers=EMBEDDINGS_HEADERS)
    show_notes(db.notes, title="Notes")


# --- issue 15: the capacity forecast and retrieval quality ----------------------------------


def _forecast_rows(db: DatabaseOverview) -> list[tuple[str, str]]:
    """The size limit's date as of the month's end (`db.forecast`), or why there is none."""
    fc = db.forecast
    if fc is None:
        return []
    limit = fmt.size(fc.limit_bytes)
    if fc.status == "ok" and fc.reaches_limit_on is not None:
        rng = fc.reaches_limit_range or (None, None)
        text = (
            f"{fc.reaches_limit_on.isoformat()} (between {rng[0] or DASH} and "
            f"{rng[1] or 'not foreseeable'}), at {fmt.size(fc.growth_bytes_per_day)}/day"
        )
    else:
        text = fc.message
    if fc.status == "no_limit":
        return [("Size limit", f"none set: {text}")]
    return [(f"Size limit {limit} reached on (forecast)", text)]


def retrieval_overview(settings: Settings, database: str | None) -> RetrievalOverview:
    """`lsops_lib.db.overview.retrieval_overview`: recall@k of the vector indexes and the
    similarity threshold's share, read-only, measured once per review. Never raises."""
    return overview.retrieval_overview(settings, database)


@guarded("Retrieval quality")
def show_retrieval(
    retrieval: RetrievalOverview | None, review: Any = None, *, endpoint: str = "/context/search"
) -> None:
    """Next to the month's latency of `endpoint` (from `review.endpoints`): recall@k of the
    searched column's vector index (the database as it is now) and the share of sampled
    queries whose nearest other row reaches the similarity threshold."""
    rows: list[tuple[str, str]] = []
    endpoints = getattr(review, "endpoints", None) if review else None
    if isinstance(endpoints, pd.DataFrame) and "endpoint" in endpoints:
        row = endpoints[endpoints["endpoint"] == endpoint]
        if len(row):
            r = row.iloc[0]
            rows.append(
                (
                    f"{endpoint} mean latency (counter deltas)",
                    f"{fmt.ms(r.get('mean_ms'))} over {fmt.integer(r.get('requests'))} requests",
                )
            )
    if retrieval is None or not retrieval.available or retrieval.quality is None:
        if rows:
            show_html(facts_html(rows))
        why = retrieval.reason if retrieval is not None else "not inspected"
        # shown, not recorded: the database section records a database that is down
        unavailable(
            "Retrieval quality",
            f"{why}. Recall and the threshold share are unknown.",
            record=False,
        )
        return
    rq = retrieval.quality
    first = rq.indexes.iloc[0] if len(rq.indexes) else None
    if first is not None and not fmt.missing(first["recall_at_k"]):
        suggestion = (
            f"; {first['setting']} = {int(first['suggested'])} reaches {rq.target:g}"
            if not fmt.missing(first["suggested"])
            else ""
        )
        rows.append(
            (
                f"Recall@{rq.k} of {first['index']} (now, {int(rq.sample)} sampled queries)",
                f"{float(first['recall_at_k']):.2f} at {first['setting']} = "
                f"{first['current']}{suggestion}",
            )
        )
    else:
        note = first["note"] if first is not None else "no vector index"
        rows.append((f"Recall@{rq.k}", str(note or "not measured")))
    t = rq.threshold
    if t is not None:
        rows.append(
            (
                f"Queries whose nearest other row reaches similarity {t['value']:g}",
                f"{fmt.pct(t['share_with_result'])} (top-1 median {fmt.number(t['top1_median'])})",
            )
        )
    show_html(facts_html(rows))
