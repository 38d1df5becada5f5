"""Multiwindow, multi-burn-rate alerts (Google SRE workbook, "Alerting on SLOs", as Sloth
and Pyrra generate them), computed from the store.

The workbook's table, over a 30-day SLO period:

    severity  factor  long window  short window  budget consumed when it fires
    page      14.4    1 h          5 min         2 %   (14.4 x 1 h / 720 h)
    page      6       6 h          30 min        5 %   (6 x 6 h / 720 h)
    ticket    3       1 d          2 h           10 %  (3 x 24 h / 720 h)
    ticket    1       3 d          6 h           10 %  (1 x 72 h / 720 h)

burn rate = observed error ratio / (1 - SLO) (1.0 spends exactly the budget in the
period). A window pair fires when BOTH its long and its short window burn faster than the
factor (the short window makes the alert stop soon after the burning does).

The objectives (DESIGN "Metric semantics"):

    availability  bad = health observations not OK (DEGRADED, ERROR, no answer),
                  SLO = [thresholds] availability_slo
    error_rate    bad = errors of the counter deltas (monitoring endpoints excluded),
                  total = requests; SLO = 1 - [thresholds] error_rate
    latency       bad = time slices (scrapes with requests in their window) whose
                  reported p95 missed [thresholds] latency_p95_ms; SLO = latency_slo

Coverage: a window counts only when the collector covered it: the time its scrapes span
inside the window >= `[alerts] min_coverage` (default 75 %) of the window. Each scrape
covers the gap since the one before it, at most the collection interval (the median gap
between the scrapes read: a stop of the collector is not covered); the window's first
scrape covers from the window's start when a scrape precedes it (read up to `BEFORE_S`
before the longest window), else nothing (a new store's first hour is covered as it
passes: 45 min in, 75 % of it). A pair with a window not covered does not
fire; a rule none of whose pairs is covered is not evaluated at all (its alert keeps its
state: a collector that was not running says nothing about the service).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..times import stamps_to_ms, to_ms

__all__ = [
    "OBJECTIVES",
    "PAGE",
    "SLO_PERIOD_S",
    "TICKET",
    "BurnWindow",
    "WindowRead",
    "budget_consumed",
    "burn_rate",
    "exhaustion_s",
    "factor_for",
    "objective_reads",
    "pair_fires",
    "targets_reads",
]

SLO_PERIOD_S = 30 * 86400.0
BEFORE_S = 3600.0  # how far before the longest window the scrape preceding it is looked for
OBJECTIVES = ("availability", "error_rate", "latency")


@dataclass(frozen=True)
class BurnWindow:
    """One window pair: fires when both windows burn faster than `factor`."""

    factor: float
    long_s: float
    short_s: float

    def budget_consumed(self, period_s: float = SLO_PERIOD_S) -> float:
        return budget_consumed(self.factor, self.long_s, period_s)


PAGE = (BurnWindow(14.4, 3600.0, 300.0), BurnWindow(6.0, 6 * 3600.0, 1800.0))
TICKET = (BurnWindow(3.0, 86400.0, 7200.0), BurnWindow(1.0, 3 * 86400.0, 6 * 3600.0))


def burn_rate(bad: float, total: float, slo: float) -> float:
    """(bad / total) / (1 - slo); NaN without events."""
    if not 0 < slo < 1:
        raise ValueError(f"SLO must be a fraction between 0 and 1, not {slo!r}")
    if not total:
        return float("nan")
    return (bad / total) / (1.0 - slo)


def budget_consumed(factor: float, window_s: float, period_s: float = SLO_PERIOD_S) -> float:
    """The share of the period's error budget spent by burning at `factor` for `window_s`."""
    return factor * window_s / period_s


def factor_for(budget_share: float, window_s: float, period_s: float = SLO_PERIOD_S) -> float:
    """The burn rate that spends `budget_share` of the budget in `window_s` (the inverse)."""
    return budget_share * period_s / window_s


def exhaustion_s(factor: float, period_s: float = SLO_PERIOD_S) -> float:
    """How long a burn at `factor` takes to spend the whole budget."""
    return period_s / factor if factor > 0 else float("inf")


def pair_fires(long_burn: float, short_burn: float, factor: float) -> bool:
    """Both windows burn faster than the factor (NaN: no events, never fires)."""
    return bool(long_burn > factor and short_burn > factor)


@dataclass(frozen=True)
class WindowRead:
    """One objective over one window ending now."""

    window_s: float
    bad: float
    total: float
    coverage: float
    burn: float

    def covered(self, min_coverage: float) -> bool:
        return self.coverage >= min_coverage


def _interval_s(ts: pd.Series) -> float | None:
    """The collection interval: the median gap between consecutive scrapes."""
    if len(ts) < 2:
        return None
    return _median_gap((ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy())


def objective_reads(
    store: Any,
    target: str,
    now: datetime,
    windows: set[float],
    thresholds: Any,
) -> dict[str, dict[float, WindowRead]]:
    """Every objective over every window (seconds) ending at `now` (inclusive), from three
    reads of the longest window: health observations, counter deltas per scrape, and the
    latency slices. Windows are (now - w, now]."""
    from ..analysis.slo import latency_slices

    longest = max(windows)
    start = now - timedelta(seconds=longest) + timedelta(milliseconds=1)
    end = now + timedelta(milliseconds=1)
    # from BEFORE_S earlier: the scrape before the window (coverage); no window counts it
    health = store.health(start - timedelta(seconds=BEFORE_S), end, target=target)
    scrapes = store.scrapes(
        start,
        end,
        target=target,
        columns=["ts", "rt_count", "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max"],
    )
    deltas = store.endpoint_intervals(start, end, bucket="scrape", target=target)
    slices = latency_slices(
        None,
        start,
        end,
        threshold_ms=thresholds.latency_p95_ms,
        scrapes=scrapes,
        app=deltas,
        since=scrapes["ts"].min() if len(scrapes) else None,
        bucket_ms=0,  # counter deltas per scrape
    )
    slices = slices[~slices["monitoring_only"].astype(bool)]  # the collector's own p95
    inside = stamps_to_ms(health["ts"]) >= to_ms(start)  # as the SQL compares them
    interval = _interval_s(health["ts"][inside]) if inside.any() else None
    # each series as (instants in ms, sorted; cumulative bad; cumulative total): a window's
    # figures are two binary searches away (one round reads every window of its rules)
    series = {
        "availability": _cumulative(health["ts"], health["status"] != "OK", None),
        "error_rate": _cumulative(deltas["ts"], deltas["errors"], deltas["requests"])
        if not deltas.empty
        else _cumulative(pd.Series(dtype="datetime64[ns, UTC]"), pd.Series(dtype=float), None),
        "latency": _cumulative(slices["ts"], ~slices["met"].astype(bool), None),
    }
    return _window_reads(series, interval, now, windows, thresholds)


def _monitoring_only_by_target(
    slices: pd.DataFrame, scrapes: pd.DataFrame, delta: pd.DataFrame
) -> np.ndarray:
    """`monitoring_only` of each target's slices, from that target's counter deltas (the
    application's endpoints) and its first scrape read."""
    from ..analysis.slo import monitoring_only

    out = np.zeros(len(slices), dtype=bool)
    if slices.empty:
        return out
    deltas = delta.groupby("target", sort=False).indices if len(delta) else {}
    firsts = scrapes.groupby("target", sort=False)["ts"].min()
    none = np.zeros(0, dtype=np.int64)
    for t, rows in slices.groupby("target", sort=False).indices.items():
        mine = delta.iloc[deltas.get(t, none)][["ts", "requests"]]
        out[rows] = monitoring_only(slices["ts"].iloc[rows], mine, firsts.get(t), bucket_ms=0)
    return out


def _window_reads(
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    interval: float | None,
    now: datetime,
    windows: set[float],
    thresholds: Any,
) -> dict[str, dict[float, WindowRead]]:
    """Every objective over every window from its cumulative series (`_cumulative`) and
    the collection interval (s)."""
    slos = {
        "availability": thresholds.availability_slo,
        "error_rate": 1.0 - thresholds.error_rate,
        "latency": thresholds.latency_slo,
    }
    now_ms = int(pd.Timestamp(now).value // 1_000_000)
    out: dict[str, dict[float, WindowRead]] = {k: {} for k in OBJECTIVES}
    scraped = series["availability"][0]  # every health observation is a scrape
    for w in sorted(windows):
        lo = now_ms - int(w * 1000)
        figures = {name: _window(cum, lo, now_ms) for name, cum in series.items()}
        coverage = _covered_s(scraped, interval, lo, now_ms) / w
        for name, (bad, total) in figures.items():
            out[name][w] = WindowRead(w, bad, total, coverage, burn_rate(bad, total, slos[name]))
    return out


# the scrape columns one batched read takes: the burn rates' (health status, latency) and
# the last day's the api_down / health_error / memory_critical rules read (rules._latest)
LATEST_COLUMNS = ["ts", "ok", "health_status", "failure_kind", "rss"]
_LATENCY_COLUMNS = ["rt_count", "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max"]
_CHUNK = 500  # targets a read (the IN list's parameters)


def targets_reads(
    store: Any,
    targets: list[str],
    now: datetime,
    windows: set[float],
    thresholds: Any,
    latest_s: float = 86400.0,
) -> tuple[dict[str, dict[str, dict[float, WindowRead]]], dict[str, pd.DataFrame]]:
    """`objective_reads` for every target of `targets` at once, and each target's scrapes
    of the last `latest_s` seconds (LATEST_COLUMNS, as `store.scrapes` reads them for one
    target): ONE scrape read and ONE counter-delta read of the longest window for all the
    targets (by 500), split by target in numpy (a target's rows in their own read's
    order), instead of four reads and their pandas work a target. Each target's windows
    are those `objective_reads` gives it (tests/test_alerts_batch.py)."""
    from ..analysis.slo import latency_slices
    from ..store.core import typed_texts
    from ..store.reads import _HEALTH_SELECT, _SCRAPE_SELECT
    from ..times import to_ms

    longest = max(windows)
    start = now - timedelta(seconds=longest) + timedelta(milliseconds=1)
    end = now + timedelta(milliseconds=1)
    latest_start = now - timedelta(seconds=latest_s)
    exprs = {"target": _SCRAPE_SELECT["target"], "status": _HEALTH_SELECT["status"]}
    exprs |= {c: _SCRAPE_SELECT[c] for c in [*LATEST_COLUMNS, *_LATENCY_COLUMNS]}
    names = list(dict.fromkeys(targets))
    if not names:
        return {}, {}
    frames, deltas = [], []
    before = start - timedelta(seconds=BEFORE_S)  # the scrape before the window (coverage)
    lo = min(before, latest_start)  # the longer of the two spans: the burn windows', the day's
    for i in range(0, len(names), _CHUNK):
        chunk = names[i : i + _CHUNK]
        frames.append(store._scrape_read(exprs, lo, end, None, targets=chunk))
        deltas.append(store._endpoint_intervals_raw(start, end, bucket="scrape", targets=chunk))
    scrapes = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    delta = pd.concat(deltas, ignore_index=True) if len(deltas) > 1 else deltas[0]

    # the latest rows, per target, as one read of that target gives them
    latest: dict[str, pd.DataFrame] = {}
    # the two spans' rows, by the epoch ms the SQL compares (ts >= :start)
    row_ms = stamps_to_ms(scrapes["ts"])
    in_day = row_ms >= to_ms(latest_start)
    by_target = _rows_by_target(scrapes["target"][in_day])
    recent = scrapes.loc[in_day, LATEST_COLUMNS]
    for t in names:
        rows = by_target.get(t, np.zeros(0, dtype=np.int64))
        latest[t] = typed_texts(recent.iloc[rows].reset_index(drop=True))

    # the burn windows: the rows of (start, end); their health from BEFORE_S earlier
    health = scrapes[row_ms >= to_ms(before)].reset_index(drop=True)
    scrapes = scrapes[row_ms >= to_ms(start)].reset_index(drop=True)
    slices = latency_slices(
        None, start, end, threshold_ms=thresholds.latency_p95_ms, scrapes=scrapes, carry=["target"]
    )
    slices = slices[~_monitoring_only_by_target(slices, scrapes, delta)]
    series = {
        "availability": _arrays(health["target"], health["ts"], health["status"] != "OK", None),
        "error_rate": _arrays(delta["target"], delta["ts"], delta["errors"], delta["requests"]),
        "latency": _arrays(slices["target"], slices["ts"], ~slices["met"].astype(bool), None),
    }
    health_rows = _rows_by_target(scrapes["target"])
    # seconds as `_interval_s` computes them, for every row at once
    seconds = (scrapes["ts"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    empty = np.zeros(0, dtype=np.int64)
    reads = {}
    for t in names:
        rows = health_rows.get(t, empty)
        cums = {
            name: _cumulative_of(ms_, bad, total, by.get(t, empty))
            for name, (by, ms_, bad, total) in series.items()
        }
        reads[t] = _window_reads(cums, _median_gap(seconds[rows]), now, windows, thresholds)
    return reads, latest


def _rows_by_target(target: pd.Series) -> dict[str, np.ndarray]:
    """target -> the positions of its rows, in order."""
    if target.empty:
        return {}
    codes, uniques = pd.factorize(target.astype(str))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {str(u): order[bounds[k] : bounds[k + 1]] for k, u in enumerate(uniques)}


def _arrays(
    target: pd.Series, ts: pd.Series, bad: pd.Series, total: pd.Series | None
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """(rows by target, ms instants, bad, total) of a frame of all the targets (`total`
    None: one per row), converted once."""
    return _rows_by_target(target), *_converted(ts, bad, total)


def _converted(
    ts: pd.Series, bad: pd.Series, total: pd.Series | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ms instants, bad, total) as arrays, in the rows' order (`total` None: one per row;
    missing figures 0)."""
    b = pd.to_numeric(bad, errors="coerce").fillna(0).to_numpy(dtype=float)
    t = (
        np.ones(len(b))
        if total is None
        else pd.to_numeric(total, errors="coerce").fillna(0).to_numpy(dtype=float)
    )
    return stamps_to_ms(ts), b, t


def _cumulative_of(
    ms: np.ndarray, bad: np.ndarray, total: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ms instants, cumulative bad, cumulative total) with a leading 0, of the rows
    `rows` (one target's, in its read's order) of converted arrays (`_converted`)."""
    m, b, t = ms[rows], bad[rows], total[rows]
    order = np.argsort(m, kind="stable")
    return (
        m[order],
        np.concatenate([[0.0], np.cumsum(b[order])]),
        np.concatenate([[0.0], np.cumsum(t[order])]),
    )


def _median_gap(seconds: np.ndarray) -> float | None:
    """`_interval_s` of instants already in seconds (the median positive gap)."""
    if len(seconds) < 2:
        return None
    gaps = np.diff(seconds)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else None


def _cumulative(
    ts: pd.Series, bad: pd.Series, total: pd.Series | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ms instants, cumulative bad, cumulative total) with a leading 0; `total` None:
    one per row."""
    ms, b, t = _converted(ts, bad, total)
    return _cumulative_of(ms, b, t, np.arange(len(ms)))


def _covered_s(ms: np.ndarray, interval: float | None, lo: int, hi: int) -> float:
    """The time (s) the scrapes at `ms` (sorted) span in the window (lo, hi]: each covers
    the gap since the one before it, at most `interval`; the window's first, when one
    precedes it, from `lo`; else nothing; and the last one the time since it, up to `hi`,
    at most `interval` (a check run between two scrapes, as a cron of its own does, finds
    its short windows covered as right after a scrape)."""
    i, j = np.searchsorted(ms, lo, side="right"), np.searchsorted(ms, hi, side="right")
    if j <= i or not interval:
        return 0.0
    step = interval * 1000.0
    first = min(float(ms[i] - lo), step) if i > 0 else 0.0
    last = min(float(hi - ms[j - 1]), step)
    return (first + float(np.minimum(np.diff(ms[i:j]), step).sum()) + last) / 1000.0


def _window(
    cum: tuple[np.ndarray, np.ndarray, np.ndarray], lo: int, hi: int
) -> tuple[float, float]:
    """(bad, total) of the rows with lo < ts <= hi."""
    ms, bad, total = cum
    i, j = np.searchsorted(ms, lo, side="right"), np.searchsorted(ms, hi, side="right")
    return float(bad[j] - bad[i]), float(total[j] - total[i])


def describe(factor: float, long: WindowRead, short: WindowRead) -> str:
    """One line: how fast the budget burns in both windows, and when it would be gone."""
    from .. import fmt

    gone = exhaustion_s(long.burn) if long.burn and not math.isnan(long.burn) else float("inf")
    return (
        f"burning its error budget {long.burn:.1f}x over {fmt.duration(long.window_s)} and "
        f"{short.burn:.1f}x over {fmt.duration(short.window_s)} (threshold {factor:g}x): "
        f"the 30-day budget would be gone in {fmt.duration(gone)}"
    )
