"""Authentication failures and suspicious activity, from the error records the collector
stored (the runbook's "review access logs: check for suspicious activity, review
authentication logs").

The API's `/api/metrics` carries its last error records with their status codes
(`errors.recentErrors`: `{endpoint, method, statusCode, timestamp}`); the collector keeps
each record once (`Store.error_records`). From them: 401/403 (authentication and
authorization failures) and 429 (rate limited) per hour and per endpoint, and the hours
that burst against a baseline (the median hourly count over the hours the collector
covered: an hour with at least `Thresholds.auth_burst_factor` times the baseline and at
least `Thresholds.auth_burst_min` records is a burst).

The API exposes only its last 10 error records per metrics window, so these counts are
lower bounds at high error rates (the report says so). Client addresses are not in the
metrics: the top sources need the API's logs, which lsops collects but does not count by
client address: `sources` says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt
from ..config import Thresholds

__all__ = [
    "AUTH_CODES",
    "AUTH_KEYS",
    "RATE_LIMIT_CODES",
    "auth_records",
    "auth_review",
    "bursts",
    "by_endpoint",
    "covered_hours",
    "hourly",
    "not_configured",
]

AUTH_CODES = (401, 403)
RATE_LIMIT_CODES = (429,)
KINDS = {"auth_failures": AUTH_CODES, "rate_limited": RATE_LIMIT_CODES}
AUTH_KEYS = (
    "status",
    "configured",
    "reason",
    "start",
    "end",
    "hours_covered",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "auth_failures",
    "baseline",
    "by_hour",
    "by_endpoint",
    "bursts",
    "sources",
    "note",
)
SAMPLE_NOTE = (
    "from the error records the API exposes (its last 10 per metrics window, kept once "
    "each by the collector): lower bounds when errors come faster than the collector scrapes"
)
NO_SOURCES = {
    "available": False,
    "reason": (
        "client addresses are only in the API's logs, which lsops collects (lsops logs) but "
        "does not count by client address: top sources unknown"
    ),
    "top": None,
}
HOUR_COLUMNS = ["hour", "auth_failures", "rate_limited"]
ENDPOINT_COLUMNS = [
    "endpoint",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "total",
    "first",
    "last",
]
BURST_COLUMNS = ["hour", "kind", "count", "baseline", "threshold"]


def _result(status: str, **fields: Any) -> dict[str, Any]:
    """The part's dict; an `unknown` part's figures are None (never 0 nor an empty list)."""
    out: dict[str, Any] = dict.fromkeys(AUTH_KEYS)
    rows = None if status == "unknown" else []
    out.update(status=status, configured=True, by_hour=rows, by_endpoint=rows, bursts=rows)
    out.update(sources=dict(NO_SOURCES), note=SAMPLE_NOTE)
    out.update(fields)
    return out


def not_configured(reason: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    return _result("unknown", configured=False, reason=reason, start=start, end=end)


def auth_records(
    store: Any, start: datetime, end: datetime, target: str | None = None
) -> pd.DataFrame:
    """The stored error records with a 401, 403 or 429: ts, endpoint, method, status_code."""
    records = store.error_records(start, end, target=target)
    codes = list(AUTH_CODES + RATE_LIMIT_CODES)
    if records.empty or "status_code" not in records:
        return pd.DataFrame(columns=["ts", "endpoint", "method", "status_code"])
    mask = records["status_code"].isin(codes).fillna(False).astype(bool)
    out = records.loc[mask, ["ts", "endpoint", "method", "status_code"]]
    return out.reset_index(drop=True)


def covered_hours(
    store: Any, start: datetime, end: datetime, target: str | None = None
) -> pd.DatetimeIndex:
    """The UTC hours of [start, end) in which the collector got at least one answer (the
    hours whose absence of records means none, not a gap in collection)."""
    read = getattr(store, "answered_hours", None)
    if callable(read):  # the store's scrape rows alone (a month: ~0.15 s less than below)
        answered_ts = read(start, end, target=target)["ts"]
    else:
        counters = store.counter_intervals(start, end, bucket="hour", target=target)
        if counters.empty:
            return pd.DatetimeIndex([], tz="UTC", name="hour")
        answered = counters["scrapes"].fillna(0) - counters["failures"].fillna(0) > 0
        answered_ts = counters.loc[answered, "ts"]
    if answered_ts.empty:
        return pd.DatetimeIndex([], tz="UTC", name="hour")
    hours = pd.to_datetime(answered_ts, utc=True).dt.floor("h")
    return pd.DatetimeIndex(sorted(set(hours)), name="hour")


def hourly(records: pd.DataFrame, hours: pd.DatetimeIndex) -> pd.DataFrame:
    """Per covered hour (zeros included) and any hour with a record: hour,
    auth_failures (401 + 403), rate_limited (429)."""
    ts = pd.to_datetime(records["ts"], utc=True).dt.floor("h") if len(records) else None
    index = hours.union(pd.DatetimeIndex(ts.unique() if ts is not None else [], name="hour"))
    out = pd.DataFrame({"hour": index})
    for kind, codes in KINDS.items():
        if ts is None:
            out[kind] = 0
            continue
        counts = ts[records["status_code"].isin(codes).to_numpy()].value_counts()
        out[kind] = out["hour"].map(counts).fillna(0).astype("int64")
    return out.sort_values("hour").reset_index(drop=True)


def by_endpoint(records: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint, most records first: endpoint, unauthorized (401), forbidden (403),
    rate_limited (429), total, first, last."""
    if records.empty:
        return pd.DataFrame(columns=ENDPOINT_COLUMNS)
    df = records.assign(endpoint=records["endpoint"].fillna("(unknown)"))
    code = df["status_code"].astype("int64")
    df = df.assign(
        unauthorized=(code == 401).astype("int64"),
        forbidden=(code == 403).astype("int64"),
        rate_limited=code.isin(RATE_LIMIT_CODES).astype("int64"),
    )
    out = df.groupby("endpoint", as_index=False).agg(
        unauthorized=("unauthorized", "sum"),
        forbidden=("forbidden", "sum"),
        rate_limited=("rate_limited", "sum"),
        first=("ts", "min"),
        last=("ts", "max"),
    )
    out["total"] = out["unauthorized"] + out["forbidden"] + out["rate_limited"]
    out = out.sort_values(["total", "endpoint"], ascending=[False, True])
    return out[ENDPOINT_COLUMNS].reset_index(drop=True)


def bursts(hours: pd.DataFrame, covered: pd.DatetimeIndex, t: Thresholds) -> pd.DataFrame:
    """Hours at or above max(auth_burst_min, auth_burst_factor x baseline), the baseline
    being the median count per covered hour: hour, kind, count, baseline, threshold."""
    rows = []
    for kind in KINDS:
        base = _baseline(hours, covered, kind)
        threshold = max(float(t.auth_burst_min), t.auth_burst_factor * base)
        for r in hours.itertuples(index=False):
            count = int(getattr(r, kind))
            if count and count >= threshold:
                rows.append(
                    {"hour": r.hour, "kind": kind, "count": count, "baseline": base,
                     "threshold": threshold}
                )  # fmt: skip
    return pd.DataFrame(rows, columns=BURST_COLUMNS)


def _baseline(hours: pd.DataFrame, covered: pd.DatetimeIndex, kind: str) -> float:
    inside = hours[hours["hour"].isin(covered)][kind]
    return float(inside.median()) if len(inside) else 0.0


def auth_review(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds,
    *,
    target: str | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The auth part of the security review (`AUTH_KEYS`): `unknown` when the collector
    covered no hour of the window (its counts, baseline and lists then None, never 0),
    `attention` when an hour bursts, else `ok`; and the
    hourly frame of every covered hour (`hourly`, for the chart)."""
    records = auth_records(store, start, end, target)
    covered = covered_hours(store, start, end, target)
    per_hour = hourly(records, covered)
    if not len(covered):  # nothing watched: no count nor baseline (None, never 0)
        unknown = _result(
            "unknown",
            reason="the collector stored no answer of the API in this window",
            start=start,
            end=end,
            hours_covered=0,
            baseline=dict.fromkeys(KINDS),
        )
        return unknown, per_hour
    found = bursts(per_hour, covered, thresholds)
    code = records["status_code"].astype("int64") if len(records) else pd.Series([], dtype="int64")
    counts = {
        "unauthorized": int((code == 401).sum()),
        "forbidden": int((code == 403).sum()),
        "rate_limited": int(code.isin(RATE_LIMIT_CODES).sum()),
    }
    counts["auth_failures"] = counts["unauthorized"] + counts["forbidden"]
    baseline = {k: _baseline(per_hour, covered, k) for k in KINDS}
    nonzero = per_hour[(per_hour["auth_failures"] > 0) | (per_hour["rate_limited"] > 0)]
    if len(found):
        status = "attention"
        # an hour bursting in 401/403 and in 429 is one hour (two rows of `bursts`)
        reason = f"{fmt.counted(found['hour'].nunique(), 'hour')} burst above the baseline"
    else:
        status = "ok"
        reason = "no burst of 401/403 or 429 above the baseline"
    result = _result(
        status,
        reason=reason,
        start=start,
        end=end,
        hours_covered=int(len(covered)),
        baseline=baseline,
        by_hour=_records(nonzero),
        by_endpoint=_records(by_endpoint(records)),
        bursts=_records(found),
        **counts,
    )
    return result, per_hour


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp) or value is None or isinstance(value, str):
        return value
    return value.item() if hasattr(value, "item") else value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in df.to_dict("records")]
