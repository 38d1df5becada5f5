"""`store_bytes`, `hourly_vs_peer` and `ingest_cpu`: lsops beside Prometheus, same data.

store_bytes: the whole 30-day store file (SQLite, after a WAL checkpoint) per
    endpoint-sample; baseline: Prometheus's storage folder (blocks and index, after its
    compaction) per endpoint-sample of the same history (3 counters per endpoint).
hourly_vs_peer: the 30-day hourly per-endpoint read (`history_query`'s figure) against
    Prometheus's three `increase(...[1h])` range queries over the same 30 days.
ingest_cpu: lsops's CPU per stored scrape of 50 endpoints (parse + record_scrape,
    `ingest.py`) against Prometheus's CPU per scrape of the same 150 series.
Where Prometheus cannot be installed, the baselines are missing and only the absolute
goals are judged (`peer` in the details says why).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import prometheus_peer as peer
from common import Context, Result
from datasets import Dataset, endpoint_paths

MAX_BYTES = 7.0


def _file_bytes(data: Dataset) -> tuple[float, dict[str, Any]]:
    con = sqlite3.connect(data.path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = {
            name: int(size)
            for name, size in con.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            )
        }
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        page = con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    size = data.path.stat().st_size
    per_table = {
        k: round(v / data.samples, 3) for k, v in tables.items() if v / data.samples >= 0.01
    }
    return size / data.samples, {
        "file_bytes": size,
        "bytes_per_endpoint_sample_by_table": per_table,
        "free_pages": free,
        "page_size": page,
    }


def peer_figures(ctx: Context) -> list[Result]:
    data: Dataset = ctx.cache["history"]
    lsops_bytes, bytes_details = _file_bytes(data)
    ctx.log(f"  lsops store: {lsops_bytes:.2f} bytes per endpoint-sample (whole file)")
    ok, how = peer.available()
    ctx.log(f"  prometheus: {how}")
    work = ctx.tmp / "prometheus"
    work.mkdir(exist_ok=True)
    prom: dict[str, Any] = {"available": ok, "how": how}
    prom_bytes = prom_query = prom_cpu = None
    if ok:
        prom["version"] = peer.version()
        try:
            prom.update(peer.build_tsdb(data.path, work, ctx.log))
            server = peer.Server(work)
            try:
                prom["blocks_after_compaction"] = server.settle(ctx.log, 240 if ctx.quick else 420)
                prom_bytes = peer.folder_bytes(work / "data") / data.samples
                start_ms = int(data.start.timestamp() * 1000)
                end_ms = int(data.end.timestamp() * 1000)
                best = float("inf")
                for _ in range(2 if ctx.quick else 3):
                    t0 = time.perf_counter()
                    answers = server.increase_hourly(start_ms, end_ms)
                    best = min(best, time.perf_counter() - t0)
                prom_query = best
                prom["increase_series"] = [len(a) for a in answers]
                prom["increase_requests_total"] = round(
                    sum(float(v[1]) for s in answers[0] for v in s["values"]), 1
                )
            finally:
                server.stop()
            cpu = peer.scrape_cpu(
                work / "cpu", endpoint_paths(data.endpoints), 20 if ctx.quick else 40, ctx.log
            )
            prom["scrape_cpu"] = cpu
            prom_cpu = cpu["ms_per_scrape"]
        except Exception as exc:  # noqa: BLE001 - the peer failing must not hide lsops's figures
            prom["error"] = f"{type(exc).__name__}: {exc}"
            ctx.log(f"  prometheus failed: {prom['error']}")
    ctx.cache["peer"] = prom

    from ingest import lsops_ingest

    ingest = lsops_ingest(
        ctx.tmp, endpoint_paths(data.endpoints), data.start, 240 if ctx.quick else 1440
    )
    ctx.log(f"  lsops ingest: {ingest['ms_per_scrape']:.2f} ms CPU per scrape")

    sql_s = ctx.cache.get("history_query_s")
    side = {
        "store_bytes_per_endpoint_sample": [round(lsops_bytes, 2), _r(prom_bytes)],
        "hourly_read_s": [_r(sql_s, 3), _r(prom_query, 3)],
        "cpu_ms_per_scrape": [round(ingest["ms_per_scrape"], 3), _r(prom_cpu, 3)],
    }
    common = {"peer": prom, "side_by_side": side}
    size_met = lsops_bytes <= MAX_BYTES and (prom_bytes is None or lsops_bytes <= prom_bytes)
    return [
        Result(
            "store_bytes",
            lsops_bytes,
            "B/sample",
            prom_bytes,
            "value <= 7 bytes per endpoint-sample and <= Prometheus's (ratio <= 1)",
            size_met,
            {"dataset": data.as_dict(), **bytes_details, **common},
        ),
        Result(
            "hourly_vs_peer",
            sql_s,
            "s",
            prom_query,
            "ratio <= 0.3 (Prometheus: three increase() range queries)",
            None if prom_query is None or sql_s is None else sql_s / prom_query <= 0.3,
            {"peer_query_s": _r(prom_query, 3), **common},
        ),
        Result(
            "ingest_cpu",
            ingest["ms_per_scrape"],
            "ms",
            prom_cpu,
            "ratio <= 1.5 (CPU per scrape of 50 endpoints against Prometheus's)",
            None if not prom_cpu else ingest["ms_per_scrape"] / prom_cpu <= 1.5,
            {"lsops": ingest, **common},
        ),
    ]


def _r(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(float(x), digits)
