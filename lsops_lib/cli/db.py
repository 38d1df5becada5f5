"""`lsops db size|indexes|queries|maintenance` and `lsops index-stats`: read-only
inspection of the LongSang PostgreSQL database, rich tables or `--json`.

The database is `LSOPS_DATABASE_URL`, or a named database of lsops.toml (`--database NAME`).
Exit codes: 0 done, 1 the database cannot be reached or answered with an error,
2 bad usage or settings (no database configured, unknown name). A missing
`pg_stat_statements` is not an error: the command says what is missing and carries on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import pandas as pd
from rich.table import Table
from rich.text import Text

from . import App, console, emit_json, err_console, main, pass_app, run_command

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


def records(df: pd.DataFrame | None, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts (NaN/NaT/NA -> None, numpy -> Python)."""
    if df is None or df.empty:
        return []
    view = df[columns] if columns else df
    out = []
    for row in view.to_dict("records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, list | tuple | dict):
                clean[key] = list(value) if isinstance(value, tuple) else value
            elif value is None or (not isinstance(value, str) and pd.isna(value)):
                clean[key] = None
            elif isinstance(value, pd.Timestamp):
                clean[key] = value.isoformat()
            elif hasattr(value, "item"):
                clean[key] = value.item()
            else:
                clean[key] = value
        out.append(clean)
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _bytes(value: Any) -> str:
    if _missing(value):
        return "-"
    number = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(number) < 1024 or unit == "TB":
            return f"{number:,.0f} {unit}" if unit == "B" else f"{number:,.1f} {unit}"
        number /= 1024
    return str(value)  # pragma: no cover


def _int(value: Any) -> str:
    return "-" if _missing(value) or pd.isna(value) else f"{int(value):,}"


def _ms(value: Any) -> str:
    return "-" if _missing(value) else f"{float(value):,.1f} ms"


def _pct(value: Any) -> str:
    return "-" if _missing(value) or pd.isna(value) else f"{float(value) * 100:.1f} %"


def _when(value: Any) -> str:
    if _missing(value) or pd.isna(value):
        return "never"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _text(value: Any, limit: int = 80) -> str:
    if _missing(value):
        return "-"
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(
    title: str,
    df: pd.DataFrame | None,
    columns: list[tuple[str, str, Callable[[Any], str]]],
    *,
    empty: str = "none",
    limit: int | None = None,
) -> None:
    """A rich table; every cell a plain Text (names and query texts are never markup)."""
    if df is None or df.empty:
        console.print(Text(f"{title}: {empty}", style="dim"))
        return
    table = Table(title=title, title_justify="left", show_lines=False)
    for _key, header, _fmt in columns:
        table.add_column(header, overflow="fold")
    view = df if limit is None else df.head(limit)
    for row in view.to_dict("records"):
        table.add_row(*[Text(fmt(row.get(key))) for key, _header, fmt in columns])
    console.print(table)
    if limit is not None and len(df) > limit:
        console.print(Text(f"  … {len(df) - limit} more (use --json for all)", style="dim"))


def _note(message: str) -> None:
    err_console.print(Text(f"lsops: {message}"), soft_wrap=True)


@main.group("db")
def db_group() -> None:
    """Read-only inspection of the database: size, indexes, queries, maintenance."""


# --- lsops db size ---------------------------------------------------------------------


@db_group.command("size")
@_json_option
@_database_option
@click.option("--limit", default=20, show_default=True, help="Tables shown (the JSON lists all).")
@pass_app
def db_size(app: App, as_json: bool, database: str | None, limit: int) -> None:
    """Database size and per table its heap, TOAST, index and total bytes."""
    from ..db import space

    with run_command(), _inspector(app, database) as insp:
        total = space.database_size(insp)
        tables = space.table_sizes(insp)
    if as_json:
        emit_json({"database_bytes": int(total), "tables": records(tables, space.SIZE_COLUMNS)})
        return
    console.print(Text(f"database size: {_bytes(total)} ({total:,} bytes)"))
    _table(
        "Tables by total size",
        tables,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("total_bytes", "total", _bytes),
            ("table_bytes", "heap", _bytes),
            ("toast_bytes", "TOAST", _bytes),
            ("index_bytes", "indexes", _bytes),
            ("rows_estimate", "rows (est.)", _int),
        ],
        limit=limit,
    )


# --- lsops db indexes ------------------------------------------------------------------


@db_group.command("indexes")
@_json_option
@_database_option
@pass_app
def db_indexes(app: App, as_json: bool, database: str | None) -> None:
    """Unused, duplicate, invalid indexes and foreign keys without an index."""
    from ..db import indexes

    with run_command(), _inspector(app, database) as insp:
        catalog = indexes.index_catalog(insp)
        unused = indexes.unused_indexes(insp, catalog)
        duplicate = indexes.duplicate_indexes(insp, catalog)
        invalid = indexes.invalid_indexes(insp, catalog)
        fks = indexes.fk_without_index(insp)
        reset = indexes.stats_reset(insp)
        seq = None if as_json else indexes.seq_scan_tables(insp, _thresholds(app))
    if as_json:
        emit_json(
            {
                "unused": records(unused),
                "duplicate": records(duplicate),
                "invalid": records(invalid),
                "fk_without_index": records(fks),
            }
        )
        return
    if reset["stats_reset"] is None:
        console.print(
            Text("usage statistics never reset: scans counted since the database was created")
        )
    else:
        console.print(
            Text(
                f"usage statistics reset {reset['stats_reset']:%Y-%m-%d %H:%M} UTC "
                f"({reset['stats_age_days']:.1f} days ago)"
            )
        )
    _table(
        "Unused indexes (0 scans; never PK, unique or constraint indexes)",
        unused,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("index", "index", _text),
            ("size_bytes", "size", _bytes),
            ("scans", "scans", _int),
        ],
    )
    _table(
        "Duplicate or redundant indexes",
        duplicate,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("index", "index", _text),
            ("covered_by", "covered by", _text),
            ("size_bytes", "size", _bytes),
            ("scans", "scans", _int),
        ],
    )
    _table(
        "Invalid indexes",
        invalid,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("index", "index", _text),
            ("size_bytes", "size", _bytes),
        ],
    )
    _table(
        "Foreign keys without an index",
        fks,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("columns", "columns", _text),
            ("constraint", "constraint", _text),
            ("referenced_table", "references", _text),
        ],
    )
    _table(
        "Tables read mostly by sequential scans (index candidates)",
        seq,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("seq_scan", "seq scans", _int),
            ("seq_tup_read", "rows read", _int),
            ("seq_scan_share", "seq share", _pct),
            ("rows_estimate", "rows (est.)", _int),
        ],
    )


# --- lsops db queries ------------------------------------------------------------------

_QUERY_KEYS = ["queryid", "query", "calls", "total_ms", "mean_ms", "rows"]


@db_group.command("queries")
@_json_option
@_database_option
@click.option("--limit", default=10, show_default=True, help="How many top queries.")
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
    """Top queries by total or mean time, and slow queries (pg_stat_statements)."""
    from ..db import queries

    with run_command(), _inspector(app, database) as insp:
        thresholds = _thresholds(app)
        status = queries.status(insp)
        top = slow = None
        if status["available"]:
            top = (
                queries.top_by_total(insp, limit)
                if order == "total"
                else queries.top_by_mean(insp, limit)
            )
            slow = queries.slow_queries(insp, thresholds)
    if not status["available"]:
        if as_json:
            _note(str(status["message"]))
        else:
            console.print(
                Text(f"query statistics unavailable: {status['message']}"), soft_wrap=True
            )
    if as_json:
        emit_json(
            {
                "available": bool(status["available"]),
                "top": records(top, _QUERY_KEYS),
                "slow": records(slow, _QUERY_KEYS),
            }
        )
        return
    if not status["available"]:
        return
    columns = [
        ("query", "query", lambda v: _text(v, 70)),
        ("calls", "calls", _int),
        ("total_ms", "total", _ms),
        ("mean_ms", "mean", _ms),
        ("rows", "rows", _int),
    ]
    _table(f"Top {limit} queries by {order} time", top, columns)
    _table(
        f"Slow queries (mean >= {thresholds.slow_query_mean_ms:g} ms, calls >= {thresholds.slow_query_calls})",
        slow,
        columns,
    )


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


@db_group.command("maintenance")
@_json_option
@_database_option
@click.option("--limit", default=20, show_default=True, help="Tables shown (the JSON lists all).")
@pass_app
def db_maintenance(app: App, as_json: bool, database: str | None, limit: int) -> None:
    """Dead tuples, vacuum/analyze, bloat, wraparound, sequences, sessions, connections, cache."""
    from ..db import maintenance as m

    with run_command(), _inspector(app, database) as insp:
        t = _thresholds(app)
        tables = m.table_maintenance(insp)
        dead = m.dead_tuple_tables(insp, t)
        bloat = m.table_bloat(insp, t)
        wrap = m.database_wraparound(insp, t)
        table_wrap = m.table_wraparound(insp, 10)
        sequences = m.sequences_near_max(insp, t)
        long_running = m.long_running_queries(insp, t)
        idle = m.idle_in_transaction(insp, t)
        conns = m.connections(insp, t)
        cache = m.cache_hit_ratios(insp, t)
    if as_json:
        conn_records = records(conns)
        emit_json(
            {
                "tables": records(tables, _MAINTENANCE_KEYS),
                "needs_vacuum": records(
                    dead[["schema", "table", "dead_tuples", "live_tuples", "dead_ratio"]]
                ),
                "bloat": records(bloat[bloat["flagged"]] if not bloat.empty else bloat),
                "wraparound": records(wrap),
                "oldest_tables": records(table_wrap),
                "sequences": records(sequences),
                "long_running": records(long_running),
                "idle_in_transaction": records(idle),
                "connections": conn_records[0] if conn_records else None,
                "cache": records(cache),
            }
        )
        return
    _table(
        "Tables by dead tuples",
        tables,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("dead_tuples", "dead", _int),
            ("live_tuples", "live", _int),
            ("dead_ratio", "dead %", _pct),
            ("last_vacuum", "last vacuum", _when),
            ("last_autovacuum", "last autovacuum", _when),
            ("last_analyze", "last analyze", _when),
            ("last_autoanalyze", "last autoanalyze", _when),
        ],
        limit=limit,
    )
    needs = ", ".join(f"{r.schema}.{r.table}" for r in dead.itertuples()) or "none"
    console.print(
        Text(f"due a VACUUM (>= {t.dead_tuples_min} dead, >= {t.dead_tuple_ratio:.0%}): {needs}")
    )
    _table(
        "Table bloat (estimate, flagged)",
        bloat[bloat["flagged"]] if not bloat.empty else bloat,
        [
            ("schema", "schema", _text),
            ("table", "table", _text),
            ("table_bytes", "size", _bytes),
            ("bloat_bytes", "bloat", _bytes),
            ("bloat_ratio", "bloat %", _pct),
        ],
    )
    _table(
        "Wraparound (share of the 2^31 limit)",
        wrap,
        [
            ("database", "database", _text),
            ("xid_age", "xid age", _int),
            ("xid_fraction", "xid", _pct),
            ("mxid_age", "multixact age", _int),
            ("mxid_fraction", "multixact", _pct),
            ("severity", "severity", _text),
        ],
    )
    _table(
        "Sequences near their maximum",
        sequences,
        [
            ("schema", "schema", _text),
            ("sequence", "sequence", _text),
            ("column", "column", _text),
            ("last_value", "last value", _int),
            ("max_value", "max", _int),
            ("fraction", "used", _pct),
        ],
    )
    session_columns = [
        ("pid", "pid", _int),
        ("user", "user", _text),
        ("application_name", "application", _text),
        ("state", "state", _text),
        ("query_s", "query s", lambda v: _int(v)),
        ("transaction_s", "transaction s", lambda v: _int(v)),
        ("query", "query", lambda v: _text(v, 60)),
    ]
    _table(f"Long-running queries (>= {t.long_running_s:g} s)", long_running, session_columns)
    _table(f"Idle in transaction (>= {t.idle_in_transaction_s:g} s)", idle, session_columns)
    if not conns.empty:
        c = conns.iloc[0]
        console.print(
            Text(
                f"connections: {int(c['total'])} of {int(c['usable'])} usable "
                f"(max_connections {int(c['max_connections'])}), {_pct(c['fraction'])}; "
                f"{int(c['active'])} active, {int(c['idle'])} idle, "
                f"{int(c['idle_in_transaction'])} idle in transaction"
            )
        )
    _table(
        "Cache hit ratios",
        cache,
        [
            ("kind", "kind", _text),
            ("hits", "hits", _int),
            ("reads", "reads", _int),
            ("ratio", "ratio", _pct),
        ],
    )


# --- lsops index-stats -----------------------------------------------------------------


@main.command("index-stats")
@_json_option
@_database_option
@click.option("--failures", default=10, show_default=True, help="How many latest failures.")
@pass_app
def index_stats(app: App, as_json: bool, database: str | None, failures: int) -> None:
    """Embeddings indexing: the runbook's weekly check, the indexing log, coverage."""
    from ..db import embeddings

    with run_command(), _inspector(app, database) as insp:
        by_type = embeddings.by_entity_type(insp)
        log = embeddings.log_summary(insp)
        latest = embeddings.latest_failures(insp, failures)
        coverage = embeddings.coverage(insp)
    if as_json:
        emit_json(
            {
                "by_entity_type": records(by_type, ["entity_type", "count", "last_indexed"]),
                "log": log,
                "latest_failures": records(latest),
                "coverage": records(coverage),
            }
        )
        return
    _table(
        "Embeddings per entity type",
        by_type,
        [
            ("entity_type", "entity type", _text),
            ("count", "count", _int),
            ("last_indexed", "last indexed", _when),
        ],
        empty="no embeddings",
    )
    console.print(
        Text(
            "indexing log: "
            + ", ".join(f"{k} {log[k]:,}" for k in ("completed", "failed", "pending", "processing"))
            + f"; {log['tokens_used']:,} tokens used"
        )
    )
    _table(
        "Latest failures",
        latest,
        [
            ("created_at", "when", _when),
            ("entity_type", "entity type", _text),
            ("entity_id", "entity id", _text),
            ("error_message", "error", lambda v: _text(v, 70)),
            ("tokens_used", "tokens", _int),
        ],
    )
    _table(
        "Coverage",
        coverage,
        [
            ("entity_type", "entity type", _text),
            ("source_table", "source", _text),
            ("entities", "entities", _int),
            ("embedded", "embedded", _int),
            ("missing", "missing", _int),
            ("stale", "stale", _int),
            ("null_embeddings", "null", _int),
        ],
    )
