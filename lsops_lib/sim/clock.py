"""Virtual time (`SimClock`) and the two forms of an instant the simulator uses: aware
UTC datetimes outside, epoch milliseconds inside."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def aware(value: datetime) -> datetime:
    """A datetime in UTC (naive ones are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of a datetime."""
    return int(round(aware(value).timestamp() * 1000))


class SimClock:
    """Virtual time, set and advanced by the test or the demo. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = aware(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._now = aware(dt)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now

    def __repr__(self) -> str:
        return f"SimClock({self.now().isoformat()})"
