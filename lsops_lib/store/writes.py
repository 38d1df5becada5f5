"""Writing one scrape: `write_scrape` and the rows it is made of.

One `record_scrape` = one transaction (scrape row, health services, per-endpoint samples,
new error records, the series links and the rollup of the scrape, compressed raw
payloads), so a process killed mid-write leaves either the whole scrape or none of it. The scrape's UUID is
unique: a retried write of the same scrape stores nothing twice.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..exceptions import StoreError
from ..models import ErrorRecord, Scrape, is_monitoring
from ..times import to_ms
from . import chain, codec, pack, pack_scrapes, rollup
from .core import Ids, StoreCore
from .schema import (
    endpoints_table,
    errors_table,
    insert_ignore,
    one_line,
    targets_table,
)


class Writes(StoreCore):
    """`Store.record_scrape`."""

    def record_scrape(self, scrape: Scrape) -> bool:
        """Store one scrape in one transaction. False when that scrape id is already stored."""
        with self._lock:
            try:
                return self._record(scrape)
            except IntegrityError:
                # the same scrape id written concurrently (or a retry racing its original)
                if self._has_scrape(scrape.id):
                    return False
                raise StoreError(
                    f"cannot write scrape {scrape.id} to {self.url}: integrity error"
                ) from None
            except codec.DamagedBlock as exc:  # a neighbour's block, read for the rollup
                raise StoreError(
                    f"cannot write scrape to {self.url}: {self.damaged(exc)}"
                ) from None
            except (SQLAlchemyError, *self._driver_errors()) as exc:
                raise StoreError(f"cannot write scrape to {self.url}: {one_line(exc)}") from None

    def _has_scrape(self, scrape_id: str) -> bool:
        with self._read() as conn:
            return has_scrape(conn, scrape_id)

    def _record(self, scrape: Scrape) -> bool:
        new = Ids()
        # a server that hangs (its host still answering TCP) fails the write after
        # PG_STALL_S, the pool's pre-ping included, not never (QA 23)
        with self._small_write(f"write scrape to {self.url}") as conn:
            if not write_scrape(conn, scrape, self._ids, new):
                return False
        self._ids.update(new)  # ids are only trusted once their transaction committed
        if new.written is not None:
            try:
                self._pack_after(*new.written)
            except (SQLAlchemyError, *self._driver_errors()):
                pass  # the scrape is stored; packing is tried again by the next write or open
            except codec.DamagedBlock as exc:  # stored too; that period's rows stay rows
                self.say_once(
                    f"cannot pack {self.url}: {self.damaged(exc)}; its period is kept as"
                    " rows and packed again later"
                )
        return True

    def defer_packing(self) -> None:
        """From now until `pack_deferred`, writes leave their samples as rows: for a writer
        that stores days of scrapes in seconds (the demo's history workers, a backfill),
        one packing pass at the end costs a fraction of a pass at every hour it leaves.
        Reads answer the same either way."""
        with self._lock:
            if self._deferred is None:
                self._deferred = {}

    def pack_deferred(self) -> int:
        """Pack what the writes since `defer_packing` left due (per target, the periods
        they wrote into, up to the hour of the latest of them) and write as usual again;
        the sample rows packed. StoreError when the store cannot be written."""
        with self._lock:
            written, self._deferred = self._deferred or {}, None
            period = self._ids.period
            packed = 0
            try:
                # without a period nothing was recorded: `written` is empty
                for target_id, (first, last) in sorted(written.items()):
                    cut = pack.period_of(last, pack.recent_ms(period))
                    packed += pack.pack_target(
                        self.engine,
                        target_id,
                        period,
                        since=pack.period_of(first, period),
                        until=cut,
                    )
            except codec.DamagedBlock as exc:
                raise StoreError(f"cannot pack {self.url}: {self.damaged(exc)}") from None
            except (SQLAlchemyError, *self._driver_errors()) as exc:
                raise StoreError(f"cannot pack {self.url}: {one_line(exc)}") from None
            return packed

    def _pack_after(self, target_id: int, ts: int, dirty: bool) -> None:
        """After a committed write: pack the target's earlier periods once its scrapes
        moved on to a new one, and merge late samples in (pack.py), each period in its
        own transaction."""
        period = self._ids.period
        if not period:
            return  # a store that keeps every sample as a row
        if self._deferred is not None:  # `defer_packing`: noted, packed by `pack_deferred`
            first, last = self._deferred.get(target_id, (ts, ts))
            self._deferred[target_id] = (min(first, ts), max(last, ts))
            return
        p = pack.period_of(ts, pack.recent_ms(period))
        below = self._packed_below.get(target_id)
        if below is None:
            below = pack.packed_below(self.engine, target_id)
        if p > below:
            # up to this write's own hour, not the target's latest: a writer backfilling
            # older days beside another one (the demo's history workers) packs its own
            # hours as it leaves them, not its current day at every hour
            try:
                pack.pack_target(
                    self.engine, target_id, period, since=below if below > 0 else None, until=p
                )
            except codec.DamagedBlock:
                # the other periods are packed, the damaged one noted dirty: tried again
                # at the next pass (the next hour), not at every write
                pack.set_packed_below(self.engine, target_id, p)
                self._packed_below[target_id] = p
                raise
            pack.set_packed_below(self.engine, target_id, p)
            below = p
        # (late samples: merged in when the target's scrapes reach a new hour, or on open)
        self._packed_below[target_id] = below


def has_scrape(conn: Connection, scrape_id: str) -> bool:
    """Whether that scrape is stored with its details row (its period not packed yet)."""
    sql = "SELECT sid FROM lsops_scrape_details WHERE scrape_id = :id"
    return chain.driver(conn, sql, {"id": scrape_id}).first() is not None


def has_packed_scrape(conn: Connection, scrape: Scrape, target_id: int, period: int) -> bool:
    """Whether that scrape is stored in its period's packed block (a retry after the
    period was packed: the same scrape, so the same target and instant)."""
    if not period:
        return False
    ts = to_ms(scrape.collected_at)
    # a packed scrape of the target at that very instant, else no block is decoded
    if chain.driver(conn, _PACKED_AT_SQL, {"tid": target_id, "ts": ts}).first() is None:
        return False
    p = pack.period_of(ts, period)
    return pack_scrapes.packed_sid(conn, target_id, p, scrape.id) is not None


_PACKED_AT_SQL = """SELECT 1 FROM lsops_scrapes s WHERE s.target_id = :tid AND s.ts = :ts
    AND NOT EXISTS (SELECT 1 FROM lsops_scrape_details d WHERE d.sid = s.sid)"""


# The write path's statements go straight through the driver (issue 14: SQLAlchemy's
# compilation of a 40-column insert and its cache key cost more CPU than the write).


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], returning: str | None) -> str:
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    )
    return f"{sql} RETURNING {returning}" if returning else sql


def _insert_many(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple],  # type: ignore[type-arg]
    on_conflict: str = "",
) -> None:
    """The rows through the driver (executemany); `on_conflict`: a clause after VALUES."""
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))}) {on_conflict}",
        rows,
    )


def _insert_scrape(conn: Connection, row: dict[str, Any]) -> int:
    if conn.dialect.name == "postgresql":
        sql = _insert_sql("lsops_scrapes", tuple(row), "sid")
        return int(chain.driver(conn, sql, row).scalar_one())
    return int(chain.driver(conn, _insert_sql("lsops_scrapes", tuple(row), None), row).lastrowid)


_SERVICE_COLUMNS = ("scrape_sid", "service", "status", "message", "response_time_ms")
_SAMPLE_COLUMNS = ("scrape_sid", "endpoint_id", "count", "avg_time", "error_rate")


def write_scrape(conn: Connection, scrape: Scrape, known: Ids, new: Ids) -> bool:
    """Store one scrape in the write transaction `conn`; False when that scrape id is
    already stored. Ids not in `known` are looked up or created and noted in `new`."""
    if has_scrape(conn, scrape.id):
        return False
    target_id = _target_id(conn, scrape.target, known, new)
    if has_packed_scrape(conn, scrape, target_id, known.period):
        return False
    if conn.dialect.name == "postgresql":
        # one writer per target at a time: the links and the rollup read the scrape's
        # neighbours in its series (SQLite's BEGIN IMMEDIATE already serializes writers)
        conn.execute(
            select(targets_table.c.id).where(targets_table.c.id == target_id).with_for_update()
        )
        # then the mark (as `catch_up` locks them): sids are taken in the order of the
        # mark's rises, so a writer raises it only over committed scrapes
        conn.execute(text(rollup.LOCK_MARK_SQL))
    row = scrape_row(scrape, target_id)
    details = {"sid": 0, **{k: row.pop(k) for k in DETAILS if k in row}}
    sid = _insert_scrape(conn, row)
    details["sid"] = sid
    chain.driver(conn, _insert_sql("lsops_scrape_details", tuple(details), None), details)

    health = scrape.health
    if health is not None and health.services:
        _insert_many(
            conn,
            "lsops_services",
            _SERVICE_COLUMNS,
            [
                (sid, name[:100], svc.status, truncate(svc.message), svc.response_time_ms)
                for name, svc in health.services.items()
            ],
        )

    metrics = scrape.metrics
    if metrics is not None:
        if metrics.endpoints:
            ids = _endpoint_id_map(conn, list(metrics.endpoints), known, new)
            _insert_many(
                conn,
                "lsops_samples",
                _SAMPLE_COLUMNS,
                [
                    (
                        sid,
                        ids[path],
                        int(stats.count),
                        float(stats.avg_time_ms or 0.0),
                        float(stats.error_rate or 0.0),
                    )
                    for path, stats in metrics.endpoints.items()
                ],
            )
        if metrics.recent_errors:
            # the records of the target's last answer written are stored: only the others
            # are inserted (ON CONFLICT DO NOTHING all the same: another writer's rows)
            last = known.errors.get(target_id, frozenset())
            rows = error_rows(metrics.recent_errors, target_id, row["ts"])
            _insert_ignore_errors(conn, [r for r in rows if r["fingerprint"] not in last])
            new.errors[target_id] = frozenset(r["fingerprint"] for r in rows)

    changes = chain.link(conn, target_id, sid)
    # the compact format: the samples of neighbours in packed blocks copied out as rows
    # for the rollup and dropped again; late samples noted, merged in by the packer
    borrowed = pack.borrow_touched(conn, target_id, rollup.applied(changes), known.period)
    dirty = pack.note_late(conn, target_id, row["ts"], known.period)
    rollup.roll_up(conn, target_id, sid, changes)
    pack.give_back(conn, borrowed)
    new.written = (target_id, row["ts"], dirty)

    if scrape.raw:
        _insert_many(
            conn,
            "lsops_raw",
            ("scrape_sid", "part", "body"),
            [(sid, part[:16], zlib.compress(body, 6)) for part, body in scrape.raw.items()],
        )
    return True


_ERROR_COLUMNS = tuple(c.name for c in errors_table.columns if c.name != "id")


def _insert_ignore_errors(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The error rows, those already stored (same target and fingerprint) left alone."""
    if rows:
        _insert_many(
            conn,
            "lsops_errors",
            _ERROR_COLUMNS,
            [tuple(r[c] for c in _ERROR_COLUMNS) for r in rows],
            "ON CONFLICT (target_id, fingerprint) DO NOTHING",
        )


def _target_id(conn: Connection, name: str, known: Ids, new: Ids) -> int:
    if name in known.targets:
        return known.targets[name]
    insert_ignore(conn, targets_table, [{"name": name}])
    tid = conn.execute(select(targets_table.c.id).where(targets_table.c.name == name)).scalar_one()
    new.targets[name] = tid
    return tid


def _endpoint_id_map(conn: Connection, paths: list[str], known: Ids, new: Ids) -> dict[str, int]:
    ids = {p: known.endpoints[p] for p in paths if p in known.endpoints}
    missing = [p for p in paths if p not in ids]
    if missing:
        insert_ignore(
            conn,
            endpoints_table,
            [{"path": p, "monitoring": is_monitoring(p)} for p in missing],
        )
        for chunk in _chunks(missing, 500):
            rows = conn.execute(
                select(endpoints_table.c.path, endpoints_table.c.id).where(
                    endpoints_table.c.path.in_(chunk)
                )
            )
            for path, eid in rows:
                ids[path] = eid
                new.endpoints[path] = eid
    return ids


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def truncate(value: str | None, limit: int = 4000) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


# --- the rows ----------------------------------------------------------------------------


DETAILS = frozenset(pack_scrapes.WIDE)  # the keys of scrape_row kept in its details row


def scrape_row(scrape: Scrape, target_id: int) -> dict[str, Any]:
    """The scrape as one row: its lsops_scrapes columns and its details (`DETAILS`)."""
    health, metrics = scrape.health, scrape.metrics
    failures = {f.part: f for f in scrape.failures}
    hf, mf = failures.get("health"), failures.get("metrics")
    message = "; ".join(f"{f.part}: {f.message}" for f in scrape.failures) or None
    server_ts = (
        metrics.timestamp
        if metrics and metrics.timestamp
        else (health.timestamp if health else None)
    )
    row: dict[str, Any] = {
        "scrape_id": scrape.id,
        "target_id": target_id,
        "ts": to_ms(scrape.collected_at),
        "server_dt": to_ms(server_ts) - to_ms(scrape.collected_at) if server_ts else None,
        "duration_ms": scrape.duration_ms,
        "ok": scrape.ok,
        "deep": health.deep if health else None,
        "health_status": health.status if health else None,
        "health_http_status": health.http_status if health else (hf.http_status if hf else None),
        "health_failure": hf.kind if hf else None,
        "health_error": truncate(health.error) if health else None,
        "metrics_http_status": (200 if metrics else (mf.http_status if mf else None)),
        "metrics_failure": mf.kind if mf else None,
        "failure_message": truncate(message),
    }
    if health is not None:
        mem = health.memory
        row.update(
            uptime_s=health.uptime_s,
            pid=health.pid,
            rss=mem.rss,
            heap_total=mem.heap_total,
            heap_used=mem.heap_used,
            external=mem.external,
            checks_passed=health.checks_passed,
            checks_total=health.checks_total,
        )
    if metrics is not None:
        rt = metrics.response_times
        row.update(
            uptime_start_ms=metrics.uptime.start_ms,
            uptime_duration_ms=metrics.uptime.duration_ms,
            last_reset_ms=metrics.uptime.last_reset_ms,
            requests_total=int(metrics.requests_total),
            status_2xx=metrics.by_status.get("2xx"),
            status_4xx=metrics.by_status.get("4xx"),
            status_5xx=metrics.by_status.get("5xx"),
            cache_hits=metrics.cache.hits,
            cache_misses=metrics.cache.misses,
            errors_kept=metrics.errors_kept,
            errors_recent=metrics.errors_recent,
            time_window_ms=metrics.time_window_ms,
        )
        if rt is not None:
            row.update(
                rt_count=rt.count,
                rt_avg=rt.avg,
                rt_min=rt.min,
                rt_p50=rt.p50,
                rt_p95=rt.p95,
                rt_p99=rt.p99,
                rt_max=rt.max,
            )
    return row


def error_rows(records: list[ErrorRecord], target_id: int, scrape_ts: int) -> list[dict[str, Any]]:
    """The lsops_errors rows of an answer's error records, deduplicated by (target,
    timestamp, endpoint, method, status, error, occurrence within the answer)."""
    seen: dict[tuple[Any, ...], int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for rec in records:
        key = (rec.timestamp_ms, rec.endpoint, rec.method, rec.status_code, rec.error)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        fp = _fingerprint(target_id, rec, occurrence)
        rows[fp] = {
            "target_id": target_id,
            "fingerprint": fp,
            "ts": int(rec.timestamp_ms) if rec.timestamp_ms is not None else scrape_ts,
            "first_seen": scrape_ts,
            "endpoint": truncate(rec.endpoint, 1000),
            "method": (rec.method or None) and rec.method[:16],
            "status_code": rec.status_code,
            "error": truncate(rec.error),
            "context": truncate(json.dumps(rec.context, default=str))
            if rec.context is not None
            else None,
        }
    return list(rows.values())


def _fingerprint(target_id: int, rec: ErrorRecord, occurrence: int) -> str:
    parts = (
        target_id,
        rec.timestamp_ms,
        rec.endpoint,
        rec.method,
        rec.status_code,
        rec.error,
        occurrence,
    )
    try:
        return _fingerprint_of(parts)  # an answer repeats most records of the one before
    except TypeError:  # a part that cannot be a cache key
        return _digest(parts)


@functools.lru_cache(maxsize=4096)
def _fingerprint_of(parts: tuple[Any, ...]) -> str:
    return _digest(parts)


def _digest(parts: tuple[Any, ...]) -> str:
    key = json.dumps(list(parts), default=str)
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
