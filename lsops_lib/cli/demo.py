"""`lsops demo [--days N] [--seed N] [--dir PATH] [--lab]`.

Exit codes: 0 every report succeeded, 1 a report failed or the demo could not run (no
PostgreSQL, ...), 2 bad usage, 128 + the signal when interrupted (130 for Ctrl-C, 143
for SIGTERM; everything started is stopped first).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from . import fail, main


@main.command("demo")
@click.option(
    "--days",
    type=int,
    default=None,
    metavar="N",
    help="Days of history (3 to 62), ending at the month's end (default: the whole month).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the simulated traffic."
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="The demo folder: store, settings, logs.",
)
@click.option(
    "--month",
    metavar="YYYY-MM",
    default=None,
    help="The month to review (default: the last complete month).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 8),
    default=2,
    show_default=True,
    help="Processes collecting the history side by side.",
)
@click.option(
    "--lab",
    is_flag=True,
    help="Open JupyterLab on the report notebooks (the checkout's notebooks/; from an "
    "installed wheel, copies made once in DIR/notebooks) with the demo's store and a running "
    "database (reuses the last demo's store); the database stops when JupyterLab exits.",
)
@click.option(
    "--lab-command",
    "lab_command",
    default=None,
    hidden=True,
    help="With --lab: run this command line instead of JupyterLab (tests).",
)
def demo_command(
    days: int | None,
    seed: int,
    directory: Path,
    month: str | None,
    workers: int,
    lab: bool,
    lab_command: str | None,
) -> None:
    """The whole product on embedded defaults: a simulated LongSang API, an embedded
    PostgreSQL, a month of collected history with planted incidents, and the three
    reports archived in the outputs folder (LSOPS_OUTPUTS, default ./outputs)."""
    from ..demo import (
        DemoError,
        Interrupted,
        Options,
        UsageError,
        format_exception,
        run_demo,
        run_lab,
    )
    from ..exceptions import LsopsError, ParameterError

    def echo(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()

    def warn(text: str) -> None:
        sys.stdout.flush()
        click.echo(text, err=True)

    if month is not None:
        from ..times import parse_month

        try:
            parse_month(month)
        except ParameterError as exc:
            fail(str(exc), 2)
    import shlex

    try:
        lab_argv = shlex.split(lab_command) if lab_command else None
    except ValueError as exc:  # an unclosed quote
        fail(f"--lab-command: not a command line: {exc}", 2)
    options = Options(
        days=days,
        seed=seed,
        directory=directory,
        month=month,
        workers=workers,
        lab=lab,
        lab_command=lab_argv,
        echo=echo,
        warn=warn,
    )
    try:
        if lab:
            code = run_lab(options)
        else:
            code = run_demo(options).code
    except UsageError as exc:
        fail(str(exc), 2)
    except (DemoError, LsopsError) as exc:
        fail(format_exception(exc), 1)
    except Interrupted as exc:
        _interrupted(128 + exc.signum)
    except KeyboardInterrupt:
        _interrupted(130)
    except Exception as exc:  # noqa: BLE001 - one line, the traceback is in the demo log
        fail(f"demo failed: {format_exception(exc)}", 1)
    sys.exit(code)


def _interrupted(code: int) -> NoReturn:
    """The one line of an interrupted demo. The signal may have landed inside a library's
    generator (SQLAlchemy's inspector opening a store...): its clean-up when the process
    exits must not print a traceback after that line."""
    sys.unraisablehook = lambda _unraisable: None
    fail("interrupted; everything the demo started is stopped", code)
