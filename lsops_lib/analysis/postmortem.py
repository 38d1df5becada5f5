"""The postmortem bundle: the facts an incident postmortem starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import Thresholds
from ..exceptions import ParameterError
from ..times import to_ms
from ._common import (
    ERROR_COLUMNS,
    MONITORING_REASON,
    RESET_COLUMNS,
    count,
    empty,
    ensure_ts,
    entry,
    nan_to_none,
    one_target,
    py,
    ratio,
    span,
    ts,
    window,
)
from ._reads import health_frame, reset_frame
from .availability import Availability, availability_from_health
from .harm import HARM_COLUMNS, harm
from .incidents import COLUMNS as INCIDENT_COLUMNS
from .incidents import incidents as find_incidents
from .incidents import with_commands
from .memory import SEGMENT_COLUMNS, MemoryTrend, memory_trend
from .traffic import (
    endpoint_series,
    endpoint_summary,
    excluded_monitoring,
    request_totals,
    traffic_series,
)


@dataclass
class Postmortem:
    """The facts a postmortem starts from. Root cause, trigger, action items and lessons
    are left for a person.

    impact_start / impact_end: first breach start and last breach end (incidents other
        than restarts) in [start, end); None when nothing breached. duration_s.
    requests / failed / error_rate: requests and failed requests in the impact window
        (the window when there was no breach), monitoring excluded unless asked: the
        impact is (impact_start, impact_end] in time, its figures the deltas closed in it
        (`impact_read`), less a state incident's closing scrape that began a new series.
    no_answer / observations: health observations in the impact window, both its bounds
        included (a health incident runs from its first bad check to its first good one).
    endpoints: the endpoints of the impact window ranked by harm against the baseline
        (`analysis.harm.harm`: errors beyond what the baseline rate predicts and added
        latency in request-seconds, each counted only when a one-sided test says it is
        no chance): endpoint, requests, errors, error_rate, baseline_*, expected_errors,
        excess_errors, errors_p, errors_significant, mean_ms, baseline_mean_ms, added_ms,
        added_latency_s, latency_p, latency_significant, harm_s, harmed, extra_latency_ms
        (requests x max(added_ms, 0): the earlier column, kept for its callers), rank
        (1 = most harm).
    errors: sampled error records (ts, endpoint, method, status_code, error), at most
        `sample_errors`, spread over the window; error_counts: endpoint, status_code,
        error, count.
    restarts: ts, kind. timeline: ts, event, detail, endpoint (health changes, threshold
        crossings (incident start/end), resets, collection gaps), by time.
    incidents: `incidents()` rows of the window (a restart at the instant its process
        says it started). comparison: metric, window, baseline (requests per hour over
        the time the period's counted deltas cover).
    series: ts, period ("baseline" | "window"), requests, errors, error_rate, mean_ms
        for charts; health: ts, status; availability: `Availability` of the window.
    problem: why the figures could not be computed (`unavailable_postmortem`), else None.
    """

    title: str | None
    start: datetime
    end: datetime
    baseline_start: datetime
    baseline_end: datetime
    target: str | None
    thresholds: Thresholds
    include_monitoring: bool
    impact_start: pd.Timestamp | None
    impact_end: pd.Timestamp | None
    duration_s: float | None
    requests: int
    failed: int
    error_rate: float
    no_answer: int
    observations: int
    endpoints: pd.DataFrame = field(repr=False)
    errors: pd.DataFrame = field(repr=False)
    error_counts: pd.DataFrame = field(repr=False)
    restarts: pd.DataFrame = field(repr=False)
    timeline: pd.DataFrame = field(repr=False)
    incidents: pd.DataFrame = field(repr=False)
    comparison: pd.DataFrame = field(repr=False)
    series: pd.DataFrame = field(repr=False)
    health: pd.DataFrame = field(repr=False)
    availability: Availability = field(repr=False)
    memory: MemoryTrend = field(repr=False)
    excluded: pd.DataFrame = field(repr=False)
    excluded_reason: str = MONITORING_REASON
    notes: list[str] = field(default_factory=list)
    problem: str | None = None
    # issue 10: the top new error log pattern of the window: pattern_id, template, count
    top_new_pattern: dict[str, Any] | None = None
    # the deltas the impact figures count: those labelled (by the scrape closing them) in
    # [lo, hi), for a chart to count the same; None when they are the whole window's
    impact_read: tuple[datetime, datetime] | None = None

    @property
    def harmed(self) -> pd.DataFrame:
        """The endpoints with significant harm, most harmed first."""
        eps = self.endpoints
        return eps.loc[eps["harmed"].astype(bool)] if not eps.empty else eps

    def summary(self) -> dict[str, Any]:
        """The headline figures (the report's key figures are built from these): plain
        values, lists and small dicts, never a DataFrame."""
        harmed = self.harmed
        return {
            "computed": self.problem is None,
            "title": self.title,
            "window_start": self.start,
            "window_end": self.end,
            "impact_start": self.impact_start,
            "impact_end": self.impact_end,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "failed": self.failed,
            "error_rate": self.error_rate,
            "no_answer": self.no_answer,
            "observations": self.observations,
            "availability": self.availability.availability,
            "endpoints_by_harm": [str(e) for e in self.endpoints["endpoint"]],
            "most_harmed_endpoint": str(harmed.iloc[0]["endpoint"]) if not harmed.empty else None,
            "harmed": [
                {
                    "endpoint": str(r["endpoint"]),
                    "harm_s": r["harm_s"],
                    "excess_errors": r["excess_errors"] if r["errors_significant"] else 0.0,
                    "added_latency_s": r["added_latency_s"] if r["latency_significant"] else 0.0,
                    "reference": r.get("reference"),  # the errors' test: baseline or target
                }
                for r in harmed.to_dict("records")
            ],
            "incidents": [
                {
                    k: nan_to_none(r.get(k)) if k == "endpoint" else r.get(k)
                    for k in (
                        "kind",
                        "start",
                        "end",
                        "duration_s",
                        "endpoint",
                        "severity",
                        "ongoing",
                    )
                }  # endpoint: None for an incident of the whole API
                for r in self.incidents.to_dict("records")
            ],
            "restarts": int(len(self.restarts)),
            "timeline_events": int(len(self.timeline)),
            "error_records_sampled": int(len(self.errors)),
            "excluded": [str(e) for e in self.excluded["endpoint"]],
            "notes": list(self.notes),
            "top_new_pattern": dict(self.top_new_pattern) if self.top_new_pattern else None,
        }


# the kinds whose incidents are a state observed at each scrape: they end at the first
# good scrape after them (the other kinds end at their last breaching scrape or bucket)
_STATES = ("no_answer", "health_error", "health_degraded", "memory_climb")


def _baseline(
    start: datetime, baseline: tuple[datetime, datetime] | timedelta | None
) -> tuple[datetime, datetime]:
    if baseline is None:
        baseline = timedelta(hours=24)
    if isinstance(baseline, timedelta):
        return start - baseline, start
    return py(baseline[0]), py(baseline[1])


# the scrape fields that decide what a scrape's delta covers (`_counted_span`)
_SPAN_COLUMNS = ["ts", "requests_total", "uptime_start_ms", "last_reset_ms"]


def _scrape_rows(
    store: Any, start: datetime | None, end: datetime, target: str | None
) -> pd.DataFrame:
    """The scrapes of [start, end) (`_SPAN_COLUMNS`), oldest first; those without metrics
    (failed) have no requests_total."""
    df = store.scrapes(start, end, target=target, columns=_SPAN_COLUMNS)
    df = df.assign(ts=pd.to_datetime(df["ts"], utc=True))
    return df.sort_values("ts", kind="stable").reset_index(drop=True)


# how far back the scrape before a period is looked for, nearest first (a read of the
# whole history before it only when none of these holds one)
_LOOKBACK = (timedelta(hours=2), timedelta(days=2), timedelta(days=60), None)


def _counted_span(
    store: Any, start: datetime, end: datetime, target: str | None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The time (first, last] the counters' deltas counted in [start, end) cover. A delta
    is labelled by the scrape that closes it and covers the time since the scrape with
    metrics before it (across failed ones): together, from the one before the period's
    first to its last. The history's first scrape with metrics has none before it: a
    baseline that counts nothing, it opens the span; unless its process started (or
    reset) after the failed scrape before it: its counters started while watched and count
    whole (the store's rule, `store/series.py`), from that failed scrape on. None when no
    delta is counted."""
    rows = _scrape_rows(store, start, end, target)
    answered = rows[rows["requests_total"].notna()]
    if answered.empty:
        return None
    first, last = answered.iloc[0], ts(answered["ts"].iloc[-1])
    before = rows.iloc[:0]
    for back in _LOOKBACK:
        before = _scrape_rows(store, start - back if back else None, start, target)
        if before["requests_total"].notna().any():
            lo = ts(before.loc[before["requests_total"].notna(), "ts"].iloc[-1])
            return (lo, last) if last > lo else None
    # no scrape with metrics before the period (`before`: every scrape before it, failed)
    lo = ts(first["ts"])
    failed = pd.concat([before["ts"], rows.loc[rows["ts"] < lo, "ts"]])
    if not failed.empty:
        pf = to_ms(py(failed.max()))
        began = [first[c] for c in ("uptime_start_ms", "last_reset_ms") if not pd.isna(first[c])]
        if any(int(b) > pf for b in began):
            lo = ts(failed.max())
    return (lo, last) if last > lo else None


def _hours(span: tuple[pd.Timestamp, pd.Timestamp] | None) -> float:
    return (span[1] - span[0]).total_seconds() / 3600 if span else 0.0


def _with_started(resets: pd.DataFrame) -> pd.DataFrame:
    """`resets` with `started`: when the new series began, as the API itself says (a
    restart: the process's uptime.start; a reset: its lastReset), not when a scrape first
    saw it (up to a scrape interval later); the scrape's instant when the API says none
    or says one after it."""
    said = resets["uptime_start_ms"].where(resets["kind"] == "restart", resets["last_reset_ms"])
    started = pd.to_datetime(said.astype("Float64").astype(float), unit="ms", utc=True)
    seen = pd.to_datetime(resets["ts"], utc=True)
    started = started.where(started.notna() & (started <= seen), seen)
    return resets.assign(started=started.astype(seen.dtype))


def _restarts_started(found: pd.DataFrame, resets: pd.DataFrame) -> pd.DataFrame:
    """`found` with each restart incident at the instant its new series began (`resets`'
    `started`: what the timeline and the resolution say), not when a scrape saw it."""
    if found.empty or resets.empty or not (found["kind"] == "restart").any():
        return found
    when = {
        ts(seen): ts(began) for seen, began in zip(resets["ts"], resets["started"], strict=True)
    }
    out = found.copy()
    rows = out.index[out["kind"] == "restart"]
    began = [when.get(ts(out.at[i, "start"]), ts(out.at[i, "start"])) for i in rows]
    out.loc[rows, "start"] = began
    out.loc[rows, "end"] = began
    return out.sort_values("start", kind="stable").reset_index(drop=True)


def _timeline(
    health: pd.DataFrame, found: pd.DataFrame, resets: pd.DataFrame, gaps: pd.DataFrame
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if not health.empty:
        status = health["status"]
        changed = status.ne(status.shift())
        for i in health.index[changed]:
            before = status.shift().loc[i]
            rows.append(
                {
                    "ts": health.loc[i, "ts"],
                    "event": "health",
                    "detail": f"health {before} -> {status.loc[i]}"
                    if isinstance(before, str)
                    else f"health {status.loc[i]} (first observation)",
                    "endpoint": None,
                }
            )
    for row in found.itertuples():
        if row.kind in ("restart", "no_answer", "health_error", "health_degraded"):
            continue
        endpoint = row.endpoint if isinstance(row.endpoint, str) and row.endpoint else None
        where = f" on {endpoint}" if endpoint else ""
        rows.append(
            {
                "ts": row.start,
                "event": "threshold crossed",
                "detail": f"{row.kind}{where}: {row.detail}",
                "endpoint": endpoint,
            }
        )
        if not row.ongoing:
            rows.append(
                {
                    "ts": row.end,
                    "event": "back within threshold",
                    "detail": f"{row.kind}{where}",
                    "endpoint": endpoint,
                }
            )
    for row in resets.itertuples():
        seen = f" (seen by the scrape of {fmt.instant(row.ts)})" if row.started != row.ts else ""
        rows.append(
            {"ts": row.started, "event": "reset", "detail": f"{row.kind}{seen}", "endpoint": None}
        )
    for row in gaps.itertuples():
        rows.append(
            {
                "ts": row.start,
                "event": "collection gap",
                "detail": f"no scrape for {row.duration_s / 60:.0f} min (until "
                f"{fmt.instant(row.end)})",
                "endpoint": None,
            }
        )
    if not rows:
        return empty(["ts", "event", "detail", "endpoint"])
    out = pd.DataFrame(rows)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out["endpoint"] = out["endpoint"].astype("str")  # text, NaN for none, as when empty
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def _with_sources(
    timeline: pd.DataFrame, store: Any, start: datetime, end: datetime, target: str | None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Issue 10: the timeline with the events of Sentry, the logs and pm2, and the top new
    error log pattern of the window (`sources.timeline`)."""
    from ..sources.timeline import source_timeline

    extra, top_new = source_timeline(store, start, end, target)
    if extra.empty:
        return timeline, top_new
    both = pd.concat([timeline, extra], ignore_index=True) if not timeline.empty else extra
    both["ts"] = pd.to_datetime(both["ts"], utc=True)
    both["endpoint"] = both["endpoint"].astype("str")  # text, NaN for none (as _timeline)
    return both.sort_values("ts", kind="stable").reset_index(drop=True), top_new


@entry
def postmortem(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    baseline: tuple[datetime, datetime] | timedelta | None = None,
    title: str | None = None,
    target: str | None = None,
    include_monitoring: bool = False,
    sample_errors: int = 20,
) -> Postmortem:
    """The facts of an incident window [start, end) against a baseline before it
    (`baseline`: a (start, end) pair, or a duration before `start`; default the 24 h before)."""
    th = thresholds or Thresholds()
    start, end = (py(t) for t in window(start, end))  # start after end: ParameterError
    if start is None or end is None:
        raise ParameterError("a postmortem needs both a start and an end")
    sample_errors = count(sample_errors, "sample_errors")
    target = one_target(store, target, "postmortem")
    if isinstance(baseline, tuple | list):  # a window: its bounds instants (NaT is none)
        baseline = span(baseline, "baseline")
    b_start, b_end = _baseline(start, baseline)
    notes: list[str] = []
    health = health_frame(store, start, end, target)
    avail = availability_from_health(health, start, end)
    base_summary = endpoint_summary(
        store, b_start, b_end, target=target, include_monitoring=include_monitoring
    )
    if base_summary.empty:
        notes.append("no traffic collected in the baseline period: no baseline comparison")
    fine = "scrape" if (end - b_start) <= timedelta(days=3) else "hour"
    resets = _with_started(reset_frame(store, start, end, target))
    found = find_incidents(
        store,
        start,
        end,
        th,
        target=target,
        include_monitoring=include_monitoring,
        baseline=(b_start, b_end) if not base_summary.empty else None,
        bucket=fine,
        min_requests=5 if fine == "scrape" else 10,
    )
    # the commands name the target when the store holds several (as `lsops incidents`'s do
    # when one was chosen): each reproduces this target's window, not the default's
    several = target is not None and len(store.targets()) > 1
    found = with_commands(_restarts_started(found, resets), th, target=target if several else None)
    breaches = found[found["kind"] != "restart"] if not found.empty else found
    if breaches.empty:
        impact_start = impact_end = None
        duration_s = None
        i_start, i_end = start, end
        h_start, h_end = ts(start), ts(end)
        notes.append(
            "no threshold breach found in the window: figures cover the whole window"
            if not health.empty
            else "no observation collected in the window: whether a threshold was breached "
            "is unknown"
        )
    else:
        # the impact's bounds: the breaches the scrapes measured; a log burst (whole hours
        # of log entries) bounds it only when nothing else was breached
        scraped = breaches[breaches["kind"] != "log_burst"]
        bounds = scraped if not scraped.empty else breaches
        impact_start = ts(bounds["start"].min())
        impact_end = ts(bounds["end"].max())
        duration_s = (impact_end - impact_start).total_seconds()
        # the impact is (start, end] in time: its figures are the deltas closed in it (each
        # labelled by the scrape closing it), a read of [start + 1 ms, end + 1 ms); the
        # health checks, instants, are those from its start to its end, both included
        ms = pd.Timedelta(milliseconds=1)
        i_start, i_end = py(impact_start + ms), py(impact_end + ms)
        h_start, h_end = impact_start, impact_end + ms
        # a state observed at the scrapes (health, memory) ends at its first good scrape,
        # whose delta covers the end of the breach; unless that scrape began a new series
        # (a restart or reset): its counters started after the recovery and its health
        # check answered after it, none of the breach (an error-rate or latency run ends
        # at its last breaching scrape: its delta is the breach's, whatever began there)
        closing = bounds[bounds["end"] == impact_end]
        by_state = closing["kind"].isin(_STATES).all() and not closing["ongoing"].any()
        if by_state and not reset_frame(store, impact_end, i_end, target).empty:
            i_end, h_end = py(impact_end), impact_end
            notes.append(
                "the scrape that closed the breach began a new series (a restart or reset): "
                "its requests came after the recovery and are left out of the impact figures"
            )
    window_summary = endpoint_summary(
        store, i_start, i_end, target=target, include_monitoring=include_monitoring
    )
    totals = request_totals(window_summary)
    # the harm rule's latency test: each period's per-request variance from its bucket means
    per_bucket = {"bucket": fine, "target": target, "include_monitoring": include_monitoring}
    ranked = harm(
        window_summary,
        base_summary,
        th,
        window_series=endpoint_series(store, i_start, i_end, **per_bucket)
        if not window_summary.empty
        else None,
        baseline_series=endpoint_series(store, b_start, b_end, **per_bucket)
        if not (window_summary.empty or base_summary.empty)
        else None,
    )
    i_health = (
        health[(health["ts"] >= h_start) & (health["ts"] < h_end)] if not health.empty else health
    )

    errors = store.error_records(start, end, target=target)
    errors = (
        ensure_ts(errors.copy(), "ts").sort_values("ts").reset_index(drop=True)
        if not errors.empty
        else empty(ERROR_COLUMNS)
    )
    if not include_monitoring and not errors.empty:
        from ..models import is_monitoring

        errors = errors[~errors["endpoint"].fillna("").astype(str).map(is_monitoring)].reset_index(
            drop=True
        )
    if errors.empty:
        error_counts = empty(["endpoint", "status_code", "error", "count"])
        sample = errors
    else:
        error_counts = (
            errors.fillna({"error": ""})
            .groupby(["endpoint", "status_code", "error"], dropna=False)
            .size()
            .rename("count")
            .reset_index()
            .sort_values("count", ascending=False)
            .reset_index(drop=True)
        )
        idx = np.unique(
            np.linspace(0, len(errors) - 1, min(sample_errors, len(errors))).round().astype(int)
        )
        sample = errors.iloc[idx].reset_index(drop=True)

    timeline = _timeline(health, found, resets, avail.gaps)
    timeline, top_new_pattern = _with_sources(timeline, store, start, end, target)  # issue 10
    base_health = health_frame(store, b_start, b_end, target)
    base_avail = availability_from_health(base_health, b_start, b_end)
    base_totals = request_totals(base_summary)
    whole = request_totals(
        endpoint_summary(store, start, end, target=target, include_monitoring=include_monitoring)
    )
    # requests per hour over the hours the deltas counted in each period cover (they
    # bridge a gap inside the history, not its ends; a period's first delta reaches back
    # to the scrape before it)
    w_hours = _hours(_counted_span(store, start, end, target))
    b_span = _counted_span(store, b_start, b_end, target)
    b_hours = _hours(b_span)
    extent = store.extent(target)
    b_said = fmt.duration(b_hours * 3600), fmt.duration((b_end - b_start).total_seconds())
    if b_span and extent and (b_span[0] > ts(b_start) or ts(extent[1]) < ts(b_end)):
        # the history begins or ends inside the baseline period (a shortfall the durations
        # do not show, "1 d 0 h of the 1 d 0 h", seconds short, is not worth a note)
        if b_said[0] != b_said[1]:
            notes.append(
                f"the history covers {b_said[0]} of the {b_said[1]} baseline period: its requests "
                "per hour are over the time covered"
            )
    comparison = pd.DataFrame(
        [
            {
                "metric": "requests per hour",
                "window": ratio(whole["requests"], w_hours),
                "baseline": ratio(base_totals["requests"], b_hours),
            },
            {
                "metric": "error_rate",
                "window": whole["error_rate"],
                "baseline": base_totals["error_rate"],
            },
            {"metric": "mean_ms", "window": whole["mean_ms"], "baseline": base_totals["mean_ms"]},
            {
                "metric": "availability",
                "window": avail.availability,
                "baseline": base_avail.availability,
            },
        ]
    )
    bucket = "scrape" if fine == "scrape" else "hour"
    w_series = traffic_series(
        store, start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    b_series = traffic_series(
        store, b_start, b_end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    series = (
        pd.concat(
            [b_series.assign(period="baseline"), w_series.assign(period="window")],
            ignore_index=True,
        )[["ts", "period", "requests", "errors", "error_rate", "mean_ms"]]
        if not (w_series.empty and b_series.empty)
        else empty(["ts", "period", "requests", "errors", "error_rate", "mean_ms"])
    )
    memory = memory_trend(store, b_start, end, th, target=target)
    excluded = (
        empty(["endpoint", "requests", "errors", "reason"])
        if include_monitoring
        else excluded_monitoring(store, start, end, target=target)
    )
    return Postmortem(
        title=title,
        start=start,
        end=end,
        baseline_start=b_start,
        baseline_end=b_end,
        target=target,
        thresholds=th,
        include_monitoring=include_monitoring,
        impact_start=impact_start,
        impact_end=impact_end,
        duration_s=duration_s,
        requests=totals["requests"],
        failed=totals["errors"],
        error_rate=totals["error_rate"],
        no_answer=int((i_health["status"] == "NO_ANSWER").sum()) if not i_health.empty else 0,
        observations=int(len(i_health)),
        endpoints=ranked,
        errors=sample,
        error_counts=error_counts,
        restarts=resets,
        timeline=timeline,
        top_new_pattern=top_new_pattern,
        incidents=found if not found.empty else empty([*INCIDENT_COLUMNS, "postmortem_command"]),
        comparison=comparison,
        series=series,
        health=health[["ts", "status"]] if not health.empty else empty(["ts", "status"]),
        availability=avail,
        memory=memory,
        excluded=excluded,
        notes=notes,
        impact_read=(i_start, i_end) if impact_start is not None else None,
    )


@entry
def unavailable_postmortem(
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    problem: str,
    baseline: tuple[datetime, datetime] | timedelta | None = None,
    title: str | None = None,
    target: str | None = None,
    include_monitoring: bool = False,
) -> Postmortem:
    """A Postmortem of [start, end) without a figure (every frame empty, every figure
    unknown) and `problem` saying why: what a report shows when `postmortem` failed, so
    that its cells still run."""
    th = thresholds or Thresholds()
    start, end = py(start), py(end)
    b_start, b_end = _baseline(start, baseline)
    no_health = empty(["ts", "status"])
    memory = MemoryTrend(
        frame=empty(["ts", "rss", "heap_used", "heap_total", "segment", "restart"]),
        segments=empty(SEGMENT_COLUMNS),
        restarts=empty(RESET_COLUMNS),
        leak=False,
        peak_rss=None,
        peak_fraction=None,
        last_rss=None,
        last_fraction=None,
        limit_bytes=th.memory_limit_bytes,
        growth_threshold=th.memory_growth_per_hour,
    )
    nan = float("nan")
    return Postmortem(
        title=title,
        start=start,
        end=end,
        baseline_start=b_start,
        baseline_end=b_end,
        target=target,
        thresholds=th,
        include_monitoring=include_monitoring,
        impact_start=None,
        impact_end=None,
        duration_s=None,
        requests=0,
        failed=0,
        error_rate=nan,
        no_answer=0,
        observations=0,
        endpoints=empty(HARM_COLUMNS),
        errors=empty(ERROR_COLUMNS),
        error_counts=empty(["endpoint", "status_code", "error", "count"]),
        restarts=_with_started(empty(RESET_COLUMNS)),
        timeline=empty(["ts", "event", "detail", "endpoint"]),
        incidents=empty([*INCIDENT_COLUMNS, "postmortem_command"]),
        comparison=pd.DataFrame(
            {
                "metric": ["requests per hour", "error_rate", "mean_ms", "availability"],
                "window": [nan] * 4,
                "baseline": [nan] * 4,
            }
        ),
        series=empty(["ts", "period", "requests", "errors", "error_rate", "mean_ms"]),
        health=no_health,
        availability=availability_from_health(no_health, start, end),
        memory=memory,
        excluded=empty(["endpoint", "requests", "errors", "reason"]),
        notes=[f"the figures could not be computed: {problem}"],
        problem=problem,
    )
