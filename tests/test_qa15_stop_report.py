"""One report stopped at awkward moments (qa15), with real signals: during its archive
(the signal waits until run.json, report.html and the index entry are written, then the
command exits 130/143: the run stays as it finished); a second SIGTERM while the first is
handled; Ctrl-C in the command's first instants. Always one line, never click's
"Aborted!" and exit 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import lsops_lib.cli
import lsops_lib.reports
import lsops_lib.reports.run
from lsops_lib.cli import main
from tests.fixtures.faults import wait_for
from tests.test_faults import _lsops, _report_env

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def report_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    for name in [k for k in os.environ if k.startswith("LSOPS_")]:
        monkeypatch.delenv(name)
    for name, value in _report_env(tmp_path, scratch).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "outputs"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_archiving_waits_for_a_whole_run(
    report_env: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    real = lsops_lib.reports.run.atomic_write

    def signalled(path: Path, text: str) -> None:
        if path.name == "report.ipynb":  # the notebook ran; its archive begins
            os.kill(os.getpid(), signum)
        real(path, text)

    monkeypatch.setattr(lsops_lib.reports.run, "atomic_write", signalled)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a shell
    try:
        result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.exit_code == 128 + signum, result.output
    assert result.stderr == "lsops: interrupted\n"
    (run_dir,) = (report_env / "monthly-review" / "2026-10").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "report.ipynb", "run.json"]
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "succeeded", data  # it had finished: archived as it finished
    assert "REPORT DONE" in (run_dir / "report.html").read_text()
    assert run_dir.name in (report_env / "index.html").read_text()


def test_a_second_sigterm_while_the_first_is_handled(
    report_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def terminated(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    printed: list[str] = []
    real_print = lsops_lib.cli.err_console.print

    def print_twice_signalled(text: str, *args: object, **kwargs: object) -> None:
        if not printed:  # the first SIGTERM's "lsops: interrupted": a second SIGTERM now
            printed.append(text)
            os.kill(os.getpid(), signal.SIGTERM)
        real_print(text, *args, **kwargs)

    monkeypatch.setattr(lsops_lib.reports, "run_report", terminated)
    monkeypatch.setattr(lsops_lib.cli.err_console, "print", print_twice_signalled)
    result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10"])
    assert result.exit_code == 143, result.output
    assert "Aborted" not in result.output
    assert result.stderr == "lsops: interrupted\n"


def _read_lines(stream: Any, lines: list[str]) -> None:
    for text in stream:
        lines.append(text)


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.15, 0.3, 0.6])
def test_ctrl_c_in_the_first_instants_is_one_line_and_130(tmp_path: Path, delay_s: float) -> None:
    """From the moment lsops's first module ran (Python's verbose import lines say when;
    before it, Python's start-up is out of lsops's reach): Ctrl-C while it imports, parses,
    starts the command, or runs the report."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        _lsops("report", "monthly-review", "--month", "2026-10", "-p", "sleep_s", "60"),
        cwd=tmp_path,
        env={**_report_env(tmp_path, scratch), "PYTHONVERBOSE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    assert wait_for(
        lambda: any("lsops_lib.cli.stopping" in x and x.startswith("import") for x in lines),
        30,
        every_s=0.002,
    ), "".join(lines[-20:])
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=30)
    stderr = "".join(lines)
    assert proc.returncode == 130, stderr[-3000:]
    # (counted, not a line: a kernel starting writes its verbose imports to the same stderr)
    assert stderr.count("lsops: ") == 1 and stderr.count("lsops: interrupted") == 1, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr[-3000:]
    assert list(scratch.iterdir()) == []
