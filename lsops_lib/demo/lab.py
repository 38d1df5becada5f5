"""`lsops demo --lab` (`make lab`): JupyterLab on `notebooks/` with the demo's data.

Reuses the last demo's store (or builds one, without the reports), starts the database
again, and runs JupyterLab with the demo's settings in its environment; Ctrl-C goes to
JupyterLab, and when it exits the database is stopped with everything else.

The notebooks are the ones people edit: `$LSOPS_NOTEBOOKS` or the checkout's `notebooks/`.
An installed package (no checkout) has only its own copies, in site-packages: they are
copied into the demo folder's `notebooks/` (a copy already there is kept, with whatever an
analyst changed in it) and JupyterLab opens there.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import fmt
from .errors import DemoError
from .run import DEFAULT_DIR, Demo, Options, check_postgres, fmt_seconds, shown


def run_lab(options: Options) -> int:
    """JupyterLab (or `options.lab_command`) on the demo's store and a live database;
    its exit code. DemoError / UsageError for what a user must fix; Interrupted."""
    demo = Demo(options)
    p = demo.plan()

    demo.install_signals()
    try:
        reuse = demo.folder.store_path.is_file()
        with demo.phase("prepare") as info:
            check_postgres()
            demo.prepare(fresh_store=not reuse)
            info["detail"] = (
                f"reusing the demo store {shown(demo.folder.store_path)}"
                if reuse
                else "no demo store yet: building one"
            )
        started = time.monotonic()
        history = None if reuse else demo.start_history(p)
        with demo.phase("database") as info:
            db = demo.build_database(p, snapshots=not reuse)
            info["detail"] = f"PostgreSQL with the LongSang database, {db['rows']:,} rows"
        if history is not None:
            hist = history.wait()
            demo.timings["history"] = time.monotonic() - started
            demo.echo(
                f"  {'history':<10} {fmt_seconds(demo.timings['history'])}  {hist['scrapes']:,} scrapes"
            )
        env = demo.demo_env()
        nbdir, copied = lab_notebooks(demo.folder.dir)
        if copied:
            demo.echo(
                f"Copied the {fmt.counted(len(copied), 'notebook')} of the installed lsops to "
                f"{shown(nbdir)}: yours to edit; the package's own copies stay as installed."
            )
        elif copied is not None:
            demo.echo(f"The notebooks in {shown(nbdir)}: your copies, kept as they are.")
        command = options.lab_command or jupyter_lab_command(nbdir)
        demo.echo(
            "JupyterLab on "
            f"{shown(nbdir)} with the demo's store and database (LSOPS_CONFIG={shown(demo.folder.config_path)}); "
            "stop it with Ctrl-C (twice) or File > Shut Down: the database stops with it."
        )
        return _run_child(demo, command, env)
    finally:
        demo.cleanup()
        demo.restore_signals()


def lab_notebooks(
    folder: Path, nbdir: Path | None = None, package: Path | None = None
) -> tuple[Path, list[str] | None]:
    """Where JupyterLab opens -> (directory, the notebooks copied there now, or None when
    nothing is copied): `nbdir` (default `reports.notebooks_dir()`) unless it lies in the
    installed `package` (default lsops_lib's own directory); then `folder`/notebooks, with
    each of the package's notebooks it does not hold yet copied into it."""
    if nbdir is None:
        from ..reports import notebooks_dir

        nbdir = notebooks_dir()
    package = (package or Path(__file__).resolve().parents[1]).resolve()
    if not nbdir.resolve().is_relative_to(package):
        return nbdir, None
    mine = folder / "notebooks"
    try:
        mine.mkdir(parents=True, exist_ok=True)
        copied = []
        for notebook in sorted(nbdir.glob("*.ipynb")):
            if not (mine / notebook.name).exists():
                shutil.copyfile(notebook, mine / notebook.name)  # content only: writable
                copied.append(notebook.name)
    except OSError as exc:
        raise DemoError(f"cannot copy the notebooks to {shown(mine)}: {exc.strerror}") from None
    return mine, copied


def lab_hint(folder: Path) -> str:
    """The demo's last line: the command that opens JupyterLab on this demo's data; `make
    lab` only from a checkout whose Makefile runs it on this folder."""
    folder = folder.resolve()
    command = "lsops demo --lab"
    checkout = Path(__file__).resolve().parents[2]
    if folder != (Path.cwd() / DEFAULT_DIR).resolve():
        command += f" --dir {shlex.quote(shown(folder))}"
    if (checkout / "Makefile").is_file() and folder == (checkout / DEFAULT_DIR).resolve():
        return f"Explore the same data in JupyterLab: make lab  ({command})"
    return f"Explore the same data in JupyterLab: {command}"


def _run_child(demo: Demo, command: list[str], env: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        raise DemoError(f"cannot start {command[0]}: {exc.strerror}") from None
    # Ctrl-C goes to JupyterLab (it asks, or stops on a second one); we wait for it.
    # (Ignored only now: an ignored signal would stay ignored in the child.)
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    demo.save_state(lab=child.pid)

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    with contextlib.suppress(Exception):
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGHUP, forward)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if child.poll() is None:
            child.terminate()
            with contextlib.suppress(Exception):
                child.wait(timeout=10)
            if child.poll() is None:
                child.kill()


def jupyter_lab_command(nbdir: Path) -> list[str]:
    """`jupyter lab` on `nbdir` with this interpreter's JupyterLab."""
    exe = Path(sys.executable).with_name("jupyter-lab")
    base = [str(exe)] if exe.is_file() else [sys.executable, "-m", "jupyterlab"]
    command = [*base, f"--ServerApp.root_dir={nbdir}"]
    if os.geteuid() == 0:  # containers: JupyterLab refuses root without it
        command.append("--allow-root")
    return command
