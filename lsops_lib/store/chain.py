"""The series links (schema version 3): each scrape with metrics points at its predecessor
in its target's series order (`series.SERIES_KEY`: process, reset, server clock,
counters), whoever collected it and whenever it was written.

- `link`: `record_scrape` links the scrape it just inserted, in its transaction: the new
  scrape gets its predecessor, its successor now points at it; returns the `Change`s of
  contribution this makes (the new scrape's, its successor's), for the rollup. A scrape
  without metrics links nothing, but can change whether the first scrape of the series
  is a baseline or a restart (its kind depends on the failed scrape before it).
- `relink`: the links of whole targets computed at once (one window function), for the
  migration and for scrapes a writer that keeps no links left behind.

Writers of one target are serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: the target
row is locked by `write_scrape`), so the neighbours found here are the neighbours.
"""

from __future__ import annotations

import re
from collections import namedtuple
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, NoResultFound

from .schema import SERIES_KEY
from .series import key_of, key_sql, prev_failed_sql, series_kind

_COLUMNS = (
    "sid, ts, ts + server_dt AS server_ts, uptime_start_ms, last_reset_ms, requests_total, prev_sid"
)
_KEY = key_sql()


class Contribution(NamedTuple):
    """What a scrape adds to the rollup: its deltas against `pred_sid` for its `kind`."""

    pred_sid: int | None
    kind: str


class Change(NamedTuple):
    """The contribution of scrape `sid` (filed at `ts`) goes from `old` to `new` (None:
    nothing, as for a scrape just written)."""

    sid: int
    ts: int
    old: Contribution | None
    new: Contribution | None


def _ordered(order: str, skip: int = 0) -> str:
    return ", ".join(f"{k.format(a='')} {order}" for k in SERIES_KEY[skip:])


def _neighbour_sql(before: bool) -> tuple[str, str, str]:
    """The nearest scrape with metrics before (after) a key, in three statements that each
    seek the series index (SQLite seeks no range over a row of expressions): in the same
    process and reset; else in an earlier (later) reset of the process; else in an
    earlier (later) process. The first that finds one is the neighbour."""
    op, order = ("<", "DESC") if before else (">", "ASC")
    us, lr, st = (k.format(a="") for k in SERIES_KEY[:3])
    head = f"""SELECT {_COLUMNS} FROM lsops_scrapes
        WHERE target_id = :tid AND requests_total IS NOT NULL AND """
    rest = ", ".join(k.format(a="") for k in SERIES_KEY[2:])
    # ordered by the key's columns after those fixed by equality (else SQLite sorts)
    return (
        f"{head}{us} = :k_us AND {lr} = :k_lr AND {st} {op}= :k_st"
        f" AND ({rest}) {op} (:k_st, :k_rq, :k_sid) ORDER BY {_ordered(order, 2)} LIMIT 1",
        f"{head}{us} = :k_us AND {lr} {op} :k_lr ORDER BY {_ordered(order, 1)} LIMIT 1",
        f"{head}{us} {op} :k_us ORDER BY {_ordered(order)} LIMIT 1",
    )


_PRED_SQL = _neighbour_sql(before=True)
_SUCC_SQL = _neighbour_sql(before=False)


def _neighbour(conn: Connection, statements: tuple[str, str, str], params: dict[str, int]) -> Any:
    for sql in statements:
        row = driver(conn, sql, params).first()
        if row is not None:
            return row
    return None


_FIRST_SQL = f"""SELECT {_COLUMNS} FROM lsops_scrapes
    WHERE target_id = :tid AND requests_total IS NOT NULL
    ORDER BY {_ordered("ASC")} LIMIT 1"""
_ME_SQL = f"SELECT {_COLUMNS} FROM lsops_scrapes WHERE sid = :sid"
_PREV_FAILED_SQL = f"""SELECT {prev_failed_sql("me")} FROM lsops_scrapes me
    WHERE me.sid = :sid"""
_PREV_FAILED_BUT_SQL = """SELECT MAX(f.ts) FROM lsops_scrapes f
    WHERE f.target_id = :tid AND f.requests_total IS NULL AND f.sid <> :but
      AND f.ts <= :ts AND (f.ts < :ts OR f.sid < :sid)"""
_SET_PREV_SQL = "UPDATE lsops_scrapes SET prev_sid = :prev WHERE sid = :sid"


def _key_params(row: Any) -> dict[str, int]:
    us, lr, st, rq, sid = key_of(row)
    return {"k_us": us, "k_lr": lr, "k_st": st, "k_rq": rq, "k_sid": sid}


def link(conn: Connection, target_id: int, sid: int) -> list[Change]:
    """Link the scrape `sid` of `target_id` just inserted (see the module docstring)."""
    me = driver(conn, _ME_SQL, {"sid": sid}).one()
    if me.requests_total is None:
        return _failed(conn, target_id, me)
    params = {"tid": target_id, **_key_params(me)}
    pred = _neighbour(conn, _PRED_SQL, params)
    succ = _neighbour(conn, _SUCC_SQL, params)
    pf = None if pred is not None else _prev_failed(conn, sid)
    changes = [Change(sid, int(me.ts), None, Contribution(_sid(pred), series_kind(me, pred, pf)))]
    if pred is not None:
        driver(conn, _SET_PREV_SQL, {"prev": int(pred.sid), "sid": sid})
    if succ is not None:
        old_pf = None if pred is not None else _prev_failed(conn, int(succ.sid))
        old = Contribution(_sid(pred), series_kind(succ, pred, old_pf))
        new = Contribution(sid, series_kind(succ, me, None))
        driver(conn, _SET_PREV_SQL, {"prev": sid, "sid": int(succ.sid)})
        changes.append(Change(int(succ.sid), int(succ.ts), old, new))
    return changes


def _failed(conn: Connection, target_id: int, me: Any) -> list[Change]:
    """A scrape without metrics: the first scrape of the series may change kind (baseline
    or restart), when this one is now the latest failed scrape before it."""
    first = driver(conn, _FIRST_SQL, {"tid": target_id}).first()
    if first is None or (int(first.ts), int(first.sid)) < (int(me.ts), int(me.sid)):
        return []
    old_pf = driver(
        conn,
        _PREV_FAILED_BUT_SQL,
        {"tid": target_id, "but": int(me.sid), "ts": int(first.ts), "sid": int(first.sid)},
    ).scalar()
    new_pf = int(me.ts) if old_pf is None else max(int(old_pf), int(me.ts))
    old = Contribution(None, series_kind(first, None, old_pf))
    new = Contribution(None, series_kind(first, None, new_pf))
    return [] if old == new else [Change(int(first.sid), int(first.ts), old, new)]


def _prev_failed(conn: Connection, sid: int) -> int | None:
    value = driver(conn, _PREV_FAILED_SQL, {"sid": sid}).scalar()
    return None if value is None else int(value)


def _sid(row: Any) -> int | None:
    return None if row is None else int(row.sid)


def relink(conn: Connection, target_id: int | None = None) -> None:
    """Compute the links of one target (None: every target) from the series order."""
    distinct = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    where = "" if target_id is None else "AND target_id = :tid"
    conn.execute(
        text(
            f"""UPDATE lsops_scrapes SET prev_sid = l.prev
            FROM (SELECT sid, LAG(sid) OVER (PARTITION BY target_id ORDER BY {_KEY}) AS prev
                  FROM lsops_scrapes WHERE requests_total IS NOT NULL {where}) AS l
            WHERE lsops_scrapes.sid = l.sid AND lsops_scrapes.prev_sid {distinct} l.prev"""
        ),
        {} if target_id is None else {"tid": target_id},
    )


_PG_PARAMS: dict[str, str] = {}


def driver(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute a statement of the write path straight through the driver: no SQLAlchemy
    compilation, and (in a transaction already begun) no result machinery either: the
    DBAPI cursor itself, its rows as named tuples (issue 14: SQLAlchemy's wrapping of a
    statement cost more CPU than most of the statements). The statements are written
    with :name parameters (sqlite3's named style); psycopg gets %(name)s. A driver error
    is raised as SQLAlchemy's (DBAPIError and its kinds), as exec_driver_sql would."""
    if conn.dialect.name == "postgresql":
        if sql not in _PG_PARAMS:
            _PG_PARAMS[sql] = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)
        sql = _PG_PARAMS[sql]
    if not conn.in_transaction():
        return conn.exec_driver_sql(sql, params)
    dbapi = conn.connection.driver_connection
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error) from exc
    return _Result(cursor)


class _Result:
    """What the write path asks of a result, over a DBAPI cursor."""

    __slots__ = ("_cursor", "_row")

    _types: dict[tuple[str, ...], Any] = {}

    def __init__(self, cursor: Any):
        self._cursor = cursor
        self._row = None
        if cursor.description is not None:
            names = tuple(d[0] for d in cursor.description)
            row = _Result._types.get(names)
            if row is None:
                row = _Result._types[names] = namedtuple("Row", names, rename=True)  # noqa: PYI024
            self._row = row

    @property
    def lastrowid(self) -> int:
        return int(self._cursor.lastrowid)

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def _make(self, raw: Any) -> Any:
        return None if raw is None else self._row._make(raw)  # type: ignore[union-attr]

    def first(self) -> Any:
        try:
            return self._make(self._cursor.fetchone()) if self._row else None
        finally:
            self._cursor.close()

    def one(self) -> Any:
        row = self.first()
        if row is None:
            raise NoResultFound("No row was found when one was required")
        return row

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def tuples(self) -> list[tuple[Any, ...]]:
        """Every row as the driver's plain tuple (no named tuple a row: bulk reads)."""
        try:
            return list(self._cursor.fetchall()) if self._row else []
        finally:
            self._cursor.close()

    def fetchall(self) -> list[Any]:
        try:
            return [self._row._make(r) for r in self._cursor.fetchall()] if self._row else []  # type: ignore[union-attr]
        finally:
            self._cursor.close()

    def __iter__(self) -> Any:
        return iter(self.fetchall())
