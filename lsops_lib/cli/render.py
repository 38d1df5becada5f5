"""The one way a command prints: ONE data structure, shown as text or as `--json`.

A command builds its data (dicts, lists of dicts, numbers, instants: the raw values, never
formatted strings) and hands it to `emit(data, as_json, view)`. With `--json` the data is
printed as JSON (instants ISO 8601 in UTC, NaN as null); without, `view(data)` prints it
for people, and a view sees nothing but the data, so the text cannot show a figure that the
JSON lacks. Tables are declared as columns over the keys of the rows:

    COLUMNS = [Column("table", "table"), Column("total_bytes", "total", fmt.size, RIGHT)]

    def view(data):
        line(f"database size: {fmt.size(data['database_bytes'])}")
        table(data["tables"], COLUMNS, title="Tables by total size")

    emit({"database_bytes": n, "tables": records(frame)}, as_json, view)

Every text format comes from `lsops_lib.fmt` (a column without a formatter goes through
`fmt.value(value, key)`); every cell and line is plain `Text`, never markup (endpoint
names, query texts and error messages are untrusted), and its control characters (a
terminal's escape sequences, bidirectional overrides) are shown as visible stand-ins.

`trace()` records which keys of the data each view read (a test compares them with the
keys of the JSON, for every command with `--json`).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import fmt

if TYPE_CHECKING:
    import pandas as pd


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`lsops health | head -1` once head has its line): the rest
        goes to /dev/null and the command ends with its own exit code (rich's own handler
        exits 1, which `lsops health` means as DEGRADED)."""
        self.quiet = True
        _to_devnull(self.file)


def _to_devnull(stream: Any) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, stream.fileno())
    finally:
        os.close(null)


console = _Console()
err_console = _Console(stderr=True, highlight=False)

RIGHT = "right"
View = Callable[[Any], None]


# --- JSON ----------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """`value` as strict JSON types: NaN/NaT/NA -> None, instants -> ISO 8601 in UTC
    (naive ones are left as they are), numpy scalars -> Python, paths -> str."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if fmt.missing(value):  # NaT, NA, numpy NaN
        return None
    pd = sys.modules.get("pandas")  # not loaded: nothing here is one of its types
    if pd is not None and isinstance(value, pd.Timestamp):
        return (value.tz_convert("UTC") if value.tzinfo is not None else value).isoformat()
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return jsonable(value.item())
        except (ValueError, AttributeError):
            pass
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def emit_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    _echo(json.dumps(jsonable(data), indent=2, allow_nan=False))


def json_line(data: Any) -> None:
    """Print `data` as one line of JSON (a stream: one object per line)."""
    _echo(json.dumps(jsonable(data), allow_nan=False))


def _echo(text: str) -> None:
    """`text` on stdout; a reader gone (a broken pipe): nothing more, as `_Console`."""
    try:
        click.echo(text)
    except BrokenPipeError:
        _to_devnull(sys.stdout)


def records(frame: pd.DataFrame | None, columns: Sequence[str] | None = None) -> list[dict]:
    """A DataFrame's rows as dicts of raw Python values (all columns, or `columns` in that
    order): NaN/NaT/NA -> None, numpy scalars -> Python, instants -> UTC Timestamps."""
    if frame is None or frame.empty:
        return []
    view = frame[list(columns)] if columns else frame
    return [{str(k): raw(v) for k, v in row.items()} for row in view.to_dict("records")]


def raw(value: Any) -> Any:
    """One cell as a plain Python value (see `records`)."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict | str):
        return value
    if fmt.missing(value):
        return None
    if isinstance(value, datetime):  # pandas' Timestamp is a datetime
        import pandas as pd

        stamp = pd.Timestamp(value)
        return stamp.tz_convert("UTC") if stamp.tzinfo is not None else stamp
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


# --- text ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One table column: the row's `key`, its `header`, how a value reads.

    `format(value)` (default `fmt.value(value, key)`) gives a str or a rich `Text`;
    with `row=True` it is `format(value, row)` (a cell that depends on its row's other
    keys). `style` maps a value to a rich style (statuses in colour)."""

    key: str
    header: str
    format: Callable[..., Any] | None = None
    justify: str = "left"
    style: Mapping[str, str] | None = None
    row: bool = False
    no_wrap: bool = False

    def cell(self, row: Mapping[str, Any]) -> Text:
        value = row[self.key]
        if self.format is None:
            shown: Any = fmt.value(value, self.key)
        elif self.row:
            shown = self.format(value, row)
        else:
            shown = self.format(value)
        if isinstance(shown, Text):
            return inert(shown)
        style = self.style.get(str(value), "") if self.style else ""
        return inert(Text(str(shown), style=style))


# C0 (but a tab and a line end), DEL, C1 and the bidirectional overrides and isolates
_CONTROL = {c: 0x2400 + c for c in range(0x20) if c not in (0x09, 0x0A)}  # ␛ for ESC
_CONTROL |= {0x7F: 0x2421} | {c: 0xFFFD for c in range(0x80, 0xA0)}
_CONTROL |= {c: 0xFFFD for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def inert(text: Text) -> Text:
    """`text` with each control character replaced by one visible character (an ESC of
    an untrusted title is ␛: nothing reaches the terminal as a command); styles kept."""
    plain = text.plain
    safe = plain.translate(_CONTROL)
    if safe != plain:
        text = text.copy()
        text.plain = safe  # same length: the spans (styles) still fit
    return text


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str | None = "none",
    limit: int | None = None,
    **options: Any,
) -> None:
    """A rich table of `rows` (the first `limit`, saying how many more the JSON has);
    without rows, `title: empty` (nothing when `empty` is None)."""
    if not rows:
        if empty is not None:
            line(f"{title}: {empty}" if title else empty, style="dim")
        return
    shown_title = inert(Text(title, style="table.title")) if title else None  # never markup
    grid = Table(title=shown_title, title_justify="left", **options)
    for column in columns:
        grid.add_column(
            column.header,
            justify=column.justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=column.no_wrap,
        )
    shown = rows if limit is None else rows[:limit]
    for row in shown:
        grid.add_row(*[column.cell(row) for column in columns])
    console.print(grid)
    if limit is not None and len(rows) > limit:
        line(f"  … {len(rows) - limit} more (use --json for all)", style="dim")


def line(text: str | Text, style: str | None = None) -> None:
    """One line of plain text (never markup), wrapped softly."""
    shown = text if isinstance(text, Text) else Text(text, style=style or "")
    console.print(inert(shown), soft_wrap=True)


def clip(value: Any, limit: int = 80) -> str:
    """Untrusted free text on one line, cut at `limit` characters; lists joined."""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    elif fmt.missing(value):
        return fmt.DASH
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clipper(limit: int) -> Callable[[Any], str]:
    return lambda value: clip(value, limit)


# --- one structure, two renderings ---------------------------------------------------------


def emit(
    data: Any,
    as_json: bool,
    view: View,
    *,
    json_key: str | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Print `data` as JSON, or as `view(data)` for people.

    `json_key`: the JSON is `data[json_key]` alone (commands whose JSON has always been a
    bare list); the view may also show the other keys (the window, a footnote). `notes`:
    what such a view says beside its rows ("the API did not answer in the window"), also
    said on stderr with the bare JSON, which has no room for it (an empty list is then
    never the only word on why)."""
    if as_json:
        emit_json(data if json_key is None else data[json_key])
        if json_key is not None:
            for note in notes:
                err_console.print(f"lsops: {note}", markup=False, soft_wrap=True)
    else:
        show(data, view, json_key=json_key)


def stream(data: Any, as_json: bool, view: View, *, at: str = "") -> None:
    """One item of a stream (a scrape of `collect --every`): a JSON line, or its text."""
    if as_json:
        json_line(data)
    else:
        show(data, view, at=at)


def show(data: Any, view: View, *, at: str = "", json_key: str | None = None) -> None:
    """`view(data)`: the text of `data` (traced under `trace()`). `at`: where `data` sits
    in the command's JSON (e.g. "runs[]" for one run of a list printed as it finishes)."""
    if _TRACE is None:
        view(data)
        return
    _TRACE.views += 1
    if json_key is not None:
        _TRACE.json_keys.add(json_key)
    view(_wrap(data, at, _TRACE.reads))


# --- trace: which keys a text view read ------------------------------------------------------


@dataclass
class Trace:
    """The keys the views read while tracing, as paths: "tables[].total_bytes"."""

    reads: set[str] = field(default_factory=set)
    views: int = 0
    json_keys: set[str] = field(default_factory=set)


_TRACE: Trace | None = None


@contextmanager
def trace() -> Iterator[Trace]:
    """Record the keys every view reads until the block ends (tests)."""
    global _TRACE
    previous, _TRACE = _TRACE, Trace()
    try:
        yield _TRACE
    finally:
        _TRACE = previous


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _wrap(value: Any, path: str, reads: set[str]) -> Any:
    if isinstance(value, Mapping):
        return _TracedMapping(value, path, reads)
    if isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
        return _TracedList(value, path, reads)
    return value


class _TracedMapping(Mapping):
    def __init__(self, data: Mapping[str, Any], path: str, reads: set[str]) -> None:
        self._data, self._path, self._reads = data, path, reads

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        where = _join(self._path, key)
        self._reads.add(where)
        return _wrap(value, where, self._reads)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _TracedList(Sequence):
    def __init__(self, data: Sequence[Any], path: str, reads: set[str]) -> None:
        self._data, self._path, self._reads = data, path, reads

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return _TracedList(self._data[index], self._path, self._reads)
        return _wrap(self._data[index], f"{self._path}[]", self._reads)

    def __len__(self) -> int:
        return len(self._data)


def paths(document: Any, path: str = "") -> set[str]:
    """Every key path of a JSON document, lists as "[]": {"tables", "tables[].schema", ...}."""
    found: set[str] = set()
    if isinstance(document, Mapping):
        for key, value in document.items():
            where = _join(path, key)
            found.add(where)
            found |= paths(value, where)
    elif isinstance(document, list):
        for item in document:
            found |= paths(item, f"{path}[]")
    return found
