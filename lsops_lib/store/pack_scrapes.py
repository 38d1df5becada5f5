"""The compact format's scrape details (schema version 4): packed with their period.

A scrape is two rows: lsops_scrapes keeps, for ever, what the SQL of the store reads (its
target, instants, ok, the series key and counters, its link); lsops_scrape_details holds
the rest (its UUID, health details, memory, response-time percentiles, status counts...).
When a period is packed, the details rows of its scrapes move into one
lsops_scrape_blocks row (typed columns, zstd: `codec.encode_rows`) and are deleted.

Reads (`scrapes`, `health`, `scrape_figures` in reads.py) LEFT JOIN the details rows,
then complete the columns they name (`fill`: each is the details row's value, else the
block's), decoding only those columns of only the blocks the window overlaps, into numpy
object arrays (no temporary table); a read naming no detail column decodes nothing.
`find_raw` finds a packed scrape by its UUID; `service_columns` gives the window's packed
services rows likewise (`Store.services` joins and orders them).

The raw payloads (lsops_raw: one zlib body per part a scrape) of a packed period move
into one lsops_raw_blocks row likewise (schema version 5: `codec.payloads_block`, the
bodies of one part one after the other, zstd over them all: each answer mostly repeats
the one before).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import codec
from .chain import driver
from .schema import scrape_details_table

# the columns of a block row after its sid, in the table's order
WIDE = tuple(c.name for c in scrape_details_table.columns if c.name != "sid")

_ROWS_SQL = f"""SELECT d.sid, {", ".join(f"d.{c}" for c in WIDE)}
    FROM lsops_scrape_details d JOIN lsops_scrapes s ON s.sid = d.sid
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi
    ORDER BY d.sid"""
_DELETE_SQL = """DELETE FROM lsops_scrape_details WHERE sid IN
    (SELECT sid FROM lsops_scrapes WHERE target_id = :tid AND ts >= :lo AND ts < :hi)"""
_BLOCK_SQL = "SELECT body FROM lsops_scrape_blocks WHERE target_id = :tid AND period_ts = :p"


def pack(conn: Connection, params: dict[str, int], over: bool) -> None:
    """Move the details rows of the scrapes of (:tid, [:lo, :hi)) into the block of
    period :p (the caller's write transaction); `over`: the period is over, its block
    becomes one chunk."""
    pack_rows(conn, params, over, _ROWS_SQL, "lsops_scrape_blocks", _DELETE_SQL)


def pack_rows(
    conn: Connection,
    params: dict[str, int],
    over: bool,
    rows_sql: str,
    blocks: str,
    delete_sql: str,
    block: Callable[[bytes | None, list[Any], bool], bytes] = codec.rows_block,
) -> None:
    """The rows `rows_sql` selects (first column a sid) added to the row block of
    (:tid, :p) in the table `blocks` (`block`: `codec.rows_block`), then deleted
    (`delete_sql`)."""
    rows = list(driver(conn, rows_sql, params).tuples())
    if not rows:
        return
    key = "WHERE target_id = :tid AND period_ts = :p"
    old = driver(conn, f"SELECT body FROM {blocks} {key}", params).scalar()
    with codec.block_of(blocks, params["tid"], params["p"]):
        body = block(None if old is None else bytes(old), rows, over)
    driver(conn, f"DELETE FROM {blocks} {key}", params)
    insert = f"INSERT INTO {blocks} (target_id, period_ts, body) VALUES (:tid, :p, :b)"
    driver(conn, insert, {**params, "b": body})
    driver(conn, delete_sql, params)


def packed_sid(conn: Connection, target_id: int, p: int, scrape_id: str) -> int | None:
    """The sid of the scrape `scrape_id` if the block of (target, period :p) packs it,
    else None (`codec.find_id`: the block's other ids are not decoded)."""
    body = driver(conn, _BLOCK_SQL, {"tid": target_id, "p": p}).scalar()
    if body is None:
        return None
    with codec.block_of("lsops_scrape_blocks", target_id, p):
        row = codec.find_id(bytes(body), 1, scrape_id, [0])
    return None if row is None else int(row[0])


# --- raw payloads (schema version 5) ---------------------------------------------------------

_RAW_ROWS_SQL = """SELECT r.scrape_sid, r.part, r.body
    FROM lsops_raw r JOIN lsops_scrapes s ON s.sid = r.scrape_sid
    WHERE s.target_id = :tid AND s.ts >= :lo AND s.ts < :hi"""
_DELETE_RAW_SQL = """DELETE FROM lsops_raw WHERE scrape_sid IN
    (SELECT sid FROM lsops_scrapes WHERE target_id = :tid AND ts >= :lo AND ts < :hi)"""


def _payloads_block(old: bytes | None, rows: list[Any], over: bool) -> bytes:
    """`codec.payloads_block` of the rows of lsops_raw (their bodies zlib streams)."""
    try:
        plain = [(int(sid), str(part), zlib.decompress(body)) for sid, part, body in rows]
    except zlib.error as exc:
        raise codec.DamagedBlock(f"a raw payload row: {exc}") from None
    return codec.payloads_block(old, plain, over)


def pack_raw(conn: Connection, params: dict[str, int], over: bool) -> None:
    """Move the raw payloads of the scrapes of (:tid, [:lo, :hi)) into the payload block
    of period :p (the caller's write transaction), as `pack` the details rows."""
    pack_rows(
        conn, params, over, _RAW_ROWS_SQL, "lsops_raw_blocks", _DELETE_RAW_SQL, _payloads_block
    )


# the periods that may hold packed raw payloads: their blocks, and the rows of packed
# scrapes a migration to version 5 has not moved yet
_RAW_PERIODS_SQL = """SELECT target_id, period_ts FROM lsops_raw_blocks
    UNION SELECT DISTINCT s.target_id, (s.ts / :period) * :period FROM lsops_raw r
    JOIN lsops_scrapes s ON s.sid = r.scrape_sid
    LEFT JOIN lsops_scrape_details d ON d.sid = s.sid
    WHERE d.sid IS NULL"""
_RAW_BLOCK_SQL = "SELECT body FROM lsops_raw_blocks WHERE target_id = :tid AND period_ts = :p"


def find_raw(conn: Connection, scrape_id: str, period: int) -> tuple[int, int, int] | None:
    """(sid, target id, period) of the packed scrape `scrape_id` among those with raw
    payloads (their periods' scrape blocks searched), or None."""
    if not period:
        return None
    damaged: codec.DamagedBlock | None = None
    for tid, p in driver(conn, _RAW_PERIODS_SQL, {"period": period}).fetchall():
        try:
            sid = packed_sid(conn, int(tid), int(p), scrape_id)
        except codec.DamagedBlock as exc:  # the scrape may be in another one
            damaged = damaged or exc
            continue
        if sid is not None:
            return sid, int(tid), int(p)
    if damaged is not None:  # or in the one that does not decode
        raise damaged
    return None


def packed_payload(conn: Connection, sid: int, target_id: int, p: int, part: str) -> bytes | None:
    """The body of `part` of the scrape `sid` in the payload block of (target, period)."""
    body = driver(conn, _RAW_BLOCK_SQL, {"tid": target_id, "p": p}).scalar()
    if body is None:
        return None
    with codec.block_of("lsops_raw_blocks", target_id, p):
        for _, name, payload in codec.decode_payloads(bytes(body), {sid}):
            if name == part:
                return payload
    return None


_WINDOW_SQL = """SELECT b.body, b.target_id, b.period_ts FROM lsops_scrape_blocks b
    WHERE b.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
      AND b.period_ts < :end AND b.period_ts > :start - :period"""


def fill(
    conn: Connection,
    target_where: str,
    params: dict[str, Any],
    period: int,
    sids: np.ndarray,
    columns: dict[str, np.ndarray],
) -> None:
    """Complete `columns` ({WIDE name: object array, one value per row of `sids`, None
    for NULL}) of the scrape rows `sids` read from lsops_scrapes in [:start, :end): a
    NULL of a packed row becomes its block's value. Only the blocks the window overlaps
    are decoded, each once, and of each only the columns asked for. Read the rows
    first, the blocks then: a period packed in between has its values in both."""
    if not columns or not period or not len(sids):
        return
    names = list(columns)
    index = [WIDE.index(n) + 1 for n in names]  # column 0 of a block row is the sid
    parts: list[dict[int, np.ndarray]] = []
    w = {**params, "period": period}
    for body, tid, p in conn.execute(text(_WINDOW_SQL.format(target_where=target_where)), w):
        with codec.block_of("lsops_scrape_blocks", tid, p):
            parts.append(codec.decode_columns(body, [0, *index]))
    if not parts:
        return
    bsids = np.concatenate([p[0] for p in parts]).astype(np.int64)
    if not len(bsids):
        return
    order = np.argsort(bsids, kind="stable")
    bsids = bsids[order]
    pos = np.minimum(np.searchsorted(bsids, sids), len(bsids) - 1)
    found = bsids[pos] == sids
    for n, i in zip(names, index, strict=True):
        col = columns[n]
        take = found & pd.isna(col)  # NULL in the row (a driver's NaN is no row value either)
        if take.any():
            block = np.concatenate([p[i] for p in parts])[order]
            col[take] = block[pos[take]]


_WINDOW_SERVICES_SQL = """SELECT b.body, b.target_id, b.period_ts FROM lsops_service_blocks b
    WHERE b.target_id IN (SELECT t.id FROM lsops_targets t {target_where})
      AND b.period_ts < :end AND b.period_ts > :start - :period"""


def service_columns(
    conn: Connection, target_where: str, params: dict[str, Any], period: int
) -> list[np.ndarray]:
    """The packed services rows of the periods [:start, :end) overlaps, by columns
    (scrape_sid, service, status, message, response_time_ms; object arrays, None for
    NULL), each block decoded once; [] when there are none. The caller keeps the rows
    of its scrapes."""
    if not period:
        return []
    w = {**params, "period": period}
    parts: list[dict[int, np.ndarray]] = []
    for body, tid, p in conn.execute(
        text(_WINDOW_SERVICES_SQL.format(target_where=target_where)), w
    ):
        with codec.block_of("lsops_service_blocks", tid, p):
            parts.append(codec.decode_columns(body, range(5)))
    if not parts:
        return []
    out = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return out if len(out[0]) else []
