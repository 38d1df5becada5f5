"""Where a report's data comes from: the metrics store, the target, the month."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import Settings, redact_url, sqlite_store_missing
from ..exceptions import ParameterError, StoreError
from ..times import parse_month, previous_month, utcnow
from .display import fmt_ts

# --- where the data comes from --------------------------------------------------------------------


@dataclass
class StoreSource:
    """The metrics store a report reads, or an empty stand-in when there is none."""

    store: Any
    url: str | None  # redacted
    available: bool
    problem: str | None = None
    extent: tuple[pd.Timestamp, pd.Timestamp] | None = None
    _tmp: Any = field(default=None, repr=False)

    def describe(self) -> str:
        if not self.available:
            return f"no usable metrics store ({self.problem})"
        if self.extent is None:
            return f"metrics store {self.url}: empty (no scrape stored yet)"
        first, last = self.extent
        return f"metrics store {self.url}: history from {fmt_ts(first)} to {fmt_ts(last)}"


def _scrub(text: str, settings: Settings | None) -> str:
    for secret in settings.secrets() if settings is not None else []:
        text = text.replace(secret, "***")
    return text


def open_store(url: str | None = None, settings: Settings | None = None) -> StoreSource:
    """The store at `url` (else the settings' store). A store that does not exist (never
    created) or cannot be opened is replaced by an empty one in a temporary directory, so
    the report still runs and says what is missing."""
    from ..store import Store

    url = url or (settings.store_url if settings is not None else None)
    shown = redact_url(url) if url else None
    problem: str | None = None
    if not url:
        problem = "no store configured (LSOPS_STORE or [store] url in lsops.toml)"
    elif sqlite_store_missing(url):
        problem = f"the store {shown} does not exist: run 'lsops collect' first"
    else:
        try:
            store = Store(url)
            try:
                extent = store.extent()
            except Exception:  # noqa: BLE001 - an unreadable store is an empty one here
                extent = None
            return StoreSource(store=store, url=shown, available=True, extent=extent)
        except StoreError as exc:  # its message names the store already
            problem = _scrub(str(exc).splitlines()[0], settings)
        except Exception as exc:  # noqa: BLE001 - shown in the report
            problem = _scrub(f"cannot open the store {shown}: {exc}".splitlines()[0], settings)
    tmp = tempfile.TemporaryDirectory(prefix="lsops-empty-store-")
    store = Store(f"sqlite:///{Path(tmp.name) / 'empty.sqlite'}")
    return StoreSource(store=store, url=shown, available=False, problem=problem, _tmp=tmp)


def resolve_target(source: StoreSource, target: str | None, settings: Settings) -> str | None:
    """The API target to report on: `target` when given (a ParameterError when neither the
    store nor the settings know it, or when it is the settings' default target, not named
    by --target, LSOPS_TARGET or default_target, and the store holds only others); else, when the store holds several targets, the
    settings' target (figures of different APIs are never mixed: a ParameterError when the store has
    several and none of that name); else None (the store's only target)."""
    try:
        known = source.store.targets()
    except Exception:  # noqa: BLE001 - an unreadable store has no targets to choose from
        known = []
    if target:
        if known and target not in known and target not in settings.targets:
            # a typo, not "no observation in the month"
            raise ParameterError(
                f"unknown target {target!r}: the store holds "
                f"{', '.join(repr(k) for k in known)} "
                f"(configured: {', '.join(sorted(settings.targets)) or 'none'})"
            )
        default = target == settings.target.name and not settings.target_named
        if known and target not in known and default:
            # the default target (`lsops report` passes it on), never seen by a store that
            # holds others: its report read "no observation"; not the API meant (QA 24)
            raise ParameterError(
                f"the store holds no scrape of target {target!r}, the default one; it "
                f"holds {', '.join(repr(k) for k in known)}: choose one with the "
                "`target` parameter (--target NAME, or LSOPS_TARGET)"
            )
        return target
    if len(known) > 1:
        if settings.target.name in known:
            return settings.target.name
        raise ParameterError(
            f"the store holds several targets ({', '.join(repr(k) for k in known)}) and none "
            f"named {settings.target.name!r}, the configured one: choose one with the "
            "`target` parameter (or LSOPS_TARGET)"
        )
    return None


def resolve_month(month: str | None) -> str:
    """`month` as `YYYY-MM`; None: the previous calendar month (UTC)."""
    if month is None or str(month).strip() == "":
        return previous_month(utcnow().strftime("%Y-%m"))
    start, _ = parse_month(str(month))
    return f"{start:%Y-%m}"


def month_title(month: str) -> str:
    start, _ = parse_month(month)
    return start.strftime("%B %Y")
