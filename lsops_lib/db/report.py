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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
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
        # for the chart's title only (the frame's data and the JSON stay as they are)
        sec.frames["tables"].attrs["database_bytes"] = report.database_bytes
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
    by_type, cov = sec.frames.get("by_entity_type"), sec.frames.get("coverage")
    if by_type is not None and cov is not None and {"entity_type", "entities"} <= set(cov):
        # for the chart's target marks only: how many source entities each type has
        by_type.attrs["entities"] = {
            str(r.entity_type): int(r.entities)
            for r in cov.itertuples(index=False)
            if isinstance(r.source_table, str) and not _missing(r.entities)
        }
    log = f.get("embeddings_log")
    if isinstance(log, pd.DataFrame):
        f["embeddings_log"] = {
            **{str(r.status): int(r.count) for r in log.itertuples(index=False)},
            "tokens_used": int(log["tokens_used"].sum()),
        }


# --- rendering (escaped) ------------------------------------------------------------------


# snake_case columns as a reader calls them (the DataFrames and JSON keep their names)
HEADERS = {
    "total_bytes": "total",
    "table_bytes": "table size",
    "index_bytes": "indexes",
    "toast_bytes": "TOAST",
    "rows_estimate": "rows (estimate)",
    "ts": "snapshot (UTC)",
    "first_ts": "first snapshot (UTC)",
    "last_ts": "last snapshot (UTC)",
    "first_bytes": "size then",
    "last_bytes": "size now",
    "growth_bytes": "growth",
    "bytes_per_day": "growth per day",
    "size_bytes": "size",
    "stats_reset": "statistics reset (UTC)",
    "stats_age_days": "statistics age (days)",
    "queryid": "query id",
    "total_ms": "total time",
    "mean_ms": "mean time",
    "hour": "hour (UTC)",
    "over_threshold": "over the threshold",
    "dead_ratio": "dead share",
    "bloat_ratio": "bloat share",
    "expected_bytes": "expected",
    "bloat_bytes": "bloat",
    "xid_fraction": "xid share of the limit",
    "mxid_fraction": "mxid share of the limit",
    "fraction": "share used",
    "ratio": "hit ratio",
    "entity_type": "entity type",
    "entity_id": "entity id",
    "error_message": "error",
    "created_at": "created (UTC)",
    "completed_at": "completed (UTC)",
    "changed_at": "changed (UTC)",
    "last_indexed": "last indexed (UTC)",
    "last_updated": "last updated (UTC)",
    "latest": "latest (UTC)",
    "null_embeddings": "NULL embeddings",
    "is_valid": "valid",
    "seq_scan_share": "sequential share",
}
# where table_bytes is the heap alone (pg_table_size minus TOAST), not the whole table
FRAME_HEADERS: dict[str, dict[str, str]] = {
    "tables": {"table_bytes": "heap"},
    "growth_total": {"table_bytes": "heap"},
}
_BREAKS = re.compile(r"(?:\\n|\s)+")
# long SQL is cut shorter than other text: the recommendations quote what matters
TEXT_LIMITS = {"query": 200, "definition": 200}


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _pct(value: Any) -> str:
    from .. import plots

    number = float(value)
    if number != 0 and abs(number) < 0.001:
        return "< 0.1 %"
    return plots.fmt_pct(number, 1)


def _cell(column: str, value: Any, max_text: int) -> str:
    """One value as a reader reads it: bytes in KiB/MiB, shares in %, counts with
    thousands separators, times in UTC, never scientific notation."""
    from .. import plots

    if _missing(value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp | datetime):
        return f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"
    if isinstance(value, int | float | np.integer | np.floating):
        if column == "queryid":
            return str(int(value))
        if column.endswith("_bytes"):
            return plots.fmt_bytes(float(value))
        if column == "bytes_per_day":
            return plots.fmt_bytes(float(value)) + "/day"
        if column.endswith(("ratio", "fraction", "share")):
            return _pct(value)
        if column.endswith("_ms"):
            return plots.fmt_ms(value) if abs(value) >= 10 else plots.fmt_number(value) + " ms"
        if column.endswith("_s"):
            return plots.fmt_ms(float(value) * 1000)
        if isinstance(value, int | np.integer):
            return f"{int(value):,}"
        return plots.fmt_number(float(value), 4)
    text = str(value)
    if column == "query":  # one line: line breaks (real or escaped "\\n") read as spaces
        text = _BREAKS.sub(" ", text).strip()
    limit = TEXT_LIMITS.get(column, max_text)
    return text[:limit] + "…" if len(text) > limit else text


def _threshold_value(name: str, value: Any) -> str:
    """A threshold as the report uses it (the name stays the lsops.toml key)."""
    from .. import plots

    if _missing(value):
        return "–"
    if name.endswith("_bytes"):
        return plots.fmt_bytes(float(value))
    if name.endswith(("_ratio", "_warn", "_critical")):
        return plots.fmt_pct(float(value), 0)
    if name.endswith("_ms"):
        return plots.fmt_ms(value)
    if name.endswith("_s"):
        return plots.fmt_ms(float(value) * 1000)
    return plots.fmt_number(float(value))


def header(column: Any, headers: Mapping[str, str] | None = None) -> str:
    name = str(column)
    return (headers or {}).get(name) or HEADERS.get(name, name.replace("_", " "))


def to_html(
    df: pd.DataFrame,
    *,
    max_rows: int = 50,
    max_text: int = 300,
    headers: Mapping[str, str] | None = None,
) -> str:
    """A DataFrame as an HTML table, every cell ESCAPED; long texts cut; bytes, shares and
    counts made human; headers in words; numbers right-aligned, text left-aligned."""
    from .. import plots

    view = df.head(max_rows)
    texts = pd.DataFrame(index=range(len(view)))
    thresholds = list(view.columns) == ["threshold", "value"]
    for col in view.columns:
        name = str(col)
        if thresholds and name == "value":
            cells = [
                _threshold_value(str(k), v)
                for k, v in zip(view["threshold"], view[col], strict=True)
            ]
        else:
            cells = [_cell(name, v, max_text) for v in view[col].astype(object)]
        label = name if thresholds else header(col, headers)
        texts[label if label not in texts.columns else name] = cells
    return plots.table_markup(texts)


def _more_rows(count: int) -> str:
    return f"{count:,} more row{'' if count == 1 else 's'} not shown"


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
    df: pd.DataFrame | None,
    title: str | None = None,
    *,
    max_rows: int = 50,
    empty: str = "none",
    headers: Mapping[str, str] | None = None,
    note: str | None = None,
) -> None:
    """A titled, escaped HTML table (or `empty` when there are no rows); `note` (escaped)
    under the title."""
    head = f"<h4>{html.escape(title)}</h4>" if title else ""
    if df is None or df.empty:
        _display_html(f"{head}<p><em>{html.escape(empty)}</em></p>")
        return
    more = f"<p><em>{_more_rows(len(df) - max_rows)}</em></p>" if len(df) > max_rows else ""
    if note:
        head += f"<p><em>{html.escape(note)}</em></p>"
    _display_html(head + to_html(df, max_rows=max_rows, headers=headers) + more)


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
        frame_key = "tables_maintenance" if (name, key) == ("maintenance", "tables") else key
        title = FRAME_TITLES.get(frame_key, key)
        headers = FRAME_HEADERS.get(frame_key)
        if key == "slow_per_hour" and "over_threshold" in df:
            over = int(df["over_threshold"].fillna(False).astype(bool).sum())
            show_text(
                f"{over} of {len(df):,} hours over the runbook's threshold of "
                f"{report.thresholds.slow_queries_per_hour} slow queries an hour."
            )
        shown, note = _thin(df)
        show(shown, title, headers=headers, note=note)


def _thin(df: pd.DataFrame, *, limit: int = 12, every: int = 7) -> tuple[pd.DataFrame, str | None]:
    """A long series (a snapshot a day) as the first row, every `every`-th and the last, and
    every row over a threshold; the note says so. Short frames are shown whole."""
    if len(df) <= limit or not ({"ts", "hour"} & set(df.columns)):
        return df, None
    keep = [i % every == 0 or i == len(df) - 1 for i in range(len(df))]
    over = ""
    if "over_threshold" in df:
        flagged = df["over_threshold"].fillna(False).astype(bool).tolist()
        keep = [k or f for k, f in zip(keep, flagged, strict=True)]
        over = ", and every one over the threshold"
    shown = df[keep]
    return shown, (
        f"{len(shown)} of {len(df):,} rows: the first, every {every}th, the last{over}"
        + (" (the chart below draws them all)" if "ts" in df.columns else "")
    )


def _table_names(frame: pd.DataFrame) -> list[str]:
    """`table`, or `schema.table` when the tables are not all in `public`."""
    if set(frame["schema"].astype(str)) == {"public"}:
        return [str(t) for t in frame["table"]]
    return [f"{s}.{t}" for s, t in zip(frame["schema"], frame["table"], strict=False)]


def plot_top_tables(df: pd.DataFrame, ax: Any = None, *, n: int = 10) -> Any:
    """Horizontal stacked bars: heap, TOAST and index bytes of the largest tables, the
    largest on top; the title says how much of the database the largest one holds."""
    from .. import plots

    top = df.head(n)
    with plots.style():
        if ax is None:
            _fig, ax = plots.figure(max(3.0, 0.42 * len(top) + 1.6))
        rows = top.iloc[::-1]
        names = _table_names(rows)
        left = None
        for col, label in (
            ("table_bytes", "heap"),
            ("toast_bytes", "TOAST"),
            ("index_bytes", "indexes"),
        ):
            values = rows[col].astype(float).fillna(0.0).to_numpy()
            ax.barh(names, values, left=left, label=label)
            left = values if left is None else left + values
        if left is not None:
            for y, total in enumerate(left):
                ax.text(total, y, f" {plots.fmt_bytes(total)}", va="center", fontsize=9)
            ax.set_xlim(0, max(float(left.max()), 1.0) * 1.15)
        plots.bytes_axis(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.set_title(_top_tables_title(top, df.attrs.get("database_bytes")))
        ax.legend(loc="lower right")
    return ax


def _top_tables_title(top: pd.DataFrame, database_bytes: Any) -> str:
    from .. import plots

    if top.empty:
        return "No table in this database"
    first = top.iloc[0]
    total = float(first["total_bytes"])
    whole = float(database_bytes) if database_bytes else float(top["total_bytes"].sum())
    where = "the database" if database_bytes else f"the {len(top)} largest tables"
    name = _table_names(top.head(1))[0]
    toast = float(first.get("toast_bytes") or 0)
    mostly = ", mostly TOAST" if total and toast / total > 0.5 else ""
    return (
        f"{name} holds {plots.fmt_pct(total / whole, 0) if whole else '–'} of {where} "
        f"({plots.fmt_bytes(total)}{mostly})"
    )


def plot_growth(totals: pd.DataFrame, ax: Any = None) -> Any:
    """Database size per snapshot (sum over tables) on a UTC axis; the title says how much
    it grew and how fast."""
    from .. import plots

    when = pd.to_datetime(totals["ts"], utc=True)
    total = totals["total_bytes"].astype(float)
    with plots.style():
        if ax is None:
            _fig, ax = plots.figure(3.5)
        ax.plot(when, total, marker="o", markersize=3, label="all tables")
        ax.plot(when, totals["toast_bytes"].astype(float), label="TOAST")
        ax.plot(when, totals["index_bytes"].astype(float), label="indexes")
        ax.set_ylim(bottom=0)
        plots.bytes_axis(ax)
        plots.utc_axis(ax)
        ax.set_ylabel("size")
        ax.set_title(_growth_title(when, total))
        ax.legend(loc="upper left")
    return ax


def _growth_title(when: pd.Series, total: pd.Series) -> str:
    from .. import plots

    if len(total) < 2:
        return f"Database size: {plots.fmt_bytes(total.iloc[-1] if len(total) else None)}"
    growth = float(total.iloc[-1] - total.iloc[0])
    days = (when.iloc[-1] - when.iloc[0]).total_seconds() / 86400
    span = f"{days:,.0f} days" if days >= 2 else f"{days * 24:,.0f} hours"
    if growth == 0:
        return f"The database did not grow in {span} ({plots.fmt_bytes(total.iloc[-1])})"
    verb = "grew" if growth > 0 else "shrank"
    rate = f" ({plots.fmt_bytes(abs(growth) / days)}/day)" if days > 0 else ""
    return f"The database {verb} {plots.fmt_bytes(abs(growth))} in {span}{rate}"


def plot_embeddings(by_type: pd.DataFrame, ax: Any = None) -> Any:
    """Embeddings per entity type (the runbook's weekly check) as bars, with the number of
    source entities to embed as a dashed target where the coverage is known."""
    from .. import plots

    types = by_type["entity_type"].astype(str).tolist()
    counts = by_type["count"].astype(int).tolist()
    entities = by_type.attrs.get("entities") or {}
    with plots.style():
        if ax is None:
            _fig, ax = plots.figure(3.5, width=8.0)
        ax.bar(types, counts, width=0.6, label="embeddings")
        for x, (kind, count) in enumerate(zip(types, counts, strict=True)):
            top = max(count, int(entities.get(kind, 0)))  # above the target mark, not on it
            ax.text(x, top, f"{count:,}", ha="center", va="bottom", fontsize=9)
        drawn = False
        for x, kind in enumerate(types):
            if kind in entities:
                ax.hlines(
                    entities[kind],
                    x - 0.4,
                    x + 0.4,
                    colors=plots.TARGET_COLOR,
                    linestyles="--",
                    linewidth=1.2,
                    label=None if drawn else "entities to embed",
                )
                drawn = True
        plots.count_axis(ax)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("embeddings")
        ax.set_title(_embeddings_title(types, counts, entities))
        ax.legend(loc="upper left")
    return ax


def _embeddings_title(types: list[str], counts: list[int], entities: Mapping[str, int]) -> str:
    if not counts:
        return "No embedding stored"
    known = [t for t in types if t in entities]
    if known:
        have = dict(zip(types, counts, strict=True))
        missing = {t: max(0, int(entities[t]) - have[t]) for t in known}
        worst = max(missing, key=lambda t: missing[t])
        total = sum(int(entities[t]) for t in known)
        embedded = sum(min(have[t], int(entities[t])) for t in known)
        if missing[worst] == 0:
            return f"Every one of the {total:,} entities has an embedding"
        return (
            f"{embedded:,} of {total:,} entities have an embedding; "
            f"{worst} lacks the most ({missing[worst]:,})"
        )
    top = max(range(len(counts)), key=lambda i: counts[i])
    return f"{types[top]} holds {counts[top]:,} of {sum(counts):,} embeddings"


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
        from .. import plots

        size = (
            plots.fmt_bytes(report.database_bytes)
            if report.database_bytes is not None
            else "unknown"
        )
        parts.append(f"<p><strong>Size:</strong> {html.escape(str(size))}</p>")
    else:
        parts.append(
            '<div style="border:2px solid #c0392b;padding:8px;">'
            "<strong>The database could not be inspected.</strong> "
            f"{html.escape(str(report.error))}<br>Every section below is empty for that reason.</div>"
        )
    _display_html("".join(parts))


_POWER_OF_1024 = re.compile(r"(\d) (kB|MB|GB|TB)\b")


def _binary_units(text: Any) -> str:
    """The recommendations' sizes (powers of 1024, labelled kB/MB as PostgreSQL does) in
    the units of the tables and charts: KiB, MiB, GiB, TiB."""
    units = {"kB": "KiB", "MB": "MiB", "GB": "GiB", "TB": "TiB"}
    return _POWER_OF_1024.sub(lambda m: f"{m[1]} {units[m[2]]}", str(text))


SEVERITY_COLORS = {
    "critical": ("#c62828", "#fdecea"),
    "warning": ("#ef6c00", "#fff3e0"),
    "info": ("#1565c0", "#e3f2fd"),
}


def show_recommendations(report: OptimizationReport) -> None:
    """Each recommendation: severity, title, evidence and the SQL to run (printed only)."""
    recs = report.recommendations
    if recs.empty:
        show_text("No recommendations: nothing found above the thresholds.")
        return
    blocks = []
    for r in recs.itertuples(index=False):
        # a framed block per recommendation, coloured by severity (only CSS properties the
        # HTML export's sanitizer keeps; the blockquote gives the margin and the left rule)
        color, bg = SEVERITY_COLORS.get(str(r.severity), ("#616161", "#fafafa"))
        block = (
            f'<blockquote style="background-color:{bg};border-left-color:{color};'
            f'border-color:{color};color:#212121;">'
            f'<strong style="color:{color}">[{html.escape(str(r.severity))}]</strong> '
            f"<strong>{html.escape(_binary_units(r.title))}</strong>"
            f"<br><em>Evidence:</em> {html.escape(_binary_units(r.evidence))}"
        )
        if isinstance(r.check, str) and r.check:
            block += f"<br><em>Checked:</em> {html.escape(r.check)}"
        if isinstance(r.sql, str) and r.sql:
            block += f"<pre><code>{html.escape(r.sql)}</code></pre>"
        blocks.append(block + "</blockquote>")
    _display_html("".join(blocks))


def thresholds_frame(report: OptimizationReport) -> pd.DataFrame:
    """The thresholds the verdicts used: name, value."""
    return pd.DataFrame(sorted(report.thresholds.as_dict().items()), columns=["threshold", "value"])
