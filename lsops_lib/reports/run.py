"""`run_report`: one report, validated, executed and archived (the pipeline's driver).

The steps are the package's modules (parameters -> execute -> archive -> index); this
module runs them in order for one run, with its lock, its preloads, its signals and its
outcome. `lsops_lib.reports` re-exports what is public here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from .. import __version__, preload
from ..config import Settings
from ..exceptions import ConfigError, ReportError
from ..times import utcnow
from .archive import (
    PAPERMILL_ERROR_TAG,
    REPORT_HTML,
    REPORT_IPYNB,
    RUN_JSON,
    Presanitizer,
    Redactor,
    Run,
    atomic_write,
    export_html,
    failure_banner,
    iso,
    reserve_run_dir,
    warm_export,
    warning_banner,
)
from .batch import (
    _running,
)
from .cleanup import INTERRUPTED, hold_run, scratch_dir, sweep_runs, sweep_scratch
from .execute import DEFAULT_TIMEOUT_S, execute, kernel_env
from .index import locked, write_index
from .outcome import judge
from .parameters import (
    KINDS,
    check_key,
    declared_parameters,
    notebook_path,
    validate,
)

_PACKAGES = (
    "papermill",
    "nbclient",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "jupyter_client",
    "pandas",
    "numpy",
    "matplotlib",
    "sqlalchemy",
    "httpx",
    "psycopg",
)


def versions() -> dict[str, str | None]:
    """lsops, Python and the packages a report depends on."""
    import platform

    found: dict[str, str | None] = {"lsops": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_report(
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    settings: Settings,
    outputs_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    notebooks_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Run:
    """Validate, execute and archive one report; rewrite the index. Returns the `Run`.

    Bad parameters raise ParameterError (a database name the settings do not know:
    ConfigError) before anything is written. A notebook that fails is archived with
    status "failed" (check `run.ok`); only a failure to archive raises ReportError.
    `progress`: a progress bar on stderr (default: when stderr is a terminal).
    `timeout_s`: per-cell execution timeout. `cwd`: the kernel's working directory
    (default: this process's).
    """
    key, values = validate(kind, params, notebooks_dir=notebooks_dir)
    spec = KINDS[kind]
    needed = "database" in spec.fails_when or settings.database_url or values.get("database")
    if spec.param("database") is not None and needed:
        # the database the report will use: an unknown name, none configured for a report
        # that needs one, a malformed URL: ConfigError (exit 2) before anything is written
        settings.database(str(values["database"]) if values.get("database") else None)
    source = notebook_path(kind, notebooks_dir)
    check_target(values, settings)
    chosen = values.get("target")
    values = with_target(kind, values, settings, source)
    outputs = Path(outputs_dir) if outputs_dir is not None else Path(settings.outputs_dir)
    check_outputs(outputs, "outputs_dir" if outputs_dir is not None else settings.outputs_setting)
    redactor = Redactor.from_settings(settings)
    shown = redactor.obj(values)
    if shown != values:  # a secret in a parameter (a title) never names the run's folder
        key = check_key(spec.key(shown))
    title = f"{spec.title}: {key}"
    # the target in the title: runs of one month for two APIs read apart (but never the
    # `default` of a one-API lsops.toml, that names none)
    if values.get("target") and (
        chosen or len(settings.targets) > 1 or values["target"] != "default"
    ):
        title += f", target {values['target']}"
    env = kernel_env(settings, outputs_dir=outputs.resolve())

    sweep(outputs)  # runs whose process died: marked interrupted; their scratch removed
    started = utcnow()
    parameters = redactor.obj(values)
    early: list[int] = []  # a stop asked for while the run is reserved: raised once it is
    with signals_deferred(early):  # (a run folder is never left without its lock's info)
        try:
            outputs.mkdir(parents=True, exist_ok=True)
            with locked(outputs):  # a sweep never sees the run directory before its lock
                run_id, run_dir = reserve_run_dir(outputs, kind, key, started)
                alive = hold_run(
                    run_dir,
                    {
                        "kind": kind,
                        "key": key,
                        "started": iso(started),
                        "parameters": parameters,
                        "notebook": source.name,
                        "pid": os.getpid(),
                    },
                )
        except OSError as exc:
            raise ReportError(
                f"cannot reserve a run directory in {outputs}: {exc.strerror or exc}"
            ) from None
        clock = time.monotonic()
        interrupted: BaseException | None = None
        deferred: list[int] = []  # a stop asked for while the run was being archived
        warnings: list[str] = []
        preloaded: dict[str, str] = {}
        replaced: list[str] = []  # kernels that never answered, replaced by another
        ahead = Presanitizer(redactor)  # the HTML outputs, sanitized while the kernel runs
    _running[0] += 1
    try:
        try:
            if early:  # now archived `interrupted` (when the handler raises)
                signal.raise_signal(early[0])
            with (
                scratch_dir() as scratch,
                preload.start(notebook_metadata(source), settings, values, scratch) as ready,
            ):
                warm_export()  # while the kernel runs: this process only waits then
                result = execute(
                    source,
                    scratch,
                    values,
                    env={**env, **ready.env},
                    cwd=Path(cwd) if cwd is not None else None,
                    timeout_s=timeout_s,
                    progress=progress,
                    on_cell=ahead.add_cell,
                )
                nb, error = result.nb, result.error
                preloaded = ready.report()
                replaced = result.start_failures
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM made one by the CLI
            interrupted = exc
            how = "SIGTERM" if getattr(exc, "exit_code", 130) == 143 else "Ctrl-C"
            nb, error = nbformat.read(source, as_version=4), f"interrupted ({how})"
        with signals_deferred(deferred):  # run.json, report.html and the index agree
            if error is None:
                outcome = judge(spec.fails_when, key_figures(nb))
                error, warnings = outcome.error, outcome.warnings
            status = "succeeded" if error is None else "failed"
            run = Run(
                kind=kind,
                key=key,
                run_id=run_id,
                path=run_dir,
                status=INTERRUPTED if interrupted is not None else status,
                started=started,
                duration_s=time.monotonic() - clock,
                parameters=parameters,
                versions=versions(),
                error=redactor.text(error) if error is not None else None,
                notebook=source.name,
                warnings=[redactor.text(w) for w in warnings],
                preload=preloaded,
                replaced_kernels=[redactor.text(r) for r in replaced],
            )
            try:
                _archive(run, nb, redactor, title=redactor.text(title), ready=ahead)
                write_index(outputs)
            except OSError as exc:
                reason = f"cannot archive the report in {run_dir}: {exc.strerror or exc}"
                _unarchived(run, reason, outputs)
                raise ReportError(reason) from None
    finally:
        ahead.close()
        alive.release(remove=(run_dir / RUN_JSON).exists())
        _running[0] -= 1
    if interrupted is not None:
        interrupted.run = run  # type: ignore[attr-defined] # (a batch shows it)
        raise interrupted
    if deferred:  # the stop asked for while archiving, now that the run is whole
        try:
            signal.raise_signal(deferred[0])
        except KeyboardInterrupt as exc:
            exc.run = run  # type: ignore[attr-defined]
            raise
    return run


@contextlib.contextmanager
def signals_deferred(got: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM held (main thread) while a run is archived: a stop there would
    leave a run folder half-written (report.ipynb alone, or run.json without report.html
    or its index entry). The signals that came are appended to `got`, for the caller to
    raise again once the archive is whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: got.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def notebook_metadata(path: Path) -> dict[str, Any]:
    """The notebook's metadata (read as JSON: no validation, no cell is needed here)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    meta = data.get("metadata") if isinstance(data, dict) else None
    return meta if isinstance(meta, dict) else {}


def key_figures(nb: nbformat.NotebookNode) -> dict[str, Any] | None:
    """The executed notebook's key figures (its last cell), or None when it shows none."""
    from ..keyfigures import read_key_figures

    try:
        return read_key_figures(nb)
    except (KeyError, TypeError, ValueError):
        return None


def check_outputs(outputs: Path, setting: str | None = None) -> None:
    """ConfigError when the outputs folder is a file (LSOPS_OUTPUTS=/etc/passwd), naming
    the `setting` it came from; a folder not there yet is fine (the first run creates it)."""
    if outputs.exists() and not outputs.is_dir():
        where = setting or "the default, ./outputs"
        raise ConfigError(f"the outputs folder {outputs} ({where}) is not a folder")


def sweep(outputs: str | os.PathLike[str]) -> list[Run]:
    """Mark the runs under `outputs` whose process died `interrupted` (never deleting
    them), remove the scratch directories of dead runs from the temporary folder, and
    rewrite the index when a run was marked. Returns the runs marked."""
    root = Path(outputs)
    marked: list[Run] = []
    if root.is_dir():
        try:
            with locked(root):
                marked = sweep_runs(root)
        except OSError:
            marked = []
    sweep_scratch()
    if marked:
        with contextlib.suppress(OSError):
            write_index(root)
    return marked


def with_target(
    kind: str, values: dict[str, Any], settings: Settings, source: Path
) -> dict[str, Any]:
    """The report reads the selected target (`--target`, `LSOPS_TARGET`, `default_target`,
    else the settings' first target), as every command does: injected as the `target`
    parameter unless one was given, when the kind and its notebook have one."""
    if values.get("target") or KINDS[kind].param("target") is None:
        return values
    if "target" not in declared_parameters(source):
        return values
    return {**values, "target": settings.target.name}


def check_target(values: Mapping[str, Any], settings: Settings) -> None:
    """A `target` parameter the notebook would refuse, refused before anything runs (as
    `--target NAME` is): neither the settings nor the store (the `store` parameter, else
    the settings') know it. The notebook's own rule (`present.resolve_target`); the
    store is only opened for a name the settings do not have."""
    target = values.get("target")
    if not target or target in settings.targets:
        return
    from ..present.source import open_store, resolve_target

    source = open_store(values.get("store"), settings)
    try:
        resolve_target(source, str(target), settings)
    finally:
        with contextlib.suppress(Exception):
            source.store.close()


def _unarchived(run: Run, reason: str, outputs: Path) -> None:
    """A run whose files could not all be written (a full disk): recorded `failed` with
    `reason` when its run.json can still be written, else its folder removed; never left
    with its lock alone (which the sweep would call `interrupted`)."""
    import json
    import shutil

    if not run.json_path.exists():
        if run.status != INTERRUPTED:
            run.status = "failed"
        run.error = reason if run.error is None else f"{reason}; {run.error}"
        data = json.dumps(run.to_dict(), indent=2, ensure_ascii=False) + "\n"
        try:
            atomic_write(run.json_path, data)
        except OSError:
            shutil.rmtree(run.path, ignore_errors=True)
    with contextlib.suppress(OSError):
        write_index(outputs)


def _archive(
    run: Run,
    nb: nbformat.NotebookNode,
    redactor: Redactor,
    *,
    title: str,
    ready: Presanitizer | None = None,
) -> None:
    """Write report.ipynb, report.html and (last) run.json, each redacted and atomic."""
    import json

    clean = redactor.notebook(nb)
    papermill_meta = clean.metadata.get("papermill")
    if isinstance(papermill_meta, dict):
        papermill_meta["output_path"] = REPORT_IPYNB
        # the notebook's name, as run.json says it: not the checkout's path on this host
        if isinstance(papermill_meta.get("input_path"), str):
            papermill_meta["input_path"] = Path(papermill_meta["input_path"]).name
    clean.metadata["lsops"] = {"kind": run.kind, "key": run.key, "run_id": run.run_id}
    if (
        not run.ok
        and run.error
        and not any(
            PAPERMILL_ERROR_TAG in c.get("metadata", {}).get("tags", []) for c in clean.cells
        )
    ):
        clean.cells.insert(0, failure_banner(run.error, interrupted=run.status == INTERRUPTED))
    elif run.ok and run.warnings:
        clean.cells.insert(0, warning_banner(run.warnings))
    atomic_write(run.path / REPORT_IPYNB, nbformat.writes(clean))
    page = _html(clean, title=title, error=run.error, ready=ready)
    atomic_write(run.path / REPORT_HTML, redactor.text(page))
    data = redactor.obj(run.to_dict())
    atomic_write(run.path / RUN_JSON, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _html(
    nb: nbformat.NotebookNode, *, title: str, error: str | None, ready: Presanitizer | None = None
) -> str:
    """The HTML export; if nbconvert itself fails, a page saying so (the .ipynb is whole)."""
    import html

    try:
        return export_html(nb, title=title, error=error, ready=ready)
    except Exception as exc:  # an output nbconvert cannot render must not lose the run
        reason = html.escape(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"</head><body><h1>{html.escape(title)}</h1><p>The HTML export failed ({reason}); "
            f"the executed notebook is <a href='{REPORT_IPYNB}'>{REPORT_IPYNB}</a>.</p></body></html>\n"
        )
