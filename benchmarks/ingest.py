"""lsops's CPU per stored scrape of 50 endpoints: parse the API's answers, store the scrape.

The answers are the API's own shapes (tests' reference samples: /api/health?deep=true and
/api/metrics with 50 endpoints whose counters rise scrape by scrape); each scrape is
`json.loads` + `parse_health` + `parse_metrics` + `Store.record_scrape` into a SQLite
store (raw payloads not kept, as Prometheus keeps none), a day of one-minute scrapes, so
that the packer's runs (`lsops_lib/store/pack.py`) are included in the average. CPU
seconds of this process (`time.process_time`) over the scrapes.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from lsops_lib.api import parse_health, parse_metrics
from lsops_lib.models import Scrape
from lsops_lib.store import Store

HEALTH = {
    "status": "OK",
    "timestamp": "2025-09-01T00:00:00.000Z",
    "uptime": 1234.5,
    "memory": {"rss": 71331840, "heapTotal": 30000000, "heapUsed": 17000000, "external": 2000000},
    "pid": 4242,
    "services": {
        name: {"status": "OK", "message": "Connected", "responseTime": 12}
        for name in ("database", "openai", "cache", "vectorDB", "tables")
    },
    "checks": {"database": True, "openai": True},
}


def _metrics(
    paths: list[str], counts: np.ndarray, tsum: np.ndarray, errs: np.ndarray, ts_ms: int
) -> dict[str, Any]:
    by_endpoint = {
        p: {
            "count": int(c),
            "avgTime": (float(t) / int(c)) if c else 0,
            "errorRate": (int(e) / int(c) * 100) if c else 0,
        }
        for p, c, t, e in zip(paths, counts.tolist(), tsum.tolist(), errs.tolist(), strict=True)
    }
    total = int(counts.sum())
    return {
        "success": True,
        "metrics": {
            "requests": {
                "total": total,
                "byEndpoint": by_endpoint,
                "byMethod": {"GET": total},
                "byStatus": {"2xx": total, "4xx": 0, "5xx": 0},
            },
            "responseTimes": {
                "count": 100,
                "avg": 20.5,
                "min": 0,
                "max": 79,
                "p50": 17,
                "p95": 40,
                "p99": 70,
            },
            "errors": {"total": 0, "recent": 0, "recentErrors": []},
            "cache": {"hits": total // 2, "misses": total // 3, "hitRate": 60},
            "uptime": {
                "start": ts_ms - 3_600_000,
                "duration": 3_600_000,
                "lastReset": ts_ms - 3_600_000,
            },
            "timestamp": ts_ms,
        },
    }


def lsops_ingest(tmp: Path, paths: list[str], start: Any, scrapes: int) -> dict[str, Any]:
    """CPU ms per stored scrape (see the module docstring)."""
    rng = np.random.default_rng(5)
    store_path = tmp / "ingest.sqlite"
    store_path.unlink(missing_ok=True)
    counts = np.zeros(len(paths), np.int64)
    tsum = np.zeros(len(paths), np.int64)
    errs = np.zeros(len(paths), np.int64)
    bodies = []
    for i in range(scrapes):  # the answers, prepared beforehand (the API's side)
        new = rng.poisson(40.0 / (1.0 + np.arange(len(paths))) ** 1.1)
        counts += new
        tsum += rng.integers(1, 120, len(paths)) * new
        errs += rng.binomial(new, 0.02)
        at = start + timedelta(minutes=i)
        ts_ms = int(at.timestamp() * 1000)
        health = {**HEALTH, "timestamp": at.isoformat().replace("+00:00", "Z")}
        bodies.append(
            (
                at,
                json.dumps(health).encode(),
                json.dumps(_metrics(paths, counts, tsum, errs, ts_ms)).encode(),
            )
        )
    with Store(f"sqlite:///{store_path}") as store:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for at, hbody, mbody in bodies:
            health = parse_health(json.loads(hbody), deep=True)
            metrics = parse_metrics(json.loads(mbody))
            store.record_scrape(
                Scrape(
                    id=str(uuid.uuid4()),
                    target="default",
                    collected_at=at,
                    duration_ms=5.0,
                    health=health,
                    metrics=metrics,
                )
            )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    size = store_path.stat().st_size
    store_path.unlink(missing_ok=True)
    return {
        "scrapes": scrapes,
        "ms_per_scrape": 1000 * cpu / scrapes,
        "wall_ms_per_scrape": round(1000 * wall / scrapes, 3),
        "cpu_s": round(cpu, 3),
        "file_bytes_per_endpoint_sample": round(size / (scrapes * len(paths)), 2),
    }
