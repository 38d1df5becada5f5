"""`lsops report monthly-review --months A..B --jobs 2` stopped (qa15): Ctrl-C or SIGTERM
starts no queued month and stops the running ones as one report is stopped (archived
`interrupted`, kernels and scratch folders gone), exit 130/143; a SIGKILLed parent takes
its workers with it. Real processes, real signals; the placeholder notebook's cell
sleeps 60 s, so a month that ran to its end would show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsops_lib.demo.processes import alive, descendants
from tests.fixtures.faults import wait_for
from tests.test_faults import _kernels_of, _lsops, _report_env

pytestmark = pytest.mark.timeout(120)

MONTHS = ["2026-08", "2026-09", "2026-10"]


# three months two at a time, each month's cell sleeping 60 s
BATCH = (
    *("report", "monthly-review", "--months", "2026-08..2026-10", "--jobs", "2"),
    *("-p", "sleep_s", "60"),
)


def _popen(command: list[str], tmp: Path, scratch: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=tmp,
        env=_report_env(tmp, scratch),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C goes to the whole group
    )


def _start_batch(tmp: Path, scratch: Path) -> subprocess.Popen[str]:
    """The batch; returns once both running months have their kernel."""
    proc = _popen(_lsops(*BATCH), tmp, scratch)
    two = wait_for(
        lambda: proc.poll() is not None or len(list(scratch.glob("lsops-run-*/kernel.json"))) == 2,
        60,
    )
    assert two and proc.poll() is None, proc.communicate()
    assert wait_for(lambda: len(_kernels_of(scratch)) >= 2, 30), "the kernels never started"
    return proc


def _runs(outputs: Path) -> dict[str, list[dict]]:
    """month -> the run.json of each of its run folders (None: no run.json)."""
    found: dict[str, list[dict]] = {}
    for run_dir in sorted(outputs.glob("monthly-review/*/*")):
        path = run_dir / "run.json"
        data = json.loads(path.read_text()) if path.is_file() else None
        found.setdefault(run_dir.parent.name, []).append(data)
    return found


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_a_stopped_batch_starts_no_queued_month_and_stops_the_running_ones(
    tmp_path: Path, how: str
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _start_batch(tmp_path, scratch)
    t0 = time.monotonic()
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)  # systemd, a scheduler: the parent alone
    else:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 30, "the batch went on after the stop"
    assert proc.returncode == (143 if how == "SIGTERM" else 130), stderr
    assert [x for x in stderr.splitlines() if x.startswith("lsops")] == ["lsops: interrupted"]
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr

    runs = _runs(tmp_path / "outputs")
    assert sorted(runs) == MONTHS[:2], runs  # the queued month: never started
    for month in MONTHS[:2]:
        (data,) = runs[month]
        assert data["status"] == "interrupted", data
        assert data["error"] == f"interrupted ({how})"
    # the per-month lines of what ran
    lines = [x for x in stdout.splitlines() if x.startswith("report monthly-review")]
    assert sorted(x.split(":")[0] for x in lines) == [
        f"report monthly-review {m}" for m in MONTHS[:2]
    ]
    assert all("interrupted" in x for x in lines), stdout
    assert list(scratch.iterdir()) == []
    assert wait_for(lambda: not _kernels_of(scratch), 30), _kernels_of(scratch)


def test_the_workers_of_a_sigkilled_batch_die_with_it(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _start_batch(tmp_path, scratch)
    below = descendants(proc.pid)  # the two workers and their kernels
    assert len(below) >= 4, below
    proc.kill()
    proc.communicate(timeout=30)
    assert wait_for(lambda: not any(alive(p) for p in below), 30), [p for p in below if alive(p)]
    time.sleep(1)  # (a worker that lived on would start the queued month by now)
    runs = _runs(tmp_path / "outputs")
    assert sorted(runs) == MONTHS[:2], runs
    assert all(data["status"] == "interrupted" for month in MONTHS[:2] for data in runs[month])
    assert list(scratch.iterdir()) == []


# the CLI in a process that runs a thread (as a library caller's may): the pool then
# spawns its workers (a fresh interpreter each, seconds of imports), it does not fork them
_SPAWNING = (
    "import sys, threading, time\n"
    "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    "sys.argv = ['lsops', *sys.argv[1:]]\n"
    "from lsops_lib.cli import main\n"
    "main()\n"
)


def _spawned_workers(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found


@pytest.mark.parametrize("after_s", [0.0, 0.2])
def test_ctrl_c_while_spawned_workers_import_is_a_clean_stop(
    tmp_path: Path, after_s: float
) -> None:
    """Ctrl-C of the whole group just as the spawned workers start (they are importing
    lsops): exit 130 and "lsops: interrupted", as any stop; no KeyboardInterrupt traceback
    from a worker's imports, no month "not archived (BrokenProcessPool ...)" (the pool was
    broken by its workers dying of the signal); whatever was archived is `interrupted`."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _popen([sys.executable, "-c", _SPAWNING, *BATCH], tmp_path, scratch)
    assert wait_for(
        lambda: proc.poll() is not None or len(_spawned_workers(proc.pid)) == 2, 30, 0.005
    ), proc.communicate()
    time.sleep(after_s)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert [x for x in stderr.splitlines() if x.strip()] == ["lsops: interrupted"], stderr
    assert "not archived" not in stdout and "BrokenProcessPool" not in stdout, stdout
    runs = _runs(tmp_path / "outputs")
    assert all(d is not None and d["status"] == "interrupted" for v in runs.values() for d in v)
    assert wait_for(lambda: list(scratch.iterdir()) == [], 30), list(scratch.iterdir())
    assert wait_for(lambda: not _kernels_of(scratch), 30), _kernels_of(scratch)
