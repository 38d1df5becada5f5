"""The monthly review's rules, wording, key figures and charts, on two small months whose
figures are computed by hand (tests/fixtures/monthly.py), without a kernel."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from lsops_lib import analysis as A  # noqa: E402
from lsops_lib import plots, present  # noqa: E402
from lsops_lib.analysis import changes as C  # noqa: E402
from lsops_lib.config import Thresholds, load_settings  # noqa: E402
from lsops_lib.store import Store  # noqa: E402
from tests.fixtures.analysis import History, MiB  # noqa: E402
from tests.fixtures.monthly import october, two_months  # noqa: E402

TH = Thresholds()


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every piece of markup the review's sections display."""
    out: list[str] = []
    monkeypatch.setattr(present.display, "show_html", out.append)
    monkeypatch.setattr(present.monthly, "show_html", out.append)
    monkeypatch.setattr(present.monthly_sections, "show_html", out.append)
    present.begin()
    return out


def _title(ax: Any) -> str:
    """The title wherever the look puts it (left in the lsops look)."""
    return ax.get_title("left") or ax.get_title()


def _changes(review: Any) -> pd.DataFrame:
    return review.changes.set_index("metric")


# --- month over month: the rules against figures computed by hand ------------------------------


def test_month_over_month_figures_and_what_is_notable(sqlite_store: Store) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    assert review.has_data and review.previous_has_data
    ch = _changes(review)
    assert ch.loc["requests", ["current", "previous"]].tolist() == [7680, 3600]
    assert ch.loc["errors", ["current", "previous"]].tolist() == [144, 24]
    assert ch.loc["requests_per_day", "current"] == pytest.approx(3840)
    assert ch.loc["requests_per_day", "previous"] == pytest.approx(3600)
    assert ch.loc["requests_per_day", "moved"] == pytest.approx(240 / 3600)
    assert ch.loc["error_rate", "moved"] == pytest.approx(144 / 7680 - 24 / 3600)
    assert ch.loc["mean_ms", "current"] == pytest.approx(53.75)
    assert ch.loc["mean_ms", "previous"] == pytest.approx(168000 / 3600)
    assert ch.loc["mean_ms", "moved"] == pytest.approx(53.75 / (168000 / 3600) - 1)
    assert ch.loc["cache_hit_ratio", "moved"] == pytest.approx(-0.10)
    assert ch.loc["availability", "moved"] == 0.0
    measures = ch["measure"].to_dict()
    assert {m for m, v in measures.items() if v == "relative"} == {
        "requests",
        "requests_per_day",
        "errors",
        "mean_ms",
    }
    notable = set(ch.index[ch["notable"]])
    assert notable == {"requests_per_day", "error_rate", "mean_ms", "cache_hit_ratio"}


def test_each_threshold_decides_its_change(sqlite_store: Store) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    now, before = review.totals, review.previous_totals
    # just above each move (6.67 %, 1.21 pp, 15.2 %, 10 pp): none is notable any more
    strict = replace(
        TH,
        notable_traffic_change=0.07,
        notable_error_rate_change=0.0121,
        notable_latency_change=0.152,
        notable_cache_hit_rate_change=0.1001,
        notable_availability_change=0.0,  # a move of 0 pp is "at least 0"
    )
    ch = C.month_over_month(now, before, strict).set_index("metric")
    assert set(ch.index[ch["notable"]]) == {"availability"}
    # just below each move: all notable again
    loose = replace(
        strict,
        notable_traffic_change=0.066,
        notable_error_rate_change=0.012,
        notable_latency_change=0.151,
        notable_cache_hit_rate_change=0.099,
    )
    ch = C.month_over_month(now, before, loose).set_index("metric")
    assert set(ch.index[ch["notable"]]) == {
        "requests_per_day",
        "error_rate",
        "mean_ms",
        "cache_hit_ratio",
        "availability",
    }
    # totals, errors, the latency share and coverage are shown, never judged
    assert not ch.loc[["requests", "errors", "latency_share", "coverage"], "notable"].any()


def test_endpoint_rules(sqlite_store: Store) -> None:
    two_months(sqlite_store)
    eps = A.monthly_review(sqlite_store, "2026-10", TH).endpoints
    worse = C.endpoints_worse(eps, TH)
    assert worse["endpoint"].tolist() == ["/a"]
    assert worse["error_rate_change"].iloc[0] == pytest.approx(0.03 - 0.01)
    slower = C.endpoints_slower(eps, TH)
    assert slower["endpoint"].tolist() == ["/b"]
    assert slower["mean_ms_change"].iloc[0] == pytest.approx(0.30)
    assert C.endpoints_new(eps)["endpoint"].tolist() == ["/c"]
    # named thresholds: a rise of 2 pp is not above 2 pp, a rise of 30 % not above 30 %
    strict = replace(
        TH, notable_endpoint_error_rate_change=0.02 + 1e-9, notable_endpoint_latency_change=0.30
    )
    assert C.endpoints_worse(eps, strict).empty and C.endpoints_slower(eps, strict).empty


def test_notable_changes_in_order_and_in_words(sqlite_store: Store) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    found = C.notable_changes(review.changes, review.endpoints, TH)
    assert [(f["kind"], f.get("metric") or f.get("endpoint")) for f in found] == [
        ("metric", "requests_per_day"),
        ("metric", "error_rate"),
        ("metric", "cache_hit_ratio"),
        ("metric", "mean_ms"),
        ("endpoint_error_rate", "/a"),
        ("endpoint_latency", "/b"),
        ("new_endpoints", None),
    ]
    assert found[-1]["endpoints"] == ["/c"]
    words = present.main_changes(review, limit=10)
    assert words == [
        "traffic per covered day +6.7 % (7,680 requests in the month)",
        "error rate +1.21 pp (0.67 % -> 1.88 %)",
        "cache hit rate -10.00 pp (80.00 % -> 70.00 %)",
        "mean latency +15.2 % (47 ms -> 54 ms)",
        "/a: error rate +2.00 pp (3.00 %)",
        "/b: mean latency +30.0 % (100 ms -> 130 ms)",
        "new endpoints: /c",
    ]
    assert present.main_changes(review) == words[:5]


# --- memory and notes in the report's words ----------------------------------------------------


def test_a_climbing_memory_and_the_notes_in_the_report_format(
    sqlite_store: Store, shown: list
) -> None:
    """Two flat days, then 3 MiB an hour for five; the server's p50 above its p95 in
    every snapshot. The segment's growth is its slope over its level after its start
    (100 MiB), its steady climb is the figure the targets row quotes, and instants and
    counts read as everywhere else in the report."""
    h = History(sqlite_store, step=timedelta(minutes=10))
    hours, rss = [], []
    for i in range(7 * 144):
        hours.append(i / 6)
        rss.append(int(100 * MiB + max(0.0, i / 6 - 48) * 3 * MiB))
        h.scrape(rss=rss[-1], rt=(10.0, 300.0, 200.0, 350.0, 400.0))
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    # the words are the report's already in the data (the key figures' JSON carries them)
    assert any("out of order in 1,008 of 1,008 snapshots" in n for n in review.notes)
    leak = next(t["detail"] for t in review.targets.to_dict("records") if t["key"] == "memory")
    # to the end of its last fitted hour, or the last scrape in it (the window ends 23:50)
    assert re.search(r"from 2026-10-0\d \d\d:00 UTC to 2026-10-07 23:50 UTC$", leak), leak
    source = present.StoreSource(store=sqlite_store, url="sqlite:///m.sqlite", available=True)
    present.monthly.show_summary(review, source)
    summary = "".join(shown)
    assert "out of order in 1,008 of 1,008 snapshots" in summary
    # 7 days of October collected: the budgets' time figures are a projection, and say so
    assert "Collection covered 23 % of the month" in summary  # 7 / 31 days
    assert "spent (time, projected)" in present.monthly.budget_frame(review).columns
    full = replace(review, data_quality={**review.data_quality, "coverage": 0.995})
    assert "spent (time)" in present.monthly.budget_frame(full).columns
    row = re.search(r"possible leak: yes, \+(\d+\.\d)%/h from ([^<]*)</td>", summary)
    assert row is not None, summary
    assert re.fullmatch(r"2026-10-0\d \d\d:00 UTC to 2026-10-07 23:50 UTC", row[2]), row[2]
    shown.clear()
    assert present.monthly.show_memory(review.memory, "2026-10") is True
    cells = [
        [cell.get_text() for cell in tr.find_all(["th", "td"])]
        for tr in BeautifulSoup("".join(shown), "html.parser").find_all("tr")
    ]
    assert cells[0][-2:] == ["possible leak", "steady climb"], cells[0]
    seg = dict(zip(cells[0], cells[1], strict=True))
    slope = np.polyfit(hours, rss, 1)[0]
    assert seg["growth"] == f"{slope / (100 * MiB) * 100:.2f} %/h"
    climb = float(seg["steady climb"].removesuffix(" %/h"))
    assert seg["possible leak"] == "yes" and round(climb, 1) == float(row[1])


# --- a month without data: "no data", never "Requests 0" ------------------------------------------


def test_a_previous_month_without_scrapes_is_no_data(sqlite_store: Store, shown: list) -> None:
    october(sqlite_store)  # nothing at all in September
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    assert review.has_data and not review.previous_has_data
    ch = _changes(review)
    assert ch["previous"].isna().all() and ch["moved"].isna().all() and not ch["notable"].any()
    assert ch.loc["requests", "current"] == 7680
    table = present.changes_frame(review).set_index("figure")
    assert (table["2026-09"] == "no data").all()
    assert table.loc["Requests", "2026-10"] == "7,680"
    assert (table["change"] == present.DASH).all()
    assert C.notable_changes(review.changes, review.endpoints, TH) == []
    assert present.main_changes(review) == ["no data for 2026-09: nothing to compare with"]
    present.monthly.show_changes(review.changes, review)
    page = "".join(shown)
    assert "<td>no data</td>" in page and "<td>0</td>" not in page
    # per endpoint too: nothing was collected in September, so no endpoint is "new"
    eps = review.endpoints
    assert set(eps["endpoint"]) == {"/a", "/b", "/c"} and (eps["requests"] > 0).all()
    assert eps["new"].isna().all() and eps["prev_requests"].isna().all()
    assert eps[["requests_change", "error_rate_change", "mean_ms_change"]].isna().all().all()
    assert C.endpoints_new(eps).empty
    shown.clear()
    assert present.monthly.show_endpoints(eps, "2026-10") is True
    page = "".join(shown)
    assert "<td>yes</td>" not in page and "<td>no</td>" not in page


def test_a_month_without_scrapes_against_one_with_data(sqlite_store: Store) -> None:
    october(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-11", TH)
    assert not review.has_data and review.previous_has_data
    table = present.changes_frame(review).set_index("figure")
    assert (table["2026-11"] == "no data").all()
    assert table.loc["Requests", "2026-10"] == "7,680"
    assert present.main_changes(review) == ["no data for 2026-11: nothing to compare with 2026-10"]


# --- one summary behind the key figures ----------------------------------------------------------


def test_key_figures_are_the_summary_plus_the_source(sqlite_store: Store, tmp_path: Path) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    calls: list[int] = []
    summary = review.summary

    def counted() -> dict[str, Any]:
        calls.append(1)
        return summary()

    review.summary = counted  # type: ignore[method-assign]
    source = present.open_store(f"sqlite:///{tmp_path / 'none.sqlite'}")
    figures = present.review_figures(review, source, None)
    assert calls == [1]  # built once from the summary, nothing computed beside it
    s = present.jsonable(summary())
    fig = present.jsonable(figures)
    assert {k: fig[k] for k in s} == s
    assert set(fig) - set(s) == {"report", "computed", "store", "database"}
    # the summary's figures are the hand-computed ones
    assert s["totals"]["requests"] == 7680 and s["previous_totals"]["requests"] == 3600
    assert s["totals"]["errors"] == 144 and s["totals"]["mean_ms"] == pytest.approx(53.75)
    assert s["endpoints_worst_first"] == ["/a", "/b", "/c"]  # most errors first
    assert s["targets"]["error_rate"] == {"figure": 144 / 7680, "threshold": 0.01, "met": False}
    assert s["targets"]["cache_hit_rate"]["met"] is False  # 70 % is not above 70 %
    assert s["targets_met"] == 3  # availability, latency, memory
    assert s["error_budget"]["total"] == 49 and s["error_budget"]["bad"] == 0


def test_a_review_that_cannot_be_computed(shown: list, tmp_path: Path) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("store exploded")

    source = present.StoreSource(store=Broken(), url="sqlite:///x", available=True)
    review = present.load_review(source, "2026-10", TH)
    assert not review and review.daily is None
    assert present.monthly.show_latency(review.latency, review.daily, TH) is False
    assert present.monthly.show_daily_trends(review.daily) is False
    assert present.monthly.show_memory(review.memory, "2026-10") is False
    assert present.monthly.show_endpoints(review.endpoints, "2026-10") is False
    present.monthly.show_summary(review, source)
    present.monthly.show_changes(review.changes, review)
    present.monthly.show_incidents(review.incidents)
    present.monthly.show_data_quality(review.data_quality, source)
    page = "".join(shown)
    assert "Monthly review: unavailable" in page and "store exploded" in page
    assert page.count("the figures could not be computed (see above)") == 8
    assert [p["section"] for p in present.PROBLEMS] == ["Monthly review"]
    figures = present.review_figures(review, source, None)
    assert figures["computed"] is False


# --- the sections and their charts ----------------------------------------------------------------


def test_sections_of_a_month_say_what_they_draw(sqlite_store: Store, shown: list) -> None:
    two_months(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    assert present.monthly.show_latency(review.latency, review.daily, TH) is True
    assert present.monthly.show_daily_trends(review.daily) is True
    assert present.monthly.show_memory(review.memory, "2026-10") is True
    assert present.monthly.show_endpoints(review.endpoints, "2026-10") is True
    page = "".join(shown)
    assert "Worst endpoint: /a (144 errors of 4,800 requests, 3.00 %" in page
    assert "Share of time slices whose reported p95 met 500 ms" in page

    # scrapes from Oct 5 00:00 to Oct 7 00:00: three days with observations, and a delta
    # is filed on the day of the scrape that closes it: 23, 24 and 1 intervals
    fig = plots.latency_days(review.daily, TH, mean_ms=review.latency["mean_ms"])
    titles = [_title(ax) for ax in fig.axes]
    assert titles == [
        "Reported p95 met 500 ms in at least 95 % of time slices on 3 of 3 days",
        "Mean latency from counter deltas: 54 ms over the month",
    ]
    fig = plots.daily_trends(review.daily, TH)
    titles = [_title(ax) for ax in fig.axes]
    assert titles[0] == "7,680 requests; busiest day 2026-10-06 (3,840)"
    assert titles[1] == "Error rate at or above 1 % on 3 of 3 days with traffic"
    assert titles[3] == "Cache hit rate at or below 70 % on 3 of 3 days"
    # the whole month on the time axis, the days without data shaded
    left, right = fig.axes[0].get_xlim()
    assert matplotlib.dates.num2date(left).day == 1 and matplotlib.dates.num2date(right).month == 11
    assert "no data" in fig.axes[0].get_legend_handles_labels()[1]
    ax = plots.memory_usage(
        review.memory.frame,
        TH,
        restarts=review.memory.restarts,
        climbs=review.memory.leak_segments,
        month="2026-10",
    )
    assert _title(ax) == (
        "Memory peaked at 100.0 MiB (20 % of 512.0 MiB); no steady climb between restarts"
    )
    ax = plots.endpoint_errors(review.endpoints)
    assert _title(ax) == "/a had the most errors (144)"
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "/a"


def test_sections_of_a_month_without_data_draw_nothing(sqlite_store: Store, shown: list) -> None:
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    assert present.monthly.show_latency(review.latency, review.daily, TH) is False
    assert present.monthly.show_daily_trends(review.daily) is False
    assert present.monthly.show_memory(review.memory, "2026-10") is False
    assert present.monthly.show_endpoints(review.endpoints, "2026-10") is False
    page = "".join(shown)
    for box in ("Latency chart", "Daily trends", "Memory", "Endpoints"):
        assert f"{box}: unavailable" in page, box
    assert "no traffic and no observation in 2026-10" in page
    assert present.PROBLEMS == []  # no data is a finding, not a failure
    # called anyway, the charts say there is nothing to draw instead of failing
    assert plots.memory_usage(review.memory.frame, TH).texts[0].get_text() == "no memory reading"
    assert plots.endpoint_errors(review.endpoints).texts[0].get_text() == "no request counted"
    fig = plots.daily_trends(review.daily, TH)
    assert _title(fig.axes[0]) == "0 requests; busiest day 2026-10-01 (0)"


def test_notable_thresholds_come_from_lsops_toml(tmp_path: Path) -> None:
    (tmp_path / "lsops.toml").write_text(
        "[thresholds]\nnotable_latency_change = 0.5\nnotable_traffic_change = 0.1\n"
    )
    th = load_settings(env={}, cwd=tmp_path).thresholds
    assert th.notable_latency_change == 0.5 and th.notable_traffic_change == 0.1
    assert th.notable_error_rate_change == 0.001  # the others keep their defaults
    assert not math.isnan(th.notable_endpoint_latency_change)


def test_no_memory_limit_judges_the_memory_line_on_a_leak_alone(
    sqlite_store: Store, shown: list, tmp_path: Path
) -> None:
    """`memory_limit_bytes = 0` is no limit (as `lsops health` and the checklist read it):
    the review's memory line is met on a flat memory and missed on a climb, never a
    share of 0 B; the chart's title says no limit; the alert rule says why it is silent."""
    from lsops_lib.alerts.rules import RuleConfig, memory_critical
    from lsops_lib.alerts.settings import AlertSettings

    (tmp_path / "lsops.toml").write_text("[thresholds]\nmemory_limit_bytes = 0\n")
    settings = load_settings(env={}, cwd=tmp_path)
    no_limit = settings.thresholds
    assert no_limit == replace(TH, memory_limit_bytes=0)
    h = History(sqlite_store, step=timedelta(minutes=10))
    for _ in range(2 * 144):  # two flat days
        h.scrape(rss=100 * MiB)
    flat = A.monthly_review(sqlite_store, "2026-10", no_limit)
    (line,) = [t for t in flat.targets.to_dict("records") if t["key"] == "memory"]
    assert line["met"] is True and pd.isna(line["figure"])
    assert line["target"] == "no leak (no memory limit: memory_limit_bytes = 0)"
    assert line["detail"].startswith("peak rss 100 MiB (no limit set); ")
    ax = plots.memory_usage(flat.memory.frame, no_limit, month="2026-10")
    assert _title(ax).startswith("Memory peaked at 100.0 MiB (no memory limit set)")
    source = present.StoreSource(store=sqlite_store, url="sqlite:///m.sqlite", available=True)
    present.monthly.show_review_header("2026-10", source, settings)
    header = "".join(shown)
    assert "no memory leak (no memory limit set)" in header and "of 0 B" not in header
    config = RuleConfig(settings, AlertSettings())
    assert memory_critical(sqlite_store, h.t, config, "default") is None
    assert "memory_limit_bytes = 0" in config.why["memory_critical"]

    for i in range(5 * 144):  # then 3 MiB an hour for five days
        h.scrape(rss=int(100 * MiB + i / 6 * 3 * MiB))
    climbing = A.monthly_review(sqlite_store, "2026-10", no_limit)
    (line,) = [t for t in climbing.targets.to_dict("records") if t["key"] == "memory"]
    assert line["met"] is False and "possible leak: yes" in line["detail"]
