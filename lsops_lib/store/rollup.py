"""The hourly rollup: its write path, its catch-up and the migrations (schema versions 2, 3).

`lsops_rollup` holds, per target, hour and endpoint, the sums of the per-endpoint deltas
of the target's scrapes of that hour, exactly as the delta rule (`series.py`) computes
them, filed in the hour of the scrape that closes them, and the number of samples summed.
Each scrape's deltas depend only on its predecessor in the series (its link, `chain.py`),
so per-hour sums are independent of any window.

- `roll_up`: `record_scrape` applies the contribution changes of its scrape (`chain.link`:
  the new scrape's deltas, and its successor's, now taken against the new scrape) in its
  own transaction: the old contribution subtracted, the new one added; a row left with
  no sample is deleted. Then the mark `series_sid` rises to the new sid.
- `catch_up`: opening a store migrates a version-1 or 2 store (links and rollup computed
  at once by the rule of version 3), rebuilds a dropped rollup table, and links and rolls
  up again each target with scrapes above the mark, written by something that keeps no
  links (an older lsops still running, a bulk loader).
- `rollup_state` / `is_stale`: whether links and rollup are behind the scrapes (reads then
  compute the links on the fly and answer from the samples).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from . import chain, pack
from .schema import (
    SCHEMA_VERSION,
    meta_table,
    migrate_v3,
    migrate_v4,
    rollup_table,
    scrapes_table,
    set_meta,
    targets_table,
)
from .series import MAX_MS, MIN_MS, NEW_SERIES_KINDS, bucket_sql, delta_columns, hour_of, series_sql

RollupState = tuple[int, int | None, int | None]
MARK = "series_sid"  # every scrape up to this sid is linked and rolled up


def _rollup_select(target_where: str) -> str:
    """INSERT INTO lsops_rollup the hourly sums of the deltas of the scrapes in
    [:start, :end) of the targets selected by `target_where` (all endpoints)."""
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets, samples)
        WITH {series_sql(target_where)},
        ed AS (
          SELECT mk.target_id, {bucket_sql("hour", "mk.ts")} AS bts, x.endpoint_id,
                 {delta_columns("mk.kind")}
          FROM mk
          JOIN lsops_samples x ON x.scrape_sid = mk.sid
          LEFT JOIN lsops_samples px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.kind <> 'base'
        )
        SELECT target_id, bts, endpoint_id, SUM(d_n), SUM(d_e), SUM(d_t), SUM(is_reset), COUNT(*)
        FROM ed GROUP BY target_id, bts, endpoint_id"""


# --- the mark and the catch-up (opening a store) -----------------------------------------


def rollup_state(conn: Connection) -> RollupState:
    """(schema version, mark, MAX(sid)) in one statement (one snapshot)."""
    version, mark, max_sid = conn.execute(
        text(
            "SELECT (SELECT value FROM lsops_meta WHERE key = 'schema_version'), "
            f"(SELECT value FROM lsops_meta WHERE key = '{MARK}'), "
            "(SELECT MAX(sid) FROM lsops_scrapes)"
        )
    ).one()
    return (
        int(version),
        None if mark is None else int(mark),
        None if max_sid is None else int(max_sid),
    )


def is_stale(state: RollupState) -> bool:
    """True when links and rollup are behind the scrapes (older version, no mark, or
    scrapes above the mark)."""
    version, mark, max_sid = state
    return version < SCHEMA_VERSION or mark is None or (max_sid or 0) > mark


def catch_up(conn: Connection) -> None:
    """Bring links and rollup up to date with the scrapes, in one transaction.

    A store of an older version (1: no rollup; 2: a rollup by the collector-clock order)
    gets the columns and index of version 3 and is linked and rolled up whole by the
    rule of version 3; a version-3 store needs nothing here; either is then marked
    version 4 (the compact format: its packing follows the open, `pack.pack_store`).
    `record_scrape` keeps both current and raises the mark `series_sid` to the sid it
    wrote; scrapes above the mark were written by something else: each such target's
    samples are unpacked, it is linked and rolled up again whole (a late scrape can sit
    anywhere in its series), and packed again after the open."""
    if not is_stale(rollup_state(conn)):
        return  # every open: one small statement
    if conn.dialect.name == "postgresql":
        # the writers' lock order: target rows, then the meta rows
        conn.execute(select(targets_table.c.id).order_by(targets_table.c.id).with_for_update())
        conn.execute(select(meta_table.c.key).order_by(meta_table.c.key).with_for_update())
    state = rollup_state(conn)
    if not is_stale(state):
        return
    version, mark, max_sid = state
    if version < 3:
        migrate_v3(conn)
    if version < 4:
        migrate_v4(conn)  # the scrape rows split (details, then packed with their period)
    if version < 3 or mark is None:
        pack.unpack_target(conn, None)  # the rule reads the samples as rows
        pack.request_full_pass(conn)  # packed again after this transaction
        chain.relink(conn)
        conn.execute(rollup_table.delete())
        conn.execute(text(_rollup_select("")), {"start": MIN_MS, "end": MAX_MS})
    else:
        targets = conn.execute(
            select(scrapes_table.c.target_id).where(scrapes_table.c.sid > mark).distinct()
        ).scalars()
        for target_id in sorted(targets):
            pack.unpack_target(conn, target_id)
            pack.request_full_pass(conn)
            chain.relink(conn, target_id)
            conn.execute(rollup_table.delete().where(rollup_table.c.target_id == target_id))
            conn.execute(
                text(_rollup_select("WHERE t.id = :tid")),
                {"tid": target_id, "start": MIN_MS, "end": MAX_MS},
            )
    set_meta(conn, MARK, str(max_sid or 0))
    set_meta(conn, "schema_version", str(SCHEMA_VERSION))
    # the mark of version 2: a version-2 writer still running raises nothing now
    conn.execute(meta_table.delete().where(meta_table.c.key == "rollup_sid"))


# --- the write path (record_scrape) ----------------------------------------------------


@functools.cache
def _rollup_upsert(kind: str) -> str:
    """Add :sign x the deltas of scrape :sid (of that kind, predecessor :psid) to the
    rollup rows (:tid, :hour, endpoint), and :sign samples each."""
    assert kind in ("restart", "reset", "counter_drop", "same")
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets, samples)
        SELECT CAST(:tid AS INTEGER), CAST(:hour AS BIGINT), endpoint_id,
               d_n * CAST(:sign AS INTEGER), d_e * CAST(:sign AS INTEGER),
               d_t * CAST(:sign AS INTEGER), is_reset * CAST(:sign AS INTEGER),
               CAST(:sign AS INTEGER)
        FROM (
          SELECT x.endpoint_id, {delta_columns(f"'{kind}'")}
          FROM lsops_samples x
          LEFT JOIN lsops_samples px ON px.scrape_sid = :psid AND px.endpoint_id = x.endpoint_id
          WHERE x.scrape_sid = :sid
        ) d
        WHERE 1 = 1
        ON CONFLICT (target_id, hour_ts, endpoint_id) DO UPDATE SET
          requests = lsops_rollup.requests + excluded.requests,
          errors = lsops_rollup.errors + excluded.errors,
          time_sum_ms = lsops_rollup.time_sum_ms + excluded.time_sum_ms,
          resets = lsops_rollup.resets + excluded.resets,
          samples = lsops_rollup.samples + excluded.samples"""


_EMPTY_ROWS_SQL = (
    "DELETE FROM lsops_rollup WHERE target_id = :tid AND hour_ts = :hour AND samples <= 0"
)
# The mark rises to the new sid only from the sid just below it: a scrape written between
# them by a writer keeping no links (an older lsops still running, a bulk loader) keeps
# the store stale until the next open links and rolls it up (`catch_up`).
_RAISE_MARK_SQL = f"""UPDATE lsops_meta SET value = :value WHERE key = '{MARK}'
    AND CAST(value AS BIGINT) = (SELECT COALESCE(MAX(sid), 0) FROM lsops_scrapes WHERE sid < :sid)"""
LOCK_MARK_SQL = f"SELECT value FROM lsops_meta WHERE key = '{MARK}' FOR UPDATE"


def _same_deltas(old: chain.Contribution | None, new: chain.Contribution | None) -> bool:
    if old is None or new is None:
        return old is new
    if old.kind == new.kind == "base":
        return True
    if old.kind in NEW_SERIES_KINDS and new.kind in NEW_SERIES_KINDS:
        return True  # whole values either way, whatever the predecessor
    return old == new


def applied(changes: list[chain.Change]) -> list[chain.Change]:
    """The changes `roll_up` applies (those whose deltas really change): a backfill's
    every write relinks the first scrape of the next process (a restart either way,
    whole values), and its samples need not be read."""
    return [c for c in changes if not _same_deltas(c.old, c.new)]


def _add(conn: Connection, target_id: int, hour: int, sid: int, c: Any, sign: int) -> None:
    if c is None or c.kind == "base":
        return  # a baseline contributes nothing
    chain.driver(
        conn,
        _rollup_upsert(c.kind),
        {"tid": target_id, "hour": hour, "sid": sid, "psid": c.pred_sid, "sign": sign},
    )


def roll_up(conn: Connection, target_id: int, sid: int, changes: list[chain.Change]) -> None:
    """Apply the contribution `changes` of writing scrape `sid` (`chain.link`) to the
    hourly rollup, in its transaction, then raise the mark `series_sid` to sid.

    Each change moves one scrape's contribution, filed in the hour of its ts, from its
    old (predecessor, kind) to its new one: the old deltas are subtracted and the new
    ones added (kinds that give the same deltas are left alone); rows left with no
    sample are deleted, so the rollup holds exactly the rows a computation from the
    samples gives."""
    for change in changes:
        if _same_deltas(change.old, change.new):
            continue
        hour = hour_of(change.ts)
        _add(conn, target_id, hour, change.sid, change.old, -1)
        _add(conn, target_id, hour, change.sid, change.new, +1)
        if change.old is not None and change.old.kind != "base":
            chain.driver(conn, _EMPTY_ROWS_SQL, {"tid": target_id, "hour": hour})
    chain.driver(conn, _RAISE_MARK_SQL, {"value": str(sid), "sid": sid})
