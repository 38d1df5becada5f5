"""Signals whose exception Python may drop on the way.

A signal's handler runs wherever the main thread is, and Python drops an exception raised
inside a finalizer (`__del__`, a weakref callback: "Exception ignored in ..."). Under load
the main thread of a report or a restore is often in one (zmq, asyncio, subprocess
objects), and a Ctrl-C or SIGTERM was lost: the work ran on to its end. `noted(into)`
wraps the SIGINT/SIGTERM handlers so that what they raise is also kept in `into`; the
waits of long work raise it again (`again(into)`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def noted(into: list[BaseException]) -> Iterator[list[BaseException]]:
    """While inside: what a SIGINT/SIGTERM handler raises (KeyboardInterrupt, the CLI's
    SIGTERM exception) is appended to `into` as well. Only handlers that are Python
    functions are wrapped (SIG_DFL and SIG_IGN keep their meaning); main thread only, as
    signal handlers are; the previous handlers are put back on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield into
        return
    previous: dict[int, Any] = {}

    def noting(signum: int, frame: Any) -> None:
        try:
            previous[signum](signum, frame)
        except BaseException as exc:
            into.append(exc)
            raise

    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):
            previous[sig] = handler
            signal.signal(sig, noting)
    try:
        yield into
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def again(into: list[BaseException]) -> None:
    """Raise the first exception a handler raised, if any (it may have been dropped)."""
    if into:
        raise into[0]
