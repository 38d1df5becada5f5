"""A PostgreSQL store server that hangs while its host still answers TCP.

A server process stopped (SIGSTOP, a debugger), stuck on a disk that no longer answers,
or frozen with its VM's storage leaves the client waiting for an answer that never comes:
the host's kernel still acknowledges every packet and answers TCP keepalives, so neither
`PG_KEEPALIVE` nor `tcp_user_timeout` ends the wait, and the server cannot enforce its own
`statement_timeout`. The collector's write (and the pool's pre-ping before it) then waited
for ever, every scrape after it lost without a word.

`StallGuard` bounds such a wait from the client's side: it knows the engine's driver
connections, and a guarded block still running after its bound has their sockets shut
down (`shutdown(2)`: the driver's wait returns at once, its connection fails and the pool
drops it), so the block fails with a `StoreError` that says what happened. On SQLite
(a local file, no server) it does nothing.

    guard = StallGuard(engine)
    with guard.bounded(PG_STALL_S, "write scrape to ..."):
        ...  # one small write transaction
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..exceptions import StoreError

# a collector's write of one scrape is a few milliseconds; a lock held elsewhere is
# waited for up to PG_LOCK_WAIT_S (30 s) before the statement fails on its own: twice
# that without an answer is a server that hangs
PG_STALL_S = 60.0


class StallGuard:
    """The driver connections of one engine, and `bounded` blocks over them."""

    def __init__(self, engine: Engine) -> None:
        self.enabled = engine.dialect.name == "postgresql"
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        if self.enabled:
            event.listen(engine, "connect", self._opened)

    def _opened(self, dbapi_connection: Any, _record: Any) -> None:
        self._connections.add(dbapi_connection)

    @contextlib.contextmanager
    def bounded(self, seconds: float, what: str) -> Iterator[None]:
        """Run the block; if it is still waiting on the server after `seconds`, shut the
        engine's connections down and raise StoreError("cannot <what>: ...")."""
        if not self.enabled:
            yield
            return
        lock = threading.Lock()
        state = {"running": True, "cut": False}

        def cut() -> None:
            with lock:
                if not state["running"]:
                    return
                state["cut"] = True
            for connection in list(self._connections):
                _shut_down(connection)

        timer = threading.Timer(seconds, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        except BaseException:
            if state["cut"]:
                raise StoreError(
                    f"cannot {what}: the store server did not answer for {seconds:g} s "
                    "(a hung server process?); its connections were closed"
                ) from None
            raise
        finally:
            with lock:
                state["running"] = False
            timer.cancel()


def _shut_down(connection: Any) -> None:
    """Shut down the socket of a psycopg connection (a duplicate of its descriptor is
    enough: shutdown acts on the socket, not on the descriptor); its own descriptor
    stays open for psycopg to close."""
    with contextlib.suppress(Exception):  # closed meanwhile, or not a socket
        fd = os.dup(connection.pgconn.socket)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return
        with sock:
            sock.shutdown(socket.SHUT_RDWR)
