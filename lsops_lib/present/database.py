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
from ..db.overview import DatabaseOverview
from .dboptimization import show_db_table
from .display import DASH, box_html, facts_html, guarded, show_html, show_notes, unavailable
from .source import StoreSource

__all__ = ["EMBEDDINGS_HEADERS", "DatabaseOverview", "database_overview", "show_database"]


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
