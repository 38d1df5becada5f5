"""QA 17, the CLI's standard streams: a report run from cron with stdout or stderr closed
(`>&-`, `2>&-`) runs (its kernel died at start); an encoding without the dash (an
ISO-8859-1 locale, PYTHONIOENCODING=ascii) prints stand-ins instead of a
UnicodeEncodeError traceback; a reader gone (`lsops health | true`) leaves the exit code
the command's own (1 read as DEGRADED).

The commands run as processes (`python -m lsops_lib.cli`), their streams set up by bash or
by the test; the notebooks are the placeholders of tests/test_reports.py."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.simapi import Event, Scenario, SimClock, SimulatedAPI
from lsops_lib.store import Store
from tests.fixtures.store import make_scrape

NOTEBOOKS = Path(__file__).parent / "data" / "notebooks"
LSOPS = [sys.executable, "-m", "lsops_lib.cli"]
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    return {**env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}", **more}


@pytest.fixture
def report_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The placeholder notebooks, a store holding one scrape, outputs in tmp_path."""
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as s:
        s.record_scrape(make_scrape(0, {"/api/chat": (10, 100.0, 0.0)}, target="default"))
    monkeypatch.chdir(tmp_path)
    return _env(tmp_path, LSOPS_NOTEBOOKS=str(NOTEBOOKS), LSOPS_OUTPUTS=str(tmp_path / "outputs"))


def _runs(outputs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(outputs.glob("*/*/*/run.json"))]


# --- 1. stdout or stderr closed ------------------------------------------------------------------

POSTMORTEM = ["report", "postmortem", "--start", "2026-10-01T00:00Z", "--end", "2026-10-01T01:00Z"]


_FDS = """
import os, sys
import lsops_lib.cli
for fd in (0, 1, 2):
    os.write(3, f"{fd} {os.readlink(f'/proc/self/fd/{fd}')} {os.get_inheritable(fd)}\\n".encode())
"""


def test_the_cli_reopens_closed_standard_streams_on_devnull(tmp_path: Path) -> None:
    """Before: a closed fd stayed closed, and the next file lsops opened took its number
    (a run's lock became the kernel's stdout, or the kernel found it closed and died)."""
    out = tmp_path / "fds.txt"
    proc = subprocess.run(
        ["bash", "-c", f'exec "$@" 3>{out} <&- >&- 2>&-', "x", sys.executable, "-c", _FDS],
        timeout=60,
    )
    assert proc.returncode == 0
    assert out.read_text().splitlines() == [f"{fd} /dev/null True" for fd in (0, 1, 2)]


@pytest.mark.parametrize("closed", [">&-", "2>&-"])
def test_a_report_runs_with_stdout_or_stderr_closed(
    report_env: dict[str, str], tmp_path: Path, closed: str
) -> None:
    """Before: the kernel inherited the closed fd, ipykernel died at start (three times),
    the run was archived failed and the command exited 1 (as cron runs it, in the demo)."""
    args = [*LSOPS, *POSTMORTEM, "--title", "closed", "--no-progress"]
    proc = subprocess.run(
        ["bash", "-c", f'exec "$@" {closed}', "lsops", *args],
        env=report_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = _runs(tmp_path / "outputs")
    assert run["status"] == "succeeded", run.get("error")
    assert not run.get("replaced_kernels")  # the first kernel answered


# --- 2. an encoding without the dash -------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[tuple[SimulatedAPI, SimClock]]:
    """A simulated API, degraded 01:00-02:00 (virtual time)."""
    clock = SimClock(T0 + timedelta(minutes=30))
    scenario = dataclasses.replace(
        Scenario.default(T0, incidents=False),
        events=[Event("degraded", T0 + timedelta(hours=1), T0 + timedelta(hours=2))],
    )
    with SimulatedAPI(scenario, clock=clock, restart_delay_s=0.1) as sim:
        yield sim, clock


def _run(env: dict[str, str], *args: str, stdout: int = subprocess.PIPE) -> Any:
    return subprocess.run(
        [*LSOPS, *args], env=env, stdout=stdout, stderr=subprocess.PIPE, timeout=60
    )


@pytest.mark.parametrize("encoding", ["ascii", "iso-8859-1"])
def test_health_in_an_encoding_without_the_dash(
    api: tuple[SimulatedAPI, SimClock], tmp_path: Path, encoding: str
) -> None:
    """`lsops health` shows a dash for a service without a response time: in UTF-8 `–`;
    before, in ASCII or ISO-8859-1, a UnicodeEncodeError traceback and exit 1."""
    sim, _ = api
    env = _env(tmp_path, LSOPS_API_URL=sim.url, COLUMNS="120")
    env.pop("LC_ALL", None)
    utf8 = _run({**env, "PYTHONIOENCODING": "utf-8"}, "health")
    assert utf8.returncode == 0, utf8.stderr
    assert "–" in utf8.stdout.decode("utf-8")  # what the other encodings lack

    other = _run({**env, "PYTHONIOENCODING": encoding}, "health")
    assert other.returncode == 0, other.stderr
    assert other.stderr == b""
    text = other.stdout.decode(encoding)  # strictly: every byte is of that encoding
    assert "–" not in text
    # the first line (status, URL) and the checks' line read the same, the dash a "-"
    first = utf8.stdout.decode("utf-8").splitlines()
    assert text.splitlines()[0] == first[0]
    assert [t for t in text.splitlines() if t.startswith("checks passed")] == [
        t for t in first if t.startswith("checks passed")
    ]
    services = [t for t in text.splitlines() if "database" in t]
    assert services and " - " in services[0].replace("|", " ")


# --- 7. a broken pipe ----------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_a_broken_pipe_leaves_the_exit_code_of_health(
    api: tuple[SimulatedAPI, SimClock], tmp_path: Path, as_json: bool
) -> None:
    """stdout a pipe whose reader is gone (`lsops health | true`): OK stays 0 (before: 1,
    DEGRADED to a monitor), DEGRADED stays 1, and nothing is said on stderr."""
    sim, clock = api
    env = _env(tmp_path, LSOPS_API_URL=sim.url)
    args = ["health", "--deep", *(["--json"] if as_json else [])]
    for at, code in [(T0 + timedelta(minutes=30), 0), (T0 + timedelta(hours=1, minutes=30), 1)]:
        clock.set(at)
        assert _run(env, *args).returncode == code  # with a reader
        read, write = os.pipe()
        os.close(read)
        try:
            proc = _run(env, *args, stdout=write)
        finally:
            os.close(write)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr == b""
