"""Many reports of one kind in one go: `lsops report monthly-review --months A..B --jobs N`.

    months = month_range("2025-01..2025-12")                  # ParameterError when wrong
    results = run_reports("monthly-review", [{"month": m} for m in months],
                          settings=settings, jobs=2)
    all(r.ok for r in results)

Every parameter set is validated BEFORE any report runs (one bad month: nothing runs,
nothing is written). With `jobs` > 1 the reports run in a pool of worker PROCESSES
(each report is a kernel and a papermill/nbconvert pipeline anyway; processes keep the
GIL-bound export work of one report from slowing another; forked when this process runs a
single thread, else spawned). `run_report` is safe to call concurrently: run directories
are reserved atomically and the index is rewritten under a lock. Results come back in the
order of the parameter sets.

Stopping (README "Interrupted reports"): Ctrl-C or SIGTERM stops the batch as it stops one
report. The months still queued are never started (neither run nor archived); the running
ones are told (the same signal, to each worker) and archived `interrupted`, their kernels
and scratch removed; then the interrupt is raised again (exit 130/143). A worker dies with
its parent (PR_SET_PDEATHSIG, and a check before each month): its running report is then
archived `interrupted` as well, and it starts no other.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..exceptions import ConfigError, LsopsError, ParameterError
from ..times import parse_month
from .archive import Run

__all__ = ["MAX_JOBS", "BatchResult", "Stopped", "month_range", "report_running", "run_reports"]

MAX_MONTHS = 120
MAX_JOBS = 16  # worker processes, each running a kernel: more only exhausts the machine
_RANGE = re.compile(r"^\s*([^.\s]+)\s*\.\.\s*([^.\s]+)\s*$")
_NOT_STARTED = "not started"  # a month a stopped worker took from the queue and skipped
_running = [0]  # run_report calls in progress in this process (signal handlers read it)
_worker: dict[str, int] = {}  # in a pool worker: "parent", "slot", "signum" once stopped
_shared: dict[str, Any] = {}  # in a pool worker: the batch's "stop" flag and "busy" pids
_STOPS = frozenset({signal.SIGINT, signal.SIGTERM})


class Stopped(KeyboardInterrupt):
    """A stop by a signal, raised where the process is (as Ctrl-C raises KeyboardInterrupt):
    run_report archives the run `interrupted`; `exit_code` 130 for SIGINT, else 143."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.exit_code = 130 if signum == signal.SIGINT else 143


def report_running() -> bool:
    """True while a run_report call of this process is executing or archiving a report."""
    return _running[0] > 0


@dataclass
class BatchResult:
    """One report of a batch: its parameters, its archived run (None when it could not
    be archived), and the error (the run's own, or why archiving failed)."""

    params: dict[str, Any]
    run: Run | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.run is not None and self.run.ok


def month_range(spec: str) -> list[str]:
    """`2025-01..2025-12` -> ["2025-01", ..., "2025-12"] (a single `2025-03` is one month).

    ParameterError when a month is malformed, the range runs backwards or is longer than
    MAX_MONTHS."""
    text = str(spec).strip()
    match = _RANGE.match(text)
    first, last = (match.group(1), match.group(2)) if match else (text, text)
    if not match and ".." in text:
        raise ParameterError(f"not a month range: {spec!r} (expected YYYY-MM..YYYY-MM)")
    start, _ = parse_month(first)
    stop, _ = parse_month(last)
    if stop < start:
        raise ParameterError(f"month range {spec!r} runs backwards ({last} is before {first})")
    months: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (stop.year, stop.month):
        months.append(f"{year:04d}-{month:02d}")
        if len(months) > MAX_MONTHS:
            raise ParameterError(f"month range {spec!r} is longer than {MAX_MONTHS} months")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _mp_context() -> multiprocessing.context.BaseContext:
    """fork when this process runs a single thread (the workers start at once, with what
    is imported already: ~2 s saved per worker); else spawn, a clean interpreter per
    worker (forking a process with threads can inherit a held lock)."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _one(
    kind: str,
    params: dict[str, Any],
    settings: Settings,
    options: dict[str, Any],
) -> tuple[Run | None, str | None]:
    """Run one report (in a worker process or inline). Never raises an LsopsError."""
    from . import run_report

    try:
        run = run_report(kind, params, settings=settings, **options)
    except LsopsError as exc:
        return None, str(exc)
    except KeyboardInterrupt as exc:
        if "parent" not in _worker:
            raise  # inline: the batch stops here (run_reports)
        run = getattr(exc, "run", None)  # archived `interrupted` by run_report
        return (run, run.error) if run is not None else (None, _NOT_STARTED)
    return run, run.error


def _worker_start(parent: int, stop: Any, busy: Any, slots: Any) -> None:
    """A pool worker's initializer: SIGTERM/SIGINT stop it (`_worker_signal`), and it
    dies with its parent (PR_SET_PDEATHSIG: SIGTERM from the kernel when the parent goes,
    even by SIGKILL). `stop`: the parent's flag; `busy[slot]`: this worker's pid while it
    runs a month (the parent signals those alone)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _worker_signal)
    _worker.clear()
    _worker["parent"] = parent
    with slots.get_lock():
        _worker["slot"] = slots.value
        slots.value += 1
    _shared["stop"], _shared["busy"] = stop, busy
    with contextlib.suppress(Exception):  # Linux; elsewhere the check before each month
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if hasattr(signal, "pthread_sigmask"):  # held since the start (`_stops_held`): now ours
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


@contextlib.contextmanager
def _stops_held() -> Any:
    """SIGINT and SIGTERM held (blocked: delivered later, never lost) in this thread while
    the pool starts its workers. A worker inherits the mask and takes them once its
    handlers are in place (`_worker_start`): a Ctrl-C of the whole process group while a
    spawned worker still imports is then a stop like any other, not a KeyboardInterrupt
    traceback from its import and a broken pool. Here they are handled when the block ends,
    also one another thread took meanwhile."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    # the mask keeps them from this thread (and the workers it starts inherit it); another
    # thread of the process may still take one, whose Python handler would then run here,
    # in the middle of a worker's start (its half-written start-up data: an EOFError
    # traceback from the worker, QA 23): they are recorded meanwhile, and handled after
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in _STOPS}
    for s in _STOPS:
        signal.signal(s, lambda signum, _frame: held.append(signum))
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # those pending: recorded now
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def _orphaned() -> bool:
    return "parent" in _worker and os.getppid() != _worker["parent"]


def _worker_signal(signum: int, _frame: Any) -> None:
    """The first signal stops the worker: the month it runs is interrupted (its report
    archived as such); it starts no other (`_in_worker`); its parent gone, it ends. Later
    signals: the stop is under way."""
    if "signum" in _worker:
        return
    _worker["signum"] = signum
    if _worker.get("busy"):
        raise Stopped(signum)
    if _orphaned():
        os._exit(128 + signum)


def _in_worker(
    kind: str,
    params: dict[str, Any],
    settings: Settings,
    options: dict[str, Any],
) -> tuple[Run | None, str | None]:
    """One month in a pool worker: skipped once the batch is stopped; the worker ends
    after it when its parent is gone (nobody to tell, nothing else to start)."""
    busy, slot = _shared["busy"], _worker["slot"]
    _worker["busy"] = 1  # from here a signal raises Stopped
    try:
        busy[slot] = os.getpid()  # (then the stop flag: the parent sets it, then reads busy)
        if _shared["stop"].value or "signum" in _worker or _orphaned():
            return None, _NOT_STARTED
        return _one(kind, params, settings, options)
    except KeyboardInterrupt:  # stopped before its report began
        return None, _NOT_STARTED
    finally:
        _worker.pop("busy", None)
        busy[slot] = 0
        if _orphaned():
            os._exit(128 + _worker.get("signum", signal.SIGTERM))


def _stop_workers(futures: Sequence[Future[Any]], stop: Any, busy: Any, signum: int) -> None:
    """Cancel the months not yet handed to a worker, set the stop flag (a month already
    queued is skipped), then `signum` to every worker running a month (its report is
    interrupted). Workers still starting or waiting are not signalled."""
    for future in futures:
        future.cancel()
    stop.value = 1
    for pid in list(busy):
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)


def run_reports(
    kind: str,
    param_sets: Sequence[Mapping[str, Any]],
    *,
    settings: Settings,
    jobs: int = 1,
    outputs_dir: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: bool | None = False,
    on_done: Callable[[BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Validate every parameter set, then run the reports, `jobs` at a time (processes).

    Raises ParameterError (or ConfigError for an unknown database name) before anything
    runs. A report that fails, or cannot be archived, is a BatchResult with `ok` False;
    the others still run. `on_done` is called (in this process) as each report finishes.
    Ctrl-C or SIGTERM (a KeyboardInterrupt here): no other report starts, the running ones
    are archived `interrupted` (each passed to `on_done`), then the interrupt is raised.
    """
    from . import DEFAULT_TIMEOUT_S, check_target, validate

    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ParameterError(f"jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}")
    if not param_sets:
        raise ParameterError("no reports to run")
    checked: list[dict[str, Any]] = []
    keys: set[str] = set()
    for params in param_sets:
        key, values = validate(kind, params, notebooks_dir=notebooks_dir)
        if values.get("database"):
            settings.database(str(values["database"]))  # ConfigError when unknown
        check_target(values, settings)  # ParameterError when neither settings nor store know it
        if key in keys:
            raise ParameterError(f"{kind} {key} is asked for twice")
        keys.add(key)
        checked.append(dict(params))
    options: dict[str, Any] = {
        "outputs_dir": outputs_dir,
        "timeout_s": DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        "notebooks_dir": notebooks_dir,
        "cwd": cwd,
        "progress": progress,
    }
    results: list[BatchResult | None] = [None] * len(checked)

    def finish(index: int, run: Run | None, error: str | None) -> None:
        result = BatchResult(params=checked[index], run=run, error=error)
        results[index] = result
        if on_done is not None:
            on_done(result)

    workers = min(jobs, len(checked))
    if workers == 1:
        for index, params in enumerate(checked):
            try:
                finish(index, *_one(kind, params, settings, options))
            except KeyboardInterrupt as exc:
                run = getattr(exc, "run", None)  # archived `interrupted` (or as it ended)
                if run is not None:
                    finish(index, run, run.error)
                raise  # the months after it are not started
        return [r for r in results if r is not None]

    def collect(future: Future[tuple[Run | None, str | None]]) -> None:
        try:
            run, error = future.result()
        except (ConfigError, ParameterError):  # pragma: no cover - validated above
            raise
        except Exception as exc:  # a worker that died (killed, out of memory)
            run, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
        if error != _NOT_STARTED or run is not None:
            finish(futures[future], run, error)

    context = _mp_context()
    stop, busy = context.Value("b", 0, lock=False), context.Array("i", workers, lock=False)
    slots = context.Value("i", 0)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_worker_start,
        initargs=(os.getpid(), stop, busy, slots),
    ) as pool:
        with _stops_held():  # the workers start in `submit`
            futures: dict[Future[tuple[Run | None, str | None]], int] = {
                pool.submit(_in_worker, kind, params, settings, options): index
                for index, params in enumerate(checked)
            }
        seen: set[Future[tuple[Run | None, str | None]]] = set()

        def collect_done(done: set[Future[tuple[Run | None, str | None]]]) -> None:
            for future in sorted(done, key=futures.__getitem__):
                if future not in seen and not future.cancelled():
                    seen.add(future)
                    collect(future)

        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect_done(done)
        except KeyboardInterrupt as exc:
            signum = signal.SIGINT if getattr(exc, "exit_code", 130) == 130 else signal.SIGTERM
            _stop_workers(list(futures), stop, busy, signum)
            left = {f for f in futures if f not in seen and not f.cancelled()}
            while left:  # the running reports, archiving themselves as interrupted
                try:
                    done, left = wait(left, return_when=FIRST_COMPLETED)
                    collect_done(done)
                except KeyboardInterrupt:  # Ctrl-C again: the stop is under way
                    left = {f for f in futures if f not in seen and not f.cancelled()}
            raise
    return [r for r in results if r is not None]
