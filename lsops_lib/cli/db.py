"""`lsops db size|indexes|queries|maintenance` and `lsops index-stats`: read-only
inspection of the LongSang PostgreSQL database, rich tables or `--json`.

The database is `LSOPS_DATABASE_URL`, or a named database of lsops.toml (`--database NAME`).
Exit codes: 0 done, 1 the database cannot be reached or answered with an error,
2 bad usage or settings (no database configured, unknown name). A missing
`pg_stat_statements` is not an error: the command says what is missing and carries on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .. import fmt
from . import App, err_console, limit_option, main, pass_app, run_command
from .render import RIGHT, Column, clip, clipper, emit, line, records, table

__all__ = ["db_group", "index_stats"]

_database_option = click.option(
    "--database",
    "database",
    metavar="NAME",
    help="Named database from lsops.toml (default: the configured one).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


@contextmanager
def _inspector(app: App, database: str | None) -> Iterator[Any]:
    from ..db import connect

    settings = app.settings(database)
    url = settings.database(database)
    insp = connect(url)
    try:
        yield insp
    finally:
        insp.close()


def _thresholds(app: App) -> Any:
    from ..db import DbThresholds

    return DbThresholds.from_settings(app.settings().thresholds)


def _note(message: str) -> None:
    err_console.print(f"lsops: {message}", markup=False, soft_wrap=True)


def _when(value: Any) -> str:
    """An instant in UTC; a missing one is "never" (never vacuumed, never indexed)."""
    return "never" if fmt.missing(value) else fmt.instant(value)


def _plain(value: Any) -> str:
    return fmt.DASH if fmt.missing(value) else str(value)


def _c(key: str, header: str, format: Any = None, justify: str = "left") -> Column:
    return Column(key, header, format, justify)


def _size(key: str, header: str) -> Column:
    return Column(key, header, fmt.size, RIGHT)


def _count(key: str, header: str) -> Column:
    return Column(key, header, fmt.integer, RIGHT)


def _share(key: str, header: str) -> Column:
    return Column(key, header, fmt.pct, RIGHT)


_SCHEMA_TABLE = [_c("schema", "schema", clip), _c("table", "table", clip)]


# --- schema drift: a figure the database cannot give is null, and `unavailable` says why


def _records_or_none(frame: Any, columns: list[str] | None = None) -> list[dict] | None:
    return None if frame is None else records(frame, columns)


def _maybe_table(rows: Any, columns: list[Column], *, title: str, **options: Any) -> None:
    if rows is None:
        line(f"{title}: not available", style="dim")
    else:
        table(rows, columns, title=title, **options)


def _unavailable_view(d: Any) -> None:
    for message in d["unavailable"]:
        line(f"not available: {message}", style="dim")


@main.group("db")
def db_group() -> None:
    """Read-only inspection of the database: size, indexes, queries, maintenance, vectors."""


# --- lsops db size ---------------------------------------------------------------------

_SIZE_COLUMNS = [
    *_SCHEMA_TABLE,
    _size("total_bytes", "total"),
    _size("table_bytes", "heap"),
    _size("toast_bytes", "TOAST"),
    _size("index_bytes", "indexes"),
    _count("rows_estimate", "rows (est.)"),
]


def _size_view(limit: int) -> Any:
    def view(d: Any) -> None:
        total = d["database_bytes"]
        line(f"database size: {fmt.size(total)} ({fmt.integer(total)} bytes)")
        table(d["tables"], _SIZE_COLUMNS, title="Tables by total size", limit=limit)

    return view


def _per_day(value: Any) -> str:
    """`10.0 MiB/day`; a dash when the history is too short for a figure."""
    return fmt.DASH if fmt.missing(value) else f"{fmt.size(value)}/day"


# `--forecast` (issue 15): growth per day from the stored size snapshots (Theil-Sen, robust
# to a spike), the date the database reaches [thresholds] database_size_limit_bytes
_FORECAST_COLUMNS = [
    *_SCHEMA_TABLE,
    _size("total_bytes", "size"),
    Column("growth_bytes_per_day", "growth/day", _per_day, RIGHT),
    _share("share_of_growth", "share of growth"),
]


def _forecast_view(limit: int) -> Any:
    def view(d: Any) -> None:
        size_limit = fmt.size(d["limit_bytes"]) if d["limit_bytes"] else "none"
        line(f"database size: {fmt.size(d['database_bytes'])}; limit: {size_limit}")
        if d["growth_bytes_per_day"] is not None:
            line(
                f"growth: {fmt.size(d['growth_bytes_per_day'])}/day from "
                f"{fmt.counted(d['snapshots'], 'snapshot')} since {_when(d['since'])}"
            )
        when, between = d["reaches_limit_on"], d["reaches_limit_range"]
        if when is not None:
            line(f"reaches the limit on {when}")
        if between is not None:
            line(
                f"  plausible range: {between[0] or fmt.DASH} .. {between[1] or 'not foreseeable'}"
            )
        line(str(d["message"]))
        table(d["tables"], _FORECAST_COLUMNS, title="Fastest-growing tables", limit=limit)

    return view


def _size_forecast(app: App, as_json: bool, database: str | None, limit: int) -> None:
    from ..db import forecast, space
    from ..times import utcnow

    with run_command():
        settings = app.settings(database)
        with _inspector(app, database) as insp:
            total = space.database_size(insp)
        fc = forecast.forecast_for(settings, database, database_bytes=total, now=utcnow())
    emit(fc.as_dict(), as_json, _forecast_view(limit))


@db_group.command("size")
@_json_option
@_database_option
@limit_option(20, "Tables shown (the JSON lists all).")
@click.option(
    "--forecast",
    is_flag=True,
    help="When the database reaches [thresholds] database_size_limit_bytes (stored snapshots).",
)
@pass_app
def db_size(app: App, as_json: bool, database: str | None, limit: int, forecast: bool) -> None:
    """Database size and per table its heap, TOAST, index and total bytes."""
    from ..db import space

    if forecast:
        _size_forecast(app, as_json, database, limit)
        return
    with run_command(), _inspector(app, database) as insp:
        total = space.database_size(insp)
        tables = space.table_sizes(insp)
    data = {"database_bytes": int(total), "tables": records(tables, space.SIZE_COLUMNS)}
    emit(data, as_json, _size_view(limit))


# --- lsops db indexes ------------------------------------------------------------------

_UNUSED_COLUMNS = [
    *_SCHEMA_TABLE,
    _c("index", "index", clip),
    _size("size_bytes", "size"),
    _count("scans", "scans"),
    _c("drop_proposed", "drop proposed", lambda v: "yes" if v else "not yet"),
    # an index a foreign key needs is kept (no drop proposed, whatever its statistics' age)
    _c("foreign_key", "kept for", lambda v: f"foreign key {v}" if v else ""),
]
_DUPLICATE_COLUMNS = [
    *_SCHEMA_TABLE,
    _c("index", "index", clip),
    _c("covered_by", "covered by", clip),
    _size("size_bytes", "size"),
    _count("scans", "scans"),
]
_INVALID_COLUMNS = [*_SCHEMA_TABLE, _c("index", "index", clip), _size("size_bytes", "size")]
_FK_COLUMNS = [
    *_SCHEMA_TABLE,
    _c("columns", "columns", clip),
    _c("constraint", "constraint", clip),
    _c("referenced_table", "references", clip),
]
_SEQ_SCAN_COLUMNS = [
    *_SCHEMA_TABLE,
    _count("seq_scan", "seq scans"),
    _count("seq_tup_read", "rows read"),
    _share("seq_scan_share", "seq share"),
    _share("seq_read_share", "rows read seq"),  # what the candidates are judged by
    _count("rows_estimate", "rows (est.)"),
]


def _indexes_view(d: Any) -> None:
    from ..db.indexes import min_age_text

    since = "reset" if d["stats_reset"] is not None else "never reset: counting since the start"
    age = d["unused_index_min_age"]  # days, maybe a fraction ("12h" in lsops.toml)
    line(
        f"usage statistics {since} {fmt.instant(d['stats_since'])} "
        f"({fmt.duration(d['stats_age_days'] * 86400)} ago); a DROP is proposed for an unused "
        f"index once they cover {min_age_text(age)}"
    )
    _maybe_table(
        d["unused"],
        _UNUSED_COLUMNS,
        title="Unused indexes (0 scans; never PK, unique or constraint indexes)",
    )
    _maybe_table(d["duplicate"], _DUPLICATE_COLUMNS, title="Duplicate or redundant indexes")
    _maybe_table(d["invalid"], _INVALID_COLUMNS, title="Invalid indexes")
    _maybe_table(d["fk_without_index"], _FK_COLUMNS, title="Foreign keys without an index")
    _maybe_table(
        d["seq_scan"],
        _SEQ_SCAN_COLUMNS,
        title="Tables read mostly by sequential scans (index candidates)",
    )
    _unavailable_view(d)


@db_group.command("indexes")
@_json_option
@_database_option
@pass_app
def db_indexes(app: App, as_json: bool, database: str | None) -> None:
    """Unused, duplicate, invalid indexes and foreign keys without an index.

    The statistics age is always shown (since their reset, or the postmaster start when
    never reset); lsops's own queries never count as index use."""
    from ..db import drift, indexes

    with run_command(), _inspector(app, database) as insp:
        t = _thresholds(app)
        notes = insp.unavailable
        stats = indexes.stats_reset(insp)
        catalog = drift.figure(notes, "index catalog", lambda: indexes.index_catalog(insp))

        def from_catalog(what: str, fn: Any, columns: list[str] | None = None) -> Any:
            if catalog is None:
                return None
            return _records_or_none(drift.figure(notes, what, lambda: fn(catalog)), columns)

        data = {
            "unused": from_catalog(
                "unused indexes",
                lambda c: indexes.unused_indexes(insp, c, t, stats=stats),
            ),
            "duplicate": from_catalog(
                "duplicate indexes", lambda c: indexes.duplicate_indexes(insp, c)
            ),
            "invalid": from_catalog(
                "invalid indexes",
                lambda c: indexes.invalid_indexes(insp, c),
            ),
            "fk_without_index": _records_or_none(
                drift.figure(notes, "foreign keys", lambda: indexes.fk_without_index(insp))
            ),
            "seq_scan": _records_or_none(
                drift.figure(notes, "sequential scans", lambda: indexes.seq_scan_tables(insp, t))
            ),
            # stats_reset (None: never reset), stats_since, stats_since_source, stats_age_days
            **stats,
            "unused_index_min_age": t.unused_index_min_age,
            "unavailable": list(notes),
        }
    emit(data, as_json, _indexes_view)


# --- lsops db queries ------------------------------------------------------------------

_QUERY_KEYS = ["queryid", "query", "calls", "total_ms", "mean_ms", "rows"]
_QUERY_COLUMNS = [
    _c("query", "query", clipper(70)),
    _count("calls", "calls"),
    _c("total_ms", "total", fmt.ms, RIGHT),
    _c("mean_ms", "mean", fmt.ms, RIGHT),
    _count("rows", "rows"),
]


def _queries_view(d: Any) -> None:
    if not d["available"]:
        line(f"query statistics unavailable: {d['message']}")
        return
    table(d["top"], _QUERY_COLUMNS, title=f"Top {d['limit']} queries by {d['by']} time")
    slow = d["thresholds"]
    hidden = d["hidden_slow"]
    table(
        d["slow"],
        _QUERY_COLUMNS,
        title=(
            f"Slow queries (mean >= {fmt.ms(slow['slow_query_mean_ms'])}, "
            f"calls >= {fmt.integer(slow['slow_query_calls'])})"
        ),
        # the statements of other roles this role may not see are not "none"
        empty=f"none visible, {fmt.counted(hidden, 'slow statement')} hidden" if hidden else "none",
    )
    _unavailable_view(d)


@db_group.command("queries")
@_json_option
@_database_option
@limit_option(10, "How many top queries.")
@click.option(
    "--by",
    "order",
    type=click.Choice(["total", "mean"]),
    default="total",
    show_default=True,
    help="Order of the top list.",
)
@pass_app
def db_queries(app: App, as_json: bool, database: str | None, limit: int, order: str) -> None:
    """Top queries by total or mean time, and slow queries (pg_stat_statements).

    Statements of other roles that pg_stat_statements hides from a role without
    pg_read_all_stats are counted (`hidden_statements`, `hidden_slow`, `unavailable`)."""
    from ..db import queries
    from ..db.connect import MAX_COUNT
    from ..exceptions import ParameterError

    with run_command():
        if limit > MAX_COUNT:  # a LIMIT in SQL (a bigint): bad usage, exit 2, before connecting
            raise ParameterError(f"--limit must be at most {fmt.integer(MAX_COUNT)}, not {limit}")
        with _inspector(app, database) as insp:
            thresholds = _thresholds(app)
            status = queries.status(insp)
            top = slow = None
            hidden = {"statements": None, "slow": None}
            if status["available"]:
                top = (
                    queries.top_by_total(insp, limit)
                    if order == "total"
                    else queries.top_by_mean(insp, limit)
                )
                slow = queries.slow_queries(insp, thresholds)
                hidden = queries.hidden_statements(insp, thresholds)
            notes = list(insp.unavailable)
    data = {
        "available": bool(status["available"]),
        "message": None if status["available"] else str(status["message"]),
        "by": order,
        "limit": limit,
        "thresholds": {
            "slow_query_mean_ms": thresholds.slow_query_mean_ms,
            "slow_query_calls": thresholds.slow_query_calls,
        },
        "top": records(top, _QUERY_KEYS),
        "slow": records(slow, _QUERY_KEYS),
        # statements of other roles pg_stat_statements hides from this role (None: unknown)
        "hidden_statements": hidden["statements"],
        "hidden_slow": hidden["slow"],
        "unavailable": notes,
    }
    if as_json and not data["available"]:
        _note(str(data["message"]))  # stdout stays the JSON
    emit(data, as_json, _queries_view)


# --- lsops db maintenance --------------------------------------------------------------

_MAINTENANCE_KEYS = [
    "schema",
    "table",
    "dead_tuples",
    "live_tuples",
    "dead_ratio",
    "last_vacuum",
    "last_autovacuum",
    "last_analyze",
    "last_autoanalyze",
    "vacuum_count",
    "autovacuum_count",
    "analyze_count",
    "autoanalyze_count",
    "modified_since_analyze",
    "autovacuum_enabled",
]
_TABLE_COLUMNS = [
    *_SCHEMA_TABLE,
    _count("dead_tuples", "dead"),
    _count("live_tuples", "live"),
    _share("dead_ratio", "dead %"),
    _c("last_vacuum", "last vacuum", _when),
    _c("last_autovacuum", "last autovacuum", _when),
    _c("last_analyze", "last analyze", _when),
    _c("last_autoanalyze", "last autoanalyze", _when),
]
_BLOAT_COLUMNS = [
    *_SCHEMA_TABLE,
    _size("table_bytes", "size"),
    _size("bloat_bytes", "bloat"),
    _share("bloat_ratio", "bloat %"),
]
_WRAP_COLUMNS = [
    _c("database", "database", clip),
    _count("xid_age", "xid age"),
    _share("xid_fraction", "xid"),
    _count("mxid_age", "multixact age"),
    _share("mxid_fraction", "multixact"),
    _c("severity", "severity"),
]
_SEQUENCE_COLUMNS = [
    _c("schema", "schema", clip),
    _c("sequence", "sequence", clip),
    _c("column", "column", clip),
    _count("last_value", "last value"),
    _count("max_value", "max"),
    _share("fraction", "used"),
    _c("severity", "severity"),
]
_SESSION_COLUMNS = [
    _c("pid", "pid", _plain),
    _c("user", "user", clip),
    _c("application_name", "application", clip),
    _c("state", "state", clip),
    _c("query_s", "query time", fmt.duration, RIGHT),
    _c("transaction_s", "transaction time", fmt.duration, RIGHT),
    _c("query", "query", clipper(60)),
]
_CACHE_COLUMNS = [
    _c("kind", "kind"),
    _count("hits", "hits"),
    _count("reads", "reads"),
    _share("ratio", "ratio"),
    _c("flag", "flagged"),
]


def _maintenance_view(limit: int, thresholds: Any) -> Any:
    """The text of `db maintenance`; `thresholds` (DbThresholds) name the flags' levels."""

    def view(d: Any) -> None:
        t = {**thresholds.as_dict(), **d["thresholds"]}
        from ..db.maintenance import autovacuum_off

        off = autovacuum_off(d.get("autovacuum"))
        if off:
            line(
                f"{off} server-wide: no table is vacuumed or analyzed automatically "
                "(only anti-wraparound vacuums run)",
                style="bold red",
            )
        _maybe_table(d["tables"], _TABLE_COLUMNS, title="Tables by dead tuples", limit=limit)
        if d.get("never_analyzed"):
            names = ", ".join(f"{r['schema']}.{r['table']}" for r in d["never_analyzed"])
            line(f"never analyzed (no planner statistics, no bloat estimate; ANALYZE): {names}")
        if d["needs_vacuum"] is not None:
            needs = ", ".join(f"{r['schema']}.{r['table']}" for r in d["needs_vacuum"]) or "none"
            line(
                f"due a VACUUM (>= {fmt.integer(t['dead_tuples_min'])} dead, "
                f">= {fmt.exact_pct(t['dead_tuple_ratio'])}): {needs}"
            )
        _maybe_table(d["bloat"], _BLOAT_COLUMNS, title="Table bloat (estimate, flagged)")
        _maybe_table(d["wraparound"], _WRAP_COLUMNS, title="Wraparound (share of the 2^31 limit)")
        _maybe_table(
            d["sequences"],
            _SEQUENCE_COLUMNS,
            title=(
                f"Sequences near their maximum (>= {fmt.exact_pct(t['sequence_warn'])} used, "
                f"critical from {fmt.exact_pct(t['sequence_critical'])})"
            ),
        )
        _maybe_table(
            d["long_running"],
            _SESSION_COLUMNS,
            title=f"Long-running queries (>= {fmt.duration(t['long_running_s'])})",
        )
        _maybe_table(
            d["idle_in_transaction"],
            _SESSION_COLUMNS,
            title=f"Idle in transaction (>= {fmt.duration(t['idle_in_transaction_s'])})",
        )
        c = d["connections"]
        if c is not None:
            line(
                f"connections: {fmt.integer(c['total'])} of {fmt.integer(c['usable'])} usable "
                f"(max_connections {fmt.integer(c['max_connections'])}), "
                f"{fmt.pct(c['fraction'])}; {fmt.integer(c['active'])} active, "
                f"{fmt.integer(c['idle'])} idle, "
                f"{fmt.integer(c['idle_in_transaction'])} idle in transaction"
                + (
                    f"; FLAGGED: at or above {fmt.exact_pct(t['connections_warn'])}"
                    if c["flagged"]
                    else ""
                )
            )
        cache = d["cache"]
        if cache is not None:  # a flagged ratio says so, as the JSON's `flagged`
            below = f"below {fmt.exact_pct(t['cache_hit_ratio'])}"
            cache = [{**r, "flag": below if r["flagged"] else ""} for r in cache]
        _maybe_table(cache, _CACHE_COLUMNS, title="Cache hit ratios")
        _unavailable_view(d)

    return view


@db_group.command("maintenance")
@_json_option
@_database_option
@limit_option(20, "Tables shown (the JSON lists all).")
@pass_app
def db_maintenance(app: App, as_json: bool, database: str | None, limit: int) -> None:
    """Dead tuples, vacuum/analyze, bloat, wraparound, sequences, sessions, connections, cache."""
    from ..db import drift
    from ..db import maintenance as m

    with run_command(), _inspector(app, database) as insp:
        t = _thresholds(app)
        notes = insp.unavailable

        def get(what: str, fn: Any, columns: list[str] | None = None) -> list[dict] | None:
            return _records_or_none(drift.figure(notes, what, fn), columns)

        def flagged_bloat() -> Any:
            bloat = m.table_bloat(insp, t)
            return bloat[bloat["flagged"]] if not bloat.empty else bloat

        connections = get("connections", lambda: m.connections(insp, t))
        autovacuum = drift.figure(notes, "autovacuum settings", lambda: m.autovacuum_settings(insp))
        data = {
            # server-wide: with either off, no table is vacuumed or analyzed automatically
            "autovacuum": autovacuum,
            "tables": get("tables", lambda: m.table_maintenance(insp), _MAINTENANCE_KEYS),
            "never_analyzed": get("never analyzed", lambda: m.never_analyzed_tables(insp)),
            "needs_vacuum": get(
                "dead tuples",
                lambda: m.dead_tuple_tables(insp, t),
                ["schema", "table", "dead_tuples", "live_tuples", "dead_ratio"],
            ),
            "bloat": get("bloat", flagged_bloat),
            "wraparound": get("wraparound", lambda: m.database_wraparound(insp, t)),
            "oldest_tables": get("oldest tables", lambda: m.table_wraparound(insp, 10)),
            "sequences": get("sequences", lambda: m.sequences_near_max(insp, t)),
            "long_running": get("long-running queries", lambda: m.long_running_queries(insp, t)),
            "idle_in_transaction": get(
                "idle in transaction", lambda: m.idle_in_transaction(insp, t)
            ),
            "connections": connections[0] if connections else None,
            "cache": get("cache hit ratios", lambda: m.cache_hit_ratios(insp, t)),
            "thresholds": {
                "dead_tuples_min": t.dead_tuples_min,
                "dead_tuple_ratio": t.dead_tuple_ratio,
                "long_running_s": t.long_running_s,
                "idle_in_transaction_s": t.idle_in_transaction_s,
            },
            "unavailable": list(notes),
        }
    emit(data, as_json, _maintenance_view(limit, t))


# --- lsops index-stats -----------------------------------------------------------------

_BY_TYPE_COLUMNS = [
    _c("entity_type", "entity type", clip),
    _count("count", "count"),
    _c("last_indexed", "last indexed", _when),
]
_FAILURE_COLUMNS = [
    _c("created_at", "when", _when),
    _c("entity_type", "entity type", clip),
    _c("entity_id", "entity id", clip),
    _c("error_message", "error", clipper(70)),
    _count("tokens_used", "tokens"),
]
_COVERAGE_COLUMNS = [
    _c("entity_type", "entity type", clip),
    _c("source_table", "source", clip),
    _count("entities", "entities"),
    _count("embedded", "embedded"),
    _count("missing", "missing"),
    _count("stale", "stale"),
    _count("null_embeddings", "null"),
]


def _index_stats_view(d: Any) -> None:
    _maybe_table(
        d["by_entity_type"],
        _BY_TYPE_COLUMNS,
        title="Embeddings per entity type",
        empty="no embeddings",
    )
    log = d["log"]
    if log is None:
        line("indexing log: not available", style="dim")
    else:
        states = ", ".join(
            f"{k} {fmt.integer(log[k])}" for k in ("completed", "failed", "pending", "processing")
        )
        line(f"indexing log: {states}; {fmt.integer(log['tokens_used'])} tokens used")
    _maybe_table(d["latest_failures"], _FAILURE_COLUMNS, title="Latest failures")
    _maybe_table(d["coverage"], _COVERAGE_COLUMNS, title="Coverage")
    if d["coverage"]:
        line(
            "missing: no embedding row or a NULL embedding; stale: a non-NULL embedding older "
            "than its entity; null: the NULL embeddings stored (also missing) - as "
            "`lsops reindex-list` counts them",
            style="dim",
        )
    _unavailable_view(d)


@main.command("index-stats")
@_json_option
@_database_option
@limit_option(10, "How many latest failures (0: none).", name="--failures", least=0)
@pass_app
def index_stats(app: App, as_json: bool, database: str | None, failures: int) -> None:
    """Embeddings indexing: the runbook's weekly check, the indexing log, coverage.

    Coverage counts missing (no embedding row, or a NULL embedding) and stale (a non-NULL
    embedding older than its entity) as `lsops reindex-list` does; null counts the NULL
    embeddings again, apart. A table or column this database lacks costs only the figure
    that needs it: the figure is null in the JSON and `unavailable` says which and why."""
    from ..db import drift, embeddings
    from ..db.connect import MAX_COUNT
    from ..exceptions import ParameterError

    with run_command():
        if failures > MAX_COUNT:  # a LIMIT in SQL (a bigint): bad usage, exit 2
            raise ParameterError(
                f"--failures must be at most {fmt.integer(MAX_COUNT)}, not {failures}"
            )
    with run_command(), _inspector(app, database) as insp:
        notes = insp.unavailable

        def get(what: str, fn: Any) -> Any:
            return drift.figure(notes, what, fn)

        by_type = get("embeddings per entity type", lambda: embeddings.by_entity_type(insp))
        log = get("indexing log", lambda: embeddings.log_summary(insp))
        latest = get("latest indexing failures", lambda: embeddings.latest_failures(insp, failures))
        cov = get("embeddings coverage", lambda: embeddings.coverage(insp))
        if by_type is None and log is None:
            if any("permission denied" in n for n in notes):
                role = insp.scalar("SELECT current_user")
                raise drift.SchemaMissing(
                    f"permission denied: role {role} may not read the LongSang tables "
                    f"(grant it SELECT on them, or GRANT pg_read_all_data TO {role}): "
                    + "; ".join(notes)
                )
            raise drift.SchemaMissing("not a LongSang database: " + "; ".join(notes))
        data = {
            "by_entity_type": _records_or_none(by_type, ["entity_type", "count", "last_indexed"]),
            "log": log,
            "latest_failures": _records_or_none(latest),
            "coverage": _records_or_none(cov),
            "unavailable": list(notes),
        }
    emit(data, as_json, _index_stats_view)
