"""The compact format's scrape rows (schema version 4): the wide columns of packed periods.

A scrape row keeps, for ever, what the SQL of the store reads (its key, target, instants,
ok, the series key and counters, its link); the other ~28 columns (health details,
memory, response-time percentiles, status counts...) of the scrapes of a packed period
move into one lsops_scrape_blocks row (typed columns, zlib: `codec.encode_rows`) and
are set to NULL in the row (a NULL costs a byte of the row's header). A row whose
`duration_ms` is not NULL is not packed yet (every write sets it).

Reads (`scrapes`, `health`, `scrape_figures` in reads.py) read the rows, then complete
the wide columns they name (`fill`: each is the row's value, else the block's), decoding
only those columns of only the blocks the window overlaps, into numpy object arrays (no
temporary table); a read naming no wide column decodes nothing. `service_columns` gives
the window's packed services rows likewise (`Store.services` joins and orders them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import codec
from .chain import driver

WIDE = (
    "duration_ms", "deep", "health_status", "health_http_status", "health_failure",
    "health_error", "uptime_s", "pid", "rss", "heap_total", "heap_used", "external",
    "checks_passed", "checks_total", "metrics_http_status", "metrics_failure",
    "failure_message", "uptime_duration_ms", "status_2xx", "status_4xx", "status_5xx",
    "rt_count", "rt_avg", "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max", "errors_kept",
    "errors_recent", "time_window_ms",
)  # fmt: skip

_ROWS_SQL = f"""SELECT sid, {", ".join(WIDE)} FROM lsops_scrapes
    WHERE target_id = :tid AND ts >= :lo AND ts < :hi AND duration_ms IS NOT NULL
    ORDER BY sid"""
_NULL_SQL = f"""UPDATE lsops_scrapes SET {", ".join(f"{c} = NULL" for c in WIDE)}
    WHERE target_id = :tid AND ts >= :lo AND ts < :hi AND duration_ms IS NOT NULL"""
_BLOCK_SQL = "SELECT body FROM lsops_scrape_blocks WHERE target_id = :tid AND period_ts = :p"
_DROP_SQL = "DELETE FROM lsops_scrape_blocks WHERE target_id = :tid AND period_ts = :p"
_INSERT_SQL = "INSERT INTO lsops_scrape_blocks (target_id, period_ts, body) VALUES (:tid, :p, :b)"


def pack(conn: Connection, params: dict[str, int], over: bool) -> None:
    """Move the wide columns of the scrapes of (:tid, [:lo, :hi)) not packed yet into the
    block of period :p (the caller's write transaction); `over`: the period is over, its
    block becomes one chunk."""
    rows = [tuple(r) for r in driver(conn, _ROWS_SQL, params).fetchall()]
    if not rows:
        return
    old = driver(conn, _BLOCK_SQL, params).scalar()
    body = codec.rows_block(None if old is None else bytes(old), rows, over)
    driver(conn, _DROP_SQL, params)
    driver(conn, _INSERT_SQL, {**params, "b": body})
    driver(conn, _NULL_SQL, params)


_WINDOW_SQL = """SELECT b.body FROM lsops_scrape_blocks b
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
    for (body,) in conn.execute(text(_WINDOW_SQL.format(target_where=target_where)), w):
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


_WINDOW_SERVICES_SQL = """SELECT b.body FROM lsops_service_blocks b
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
    for (body,) in conn.execute(text(_WINDOW_SERVICES_SQL.format(target_where=target_where)), w):
        parts.append(codec.decode_columns(body, range(5)))
    if not parts:
        return []
    out = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return out if len(out[0]) else []
