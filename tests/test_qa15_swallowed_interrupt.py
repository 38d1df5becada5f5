"""Ctrl-C that Python drops: a signal's handler runs wherever the main thread is, and an
exception raised inside a finalizer (`__del__`, a weakref callback) is printed ("Exception
ignored in ...") and dropped. Under load the main thread of a report is often in one (zmq,
asyncio objects), and the report ran on to its end after Ctrl-C (a CI failure of
test_reports_kernel_start and test_faults). The runner notes what the handler raised and
raises it again at its next wait."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path

import nbformat
import pytest

ex = importlib.import_module("lsops_lib.reports.execute")
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_python_drops_an_interrupt_raised_in_a_finalizer() -> None:
    """The hazard itself, so that the test below means something."""
    import _thread

    class Slow:
        def __del__(self) -> None:
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                pass

    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    obj = Slow()
    del obj  # the interrupt lands in __del__ and is dropped
    time.sleep(0.5)
    timer.join()


def test_noted_keeps_what_the_handler_raised_and_again_raises_it() -> None:
    import _thread

    from lsops_lib import interrupts

    class Slow:
        def __del__(self) -> None:
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                pass

    with interrupts.noted([]) as noted:
        timer = threading.Timer(0.2, _thread.interrupt_main)
        timer.start()
        obj = Slow()
        del obj  # dropped here by Python...
        timer.join()
        assert len(noted) == 1 and isinstance(noted[0], KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):  # ...raised again by the wait
            interrupts.again(noted)
    import signal

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_report_stops_on_an_interrupt_dropped_in_a_finalizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import _thread

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(8)\nprint('ran to the end')")]
    notebook = tmp_path / "slow.ipynb"
    nbformat.write(nb, notebook)
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    class Slow:
        def __del__(self) -> None:  # the main thread busy in a finalizer for 0.6 s
            until = time.monotonic() + 0.6
            while time.monotonic() < until:
                pass

    fired: list[bool] = []

    class Waiting(threading.Event):
        """The runner's `done` event: once, 3 s in, its wait runs a finalizer while the
        interrupt arrives."""

        def wait(self, timeout: float | None = None) -> bool:
            if threading.current_thread() is threading.main_thread() and not fired:
                if time.monotonic() - started > 3:
                    fired.append(True)
                    threading.Timer(0.2, _thread.interrupt_main).start()
                    obj = Slow()
                    del obj
            return super().wait(timeout)

    monkeypatch.setattr(ex.threading, "Event", Waiting)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ex.execute(notebook, scratch, {}, env={}, cwd=tmp_path, progress=False)
    assert fired and time.monotonic() - started < 8  # stopped, not run to the end
