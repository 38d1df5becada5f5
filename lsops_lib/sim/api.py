"""`SimulatedAPI`: a `Traffic` engine served by a `Server`, on one clock and one lock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from . import payloads
from .clock import SimClock, to_ms
from .payloads import DEFAULT_WINDOW_MS
from .scenario import Scenario
from .server import Server
from .traffic import Traffic, ledger_frame


class SimulatedAPI:
    """The LongSang API on 127.0.0.1, driven by a Scenario (see `lsops_lib.sim`).

    Traffic between two requests is generated when a request arrives, from the clock
    (virtual: a `SimClock`; else real time), so a month is scraped in seconds by
    advancing the clock."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: SimClock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        restart_delay_s: float = 0.5,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self._lock = threading.RLock()
        self.traffic = Traffic(scenario)
        self.server = Server(
            self.traffic,
            now_ms=self.now_ms,
            lock=self._lock,
            host=host,
            port=port,
            restart_delay_s=restart_delay_s,
            measured=clock is None,
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def restart_delay_s(self) -> float:
        return self.server.restart_delay_s

    @property
    def url(self) -> str:
        return self.server.url

    def now_ms(self) -> int:
        return to_ms(self.clock.now()) if self.clock is not None else to_ms(datetime.now(UTC))

    def start(self) -> SimulatedAPI:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> SimulatedAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        """True while the simulated process answers (False after a reset, until it is back)."""
        return self.server.alive

    @property
    def pid(self) -> int:
        return self.traffic.proc.pid

    @property
    def uptime_start_ms(self) -> int:
        return self.traffic.proc.start_ms

    def restart(self) -> None:
        """The process restarts now: counters from zero, a new uptime.start and pid."""
        with self._lock:
            self.traffic.new_process(self.traffic.flush_pending(self.now_ms()))

    def in_outage(self, t_ms: int | None = None) -> bool:
        return bool(self.traffic.active(self.now_ms() if t_ms is None else t_ms, "outage"))

    # -- answers (as the routes build them; nothing is counted) -----------------------

    def health_payload(self, now: int, deep: bool) -> tuple[int, dict[str, Any], int]:
        """(HTTP status, body, duration ms) of GET /api/health at `now`."""
        return payloads.health(self.traffic, now, deep)

    def metrics_payload(self, now: int, window_ms: int = DEFAULT_WINDOW_MS) -> dict[str, Any]:
        """The body of GET /api/metrics?timeWindow=window_ms at `now`."""
        return payloads.metrics(self.traffic, now, window_ms)

    def endpoint_payload(self, now: int, key: str, window_ms: int) -> tuple[int, dict[str, Any]]:
        return payloads.endpoint(self.traffic, now, key, window_ms)

    # -- ground truth -----------------------------------------------------------------

    def ledger(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        include_monitoring: bool = True,
    ) -> pd.DataFrame:
        """What the scenario SENT in [start, end), per endpoint: requests, errors, time_sum_ms.

        Includes monitoring requests already answered (counted at answer time +
        duration). Traffic is generated up to the clock's now first.
        """
        with self._lock:
            if not self.server.dead and not self.server.stopped:
                self.traffic.advance(self.now_ms())
            batch, keys = self.traffic.sent()
        return ledger_frame(batch, keys, start, end, include_monitoring)
