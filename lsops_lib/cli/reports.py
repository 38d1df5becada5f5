"""`lsops report KIND ...` runs and archives a report; `lsops reports` lists the archive.

Exit codes of `lsops report`: 0 the report ran, 1 it failed (and is archived as failed)
or could not be archived, 2 bad parameters / unknown kind / bad settings (nothing written).
With `--months A..B [--jobs N]` (monthly-review) one report per month, N at a time in
worker processes, every month validated first: 0 all succeeded, 1 any failed, 2 bad
parameters (nothing run, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from .. import fmt
from ..exceptions import ParameterError
from . import App, limit_option, main, pass_app, run_command
from .render import RIGHT, Column, emit, line, show


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _run_dict(run: Any) -> dict[str, Any]:
    data = run.to_dict()
    data.update(
        # the API target the run reviewed (None: a kind without one, a run of old)
        target=data.get("target", run.parameters.get("target")),
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

    app.reads_store = True  # a target the store holds, lsops.toml no longer: its history
    with _sigterm_interrupts(), run_command(usage=2, failure=1):
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
        if timeout_s is not None:
            reports.check_timeout(timeout_s)
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
        _no_target_conflict(app, params)
        settings = app.settings()
        run = reports.run_report(
            kind,
            params,
            settings=settings,
            progress=progress,
            timeout_s=timeout_s if timeout_s is not None else reports.DEFAULT_TIMEOUT_S,
        )
        index = Path(settings.outputs_dir) / reports.INDEX_HTML
        emit({**_run_dict(run), "index": str(index)}, as_json, _report_view)
    if not run.ok:
        raise SystemExit(1)


def _no_target_conflict(app: App, params: dict[str, Any]) -> None:
    """`--target A report ... -p target B`: refused (it reviewed B, silently)."""
    given = params.get("target")
    if app.target is not None and given is not None and str(given) != app.target:
        raise ParameterError(
            f"--target {app.target!r} and the parameter target {str(given)!r} differ: "
            "give one of them"
        )


def _status(status: Any) -> tuple[str, str]:
    return str(status), "green" if status == "succeeded" else "bold red"


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (systemd, a scheduler's kill) stops a report as Ctrl-C does: the run is
    archived `interrupted`, its kernel and scratch files are removed, exit 143. Only the
    first SIGTERM raises: a second one (systemd's stop repeated) would cut that cleanup."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    raised: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if raised:  # a second SIGTERM while the first one's stop runs: it is under way
            return
        raised.append(signum)
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is (run_report handles it as Ctrl-C;
    `run_command` exits with `exit_code`)."""

    exit_code = 143


def _report_view(d: Any) -> None:
    text = Text(f"report {d['kind']} {d['key']}: ")
    text.append(*_status(d["status"]))
    text.append(f" in {fmt.value(d['duration_s'], 'duration_s')}")
    if d.get("error"):
        text.append(f" ({d['error']})")
    line(text)
    _run_notes(d)
    for label, key in (("archive", "path"), ("html", "html"), ("index", "index")):
        line(f"  {label:<8} {_shown(Path(d[key]))}")


def _run_notes(d: Any) -> None:
    """A run's warnings, then its replaced kernels (the report is whole: said, not warned)."""
    for warning in d.get("warnings") or []:
        line(f"  warning  {warning}", style="yellow")
    for why in d.get("replaced_kernels") or []:
        line(f"  kernel   replaced after {why}", style="dim")


def _batch_entry(result: Any) -> dict[str, Any]:
    """One month of `--months`: its outcome, and its run when it was archived."""
    return {
        "month": result.params.get("month"),
        "ok": result.ok,
        "error": result.error,
        **(_run_dict(result.run) if result.run is not None else {}),
    }


def _batch_entry_view(kind: str) -> Any:
    def view(e: Any) -> None:
        text = Text(f"report {kind} {e['month']}: ")
        if "status" not in e:
            text.append("not archived", style="bold red")
        else:
            text.append(*_status(e["status"]))
            text.append(
                f" in {fmt.value(e['duration_s'], 'duration_s')}  {_shown(Path(e['path']))}"
            )
        if e["error"]:
            text.append(f" ({e['error']})")
        line(text)
        _run_notes(e)

    return view


def _batch_view(d: Any) -> None:
    runs = d["runs"]
    succeeded = sum(1 for r in runs if r["ok"])
    line(f"{succeeded} of {len(runs)} reports succeeded; index {_shown(Path(d['index']))}")


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
    if jobs is not None and not 1 <= jobs <= reports.MAX_JOBS:
        raise ParameterError(f"--jobs must be from 1 to {reports.MAX_JOBS}, not {jobs}")
    param_sets = [{**params, "month": m} for m in reports.month_range(months)]
    for one in param_sets:  # before the settings: a bad month is exit 2 whatever the config
        reports.validate(kind, one)
    _no_target_conflict(app, params)
    settings = app.settings()
    reports.check_outputs(Path(settings.outputs_dir), settings.outputs_setting)

    def done(result: Any) -> None:
        if not as_json:  # each month as it finishes; the JSON comes at the end
            show(_batch_entry(result), _batch_entry_view(kind), at="runs[]")

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
    data = {"index": str(index), "ok": not failed, "runs": [_batch_entry(r) for r in results]}
    emit(data, as_json, _batch_view)
    if failed:
        raise SystemExit(1)


@main.command("reports")
@click.option("--kind", metavar="KIND", help="Only this kind.")
@limit_option(None, "Only the N newest.")
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
        app.reads_store = True  # the archive lists every target's runs: any stored name
        settings = app.settings()
        outputs = Path(settings.outputs_dir)
        reports.check_outputs(outputs, settings.outputs_setting)  # QA 17: not "no reports"
        reports.sweep(outputs)  # runs whose process died: listed as interrupted
        runs, unreadable = reports.scan_runs(outputs, kind=kind)
        if limit is not None:
            runs = runs[:limit]
        index = outputs / reports.INDEX_HTML
        data = {
            "outputs": str(outputs),
            "index": str(index),
            "runs": [_run_dict(r) for r in runs],
            "unreadable": unreadable,  # QA 17: run folders whose run.json is damaged
        }
        emit(data, as_json, _reports_view)


_RUN_COLUMNS = [
    Column("started", "started", fmt.instant),
    Column("kind", "kind"),
    Column("key", "key"),
    Column(
        "status",
        "status",
        style={"succeeded": "green", "failed": "bold red", "interrupted": "yellow"},
    ),
    Column("duration_s", "duration", justify=RIGHT),
    Column("run_id", "run"),
]


def _reports_view(d: Any) -> None:
    """One line per run, in aligned columns, never wrapped (whatever the width, a pipe
    or a terminal): run ids and keys stay whole, to grep and to copy."""
    outputs = _shown(Path(d["outputs"]))
    unreadable = d["unreadable"]
    if unreadable:
        line(f"{fmt.counted(len(unreadable), 'run')} unreadable:", style="yellow")
        for u in unreadable:
            line(f"  {_shown(Path(u['path']))}: {u['error']}", style="yellow")
    if not d["runs"]:
        line(f"no reports archived in {outputs}")
        return
    columns = _RUN_COLUMNS
    if any(run.get("target") is not None for run in d["runs"]):  # runs of an API target
        columns = [*columns[:3], Column("target", "target"), *columns[3:]]
    rows = [[Text(c.header, style="bold") for c in columns]]
    rows += [[c.cell(run) for c in columns] for run in d["runs"]]
    widths = [max(row[i].cell_len for row in rows) for i in range(len(columns))]
    for row in rows:
        for cell, column, width in zip(row, columns, widths, strict=True):
            pad = width - cell.cell_len
            if column.justify == RIGHT:
                cell.pad_left(pad)
            else:
                cell.pad_right(pad)
        text = Text("  ").join(row)
        text.rstrip()
        line(text)
    line(f"archive: {outputs}/<kind>/<key>/<run>/report.html")
    line(f"index:   {_shown(Path(d['index']))}")


__all__ = ["report_command", "reports_command"]
