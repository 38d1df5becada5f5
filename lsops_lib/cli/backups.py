"""`lsops backup check [PATH ...] [--restore] [--json]`: the dumps verified, a restore drilled.

The dumps are the PATHs (globs, files, `-Fd` folders, folders of dumps), else `[backups]
paths` of lsops.toml, else `LSOPS_BACKUPS` (globs separated by the OS path separator; it
wins over lsops.toml). The live database (`LSOPS_DATABASE_URL` or `--database NAME`) is
read only, to compare tables and row counts. Each check is stored in the metrics store.

Exit codes (monitoring plugin), judged on the newest dump: 0 OK; 1 WARNING (it shrank
beyond `[thresholds] backup_shrink`, live tables are missing from it, it is dated in the
future, `[backups] schemas` hold no live table, or restored rows are off the live count
beyond `backup_rows_tolerance`); 2 CRITICAL (no dump, the newest older
than `[backups] max_age`, empty, truncated or unreadable, or the drill failed); 3 UNKNOWN
(bad usage or settings, no backups configured, a PostgreSQL client program missing, or one
older than the pg_dump that wrote the newest dump: `LSOPS_PG_BINDIR` names a newer one).
"""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from .. import fmt
from . import App, PluginCommand, err_console, main, pass_app, run_command
from .render import RIGHT, Column, emit, line, table

__all__ = ["backup_check", "backup_group"]

_VERDICT_STYLE = {
    "ok": "green",
    "shrunk": "yellow",
    "missing tables": "yellow",
    "other database": "yellow",
    "too old": "red",
    "empty": "red",
    "truncated": "red",
    "unreadable": "red",
    "client too old": "yellow",
    "future": "yellow",
    "no live tables": "yellow",
}
_STATUS_STYLE = ["green", "yellow", "red", "yellow"]


def _tables(value: Any) -> str:
    return fmt.DASH if value is None else fmt.integer(len(value))


def _kind(f: Any) -> str | None:
    """The format as the detail names it: `plain (gzip)` for a compressed plain dump."""
    return f"{f['format']} (gzip)" if f["format"] and f.get("gzip") else f["format"]


def _yes(value: Any) -> str:
    return fmt.DASH if value is None else ("yes" if value else "no")


_FILE_COLUMNS = [
    Column("verdict", "verdict", style=_VERDICT_STYLE, no_wrap=True),
    Column("path", "dump"),
    Column("kind", "format", lambda v: v or fmt.DASH),
    Column("bytes", "size", fmt.size, RIGHT, no_wrap=True),
    Column("age_s", "age", fmt.duration, RIGHT, no_wrap=True),
    Column("complete", "complete", _yes),
    Column("tables", "tables", _tables, RIGHT),
]
_TABLE_COLUMNS = [
    Column("table", "table"),
    Column("dump_rows", "restored rows", fmt.integer, RIGHT),
    Column("live_rows", "live rows", fmt.integer, RIGHT),
    Column("match", "match", _yes, style={"True": "green", "False": "red"}),
]


def _headline(d: Any) -> Text:
    code = d["exit_code"]
    newest = d["newest"]
    files = d["files"]
    restore = d["restore"]
    if newest is None:
        unmatched = d.get("unmatched") or []
        what = "no dump found" + (f": {'; '.join(unmatched)}" if unmatched else "")
    else:
        first = files[0]
        what = f"newest dump {newest}: {first['verdict']}"
        if restore is not None and restore["error"] is not None:
            what += "; the restore drill failed"
        elif restore is not None and any(t["match"] is False for t in restore["tables"]):
            off = sum(t["match"] is False for t in restore["tables"])
            what += f"; restored rows off for {fmt.counted(off, 'table')}"
    return Text.assemble(
        (f"{d['status']} (exit {code})", f"bold {_STATUS_STYLE[code]}"), f"  {what}"
    )


def _restore_view(r: Any) -> None:
    if r["seconds"] is not None:
        line(f"restore drill of {r['dump']}: restored in {fmt.ms(r['seconds'] * 1000)}")
    else:
        line(f"restore drill of {r['dump']}: not restored")
    if r["error"]:
        line(f"drill failed: {r['error']}", style="red")
    if r["missing_extensions"]:
        line(
            "extensions the dump needs and the drill's PostgreSQL lacks: "
            + ", ".join(r["missing_extensions"]),
            style="red",
        )
    rows = r["tables"]
    if rows:
        estimated = r["estimated"]
        how = f"live rows counted exactly below {fmt.integer(r['exact_below_rows'])} rows" + (
            f", the planner's estimate for {', '.join(estimated)}" if estimated else ""
        )
        table(
            rows,
            _TABLE_COLUMNS,
            title=f"Rows restored against live (match within {fmt.pct(r['tolerance'], 0)}; {how})",
        )


def _view(d: Any) -> None:
    line(_headline(d))
    files = d["files"]
    rows = [{**f, "kind": _kind(f)} for f in files]
    table(rows, _FILE_COLUMNS, title="Dumps, newest first", empty=None)
    for f in files:
        line(Text.assemble((f"{f['path']}: ", "bold"), str(f["detail"])))
    if files:
        for said in d.get("unmatched") or []:
            line(f"no dump found: {said}", style="yellow")
    if d["restore"] is not None:
        _restore_view(d["restore"])


@main.group("backup")
def backup_group() -> None:
    """Backups: are the dumps there, recent, complete, and do they restore?"""


@backup_group.command("check", cls=PluginCommand)
@click.argument("paths", nargs=-1, metavar="[PATH ...]")
@click.option(
    "--restore",
    is_flag=True,
    help="Restore the newest dump into a throwaway PostgreSQL and compare row counts.",
)
@click.option(
    "--database",
    "database",
    metavar="NAME",
    help="Named database from lsops.toml to compare with (default: the configured one).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def backup_check(
    app: App, paths: tuple[str, ...], restore: bool, database: str | None, as_json: bool
) -> None:
    """Verify the backups: 0 OK, 1 warning, 2 critical, 3 unknown."""
    from ..db.backups import check_configured

    with run_command(usage=3, failure=3):
        settings = app.settings(database)
        check = check_configured(settings, paths, database=database, restore=restore)
    data = check.as_dict()
    _store(settings, data, check.database)
    emit(data, as_json, _view)
    raise SystemExit(check.exit_code)


def _store(settings: Any, data: dict[str, Any], database: str | None) -> None:
    """The check into the metrics store; a store that fails costs a warning, not the check."""
    from ..exceptions import LsopsError
    from ..store import Store
    from ..store.backups import record_backup_check

    try:
        with Store(settings.store_url) as store:
            record_backup_check(store, data, database=database)
    except LsopsError as exc:
        err_console.print(f"lsops: check not stored: {exc}", markup=False, soft_wrap=True)
