"""SLO arithmetic: error budgets, latency time slices, and the sanity of the server's percentiles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ParameterError, ParameterValueError
from ..models import WINDOW_CAP
from ..times import shown, stamps_to_ms, to_ms
from ._common import (
    count as whole_number,
)
from ._common import (
    duration,
    empty,
    ensure_ts,
    entry,
    instants,
    monitoring_mask,
    positive,
    ratio,
    seconds,
)
from ._reads import scrape_figures, scrape_frame

TIMESLICE_LABEL = (
    "share of time slices whose reported p95 met {threshold:g} ms (OpenSLO timeslices; "
    "each slice is one scrape's window p95 as the server reported it, an untrusted "
    "sample, see reference quirk 1; never an average of p95s)"
)


def error_budget(
    slo: float, good: float, total: float, period: timedelta | float | str | None = None
) -> dict[str, Any]:
    """Error budget of an SLO over `total` events of which `good` were good.

    budget = (1 - SLO) x period (and x total events); the observed error ratio is
    bad / total; burn rate = error ratio / (1 - SLO) (1.0 spends exactly the budget);
    spent_share = bad / allowed bad events (> 1: overspent); left_share = 1 - spent_share.
    Time figures (`budget_s`, `spent_s`, `left_s`) need `period`, a duration (a timedelta,
    seconds, or `30d` as the command line takes it; more than 0). Without events every
    observed figure is NaN, never a made-up 0 or 100 %. A value that is none of these is a
    ParameterError (a ValueError too) naming the parameter.
    """
    slo = _fraction(slo, "slo")
    if _events(good, "good") > _events(total, "total"):
        raise ParameterValueError(
            f"good: {shown(good)} is more than total {shown(total)} (good events are some of them)"
        )
    if period is not None:
        try:
            period = duration(period, "period")
        except ParameterError as exc:  # a ValueError too, as the slo's and the events'
            raise ParameterValueError(str(exc)) from None
    total, good = float(total), float(good)
    bad = total - good
    allowed = 1.0 - slo
    error_ratio = ratio(bad, total)
    period_s = seconds(period)
    budget_events = allowed * total
    spent_share = ratio(bad, budget_events) if total else float("nan")
    out: dict[str, Any] = {
        "slo": slo,
        "good": good,
        "total": total,
        "bad": bad,
        "error_ratio": error_ratio,
        "allowed_ratio": allowed,
        "budget_events": budget_events,
        "spent_share": spent_share,
        "left_share": 1.0 - spent_share if not np.isnan(spent_share) else float("nan"),
        "left_events": budget_events - bad if total else float("nan"),
        "burn_rate": ratio(error_ratio, allowed) if total else float("nan"),
        "met": bool(error_ratio <= allowed) if total else None,
        "period_s": period_s,
        "budget_s": allowed * period_s if period_s is not None else None,
        "spent_s": None,
        "left_s": None,
    }
    if period_s is not None and total:
        out["spent_s"] = error_ratio * period_s
        out["left_s"] = out["budget_s"] - out["spent_s"]
    return out


def _fraction(value: Any, name: str) -> float:
    """An objective (`slo`) as a float strictly between 0 and 1: ParameterValueError naming
    `name` otherwise (99.9 is a percent, not the fraction 0.999)."""
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not 0 < number < 1:  # NaN too
        raise ParameterValueError(
            f"{name}: {shown(value)} is not a fraction between 0 and 1 (an SLO of 99.9 % is 0.999)"
        )
    return number


def _events(value: Any, name: str) -> float:
    """A number of events (`good`, `total`) as a float, 0 or more: ParameterValueError
    naming `name` otherwise."""
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not np.isfinite(number) or number < 0:
        raise ParameterValueError(
            f"{name}: {shown(value)} (expected a number of events, 0 or more)"
        )
    return number


def _scrape_frame(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    target: str | None,
    carry: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """The window's scrapes, oldest first: ts, target and the figure columns
    (`_reads.scrape_figures`: the percentiles, not the ~40 columns of every scrape); every
    column when `carry` names one of the others."""
    df = scrape_figures(store, start, end, target)
    if df.empty or set(carry) <= set(df.columns):
        return df
    return scrape_frame(store, start, end, target)


# the window of the server's statistics that lsops asks for (`timeWindow`, the collector's
# DEFAULT_WINDOW_MS): a time slice is the p95 of the requests of the hour before its scrape
WINDOW_MS = 3_600_000
HOUR_MS = 3_600_000


def app_traffic(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    target: str | None = None,
    intervals: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """The application's requests per hour over [start, end) (ts, requests: the monitoring
    endpoints left out) and the instant from which they tell every request (the first
    hour's deltas may begin inside it: one hour after its start), for `monitoring_only`.
    `intervals`: the period's hourly `endpoint_intervals` (monitoring included) when the
    caller has read them (in any pieces: a bucket may come in several rows), else read."""
    df = (
        store.endpoint_intervals(start, end, bucket="hour", target=target, include_monitoring=True)
        if intervals is None
        else intervals
    )
    if df.empty:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "requests": []}), None
    df = ensure_ts(df.copy(), "ts")
    since = df["ts"].min() + pd.Timedelta(hours=1)
    return df.loc[~monitoring_mask(df["endpoint"], as_text=True), ["ts", "requests"]], since


def monitoring_only(
    ts: pd.Series, app: pd.DataFrame, since: Any, *, bucket_ms: int = HOUR_MS
) -> np.ndarray:
    """Per time slice at `ts`: True when no application request was counted in the hour its
    statistics cover, so its p95 is the monitoring requests' own (the collector's deep
    /health and /metrics are in the server's window too, quirk 2). `app`: ts, requests of
    the application's endpoints, as counter deltas per scrape (`bucket_ms` 0) or per hour
    (the requests of (ts - 1 h, ts] lie in the buckets that start in (ts - 2 h, ts]).
    Only slices whose whole hour is at or after `since` (where `app` tells every request)
    can be; any request near the hour keeps the slice."""
    t = stamps_to_ms(ts)
    if since is None or not len(t):
        return np.zeros(len(t), dtype=bool)
    a = app.sort_values("ts", kind="stable")
    at = stamps_to_ms(a["ts"])
    counts = pd.to_numeric(a["requests"], errors="coerce").fillna(0).to_numpy(dtype=float)
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    hi = np.searchsorted(at, t, side="right")
    lo = np.searchsorted(at, t - WINDOW_MS - bucket_ms, side="right")
    covered = t - WINDOW_MS >= to_ms(since)
    return (cum[hi] - cum[lo] == 0) & covered


@entry
def latency_slices(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    threshold_ms: float = 500.0,
    target: str | None = None,
    scrapes: pd.DataFrame | None = None,
    carry: list[str] | tuple[str, ...] = (),
    app: pd.DataFrame | None = None,
    since: Any = None,
    bucket_ms: int = HOUR_MS,
) -> pd.DataFrame:
    """One row per time slice (a scrape whose window had requests): ts, p95, count, met,
    ordered, monitoring_only, then the columns `carry` of the scrapes (e.g. target) as
    they are. `monitoring_only` (see that function) needs `app` and `since`, else False;
    `bucket_ms` is the bucket of `app` (0 or more: 0 for per-scrape deltas)."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    threshold_ms = positive(threshold_ms, "threshold_ms")
    bucket_ms = whole_number(bucket_ms, "bucket_ms")  # 0: `app` holds per-scrape deltas
    df = _scrape_frame(store, start, end, target, carry) if scrapes is None else scrapes
    cols = ["ts", "p95", "count", "met", "ordered", "monitoring_only", *carry]
    if df.empty or "rt_p95" not in df:
        return empty(cols, count="Int64", monitoring_only="bool")  # count: the rt_count
    p95 = pd.to_numeric(df["rt_p95"], errors="coerce")
    count = pd.to_numeric(df.get("rt_count"), errors="coerce")
    keep = p95.notna() & (count.isna() | (count > 0))
    out = pd.DataFrame({"ts": df["ts"], "p95": p95, "count": count, **{c: df[c] for c in carry}})[
        keep
    ].reset_index(drop=True)
    out["met"] = out["p95"] < threshold_ms
    out["ordered"] = _ordered(df[keep]).reset_index(drop=True)
    out["monitoring_only"] = (
        monitoring_only(out["ts"], app, since, bucket_ms=bucket_ms)
        if app is not None
        else np.zeros(len(out), dtype=bool)
    )
    return out[cols]


@entry
def latency_timeslices(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    threshold_ms: float = 500.0,
    target: str | None = None,
    scrapes: pd.DataFrame | None = None,
    app: tuple[pd.DataFrame, Any] | None = None,
) -> dict[str, Any]:
    """The latency SLO as OpenSLO timeslices: slices, met, missed, share (NaN without
    slices), label, and monitoring_only: the slices left out because their hour held no
    application request (`monitoring_only`; `app`: `app_traffic()`'s answer, read here
    over [start, end) when not given)."""
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    threshold_ms = positive(threshold_ms, "threshold_ms")
    traffic, since = app if app is not None else app_traffic(store, start, end, target=target)
    slices = latency_slices(
        store,
        start,
        end,
        threshold_ms=threshold_ms,
        target=target,
        scrapes=scrapes,
        app=traffic,
        since=since,
    )
    own = int(slices["monitoring_only"].sum()) if len(slices) else 0
    slices = slices[~slices["monitoring_only"].astype(bool)]
    n = int(len(slices))
    met = int(slices["met"].sum()) if n else 0
    count = pd.to_numeric(slices["count"], errors="coerce")
    return {
        "slices": n,
        "met": met,
        "missed": n - met,
        "monitoring_only": own,
        # windows holding the server's last WINDOW_CAP requests: less than an hour (quirk 6)
        "capped": int((count >= WINDOW_CAP).sum()) if n else 0,
        "share": ratio(met, n),
        "threshold_ms": float(threshold_ms),
        "label": TIMESLICE_LABEL.format(threshold=threshold_ms),
    }


def _ordered(df: pd.DataFrame) -> pd.Series:
    cols = ["rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max"]
    values = df[cols].apply(pd.to_numeric, errors="coerce")
    ok = values.notna().all(axis=1)
    for a, b in zip(cols, cols[1:], strict=False):
        ok &= values[a] <= values[b]
    return ok


@entry
def percentile_sanity(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    target: str | None = None,
    scrapes: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """How often the server's window statistics satisfy min <= p50 <= p95 <= p99 <= max.

    snapshots: scrapes whose window had statistics (all five values present);
    disordered: those breaking the order (quirk 1: the server picks percentiles from
    unsorted arrival order). Also which pair broke: p50_gt_p95, p95_gt_p99, other.
    """
    start, end = instants(start, end)  # ISO strings, naive datetimes: aware UTC
    df = _scrape_frame(store, start, end, target) if scrapes is None else scrapes
    cols = ["rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max"]
    if df.empty or not set(cols) <= set(df.columns):
        return {
            "snapshots": 0,
            "ordered": 0,
            "disordered": 0,
            "disordered_share": float("nan"),
            "p50_gt_p95": 0,
            "p95_gt_p99": 0,
        }
    values = df[cols].apply(pd.to_numeric, errors="coerce")
    present = values.notna().all(axis=1)
    values = values[present]
    ordered = _ordered(df[present])
    n = int(len(values))
    bad = int((~ordered).sum())
    return {
        "snapshots": n,
        "ordered": n - bad,
        "disordered": bad,
        "disordered_share": ratio(bad, n),
        "p50_gt_p95": int((values["rt_p50"] > values["rt_p95"]).sum()),
        "p95_gt_p99": int((values["rt_p95"] > values["rt_p99"]).sum()),
    }
