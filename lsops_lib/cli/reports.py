"""`lsops report KIND ...` runs and archives a report; `lsops reports` lists the archive.

Exit codes of `lsops report`: 0 the report ran, 1 it failed (and is archived as failed)
or could not be archived, 2 bad parameters / unknown kind / bad settings (nothing written).
With `--months A..B [--jobs N]` (monthly-review) one report per month, N at a time in
worker processes, every month validated first: 0 all succeeded, 1 any failed, 2 bad
parameters (nothing run, nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..exceptions import ParameterError
from . import App, console, emit_json, main, pass_app, run_command


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _run_dict(run: Any) -> dict[str, Any]:
    data = run.to_dict()
    data.update(
        path=str(run.path),
        html=str(run.html_path),
        ipynb=str(run.ipynb_path),
        run_json=str(run.json_path),
    )
    return data


@main.command("report")
@click.argument("kind", metavar="KIND")
@click.option("--month", metavar="YYYY-MM", help="monthly-review: the month (default: last month).")
@click.option(
    "--months",
    metavar="A..B",
    help="monthly-review: one report per month from A to B (YYYY-MM..YYYY-MM).",
)
@click.option(
    "--jobs",
    type=int,
    default=None,
    metavar="N",
    help="With --months: run N reports at a time, in worker processes (default 1).",
)
@click.option(
    "--start", metavar="T", help="postmortem: start of the incident window (ISO 8601, UTC)."
)
@click.option("--end", metavar="T", help="postmortem: end of the incident window (ISO 8601, UTC).")
@click.option(
    "--title", metavar="TEXT", help="postmortem: the incident's title (its slug is the key)."
)
@click.option("--severity", metavar="SEV", help="postmortem: SEV1 .. SEV5 (default SEV2).")
@click.option("--database", metavar="NAME", help="a database NAME from lsops.toml (never a URL).")
@click.option("--top-n", "top_n", type=int, metavar="N", help="db-optimization: rows per ranking.")
@click.option(
    "-p",
    "--param",
    "extra",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Any other notebook parameter (repeatable).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Per-cell execution timeout (default 900).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when stderr is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_app
def report_command(
    app: App,
    kind: str,
    month: str | None,
    months: str | None,
    jobs: int | None,
    start: str | None,
    end: str | None,
    title: str | None,
    severity: str | None,
    database: str | None,
    top_n: int | None,
    extra: tuple[tuple[str, str], ...],
    timeout_s: float | None,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Run the KIND report (monthly-review, postmortem, db-optimization) and archive it.

    \b
      lsops report monthly-review --month 2026-10
      lsops report monthly-review --months 2025-01..2025-12 --jobs 2
      lsops report postmortem --start 2026-10-03T14:05Z --end 2026-10-03T15:20Z --title "Chat 503s"
      lsops report db-optimization --database prod --top-n 20
    """
    from .. import reports

    with run_command(usage=2, failure=1):
        params: dict[str, Any] = {}
        named = {
            "month": month,
            "start": start,
            "end": end,
            "title": title,
            "severity": severity,
            "database": database,
            "top_n": top_n,
        }
        params.update({k: v for k, v in named.items() if v is not None})
        for name, value in extra:
            key = name.replace("-", "_")
            if key in params:
                raise ParameterError(f"parameter {key} given twice")
            params[key] = value
        if months is not None or jobs is not None:
            _batch(app, kind, params, months, jobs, timeout_s, as_json)
            return
        reports.validate(
            kind, params
        )  # before the settings: a bad month is exit 2 whatever the config
        settings = app.settings()
        run = reports.run_report(
            kind,
            params,
            settings=settings,
            progress=progress,
            timeout_s=timeout_s if timeout_s is not None else reports.DEFAULT_TIMEOUT_S,
        )
        index = Path(settings.outputs_dir) / reports.INDEX_HTML
        if as_json:
            emit_json({**_run_dict(run), "index": str(index)})
        else:
            style = "green" if run.ok else "bold red"
            line = Text(f"report {run.kind} {run.key}: ")
            line.append(run.status, style=style)
            line.append(f" in {run.duration_s:.1f} s")
            if run.error:
                line.append(f" ({run.error})")
            console.print(line, soft_wrap=True)
            for label, path in (("archive", run.path), ("html", run.html_path), ("index", index)):
                console.print(Text(f"  {label:<8} {_shown(path)}"), soft_wrap=True)
    if not run.ok:
        raise SystemExit(1)


def _batch(
    app: App,
    kind: str,
    params: dict[str, Any],
    months: str | None,
    jobs: int | None,
    timeout_s: float | None,
    as_json: bool,
) -> None:
    """`--months A..B [--jobs N]`: every month validated, then run; exit 1 if any failed."""
    from .. import reports

    if months is None:
        raise ParameterError("--jobs goes with --months A..B")
    if kind != "monthly-review":
        raise ParameterError(f"--months is for monthly-review, not {kind}")
    if "month" in params:
        raise ParameterError("give either --month or --months, not both")
    if jobs is not None and jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, not {jobs}")
    param_sets = [{**params, "month": m} for m in reports.month_range(months)]
    for one in param_sets:  # before the settings: a bad month is exit 2 whatever the config
        reports.validate(kind, one)
    settings = app.settings()

    def done(result: Any) -> None:
        if as_json:
            return
        month = result.params.get("month")
        line = Text(f"report {kind} {month}: ")
        if result.run is None:
            line.append("not archived", style="bold red")
        else:
            line.append(result.run.status, style="green" if result.ok else "bold red")
            line.append(f" in {result.run.duration_s:.1f} s  {_shown(result.run.path)}")
        if result.error:
            line.append(f" ({result.error})")
        console.print(line, soft_wrap=True)

    results = reports.run_reports(
        kind,
        param_sets,
        settings=settings,
        jobs=jobs or 1,
        timeout_s=timeout_s,
        on_done=done,
    )
    index = Path(settings.outputs_dir) / reports.INDEX_HTML
    failed = [r for r in results if not r.ok]
    if as_json:
        emit_json(
            {
                "index": str(index),
                "ok": not failed,
                "runs": [
                    {
                        "month": r.params.get("month"),
                        "ok": r.ok,
                        "error": r.error,
                        **(_run_dict(r.run) if r.run is not None else {}),
                    }
                    for r in results
                ],
            }
        )
    else:
        console.print(
            Text(
                f"{len(results) - len(failed)} of {len(results)} reports succeeded; "
                f"index {_shown(index)}"
            ),
            soft_wrap=True,
        )
    if failed:
        raise SystemExit(1)


@main.command("reports")
@click.option("--kind", metavar="KIND", help="Only this kind.")
@click.option("--limit", type=int, default=None, metavar="N", help="Only the N newest.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@pass_app
def reports_command(app: App, kind: str | None, limit: int | None, as_json: bool) -> None:
    """List the archived report runs, newest first."""
    from .. import reports

    with run_command(usage=2, failure=1):
        if kind is not None and kind not in reports.KINDS:
            raise ParameterError(
                f"unknown report kind {kind!r} (known: {', '.join(reports.KINDS)})"
            )
        settings = app.settings()
        outputs = Path(settings.outputs_dir)
        runs = reports.list_runs(outputs, kind=kind)
        if limit is not None:
            runs = runs[: max(limit, 0)]
        index = outputs / reports.INDEX_HTML
        if as_json:
            emit_json(
                {"outputs": str(outputs), "index": str(index), "runs": [_run_dict(r) for r in runs]}
            )
            return
        if not runs:
            console.print(Text(f"no reports archived in {_shown(outputs)}"))
            return
        table = Table(box=None, header_style="bold")
        table.add_column("started (UTC)", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("key", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("duration", justify="right", no_wrap=True)
        table.add_column("run", overflow="fold")
        for run in runs:
            table.add_row(
                Text(run.started.strftime("%Y-%m-%d %H:%M")),
                Text(run.kind),
                Text(run.key),
                Text(run.status, style="green" if run.ok else "bold red"),
                Text(f"{run.duration_s:.1f} s"),
                Text(run.run_id),
            )
        console.print(table)
        console.print(Text(f"archive: {_shown(outputs)}/<kind>/<key>/<run>/report.html"))
        console.print(Text(f"index:   {_shown(index)}"))


__all__ = ["report_command", "reports_command"]
