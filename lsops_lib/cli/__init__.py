"""`lsops`: a thin shell over the library. Parses, calls, prints (rich or --json), exits.

Each concern has its own module registering commands on `main`. Each command builds one
data structure and prints it through `render.emit` (a table or text for people, the same
data as JSON with --json; text formats from `lsops_lib.fmt`). A user's mistake is one
line on stderr and an exit code, never a traceback: commands raise `LsopsError`
subclasses and `run_command` maps them to the command's exit codes.
"""

from __future__ import annotations

# issue 13, first of all: `lsops collect` catches SIGTERM/SIGINT from its first instant
from . import stopping  # noqa: F401

# isort: split
import codecs
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click

from .. import __version__
from ..config import Settings, UnknownTargetError, load_settings
from ..exceptions import ConfigError, LsopsError, ParameterError
from .render import console, emit_json, err_console

# characters of lsops' text, and what a terminal whose encoding lacks them shows instead
_STAND_INS = {"–": "-", "—": "-", "…": "...", "·": ".", "❌": "x", "⚠": "!", "→": "->"}


def _stand_in(exc: UnicodeError) -> tuple[str, int]:
    """The "lsops" codec error handler: a character the output's encoding lacks (the dash
    of `fmt.DASH` under LC_ALL=en_US.ISO-8859-1 or PYTHONIOENCODING=ascii) becomes its
    stand-in, or "?"; never a UnicodeEncodeError in the middle of a command's output."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(_STAND_INS.get(c, "?") for c in bad), exc.end


codecs.register_error("lsops", _stand_in)


def _usable_stdio() -> None:
    """QA 17: stdin/stdout/stderr that cron or a daemon closed (`>&-`, `2>&-`) are reopened
    on /dev/null before the command opens a file: else the next file opened takes the fd
    (a store, a lock), and a child inheriting it (a report's kernel: it died at start,
    "Kernel died before replying to kernel_info") finds it closed or writes into it. Then
    stdout and stderr in an encoding that lacks a character write a stand-in for it."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:  # the lowest free descriptor: `fd` itself, the ones below being open
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open's are not: a child would find it closed
            if getattr(sys, name) is None:  # Python found it closed at its start
                setattr(sys, name, open(fd, mode, closefd=False))
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "backslashreplace"):
            if not codecs.lookup(stream.encoding).name.startswith("utf"):
                stream.reconfigure(errors="lsops")


_usable_stdio()

__all__ = [
    "App",
    "PluginCommand",
    "console",
    "emit_json",
    "err_console",
    "fail",
    "main",
    "pass_app",
    "run_command",
]


# the commands that only read the store or the archive (`App.reads_store`): they take a
# target the store holds though lsops.toml no longer names it (removed, renamed)
STORE_READERS = (
    "endpoints",
    "checklist",
    "incidents",
    "alerts",
    "logs",
    "errors",
    "security",
    "report",
    "reports",
)

# the commands that ask no API target (the database, its backups, its embeddings): a
# target they would not use never stops them, be it unknown or a stale LSOPS_TARGET
TARGET_FREE = ("db", "backup", "index-stats", "reindex-list")


@dataclass
class App:
    """What every command gets: global options and the settings, loaded on first use."""

    config: str | None = None
    target: str | None = None
    # a command of STORE_READERS: it takes a target the store holds, lsops.toml no longer
    reads_store: bool = False
    # a command of TARGET_FREE: the target chosen is not checked
    target_free: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, database: str | None = None) -> Settings:
        # QA 17: `--config ""` read the folder "." and `--target ""` was the default target
        if self.config is not None and not self.config.strip():
            raise ConfigError("--config is empty: give the path of a settings file")
        if self.target is not None and not self.target.strip():
            raise ConfigError("--target is empty: give the name of a target of lsops.toml")
        if self._settings is None or database is not None:
            try:
                self._settings = load_settings(self.config, target=self.target, database=database)
            except UnknownTargetError as exc:
                if self.target_free:
                    self._settings = load_settings(
                        self.config, target=self.target, database=database, unconfigured_target=True
                    )
                else:
                    self._settings = self._stored_target(exc, database)
        return self._settings

    def _stored_target(self, exc: UnknownTargetError, database: str | None) -> Settings:
        """The settings of a target lsops.toml does not name (removed, renamed) but the
        store holds: read by the commands that only read the store (said on stderr),
        refused by the others, which need its URL; `exc` for a name the store lacks."""
        settings = load_settings(
            self.config, target=self.target, database=database, unconfigured_target=True
        )
        if not _store_holds(settings.store_url, exc.name):
            raise exc
        name = exc.name
        if not self.reads_store:
            readers = ", ".join(STORE_READERS[:-1]) + f" and {STORE_READERS[-1]}"
            raise ConfigError(
                f"target {name!r} is not in lsops.toml: this command needs its URL; its "
                f"stored history is read by {readers}"
            )
        err_console.print(
            f"lsops: target {one_line(repr(name))} is not in lsops.toml: its stored history is read",
            markup=False,
            soft_wrap=True,
        )
        return settings

    def selected_target(self) -> str:
        """The target every command works on, chosen the same way everywhere (issue 13):
        `--target NAME`, else `LSOPS_TARGET`, else `default_target` of lsops.toml, else
        `default` ([api]) or the first of [targets]. `collect` stores its scrapes under
        this name, `health` asks its URL, and every command reading the store reads this
        target's history alone (never the sum of several APIs)."""
        return self.settings().target.name


pass_app = click.make_pass_decorator(App, ensure=True)


def _store_holds(url: str, target: str) -> bool:
    """Whether the store at `url` holds scrapes of `target` (False: none, no store)."""
    from ..config import sqlite_store_missing
    from ..store import Store

    if sqlite_store_missing(url):
        return False
    try:
        with Store(url) as store:
            return target in store.targets()
    except Exception:  # noqa: BLE001 - an unreadable store holds no target to read
        return False


def limit_option(default: int | None, what: str, *, name: str = "--limit", least: int = 1) -> Any:
    """A count of rows to show (`--limit`): a whole number of at least `least`, or bad
    usage (exit 2) before any work."""
    return click.option(
        name,
        type=click.IntRange(min=least),
        default=default,
        show_default=default is not None,
        metavar="N",
        help=what,
    )


# characters of an error line: room for a whole useful message (an unknown name in
# lsops.toml [thresholds] lists the ~70 known ones, 1,500 characters), while a user's
# 5000-character path is cut
MAX_MESSAGE = 3000


def one_line(message: str) -> str:
    """`message` as ONE physical line: control characters and line separators (a newline
    or a \x1e inside a user's value) shown escaped, cut at MAX_MESSAGE characters."""
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(message))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit `code`."""
    err_console.print(f"lsops: {one_line(message)}", markup=False, soft_wrap=True)
    sys.exit(code)


@contextmanager
def run_command(*, usage: int = 2, failure: int = 1) -> Iterator[None]:
    """Map library errors to exit codes: bad usage/config -> `usage`, others -> `failure`."""
    try:
        yield
    except (ConfigError, ParameterError) as exc:
        fail(str(exc), usage)
    except LsopsError as exc:
        fail(str(exc), failure)
    except KeyboardInterrupt as exc:  # Ctrl-C: 130; a SIGTERM turned into one says its code
        fail("interrupted", int(getattr(exc, "exit_code", 130)))


class PluginCommand(click.Command):
    """A command following the monitoring-plugin convention: bad usage exits 3 (UNKNOWN)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - via group
        return super().main(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.exit_code = 3
            raise


# click >= 8.2: a group given no subcommand (`lsops db`) raises this, its message the help
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class LsopsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        stopping.started()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # Ctrl-C (or a SIGTERM made one) outside a command's run_command (its first
            # instants, or while run_command handles an earlier one): not click's
            # "Aborted!" and exit 1, but one line and 130 (143)
            fail("interrupted", int(getattr(exc, "exit_code", 130)))
        except _NO_ARGS_IS_HELP:
            raise  # the group's help, as click shows it (stderr, exit 2): not an error line
        except click.UsageError as exc:
            # one line, no usage dump; plugin-style commands keep their exit code (3)
            fail(exc.format_message(), exc.exit_code)


@click.group(cls=LsopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lsops")
@click.option("--config", "config", metavar="PATH", help="Settings file (default ./lsops.toml).")
@click.option("--target", "target", metavar="NAME", help="Named API target from lsops.toml.")
@click.pass_context
def main(ctx: click.Context, config: str | None, target: str | None) -> None:
    """lsops: operations toolkit of the LongSang Admin AI Copilot API."""
    ctx.obj = App(config=config, target=target, target_free=ctx.invoked_subcommand in TARGET_FREE)


def register(module_names: list[str]) -> None:
    import importlib

    for name in module_names:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


register(["checks", "collect", "db", "reports", "demo"])
register(["reindex", "security"])  # issue 12: `lsops reindex-list`, `lsops security`
register(["backups"])  # issue 12: lsops backup check
register(["vectors"])  # `lsops db vectors` (issue 15), on the db group
register(["alerts"])  # issue 11: lsops alerts [check | test]
register(["sources"])  # issue 10: lsops errors, lsops logs
