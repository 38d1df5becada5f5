"""A report child of `lsops demo` stopped by the demo's cleanup (qa15): SIGTERM stops its
report as SIGTERM stops `lsops report` (archived `interrupted`, kernel and scratch folder
removed), well within the cleanup's grace, instead of dying at once and leaving a run
folder without run.json and a scratch folder holding the kernel's key. A real forked
child (the demo's own `report_worker`), real signals (the demo's `Children.stop`)."""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import pytest

from lsops_lib.demo.processes import Children
from lsops_lib.demo.workers import report_worker
from tests.fixtures.faults import wait_for
from tests.test_faults import _kernels_of, _report_env

pytestmark = pytest.mark.timeout(120)


def test_the_demo_cleanup_stops_a_report_child_as_a_report_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the child's scratch folders
    outputs = tmp_path / "outputs"
    env = _report_env(tmp_path, scratch)
    ctx = multiprocessing.get_context("fork")
    conn, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=report_worker,
        args=("monthly-review", {"month": "2026-10", "sleep_s": 60}, env, str(outputs), child),
    )
    children = Children()
    proc.start()
    child.close()
    children.add(proc)
    assert wait_for(lambda: list(scratch.glob("lsops-run-*/kernel.json")), 60)
    assert wait_for(lambda: _kernels_of(scratch), 60), "the kernel never started"

    t0 = time.monotonic()
    children.stop(lambda _text: None, grace_s=10.0)  # SIGTERM; SIGKILL after 10 s
    assert time.monotonic() - t0 < 10.0, "the child needed the SIGKILL"
    assert proc.exitcode == 0, proc.exitcode  # it ended itself: not by SIGTERM nor SIGKILL
    answer = conn.recv() if conn.poll(5) else None
    assert answer is not None and answer["status"] == "error"  # the demo's "stopped" child

    (run_dir,) = (outputs / "monthly-review" / "2026-10").iterdir()
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "interrupted" and data["error"] == "interrupted (SIGTERM)"
    assert (run_dir / "report.html").is_file()
    assert list(scratch.iterdir()) == []  # nor the kernel's connection file
    assert wait_for(lambda: not _kernels_of(scratch), 30), _kernels_of(scratch)
