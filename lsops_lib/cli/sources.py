"""`lsops errors` (Sentry now) and `lsops logs` (the collected log lines), issue 10.

`lsops errors [--window 24h | --since T --until T] [--json]`: the Sentry issues seen in the
window, worst first. Exit codes as a monitoring plugin: 2 an unresolved `fatal` issue was
seen in the window, 1 a new unresolved `error` issue appeared, 0 otherwise, 3 Sentry is
not configured or did not answer (the line says which), or bad usage.

`lsops logs [--window 24h | --since T --until T] [--level error] [--grep TEXT]
[--around T] [--json]`: the log entries of the window grouped into patterns (from the
store, of the selected target), or with `--around T` the entries from 5 minutes before T
to 5 minutes after (the 2,000 nearest to T when there are more: the text says so, the JSON
has `shown`, `total` and `truncated`). Exit 0 done, 1 the store could not be read (or does
not exist: `lsops collect` first), 2 bad usage.
"""

from __future__ import annotations

from typing import Any

import click
from rich.text import Text

from .. import fmt
from ..exceptions import LsopsError
from . import App, PluginCommand, fail, main, pass_app, run_command
from .checks import _span, _store, _window, window_options
from .render import RIGHT, Column, clipper, emit, line, table

_LEVEL_STYLE = {
    "fatal": "bold red",
    "error": "red",
    "warning": "yellow",
    "info": "",
    "debug": "dim",
}


def _flag(value: Any) -> str:
    return "yes" if value else ""


def _issue_title(title: Any, row: Any) -> Text:
    return Text.assemble((clipper(70)(title), "bold"), "\n", (clipper(70)(row["culprit"]), "dim"))


_ISSUE_COLUMNS = [
    Column("level", "level", style=_LEVEL_STYLE, no_wrap=True),
    Column("short_id", "issue", no_wrap=True),
    Column("title", "title / culprit", _issue_title, row=True),
    Column("status", "status"),
    Column("events", "events", fmt.integer, RIGHT),
    Column("users", "users", fmt.integer, RIGHT),
    Column("first_seen", "first seen", fmt.instant),
    Column("last_seen", "last seen", fmt.instant),
    Column("new", "new", _flag),
    Column("regressed", "regressed", _flag),
    Column("unresolved_for", "unresolved for", fmt.duration, RIGHT),
    Column("permalink", "link", str),
]
_ERRORS_STYLE = ["green", "yellow", "red", "yellow"]


def _errors_view(d: Any) -> None:
    if d["error"]:
        line(f"UNKNOWN: {d['error']}", style="yellow")
        line(f"{d['status']} (exit {d['exit_code']})", style="yellow")
        return
    title = f"Sentry issues of {d['project']} seen {_span(d['start'], d['end'])}"
    if d["issues"]:
        table(d["issues"], _ISSUE_COLUMNS, title=title)
    else:
        line(f"{title}: none")
    if not d["events_counted"]:
        line("events in the window not counted: Sentry's stats reach 14 days back", style="dim")
    elif d.get("events_start") is not None and (d["events_start"], d["events_end"]) != (
        d["start"],
        d["end"],
    ):
        # hourly (daily) buckets cannot be split: the events are those of the whole buckets
        line(
            f"events counted in Sentry's whole stats buckets: "
            f"{_span(d['events_start'], d['events_end'])}",
            style="dim",
        )
    code = d["exit_code"]
    line(
        f"{d['status']} (exit {code}): {fmt.counted(d['fatal'], 'unresolved fatal issue')}, "
        f"{fmt.counted(d['new_errors'], 'new unresolved error')}",
        style=_ERRORS_STYLE[code],
    )


@main.command("errors", cls=PluginCommand)
@window_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def errors_command(
    app: App, window: str | None, since: str | None, until: str | None, as_json: bool
) -> None:
    """Sentry issues seen in the window, worst first: 2 fatal, 1 new error, 0, 3 unknown."""
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..sources import SourceError, errors_view
    from ..sources.settings import source_settings
    from ..times import utcnow

    with run_command(usage=3, failure=3):
        # `now` first: a window ending now then starts within 24 h of it (a later `now`
        # made the default 24h window a few microseconds longer, and Sentry was asked for
        # daily stats, whose whole days reach far beyond the window)
        now = utcnow()
        start, end = _window(window, since, until, "24h")
        sentry = source_settings(app.settings()).sentry
        try:
            data: dict[str, Any] = {**errors_view(sentry, start, end, now=now), "error": None}
        except SourceError as exc:
            data = {
                "project": f"{sentry.org}/{sentry.project}" if sentry.configured else None,
                "start": start,
                "end": end,
                "events_counted": False,
                "events_start": None,
                "events_end": None,
                "exit_code": 3,
                "status": "UNKNOWN",
                "fatal": None,
                "new_errors": None,
                "issues": None,  # unknown (never [])
                "error": str(exc),
            }
    emit(data, as_json, _errors_view)
    raise SystemExit(data["exit_code"])


# --- lsops logs -------------------------------------------------------------------------


def _template(template: Any, row: Any) -> Text:
    return Text.assemble(
        (clipper(90)(template), "bold"),
        "\n",
        (clipper(90)(str(row["example"]).split("\n", 1)[0]), "dim"),
    )


_PATTERN_COLUMNS = [
    Column("level", "level", style=_LEVEL_STYLE, no_wrap=True),
    Column("pattern_id", "pattern", fmt.integer, RIGHT),
    Column("template", "template / example", _template, row=True),
    Column("count", "count", fmt.integer, RIGHT),
    Column("baseline", "before", fmt.integer, RIGHT),
    Column("new", "new", _flag),
    Column("first_seen", "first seen", fmt.instant),
    Column("last_seen", "last seen", fmt.instant),
]


def _logs_view(d: Any) -> None:
    if d["around"] is not None:
        line(f"Log entries of {d['target']} {_span(d['start'], d['end'])}", style="bold")
        for e in d["lines"]:
            stamp = fmt.instant(e["ts"], seconds=True) + (" (estimated)" if e["estimated"] else "")
            text = Text.assemble(
                (stamp, "dim"), "  ", (f"{e['level']:<7}", _LEVEL_STYLE.get(e["level"], ""))
            )
            text.append("  " + e["text"][:4000])  # a stack trace keeps its lines
            line(text)
        if not d["lines"]:
            line("no log entry stored around that instant", style="yellow")
        elif d["truncated"]:
            line(
                f"shown: the {fmt.counted(d['shown'], 'entry', 'entries')} nearest to "
                f"{fmt.instant(d['around'], seconds=True)} of "
                f"{fmt.counted(d['total'], 'entry', 'entries')} in the window "
                "(narrow them with --level or --grep)",
                style="yellow",
            )
    else:
        title = f"Log patterns of {d['target']} {_span(d['start'], d['end'])}"
        if d["patterns"]:
            table(d["patterns"], _PATTERN_COLUMNS, title=title)
        else:
            line(f"{title}: no log entry stored in the window", style="yellow")
    if d["note"]:
        line(d["note"], style="yellow")


@main.command("logs")
@window_options
@click.option(
    "--level",
    type=click.Choice(["debug", "info", "warning", "error", "fatal"]),
    help="Only entries of this level or worse.",
)
@click.option("--grep", metavar="TEXT", help="Only entries containing TEXT (any case).")
@click.option("--around", metavar="T", help="The entries from 5 min before T to 5 min after.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def logs_command(
    app: App,
    window: str | None,
    since: str | None,
    until: str | None,
    level: str | None,
    grep: str | None,
    around: str | None,
    as_json: bool,
) -> None:
    """Log lines of the window grouped into patterns (count, baseline, new), or around T."""
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..sources import AROUND, lines_around, log_patterns
    from ..sources.settings import source_settings
    from ..sources.views import count_around
    from ..times import parse_time

    with run_command(usage=2, failure=1):
        if around is not None and (window or since or until):
            raise click.UsageError("give either --around T or a window, not both")
        at = parse_time(around) if around is not None else None
        if at is not None:
            start, end = at - AROUND, at + AROUND
        else:
            start, end = _window(window, since, until, "24h")
        settings = app.settings()
        target = app.selected_target()
        logs = source_settings(settings).logs
        note = (
            None
            if logs.configured
            else "logs are not configured: set [logs] paths or journal_unit in lsops.toml "
            "(or LSOPS_LOGS), then `lsops collect`"
        )
        total: int | None = None
        try:
            with _store(app) as store:
                if at is not None:
                    total = count_around(store, target, at, level=level, grep=grep)
                    lines = lines_around(store, target, at, level=level, grep=grep, total=total)
                    patterns: list[dict[str, Any]] = []
                else:
                    lines = []
                    patterns = log_patterns(store, target, start, end, level=level, grep=grep)
        except LsopsError as exc:
            fail(str(exc), 1)
    data = {
        "target": target,
        "start": start,
        "end": end,
        "around": at,
        "level": level,
        "grep": grep,
        "note": note,
        "patterns": patterns,
        "lines": lines,
        # --around: the entries shown (the nearest to T when there are more) of how many
        "shown": len(lines) if at is not None else None,
        "total": total,
        "truncated": None if total is None else total > len(lines),
    }
    emit(data, as_json, _logs_view)
