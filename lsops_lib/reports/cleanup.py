"""Interrupted runs: what a run holds while it lives, and the sweep that finds the dead.

A report run leaves two things on disk while it runs: its run directory
(`outputs/<kind>/<key>/<run-id>/`, run.json written last) and a scratch directory in the
temporary folder (`$TMPDIR/lsops-run-*`: the executing notebook and the kernel's
connection file). Each holds a lock file (`.lsops-run.lock`) with an exclusive `flock`
taken by the running process: the kernel releases it when the process ends, however it
ends (SIGKILL, out of memory, a power cut), so "the lock can be taken" means "the process
that ran this is gone" without trusting pids or clocks.

`sweep(outputs)`, at the start of every `lsops report` and `lsops reports` (issue 13):

- a run directory without run.json whose lock can be taken (or that has no lock file: an
  older lsops, or a process that died within the reservation) is marked: a run.json with
  `status: interrupted`, the reason and `duration_s: null` (when the process died is not
  known) is written; nothing in it is deleted;
- a scratch directory whose lock can be taken is removed (it only ever holds copies).

Reservations of run directories and the sweep of the outputs folder both happen under
the index lock (`index.locked`), so a sweep never sees a run directory before its lock.
Scratch directories are made under a staging name, locked, then renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..times import utcnow
from .archive import RUN_JSON, Run, atomic_write, iso

LOCK = ".lsops-run.lock"
SCRATCH_PREFIX = "lsops-run-"
_STAGING_PREFIX = ".lsops-run-new-"
STALE_UNLOCKED_S = 3600.0  # scratch dirs of an older lsops (no lock file) older than this
INTERRUPTED = "interrupted"
_STAMP = re.compile(r"^(\d{8}T\d{6}Z)-")

try:  # POSIX; elsewhere nothing is ever found stale (and nothing is swept)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class Held:
    """An exclusive flock on a lock file, held until `release()` (or the process ends)."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    def release(self, *, remove: bool = False) -> None:
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def hold(path: Path, info: dict[str, Any] | None = None) -> Held:
    """Create `path` and take its lock (blocking: nobody else has it yet)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    if info is not None:
        os.write(fd, (json.dumps(info, ensure_ascii=False) + "\n").encode("utf-8"))
    return Held(path, fd)


def _try_take(path: Path) -> Held | None:
    """The lock of `path` when nobody holds it (its process ended), else None."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        return None
    return Held(path, fd)


# --- run directories ------------------------------------------------------------------------


def hold_run(run_dir: Path, info: dict[str, Any]) -> Held:
    """The lock of a run directory just reserved (`info`: kind, key, parameters, start)."""
    return hold(run_dir / LOCK, info)


def _read_info(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _started(run_dir: Path, info: dict[str, Any]) -> datetime:
    with contextlib.suppress(KeyError, TypeError, ValueError):
        return datetime.fromisoformat(str(info["started"]).replace("Z", "+00:00")).astimezone(UTC)
    match = _STAMP.match(run_dir.name)
    if match:
        with contextlib.suppress(ValueError):
            return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.fromtimestamp(run_dir.stat().st_mtime, UTC)


def mark_interrupted(run_dir: Path, root: Path) -> Run:
    """Write run.json for a run whose process died: `status: interrupted`, nothing deleted."""
    info = _read_info(run_dir / LOCK)
    relative = run_dir.relative_to(root).parts
    kind, key = str(info.get("kind") or relative[0]), str(info.get("key") or relative[1])
    started = _started(run_dir, info)
    kept = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
    run = Run(
        kind=kind,
        key=key,
        run_id=run_dir.name,
        path=run_dir,
        status=INTERRUPTED,
        started=started,
        duration_s=None,  # unknown: nothing in the run directory tells when it died
        parameters=dict(info.get("parameters") or {}),
        versions=dict(info.get("versions") or {}),
        error=(
            "interrupted: the process running this report ended before it finished "
            f"(found by lsops at {iso(utcnow())}); what it left is kept"
            + (f": {', '.join(kept)}" if kept else "")
        ),
        notebook=info.get("notebook"),
    )
    atomic_write(run_dir / RUN_JSON, json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return run


def sweep_runs(root: Path) -> list[Run]:
    """Mark every dead run directory under `root` interrupted (call under the index lock)."""
    marked: list[Run] = []
    if not root.is_dir():
        return marked
    for run_dir in sorted(root.glob("*/*/*/")):
        parts = run_dir.relative_to(root).parts
        if any(p.startswith(".") for p in parts) or not run_dir.is_dir():
            continue
        if (run_dir / RUN_JSON).exists():
            continue
        lock = run_dir / LOCK
        held = _try_take(lock) if lock.exists() else Held(lock, None)
        if held is None:
            continue  # alive: another process is running this report
        try:
            if (run_dir / RUN_JSON).exists():  # finished while we looked
                continue
            marked.append(mark_interrupted(run_dir, root))
        except OSError:
            continue
        finally:
            held.release(remove=True)
    return marked


# --- scratch directories --------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(base: Path | None = None) -> Iterator[Path]:
    """A private directory in the temporary folder for one run, locked while it lives
    and removed at the end (a sweep removes it if its process dies first). It is made
    and locked under a staging name, then renamed: a sweep never sees it unlocked."""
    base = Path(base or tempfile.gettempdir())
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=base))
    held = hold(staging / LOCK, {"pid": os.getpid()})
    final = staging.with_name(SCRATCH_PREFIX + staging.name[len(_STAGING_PREFIX) :])
    here = staging
    try:
        os.rename(staging, final)
        here = final
        yield final
    finally:
        _remove_tree(here)
        held.release()


def _remove_tree(path: Path, *, attempts: int = 20, pause_s: float = 0.05) -> None:
    """rmtree, again while the directory is still there: a writer being stopped may
    still write into it while it is removed (after SIGTERM or Ctrl-C: a papermill worker
    past `execute.STOP_TIMEOUT_S`, the preload thread left behind). At most ~1 s."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(pause_s)


def sweep_scratch(base: Path | None = None) -> list[Path]:
    """Remove the scratch directories of runs whose process ended; returns them."""
    base = Path(base or tempfile.gettempdir())
    removed: list[Path] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    now = time.time()
    try:
        candidates = [*base.glob(SCRATCH_PREFIX + "*"), *base.glob(_STAGING_PREFIX + "*")]
    except OSError:
        return removed
    for path in candidates:
        try:
            stat = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink() or (uid is not None and stat.st_uid != uid):
            continue
        lock = path / LOCK
        if path.name.startswith(_STAGING_PREFIX) or not lock.exists():
            # a staging dir lives microseconds; one without a lock is an older lsops's
            if now - stat.st_mtime > STALE_UNLOCKED_S:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        held = _try_take(lock)
        if held is None:
            continue  # a run in progress
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            held.release()
    return removed
