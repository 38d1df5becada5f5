"""The database section of the monthly review."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from .. import plots
from ..config import Settings
from .display import (
    DASH,
    box_html,
    facts_html,
    fmt_bytes,
    guarded,
    show_html,
    show_notes,
    show_table,
    unavailable,
)
from .source import StoreSource, _scrub

# --- database -----------------------------------------------------------------------------------


def _month_axis(ax: Any, review: Any) -> None:
    ax.set_xlim(pd.Timestamp(review.start), pd.Timestamp(review.end))


@dataclass
class DatabaseOverview:
    name: str | None
    configured: bool
    available: bool
    reason: str | None = None
    size_bytes: int | None = None
    tables: pd.DataFrame | None = None
    growth: pd.DataFrame | None = None  # ts, total_bytes, ... (snapshots of the month)
    growth_bytes: float | None = None
    embeddings: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "configured": self.configured,
            "available": self.available,
            "reason": self.reason,
            "size_bytes": self.size_bytes,
            "growth_bytes": self.growth_bytes,
        }


def database_overview(
    settings: Settings,
    database: str | None,
    source: StoreSource,
    start: datetime,
    end: datetime,
) -> DatabaseOverview:
    """Size, growth over [start, end) (from `lsops collect --db` snapshots) and embeddings
    indexing of the configured database, read-only. Never raises: a database that is not
    configured or down is `available=False` with the reason."""
    from ..db import embeddings, space
    from ..db.connect import connect
    from ..exceptions import LsopsError

    try:
        url = settings.database(database)
    except LsopsError as exc:
        return DatabaseOverview(name=database, configured=False, available=False, reason=str(exc))
    name = database or settings.database_name or "default"
    out = DatabaseOverview(name=name, configured=True, available=False)
    try:
        snaps = space.growth(source.store, name, start, end)
        if snaps is not None and not snaps.empty:
            total = space.total_growth(snaps)
            out.growth = total
            out.growth_bytes = float(total["total_bytes"].iloc[-1] - total["total_bytes"].iloc[0])
    except Exception as exc:  # noqa: BLE001
        out.notes.append(_scrub(f"size snapshots unreadable: {exc}", settings))
    if out.growth is None:
        out.notes.append(
            "no size snapshot stored in this month: run 'lsops collect --db' daily to see growth"
        )
    try:
        insp = connect(url)
    except Exception as exc:  # noqa: BLE001 - DatabaseError and anything else: a finding
        out.reason = _scrub(
            f"cannot connect to the database {name}: {exc}".splitlines()[0], settings
        )
        return out
    out.available = True
    try:
        for what, fn in (
            ("database size", lambda: setattr(out, "size_bytes", int(space.database_size(insp)))),
            ("table sizes", lambda: setattr(out, "tables", space.table_sizes(insp))),
        ):
            try:
                fn()
            except LsopsError as exc:
                out.notes.append(_scrub(f"{what}: {exc}", settings))
        if insp.has_table("context_embeddings"):
            for key, fn2 in (
                ("by_entity_type", lambda: embeddings.by_entity_type(insp)),
                ("log", lambda: embeddings.log_by_status(insp)),
                ("coverage", lambda: embeddings.coverage(insp)),
            ):
                try:
                    out.embeddings[key] = fn2()
                except LsopsError as exc:
                    out.notes.append(_scrub(f"embeddings {key}: {exc}", settings))
        else:
            out.notes.append("no context_embeddings table: embeddings indexing not checked")
    finally:
        insp.close()
    return out


EMBEDDINGS_HEADERS = {
    "entity_type": "entity type",
    "last_indexed": "last indexed",
    "last_updated": "last updated",
    "tokens_used": "tokens used",
    "source_table": "source table",
    "null_embeddings": "NULL embeddings",
}


@guarded("Database")
def show_database(db: DatabaseOverview | None, review: Any = None) -> None:
    if db is None:
        unavailable("Database", "not inspected")
        return
    if not db.configured:
        unavailable(
            "Database",
            str(db.reason or "no database configured"),
        )
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
                    ("Size now", fmt_bytes(db.size_bytes)),
                    (
                        "Growth in the month (stored snapshots)",
                        fmt_bytes(db.growth_bytes) if db.growth_bytes is not None else DASH,
                    ),
                ]
            )
        )
    if db.growth is not None and len(db.growth) > 1:
        import matplotlib.pyplot as plt

        with plots.style():
            fig, ax = plots.figure(3.0)
            plots.timeseries(
                ax,
                db.growth,
                "ts",
                "total_bytes",
                f"The database grew by {fmt_bytes(db.growth_bytes)} over the month's snapshots",
                ylabel="size",
            )
            plots.bytes_axis(ax)
            if review is not None:
                _month_axis(ax, review)
            plt.show()
    if db.tables is not None:
        show_table(
            db.tables,
            "Largest tables",
            {c: fmt_bytes for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes")},
            columns={
                "schema": "schema",
                "table": "table",
                "total_bytes": "total",
                "table_bytes": "heap",
                "index_bytes": "indexes",
                "toast_bytes": "TOAST",
                "rows_estimate": "rows (estimate)",
            },
            max_rows=10,
        )
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
    titles = {
        "by_entity_type": "Embeddings per entity type (the runbook's weekly check)",
        "log": "Indexing log by status",
        "coverage": "Coverage: entities, embedded, missing, stale",
    }
    for key, frame in db.embeddings.items():
        show_table(
            frame,
            titles.get(key, key),
            columns={c: EMBEDDINGS_HEADERS.get(c, str(c).replace("_", " ")) for c in frame.columns},
        )
    show_notes(db.notes, title="Notes")
