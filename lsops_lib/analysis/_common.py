"""Small helpers shared by the analysis modules (not public)."""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..exceptions import ParameterError
from ..models import is_monitoring
from ..thresholds import Thresholds
from ..times import TS, duration_seconds, parse_duration, parse_time, shown

MONITORING_REASON = (
    "monitoring endpoints (/health, /metrics...) are the collector's own scrapes, "
    "counted by the API (reference quirk 2); excluded unless include_monitoring=True"
)


def ts(value: datetime | pd.Timestamp | str | None, name: str = "time") -> pd.Timestamp | None:
    """Any instant -> pandas Timestamp in UTC (None stays None). A string is ISO 8601, read
    as the store reads it (`times.parse_time`: no offset is UTC); a value that is no
    instant is a ParameterError naming `name`."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float):  # not epoch nanoseconds in disguise
            raise TypeError(value)
        out = pd.Timestamp(parse_time(value) if isinstance(value, str) else value)
        if out is pd.NaT:  # NaT names no instant: never an open window edge (None is)
            raise TypeError(value)
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(
            f"{name}: not a time: {shown(value)} (expected a datetime or an ISO 8601 string, "
            "e.g. 2026-10-03T14:05Z)"
        ) from None
    if out.tzinfo is None:
        out = out.tz_localize(UTC)
    return out.tz_convert(UTC)


def window(
    start: datetime | pd.Timestamp | str | None, end: datetime | pd.Timestamp | str | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """(start, end) as UTC Timestamps (None: unbounded). ParameterError when start lies
    after end: an inverted window is a mistake, never an empty or negative answer."""
    t0, t1 = ts(start, "start"), ts(end, "end")
    if t0 is not None and t1 is not None and t0 > t1:
        raise ParameterError(
            f"start {iso(t0)} is after end {iso(t1)} (a window runs from start to end)"
        )
    return t0, t1


def instants(
    start: datetime | pd.Timestamp | str | None, end: datetime | pd.Timestamp | str | None
) -> tuple[datetime | None, datetime | None]:
    """(start, end) as `window` checks them, as aware UTC datetimes (None: unbounded): what
    a public call does with the instants it is given before any read or arithmetic (an ISO
    string or a naive datetime never reaches a comparison with the store's UTC instants)."""
    t0, t1 = window(start, end)
    return py(t0), py(t1)


def span(value: Any, name: str) -> tuple[datetime | None, datetime | None]:
    """A window given as one parameter, a (start, end) pair (`baseline`), as `instants`
    checks a window: each bound an instant or None (NaT is none), start not after end,
    else a ParameterError naming `name`."""
    try:
        first, last = value
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: {shown(value)} (expected a (start, end) pair)") from None
    try:
        return instants(first, last)
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None


def count(value: Any, name: str) -> int:
    """A count parameter (`min_requests`, `sample_errors`, `per_kind`...) as an int, by the
    rule of `db`'s `n` (`db.connect.count_param`): a whole number, 0 or more, else a
    ParameterError naming `name`."""
    from ..db.connect import count_param  # the db package loads on its first use only

    return count_param(value, name)


def positive(value: Any, name: str) -> float:
    """A threshold (`threshold_ms`...) as a finite float more than 0, else a ParameterError
    naming `name` (a p95 below 0 ms never happens: every slice would miss)."""
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not math.isfinite(number) or number <= 0:
        raise ParameterError(f"{name}: {shown(value)} (expected a number more than 0)")
    return number


def duration(value: timedelta | pd.Timedelta | float | int | str, name: str) -> timedelta:
    """An interval (timedelta, seconds, or a duration as the command line takes it: `30d`,
    `5m`) by `times.parse_duration`'s rule, from 1 ms to 100 years, else a ParameterError
    naming `name`."""
    try:
        if isinstance(value, str):
            return parse_duration(value)
        secs = seconds(value) if not isinstance(value, bool) else None
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None
    except (TypeError, ValueError, OverflowError):
        secs = None
    if secs is None or math.isnan(secs):
        raise ParameterError(
            f"{name}: not a duration: {shown(value)} (expected a timedelta, seconds or e.g. 30d)"
        )
    try:
        return duration_seconds(secs, value)
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None


def number(value: Any, name: str, low: float = 0.0, high: float = math.inf) -> float:
    """A finite number from `low` to `high` (both included) as a float, else a
    ParameterError naming `name` (`min_hours` of -1, an r2 of 2 never select anything)."""
    try:
        out = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError, OverflowError):
        out = float("nan")
    if not math.isfinite(out) or not low <= out <= high:
        allowed = f"{low:g} or more" if high == math.inf else f"from {low:g} to {high:g}"
        raise ParameterError(f"{name}: {shown(value)} (expected a number, {allowed})")
    return out


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


# The type of each column of the analysis frames, by name (one name has one meaning and
# one type in every frame): an empty answer has the types of an answer with rows, so that
# `df["ts"].dt` or an integer sum works on it too. A name missing here is `object`.
DTYPES: dict[str, str] = {
    **dict.fromkeys(
        ["ts", "start", "end", "day", "first_seen", "climb_start", "climb_end"], TS
    ),
    **dict.fromkeys(
        ["endpoint", "kind", "severity", "detail", "status", "event", "period", "reason",
         "reference", "method", "error", "target", "postmortem_command"],
        "str",
    ),
    **dict.fromkeys(
        ["requests", "errors", "resets", "baseline_requests", "baseline_errors", "rank",
         "segment", "points", "observations", "ok", "degraded", "no_answer", "count",
         "cache_hits", "cache_misses", "operations", "buckets"],
        "int64",
    ),
    **dict.fromkeys(
        ["status_code", "http_status", "rss", "heap_used", "heap_total", "uptime_start_ms",
         "last_reset_ms"],
        "Int64",
    ),
    **dict.fromkeys(
        ["ongoing", "errors_significant", "latency_significant", "harmed", "leak", "restart",
         "met", "ordered"],
        "bool",
    ),
    **dict.fromkeys(
        ["duration_s", "error_rate", "mean_ms", "time_sum_ms", "hit_ratio", "availability",
         "gap_s", "coverage", "baseline_error_rate", "baseline_mean_ms", "expected_errors",
         "excess_errors", "errors_p", "added_ms", "added_latency_s", "latency_p", "harm_s",
         "extra_latency_ms", "variance", "duration_h", "rss_start", "rss_end",
         "slope_bytes_per_hour", "growth_per_hour", "r2", "climb_growth_per_hour",
         "climb_r2", "p95"],
        "float64",
    ),
}  # fmt: skip


# the columns of the store's reads that analysis frames keep whole
RESET_COLUMNS = ["ts", "kind", "target", "uptime_start_ms", "last_reset_ms"]
ERROR_COLUMNS = ["ts", "endpoint", "method", "status_code", "error", "target", "first_seen"]


def empty(columns: list[str], **dtypes: str) -> pd.DataFrame:
    """A frame with these columns and no row, each of its type in `DTYPES` (`dtypes`: the
    type of a name that means something else in this frame, e.g. `error` as a count)."""
    return pd.DataFrame(
        {c: pd.Series(dtype=dtypes.get(c, DTYPES.get(c, "object"))) for c in columns}
    )


def iso(value: Any) -> str | None:
    value = nan_to_none(value)
    if value is None:
        return None
    return ts(value).isoformat().replace("+00:00", "Z")


# --- the arguments of the public calls: a store, thresholds -----------------------------------

_READS = ("scrapes", "health", "endpoint_intervals", "counter_intervals", "resets")


def store_arg(store: Any, *, optional: bool = False) -> Any:
    """`store` when it is one (a `Store`, the analysis memo, any `StoreReader`), else a
    ParameterError saying what it is instead (a URL: how to open it). `optional`: None
    passes (a call given its rows, e.g. `latency_slices(None, ..., scrapes=...)`). The
    value itself is never quoted: a store URL may hold a password."""
    if store is None and optional:
        return store
    if isinstance(store, str | bytes | os.PathLike):
        raise ParameterError(
            f"store: expected a Store (got {_a(store)}: open it with Store(url), "
            "from lsops_lib.store)"
        )
    if not any(callable(getattr(store, name, None)) for name in _READS):
        got = "None" if store is None else _a(store)
        raise ParameterError(
            f"store: expected a Store (got {got}: open one with Store(url), from lsops_lib.store)"
        )
    return store


def _a(value: Any) -> str:
    """'a str', 'an int': the type of a value that is not what was expected."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def thresholds_arg(thresholds: Any) -> Thresholds | None:
    """`thresholds` when it is a `Thresholds` or None (the defaults), else a ParameterError
    saying how to make one."""
    if thresholds is None or isinstance(thresholds, Thresholds):
        return thresholds
    how = (
        "Thresholds(**values) makes one of it"
        if isinstance(thresholds, Mapping)
        else "e.g. load_settings().thresholds, or Thresholds(error_rate=0.02)"
    )
    raise ParameterError(
        f"thresholds: expected a Thresholds (got {_a(thresholds)}: {how}; from lsops_lib.config)"
    )


F = TypeVar("F", bound=Callable[..., Any])


def entry(fn: F) -> F:
    """A public call of the analysis: its `store` (`store_arg`; None only beside the rows
    it would read, `scrapes=`) and `thresholds` (`thresholds_arg`) checked before it runs,
    whether given by position or by name: a URL or a dict is one line naming the
    parameter, never an AttributeError deep inside."""
    names = list(inspect.signature(fn).parameters)
    where = {n: names.index(n) for n in ("store", "thresholds") if n in names}

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for name, i in where.items():
            value = args[i] if i < len(args) else kwargs.get(name)
            if name == "store":
                store_arg(value, optional=kwargs.get("scrapes") is not None)
            else:
                thresholds_arg(value)
        return fn(*args, **kwargs)

    return checked  # type: ignore[return-value]


def one_target(store: Any, target: str | None, what: str) -> str | None:
    """`target`, or None when the store holds at most one: the figures of one API. A store
    holding several with none named is a ParameterError (a process's memory, its restarts,
    its latency are never mixed across APIs: one answer of each would read as a restart)."""
    if target is not None:
        return target
    try:
        known = list(store.targets())
    except Exception:  # noqa: BLE001 - an unreadable store: the reads say why
        return None
    if len(known) > 1:
        raise ParameterError(
            f"{what}: the store holds several targets ({', '.join(repr(k) for k in known)}): "
            "name one (target=...)"
        )
    return None
