"""Reports: parameters -> papermill execution -> archive -> index.

The pipeline, one module per step:

- `parameters`: the report kinds (`KINDS`), their parameters and archive keys; `validate`.
- `execute`: papermill runs the notebook in a kernel whose environment carries the settings.
- `archive`: run directories, atomic files, secret redaction, the HTML export, `Run`.
- `index`: `list_runs` and `outputs/index.html`.
- `run`: `run_report`, the steps above for one run (its lock, preloads, signals, outcome).
- `batch`: `run_reports` (many reports, validated first, `jobs` worker processes) and
  `month_range` (`2025-01..2025-12`), behind `lsops report monthly-review --months`.

    key, params = validate("monthly-review", {"month": "2026-10"})
    run = run_report("monthly-review", {"month": "2026-10"}, settings=load_settings())
    run.status, run.path / "report.html"

`run_report` may be called concurrently (threads or processes): run directories are
reserved atomically and the index is rewritten under a lock.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it, imported when first asked for: a
# report's kernel imports `lsops_lib.reports.parameters` (`check_parameter`) and, with it,
# this package; it needs none of the runner's stack (nbformat, papermill's clients, the
# HTML export: ~0.1 s of every report kernel's start).
_WHERE = {
    **dict.fromkeys(
        ("REPORT_HTML", "REPORT_IPYNB", "RUN_JSON", "Redactor", "Run", "atomic_write"),
        "archive",
    ),
    **dict.fromkeys(
        ("MAX_JOBS", "BatchResult", "Stopped", "month_range", "report_running", "run_reports"),
        "batch",
    ),
    **dict.fromkeys(("INTERRUPTED", "hold_run"), "cleanup"),
    **dict.fromkeys(("DEFAULT_TIMEOUT_S", "kernel_env"), "execute"),
    **dict.fromkeys(
        ("INDEX_HTML", "list_runs", "locked", "render_index", "scan_runs", "write_index"),
        "index",
    ),
    **dict.fromkeys(
        (
            "KINDS",
            "MAX_TIMEOUT_S",
            "Kind",
            "Param",
            "check_key",
            "check_timeout",
            "declared_parameters",
            "notebook_path",
            "notebooks_dir",
            "slugify",
            "validate",
        ),  # fmt: skip
        "parameters",
    ),
    **dict.fromkeys(
        (
            "check_outputs",
            "check_target",
            "key_figures",
            "notebook_metadata",
            "run_report",
            "signals_deferred",
            "sweep",
            "versions",
            "with_target",
        ),  # fmt: skip
        "run",
    ),
}

__all__ = [
    "BatchResult",
    "DEFAULT_TIMEOUT_S",
    "INDEX_HTML",
    "KINDS",
    "MAX_JOBS",
    "MAX_TIMEOUT_S",
    "Kind",
    "Param",
    "Redactor",
    "Run",
    "Stopped",
    "check_key",
    "check_outputs",
    "check_target",
    "check_timeout",
    "kernel_env",
    "list_runs",
    "month_range",
    "notebook_path",
    "notebooks_dir",
    "render_index",
    "report_running",
    "run_report",
    "run_reports",
    "scan_runs",
    "slugify",
    "sweep",
    "validate",
    "versions",
    "write_index",
]


_MODULES = ("archive", "batch", "cleanup", "execute", "index", "outcome", "parameters", "run")


def __getattr__(name: str) -> Any:
    if name in _MODULES:  # `reports.archive`, as when the package imported them all
        return importlib.import_module(f"{__name__}.{name}")
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE, *_MODULES})


if TYPE_CHECKING:  # the public names, for type checkers and editors
    from .archive import Redactor, Run
    from .batch import MAX_JOBS, BatchResult, Stopped, month_range, report_running, run_reports
    from .execute import DEFAULT_TIMEOUT_S, kernel_env
    from .index import INDEX_HTML, list_runs, render_index, scan_runs, write_index
    from .parameters import (
        KINDS,
        MAX_TIMEOUT_S,
        Kind,
        Param,
        check_key,
        check_timeout,
        notebook_path,
        notebooks_dir,
        slugify,
        validate,
    )
    from .run import check_outputs, check_target, run_report, sweep, versions
