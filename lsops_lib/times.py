"""Durations, instants and months as users type them; everything internal is UTC.

Instants inside lsops are epoch milliseconds (int) in the store and aware UTC
datetimes (or pandas Timestamps with tz=UTC) in DataFrames.

What a user types is checked here, once, so that no value can reach the arithmetic
below as an OverflowError or a "year out of range": instants (and months) lie between
`EARLIEST` and `LATEST` (well inside what Python, pandas and the store represent),
durations between 1 ms and `MAX_DURATION`. Anything else is a ParameterError (one line,
exit 2 in the CLI) that quotes at most `_SHOWN` characters of the input.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .exceptions import ParameterError

# the dtype of every instant lsops answers in a DataFrame (`Timestamp(tz="UTC")`, us):
# the store's reads, the analysis, lsops_lib.db
TS = "datetime64[us, UTC]"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)\s*$", re.ASCII)
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$", re.ASCII)

# the instants lsops accepts from a user (issue 13): pandas' nanosecond Timestamps end in
# 2262, Python's datetime in 9999; a month's end and the previous month must exist too
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_DURATION = timedelta(days=36500)  # 100 years: a window never reaches before EARLIEST
MIN_DURATION = timedelta(milliseconds=1)
_SHOWN = 60  # at most this much of a bad value is quoted back


def shown(text: object) -> str:
    """`repr` of a user's value, cut to `_SHOWN` characters (a 1 MB argument is not echoed)."""
    value = str(text)
    if len(value) > _SHOWN:
        return repr(value[:_SHOWN]) + f"... ({len(value)} characters)"
    return repr(value)


def parse_duration(text: str) -> timedelta:
    """`90s`, `5m`, `24h`, `7d`, `2w` (also `1.5h`) -> timedelta, from 1 ms to 100 years.
    ParameterError otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ParameterError(f"not a duration: {shown(text)} (expected e.g. 30s, 5m, 24h, 7d)")
    return duration_seconds(float(match.group(1)) * _UNITS[match.group(2)], text)


def duration_seconds(seconds: float, text: object) -> timedelta:
    """A number of seconds already read (from `text`) as a duration, by `parse_duration`'s
    rule: from 1 ms to 100 years. ParameterError naming `text` otherwise."""
    if seconds <= 0:
        raise ParameterError(f"duration must be positive: {shown(text)}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ParameterError(
            f"duration too long: {shown(text)} (at most {MAX_DURATION.days}d, 100 years)"
        )
    if seconds < MIN_DURATION.total_seconds():
        raise ParameterError(f"duration too short: {shown(text)} (at least 1ms)")
    return timedelta(seconds=seconds)


def _in_range(value: datetime, text: object) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ParameterError(
            f"time out of range: {shown(text)} (lsops handles {EARLIEST:%Y-%m-%d} "
            f"to {LATEST:%Y-%m-%d}, UTC)"
        )
    return value


_NOT_A_TIME = "(expected a datetime or an ISO 8601 string, e.g. 2026-10-03T14:05Z)"


def _as_datetime(value: object) -> datetime:
    """An instant that is not text as a datetime (naive: UTC, as everywhere in lsops): a
    datetime (a pandas Timestamp too), a date (its midnight), a numpy datetime64.
    ParameterError for anything else, and for NaT (pandas' or numpy's "not a time",
    which names no instant: never an open window edge, never a raw ValueError)."""
    try:
        missing = bool(value != value)  # NaT is the one instant unequal to itself
    except Exception:  # noqa: BLE001 - a value that cannot even be compared is no NaT
        missing = False
    if missing:
        raise ParameterError(f"not a time: {shown(value)} {_NOT_A_TIME}")
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if getattr(getattr(value, "dtype", None), "kind", None) == "M" and not getattr(
        value, "shape", ()
    ):  # a numpy datetime64 (imported nowhere here: numpy loads with pandas)
        found = value.astype("datetime64[us]").item()  # type: ignore[attr-defined]
        if isinstance(found, datetime):
            return found
        raise ParameterError(f"time out of range: {shown(value)}")
    raise ParameterError(f"not a time: {shown(value)} {_NOT_A_TIME}")


def parse_time(text: str | datetime | date) -> datetime:
    """ISO 8601 (`2026-10-03T14:05`, `2026-10-03 14:05Z`, `2026-10-03`) -> aware UTC; a
    datetime, date (its midnight) or numpy datetime64 as it is (`_as_datetime`).

    A time without an offset is taken as UTC.
    """
    if not isinstance(text, str):
        value = _as_datetime(text)
    else:
        raw = str(text).strip()
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ParameterError(
                f"not a time: {shown(text)} (expected ISO 8601, e.g. 2026-10-03T14:05Z)"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        raise ParameterError(f"time out of range: {shown(text)}") from None
    return _in_range(value, text)


def parse_month(text: str) -> tuple[datetime, datetime]:
    """`2026-10` -> (start, end) of that month in UTC, end exclusive; from 1900-01 to
    2199-12 (`EARLIEST`, `LATEST`). ParameterError otherwise."""
    match = _MONTH.match(str(text).strip())
    if not match:
        raise ParameterError(f"not a month: {shown(text)} (expected YYYY-MM)")
    year, month = int(match.group(1)), int(match.group(2))
    if not EARLIEST.year <= year < LATEST.year:
        raise ParameterError(
            f"month out of range: {shown(text)} (lsops handles {EARLIEST:%Y-%m} to "
            f"{LATEST.year - 1}-12)"
        )
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def previous_month(text: str) -> str:
    """`2026-01` -> `2025-12` (the month before `EARLIEST`'s is still a valid answer)."""
    start, _ = parse_month(text)
    prev = start - timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_ms(value: datetime | date | str) -> int:
    """An instant as epoch ms. A naive datetime is UTC (as everywhere in lsops), never the
    machine's local time; a date is its midnight UTC, a numpy datetime64 the instant it
    names; an ISO 8601 string is read by `parse_time`. ParameterError for anything else
    (NaT included)."""
    value = parse_time(value) if isinstance(value, str) else _as_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def stamps_to_ms(stamps: Any) -> Any:
    """A column of instants (a Series, an array, a list) as a numpy int64 array of epoch
    ms, naive ones UTC: `to_ms` for a whole column (pandas imported only here)."""
    import pandas as pd

    delta = pd.to_datetime(stamps, utc=True) - pd.Timestamp(0, tz="UTC")
    return (delta // pd.Timedelta(milliseconds=1)).to_numpy(dtype="int64")


def from_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def window(
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    *,
    now: datetime | None = None,
    default: str = "24h",
) -> tuple[datetime, datetime]:
    """`--window 24h [--until T]` or `--since T [--until T]` -> (start, end). ParameterError
    when wrong (--window with --since: two starts).

    Without --since the window is `--window` long, else `default` long (the command's own
    span, e.g. 30d), and ends at --until or now: `--until T` alone is the `default` span
    ending at T, `--since T` alone runs from T to now.

    Only an ABSENT value (None) takes its default: an empty `--window ""` or `--since ""`
    is an error, never a silent 24 hours."""
    now = now or utcnow()
    if window is not None and since is not None:
        raise ParameterError("give either --window or --since, not both")
    end = parse_time(until) if until is not None else now
    if since is not None:
        start = parse_time(since)
    else:
        start = end - parse_duration(default if window is None else window)
    if start < EARLIEST:
        raise ParameterError(
            f"the window starts {start:%Y-%m-%d}, before {EARLIEST:%Y-%m-%d} (the earliest "
            "time lsops handles)"
        )
    if start >= end:
        raise ParameterError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    return start, end
