"""One collection of the configured sources into the store, each failing on its own.

    results = collect_sources(store, sources, target="prod")
    # [SourceResult(source="sentry", ok=True, items=12, error=None), ...]

Each source's outcome is recorded (`lsops_source_runs`): ok with how many items it
brought, or the failure's one line. A source that is not configured is not run and not
recorded; nor is one left because a stop was asked (`stop`, SIGTERM/SIGINT of the
collector), which Sentry's requests and pm2's wait also heed. Never raises for a source's
failure; StoreError only when the store itself
cannot be written (then nothing of that source was stored, and the logs are read again
next time from where the last stored collection left them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import fmt
from ..exceptions import StoreError
from ..store import sources as tables
from ..times import utcnow
from .common import SourceError, one_line
from .logs import RECHECK_MS, Batch, read_files, read_journal
from .patterns import PatternMiner
from .pm2 import jlist
from .sentry import SentryClient, hourly_rows, issue_row
from .settings import SourceSettings

SENTRY_PERIOD = timedelta(hours=24)  # each collection takes the issues seen in the last 24 h


@dataclass
class SourceResult:
    source: str  # sentry | logs | pm2
    ok: bool
    items: int | None
    error: str | None
    note: str | None = None  # what a run that succeeded left aside, and why

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_sentry(
    store: Any,
    settings: SourceSettings,
    target: str,
    now: datetime,
    *,
    notes: list[str] | None = None,
    **client_kw: Any,
) -> int:
    """The issues seen in the last 24 hours (every page, every status) and every issue
    unresolved now, upserted with their hourly events; a stored unresolved issue that is
    no longer unresolved is marked resolved (Sentry's list no longer shows it). `notes`:
    the issues whose event count Sentry gave as no usable number (stored unknown)."""
    with SentryClient(settings.sentry, **client_kw) as client:
        recent = client.issues(since=now - SENTRY_PERIOD, stats_period="24h")
        unresolved = client.unresolved()
    by_id = {str(i.get("id")): i for i in unresolved}
    by_id.update({str(i.get("id")): i for i in recent})
    rows = [issue_row(i) for i in by_id.values()]
    unknown = sum(r["events"] is None for r in rows)
    if unknown and notes is not None:
        notes.append(f"{fmt.counted(unknown, 'issue')} without a usable event count (unknown)")
    hourly = [h for i in recent for h in hourly_rows(i)]
    tables.record_sentry_issues(
        store, target, now, rows, hourly, unresolved={str(i.get("id")) for i in unresolved}
    )
    return len(rows)


def collect_logs(
    store: Any, settings: SourceSettings, target: str, *, notes: list[str] | None = None
) -> int:
    """The log entries written since the last collection (files and journald), their
    patterns assigned, stored in one transaction. Returns the entries stored; `notes`
    gets what was left aside (pm2's merged log file next to its out and error files)."""
    logs = settings.logs
    states = tables.file_states(store, target)
    batch = Batch(secrets=logs.secrets())
    if logs.paths:
        read_files(logs.paths, states, logs.date_format, batch)
    if logs.journal_unit:
        key = f"journal:{logs.journal_unit}"
        previous = next((s for s in states if s.path == key), None)
        if previous is not None and previous.cursor and previous.last_ts is None:
            # remembered before lsops kept the journal's last instant: the last one stored
            previous = replace(previous, last_ts=_journal_stored(store, target, key, None)[0])

        def stored(ms: int, key: str = key) -> list[str]:
            return _journal_stored(store, target, key, ms)[1]

        read_journal(
            logs.journal_unit,
            previous,
            batch,
            command=logs.journal_command,
            date_format=logs.date_format,
            stored=stored,
        )
    miner = PatternMiner(tables.patterns(store, target))
    for entry in batch.entries:
        entry.pattern_id = miner.assign(entry.text)
    tables.record_logs(
        store, target, batch.entries, batch.continuations, batch.states, miner.changed()
    )
    if notes is not None:
        notes.extend(batch.notes)
    if batch.errors:  # what could be read is stored; the run failed all the same
        kept = batch.entries
        stored = f" ({fmt.counted(len(kept), 'entry', 'entries')} stored)" if kept else ""
        raise SourceError("logs", "; ".join(batch.errors) + stored)
    return len(batch.entries)


def _journal_stored(
    store: Any, target: str, key: str, since: int | None
) -> tuple[int | None, list[str]]:
    """The last instant stored of a journal (`key`), and the texts of its entries stored
    from RECHECK_MS before `since` (none when `since` is None): what a read again after a
    cursor that no longer seeks must not store twice."""
    t = tables.log_lines_table
    where = [t.c.target == target, t.c.source == key]
    try:
        with store.engine.connect() as conn:
            last = conn.execute(select(func.max(t.c.ts)).where(*where)).scalar()
            texts = (
                []
                if since is None
                else conn.execute(
                    select(t.c.text).where(*where, t.c.ts >= since - RECHECK_MS, t.c.ts <= since)
                )
                .scalars()
                .all()
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {one_line(exc)}") from None
    return (int(last) if last is not None else None), [str(x) for x in texts]


def collect_pm2(
    store: Any, settings: SourceSettings, target: str, now: datetime, stop: Any = None
) -> int:
    return tables.record_pm2(store, target, now, jlist(settings.pm2, now, stop=stop))


def collect_sources(
    store: Any,
    settings: SourceSettings,
    *,
    target: str,
    clock: Callable[[], datetime] = utcnow,
    sentry_transport: Any = None,
    stop: threading.Event | None = None,
) -> list[SourceResult]:
    """Collect every configured source once (see the module's docstring)."""
    results: list[SourceResult] = []
    configured = settings.configured()
    for name in ("sentry", "logs", "pm2"):
        if name not in configured:
            continue
        if stop is not None and stop.is_set():
            break  # asked to stop: the sources not started are not run (README)
        now = clock()
        try:
            notes: list[str] = []
            if name == "sentry":
                kw: dict[str, Any] = {"stop": stop, "notes": notes}
                if sentry_transport is not None:
                    kw["transport"] = sentry_transport
                items = collect_sentry(store, settings, target, now, **kw)
            elif name == "logs":
                items = collect_logs(store, settings, target, notes=notes)
            else:
                items = collect_pm2(store, settings, target, now, stop)
            result = SourceResult(name, True, items, None, "; ".join(notes) or None)
        except SourceError as exc:
            result = SourceResult(name, False, None, one_line(str(exc), 500))
        except StoreError as exc:
            result = SourceResult(name, False, None, one_line(f"{name}: {exc}", 500))
        except Exception as exc:  # noqa: BLE001 - a bug in one source must not stop the others
            result = SourceResult(
                name, False, None, one_line(f"{name}: {type(exc).__name__}: {exc}", 500)
            )
        try:
            tables.record_source_run(
                store, target, name, now, ok=result.ok, items=result.items, error=result.error
            )
        except StoreError:
            pass  # the failure is printed all the same
        results.append(result)
    return results
