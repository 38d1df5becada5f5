"""SLO arithmetic: error budgets, latency time slices, and the sanity of the server's percentiles."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ParameterValueError
from ..times import shown
from ._common import empty, ensure_ts, ratio, seconds

TIMESLICE_LABEL = (
    "share of time slices whose reported p95 met {threshold:g} ms (OpenSLO timeslices; "
    "each slice is one scrape's window p95 as the server reported it, an untrusted "
    "sample, see reference quirk 1; never an average of p95s)"
)


def error_budget(
    slo: float, good: float, total: float, period: timedelta | float | None = None
) -> dict[str, Any]:
    """Error budget of an SLO over `total` events of which `good` were good.

    budget = (1 - SLO) x period (and x total events); the observed error ratio is
    bad / total; burn rate = error ratio / (1 - SLO) (1.0 spends exactly the budget);
    spent_share = bad / allowed bad events (> 1: overspent); left_share = 1 - spent_share.
    Time figures (`budget_s`, `spent_s`, `left_s`) need `period` (timedelta or seconds).
    Without events every observed figure is NaN, never a made-up 0 or 100 %.
    """
    if not 0 < slo < 1:
        raise ParameterValueError(
            f"slo: {shown(slo)} is not a fraction between 0 and 1 (an SLO of 99.9 % is 0.999)"
        )
    total = float(total)
    good = float(good)
    bad = max(total - good, 0.0)
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


def _scrape_frame(
    store: Any, start: datetime | None, end: datetime | None, target: str | None
) -> pd.DataFrame:
    df = store.scrapes(start, end, target=target)
    return (
        ensure_ts(df.copy(), "ts").sort_values("ts").reset_index(drop=True) if not df.empty else df
    )


def latency_slices(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    threshold_ms: float = 500.0,
    target: str | None = None,
    scrapes: pd.DataFrame | None = None,
    carry: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per time slice (a scrape whose window had requests): ts, p95, count, met,
    ordered, then the columns `carry` of the scrapes (e.g. target) as they are."""
    df = _scrape_frame(store, start, end, target) if scrapes is None else scrapes
    cols = ["ts", "p95", "count", "met", "ordered", *carry]
    if df.empty or "rt_p95" not in df:
        return empty(cols, count="Int64")  # the scrapes' rt_count
    p95 = pd.to_numeric(df["rt_p95"], errors="coerce")
    count = pd.to_numeric(df.get("rt_count"), errors="coerce")
    keep = p95.notna() & (count.isna() | (count > 0))
    out = pd.DataFrame({"ts": df["ts"], "p95": p95, "count": count, **{c: df[c] for c in carry}})[
        keep
    ].reset_index(drop=True)
    out["met"] = out["p95"] < threshold_ms
    out["ordered"] = _ordered(df[keep]).reset_index(drop=True)
    return out[cols]


def latency_timeslices(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    *,
    threshold_ms: float = 500.0,
    target: str | None = None,
    scrapes: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The latency SLO as OpenSLO timeslices: slices, met, missed, share (NaN without slices), label."""
    slices = latency_slices(
        store, start, end, threshold_ms=threshold_ms, target=target, scrapes=scrapes
    )
    n = int(len(slices))
    met = int(slices["met"].sum()) if n else 0
    return {
        "slices": n,
        "met": met,
        "missed": n - met,
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
