"""The DB optimization report's data: every check, gathered once, for the notebook to show.

    report = optimization_report("prod", top_n=10)      # never raises for an outside failure
    report.reachable, report.error                        # a down database is a finding
    report.sections["indexes"].frames["unused"]           # DataFrames per section
    report.recommendations                                # findings, with evidence and SQL
    report.retrieval                                      # db.vectors: recall, threshold
    report.forecast                                       # db.forecast: the size limit date
    report.by_severity                                    # findings counted by severity
    report.summary()                                      # the key figures, one flat dict

The checks are gathered by `db.gather` into `db.sections.Section`s. Nothing here renders: `lsops_lib.present.dboptimization` shows the bundle (tables, boxes,
recommendations) and `lsops_lib.plots.database` draws its charts. The names this module
rendered with before (`show`, `show_section`, `plot_top_tables`, ...) still import from
here, forwarded to their new homes (see `_MOVED`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import Settings, Thresholds, load_settings, redact_url
from ..exceptions import DatabaseError, LsopsError
from . import forecast, recommend, vectors
from .connect import connect, count_param
from .gather import gather, gather_backups, gather_reindex, open_store
from .sections import FROM_STORE, SECTION_TITLES, Section
from .settings import DbThresholds

__all__ = [
    "SECTION_TITLES",
    "OptimizationReport",
    "Section",
    "optimization_report",
    "thresholds_frame",
]


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
    # findings by severity: severity, count, kinds (every severity, zero included)
    by_severity: pd.DataFrame = field(
        default_factory=lambda: recommend.summary(
            pd.DataFrame(columns=recommend.RECOMMENDATION_COLUMNS)
        )
    )
    # issue 15: retrieval quality (db.vectors) and the capacity forecast (db.forecast), with
    # the config.Thresholds they use (similarity_threshold, recall_target, forecast_*)
    limits: Thresholds = field(default_factory=Thresholds)
    retrieval: vectors.RetrievalQuality | None = None
    forecast: forecast.Forecast | None = None

    @property
    def projection(self) -> pd.DataFrame | None:
        """The size snapshots, the fitted growth and the projection to the size limit
        (plots.capacity_projection); None when not inspected."""
        return None if self.forecast is None else self.forecast.frame

    @property
    def recall_curves(self) -> pd.DataFrame | None:
        """recall@k per ef_search / probes tried, per index (plots.recall_curve)."""
        rq = self.retrieval
        return None if rq is None or not rq.available else rq.curves

    @property
    def top1_similarity(self) -> pd.DataFrame | None:
        """Each sampled query's top-1 similarity (plots.similarity_threshold)."""
        rq = self.retrieval
        return None if rq is None or not rq.available or rq.threshold is None else rq.top1

    def section(self, name: str) -> Section:
        return self.sections[name]

    def thresholds_frame(self) -> pd.DataFrame:
        """The thresholds the verdicts used: threshold, value (sorted by name)."""
        return thresholds_frame(self)

    def unavailable(self) -> list[str]:
        """What could not be checked, and why: "<section>: <reason>", section by section
        (its errors, then what it found missing: an extension, snapshots, a table)."""
        out = []
        for section in self.sections.values():
            out += [f"{section.title}: {e}" for e in section.errors]
            out += [f"{section.title}: {m}" for m in section.unavailable]
        return out

    def summary(self) -> dict[str, Any]:
        """The report's key figures, flat (the notebook's last cell shows them as JSON):
        findings by severity and kind, sizes, counts per check (None where the check
        could not run), embeddings indexing, and what was unavailable."""
        f = self.findings
        severity = dict(zip(self.by_severity["severity"], self.by_severity["count"], strict=True))
        kinds = self.recommendations["kind"].value_counts() if len(self.recommendations) else {}
        tables = _frame(f, "tables")
        space = self.sections.get("space")
        growth = space.frames.get("growth_total") if space is not None else None
        log = f.get("embeddings_log")
        by_type = _frame(f, "embeddings_by_entity_type")
        coverage = _frame(f, "embeddings_coverage")
        queries_status = f.get("queries_status") or {}
        largest = tables.iloc[0] if tables is not None and len(tables) else None
        return {
            "report": "db-optimization",
            "database": self.database,
            "reachable": self.reachable,
            "error": self.error,
            "server_version": self.server_version,
            "generated_at": self.generated_at,
            "top_n": self.top_n,
            "findings": int(len(self.recommendations)),
            **{s: int(severity.get(s, 0)) for s in recommend.SEVERITIES},
            "kinds": {str(k): int(v) for k, v in dict(kinds).items()},
            "database_bytes": self.database_bytes,
            "tables": _count(tables),
            "largest_table": None if largest is None else f"{largest['schema']}.{largest['table']}",
            "largest_table_bytes": None if largest is None else int(largest["total_bytes"]),
            "snapshots": None if growth is None else int(len(growth)),
            "growth_bytes": _growth_bytes(growth),
            "unused_indexes": _count(_frame(f, "unused")),
            "duplicate_indexes": _count(_frame(f, "duplicate")),
            "invalid_indexes": _count(_frame(f, "invalid")),
            "fk_without_index": _count(_frame(f, "fk_without_index")),
            "seq_scan_tables": _count(_frame(f, "seq_scan")),
            "vector_indexes": _count(_frame(f, "vector")),
            "pg_stat_statements": bool(queries_status.get("available")) if self.reachable else None,
            "slow_queries": _count(_frame(f, "slow")),
            # slow statements of other roles the role may not see (None: not checked)
            "slow_queries_hidden": (f.get("queries_hidden") or {}).get("slow"),
            "tables_due_vacuum": _count(_frame(f, "dead_tuples")),
            "embeddings": None if by_type is None else int(by_type["count"].sum()),
            "embeddings_failed": log.get("failed") if isinstance(log, dict) else None,
            "embeddings_pending": log.get("pending") if isinstance(log, dict) else None,
            "embeddings_missing": _sum(coverage, "missing"),
            "embeddings_null": _sum(coverage, "null_embeddings"),
            # issue 12: the counts of `lsops reindex-list` (None: not checked or unknown)
            **_reindex_figures(f.get("reindex")),
            **_backup_figures(f.get("backup_check")),
            **_retrieval_figures(self.retrieval),
            **(
                self.forecast.summary()
                if self.forecast is not None
                else dict.fromkeys(forecast.SUMMARY_KEYS)
            ),
            "unavailable": self.unavailable(),
        }


def _retrieval_figures(rq: vectors.RetrievalQuality | None) -> dict[str, Any]:
    """The retrieval section's key figures (None where it could not run)."""
    if rq is None:
        return {"vectors_available": None, "recall_at_k": None, "threshold_share_with_result": None}
    return rq.summary()


def _frame(findings: dict[str, Any], key: str) -> pd.DataFrame | None:
    value = findings.get(key)
    return value if isinstance(value, pd.DataFrame) else None


def _count(frame: pd.DataFrame | None) -> int | None:
    return None if frame is None else int(len(frame))


def _sum(frame: pd.DataFrame | None, column: str) -> int | None:
    if frame is None or column not in frame.columns:
        return None
    values = pd.to_numeric(frame[column], errors="coerce")
    if len(values) and values.isna().all():
        return None  # not known for any row (a column the database lacks)
    return int(values.fillna(0).sum())


def _reindex_figures(counts: Any) -> dict[str, Any]:
    """reindex_missing, reindex_stale, reindex_failed, reindex_entities (issue 12)."""
    counts = counts if isinstance(counts, dict) else {}
    return {
        "reindex_missing": counts.get("missing"),
        "reindex_stale": counts.get("stale"),
        "reindex_failed": counts.get("failed"),
        "reindex_entities": counts.get("to_reindex"),
    }


def _growth_bytes(growth: pd.DataFrame | None) -> int | None:
    if growth is None or len(growth) < 2:
        return None
    return int(growth["total_bytes"].iloc[-1] - growth["total_bytes"].iloc[0])


# config.Thresholds the retrieval and space sections use (issue 15)
LIMIT_THRESHOLDS = (
    "similarity_threshold",
    "recall_target",
    "database_size_limit_bytes",
    "forecast_min_snapshots",
    "forecast_min_days",
    "forecast_shrink_ratio",
)


def thresholds_frame(report: OptimizationReport) -> pd.DataFrame:
    """The thresholds the verdicts used: threshold, value (sorted by name)."""
    values = report.thresholds.as_dict()
    values.update({name: getattr(report.limits, name) for name in LIMIT_THRESHOLDS})
    return pd.DataFrame(sorted(values.items()), columns=["threshold", "value"])


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
        top_n=count_param(top_n, "top_n"),
        thresholds=t,
        limits=settings.thresholds if settings is not None else Thresholds(),
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
        gather_backups(report, settings, store)
        return report
    report.url = redact_url(url)
    try:
        insp = connect(url)
    except LsopsError as exc:
        report.error = str(exc)
        _unreachable(report)
        gather_backups(report, settings, store)
        return report
    report.reachable = True
    if store is None or isinstance(store, str):
        store = open_store(settings, store)
    try:
        gather(report, insp, store)
        gather_reindex(report, insp)  # issue 12
        try:  # with insp: suggested indexes are checked with hypopg when it is installed
            report.recommendations = recommend.recommendations(report.findings, t, insp=insp)
        except DatabaseError:
            report.recommendations = recommend.recommendations(report.findings, t)
    finally:
        insp.close()
    report.by_severity = recommend.summary(report.recommendations)
    gather_backups(report, settings, store)
    return report


def _unreachable(report: OptimizationReport) -> None:
    message = f"database not inspected: {report.error}"
    for section in report.sections.values():
        if section.name not in FROM_STORE:
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
    report.by_severity = recommend.summary(report.recommendations)


def _backup_figures(check: Any) -> dict[str, Any]:
    """The Backups section's key figures (None where no check is stored)."""
    if not isinstance(check, dict):
        check = {}
    restore = check.get("restore") or {}
    newest = next((f for f in check.get("files") or [] if f["path"] == check.get("newest")), {})
    tables = restore.get("tables") or []
    return {
        "backup_status": check.get("status"),
        "backup_checked_at": check.get("checked_at"),
        "backup_newest_verdict": newest.get("verdict"),
        "backup_newest_age_s": newest.get("age_s"),
        "backup_restore_seconds": restore.get("seconds"),
        "backup_restore_failed": bool(restore.get("error")) if restore else None,
        "backup_restore_mismatches": (
            sum(1 for t in tables if t.get("match") is False) if restore else None
        ),
    }


# --- the names this module rendered with before the presentation moved out -----------------

_MOVED = {
    **dict.fromkeys(
        (
            "FRAME_HEADERS",
            "FRAME_TITLES",
            "HEADERS",
            "SEVERITY_COLORS",
            "TEXT_LIMITS",
            "header",
            "show",
            "show_header",
            "show_recommendations",
            "show_section",
            "show_text",
            "to_html",
        ),
        "lsops_lib.present.dboptimization",
    ),
    **dict.fromkeys(
        ("plot_top_tables", "plot_growth", "plot_embeddings"), "lsops_lib.plots.database"
    ),
}


def __getattr__(name: str) -> Any:
    """`from lsops_lib.db.report import show, plot_top_tables, ...` keeps working: the
    presentation is imported on first use only (db never imports it on its own)."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
