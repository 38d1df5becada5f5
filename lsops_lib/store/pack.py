"""The compact sample format (schema version 4): packing, unpacking, and what reads see.

The samples of one target's scrapes in one period (`period_ms`, lsops_pack_state
`pack_period_ms`: a day, fixed when the store is created; LSOPS_PACK_PERIOD_MS then
chooses another, for tests) live either as lsops_samples rows or packed in ONE
lsops_sample_blocks row (`codec.py`); a scrape's samples are all in one place.

- `record_scrape` writes rows, as ever (one small transaction). When a target's scrapes
  move on to a new period, the earlier periods with rows are packed, each in its own
  transaction after the scrape's (`after_write`).
- Late samples (a scrape of a packed period, written later: another collector, a clock
  behind) stay rows beside the block; the write notes the period as dirty (lsops_pack_state
  `pack_dirty:<target>:<period>`, in its transaction) and the packer merges them in
  after the commit (or, were the process killed first, the next open does).
- The write path reads the samples of a scrape's neighbours as rows (`rollup.py`): a
  write whose neighbours are packed unpacks their periods first (`unpack_touched`, in
  its transaction), and they are packed again after the commit.
- Reads that visit samples (`endpoint_intervals` at minute or scrape buckets, the partial
  hours at the edges of an hourly read) see the union of the rows and the decoded blocks
  they need (`samples_source`), in one snapshot.

Migration (versions 1-4): the version is raised with the rollup catch-up, then every old
period is packed, one transaction each; the lsops_pack_state row `pack_migrating` says it is not done,
so an interrupted migration (SIGKILL) resumes on the next open. (Version 4 packed all but
the raw payloads: a period of version 4 has rows in lsops_raw only, and is due for that.)

A block that does not decode (`codec.DamagedBlock`) stops the packing of its period only:
that period's rows stay rows, it is noted dirty (tried again at the next pass), the other
periods are packed, and `pack_target` raises it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import codec, pack_scrapes
from .chain import Change, driver
from .schema import pack_state_table as meta_table
from .schema import sample_blocks_table, write_transaction
from .schema import set_meta as _set_meta

PERIOD_KEY = "pack_period_ms"
MIGRATING_KEY = "pack_migrating"
DIRTY = "pack_dirty:"
DEFAULT_PERIOD_MS = 86_400_000
HOUR_MS = 3_600_000
PERIOD_ENV = "LSOPS_PACK_PERIOD_MS"
UNPACKED = "lsops_unpacked"  # the temporary table of decoded samples a read joins


def set_meta(conn: Connection, key: str, value: str) -> None:
    _set_meta(conn, key, value, meta_table)


def new_period() -> int:
    """The period of a store being created: a day, or LSOPS_PACK_PERIOD_MS (tests; 0:
    every sample stays a row, as before version 4)."""
    value = os.environ.get(PERIOD_ENV, "")
    return int(value) if value.isdigit() else DEFAULT_PERIOD_MS  # 0: never pack


def period_ms(conn: Connection) -> int:
    value = conn.execute(
        meta_table.select()
        .with_only_columns(meta_table.c.value)
        .where(meta_table.c.key == PERIOD_KEY)
    ).scalar()
    return int(value) if value else DEFAULT_PERIOD_MS


def period_of(ts: int, period: int) -> int:
    return ts - ts % period


def recent_ms(period: int) -> int:
    """The recent part kept as rows: the latest hour (or period, when shorter)."""
    return min(HOUR_MS, period)


# --- packing -----------------------------------------------------------------------------

_ROWS_SQL = """SELECT x.scrape_sid, x.endpoint_id, x.count, x.avg_time, x.error_rate, s.ts
    FROM lsops_samples x JOIN lsops_scrapes s ON s.sid = x.scrape_sid
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi"""
_DELETE_ROWS_SQL = """DELETE FROM lsops_samples WHERE scrape_sid IN
    (SELECT sid FROM lsops_scrapes WHERE target_id = :tid AND ts >= :lo AND ts < :hi)"""
_BLOCK_SQL = "SELECT body FROM lsops_sample_blocks WHERE target_id = :tid AND period_ts = :p"
_DROP_BLOCK_SQL = "DELETE FROM lsops_sample_blocks WHERE target_id = :tid AND period_ts = :p"
_INSERT_ROW_SQL = """INSERT INTO lsops_samples (scrape_sid, endpoint_id, count, avg_time,
    error_rate) VALUES (:s, :e, :c, :a, :r)"""


def _lock(conn: Connection, target_id: int, wait: bool = True) -> None:
    """PostgreSQL: the writers' lock of the target (SQLite: BEGIN IMMEDIATE serializes);
    `wait` False: lock_not_available at once when a writer holds it."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT id FROM lsops_targets WHERE id = :tid FOR UPDATE"
        driver(conn, sql if wait else f"{sql} NOWAIT", {"tid": target_id})


_SERVICE_ROWS_SQL = """SELECT v.scrape_sid, v.service, v.status, v.message, v.response_time_ms
    FROM lsops_services v JOIN lsops_scrapes s ON s.sid = v.scrape_sid
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi"""
_DELETE_SERVICES_SQL = """DELETE FROM lsops_services WHERE scrape_sid IN
    (SELECT sid FROM lsops_scrapes WHERE target_id = :tid AND ts >= :lo AND ts < :hi)"""


def _pack_services(conn: Connection, params: dict[str, int], over: bool) -> None:
    pack_scrapes.pack_rows(
        conn, params, over, _SERVICE_ROWS_SQL, "lsops_service_blocks", _DELETE_SERVICES_SQL
    )


def pack_period(conn: Connection, target_id: int, p: int, period: int, cut: int) -> int:
    """Pack the rows of (target, period) of scrapes before `cut` into its block (merged
    with the block there is), in the caller's write transaction; the rows packed."""
    hi = min(p + period, max(cut, p))
    params = {"tid": target_id, "lo": p, "hi": hi, "p": p}
    over = hi == p + period  # the period is over: its blocks in one chunk each
    _pack_services(conn, params, over)
    pack_scrapes.pack(conn, params, over)
    pack_scrapes.pack_raw(conn, params, over)
    rows = list(driver(conn, _ROWS_SQL, params).tuples())
    old = driver(conn, _BLOCK_SQL.replace("body", "body, until_ts, scrapes"), params).first()
    with codec.block_of("lsops_sample_blocks", target_id, p):
        merge = old is not None and over and codec.chunks(old[0]) > 1
    if rows or merge:
        cols = list(zip(*rows, strict=True))  # sid, endpoint, count, avg, err, ts
        new = codec.Samples.of_columns(cols[:5]) if rows else codec.empty()
        late = old is not None and bool(rows) and min(cols[5]) < int(old[1])
        if old is None:
            body, scrapes = codec.encode(new), len(set(new.sid.tolist()))
        elif late or over:  # merge (a late sample may repeat nothing: sids are unique)
            with codec.block_of("lsops_sample_blocks", target_id, p):
                merged = codec.concat([codec.decode(old[0]), new])
            body, scrapes = codec.encode(merged), len(set(merged.sid.tolist()))
        else:  # the next hours of the period: one more chunk
            body = codec.append(old[0], new)
            scrapes = int(old[2]) + len(set(new.sid.tolist()))
        driver(conn, _DROP_BLOCK_SQL, params)
        conn.execute(
            sample_blocks_table.insert().values(
                target_id=target_id,
                period_ts=p,
                scrapes=scrapes,
                until_ts=max(hi, int(old[1])) if old is not None else hi,
                body=body,
            )
        )
        driver(conn, _DELETE_ROWS_SQL, params)
    conn.execute(meta_table.delete().where(meta_table.c.key == f"{DIRTY}{target_id}:{p}"))
    return len(rows)


def unpack_period(conn: Connection, target_id: int, p: int) -> None:
    """The block of (target, period) back to rows (the caller's write transaction)."""
    params = {"tid": target_id, "p": p}
    body = driver(conn, _BLOCK_SQL, params).scalar()
    if body is None:
        return
    with codec.block_of("lsops_sample_blocks", target_id, p):
        rows = codec.decode(body).rows()
    driver(conn, _DROP_BLOCK_SQL, params)
    if rows:
        conn.exec_driver_sql(
            "INSERT INTO lsops_samples (scrape_sid, endpoint_id, count, avg_time, error_rate) "
            + (
                "VALUES (?, ?, ?, ?, ?)"
                if conn.dialect.name == "sqlite"
                else "VALUES (%s, %s, %s, %s, %s)"
            ),
            rows,
        )
    mark_dirty(conn, target_id, p)


def unpack_target(conn: Connection, target_id: int | None) -> None:
    """Every block of a target (None: of every target) back to rows."""
    where = "" if target_id is None else " WHERE target_id = :tid"
    blocks = driver(
        conn, f"SELECT target_id, period_ts FROM lsops_sample_blocks{where}", {"tid": target_id}
    ).fetchall()
    for tid, p in blocks:
        unpack_period(conn, int(tid), int(p))


def request_full_pass(conn: Connection) -> None:
    """Every target's old periods to be packed on open (a migration, a bulk load caught
    up: the rows written behind the store's back)."""
    set_meta(conn, MIGRATING_KEY, "1")


def mark_dirty(conn: Connection, target_id: int, p: int) -> None:
    set_meta(conn, f"{DIRTY}{target_id}:{p}", "1")


_TOUCHED_SQL = """SELECT DISTINCT b.period_ts FROM lsops_scrapes s
    JOIN lsops_sample_blocks b ON b.target_id = s.target_id
     AND b.period_ts <= s.ts AND b.period_ts > s.ts - :period AND s.ts < b.until_ts
    WHERE s.sid IN ({sids})"""


def _in_list(values: list[int]) -> tuple[str, dict[str, int]]:
    """`IN (...)` of parameters for `values`, padded (repeating the last) to a power of two,
    so that the statement's text, and the driver's prepared statement, are reused."""
    n = 1 << max(0, len(values) - 1).bit_length()
    padded = values + [values[-1]] * (n - len(values))
    return ", ".join(f":s{i}" for i in range(n)), {f"s{i}": v for i, v in enumerate(padded)}


def borrow_touched(
    conn: Connection, target_id: int, changes: Iterable[Change], period: int
) -> list[int]:
    """Before the rollup reads the samples of the scrapes `changes` involve (the scrapes and
    their old and new predecessors): those in packed blocks are copied out as rows (the
    blocks stay as they are); the sids copied, for `give_back` after the rollup."""
    if not period:
        return []
    sids: set[int] = set()
    for ch in changes:
        sids.add(ch.sid)
        for c in (ch.old, ch.new):
            if c is not None and c.pred_sid is not None:
                sids.add(c.pred_sid)
    if not sids:
        return []
    marks, params = _in_list(sorted(int(s) for s in sids))
    found = list(
        driver(conn, _TOUCHED_SQL.format(sids=marks), {**params, "period": period}).tuples()
    )
    borrowed: list[int] = []
    for (p,) in found:
        body = driver(conn, _BLOCK_SQL, {"tid": target_id, "p": int(p)}).scalar()
        if body is None:
            continue
        # only the chunks that hold them (the hour just packed, mostly) are decoded
        with codec.block_of("lsops_sample_blocks", target_id, int(p)):
            rows = codec.decode_sids(bytes(body), np.array(sorted(sids), np.int64)).rows()
        if rows:
            _insert_rows(conn, rows)
            borrowed += sorted({r[0] for r in rows})
    return borrowed


def give_back(conn: Connection, borrowed: list[int]) -> None:
    """Drop the rows `borrow_touched` copied out of the blocks (still in them)."""
    if borrowed:
        marks, params = _in_list([int(s) for s in borrowed])
        driver(conn, f"DELETE FROM lsops_samples WHERE scrape_sid IN ({marks})", params)


def _insert_rows(conn: Connection, rows: list[tuple[int, int, int, float, float]]) -> None:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    conn.exec_driver_sql(
        "INSERT INTO lsops_samples (scrape_sid, endpoint_id, count, avg_time, error_rate) "
        f"VALUES ({', '.join([mark] * 5)})",
        rows,
    )


def note_late(conn: Connection, target_id: int, ts: int, period: int) -> bool:
    """A scrape written into a period that already has a block: merge it in later."""
    if not period:
        return False
    p = period_of(ts, period)
    sql = "SELECT until_ts FROM lsops_sample_blocks WHERE target_id = :tid AND period_ts = :p"
    until = driver(conn, sql, {"tid": target_id, "p": p}).scalar()
    if until is None or ts >= int(until):
        return False
    mark_dirty(conn, target_id, p)
    return True


BELOW = "packed_below:"


def packed_below(engine: Engine, target_id: int) -> int:
    """The period below which a target's samples were packed (0: not known)."""
    with engine.connect() as conn:
        value = conn.execute(
            meta_table.select()
            .with_only_columns(meta_table.c.value)
            .where(meta_table.c.key == f"{BELOW}{target_id}")
        ).scalar()
    return int(value) if value else 0


def set_packed_below(engine: Engine, target_id: int, p: int) -> None:
    with write_transaction(engine) as conn:
        set_meta(conn, f"{BELOW}{target_id}", str(p))


_CURRENT_SQL = "SELECT MAX(ts) FROM lsops_scrapes WHERE target_id = :tid"
_DUE_SQL = """SELECT DISTINCT s.ts FROM lsops_scrapes s
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi
      AND (EXISTS (SELECT 1 FROM lsops_samples x WHERE x.scrape_sid = s.sid)
        OR EXISTS (SELECT 1 FROM lsops_raw r WHERE r.scrape_sid = s.sid))"""


def due(
    conn: Connection, target_id: int, period: int, since: int | None, until: int | None = None
) -> tuple[list[int], int]:
    """(the periods of a target with sample rows of scrapes from `since` (None: all) to
    the cut, and the dirty ones below the cut; that cut). The cut is the recent part (the
    hour of the target's latest scrape), or `until` when lower (a writer's own hour)."""
    latest = driver(conn, _CURRENT_SQL, {"tid": target_id}).scalar()
    periods: set[int] = set()
    hi = -(2**62)
    if latest is not None:
        hi = period_of(int(latest), recent_ms(period))
        if until is not None:
            hi = min(hi, until)
        lo = -(2**62) if since is None else since
        for (ts,) in driver(conn, _DUE_SQL, {"tid": target_id, "lo": lo, "hi": hi}):
            periods.add(period_of(int(ts), period))
    for (key,) in conn.execute(
        meta_table.select()
        .with_only_columns(meta_table.c.key)
        .where(meta_table.c.key.like(f"{DIRTY}{target_id}:%"))
    ):
        p = int(key.rsplit(":", 1)[1])
        if p < hi:  # (a dirty period at or above the cut stays dirty for a later pass)
            periods.add(p)
    return sorted(periods), hi


def pack_target(
    engine: Engine,
    target_id: int,
    period: int,
    since: int | None = None,
    until: int | None = None,
    *,
    wait: bool = True,
) -> int:
    """Pack what is due for one target below the cut (`due`: the hour of its latest
    scrape, or `until` when lower), one period a transaction; rows packed. A period with
    a damaged block is left as it is, noted dirty, and its DamagedBlock raised once the
    others are packed. `wait` False: the target locked by a writer raises
    lock_not_available at once (`pack_store`)."""
    with engine.connect() as conn:
        todo, cut = due(conn, target_id, period, since, until)
    packed = 0
    damaged: codec.DamagedBlock | None = None
    for p in todo:
        try:
            with write_transaction(engine) as conn:
                _lock(conn, target_id, wait)
                packed += pack_period(conn, target_id, p, period, cut)
        except codec.DamagedBlock as exc:
            damaged = damaged or exc
            with write_transaction(engine) as conn:
                mark_dirty(conn, target_id, p)  # tried again at the next pass
    if damaged is not None:
        raise damaged
    return packed


# PostgreSQL errors that leave the packing on open to a writer: insufficient_privilege (a
# role that can only read), lock_not_available (a writer holds the target's lock)
DENIED, LOCKED = "42501", "55P03"


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def pack_store(engine: Engine) -> None:
    """On open: finish a migration (every target, every old period) or pack the dirty
    periods a killed process left. Opening needs no right to write and never waits for a
    writer's lock: a role that cannot write leaves it all to the writers, a target a
    writer holds is left to it (its next pass, or the next open, packs it; an unfinished
    migration stays noted); reads answer the same from rows and blocks."""
    try:
        _pack_store(engine)
    except DBAPIError as exc:
        if _sqlstate(exc) not in (DENIED, LOCKED):
            raise


def _pack_targets(engine: Engine, targets: Iterable[int], period: int, since: int | None) -> bool:
    """Pack what is due for `targets` without waiting for a writer's lock; False when a
    target was left to the writer that holds it."""
    done = True
    for tid in targets:
        try:
            pack_target(engine, tid, period, since=since, wait=False)
        except codec.DamagedBlock:
            pass  # left as rows (and dirty): the reads of its period say it is damaged
        except DBAPIError as exc:
            if _sqlstate(exc) != LOCKED:
                raise
            done = False
    return done


def _pack_store(engine: Engine) -> None:
    with engine.connect() as conn:
        period = period_ms(conn)
        migrating = conn.execute(
            meta_table.select().where(meta_table.c.key == MIGRATING_KEY)
        ).first()
        dirty = (
            conn.execute(
                meta_table.select()
                .with_only_columns(meta_table.c.key)
                .where(meta_table.c.key.like(f"{DIRTY}%"))
            )
            .scalars()
            .all()
        )
        targets = [int(t) for t in conn.execute(text("SELECT id FROM lsops_targets")).scalars()]
    if not period:
        targets, dirty = [], []
    if migrating is not None:
        if not _pack_targets(engine, targets, period, None):
            return  # the migration stays noted: the next open finishes it
        with write_transaction(engine) as conn:
            for tid in targets:
                latest = driver(conn, _CURRENT_SQL, {"tid": tid}).scalar()
                if latest is not None:
                    cut = period_of(int(latest), recent_ms(period))
                    set_meta(conn, f"{BELOW}{tid}", str(cut))
            conn.execute(meta_table.delete().where(meta_table.c.key == MIGRATING_KEY))
        _vacuum(engine)
    elif dirty:
        # (opening the store, a reader's too, is no place to fail for a damaged block)
        _pack_targets(
            engine, sorted({int(k[len(DIRTY) :].split(":")[0]) for k in dirty}), period, 2**62
        )


def _vacuum(engine: Engine) -> None:
    """SQLite: give the pages the packed rows held back to the file system, after a full
    pass (the rows of a new period reuse the pages of the period packed before them)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - busy (another process reads): reused by later writes
        pass
    finally:
        raw.close()  # busy (another process reads): the space is reused by later writes


# --- reads -------------------------------------------------------------------------------

_WINDOW_BLOCKS_SQL = """SELECT b.target_id, b.period_ts, b.body FROM lsops_sample_blocks b
    WHERE b.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
      AND b.period_ts < :w_hi AND b.period_ts > :w_lo - :period"""
_PRED_BLOCKS_SQL = """SELECT DISTINCT q.target_id, q.ts FROM lsops_scrapes s
    JOIN lsops_scrapes q ON q.sid = s.prev_sid
    WHERE s.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
      AND s.ts >= :w_lo AND s.ts < :w_hi AND (q.ts < :w_lo OR q.ts >= :w_hi)"""
_ALL_BLOCKS_SQL = """SELECT b.target_id, b.period_ts, b.body FROM lsops_sample_blocks b
    WHERE b.target_id IN (SELECT t.id FROM lsops_targets t {target_where})"""
COLUMNS = "scrape_sid, endpoint_id, count, avg_time, error_rate"


def samples_source(
    conn: Connection,
    windows: list[tuple[int, int]],
    target_where: str,
    params: dict[str, Any],
    *,
    stale: bool,
) -> str:
    """The samples a read over `windows` ([lo, hi) in epoch ms) sees, as an SQL table
    expression: `lsops_samples` when no block is needed, else its union with the decoded
    blocks the windows' scrapes and their predecessors are in (a temporary table filled
    here, in the read's own transaction). `stale`: links computed on the fly, so every
    block of the targets read."""
    if conn.exec_driver_sql("SELECT 1 FROM lsops_sample_blocks LIMIT 1").first() is None:
        return "lsops_samples"
    period = period_ms(conn)
    blocks: dict[tuple[int, int], bytes] = {}
    if stale:
        for tid, p, body in conn.execute(
            text(_ALL_BLOCKS_SQL.format(target_where=target_where)), params
        ):
            blocks[(int(tid), int(p))] = body
    else:
        wanted: set[tuple[int, int]] = set()
        for lo, hi in windows:
            w = {**params, "w_lo": lo, "w_hi": hi, "period": period}
            for tid, p, body in conn.execute(
                text(_WINDOW_BLOCKS_SQL.format(target_where=target_where)), w
            ):
                blocks[(int(tid), int(p))] = body
            for tid, ts in conn.execute(
                text(_PRED_BLOCKS_SQL.format(target_where=target_where)), w
            ):
                wanted.add((int(tid), period_of(int(ts), period)))
        for tid, p in wanted - set(blocks):
            body = driver(conn, _BLOCK_SQL, {"tid": tid, "p": p}).scalar()
            if body is not None:
                blocks[(tid, p)] = body
    if not blocks:
        return "lsops_samples"
    parts = []
    for (tid, p), body in blocks.items():
        with codec.block_of("lsops_sample_blocks", tid, p):
            parts.append(codec.decode(body))
    samples = codec.concat(parts)
    _fill(conn, samples)
    return f"(SELECT {COLUMNS} FROM lsops_samples UNION ALL SELECT {COLUMNS} FROM {UNPACKED})"


def _fill(conn: Connection, samples: codec.Samples) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {UNPACKED} (scrape_sid INTEGER, endpoint_id INTEGER,"
            " count INTEGER, avg_time REAL, error_rate REAL,"
            " PRIMARY KEY (scrape_sid, endpoint_id)) WITHOUT ROWID"
        )
        conn.exec_driver_sql(f"DELETE FROM {UNPACKED}")
        conn.exec_driver_sql(f"INSERT INTO {UNPACKED} VALUES (?, ?, ?, ?, ?)", samples.rows())
        return
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {UNPACKED} (scrape_sid BIGINT, endpoint_id INTEGER,"
        " count BIGINT, avg_time DOUBLE PRECISION, error_rate DOUBLE PRECISION,"
        " PRIMARY KEY (scrape_sid, endpoint_id))"
    )
    conn.exec_driver_sql(f"TRUNCATE {UNPACKED}")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {UNPACKED} ({COLUMNS}) FROM STDIN") as copy:
        for row in samples.rows():
            copy.write_row(row)
    conn.exec_driver_sql(f"ANALYZE {UNPACKED}")
