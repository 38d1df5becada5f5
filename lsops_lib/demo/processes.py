"""Child processes, and everything below them: finding, signalling and reaping them.

Linux only (it reads /proc). Used by the demo to stop everything it started, by its
worker processes (`child_signals`, `child_output`, `reap_descendants`), and by the
tests to check that nothing is left behind (`alive`, `listeners`, `mentioning`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _pids() -> Iterator[int]:
    """Every process id on the machine."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    _, paren, rest = stat.rpartition(")")
    return rest.split() if paren else None


def descendants(pid: int | None = None) -> list[int]:
    """Every process below `pid` (default: this one), from /proc."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child in _pids():
        fields = _stat(child)
        try:
            ppid = int(fields[1]) if fields else None
        except (IndexError, ValueError):
            ppid = None
        if ppid is not None:
            children.setdefault(ppid, []).append(child)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def kill_all(pids: list[int], *, grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still there after `grace_s`."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def reap_descendants(timeout_s: float = 10.0) -> None:
    """Wait for this process's children (a kernel shutting down) to go, then kill them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in descendants() if alive(p)]
        if not left:
            return
        time.sleep(0.05)
    kill_all([p for p in descendants() if alive(p)], grace_s=2.0)


class Children:
    """The child processes this process starts, and every process ever seen below it
    since (not those it had before: a library user's, pytest's).

    `started` are the `multiprocessing.Process`es it started; `track()` remembers every
    descendant seen (True when there were new ones); `stop()` ends the started ones with
    everything below them; `sweep()` ends whatever is left below this process."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.seen: set[int] = set()
        self.preexisting: set[int] = set(descendants())

    def add(self, proc: Any) -> None:
        self.started.append(proc)

    def track(self) -> bool:
        new = set(descendants()) - self.preexisting - self.seen
        self.seen.update(new)
        return bool(new)

    def stop(self, log: Callable[[str], None], *, grace_s: float = 5.0) -> None:
        """SIGTERM to the started processes and those below them (gathered before they
        go: orphans would be out of reach), SIGKILL after `grace_s`; then join them."""
        with contextlib.suppress(Exception):
            ours = [p.pid for p in self.started if p.pid is not None and alive(p.pid)]
            below: set[int] = set()
            for pid in ours:
                below.update(descendants(pid))
            if ours or below:
                log(f"cleanup: stopping {ours} and below them {sorted(below)}")
                kill_all([*ours, *sorted(below)], grace_s=grace_s)
        for proc in self.started:
            with contextlib.suppress(Exception):
                proc.join(timeout=1)

    def sweep(self, log: Callable[[str], None], *, grace_s: float = 2.0) -> None:
        """End whatever is still alive below this process (and was not there before)."""
        with contextlib.suppress(Exception):
            left = [p for p in set(descendants()) - self.preexisting if alive(p)]
            if left:
                log(f"cleanup: still there: {left}")
                kill_all(left, grace_s=grace_s)


# --- in a forked child -----------------------------------------------------------------------


def child_signals() -> None:
    """In a forked child: the parent's handlers do not apply. SIGTERM (from the parent's
    cleanup, or from the kernel when the parent dies) ends the child (`_child_sigterm`:
    a report it runs is stopped as `lsops report` stops one); SIGINT from the terminal is
    the parent's to handle."""
    _parent[:] = [os.getppid()]
    signal.signal(signal.SIGTERM, _child_sigterm)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


_parent: list[int] = []  # in a child: its parent's pid (`child_signals`)


def _child_sigterm(signum: int, _frame: Any) -> None:
    """SIGTERM in a child, from the parent's cleanup, while a report runs in it
    (`reports.report_running()`): raised as a stop, as in `lsops report` (the run archived
    `interrupted`, its kernel and scratch folder removed: a second of work, well within
    the cleanup's grace). Otherwise, or when it comes because the parent died (SIGKILL:
    the run is then a dead report's, swept by the next `lsops reports`), the default."""
    reports = sys.modules.get("lsops_lib.reports")
    orphaned = bool(_parent) and os.getppid() != _parent[0]
    if reports is not None and reports.report_running() and not orphaned:
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM: at once
        raise reports.Stopped(signum)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_output(log: str | None) -> None:
    """In a child: its output (and its children's: kernels) goes to its log file."""
    if not log:
        return
    with contextlib.suppress(OSError):
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


# --- what is left ------------------------------------------------------------------------------


def mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (e.g. a cluster's folder)."""
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(pid):
            found.append(pid)
    return found


def listeners(port: int) -> list[int]:
    """Processes holding a listening TCP socket on `port` (from /proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(f"socket:[{fields[9]}]")
    pids: list[int] = []
    if not inodes:
        return pids
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    pids.append(pid)
                    break
            except OSError:
                continue
    return pids
