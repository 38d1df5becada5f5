"""What every figure shares: the result record, timing, subprocess helpers, the machine."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LSOPS = str(BIN / "lsops")


@dataclass
class Result:
    """One figure. `ratio` is always value / baseline (None without a baseline);
    `goal` says in words what must hold, `met` whether it did (None: not judged)."""

    name: str
    value: float | None
    unit: str
    baseline: float | None
    goal: str
    met: bool | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        def num(x: float | None, digits: int = 4) -> float | None:
            return None if x is None else round(float(x), digits)

        return {
            "name": self.name,
            "value": num(self.value),
            "unit": self.unit,
            "baseline": num(self.baseline),
            "ratio": num(self.ratio),
            "goal": self.goal,
            "met": self.met,
            "details": self.details,
        }


@dataclass
class Context:
    """Where a run puts its data sets, and how big they are."""

    tmp: Path
    quick: bool
    log: Callable[[str], None]
    cache: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any LSOPS_* setting, plus `extra`; the commands run the
    lsops of this tree (PYTHONPATH: it, whatever the venv was installed from, e.g. a git
    worktree beside the tree the venv's editable install points at)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def run_timed(
    args: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = 1800,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command; (wall seconds, the completed process). The CPU seconds (user + sys)
    of the command and its children are in `proc.cpu_s`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        args,
        env=dict(env),
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.cpu_s = round(  # type: ignore[attr-defined]
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
    )
    return seconds, proc


def tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python, OS of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    import sqlite3

    os_name = platform.platform()
    try:
        info = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        os_name = f"{info.get('PRETTY_NAME', '').strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": os_name,
    }


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
