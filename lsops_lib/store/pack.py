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

Migration (versions 1-3): the version is raised with the rollup catch-up, then every old
period is packed, one transaction each; the lsops_pack_state row `pack_migrating` says it is not done,
so an interrupted migration (SIGKILL) resumes on the next open.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from . import codec
from .chain import Change, driver
from .schema import pack_state_table as meta_table
from .schema import sample_blocks_table, write_transaction
from .schema import set_meta as _set_meta

PERIOD_KEY = "pack_period_ms"
MIGRATING_KEY = "pack_migrating"
DIRTY = "pack_dirty:"
DEFAULT_PERIOD_MS = 86_400_000
PERIOD_ENV = "LSOPS_PACK_PERIOD_MS"
UNPACKED = "lsops_unpacked"  # the temporary table of decoded samples a read joins


def set_meta(conn: Connection, key: str, value: str) -> None:
    _set_meta(conn, key, value, meta_table)


def new_period() -> int:
    """The period of a store being created: a day, or LSOPS_PACK_PERIOD_MS (tests)."""
    value = os.environ.get(PERIOD_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_PERIOD_MS


def period_ms(conn: Connection) -> int:
    value = conn.execute(
        meta_table.select()
        .with_only_columns(meta_table.c.value)
        .where(meta_table.c.key == PERIOD_KEY)
    ).scalar()
    return int(value) if value else DEFAULT_PERIOD_MS


def period_of(ts: int, period: int) -> int:
    return ts - ts % period


# --- packing -----------------------------------------------------------------------------

_ROWS_SQL = """SELECT x.scrape_sid, x.endpoint_id, x.count, x.avg_time, x.error_rate
    FROM lsops_samples x JOIN lsops_scrapes s ON s.sid = x.scrape_sid
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi"""
_DELETE_ROWS_SQL = """DELETE FROM lsops_samples WHERE scrape_sid IN
    (SELECT sid FROM lsops_scrapes WHERE target_id = :tid AND ts >= :lo AND ts < :hi)"""
_BLOCK_SQL = "SELECT body FROM lsops_sample_blocks WHERE target_id = :tid AND period_ts = :p"
_DROP_BLOCK_SQL = "DELETE FROM lsops_sample_blocks WHERE target_id = :tid AND period_ts = :p"
_INSERT_ROW_SQL = """INSERT INTO lsops_samples (scrape_sid, endpoint_id, count, avg_time,
    error_rate) VALUES (:s, :e, :c, :a, :r)"""


def _lock(conn: Connection, target_id: int) -> None:
    """PostgreSQL: the writers' lock of the target (SQLite: BEGIN IMMEDIATE serializes)."""
    if conn.dialect.name == "postgresql":
        driver(conn, "SELECT id FROM lsops_targets WHERE id = :tid FOR UPDATE", {"tid": target_id})


def pack_period(conn: Connection, target_id: int, p: int, period: int) -> int:
    """Pack the rows of (target, period) into its block (merged with the block there is),
    in the caller's write transaction; the number of rows packed."""
    params = {"tid": target_id, "lo": p, "hi": p + period, "p": p}
    rows = driver(conn, _ROWS_SQL, params).fetchall()
    if rows:
        old = driver(conn, _BLOCK_SQL, params).scalar()
        merged = codec.concat(
            [codec.decode(old) if old is not None else codec.empty(), codec.Samples.of_rows(rows)]
        )
        driver(conn, _DROP_BLOCK_SQL, params)
        conn.execute(
            sample_blocks_table.insert().values(
                target_id=target_id,
                period_ts=p,
                scrapes=len(set(merged.sid.tolist())),
                samples=len(merged),
                body=codec.encode(merged),
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


def mark_dirty(conn: Connection, target_id: int, p: int) -> None:
    set_meta(conn, f"{DIRTY}{target_id}:{p}", "1")


_TOUCHED_SQL = """SELECT DISTINCT b.period_ts FROM lsops_scrapes s
    JOIN lsops_sample_blocks b ON b.target_id = s.target_id
     AND b.period_ts <= s.ts AND b.period_ts > s.ts - :period
    WHERE s.sid IN ({sids})"""


def unpack_touched(
    conn: Connection, target_id: int, changes: Iterable[Change], period: int
) -> bool:
    """Before the rollup reads the samples of the scrapes `changes` involve (the scrapes and
    their old and new predecessors), unpack the periods among them that are packed."""
    sids: set[int] = set()
    for ch in changes:
        sids.add(ch.sid)
        for c in (ch.old, ch.new):
            if c is not None and c.pred_sid is not None:
                sids.add(c.pred_sid)
    if not sids:
        return False
    found = driver(
        conn,
        _TOUCHED_SQL.format(sids=", ".join(str(int(s)) for s in sorted(sids))),
        {"period": period},
    ).fetchall()
    for (p,) in found:
        unpack_period(conn, target_id, int(p))
    return bool(found)


def note_late(conn: Connection, target_id: int, ts: int, period: int) -> bool:
    """A scrape written into a period that already has a block: merge it in later."""
    p = period_of(ts, period)
    if driver(conn, _BLOCK_SQL, {"tid": target_id, "p": p}).first() is None:
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
      AND EXISTS (SELECT 1 FROM lsops_samples x WHERE x.scrape_sid = s.sid)"""


def due(conn: Connection, target_id: int, period: int, since: int | None) -> list[int]:
    """The periods of a target, from `since` (None: all), before the period of its latest
    scrape, that hold sample rows; and the dirty ones."""
    latest = driver(conn, _CURRENT_SQL, {"tid": target_id}).scalar()
    periods: set[int] = set()
    if latest is not None:
        hi = period_of(int(latest), period)
        lo = -(2**62) if since is None else since
        for (ts,) in driver(conn, _DUE_SQL, {"tid": target_id, "lo": lo, "hi": hi}):
            periods.add(period_of(int(ts), period))
    for (key,) in conn.execute(
        meta_table.select()
        .with_only_columns(meta_table.c.key)
        .where(meta_table.c.key.like(f"{DIRTY}{target_id}:%"))
    ):
        periods.add(int(key.rsplit(":", 1)[1]))
    return sorted(periods)


def pack_target(engine: Engine, target_id: int, period: int, since: int | None = None) -> int:
    """Pack what is due for one target, one period a transaction; rows packed."""
    with engine.connect() as conn:
        todo = due(conn, target_id, period, since)
    packed = 0
    for p in todo:
        with write_transaction(engine) as conn:
            _lock(conn, target_id)
            packed += pack_period(conn, target_id, p, period)
    return packed


def pack_store(engine: Engine) -> None:
    """On open: finish a migration (every target, every old period) or pack the dirty
    periods a killed process left."""
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
    if migrating is not None:
        for tid in targets:
            pack_target(engine, tid, period)
        with write_transaction(engine) as conn:
            for tid in targets:
                latest = driver(conn, _CURRENT_SQL, {"tid": tid}).scalar()
                if latest is not None:
                    set_meta(conn, f"{BELOW}{tid}", str(period_of(int(latest), period)))
            conn.execute(meta_table.delete().where(meta_table.c.key == MIGRATING_KEY))
    elif dirty:
        for tid in sorted({int(k[len(DIRTY) :].split(":")[0]) for k in dirty}):
            pack_target(engine, tid, period, since=2**62)


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
    if conn.dialect.name == "sqlite":
        has = conn.exec_driver_sql("SELECT 1 FROM lsops_sample_blocks LIMIT 1").first()
    else:
        has = conn.exec_driver_sql("SELECT 1 FROM lsops_sample_blocks LIMIT 1").first()
    if has is None:
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
    samples = codec.concat([codec.decode(b) for b in blocks.values()])
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
