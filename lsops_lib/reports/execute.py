"""Executing a notebook with papermill, in a kernel whose environment carries the settings.

How a notebook gets its settings: the kernel is ipykernel on the running interpreter
(`sys.executable`, whatever `python3` kernelspec a user directory may hold), started
in the caller's working directory with the caller's environment plus `LSOPS_*` variables
describing `settings` (`LSOPS_CONFIG`, `LSOPS_API_URL`, `LSOPS_API_TOKEN`, `LSOPS_TARGET`,
`LSOPS_STORE`, `LSOPS_DATABASE_URL`, `LSOPS_OUTPUTS`, `LSOPS_DATA`). A notebook calls
`lsops_lib.config.load_settings()` and sees the same settings as the runner; the secrets
travel in the kernel's environment, never in the injected parameters.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client import AsyncKernelManager
from traitlets import Float

from .. import fmt, interrupts
from ..config import Settings

KERNEL_NAME = "python3"
DEFAULT_TIMEOUT_S = 900.0  # per cell
# a kernel that has not answered its first request (kernel_info) by then is killed and
# another one started, up to START_ATTEMPTS kernels: once in a long while, under load or
# with two runs starting at the same instant, an ipykernel starts and never answers (or
# dies at once); a second kernel then answers within a second (papermill #239, #776)
START_TIMEOUT_S = 30
START_ATTEMPTS = 3
_START_FAILURES = ("Kernel didn't respond", "Kernel died before replying to kernel_info")
# between a run's start and its end, the executed notebook in the scratch directory is
# saved at most this often (papermill's `autosave_cell_every`): where a long run is
AUTOSAVE_S = 30.0
STOP_TIMEOUT_S = 30  # an interrupted run: how long nbclient gets to see its kernel die
SHUTDOWN_POLL_S = 0.01  # how often a run looks whether its kernel has exited
SHUTDOWN_WAIT_S = 3.0  # a kernel still there half of this after its shutdown request: SIGTERM


class _EnvKernelManager(AsyncKernelManager):
    """A kernel manager that adds `lsops_env` to the kernel's environment (per run,
    without touching this process's `os.environ`: safe from threads)."""

    lsops_env: dict[str, str] = {}
    # the kernel's connection file, in the run's scratch directory (removed with it, and
    # by the sweep when the run dies) instead of a stray tmpXXXX.json in $TMPDIR
    lsops_connection_file: str = ""
    lsops_started: list[Any] = []  # the managers that started a kernel (to kill on Ctrl-C)

    @property
    def kernel_spec(self) -> Any:
        """`python3` is always this interpreter's ipykernel (sys.executable), whatever
        kernelspec of that name a user directory may hold for another Python."""
        if self._kernel_spec is None and self.kernel_name == KERNEL_NAME:
            from ipykernel.kernelspec import RESOURCES, get_kernel_dict
            from jupyter_client.kernelspec import KernelSpec

            self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
        return super().kernel_spec

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.lsops_connection_file and not self.connection_file:
            self.connection_file = self.lsops_connection_file
        self.lsops_started.append(self)
        env = dict(kw.pop("env", None) or os.environ)
        env.update(self.lsops_env)
        for name in [n for n, v in env.items() if v is None]:
            del env[name]
        kw["env"] = env
        if _curve_available():  # encrypted kernel channels when pyzmq can (no TCP warning)
            kw.setdefault("transport_encryption", "auto")
        return await super()._async_pre_start_kernel(**kw)

    # SIGTERM a kernel still there 1.5 s after its shutdown request (jupyter_client: half
    # of this), SIGKILL 1.5 s later; jupyter_client's default of 5 s gave 2.5 s. ipykernel
    # 7.4 can deadlock in its own exit, in ~4 % of runs here (6.31 stalled as often): its
    # main thread joins the control thread after stopping the IOPub thread while the
    # control thread still waits (up to 10 s a flush) for that thread to flush its streams
    # after the shutdown request. A kernel that exits normally does so in ~0.2-0.5 s.
    shutdown_wait_time = Float(SHUTDOWN_WAIT_S, config=True)

    async def _async_interrupt_kernel(self) -> None:
        """No SIGINT on the way out: jupyter_client interrupts a kernel before asking it to
        shut down, and an ipykernel idle by then logs "[IPKernelApp] ERROR |
        KeyboardInterrupt caught in kernel." to the run's stderr (a cron log's spurious
        ERROR). The shutdown request stops an idle kernel; a busy one gets SIGTERM, then
        SIGKILL (shutdown_wait_time). A timed-out cell is interrupted before, by nbclient."""
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        """jupyter_client's wait for the kernel to exit, looking every 10 ms instead of every
        100 ms (a process poll is one system call): the run goes on ~50 ms sooner on
        average, as soon as the kernel is gone."""
        await super()._async_finish_shutdown(waittime, min(pollinterval, SHUTDOWN_POLL_S), restart)


def _curve_available() -> bool:
    try:
        import zmq

        return bool(zmq.has("curve"))
    except Exception:  # pragma: no cover
        return False


ENGINE_NAME = "lsops"


@functools.cache
def _engine() -> str:
    """Register (once) and name the papermill engine that saves the executed notebook once
    a cell instead of twice: `papermill.engines.papermill_engines.register`, papermill's
    way of adding an engine, used by `execute_notebook(engine_name=...)`."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class ExecutionManager(NotebookExecutionManager):  # type: ignore[misc]
        """papermill's manager, without its save of the whole notebook at each cell's
        start and completion (serialised and validated: ~0.55 s of the monthly review's
        28 saves, each on the way to the next cell). The run reads the saved file only
        when it failed, and papermill saves it then, and at the notebook's end; in
        between, a cell's start or end saves it when `autosave_cell_every` (`AUTOSAVE_S`)
        seconds passed
        since the last save (a long run still shows its progress in the scratch file),
        as papermill's own autosave during a long cell still does."""

        _in_cell = False
        on_cell: Callable[[Any], None] | None = None

        @contextlib.contextmanager
        def _cell_hook(self) -> Any:
            self._in_cell = True  # save() below: only when due
            try:
                yield
            finally:
                self._in_cell = False

        def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> Any:
            with self._cell_hook():
                return super().cell_start(cell, cell_index=cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> Any:
            try:
                with self._cell_hook():
                    return super().cell_complete(cell, cell_index=cell_index, **kwargs)
            finally:
                if self.on_cell is not None:
                    with contextlib.suppress(Exception):  # a helper's, never the run's
                        self.on_cell(cell)

        def save(self, **kwargs: Any) -> Any:
            if self._in_cell and not self._save_due():
                return None
            return super().save(**kwargs)

        def _save_due(self) -> bool:
            every = self.autosave_cell_every
            last = getattr(self, "last_save_time", None)
            if not every or last is None:
                return False
            return bool((self.now() - last).total_seconds() >= every)

    class Engine(NBClientEngine):  # type: ignore[misc]
        """nbclient, as papermill's default engine, with `ExecutionManager`."""

        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: Any,
            output_path: Any = None,
            progress_bar: bool = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            lsops_on_cell: Callable[[Any], None] | None = None,
            **kwargs: Any,
        ) -> Any:
            # papermill's Engine.execute_notebook with the manager above
            nb_man = ExecutionManager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.on_cell = lsops_on_cell
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE_NAME, Engine)
    logging.getLogger("asyncio").addFilter(_QuietPollTask())  # once, with the engine
    return ENGINE_NAME


def kernel_env(settings: Settings, *, outputs_dir: Path | None = None) -> dict[str, str]:
    """The `LSOPS_*` variables that let `load_settings()` in the kernel find `settings`.
    A target lsops.toml no longer names (its history read from the store, the `target`
    parameter naming it) is not the kernel's: it gets lsops.toml's default one."""
    package_root = str(Path(__file__).resolve().parents[2])
    pythonpath = os.environ.get("PYTHONPATH", "")
    configured = settings.target.name in settings.targets
    env: dict[str, str] = {
        "LSOPS_API_URL": settings.target.url if configured else "",
        # named only when it was named here (--target, LSOPS_TARGET, default_target): the
        # kernel takes the same default otherwise, and knows it was one (`resolve_target`)
        "LSOPS_TARGET": settings.target.name if configured and settings.target_named else "",
        "LSOPS_STORE": settings.store_url,
        "LSOPS_OUTPUTS": str(outputs_dir or settings.outputs_dir),
        "LSOPS_DATA": str(settings.data_dir),
        # the kernel imports the same lsops_lib as the runner
        "PYTHONPATH": os.pathsep.join(p for p in [package_root, pythonpath] if p),
        # figures inline in the notebook, whatever backend the runner uses (tests: Agg)
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    if settings.config_path:
        env["LSOPS_CONFIG"] = str(Path(settings.config_path).resolve())
    if settings.target.token:
        env["LSOPS_API_TOKEN"] = settings.target.token
    if settings.database_url:
        env["LSOPS_DATABASE_URL"] = settings.database_url
    return env


@dataclass
class Execution:
    nb: nbformat.NotebookNode
    error: str | None  # None when every cell ran
    # kernels that never answered and were replaced by another one (one line each)
    start_failures: list[str] = field(default_factory=list)


class _QuietWhileStopping(logging.Filter):
    """Drops papermill's (nbclient's) "Kernel died ..." errors once the run is being
    stopped: lsops killed that kernel itself (Ctrl-C, SIGTERM), and "lsops: interrupted"
    says so; a cron log would otherwise show an ERROR for a stop that was asked."""

    def __init__(self, stopping: threading.Event) -> None:
        super().__init__()
        self.stopping = stopping

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.stopping.is_set() and "Kernel died" in record.getMessage())


def _start_failed(exc: BaseException) -> bool:
    """Whether papermill's run broke because its kernel never became ready (before any
    cell ran: jupyter_client's `wait_for_ready`, called by nbclient at the start)."""
    return isinstance(exc, RuntimeError) and str(exc).startswith(_START_FAILURES)


def _one_line(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        where = f"cell {exc.exec_count}" if exc.exec_count else f"cell #{exc.cell_index + 1}"
        return f"{exc.ename}: {exc.evalue} (in {where})".replace("\n", " ")
    name = type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{name}: {text[0]}" if text else name


def _timeout_line(nb: nbformat.NotebookNode | None, timeout_s: int | None) -> str:
    """A timed-out run in one line, naming the cell: nbclient's CellTimeoutError names
    neither (its message quotes the cell's source); the cell is the last one papermill
    started (the cells after it have no start time)."""
    where = "a cell"
    cells = nb.cells if nb is not None else []
    for index, cell in reversed(list(enumerate(cells))):
        if cell.cell_type == "code" and cell.metadata.get("papermill", {}).get("start_time"):
            count = cell.get("execution_count")
            where = f"cell {count}" if count else f"cell #{index + 1}"
            break
    limit = f" of {fmt.integer(timeout_s)} s" if timeout_s is not None else ""  # as --timeout
    return f"CellTimeoutError: {where} ran longer than the execution timeout{limit}"


class _QuietPollTask(logging.Filter):
    """Drops asyncio's "Task was destroyed but it is pending!" about nbclient's output
    poller: on a cell's timeout nbclient leaves that task pending, and it is destroyed
    with the run's event loop, long after the run said "CellTimeoutError: ..." (stderr
    noise in a cron log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Task was destroyed but it is pending")
            and "NotebookClient._async_poll_output_msg" in message
        )


def execute(
    notebook: Path,
    scratch: Path,
    parameters: dict[str, Any],
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
    on_cell: Callable[[Any], None] | None = None,
) -> Execution:
    """Run `notebook` with papermill, the output saved in `scratch` (a private directory),
    and return the executed notebook and the error, if a cell failed or the run broke.
    `on_cell(cell)`: called with each cell once it completed (its outputs final)."""
    import papermill

    output = scratch / "executed.ipynb"
    kernels: list[_EnvKernelManager] = []
    manager = type(
        "LsopsKernelManager",
        (_EnvKernelManager,),
        {
            "lsops_env": dict(env),
            "lsops_connection_file": str(scratch / "kernel.json"),
            "lsops_started": kernels,
        },
    )
    if progress is None:
        progress = sys.stderr.isatty()
    outcome: dict[str, Any] = {}
    failures: list[str] = []  # kernels that never became ready, replaced
    done = threading.Event()  # set by the worker once papermill returned or raised
    stopping = threading.Event()  # set by this thread when the run is interrupted
    engine = _engine()

    def work() -> None:
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    outcome["nb"] = run_once()
                    return
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    again = attempt < START_ATTEMPTS and not stopping.is_set()
                    if not (again and _start_failed(exc)):
                        outcome["error"] = exc
                        return
                    # nbclient killed that kernel and removed its connection file
                    failures.append(f"attempt {attempt} of {START_ATTEMPTS}: {_one_line(exc)}")
                    del kernels[:]
        finally:
            done.set()

    def run_once() -> Any:
        return papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            progress_bar=bool(progress),
            log_output=False,
            start_timeout=START_TIMEOUT_S,
            # nbclient takes whole seconds (a float is a TraitError): rounded up
            execution_timeout=None if timeout_s is None else math.ceil(timeout_s),
            autosave_cell_every=AUTOSAVE_S,
            # the kernel's working directory, without papermill's process-wide chdir
            resources={"metadata": {"path": str(cwd or Path.cwd())}},
            kernel_manager_class=manager,
            engine_name=engine,
            lsops_on_cell=on_cell,
        )

    # papermill runs in a worker thread, this thread waits: a signal (Ctrl-C, SIGTERM
    # turned into an exception by the CLI) lands HERE, not inside nbclient's event loop
    # (whose own signal handlers would race with ours); the kernel is then killed, the
    # worker sees it die and cleans up, and the caller archives the run as interrupted
    # (waited for with an Event, not Thread.join: a join that a KeyboardInterrupt
    # interrupts can leave the thread looking finished, and a later join returns at once
    # while papermill still runs and writes into the scratch directory; Python 3.11)
    worker = threading.Thread(target=work, name="lsops-papermill", daemon=True)
    quiet = _QuietWhileStopping(stopping)
    papermill_log = logging.getLogger("papermill")  # nbclient logs through it here
    papermill_log.addFilter(quiet)
    noted: list[BaseException] = []  # what the signal handlers raised, in order
    try:
        with interrupts.noted(noted):
            worker.start()  # (a signal may land while it starts)
            while not done.wait(0.2):
                if noted:  # raised where Python dropped it (see interrupts.noted)
                    raise noted[0]
            if noted:
                raise noted[0]
    except BaseException:
        stopping.set()  # no other kernel is started for this run
        _stop(worker, done, kernels)
        raise
    finally:
        papermill_log.removeFilter(quiet)
    if "nb" in outcome:
        return Execution(nb=outcome["nb"], error=None, start_failures=failures)
    exc = outcome.get("error")
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    # a failing cell, a timeout, a kernel that died or never started
    error = _one_line(exc) if exc is not None else "the execution ended without a result"
    executed = None
    if output.is_file():
        try:
            executed = nbformat.read(output, as_version=4)
        except Exception:  # pragma: no cover - a half-written scratch file
            executed = None
    if type(exc).__name__ == "CellTimeoutError":
        error = _timeout_line(executed, math.ceil(timeout_s) if timeout_s is not None else None)
    nb = executed if executed is not None else nbformat.read(notebook, as_version=4)
    return Execution(nb=nb, error=error, start_failures=failures)


def _stop(
    worker: threading.Thread, done: threading.Event, kernels: list[_EnvKernelManager]
) -> None:
    """An interrupted run: kill its kernel and wait (at most STOP_TIMEOUT_S) for the
    papermill worker to see it die and finish, killing again meanwhile: a signal that
    lands while the kernel is being started finds no kernel to kill yet, and the one
    started then must not run the notebook on. Once the worker is done, nothing writes
    into the run's scratch directory any more (it is removed next)."""
    if worker.ident is None:  # interrupted before it started: nothing runs
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    killed: set[int] = set()
    while True:
        _kill(kernels, killed)
        if done.wait(0.2) or time.monotonic() >= deadline:
            return


def _kill(kernels: list[_EnvKernelManager], killed: set[int]) -> None:
    """SIGKILL the kernels of an interrupted run (nbclient then sees them die), each
    once (a pid, once its process is reaped, may be another process's)."""
    import signal

    for km in kernels:
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        try:
            pid = int(pid) if pid else None
        except (TypeError, ValueError):
            pid = None
        if pid is None or pid in killed:
            continue
        killed.add(pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
