"""The hourly rollup (schema version 2): its write path, its catch-up and the migration.

`lsops_rollup` holds, per target, hour and endpoint, the sums of the per-endpoint deltas
of the target's scrapes of that hour, exactly as the delta rule (`series.py`) computes
them, filed in the hour of the scrape that closes them. Because each scrape's delta
depends only on the scrapes before it, per-hour sums are independent of any window.

- `roll_up`: `record_scrape` adds the new scrape's deltas in its own transaction (or
  recomputes the one later hour a scrape written out of order changes: `roll_up_hour`).
- `catch_up`: opening a store fills the rollup of a version-1 store (the migration), of a
  store whose rollup table was dropped, and of the scrapes written above the mark
  `rollup_sid` by something that keeps no rollup (an older lsops, a bulk loader).
- `rollup_state` / `is_stale`: whether the rollup is behind the samples (reads then
  answer from the samples).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.engine import Connection

from .schema import SCHEMA_VERSION, meta_table, rollup_table, scrapes_table, set_meta, targets_table
from .series import (
    MAX_MS,
    MIN_MS,
    NEW_SERIES_KINDS,
    SERIES_SQL,
    bucket_sql,
    delta_columns,
    hour_of,
    hour_span,
    series_kind,
)

RollupState = tuple[int, int | None, int | None]


def _rollup_select(target_where: str) -> str:
    """INSERT INTO lsops_rollup the hourly sums of the deltas of the scrapes in
    [:start, :end) of the targets selected by `target_where` (all endpoints)."""
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets)
        WITH {SERIES_SQL.format(target_where=target_where)},
        ed AS (
          SELECT mk.target_id, {bucket_sql("hour", "mk.ts")} AS bts, x.endpoint_id,
                 {delta_columns("mk.kind")}
          FROM mk
          JOIN lsops_samples x ON x.scrape_sid = mk.sid
          LEFT JOIN lsops_samples px ON px.scrape_sid = mk.p_sid AND px.endpoint_id = x.endpoint_id
          WHERE mk.ts >= :start AND mk.kind <> 'base'
        )
        SELECT target_id, bts, endpoint_id, SUM(d_n), SUM(d_e), SUM(d_t), SUM(is_reset)
        FROM ed GROUP BY target_id, bts, endpoint_id"""


# --- the mark and the catch-up (opening a store) -----------------------------------------


def rollup_state(conn: Connection) -> RollupState:
    """(schema version, rollup mark, MAX(sid)) in one statement (one snapshot)."""
    version, mark, max_sid = conn.execute(
        text(
            "SELECT (SELECT value FROM lsops_meta WHERE key = 'schema_version'), "
            "(SELECT value FROM lsops_meta WHERE key = 'rollup_sid'), "
            "(SELECT MAX(sid) FROM lsops_scrapes)"
        )
    ).one()
    return (
        int(version),
        None if mark is None else int(mark),
        None if max_sid is None else int(max_sid),
    )


def is_stale(state: RollupState) -> bool:
    """True when the rollup is behind the samples (older version, no mark, or scrapes
    above the mark)."""
    version, mark, max_sid = state
    return version < SCHEMA_VERSION or mark is None or (max_sid or 0) > mark


def catch_up(conn: Connection) -> None:
    """Bring the rollup up to date with the samples, in one transaction.

    A version-1 store (no rollup yet) is rolled up whole by one INSERT ... SELECT of
    the delta rule, then marked version 2. `record_scrape` keeps the rollup current
    and raises the mark `rollup_sid` to the sid it wrote; scrapes above the mark were
    written by something else (an older lsops still running, a bulk loader): each
    such target is rolled up again from the hour of its first such scrape on."""
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
    if version < 2 or mark is None:
        conn.execute(rollup_table.delete())
        conn.execute(text(_rollup_select("")), {"start": MIN_MS, "end": MAX_MS})
    else:
        firsts = conn.execute(
            select(scrapes_table.c.target_id, func.min(scrapes_table.c.ts))
            .where(scrapes_table.c.sid > mark)
            .group_by(scrapes_table.c.target_id)
        ).all()
        for target_id, first in firsts:
            hour = hour_of(int(first))
            conn.execute(
                rollup_table.delete().where(
                    rollup_table.c.target_id == target_id,
                    rollup_table.c.hour_ts >= hour,
                )
            )
            conn.execute(
                text(_rollup_select("WHERE t.id = :tid")),
                {"tid": target_id, "start": hour_span(hour)[0], "end": MAX_MS},
            )
    set_meta(conn, "rollup_sid", str(max_sid or 0))
    set_meta(conn, "schema_version", str(SCHEMA_VERSION))


# --- the write path (record_scrape) ----------------------------------------------------


@functools.cache
def _rollup_upsert(kind: str) -> str:
    """Add the deltas of scrape :sid (of that kind, predecessor :psid) to the rollup rows
    (:tid, :hour, endpoint)."""
    assert kind in ("restart", "reset", "counter_drop", "same")
    return f"""
        INSERT INTO lsops_rollup
          (target_id, hour_ts, endpoint_id, requests, errors, time_sum_ms, resets)
        SELECT CAST(:tid AS INTEGER), CAST(:hour AS BIGINT), endpoint_id, d_n, d_e, d_t, is_reset
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
          resets = lsops_rollup.resets + excluded.resets"""


# The scrape (ts, sid) itself, the scrape just before it and the one just after it, of
# one target, in (ts, sid) order: two short walks of the index (target_id, ts).
_NEIGHBOURS_SQL = """
SELECT * FROM (
  SELECT CASE WHEN s.sid = :sid THEN 'me' ELSE 'prev' END AS side, s.sid, s.ts,
         s.uptime_start_ms, s.last_reset_ms, s.requests_total
  FROM lsops_scrapes s
  WHERE s.target_id = :tid AND s.ts <= :ts AND (s.ts < :ts OR s.sid <= :sid)
  ORDER BY s.ts DESC, s.sid DESC LIMIT 2
) a
UNION ALL
SELECT * FROM (
  SELECT 'next' AS side, s.sid, s.ts, s.uptime_start_ms, s.last_reset_ms, s.requests_total
  FROM lsops_scrapes s
  WHERE s.target_id = :tid AND s.ts >= :ts AND (s.ts > :ts OR s.sid > :sid)
  ORDER BY s.ts, s.sid LIMIT 1
) b"""

_RAISE_MARK_SQL = (
    "UPDATE lsops_meta SET value = :value WHERE key = 'rollup_sid' AND CAST(value AS BIGINT) < :sid"
)

_PG_PARAMS: dict[str, str] = {}


def _driver(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute a statement of the write path straight through the driver (no SQLAlchemy
    compilation: about a tenth of a millisecond less per statement). The statements are
    written with :name parameters (sqlite3's named style); psycopg gets %(name)s."""
    if conn.dialect.name == "postgresql":
        if sql not in _PG_PARAMS:
            _PG_PARAMS[sql] = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)
        sql = _PG_PARAMS[sql]
    return conn.exec_driver_sql(sql, params)


def _ts_or_none(row: Any) -> int | None:
    return None if row is None else int(row.ts)


def _sid_or_none(row: Any) -> int | None:
    return None if row is None else int(row.sid)


def roll_up(conn: Connection, target_id: int, sid: int, ts: int) -> None:
    """Add the deltas of the scrape just inserted (sid, ts) to the hourly rollup, in
    its transaction, then raise the mark `rollup_sid` to sid.

    A scrape's deltas depend only on the scrapes before it: its predecessor with
    metrics (`pred`) and, without one, the scrape just before it (`prev`). So the new
    scrape's own deltas are computed from those (found by the index (target_id, ts);
    kind decided as `SERIES_SQL` decides it, `series_kind`) and upserted into its
    hour's rows (one INSERT ... SELECT over both scrapes' samples by primary key).
    Written out of order (a backfill, segments collected side by side), it can change
    the deltas of ONE later scrape: the next one with metrics (`succ`), whose
    predecessor may now be this scrape, or whose scrape-before changed. When its kind
    or predecessor really changes (two new-series kinds count the same: whole values),
    succ's hour is recomputed from the samples (this scrape included when it falls in
    the same hour)."""
    rows = _driver(conn, _NEIGHBOURS_SQL, {"tid": target_id, "ts": ts, "sid": sid}).all()
    me = next(r for r in rows if r.side == "me")
    prev = next((r for r in rows if r.side == "prev"), None)
    nxt = next((r for r in rows if r.side == "next"), None)
    pred = prev
    if prev is not None and prev.requests_total is None:
        pred = _neighbour(conn, target_id, ts, sid, before=True)
    has_metrics = me.requests_total is not None
    recompute: int | None = None
    succ = nxt
    if nxt is not None and nxt.requests_total is None:
        # failed scrapes right after this one: succ's scrape-before is not this one,
        # so only a new predecessor (this scrape, with metrics) can change it
        succ = _neighbour(conn, target_id, ts, sid, before=False) if has_metrics else None
    if succ is not None:
        new_pred = me if has_metrics else pred
        if succ is nxt:
            old_kind = series_kind(succ, pred, _ts_or_none(prev))
            new_kind = series_kind(succ, new_pred, int(me.ts))
        elif pred is not None:  # the scrape-before does not count with a predecessor
            old_kind = series_kind(succ, pred, None)
            new_kind = series_kind(succ, new_pred, None)
        else:  # its scrape-before (not fetched) decided its kind: recompute
            old_kind, new_kind = "?", "!"
        same_deltas = (
            (old_kind == new_kind == "base")
            or (old_kind in NEW_SERIES_KINDS and new_kind in NEW_SERIES_KINDS)
            or (old_kind == new_kind and _sid_or_none(pred) == _sid_or_none(new_pred))
        )
        if not same_deltas:
            recompute = hour_of(int(succ.ts))
    hour = hour_of(int(me.ts))
    if has_metrics and recompute != hour:
        kind = series_kind(me, pred, _ts_or_none(prev))
        if kind != "base":
            _driver(
                conn,
                _rollup_upsert(kind),
                {"tid": target_id, "hour": hour, "sid": sid, "psid": _sid_or_none(pred)},
            )
    if recompute is not None:
        roll_up_hour(conn, target_id, recompute)
    _driver(conn, _RAISE_MARK_SQL, {"value": str(sid), "sid": sid})


def _neighbour(conn: Connection, target_id: int, ts: int, sid: int, *, before: bool) -> Any:
    """The nearest scrape WITH METRICS before (or after) (ts, sid) of the target."""
    s = scrapes_table.c
    if before:
        where = [s.ts <= ts, or_(s.ts < ts, s.sid < sid)]
        order = (s.ts.desc(), s.sid.desc())
    else:
        where = [s.ts >= ts, or_(s.ts > ts, s.sid > sid)]
        order = (s.ts.asc(), s.sid.asc())
    return conn.execute(
        select(s.sid, s.ts, s.uptime_start_ms, s.last_reset_ms, s.requests_total)
        .where(s.target_id == target_id, s.requests_total.is_not(None), *where)
        .order_by(*order)
        .limit(1)
    ).first()


def roll_up_hour(conn: Connection, target_id: int, hour: int) -> None:
    """Recompute the rollup rows of one hour of one target from the samples."""
    conn.execute(
        rollup_table.delete().where(
            rollup_table.c.target_id == target_id, rollup_table.c.hour_ts == hour
        )
    )
    lo, hi = hour_span(hour)
    conn.execute(
        text(_rollup_select("WHERE t.id = :tid")), {"tid": target_id, "start": lo, "end": hi}
    )
