"""Month over month: how the monthly review compares a month with the one before it, and
which changes it calls notable. The thresholds are the `notable_*` fields of
`config.Thresholds`; presentation only words what these functions return.

A month without any observation (no scrape at all, answered or not) has no figures: its
column holds NaN ("no data"), never the zero requests that nothing counted, and nothing
is compared with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..config import Thresholds
from ._common import count, entry, ratio

# metric -> how its move is measured ("relative": (current - previous) / previous;
# "difference": current - previous, for fractions: percentage points) and the Thresholds
# field that makes it notable (None: shown in the table, never called notable: the total
# requests and errors depend on coverage (their rates are judged), latency_share is the
# latency target's figure, coverage has its own note)
RULES: dict[str, tuple[str, str | None]] = {
    "requests": ("relative", None),
    "requests_per_day": ("relative", "notable_traffic_change"),
    "errors": ("relative", None),
    "error_rate": ("difference", "notable_error_rate_change"),
    "mean_ms": ("relative", "notable_latency_change"),
    "availability": ("difference", "notable_availability_change"),
    "latency_share": ("difference", None),
    "cache_hit_ratio": ("difference", "notable_cache_hit_rate_change"),
    "coverage": ("difference", None),
}
METRICS = list(RULES)
CHANGE_COLUMNS = [
    "metric",
    "current",
    "previous",
    "change",
    "relative_change",
    "measure",
    "moved",
    "notable",
]


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


@entry
def month_over_month(
    current: Mapping[str, Any],
    previous: Mapping[str, Any],
    thresholds: Thresholds | None = None,
    *,
    current_known: bool = True,
    previous_known: bool = True,
) -> pd.DataFrame:
    """One row per metric of `RULES`: metric, current, previous, change (current -
    previous), relative_change, measure ("relative" | "difference"), moved (the change by
    that measure) and notable (|moved| at or above the metric's threshold; False for a
    metric without a rule or a change that is unknown).

    `current` / `previous`: the periods' totals (`MonthlyReview.totals`). A period that is
    not `known` (no observation in it) has NaN for every figure, whatever its totals say.
    """
    th = thresholds or Thresholds()
    rows = []
    for metric, (measure, threshold) in RULES.items():
        cur = _number(current.get(metric)) if current_known else float("nan")
        prev = _number(previous.get(metric)) if previous_known else float("nan")
        change = cur - prev
        relative = ratio(change, prev)
        moved = relative if measure == "relative" else change
        notable = (
            threshold is not None
            and not np.isnan(moved)
            and bool(abs(moved) >= getattr(th, threshold))
        )
        rows.append(
            {
                "metric": metric,
                "current": cur,
                "previous": prev,
                "change": change,
                "relative_change": relative,
                "measure": measure,
                "moved": moved,
                "notable": bool(notable),
            }
        )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


@entry
def endpoints_worse(endpoints: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """Endpoints with traffic this month whose error rate rose by more than
    `notable_endpoint_error_rate_change` (a difference of fractions), largest rise first.
    `endpoints`: `traffic.endpoint_changes()` (`MonthlyReview.endpoints`)."""
    th = thresholds or Thresholds()
    if endpoints.empty:
        return endpoints
    rose = (endpoints["error_rate_change"] > th.notable_endpoint_error_rate_change) & (
        endpoints["requests"] > 0
    )
    return endpoints[rose].sort_values("error_rate_change", ascending=False)


@entry
def endpoints_slower(endpoints: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """Endpoints with traffic this month whose mean latency rose by more than
    `notable_endpoint_latency_change` (relative), largest rise first."""
    th = thresholds or Thresholds()
    if endpoints.empty:
        return endpoints
    rose = (endpoints["mean_ms_change"] > th.notable_endpoint_latency_change) & (
        endpoints["requests"] > 0
    )
    return endpoints[rose].sort_values("mean_ms_change", ascending=False)


def endpoints_new(endpoints: pd.DataFrame) -> pd.DataFrame:
    """Endpoints with traffic this month and none the month before, worst first."""
    if endpoints.empty:
        return endpoints
    new = endpoints["new"].fillna(False).astype(bool)  # NA: the month before has no data
    return endpoints[new & (endpoints["requests"] > 0)]


@entry
def notable_changes(
    changes: pd.DataFrame,
    endpoints: pd.DataFrame,
    thresholds: Thresholds | None = None,
    *,
    per_kind: int = 2,
    new: int = 5,
) -> list[dict[str, Any]]:
    """The notable changes against the previous month, in the order the review says them:
    traffic, then the error rate, availability and cache hit rate, then mean latency (each
    when `changes` calls it notable), then at most `per_kind` endpoints whose error rate
    rose and `per_kind` that got slower, then up to `new` new endpoints.

    Each finding: {"kind": "metric", "metric", "current", "previous", "moved",
    "measure"}, {"kind": "endpoint_error_rate" | "endpoint_latency", "endpoint",
    "current", "previous", "moved"} or {"kind": "new_endpoints", "endpoints": [...]}.
    Empty when either month has no data (every change is then unknown).
    """
    per_kind, new = count(per_kind, "per_kind"), count(new, "new")
    th = thresholds or Thresholds()
    if changes.empty or changes["change"].isna().all():
        return []  # a month without data: nothing to compare
    out: list[dict[str, Any]] = []
    rows = changes.set_index("metric")
    for metric in ("requests_per_day", "error_rate", "availability", "cache_hit_ratio", "mean_ms"):
        if metric not in rows.index or not bool(rows.loc[metric, "notable"]):
            continue
        row = rows.loc[metric]
        out.append(
            {
                "kind": "metric",
                "metric": metric,
                "current": row["current"],
                "previous": row["previous"],
                "moved": row["moved"],
                "measure": row["measure"],
            }
        )
    for kind, found, column, before in (
        ("endpoint_error_rate", endpoints_worse(endpoints, th), "error_rate", "prev_error_rate"),
        ("endpoint_latency", endpoints_slower(endpoints, th), "mean_ms", "prev_mean_ms"),
    ):
        for r in found.head(per_kind).to_dict("records"):
            moved = r["error_rate_change"] if column == "error_rate" else r["mean_ms_change"]
            out.append(
                {
                    "kind": kind,
                    "endpoint": r["endpoint"],
                    "current": r[column],
                    "previous": r[before],
                    "moved": moved,
                }
            )
    fresh = endpoints_new(endpoints)
    if not fresh.empty:
        out.append(
            {"kind": "new_endpoints", "endpoints": [str(e) for e in fresh["endpoint"].head(new)]}
        )
    return out
