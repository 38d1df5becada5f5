"""SIGTERM and SIGINT for `lsops collect`: a request to stop, from the process's first
instant on (issue 13).

The collector promises to finish the write in progress and exit 0 on SIGTERM/SIGINT.
Importing the CLI takes seconds (pandas, rich), and the default SIGTERM kills a process
with 143: so `lsops_lib.cli` imports this module FIRST, and when the command line is
`lsops [--config X] [--target X] collect ...`, the handlers are installed right then,
before anything heavy is imported; a signal arriving during start-up only sets `STOP`,
which `collect` checks before its first scrape. Other commands keep the defaults.

Every other command run as `lsops`: Ctrl-C while it starts (imports, parsing: nothing to
clean up yet) is one line, `lsops: interrupted`, and exit 130 (`_starting`), until the
command runs (`started()`, from the group's invoke; a KeyboardInterrupt then).

`install()` (collect's own, for an in-process run) installs them when they are not yet;
`uninstall()` puts the previous ones back. Only the first instants of the interpreter,
before Python runs this module, are out of reach (the kernel's default applies there).
Nothing here imports more than the standard library.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

STOP = threading.Event()  # set by SIGTERM/SIGINT while the handlers are installed
SIGNALS = (signal.SIGTERM, signal.SIGINT)
_GLOBAL_OPTIONS = ("--config", "--target")  # the options of `lsops` before the command
_previous: dict[int, Any] = {}


def is_collect(argv: Sequence[str]) -> bool:
    """True when `argv` (sys.argv) runs `lsops collect`: its first word after the global
    options (`--config X`, `--target X`, or with `=`) is `collect`."""
    words = list(argv[1:])
    while words:
        word = words.pop(0)
        if word in _GLOBAL_OPTIONS:
            if not words:
                return False
            words.pop(0)
        elif not word.startswith(tuple(f"{o}=" for o in _GLOBAL_OPTIONS)):
            return word == "collect"
    return False


def _handler(signum: int, _frame: Any) -> None:
    """The first signal asks to stop after the write in progress; a second one (Ctrl-C
    twice, systemd's stop repeated) ends the process at once, by that signal (every write
    is one transaction: an interrupted one leaves nothing half-written)."""
    if STOP.is_set():
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    STOP.set()


def _starting(signum: int, _frame: Any) -> None:
    """Ctrl-C before the command runs: no traceback, no click "Aborted!" (exit 1)."""
    os.write(2, b"lsops: interrupted\n")
    os._exit(128 + signum)


def started() -> None:
    """The command runs: Ctrl-C raises KeyboardInterrupt again (for `run_command`)."""
    if signal.getsignal(signal.SIGINT) is _starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def is_lsops(argv: Sequence[str]) -> bool:
    """`argv` is the command line of `lsops` (the script, or `python -m lsops_lib.cli`),
    not of a program importing the CLI (pytest, a notebook)."""
    first = os.path.basename(argv[0]) if argv else ""
    return first == "lsops" or argv[0].replace(os.sep, "/").endswith("lsops_lib/cli/__main__.py")


def installed() -> bool:
    return bool(_previous)


def install() -> bool:
    """Install the handlers (main thread only). False when they already were, or off
    the main thread (a signal goes to the main thread anyway)."""
    if _previous or threading.current_thread() is not threading.main_thread():
        return False
    STOP.clear()
    for sig in SIGNALS:
        _previous[sig] = signal.signal(sig, _handler)
    return True


def uninstall() -> None:
    """Put back the handlers that were there before `install`."""
    while _previous:
        sig, old = _previous.popitem()
        signal.signal(sig, old)


if is_collect(sys.argv):
    install()
elif is_lsops(sys.argv) and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _starting)  # (not when SIGINT is ignored: `nohup`, `&`)
