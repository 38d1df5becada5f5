"""A report's kernel that never answers (or dies before it does) is replaced by another one
before any cell runs, up to `execute.START_ATTEMPTS` kernels; the run says so in run.json.

Real kernels: the kernel command is a small launcher that, the first time(s), starts a
process that never answers (or exits at once), and afterwards runs ipykernel as usual.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main

ex = importlib.import_module("lsops_lib.reports.execute")  # the module, not the function
pytestmark = pytest.mark.timeout(240)

NOTEBOOKS = Path(__file__).parent / "data" / "notebooks"

# the first `LSOPS_TEST_BAD_STARTS` launches misbehave (`LSOPS_TEST_HOW`: hang | die), each
# noting its pid in the folder `LSOPS_TEST_LAUNCHES`; the next ones run ipykernel
LAUNCHER = """
import os, sys, time
folder = os.environ["LSOPS_TEST_LAUNCHES"]
n = len(os.listdir(folder)) + 1
with open(os.path.join(folder, f"{n:02d}-{os.getpid()}"), "w"):
    pass
if n <= int(os.environ["LSOPS_TEST_BAD_STARTS"]):
    if os.environ["LSOPS_TEST_HOW"] == "die":
        sys.exit(3)
    time.sleep(600)  # started, never answers
from ipykernel.kernelapp import launch_new_instance
launch_new_instance()
"""


@pytest.fixture
def launches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel command replaced by the launcher; its launches noted in the folder."""
    import ipykernel.kernelspec

    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    folder = tmp_path / "launches"
    folder.mkdir()
    real = ipykernel.kernelspec.get_kernel_dict

    def kernel_dict(*args: object, **kw: object) -> dict:
        spec = real(*args, **kw)
        return {**spec, "argv": [sys.executable, str(script), "-f", "{connection_file}"]}

    monkeypatch.setattr(ipykernel.kernelspec, "get_kernel_dict", kernel_dict)
    monkeypatch.setattr(ex, "START_TIMEOUT_S", 4)
    monkeypatch.setenv("LSOPS_TEST_LAUNCHES", str(folder))
    return folder


def _notebook(tmp: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("answer = 6 * 7\nprint(answer)")]
    path = tmp / "small.ipynb"
    nbformat.write(nb, path)
    return path


def _execute(tmp: Path) -> ex.Execution:
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    return ex.execute(_notebook(tmp), scratch, {}, env={}, cwd=tmp, progress=False)


def _pids(folder: Path) -> list[int]:
    return [int(p.name.split("-")[1]) for p in sorted(folder.iterdir())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


def _gone(pids: list[int], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize(("how", "said"), [("hang", "didn't respond"), ("die", "died")])
def test_a_kernel_that_never_answers_is_replaced(
    launches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, said: str
) -> None:
    monkeypatch.setenv("LSOPS_TEST_BAD_STARTS", "1")
    monkeypatch.setenv("LSOPS_TEST_HOW", how)
    result = _execute(tmp_path)
    assert result.error is None, result.error
    outputs = result.nb.cells[-1].outputs
    assert [o.get("text") for o in outputs] == ["42\n"]
    assert len(_pids(launches)) == 2  # one replaced, one that ran the notebook
    (failure,) = result.start_failures
    assert failure.startswith(f"attempt 1 of {ex.START_ATTEMPTS}: RuntimeError: Kernel ")
    assert said in failure
    assert _gone(_pids(launches))  # the silent kernel killed, the other shut down


def test_kernels_are_replaced_at_most_start_attempts_times(
    launches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSOPS_TEST_BAD_STARTS", "99")
    monkeypatch.setenv("LSOPS_TEST_HOW", "die")
    result = _execute(tmp_path)
    assert result.error == "RuntimeError: Kernel died before replying to kernel_info"
    assert len(_pids(launches)) == ex.START_ATTEMPTS
    assert len(result.start_failures) == ex.START_ATTEMPTS - 1


def test_a_failing_cell_is_not_a_reason_to_start_another_kernel(
    launches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSOPS_TEST_BAD_STARTS", "0")
    monkeypatch.setenv("LSOPS_TEST_HOW", "die")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('raise RuntimeError("Kernel didn\'t respond")')]
    nbformat.write(nb, tmp_path / "small.ipynb")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = ex.execute(tmp_path / "small.ipynb", scratch, {}, env={}, progress=False)
    assert result.error is not None and "in cell" in result.error
    assert len(_pids(launches)) == 1 and result.start_failures == []


def test_the_report_says_its_kernel_was_replaced(
    launches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSOPS_TEST_BAD_STARTS", "1")
    monkeypatch.setenv("LSOPS_TEST_HOW", "hang")
    for name in [n for n in os.environ if n.startswith("LSOPS_") and "TEST" not in n]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LSOPS_STORE", f"sqlite:///{tmp_path / 'm.sqlite'}")
    monkeypatch.setenv("LSOPS_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("LSOPS_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10"])
    assert shown.exit_code == 0, shown.output
    said = (
        "kernel   replaced after attempt 1 of 3: RuntimeError: Kernel didn't respond in 4 seconds"
    )
    assert said in shown.output
    (run,) = reports.list_runs(tmp_path / "outputs")
    assert run.status == "succeeded"  # whole: a replaced kernel is no warning
    assert not any("kernel" in w for w in run.warnings), run.warnings
    data = json.loads(run.json_path.read_text())
    assert data["replaced_kernels"] == [
        "attempt 1 of 3: RuntimeError: Kernel didn't respond in 4 seconds"
    ]
    # an ordinary run's run.json has no such key
    assert (
        "replaced_kernels"
        not in reports.Run.from_dict(
            {k: v for k, v in data.items() if k != "replaced_kernels"}, run.path
        ).to_dict()
    )


def test_an_interrupted_run_starts_no_other_kernel(
    launches: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM made one) while the first kernel hangs: it is killed, and the
    kernel's death is not taken for a start to retry."""
    import _thread
    import threading

    monkeypatch.setenv("LSOPS_TEST_BAD_STARTS", "1")
    monkeypatch.setenv("LSOPS_TEST_HOW", "hang")
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _execute(tmp_path)
    finally:
        timer.cancel()
    time.sleep(ex.START_TIMEOUT_S + 1)  # past the first kernel's start timeout
    pids = _pids(launches)
    assert len(pids) == 1
    assert _gone(pids)
