"""Presentation helpers of the monthly review and the incident postmortem notebooks.

The notebooks stay sentences of the report (`show_summary(review)`); this module turns
the analysis bundles (`lsops_lib.analysis.review`) into escaped HTML, charts in the
shared look (`lsops_lib.plots`) and a machine-readable block of key figures.

Rules kept here, once:

- Every piece of text that comes from data (endpoint names, error messages, titles,
  failure reasons) is escaped with `html.escape` or rendered by `DataFrame.to_html(
  escape=True)`; no HTML is ever built from data without escaping.
- A section whose data is missing or whose source is down shows a visible box saying
  what is missing and why (`unavailable`), never a traceback: every `show_*` function is
  guarded (`guarded`), and a failure is recorded in `PROBLEMS` (listed in the key figures).
- No SQL, HTTP or business rule here: figures come from `lsops_lib.analysis`, database
  facts from `lsops_lib.db`.

Key figures: `key_figures(dict)` displays one `application/json` output (with a
`text/plain` twin for people) whose output metadata and cell tag are `KEY_FIGURES_TAG`;
`read_key_figures(notebook)` gets it back from an executed notebook (tests, schedulers).
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import plots
from .config import Settings, Thresholds, redact_url
from .times import parse_month, parse_time, previous_month, utcnow

KEY_FIGURES_TAG = "lsops-key-figures"
TO_BE_WRITTEN = "TO BE WRITTEN BY THE INCIDENT OWNER"
DASH = "–"

# sections that failed or were unavailable during this kernel's run: listed in the key figures
PROBLEMS: list[dict[str, str]] = []


# --- display ------------------------------------------------------------------------------------


def begin() -> None:
    """A report's first cell: the lsops chart look, and no problem left from an earlier run
    in the same kernel (JupyterLab re-runs)."""
    plots.apply_style()
    PROBLEMS.clear()


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


# --- human formatting ---------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


fmt_pct = plots.fmt_pct
fmt_ms = plots.fmt_ms
fmt_bytes = plots.fmt_bytes


def fmt_int(value: Any) -> str:
    return DASH if _missing(value) else f"{int(value):,}"


def fmt_num(value: Any, digits: int = 3) -> str:
    if _missing(value):
        return DASH
    return plots.fmt_number(value, digits)  # never 1.041e+04 nor 2.4e-05


def fmt_ts(value: Any, *, seconds: bool = False) -> str:
    """`2026-10-02 02:00 UTC`."""
    if _missing(value):
        return DASH
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def fmt_duration(seconds: Any) -> str:
    """2400 -> `40 min`; 3900 -> `1 h 05 min`; 90000 -> `1 d 1 h`; 0 -> `0 min`."""
    if _missing(seconds):
        return DASH
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    minutes = int(round(s / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def fmt_hours(seconds: Any) -> str:
    return DASH if _missing(seconds) else f"{float(seconds) / 3600:,.1f} h"


def fmt_rel(value: Any) -> str:
    """A relative change: 0.08 -> `+8.0 %`."""
    if _missing(value) or not math.isfinite(float(value)):
        return DASH
    return f"{float(value) * 100:+.1f} %"


def fmt_pp(value: Any) -> str:
    """A difference of fractions in percentage points: 0.0027 -> `+0.27 pp`."""
    if _missing(value):
        return DASH
    return f"{float(value) * 100:+.2f} pp"


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
    head = f"<h4>{esc(title)}</h4>" if title else ""
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


# --- key figures ----------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Figures -> JSON: NaN/NaT -> None, timestamps -> ISO 8601 `Z`, numpy -> Python."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict("records")]
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta | pd.Timedelta):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value if isinstance(value, str) else str(value)


def key_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """Display the report's key figures as one JSON output (tagged), and return them."""
    data = jsonable({**figures, "problems": list(PROBLEMS)})
    text = json.dumps(data, indent=1, ensure_ascii=False)
    markup = (
        f"<details><summary>Key figures as JSON ({len(data)} entries; the notebook keeps them as "
        f"the application/json output tagged {KEY_FIGURES_TAG})</summary><pre>{esc(text)}</pre>"
        "</details>"
    )
    _display(
        {"application/json": data, "text/html": markup, "text/plain": text},
        raw=True,
        metadata={"application/json": {"lsops": KEY_FIGURES_TAG}, "lsops": KEY_FIGURES_TAG},
    )
    return data


def read_key_figures(nb: Any) -> dict[str, Any]:
    """The key figures of an executed notebook (a NotebookNode, a dict or a path)."""
    if isinstance(nb, str | Path):
        nb = json.loads(Path(nb).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata") or {}
            tagged = meta.get("lsops") == KEY_FIGURES_TAG or KEY_FIGURES_TAG in cell.get(
                "metadata", {}
            ).get("tags", [])
            data = output.get("data") or {}
            if tagged and "application/json" in data:
                value = data["application/json"]
                return json.loads(value) if isinstance(value, str) else dict(value)
    raise KeyError("no key figures in this notebook")


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
    from .store import Store

    url = url or (settings.store_url if settings is not None else None)
    shown = redact_url(url) if url else None
    problem: str | None = None
    if not url:
        problem = "no store configured (LSOPS_STORE or [store] url in lsops.toml)"
    elif url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).expanduser().exists():
        problem = f"the store {shown} does not exist: run 'lsops collect' first"
    else:
        try:
            store = Store(url)
            try:
                extent = store.extent()
            except Exception:  # noqa: BLE001 - an unreadable store is an empty one here
                extent = None
            return StoreSource(store=store, url=shown, available=True, extent=extent)
        except Exception as exc:  # noqa: BLE001 - shown in the report
            problem = _scrub(f"cannot open the store {shown}: {exc}".splitlines()[0], settings)
    tmp = tempfile.TemporaryDirectory(prefix="lsops-empty-store-")
    store = Store(f"sqlite:///{Path(tmp.name) / 'empty.sqlite'}")
    return StoreSource(store=store, url=shown, available=False, problem=problem, _tmp=tmp)


def resolve_target(source: StoreSource, target: str | None, settings: Settings) -> str | None:
    """The API target to report on: `target` when given; else, when the store holds several
    targets, the settings' target (figures of different APIs are never mixed); else None
    (the store's only target)."""
    if target:
        return target
    try:
        known = source.store.targets()
    except Exception:  # noqa: BLE001 - an unreadable store has no targets to choose from
        return None
    if len(known) > 1 and settings.target.name in known:
        return settings.target.name
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


# --- the monthly review -----------------------------------------------------------------------


def load_review(
    source: StoreSource,
    month: str,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    include_monitoring: bool = False,
) -> Any:
    """`monthly_review(...)`, or None with an "unavailable" box when it cannot be computed."""
    from .analysis import monthly_review

    try:
        return monthly_review(
            source.store,
            month,
            thresholds,
            target=target,
            include_monitoring=bool(include_monitoring),
        )
    except Exception as exc:  # noqa: BLE001
        unavailable(
            "Monthly review", f"the figures could not be computed: {type(exc).__name__}: {exc}"
        )
        return None


def _need(bundle: Any, section: str) -> bool:
    if bundle is None:
        unavailable(section, "the figures could not be computed (see above)", record=False)
        return False
    return True


_TARGET_FORMAT = {
    "availability": fmt_pct,
    "error_rate": lambda v: fmt_pct(v, 2),
    "latency": fmt_pct,
    "cache_hit_rate": fmt_pct,
    "memory": lambda v: f"{fmt_pct(v, 0)} of the limit" if not _missing(v) else DASH,
}
_TARGET_NAMES = {
    "availability": "Availability",
    "error_rate": "Error rate",
    "latency": "Latency (time slices)",
    "cache_hit_rate": "Cache hit rate",
    "memory": "Memory",
}


def targets_frame(review: Any) -> pd.DataFrame:
    """The runbook's targets as text: target, runbook target, figure, verdict, detail."""
    rows = []
    for r in review.targets.to_dict("records"):
        rows.append(
            {
                "target": _TARGET_NAMES.get(r["key"], r["key"]),
                "runbook target": r["target"],
                "figure this month": _TARGET_FORMAT.get(r["key"], _default_format)(r["figure"]),
                "verdict": status_label(r["met"]),
                "detail": _separate_thousands(r["detail"]),
            }
        )
    return pd.DataFrame(rows)


_BARE_COUNT = re.compile(r"(?<![\w.,:/+-])(\d{4,})(?= [A-Za-z])")


def _separate_thousands(text: Any) -> Any:
    """'9125 errors of 1040608 requests' -> '9,125 errors of 1,040,608 requests' (a count
    followed by a word; years like 2026 are left alone)."""
    if not isinstance(text, str):
        return text
    return _BARE_COUNT.sub(lambda m: m[1] if 1900 <= int(m[1]) <= 2100 else f"{int(m[1]):,}", text)


def _budget_row(name: str, budget: Mapping[str, Any], unit: str) -> dict[str, Any]:
    return {
        "SLO": name,
        "objective": fmt_pct(budget["slo"], 2 if budget["slo"] > 0.99 else 1),
        "events": f"{fmt_int(budget['total'])} {unit}",
        "bad events": fmt_num(budget["bad"], 6),
        "allowed bad events": fmt_num(budget["budget_events"], 4),
        "budget spent": fmt_pct(budget["spent_share"], 0),
        "budget left": fmt_pct(budget["left_share"], 0),
        "burn rate": DASH if _missing(budget["burn_rate"]) else f"{budget['burn_rate']:.2f}x",
        "budget (time)": fmt_hours(budget.get("budget_s")),
        "spent (time)": fmt_hours(budget.get("spent_s")),
    }


def budget_frame(review: Any) -> pd.DataFrame:
    """Error budgets of the three objectives, formatted."""
    return pd.DataFrame(
        [
            _budget_row("availability (health OK)", review.error_budget, "observations"),
            _budget_row("requests without error", review.request_budget, "requests"),
            _budget_row("latency (time slices)", review.latency_budget, "slices"),
        ]
    )


_CHANGE_FORMAT: dict[str, tuple[str, Callable[[Any], str], Callable[[Any], str]]] = {
    "requests": ("Requests", fmt_int, fmt_rel),
    "requests_per_day": ("Requests per covered day", lambda v: fmt_num(v, 5), fmt_rel),
    "coverage": ("Coverage of the month by the collector", fmt_pct, fmt_pp),
    "errors": ("Errors", fmt_int, fmt_rel),
    "error_rate": ("Error rate", lambda v: fmt_pct(v, 2), fmt_pp),
    "mean_ms": ("Mean latency (counter deltas)", fmt_ms, fmt_rel),
    "availability": ("Availability", lambda v: fmt_pct(v, 2), fmt_pp),
    "latency_share": ("Slices whose reported p95 met the target", fmt_pct, fmt_pp),
    "cache_hit_ratio": ("Cache hit rate", fmt_pct, fmt_pp),
}


_RELATIVE = {"requests", "requests_per_day", "errors", "mean_ms"}


def changes_frame(review: Any) -> pd.DataFrame:
    rows = []
    for r in review.changes.to_dict("records"):
        name, fmt, fmt_change = _CHANGE_FORMAT.get(
            r["metric"], (r["metric"], _default_format, fmt_rel)
        )
        relative = r["metric"] in _RELATIVE or r["metric"] not in _CHANGE_FORMAT
        rows.append(
            {
                "figure": name,
                review.month: fmt(r["current"]),
                review.previous_month: fmt(r["previous"]),
                "change": fmt_change(r["relative_change"] if relative else r["change"]),
            }
        )
    return pd.DataFrame(rows)


def main_changes(review: Any, *, limit: int = 5) -> list[str]:
    """Sentences on what moved most against the previous month."""
    if review.previous_totals.get("requests", 0) == 0 and (
        _missing(review.previous_totals.get("availability"))
    ):
        return [f"no data for {review.previous_month}: nothing to compare with"]
    out: list[str] = []
    ch = review.changes.set_index("metric")
    volume = "requests_per_day" if "requests_per_day" in ch.index else "requests"
    if volume in ch.index and not _missing(ch.loc[volume, "relative_change"]):
        per = " per covered day" if volume == "requests_per_day" else ""
        out.append(
            f"traffic{per} {fmt_rel(ch.loc[volume, 'relative_change'])} "
            f"({fmt_int(ch.loc['requests', 'current'])} requests in the month)"
        )
    for metric, label in (
        ("error_rate", "error rate"),
        ("availability", "availability"),
        ("cache_hit_ratio", "cache hit rate"),
    ):
        if (
            metric in ch.index
            and not _missing(ch.loc[metric, "change"])
            and abs(ch.loc[metric, "change"]) >= 0.001
        ):
            out.append(
                f"{label} {fmt_pp(ch.loc[metric, 'change'])} ({fmt_pct(ch.loc[metric, 'previous'], 2)} -> {fmt_pct(ch.loc[metric, 'current'], 2)})"
            )
    if (
        "mean_ms" in ch.index
        and not _missing(ch.loc["mean_ms", "relative_change"])
        and abs(ch.loc["mean_ms", "relative_change"]) >= 0.05
    ):
        out.append(
            f"mean latency {fmt_rel(ch.loc['mean_ms', 'relative_change'])} ({fmt_ms(ch.loc['mean_ms', 'previous'])} -> {fmt_ms(ch.loc['mean_ms', 'current'])})"
        )
    eps = review.endpoints
    if not eps.empty:
        worse = eps[(eps["error_rate_change"] > 0.005) & (eps["requests"] > 0)].sort_values(
            "error_rate_change", ascending=False
        )
        for r in worse.head(2).to_dict("records"):
            out.append(
                f"{r['endpoint']}: error rate {fmt_pp(r['error_rate_change'])} ({fmt_pct(r['error_rate'], 2)})"
            )
        slower = eps[(eps["mean_ms_change"] > 0.2) & (eps["requests"] > 0)].sort_values(
            "mean_ms_change", ascending=False
        )
        for r in slower.head(2).to_dict("records"):
            out.append(
                f"{r['endpoint']}: mean latency {fmt_rel(r['mean_ms_change'])} ({fmt_ms(r['prev_mean_ms'])} -> {fmt_ms(r['mean_ms'])})"
            )
        new = eps[eps["new"] & (eps["requests"] > 0)]
        if not new.empty:
            out.append("new endpoints: " + ", ".join(str(e) for e in new["endpoint"].head(5)))
    return out[:limit] or ["no notable change against the previous month"]


@guarded("Summary")
def show_summary(review: Any, source: StoreSource) -> None:
    """The headline: data or not, each target met/missed, error budgets, main changes."""
    if not _need(review, "Summary"):
        return
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    if not review.has_data:
        where = source.describe()
        unavailable(
            "Data",
            f"no observation was collected in {review.month} ({where}). Every figure below "
            "is unknown rather than zero; run 'lsops collect --every 5m' to build a history.",
        )
    t = review.targets
    known = t[t["met"].map(lambda v: v is not None and not _missing(v))]
    met = int(known["met"].astype(bool).sum())
    missed = [
        _TARGET_NAMES.get(k, k) for k, m in zip(t["key"], t["met"], strict=True) if m is False
    ]
    headline = f"{met} of {len(t)} runbook targets met in {month_title(review.month)}"
    if known.empty:
        headline = f"No runbook target could be judged for {month_title(review.month)}: no data"
    elif len(known) < len(t):
        headline += f" ({len(t) - len(known)} unknown)"
    if missed:
        headline += "; missed: " + ", ".join(missed)
    parts = [f"<h3>{esc(headline)}</h3>", "<ul>"]
    for r in t.to_dict("records"):
        figure = _TARGET_FORMAT.get(r["key"], _default_format)(r["figure"])
        parts.append(
            f"<li>{badge_html(r['met'])} <strong>{esc(_TARGET_NAMES.get(r['key'], r['key']))}</strong>: "
            f"{esc(figure)} (target: {esc(r['target'])})</li>"
        )
    parts.append("</ul>")
    show_html("".join(parts))
    show_table(targets_frame(review), "Runbook targets")
    b = review.error_budget
    if not _missing(b["spent_share"]):
        verdict = (
            f"overspent by {fmt_pct(-b['left_share'], 0)}"
            if b["left_share"] < 0
            else f"{fmt_pct(b['left_share'], 0)} left"
        )
        show_text(
            f"Error budget of the availability SLO ({fmt_pct(b['slo'], 1)} of health observations OK): "
            f"{fmt_pct(b['spent_share'], 0)} spent, {verdict} "
            f"({fmt_num(b['bad'], 6)} bad of {fmt_int(b['total'])} observations; "
            f"budget {fmt_num(b['budget_events'], 3)} observations, about {fmt_hours(b['budget_s'])} of the month; "
            f"burn rate {b['burn_rate']:.2f}x)."
        )
    show_table(
        budget_frame(review),
        "Error budgets (budget = (1 - SLO) x period; burn rate = observed error ratio / (1 - SLO))",
    )
    show_table(changes_frame(review), f"Against the previous month ({review.previous_month})")
    show_notes(main_changes(review), title="Main changes")
    show_notes(review.notes, title="Notes")


def _month_axis(ax: Any, review: Any) -> None:
    ax.set_xlim(pd.Timestamp(review.start), pd.Timestamp(review.end))


def _daily_bars(
    ax: Any,
    review: Any,
    column: str,
    title: str,
    *,
    target: float | None = None,
    target_label: str | None = None,
    ylabel: str | None = None,
    formatter: Callable[[Any], None] | None = None,
    missed: Callable[[float], bool] | None = None,
) -> None:
    """One bar per UTC day that has observations (days without data stay empty, shaded);
    days where `missed(value)` are drawn in the "bad" colour."""
    daily = review.daily
    seen = daily[(daily["observations"] > 0) & daily[column].notna()]
    days = pd.to_datetime(seen["day"], utc=True)
    values = seen[column].astype(float)
    colors = [plots.BAD if missed is not None and missed(v) else plots.COLORS[0] for v in values]
    ax.bar(days, values, width=0.85, align="edge", color=colors)
    empty_days = pd.to_datetime(daily.loc[daily["observations"] == 0, "day"], utc=True)
    for i, day in enumerate(empty_days):
        ax.axvspan(
            day,
            day + pd.Timedelta(days=1),
            color="#9e9e9e",
            alpha=0.12,
            label="no data" if i == 0 else None,
            linewidth=0,
        )
    plots.target_line(ax, target, target_label)
    if formatter is not None:
        formatter(ax)
    plots.utc_axis(ax, "day (UTC)")
    ax.set_title(title)
    if ylabel:
        ax.set_ylabel(ylabel)
    _month_axis(ax, review)
    handles, labels = ax.get_legend_handles_labels()
    if labels:  # above the bars, right of the title: never over a bar or the target line
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, ncols=3)


@guarded("Latency")
def show_latency(review: Any) -> None:
    """The latency SLO as time slices (labelled), the percentile sanity, mean latency."""
    if not _need(review, "Latency"):
        return
    import matplotlib.pyplot as plt

    from .analysis import TIMESLICE_LABEL

    lat = review.latency
    pct = lat.get("percentiles") or {}
    th = review.thresholds
    label = TIMESLICE_LABEL.format(threshold=th.latency_p95_ms)
    rows = [
        (
            f"Share of time slices whose reported p95 met {th.latency_p95_ms:g} ms",
            fmt_pct(lat["share"]),
        ),
        (
            "Time slices (scrapes with a p95)",
            f"{fmt_int(lat['met'])} met of {fmt_int(lat['slices'])}",
        ),
        ("Objective", f"at least {fmt_pct(th.latency_slo, 0)} of slices"),
        ("Mean latency from counter deltas (all requests, weighted)", fmt_ms(lat.get("mean_ms"))),
        (
            "Server percentiles out of order (p50 > p95 or p95 > p99)",
            f"{fmt_int(pct.get('disordered'))} of {fmt_int(pct.get('snapshots'))} snapshots "
            f"({fmt_pct(pct.get('disordered_share'))})",
        ),
        ("  of which p50 > p95", fmt_int(pct.get("p50_gt_p95"))),
        ("  of which p95 > p99", fmt_int(pct.get("p95_gt_p99"))),
    ]
    show_html(facts_html(rows) + f"<p><em>Label: {esc(label)}.</em></p>")
    if not _missing(pct.get("disordered_share")) and pct.get("disordered"):
        show_text(
            "The server's percentiles are not trustworthy (reference quirk 1): no monthly p95 is "
            "given; the SLO counts slices, and mean latency comes from the counters."
        )
    daily = review.daily
    if daily["latency_slices"].sum() == 0:
        unavailable("Latency chart", "no p95 reported in this month", record=False)
        return
    days_met = int((daily["latency_met_share"] >= th.latency_slo).sum())
    days = int(daily["latency_met_share"].notna().sum())
    with plots.style():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(plots.WIDTH_IN, 6), sharex=True)
        _daily_bars(
            ax1,
            review,
            "latency_met_share",
            f"Reported p95 met {th.latency_p95_ms:g} ms in at least {fmt_pct(th.latency_slo, 0)} "
            f"of time slices on {days_met} of {days} days",
            target=th.latency_slo,
            target_label=f"objective {fmt_pct(th.latency_slo, 0)}",
            ylabel="share of slices\nwith p95 met",
            formatter=plots.pct_axis,
            missed=lambda v: v < th.latency_slo,
        )
        _daily_bars(
            ax2,
            review,
            "mean_ms",
            f"Mean latency from counter deltas: {fmt_ms(lat.get('mean_ms'))} over the month",
            ylabel="mean latency",
            formatter=plots.ms_axis,
        )
        plots.settle_date_ticks(fig)
        plt.show()


@guarded("Daily trends")
def show_daily_trends(review: Any) -> None:
    """Requests, error rate, mean latency and cache hit rate per day."""
    if not _need(review, "Daily trends"):
        return
    import matplotlib.pyplot as plt

    daily = review.daily
    th = review.thresholds
    if daily["requests"].sum() == 0 and daily["observations"].sum() == 0:
        unavailable(
            "Daily trends", f"no traffic and no observation in {review.month}", record=False
        )
        return
    with plots.style():
        fig, axes = plt.subplots(4, 1, figsize=(plots.WIDTH_IN, 11), sharex=True)
        busiest = daily.loc[daily["requests"].idxmax()]
        _daily_bars(
            axes[0],
            review,
            "requests",
            f"{fmt_int(daily['requests'].sum())} requests; busiest day "
            f"{busiest['day']:%Y-%m-%d} ({fmt_int(busiest['requests'])})",
            ylabel="requests / day",
            formatter=plots.count_axis,
        )
        with_traffic = daily[daily["requests"] > 0]
        over = int((with_traffic["error_rate"] >= th.error_rate).sum())
        _daily_bars(
            axes[1],
            review,
            "error_rate",
            f"Error rate at or above {fmt_pct(th.error_rate, 0)} on {over} of "
            f"{len(with_traffic)} days with traffic",
            target=th.error_rate,
            target_label=f"target < {fmt_pct(th.error_rate, 0)}",
            ylabel="error rate",
            formatter=lambda ax: plots.pct_axis(ax, digits=1),
            missed=lambda v: v >= th.error_rate,
        )
        slowest = (
            with_traffic.loc[with_traffic["mean_ms"].idxmax()] if not with_traffic.empty else None
        )
        _daily_bars(
            axes[2],
            review,
            "mean_ms",
            "Mean latency per day (counter deltas)"
            + (
                f"; slowest {slowest['day']:%Y-%m-%d} at {fmt_ms(slowest['mean_ms'])}"
                if slowest is not None
                else ""
            ),
            ylabel="mean latency",
            formatter=plots.ms_axis,
        )
        with_cache = daily[daily["cache_hit_ratio"].notna()]
        under = int((with_cache["cache_hit_ratio"] <= th.cache_hit_rate).sum())
        _daily_bars(
            axes[3],
            review,
            "cache_hit_ratio",
            f"Cache hit rate at or below {fmt_pct(th.cache_hit_rate, 0)} on {under} of "
            f"{len(with_cache)} days",
            target=th.cache_hit_rate,
            target_label=f"target > {fmt_pct(th.cache_hit_rate, 0)}",
            ylabel="cache hit rate",
            formatter=plots.pct_axis,
            missed=lambda v: v <= th.cache_hit_rate,
        )
        plots.settle_date_ticks(fig)
        plt.show()
    table = daily[daily["observations"] > 0]
    show_table(
        table,
        "Per day",
        {
            "day": lambda v: f"{pd.Timestamp(v):%Y-%m-%d}",
            "error_rate": lambda v: fmt_pct(v, 2),
            "mean_ms": fmt_ms,
            "cache_hit_ratio": fmt_pct,
            "availability": lambda v: fmt_pct(v, 2),
            "latency_met_share": fmt_pct,
            "peak_rss": fmt_bytes,
        },
        columns={
            "day": "day (UTC)",
            "requests": "requests",
            "errors": "errors",
            "error_rate": "error rate",
            "mean_ms": "mean latency",
            "cache_hit_ratio": "cache hit rate",
            "availability": "availability",
            "latency_met_share": "slices p95 met",
            "peak_rss": "peak RSS",
        },
        max_rows=31,
        empty="no day with observations",
    )


def _plot_memory(ax: Any, memory: Any, thresholds: Thresholds, title: str) -> None:
    frame = memory.frame
    plots.dense_timeseries(ax, frame, "ts", "rss", title, ylabel="RSS")
    limit = thresholds.memory_limit_bytes * thresholds.memory_fraction
    if frame["rss"].max() > limit * 0.5:  # only when the line would not flatten the curve
        plots.target_line(
            ax,
            limit,
            f"{fmt_pct(thresholds.memory_fraction, 0)} of {fmt_bytes(thresholds.memory_limit_bytes)}",
        )
    restarts = memory.restarts
    if not restarts.empty:
        plots.mark_events(ax, restarts["ts"], "restart / reset")
    for i, seg in enumerate(memory.leak_segments.to_dict("records")):
        # the steady climb itself when the analysis found where it starts and ends
        start, end = seg.get("climb_start"), seg.get("climb_end")
        if _missing(start) or _missing(end):
            start, end = seg["start"], seg["end"]
        plots.shade(ax, start, end, "possible leak" if i == 0 else None)
    plots.bytes_axis(ax)
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        ax.legend(loc="best")


@guarded("Memory")
def show_memory(review: Any) -> None:
    """RSS over the month with restarts marked and steady climbs flagged."""
    if not _need(review, "Memory"):
        return
    import matplotlib.pyplot as plt

    memory = review.memory
    th = review.thresholds
    if memory.frame.empty:
        unavailable("Memory", f"no memory reading in {review.month}", record=False)
        return
    leak = (
        "a steady climb between restarts: possible leak"
        if memory.leak
        else "no steady climb between restarts"
    )
    title = (
        f"Memory peaked at {fmt_bytes(memory.peak_rss)} ({fmt_pct(memory.peak_fraction, 0)} of "
        f"{fmt_bytes(memory.limit_bytes)}); {leak}"
    )
    with plots.style():
        fig, ax = plots.figure()
        _plot_memory(ax, memory, th, title)
        _month_axis(ax, review)
        plots.settle_date_ticks(fig)
        plt.show()
    show_text(
        f"{len(memory.restarts)} restarts or resets in the month. A segment between restarts is "
        f"flagged when it climbs steadily faster than {fmt_pct(memory.growth_threshold, 0)} an hour."
    )
    show_table(
        memory.segments,
        "Segments between restarts",
        {
            "rss_start": fmt_bytes,
            "rss_end": fmt_bytes,
            "slope_bytes_per_hour": lambda v: fmt_bytes(v) + "/h" if not _missing(v) else DASH,
            "growth_per_hour": lambda v: fmt_pct(v, 2) + "/h" if not _missing(v) else DASH,
            "duration_h": lambda v: fmt_num(v, 3),
            "r2": lambda v: DASH if _missing(v) else f"{float(v):.2f}",
        },
        columns={
            "start": "from",
            "end": "to",
            "points": "scrapes",
            "duration_h": "hours",
            "rss_start": "RSS at start",
            "rss_end": "RSS at end",
            "slope_bytes_per_hour": "slope",
            "growth_per_hour": "growth",
            "r2": "r²",
            "leak": "possible leak",
        },
    )


ENDPOINT_COLUMNS = {
    "endpoint": "endpoint",
    "requests": "requests",
    "requests_change": "requests vs prev.",
    "errors": "errors",
    "error_rate": "error rate",
    "error_rate_change": "error rate vs prev.",
    "mean_ms": "mean latency",
    "mean_ms_change": "mean latency vs prev.",
    "new": "new",
}
ENDPOINT_FORMATS: dict[str, Callable[[Any], str]] = {
    "requests_change": fmt_rel,
    "error_rate": lambda v: fmt_pct(v, 2),
    "error_rate_change": fmt_pp,
    "mean_ms": fmt_ms,
    "mean_ms_change": fmt_rel,
}


@guarded("Endpoints")
def show_endpoints(review: Any, *, top: int = 30) -> None:
    """Per endpoint: volume, error rate, mean latency and the change, worst first."""
    if not _need(review, "Endpoints"):
        return
    import matplotlib.pyplot as plt

    eps = review.endpoints
    current = eps[eps["requests"] > 0]
    if current.empty:
        unavailable("Endpoints", f"no request counted in {review.month}", record=False)
        return
    worst = current.iloc[0]
    show_text(
        f"Worst endpoint: {worst['endpoint']} ({fmt_int(worst['errors'])} errors of "
        f"{fmt_int(worst['requests'])} requests, {fmt_pct(worst['error_rate'], 2)}; mean {fmt_ms(worst['mean_ms'])}). "
        "Worst first: most errors, then the largest mean-latency increase, then volume."
    )
    show_table(
        eps, "Endpoints, worst first", ENDPOINT_FORMATS, columns=ENDPOINT_COLUMNS, max_rows=top
    )
    gone = eps[(eps["requests"] == 0) & (eps["prev_requests"] > 0)]
    if not gone.empty:
        show_text(
            "Seen last month, no traffic this month: " + ", ".join(str(e) for e in gone["endpoint"])
        )
    with plots.style():
        if current["errors"].sum() > 0:
            plots.bar_ranked(
                None,
                current,
                "endpoint",
                "errors",
                f"{worst['endpoint']} had the most errors ({fmt_int(worst['errors'])})",
                xlabel="errors in the month",
                formatter=fmt_int,
            )
        else:
            busiest = current.loc[current["requests"].idxmax()]
            plots.bar_ranked(
                None,
                current,
                "endpoint",
                "requests",
                f"No endpoint errors; {busiest['endpoint']} was the busiest",
                xlabel="requests in the month",
                formatter=fmt_int,
            )
        plt.show()


INCIDENT_COLUMNS = {
    "start": "start",
    "end": "end",
    "duration_s": "duration",
    "kind": "kind",
    "severity": "severity",
    "endpoint": "endpoint",
    "detail": "detail",
}


@guarded("Incidents")
def show_incidents(review: Any) -> None:
    """Incidents of the month with start, end, duration and their postmortem command."""
    if not _need(review, "Incidents"):
        return
    found = review.incidents
    if found.empty:
        show_html(box_html("No incident found in the history of this month", "", kind="good"))
        return
    by_kind = found["kind"].value_counts()
    show_text(
        f"{len(found)} incidents: "
        + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in by_kind.items())
    )
    show_table(
        found,
        "Incidents",
        {"duration_s": fmt_duration, "endpoint": lambda v: DASH if _missing(v) else str(v)},
        columns=INCIDENT_COLUMNS,
        max_rows=100,
    )
    commands = "\n".join(str(c) for c in found["postmortem_command"] if c)
    show_html(
        "<p><strong>Write a postmortem</strong> (one command per incident):</p>"
        f"<pre>{esc(commands)}</pre>"
    )


# --- database -----------------------------------------------------------------------------------


@dataclass
class DatabaseOverview:
    name: str | None
    configured: bool
    available: bool
    reason: str | None = None
    size_bytes: int | None = None
    tables: pd.DataFrame | None = None
    growth: pd.DataFrame | None = None  # ts, total_bytes, ... (snapshots of the month)
    growth_bytes: float | None = None
    embeddings: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "configured": self.configured,
            "available": self.available,
            "reason": self.reason,
            "size_bytes": self.size_bytes,
            "growth_bytes": self.growth_bytes,
        }


def database_overview(
    settings: Settings,
    database: str | None,
    source: StoreSource,
    start: datetime,
    end: datetime,
) -> DatabaseOverview:
    """Size, growth over [start, end) (from `lsops collect --db` snapshots) and embeddings
    indexing of the configured database, read-only. Never raises: a database that is not
    configured or down is `available=False` with the reason."""
    from .db import embeddings, space
    from .db.connect import connect
    from .exceptions import LsopsError

    try:
        url = settings.database(database)
    except LsopsError as exc:
        return DatabaseOverview(name=database, configured=False, available=False, reason=str(exc))
    name = database or settings.database_name or "default"
    out = DatabaseOverview(name=name, configured=True, available=False)
    try:
        snaps = space.growth(source.store, name, start, end)
        if snaps is not None and not snaps.empty:
            total = space.total_growth(snaps)
            out.growth = total
            out.growth_bytes = float(total["total_bytes"].iloc[-1] - total["total_bytes"].iloc[0])
    except Exception as exc:  # noqa: BLE001
        out.notes.append(_scrub(f"size snapshots unreadable: {exc}", settings))
    if out.growth is None:
        out.notes.append(
            "no size snapshot stored in this month: run 'lsops collect --db' daily to see growth"
        )
    try:
        insp = connect(url)
    except Exception as exc:  # noqa: BLE001 - DatabaseError and anything else: a finding
        out.reason = _scrub(
            f"cannot connect to the database {name}: {exc}".splitlines()[0], settings
        )
        return out
    out.available = True
    try:
        for what, fn in (
            ("database size", lambda: setattr(out, "size_bytes", int(space.database_size(insp)))),
            ("table sizes", lambda: setattr(out, "tables", space.table_sizes(insp))),
        ):
            try:
                fn()
            except LsopsError as exc:
                out.notes.append(_scrub(f"{what}: {exc}", settings))
        if insp.has_table("context_embeddings"):
            for key, fn2 in (
                ("by_entity_type", lambda: embeddings.by_entity_type(insp)),
                ("log", lambda: embeddings.log_by_status(insp)),
                ("coverage", lambda: embeddings.coverage(insp)),
            ):
                try:
                    out.embeddings[key] = fn2()
                except LsopsError as exc:
                    out.notes.append(_scrub(f"embeddings {key}: {exc}", settings))
        else:
            out.notes.append("no context_embeddings table: embeddings indexing not checked")
    finally:
        insp.close()
    return out


EMBEDDINGS_HEADERS = {
    "entity_type": "entity type",
    "last_indexed": "last indexed",
    "last_updated": "last updated",
    "tokens_used": "tokens used",
    "source_table": "source table",
    "null_embeddings": "NULL embeddings",
}


@guarded("Database")
def show_database(db: DatabaseOverview | None, review: Any = None) -> None:
    if db is None:
        unavailable("Database", "not inspected")
        return
    if not db.configured:
        unavailable(
            "Database",
            str(db.reason or "no database configured"),
        )
        return
    if not db.available:
        unavailable(
            "Database", f"{db.reason}. Size, tables and embeddings indexing are unknown this month."
        )
    else:
        show_html(
            facts_html(
                [
                    ("Database", db.name),
                    ("Size now", fmt_bytes(db.size_bytes)),
                    (
                        "Growth in the month (stored snapshots)",
                        fmt_bytes(db.growth_bytes) if db.growth_bytes is not None else DASH,
                    ),
                ]
            )
        )
    if db.growth is not None and len(db.growth) > 1:
        import matplotlib.pyplot as plt

        with plots.style():
            fig, ax = plots.figure(3.0)
            plots.timeseries(
                ax,
                db.growth,
                "ts",
                "total_bytes",
                f"The database grew by {fmt_bytes(db.growth_bytes)} over the month's snapshots",
                ylabel="size",
            )
            plots.bytes_axis(ax)
            if review is not None:
                _month_axis(ax, review)
            plt.show()
    if db.tables is not None:
        show_table(
            db.tables,
            "Largest tables",
            {c: fmt_bytes for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes")},
            columns={
                "schema": "schema",
                "table": "table",
                "total_bytes": "total",
                "table_bytes": "heap",
                "index_bytes": "indexes",
                "toast_bytes": "TOAST",
                "rows_estimate": "rows (estimate)",
            },
            max_rows=10,
        )
    log = db.embeddings.get("log")
    if log is not None and not log.empty and {"status", "count"} <= set(log.columns):
        counts = ", ".join(f"{int(r.count):,} {r.status}" for r in log.itertuples(index=False))
        failed = int(log.loc[log["status"] == "failed", "count"].sum())
        show_html(
            box_html(
                "Embeddings indexing log",
                counts + (" (see the DB optimization report for the failures)" if failed else ""),
                kind="warning" if failed else "good",
            )
        )
    titles = {
        "by_entity_type": "Embeddings per entity type (the runbook's weekly check)",
        "log": "Indexing log by status",
        "coverage": "Coverage: entities, embedded, missing, stale",
    }
    for key, frame in db.embeddings.items():
        show_table(
            frame,
            titles.get(key, key),
            columns={c: EMBEDDINGS_HEADERS.get(c, str(c).replace("_", " ")) for c in frame.columns},
        )
    show_notes(db.notes, title="Notes")


# --- data quality -------------------------------------------------------------------------------


@guarded("Data quality")
def show_data_quality(review: Any, source: StoreSource) -> None:
    if not _need(review, "Data quality"):
        return
    dq = review.data_quality
    rows = [
        ("Source", source.describe()),
        ("Health observations in the month", fmt_int(dq["observations"])),
        ("  without an answer", fmt_int(dq["no_answer"])),
        ("Scrape interval (median)", fmt_duration(dq["interval_s"])),
        ("Coverage of the month", fmt_pct(dq["coverage"])),
        ("Time in collection gaps (not counted as uptime)", fmt_hours(dq["gap_s"])),
        ("First / last observation", f"{fmt_ts(dq['first'])} / {fmt_ts(dq['last'])}"),
        ("Counter resets and restarts", fmt_int(len(dq["resets"]))),
        ("Server percentiles out of order", fmt_pct(dq["percentiles_disordered_share"])),
    ]
    show_html(facts_html(rows))
    show_table(
        dq["gaps"],
        "Collection gaps",
        {"duration_s": fmt_duration},
        columns={"start": "from", "end": "to", "duration_s": "duration"},
        empty="no gap in collection",
    )
    show_table(
        dq["resets"],
        "Resets and restarts (interval figures across them are lower bounds)",
        columns={"ts": "when", "kind": "kind", "target": "target"},
        empty="no reset or restart",
    )
    excluded = dq["excluded"]
    if dq.get("excluded_reason"):
        show_text(f"Excluded: {dq['excluded_reason']}.")
    show_table(
        excluded,
        "Excluded endpoints",
        columns={"endpoint": "endpoint", "requests": "requests", "errors": "errors"},
        empty="nothing excluded",
    )


def review_figures(review: Any, source: StoreSource, db: DatabaseOverview | None) -> dict[str, Any]:
    """The monthly review's key figures (JSON-able)."""
    if review is None:
        return {"report": "monthly-review", "computed": False, "store": source.describe()}
    t = review.targets
    return {
        "report": "monthly-review",
        "computed": True,
        "month": review.month,
        "previous_month": review.previous_month,
        "has_data": review.has_data,
        "store": {"available": source.available, "problem": source.problem},
        "targets": {
            r["key"]: {"figure": r["figure"], "threshold": r["threshold"], "met": r["met"]}
            for r in t.to_dict("records")
        },
        "targets_met": int(sum(1 for m in t["met"] if not _missing(m) and bool(m))),
        "totals": review.totals,
        "previous_totals": review.previous_totals,
        "error_budget": {
            k: review.error_budget[k]
            for k in ("spent_share", "left_share", "burn_rate", "bad", "total")
        },
        "request_budget": {
            k: review.request_budget[k] for k in ("spent_share", "left_share", "burn_rate")
        },
        "latency": {
            "timeslice_share": review.latency["share"],
            "slices": review.latency["slices"],
            "met": review.latency["met"],
            "mean_ms": review.latency.get("mean_ms"),
            "percentiles_disordered": (review.latency.get("percentiles") or {}).get("disordered"),
            "percentiles_disordered_share": (review.latency.get("percentiles") or {}).get(
                "disordered_share"
            ),
        },
        "endpoints_worst_first": [str(e) for e in review.endpoints["endpoint"]]
        if not review.endpoints.empty
        else [],
        "incidents": [
            {k: r.get(k) for k in ("kind", "start", "end", "duration_s", "endpoint", "severity")}
            for r in review.incidents.to_dict("records")
        ],
        "memory": {
            "leak": review.memory.leak,
            "peak_rss": review.memory.peak_rss,
            "restarts": len(review.memory.restarts),
        },
        "data_quality": {
            "observations": review.data_quality["observations"],
            "coverage": review.data_quality["coverage"],
            "gap_s": review.data_quality["gap_s"],
            "gaps": len(review.data_quality["gaps"]),
            "resets": len(review.data_quality["resets"]),
            "excluded": [str(e) for e in review.excluded["endpoint"]]
            if not review.excluded.empty
            else [],
        },
        "database": db.figures() if db is not None else None,
        "notes": review.notes,
    }


# --- the postmortem -----------------------------------------------------------------------------


@dataclass
class Window:
    start: datetime
    end: datetime
    title: str
    how: str  # how the window was chosen


def choose_window(
    source: StoreSource,
    thresholds: Thresholds,
    *,
    start: Any = None,
    end: Any = None,
    title: str | None = None,
    target: str | None = None,
    margin: timedelta = timedelta(minutes=30),
    lookback: timedelta = timedelta(days=30),
) -> Window:
    """The incident window. Given start and end: them. Otherwise the most recent incident
    (not a bare restart) in the last `lookback` of the history, with `margin` around it;
    without one, the last 24 h of the history (or before now when the store is empty)."""
    from .analysis import incidents

    if start is not None and end is not None:
        s, e = parse_time(start), parse_time(end)
        return Window(s, e, title or f"Incident {fmt_ts(s)}", "the window given")
    if start is not None:
        s = parse_time(start)
        return Window(
            s,
            s + timedelta(hours=24),
            title or f"Incident {fmt_ts(s)}",
            "start given; end = start + 24 h",
        )
    if end is not None:
        e = parse_time(end)
        return Window(
            e - timedelta(hours=24),
            e,
            title or f"Incident before {fmt_ts(e)}",
            "end given; start = end - 24 h",
        )
    last = source.extent[1].to_pydatetime() if source.extent else utcnow()
    if source.extent:
        found = incidents(
            source.store, last - lookback, last + timedelta(seconds=1), thresholds, target=target
        )
        found = found[found["kind"] != "restart"] if not found.empty else found
        if not found.empty:
            row = found.sort_values("start").iloc[-1]
            s = pd.Timestamp(row["start"]).to_pydatetime() - margin
            e = pd.Timestamp(row["end"]).to_pydatetime() + margin
            where = f" on {row['endpoint']}" if isinstance(row.get("endpoint"), str) else ""
            name = f"{str(row['kind']).replace('_', ' ')}{where} {fmt_ts(row['start'])}"
            return Window(
                s, e, title or name, "the most recent incident in the history (no window given)"
            )
    return Window(
        last - timedelta(hours=24),
        last + timedelta(seconds=1),
        title or "Last 24 hours of the history",
        "no window given and no incident found: the last 24 h of the history",
    )


def load_postmortem(
    source: StoreSource,
    window: Window,
    thresholds: Thresholds,
    *,
    target: str | None = None,
    baseline_hours: float = 24.0,
    sample_errors: int = 20,
) -> Any:
    from .analysis import postmortem

    try:
        return postmortem(
            source.store,
            window.start,
            window.end,
            thresholds,
            baseline=timedelta(hours=float(baseline_hours)),
            title=window.title,
            target=target,
            sample_errors=int(sample_errors),
        )
    except Exception as exc:  # noqa: BLE001
        unavailable("Postmortem facts", f"could not be computed: {type(exc).__name__}: {exc}")
        return None


@guarded("Header")
def show_postmortem_header(pm: Any, window: Window, severity: str, source: StoreSource) -> None:
    title = window.title
    rows = [
        ("Severity", severity),
        ("API target", (pm.target if pm is not None else None) or "every target in the store"),
        ("Window examined", f"{fmt_ts(window.start)} to {fmt_ts(window.end)} ({window.how})"),
        (
            "Baseline",
            f"{fmt_ts(pm.baseline_start)} to {fmt_ts(pm.baseline_end)}" if pm is not None else DASH,
        ),
        (
            "Status",
            "DRAFT: facts filled from the metrics history; the marked sections are for the incident owner",
        ),
        ("Authors / incident owner", TO_BE_WRITTEN),
        ("Data", source.describe()),
        ("Generated", fmt_ts(utcnow())),
    ]
    show_html(f"<h2>{esc(title)}</h2>" + facts_html(rows))
    if not source.available:
        unavailable("Metrics store", source.problem or "unknown")
    elif pm is not None and pm.availability.observations == 0:
        unavailable(
            "Data",
            f"no observation in the window ({source.describe()}): every figure below is unknown",
        )


def _impact_sentence(pm: Any) -> str:
    if pm.impact_start is None:
        return (
            f"No threshold breach found between {fmt_ts(pm.start)} and {fmt_ts(pm.end)}: "
            f"{fmt_int(pm.failed)} of {fmt_int(pm.requests)} requests failed in the whole window."
        )
    kinds = (
        pm.incidents[pm.incidents["kind"] != "restart"] if not pm.incidents.empty else pm.incidents
    )
    what = ", ".join(
        sorted(
            {
                str(k).replace("_", " ") + (f" on {e}" if isinstance(e, str) else "")
                for k, e in zip(kinds["kind"], kinds["endpoint"], strict=True)
            }
        )
    )
    top = pm.endpoints.iloc[0]["endpoint"] if not pm.endpoints.empty else None
    text = (
        f"From {fmt_ts(pm.impact_start)} to {fmt_ts(pm.impact_end)} ({fmt_duration(pm.duration_s)}): {what}. "
        f"{fmt_int(pm.failed)} of {fmt_int(pm.requests)} requests failed ({fmt_pct(pm.error_rate, 1)}); "
        f"{fmt_int(pm.no_answer)} of {fmt_int(pm.observations)} health checks got no answer."
    )
    if top is not None and _harmed(pm.endpoints.iloc[0]):
        text += f" Most harmed endpoint: {top}."
    return text


def _harmed(row: Any) -> bool:
    """Errors beyond the baseline, or a mean latency at least 1.5x the baseline's."""
    slower = (
        not _missing(row["baseline_mean_ms"])
        and not _missing(row["mean_ms"])
        and row["mean_ms"] >= 1.5 * row["baseline_mean_ms"]
    )
    return bool(row["excess_errors"] >= 1 or slower)


@guarded("Summary")
def show_pm_summary(pm: Any) -> None:
    if not _need(pm, "Summary"):
        return
    show_html(box_html("What the history shows", _impact_sentence(pm), kind="info"))
    todo("Summary", "Two or three sentences: what happened, who was affected, how it was fixed.")


@guarded("Impact")
def show_impact(pm: Any) -> None:
    if not _need(pm, "Impact"):
        return
    rows = [
        (
            "Impact window (first breach to last breach)",
            f"{fmt_ts(pm.impact_start)} to {fmt_ts(pm.impact_end)}"
            if pm.impact_start is not None
            else "no breach found",
        ),
        ("Duration", fmt_duration(pm.duration_s)),
        ("Requests in the impact window", fmt_int(pm.requests)),
        ("Failed requests", f"{fmt_int(pm.failed)} ({fmt_pct(pm.error_rate, 2)})"),
        (
            "Health checks without an answer",
            f"{fmt_int(pm.no_answer)} of {fmt_int(pm.observations)}",
        ),
        ("Availability over the whole window", fmt_pct(pm.availability.availability, 2)),
    ]
    show_html(facts_html(rows))
    if pm.no_answer:
        show_text(
            "While the API did not answer, its requests were not counted by anyone: failed and "
            "total requests above are lower bounds."
        )
    show_table(
        pm.endpoints,
        "Endpoints ranked by harm (errors beyond the baseline rate, then added latency)",
        {
            "error_rate": lambda v: fmt_pct(v, 2),
            "baseline_error_rate": lambda v: fmt_pct(v, 2),
            "mean_ms": fmt_ms,
            "baseline_mean_ms": fmt_ms,
            "excess_errors": lambda v: fmt_num(v, 4),
            "extra_latency_ms": lambda v: fmt_ms(v) if not _missing(v) else DASH,
        },
        columns={
            "rank": "rank",
            "endpoint": "endpoint",
            "requests": "requests",
            "errors": "errors",
            "error_rate": "error rate",
            "baseline_error_rate": "baseline error rate",
            "excess_errors": "errors beyond baseline",
            "mean_ms": "mean latency",
            "baseline_mean_ms": "baseline mean",
            "extra_latency_ms": "added latency (total)",
        },
        empty="no request counted in the impact window",
    )
    cmp = pm.comparison.copy()
    fmts = {
        "requests per hour": lambda v: fmt_num(v, 4),
        "error_rate": lambda v: fmt_pct(v, 2),
        "mean_ms": fmt_ms,
        "availability": lambda v: fmt_pct(v, 2),
    }
    cmp["window"] = [
        fmts.get(m, _default_format)(v) for m, v in zip(cmp["metric"], cmp["window"], strict=True)
    ]
    cmp["baseline"] = [
        fmts.get(m, _default_format)(v) for m, v in zip(cmp["metric"], cmp["baseline"], strict=True)
    ]
    names = {"error_rate": "error rate", "mean_ms": "mean latency"}
    cmp["metric"] = [names.get(m, m) for m in cmp["metric"]]
    show_table(cmp, "The window against the baseline before it")
    todo(
        "User and business impact",
        "Who noticed, which features were affected, any customer reports.",
    )


@guarded("Timeline")
def show_timeline(pm: Any) -> None:
    if not _need(pm, "Timeline"):
        return
    show_table(
        pm.timeline,
        "Timeline from the history (UTC): health changes, threshold crossings, resets, gaps",
        {
            "ts": lambda v: fmt_ts(v, seconds=True),
            "endpoint": lambda v: DASH if _missing(v) else str(v),
        },
        columns={"ts": "when", "event": "event", "detail": "detail"},
        max_rows=200,
        empty="nothing happened in the history of this window",
    )
    todo(
        "Human timeline",
        "Add pages, acknowledgements, decisions and mitigation steps with their times.",
    )


@guarded("Detection")
def show_detection(pm: Any) -> None:
    if not _need(pm, "Detection"):
        return
    inc = (
        pm.incidents[pm.incidents["kind"] != "restart"] if not pm.incidents.empty else pm.incidents
    )
    if inc.empty:
        show_text("The history shows no threshold breach in this window.")
    else:
        first = inc.sort_values("start").iloc[0]
        where = f" on {first['endpoint']}" if isinstance(first.get("endpoint"), str) else ""
        show_text(
            f"The first breaching observation in the history: {fmt_ts(first['start'])}, "
            f"{str(first['kind']).replace('_', ' ')}{where} ({first['detail']})."
        )
    todo(
        "Detection",
        "How was the team alerted (alert, user report, on-call check)? When? Time to detect.",
    )


@guarded("Resolution")
def show_resolution(pm: Any) -> None:
    if not _need(pm, "Resolution"):
        return
    if pm.impact_end is not None:
        ongoing = bool(pm.incidents["ongoing"].any()) if "ongoing" in pm.incidents else False
        text = f"Back within thresholds at {fmt_ts(pm.impact_end)}" + (
            " (still breaching at the last observation of the window)" if ongoing else ""
        )
        show_text(text + ".")
    restarts = pm.restarts
    if not restarts.empty:
        show_table(
            restarts,
            "Restarts and counter resets in the window",
            columns={"ts": "when", "kind": "kind"},
        )
    else:
        show_text("No restart or counter reset in the window.")
    todo("Resolution", "What was done to mitigate and to fix, by whom, and when.")


@guarded("Evidence")
def show_evidence(pm: Any) -> None:
    if not _need(pm, "Evidence"):
        return
    show_table(
        pm.error_counts,
        "Error records by endpoint, status and message",
        {
            "status_code": lambda v: DASH if _missing(v) else str(int(v)),
            "error": lambda v: DASH if _missing(v) or v == "" else str(v),
        },
        columns={
            "endpoint": "endpoint",
            "status_code": "status",
            "error": "error",
            "count": "count",
        },
        max_rows=20,
        empty="no error record kept by the API in this window",
    )
    show_table(
        pm.errors,
        "Sampled error records (spread over the window)",
        {
            "ts": lambda v: fmt_ts(v, seconds=True),
            "status_code": lambda v: DASH if _missing(v) else str(int(v)),
        },
        columns={
            "ts": "when",
            "endpoint": "endpoint",
            "method": "method",
            "status_code": "status",
            "error": "error",
        },
        empty="no error record kept by the API in this window",
    )
    show_notes(pm.notes, title="Notes")


def _with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """A NaN row after each interval followed by a gap (> 1.5x the median spacing), so a
    line breaks where there was no data instead of carrying the last value over it."""
    if len(frame) < 3:
        return frame
    frame = frame.sort_values("ts").reset_index(drop=True)
    step = frame["ts"].diff()
    typical = step.median()
    holes = frame.loc[step > 1.5 * typical, "ts"] - step[step > 1.5 * typical] + typical
    if holes.empty:
        return frame
    filler = pd.DataFrame({"ts": holes.to_numpy()})
    return pd.concat([frame, filler], ignore_index=True).sort_values("ts", kind="stable")


@guarded("Charts")
def show_window_charts(pm: Any) -> None:
    """Requests, errors, error rate and mean latency of the window against the baseline."""
    if not _need(pm, "Charts"):
        return
    import matplotlib.pyplot as plt

    series = pm.series
    if series.empty:
        unavailable("Charts", "no traffic counted in the window or its baseline", record=False)
        return
    th = pm.thresholds
    series = series.sort_values("ts")
    win = series[series["period"] == "window"]
    # the charts show the end of the baseline only (3x the window, at least 2 h): enough to
    # compare, without squeezing the window; the figures use the whole baseline
    span = max(3 * (pm.end - pm.start), timedelta(hours=2))
    base = series[
        (series["period"] == "baseline") & (series["ts"] >= pd.Timestamp(pm.baseline_end - span))
    ]
    base_rate = pm.comparison.set_index("metric").loc["error_rate", "baseline"]
    win_rate = pm.error_rate
    with plots.style():
        fig, axes = plt.subplots(3, 1, figsize=(plots.WIDTH_IN, 9), sharex=True)
        base, win = _with_gaps(base), _with_gaps(win)
        for period, frame, color in (
            ("baseline", base, plots.COLORS[6]),
            ("window", win, plots.COLORS[0]),
        ):
            axes[0].step(frame["ts"], frame["requests"], where="post", color=color, label=period)
            axes[1].step(frame["ts"], frame["error_rate"], where="post", color=color, label=period)
            axes[2].step(frame["ts"], frame["mean_ms"], where="post", color=color, label=period)
        axes[0].set_title(
            f"Requests per interval: {fmt_int(pm.requests)} in the impact window"
            if pm.impact_start is not None
            else "Requests per interval"
        )
        axes[0].set_ylabel("requests")
        plots.target_line(axes[1], th.error_rate, f"target < {fmt_pct(th.error_rate, 0)}")
        axes[1].set_title(
            f"Error rate {fmt_pct(win_rate, 1)} in the impact window vs {fmt_pct(base_rate, 1)} in the baseline"
        )
        axes[1].set_ylabel("error rate")
        plots.pct_axis(axes[1])
        axes[1].set_ylim(bottom=0)
        cmp = pm.comparison.set_index("metric")
        axes[2].set_title(
            f"Mean latency {fmt_ms(cmp.loc['mean_ms', 'window'])} in the window vs {fmt_ms(cmp.loc['mean_ms', 'baseline'])} in the baseline"
        )
        axes[2].set_ylabel("mean latency")
        plots.ms_axis(axes[2])
        for ax in axes:
            if pm.impact_start is not None:
                plots.shade(
                    ax,
                    pm.impact_start,
                    max(pm.impact_end, pm.impact_start + pd.Timedelta(minutes=1)),
                    "impact window",
                )
            if not pm.restarts.empty:
                plots.mark_events(ax, pm.restarts["ts"], "restart / reset")
            ax.legend(loc="best")
        plots.utc_axis(axes[2])
        plt.show()
        health = pm.health
        if not health.empty:
            order = ["OK", "DEGRADED", "ERROR", "NO_ANSWER"]
            level = health["status"].map({s: i for i, s in enumerate(order)})
            bad = int((health["status"] != "OK").sum())
            fig, ax = plots.figure(2.2)
            ax.step(health["ts"], level, where="post", color=plots.BAD)
            ax.set_yticks(range(len(order)), order)
            ax.set_ylim(-0.5, len(order) - 0.5)
            ax.set_title(f"Health: {bad} of {len(health)} observations in the window were not OK")
            plots.utc_axis(ax)
            plt.show()
        if not pm.memory.frame.empty:
            fig, ax = plots.figure(3.0)
            leak = "possible leak" if pm.memory.leak else "no steady climb"
            _plot_memory(
                ax,
                pm.memory,
                th,
                f"Memory over the baseline and the window: peak {fmt_bytes(pm.memory.peak_rss)}, {leak}",
            )
            plt.show()


ACTION_COLUMNS = ["action item", "type", "owner", "due date", "tracking issue"]


@guarded("Action items")
def show_action_items(rows: int = 3) -> None:
    todo(
        "Action items",
        "Fill the table: one line per action (type: mitigate / prevent / detect / process), "
        "with an owner and a due date.",
    )
    frame = pd.DataFrame(
        [[TO_BE_WRITTEN, "prevent / mitigate / detect", "(owner)", "(YYYY-MM-DD)", "(link)"]]
        * rows,
        columns=ACTION_COLUMNS,
    )
    show_table(frame, "Action items")


@guarded("Lessons learned")
def show_lessons() -> None:
    for what, hint in (
        ("What went well", "Detection, tooling, people, luck-free wins."),
        ("What went wrong", "Gaps in detection, slow steps, missing runbook entries."),
        ("Where we got lucky", "Things that could have made it much worse."),
    ):
        todo(what, hint)


def postmortem_figures(
    pm: Any, window: Window, severity: str, source: StoreSource
) -> dict[str, Any]:
    base = {
        "report": "postmortem",
        "title": window.title,
        "severity": severity,
        "window_start": window.start,
        "window_end": window.end,
        "window_chosen": window.how,
        "store": {"available": source.available, "problem": source.problem},
    }
    if pm is None:
        return {**base, "computed": False}
    return {
        **base,
        "computed": True,
        "impact_start": pm.impact_start,
        "impact_end": pm.impact_end,
        "duration_s": pm.duration_s,
        "requests": pm.requests,
        "failed": pm.failed,
        "error_rate": pm.error_rate,
        "no_answer": pm.no_answer,
        "observations": pm.observations,
        "availability": pm.availability.availability,
        "endpoints_by_harm": [str(e) for e in pm.endpoints["endpoint"]]
        if not pm.endpoints.empty
        else [],
        "incidents": [
            {k: r.get(k) for k in ("kind", "start", "end", "duration_s", "endpoint", "severity")}
            for r in pm.incidents.to_dict("records")
        ],
        "restarts": len(pm.restarts),
        "timeline_events": len(pm.timeline),
        "error_records_sampled": len(pm.errors),
        "notes": pm.notes,
    }


# --- headers ------------------------------------------------------------------------------------


def month_window(month: str) -> tuple[datetime, datetime]:
    return parse_month(month)


@guarded("Header")
def show_review_header(
    month: str, source: StoreSource, settings: Settings, *, target: str | None = None
) -> None:
    start, end = parse_month(month)
    th = settings.thresholds
    rows = [
        ("Month", f"{month_title(month)}: {fmt_ts(start)} to {fmt_ts(end)} (end exclusive)"),
        ("Compared with", month_title(previous_month(month))),
        ("API target", target or "every target in the store"),
        ("Data", source.describe()),
        (
            "Runbook targets",
            f"availability >= {fmt_pct(th.availability_slo, 1)} of health checks OK; error rate < "
            f"{fmt_pct(th.error_rate, 0)}; reported p95 < {th.latency_p95_ms:g} ms in >= "
            f"{fmt_pct(th.latency_slo, 0)} of time slices; cache hit rate > {fmt_pct(th.cache_hit_rate, 0)}; "
            f"memory < {fmt_pct(th.memory_fraction, 0)} of {fmt_bytes(th.memory_limit_bytes)}, no leak",
        ),
        ("Generated", fmt_ts(utcnow())),
    ]
    show_html(f"<h2>{esc(month_title(month))}</h2>" + facts_html(rows))
