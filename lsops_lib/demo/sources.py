"""The demo's Sentry, pm2 log files and `pm2 jlist` (issue 10), agreeing with the planted
incidents (`world.Plan`):

    outage     `Error: connect ECONNREFUSED 127.0.0.1:5432` (with its stack) every minute
               of it, and at its start `FATAL ERROR: ... JavaScript heap out of memory`;
               Sentry: an error issue and a fatal one
    latency    `⚠️ Slow query: N ms on /context/search` warnings every 10 minutes; Sentry:
               a warning issue
    new        a new error pattern mid-month (`❌ Express Error: Cannot read properties of
               undefined (reading 'embedding')`, every 30 minutes for 36 hours); Sentry: an
               issue resolved 4 days after it first appeared
    baseline   `✅ Context retrieved in N ms` every 30 minutes, `🚀 listening 3001` at
               each process start

The files are written as pm2 writes them (`YYYY-MM-DD HH:mm:ss Z: msg`, every line
stamped, out and error files) and rotated daily as pm2-logrotate does
(`api-error__2026-10-16_00-00-00.log`, older than 3 days gzipped). The Sentry stand-in
(`sim.sentry.SentryStandIn`, a real HTTP server on loopback) is collected at each virtual
day's end through the real client; `pm2 jlist` is a function printing pm2's JSON of the
app, hourly, read through the real parser. Everything is stored under the target
`default`, as the history.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..sim.sentry import SentryStandIn, SimIssue
from ..sources.collect import collect_logs, collect_sentry
from ..sources.pm2 import parse_jlist
from ..sources.settings import LogSettings, SentrySettings, SourceSettings
from ..store import sources as tables
from .folder import toml_string
from .world import Plan

TARGET = "default"
ZONE = timezone(timedelta(hours=7))  # the host's time zone in LongSang's own samples
TOKEN = "demo-sentry-token"  # the stand-in's; a real token is never written anywhere
NEW_PATTERN = "❌ Express Error: Cannot read properties of undefined (reading 'embedding')"
HEAP = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
REFUSED = "Error: connect ECONNREFUSED 127.0.0.1:5432"
FRAMES = [
    "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)",
    "    at Pool.connect (/srv/longsang/node_modules/pg-pool/index.js:45:11)",
]


def _stamp(ts: datetime) -> str:
    local = ts.astimezone(ZONE)
    zone = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S ") + zone[:3] + ":" + zone[3:]


def _every(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += step


def new_pattern_window(p: Plan) -> tuple[datetime, datetime, datetime]:
    """(first seen, last seen, resolved in Sentry) of the new error pattern."""
    base = max(p.start, p.month_start)
    first = base + timedelta(days=int(0.4 * (p.end - base).days), hours=10)
    return first, first + timedelta(hours=36), first + timedelta(days=4)


def entries(p: Plan, seed: int = 0) -> list[tuple[datetime, str, str, list[str]]]:
    """Every log entry of the window: (ts, stream out|error, message, continuation lines)."""
    rng = random.Random(seed)
    out: list[tuple[datetime, str, str, list[str]]] = []
    for t in _every(p.start, p.end, timedelta(minutes=30)):
        if not p.outage[0] <= t < p.outage[1]:
            out.append((t, "out", f"✅ Context retrieved in {rng.randint(40, 400)}ms", []))
    for t in [p.start, *p.restarts]:
        out.append((t + timedelta(seconds=2), "out", "🚀 listening 3001", []))
    out.append((p.outage[0], "error", HEAP, []))
    for t in _every(p.outage[0] + timedelta(minutes=1), p.outage[1], timedelta(minutes=1)):
        out.append((t, "error", REFUSED, list(FRAMES)))
    for t in _every(p.latency[0], p.latency[1], timedelta(minutes=10)):
        out.append(
            (t, "error", f"⚠️ Slow query: {rng.randint(1800, 4200)} ms on {p.slow_endpoint}", [])
        )
    first, last, _ = new_pattern_window(p)
    for t in _every(first, last, timedelta(minutes=30)):
        out.append((t, "error", NEW_PATTERN, ["    at embed (/srv/longsang/api/context.js:88:31)"]))
    out.sort(key=lambda e: e[0])
    return out


def write_logs(folder: Path, p: Plan, seed: int = 0) -> dict[str, int]:
    """The pm2 files of the window, rotated at each midnight UTC (the last day in
    api-out.log / api-error.log); returns the entries written per stream."""
    folder.mkdir(parents=True, exist_ok=True)
    by_day: dict[tuple[str, datetime], list[str]] = {}
    counts = {"out": 0, "error": 0}
    for ts, stream, message, more in entries(p, seed):
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        lines = by_day.setdefault((stream, day), [])
        lines.extend(f"{_stamp(ts)}: {text}\n" for text in [message, *more])
        counts[stream] += 1
    last_day = (p.end - timedelta(seconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for (stream, day), lines in sorted(by_day.items()):
        data = "".join(lines).encode()
        if day >= last_day:
            (folder / f"api-{stream}.log").write_bytes(data)
            continue
        rotated = day + timedelta(days=1)
        name = f"api-{stream}__{rotated:%Y-%m-%d_%H-%M-%S}.log"
        if last_day - day > timedelta(days=3):
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    for stream in counts:  # pm2 keeps both files open, written to or not
        (folder / f"api-{stream}.log").touch()
    return counts


def sentry_issues(p: Plan) -> list[SimIssue]:
    """The stand-in's issues, their events at the planted incidents."""
    first, last, resolved = new_pattern_window(p)
    outage = list(_every(p.outage[0] + timedelta(minutes=1), p.outage[1], timedelta(minutes=1)))
    slow = list(_every(p.latency[0], p.latency[1], timedelta(minutes=10)))
    return [
        SimIssue(
            "4001", "LONGSANG-API-1", REFUSED, "pg-pool in Pool.connect", "error", events=outage
        ),
        SimIssue("4002", "LONGSANG-API-2", HEAP, "node", "fatal", events=[p.outage[0]]),
        SimIssue(
            "4003",
            "LONGSANG-API-3",
            f"Slow query on {p.slow_endpoint}",
            "db.query",
            "warning",
            events=slow,
        ),
        SimIssue(
            "4004",
            "LONGSANG-API-4",
            "TypeError: Cannot read properties of undefined (reading 'embedding')",
            "context.embed",
            "error",
            events=list(_every(first, last, timedelta(minutes=30))),
            resolved_at=resolved,
        ),
    ]


def jlist(p: Plan, now: datetime, rng: random.Random) -> str:
    """`pm2 jlist` of the app at `now`, in pm2's shape (the fields lsops reads)."""
    restarts = sum(1 for r in p.restarts if r <= now)
    started = max([p.start - timedelta(hours=6), *[r for r in p.restarts if r <= now]])
    busy = p.latency[0] <= now < p.latency[1]
    cpu = rng.uniform(25.0, 45.0) if busy else rng.uniform(3.0, 12.0)
    return json.dumps(
        [
            {
                "pid": 2968 + restarts,
                "name": "longsang-api",
                "pm_id": 0,
                "monit": {"memory": 60_000_000 + rng.randint(0, 9_000_000), "cpu": round(cpu, 1)},
                "pm2_env": {
                    "status": "online",
                    "restart_time": restarts,
                    "unstable_restarts": 0,
                    "pm_uptime": int(started.timestamp() * 1000),
                    "env": {"OPENAI_API_KEY": "never-kept"},
                },
            }
        ]
    )


def plant(store: Any, p: Plan, folder: Path, *, seed: int = 0) -> dict[str, Any]:
    """Write the log files into `folder`, serve Sentry on loopback, and collect the three
    sources into `store` as `lsops collect` would have over the window."""
    counts = write_logs(folder, p, seed)
    logs = SourceSettings(logs=LogSettings(paths=(str(folder / "api-*.log*"),)))
    stored = collect_logs(store, logs, TARGET)
    for day_end in _every(
        p.start + timedelta(days=1), p.end + timedelta(seconds=1), timedelta(days=1)
    ):
        # as a daily collection would have: each day's outcome, for the checklist's windows
        for name in ("logs", "pm2"):
            tables.record_source_run(store, TARGET, name, day_end, ok=True, items=None, error=None)

    clock = {"now": p.start}
    stand_in = SentryStandIn(token=TOKEN, now=lambda: clock["now"])
    stand_in.issues = sentry_issues(p)
    stand_in.start()
    try:
        sentry = SourceSettings(
            sentry=SentrySettings(
                url=stand_in.url, org=stand_in.org, project=stand_in.project, token=TOKEN
            )
        )
        issues = 0
        for day_end in _every(
            p.start + timedelta(days=1), p.end + timedelta(seconds=1), timedelta(days=1)
        ):
            clock["now"] = day_end
            issues = collect_sentry(store, sentry, TARGET, day_end)
            tables.record_source_run(
                store, TARGET, "sentry", day_end, ok=True, items=issues, error=None
            )
    finally:
        stand_in.stop()

    rng = random.Random(seed + 1)
    rows = [
        {**proc, "ts": now}
        for now in _every(p.start, p.end, timedelta(hours=1))
        for proc in parse_jlist(jlist(p, now, rng), "longsang-api", now)
    ]
    samples = tables.record_pm2(store, TARGET, None, rows)
    return {
        "log_entries": stored,
        "written": counts,
        "sentry_issues": len(tables.sentry_issues(store, TARGET)),  # every one stored
        "pm2_samples": samples,
    }


def settings_toml(folder: Path) -> str:
    """The lines of the [logs] section of the demo's lsops.toml (`lsops logs` then reads
    the files; `DemoFolder.add_config("logs", ...)` writes them)."""
    return f"paths = [{toml_string(str(folder / 'api-*.log*'))}]\n"


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
