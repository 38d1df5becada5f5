"""The matplotlib look shared by every report: plain, readable in the HTML export.

- Titles state the finding ("p95 met 500 ms in 97 % of hours"); the caller writes them.
- Targets are dashed horizontal lines with a label; events (restarts) dotted vertical lines.
- Time axes are UTC, with concise date labels, and say "UTC".
- Figures are ~10 in wide at 100 dpi: about 1000 px in the HTML.

Safe under any backend (Agg included): nothing here calls `plt.show()`.

    with plots.style():
        ax = plots.timeseries(None, daily, "ts", "p95_ms", "p95 met 500 ms on 29 of 31 days",
                              target=500, target_label="target 500 ms", ylabel="p95 (ms)")
        plots.mark_events(ax, restarts["ts"], "restart")
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedLocator,
    Formatter,
    FuncFormatter,
    MaxNLocator,
    ScalarFormatter,
)

from .. import fmt

WIDTH_IN = 10.0
HEIGHT_IN = 4.0
DPI = 100

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]
TARGET_COLOR = "#c62828"
EVENT_COLOR = "#6d4c41"
GOOD = "#2e7d32"
BAD = "#c62828"

RC: dict[str, Any] = {
    "figure.figsize": (WIDTH_IN, HEIGHT_IN),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "figure.autolayout": True,
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.prop_cycle": mpl.cycler(color=COLORS),
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.6,
    "timezone": "UTC",
}


def apply_style() -> None:
    """Set the lsops look for the rest of the session (a notebook's first cell); in a
    kernel, a figure's text (text/plain beside its PNG) is also its `describe`. (A chart
    function that returns a Figure, as `daily_trends`, on a cell's last line is shown twice,
    as any pyplot figure that is a cell's value: end the line with `;`.)"""
    mpl.rcParams.update(RC)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    shell = get_ipython()
    if shell is None:
        return
    if "inline" in str(dict.get(mpl.rcParams, "backend", "")):  # as set, not resolved
        # what `%matplotlib inline` does, now rather than at the first figure: it resets
        # every formatter of figures, the ones set below included
        import matplotlib_inline.backend_inline  # noqa: F401
    plain = shell.display_formatter.formatters["text/plain"]
    plain.for_type(Figure, lambda fig, p, cycle: p.text(describe(fig) or repr(fig)))


def describe(fig: Any) -> str:
    """A chart in words, for whoever cannot see it (the HTML export's alt text): its
    titles, which state the finding ("Chart: p95 met 500 ms in 97 % of hours"), and what
    an axes that draws nothing says instead ("Chart: Memory; no memory reading"); with no
    title, its texts; "" when it has neither."""
    texts = [fig.get_suptitle()]
    for ax in fig.axes:
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        if not (ax.lines or ax.patches or ax.collections or ax.images):  # nothing drawn
            texts += [t.get_text() for t in ax.texts]
    if not any(t.strip() for t in texts):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    said = list(dict.fromkeys(" ".join(t.split()) for t in texts if t.strip()))
    return "Chart: " + "; ".join(said) if said else ""


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The lsops look inside a `with` block only."""
    with mpl.rc_context(RC):
        yield


def figure(height: float = HEIGHT_IN, *, width: float = WIDTH_IN) -> tuple[Any, Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    return fig, ax


def _axes(ax: Axes | None, height: float = HEIGHT_IN) -> Axes:
    return ax if ax is not None else figure(height)[1]


# --- formatters --------------------------------------------------------------------------------


# one text format everywhere: lsops_lib.fmt (kept here under the names charts use)
fmt_bytes = fmt.size
fmt_pct = fmt.pct
fmt_ms = fmt.ms
fmt_number = fmt.number


def _tick(fn: Any) -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: fn(v))


def decimals(values: Iterable[float], *, at_least: int = 0, at_most: int = 6) -> int:
    """The fewest decimals (at least `at_least`) that write every value exactly: ticks at
    0, 2.5, 5 and 7.5 need one ("2.5", never "2"; "7.5", never "8"); 0, 5, 10 none."""
    finite = [float(v) for v in values if pd.notna(v) and abs(float(v)) != float("inf")]
    for digits in range(at_least, at_most + 1):
        if all(abs(round(v, digits) - v) <= 1e-9 * max(1.0, abs(v)) for v in finite):
            return digits
    return max(at_least, at_most)


_Unit = tuple[float, str]  # what a tick value is divided by, and the text after the number


def _one(_span: float) -> _Unit:
    return 1.0, ""


def _percent(_span: float) -> _Unit:
    return 0.01, " %"


def _time_unit(span: float) -> _Unit:
    """The unit fmt.ms writes the largest value of an axis in (milliseconds)."""
    for limit, unit in ((1000.0, (1.0, " ms")), (60_000.0, (1000.0, " s"))):
        if span < limit:
            return unit
    return (60_000.0, " min") if span < 3_600_000 else (3_600_000.0, " h")


def _binary_unit(span: float) -> _Unit:
    """The IEC unit fmt.size writes the largest value of an axis in (bytes)."""
    scale, index = 1.0, 0
    while span / scale >= 1024 and index < 4:
        scale, index = scale * 1024, index + 1
    return scale, " " + ("B", "KiB", "MiB", "GiB", "TiB")[index]


def _span(axis: Any, values: Any) -> float:
    """The largest magnitude an axis shows: its view interval's (what its locator ticks),
    else its ticks'."""
    if axis is not None:
        lo, hi = axis.get_view_interval()
        if pd.notna(lo) and pd.notna(hi):
            return max(abs(float(lo)), abs(float(hi)))
    return max((abs(float(v)) for v in values), default=0.0)


class ExactFormatter(Formatter):
    """Tick labels that state their ticks' values: every tick of an axis in one unit
    (`unit`: the largest magnitude the axis shows -> (divisor, suffix): a percent, ms or
    s, KiB or MiB) with the fewest decimals, at least `digits`, that write each of them
    exactly. So ticks at 2.5 %, 5 %, 7.5 % read "2.5 %", "5.0 %", "7.5 %", never "2 %",
    "5 %", "8 %"; ticks at 0, 5, 10 % read "0 %", "5 %", "10 %"."""

    def __init__(self, unit: Any = _one, *, digits: int = 0, separators: bool = True) -> None:
        self.unit = unit
        self.digits = digits
        self.separators = separators
        self._divisor, self._suffix = unit(0.0)
        self._decimals = digits

    def set_locs(self, locs: Any) -> None:
        super().set_locs(locs)
        self._divisor, self._suffix = self.unit(_span(self.axis, locs))
        self._decimals = decimals([float(v) / self._divisor for v in locs], at_least=self.digits)

    def __call__(self, x: float, pos: int | None = None) -> str:
        value = round(float(x) / self._divisor, self._decimals) + 0.0  # never "-0"
        comma = "," if self.separators else ""
        return f"{value:{comma}.{self._decimals}f}{self._suffix}"


class _UnitLocator(MaxNLocator):
    """Ticks at round numbers of the unit an ExactFormatter with the same `unit` writes
    (100 MiB, not 95.4 MiB; 1.5 min, not 50,000 ms)."""

    def __init__(self, unit: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.unit = unit

    def tick_values(self, vmin: float, vmax: float) -> Any:
        scale, _ = self.unit(max(abs(vmin), abs(vmax)))
        return super().tick_values(vmin / scale, vmax / scale) * scale


class _WholeLocator(MaxNLocator):
    """Ticks at whole numbers only (a count is never 0.5): MaxNLocator(integer=True),
    which falls back to fractions when the view holds fewer than two integers, without
    those fractions."""

    def __init__(self) -> None:
        super().__init__(integer=True)

    def tick_values(self, vmin: float, vmax: float) -> Any:
        ticks = super().tick_values(vmin, vmax)
        return ticks[abs(ticks - ticks.round()) <= 1e-9]


def _which(ax: Axes, axis: str) -> Any:
    return ax.yaxis if axis == "y" else ax.xaxis


def bytes_axis(ax: Axes, axis: str = "y") -> None:
    """Byte ticks at round numbers of one binary unit (KiB, MiB, GiB: fmt.size's), each
    labelled with its value in that unit (1.25 GiB, never 1.2 GiB)."""
    target = _which(ax, axis)
    target.set_major_locator(_UnitLocator(_binary_unit, nbins=6, steps=[1, 2, 2.5, 5, 10]))
    target.set_major_formatter(ExactFormatter(_binary_unit))


def count_axis(ax: Axes, axis: str = "y") -> None:
    """Counts with thousands separators (30,000), ticked at whole numbers only: a range
    of a few counts would otherwise be ticked at 0.5 and labelled 0, 0, 1, 2, 2, 3."""
    which = _which(ax, axis)
    which.set_major_locator(_WholeLocator())
    which.set_major_formatter(ExactFormatter())


def number_axis(ax: Axes, axis: str = "y") -> None:
    """Plain numbers with thousands separators and the decimals their ticks need."""
    _which(ax, axis).set_major_formatter(ExactFormatter())


def pct_axis(ax: Axes, axis: str = "y", digits: int = 0) -> None:
    """Fractions as percents (0.025: "2.5 %"), with at least `digits` decimals and as many
    more as the ticks need to be stated exactly."""
    _which(ax, axis).set_major_formatter(ExactFormatter(_percent, digits=digits, separators=False))


def ms_axis(ax: Axes, axis: str = "y") -> None:
    """Milliseconds in one unit per axis (ms, s, min or h: fmt.ms's for its largest
    value), ticked at round numbers of it and labelled exactly (1.25 s, never 1.2 s)."""
    target = _which(ax, axis)
    target.set_major_locator(_UnitLocator(_time_unit, nbins="auto", steps=[1, 2, 2.5, 5, 10]))
    target.set_major_formatter(ExactFormatter(_time_unit))


# the lsops text formats a chart may pass for its ticks (bar_ranked's `formatter`), and
# the axis that writes the same text exactly at any tick
_EXACT_AXES = {
    fmt.integer: count_axis,
    fmt.pct: pct_axis,
    fmt.ms: ms_axis,
    fmt.size: bytes_axis,
    fmt.number: number_axis,
}


# --- building blocks ---------------------------------------------------------------------------


def utc_axis(ax: Axes, label: str = "time (UTC)") -> None:
    """Concise date ticks in UTC and an axis label saying so."""
    locator = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    ax.set_xlabel(label)


class _SettledFormatter(Formatter):
    """A formatter answering each set of tick values with the labels (and the offset
    text) its `inner` formatter gave them the first time: the very same texts, without
    recomputing them (a concise date formatter converts every tick to a calendar date
    and chooses a level each time matplotlib asks: dozens of times per rendering)."""

    def __init__(self, inner: Formatter) -> None:
        self.inner = inner
        self._memo: dict[tuple[float, ...], tuple[list[str], str]] = {}
        self._offset = ""

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs: Any) -> None:
        super().set_locs(locs)
        self.inner.set_locs(locs)

    def format_ticks(self, values: Any) -> list[str]:
        key = tuple(float(v) for v in values)
        if key not in self._memo:
            labels = list(self.inner.format_ticks(values))
            self._memo[key] = (labels, self.inner.get_offset())
        labels, self._offset = self._memo[key]
        return list(labels)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.inner(x, pos)

    def format_data(self, value: float) -> str:
        return self.inner.format_data(value)

    def format_data_short(self, value: float) -> str:
        return self.inner.format_data_short(value)

    def get_offset(self) -> str:
        return self._offset


def settle_date_ticks(fig: Any) -> None:
    """Once a figure's time axes have their final limits: the ticks their date locators
    pick now, kept fixed, and their labels computed once (the very same ticks and texts,
    drawn the same). Matplotlib asks an axis for its ticks and labels dozens of times per
    rendering (layout, tight bounding box, shared axes, the drawing itself) and a date
    locator recomputes a calendar rule each time, its formatter a calendar date per tick."""
    for ax in fig.axes:
        locator = ax.xaxis.get_major_locator()
        if isinstance(locator, mdates.AutoDateLocator):
            ax.xaxis.set_major_locator(FixedLocator(locator()))
            formatter = ax.xaxis.get_major_formatter()
            if isinstance(formatter, mdates.ConciseDateFormatter):
                ax.xaxis.set_major_formatter(_SettledFormatter(formatter))


def _nothing_above(ax: Axes) -> bool:
    """True when matplotlib's automatic title placement leaves the title at the top of
    `ax`: no tick, tick label or axis label above it, no axes inside it, and a y axis
    whose formatter writes no offset text (a ScalarFormatter's "1e6", top left: where a
    left title is)."""
    ticks = ax.xaxis.get_tick_params(which="major")
    return (
        not ticks.get("top", True)
        and not ticks.get("labeltop", True)
        and ax.xaxis.get_label_position() == "bottom"
        and not ax.child_axes
        and not isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter)
    )


def settle_titles(fig: Any) -> None:
    """Once a figure is drawn: each title with nothing above its axes placed at the top
    of them, where matplotlib's automatic placement puts it (the very same picture),
    without that placement searching every axis's tick labels for something above the
    axes at each of the dozens of times a rendering lays the figure out."""
    for ax in fig.axes:
        if not _nothing_above(ax):
            continue
        for loc in ("left", "center", "right"):
            text = ax.get_title(loc=loc)
            if text:
                ax.set_title(text, loc=loc, y=1.0)


def target_line(
    ax: Axes, value: float | None, label: str | None = None, *, axis: str = "y"
) -> None:
    """A dashed line at a target (or threshold), labelled in the legend."""
    if value is None:
        return
    draw = ax.axhline if axis == "y" else ax.axvline
    draw(
        value, color=TARGET_COLOR, linestyle="--", linewidth=1.2, label=label or f"target {value:g}"
    )


def mark_events(ax: Axes, times: Iterable[Any], label: str = "restart") -> int:
    """Dotted vertical lines at `times` (restarts, resets); one legend entry. Returns the count."""
    count = 0
    for when in times:
        if when is None or pd.isna(when):
            continue
        ax.axvline(
            pd.Timestamp(when),
            color=EVENT_COLOR,
            linestyle=":",
            linewidth=1.2,
            label=label if count == 0 else None,
        )
        count += 1
    return count


def shade(ax: Axes, start: Any, end: Any, label: str | None = None, *, color: str = BAD) -> None:
    """A translucent band over a window (an incident, a gap in collection)."""
    ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=color, alpha=0.12, label=label)


def _finish(ax: Axes, title: str, ylabel: str | None) -> None:
    ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    handles, labels = ax.get_legend_handles_labels()
    if any(lbl and not lbl.startswith("_") for lbl in labels):
        ax.legend(loc="best")


def timeseries(
    ax: Axes | None,
    df: pd.DataFrame,
    x: str,
    y: str | Sequence[str],
    title: str,
    *,
    target: float | None = None,
    target_label: str | None = None,
    ylabel: str | None = None,
    labels: Sequence[str] | None = None,
    kind: str = "line",
) -> Axes:
    """One or more series over UTC time, with an optional dashed target line.

    `kind`: "line" or "step" (counters per interval). Missing values stay gaps.
    """
    ax = _axes(ax)
    columns = [y] if isinstance(y, str) else list(y)
    when = (
        pd.to_datetime(df[x], utc=True) if len(df) else pd.Series([], dtype="datetime64[ns, UTC]")
    )
    for index, column in enumerate(columns):
        label = labels[index] if labels else (column if len(columns) > 1 else None)
        if kind == "step":
            ax.step(when, df[column], where="post", label=label)
        else:
            ax.plot(when, df[column], label=label)
    target_line(ax, target, target_label)
    utc_axis(ax)
    _finish(ax, title, ylabel)
    return ax


# a per-scrape series longer than this is drawn as hourly aggregates: a month of one-minute
# scrapes is 43,200 points, ~40 per pixel of a 10-inch chart (slow to draw, no more legible)
DENSE_POINTS = 3000


def hourly_spread(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """`y` per UTC hour of `x`: columns ts, median, max (hours without values are NaN,
    gaps in a line)."""
    when = pd.to_datetime(df[x], utc=True)
    values = pd.Series(pd.to_numeric(df[y], errors="coerce").astype(float).to_numpy(), index=when)
    hourly = values.sort_index().resample("1h").agg(["median", "max"])
    return hourly.rename_axis("ts").reset_index()


def dense_timeseries(
    ax: Axes | None,
    df: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    *,
    ylabel: str | None = None,
    limit: int = DENSE_POINTS,
) -> Axes:
    """`timeseries` of one per-scrape column; beyond `limit` points, its hourly median
    as the line and the hourly maximum as a thin lighter line above it (every peak
    stays visible, the chart stays cheap to draw)."""
    if len(df) <= limit:
        return timeseries(ax, df, x, y, title, ylabel=ylabel)
    ax = _axes(ax)
    hourly = hourly_spread(df, x, y)
    ax.plot(
        hourly["ts"], hourly["max"], color=COLORS[0], alpha=0.35, linewidth=0.9, label="hourly max"
    )
    ax.plot(hourly["ts"], hourly["median"], color=COLORS[0], label="hourly median")
    utc_axis(ax)
    _finish(ax, title, ylabel)
    return ax


def bar_ranked(
    ax: Axes | None,
    df: pd.DataFrame,
    label: str,
    value: str,
    title: str,
    *,
    top: int = 10,
    target: float | None = None,
    target_label: str | None = None,
    xlabel: str | None = None,
    formatter: Any = None,
) -> Axes:
    """Horizontal bars, largest first at the top (endpoints by errors, tables by size).
    `formatter`: the values' text; an lsops format (fmt.integer, fmt.pct, fmt.ms, fmt.size,
    fmt.number) labels the ticks as its axis function does, each tick stated exactly."""
    data = df.nlargest(top, value) if len(df) else df
    ax = _axes(ax, height=max(2.0, 0.4 * len(data) + 1.2))
    names = [str(v) for v in data[label]][::-1]
    values = list(data[value])[::-1]
    colors = [BAD if target is not None and v > target else COLORS[0] for v in values]
    ax.barh(names, values, color=colors)
    target_line(ax, target, target_label, axis="x")
    if formatter in _EXACT_AXES:  # an lsops format: its axis, which states every tick exactly
        _EXACT_AXES[formatter](ax, "x")
    elif formatter is not None:  # any other: the caller's ticks must be values it states
        ax.xaxis.set_major_formatter(_tick(formatter))
    ax.grid(axis="y", visible=False)
    if xlabel:
        ax.set_xlabel(xlabel)
    _finish(ax, title, None)
    return ax


# --- tables --------------------------------------------------------------------------------------

# a cell that reads as a number: '1,234', '-0.5', '12 %', '< 0.1 %', '0.18x', '3.2 MiB',
# '1 h 05 min', '8 of 9'; not a date (2026-10-01), a UUID (1affa469-...) or a sentence
_NUMERIC_CELL = re.compile(r"^([<>≤≥]\s?)?[+\-−]?\d[\d,]*(\.\d+)?(x|%|\s\S.{0,19})?$")
_DATE_CELL = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?( UTC)?$")
_EMPTY_CELLS = frozenset({"", "–", "-", "None", "nan", "NaT"})


def _all_match(texts: Iterable[Any], pattern: re.Pattern[str]) -> bool:
    seen = False
    for text in texts:
        text = str(text).strip()
        if text in _EMPTY_CELLS:
            continue
        if not pattern.match(text):
            return False
        seen = True
    return seen


def _blank(texts: Iterable[Any]) -> bool:
    """Only dashes (a change with nothing to compare with): aligned as the numbers it would be."""
    return all(str(text).strip() in _EMPTY_CELLS for text in texts)


def numeric_text(texts: Iterable[Any]) -> bool:
    """True when every non-empty text of a column reads as a number (and one does)."""
    return _all_match(texts, _NUMERIC_CELL)


def table_markup(texts: pd.DataFrame) -> str:
    """A frame of display texts as an HTML table, every cell ESCAPED: numbers right-aligned,
    text left-aligned, numbers and dates never wrapped (a `<style>` scoped by a class naming
    the column pattern: the HTML export's sanitizer keeps both, the headers stay plain
    `<th>`)."""
    pattern = "".join(
        "r"
        if numeric_text(texts[c]) or _blank(texts[c])
        else ("d" if _all_match(texts[c], _DATE_CELL) else "l")
        for c in texts.columns
    )
    name = f"lsops-align-{pattern}" if pattern else "lsops-align"
    markup = texts.to_html(index=False, escape=True, border=0, classes=f"lsops-table {name}")

    def cells(kinds: str, *, headers: bool = True) -> str:
        return ", ".join(
            f"table.{name}.lsops-table {cell}:nth-child({i + 1})"
            for i, kind in enumerate(pattern)
            if kind in kinds
            for cell in (("th", "td") if headers else ("td",))
        )

    rules = []
    if "l" in pattern or "d" in pattern:
        rules.append(f"{cells('ld')} {{text-align: left;}}")
    if "r" in pattern or "d" in pattern:
        rules.append(f"{cells('rd', headers=False)} {{white-space: nowrap;}}")
    return f"<style>{html.escape(' '.join(rules), quote=False)}</style>{markup}"


def memory_lines(
    ax: Axes,
    frame: pd.DataFrame,
    title: str,
    *,
    limit_bytes: float | None = None,
    fraction: float | None = None,
    restarts: Any = None,
    climbs: pd.DataFrame | None = None,
) -> Axes:
    """RSS per scrape (`frame`: ts, rss) on `ax`: the memory target (`fraction` of
    `limit_bytes`) when the curve comes near it, `restarts` (instants) dotted, the steady
    climbs (`climbs`: climb_start / climb_end, else start / end) shaded "possible leak".
    The one memory chart of the review and the postmortem."""
    dense_timeseries(ax, frame, "ts", "rss", title, ylabel="RSS")
    if limit_bytes and fraction:
        limit = limit_bytes * fraction
        if (
            float(frame["rss"].max()) > limit * 0.5
        ):  # only when the line would not flatten the curve
            target_line(ax, limit, f"{fmt.exact_pct(fraction)} of {fmt.size(limit_bytes)}")
    if restarts is not None and len(restarts):
        mark_events(ax, restarts, "restart / reset")
    for i, seg in enumerate((climbs if climbs is not None else pd.DataFrame()).to_dict("records")):
        # the steady climb itself when the analysis found where it starts and ends (the
        # span the texts say: `analysis.memory.climb_span`, loaded with the analysis)
        start, end = seg.get("climb_start"), seg.get("climb_end")
        if fmt.missing(start) or fmt.missing(end):
            start, end = seg["start"], seg["end"]
        else:
            from ..analysis.memory import climb_span

            start, end = climb_span(seg)
        shade(ax, start, end, "possible leak" if i == 0 else None)
    bytes_axis(ax)
    _, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(loc="best")
    return ax
