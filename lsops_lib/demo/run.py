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
4. *incidents*: `analysis.incidents` over the history finds the outage; the postmortem's
   window around it is `analysis.incident_window` (the rule `lsops incidents` uses).
5. *reports*: monthly review, DB optimization and postmortem, side by side in child
   processes (`reports.run_report`: papermill, archive, index).

Everything except the reports (which go to the configured outputs folder, `LSOPS_OUTPUTS`,
default `./outputs`) lives in the demo folder: `store.sqlite`, `lsops.toml` and
`lsops.env` (what `make lab` uses), `state.json` (the processes, ports and cluster of the
run in progress) and `logs/`. The cluster lives in a temporary folder removed at the end.
Every process started is stopped at the end, on Ctrl-C, SIGTERM or a failure.

The child processes run `workers` (history, reports) and are handled with `processes`;
`lsops demo --lab` is `lab`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
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

from .. import fmt
from . import alerts as demo_alerts
from . import backups, database, world
from .errors import DemoError, Interrupted, UsageError, format_exception
from .folder import DemoFolder
from .processes import Children
from .workers import History, LockedStore, ReportRun

DEFAULT_DIR = Path(".demo")
WORKERS = 2


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
    alerts: dict[str, Any] | None = None  # issue 11: what the outage notified


# --- the demo ------------------------------------------------------------------------------------


def fmt_seconds(seconds: float) -> str:
    """A phase's time, as the demo prints it (`  3.2 s`)."""
    return f"{seconds:5.1f} s"


class Demo:
    """One run of the demo (or of `--lab`, see `lab.py`): its folder, the processes it
    starts, the cluster, the phases."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.folder = DemoFolder(options.directory, options.outputs)
        self.cluster: Any = None
        self.db_url: str | None = None
        self.children = Children()  # what we start, and every process seen below us
        self.timings: dict[str, float] = {}
        self._signals: dict[int, Any] = {}
        self._interrupted = False
        self._signalled: int | None = None  # the signal taken, until the cleanup starts
        self._cleaned = False
        self.ctx = mp.get_context("fork")
        self.write_lock = self.ctx.Lock()

    # -- small helpers ------------------------------------------------------------------------

    def echo(self, text: str) -> None:
        self.o.echo(text)
        self.log(text)

    def log(self, text: str) -> None:
        self.folder.log(text)

    def save_state(self, **updates: Any) -> None:
        self.folder.save_state(**updates)

    def track(self) -> None:
        """Remember every descendant process (for the final sweep and state.json)."""
        self.stop_if_signalled()
        if self.children.track():
            self.save_state(descendants=sorted(self.children.seen))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        info: dict[str, Any] = {"detail": ""}
        started = time.monotonic()
        self.stop_if_signalled()
        self.log(f"phase {name}: start")
        yield info
        self.stop_if_signalled()
        elapsed = time.monotonic() - started
        self.timings[name] = elapsed
        self.echo(f"  {name:<10} {fmt_seconds(elapsed)}  {info['detail']}".rstrip())

    def demo_env(self) -> dict[str, str]:
        """The environment of everything the demo runs (see `DemoFolder.env`)."""
        return self.folder.env(self.db_url)

    # -- signals and cleanup ----------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._interrupted or self._cleaned:
            return  # already stopping: let the cleanup finish
        self._interrupted = True
        self._signalled = signum
        self.log(f"signal {signal.Signals(signum).name}: stopping (it landed in {_where(frame)})")
        raise Interrupted(signum)

    def stop_if_signalled(self) -> None:
        """Raise again the Interrupted of a signal taken earlier. A library that catches
        KeyboardInterrupt (to cancel its work, to retry) and goes on can swallow the one
        raised by `_on_signal`; the demo then stops here, at the next phase boundary or
        wait, instead of running to its end and ignoring every later signal."""
        if self._signalled is not None:
            self.log("the interrupt was swallowed where it landed: stopping now")
            raise Interrupted(self._signalled)

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
        self._signalled = None  # (and the one taken is not raised again: we are stopping)
        started = time.monotonic()
        with contextlib.suppress(Exception):
            self.track()
        # our children (history workers stop their API servers on SIGTERM; report children
        # die) with everything below them (kernels); then the cluster; then any leftover
        self.children.stop(self.log, grace_s=5.0)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.stop()
        self.children.sweep(self.log, grace_s=2.0)
        self._cleaned = True
        self.folder.remove_empty_child_logs()
        self.log(f"cleanup: done in {time.monotonic() - started:.1f} s")
        with contextlib.suppress(Exception):
            self.save_state(finished=datetime.now(UTC).isoformat(), running=False)
        self.folder.close()

    # -- prepare ----------------------------------------------------------------------------------

    def prepare(self, *, fresh_store: bool) -> None:
        """The demo folder, locked, with a new log, state.json, the store and settings.
        A store reused (`--lab`) keeps the settings the full demo wrote with it (its
        `[backups]` and `[logs]`); a fresh one starts from the base settings, the phases
        adding theirs."""
        folder = self.folder
        try:
            folder.create()
        except OSError as exc:
            raise UsageError(
                f"cannot create the demo folder {folder.dir}: {exc.strerror}"
            ) from None
        if not folder.lock():
            raise DemoError(f"another lsops demo is running in {folder.dir}")
        folder.open_log()
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
            log=str(folder.log_path),
        )
        if fresh_store:
            folder.remove_store()
        from ..store import Store

        Store(folder.store_url).close()  # the schema, before the workers open it
        folder.write_config(keep_added=not fresh_store)

    # -- history ----------------------------------------------------------------------------------

    def start_history(self, p: world.Plan) -> History:
        """The history workers, started (`.wait()` for them)."""
        return History(self, p, self.o.workers)

    # -- database ---------------------------------------------------------------------------------

    def start_database(self) -> tuple[Any, bool]:
        """The throwaway cluster with the LongSang database: (cluster, vector)."""
        from ..pgtemp import PostgresCluster

        cluster = PostgresCluster()
        self.cluster = cluster  # stopped by cleanup, even when it fails to start
        cluster.start()
        self.save_state(cluster=database.describe(cluster))
        self.track()
        self.db_url, vector = database.create_longsang(cluster)
        return cluster, vector

    def build_database(self, p: world.Plan, *, snapshots: bool) -> dict[str, Any]:
        """Start the cluster, load and grow the LongSang database over the window (a
        snapshot into the store at each virtual day's end when `snapshots`)."""
        from ..collect import collect_db
        from ..config import load_settings
        from ..store import Store

        cluster, vector = self.start_database()
        if not snapshots:
            return database.grow(cluster, p, vector=vector)
        raw = Store(self.folder.store_url)
        store = LockedStore(raw, self.write_lock)
        try:
            settings = load_settings(env=self.demo_env())

            def snapshot(taken: datetime) -> None:
                collect_db(settings, store, clock=lambda: taken)

            return database.grow(cluster, p, vector=vector, snapshot=snapshot)
        finally:
            raw.close()

    # -- incidents and reports --------------------------------------------------------------------

    def plant_sources(self, p: world.Plan) -> str:
        """Issue 10: the demo's Sentry stand-in, pm2 log files and `pm2 jlist`, collected
        into the store (`demo.sources`); the files stay in the demo folder's app-logs/."""
        from ..store import Store
        from . import sources

        folder = self.folder.dir / "app-logs"
        with Store(self.folder.store_url) as store:
            got = sources.plant(store, p, folder, seed=p.seed)
        self.folder.add_config("logs", sources.settings_toml(folder))
        return (
            f"{got['log_entries']:,} log entries ({shown(folder)}), "
            f"{got['sentry_issues']} Sentry issues, {got['pm2_samples']:,} pm2 samples"
        )

    def find_outage(self, p: world.Plan) -> dict[str, Any]:
        from ..analysis import incident_window, incidents
        from ..config import load_settings
        from ..store import Store

        settings = load_settings(env=self.demo_env())
        with Store(self.folder.store_url) as store:
            found = incidents(store, p.start, p.end, settings.thresholds, kinds=("no_answer",))
        if found.empty:
            raise DemoError("the planted outage was not found in the collected history")
        row = found.sort_values("duration_s", ascending=False).iloc[0]
        start = row["start"].to_pydatetime()
        end = row["end"].to_pydatetime()
        minutes = round(float(row["duration_s"]) / 60)
        # the postmortem's window: the one rule `lsops incidents` and the review use too
        window = incident_window(row["start"], row["end"], settings.thresholds)
        return {
            "start": window[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": window[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "title": f"API outage {start:%Y-%m-%d}: no answer for {minutes} min",
            "severity": "SEV2",
            "found": f"{start:%Y-%m-%d %H:%M} - {end:%H:%M} UTC ({minutes} min)",
            "minutes": minutes,
        }

    def start_report(self, kind: str, params: dict[str, Any]) -> ReportRun:
        """One report, started in a child process (`.wait()` for its answer)."""
        return ReportRun(self, kind, params)

    # -- the whole demo ---------------------------------------------------------------------------

    def plan(self) -> world.Plan:
        """The plan of the options (UsageError for a bad month or number of days)."""
        try:
            return world.plan(self.o.month, days=self.o.days, seed=self.o.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def run(self) -> Result:
        t0 = time.monotonic()
        p = self.plan()
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
            check_postgres()
            self.prepare(fresh_store=True)
            info["detail"] = f"demo folder {shown(self.folder.dir)}"
        self.save_state(plan=_plan_dict(p))
        started = time.monotonic()
        history = self.start_history(p)
        with self.phase("database") as info:
            db = self.build_database(p, snapshots=True)
            info["detail"] = (
                f"PostgreSQL ({self.cluster.backend}), LongSang schema, {db['rows']:,} rows, "
                f"{db['bytes'] / 2**20:.0f} MiB, {db['days']} daily snapshots"
                + (", pg_stat_statements" if db["pgss"] else ", no pg_stat_statements")
            )
        backups.run(self)  # issue 12: three dumps judged, the good one restored (a phase)
        # the DB report needs only the database and its snapshots: it starts now, while
        # the history is still being collected
        reports_started = time.monotonic()
        handles = [self.start_report("db-optimization", {})]
        hist = history.wait()
        self.timings["history"] = time.monotonic() - started
        self.echo(
            f"  {'history':<10} {fmt_seconds(self.timings['history'])}  {hist['scrapes']:,} scrapes "
            f"({hist['failed']} without an answer), {len(p.segments)} API processes, "
            f"{len(history.workers)} workers (alongside the database)"
        )
        tail_started = time.monotonic()
        with self.phase("errors") as info:  # issue 10: Sentry, the pm2 logs, pm2 jlist
            info["detail"] = self.plant_sources(p)
        with self.phase("incidents") as info:
            outage = self.find_outage(p)
            info["detail"] = f"outage found: {outage['found']}"
        # issue 11: the outage's alerts, into a loopback webhook and SMTP server (before the
        # reports that read the alert history: the review's alerts, the postmortem's Detection)
        told = demo_alerts.run(self, outage)
        self.save_state(alerts={k: told[k] for k in ("notifications", "mails", "folder")})
        handles.append(self.start_report("monthly-review", {"month": p.month}))
        handles.append(
            self.start_report(
                "postmortem", {k: outage[k] for k in ("start", "end", "title", "severity")}
            )
        )
        runs = [h.wait() for h in handles]
        self.timings["reports"] = time.monotonic() - tail_started
        self.timings["reports_all"] = time.monotonic() - reports_started
        parts = []
        for r in runs:
            mark = "ok" if r["status"] == "succeeded" else r["status"].upper()
            if r["status"] == "succeeded" and r.get("warnings"):  # as index.html says it
                mark = f"partial ({fmt.counted(len(r['warnings']), 'warning')})"
            took = r.get("duration_s", r.get("wall_s", 0.0))
            early = " (run alongside the history)" if r["kind"] == "db-optimization" else ""
            parts.append(f"{r['kind']} {mark} {took:.0f} s{early}")
        self.echo(f"  {'reports':<10} {fmt_seconds(self.timings['reports'])}  " + ", ".join(parts))
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

        index = self.folder.outputs / INDEX_HTML
        self.echo(f"  {'total':<10} {fmt_seconds(total)}")
        if index.is_file():
            self.echo(f"Open {shown(index)}  (file://{index})")
            from .lab import lab_hint  # here: lab imports this module

            self.echo(lab_hint(self.folder.dir))
        ok = all(r["status"] == "succeeded" for r in runs)
        return Result(
            code=0 if ok else 1,
            index=index if index.is_file() else None,
            runs=runs,
            timings=dict(self.timings),
            postmortem=outage,
            alerts=told,
        )


def _where(frame: Any) -> str:
    """`file:line in function` of the innermost frame a signal interrupted (the demo log
    says where an interrupt landed, in case something there swallowed it)."""
    if frame is None:
        return "an unknown place"
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{frame.f_lineno} in {code.co_name}"


def check_postgres() -> None:
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


def shown(path: Path) -> str:
    """A path as the console shows it: relative to the working directory when inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_demo(options: Options) -> Result:
    """Run the demo; DemoError / UsageError for what a user must fix; Interrupted."""
    return Demo(options).run()


__all__ = [
    "Demo",
    "DemoError",
    "Interrupted",
    "Options",
    "Result",
    "UsageError",
    "format_exception",
    "run_demo",
]
