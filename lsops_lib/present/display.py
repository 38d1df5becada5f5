"""Display primitives of the report notebooks: escaped HTML, boxes for what is missing,
tables, and the guard that turns a failing section into a visible box."""

from __future__ import annotations

import functools
import html
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt, plots
from ..exceptions import LsopsError

DASH = fmt.DASH

# sections that failed or were unavailable during this kernel's run: listed in the key figures
PROBLEMS: list[dict[str, str]] = []
TO_BE_WRITTEN = "TO BE WRITTEN BY THE INCIDENT OWNER"


# --- display ------------------------------------------------------------------------------------


def begin() -> None:
    """A report's first cell: the lsops chart look, no problem left from an earlier run
    in the same kernel (JupyterLab re-runs), and an error lsops raises on purpose (a bad
    parameter, a missing store) shown as its one line instead of a traceback."""
    plots.apply_style()
    PROBLEMS.clear()
    _flush_figures_first()
    _one_line_errors()


def _one_line_errors() -> None:
    """In IPython, an `LsopsError` escaping a cell is shown as `ParameterError: <message>`
    (its one line, safe to print), not as a traceback: the cell still fails (papermill
    stops there, `lsops report` records the same error); `%tb` shows the traceback."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.set_custom_exc((LsopsError,), _show_one_line)


def _show_one_line(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
    text = str(value).strip()
    stb = [f"{etype.__name__}: {text}" if text else etype.__name__]
    shell._showtraceback(etype, value, stb)  # the kernel's error message (ename, evalue)
    return stb


def _flush_figures_first() -> None:
    """In a kernel with the inline backend, send a cell's figures before pyplot's own
    post-execute hook redraws every figure left open (an interactive backend's refresh):
    the inline backend renders each figure to PNG afresh and closes it, so that redraw
    was thrown away (a full draw of each chart, ~0.15 s). The PNGs are the same."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import flush_figures
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    shell = get_ipython()
    callbacks = getattr(getattr(shell, "events", None), "callbacks", {}).get("post_execute")
    if callbacks and flush_figures in callbacks and callbacks[0] is not flush_figures:
        callbacks.remove(flush_figures)
        callbacks.insert(0, flush_figures)


def _display(obj: Any, **kw: Any) -> None:
    try:
        from IPython.display import display

        display(obj, **kw)
    except ImportError:  # pragma: no cover - outside Jupyter
        print(obj)


def show_html(markup: str) -> None:
    """Display markup built by this module (every data part already escaped)."""
    try:
        from IPython.display import HTML

        _display(HTML(markup))
    except ImportError:  # pragma: no cover
        print(markup)


def esc(value: Any) -> str:
    """Any value as escaped text."""
    return html.escape(str(value), quote=True)


def show_text(text: str, *, tag: str = "p") -> None:
    """One paragraph of (possibly untrusted) text, escaped."""
    show_html(f"<{tag}>{esc(text)}</{tag}>")


def show_notes(notes: Iterable[str], *, title: str | None = None) -> None:
    items = [f"<li>{esc(n)}</li>" for n in notes if n]
    if not items:
        return
    head = f"<p><strong>{esc(title)}</strong></p>" if title else ""
    show_html(f"{head}<ul>{''.join(items)}</ul>")


# only CSS properties the HTML export's sanitizer keeps (bleach's allowed list); the
# blockquote gives the box its margin, padding and left rule
_BOX = "background-color:{bg};border-left-color:{color};border-color:{color};color:#212121;"


def box_html(title: str, text: str = "", *, kind: str = "unavailable") -> str:
    """A framed box: `unavailable` (red), `todo` (amber, for the incident owner), `warning`
    (amber), `info` (blue), `good` (green)."""
    color, bg = {
        "unavailable": ("#c62828", "#fdecea"),
        "todo": ("#ef6c00", "#fff3e0"),
        "warning": ("#ef6c00", "#fff3e0"),
        "info": ("#1565c0", "#e3f2fd"),
        "good": ("#2e7d32", "#e8f5e9"),
    }.get(kind, ("#616161", "#fafafa"))
    body = f"<br>{esc(text)}" if text else ""
    return (
        f'<blockquote style="{_BOX.format(color=color, bg=bg)}">'
        f'<strong style="color:{color}">{esc(title)}</strong>{body}</blockquote>'
    )


def unavailable(section: str, reason: str, *, record: bool = True) -> None:
    """The visible "section unavailable" box (and a note in the key figures)."""
    if record:
        PROBLEMS.append({"section": section, "kind": "unavailable", "reason": str(reason)})
    show_html(box_html(f"{section}: unavailable", reason, kind="unavailable"))


def todo(what: str, hint: str = "") -> None:
    """A box left for a person: `TO BE WRITTEN BY THE INCIDENT OWNER`."""
    show_html(box_html(f"{what}: {TO_BE_WRITTEN}", hint, kind="todo"))


def guarded(section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A `show_*` function that never lets an exception replace the report: the failure
    becomes an "unavailable" box naming the error, and a PROBLEMS entry."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except Exception as exc:  # noqa: BLE001 - shown, recorded, never a traceback
                reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                PROBLEMS.append({"section": section, "kind": "failed", "reason": reason})
                show_html(
                    box_html(
                        f"{section}: could not be produced",
                        f"{reason} (the rest of the report is unaffected)",
                        kind="unavailable",
                    )
                )
                return None

        return run

    return wrap


# --- human formatting: lsops_lib.fmt, under the names the report modules use -----------------

_missing = fmt.missing
fmt_pct = fmt.pct
fmt_ms = fmt.ms
fmt_bytes = fmt.size
fmt_int = fmt.integer
fmt_num = fmt.number
fmt_ts = fmt.instant
fmt_duration = fmt.duration
fmt_hours = fmt.hours
fmt_rel = fmt.rel
fmt_pp = fmt.pp


def status_label(met: Any) -> str:
    """Plain-text verdict (safe in any table, any font): `MET`, `MISSED`, `UNKNOWN`."""
    if met is None or _missing(met):
        return "UNKNOWN"
    return "MET" if bool(met) else "MISSED"


def badge_html(met: Any) -> str:
    """A coloured verdict badge (markup only from constants; CSS the HTML export keeps)."""
    text = status_label(met)
    color = {"MET": plots.GOOD, "MISSED": plots.BAD}.get(text, "#757575")
    return (
        f'<span style="background-color:{color};color:#ffffff;font-weight:bold;'
        f'font-size:90%">&nbsp;{text}&nbsp;</span>'
    )


# --- tables -------------------------------------------------------------------------------------


def _default_format(value: Any) -> str:
    if _missing(value):
        return DASH
    if isinstance(value, pd.Timestamp | datetime):
        return fmt_ts(value)
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return plots.fmt_number(float(value), 4)
    return str(value)


def table_html(
    df: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    max_rows: int = 50,
    max_text: int = 300,
) -> str:
    """A DataFrame as an HTML table, every cell formatted to text, then ESCAPED
    (`to_html(escape=True)`). `columns`: which columns to show and their headers."""
    formats = dict(formats or {})
    view = df.head(max_rows)
    if columns:
        view = view[[c for c in columns if c in view.columns]]
    out = pd.DataFrame(index=range(len(view)))
    for col in view.columns:
        fmt = formats.get(col, _default_format)
        texts = [fmt(v) if not (_missing(v) and col not in formats) else DASH for v in view[col]]
        texts = [t if len(t) <= max_text else t[:max_text] + "…" for t in texts]
        out[(columns or {}).get(col, col)] = texts
    markup = plots.table_markup(out)  # escaped; numbers right, text left
    if len(df) > max_rows:
        markup += f"<p><em>{more_rows(len(df) - max_rows)}</em></p>"
    return markup


def more_rows(count: int) -> str:
    return f"{count:,} more row{'' if count == 1 else 's'} not shown"


def show_table(
    df: pd.DataFrame | None,
    title: str | None = None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    max_rows: int = 50,
    empty: str = "none",
) -> None:
    """A titled, escaped table, or the `empty` sentence when there are no rows."""
    head = f"<h3>{esc(title)}</h3>" if title else ""  # under the notebook's ## section
    if df is None or df.empty:
        show_html(f"{head}<p><em>{esc(empty)}</em></p>")
        return
    show_html(head + table_html(df, formats, columns=columns, max_rows=max_rows))


def facts_html(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of label / value (both escaped)."""
    body = "".join(
        f"<tr><th style='text-align:left'>{esc(k)}</th><td style='text-align:left'>{esc(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table class='lsops-facts'>{body}</table>"
