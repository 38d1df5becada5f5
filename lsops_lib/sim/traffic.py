"""The traffic engine: what the scenario sends, counted as the Node process counts it.

`Traffic` holds the state of the simulated process (`NodeProcess`: the counters, the
window of the last 1000 requests, the error records, the `performance` ops) and the
ground-truth ledger of everything sent. Traffic is generated lazily, vectorized with
numpy from a seeded Generator: `advance(t)` adds everything the scenario sent between
the previous call and `t`, in stretches of constant conditions (cut at event bounds),
crossing the scenario's scheduled restarts.

Timing rule (so that interval totals are exact): a counter snapshot taken at instant T
contains exactly the requests that arrived before T. A monitoring request answered at T
is counted at T + its duration (`count_answer`: as the server counts a request when its
response finishes), so a health check and a metrics scrape at the same virtual instant
do not see each other.

Two random streams, both from the scenario's seed: `rng` draws the traffic, `misc_rng`
the rest (pids here; answer durations, memory noise in the payloads and the server).
Their draws happen in request order, which keeps a seeded scenario's answers identical.
The engine is not thread-safe: its owner (`SimulatedAPI`) calls it under one lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from ..models import is_monitoring
from .clock import to_ms
from .scenario import Event, Scenario

WINDOW_KEEP = 1000  # the server keeps the last 1000 requests for window statistics
ERRORS_KEEP = 1000  # and the last 1000 error records
HEALTH_KEY = "/health"
METRICS_KEY = "/metrics"
ENDPOINT_METRICS_KEY = "/metrics/endpoint/:endpoint"
_LAT_SIGMA = 0.5
# `performance` ops the server tracks around OpenAI and vector calls: (op, route, share of
# the request's time, whether `min` is kept: the OpenAI one keeps `min: null`)
_PERFORMANCE_OPS = (
    ("openai.chat", "/copilot/chat", 0.85, False),
    ("vector.search", "/context/search", 0.6, True),
)


@dataclass
class Operation:
    """One `performance` op's running figures (shaped as JSON by the payloads)."""

    count: int = 0
    total_time: float = 0.0
    min: float | None = None
    max: float = 0.0
    last_duration: float = 0.0
    last_timestamp: int = 0


class NodeProcess:
    """The counters one Node process keeps in memory (gone when it dies)."""

    def __init__(self, start_ms: int, pid: int) -> None:
        self.start_ms = start_ms
        self.last_reset_ms = start_ms
        self.pid = pid
        self.count = np.zeros(0, np.int64)
        self.time_sum = np.zeros(0, np.float64)
        self.errors = np.zeros(0, np.int64)
        self.order: list[int] = []  # byEndpoint keys in first-seen order
        self.by_method: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.total = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.ring_ts = np.zeros(0, np.int64)
        self.ring_key = np.zeros(0, np.int32)
        self.ring_dur = np.zeros(0, np.int64)
        self.err_ts = np.zeros(0, np.int64)
        self.err_key = np.zeros(0, np.int32)
        self.err_method = np.zeros(0, np.int16)
        self.err_status = np.zeros(0, np.int16)
        self.err_exc = np.zeros(0, bool)
        self.performance: dict[str, Operation] = {}

    def grow(self, n_keys: int) -> None:
        if len(self.count) < n_keys:
            extra = n_keys - len(self.count)
            self.count = np.concatenate([self.count, np.zeros(extra, np.int64)])
            self.time_sum = np.concatenate([self.time_sum, np.zeros(extra, np.float64)])
            self.errors = np.concatenate([self.errors, np.zeros(extra, np.int64)])


_BATCH_FIELDS = ("ts", "key", "method", "dur", "status", "exc")


@dataclass
class Batch:
    """Requests, one array per field, in arrival order."""

    ts: np.ndarray  # int64 epoch ms, sorted
    key: np.ndarray  # int32 index into the key registry
    method: np.ndarray  # int16 index into the method registry
    dur: np.ndarray  # int64 ms
    status: np.ndarray  # int16
    exc: np.ndarray  # bool: an exception record is logged too

    @classmethod
    def empty(cls) -> Batch:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int16),
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, bool),
        )

    @classmethod
    def one(cls, at_ms: int, key: int, method: int, duration_ms: int, status: int) -> Batch:
        return cls(
            np.array([at_ms], np.int64),
            np.array([key], np.int32),
            np.array([method], np.int16),
            np.array([duration_ms], np.int64),
            np.array([status], np.int16),
            np.zeros(1, bool),
        )

    @classmethod
    def concat(cls, parts: Iterable[Batch]) -> Batch:
        parts = [p for p in parts if len(p.ts)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        merged = cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _BATCH_FIELDS))
        if all(b.ts[0] >= a.ts[-1] for a, b in zip(parts, parts[1:], strict=False)):
            return merged  # each part is sorted and they follow each other
        order = np.argsort(merged.ts, kind="stable")
        return cls(*(getattr(merged, f)[order] for f in _BATCH_FIELDS))


@dataclass
class _Registry:
    """Names (byEndpoint keys, methods) and their indices, in first-registered order."""

    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> int:
        idx = self.index.get(name)
        if idx is None:
            idx = len(self.names)
            self.names.append(name)
            self.index[name] = idx
        return idx


class Traffic:
    """The scenario's traffic and the simulated process that counts it."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = np.random.default_rng(scenario.seed)  # traffic
        self.misc_rng = np.random.default_rng([scenario.seed, 1])  # answers, pids, noise
        self._keys = _Registry()
        self._methods = _Registry()
        self.keys, self.key_index = self._keys.names, self._keys.index
        self.methods = self._methods.names
        specs = scenario.endpoints
        self._spec_key = np.array([self.key(s.path) for s in specs], np.int32)
        self._spec_method = np.array([self.method(s.method) for s in specs], np.int16)
        self._spec_rate = np.array([s.per_minute for s in specs], np.float64)
        self._spec_latency = np.array([max(s.latency_ms, 0.1) for s in specs], np.float64)
        self._spec_error = np.array([s.error_rate for s in specs], np.float64)
        self._spec_code4 = np.array([404 if ":id" in s.path else 400 for s in specs], np.int16)
        self._spec_paths = [s.path for s in specs]
        for key in (HEALTH_KEY, METRICS_KEY, ENDPOINT_METRICS_KEY):
            self.key(key)
        self.events = sorted(scenario.events, key=lambda e: e.start_ms)
        self._restarts = sorted({e.start_ms for e in self.events if e.kind == "restart"})
        bounds = set()
        for e in self.events:
            bounds.update((e.start_ms, e.end_ms))
        self._bounds = np.array(sorted(bounds), np.int64)
        start_ms = to_ms(scenario.start)
        self.gen_until = start_ms  # traffic is generated (and counted) up to here
        self._restart_pos = int(np.searchsorted(self._restarts, start_ms, side="right"))
        self.proc = NodeProcess(start_ms, self.new_pid(None))
        self._pending: list[Batch] = []  # answered monitoring requests, not yet counted
        self._ledger_parts: list[Batch] = []
        self._ledger_cache: Batch | None = None

    # -- registries and events ----------------------------------------------------------

    def key(self, path: str) -> int:
        """The index of a byEndpoint key (registered on first sight)."""
        return self._keys.add(path)

    def method(self, name: str) -> int:
        return self._methods.add(name)

    def new_pid(self, old: int | None) -> int:
        while True:
            pid = int(self.misc_rng.integers(1000, 65000))
            if pid != old:
                return pid

    def active(self, t_ms: int, kind: str) -> list[Event]:
        """The events of `kind` under way at `t_ms`."""
        return [e for e in self.events if e.kind == kind and e.start_ms <= t_ms < e.end_ms]

    # -- the process ----------------------------------------------------------------------

    def count_answer(
        self, at_ms: int, key: str, method: str, duration_ms: int, status: int
    ) -> None:
        """A request the server answered at `at_ms`: counted at `at_ms + duration_ms`."""
        self._pending.append(
            Batch.one(at_ms + duration_ms, self.key(key), self.method(method), duration_ms, status)
        )

    def flush_pending(self, now: int) -> int:
        """Count everything up to now; monitoring requests already answered go to the
        current process even when their counting instant (answer + duration) is later."""
        self.advance(now)
        if self._pending:
            batch, self._pending = Batch.concat(self._pending), []
            self._apply(batch, 0, 0)
        return now

    def new_process(self, at_ms: int) -> None:
        """A process start at `at_ms`: counters from zero, a new uptime.start and pid."""
        at_ms = max(at_ms, self.proc.start_ms + 1)
        self.proc = NodeProcess(at_ms, self.new_pid(self.proc.pid))
        self.gen_until = max(self.gen_until, at_ms)
        self._restart_pos = int(np.searchsorted(self._restarts, self.gen_until, side="right"))

    def empty_counters(self) -> None:
        """POST /api/metrics/reset: the same process, its counters emptied."""
        self.proc = NodeProcess(self.proc.start_ms, self.proc.pid)

    # -- generating ---------------------------------------------------------------------

    def _generate(self, a: int, b: int) -> tuple[Batch, int, int]:
        """Scenario traffic in [a, b) (constant conditions), plus cache hits/misses."""
        if b <= a or self.active(a, "outage"):
            return Batch.empty(), 0, 0
        rng = self.rng
        minutes = (b - a) / 60_000.0
        latency = self._spec_latency.copy()
        error = self._spec_error.copy()
        for e in self.active(a, "latency"):
            mask = (
                np.ones(len(latency), bool) if e.endpoint is None else self._spec_mask(e.endpoint)
            )
            latency[mask] *= float(e.value or 1.0)
        for e in self.active(a, "errors"):
            mask = np.ones(len(error), bool) if e.endpoint is None else self._spec_mask(e.endpoint)
            error[mask] = min(max(float(e.value or 0.0), 0.0), 1.0)
        hit_rate = self.scenario.cache_hit_rate
        for e in self.active(a, "cache"):
            hit_rate = min(max(float(e.value or 0.0), 0.0), 1.0)
        ops = int(rng.poisson(self.scenario.cache_ops_per_minute * minutes))
        hits = int(rng.binomial(ops, hit_rate)) if ops else 0

        amp = max(0.0, float(self.scenario.diurnal))
        counts = rng.poisson(self._spec_rate * minutes * (1.0 + amp))
        spec = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        ts = rng.integers(a, b, size=len(spec), dtype=np.int64)
        if amp > 0 and len(ts):
            hours = (ts % 86_400_000) / 3_600_000.0
            factor = 1.0 + amp * np.sin(2 * np.pi * (hours - 8.0) / 24.0)
            keep = rng.random(len(ts)) * (1.0 + amp) < factor
            spec, ts = spec[keep], ts[keep]
        order = np.argsort(ts, kind="stable")
        spec, ts = spec[order], ts[order]
        n = len(ts)
        mu = np.log(latency) - _LAT_SIGMA**2 / 2
        dur = np.rint(np.exp(mu[spec] + _LAT_SIGMA * rng.standard_normal(n))).astype(np.int64)
        failed = rng.random(n) < error[spec]
        server_side = rng.random(n) < 0.4
        status = np.full(n, 200, np.int16)
        status[failed & ~server_side] = self._spec_code4[spec][failed & ~server_side]
        status[failed & server_side] = 500
        exc = failed & server_side & (rng.random(n) < 0.5)
        batch = Batch(ts, self._spec_key[spec], self._spec_method[spec], dur, status, exc)
        return batch, hits, ops - hits

    def _spec_mask(self, path: str) -> np.ndarray:
        return np.array([p == path for p in self._spec_paths], bool)

    def advance(self, t1: int) -> None:
        """Count everything sent in [generated-until, t1): scenario traffic and answered
        monitoring requests, crossing scheduled restarts."""
        t0 = self.gen_until
        if t1 <= t0:
            return
        inner = self._bounds[(self._bounds > t0) & (self._bounds < t1)]
        points = [t0, *(int(x) for x in inner), t1]
        for a, b in zip(points, points[1:], strict=False):
            while (
                self._restart_pos < len(self._restarts) and self._restarts[self._restart_pos] <= a
            ):
                self.proc = NodeProcess(a, self.new_pid(self.proc.pid))
                self._restart_pos += 1
            batch, hits, misses = self._generate(a, b)
            due = [p for p in self._pending if len(p.ts) and p.ts[0] < b]
            if due:
                self._pending = [p for p in self._pending if not (len(p.ts) and p.ts[0] < b)]
                batch = Batch.concat([batch, *due])
            self._apply(batch, hits, misses)
        self.gen_until = t1

    # -- counting -------------------------------------------------------------------------

    def _apply(self, batch: Batch, hits: int, misses: int) -> None:
        p = self.proc
        p.cache_hits += hits
        p.cache_misses += misses
        n = len(batch.ts)
        if not n:
            return
        self._ledger_parts.append(batch)
        self._ledger_cache = None
        n_keys = len(self.keys)
        p.grow(n_keys)
        counts = np.bincount(batch.key, minlength=n_keys)
        fresh = set(np.flatnonzero((p.count == 0) & (counts > 0)).tolist())
        if fresh:
            _, first = np.unique(batch.key, return_index=True)
            keys_first = sorted(
                (int(i), int(batch.key[i])) for i in first if int(batch.key[i]) in fresh
            )
            p.order.extend(k for _, k in keys_first)
        p.count += counts
        p.time_sum += np.bincount(batch.key, weights=batch.dur.astype(np.float64), minlength=n_keys)
        failed = batch.status >= 400
        p.errors += np.bincount(batch.key[failed], minlength=n_keys)
        for m, c in enumerate(np.bincount(batch.method, minlength=len(self.methods)).tolist()):
            if c:
                name = self.methods[m]
                p.by_method[name] = p.by_method.get(name, 0) + c
        for cls, c in enumerate(np.bincount(batch.status // 100, minlength=6).tolist()):
            if c:
                label = f"{cls}xx"
                p.by_status[label] = p.by_status.get(label, 0) + c
        p.total += n
        tail = slice(-WINDOW_KEEP, None)
        p.ring_ts = np.concatenate([p.ring_ts, batch.ts[tail]])[tail]
        p.ring_key = np.concatenate([p.ring_key, batch.key[tail]])[tail]
        p.ring_dur = np.concatenate([p.ring_dur, batch.dur[tail]])[tail]
        if failed.any():
            idx = np.flatnonzero(failed)[-ERRORS_KEEP:]
            exc_idx = idx[batch.exc[idx]]
            # an exception is logged (error handler) before the HTTP error response
            rec = np.concatenate([exc_idx, idx])
            is_exc = np.concatenate([np.ones(len(exc_idx), bool), np.zeros(len(idx), bool)])
            order = np.lexsort((~is_exc, batch.ts[rec]))
            rec, is_exc = rec[order], is_exc[order]
            keep = slice(-ERRORS_KEEP, None)
            p.err_ts = np.concatenate([p.err_ts, batch.ts[rec]])[keep]
            p.err_key = np.concatenate([p.err_key, batch.key[rec]])[keep]
            p.err_method = np.concatenate([p.err_method, batch.method[rec]])[keep]
            p.err_status = np.concatenate([p.err_status, batch.status[rec]])[keep]
            p.err_exc = np.concatenate([p.err_exc, is_exc])[keep]
        self._track_performance(batch)

    def _track_performance(self, batch: Batch) -> None:
        for op, key, share, keep_min in _PERFORMANCE_OPS:
            idx = self.key_index.get(key)
            if idx is None:
                continue
            sel = batch.key == idx
            if not sel.any():
                continue
            times = np.rint(batch.dur[sel] * share)
            perf = self.proc.performance.setdefault(op, Operation())
            perf.count += int(sel.sum())
            perf.total_time += float(times.sum())
            perf.max = max(perf.max, float(times.max()))
            if keep_min:
                low = float(times.min())
                perf.min = low if perf.min is None else min(perf.min, low)
            perf.last_duration = float(times[-1])
            perf.last_timestamp = int(batch.ts[sel][-1])

    # -- ground truth ---------------------------------------------------------------------

    def sent(self) -> tuple[Batch, list[str]]:
        """Everything sent so far (counted or answered), sorted, and the key names."""
        if self._ledger_cache is None:
            self._ledger_cache = Batch.concat(self._ledger_parts)
            self._ledger_parts = [self._ledger_cache] if len(self._ledger_cache.ts) else []
        return Batch.concat([self._ledger_cache, *self._pending]), list(self.keys)


def ledger_frame(
    batch: Batch,
    keys: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
    include_monitoring: bool = True,
) -> pd.DataFrame:
    """Per endpoint, what `batch` holds in [start, end): requests, errors, time_sum_ms."""
    lo = 0 if start is None else int(np.searchsorted(batch.ts, to_ms(start), side="left"))
    hi = len(batch.ts) if end is None else int(np.searchsorted(batch.ts, to_ms(end), side="left"))
    key, dur, status = batch.key[lo:hi], batch.dur[lo:hi], batch.status[lo:hi]
    n = len(keys)
    requests = np.bincount(key, minlength=n)
    errors = np.bincount(key[status >= 400], minlength=n)
    time_sum = np.bincount(key, weights=dur.astype(np.float64), minlength=n)
    frame = pd.DataFrame(
        {
            "endpoint": keys,
            "requests": requests.astype(np.int64),
            "errors": errors.astype(np.int64),
            "time_sum_ms": time_sum.astype(np.float64),
        }
    )
    frame = frame[frame["requests"] > 0]
    if not include_monitoring:
        frame = frame[~frame["endpoint"].map(is_monitoring)]
    return frame.sort_values(["requests", "endpoint"], ascending=[False, True]).reset_index(
        drop=True
    )
