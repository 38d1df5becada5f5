"""The DB optimization report, shown: its header, its tables, its recommendations.

    present.show_optimization_header(report)      which database, when, reachable or not
    present.show_db_section(report, "indexes")    a section's problems, notes and tables
    present.show_db_table(df, "Findings")         one table of the report, formatted by column
    present.show_recommendations(report)          one box per finding, its SQL printed

The data is `lsops_lib.db.report.OptimizationReport`; the charts are `lsops_lib.plots`
(`top_tables`, `database_growth`, `embeddings_by_type`). Built on `present.display` (escaped
tables, boxes, `guarded`, `unavailable`) and `lsops_lib.fmt` (`fmt.value` by column name).
What the DB tables need beyond `display.table_html`, and so is here: every column formatted
by its name (`db_cell`, with the few DB rules below), headers in words (`HEADERS`), query
texts on one line and cut (`TEXT_LIMITS`), a note under a table's title, long series thinned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import fmt
from .display import (
    DASH,
    box_html,
    esc,
    facts_html,
    guarded,
    show_html,
    show_notes,
    show_text,
    table_html,
    unavailable,
)

__all__ = [
    "DB_HEADERS",
    "db_cell",
    "db_table_html",
    "show_db_section",
    "show_db_table",
    "show_optimization_header",
    "show_recommendations",
    "show_reindex",
]

# snake_case columns as a reader calls them (the DataFrames and JSON keep their names);
# instants say "UTC" in every cell (fmt.instant), so the headers need not
HEADERS = {
    "total_bytes": "total",
    "table_bytes": "table size",
    "index_bytes": "indexes",
    "toast_bytes": "TOAST",
    "rows_estimate": "rows (estimate)",
    "ts": "snapshot",
    "first_ts": "first snapshot",
    "last_ts": "last snapshot",
    "first_bytes": "size then",
    "last_bytes": "size now",
    "growth_bytes": "growth",
    "bytes_per_day": "growth per day",
    "size_bytes": "size",
    "stats_reset": "statistics reset",
    "stats_age_days": "statistics age",
    "queryid": "query id",
    "total_ms": "total time",
    "mean_ms": "mean time",
    "hour": "hour",
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
    "created_at": "created",
    "completed_at": "completed",
    "changed_at": "changed",
    "last_indexed": "last indexed",
    "last_updated": "last updated",
    "latest": "latest",
    "null_embeddings": "NULL embeddings",
    "is_valid": "valid",
    "seq_scan_share": "sequential share",
    # retrieval quality and the forecast (issue 15)
    "zero_vectors": "zero vectors",
    "duplicate_groups": "duplicate groups",
    "duplicate_rows": "rows in them",
    "duplicate_examples": "examples (ids)",
    "norm_min": "norm min",
    "norm_median": "norm median",
    "norm_max": "norm max",
    "bytes": "size",
    "recall_at_k": "recall@k",
    "recall_p10": "recall p10",
    "index_ms": "index, per query",
    "exact_ms": "exact scan, per query",
    "current": "now",
    "suggested_recall": "its recall",
    "opclass": "operator class",
    "growth_bytes_per_day": "growth per day",
    "share_of_growth": "share of growth",
}
DB_HEADERS = HEADERS
# where table_bytes is the heap alone (pg_table_size minus TOAST), not the whole table
FRAME_HEADERS: dict[str, dict[str, str]] = {
    "tables": {"table_bytes": "heap"},
    "growth_total": {"table_bytes": "heap"},
}
# long SQL is cut shorter than other text: the recommendations quote what matters
TEXT_LIMITS = {"query": 200, "definition": 200}
_BREAKS = re.compile(r"(?:\\n|\s)+")
# texts written by db.recommend with PostgreSQL's size labels (powers of 1024 as kB, MB)
_PG_SIZES = ("title", "evidence")

FRAME_TITLES = {
    "tables": "Largest tables",
    "growth_total": "Size of all tables per snapshot (the database size above also counts its catalogs and free space)",
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
    "slow_per_hour": (
        "Slow queries per hour (from stored snapshots: the slow calls between two snapshots "
        "divided by the hours between them)"
    ),
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
    # issue 12: the Re-index section
    "reindex_counts": "To re-index, per entity type (unknown: the schema does not tell)",
    "reindex_entities": "Entities to re-index",
    # issue 12: the Backups section (the latest stored `lsops backup check`)
    "backup_files": "Dumps in the latest check, newest first",
    "backup_restore": "Restore drill: rows restored against the live database",
    "growth_rates": "Fastest-growing tables (Theil-Sen growth per day)",
    "vector_columns": "Vector columns: rows, NULLs, zero vectors, duplicates, norms",
    "vector_recall": "Vector indexes: recall@k against an exact scan, and the suggested setting",
}
# issue 12: the Re-index section's columns
HEADERS.update(
    {
        "to_reindex": "to re-index",
        "embedded_at": "embedded",
        "failed_at": "failed",
        "source_table": "source table",
    }
)

# a finding's box: critical red, warning amber, info blue (display.box_html's kinds)
SEVERITY_BOX = {"critical": "unavailable", "warning": "warning", "info": "info"}


# --- cells and tables -------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf"
    )


def db_cell(column: str, value: Any, *, max_text: int = 300) -> str:
    """One value of a DB table as a reader reads it: `fmt.value` by the column's name
    (bytes in IEC units, shares in %, instants in UTC, counts with separators), plus the
    database's own cases: a query id is an identifier (no separators), a growth rate is per
    day, a mean below 10 ms keeps its significant digits (0.00486 ms, not 0.00 ms), a query
    reads on one line, long SQL is cut, PostgreSQL's kB/MB labels become KiB/MiB."""
    if fmt.missing(value):
        return DASH
    if _number(value) and not isinstance(value, bool):
        if column == "queryid":
            return str(int(value))
        if column == "stats_age_days":  # how long the statistics have counted: a duration
            return fmt.duration(float(value) * 86400)
        if column.endswith("bytes_per_day"):
            return f"{fmt.size(value)}/day"
        if column.endswith("_ms") and abs(float(value)) < 10 and float(value) != 0:
            return f"{fmt.number(value)} ms"
        return fmt.value(value, column)
    if isinstance(value, list | tuple):  # duplicate_examples: groups of ids
        value = "; ".join(
            ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for v in value
        )
    if not isinstance(value, str):
        return fmt.value(value, column)
    text = value
    if column == "query":  # one line: line breaks (real or escaped "\\n") read as spaces
        text = _BREAKS.sub(" ", text).strip()
    if column in _PG_SIZES:
        text = fmt.iec_units(text)
    limit = min(TEXT_LIMITS.get(column, max_text), max_text)
    return text[:limit] + "…" if len(text) > limit else text


def _threshold_value(name: str, value: Any) -> str:
    """A threshold as the report uses it (the name stays the lsops.toml key)."""
    if fmt.missing(value):
        return DASH
    if name.endswith("_bytes"):
        return fmt.size(value)
    if name.endswith(("_ratio", "_warn", "_critical")):
        return fmt.exact_pct(value)  # a threshold is never rounded (0.995: 99.5 %, not 100 %)
    if name.endswith("_ms"):
        return fmt.ms(value)
    if name.endswith("_s"):
        return fmt.ms(float(value) * 1000)
    return fmt.number(value)


def header(column: Any, headers: Mapping[str, str] | None = None) -> str:
    """A column's header in words: `headers`, else `HEADERS`, else the name spaced."""
    name = str(column)
    return (headers or {}).get(name) or HEADERS.get(name, name.replace("_", " "))


def db_table_html(
    df: pd.DataFrame,
    *,
    max_rows: int = 50,
    max_text: int = 300,
    headers: Mapping[str, str] | None = None,
) -> str:
    """A DataFrame of the DB report as an escaped HTML table (`display.table_html`): every
    cell by `db_cell`, headers in words; a `threshold, value` frame formats each value by
    its threshold's name."""
    if list(df.columns) == ["threshold", "value"]:
        df = df.assign(
            value=[
                _threshold_value(str(k), v)
                for k, v in zip(df["threshold"], df["value"], strict=True)
            ]
        )
        return table_html(df, {"value": str}, max_rows=max_rows, max_text=max_text)
    labels: dict[str, str] = {}
    for col in df.columns:
        label = header(col, headers)
        labels[str(col)] = label if label not in labels.values() else str(col)
    formats = {str(c): (lambda v, c=str(c): db_cell(c, v, max_text=max_text)) for c in df.columns}
    return table_html(df, formats, columns=labels, max_rows=max_rows, max_text=max_text)


def show_db_table(
    df: pd.DataFrame | None,
    title: str | None = None,
    *,
    max_rows: int = 50,
    empty: str = "none",
    headers: Mapping[str, str] | None = None,
    note: str | None = None,
) -> None:
    """A titled table of the DB report (or the `empty` sentence when there are no rows);
    `note` under the title. Everything escaped."""
    head = f"<h3>{esc(title)}</h3>" if title else ""  # under the notebook's ## section
    if df is None or df.empty:
        show_html(f"{head}<p><em>{esc(empty)}</em></p>")
        return
    if note:
        head += f"<p><em>{esc(note)}</em></p>"
    show_html(head + db_table_html(df, max_rows=max_rows, headers=headers))


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


# --- the report -------------------------------------------------------------------------------


@guarded("Header")
def show_optimization_header(report: Any) -> None:
    """Which database (by NAME, never its URL), which server, when, its size; a red box when
    it could not be inspected."""
    rows: list[tuple[str, Any]] = [("Database", report.database)]
    if report.server_version:
        rows.append(("Server", f"PostgreSQL {report.server_version}"))
    rows += [("Generated", fmt.instant(report.generated_at)), ("Top N", report.top_n)]
    if report.reachable:
        rows.append(
            (
                "Size",
                fmt.size(report.database_bytes) if report.database_bytes is not None else "unknown",
            )
        )
    markup = facts_html(rows)
    if not report.reachable:
        markup += box_html(
            "The database could not be inspected.",
            f"{report.error} Every section below is empty for that reason.",
            kind="unavailable",
        )
    show_html(markup)


def show_db_section(report: Any, name: str, *, only: list[str] | None = None) -> None:
    """A section of the report: what it could not check (a red box each, listed in the key
    figures), its notes, then its tables (`only`: these frames). Never raises."""
    section = report.sections[name]
    guarded(section.title)(_show_section)(report, section, only)


def _show_section(report: Any, section: Any, only: list[str] | None) -> None:
    for error in section.errors:
        unavailable(section.title, error)
    if section.name == "backups":
        _show_backups(report, section)
        return
    _show_absences(section)
    for key, df in section.frames.items():
        if only is not None and key not in only:
            continue
        frame_key = (
            "tables_maintenance" if (section.name, key) == ("maintenance", "tables") else key
        )
        if key == "slow_per_hour" and "over_threshold" in df:
            over = int(df["over_threshold"].fillna(False).astype(bool).sum())
            show_text(
                f"{over} of {fmt.counted(len(df), 'hour')} over the runbook's threshold of "
                f"{report.thresholds.slow_queries_per_hour} slow queries an hour. The rate of "
                "an hour is per statement its slow calls between the snapshots that end in "
                "that hour, divided by the hours between them (snapshots a day apart: a "
                "day's slow calls / 24), summed over statements."
            )
        shown, note = _thin(df)
        show_db_table(
            shown,
            FRAME_TITLES.get(frame_key, key),
            headers=FRAME_HEADERS.get(frame_key),
            note=note,
        )


def _show_absences(section: Any) -> None:
    """What the section could not check (an extension, the growth snapshots, a table or
    column, a privilege): a red box each, recorded among the run's problems (the report is
    partial); then its other notes."""
    for reason in section.unavailable:
        unavailable(section.title, reason)
    show_notes([n for n in section.notes if n not in section.unavailable])


# --- backups (issue 12) -------------------------------------------------------------------------

BACKUP_BOX = {"OK": "good", "WARNING": "warning", "CRITICAL": "unavailable", "UNKNOWN": "warning"}
BACKUP_HEADERS = {
    "path": "dump",
    "bytes": "size",
    "age_s": "age at the check",
    "tables": "tables",
    "dump_rows": "restored rows",
    "live_rows": "live rows",
}


def _show_backups(report: Any, section: Any) -> None:
    """The latest backup check: its verdict in a box coloured by status, a red box for
    what it could not show (no store, no check stored, no drill), its notes (when, the newest dump, the drill's time and tolerance), the dumps
    and the drill's per-table comparison."""
    check = report.findings.get("backup_check")
    if isinstance(check, dict):
        newest = next((f for f in check["files"] if f["path"] == check.get("newest")), None)
        what = (
            f"newest dump: {newest['verdict']} ({newest['detail']})" if newest else "no dump found"
        )
        show_html(
            box_html(
                f"Backups: {check['status']} (exit {check['exit_code']})",
                what,
                kind=BACKUP_BOX.get(str(check["status"]), "other"),
            )
        )
    for reason in section.unavailable:  # no store, no check stored, no drill in it
        unavailable(section.title, reason)
    show_notes([n for n in section.notes if n not in section.unavailable])
    files = section.frames.get("backup_files")
    if files is not None:
        shown = files.assign(age_s=[fmt.duration(v) for v in files["age_s"]])
        show_db_table(shown, FRAME_TITLES["backup_files"], headers=BACKUP_HEADERS)
    restore = section.frames.get("backup_restore")
    if restore is not None:
        show_db_table(
            restore,
            FRAME_TITLES["backup_restore"],
            headers=BACKUP_HEADERS,
            empty="no table restored",
        )


def _finding_html(r: Any) -> str:
    kind = SEVERITY_BOX.get(str(r.severity), "other")
    markup = box_html(f"[{r.severity}] {fmt.iec_units(r.title)}", kind=kind)
    body = f"<br><em>Evidence:</em> {esc(fmt.iec_units(r.evidence))}"
    if isinstance(r.check, str) and r.check:
        body += f"<br><em>Checked:</em> {esc(r.check)}"
    if isinstance(r.sql, str) and r.sql:
        body += f"<pre><code>{esc(r.sql)}</code></pre>"
    # box_html has no room for preformatted SQL: the evidence and the SQL go inside its frame
    end = "</blockquote>"
    return markup[: -len(end)] + body + end


@guarded("Recommendations")
def show_recommendations(report: Any) -> None:
    """Each finding in a box coloured by severity: its title, evidence, the hypothetical
    index check where there was one, and the SQL to run (printed, never executed)."""
    recs = report.recommendations
    if recs.empty:
        show_text("No recommendations: nothing found above the thresholds.")
        return
    show_html("".join(_finding_html(r) for r in recs.itertuples(index=False)))


# --- issue 12: the Re-index section --------------------------------------------------------------


def _unknown_counts(df: pd.DataFrame) -> pd.DataFrame:
    """The counts table with "unknown" where a count is None (never a dash that reads 0)."""
    out = df.copy()
    for col in ("entities", "missing", "stale", "failed", "to_reindex"):
        if col in out:
            out[col] = ["unknown" if fmt.missing(v) else f"{int(v):,}" for v in out[col].tolist()]
    return out


@guarded("Re-index")
def show_reindex(report: Any) -> None:
    """The Re-index section: what could not be checked, the counts of `lsops reindex-list`
    per type ("unknown" where the schema does not tell), the runbook's command in a box
    (printed for a person: lsops never runs it), the first entities, the notes."""
    section = report.sections["reindex"]
    for error in section.errors:
        unavailable(section.title, error)
    counts = section.frames.get("reindex_counts")
    if counts is None:
        _show_absences(section)
        return
    found = report.findings.get("reindex") or {}
    total = int(found.get("to_reindex") or 0)
    # a type whose missing and stale could not be checked: the total is a lower bound
    unknown = ", ".join(found.get("to_reindex_unknown_types") or [])
    bound = f" (a lower bound: {unknown} unknown)" if found.get("to_reindex_lower_bound") else ""
    if total:
        show_html(
            box_html(
                f"{total:,} entit{'y' if total == 1 else 'ies'} to re-index{bound}",
                f"Run in the API's checkout: {found.get('command')} "
                "(printed for a person; lsops never runs it).",
                kind="warning",
            )
        )
    elif bound:
        show_html(box_html(f"Nothing to re-index found{bound}", kind="warning"))
    else:
        show_html(box_html("Nothing to re-index among what could be checked", kind="good"))
    show_db_table(_unknown_counts(counts), FRAME_TITLES["reindex_counts"])
    show_db_table(section.frames.get("reindex_entities"), FRAME_TITLES["reindex_entities"])
    _show_absences(section)


# the names db.report gave these before they moved here (kept for old notebooks)
show = show_db_table
show_header = show_optimization_header
show_section = show_db_section
to_html = db_table_html
