"""Which endpoints an incident harmed, and how much: the postmortem's harm rule.

An endpoint is harmed when it shows, against the baseline before the window, more errors
or a slower mean than chance explains (a one-sided test at `harm_significance`) and by
more than a minimum that matters. Both are measured as the requests a user lost or waited:

- **errors beyond the baseline**: expected = requests x the baseline's error rate,
  excess = errors - expected. The test is the exact conditional test of two Poisson rates
  (the binomial form of "the same error rate in both periods", Przyborowski & Wilenski
  1940): given the K = k + k0 errors of the window (k of n requests) and the baseline
  (k0 of n0), each error falls in the window with probability q = n / (n + n0) when the
  rate did not change, so p = P(X >= k), X ~ Binomial(K, q). It counts the baseline's own
  uncertainty: 137 errors in 26,321 requests (0.52 %) after 34 in 8,586 (0.40 %) is
  p = 0.09, noise. An endpoint without baseline traffic is tested against the runbook's
  error-rate target instead: p = P(X >= k), X ~ Binomial(n, thresholds.error_rate).
  Significant when p < harm_significance and excess >= harm_min_excess_errors.
- **added latency**: added_ms = mean_ms - baseline_mean_ms; added_latency_s = added_ms x
  requests / 1000 (request-seconds). The test is a one-sided z-test of the difference of
  two means, z = added_ms / sqrt(s2 / n + s0^2 / n0), p = erfc(z / sqrt 2) / 2, where each
  period's per-request variance s^2 comes from the dispersion of its bucket means
  (between-bucket mean square: sum n_b (m_b - m)^2 / (B - 1), which estimates the
  per-request variance when requests are independent, and more when the mean moves
  within the period: a conservative test). The window uses the baseline's variance when
  it has fewer than two busy buckets. Not tested (p NaN) with fewer than
  harm_min_requests requests in either period: the mean of a few requests of a skewed
  latency distribution is not normal (9 requests of /copilot/chat after a restart, 1.2 s
  against 0.84 s, would pass for p = 0.005). Significant when p < harm_significance and
  added_ms >= harm_min_latency_ms and >= harm_min_latency_increase x the baseline mean.
- **harm** (request-seconds) = harm_seconds_per_error x the significant excess errors +
  the significant added latency. Endpoints are ranked by harm, most first; those without
  significant harm follow, closest to significance first (smallest p-value), then by
  requests.

The closed forms use only `math` (no SciPy): `binomial_sf`, `normal_sf`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..config import Thresholds
from ._common import empty, entry

HARM_COLUMNS = [
    "endpoint",
    "requests",
    "errors",
    "error_rate",
    "baseline_requests",
    "baseline_errors",
    "baseline_error_rate",
    "reference",
    "expected_errors",
    "excess_errors",
    "errors_p",
    "errors_significant",
    "mean_ms",
    "baseline_mean_ms",
    "added_ms",
    "added_latency_s",
    "latency_p",
    "latency_significant",
    "harm_s",
    "harmed",
    "extra_latency_ms",
    "rank",
]


# --- the tests, closed forms ------------------------------------------------------------------


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed term by term (exact to float precision).

    Above the mean the upper tail is summed upwards; below it, 1 - the lower tail summed
    downwards; each stops once the terms no longer count."""
    k, n = int(k), int(n)
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    ratio = p / (1.0 - p)
    if k > n * p:
        term = math.exp(_log_pmf(k, n, p))
        total = 0.0
        for i in range(k, n + 1):
            total += term
            if term <= total * 1e-17:
                break
            term *= (n - i) / (i + 1) * ratio
        return min(total, 1.0)
    term = math.exp(_log_pmf(k - 1, n, p))
    total = 0.0
    for i in range(k - 1, -1, -1):
        total += term
        if term <= total * 1e-17:
            break
        term *= i / (n - i + 1) / ratio
    return max(0.0, 1.0 - total)


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z: erfc(z / sqrt 2) / 2."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def errors_p_value(
    errors: int, requests: int, baseline_errors: int, baseline_requests: int
) -> float:
    """One-sided p-value of "the window's error rate is above the baseline's": the exact
    conditional test of two Poisson rates, P(X >= errors) for X ~ Binomial(errors +
    baseline_errors, requests / (requests + baseline_requests)). NaN without baseline
    requests; 1 without window requests or errors."""
    if _bad(baseline_requests) or baseline_requests <= 0:
        return float("nan")
    if _bad(requests) or requests <= 0 or _bad(errors) or errors <= 0:
        return 1.0
    total = int(errors) + int(baseline_errors)
    return binomial_sf(int(errors), total, requests / (requests + baseline_requests))


def errors_p_value_against(errors: int, requests: int, rate: float) -> float:
    """One-sided p-value of "the error rate is above `rate`": P(X >= errors), X ~
    Binomial(requests, rate) (an endpoint without baseline, against the runbook target)."""
    if _bad(requests) or requests <= 0 or _bad(errors) or errors <= 0:
        return 1.0
    return binomial_sf(int(errors), int(requests), float(rate))


def latency_p_value(
    mean_ms: float,
    variance: float,
    requests: float,
    baseline_mean_ms: float,
    baseline_variance: float,
    baseline_requests: float,
) -> float:
    """One-sided p-value of "the window's mean latency is above the baseline's": z =
    (mean - baseline mean) / sqrt(variance / requests + baseline_variance /
    baseline_requests), p = P(Z >= z). Variances are per request (ms^2). NaN when a figure
    is missing."""
    values = (mean_ms, variance, requests, baseline_mean_ms, baseline_variance, baseline_requests)
    if any(_bad(v) for v in values) or requests <= 0 or baseline_requests <= 0:
        return float("nan")
    diff = float(mean_ms) - float(baseline_mean_ms)
    se = math.sqrt(
        max(float(variance), 0.0) / requests
        + max(float(baseline_variance), 0.0) / baseline_requests
    )
    if se == 0.0:
        return 0.0 if diff > 0 else 1.0
    return normal_sf(diff / se)


def request_variance(series: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint, the per-request latency variance estimated from its bucket means:
    sum n_b (m_b - m)^2 / (B - 1) over the B buckets with requests, m = sum(time) /
    sum(requests). Columns endpoint, buckets, variance (NaN below two buckets).

    `series`: per endpoint per bucket (endpoint, requests, time_sum_ms), as
    `analysis.endpoint_series` returns it."""
    if series is None or series.empty:
        return empty(["endpoint", "buckets", "variance"])
    busy = series.loc[series["requests"] > 0, ["endpoint", "requests", "time_sum_ms"]].copy()
    if busy.empty:
        return empty(["endpoint", "buckets", "variance"])
    busy["requests"] = busy["requests"].astype(float)
    busy["bucket_mean"] = busy["time_sum_ms"].astype(float) / busy["requests"]
    sums = busy.groupby("endpoint")[["requests", "time_sum_ms"]].transform("sum")
    busy["sq"] = (
        busy["requests"] * (busy["bucket_mean"] - sums["time_sum_ms"] / sums["requests"]) ** 2
    )
    out = busy.groupby("endpoint").agg(buckets=("sq", "size"), ss=("sq", "sum")).reset_index()
    out["variance"] = np.where(
        out["buckets"] >= 2, out["ss"] / (out["buckets"] - 1).clip(lower=1), np.nan
    )
    return out[["endpoint", "buckets", "variance"]]


# --- the rule --------------------------------------------------------------------------------


@entry
def harm(
    window: pd.DataFrame,
    baseline: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    window_series: pd.DataFrame | None = None,
    baseline_series: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The endpoints of `window` ranked by harm against `baseline`.

    window / baseline: per endpoint (endpoint, requests, errors, mean_ms), as
    `analysis.endpoint_summary` returns them. window_series / baseline_series: the same
    per bucket (`analysis.endpoint_series`), for the latency test's variances (without
    them, latency is never significant).

    Columns: endpoint, requests, errors, error_rate; baseline_requests, baseline_errors,
    baseline_error_rate; reference ("baseline", or "target" when the endpoint had no
    baseline traffic and its errors were tested against thresholds.error_rate);
    expected_errors, excess_errors (>= 0), errors_p, errors_significant; mean_ms,
    baseline_mean_ms, added_ms, added_latency_s (request-seconds, the estimate),
    latency_p, latency_significant; harm_s (request-seconds: the significant parts only),
    harmed; extra_latency_ms (requests x max(added_ms, 0), the earlier layout's column);
    rank (1 = most harmed).
    """
    th = thresholds or Thresholds()
    if window is None or window.empty:
        return empty(HARM_COLUMNS)
    out = window[["endpoint", "requests", "errors", "mean_ms"]].copy()
    base = (
        baseline[["endpoint", "requests", "errors", "mean_ms"]].rename(
            columns={
                "requests": "baseline_requests",
                "errors": "baseline_errors",
                "mean_ms": "baseline_mean_ms",
            }
        )
        if baseline is not None and not baseline.empty
        else empty(["endpoint", "baseline_requests", "baseline_errors", "baseline_mean_ms"])
    )
    out = out.merge(base, on="endpoint", how="left")
    for col in ("requests", "errors", "baseline_requests", "baseline_errors"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    for col in ("mean_ms", "baseline_mean_ms"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["baseline_requests"] = out["baseline_requests"].fillna(0).astype("int64")
    out["baseline_errors"] = out["baseline_errors"].fillna(0).astype("int64")
    out["requests"] = out["requests"].fillna(0).astype("int64")
    out["errors"] = out["errors"].fillna(0).astype("int64")
    n, k = out["requests"].astype(float), out["errors"].astype(float)
    n0, k0 = out["baseline_requests"].astype(float), out["baseline_errors"].astype(float)
    out["error_rate"] = (k / n.where(n > 0)).astype(float)
    has_base = n0 > 0
    out["baseline_error_rate"] = (k0 / n0.where(has_base)).astype(float)
    out["reference"] = np.where(has_base, "baseline", "target")
    rate = out["baseline_error_rate"].where(has_base, th.error_rate)
    out["expected_errors"] = n * rate
    out["excess_errors"] = (k - out["expected_errors"]).clip(lower=0.0)
    out["errors_p"] = [
        errors_p_value(ki, ni, k0i, n0i)
        if base_i
        else errors_p_value_against(ki, ni, th.error_rate)
        for ki, ni, k0i, n0i, base_i in zip(k, n, k0, n0, has_base, strict=True)
    ]
    out["errors_significant"] = (out["errors_p"] < th.harm_significance) & (
        out["excess_errors"] >= th.harm_min_excess_errors
    )

    out["added_ms"] = out["mean_ms"] - out["baseline_mean_ms"]
    out["added_latency_s"] = out["added_ms"] * n / 1000.0
    var_w = _variances(window_series)
    var_b = _variances(baseline_series)
    vw = out["endpoint"].map(var_w).astype(float)
    vb = out["endpoint"].map(var_b).astype(float)
    vw = vw.where(vw.notna(), vb)  # one busy bucket in the window: the baseline's variance
    out["latency_p"] = [
        latency_p_value(m, v, ni, mb, v0, n0i)
        if ni >= th.harm_min_requests and n0i >= th.harm_min_requests
        else float("nan")
        for m, v, ni, mb, v0, n0i in zip(
            out["mean_ms"], vw, n, out["baseline_mean_ms"], vb, n0, strict=True
        )
    ]
    added = out["added_ms"]
    out["latency_significant"] = (
        (out["latency_p"] < th.harm_significance)
        & (added >= th.harm_min_latency_ms)
        & (added >= th.harm_min_latency_increase * out["baseline_mean_ms"])
    ).fillna(False)

    out["harm_s"] = th.harm_seconds_per_error * out["excess_errors"].where(
        out["errors_significant"], 0.0
    ) + out["added_latency_s"].where(out["latency_significant"], 0.0).fillna(0.0)
    out["harmed"] = out["harm_s"] > 0
    out["extra_latency_ms"] = n * added.clip(lower=0).fillna(0.0)
    out["_closest"] = out[["errors_p", "latency_p"]].min(axis=1, skipna=True).fillna(1.0)
    out = out.sort_values(
        ["harmed", "harm_s", "_closest", "requests", "endpoint"],
        ascending=[False, False, True, False, True],
        kind="stable",
    ).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[HARM_COLUMNS]


def _variances(series: pd.DataFrame | None) -> pd.Series:
    found = request_variance(series) if series is not None else empty(["endpoint", "variance"])
    return found.set_index("endpoint")["variance"] if not found.empty else pd.Series(dtype=float)


def _bad(value: Any) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return True
