"""The compact format's scrape rows (schema version 4): the wide columns of packed periods.

A scrape row keeps, for ever, what the SQL of the store reads (its key, target, instants,
ok, the series key and counters, its link); the other ~28 columns (health details,
memory, response-time percentiles, status counts...) of the scrapes of a packed period
move into one lsops_scrape_blocks row (typed columns, zlib: `codec.encode_rows`) and
are set to NULL in the row (a NULL costs a byte of the row's header). A row whose
`duration_ms` is not NULL is not packed yet (every write sets it). Reads of whole scrape
rows (`scrapes`, `health`, `scrape_figures`) see the columns through `scrapes_source`:
each wide column is the row's value, else the block's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Text, text
from sqlalchemy.engine import Connection

from . import codec
from .chain import driver
from .schema import scrapes_table

WIDE = (
    "duration_ms", "deep", "health_status", "health_http_status", "health_failure",
    "health_error", "uptime_s", "pid", "rss", "heap_total", "heap_used", "external",
    "checks_passed", "checks_total", "metrics_http_status", "metrics_failure",
    "failure_message", "uptime_duration_ms", "status_2xx", "status_4xx", "status_5xx",
    "rt_count", "rt_avg", "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max", "errors_kept",
    "errors_recent", "time_window_ms",
)  # fmt: skip
UNPACKED = "lsops_unpacked_scrapes"

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


def _sql_type(name: str, pg: bool) -> str:
    col = scrapes_table.c[name].type
    if isinstance(col, Boolean):
        return "BOOLEAN" if pg else "INTEGER"
    if isinstance(col, Float):
        return "DOUBLE PRECISION" if pg else "REAL"
    if isinstance(col, Integer):
        return "BIGINT" if pg else "INTEGER"
    assert isinstance(col, (String, Text))
    return "TEXT"


def scrapes_source(conn: Connection, target_where: str, params: dict[str, Any], period: int) -> str:
    """The scrape rows a read of [:start, :end) sees: lsops_scrapes, or (packed periods
    in the window) the rows with their wide columns taken from the blocks."""
    if (
        not period
        or conn.exec_driver_sql("SELECT 1 FROM lsops_scrape_blocks LIMIT 1").first() is None
    ):
        return "lsops_scrapes"
    rows: list[tuple[Any, ...]] = []
    w = {**params, "period": period}
    for (body,) in conn.execute(text(_WINDOW_SQL.format(target_where=target_where)), w):
        rows += codec.decode_rows(body)
    if not rows:
        return "lsops_scrapes"
    pg = conn.dialect.name == "postgresql"
    columns = ", ".join(f"{c} {_sql_type(c, pg)}" for c in WIDE)
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {UNPACKED} (sid BIGINT PRIMARY KEY, {columns})"
    )
    names = f"sid, {', '.join(WIDE)}"
    if pg:
        conn.exec_driver_sql(f"TRUNCATE {UNPACKED}")
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {UNPACKED} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(f"DELETE FROM {UNPACKED}")
        marks = ", ".join("?" * (len(WIDE) + 1))
        conn.exec_driver_sql(f"INSERT INTO {UNPACKED} ({names}) VALUES ({marks})", rows)
    kept = [c.name for c in scrapes_table.c if c.name not in WIDE]
    select = ", ".join(
        [*(f"s0.{c}" for c in kept), *(f"COALESCE(s0.{c}, u.{c}) AS {c}" for c in WIDE)]
    )
    return (
        f"(SELECT {select} FROM lsops_scrapes s0 LEFT JOIN {UNPACKED} u ON u.sid = s0.sid"
        " WHERE s0.ts >= :start AND s0.ts < :end)"
    )
