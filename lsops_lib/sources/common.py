"""What the sources share: their error and one-line messages."""

from __future__ import annotations

from ..exceptions import LsopsError

LEVELS = ("debug", "info", "warning", "error", "fatal")


class SourceError(LsopsError):
    """A source (Sentry, the logs, pm2) did not answer properly: one line, never a secret."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut at `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def level_rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else 1
