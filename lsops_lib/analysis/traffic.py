"""Traffic per endpoint and cache figures, from the store's SQL-aggregated interval deltas.

The store computes deltas of the cumulative counters across resets (never negative);
here they are only summed. Mean latency is always sum(time) / sum(requests), weighted by
requests, never a mean of means; an error rate is sum(errors) / sum(requests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..models import is_monitoring
from ._common import (
    MONITORING_REASON,
    empty,
    ensure_ts,
    entry,
    filter_monitoring,
    instants,
    ratio,
)

SUMMARY_COLUMNS = ["endpoint", "requests", "errors", "error_rate", "mean_ms"]


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """requests/errors as ints, weighted mean and error rate from the sums."""
    out = frame.copy()
    requests = out["requests"].astype(float)
    out["mean_ms"] = np.where(
        requests > 0, out["time_sum_ms"].astype(float) / requests.where(requests > 0, 1), np.nan
    )
    out["requests"] = out["requests"].round().astype("int64")
    out["errors"] = out["errors"].astype(float).fillna(0).round().astype("int64")
    out["error_rate"] = np.where(
        out["requests"] > 0, out["errors"] / out["requests"].where(out["requests"] > 0, 1), np.nan
    )
    return out


def _intervals(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    bucket: str,
    target: str | None,
    include_monitoring: bool,
) -> pd.DataFrame:
    start, end = instants(start, end)  # a start after the end: ParameterError
    df = store.endpoint_intervals(
        start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    df = filter_monitoring(df, include_monitoring)
    return ensure_ts(df.copy(), "ts")


@entry
def endpoint_summary(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> pd.DataFrame:
    """Per endpoint over [start, end): requests (int), errors (int), error_rate (0-1), mean_ms.

    Sorted by requests, most first. `time_sum_ms` is kept for further weighting.
    """
    df = _intervals(
        store, start, end, bucket="day", target=target, include_monitoring=include_monitoring
    )
    return summary_of(df)


def summary_of(df: pd.DataFrame) -> pd.DataFrame:
    """`endpoint_summary` of interval rows (`endpoint_intervals`, any bucket): the sums per
    endpoint, whatever buckets they were read in (the requests and errors are whole
    numbers: the same sums)."""
    if df.empty:
        return empty([*SUMMARY_COLUMNS, "time_sum_ms"])
    sums = df.groupby("endpoint", as_index=False)[["requests", "errors", "time_sum_ms"]].sum(
        min_count=1
    )
    sums[["requests", "errors", "time_sum_ms"]] = sums[
        ["requests", "errors", "time_sum_ms"]
    ].fillna(0)
    out = _finish(sums)
    out = out.sort_values(["requests", "endpoint"], ascending=[False, True]).reset_index(drop=True)
    return out[[*SUMMARY_COLUMNS, "time_sum_ms"]]


@entry
def excluded_monitoring(
    store: Any, start: datetime | None, end: datetime | None, *, target: str | None = None
) -> pd.DataFrame:
    """The monitoring endpoints a default summary leaves out: endpoint, requests, errors, reason."""
    return _excluded(endpoint_summary(store, start, end, target=target, include_monitoring=True))


@entry
def summary_and_excluded(
    store: Any, start: datetime | None, end: datetime | None, *, target: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`endpoint_summary` (monitoring endpoints left out) and `excluded_monitoring` of one
    period from ONE read (monitoring included): an endpoint's sums are its own rows', so
    the default summary is the full one without the monitoring endpoints, in its order."""
    full = endpoint_summary(store, start, end, target=target, include_monitoring=True)
    summary = filter_monitoring(full, include_monitoring=False).reset_index(drop=True)
    return (summary if not summary.empty else summary_of(summary)), _excluded(full)


def _excluded(full: pd.DataFrame) -> pd.DataFrame:
    if full.empty:
        return empty(["endpoint", "requests", "errors", "reason"])
    out = full.loc[
        full["endpoint"].astype(str).map(is_monitoring), ["endpoint", "requests", "errors"]
    ].copy()
    out["reason"] = MONITORING_REASON
    return out.reset_index(drop=True)


@entry
def traffic_series(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    bucket: str = "day",
    target: str | None = None,
    include_monitoring: bool = False,
    endpoint: str | None = None,
) -> pd.DataFrame:
    """All endpoints together (or one) per bucket: ts, requests, errors, error_rate, mean_ms."""
    df = _intervals(
        store, start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    if endpoint is not None and not df.empty:
        df = df.loc[df["endpoint"] == endpoint]
    return series_of(df)


def series_of(df: pd.DataFrame) -> pd.DataFrame:
    """`traffic_series` of interval rows (`endpoint_intervals`): the sums per bucket."""
    if df.empty:
        return empty(["ts", "requests", "errors", "error_rate", "mean_ms", "time_sum_ms"])
    sums = (
        df.groupby("ts", as_index=False)[["requests", "errors", "time_sum_ms"]]
        .sum(min_count=1)
        .fillna(0)
    )
    out = _finish(sums).sort_values("ts").reset_index(drop=True)
    return out[["ts", "requests", "errors", "error_rate", "mean_ms", "time_sum_ms"]]


@entry
def endpoint_series(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    bucket: str = "hour",
    target: str | None = None,
    include_monitoring: bool = False,
) -> pd.DataFrame:
    """Per endpoint per bucket: ts, endpoint, requests, errors, error_rate, mean_ms, time_sum_ms."""
    df = _intervals(
        store, start, end, bucket=bucket, target=target, include_monitoring=include_monitoring
    )
    if df.empty:
        return empty(
            ["ts", "endpoint", "requests", "errors", "error_rate", "mean_ms", "time_sum_ms"]
        )
    df = df[["ts", "endpoint", "requests", "errors", "time_sum_ms"]].copy()
    df[["requests", "errors", "time_sum_ms"]] = (
        df[["requests", "errors", "time_sum_ms"]].fillna(0).astype(float)
    )
    out = _finish(df).sort_values(["endpoint", "ts"]).reset_index(drop=True)
    return out[["ts", "endpoint", "requests", "errors", "error_rate", "mean_ms", "time_sum_ms"]]


def endpoint_changes(
    current: pd.DataFrame, previous: pd.DataFrame, *, previous_known: bool = True
) -> pd.DataFrame:
    """Two endpoint summaries side by side with the change, worst first.

    Columns: endpoint, requests, errors, error_rate, mean_ms, prev_requests, prev_errors,
    prev_error_rate, prev_mean_ms, requests_change (relative), error_rate_change
    (difference of fractions), mean_ms_change (relative), new (no request the period
    before; a nullable boolean). Worst first: most errors, then the largest mean-latency
    increase, then most requests.

    `previous_known=False`: the previous period has no observation at all. Its figures are
    then no data, never zero: prev_requests and prev_errors are NA, every change NaN and
    `new` NA (unknown: an endpoint is not new because nothing was collected).
    prev_requests and prev_errors are Int64 (nullable) whether the previous period is
    known or not, requests and errors int64.
    """
    cols = SUMMARY_COLUMNS
    cur = current[cols] if not current.empty else empty(cols)
    prev = previous[cols] if not previous.empty else empty(cols)
    prev = prev.rename(columns={c: f"prev_{c}" for c in cols if c != "endpoint"})
    out = cur.merge(prev, on="endpoint", how="outer")
    for col in ["requests", "errors", "prev_requests", "prev_errors"]:
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype("int64")
    for col in ["error_rate", "mean_ms", "prev_error_rate", "prev_mean_ms"]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["requests_change"] = [
        ratio(c - p, p) for c, p in zip(out["requests"], out["prev_requests"], strict=True)
    ]
    out["error_rate_change"] = out["error_rate"] - out["prev_error_rate"]
    out["mean_ms_change"] = [
        ratio(c - p, p) for c, p in zip(out["mean_ms"], out["prev_mean_ms"], strict=True)
    ]
    out["new"] = (out["prev_requests"] == 0).astype("boolean")
    for col in ["prev_requests", "prev_errors"]:  # one type, known or not (NA: unknown)
        out[col] = out[col].astype("Int64")
    if not previous_known:
        for col in ["prev_requests", "prev_errors"]:
            out[col] = pd.array([pd.NA] * len(out), dtype="Int64")
        changes = ["requests_change", "error_rate_change", "mean_ms_change"]
        out[["prev_error_rate", "prev_mean_ms", *changes]] = np.nan
        out["new"] = pd.array([pd.NA] * len(out), dtype="boolean")
    out = out.sort_values(
        ["errors", "mean_ms_change", "requests"],
        ascending=[False, False, False],
        na_position="last",
    ).reset_index(drop=True)
    return out


@entry
def cache_stats(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    bucket: str = "hour",
    target: str | None = None,
) -> pd.DataFrame:
    """Per bucket: ts, cache_hits, cache_misses, operations, hit_ratio, resets.

    From deltas of the cumulative hit/miss counters (never the server's hitRate, which is
    cumulative since start and in percent). hit_ratio is NaN for a bucket without operations.
    """
    start, end = instants(start, end)  # a start after the end: ParameterError
    df = store.counter_intervals(start, end, bucket=bucket, target=target)
    cols = ["ts", "cache_hits", "cache_misses", "operations", "hit_ratio", "resets"]
    if df.empty:
        return empty(cols)
    df = ensure_ts(df.copy(), "ts")
    out = pd.DataFrame({"ts": df["ts"]})
    out["cache_hits"] = (
        pd.to_numeric(df["cache_hits"], errors="coerce").fillna(0).round().astype("int64")
    )
    out["cache_misses"] = (
        pd.to_numeric(df["cache_misses"], errors="coerce").fillna(0).round().astype("int64")
    )
    out["operations"] = out["cache_hits"] + out["cache_misses"]
    out["hit_ratio"] = [
        ratio(h, o) for h, o in zip(out["cache_hits"], out["operations"], strict=True)
    ]
    out["resets"] = pd.to_numeric(df.get("resets", 0), errors="coerce").fillna(0).astype("int64")
    return out.sort_values("ts").reset_index(drop=True)[cols]


@entry
def cache_summary(
    store: Any, start: datetime | None, end: datetime | None, *, target: str | None = None
) -> dict[str, Any]:
    """hits, misses, operations, hit_ratio (NaN without operations) over [start, end)."""
    df = cache_stats(store, start, end, bucket="day", target=target)
    hits = int(df["cache_hits"].sum()) if not df.empty else 0
    misses = int(df["cache_misses"].sum()) if not df.empty else 0
    return {
        "hits": hits,
        "misses": misses,
        "operations": hits + misses,
        "hit_ratio": ratio(hits, hits + misses),
    }


def request_totals(summary: pd.DataFrame) -> dict[str, Any]:
    """requests, errors, error_rate, mean_ms (weighted) of an endpoint summary."""
    if summary.empty:
        return {"requests": 0, "errors": 0, "error_rate": float("nan"), "mean_ms": float("nan")}
    requests = int(summary["requests"].sum())
    errors = int(summary["errors"].sum())
    time_sum = float(summary["time_sum_ms"].sum()) if "time_sum_ms" in summary else float("nan")
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": ratio(errors, requests),
        "mean_ms": ratio(time_sum, requests),
    }
