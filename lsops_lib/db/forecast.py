"""Capacity forecast: when the database reaches its size limit, from the size snapshots
that `lsops collect --db` stores (no database access here: the caller gives the snapshots
and, when it has it, the live `pg_database_size`).

    fc = db.forecast.capacity_forecast(snapshots, limit_bytes, database_bytes=..., now=...)
    fc.status                 ok | not_enough_history | not_growing | beyond_horizon | over_limit
                              | no_limit
    fc.growth_bytes_per_day   Theil-Sen slope of the database total (robust to a spike)
    fc.reaches_limit_on       a date, or None (with fc.message saying why)
    fc.reaches_limit_range    (earliest, latest): the slope's 95 % confidence interval
    fc.tables                 the tables that grow fastest (each its own Theil-Sen slope)
    fc.frame                  observed totals and the projection, for plots.capacity_projection
    fc.as_dict()              the JSON of `lsops db size --forecast`

The rules:

- The series is the sum over tables per snapshot (`space.total_growth`). A *shrink* (a
  VACUUM FULL, a dropped table: a snapshot below every one of the previous three by more
  than `forecast_shrink_ratio`, and the next one still below) starts a new series: only
  what came after it is projected, as a counter reset starts a new series elsewhere.
- Growth per day is the Theil-Sen estimator: the median of the slopes between every pair
  of snapshots. A one-off spike moves a minority of those slopes and so not the median.
  Its range is Sen's 95 % confidence interval of that median.
- Fewer than `forecast_min_snapshots` snapshots (two at least), or fewer than
  `forecast_min_days` days, in the series: "not enough history", never a made-up date nor
  growth per day (None), for the database and for every table. A table with too little
  history of its own (the same two thresholds) has no growth per day either. These are
  judged, and reported, on every stored snapshot; only the fit of a long series uses
  MAX_POINTS of them (the last of each of MAX_POINTS equal stretches of time).
- A table absent from the latest snapshot (dropped) is no fastest-growing table. Snapshots
  dated after `now` (a collector's clock ahead) are left out, and the message says so.
- A limit of 0 bytes is no limit: growth per day, no date (status `no_limit`).
- The projection starts from the live database size now when it is given (the limit is
  on `pg_database_size`), else from the fitted line at the last snapshot. Not growing, or
  the limit further than `HORIZON_DAYS` away: no date, and the message says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..config import sqlite_store_missing
from ..exceptions import ParameterError
from ..times import shown
from ._frames import TS, empty, typed
from .space import total_growth

__all__ = [
    "HORIZON_DAYS",
    "SUMMARY_KEYS",
    "Forecast",
    "capacity_forecast",
    "forecast_for",
    "series_start",
    "stored_snapshots",
    "table_growth_rates",
    "theil_sen",
]

HORIZON_DAYS = 3650  # a date further than 10 years away is not a forecast
SHRINK_WINDOW = 3  # a shrink is a snapshot below each of the previous three ...
Z_95 = 1.959964  # two-sided 95 %: Sen's confidence interval of the slope
PROJECTION_MIN_DAYS = 90.0  # a projection without a date is drawn this far ahead at least
MAX_POINTS = 400  # a fit of more snapshots: the last of each of MAX_POINTS stretches of time
FUTURE_TOLERANCE_S = 300.0  # a snapshot dated further after `now` than this is left out
DAY_S = 86400.0
TABLE_COLUMNS = ["schema", "table", "total_bytes", "growth_bytes_per_day", "share_of_growth"]
FRAME_COLUMNS = ["ts", "observed", "fitted", "projected", "low", "high"]
# their types, rows or none (no growth figure: NaN)
TABLE_DTYPES = {
    "schema": "str",
    "table": "str",
    "total_bytes": "int64",
    "growth_bytes_per_day": "float64",
    "share_of_growth": "float64",
}
FRAME_DTYPES = {"ts": TS} | dict.fromkeys(FRAME_COLUMNS[1:], "float64")
SUMMARY_KEYS = (
    "forecast_status",
    "growth_bytes_per_day",
    "limit_bytes",
    "reaches_limit_on",
    "reaches_limit_earliest",
    "reaches_limit_latest",
)


@dataclass
class Forecast:
    status: str
    message: str
    limit_bytes: int
    database_bytes: int | None = None
    measured_at: pd.Timestamp | None = None
    growth_bytes_per_day: float | None = None
    growth_range: tuple[float, float] | None = None
    reaches_limit_on: date | None = None
    reaches_limit_range: tuple[date | None, date | None] | None = None
    snapshots: int = 0
    since: pd.Timestamp | None = None
    shrinks: list[pd.Timestamp] = field(default_factory=list)
    tables: pd.DataFrame = field(default_factory=lambda: empty(TABLE_DTYPES))
    frame: pd.DataFrame = field(default_factory=lambda: empty(FRAME_DTYPES))

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `lsops db size --forecast` (dates as YYYY-MM-DD)."""
        rng = self.reaches_limit_range
        return {
            "database_bytes": self.database_bytes,
            "growth_bytes_per_day": self.growth_bytes_per_day,
            "limit_bytes": self.limit_bytes,
            "reaches_limit_on": _iso(self.reaches_limit_on),
            "reaches_limit_range": None if rng is None else [_iso(rng[0]), _iso(rng[1])],
            "tables": [
                {k: _plain(v) for k, v in row.items()}
                for row in self.tables[TABLE_COLUMNS].to_dict("records")
            ],
            "status": self.status,
            "message": self.message,
            "snapshots": self.snapshots,
            "since": _instant(self.since),
        }

    def summary(self) -> dict[str, Any]:
        """Flat key figures (reports)."""
        rng = self.reaches_limit_range
        return {
            "forecast_status": self.status,
            "growth_bytes_per_day": self.growth_bytes_per_day,
            "limit_bytes": self.limit_bytes,
            "reaches_limit_on": _iso(self.reaches_limit_on),
            "reaches_limit_earliest": None if rng is None else _iso(rng[0]),
            "reaches_limit_latest": None if rng is None else _iso(rng[1]),
        }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _instant(value: pd.Timestamp | None) -> str | None:
    """An instant as ISO 8601 in UTC, as lsops's JSON writes instants (`2026-11-25T00:00:00+00:00`)."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return (
        stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    ).isoformat()


def _days_text(days: float, digits: int) -> str:
    """`days` with `digits` decimals and its noun: 0.5 days, 1 day, 3.0 days."""
    text = f"{days:.{digits}f}"
    return f"{text} {'day' if float(text) == 1 else 'days'}"


def _span_text(days: float) -> str:
    """A span of history in whole days, one shorter than a day as a duration ("2 h 24 min",
    not "0 days": a forecast_min_days under a day allows one)."""
    return _days_text(days, 0) if days >= 1 else fmt.duration(days * DAY_S)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --- the estimator ----------------------------------------------------------------------------


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(slope, intercept, low, high): the median of the pairwise slopes, the median of
    y - slope * x, and Sen's (1968) 95 % confidence interval of the slope. Needs two
    distinct x at least (else all NaN)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        nan = float("nan")
        return nan, nan, nan, nan
    slopes = np.sort((y[j] - y[i])[keep] / dx[keep])
    slope = float(np.median(slopes))
    intercept = float(np.median(y - slope * x))
    n, count = len(x), len(slopes)
    _, ties = np.unique(x, return_counts=True)
    variance = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18
    spread = Z_95 * math.sqrt(max(variance, 0.0))
    lo = max(int(round((count - spread) / 2)) - 1, 0)
    hi = min(int(round((count + spread) / 2)), count - 1)
    return slope, intercept, float(slopes[lo]), float(slopes[hi])


def series_start(totals: pd.Series, shrink_ratio: float) -> list[int]:
    """Positions where a shrink starts a new series: the value is below each of the
    previous SHRINK_WINDOW values by more than `shrink_ratio`, and so is the next one
    (a single low snapshot followed by the old level is a glitch, not a shrink)."""
    y = np.asarray(totals, dtype=float)
    starts = []
    for pos in range(1, len(y)):
        floor = y[max(0, pos - SHRINK_WINDOW) : pos].min() * (1 - shrink_ratio)
        if y[pos] < floor and (pos + 1 >= len(y) or y[pos + 1] < floor):
            starts.append(pos)
    return starts


def _days(ts: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return ((pd.to_datetime(ts, utc=True) - origin).dt.total_seconds() / DAY_S).to_numpy()


def _thin(series: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_POINTS rows of a series ordered by ts, for a fit (Theil-Sen takes every
    pair): the last row of each of MAX_POINTS equal stretches of its time span."""
    if len(series) <= MAX_POINTS:
        return series
    x = _days(series["ts"], pd.Timestamp(series["ts"].iloc[0]))
    if not x[-1] > 0:
        return series.iloc[-MAX_POINTS:]
    bucket = np.minimum((x / (x[-1] / MAX_POINTS)).astype(int), MAX_POINTS - 1)
    return series.groupby(bucket, sort=True).tail(1)


def table_growth_rates(
    snapshots: pd.DataFrame,
    since: pd.Timestamp | None,
    *,
    min_snapshots: int = 2,
    min_days: float = 0.0,
) -> pd.DataFrame:
    """Per table in the latest snapshot (a table absent from it was dropped), from `since`
    on: schema, table, total_bytes (at the latest snapshot), growth_bytes_per_day (its own
    Theil-Sen slope; None with fewer than `min_snapshots` snapshots or `min_days` days of
    its own, as for the database), share_of_growth (of the growing tables' sum); the
    fastest-growing first."""
    if snapshots is None or snapshots.empty:
        return empty(TABLE_DTYPES)
    df = snapshots.copy()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    if since is not None:
        df = df[df["ts"] >= since]
    latest = df["ts"].max()
    rows = []
    for (schema, table), part in df.sort_values("ts").groupby(["schema", "table"], sort=True):
        if part["ts"].iloc[-1] != latest:
            continue  # dropped
        x = _days(part["ts"], part["ts"].iloc[0])
        enough = len(part) >= max(min_snapshots, 2) and x[-1] >= min_days
        slope = math.nan
        if enough:
            fit = _thin(part.reset_index(drop=True))
            slope = theil_sen(_days(fit["ts"], fit["ts"].iloc[0]), fit["total_bytes"].to_numpy())[0]
        rows.append(
            {
                "schema": schema,
                "table": table,
                "total_bytes": int(part["total_bytes"].iloc[-1]),
                "growth_bytes_per_day": None if math.isnan(slope) else float(slope),
            }
        )
    out = pd.DataFrame(rows, columns=TABLE_COLUMNS[:-1])
    rate = pd.to_numeric(out["growth_bytes_per_day"], errors="coerce")
    growing = float(rate[rate > 0].sum())
    out["share_of_growth"] = (rate / growing).where(rate > 0) if growing > 0 else None
    out = out.assign(_rate=rate.fillna(-math.inf)).sort_values(
        ["_rate", "total_bytes"], ascending=False
    )
    return typed(out.drop(columns="_rate").reset_index(drop=True)[TABLE_COLUMNS], TABLE_DTYPES)


# --- the forecast -----------------------------------------------------------------------------


def capacity_forecast(
    snapshots: pd.DataFrame | None,
    limit_bytes: int,
    *,
    database_bytes: int | None = None,
    now: datetime | pd.Timestamp | None = None,
    min_snapshots: int = 5,
    min_days: float = 3.0,
    shrink_ratio: float = 0.05,
) -> Forecast:
    """The date the database reaches `limit_bytes`, from size snapshots (ts, schema, table,
    total_bytes, ... as `space.growth` reads them). `database_bytes` at `now`: the live
    size to project from (else the fitted line at the last snapshot). `limit_bytes` 0: no
    limit (growth only). See the module."""
    limit = _positive(limit_bytes, "limit_bytes", zero=True)
    if database_bytes is not None:
        _positive(database_bytes, "database_bytes", zero=True)
    stamp = pd.Timestamp(now) if now is not None else None
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    fc = Forecast(
        status="not_enough_history",
        message="",
        limit_bytes=limit,
        database_bytes=None if database_bytes is None else int(database_bytes),
        measured_at=stamp if database_bytes is not None else None,
    )
    ahead = ""
    if snapshots is not None and stamp is not None and not snapshots.empty:
        when = pd.to_datetime(snapshots["ts"], utc=True)
        late = when > stamp + pd.Timedelta(seconds=FUTURE_TOLERANCE_S)
        if late.any():
            ahead = (
                f"{fmt.counted(when[late].nunique(), 'snapshot')} dated after now (from "
                f"{fmt.instant(when[late].min())}: a collector's clock ahead?) left out"
            )
            snapshots = snapshots[~late.to_numpy()]
    totals = total_growth(snapshots) if snapshots is not None else None
    if totals is None or totals.empty:
        fc.message = "not enough history: no size snapshot stored (run `lsops collect --db` daily)"
        if ahead:
            fc.message = f"not enough history: {ahead}"
        return fc
    totals = totals.assign(ts=pd.to_datetime(totals["ts"], utc=True)).reset_index(drop=True)
    starts = series_start(totals["total_bytes"], shrink_ratio)
    fc.shrinks = [totals["ts"].iloc[p] for p in starts]
    first = starts[-1] if starts else 0
    series = totals.iloc[first:].reset_index(drop=True)
    fc.since = series["ts"].iloc[0]
    fc.snapshots = int(len(series))
    if fc.database_bytes is None:
        fc.database_bytes = int(totals["total_bytes"].iloc[-1])
    fc.tables = table_growth_rates(
        snapshots, fc.since, min_snapshots=min_snapshots, min_days=min_days
    )
    span = (series["ts"].iloc[-1] - series["ts"].iloc[0]).total_seconds() / DAY_S
    after = f" since the shrink on {fc.since:%Y-%m-%d}" if starts else ""
    needs = max(int(min_snapshots), 2)  # a slope needs two snapshots
    if len(series) < needs or span < min_days:
        fc.message = _with(
            f"not enough history: {fmt.counted(len(series), 'snapshot')} over "
            f"{_days_text(span, 1)}{after} (a forecast needs {fmt.number(needs)} over "
            f"{fmt.number(min_days)} {'day' if min_days == 1 else 'days'})",
            ahead,
        )
        # no growth figure for the tables either (a table may have more of its own)
        fc.tables = fc.tables.assign(growth_bytes_per_day=math.nan, share_of_growth=math.nan)
        fc.frame = _frame(_thin(totals), fc)
        return fc
    fit = _thin(series)
    x = _days(series["ts"], fc.since)
    slope, intercept, low, high = theil_sen(
        _days(fit["ts"], fc.since), fit["total_bytes"].to_numpy()
    )
    fc.growth_bytes_per_day, fc.growth_range = slope, (low, high)
    if stamp is not None and database_bytes is not None:
        anchor_ts, anchor = stamp, float(database_bytes)
    else:
        anchor_ts = series["ts"].iloc[-1]
        anchor = intercept + slope * x[-1]
    fc.measured_at = anchor_ts
    basis = f"{fmt.counted(len(series), 'snapshot')} over {_span_text(span)}{after}"
    if not limit:
        fc.status = "no_limit"
        fc.message = f"no size limit set (database_size_limit_bytes = 0): growth only ({basis})"
    elif anchor >= limit:
        fc.status = "over_limit"
        fc.reaches_limit_on = anchor_ts.date()
        fc.message = "the database is at or over its size limit"
    elif not slope > 0:  # NaN included
        fc.status = "not_growing"
        fc.message = f"the database is not growing ({basis}): no date to reach the limit"
    else:
        days = (limit - anchor) / slope
        if days > HORIZON_DAYS:
            fc.status = "beyond_horizon"
            fc.message = (
                f"at this rate the limit is more than {HORIZON_DAYS // 365} years away ({basis})"
            )
        else:
            fc.status = "ok"
            fc.reaches_limit_on = _date_after(anchor_ts, days)
            fc.message = f"projected from {basis}"
        # the range: the limit reached at the fastest and the slowest plausible rate
        earliest = _within(anchor_ts, limit - anchor, high)
        latest = _within(anchor_ts, limit - anchor, low)
        if earliest is not None:
            fc.reaches_limit_range = (earliest, latest)
    fc.message = _with(fc.message, ahead)
    fc.frame = _frame(
        _thin(totals), fc, anchor_ts=anchor_ts, anchor=anchor, origin=fc.since, intercept=intercept
    )
    # where the projection starts: the live pg_database_size (catalogs included, above the
    # tables' sum the snapshots hold), or the fitted line at the last snapshot
    fc.frame.attrs["start"] = (
        "database_size" if stamp is not None and database_bytes is not None else "fitted"
    )
    return fc


def _with(message: str, note: str) -> str:
    return f"{message}; {note}" if note else message


def _date_after(start: pd.Timestamp, days: float) -> date:
    return (start + pd.Timedelta(seconds=days * DAY_S)).date()


def _within(start: pd.Timestamp, remaining: float, rate: float) -> date | None:
    """The date `remaining` bytes are added at `rate` a day, None if never or beyond the
    horizon."""
    if not rate > 0 or remaining / rate > HORIZON_DAYS:
        return None
    return _date_after(start, remaining / rate)


def _frame(
    totals: pd.DataFrame,
    fc: Forecast,
    *,
    anchor_ts: pd.Timestamp | None = None,
    anchor: float | None = None,
    origin: pd.Timestamp | None = None,
    intercept: float = 0.0,
) -> pd.DataFrame:
    """Observed totals, the fitted line over the series (`intercept` at `origin`), and the projection from the
    anchor to the limit date (or the horizon) with its range: ts, observed, fitted,
    projected, low, high. attrs: limit_bytes, status, message, reaches_limit_on (and,
    set by the caller, start: "database_size" or "fitted")."""
    observed = pd.DataFrame({"ts": totals["ts"], "observed": totals["total_bytes"].astype(float)})
    frames = [observed]
    if fc.growth_bytes_per_day is not None and anchor_ts is not None:
        slope = float(fc.growth_bytes_per_day)
        low, high = fc.growth_range or (slope, slope)
        assert anchor is not None and origin is not None
        days = (observed["ts"] - origin).dt.total_seconds().to_numpy() / DAY_S
        fitted = pd.Series(intercept + slope * days, index=observed.index)
        observed["fitted"] = fitted.where(observed["ts"] >= origin)
        if fc.status == "ok":  # to a little past the date
            end_days = min(HORIZON_DAYS, max(1.0, (fc.limit_bytes - anchor) / slope) * 1.1)
        else:  # no date: as far ahead as there is history behind, at least a quarter
            span = (totals["ts"].iloc[-1] - origin).total_seconds() / DAY_S
            end_days = max(PROJECTION_MIN_DAYS, 2 * span)
        steps = np.linspace(0.0, end_days, 50)
        frames.append(
            pd.DataFrame(
                {
                    "ts": [anchor_ts + pd.Timedelta(seconds=d * DAY_S) for d in steps],
                    "projected": anchor + slope * steps,
                    "low": anchor + low * steps,
                    "high": anchor + high * steps,
                }
            )
        )
    out = typed(pd.concat(frames, ignore_index=True).reindex(columns=FRAME_COLUMNS), FRAME_DTYPES)
    out.attrs.update(
        limit_bytes=fc.limit_bytes or None,  # 0: no limit, no line
        status=fc.status,
        message=fc.message,
        reaches_limit_on=_iso(fc.reaches_limit_on),
        reaches_limit_range=None
        if fc.reaches_limit_range is None
        else [_iso(d) for d in fc.reaches_limit_range],
    )
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


# --- from the settings: the store's snapshots and the thresholds ------------------------------


def stored_snapshots(store_url: str | None, database: str) -> pd.DataFrame | None:
    """The size snapshots of `database` (its NAME, as `lsops collect --db` stores it) in
    the metrics store at `store_url`; None when there is no store (never created here).
    An unreadable store raises StoreError."""
    if not store_url:
        return None
    if sqlite_store_missing(store_url):
        return None
    from ..store import Store
    from .space import growth

    store = Store(store_url)
    try:
        return growth(store, database)
    finally:
        store.close()


def forecast_for(
    settings: Any,
    database: str | None,
    *,
    database_bytes: int | None,
    now: datetime | pd.Timestamp | None,
    store: Any = None,
) -> Forecast:
    """`capacity_forecast` of the configured database `database` (a NAME; None: the
    default one) from the snapshots in `store` (a Store; None: the settings' store), with
    the settings' thresholds (database_size_limit_bytes, forecast_*)."""
    name = database or settings.database_name or "default"
    if store is not None:
        from .space import growth

        snaps = growth(store, name)
    else:
        snaps = stored_snapshots(settings.store_url, name)
    t = settings.thresholds
    return capacity_forecast(
        snaps,
        t.database_size_limit_bytes,
        database_bytes=database_bytes,
        now=now,
        min_snapshots=t.forecast_min_snapshots,
        min_days=t.forecast_min_days,
        shrink_ratio=t.forecast_shrink_ratio,
    )


def _positive(value: Any, name: str, *, zero: bool = False) -> int:
    """`value` as an int of bytes: ParameterError when it is none, negative (or zero for a
    limit: a database is always over a limit of 0 bytes)."""
    least = "0 or more" if zero else "more than 0"
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = -1
    if number < 0 or (number == 0 and not zero):
        raise ParameterError(f"{name}: {shown(value)} (expected a number of bytes, {least})")
    return number
