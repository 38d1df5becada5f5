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
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..exceptions import ConfigError, LsopsError, ParameterError
from ..times import parse_month
from .archive import Run

__all__ = ["MAX_JOBS", "BatchResult", "month_range", "run_reports"]

MAX_MONTHS = 120
MAX_JOBS = 16  # worker processes, each running a kernel: more only exhausts the machine
_RANGE = re.compile(r"^\s*([^.\s]+)\s*\.\.\s*([^.\s]+)\s*$")


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
    return run, run.error


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
    """
    from . import DEFAULT_TIMEOUT_S, validate

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
            finish(index, *_one(kind, params, settings, options))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            futures: dict[Future[tuple[Run | None, str | None]], int] = {
                pool.submit(_one, kind, params, settings, options): index
                for index, params in enumerate(checked)
            }
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                index = futures[future]
                try:
                    run, error = future.result()
                except (ConfigError, ParameterError):  # pragma: no cover - validated above
                    raise
                except Exception as exc:  # a worker that died (killed, out of memory)
                    run, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
                finish(index, run, error)
    return [r for r in results if r is not None]
