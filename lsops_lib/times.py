"""Durations, instants and months as users type them; everything internal is UTC.

Instants inside lsops are epoch milliseconds (int) in the store and aware UTC
datetimes (or pandas Timestamps with tz=UTC) in DataFrames.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .exceptions import ParameterError

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `5m`, `24h`, `7d`, `2w` (also `1.5h`) -> timedelta. ParameterError otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ParameterError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 24h, 7d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ParameterError(f"duration must be positive: {text!r}")
    return timedelta(seconds=seconds)


def parse_time(text: str | datetime) -> datetime:
    """ISO 8601 (`2026-10-03T14:05`, `2026-10-03 14:05Z`, `2026-10-03`) -> aware UTC.

    A time without an offset is taken as UTC.
    """
    if isinstance(text, datetime):
        value = text
    else:
        raw = str(text).strip()
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ParameterError(
                f"not a time: {text!r} (expected ISO 8601, e.g. 2026-10-03T14:05Z)"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_month(text: str) -> tuple[datetime, datetime]:
    """`2026-10` -> (start, end) of that month in UTC, end exclusive."""
    match = _MONTH.match(str(text).strip())
    if not match:
        raise ParameterError(f"not a month: {text!r} (expected YYYY-MM)")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def previous_month(text: str) -> str:
    start, _ = parse_month(text)
    prev = start - timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def window(
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """`--window 24h` or `--since T [--until T]` -> (start, end). ParameterError when wrong."""
    now = now or utcnow()
    if since is not None or until is not None:
        if window is not None:
            raise ParameterError("give either --window or --since/--until, not both")
        end = parse_time(until) if until else now
        start = parse_time(since) if since else end - timedelta(hours=24)
    else:
        end = now
        start = end - parse_duration(window or "24h")
    if start >= end:
        raise ParameterError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    return start, end
