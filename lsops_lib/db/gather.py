"""How the DB optimization report's sections are filled: one gatherer a section.

`gather` runs the catalog checks (space, indexes, queries, maintenance, embeddings) and
calls the gatherers of the retrieval section and the capacity forecast; `gather_reindex`
(the counts of `lsops reindex-list`) and `gather_backups` (the latest `lsops backup
check` in the metrics store, no database needed) are called by `optimization_report`.
Each check goes through `sections.attempt`, so a failure costs its own figure only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import fmt
from ..config import Settings, sqlite_store_missing
from . import embeddings, forecast, indexes, maintenance, queries, reindex, space, vectors
from .connect import Inspector
from .sections import Section, attempt, drift_notes

if TYPE_CHECKING:
    from .report import OptimizationReport

__all__ = ["gather", "gather_backups", "gather_reindex", "open_store"]


def open_store(settings: Settings | None, url: str | None = None) -> Any:
    """The metrics store for growth and query snapshots, if there is one (never created):
    `url`, else the settings' store."""
    if url is None:
        if settings is None:
            return None
        url = settings.store_url
    if sqlite_store_missing(url):
        return None
    try:
        from ..store import Store  # written by another module; optional here
    except ImportError:
        return None
    try:
        return Store(url)
    except Exception:  # noqa: BLE001 - a store that cannot open only costs the growth chart
        return None


def gather(report: OptimizationReport, insp: Inspector, store: Any) -> None:
    t, n, f = report.thresholds, report.top_n, report.findings
    report.server_version = attempt(
        report.sections["space"], "version", lambda: insp.setting("server_version")
    )

    # --- space
    seen = len(insp.unavailable)
    sec = report.sections["space"]
    report.database_bytes = attempt(sec, "database size", lambda: space.database_size(insp))
    sizes = attempt(sec, "table sizes", lambda: space.table_sizes(insp))
    if sizes is not None:
        sec.frames["tables"] = sizes.head(n)
        # for the chart's title only (the frame's data and the JSON stay as they are)
        sec.frames["tables"].attrs["database_bytes"] = report.database_bytes
        f["tables"] = sizes
    snaps = None
    if store is not None:
        snaps = attempt(sec, "size snapshots", lambda: space.growth(store, report.database))
        if snaps is not None and not snaps.empty:
            sec.frames["growth_total"] = space.total_growth(snaps)
            sec.frames["growth_tables"] = space.table_growth(snaps).head(n)
    if "growth_total" not in sec.frames:
        sec.missing(
            "no size snapshots stored for this database: run `lsops collect --db` daily "
            "to see growth"
        )
    gather_forecast(report, sec, snaps, now=report.generated_at)

    drift_notes(sec, insp, seen)

    # --- indexes
    seen = len(insp.unavailable)
    sec = report.sections["indexes"]
    catalog = attempt(sec, "index catalog", lambda: indexes.index_catalog(insp))
    reset = attempt(sec, "statistics reset", lambda: indexes.stats_reset(insp))
    if catalog is not None:
        for key, fn in (
            ("unused", lambda c: indexes.unused_indexes(insp, c, t, stats=reset)),
            ("duplicate", lambda c: indexes.duplicate_indexes(insp, c)),
            ("invalid", lambda c: indexes.invalid_indexes(insp, c)),
        ):
            value = attempt(sec, key, lambda fn=fn: fn(catalog))
            if value is not None:
                sec.frames[key] = value
                f[key] = value
    for key, fn2 in (
        ("fk_without_index", lambda: indexes.fk_without_index(insp)),
        ("seq_scan", lambda: indexes.seq_scan_tables(insp, t).head(n)),
        ("vector", lambda: indexes.vector_indexes(insp)),
    ):
        value = attempt(sec, key, fn2)
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
            f"usage statistics {since} ({fmt.duration(reset['stats_age_days'] * 86400)} ago): "
            f"'unused' means unused since then; a DROP is proposed once they cover "
            f"{indexes.min_age_text(t.unused_index_min_age)} ([thresholds] "
            f"unused_index_min_age). lsops's own "
            "queries never use an index, so they never count as index use"
        )
    if "vector" in sec.frames and sec.frames["vector"].empty:
        sec.notes.append("no vector (HNSW / IVFFlat) index in this database")

    drift_notes(sec, insp, seen)

    # --- retrieval quality (issue 15)
    gather_retrieval(report, insp)

    # --- queries
    seen = len(insp.unavailable)
    sec = report.sections["queries"]
    status = attempt(sec, "pg_stat_statements", lambda: queries.status(insp)) or {
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
            value = attempt(sec, key, fn3)
            if value is not None:
                sec.frames[key] = value
                f[key] = value
        # statements of other roles this role may not see (their count; noted on insp)
        f["queries_hidden"] = attempt(
            sec, "hidden statements", lambda: queries.hidden_statements(insp, t)
        )
        if status.get("stats_reset") is not None:
            sec.notes.append(
                f"pg_stat_statements counting since {fmt.instant(status['stats_reset'])}"
            )
    else:
        sec.missing(str(status.get("message")))
    if store is not None:
        per_hour = attempt(
            sec,
            "slow queries per hour",
            lambda: queries.slow_per_hour_from_store(store, report.database, thresholds=t),
        )
        if per_hour is not None and not per_hour.empty:
            sec.frames["slow_per_hour"] = per_hour
            f["slow_per_hour"] = per_hour

    drift_notes(sec, insp, seen)

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
        value = attempt(sec, key, fn4)
        if value is not None:
            sec.frames[key] = value
            # findings["tables"] are the sizes (space); this section's "tables" frame is
            # the vacuum and analyze times
            f["table_maintenance" if key == "tables" else key] = value
    # findings only (the recommendations say them): autovacuum's server-wide settings, and
    # the tables with no planner statistics (no bloat estimate either)
    autovacuum = attempt(sec, "autovacuum", lambda: maintenance.autovacuum_settings(insp))
    if autovacuum is not None:
        f["autovacuum"] = autovacuum
        off = maintenance.autovacuum_off(autovacuum)
        if off:
            sec.notes.append(
                f"{off} server-wide: no table is vacuumed or analyzed automatically (only "
                "wraparound vacuums run)"
            )
    unanalyzed = attempt(
        sec, "never analyzed tables", lambda: maintenance.never_analyzed_tables(insp)
    )
    if unanalyzed is not None:
        f["never_analyzed"] = unanalyzed
        if len(unanalyzed):
            names = ", ".join(f"{r.schema}.{r.table}" for r in unanalyzed.head(5).itertuples())
            more = f" and {len(unanalyzed) - 5} more" if len(unanalyzed) > 5 else ""
            sec.notes.append(
                f"{fmt.counted(len(unanalyzed), 'table')} never analyzed (no planner "
                f"statistics, so no bloat estimate): {names}{more}"
            )

    drift_notes(sec, insp, seen)

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
        value = attempt(sec, what, fn5)
        if value is not None:
            sec.frames[key] = value
            f[f"embeddings_{key}"] = value
    drift_notes(sec, insp, seen)
    by_type, cov = sec.frames.get("by_entity_type"), sec.frames.get("coverage")
    if by_type is not None and cov is not None and {"entity_type", "entities"} <= set(cov):
        # for the chart's target marks only: how many source entities each type has
        by_type.attrs["entities"] = {
            str(r.entity_type): int(r.entities)
            for r in cov.itertuples(index=False)
            if isinstance(r.source_table, str) and not fmt.missing(r.entities)
        }
        # and how many of them have an embedding: a NULL embedding row is none (the
        # chart's title counts as the coverage table does, QA 23)
        if "embedded" in cov:
            by_type.attrs["embedded"] = {
                str(r.entity_type): int(r.embedded)
                for r in cov.itertuples(index=False)
                if isinstance(r.source_table, str) and not fmt.missing(r.embedded)
            }
    log = f.get("embeddings_log")
    if isinstance(log, pd.DataFrame):
        f["embeddings_log"] = {
            **{str(r.status): int(r.count) for r in log.itertuples(index=False)},
            "tokens_used": None  # the log has no tokens_used column
            if log["tokens_used"].isna().all()
            else int(log["tokens_used"].sum()),
        }


# --- capacity forecast (issue 15) ---------------------------------------------------------


def gather_forecast(
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
    elif fc.status == "no_limit":
        sec.notes.append(f"no size limit set: {fc.message}")
    else:
        sec.notes.append(f"size limit {limit}: {fc.message}")
    if len(fc.tables):
        sec.frames["growth_rates"] = fc.tables.head(report.top_n)


# --- retrieval quality (issue 15) ---------------------------------------------------------

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


def gather_retrieval(report: OptimizationReport, insp: Inspector) -> None:
    """db.vectors over every vector column and index, in one read-only transaction."""
    sec = report.sections["retrieval"]
    lim = report.limits
    rq = attempt(
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


def gather_reindex(report: OptimizationReport, insp: Inspector) -> None:
    """The counts of `lsops reindex-list` per entity type and its first `top_n` entities
    (`db.reindex`); the runbook's command in `findings["reindex"]["command"]`."""
    sec = report.sections["reindex"]
    if not insp.has_table("context_embeddings"):
        sec.missing("no context_embeddings table: not a LongSang database")
        return
    listing = attempt(sec, "re-index list", lambda: reindex.reindex_list(insp))
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


def gather_backups(report: OptimizationReport, settings: Settings | None, store: Any) -> None:
    """The Backups section: the latest stored check of this database (or made without
    one), its dumps and its restore drill. Needs the store only, not the database."""
    from ..exceptions import StoreError

    sec = report.sections["backups"]
    if store is None or isinstance(store, str):
        store = open_store(settings, store)
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
    gzip = [bool(f.get("gzip")) for f in check.get("files") or []]  # as the details name it
    files["format"] = [
        f"{v} (gzip)" if z and v else v for v, z in zip(files["format"], gzip, strict=True)
    ]
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
