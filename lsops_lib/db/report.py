"""The DB optimization report's data: every check, gathered once, for the notebook to show.

    report = optimization_report("prod", top_n=10)      # never raises for an outside failure
    report.reachable, report.error                        # a down database is a finding
    report.sections["indexes"].frames["unused"]           # DataFrames per section
    report.recommendations                                # findings, with evidence and SQL
    report.retrieval                                      # db.vectors: recall, threshold
    report.forecast                                       # db.forecast: the size limit date
    report.by_severity                                    # findings counted by severity
    report.summary()                                      # the key figures, one flat dict

Nothing here renders: `lsops_lib.present.dboptimization` shows the bundle (tables, boxes,
recommendations) and `lsops_lib.plots.database` draws its charts. The names this module
rendered with before (`show`, `show_section`, `plot_top_tables`, ...) still import from
here, forwarded to their new homes (see `_MOVED`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import fmt
from ..config import Settings, Thresholds, load_settings, redact_url
from ..exceptions import DatabaseError, ExtensionMissing, LsopsError
from . import (
    embeddings,
    forecast,
    indexes,
    maintenance,
    queries,
    recommend,
    reindex,
    space,
    vectors,
)
from .connect import Inspector, connect
from .drift import SchemaMissing
from .settings import DbThresholds

__all__ = [
    "SECTION_TITLES",
    "OptimizationReport",
    "Section",
    "optimization_report",
    "thresholds_frame",
]

SECTION_TITLES = {
    "space": "Space",
    "indexes": "Indexes",
    "retrieval": "Retrieval quality",
    "queries": "Queries",
    "maintenance": "Maintenance",
    "backups": "Backups",  # issue 12: from the metrics store (`lsops backup check`)
    "embeddings": "Embeddings indexing",
    "reindex": "Re-index",  # issue 12: the counts of `lsops reindex-list`
}
# sections read from the metrics store alone: shown even when the database is unreachable
_FROM_STORE = frozenset({"backups"})


@dataclass
class Section:
    name: str
    title: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # what this section could not check (an extension missing, no snapshots stored, not a
    # LongSang database): also among the notes; errors are failures, these are absences
    unavailable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def missing(self, message: str) -> None:
        """Note that something could not be checked (shown, and in the key figures)."""
        self.notes.append(message)
        self.unavailable.append(message)


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
        _backups(report, settings, store)
        return report
    report.url = redact_url(url)
    try:
        insp = connect(url)
    except LsopsError as exc:
        report.error = str(exc)
        _unreachable(report)
        _backups(report, settings, store)
        return report
    report.reachable = True
    if store is None or isinstance(store, str):
        store = _open_store(settings, store)
    try:
        _gather(report, insp, store)
        _gather_reindex(report, insp)  # issue 12
        try:  # with insp: suggested indexes are checked with hypopg when it is installed
            report.recommendations = recommend.recommendations(report.findings, t, insp=insp)
        except DatabaseError:
            report.recommendations = recommend.recommendations(report.findings, t)
    finally:
        insp.close()
    report.by_severity = recommend.summary(report.recommendations)
    _backups(report, settings, store)
    return report


def _unreachable(report: OptimizationReport) -> None:
    message = f"database not inspected: {report.error}"
    for section in report.sections.values():
        if section.name not in _FROM_STORE:
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


def _try(section: Section, what: str, fn: Callable[[], Any]) -> Any:
    """`fn()`, or None: a missing extension, table, column or privilege is noted as
    unavailable (schema drift costs that figure only), any other error is an error."""
    try:
        return fn()
    except ExtensionMissing as exc:
        section.missing(str(exc))
    except SchemaMissing as exc:
        text = str(exc)
        section.missing(text if text.startswith(f"{what}:") else f"{what}: {text}")
    except DatabaseError as exc:
        section.errors.append(f"{what}: {exc}")
    return None


def _drift_notes(section: Section, insp: Inspector, seen: int) -> None:
    """The parts of figures this section could not compute (`insp.unavailable` since
    `seen`): unavailable too, said in the section."""
    for message in insp.unavailable[seen:]:
        section.missing(message)


def _gather(report: OptimizationReport, insp: Inspector, store: Any) -> None:
    t, n, f = report.thresholds, report.top_n, report.findings
    report.server_version = _try(
        report.sections["space"], "version", lambda: insp.setting("server_version")
    )

    # --- space
    seen = len(insp.unavailable)
    sec = report.sections["space"]
    report.database_bytes = _try(sec, "database size", lambda: space.database_size(insp))
    sizes = _try(sec, "table sizes", lambda: space.table_sizes(insp))
    if sizes is not None:
        sec.frames["tables"] = sizes.head(n)
        # for the chart's title only (the frame's data and the JSON stay as they are)
        sec.frames["tables"].attrs["database_bytes"] = report.database_bytes
        f["tables"] = sizes
    snaps = None
    if store is not None:
        snaps = _try(sec, "size snapshots", lambda: space.growth(store, report.database))
        if snaps is not None and not snaps.empty:
            sec.frames["growth_total"] = space.total_growth(snaps)
            sec.frames["growth_tables"] = space.table_growth(snaps).head(n)
    if "growth_total" not in sec.frames:
        sec.missing(
            "no size snapshots stored for this database: run `lsops collect --db` daily "
            "to see growth"
        )
    _forecast(report, sec, snaps, now=report.generated_at)

    _drift_notes(sec, insp, seen)

    # --- indexes
    seen = len(insp.unavailable)
    sec = report.sections["indexes"]
    catalog = _try(sec, "index catalog", lambda: indexes.index_catalog(insp))
    reset = _try(sec, "statistics reset", lambda: indexes.stats_reset(insp))
    if catalog is not None:
        for key, fn in (
            ("unused", lambda c: indexes.unused_indexes(insp, c, t, stats=reset)),
            ("duplicate", lambda c: indexes.duplicate_indexes(insp, c)),
            ("invalid", lambda c: indexes.invalid_indexes(insp, c)),
        ):
            value = _try(sec, key, lambda fn=fn: fn(catalog))
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
    if reset is not None:
        since = (
            f"reset {fmt.instant(reset['stats_reset'])}"
            if reset["stats_reset"] is not None
            else f"never reset: counting since the server started {fmt.instant(reset['stats_since'])}"
        )
        sec.notes.append(
            f"usage statistics {since} ({reset['stats_age_days']:.1f} days ago): 'unused' "
            f"means unused since then; a DROP is proposed once they cover "
            f"{t.unused_index_min_age:g} days ([thresholds] unused_index_min_age). lsops's own "
            "queries never use an index, so they never count as index use"
        )
    if "vector" in sec.frames and sec.frames["vector"].empty:
        sec.notes.append("no vector (HNSW / IVFFlat) index in this database")

    _drift_notes(sec, insp, seen)

    # --- retrieval quality (issue 15)
    _retrieval(report, insp)

    # --- queries
    seen = len(insp.unavailable)
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
                f"pg_stat_statements counting since {fmt.instant(status['stats_reset'])}"
            )
    else:
        sec.missing(str(status.get("message")))
    if store is not None:
        per_hour = _try(
            sec,
            "slow queries per hour",
            lambda: queries.slow_per_hour_from_store(store, report.database, thresholds=t),
        )
        if per_hour is not None and not per_hour.empty:
            sec.frames["slow_per_hour"] = per_hour
            f["slow_per_hour"] = per_hour

    _drift_notes(sec, insp, seen)

    # --- maintenance
    seen = len(insp.unavailable)
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
            # findings["tables"] are the sizes (space); this section's "tables" frame is
            # the vacuum and analyze times
            f["table_maintenance" if key == "tables" else key] = value

    _drift_notes(sec, insp, seen)

    # --- embeddings: each figure on its own (a deployment may lack a table or a column)
    seen = len(insp.unavailable)
    sec = report.sections["embeddings"]
    for key, what, fn5 in (
        ("by_entity_type", "embeddings per entity type", lambda: embeddings.by_entity_type(insp)),
        ("log", "indexing log", lambda: embeddings.log_by_status(insp)),
        (
            "latest_failures",
            "latest indexing failures",
            lambda: embeddings.latest_failures(insp, n),
        ),
        ("coverage", "embeddings coverage", lambda: embeddings.coverage(insp)),
        ("missing", "entities without embedding", lambda: embeddings.missing_entities(insp, n)),
    ):
        value = _try(sec, what, fn5)
        if value is not None:
            sec.frames[key] = value
            f[f"embeddings_{key}"] = value
    _drift_notes(sec, insp, seen)
    by_type, cov = sec.frames.get("by_entity_type"), sec.frames.get("coverage")
    if by_type is not None and cov is not None and {"entity_type", "entities"} <= set(cov):
        # for the chart's target marks only: how many source entities each type has
        by_type.attrs["entities"] = {
            str(r.entity_type): int(r.entities)
            for r in cov.itertuples(index=False)
            if isinstance(r.source_table, str) and not fmt.missing(r.entities)
        }
    log = f.get("embeddings_log")
    if isinstance(log, pd.DataFrame):
        f["embeddings_log"] = {
            **{str(r.status): int(r.count) for r in log.itertuples(index=False)},
            "tokens_used": None  # the log has no tokens_used column
            if log["tokens_used"].isna().all()
            else int(log["tokens_used"].sum()),
        }


# --- issue 12: the re-index section -------------------------------------------------------------

REINDEX_COUNT_COLUMNS = [
    "entity_type",
    "source_table",
    "entities",
    "missing",
    "stale",
    "failed",
    "to_reindex",
    "note",
]


def _forecast(
    report: OptimizationReport, sec: Section, snaps: pd.DataFrame | None, *, now: pd.Timestamp
) -> None:
    """The capacity forecast from the size snapshots, projected from the database size now."""
    lim = report.limits
    fc = forecast.capacity_forecast(
        snaps,
        lim.database_size_limit_bytes,
        database_bytes=report.database_bytes,
        now=now,
        min_snapshots=lim.forecast_min_snapshots,
        min_days=lim.forecast_min_days,
        shrink_ratio=lim.forecast_shrink_ratio,
    )
    report.forecast = fc
    limit = fmt.size(fc.limit_bytes)
    if fc.reaches_limit_on is not None and fc.status == "ok":
        rng = fc.reaches_limit_range
        between = (
            f" (between {rng[0] or fmt.DASH} and {rng[1] or 'not foreseeable'})" if rng else ""
        )
        sec.notes.append(
            f"at {fmt.size(fc.growth_bytes_per_day)}/day the database reaches its limit of "
            f"{limit} on {fc.reaches_limit_on.isoformat()}{between}; {fc.message}"
        )
    else:
        sec.notes.append(f"size limit {limit}: {fc.message}")
    if len(fc.tables):
        sec.frames["growth_rates"] = fc.tables.head(report.top_n)


# the recall table as the report shows it (the JSON of `lsops db vectors` has every column)
RECALL_SHOWN = [
    "index",
    "table",
    "column",
    "method",
    "options",
    "bytes",
    "table_bytes",
    "recall_at_k",
    "recall_p10",
    "index_ms",
    "exact_ms",
    "setting",
    "current",
    "suggested",
    "suggested_recall",
    "note",
]


def _gather_reindex(report: OptimizationReport, insp: Inspector) -> None:
    """The counts of `lsops reindex-list` per entity type and its first `top_n` entities
    (`db.reindex`); the runbook's command in `findings["reindex"]["command"]`."""
    sec = report.sections["reindex"]
    if not insp.has_table("context_embeddings"):
        sec.missing("no context_embeddings table: not a LongSang database")
        return
    listing = _try(sec, "re-index list", lambda: reindex.reindex_list(insp))
    if listing is None:
        return
    counts = listing.by_type[REINDEX_COUNT_COLUMNS]
    entities = listing.entities
    sec.frames["reindex_counts"] = counts
    sec.frames["reindex_entities"] = entities.head(report.top_n)
    report.findings["reindex_counts"] = counts
    report.findings["reindex"] = {**listing.counts(), "command": listing.command}
    sec.notes += listing.notes
    if len(entities) > report.top_n:
        sec.notes.append(
            f"the first {report.top_n} of {len(entities)} rows are listed: "
            "`lsops reindex-list --json` gives them all"
        )


# --- backups (issue 12): the latest `lsops backup check` stored in the metrics store --------

BACKUP_FILE_COLUMNS = [
    "verdict",
    "path",
    "format",
    "bytes",
    "age_s",
    "complete",
    "tables",
    "detail",
]
BACKUP_RESTORE_COLUMNS = ["table", "dump_rows", "live_rows", "match"]


def _backups(report: OptimizationReport, settings: Settings | None, store: Any) -> None:
    """The Backups section: the latest stored check of this database (or made without
    one), its dumps and its restore drill. Needs the store only, not the database."""
    from ..exceptions import StoreError

    sec = report.sections["backups"]
    if store is None or isinstance(store, str):
        store = _open_store(settings, store)
    if store is None:
        sec.missing("no metrics store: run `lsops backup check --restore` daily to see backups")
        return
    try:
        from ..store.backups import latest_backup_check

        check = latest_backup_check(store, report.database)
    except StoreError as exc:
        sec.errors.append(f"stored backup checks: {exc}")
        return
    if check is None:
        sec.missing(
            "no backup check stored: run `lsops backup check --restore` daily (cron) to "
            "verify the dumps and rehearse a restore"
        )
        return
    report.findings["backup_check"] = check
    files = pd.DataFrame(check.get("files") or [], columns=BACKUP_FILE_COLUMNS)
    files["tables"] = [None if t is None else len(t) for t in files["tables"]]
    sec.frames["backup_files"] = files
    sec.notes.append(
        f"latest check {fmt.instant(check['checked_at'])}: {check['status']} "
        f"(exit {check['exit_code']}), "
        + (f"newest dump {check['newest']}" if check.get("newest") else "no dump found")
    )
    restore = check.get("restore")
    if restore is None:
        sec.missing("the latest check ran no restore drill: `lsops backup check --restore`")
        return
    sec.frames["backup_restore"] = pd.DataFrame(
        restore.get("tables") or [], columns=BACKUP_RESTORE_COLUMNS
    )
    if restore.get("seconds") is not None:
        sec.notes.append(
            f"restore drill of {restore.get('dump')}: restored in "
            f"{fmt.ms(restore['seconds'] * 1000)} (the recovery time observed, cluster start "
            f"excluded); rows match within {fmt.pct(restore.get('tolerance'), 0)}, live rows "
            f"counted exactly below {fmt.integer(restore.get('exact_below_rows'))} rows"
            + (
                f", estimated for {', '.join(restore['estimated'])}"
                if restore.get("estimated")
                else ""
            )
        )
    if restore.get("missing_extensions"):
        sec.notes.append(
            "extensions the dump needs and the drill's PostgreSQL lacks: "
            + ", ".join(restore["missing_extensions"])
        )
    if restore.get("error"):
        sec.notes.append(f"the restore drill failed: {restore['error']}")


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


def _retrieval(report: OptimizationReport, insp: Inspector) -> None:
    """db.vectors over every vector column and index, in one read-only transaction."""
    sec = report.sections["retrieval"]
    lim = report.limits
    rq = _try(
        sec,
        "retrieval quality",
        lambda: vectors.retrieval_quality(
            insp, threshold=lim.similarity_threshold, target=lim.recall_target
        ),
    )
    if rq is None:
        return
    report.retrieval = rq
    if not rq.available:
        sec.missing(str(rq.message))
        return
    sec.notes.extend(rq.notes)
    if len(rq.columns):
        sec.frames["vector_columns"] = rq.columns
    if len(rq.indexes):
        sec.frames["vector_recall"] = rq.indexes[RECALL_SHOWN]
        sec.notes.append(
            f"recall@{rq.k}: {rq.sample} stored vectors (seed {rq.seed}) as queries, the index "
            "forced, against an exact scan in the same read-only transaction"
        )
    t = rq.threshold
    if t is not None and t["top1_median"] is not None:
        sec.notes.append(
            f"similarity threshold {t['value']:g}: {fmt.pct(t['share_with_result'])} of "
            f"{t['sample']} sampled queries have a nearest other row at or above it (below it "
            f"semantic_search returns no context); top-1 similarity p10 "
            f"{t['top1_p10']:.3f}, median {t['top1_median']:.3f}, p90 {t['top1_p90']:.3f}"
        )
    sec.notes.extend(vectors.problems(rq))


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
