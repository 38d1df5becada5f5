"""The demo's signal handling, without a demo run: an interrupt that a library swallowed
(it caught KeyboardInterrupt and went on) still stops the demo, at its next phase
boundary or wait. Seen once under load: "signal SIGINT: stopping" in the log, then the
demo ran to its end, exit 0, and ignored every later signal."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lsops_lib.demo.errors import Interrupted
from lsops_lib.demo.run import Demo, Options

pytestmark = pytest.mark.timeout(60)


def _swallowing_library(signum: int) -> None:
    """Catches the interrupt where it lands (as a retry loop or a cancel path may)."""
    try:
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler runs here, at once
    except KeyboardInterrupt:
        pass


@pytest.fixture
def demo(tmp_path: Path):
    demo = Demo(Options(directory=tmp_path / ".demo", echo=lambda _text: None))
    demo.install_signals()
    try:
        yield demo
    finally:
        demo.restore_signals()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_interrupt_stops_the_demo_at_the_phase_end(demo: Demo, signum: int) -> None:
    began = time.monotonic()
    with pytest.raises(Interrupted) as caught, demo.phase("database"):
        _swallowing_library(signum)
        after = "the rest of the phase"  # runs: nothing can stop it where it is
    assert after and caught.value.signum == signum
    assert time.monotonic() - began < 4  # the handler ran at once, not after the sleep
    assert "database" not in demo.timings  # the phase did not end as done


def test_a_swallowed_interrupt_stops_a_wait(demo: Demo) -> None:
    _swallowing_library(signal.SIGINT)
    with pytest.raises(Interrupted):
        demo.track()  # what the history's and the reports' wait loops call


def test_the_cleanup_after_an_interrupt_does_not_raise_it_again(demo: Demo) -> None:
    _swallowing_library(signal.SIGINT)
    demo.cleanup()
    demo.track()  # stopping already: nothing is raised again
