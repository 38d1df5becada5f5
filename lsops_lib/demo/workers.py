"""The demo's child processes (forked), both sides: the history workers, which collect
segments of the plan from simulated APIs into the store (`History` starts, follows and
waits for them), and the report workers, which run one report each (`ReportRun`). The
store is shared by these processes through `LockedStore`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import world
from .errors import DemoError
from .processes import child_output, child_signals, reap_descendants

if TYPE_CHECKING:
    from .run import Demo


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

    def pack_deferred(self) -> int:
        with self._lock:
            return int(self._store.pack_deferred())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


# --- history -------------------------------------------------------------------------------


def collect_segment(
    store: Any, p: world.Plan, segment: world.Segment, events: Any
) -> dict[str, Any]:  # pragma: no cover - runs in a child process
    """Serve one segment with its own simulated API process and scrape it every 5 virtual
    minutes with the collector's loop (`collect_forever`, its sleep advancing the clock).

    Reports to the parent on `events`: ("port", pid, segment, port) when the API listens,
    ("error", pid, segment, text) for each scrape that could not be stored."""
    from ..api import Client
    from ..collect import collect_forever
    from ..sim import SimClock, SimulatedAPI

    clock = SimClock(world.first_tick(segment.start))
    api = SimulatedAPI(world.segment_scenario(p, segment), clock=clock, restart_delay_s=0.05)
    api.start()
    events.put(("port", os.getpid(), segment.index, api.port))
    stop = threading.Event()
    done = {"finished": False, "scrapes": 0, "failed": 0, "errors": 0}
    cpu_started = time.process_time()  # this process's CPU: collector and API threads

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
    done["cpu_s"] = round(time.process_time() - cpu_started, 2)  # (the demo's log)
    return done


def history_worker(
    store_url: str,
    p: world.Plan,
    tasks: Any,
    events: Any,
    lock: Any,
    log: str | None = None,
) -> None:  # pragma: no cover - runs in a child process (tests run it through the CLI)
    """Collect the segments from `tasks` until a None; ("done", pid, segment, figures) on
    `events` after each."""
    child_signals()  # collect_forever stops at the next scrape on SIGTERM/SIGINT
    child_output(log)
    from ..store import Store

    raw = Store(store_url)
    store = LockedStore(raw, lock)
    try:
        while True:
            segment = tasks.get()
            if segment is None:
                break
            # days of scrapes in seconds: packed once at the segment's end, not at every
            # hour it leaves (Store.defer_packing; the reads answer the same)
            store.defer_packing()
            done = collect_segment(store, p, segment, events)
            if done["finished"]:
                store.pack_deferred()
            events.put(("done", os.getpid(), segment.index, done))
            if not done["finished"]:
                break  # stopped by a signal
    finally:
        raw.close()


class History:
    """The history workers of one demo: `workers` processes (2 by default) taking the
    plan's segments, longest first, from a queue; their events (ports, segments done,
    store errors) are followed by a thread into the demo's log and state.json."""

    def __init__(self, demo: Demo, p: world.Plan, workers: int) -> None:
        self.demo = demo
        self.plan = p
        self.done: dict[int, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.ports: list[int] = []
        ctx = demo.ctx
        self.tasks = ctx.Queue()
        self.events = ctx.Queue()
        for segment in sorted(p.segments, key=lambda s: -s.scrapes):
            if segment.scrapes:
                self.tasks.put(segment)
        n = max(1, min(workers, len(p.segments)))
        for _ in range(n):
            self.tasks.put(None)
        self.workers: list[Any] = []
        for i in range(n):
            proc = ctx.Process(
                target=history_worker,
                args=(
                    demo.folder.store_url,
                    p,
                    self.tasks,
                    self.events,
                    demo.write_lock,
                    demo.folder.child_log(f"history-{i}"),
                ),
                name=f"lsops-demo-history-{i}",
                daemon=True,
            )
            proc.start()
            demo.children.add(proc)
            self.workers.append(proc)
        demo.save_state(workers=[w.pid for w in self.workers])
        self.listener = threading.Thread(target=self._listen, name="lsops-demo-events", daemon=True)
        self.listener.start()

    def _listen(self) -> None:
        demo = self.demo
        draining = False
        while True:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                if draining:
                    return
                # a worker that exited has flushed what it sent: one more pass reads the
                # events that arrived between this timeout and its exit
                draining = not any(w.is_alive() for w in self.workers)
                continue
            except (EOFError, OSError, ValueError):
                return
            kind, pid, segment, value = event
            if kind == "port":
                self.ports.append(value)
                demo.save_state(api_ports=list(self.ports))
                demo.log(f"segment {segment}: simulated API on 127.0.0.1:{value} (worker {pid})")
            elif kind == "done":
                self.done[segment] = value
                demo.log(f"segment {segment}: {value}")
            elif kind == "error":
                self.errors.append(value)
                demo.log(f"segment {segment}: store error: {value}")

    def wait(self) -> dict[str, Any]:
        """Wait for the workers: {scrapes, failed}; DemoError when a segment is missing,
        a worker failed or a scrape could not be stored."""
        for worker in self.workers:
            while worker.is_alive():
                worker.join(timeout=0.2)
                self.demo.track()
        self.listener.join(timeout=5)
        done = self.done
        missing = [s.index for s in self.plan.segments if s.scrapes and s.index not in done]
        bad = [w.exitcode for w in self.workers if w.exitcode not in (0, None)]
        if missing or bad:
            raise DemoError(
                f"the history workers did not finish (segments {missing}, exit codes {bad}); "
                f"see {self.demo.folder.log_path}"
            )
        scrapes = sum(v["scrapes"] for v in done.values())
        failed = sum(v["failed"] for v in done.values())
        if self.errors:
            raise DemoError(f"{len(self.errors)} scrapes could not be stored: {self.errors[0]}")
        return {"scrapes": scrapes, "failed": failed}


# --- reports -------------------------------------------------------------------------------


def report_worker(
    kind: str,
    params: dict[str, Any],
    env: dict[str, str],
    outputs: str,
    conn: Any,
    log: str | None = None,
) -> None:  # pragma: no cover - runs in a child process
    """Run one report (papermill, archive, index) with the demo's environment; its run
    (kind, key, status, path, error, duration_s) or the error goes back on `conn`."""
    child_signals()
    child_output(log)
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
                "warnings": list(run.warnings),  # a succeeded run with them is partial
                "duration_s": run.duration_s,
            }
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        traceback.print_exc()
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        conn.send({"kind": kind, "status": "error", "error": line})
    finally:
        reap_descendants()  # the kernel is gone before we say we are done
        conn.close()


def preload_reporting() -> None:
    """Import the report machinery in this process before forking report children (each
    would import it again)."""
    import jupyter_client  # noqa: F401
    import nbconvert  # noqa: F401
    import nbformat  # noqa: F401
    import papermill  # noqa: F401

    from ..reports import run  # noqa: F401 - the package itself imports nothing


class ReportRun:
    """One report run in a child process (papermill, archive, index), from the demo."""

    def __init__(self, demo: Demo, kind: str, params: dict[str, Any]) -> None:
        from ..reports import notebook_path

        self.demo = demo
        self.kind = kind
        self.answer: dict[str, Any] | None = None
        self.started = time.monotonic()
        try:
            notebook_path(kind)
        except Exception as exc:  # noqa: BLE001 - a missing notebook: said, the others go on
            self.answer = {"kind": kind, "status": "missing", "error": str(exc)}
            return
        preload_reporting()  # once here, not once per child
        self.conn, child = demo.ctx.Pipe(duplex=False)
        self.proc = demo.ctx.Process(
            target=report_worker,
            args=(
                kind,
                params,
                demo.demo_env(),
                str(demo.folder.outputs),
                child,
                demo.folder.child_log(f"report-{kind}"),
            ),
            name=f"lsops-demo-report-{kind}",
        )
        self.proc.start()
        child.close()
        demo.children.add(self.proc)
        demo.folder.append_state("reports", self.proc.pid)
        demo.log(f"report {kind} started (pid {self.proc.pid}): {params}")
        self.started = time.monotonic()

    def wait(self) -> dict[str, Any]:
        """The run's answer: kind, status, key, path, error, warnings, duration_s, wall_s."""
        if self.answer is not None:
            return dict(self.answer)
        proc, conn = self.proc, self.conn
        answer: dict[str, Any] | None = None
        while answer is None:
            if conn.poll(0.2):
                try:
                    answer = conn.recv()
                except EOFError:
                    break
            elif not proc.is_alive() and not conn.poll(0):
                break
            self.demo.track()
        proc.join(timeout=10)
        if answer is None:
            answer = {
                "kind": self.kind,
                "status": "error",
                "error": f"the report process ended without an answer (exit code {proc.exitcode})",
            }
        answer["wall_s"] = time.monotonic() - self.started
        self.demo.log(f"report {self.kind}: {answer}")
        return answer
