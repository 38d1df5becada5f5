"""QA 24: the incident postmortem's presentation.

4. the monitoring endpoints left out of the figures are said, as the monthly review says it;
5. with sample_errors 0, the sampled records say none was asked for, not that none was kept;
6. every tick label states its tick's value (the percent, ms, bytes and count axes);
7. an error rate is one text everywhere (sentence, tables, chart titles);
9. unknown figures are null in the key figures; no self-contradictory coverage note; a
   gap's end in the report's time format; a restart said in the summary;
and the per-scrape charts draw each interval's value over the interval it covers (ending
at its scrape), not the one after it.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.cbook import STEP_LOOKUP_MAP

from lsops_lib import analysis as A
from lsops_lib import plots, present
from lsops_lib.analysis.incidents import IncidentWindow
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History
from tests.fixtures.postmortem import outage_and_burst

matplotlib.use("Agg")

GiB = 2**30
MiB = 2**20


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every piece of markup the sections display."""
    out: list[str] = []
    monkeypatch.setattr(present.display, "show_html", out.append)
    monkeypatch.setattr(present.postmortem, "show_html", out.append)
    present.begin()
    return out


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    """Each test in the lsops look (as a report's first cell sets it), restored after:
    a chart test must not depend on another test having set it first."""
    with plots.style():
        yield
    plt.close("all")


def _text(shown: list[str]) -> str:
    """The markup shown, as a reader reads it (tags dropped, entities unescaped)."""
    page = re.sub(r"<style>.*?</style>", "", "".join(shown))
    page = re.sub(r"</(td|th)>", " | ", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _window(pm: A.Postmortem) -> IncidentWindow:
    return IncidentWindow(
        pd.Timestamp(pm.start), pd.Timestamp(pm.end), pm.title or "qa24", "the window given"
    )


SOURCE = present.StoreSource(store=None, url="sqlite:///m", available=True)


def _quiet_history(store: Store) -> History:
    """Every 5 min from T0: /a (100 requests, 1 error in each hour's first scrape) and the
    collector's own /health and /metrics (1 request each)."""
    h = History(store)
    h.scrape()  # the first scrape only starts the counters
    return h


def _traffic(h: History, scrapes: int) -> None:
    for i in range(scrapes):
        h.traffic("/a", 100, 50.0, 1 if i % 12 == 0 else 0)
        h.traffic("/health", 1, 2.0)
        h.traffic("/metrics", 1, 3.0)
        h.scrape()


# --- 4. the monitoring endpoints left out, said ------------------------------------------------


def test_the_impact_section_says_the_monitoring_endpoints_were_left_out(
    sqlite_store: Store, shown: list[str]
) -> None:
    h = _quiet_history(sqlite_store)
    _traffic(h, 48)  # 00:05 .. 04:00
    pm = A.postmortem(sqlite_store, T0 + timedelta(hours=2), T0 + timedelta(hours=4))
    assert sorted(pm.excluded["endpoint"]) == ["/health", "/metrics"]
    present.show_impact(pm)
    page = _text(shown)
    # as the monthly review says it: "Excluded: <the reason>." and the endpoints' table
    assert (
        "Excluded: monitoring endpoints (/health, /metrics...) are the collector's own "
        "scrapes, counted by the API (reference quirk 2); excluded unless "
        "include_monitoring=True." in page
    )
    table = page[page.index("Excluded endpoints") :]
    assert re.search(r"/health \|\s+24 \|\s+0 \|", table), table  # 2 h of 5-min scrapes
    assert re.search(r"/metrics \|\s+24 \|\s+0 \|", table), table


# --- 5. sample_errors 0 -------------------------------------------------------------------------


@pytest.fixture
def burst(sqlite_store: Store) -> A.Postmortem:
    outage_and_burst(sqlite_store)
    return A.postmortem(
        sqlite_store,
        T0 + timedelta(minutes=90),
        T0 + timedelta(minutes=210),
        Thresholds(),
        baseline=(T0, T0 + timedelta(minutes=60)),
        title="/b errors",
    )


def test_no_sample_asked_for_is_said_when_the_api_kept_records(
    burst: A.Postmortem, shown: list[str]
) -> None:
    """What the analysis gives with sample_errors 0: 60 records counted, none sampled."""
    counts = pd.DataFrame({"endpoint": ["/b"], "status_code": [500], "error": [""], "count": [60]})
    pm = replace(burst, errors=burst.errors.iloc[0:0], error_counts=counts)
    for args in ((pm, counts, 0), (pm, counts)):  # the notebook's call, and without it
        shown.clear()
        present.show_evidence(*args)
        page = _text(shown)
        sampled = page[page.index("Sampled error records") :]
        assert "no error record kept by the API in this window" not in sampled, sampled
        assert "none was asked for (sample_errors 0)" in sampled, sampled
        assert "60 error records" in sampled, sampled
    assert present.PROBLEMS == []
    # nothing kept: both tables say so
    shown.clear()
    present.show_evidence(burst, burst.error_counts, 20)
    assert _text(shown).count("no error record kept by the API in this window") == 2


# --- 6. every tick label states its tick's value -----------------------------------------------

# a label's unit -> what one of it is in the axis' own unit (fractions, ms, bytes)
_UNITS = {
    "%": 0.01,
    "ms": 1.0,
    "s": 1000.0,
    "min": 60_000.0,
    "h": 3_600_000.0,
    "B": 1.0,
    "KiB": 1024.0,
    "MiB": MiB,
    "GiB": GiB,
    "": 1.0,
}


def _ticks(ax: Any, which: str = "y") -> list[tuple[float, str]]:
    """(tick, label) of the ticks inside the view."""
    ax.figure.canvas.draw()
    axis = ax.yaxis if which == "y" else ax.xaxis
    low, high = sorted(axis.get_view_interval())
    return [
        (float(tick), label.get_text())
        for tick, label in zip(axis.get_ticklocs(), axis.get_ticklabels(), strict=True)
        if low - 1e-9 * max(1.0, abs(low)) <= tick <= high + 1e-9 * max(1.0, abs(high))
    ]


def _states_its_value(tick: float, label: str) -> bool:
    found = re.fullmatch(r"(-?[\d,]+(?:\.\d+)?) ?(%|ms|s|min|h|B|KiB|MiB|GiB|)", label)
    if not found:
        return False
    value = float(found[1].replace(",", "")) * _UNITS[found[2]]
    return abs(value - tick) <= 1e-9 * max(1.0, abs(tick))


def _assert_exact(ticks: list[tuple[float, str]]) -> None:
    assert len(ticks) >= 2, ticks
    wrong = [(t, s) for t, s in ticks if not _states_its_value(t, s)]
    assert not wrong, wrong


def _per_scrape(error_rates: dict[pd.Timestamp, float], *, baseline_errors: int = 0) -> Any:
    """Scrapes every 5 min: a baseline 07:30 .. 09:25 of 5,920 requests (`baseline_errors`
    of them failed, in its first scrape), a window 09:30 .. 11:25 of 160 requests per scrape
    failing at `error_rates` (by scrape)."""
    day = pd.Timestamp("2026-10-02T00:00Z")
    base_ts = pd.date_range(day + pd.Timedelta("7h30min"), periods=24, freq="5min")
    win_ts = pd.date_range(day + pd.Timedelta("9h30min"), periods=24, freq="5min")
    base_requests = [5920 - 23 * 250] + [250] * 23
    base_err = [baseline_errors] + [0] * 23
    rates = [error_rates.get(t, 0.0) for t in win_ts]
    frame = pd.DataFrame(
        {
            "ts": list(base_ts) + list(win_ts),
            "period": ["baseline"] * 24 + ["window"] * 24,
            "requests": base_requests + [160] * 24,
            "errors": base_err + [round(160 * r) for r in rates],
            "mean_ms": 50.0,
        }
    )
    frame["error_rate"] = frame["errors"] / frame["requests"]
    return frame


DAY = pd.Timestamp("2026-10-02T00:00Z")
# a burst 10:00 .. 10:30: the deltas of the scrapes 10:05 .. 10:30 (each covers the 5 min
# before its scrape), 30 of 160 requests failed in each (18.75 %)
BURST = {DAY + pd.Timedelta(hours=10, minutes=5 * i): 30 / 160 for i in range(1, 7)}


def test_the_error_rate_chart_labels_its_ticks_with_their_values() -> None:
    """QA's chart: ticks every 2.5 % labelled 2 %, 5 %, 8 %, 10 %, 12 %, 15 %, 18 %."""
    fig = plots.window_traffic(
        _per_scrape(BURST),
        DAY + pd.Timedelta(hours=10, minutes=5),
        DAY + pd.Timedelta(hours=10, minutes=35),
        error_target=0.01,
    )
    ticks = _ticks(fig.axes[1])
    assert ticks == [
        (pytest.approx(0.0), "0.0 %"),
        (pytest.approx(0.025), "2.5 %"),
        (pytest.approx(0.05), "5.0 %"),
        (pytest.approx(0.075), "7.5 %"),
        (pytest.approx(0.1), "10.0 %"),
        (pytest.approx(0.125), "12.5 %"),
        (pytest.approx(0.15), "15.0 %"),
        (pytest.approx(0.175), "17.5 %"),
    ]
    for ax in fig.axes:  # requests and mean latency too
        _assert_exact(_ticks(ax))


def test_percent_ms_byte_and_count_axes_state_each_ticks_value() -> None:
    with plots.style():
        _, pct = plots.figure()
        pct.set_ylim(0, 0.2)
        plots.pct_axis(pct)
        assert [label for _, label in _ticks(pct)] == [
            "0.0 %", "2.5 %", "5.0 %", "7.5 %", "10.0 %", "12.5 %", "15.0 %", "17.5 %", "20.0 %",
        ]  # fmt: skip
        _, seconds = plots.figure()
        plots.ms_axis(seconds)
        seconds.set_ylim(0, 1250)
        seconds.set_yticks([0, 250, 500, 750, 1000, 1250])
        assert [label for _, label in _ticks(seconds)] == [
            "0.00 s",
            "0.25 s",
            "0.50 s",
            "0.75 s",
            "1.00 s",
            "1.25 s",
        ]  # fmt.ms alone writes 1.25 s "1.2 s"
        _, minutes = plots.figure()
        minutes.set_ylim(0, 300_000)  # 5 min: never 50,000 ms labelled "50.0 s", "1.7 min"
        plots.ms_axis(minutes)
        _assert_exact(_ticks(minutes))
        _, small = plots.figure()
        small.set_ylim(0, 17.5)  # 12.5 ms is never "12 ms"
        plots.ms_axis(small)
        small.set_yticks([0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5])
        assert [label for _, label in _ticks(small)][-3:] == ["12.5 ms", "15.0 ms", "17.5 ms"]
        _, size = plots.figure()
        size.set_ylim(0, 1.5 * GiB)
        plots.bytes_axis(size)
        assert [label for _, label in _ticks(size)] == [
            "0.00 GiB",
            "0.25 GiB",
            "0.50 GiB",
            "0.75 GiB",
            "1.00 GiB",
            "1.25 GiB",
            "1.50 GiB",
        ]  # fmt.size alone writes 1.25 GiB "1.2 GiB"
        _, mib = plots.figure()
        mib.set_ylim(0, 1000 * MiB)
        plots.bytes_axis(mib)
        _assert_exact(_ticks(mib))
        _, zero = plots.figure()
        zero.set_ylim(-0.055, 0.055)  # a count axis of nothing but zeros
        plots.count_axis(zero)
        assert _ticks(zero) == [(0.0, "0")]  # never -0.04 .. 0.04 labelled "-0", "0"


def test_the_charts_of_a_few_errors_label_whole_ticks() -> None:
    """The harm chart (request-seconds) and the review's errors by endpoint (fmt.integer
    given to bar_ranked) of small values: never 0.5 labelled "0"."""
    endpoints = pd.DataFrame(
        {
            "endpoint": ["/b", "/c"],
            "harm_s": [1.5, 0.75],
            "harmed": [True, True],
            "added_latency_s": [0.0, 0.0],
            "latency_significant": [False, False],
        }
    )
    harm = plots.harm_ranking(endpoints)
    assert harm is not None
    _assert_exact(_ticks(harm, "x"))
    errors = pd.DataFrame({"endpoint": ["/a", "/b"], "requests": [100, 90], "errors": [3, 1]})
    ax = plots.endpoint_errors(errors)
    ticks = _ticks(ax, "x")
    _assert_exact(ticks)
    assert all(float(t).is_integer() for t, _ in ticks), ticks


# --- 7. one figure, one text ----------------------------------------------------------------


def _summary(**over: Any) -> dict[str, Any]:
    base = {
        "computed": True,
        "window_start": DAY + pd.Timedelta(hours=9, minutes=30),
        "window_end": DAY + pd.Timedelta(hours=11, minutes=30),
        "impact_start": DAY + pd.Timedelta(hours=10),
        "impact_end": DAY + pd.Timedelta(hours=10, minutes=30),
        "duration_s": 1800.0,
        "requests": 5920,
        "failed": 3,
        "error_rate": 3 / 5920,
        "no_answer": 0,
        "observations": 7,
        "incidents": [{"kind": "error_rate", "endpoint": "/b", "ongoing": False}],
        "harmed": [],
        "restarts": 0,
        "notes": [],
        "top_new_pattern": None,
    }
    return {**base, **over}


def test_an_error_rate_is_written_as_the_tables_write_it() -> None:
    """3 of 5,920 is 0.05 % in the Impact table: the sentence and the chart say 0.05 %."""
    said = present.postmortem.impact_sentence(_summary())
    assert "3 of 5,920 requests failed (0.05 %)" in said, said
    fig = plots.window_traffic(
        _per_scrape(BURST, baseline_errors=3),
        DAY + pd.Timedelta(hours=10),
        DAY + pd.Timedelta(hours=10, minutes=30),
    )
    title = fig.axes[1].get_title("left")
    # the baseline: 3 of 5,920 requests; the impact window: 180 of 960 (18.75 %)
    assert title == "Error rate 18.75 % in the impact window vs 0.05 % in the baseline", title
    # given the bundle's figures, the titles state them: 3 of 5,920 is 0.05 % there too
    fig = plots.window_traffic(
        _per_scrape(BURST, baseline_errors=3),
        DAY + pd.Timedelta(hours=10),
        DAY + pd.Timedelta(hours=10, minutes=30),
        counted=(5920, 3),
    )
    assert fig.axes[0].get_title("left") == "Requests per interval: 5,920 in the impact window"
    assert fig.axes[1].get_title("left").startswith("Error rate 0.05 % in the impact window")


# --- 9. the cosmetic ones -----------------------------------------------------------------------


def test_what_the_report_says_is_unknown_is_null_in_the_key_figures(
    sqlite_store: Store, shown: list[str]
) -> None:
    outage_and_burst(sqlite_store)  # a history of 4 h from T0
    later = T0 + timedelta(days=30)
    pm = A.postmortem(sqlite_store, later, later + timedelta(hours=2))
    present.show_impact(pm)
    page = _text(shown)
    assert re.search(r"Requests in the impact window\s*\|?\s*–", page), page
    figures = present.postmortem_figures(pm, _window(pm), "SEV2", SOURCE)
    assert figures["requests"] is None and figures["failed"] is None
    assert figures["error_rate"] is None or pd.isna(figures["error_rate"])
    assert figures["observations"] == 0  # a count that is known: none


@pytest.mark.parametrize(("late_s", "noted"), [(17, False), (5 * 3600, True)])
def test_a_shortfall_below_the_notes_resolution_is_not_noted(
    tmp_path: Path, late_s: int, noted: bool
) -> None:
    """The QA's "the history covers 1 d 0 h of the 1 d 0 h baseline period": a history that
    begins 17 s into the baseline (its deltas cover all but ~30 s of it: scrapes every
    5 min, every 10 s in its last minutes) is not noted; 5 h short is."""
    from tests.fixtures.store import make_scrape

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    minutes = [late_s / 60]
    while minutes[-1] + 5 < 24 * 60 - 5:  # every 5 min to 23:55 or so
        minutes.append(minutes[-1] + 5)
    while minutes[-1] + 1 / 6 < 24 * 60:  # then every 10 s to 23:59:50 or so
        minutes.append(minutes[-1] + 1 / 6)
    with Store(url) as store:
        for k, m in enumerate(minutes):
            store.record_scrape(make_scrape(m, {"/a": (10 * (k + 1), 20.0, 0.0)}))
        pm = A.postmortem(store, T0 + timedelta(hours=24), T0 + timedelta(hours=25))
    said = [n for n in pm.notes if n.startswith("the history covers")]
    if noted:
        assert said == [
            "the history covers 19 h 00 min of the 1 d 0 h baseline period: its requests per "
            "hour are over the time covered"
        ], pm.notes
    else:
        assert said == [], pm.notes


def test_a_gap_ends_in_the_reports_time_format(sqlite_store: Store, shown: list[str]) -> None:
    h = _quiet_history(sqlite_store)
    _traffic(h, 12)  # 00:05 .. 01:00
    h.t += timedelta(hours=1)  # no scrape from 01:05 to 02:00
    _traffic(h, 12)  # 02:05 .. 03:00
    pm = A.postmortem(sqlite_store, T0 + timedelta(minutes=30), T0 + timedelta(hours=3))
    assert "collection gap" in set(pm.timeline["event"])
    present.show_timeline(pm.timeline)
    page = _text(shown)
    assert "(until 2026-10-01 02:05 UTC)" in page, page
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page), page


def test_a_restart_is_said_in_the_summary(sqlite_store: Store) -> None:
    h = _quiet_history(sqlite_store)
    _traffic(h, 24)
    h.restart()
    _traffic(h, 24)
    pm = A.postmortem(sqlite_store, T0 + timedelta(hours=1), T0 + timedelta(hours=4))
    assert pm.impact_start is None and len(pm.restarts) == 1  # nothing breached
    said = present.postmortem.impact_sentence(pm.summary())
    assert said.startswith("No threshold breach found"), said
    assert "1 restart or counter reset in the window (see Resolution)" in said, said


# --- the per-scrape charts: a value over the interval it covers ------------------------------------


def _drawn_where(line: Any, above: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    """From where to where `line` is drawn above `above` (its steps as drawn)."""
    x = mdates.date2num(pd.to_datetime(pd.Series(line.get_xdata())).dt.tz_localize(None))
    y = pd.to_numeric(pd.Series(line.get_ydata()), errors="coerce").to_numpy(dtype=float)
    xs, ys = STEP_LOOKUP_MAP[line.get_drawstyle()](x, y)
    spans = [
        (xs[i], xs[i + 1])
        for i in range(len(xs) - 1)
        if ys[i] == ys[i + 1] and ys[i] > above and xs[i + 1] > xs[i]
    ]
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    return tuple(pd.Timestamp(mdates.num2date(v)).round("s") for v in (lo, hi))  # type: ignore[return-value]


def _line(ax: Any, label: str) -> Any:
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_a_burst_is_drawn_over_the_intervals_it_happened_in() -> None:
    """A 10:00-10:30 burst (the scrapes 10:05 .. 10:30 count it) is drawn from 10:00 to
    10:30, not 10:05 to 10:35; an hourly bucket still spans the hour it starts."""
    fig = plots.window_traffic(_per_scrape(BURST))
    lo, hi = _drawn_where(_line(fig.axes[1], "window"), 0.1)
    assert (lo, hi) == (DAY + pd.Timedelta(hours=10), DAY + pd.Timedelta(hours=10, minutes=30))
    # the first scrape of a frame covers the 5 min before it: the window starts at 09:25
    first, _ = _drawn_where(_line(fig.axes[0], "window"), 0)
    assert first == DAY + pd.Timedelta(hours=9, minutes=25)
    hours = pd.date_range(DAY, periods=48, freq="h")
    hourly = pd.DataFrame(
        {
            "ts": hours,
            "period": "window",
            "requests": 100,
            "errors": [50 if t == DAY + pd.Timedelta(hours=10) else 0 for t in hours],
            "mean_ms": 20.0,
        }
    )
    hourly["error_rate"] = hourly["errors"] / hourly["requests"]
    fig = plots.window_traffic(hourly)
    lo, hi = _drawn_where(_line(fig.axes[1], "window"), 0.1)
    assert (lo, hi) == (DAY + pd.Timedelta(hours=10), DAY + pd.Timedelta(hours=11))


def test_a_gap_stays_blank_and_its_closing_scrape_spans_one_interval() -> None:
    ts = pd.to_datetime(
        ["2026-10-02T10:00Z", "2026-10-02T10:05Z", "2026-10-02T10:10Z", "2026-10-02T11:10Z"]
    )
    frame = pd.DataFrame({"ts": ts, "requests": [1.0, 2.0, 3.0, 4.0]})
    drawn = plots.postmortem.ending_at(frame, pd.Timedelta(minutes=5))
    assert list(drawn["ts"]) == list(
        pd.to_datetime(
            [
                "2026-10-02T09:55Z",  # the first scrape's interval starts 5 min before it
                "2026-10-02T10:00Z",
                "2026-10-02T10:05Z",
                "2026-10-02T10:10Z",
                "2026-10-02T11:05Z",  # blank until here: the gap
                "2026-10-02T11:10Z",
            ]
        )
    )
    assert drawn["requests"].tolist()[:4] == [1.0, 1.0, 2.0, 3.0]
    assert pd.isna(drawn["requests"].iloc[4]) and drawn["requests"].iloc[5] == 4.0
