"""The DB optimization report: every check, gathered once, for the notebook to draw.

    report = optimization_report("prod", top_n=10)      # never raises for an outside failure
    report.reachable, report.error                        # a down database is a finding
    report.sections["indexes"].frames["unused"]           # DataFrames per section
    report.recommendations, report.summary                # findings by severity, with SQL

`show()` renders a DataFrame as an HTML table with every cell ESCAPED (query texts, names
and error messages are untrusted); `show_text()` likewise for one line of text.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import Settings, load_settings, redact_url
from ..exceptions import DatabaseError, ExtensionMissing, LsopsError
from . import embeddings, indexes, maintenance, queries, recommend, space
from .connect import Inspector, connect
from .settings import DbThresholds

__all__ = [
    "OptimizationReport",
    "Section",
    "optimization_report",
    "plot_embeddings",
    "plot_growth",
    "plot_top_tables",
    "show",
    "show_header",
    "show_recommendations",
    "show_section",
    "show_text",
    "thresholds_frame",
]

SECTION_TITLES = {
    "space": "Space",
    "indexes": "Indexes",
    "queries": "Queries",
    "maintenance": "Maintenance",
    "embeddings": "Embeddings indexing",
}


@dataclass
class Section:
    name: str
    title: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class OptimizationReport:
    database: str
    url: str | None
    reachable: bool
    error: str | None
    generated_at: pd.Timestamp
    top_n: int
    thresholds: DbThresholds
    database_bytes: int | None = None
    server_version: str | None = None
    sections: dict[str, Section] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)
    recommendations: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=recommend.RECOMMENDATION_COLUMNS)
    )
    summary: pd.DataFrame = field(
        default_factory=lambda: recommend.summary(
            pd.DataFrame(columns=recommend.RECOMMENDATION_COLUMNS)
        )
    )

    def section(self, name: str) -> Section:
        return self.sections[name]


def _open_store(settings: Settings | None, url: str | None = None) -> Any:
    """The metrics store for growth and query snapshots, if there is one (never created):
    `url`, else the settings' store."""
    if url is None:
        if settings is None:
            return None
        url = settings.store_url
    if url.startswith("sqlite:///"):
        from pathlib import Path

        if not Path(url[len("sqlite:///") :]).exists():
            return None
    try:
        from ..store import Store  # written by another module; optional here
    except ImportError:
        return None
    try:
        return Store(url)
    except Exception:  # noqa: BLE001 - a store that cannot open only costs the growth chart
        return None


def optimization_report(
    database: str | None = None,
    *,
    top_n: int = 10,
    thresholds: DbThresholds | None = None,
    settings: Settings | None = None,
    config: str | None = None,
    url: str | None = None,
    store: Any = None,
    **overrides: Any,
) -> OptimizationReport:
    """Run every check against the database NAMED `database` in the configuration (None:
    the configured default / LSOPS_DATABASE_URL). `overrides` are DbThresholds fields
    (None values ignored). `store` is a `Store`, a store URL, or None (the settings' store
    when it exists) for growth and slow-queries-per-hour. `url` bypasses the configuration
    (tests). Outside failures become `error` / section errors, not exceptions.
    """
    now = pd.Timestamp.now(tz="UTC")
    base_thresholds = thresholds
    error: str | None = None
    if settings is None and url is None:
        try:
            settings = load_settings(config, database=database)
        except LsopsError as exc:
            error = str(exc)
    if base_thresholds is None:
        base_thresholds = DbThresholds.from_settings(settings.thresholds if settings else None)
    t = base_thresholds.with_overrides(**overrides)
    name = database or (settings.database_name if settings else None) or "default"
    report = OptimizationReport(
        database=name,
        url=None,
        reachable=False,
        error=error,
        generated_at=now,
        top_n=int(top_n),
        thresholds=t,
    )
    for key, title in SECTION_TITLES.items():
        report.sections[key] = Section(key, title)
    if error is None and url is None:
        try:
            assert settings is not None
            url = settings.database(database)
        except LsopsError as exc:
            report.error = str(exc)
    if report.error is not None or url is None:
        _unreachable(report)
        return report
    report.url = redact_url(url)
    try:
        insp = connect(url)
    except LsopsError as exc:
        report.error = str(exc)
        _unreachable(report)
        return report
    report.reachable = True
    if store is None or isinstance(store, str):
        store = _open_store(settings, store)
    try:
        _gather(report, insp, store)
        try:  # with insp: suggested indexes are checked with hypopg when it is installed
            report.recommendations = recommend.recommendations(report.findings, t, insp=insp)
        except DatabaseError:
            report.recommendations = recommend.recommendations(report.findings, t)
    finally:
        insp.close()
    report.summary = recommend.summary(report.recommendations)
    return report


def _unreachable(report: OptimizationReport) -> None:
    message = f"database not inspected: {report.error}"
    for section in report.sections.values():
        section.errors.append(message)
    report.recommendations = pd.DataFrame(
        [
            {
                "severity": "critical",
                "kind": "unreachable",
                "object": report.database,
                "title": "The database could not be inspected",
                "evidence": report.error,
                "sql": None,
                "check": None,
            }
        ],
        columns=recommend.RECOMMENDATION_COLUMNS,
    )
    report.summary = recommend.summary(report.recommendations)


def _try(section: Section, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ExtensionMissing as exc:
        section.notes.append(str(exc))
    except DatabaseError as exc:
        section.errors.append(f"{what}: {exc}")
    return None


def _gather(report: OptimizationReport, insp: Inspector, store: Any) -> None:
    t, n, f = report.thresholds, report.top_n, report.findings
    report.server_version = _try(
        report.sections["space"], "version", lambda: insp.setting("server_version")
    )

    # --- space
    sec = report.sections["space"]
    report.database_bytes = _try(sec, "database size", lambda: space.database_size(insp))
    sizes = _try(sec, "table sizes", lambda: space.table_sizes(insp))
    if sizes is not None:
        sec.frames["tables"] = sizes.head(n)
        f["tables"] = sizes
    if store is not None:
        snaps = _try(sec, "size snapshots", lambda: space.growth(store, report.database))
        if snaps is not None and not snaps.empty:
            sec.frames["growth_total"] = space.total_growth(snaps)
            sec.frames["growth_tables"] = space.table_growth(snaps).head(n)
    if "growth_total" not in sec.frames:
        sec.notes.append(
            "no size snapshots stored for this database: run `lsops collect --db` daily "
            "to see growth"
        )

    # --- indexes
    sec = report.sections["indexes"]
    catalog = _try(sec, "index catalog", lambda: indexes.index_catalog(insp))
    if catalog is not None:
        for key, fn in (
            ("unused", indexes.unused_indexes),
            ("duplicate", indexes.duplicate_indexes),
            ("invalid", indexes.invalid_indexes),
        ):
            value = _try(sec, key, lambda fn=fn: fn(insp, catalog))
            if value is not None:
                sec.frames[key] = value
                f[key] = value
    for key, fn2 in (
        ("fk_without_index", lambda: indexes.fk_without_index(insp)),
        ("seq_scan", lambda: indexes.seq_scan_tables(insp, t).head(n)),
        ("vector", lambda: indexes.vector_indexes(insp)),
    ):
        value = _try(sec, key, fn2)
        if value is not None:
            sec.frames[key] = value
            f[key] = value
    reset = _try(sec, "statistics reset", lambda: indexes.stats_reset(insp))
    if reset is not None:
        if reset["stats_reset"] is None:
            sec.notes.append(
                "usage statistics never reset: scans counted since the database was created"
            )
        else:
            sec.notes.append(
                f"usage statistics reset {reset['stats_reset']:%Y-%m-%d %H:%M} UTC "
                f"({reset['stats_age_days']:.1f} days ago): 'unused' means unused since then"
            )
    if "vector" in sec.frames and sec.frames["vector"].empty:
        sec.notes.append("no vector (HNSW / IVFFlat) index in this database")

    # --- queries
    sec = report.sections["queries"]
    status = _try(sec, "pg_stat_statements", lambda: queries.status(insp)) or {
        "available": False,
        "message": "unknown",
    }
    f["queries_status"] = status
    if status.get("available"):
        for key, fn3 in (
            ("top_total", lambda: queries.top_by_total(insp, n)),
            ("top_mean", lambda: queries.top_by_mean(insp, n)),
            ("slow", lambda: queries.slow_queries(insp, t)),
        ):
            value = _try(sec, key, fn3)
            if value is not None:
                sec.frames[key] = value
                f[key] = value
        if status.get("stats_reset") is not None:
            sec.notes.append(
                f"pg_stat_statements counting since {status['stats_reset']:%Y-%m-%d %H:%M} UTC"
            )
    else:
        sec.notes.append(str(status.get("message")))
    if store is not None:
        per_hour = _try(
            sec,
            "slow queries per hour",
            lambda: queries.slow_per_hour_from_store(store, report.database, thresholds=t),
        )
        if per_hour is not None and not per_hour.empty:
            sec.frames["slow_per_hour"] = per_hour
            f["slow_per_hour"] = per_hour

    # --- maintenance
    sec = report.sections["maintenance"]
    for key, fn4 in (
        ("dead_tuples", lambda: maintenance.dead_tuple_tables(insp, t)),
        ("tables", lambda: maintenance.table_maintenance(insp).head(n)),
        ("bloat", lambda: maintenance.table_bloat(insp, t).head(n)),
        ("wraparound", lambda: maintenance.database_wraparound(insp, t)),
        ("table_wraparound", lambda: maintenance.table_wraparound(insp, n)),
        ("sequences", lambda: maintenance.sequences_near_max(insp, t)),
        ("long_running", lambda: maintenance.long_running_queries(insp, t)),
        ("idle_in_transaction", lambda: maintenance.idle_in_transaction(insp, t)),
        ("connections", lambda: maintenance.connections(insp, t)),
        ("cache", lambda: maintenance.cache_hit_ratios(insp, t)),
    ):
        value = _try(sec, key, fn4)
        if value is not None:
            sec.frames[key] = value
            f[key] = value

    # --- embeddings
    sec = report.sections["embeddings"]
    if not insp.has_table("context_embeddings"):
        sec.notes.append("no context_embeddings table: not a LongSang database")
        return
    for key, fn5 in (
        ("by_entity_type", lambda: embeddings.by_entity_type(insp)),
        ("log", lambda: embeddings.log_by_status(insp)),
        ("latest_failures", lambda: embeddings.latest_failures(insp, n)),
        ("coverage", lambda: embeddings.coverage(insp)),
        ("missing", lambda: embeddings.missing_entities(insp, n)),
    ):
        value = _try(sec, key, fn5)
        if value is not None:
            sec.frames[key] = value
            f[f"embeddings_{key}"] = value
    log = f.get("embeddings_log")
    if isinstance(log, pd.DataFrame):
        f["embeddings_log"] = {
            **{str(r.status): int(r.count) for r in log.itertuples(index=False)},
            "tokens_used": int(log["tokens_used"].sum()),
        }


# --- rendering (escaped) ------------------------------------------------------------------


def _human_bytes(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(number) < 1024 or unit == "TB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return value  # pragma: no cover


def to_html(df: pd.DataFrame, *, max_rows: int = 50, max_text: int = 300) -> str:
    """A DataFrame as an HTML table, every cell escaped; long texts cut; bytes made human."""
    view = df.head(max_rows).copy()
    for col in view.columns:
        if pd.api.types.is_datetime64_any_dtype(view[col]):
            view[col] = view[col].map(lambda v: "" if pd.isna(v) else f"{v:%Y-%m-%d %H:%M}")
        elif str(view[col].dtype) in ("Int64", "boolean"):
            view[col] = view[col].astype(object).where(view[col].notna(), None)
        if str(col).endswith("_bytes"):
            view[col] = view[col].map(_human_bytes)
        elif view[col].dtype == object:
            view[col] = view[col].map(
                lambda v: (v[:max_text] + "…") if isinstance(v, str) and len(v) > max_text else v
            )
    return view.to_html(
        index=False, escape=True, na_rep="", border=0, float_format=lambda x: f"{x:,.4g}"
    )


def _display_html(markup: str) -> None:
    try:
        from IPython.display import HTML, display

        display(HTML(markup))
    except ImportError:  # pragma: no cover - outside Jupyter
        print(markup)


def show_text(text: str, *, tag: str = "p") -> None:
    """One line of (untrusted) text, escaped."""
    _display_html(f"<{tag}>{html.escape(str(text))}</{tag}>")


def show(
    df: pd.DataFrame | None, title: str | None = None, *, max_rows: int = 50, empty: str = "none"
) -> None:
    """A titled, escaped HTML table (or `empty` when there are no rows)."""
    head = f"<h4>{html.escape(title)}</h4>" if title else ""
    if df is None or df.empty:
        _display_html(f"{head}<p><em>{html.escape(empty)}</em></p>")
        return
    more = f"<p><em>{len(df) - max_rows} more rows not shown</em></p>" if len(df) > max_rows else ""
    _display_html(head + to_html(df, max_rows=max_rows) + more)


FRAME_TITLES = {
    "tables": "Largest tables",
    "growth_total": "Database size per snapshot",
    "growth_tables": "Fastest growing tables",
    "unused": "Unused indexes",
    "duplicate": "Duplicate or redundant indexes",
    "invalid": "Invalid indexes",
    "fk_without_index": "Foreign keys without an index",
    "seq_scan": "Tables read mostly by sequential scans",
    "vector": "Vector indexes",
    "top_total": "Top queries by total time",
    "top_mean": "Top queries by mean time",
    "slow": "Slow queries",
    "slow_per_hour": "Slow queries per hour (from stored snapshots)",
    "dead_tuples": "Tables due a VACUUM (dead tuples)",
    "tables_maintenance": "Vacuum and analyze per table",
    "bloat": "Table bloat (estimate)",
    "wraparound": "Transaction ID and multixact wraparound",
    "table_wraparound": "Oldest tables (xid age)",
    "sequences": "Sequences near their maximum",
    "long_running": "Long-running queries",
    "idle_in_transaction": "Sessions idle in transaction",
    "connections": "Connections",
    "cache": "Cache hit ratios",
    "by_entity_type": "Embeddings per entity type (the runbook's weekly check)",
    "log": "Indexing log by status",
    "latest_failures": "Latest indexing failures",
    "coverage": "Coverage: entities, embeddings, missing, stale, null",
    "missing": "Entities without an embedding",
}


def show_section(report: OptimizationReport, name: str, *, only: list[str] | None = None) -> None:
    """Errors and notes of a section, then its tables (escaped)."""
    section = report.sections[name]
    for error in section.errors:
        show_text(f"⚠ {error}", tag="p")
    for note in section.notes:
        show_text(note, tag="p")
    for key, df in section.frames.items():
        if only is not None and key not in only:
            continue
        title = FRAME_TITLES.get(
            "tables_maintenance" if (name, key) == ("maintenance", "tables") else key, key
        )
        show(df, title)


def plot_top_tables(df: pd.DataFrame, ax: Any = None, *, n: int = 10) -> Any:
    """Horizontal stacked bars: heap, TOAST and index bytes of the largest tables."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, max(2.5, 0.4 * min(n, len(df)) + 1)))
    top = df.head(n).iloc[::-1]
    labels = [f"{s}.{t}" for s, t in zip(top["schema"], top["table"], strict=False)]
    mb = 1024 * 1024
    left = None
    for col, label in (
        ("table_bytes", "heap"),
        ("toast_bytes", "TOAST"),
        ("index_bytes", "indexes"),
    ):
        values = top[col].astype(float) / mb
        ax.barh(labels, values, left=left, label=label)
        left = values if left is None else left + values
    ax.set_xlabel("MB")
    ax.set_title("Largest tables")
    ax.legend(loc="lower right")
    return ax


def plot_growth(totals: pd.DataFrame, ax: Any = None) -> Any:
    """Database size per snapshot (sum over tables)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(8, 3))
    mb = 1024 * 1024
    ax.plot(totals["ts"], totals["total_bytes"].astype(float) / mb, marker="o", label="total")
    ax.plot(totals["ts"], totals["index_bytes"].astype(float) / mb, marker=".", label="indexes")
    ax.set_ylabel("MB")
    ax.set_title("Database size over time")
    ax.legend()
    return ax


def plot_embeddings(by_type: pd.DataFrame, ax: Any = None) -> Any:
    """Embeddings per entity type (the runbook's weekly check) as bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(by_type["entity_type"].astype(str), by_type["count"].astype(int))
    ax.set_ylabel("embeddings")
    ax.set_title("Embeddings per entity type")
    return ax


def show_header(report: OptimizationReport) -> None:
    """Which database (by NAME, never its URL), when, and whether it could be inspected."""
    parts = [
        f"<p><strong>Database:</strong> {html.escape(report.database)}"
        + (
            f" (PostgreSQL {html.escape(str(report.server_version))})"
            if report.server_version
            else ""
        )
        + f" &middot; <strong>generated:</strong> {report.generated_at:%Y-%m-%d %H:%M} UTC"
        + f" &middot; <strong>top N:</strong> {report.top_n}</p>"
    ]
    if report.reachable:
        size = (
            _human_bytes(report.database_bytes) if report.database_bytes is not None else "unknown"
        )
        parts.append(f"<p><strong>Size:</strong> {html.escape(str(size))}</p>")
    else:
        parts.append(
            '<div style="border:2px solid #c0392b;padding:8px;">'
            "<strong>The database could not be inspected.</strong> "
            f"{html.escape(str(report.error))}<br>Every section below is empty for that reason.</div>"
        )
    _display_html("".join(parts))


def show_recommendations(report: OptimizationReport) -> None:
    """Each recommendation: severity, title, evidence and the SQL to run (printed only)."""
    recs = report.recommendations
    if recs.empty:
        show_text("No recommendations: nothing found above the thresholds.")
        return
    blocks = []
    for r in recs.itertuples(index=False):
        block = (
            f"<div style='margin-bottom:10px'><strong>[{html.escape(str(r.severity))}]</strong> "
            f"{html.escape(str(r.title))}<br><em>Evidence:</em> {html.escape(str(r.evidence))}"
        )
        if isinstance(r.check, str) and r.check:
            block += f"<br><em>Checked:</em> {html.escape(r.check)}"
        if isinstance(r.sql, str) and r.sql:
            block += f"<pre>{html.escape(r.sql)}</pre>"
        blocks.append(block + "</div>")
    _display_html("".join(blocks))


def thresholds_frame(report: OptimizationReport) -> pd.DataFrame:
    """The thresholds the verdicts used: name, value."""
    return pd.DataFrame(sorted(report.thresholds.as_dict().items()), columns=["threshold", "value"])
