"""`lsops demo`: the whole product on embedded defaults, in one command.

Phases (each timed and printed):

1. *prepare*: the plan (`world.plan`), the demo folder (default `./.demo/`, locked
   against a second demo at the same time) and a fresh metrics store in it.
2. *history* (in worker processes, 2 at a time): each segment of the plan is served by
   its own `SimulatedAPI` on a free loopback port with a `SimClock` and scraped every 5
   virtual minutes by `collect.collect_forever` (the `lsops collect --every 5m` loop,
   its `sleep` advancing the virtual clock) into the store: the same HTTP client, parsing
   and storing as live scrapes.
3. *database* (meanwhile, in this process): a throwaway PostgreSQL
   (`pgtemp.PostgresCluster`) with the LongSang schema, seeded, then grown day by day
   over the window with the application's workload, a real snapshot
   (`collect.collect_db`) taken at each virtual day's end.
4. *incidents*: `analysis.incidents` over the history finds the outage: the
   postmortem's window.
5. *reports*: monthly review, DB optimization and postmortem, side by side in child
   processes (`reports.run_report`: papermill, archive, index).

Everything except the reports (which go to the configured outputs folder, `LSOPS_OUTPUTS`,
default `./outputs`) lives in the demo folder: `store.sqlite`, `lsops.toml` and
`lsops.env` (what `make lab` uses), `state.json` (the processes, ports and cluster of the
run in progress) and `logs/`. The cluster lives in a temporary folder removed at the end.
Every process started is stopped at the end, on Ctrl-C, SIGTERM or a failure.

`lsops demo --lab` (`make lab`): reuses the last demo's store (or builds one, without
the reports), starts the database again, and runs JupyterLab on `notebooks/` with the
demo's settings in its environment; when JupyterLab exits, the database is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import world

DEFAULT_DIR = Path(".demo")
STORE_FILE = "store.sqlite"
CONFIG_FILE = "lsops.toml"
ENV_FILE = "lsops.env"
STATE_FILE = "state.json"
LOCK_FILE = ".lock"
WORKERS = 2
# LSOPS_* variables of the caller's environment that the demo keeps (everything else
# LSOPS_* would point the demo at a real API, store or database)
KEEP_ENV = ("LSOPS_OUTPUTS", "LSOPS_NOTEBOOKS", "LSOPS_PG_BINDIR", "LSOPS_PG_USER", "LSOPS_DATA")


class DemoError(Exception):
    """The demo could not do its work (one line for the user)."""


class UsageError(DemoError):
    """Bad options (exit 2)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (`signum`; exit code 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


@dataclass
class Options:
    days: int | None = None  # None: the whole month
    seed: int = 0
    directory: Path = DEFAULT_DIR
    outputs: Path | None = None  # None: LSOPS_OUTPUTS, else ./outputs
    month: str | None = None  # None: the last complete month
    workers: int = WORKERS
    lab: bool = False
    lab_command: list[str] | None = None  # tests: instead of jupyter lab
    echo: Callable[[str], None] = print
    warn: Callable[[str], None] = field(
        default=lambda text: print(text, file=sys.stderr, flush=True)
    )


@dataclass
class Result:
    code: int
    index: Path | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    postmortem: dict[str, Any] | None = None


# --- processes ------------------------------------------------------------------------------


def _child_output(log: str | None) -> None:
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


def _reap_descendants(timeout_s: float = 10.0) -> None:
    """Wait for this process's children (a kernel shutting down) to go, then kill them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in descendants() if alive(p)]
        if not left:
            return
        time.sleep(0.05)
    _kill_all([p for p in descendants() if alive(p)], grace_s=2.0)


def _child_signals() -> None:
    """In a forked child: the parent's handlers do not apply. SIGTERM (from the parent's
    cleanup, or from the kernel when the parent dies) ends the child; SIGINT from the
    terminal is the parent's to handle."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def descendants(pid: int | None = None) -> list[int]:
    """Every process below `pid` (default: this one), from /proc."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        try:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _kill_all(pids: list[int], *, grace_s: float = 3.0) -> None:
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


# --- the history worker (a child process) ------------------------------------------------------


class LockedStore:
    """A Store whose writes take a lock shared by the demo's processes first.

    SQLite has one writer at a time; its busy handler waits in steps of up to 100 ms, so
    three processes writing at once spend most of their time asleep. One lock, handed
    over at once, keeps every write on the store's own code path without the waits."""

    def __init__(self, store: Any, lock: Any) -> None:
        self._store = store
        self._lock = lock

    def record_scrape(self, scrape: Any) -> bool:
        with self._lock:
            return bool(self._store.record_scrape(scrape))

    def record_db_sizes(self, *args: Any, **kwargs: Any) -> int:
        with self._lock:
            return int(self._store.record_db_sizes(*args, **kwargs))

    def record_db_queries(self, *args: Any, **kwargs: Any) -> int:
        with self._lock:
            return int(self._store.record_db_queries(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _collect_segment(
    store: Any, p: world.Plan, segment: world.Segment, events: Any
) -> dict[str, Any]:  # pragma: no cover - runs in a child process
    """Serve one segment with its own simulated API process and scrape it every 5 virtual
    minutes with the collector's loop (`collect_forever`, its sleep advancing the clock)."""
    from ..api import Client
    from ..collect import collect_forever
    from ..simapi import SimClock, SimulatedAPI

    clock = SimClock(world.first_tick(segment.start))
    api = SimulatedAPI(world.segment_scenario(p, segment), clock=clock, restart_delay_s=0.05)
    api.start()
    events.put(("port", os.getpid(), segment.index, api.port))
    stop = threading.Event()
    done = {"finished": False, "scrapes": 0, "failed": 0, "errors": 0}

    def sleep(delay: float) -> None:
        if clock.advance(timedelta(seconds=delay)) >= segment.end:
            done["finished"] = True
            stop.set()

    def on_scrape(scrape: Any, stored: bool) -> None:
        done["scrapes"] += 1
        done["failed"] += 0 if scrape.ok else 1

    def on_error(exc: Exception) -> None:
        done["errors"] += 1
        events.put(("error", os.getpid(), segment.index, str(exc)[:300]))

    # backoff 0: the retries of a scrape happen at the same virtual instant
    client = Client(api.url, timeout_s=5.0, retries=2, backoff_s=0.0)
    try:
        if clock.now() < segment.end:
            collect_forever(
                client,
                store,
                world.INTERVAL,
                stop=stop,
                clock=clock.now,
                sleep=sleep,
                on_scrape=on_scrape,
                on_error=on_error,
            )
        else:
            done["finished"] = True
    finally:
        client.close()
        api.stop()
    return done


def _history_worker(
    store_url: str,
    p: world.Plan,
    tasks: Any,
    events: Any,
    lock: Any,
    log: str | None = None,
) -> None:  # pragma: no cover - runs in a child process (tests run it through the CLI)
    _child_signals()  # collect_forever stops at the next scrape on SIGTERM/SIGINT
    _child_output(log)
    from ..store import Store

    raw = Store(store_url)
    store = LockedStore(raw, lock)
    try:
        while True:
            segment = tasks.get()
            if segment is None:
                break
            done = _collect_segment(store, p, segment, events)
            events.put(("done", os.getpid(), segment.index, done))
            if not done["finished"]:
                break  # stopped by a signal
    finally:
        raw.close()


def _report_worker(
    kind: str,
    params: dict[str, Any],
    env: dict[str, str],
    outputs: str,
    conn: Any,
    log: str | None = None,
) -> None:  # pragma: no cover - runs in a child process
    _child_signals()
    _child_output(log)
    os.environ.clear()
    os.environ.update(env)
    try:
        from ..config import load_settings
        from ..reports import run_report

        settings = load_settings(env=env)
        run = run_report(kind, params, settings=settings, outputs_dir=outputs, progress=False)
        conn.send(
            {
                "kind": kind,
                "key": run.key,
                "status": run.status,
                "path": str(run.path),
                "error": run.error,
                "duration_s": run.duration_s,
            }
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        traceback.print_exc()
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        conn.send({"kind": kind, "status": "error", "error": line})
    finally:
        _reap_descendants()  # the kernel is gone before we say we are done
        conn.close()


# --- the demo ------------------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    return f"{seconds:5.1f} s"


class Demo:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.dir = Path(options.directory).expanduser().resolve()
        self.store_path = self.dir / STORE_FILE
        self.store_url = f"sqlite:///{self.store_path}"
        self.outputs = self._outputs_dir()
        self.cluster: Any = None
        self.db_url: str | None = None
        self.procs: list[Any] = []  # multiprocessing.Process we started
        self.tracked: set[int] = set()  # every descendant pid we ever saw
        # children this process had before the demo (a library user's, pytest's): not ours
        self.preexisting: set[int] = set(descendants())
        self.state: dict[str, Any] = {}
        self.state_lock = threading.Lock()
        self.timings: dict[str, float] = {}
        self.log_path: Path | None = None
        self._log: Any = None
        self._lock_fh: Any = None
        self._log_handler: Any = None
        self._signals: dict[int, Any] = {}
        self._interrupted = False
        self._cleaned = False
        self.ctx = mp.get_context("fork")
        self.write_lock = self.ctx.Lock()

    # -- small helpers ------------------------------------------------------------------------

    def _outputs_dir(self) -> Path:
        if self.o.outputs is not None:
            return Path(self.o.outputs).expanduser().resolve()
        env = os.environ.get("LSOPS_OUTPUTS")
        if env:
            return Path(env).expanduser().resolve()
        return (Path.cwd() / "outputs").resolve()

    def echo(self, text: str) -> None:
        self.o.echo(text)
        self.log(text)

    def log(self, text: str) -> None:
        if self._log is not None:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            with contextlib.suppress(OSError, ValueError):
                self._log.write(f"{stamp} {text}\n")
                self._log.flush()

    def child_log(self, name: str) -> str | None:
        """The log file of a child process (next to the demo's log)."""
        if self.log_path is None:
            return None
        return str(self.log_path.with_name(f"{self.log_path.stem}-{name}.log"))

    def save_state(self, **updates: Any) -> None:
        with self.state_lock:
            self.state.update(updates)
            data = json.dumps(self.state, indent=2, default=str)
        tmp = self.dir / f".{STATE_FILE}.tmp"
        with contextlib.suppress(OSError):
            tmp.write_text(data + "\n")
            os.replace(tmp, self.dir / STATE_FILE)

    def track(self) -> None:
        """Remember every descendant process (for the final sweep and state.json)."""
        found = set(descendants()) - self.preexisting
        new = found - self.tracked
        if new:
            self.tracked.update(new)
            self.save_state(descendants=sorted(self.tracked))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        info: dict[str, Any] = {"detail": ""}
        started = time.monotonic()
        self.log(f"phase {name}: start")
        yield info
        elapsed = time.monotonic() - started
        self.timings[name] = elapsed
        self.echo(f"  {name:<10} {_fmt_s(elapsed)}  {info['detail']}".rstrip())

    def demo_env(self) -> dict[str, str]:
        """The environment of everything the demo runs: the caller's, minus LSOPS_*
        settings that would point elsewhere, plus the demo's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_") or k in KEEP_ENV}
        env.update(
            LSOPS_CONFIG=str(self.dir / CONFIG_FILE),
            LSOPS_STORE=self.store_url,
            LSOPS_OUTPUTS=str(self.outputs),
        )
        env.pop("LSOPS_DATABASE_URL", None)
        if self.db_url:
            env["LSOPS_DATABASE_URL"] = self.db_url
        return env

    def write_config(self) -> None:
        (self.dir / CONFIG_FILE).write_text(
            "# Written by `lsops demo`: the demo's settings (what `make lab` uses).\n"
            "# The database URL changes with every start of the throwaway PostgreSQL: it is\n"
            "# given as LSOPS_DATABASE_URL by `lsops demo --lab` while it runs.\n"
            "[store]\n"
            f'url = "{self.store_url}"\n\n'
            "[outputs]\n"
            f'dir = "{self.outputs}"\n'
        )
        (self.dir / ENV_FILE).write_text(
            "# `set -a; . .demo/lsops.env; set +a` gives a shell the demo's settings\n"
            f"LSOPS_CONFIG={self.dir / CONFIG_FILE}\n"
            f"LSOPS_STORE={self.store_url}\n"
            f"LSOPS_OUTPUTS={self.outputs}\n"
        )

    # -- signals and cleanup ----------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._interrupted or self._cleaned:
            return  # already stopping: let the cleanup finish
        self._interrupted = True
        self.log(f"signal {signal.Signals(signum).name}: stopping")
        raise Interrupted(signum)

    def install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._signals[sig] = signal.signal(sig, self._on_signal)

    def restore_signals(self) -> None:
        for sig, old in self._signals.items():
            with contextlib.suppress(Exception):
                signal.signal(sig, old)
        self._signals.clear()

    def cleanup(self) -> None:
        """Stop everything we started. Idempotent; never raises."""
        if self._cleaned:
            return
        self._interrupted = True  # further signals are ignored while we clean up
        started = time.monotonic()
        with contextlib.suppress(Exception):
            self.track()
        # our children (history workers stop their API servers on SIGTERM; report children
        # die) together with everything below them (kernels), gathered before they go
        with contextlib.suppress(Exception):
            ours = [p.pid for p in self.procs if p.pid is not None and alive(p.pid)]
            below: set[int] = set()
            for pid in ours:
                below.update(descendants(pid))
            if ours or below:
                self.log(f"cleanup: stopping {ours} and below them {sorted(below)}")
                _kill_all([*ours, *sorted(below)], grace_s=5.0)
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.join(timeout=1)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.stop()
        with contextlib.suppress(Exception):
            left = [p for p in set(descendants()) - self.preexisting if alive(p)]
            if left:
                self.log(f"cleanup: still there: {left}")
                _kill_all(left, grace_s=2.0)
        self._cleaned = True
        if self.log_path is not None:  # children's logs with nothing in them
            for path in self.log_path.parent.glob(f"{self.log_path.stem}-*.log"):
                with contextlib.suppress(OSError):
                    if path.stat().st_size == 0:
                        path.unlink()
        self.log(f"cleanup: done in {time.monotonic() - started:.1f} s")
        with contextlib.suppress(Exception):
            self.save_state(finished=datetime.now(UTC).isoformat(), running=False)
        if self._lock_fh is not None:
            with contextlib.suppress(Exception):
                self._lock_fh.close()
            self._lock_fh = None
        if self._log_handler is not None:
            import logging

            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler = None
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log.close()
            self._log = None

    # -- prepare ----------------------------------------------------------------------------------

    def prepare(self, *, fresh_store: bool) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "logs").mkdir(exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the demo folder {self.dir}: {exc.strerror}") from None
        self._lock_fh = open(self.dir / LOCK_FILE, "w")  # noqa: SIM115 - held until cleanup
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            raise DemoError(f"another lsops demo is running in {self.dir}") from None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_path = self.dir / "logs" / f"demo-{stamp}.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in cleanup
        # library warnings (psycopg on an interrupted query, ...) go to the log, not the console
        import logging

        handler = logging.StreamHandler(self._log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self._log_handler = handler
        logging.getLogger().addHandler(handler)
        self.save_state(
            pid=os.getpid(),
            started=datetime.now(UTC).isoformat(),
            running=True,
            finished=None,
            cluster=None,
            api_ports=[],
            workers=[],
            reports=[],
            descendants=[],
            log=str(self.log_path),
        )
        if fresh_store:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / (STORE_FILE + suffix)).unlink()
        from ..store import Store

        Store(self.store_url).close()  # the schema, before the workers open it
        self.write_config()

    # -- history ----------------------------------------------------------------------------------

    def start_history(self, p: world.Plan) -> dict[str, Any]:
        tasks = self.ctx.Queue()
        events = self.ctx.Queue()
        for segment in sorted(p.segments, key=lambda s: -s.scrapes):
            if segment.scrapes:
                tasks.put(segment)
        n = max(1, min(self.o.workers, len(p.segments)))
        for _ in range(n):
            tasks.put(None)
        workers = []
        for i in range(n):
            proc = self.ctx.Process(
                target=_history_worker,
                args=(
                    self.store_url,
                    p,
                    tasks,
                    events,
                    self.write_lock,
                    self.child_log(f"history-{i}"),
                ),
                name=f"lsops-demo-history-{i}",
                daemon=True,
            )
            proc.start()
            self.procs.append(proc)
            workers.append(proc)
        self.save_state(workers=[w.pid for w in workers])
        status: dict[str, Any] = {
            "workers": workers,
            "events": events,
            "tasks": tasks,
            "done": {},
            "errors": [],
            "ports": [],
        }
        listener = threading.Thread(
            target=self._listen, args=(status,), name="lsops-demo-events", daemon=True
        )
        listener.start()
        status["listener"] = listener
        return status

    def _listen(self, status: dict[str, Any]) -> None:
        import queue

        events = status["events"]
        draining = False
        while True:
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                if draining:
                    return
                # a worker that exited has flushed what it sent: one more pass reads the
                # events that arrived between this timeout and its exit
                draining = not any(w.is_alive() for w in status["workers"])
                continue
            except (EOFError, OSError, ValueError):
                return
            kind, pid, segment, value = event
            if kind == "port":
                status["ports"].append(value)
                self.save_state(api_ports=list(status["ports"]))
                self.log(f"segment {segment}: simulated API on 127.0.0.1:{value} (worker {pid})")
            elif kind == "done":
                status["done"][segment] = value
                self.log(f"segment {segment}: {value}")
            elif kind == "error":
                status["errors"].append(value)
                self.log(f"segment {segment}: store error: {value}")

    def wait_history(self, p: world.Plan, status: dict[str, Any]) -> dict[str, Any]:
        for worker in status["workers"]:
            while worker.is_alive():
                worker.join(timeout=0.2)
                self.track()
        status["listener"].join(timeout=5)
        done = status["done"]
        missing = [s.index for s in p.segments if s.scrapes and s.index not in done]
        bad = [w.exitcode for w in status["workers"] if w.exitcode not in (0, None)]
        if missing or bad:
            raise DemoError(
                f"the history workers did not finish (segments {missing}, exit codes {bad}); "
                f"see {self.log_path}"
            )
        scrapes = sum(v["scrapes"] for v in done.values())
        failed = sum(v["failed"] for v in done.values())
        if status["errors"]:
            raise DemoError(
                f"{len(status['errors'])} scrapes could not be stored: {status['errors'][0]}"
            )
        return {"scrapes": scrapes, "failed": failed}

    # -- database ---------------------------------------------------------------------------------

    def start_database(self) -> tuple[Any, bool]:
        from ..db.schema import load_longsang_schema
        from ..pgtemp import PostgresCluster

        cluster = PostgresCluster()
        self.cluster = cluster
        cluster.start()
        self.save_state(
            cluster={
                "root": str(cluster.root) if cluster.root else None,
                "data_dir": str(cluster.data_dir) if cluster.data_dir else None,
                "port": cluster.port,
                "backend": cluster.backend,
            }
        )
        self.track()
        url = cluster.create_database(world.DATABASE)
        vector = load_longsang_schema(url)
        with cluster.connect(world.DATABASE) as conn:
            if cluster.has_pg_stat_statements:
                conn.execute("CREATE SCHEMA IF NOT EXISTS extensions")
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA extensions")
        self.db_url = url
        return cluster, vector

    def build_database(self, p: world.Plan, *, snapshots: bool) -> dict[str, Any]:
        """Start the cluster, load and grow the LongSang database over the window (a
        snapshot into the store at each virtual day's end when `snapshots`)."""
        from ..collect import collect_db
        from ..config import load_settings
        from ..store import Store

        cluster, vector = self.start_database()
        rng = random.Random(p.seed)
        days = 0
        raw = Store(self.store_url) if snapshots else None
        store = LockedStore(raw, self.write_lock) if raw is not None else None
        try:
            settings = load_settings(env=self.demo_env()) if snapshots else None
            with cluster.connect(world.DATABASE) as conn:
                # the set-up is not the application's workload: not in pg_stat_statements
                untracked = "SET pg_stat_statements.track = 'none'"
                if cluster.has_pg_stat_statements:
                    conn.execute(untracked)
                world.seed_database(conn, p, vector=vector)
                if cluster.has_pg_stat_statements:
                    conn.execute("RESET pg_stat_statements.track")
                day = p.start
                while day < p.end:
                    world.grow_day(conn, p, day, rng, vector=vector)
                    if store is not None and settings is not None:
                        taken = day + timedelta(days=1) - timedelta(minutes=5)
                        collect_db(settings, store, clock=lambda taken=taken: taken)
                    day += timedelta(days=1)
                    days += 1
                if cluster.has_pg_stat_statements:
                    conn.execute(untracked)
                conn.execute("ANALYZE")
                from ..db.schema import LONGSANG_TABLES

                counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in LONGSANG_TABLES)
                rows = conn.execute(
                    f"SELECT {counts}, pg_database_size(current_database())"  # noqa: S608 - our names
                ).fetchone()
            self._wait_statistics(cluster)
        finally:
            if raw is not None:
                raw.close()
        return {
            "days": days,
            "rows": int(rows[0] or 0) if rows else 0,
            "bytes": int(rows[1] or 0) if rows else 0,
            "pgss": cluster.has_pg_stat_statements,
            "vector": vector,
        }

    def _wait_statistics(self, cluster: Any) -> None:
        """Statistics reach shared memory when a backend ends: wait until they show."""
        deadline = time.monotonic() + 10
        with cluster.connect(world.DATABASE) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                    (world.DEAD_TUPLES_TABLE,),
                ).fetchone()
                if row and (row[0] or 0) > 1000:
                    return
                time.sleep(0.1)

    # -- incidents and reports --------------------------------------------------------------------

    def find_outage(self, p: world.Plan) -> dict[str, Any]:
        from ..analysis import incidents
        from ..config import load_settings
        from ..store import Store

        settings = load_settings(env=self.demo_env())
        with Store(self.store_url) as store:
            found = incidents(store, p.start, p.end, settings.thresholds, kinds=("no_answer",))
        if found.empty:
            raise DemoError("the planted outage was not found in the collected history")
        row = found.sort_values("duration_s", ascending=False).iloc[0]
        start = row["start"].to_pydatetime()
        end = row["end"].to_pydatetime()
        minutes = round(float(row["duration_s"]) / 60)
        margin = timedelta(minutes=30)
        return {
            "start": (start - margin).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (end + margin).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": f"API outage {start:%Y-%m-%d}: no answer for {minutes} min",
            "severity": "SEV2",
            "found": f"{start:%Y-%m-%d %H:%M} - {end:%H:%M} UTC ({minutes} min)",
            "minutes": minutes,
        }

    def start_report(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one report in a child process (papermill, archive, index); see wait_report."""
        from ..reports import notebook_path

        try:
            notebook_path(kind)
        except Exception as exc:  # noqa: BLE001 - a missing notebook: said, the others go on
            return {"kind": kind, "answer": {"kind": kind, "status": "missing", "error": str(exc)}}
        _preload_reporting()  # once here, not once per child
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=_report_worker,
            args=(
                kind,
                params,
                self.demo_env(),
                str(self.outputs),
                child,
                self.child_log(f"report-{kind}"),
            ),
            name=f"lsops-demo-report-{kind}",
        )
        proc.start()
        child.close()
        self.procs.append(proc)
        with self.state_lock:
            reports = [*self.state.get("reports", []), proc.pid]
        self.save_state(reports=reports)
        self.log(f"report {kind} started (pid {proc.pid}): {params}")
        return {"kind": kind, "proc": proc, "conn": parent, "started": time.monotonic()}

    def wait_report(self, handle: dict[str, Any]) -> dict[str, Any]:
        if "answer" in handle:
            return dict(handle["answer"])
        kind, proc, conn = handle["kind"], handle["proc"], handle["conn"]
        answer: dict[str, Any] | None = None
        while answer is None:
            if conn.poll(0.2):
                try:
                    answer = conn.recv()
                except EOFError:
                    break
            elif not proc.is_alive() and not conn.poll(0):
                break
            self.track()
        proc.join(timeout=10)
        if answer is None:
            answer = {
                "kind": kind,
                "status": "error",
                "error": f"the report process ended without an answer (exit code {proc.exitcode})",
            }
        answer["wall_s"] = time.monotonic() - handle["started"]
        self.log(f"report {kind}: {answer}")
        return answer

    # -- the whole demo ---------------------------------------------------------------------------

    def run(self) -> Result:
        t0 = time.monotonic()
        try:
            p = world.plan(self.o.month, days=self.o.days, seed=self.o.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.install_signals()
        try:
            return self._run(p, t0)
        except Exception:
            self.log(traceback.format_exc())
            raise
        finally:
            self.cleanup()
            self.restore_signals()

    def _run(self, p: world.Plan, t0: float) -> Result:
        month_name = p.month_start.strftime("%B %Y")
        self.echo(
            f"lsops demo: {month_name}, {p.days} days of history "
            f"({p.start:%Y-%m-%d} .. {p.end - timedelta(seconds=1):%Y-%m-%d}) every 5 min, "
            f"seed {p.seed}"
        )
        for name, text in p.describe():
            self.echo(f"  planted {name:<8} {text}")
        with self.phase("prepare") as info:
            _check_postgres()
            self.prepare(fresh_store=True)
            info["detail"] = f"demo folder {_shown(self.dir)}"
        self.save_state(plan=_plan_dict(p))
        started = time.monotonic()
        status = self.start_history(p)
        with self.phase("database") as info:
            db = self.build_database(p, snapshots=True)
            info["detail"] = (
                f"PostgreSQL ({self.cluster.backend}), LongSang schema, {db['rows']:,} rows, "
                f"{db['bytes'] / 2**20:.0f} MiB, {db['days']} daily snapshots"
                + (", pg_stat_statements" if db["pgss"] else ", no pg_stat_statements")
            )
        # the DB report needs only the database and its snapshots: it starts now, while
        # the history is still being collected
        reports_started = time.monotonic()
        handles = [self.start_report("db-optimization", {})]
        hist = self.wait_history(p, status)
        self.timings["history"] = time.monotonic() - started
        self.echo(
            f"  {'history':<10} {_fmt_s(self.timings['history'])}  {hist['scrapes']:,} scrapes "
            f"({hist['failed']} without an answer), {len(p.segments)} API processes, "
            f"{len(status['workers'])} workers (alongside the database)"
        )
        tail_started = time.monotonic()
        with self.phase("incidents") as info:
            outage = self.find_outage(p)
            info["detail"] = f"outage found: {outage['found']}"
        handles.append(self.start_report("monthly-review", {"month": p.month}))
        handles.append(
            self.start_report(
                "postmortem", {k: outage[k] for k in ("start", "end", "title", "severity")}
            )
        )
        runs = [self.wait_report(h) for h in handles]
        self.timings["reports"] = time.monotonic() - tail_started
        self.timings["reports_all"] = time.monotonic() - reports_started
        parts = []
        for r in runs:
            mark = "ok" if r["status"] == "succeeded" else r["status"].upper()
            took = r.get("duration_s", r.get("wall_s", 0.0))
            early = " (run alongside the history)" if r["kind"] == "db-optimization" else ""
            parts.append(f"{r['kind']} {mark} {took:.0f} s{early}")
        self.echo(f"  {'reports':<10} {_fmt_s(self.timings['reports'])}  " + ", ".join(parts))
        for r in runs:
            if r["status"] != "succeeded":
                line = f"lsops: {r['kind']}: {r['status']}: {r.get('error')}"
                self.o.warn(" ".join(line.split()))
                self.log(line)
            else:
                self.log(f"{r['kind']}: {r['path']}")
        total = time.monotonic() - t0
        self.timings["total"] = total
        from ..reports import INDEX_HTML

        index = self.outputs / INDEX_HTML
        self.echo(f"  {'total':<10} {_fmt_s(total)}")
        if index.is_file():
            self.echo(f"Open {_shown(index)}  (file://{index})")
            self.echo("Explore the same data in JupyterLab: make lab  (lsops demo --lab)")
        ok = all(r["status"] == "succeeded" for r in runs)
        return Result(
            code=0 if ok else 1,
            index=index if index.is_file() else None,
            runs=runs,
            timings=dict(self.timings),
            postmortem=outage,
        )

    # -- lab --------------------------------------------------------------------------------------

    def lab(self) -> int:
        try:
            p = world.plan(self.o.month, days=self.o.days, seed=self.o.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        from ..reports import notebooks_dir

        self.install_signals()
        try:
            reuse = self.store_path.is_file()
            with self.phase("prepare") as info:
                _check_postgres()
                self.prepare(fresh_store=not reuse)
                info["detail"] = (
                    f"reusing the demo store {_shown(self.store_path)}"
                    if reuse
                    else "no demo store yet: building one"
                )
            started = time.monotonic()
            status = None if reuse else self.start_history(p)
            with self.phase("database") as info:
                db = self.build_database(p, snapshots=not reuse)
                info["detail"] = f"PostgreSQL with the LongSang database, {db['rows']:,} rows"
            if status is not None:
                hist = self.wait_history(p, status)
                self.timings["history"] = time.monotonic() - started
                self.echo(
                    f"  {'history':<10} {_fmt_s(self.timings['history'])}  {hist['scrapes']:,} scrapes"
                )
            env = self.demo_env()
            nbdir = notebooks_dir()
            command = self.o.lab_command or _jupyter_lab(nbdir)
            self.echo(
                "JupyterLab on "
                f"{_shown(nbdir)} with the demo's store and database (LSOPS_CONFIG={_shown(self.dir / CONFIG_FILE)}); "
                "stop it with Ctrl-C (twice) or File > Shut Down: the database stops with it."
            )
            return self._run_child(command, env)
        finally:
            self.cleanup()
            self.restore_signals()

    def _run_child(self, command: list[str], env: dict[str, str]) -> int:
        import subprocess

        try:
            child = subprocess.Popen(command, env=env)
        except OSError as exc:
            raise DemoError(f"cannot start {command[0]}: {exc.strerror}") from None
        # Ctrl-C goes to JupyterLab (it asks, or stops on a second one); we wait for it.
        # (Ignored only now: an ignored signal would stay ignored in the child.)
        with contextlib.suppress(Exception):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.save_state(lab=child.pid)

        def forward(signum: int, _frame: Any) -> None:
            with contextlib.suppress(OSError):
                child.send_signal(signum)

        with contextlib.suppress(Exception):
            signal.signal(signal.SIGTERM, forward)
            signal.signal(signal.SIGHUP, forward)
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    continue
        finally:
            if child.poll() is None:
                child.terminate()
                with contextlib.suppress(Exception):
                    child.wait(timeout=10)
                if child.poll() is None:
                    child.kill()


def _check_postgres() -> None:
    """Fail before anything starts when no PostgreSQL can be started here."""
    from ..pgtemp import PostgresUnavailable, find_bindir

    if find_bindir() is not None:
        return
    try:
        import pgserver  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        raise PostgresUnavailable(
            "the demo needs PostgreSQL: no server binaries found (install Debian's "
            "'postgresql' package or set LSOPS_PG_BINDIR) and no 'pgserver' wheel"
        ) from None


def _plan_dict(p: world.Plan) -> dict[str, Any]:
    def iso(value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "month": p.month,
        "start": iso(p.start),
        "end": iso(p.end),
        "days": p.days,
        "seed": p.seed,
        "scrapes": p.scrapes,
        "outage": [iso(t) for t in p.outage],
        "latency": [iso(t) for t in p.latency],
        "slow_endpoint": p.slow_endpoint,
        "cache": [iso(t) for t in p.cache],
        "memory": [iso(t) for t in p.memory],
        "restarts": [iso(t) for t in p.restarts],
        "segments": [
            {"start": iso(s.start), "end": iso(s.end), "scrapes": s.scrapes} for s in p.segments
        ],
    }


def _preload_reporting() -> None:
    """Import the report machinery in this process before forking report children (each
    would import it again)."""
    import jupyter_client  # noqa: F401
    import nbconvert  # noqa: F401
    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    from .. import reports  # noqa: F401


def _jupyter_lab(nbdir: Path) -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-lab")
    base = [str(exe)] if exe.is_file() else [sys.executable, "-m", "jupyterlab"]
    command = [*base, f"--ServerApp.root_dir={nbdir}"]
    if os.geteuid() == 0:  # containers: JupyterLab refuses root without it
        command.append("--allow-root")
    return command


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_demo(options: Options) -> Result:
    """Run the demo; DemoError / UsageError for what a user must fix; Interrupted."""
    return Demo(options).run()


def run_lab(options: Options) -> int:
    return Demo(options).lab()


def format_exception(exc: BaseException) -> str:
    line = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DemoError) else str(exc)
    return line.splitlines()[0] if line else type(exc).__name__


__all__ = [
    "DemoError",
    "Interrupted",
    "Options",
    "Result",
    "UsageError",
    "alive",
    "descendants",
    "format_exception",
    "run_demo",
    "run_lab",
]
