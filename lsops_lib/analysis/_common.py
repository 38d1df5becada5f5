"""Small helpers shared by the analysis modules (not public)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..models import is_monitoring

MONITORING_REASON = (
    "monitoring endpoints (/health, /metrics...) are the collector's own scrapes, "
    "counted by the API (reference quirk 2); excluded unless include_monitoring=True"
)


def ts(value: datetime | pd.Timestamp | str | None) -> pd.Timestamp | None:
    """Any instant -> pandas Timestamp in UTC (None stays None)."""
    if value is None:
        return None
    out = pd.Timestamp(value)
    if out.tzinfo is None:
        out = out.tz_localize(UTC)
    return out.tz_convert(UTC)


def py(value: datetime | pd.Timestamp | None) -> datetime | None:
    """Timestamp -> aware datetime (for store calls)."""
    if value is None or value is pd.NaT:
        return None
    return ts(value).to_pydatetime()


def seconds(delta: timedelta | pd.Timedelta | float | int | None) -> float | None:
    if delta is None:
        return None
    if isinstance(delta, timedelta | pd.Timedelta):
        return float(pd.Timedelta(delta).total_seconds())
    return float(delta)


def ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 (never a made-up 0 %)."""
    try:
        if den is None or den == 0 or np.isnan(den):
            return float("nan")
    except TypeError:
        return float("nan")
    return float(num) / float(den)


def nan_to_none(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value


def ensure_ts(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for col in cols:
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


def monitoring_mask(endpoints: pd.Series, *, as_text: bool = False) -> np.ndarray:
    """`is_monitoring` per row, decided once per distinct endpoint (a month of hourly
    rows holds ~36,000 of them for 50 endpoints). A value that is not a string is not a
    monitoring endpoint, unless `as_text` (then its `str()` is judged)."""
    codes, uniques = pd.factorize(endpoints, use_na_sentinel=True)
    flags = [
        is_monitoring(str(e)) if as_text else (isinstance(e, str) and is_monitoring(e))
        for e in uniques
    ]
    return np.array([*flags, False], dtype=bool)[codes]  # NaN / None rows (code -1): no


def filter_monitoring(df: pd.DataFrame, include_monitoring: bool) -> pd.DataFrame:
    """Drop monitoring endpoints unless asked to keep them (whatever the store did)."""
    if include_monitoring or df.empty or "endpoint" not in df.columns:
        return df
    return df.loc[~monitoring_mask(df["endpoint"])]


def median_interval_s(stamps: pd.Series) -> float | None:
    """Median spacing of sorted instants, in seconds (None with fewer than two)."""
    values = pd.to_datetime(stamps, utc=True).sort_values()
    if len(values) < 2:
        return None
    diffs = values.diff().dropna().dt.total_seconds()
    diffs = diffs[diffs > 0]
    if diffs.empty:
        return None
    return float(diffs.median())


def empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def iso(value: Any) -> str | None:
    value = nan_to_none(value)
    if value is None:
        return None
    return ts(value).isoformat().replace("+00:00", "Z")
