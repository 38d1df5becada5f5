"""`lsops demo --lab` (`make lab`): JupyterLab on `notebooks/` with the demo's data.

Reuses the last demo's store (or builds one, without the reports), starts the database
again, and runs JupyterLab with the demo's settings in its environment; Ctrl-C goes to
JupyterLab, and when it exits the database is stopped with everything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .errors import DemoError
from .run import Demo, Options, check_postgres, fmt_seconds, shown


def run_lab(options: Options) -> int:
    """JupyterLab (or `options.lab_command`) on the demo's store and a live database;
    its exit code. DemoError / UsageError for what a user must fix; Interrupted."""
    demo = Demo(options)
    p = demo.plan()
    from ..reports import notebooks_dir

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
        nbdir = notebooks_dir()
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
