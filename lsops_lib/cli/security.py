"""`lsops security`: the runbook's monthly security review.

    lsops security [--app-dir DIR | --audit-file FILE] [--window 30d | --since T --until T] [--json]

Three parts, each with a status `ok`, `attention` or `unknown` (`--json`: exactly the keys
`audit`, `auth`, `secrets`): npm audit (run in the API's checkout, or read from a saved
`npm audit --json`), authentication failures and rate limiting from the metrics store,
secret rotation from `[secrets]` in lsops.toml. A part whose source is not configured
says so. Exit codes: 0 nothing needs attention (a part may be unknown: it says why),
1 a part needs attention, 2 bad usage or settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import fmt
from . import App, fail, limit_option, main, pass_app, run_command
from .checks import _span
from .render import RIGHT, Column, clip, clipper, emit, line, table

__all__ = ["security_command"]

_STATUS_STYLE = {"ok": "green", "attention": "red", "unknown": "yellow"}
_SEVERITY_STYLE = {"critical": "red", "high": "red", "moderate": "yellow"}
_SECRET_STYLE = {"overdue": "red", "due": "yellow", "future": "yellow", "ok": "green"}


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _fix(value: Any, row: Any) -> str:
    if not value:
        return "no"
    fix = row["fix"]
    if not fix:
        return "yes (npm audit fix)"
    return f"{fix}{' (semver-major)' if row['fix_semver_major'] else ''}"


_VULN_COLUMNS = [
    Column("name", "package", clip),
    Column("severity", "severity", style=_SEVERITY_STYLE),
    Column("direct", "direct", _yes),
    Column("via", "via", clipper(60)),
    Column("fix_available", "fix", _fix, row=True),
]
_HOUR_COLUMNS = [
    Column("hour", "hour", fmt.instant),
    Column("auth_failures", "401/403", fmt.integer, RIGHT),
    Column("rate_limited", "429", fmt.integer, RIGHT),
]
_ENDPOINT_COLUMNS = [
    Column("endpoint", "endpoint", clipper(50)),
    Column("unauthorized", "401", fmt.integer, RIGHT),
    Column("forbidden", "403", fmt.integer, RIGHT),
    Column("rate_limited", "429", fmt.integer, RIGHT),
    Column("first", "first", fmt.instant),
    Column("last", "last", fmt.instant),
]
_BURST_COLUMNS = [
    Column("hour", "hour", fmt.instant),
    Column("kind", "kind"),
    Column("count", "records", fmt.integer, RIGHT),
    Column("baseline", "baseline", lambda v: fmt.number(v, 2), RIGHT),
    Column("threshold", "threshold", lambda v: fmt.number(v, 2), RIGHT),
]
_SECRET_COLUMNS = [
    Column("name", "secret", clip),
    Column("rotated", "last rotated"),
    Column("age_days", "age (days)", fmt.integer, RIGHT),
    Column("due_on", "due on"),
    Column("status", "status", style=_SECRET_STYLE),
]


def _head(name: str, part: Any) -> None:
    status = part["status"]
    line(f"{name}: {status.upper()} - {part['reason']}", style=_STATUS_STYLE.get(status, ""))


def _audit_view(a: Any) -> None:
    _head("audit", a)
    if a["source"]:
        taken = f", {fmt.instant(a['taken_at'])}" if a["taken_at"] else ""
        tool = f", {a['tool']}" if a["tool"] else ""
        line(f"  source: {a['source']}{tool}{taken}")
    counts = a["counts"]
    if counts is None:
        return
    by = ", ".join(
        f"{fmt.integer(counts[s])} {s}" for s in ("critical", "high", "moderate", "low", "info")
    )
    line(
        f"  {by}; {fmt.integer(a['direct'])} direct, {fmt.integer(a['transitive'])} "
        f"transitive, {fmt.integer(a['fixable'])} with a fix; "
        f"{fmt.integer(a['dependencies'])} dependencies audited"
    )
    table(a["vulnerabilities"], _VULN_COLUMNS, title="Vulnerable packages", empty=None)


def _auth_view(a: Any, limit: int) -> None:
    _head("auth", a)
    line(f"  window: {_span(a['start'], a['end'])}")
    if a["unauthorized"] is not None:  # unknown (no hour covered): no figure to show
        base = a["baseline"]
        line(
            f"  {fmt.integer(a['unauthorized'])} x 401, {fmt.integer(a['forbidden'])} x 403, "
            f"{fmt.integer(a['rate_limited'])} x 429 over "
            f"{fmt.counted(a['hours_covered'], 'hour')} covered; baseline per hour: {fmt.number(base['auth_failures'], 2)} "
            f"401/403, {fmt.number(base['rate_limited'], 2)} 429"
        )
        table(a["bursts"], _BURST_COLUMNS, title="Bursts (hours above the baseline)", empty=None)
        table(a["by_endpoint"], _ENDPOINT_COLUMNS, title="Per endpoint", limit=limit, empty=None)
        table(a["by_hour"], _HOUR_COLUMNS, title="Hours with 401/403/429", limit=limit, empty=None)
        line(f"  note: {a['note']}", style="dim")
    sources = a["sources"]
    if not sources["available"]:
        line(f"  top sources: {sources['reason']}", style="dim")


def _secrets_view(s: Any) -> None:
    _head("secrets", s)
    if s["secrets"]:
        line(f"  max age {fmt.counted(s['max_age_days'], 'day')}, today {s['today']}")
        table(s["secrets"], _SECRET_COLUMNS, title="Secrets by last rotation", empty=None)


def _view(limit: int) -> Any:
    def view(d: Any) -> None:
        _audit_view(d["audit"])
        _auth_view(d["auth"], limit)
        _secrets_view(d["secrets"])

    return view


@main.command("security")
@click.option(
    "--app-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The API's checkout: npm audit --json runs there (nothing is changed).",
)
@click.option(
    "--audit-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A saved `npm audit --json` output, instead of running npm.",
)
@click.option("--window", metavar="DURATION", help="How far back to look (default 30d).")
@click.option(
    "--since",
    metavar="T",
    help="Start (ISO 8601, UTC) instead of --window; default: 30d before --until.",
)
@click.option("--until", metavar="T", help="End (ISO 8601, UTC; default now).")
@limit_option(10, "Rows shown (the JSON lists all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: audit, auth, secrets.")
@pass_app
def security_command(
    app: App,
    app_dir: Path | None,
    audit_file: Path | None,
    window: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The monthly security review: npm audit, authentication failures, secret rotation."""
    from ..security import open_existing_store, security_review
    from ..times import window as parse_window

    if app_dir is not None and audit_file is not None:
        fail("--app-dir and --audit-file exclude each other: give one", 2)
    with run_command(usage=2, failure=1):
        # the monthly review's month, by default (also before --until given alone)
        start, end = parse_window(window, since, until, default="30d")
        app.reads_store = True  # the stored error records; the audit and secrets need none
        settings = app.settings()
        store, problem = open_existing_store(settings.store_url)
        try:
            review = security_review(
                settings,
                app_dir=app_dir,
                audit_file=audit_file,
                store=store,
                store_problem=problem,
                start=start,
                end=end,
                target=app.target,
            )
        finally:
            if store is not None:
                store.close()
    emit(review.as_dict(), as_json, _view(limit))
    raise SystemExit(1 if review.status == "attention" else 0)
