"""The collector: one scrape of the LongSang API into the metrics store, once or in a loop.

`scrape` takes /api/health (deep by default) and /api/metrics together into one
`models.Scrape` with a fresh id. It never raises an ApiError: a part that got no proper
answer (refused, timeout, 5xx, not JSON, bad shape) is a `models.Failure` of that scrape,
because "no answer" is the most important health datum. A 503 deep-health with a health
body is an answer (status ERROR).

`collect_once` scrapes and records; a failed store write is retried with the SAME scrape
(same id), so a retry after a write that did commit stores nothing twice.
`collect_forever` repeats on a grid aligned to `every` (5 min -> :00, :05, ...); on
SIGTERM/SIGINT (or `stop.set()`) it finishes the write in progress and returns 0. A round
that runs past the next tick (a slow source after the scrape) skips the ticks it ran over
and goes on at the next one; `on_late(took_s, skipped)` is told so (QA 20).

Several targets (`[targets.NAME]` of lsops.toml) are collected in ROUNDS: `collect_round`
scrapes every target concurrently (a bounded thread pool, each target its own client)
and writes the scrapes one at a time from the calling thread as they complete (one
writer: SQLite has one), each under its own target name; `collect_rounds_forever` runs a
round at every tick of the grid and, on a signal, finishes the round's writes first.
`target_clients` opens (and closes) one API client per configured target.
Every function takes an optional `clock` (aware UTC datetime), so the demo collects a
virtual month through the very same code.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from .exceptions import ApiError, ConfigError, StoreError, StoreVersionError
from .models import Failure, Health, Metrics, Scrape
from .times import utcnow

if TYPE_CHECKING:
    from .config import Settings
    from .store import Store

Clock = Callable[[], datetime]
DEFAULT_WINDOW_MS = 3_600_000
MAX_WORKERS = 16  # scrapes in flight at once in a round over several targets


class ApiClient(Protocol):
    """What the collector needs of `lsops_lib.api.Client`."""

    def get_health(self, *, deep: bool = False) -> Any: ...

    def get_metrics(self, *, time_window_ms: int = DEFAULT_WINDOW_MS) -> Any: ...


def _failure(part: str, exc: BaseException) -> Failure:
    if isinstance(exc, ApiError):
        return Failure(part, exc.kind, _line(str(exc)), exc.status)
    # a bug or an unforeseen transport error must not stop the collector: record it
    return Failure(part, "error", _line(f"{type(exc).__name__}: {exc}"), None)


def _line(text: str, limit: int = 500) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def scrape(
    client: ApiClient,
    *,
    target: str = "default",
    deep: bool = True,
    clock: Clock = utcnow,
    time_window_ms: int = DEFAULT_WINDOW_MS,
) -> Scrape:
    """One collection round: health then metrics, as one Scrape. Never raises ApiError."""
    collected_at = clock()
    started = time.perf_counter()
    health: Health | None = None
    metrics: Metrics | None = None
    failures: list[Failure] = []
    raw: dict[str, bytes] = {}
    try:
        answer = client.get_health(deep=deep)
        health = answer.record
        raw["health"] = bytes(answer.body)
    except Exception as exc:  # noqa: BLE001 - every failure is an observation
        failures.append(_failure("health", exc))
    try:
        answer = client.get_metrics(time_window_ms=time_window_ms)
        metrics = answer.record
        raw["metrics"] = bytes(answer.body)
    except Exception as exc:  # noqa: BLE001
        failures.append(_failure("metrics", exc))
    return Scrape(
        id=str(uuid.uuid4()),
        target=target,
        collected_at=collected_at,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        health=health,
        metrics=metrics,
        failures=tuple(failures),
        raw=raw,
    )


def record(store: Store, scrape_: Scrape, *, attempts: int = 4, backoff_s: float = 0.25) -> bool:
    """Write a scrape, retrying a failed write with the same id. True when newly stored,
    False when that id was stored already (a retry after a write that did commit)."""
    for attempt in range(attempts):
        try:
            return store.record_scrape(scrape_)
        except StoreVersionError:
            raise
        except StoreError:
            if attempt == attempts - 1:
                raise
            time.sleep(backoff_s * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def collect_once(
    client: ApiClient,
    store: Store,
    *,
    target: str = "default",
    deep: bool = True,
    clock: Clock = utcnow,
    time_window_ms: int = DEFAULT_WINDOW_MS,
    attempts: int = 4,
) -> Scrape:
    """Scrape and store. Raises StoreError only when the store refused every attempt."""
    result = scrape(client, target=target, deep=deep, clock=clock, time_window_ms=time_window_ms)
    record(store, result, attempts=attempts)
    return result


def next_tick(now: datetime, every: timedelta) -> datetime:
    """The next instant after `now` on the grid of multiples of `every` since the epoch."""
    period = every.total_seconds()
    if period <= 0:
        raise ValueError("every must be positive")
    ts = now.timestamp()
    tick = math.floor(ts / period + 1e-9) * period + period
    return datetime.fromtimestamp(tick, now.tzinfo)


def skipped_ticks(started: datetime, ended: datetime, every: timedelta) -> int:
    """The ticks of the `every` grid a step from `started` to `ended` ran over: 0 for a
    step shorter than the period, else the ticks after its own (the first 1 % of the
    period after `started`, at most a second, is its own: a wake-up a little early or
    late), up to `ended`."""
    period = every.total_seconds()
    if (ended - started).total_seconds() < period:
        return 0
    own = started + timedelta(seconds=min(1.0, period / 100))
    return round((next_tick(ended, every) - next_tick(own, every)).total_seconds() / period)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop` while inside (main thread only; elsewhere a no-op); a
    second one ends the process at once, by that signal (as cli/stopping.py's)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def collect_forever(
    client: ApiClient,
    store: Store,
    every: timedelta,
    *,
    stop: threading.Event,
    target: str = "default",
    deep: bool = True,
    clock: Clock = utcnow,
    time_window_ms: int = DEFAULT_WINDOW_MS,
    sleep: Callable[[float], None] | None = None,
    max_scrapes: int | None = None,
    on_scrape: Callable[[Scrape, bool], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_late: Callable[[float, int], None] | None = None,
) -> int:
    """Collect now, then at every tick of the `every` grid, until `stop` is set, a signal
    arrives (SIGTERM/SIGINT, when called from the main thread) or `max_scrapes` are done.
    The write in progress always finishes. Returns the exit code: 0.

    `sleep(seconds)` waits for the next tick (default: `stop.wait`, so a stop is immediate);
    a virtual clock passes one that advances the clock. A store that keeps failing is
    reported through `on_error` (default: one line on stderr) and the loop goes on. A step
    (with what `on_scrape` does) that ran past ticks of the grid: `on_late` (`_on_grid`).
    """

    def step() -> None:
        result = scrape(
            client, target=target, deep=deep, clock=clock, time_window_ms=time_window_ms
        )
        try:
            stored = record(store, result)
        except StoreVersionError:
            raise
        except StoreError as exc:
            (on_error or _print_error)(exc)
            stored = False
        if on_scrape is not None:
            on_scrape(result, stored)

    return _on_grid(
        step, every, stop=stop, clock=clock, sleep=sleep, max_steps=max_scrapes, on_late=on_late
    )


def _on_grid(
    step: Callable[[], None],
    every: timedelta,
    *,
    stop: threading.Event,
    clock: Clock,
    sleep: Callable[[float], None] | None,
    max_steps: int | None,
    on_late: Callable[[float, int], None] | None = None,
) -> int:
    """Run `step` now, then at every tick of the `every` grid, until `stop` is set, a
    signal arrives (SIGTERM/SIGINT, main thread only) or `max_steps` are done. A step in
    progress always finishes. Returns 0.

    A step on the grid that took a whole period or more ran over ticks of it: the next
    step is at the next tick after it, and `on_late(took_s, skipped)` is called first
    (how long the step took, how many ticks it ran over), never silently. The first step,
    taken at once (off the grid, paying the imports), is not: the grid starts after it."""
    if every.total_seconds() <= 0:
        raise ValueError("every must be positive")
    done = 0
    with stop_on_signals(stop):
        while not stop.is_set():
            started = clock()
            step()
            done += 1
            if max_steps is not None and done >= max_steps:
                break
            if stop.is_set():
                break
            now = clock()
            skipped = skipped_ticks(started, now, every) if done > 1 else 0
            if skipped and on_late is not None:
                on_late((now - started).total_seconds(), skipped)
            delay = max(0.0, (next_tick(now, every) - now).total_seconds())
            if sleep is None:
                stop.wait(delay)
            else:
                sleep(delay)
    return 0


# --- several targets: rounds ------------------------------------------------------------


@contextmanager
def target_clients(
    targets: Iterable[Any], *, factory: Callable[[Any], Any] | None = None
) -> Iterator[dict[str, Any]]:
    """One API client per target (`config.Target`s; name -> `Client.from_target(target)`
    unless `factory` is given), every one closed on exit. Raises ConfigError, before any
    client is made, for a target whose URL is not http:// or https://, has no host, or has
    a query or fragment (`api.check_base_url`)."""
    from .api import check_base_url
    from .config import redact_url

    chosen = list(targets)
    for t in chosen:
        if not str(t.url).startswith(("http://", "https://")):
            raise ConfigError(
                f"[targets.{t.name}]: API URL must start with http:// or https://: "
                f"{redact_url(t.url)}"
            )
        try:
            check_base_url(t.url)
        except ConfigError as exc:
            raise ConfigError(f"[targets.{t.name}]: {exc}") from None
    if factory is None:
        from .api import Client

        factory = Client.from_target
    clients: dict[str, Any] = {}
    try:
        for t in chosen:
            clients[t.name] = factory(t)
        yield clients
    finally:
        for client in clients.values():
            client.close()


def collect_round(
    clients: Mapping[str, ApiClient],
    store: Store,
    *,
    deep: bool = True,
    clock: Clock = utcnow,
    time_window_ms: int = DEFAULT_WINDOW_MS,
    workers: int | None = None,
    attempts: int = 4,
    on_scrape: Callable[[Scrape, bool], None] | None = None,
    on_error: Callable[[StoreError], None] | None = None,
) -> list[Scrape]:
    """One round over several targets (target name -> its own client): every target is
    scraped concurrently in a thread pool of `workers` (default min(16, targets)), and
    the calling thread writes each scrape as it completes (the only writer; `record`'s
    retries), stored under its target name. Returns the scrapes in the order of `clients`.

    Like `scrape`, a target that gives no proper answer is a stored failure, never an
    exception. `on_scrape(scrape, stored)` is called after each write, in completion order.
    A write the store refused every attempt goes to `on_error` when given (the round goes
    on); without `on_error` the first such StoreError is raised once every other scrape of
    the round was written. StoreVersionError is raised at once.
    """
    names = list(clients)
    if not names:
        return []
    size = max(1, min(workers or MAX_WORKERS, len(names)))
    results: dict[str, Scrape] = {}
    refused: StoreError | None = None
    pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="lsops-scrape")
    try:
        futures: dict[Future[Scrape], str] = {
            pool.submit(
                scrape,
                clients[name],
                target=name,
                deep=deep,
                clock=clock,
                time_window_ms=time_window_ms,
            ): name
            for name in names
        }
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            try:
                record(store, result, attempts=attempts)
                stored = True  # newly, or already by a write that did commit
            except StoreVersionError:
                raise
            except StoreError as exc:
                stored = False
                if on_error is not None:
                    on_error(exc)
                elif refused is None:
                    refused = exc
            if on_scrape is not None:
                on_scrape(result, stored)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if refused is not None:
        raise refused
    return [results[name] for name in names]


def collect_rounds_forever(
    clients: Mapping[str, ApiClient],
    store: Store,
    every: timedelta,
    *,
    stop: threading.Event,
    deep: bool = True,
    clock: Clock = utcnow,
    time_window_ms: int = DEFAULT_WINDOW_MS,
    workers: int | None = None,
    sleep: Callable[[float], None] | None = None,
    max_rounds: int | None = None,
    on_scrape: Callable[[Scrape, bool], None] | None = None,
    on_round: Callable[[list[Scrape]], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_late: Callable[[float, int], None] | None = None,
) -> int:
    """`collect_forever` over several targets: one `collect_round` now, then one at every
    tick of the `every` grid, until `stop`, a signal (SIGTERM/SIGINT, main thread) or
    `max_rounds`. The round in progress always finishes its writes. A store refusing a
    write is reported through `on_error` (default: one line on stderr) and the loop goes
    on. `on_round(scrapes)` after each round (in the order of `clients`); `on_late` as
    `collect_forever`'s. Returns 0."""

    def step() -> None:
        scrapes = collect_round(
            clients,
            store,
            deep=deep,
            clock=clock,
            time_window_ms=time_window_ms,
            workers=workers,
            on_scrape=on_scrape,
            on_error=on_error or _print_error,
        )
        if on_round is not None:
            on_round(scrapes)

    return _on_grid(
        step, every, stop=stop, clock=clock, sleep=sleep, max_steps=max_rounds, on_late=on_late
    )


def _print_error(exc: Exception) -> None:
    print(f"lsops: {_line(str(exc))}", file=sys.stderr, flush=True)


def collect_db(
    settings: Settings,
    store: Store,
    *,
    database: str | None = None,
    clock: Clock = utcnow,
) -> dict[str, Any]:
    """`lsops collect --db`: one snapshot of table sizes and of pg_stat_statements of the
    configured database into the store. Returns {database, tables, queries, queries_error,
    queries_hidden}: `queries_hidden`, the statements of other roles pg_stat_statements hides
    from a role without pg_read_all_stats (not stored: their text and queryid are NULL),
    None when not counted.

    Raises ConfigError when no database is configured, DatabaseError when it cannot be
    read. pg_stat_statements missing is not an error: queries is then 0 and queries_error
    says why.
    """
    # lazily: only `--db` needs the inspection stack
    from .db.connect import connect as db_connect
    from .db.queries import hidden_statements
    from .db.queries import snapshot as query_snapshot
    from .db.space import table_sizes
    from .exceptions import DatabaseError

    url = settings.database(database)
    name = database or settings.database_name or "default"
    taken_at = clock()
    inspector = db_connect(url)
    try:
        sizes = table_sizes(inspector)
        tables = store.record_db_sizes(name, taken_at, sizes)
        queries, error, hidden = 0, None, None
        try:
            snapshot = query_snapshot(inspector)
        except DatabaseError as exc:  # ExtensionMissing included
            error = str(exc)
        else:
            queries = store.record_db_queries(name, taken_at, snapshot)
            try:  # what this role cannot see is said, never read as "none" (README)
                hidden = hidden_statements(inspector)["statements"]
            except DatabaseError:
                hidden = None
    finally:
        inspector.close()
    return {
        "database": name,
        "tables": tables,
        "queries": queries,
        "queries_error": error,
        "queries_hidden": hidden,
    }


# --- issue 10: the other sources (Sentry, the logs, pm2), collected after the scrape ---------


def collect_other_sources(
    settings: Settings,
    store: Store,
    *,
    target: str,
    clock: Clock = utcnow,
    sources: Any = None,
    stop: threading.Event | None = None,
) -> list[Any]:
    """Collect each configured source of `[sentry]`, `[logs]`, `[pm2]` once into the store
    under `target` (`lsops_lib.sources.collect_sources`): a list of `SourceResult`, one per
    configured source, each ok or failed on its own (the failure recorded). `sources`: the
    `sources.settings.SourceSettings` (default: read from the settings and the environment).
    `stop` set: no further source is started (nor a further Sentry request or pm2 wait).
    Raises ConfigError for a malformed [sentry]/[logs]/[pm2] section."""
    from .sources import collect_sources
    from .sources.settings import source_settings

    chosen = sources if sources is not None else source_settings(settings)
    if not chosen.configured():
        return []
    return collect_sources(store, chosen, target=target, clock=clock, stop=stop)
