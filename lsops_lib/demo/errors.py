"""How the demo fails: what a user must fix (`DemoError`, `UsageError`) and signals
(`Interrupted`)."""

from __future__ import annotations

import signal


class DemoError(Exception):
    """The demo could not do its work (one line for the user)."""


class UsageError(DemoError):
    """Bad options (exit 2)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (`signum`; exit code 128 + signum)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def format_exception(exc: BaseException) -> str:
    """One line for the console: the message of a DemoError, else `Type: message`."""
    line = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DemoError) else str(exc)
    return line.splitlines()[0] if line else type(exc).__name__
