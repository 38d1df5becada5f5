"""A report's kernel is stopped without a SIGINT: jupyter_client interrupts a kernel before
asking it to shut down, and an ipykernel idle by then logged "[IPKernelApp] ERROR |
KeyboardInterrupt caught in kernel." into the run's stderr (a cron log's spurious ERROR,
in about one failed run of four)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from lsops_lib.reports.execute import _EnvKernelManager

pytestmark = pytest.mark.timeout(120)


class _Watched(_EnvKernelManager):
    """The run's kernel manager, noting every signal it sends its kernel."""

    sent: list[int] = []

    async def _async_signal_kernel(self, signum: int) -> Any:
        self.sent.append(signum)
        return await super()._async_signal_kernel(signum)


async def _start_and_stop() -> tuple[list[int], bool]:
    km = _Watched(kernel_name="python3")
    km.sent = []
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive("x = 1", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
    await km.shutdown_kernel()
    return km.sent, await km.is_alive()


def test_the_kernel_stops_on_its_shutdown_request_without_an_interrupt() -> None:
    sent, alive = asyncio.run(_start_and_stop())
    assert not alive
    assert signal.SIGINT not in sent, "the kernel got a SIGINT on its way out"
