"""`lsops collect --once | --every 5m [--all-targets] [--quick] [--db] [--json]`.

Exit codes: 0 the API answered and the scrape is stored; 1 the API did not answer
properly (the failure IS stored) or the store/database could not be written/read;
2 bad usage or configuration (bad --every, neither or both of --once/--every, an
unreadable config, a store written by a newer lsops). Errors are one line on stderr.

`--once --json` (one target) prints ONE JSON document: the scrape's (`scrape_summary`), with
the database snapshot (`db`, with --db) and the runs of the other sources (`source_runs`,
a list) inside it. `--every --json` prints JSON Lines: each scrape, snapshot and source run
one object a line (`{"db": ..., "ts"}`, `{"source_run": ..., "target", "ts"}`). A failed
snapshot is a `db` too: {"database", "ok": false, "error"} (a taken one has "ok": true).
In a loop, each scrape's `skipped_ticks` says how many ticks of the grid the round before
it ran over (a slow source); stderr says it once while rounds keep running late.

`--all-targets`: each round scrapes every target of lsops.toml concurrently
(`collect.collect_round`), one summary line (or, with --json, one JSON object per line)
per target in the order of lsops.toml. `--once` exits 0 when every target answered and
was stored, 1 when any did not answer properly (every failure stored), 2 as above.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from .. import fmt
from ..exceptions import ConfigError, LsopsError, ParameterError, StoreVersionError
from ..models import Scrape
from ..times import parse_duration, utcnow
from . import err_console, fail, main, pass_app, render, run_command, stopping
from .render import emit, line


def scrape_summary(scrape: Scrape, stored: bool) -> dict[str, Any]:
    """What one scrape says, for the summary line and --json."""
    metrics, health = scrape.metrics, scrape.health
    return {
        "ts": scrape.collected_at,
        "target": scrape.target,
        "scrape_id": scrape.id,
        "ok": scrape.ok,
        "stored": stored,
        "health": health.status if health else "NO_ANSWER",
        "http_status": health.http_status if health else None,
        "endpoints": len(metrics.endpoints) if metrics else None,
        "requests_total": metrics.requests_total if metrics else None,
        "duration_ms": round(scrape.duration_ms, 1),
        "failures": [
            {"part": f.part, "kind": f.kind, "message": f.message, "http_status": f.http_status}
            for f in scrape.failures
        ],
    }


def _log_instant(value: Any) -> str:
    """The summary line's instant: ISO 8601 in UTC ("Z"), one token, as log lines are."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_line(s: Any) -> str:
    """One scrape (a `scrape_summary`) as one log line: instant, target, OK/FAILED, ..."""
    parts = [_log_instant(s["ts"]), s["target"], "OK" if s["ok"] else "FAILED"]
    parts.append(f"health {s['health']}")
    if s["endpoints"] is not None:
        parts.append(
            f"{fmt.counted(s['endpoints'], 'endpoint')}, "
            f"{fmt.counted(s['requests_total'], 'request')}"
        )
    for f in s["failures"]:
        parts.append(f"{f['part']}: {f['kind']}")
    parts.append(fmt.ms(s["duration_ms"]))
    parts.append("stored" if s["stored"] else "NOT stored")
    return "  ".join(parts)


def _scrape_view(s: Any) -> None:
    line(summary_line(s))


def _print_scrape(scrape: Scrape, stored: bool, as_json: bool, skipped: int = 0) -> None:
    """One scrape of a loop or of a round: one JSON object per line, or its line;
    `skipped_ticks`: the ticks of the grid the round before it ran over."""
    render.stream(
        {**scrape_summary(scrape, stored), "skipped_ticks": skipped}, as_json, _scrape_view
    )


class Late:
    """The rounds of a loop that ran over ticks of its grid (a slow source, QA 20): said
    on stderr as an `Outage` is (the first late round, a reminder every hour, one line
    when rounds keep their ticks again), and the ticks skipped handed to the next round's
    scrapes (`skipped_ticks`, every one). Not said on stderr while the store fails (its
    retries are why the round ran over, and its own line says so), nor for a round less
    than NOTICE_S over its period (a busy host's hiccup on a sub-second grid)."""

    NOTICE_S = 1.0

    def __init__(self, every: str, writes: Outage) -> None:
        self.every, self.writes = every, writes
        self.period_s = parse_duration(every).total_seconds()
        self.outage = Outage(
            f"the --every {every} grid", noun="late round", still="still late", again="kept again"
        )
        self.skipped = 0  # for the next round's scrapes

    def late(self, took_s: float, skipped: int) -> None:
        self.skipped = skipped
        if not self.writes.rounds and took_s >= self.period_s + self.NOTICE_S:
            ticks = fmt.counted(skipped, "tick")
            self.outage.failed(
                f"round took {fmt.ms(took_s * 1000)}: {ticks} of the --every {self.every} "
                "grid skipped"
            )

    def taken(self) -> int:
        """The ticks skipped before this round (0 when it kept its tick); said once over."""
        skipped, self.skipped = self.skipped, 0
        if not skipped:
            self.outage.ok()
        return skipped


REMIND_S = 3600.0  # a failure that lasts is said again this often


class Outage:
    """A failure that repeats every round, said once while it lasts: its first line, then
    a reminder every REMIND_S with the count of failed rounds, and one line when it is
    over (a store that is down for an hour of 1-minute rounds: 2 lines, not 120)."""

    def __init__(
        self,
        what: str,
        *,
        clock: Any = time.monotonic,
        noun: str = "failed round",
        still: str = "still failing",
        again: str = "working again",
    ) -> None:
        self.what = what
        self.clock = clock
        self.noun, self.still, self.again = noun, still, again
        self.rounds = 0
        self.said_at = 0.0

    def _say(self, text: str) -> None:
        err_console.print(" ".join(text.split())[:600], markup=False, soft_wrap=True)

    def failed(self, message: str) -> None:
        now = self.clock()
        self.rounds += 1
        if self.rounds == 1:
            self._say(f"lsops: {message}")
            self.said_at = now
        elif now - self.said_at >= REMIND_S:
            self._say(f"lsops: {message} ({self.still}: {fmt.counted(self.rounds, 'round')})")
            self.said_at = now

    def ok(self) -> None:
        if self.rounds:
            failed = fmt.counted(self.rounds, self.noun)
            self._say(f"lsops: {self.what}: {self.again} after {failed}")
        self.rounds = 0


def _open_store(url: str, stop: threading.Event) -> Any:
    """The store at `url`, or None when a stop signal came before it was open: its opening
    (a host that does not answer: up to the connect timeout; a migration: minutes) runs on
    a thread the signal does not wait for, so SIGTERM/SIGINT at start-up exits 0 at once,
    never 1 with the connect timeout's error 10 s later (QA 23). A migration left there is
    resumed by the next open (README). A newer store: exit 2, as ever."""
    from ..store import Store

    opened: dict[str, Any] = {}

    def open_store() -> None:
        try:
            opened["store"] = Store(url)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            opened["error"] = exc

    worker = threading.Thread(target=open_store, name="lsops-open-store", daemon=True)
    worker.start()
    while worker.is_alive():
        if stop.wait(0.05):
            return None
    if stop.is_set():
        if "store" in opened:
            opened["store"].close()
        return None
    error = opened.get("error")
    if isinstance(error, StoreVersionError):
        fail(str(error), 2)
    if error is not None:
        raise error
    return opened["store"]


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT set the returned event from here on (from the process's start when
    run as `lsops collect`: cli/stopping.py): before the first scrape, collect exits 0;
    during one, it finishes the write and exits 0. Handlers put back when the command ends."""
    if stopping.install():
        click.get_current_context().call_on_close(stopping.uninstall)
    return stopping.STOP


@main.command("collect")
@click.option("--once", is_flag=True, help="Scrape once and exit (for cron).")
@click.option(
    "--every", metavar="DURATION", help="Scrape on a grid, e.g. 5m, until SIGTERM/SIGINT."
)
@click.option("--quick", is_flag=True, help="Quick health check (no ?deep=true).")
@click.option(
    "--db", "with_db", is_flag=True, help="Also snapshot table sizes and pg_stat_statements."
)
@click.option(
    "--database", metavar="NAME", help="Named database for --db (default: the configured one)."
)
@click.option(
    "--all-targets",
    is_flag=True,
    help="Each round scrapes every target of lsops.toml, concurrently.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a summary line.")
@pass_app
def collect_command(
    app: Any,
    once: bool,
    every: str | None,
    quick: bool,
    with_db: bool,
    database: str | None,
    all_targets: bool,
    as_json: bool,
) -> None:
    """Scrape /api/health and /api/metrics into the metrics store."""
    stop = _stop_on_signals()
    from ..api import Client
    from ..collect import collect_forever, collect_once
    from ..store.schema import in_memory

    with run_command(usage=2, failure=1):
        if once == (every is not None):
            raise ParameterError("give exactly one of --once or --every DURATION (e.g. --every 5m)")
        if all_targets and app.target is not None:
            raise ParameterError("--all-targets collects every target: drop --target NAME")
        if database is not None and not with_db:  # QA 17: it was ignored, exit 0
            raise ParameterError("--database NAME names the database of --db: add --db")
        period = parse_duration(every) if every is not None else None
        settings = app.settings()
        if in_memory(settings.store_url):
            raise ConfigError(
                f"the store {settings.store_url} is held in memory: every scrape would be lost "
                "when collect exits; give a file (sqlite:///PATH) or postgresql://"
            )
        if with_db:
            settings.database(database)  # a missing database is a configuration error: exit 2 now
        from ..sources.settings import source_settings

        source_settings(settings)  # issue 10: a malformed [sentry]/[logs]/[pm2]: exit 2 now
        from ..alerts import alert_settings

        alert_settings(settings)  # issue 11: a malformed [alerts]: exit 2 now, not each round
        if stop.is_set():
            return  # stopped before the first scrape: exit 0
        if all_targets:
            _collect_all(settings, every, not quick, with_db, database, as_json, stop)
            return
        store = _open_store(settings.store_url, stop)
        if store is None:  # stopped while the store opened
            return  # before the first scrape: exit 0
        client = Client.from_target(settings.target)
        client.stop = stop
        deep = not quick
        target = settings.target.name
        try:
            if period is None:
                scrape = collect_once(client, store, target=target, deep=deep)
                # --json: ONE document, the scrape's, the database snapshot and the source
                # runs inside it (`db`, `source_runs`); the text: a line each as they come
                doc = scrape_summary(scrape, True)
                if not as_json:
                    render.show(doc, _scrape_view)
                db_error = (
                    _db_snapshot(settings, store, database, as_json, into=doc) if with_db else None
                )
                source_error = _other_sources(settings, store, target, as_json, into=doc, stop=stop)
                if not stop.is_set():
                    _alerts_hook(settings, store, [target])  # issue 11
                if as_json:
                    emit(doc, True, _scrape_view)
                if not scrape.ok:
                    first = scrape.failures[0] if scrape.failures else None
                    reason = f"{first.part}: {first.message}" if first else "incomplete answer"
                    fail(f"the API did not answer properly (failure stored): {reason}", 1)
                if db_error is not None:
                    fail(db_error, 1)
                if source_error is not None:
                    fail(source_error, 1)
                return

            writes, alerting = Outage("the store"), Outage("alerts")
            snapshots, late = Outage("the database snapshot"), Late(every, writes)

            def on_scrape(scrape: Scrape, stored: bool) -> None:
                _print_scrape(scrape, stored, as_json, late.taken())
                if stored:
                    writes.ok()
                _after_round(settings, store, target, [target], alerting, snapshots, stop,
                             with_db=with_db, database=database, as_json=as_json)  # fmt: skip

            code = collect_forever(
                client,
                store,
                period,
                stop=stop,
                target=target,
                deep=deep,
                on_scrape=on_scrape,
                on_error=lambda exc: writes.failed(str(exc)),
                on_late=late.late,
            )
            raise SystemExit(code)
        finally:
            client.close()
            store.close()


def _collect_all(
    settings: Any,
    every: str | None,
    deep: bool,
    with_db: bool,
    database: str | None,
    as_json: bool,
    stop: threading.Event,
) -> None:
    """`--all-targets`: rounds over every configured target (see the module's docstring)."""
    from ..collect import collect_round, collect_rounds_forever, target_clients

    period = parse_duration(every) if every is not None else None
    with target_clients(settings.targets.values()) as clients:  # a bad URL: exit 2
        for client in clients.values():
            client.stop = stop  # a stop request ends a hanging target's retries
        store = _open_store(settings.store_url, stop)
        if store is None:  # stopped while the store opened
            return  # before the first round: exit 0
        try:
            stored: dict[str, bool] = {}

            def on_scrape(scrape: Scrape, ok: bool) -> None:
                stored[scrape.id] = ok

            def print_round(scrapes: list[Scrape], skipped: int = 0) -> None:
                for scrape in scrapes:  # in the order of lsops.toml, not of completion
                    _print_scrape(scrape, stored.pop(scrape.id, False), as_json, skipped)

            if period is None:
                refused: list[Exception] = []
                scrapes = collect_round(
                    clients, store, deep=deep, on_scrape=on_scrape, on_error=refused.append
                )
                print_round(scrapes)
                db_error = _db_snapshot(settings, store, database, as_json) if with_db else None
                source_error = _other_sources(  # issue 10: under the selected target
                    settings, store, settings.target.name, as_json, stop=stop
                )
                if not stop.is_set():
                    _alerts_hook(settings, store, list(clients))  # issue 11
                failed = [s for s in scrapes if not s.ok]
                if failed:
                    reasons = "; ".join(_reason(s) for s in failed)
                    fail(
                        f"{len(failed)} of {len(scrapes)} targets did not answer properly "
                        f"(failures stored): {reasons}",
                        1,
                    )
                if refused:
                    fail(str(refused[0]), 1)
                if db_error is not None:
                    fail(db_error, 1)
                if source_error is not None:
                    fail(source_error, 1)
                return

            writes, alerting = Outage("the store"), Outage("alerts")
            snapshots, late = Outage("the database snapshot"), Late(every, writes)
            round_errors: list[str] = []

            def on_round(scrapes: list[Scrape]) -> None:
                print_round(scrapes, late.taken())
                if round_errors:  # the store failed this round: one line per outage
                    writes.failed(round_errors[0])
                else:
                    writes.ok()
                round_errors.clear()
                _after_round(settings, store, settings.target.name, list(clients), alerting,
                             snapshots, stop, with_db=with_db, database=database,
                             as_json=as_json)  # fmt: skip

            code = collect_rounds_forever(
                clients,
                store,
                period,
                stop=stop,
                deep=deep,
                on_scrape=on_scrape,
                on_round=on_round,
                on_error=lambda exc: round_errors.append(str(exc)),
                on_late=late.late,
            )
            raise SystemExit(code)
        finally:
            store.close()


def _after_round(
    settings: Any,
    store: Any,
    target: str,
    targets: list[str],
    alerting: Outage,
    snapshots: Outage,
    stop: threading.Event,
    *,
    with_db: bool,
    database: str | None,
    as_json: bool,
) -> None:
    """What follows each round of a loop: the --db snapshot (its failures said by
    `snapshots`), the other sources (stored under `target`), the alert rules over
    `targets` (their failures said by `alerting`). A stop request (`stop`: SIGTERM/SIGINT)
    ends it: what is not started yet is left for the next run (README: "stops it after
    the write in progress")."""
    if with_db and not stop.is_set():
        error = _db_snapshot(settings, store, database, as_json)
        if error:
            snapshots.failed(error)
        else:
            snapshots.ok()
    if not stop.is_set():
        _other_sources(settings, store, target, as_json, stop=stop)  # issue 10
    if not stop.is_set():
        _alerts_hook(settings, store, targets, alerting)  # issue 11


def _reason(scrape: Scrape) -> str:
    first = scrape.failures[0] if scrape.failures else None
    why = f"{first.part}: {first.kind}" if first else "incomplete answer"
    return f"{scrape.target} ({why})"


def _db_snapshot(
    settings: Any,
    store: Any,
    database: str | None,
    as_json: bool,
    *,
    into: dict[str, Any] | None = None,
) -> str | None:
    """One --db snapshot; returns an error line instead of raising (ConfigError aside).
    Printed as one item of a stream, or (`into`: the document of `collect --once`) its
    key `db`: with --json printed with it, else its line now. A failed one is printed
    too: {"database", "ok": false, "error"} (a taken one: "ok": true)."""
    from ..collect import collect_db
    from ..urls import masked

    try:
        result = {**collect_db(settings, store, database=database), "ok": True}
        error = None
    except ConfigError:
        raise
    except LsopsError as exc:
        error = masked(" ".join(str(exc).split()), settings.secrets())
        name = database or settings.database_name or "default"
        result = {"database": name, "ok": False, "error": error}
    data = {"db": result}
    if into is not None:
        into.update(data)
        if not as_json:
            render.show(data, _db_view)
    else:  # a line of its own: when it was taken (a round's, not a target's)
        render.stream({**data, "ts": utcnow()}, as_json, _db_view)
    return None if error is None else f"database snapshot failed: {error}"


def _db_view(d: Any) -> None:
    db = d["db"]
    if not db.get("ok", True):  # collect_db's own result: a snapshot taken
        line(f"database {db['database']}: FAILED: {db['error']}", style="red")
        return
    text = f"database {db['database']}: {fmt.counted(db['tables'], 'table')}"
    if db["queries_error"]:
        text += f" (queries: {db['queries_error']})"
    else:
        text += f", {fmt.counted(db['queries'], 'query', 'queries')}"
        if db.get("queries_hidden"):
            hidden = fmt.counted(db["queries_hidden"], "statement")
            text += f" ({hidden} of other roles hidden from this role: not stored)"
    line(text)


# --- issue 11: alerts after every collection round -------------------------------------------


def _alerts_hook(
    settings: Any, store: Any, targets: list[str], outage: Outage | None = None
) -> None:
    """Evaluate the alert rules after a round (lsops_lib.alerts.evaluate.after_round):
    never raises, never changes the exit code; failures are one line on stderr (in a
    loop, `outage`: once while they last)."""
    from ..alerts.evaluate import after_round

    failed: list[str] = []

    def report(message: str) -> None:
        if outage is None:
            err_console.print(f"lsops: alerts: {message}", markup=False, soft_wrap=True)
        elif not failed:
            outage.failed(f"alerts: {message}")
        failed.append(message)

    after_round(store, settings, targets, on_error=report)
    if outage is not None and not failed:
        outage.ok()


# --- issue 10: the other sources (Sentry, the logs, pm2) after each scrape or round ------------


def _other_sources(
    settings: Any,
    store: Any,
    target: str,
    as_json: bool,
    *,
    into: dict[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> str | None:
    """Collect the configured sources (`collect.collect_other_sources`): one line each
    (with --json one object each: {"source_run": {source, ok, items, error}}); `into`: the
    document of `collect --once`, whose list `source_runs` they are (with --json printed
    with it, else a line each now). Returns the line saying which did not answer (exit 1
    with --once), None when all did or none is configured. A malformed
    [sentry]/[logs]/[pm2] section is a ConfigError (exit 2). `stop` set: the sources not
    started yet are not run."""
    from ..collect import collect_other_sources

    results = collect_other_sources(settings, store, target=target, stop=stop)
    runs = [result.as_dict() for result in results]
    if into is not None:
        into["source_runs"] = runs
        for run in runs if not as_json else ():
            render.show(run, _run_view, at="source_runs[]")
    else:
        for run in runs:  # a line of its own: which target's round, when
            render.stream(
                {"source_run": run, "target": target, "ts": utcnow()}, as_json, _source_view
            )
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    names = ", ".join(r.source for r in failed)
    return f"{len(failed)} of {len(results)} sources did not answer (failure recorded): {names}"


def _source_view(d: Any) -> None:
    _run_view(d["source_run"])


def _run_view(r: Any) -> None:
    if r["ok"]:
        note = f" ({r['note']})" if r.get("note") else ""
        line(f"{r['source']}: OK, {fmt.integer(r['items'])} stored{note}")
    else:
        said = str(r["error"])  # "sentry: cannot reach ..." (SourceError): the name once
        said = said.removeprefix(f"{r['source']}: ")
        line(f"{r['source']}: FAILED (recorded): {said}", style="red")
