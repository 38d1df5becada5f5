"""Seeded synthetic histories, written fast into the store's own schema.

`Store(url)` creates the schema (tables, keys, indexes, WAL); the rows are then written
in bulk with `sqlite3.executemany`, a day at a time, exactly as `Store.record_scrape`
would lay them out: one `lsops_scrapes` row per one-minute scrape, five `lsops_services`
rows (deep health), and one `lsops_samples` row per endpoint per scrape, inserted in
primary-key order (scrape by scrape) like the collector does. Raw payloads and error
records are not generated (see docs/benchmarks.md). Then the store is opened once, so
that it brings what it derives from the samples (the hourly rollup) up to date, as it
does after any bulk load.

Counters are cumulative per process, like the API's: Poisson traffic per endpoint with a
daily wave, per-endpoint latency and error rates, and a process restart every
`restart_days` (new uptime.start, counters back to zero).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from lsops_lib.models import is_monitoring
from lsops_lib.store import Store, codec, scrapes_table

MINUTE_MS = 60_000
DAY_MS = 86_400_000
SERVICES = ("database", "openai", "cache", "vectorDB", "tables")


def endpoint_paths(n: int) -> list[str]:
    """`n` endpoint paths, the LongSang routes first, two monitoring ones among them."""
    base = [
        "/api/copilot/chat",
        "/api/copilot/suggestions",
        "/api/projects",
        "/api/projects/:id",
        "/api/context/search",
        "/api/context/index/all",
        "/api/agents",
        "/api/workflows",
        "/api/workflows/:id/executions",
        "/api/copilot/feedback",
        "/health",
        "/metrics",
    ]
    paths = base[:n]
    i = 0
    while len(paths) < n:
        paths.append(f"/api/resource{i // 4}/{('list', 'get', 'update', 'search')[i % 4]}")
        i += 1
    return paths


@dataclass
class Dataset:
    url: str
    path: Path
    start: datetime
    end: datetime
    scrapes: int
    endpoints: int
    samples: int
    seconds: float  # to generate (all of it)
    derived_s: float = 0.0  # of which: the store bringing its derived tables up to date

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "scrapes": self.scrapes,
            "endpoints": self.endpoints,
            "samples": self.samples,
            "generate_s": round(self.seconds, 1),
            "derived_tables_s": round(self.derived_s, 1),
        }


def generate(
    path: Path,
    *,
    start: datetime,
    days: float,
    endpoints: int = 50,
    every_s: int = 60,
    seed: int = 0,
    restart_days: float = 9.5,
    target: str = "default",
) -> Dataset:
    """A store at `path` holding `days` of scrapes every `every_s` seconds of `endpoints`."""
    clock = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    with Store(url):
        pass  # the schema, keys and indexes, as lsops creates them
    rng = np.random.default_rng(seed)
    id_rng = np.random.default_rng(seed + 1_000_003)  # the scrape ids: random, as uuid4's
    paths = endpoint_paths(endpoints)
    # traffic per endpoint: a long tail (a few busy routes, many quiet ones), per minute
    rate = 40.0 / (1.0 + np.arange(endpoints)) ** 1.1
    latency = rng.lognormal(np.log(60.0), 0.9, endpoints)
    err_p = np.clip(rng.beta(0.6, 60.0, endpoints), 0.0, 0.3)
    step_ms = every_s * 1000
    start_ms = int(start.timestamp() * 1000)
    n_total = int(round(days * DAY_MS / step_ms))
    per_chunk = max(1, DAY_MS // step_ms)
    restart_every = max(1, int(restart_days * DAY_MS / step_ms))

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -200000")
    con.execute("BEGIN")
    con.execute("INSERT INTO lsops_targets (id, name) VALUES (1, ?)", (target,))
    con.executemany(
        "INSERT INTO lsops_endpoints (id, path, monitoring) VALUES (?, ?, ?)",
        [(i + 1, p, int(is_monitoring(p))) for i, p in enumerate(paths)],
    )
    con.execute("COMMIT")

    counts = np.zeros(endpoints, np.int64)
    tsum = np.zeros(endpoints, np.float64)
    errs = np.zeros(endpoints, np.int64)
    hits = misses = 0
    up_start = start_ms - 3_600_000
    pid = 4000
    eids = np.arange(1, endpoints + 1, dtype=np.int64)
    done = 0
    while done < n_total:
        n = min(per_chunk, n_total - done)
        idx = np.arange(done, done + n, dtype=np.int64)
        ts = start_ms + idx * step_ms
        hour = (ts % DAY_MS) / 3_600_000.0
        wave = 1.0 + 0.5 * np.sin((hour - 8.0) / 24.0 * 2 * np.pi)
        lam = (rate[None, :] * wave[:, None]) * (every_s / 60.0)
        new = rng.poisson(lam)
        # time sums in whole ms, as the API keeps them (its avgTime = total ms / count)
        new_t = np.rint(new * latency[None, :] * rng.gamma(8.0, 1 / 8.0, (n, 1)))
        new_e = rng.binomial(new, err_p[None, :])
        restart = (idx > 0) & (idx % restart_every == 0)
        c = np.empty((n, endpoints), np.int64)
        t = np.empty((n, endpoints), np.float64)
        e = np.empty((n, endpoints), np.int64)
        ups = np.empty(n, np.int64)
        pids = np.empty(n, np.int64)
        lo = 0
        for cut in [*np.flatnonzero(restart).tolist(), n]:
            if cut > lo:
                c[lo:cut] = counts + np.cumsum(new[lo:cut], axis=0)
                t[lo:cut] = tsum + np.cumsum(new_t[lo:cut], axis=0)
                e[lo:cut] = errs + np.cumsum(new_e[lo:cut], axis=0)
                ups[lo:cut] = up_start
                pids[lo:cut] = pid
                counts, tsum, errs = c[cut - 1].copy(), t[cut - 1].copy(), e[cut - 1].copy()
            if cut < n:  # a restart at scrape `cut`: counters start again from nothing
                counts[:] = 0
                tsum[:] = 0.0
                errs[:] = 0
                up_start = int(ts[cut]) - int(rng.integers(1_000, step_ms))
                pid += 1
            lo = cut
        safe = np.maximum(c, 1)
        avg = np.where(c > 0, t / safe, 0.0)
        er = np.where(c > 0, e / safe, 0.0)
        req_total = c.sum(axis=1)
        cache_ops = rng.poisson(30.0 * every_s / 60.0, n)
        cache_hit = rng.binomial(cache_ops, 0.8)
        ch = np.cumsum(cache_hit) + hits
        cm = np.cumsum(cache_ops - cache_hit) + misses
        hits, misses = int(ch[-1]), int(cm[-1])
        for r in np.flatnonzero(restart).tolist():  # cache counters restart too (approximately)
            ch[r:] -= ch[r] - cache_hit[r]
            cm[r:] -= cm[r] - (cache_ops[r] - cache_hit[r])
            hits, misses = int(ch[-1]), int(cm[-1])
        rss = (95 + 10 * np.sin(idx / 5000.0) + rng.normal(0, 1, n)) * 1024 * 1024
        # the API's percentiles are whole milliseconds (its avg is not)
        p50 = np.rint(rng.gamma(4.0, 12.0, n))
        p95 = np.rint(p50 * rng.uniform(2.5, 6.0, n))
        sids = idx + 1

        scrape_rows = [
            (
                sid,
                sid_uuid,
                1,
                tsv,
                sdt,
                12.5,
                1,
                1,
                "OK",
                200,
                (tsv - us) / 1000.0,
                pd_,
                int(rs),
                int(rs * 0.6),
                int(rs * 0.4),
                2_000_000,
                5,
                5,
                200,
                us,
                tsv - us,
                us,
                int(rq),
                int(rq),
                0,
                0,
                int(h),
                int(m),
                100,
                float(a50) * 1.2,
                1.0,
                float(a50),
                float(a95),
                float(np.rint(a95 * 1.3)),
                float(np.rint(a95 * 1.8)),
                0,
                0,
                3_600_000,
            )
            for sid, sid_uuid, sdt, tsv, us, pd_, rs, rq, h, m, a50, a95 in zip(
                sids.tolist(),
                scrape_uuids(id_rng, n),
                id_rng.integers(1, 40, n).tolist(),  # the server's clock, a few ms later
                ts.tolist(),
                ups.tolist(),
                pids.tolist(),
                rss.tolist(),
                req_total.tolist(),
                ch.tolist(),
                cm.tolist(),
                p50.tolist(),
                p95.tolist(),
                strict=True,
            )
        ]
        service_rows = [
            (sid, name, "OK", None, 12.0 if name == "database" else None)
            for sid in sids.tolist()
            for name in SERVICES
        ]
        sample_rows = zip(
            np.repeat(sids, endpoints).tolist(),
            np.tile(eids, n).tolist(),
            c.ravel().tolist(),
            avg.ravel().tolist(),
            er.ravel().tolist(),
            strict=True,
        )
        con.execute("BEGIN")
        con.executemany(_SCRAPE_INSERT, [tuple(r[i] for i in _THIN_AT) for r in scrape_rows])
        con.executemany(_DETAILS_INSERT, [tuple(r[i] for i in _DETAILS_AT) for r in scrape_rows])
        con.executemany(
            "INSERT INTO lsops_services (scrape_sid, service, status, message, response_time_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            service_rows,
        )
        con.executemany(
            "INSERT INTO lsops_samples (scrape_sid, endpoint_id, count, avg_time, error_rate) "
            "VALUES (?, ?, ?, ?, ?)",
            sample_rows,
        )
        con.execute("COMMIT")
        done += n
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    loaded = time.perf_counter()
    # Opening the store brings its derived tables (the hourly rollup of schema 2) up to
    # date with rows written behind its back, as after any bulk load; the collector would
    # have kept them current scrape by scrape.
    with Store(url):
        pass
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    derived_s = time.perf_counter() - loaded
    end = start + timedelta(milliseconds=n_total * step_ms)
    return Dataset(
        url=url,
        path=path,
        start=start,
        end=end,
        scrapes=n_total,
        endpoints=endpoints,
        samples=n_total * endpoints,
        seconds=time.perf_counter() - clock,
        derived_s=derived_s,
    )


_THIN_NAMES = {c.name for c in scrapes_table.columns} - {"prev_sid"}
_SCRAPE_COLUMNS = (
    "sid, scrape_id, target_id, ts, server_dt, duration_ms, ok, deep, health_status, "
    "health_http_status, uptime_s, pid, rss, heap_total, heap_used, external, checks_passed, "
    "checks_total, metrics_http_status, uptime_start_ms, uptime_duration_ms, last_reset_ms, "
    "requests_total, status_2xx, status_4xx, status_5xx, cache_hits, cache_misses, rt_count, "
    "rt_avg, rt_min, rt_p50, rt_p95, rt_p99, rt_max, errors_kept, errors_recent, time_window_ms"
)
_ALL = [c.strip() for c in _SCRAPE_COLUMNS.split(",")]
# a scrape is two rows (schema 4): what the SQL reads, and its details (its UUID & co)
_THIN = [c for c in _ALL if c == "sid" or c in _THIN_NAMES]
_DETAILS = [c for c in _ALL if c == "sid" or c not in _THIN_NAMES]
_THIN_AT = [_ALL.index(c) for c in _THIN]
_DETAILS_AT = [_ALL.index(c) for c in _DETAILS]
_SCRAPE_INSERT = (
    f"INSERT INTO lsops_scrapes ({', '.join(_THIN)}) VALUES ({', '.join('?' * len(_THIN))})"
)
_DETAILS_INSERT = (
    f"INSERT INTO lsops_scrape_details ({', '.join(_DETAILS)}) "
    f"VALUES ({', '.join('?' * len(_DETAILS))})"
)


def scrape_uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` random version-4 UUIDs, as the collector gives each scrape (`uuid.uuid4()`):
    122 random bits each, nothing a compressor can take away."""
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]


def raw_samples(path: Path) -> pd.DataFrame:
    """Every sample of a store (sid, endpoint_id, count, avg_time, error_rate): the packed
    blocks decoded (`lsops_lib.store.codec`) and the rows not packed yet."""
    con = sqlite3.connect(path)
    try:
        parts = [codec.decode(b) for (b,) in con.execute("SELECT body FROM lsops_sample_blocks")]
        rows = con.execute(
            "SELECT scrape_sid, endpoint_id, count, avg_time, error_rate FROM lsops_samples"
        ).fetchall()
    finally:
        con.close()
    s = codec.concat([*parts, codec.Samples.of_rows(rows)])
    return pd.DataFrame(
        {
            "sid": s.sid,
            "endpoint_id": s.eid,
            "count": s.count,
            "avg_time": s.avg,
            "error_rate": s.err,
        }
    )


def month_start(text: str) -> datetime:
    year, month = (int(x) for x in text.split("-"))
    return datetime(year, month, 1, tzinfo=UTC)
