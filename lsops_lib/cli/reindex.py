"""`lsops reindex-list`: the entities whose embeddings are missing, stale or failed, by type
with ids, and the runbook's command to run for them. Read-only: lsops never indexes.

Missing and stale are `db.embeddings`'s definition, the one `lsops index-stats`'s coverage
counts by (same names, same counts). A type whose missing and stale cannot be checked has
its count to re-index unknown ("unknown", JSON null), never 0; the total is then a lower
bound and says so (JSON `to_reindex_lower_bound`, `to_reindex_unknown_types`).

The database is `LSOPS_DATABASE_URL`, or a named database of lsops.toml (`--database NAME`).
Exit codes: 0 done (whatever it lists), 1 the database cannot be reached or answered with
an error, 2 bad usage or settings (no database configured, an unknown entity type).
"""

from __future__ import annotations

from typing import Any

import click

from .. import fmt
from . import App, limit_option, main, pass_app, run_command
from .render import RIGHT, Column, clip, clipper, emit, line, records, table

__all__ = ["reindex_list_command"]


def _known(value: Any) -> str:
    """A count, or "unknown" where the schema does not tell (never 0 for unknown)."""
    return "unknown" if fmt.missing(value) else fmt.integer(value)


def _when(value: Any) -> str:
    return fmt.DASH if fmt.missing(value) else fmt.instant(value)


_BY_TYPE_COLUMNS = [
    Column("entity_type", "entity type", clip),
    Column("source_table", "source", clip),
    Column("entities", "entities", _known, RIGHT),
    Column("missing", "missing", _known, RIGHT),
    Column("stale", "stale", _known, RIGHT),
    Column("failed", "failed", _known, RIGHT),
    Column("to_reindex", "to re-index", _known, RIGHT),
    Column("route", "API route", lambda v: v or fmt.DASH),
]
_ENTITY_COLUMNS = [
    Column("entity_type", "entity type", clip),
    Column("entity_id", "entity id", clip, no_wrap=True),
    Column("name", "name", clipper(30)),
    Column("reason", "reason"),
    Column("detail", "detail", clipper(50)),
    Column("changed_at", "changed", _when),
    Column("embedded_at", "embedded", _when),
    Column("failed_at", "failed", _when),
]


def _view(limit: int) -> Any:
    def view(d: Any) -> None:
        table(d["by_type"], _BY_TYPE_COLUMNS, title="Embeddings to re-index per entity type")
        for row in d["by_type"]:
            if row["note"]:
                line(f"{row['entity_type']}: {row['note']}", style="yellow")
        for note in d["notes"]:
            line(note, style="yellow")
        # one row per entity and reason: the title counts both when they differ
        rows, stale = d["entities"], "stale " if d["stale_only"] else ""
        total, unknown = d["to_reindex"], d["to_reindex_unknown_types"]
        title = "Entities to re-index: "
        if total is None:
            title += "unknown (no source table could be checked: see the notes above)"
        elif rows:
            title += fmt.counted(total, f"{stale}entity", f"{stale}entities")
            if len(rows) != total:
                title += (
                    f" in {fmt.counted(len(rows), 'row')} (an entity missing and failed has two)"
                )
        else:
            title += "none found" if unknown else "none"
        if total is not None and unknown:  # what of them could not be checked is not counted
            title += f", a lower bound: {', '.join(unknown)} unknown (see the notes above)"
        if not rows:
            line(title, style="dim")
        table(rows[:limit], _ENTITY_COLUMNS, title=title, empty=None)
        if len(rows) > limit:
            more = fmt.counted(len(rows) - limit, "more row")
            line(f"  … {more} (use --json for all)", style="dim")
        if d["to_reindex"]:
            line(
                f"to re-index them, run in the API's checkout: {d['command']} (lsops never runs it)"
            )

    return view


@main.command("reindex-list")
@click.option("--type", "entity_type", metavar="T", help="One entity type (project, agent, ...).")
@click.option("--stale", "stale_only", is_flag=True, help="Only the stale embeddings.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--database",
    "database",
    metavar="NAME",
    help="Named database from lsops.toml (default: the configured one).",
)
@limit_option(50, "Entities shown (the JSON lists all).")
@pass_app
def reindex_list_command(
    app: App,
    entity_type: str | None,
    stale_only: bool,
    as_json: bool,
    database: str | None,
    limit: int,
) -> None:
    """Entities whose embeddings are missing, stale or failed, and the command to re-index."""
    from ..db import connect
    from ..db.reindex import reindex_list

    with run_command():
        url = app.settings(database).database(database)
        with connect(url) as insp:
            listing = reindex_list(insp, entity_type=entity_type, stale_only=stale_only)
    counts = listing.counts()
    data = {
        "type": entity_type,
        "stale_only": stale_only,
        "command": listing.command,
        "missing": counts["missing"],
        "stale": counts["stale"],
        "failed": counts["failed"],
        "to_reindex": counts["to_reindex"],
        # a type whose count is unknown is not in to_reindex: then a lower bound
        "to_reindex_lower_bound": counts["to_reindex_lower_bound"],
        "to_reindex_unknown_types": counts["to_reindex_unknown_types"],
        "by_type": records(listing.by_type),
        "entities": records(listing.entities),
        "notes": listing.notes,
    }
    emit(data, as_json, _view(limit))
