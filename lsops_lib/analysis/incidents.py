"""Incidents found in the history: runs of breaching observations merged into one.

An incident is the span (start, end] in time; the figures of its requests are the deltas
closed in it (a delta is labelled by the scrape that closes it and covers the time since
the scrape before it): a read of [start + 1 ms, end + 1 ms). Health incidents (a state
observed at each scrape's instant) start at their first breaching observation and end at
the first good one after it. Per-endpoint error-rate and latency incidents use the
store's per-bucket deltas (hour by default): per scrape, a run of breaching deltas spans
(the observation before its first, its last]; per hour or day, its clock buckets (from
the first observation in its first bucket). An incident still breaching at the last
observation is `ongoing` and ends at that observation. The other kinds
are pluggable detectors (`DETECTORS`: cache_fall in cache_fall.py, memory_climb in
memory_climb.py), one function per kind with the signature of `incident_base.Detector`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import Thresholds
from ..exceptions import ParameterError, ParameterValueError
from ..times import shown
from ._common import (
    count,
    ensure_ts,
    entry,
    filter_monitoring,
    instants,
    iso,
    number,
    positive,
    py,
    span,
    ts,
    window,
)
from ._memo import memo
from ._reads import scrape_figures
from .cache_fall import cache_fall_incidents
from .incident_base import COLUMNS, Detector, frame, typed, wilson_lower
from .incident_base import runs as _runs
from .memory_climb import memory_climb_incidents
from .traffic import endpoint_series, endpoint_summary


def log_burst_incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    """Bursts of error log lines (issue 10; `sources.incidents`, imported on first use)."""
    from ..sources.incidents import source_incidents

    return source_incidents(store, start, end, thresholds, target=target, kinds=("log_burst",))


def pm2_restart_incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    """pm2 restarts the scrapes did not see (issue 10; `sources.incidents`)."""
    from ..sources.incidents import source_incidents

    return source_incidents(store, start, end, thresholds, target=target, kinds=("pm2_restart",))


# the pluggable kinds: one detector function each (incident_base.Detector), run by
# `incidents()` for every kind asked for; a new kind adds its function here
DETECTORS: dict[str, Detector] = {
    "cache_fall": cache_fall_incidents,
    "memory_climb": memory_climb_incidents,
    "log_burst": log_burst_incidents,  # issue 10: from the logs (sources/incidents.py)
    "pm2_restart": pm2_restart_incidents,  # issue 10: restarts the scrapes did not see
}
KINDS = (
    "no_answer",
    "health_error",
    "health_degraded",
    "error_rate",
    "latency",
    "restart",
    *DETECTORS,
)
_HEALTH_KIND = {"NO_ANSWER": "no_answer", "ERROR": "health_error", "DEGRADED": "health_degraded"}
_HEALTH_SEVERITY = {
    "no_answer": "critical",
    "health_error": "critical",
    "health_degraded": "warning",
}
_BUCKET = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# Without a baseline, a latency regression is judged against each endpoint's median bucket
# mean over at least this much history ending with the window: a window shorter than it
# (a day, a postmortem's hours) reads the days before too, so that a regression covering
# most of a short window does not make itself its own baseline (QA 23: a 12-hour
# regression was found in a week, not in its own day).
LATENCY_REFERENCE = timedelta(days=7)
BUCKETS = (*_BUCKET, "scrape")  # the store's buckets (`Store.endpoint_intervals`)


def _bucket(bucket: Any) -> str:
    """`bucket` when it is one of the store's, else a ParameterError (a ValueError too, as
    the store's) naming it."""
    if not isinstance(bucket, str) or bucket not in BUCKETS:
        raise ParameterValueError(
            f"bucket: unknown bucket {shown(bucket)} (expected one of {', '.join(BUCKETS)})"
        )
    return bucket


def _latency_factor(value: Any) -> float:
    """A regression factor of the baseline mean: 1 or more (0 or less flags every bucket
    of the endpoint at `min_latency_delta_ms` above its baseline, faster ones too)."""
    return number(value, "latency_factor", 1.0)


def health_incidents(
    health: pd.DataFrame,
    services: pd.DataFrame | Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None = None,
    scrapes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """no_answer / health_error / health_degraded incidents from health observations (ts, status)."""
    if health.empty:
        return frame([])
    df = health.sort_values("ts").reset_index(drop=True)
    status = df["status"].fillna("NO_ANSWER").astype(str).str.upper()
    kinds = status.map(_HEALTH_KIND)
    rows = []
    for kind in ("no_answer", "health_error", "health_degraded"):
        for first, last in _runs(kinds == kind):
            start = df["ts"].iloc[first]
            ongoing = last + 1 >= len(df)
            end = df["ts"].iloc[last] if ongoing else df["ts"].iloc[last + 1]
            n = last - first + 1
            detail = (
                f"{n} consecutive {'scrape' if n == 1 else 'scrapes'} "
                + {
                    "no_answer": "without an answer",
                    "health_error": "with health ERROR",
                    "health_degraded": "with health DEGRADED",
                }[kind]
            )
            detail += _why(kind, start, df["ts"].iloc[last], services, scrapes)
            if ongoing:
                detail += "; still breaching at the last observation"
            rows.append(
                {
                    "start": start,
                    "end": end,
                    "duration_s": (end - start).total_seconds(),
                    "kind": kind,
                    "severity": _HEALTH_SEVERITY[kind],
                    "detail": detail,
                    "endpoint": None,
                    "ongoing": ongoing,
                }
            )
    return frame(rows)


def _why(
    kind: str,
    first: pd.Timestamp,
    last: pd.Timestamp,
    services: pd.DataFrame | Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame] | None,
    scrapes: pd.DataFrame | None,
) -> str:
    """A short cause: the failure kinds of a no-answer run, the failing services otherwise."""
    if (
        kind == "no_answer"
        and scrapes is not None
        and not scrapes.empty
        and "failure_kind" in scrapes
    ):
        part = scrapes[(scrapes["ts"] >= first) & (scrapes["ts"] <= last)]
        kinds = part["failure_kind"].dropna().astype(str).value_counts()
        if not kinds.empty:
            return " (" + ", ".join(f"{k} x{v}" for k, v in kinds.items()) + ")"
        return ""
    if kind != "no_answer" and callable(services):
        services = services(first, last)
    if kind != "no_answer" and isinstance(services, pd.DataFrame) and not services.empty:
        part = services[(services["ts"] >= first) & (services["ts"] <= last)]
        part = part[part["status"].astype(str).str.upper() != "OK"]
        if part.empty:
            return ""
        names = []
        for (name, stat), grp in part.groupby(["service", "status"], sort=True):
            message = grp["message"].dropna().astype(str)
            text = f"{name} {stat}"
            if not message.empty:
                text += f": {message.iloc[-1][:120]}"
            names.append(text)
        return " (" + "; ".join(names[:4]) + ")"
    return ""


@entry
def endpoint_incidents(
    series: pd.DataFrame,
    thresholds: Thresholds,
    *,
    bucket: str = "hour",
    baseline: pd.Series | None = None,
    min_requests: int = 10,
    latency_factor: float = 2.0,
    min_latency_delta_ms: float = 50.0,
    z: float = 1.645,
    last_seen: Any = None,
    seen: Any = None,
) -> pd.DataFrame:
    """error_rate and latency incidents per endpoint from per-bucket figures.

    `last_seen`: the last observation (scrape) of the history read; a run whose last
    bucket holds it is still breaching there: `ongoing`, and it ends at that observation
    (without it, a run ends at the end of its last bucket). `seen`: the instants of the
    observations; a run of hour (minute, day) buckets starts at the first of them in its
    first bucket (its first breaching observation), not before (without them, at the
    start of its first bucket). Per scrape, a bucket is the delta closed by its scrape:
    a run spans (the observation of `seen` before its first scrape, its last scrape], so
    that its deltas are those closed in (start, end] (no observation before it: from its
    first scrape), and ends at its last scrape, ongoing or not.

    error_rate: a bucket with at least `min_requests` whose error rate is above
    thresholds.error_rate_warn beyond chance: the lower bound of its Wilson score
    interval (one-sided, `z` = 1.645: 95 %) is above it, so that 3 errors in 25 requests
    of a 2 % endpoint, or the tail of a burst counted in the next bucket, are no
    incident (critical when the peak rate is above error_rate_critical).
    latency: a bucket whose mean latency (weighted) is above `latency_factor` x the
    endpoint's baseline mean and at least `min_latency_delta_ms` above it. `baseline`
    maps endpoint -> mean_ms; without it, the median of the endpoint's own bucket means.
    `bucket`: that of `series` (minute, hour, day, scrape); `latency_factor` 1 or more,
    `min_latency_delta_ms` 0 or more, `min_requests` a count, `z` more than 0.
    """
    thresholds = thresholds or Thresholds()
    step = _BUCKET.get(_bucket(bucket))
    min_requests = count(min_requests, "min_requests")
    latency_factor = _latency_factor(latency_factor)
    min_latency_delta_ms = number(min_latency_delta_ms, "min_latency_delta_ms")
    z = positive(z, "z")
    if series.empty:
        return frame([])
    last_seen = None if last_seen is None else ts(last_seen)
    seen = None if seen is None else pd.DatetimeIndex(pd.to_datetime(seen, utc=True)).sort_values()
    rows: list[dict[str, Any]] = []
    # every endpoint's buckets, oldest first, one endpoint after the other; the per-bucket
    # tests are element-wise, so they are computed over all endpoints at once (a month of
    # hours of 50 endpoints: 36,000 buckets) and each endpoint only looks at its slice
    buckets = series.loc[series["endpoint"].notna()].sort_values(["endpoint", "ts"])
    buckets = buckets.reset_index(drop=True)
    if buckets.empty:
        return frame([])
    busy_all = (buckets["requests"] >= min_requests).to_numpy()
    lower_all = wilson_lower(buckets["errors"], buckets["requests"], z)
    error_flags = (
        busy_all
        & (buckets["error_rate"] > thresholds.error_rate_warn).to_numpy()
        & (lower_all > thresholds.error_rate_warn).to_numpy()
    )
    codes, names = pd.factorize(buckets["endpoint"], sort=True)
    edges = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(buckets)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        endpoint = names[codes[lo]]
        part = buckets.iloc[lo:hi].reset_index(drop=True)
        busy = busy_all[lo:hi]
        # error rate
        flags = error_flags[lo:hi]
        runs = _runs(pd.Series(flags)) if flags.any() else []
        for first, last in _consecutive(part, runs, step):
            run = part.iloc[first : last + 1]
            start, end, ongoing = _span(part, first, last, step, last_seen, seen)
            errors, requests = int(run["errors"].sum()), int(run["requests"].sum())
            peak = float(run["error_rate"].max())
            overall = errors / requests if requests else float("nan")
            critical = peak > thresholds.error_rate_critical
            rows.append(
                {
                    "start": start,
                    "end": end,
                    "duration_s": (end - start).total_seconds(),
                    "kind": "error_rate",
                    "severity": "critical" if critical else "warning",
                    "detail": (
                        f"error rate {overall:.1%} ({errors} of {requests} requests), peak {peak:.1%} "
                        f"per {bucket}; warning above {fmt.exact_pct(thresholds.error_rate_warn)}, "
                        f"critical above {fmt.exact_pct(thresholds.error_rate_critical)}"
                    ),
                    "endpoint": endpoint,
                    "ongoing": ongoing,
                }
            )
        # latency against the baseline
        if baseline is not None and endpoint in baseline.index and not pd.isna(baseline[endpoint]):
            base = float(baseline[endpoint])
        else:
            means = part.loc[busy, "mean_ms"].dropna()
            base = float(means.median()) if not means.empty else float("nan")
        if np.isnan(base):
            continue
        mean = part["mean_ms"].to_numpy()
        flags = busy & (mean > latency_factor * base) & (mean - base >= min_latency_delta_ms)
        runs = _runs(pd.Series(flags)) if flags.any() else []
        for first, last in _consecutive(part, runs, step):
            run = part.iloc[first : last + 1]
            start, end, ongoing = _span(part, first, last, step, last_seen, seen)
            requests = float(run["requests"].sum())
            mean = float(run["time_sum_ms"].sum() / requests) if requests else float("nan")
            peak = float(run["mean_ms"].max())
            rows.append(
                {
                    "start": start,
                    "end": end,
                    "duration_s": (end - start).total_seconds(),
                    "kind": "latency",
                    "severity": "critical" if mean > thresholds.latency_p95_warn_ms else "warning",
                    "detail": (
                        f"mean latency {mean:.0f} ms (peak {peak:.0f} ms per {bucket}) vs baseline "
                        f"{base:.0f} ms (x{mean / base:.1f}); flagged above x{latency_factor:g}"
                    ),
                    "endpoint": endpoint,
                    "ongoing": ongoing,
                }
            )
    return frame(rows)


def _whole_buckets(
    start: datetime | None, end: datetime | None, bucket: str
) -> tuple[datetime | None, datetime | None]:
    """[start, end) widened to whole buckets of `bucket` (minute, hour, day: clock-aligned,
    as the store buckets them); a scrape bucket, or an open edge, as it is."""
    step = _BUCKET.get(bucket)
    if step is None:
        return start, end
    freq = pd.Timedelta(step)
    lo = py(ts(start).floor(freq)) if start is not None else None
    hi = py(ts(end).ceil(freq)) if end is not None else None
    return lo, hi


def _within(
    found: pd.DataFrame, start: datetime | None, end: datetime | None, last_seen: Any
) -> pd.DataFrame:
    """The incidents of whole buckets cut at the window's edges (start, end, duration),
    those wholly outside it left out. One still breaching past the window's end is
    `ongoing` there and ends at its last observation (`last_seen`), as a run breaching at
    the last observation of the history does."""
    if found.empty or (start is None and end is None):
        return found
    out = found.copy()
    if start is not None:
        out["start"] = out["start"].where(out["start"] >= ts(start), ts(start))
    if end is not None:
        past = out["end"] > ts(end)
        last = ts(last_seen) if last_seen is not None else ts(end)
        out.loc[past, "end"] = min(last, ts(end))
        out.loc[past, "ongoing"] = True
    out = out[out["end"] > out["start"]]
    out["duration_s"] = (out["end"] - out["start"]).dt.total_seconds()
    return out.reset_index(drop=True)


def _reference_latency(series: pd.DataFrame, min_requests: int) -> pd.Series | None:
    """endpoint -> the median of its bucket means with at least `min_requests` requests
    (the rule `endpoint_incidents` applies to the window itself), over `series`."""
    busy = series[series["requests"] >= min_requests].dropna(subset=["mean_ms"])
    return None if busy.empty else busy.groupby("endpoint")["mean_ms"].median()


def _consecutive(
    part: pd.DataFrame, runs: list[tuple[int, int]], step: timedelta | None
) -> list[tuple[int, int]]:
    """Split runs where fixed-size buckets are not adjacent in time."""
    if step is None:
        return runs
    out = []
    for first, last in runs:
        begin = first
        for i in range(first + 1, last + 1):
            if part["ts"].iloc[i] - part["ts"].iloc[i - 1] > pd.Timedelta(step):
                out.append((begin, i - 1))
                begin = i
        out.append((begin, last))
    return out


def _span(
    part: pd.DataFrame,
    first: int,
    last: int,
    step: timedelta | None,
    last_seen: pd.Timestamp | None = None,
    seen: pd.DatetimeIndex | None = None,
) -> tuple[pd.Timestamp, pd.Timestamp, bool]:
    start = part["ts"].iloc[first]
    if step is None:
        # per scrape, each bucket is the delta closed by its scrape, covering the time since
        # the observation before: the run spans (that observation, its last scrape], so that
        # a read of the deltas closed in (start, end] gives exactly the run's deltas (its
        # end is not the first good scrape: that one's delta covers time after the breach)
        if seen is not None:
            i = seen.searchsorted(start, side="left")
            if i > 0:
                start = seen[i - 1]
        return start, part["ts"].iloc[last], last + 1 >= len(part)
    if seen is not None:  # the first observation in the first bucket
        i = seen.searchsorted(start, side="left")
        if i < len(seen) and seen[i] < start + pd.Timedelta(step):
            start = seen[i]
    begin, end = part["ts"].iloc[last], part["ts"].iloc[last] + pd.Timedelta(step)
    if last_seen is not None and begin <= last_seen < end:  # the latest bucket: ongoing
        return start, last_seen, True
    return start, end, False


_RESET_DETAIL = {
    "restart": "process restarted (new uptime.start): every counter started again from zero",
    "reset": "metrics reset (new uptime.lastReset): every counter started again from zero",
    "counter_drop": "a cumulative counter went down without a new start or reset",
}


def restart_incidents(resets: pd.DataFrame) -> pd.DataFrame:
    if resets.empty:
        return frame([])
    rows = [
        {
            "start": row.ts,
            "end": row.ts,
            "duration_s": 0.0,
            "kind": "restart",
            "severity": "warning" if row.kind != "counter_drop" else "info",
            "detail": _RESET_DETAIL.get(str(row.kind), str(row.kind)),
            "endpoint": None,
            "ongoing": False,
        }
        for row in resets.sort_values("ts").itertuples()
    ]
    return frame(rows)


@entry
def incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
    baseline: tuple[datetime, datetime] | None = None,
    bucket: str = "hour",
    min_requests: int = 10,
    latency_factor: float = 2.0,
    kinds: tuple[str, ...] = KINDS,
) -> pd.DataFrame:
    """Every incident in [start, end): start, end, duration_s, kind, severity, detail, endpoint, ongoing.

    kind: no_answer | health_error | health_degraded | error_rate | latency | restart, and
    the kinds of `DETECTORS` (cache_fall, memory_climb, log_burst, pm2_restart); severity:
    critical | warning | info. Sorted by start. `baseline` = (start, end) of a
    period whose per-endpoint mean latency is the reference for latency regressions
    (default: each endpoint's median bucket mean over the window, or over the
    `LATENCY_REFERENCE` (7 days) ending with it when the window is shorter).
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ParameterError(
            f"kinds: unknown incident kind {shown(unknown[0])} (known: {', '.join(KINDS)})"
        )
    start, end = instants(start, end)  # a start after the end: ParameterError
    min_requests = count(min_requests, "min_requests")
    latency_factor = _latency_factor(latency_factor)
    bucket = _bucket(bucket)
    baseline = span(baseline, "baseline") if baseline is not None else None
    thresholds = thresholds or Thresholds()
    memoized = memo(store)  # one read per period for the whole scan (as monthly_review)
    if memoized is not store and target is not None and "cache_fall" in kinds:
        # the cache-fall detector's read (a window over every scrape) runs beside the
        # pandas work below: the very call the detector makes, answered from the memo
        memoized.prefetch("counter_intervals", start, end, bucket="scrape", target=target)
    try:
        return _incidents(
            memoized, start, end, thresholds, target=target,
            include_monitoring=include_monitoring, baseline=baseline, bucket=bucket,
            min_requests=min_requests, latency_factor=latency_factor, kinds=kinds,
        )  # fmt: skip
    finally:
        if memoized is not store:
            memoized.close()


def _incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds,
    *,
    target: str | None,
    include_monitoring: bool,
    baseline: tuple[datetime, datetime] | None,
    bucket: str,
    min_requests: int,
    latency_factor: float,
    kinds: tuple[str, ...],
) -> pd.DataFrame:
    parts = []
    health = None
    if "memory_climb" in kinds and target is not None:
        # the memory-climb detector's scrape figures first: the same pass over the
        # scrape rows also answers the health read below (`_reads.scrape_figures`)
        scrape_figures(store, start, end, target)
    if {"no_answer", "health_error", "health_degraded"} & set(kinds):
        health = store.health(start, end, target=target)
        if not health.empty:
            health = ensure_ts(health.copy(), "ts")

            def services(first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
                """The services of one run only (a month of them is not needed)."""
                frame = store.services(
                    py(first), py(last + pd.Timedelta(milliseconds=1)), target=target
                )
                return ensure_ts(frame.copy(), "ts")

            # the health read carries each scrape's failure kind: no raw scrape rows needed
            failures = health if "failure_kind" in health.columns else None
            found = health_incidents(health, services, failures)
            parts.append(found[found["kind"].isin(kinds)])
    if {"error_rate", "latency"} & set(kinds):
        # whole buckets, the window's cut ones too: a window that ends (or starts) inside
        # an hour judges that hour by all of it, as a longer window does, and the incidents
        # are cut at the window's edges afterwards (QA 23: the postmortem window `incidents`
        # printed ended 30 min after a burst; its last half hour, 5 min of the burst and 25
        # of recovery, read as still breaching: "ongoing", and a wider window each time)
        whole_start, whole_end = _whole_buckets(start, end, bucket)
        series = endpoint_series(
            store,
            whole_start,
            whole_end,
            bucket=bucket,
            target=target,
            include_monitoring=include_monitoring,
        )
        base = None
        if baseline is not None:
            summary = endpoint_summary(
                store,
                py(baseline[0]),
                py(baseline[1]),
                target=target,
                include_monitoring=include_monitoring,
            )
            base = summary.set_index("endpoint")["mean_ms"] if not summary.empty else None
        elif start is not None and end is not None and end - start < LATENCY_REFERENCE:
            base = _reference_latency(
                endpoint_series(
                    store,
                    end - LATENCY_REFERENCE,
                    end,
                    bucket=bucket,
                    target=target,
                    include_monitoring=include_monitoring,
                ),
                min_requests,
            )
        if health is None:  # the last observation of the window: every scrape's instant
            health = store.scrapes(start, end, target=target, columns=["ts"])
        last_seen = pd.to_datetime(health["ts"], utc=True).max() if not health.empty else None
        seen = pd.to_datetime(health["ts"], utc=True) if not health.empty else None
        if bucket == "scrape" and start is not None and seen is not None:
            # the observations before the window are not read: a run whose first scrape is
            # the window's first starts at the window's start (cut there, as `_within`
            # cuts whole buckets), so that its first delta is among those closed in it
            seen = pd.concat([pd.Series([ts(start)]), seen], ignore_index=True)
        found = endpoint_incidents(
            series,
            thresholds,
            bucket=bucket,
            baseline=base,
            min_requests=min_requests,
            latency_factor=latency_factor,
            last_seen=last_seen,
            seen=seen,
        )
        found = _within(found, start, end, last_seen)
        parts.append(found[found["kind"].isin(kinds)])
    if "restart" in kinds:
        resets = store.resets(start, end, target=target)
        if not resets.empty:
            parts.append(restart_incidents(ensure_ts(resets.copy(), "ts")))
    for kind, detect in DETECTORS.items():
        if kind in kinds:
            parts.append(detect(store, start, end, thresholds, target=target))
    parts = [p for p in parts if not p.empty]
    if not parts:  # endpoint: a path, or NaN (an incident of the whole API)
        return frame([])
    out = typed(pd.concat(parts, ignore_index=True))  # whichever kinds were found
    out = filter_monitoring(out, include_monitoring)
    out["order"] = out["kind"].map({k: i for i, k in enumerate(KINDS)})
    out = out.sort_values(["start", "order", "endpoint"], na_position="first").drop(columns="order")
    return out.reset_index(drop=True)[COLUMNS]


@entry
def incident_window(
    start: Any, end: Any, thresholds: Thresholds | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The window a postmortem studies around an incident: from `incident_margin_minutes`
    before its start to as long after its end, widened to whole minutes (UTC). The one
    rule used by `lsops incidents`, the review's suggested commands, the postmortem's
    default window and the demo."""
    margin = pd.Timedelta(minutes=(thresholds or Thresholds()).incident_margin_minutes)
    first, last = window(start, end)
    if first is None or last is None:
        raise ParameterError("an incident window needs both a start and an end")
    return (first - margin).floor("min"), (last + margin).ceil("min")


def _command(start: Any, end: Any, title: str, target: str | None) -> str:
    """`lsops [--target NAME] report postmortem --start ... --end ... --title ...`."""
    chosen = f"--target {shlex.quote(target)} " if target is not None else ""
    return (
        f"lsops {chosen}report postmortem --start {iso(start)} --end {iso(end)} "
        f"--title {shlex.quote(title)}"
    )


@entry
def postmortem_command(
    row: Any, thresholds: Thresholds | None = None, *, target: str | None = None
) -> str:
    """The `lsops report postmortem ...` command line for one incident row; `target`: the
    target it names (`lsops --target NAME report ...`; None: none, the default one)."""
    start, end = incident_window(row["start"], row["end"], thresholds)
    return _command(start, end, incident_title(row), target)


@entry
def with_commands(
    found: pd.DataFrame, thresholds: Thresholds | None = None, *, target: str | None = None
) -> pd.DataFrame:
    """The incidents frame with a `postmortem_command` column (naming `target` when given):
    text (`str`), with rows or without."""
    out = found.copy()
    out["postmortem_command"] = pd.Series(
        [postmortem_command(row, thresholds, target=target) for _, row in out.iterrows()],
        index=out.index,
        dtype="str",
    )
    return out


# --- the postmortem's window: one rule for the default and the commands --------------------------

LOOKBACK = timedelta(days=30)  # the default window: the latest incident this far back
DEFAULT_SPAN = timedelta(hours=24)  # without an incident (or an end, or a start): 24 h


@dataclass(frozen=True)
class IncidentWindow:
    """The window a postmortem studies: start, end (UTC), its title and how it was chosen;
    `incident` is the incidents() row it was built around (None when none was); `target`
    the target its command names (None: none, the default one)."""

    start: pd.Timestamp
    end: pd.Timestamp
    title: str
    how: str
    incident: dict[str, Any] | None = field(default=None, compare=False)
    target: str | None = field(default=None, compare=False)

    @property
    def command(self) -> str:
        """The `lsops report postmortem ...` command that archives this window's report."""
        return _command(self.start, self.end, self.title, self.target)


def incident_title(row: Any) -> str:
    """An incident's name: 'no answer 2026-10-16 02:15 UTC', 'latency on /context/search
    2026-10-10 09:00 UTC' (the title `postmortem_command` gives it)."""
    endpoint = row.get("endpoint")
    where = f" on {endpoint}" if isinstance(endpoint, str) and endpoint else ""
    return (
        f"{str(row['kind']).replace('_', ' ')}{where} "
        f"{ts(row['start']).strftime('%Y-%m-%d %H:%M')} UTC"
    )


@entry
def latest_incident_window(
    store: Any,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    lookback: timedelta = LOOKBACK,
    last: Any = None,
) -> IncidentWindow | None:
    """The window around the most recent incident that is not a bare restart, among those
    of the last `lookback` of the history (up to `last`, default the store's last
    observation): `incident_window` of it, titled `incident_title`, so that it is the
    window of the `postmortem_command` the review and `lsops incidents` print for it;
    of `target` (its `.command` names it). None when there is no such incident (or no
    history)."""
    if last is None:
        extent = store.extent(target)
        if not extent:
            return None
        last = extent[1]
    last = ts(last, "last")
    found = incidents(
        store, py(last - lookback), py(last + pd.Timedelta(seconds=1)), thresholds, target=target
    )
    if not found.empty:
        found = found[found["kind"] != "restart"]
    if found.empty:
        return None
    row = found.sort_values("start", kind="stable").iloc[-1].to_dict()
    start, end = incident_window(row["start"], row["end"], thresholds)
    margin = (thresholds or Thresholds()).incident_margin_minutes
    return IncidentWindow(
        start,
        end,
        incident_title(row),
        f"the most recent incident in the history (no window given), {margin:g} min either side",
        row,
        target,
    )


@entry
def postmortem_window(
    store: Any,
    thresholds: Thresholds | None = None,
    *,
    start: Any = None,
    end: Any = None,
    title: str | None = None,
    target: str | None = None,
    lookback: timedelta = LOOKBACK,
    last: Any = None,
) -> IncidentWindow:
    """The postmortem's window. Given start and end: them. Given one: 24 h from it (or to
    it). Given neither: `latest_incident_window`; without an incident, the last 24 h of
    the history (before now when the store is empty). `title` replaces the chosen one.
    The window is of `target` (its `.command` names it)."""
    from ..times import parse_time, utcnow

    def name(when: pd.Timestamp) -> str:
        return when.strftime("%Y-%m-%d %H:%M UTC")

    def bound(value: Any, which: str) -> pd.Timestamp:
        """One bound given alone: an instant lsops handles (`parse_time`), named."""
        try:
            return ts(parse_time(ts(value, which).to_pydatetime()))
        except ParameterError as exc:
            text = str(exc)
            raise ParameterError(
                text if text.startswith(f"{which}: ") else f"{which}: {text}"
            ) from None

    if start is not None and end is not None:
        s, e = window(start, end)  # a start after the end: ParameterError
        return IncidentWindow(
            s, e, title or f"Incident {name(s)}", "the window given", target=target
        )
    if start is not None:
        s = bound(start, "start")
        return IncidentWindow(
            s,
            s + DEFAULT_SPAN,
            title or f"Incident {name(s)}",
            "start given; end = start + 24 h",
            target=target,
        )
    if end is not None:
        e = bound(end, "end")
        return IncidentWindow(
            e - DEFAULT_SPAN,
            e,
            title or f"Incident before {name(e)}",
            "end given; start = end - 24 h",
            target=target,
        )
    if last is None:
        extent = store.extent(target)
        last = extent[1] if extent else None
    if last is not None:
        found = latest_incident_window(
            store, thresholds, target=target, lookback=lookback, last=last
        )
        if found is not None:
            if title:
                return IncidentWindow(
                    found.start, found.end, title, found.how, found.incident, target
                )
            return found
    last = ts(last, "last") if last is not None else ts(utcnow())
    return IncidentWindow(
        last - DEFAULT_SPAN,
        last + pd.Timedelta(seconds=1),
        title or "Last 24 hours of the history",
        "no window given and no incident found: the last 24 h of the history",
        target=target,
    )
