"""The shared chart look: targets dashed, UTC axes, finding titles, readable sizes."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lsops_lib import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _hours(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-10-01", periods=n, freq="h", tz="UTC"),
            "p95": range(n),
            "p50": range(n),
        }
    )


def test_timeseries_draws_target_dashed_on_a_utc_axis() -> None:
    with plots.style():
        ax = plots.timeseries(
            None,
            _hours(),
            "ts",
            "p95",
            "p95 met 500 ms all day",
            target=20,
            target_label="target 20 ms",
            ylabel="p95 (ms)",
        )
        fig = ax.figure
        assert tuple(fig.get_size_inches()) == (plots.WIDTH_IN, plots.HEIGHT_IN)
        assert fig.dpi == plots.DPI
    assert ax.get_title(loc="left") == "p95 met 500 ms all day"
    assert "UTC" in ax.get_xlabel() and ax.get_ylabel() == "p95 (ms)"
    targets = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(targets) == 1 and targets[0].get_label() == "target 20 ms"
    assert list(targets[0].get_ydata()) == [20, 20]
    assert isinstance(ax.xaxis.get_major_formatter(), mpl.dates.ConciseDateFormatter)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target 20 ms"]
    fig.canvas.draw()  # renders under Agg


def test_timeseries_several_series_and_empty_frame() -> None:
    ax = plots.timeseries(None, _hours(), "ts", ["p50", "p95"], "two series")
    assert {line.get_label() for line in ax.get_lines()} == {"p50", "p95"}
    empty = plots.timeseries(None, _hours(0), "ts", "p95", "no data this month")
    empty.figure.canvas.draw()


def test_mark_events_one_legend_entry() -> None:
    fig, ax = plots.figure()
    df = _hours()
    ax.plot(df["ts"], df["p95"])
    count = plots.mark_events(ax, [df["ts"][3], None, df["ts"][10]], "restart")
    assert count == 2
    labels = [line.get_label() for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert labels[0] == "restart" and labels[1].startswith("_")


def test_bar_ranked_largest_on_top_and_over_target_red() -> None:
    df = pd.DataFrame(
        {"endpoint": ["/a", "/b", "/c", "<script>x</script>"], "errors": [0.01, 0.2, 0.05, 0.0]}
    )
    ax = plots.bar_ranked(
        None, df, "endpoint", "errors", "/b fails most", top=3, target=0.1, formatter=plots.fmt_pct
    )
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == ["/a", "/c", "/b"]  # barh draws bottom-up: the largest is on top
    colors = [mpl.colors.to_hex(bar.get_facecolor()) for bar in ax.patches]
    assert colors[-1] == plots.BAD and colors[0] != plots.BAD


def test_style_is_scoped_and_apply_style_sets_it() -> None:
    before = mpl.rcParams["axes.spines.top"]
    with plots.style():
        assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["figure.dpi"] == plots.DPI
    assert mpl.rcParams["axes.spines.top"] == before
    with mpl.rc_context():
        plots.apply_style()
        assert mpl.rcParams["figure.figsize"] == [plots.WIDTH_IN, plots.HEIGHT_IN]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (float("nan"), "–"),
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (3 * 1024**3, "3.0 GiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_fmt_bytes(value, text) -> None:
    assert plots.fmt_bytes(value) == text


def test_fmt_pct_and_ms() -> None:
    assert plots.fmt_pct(0.0123) == "1.2 %"
    assert plots.fmt_pct(0.995, 2) == "99.50 %"
    assert plots.fmt_pct(math.nan) == "–"
    assert plots.fmt_ms(0.42) == "0.42 ms"
    assert plots.fmt_ms(350) == "350 ms"
    assert plots.fmt_ms(2500) == "2.5 s"
    assert plots.fmt_ms(120_000) == "2.0 min"
    assert plots.fmt_ms(2 * 86_400_000 + 6_000) == "2 d 0 h"  # a two-day report run
    assert plots.fmt_ms(3_900_000) == "1 h 05 min"
    assert plots.fmt_ms(None) == "–"


def test_settled_date_ticks_draw_the_very_same_picture() -> None:
    """`settle_date_ticks` fixes the ticks and remembers their labels (and the offset
    text): the PNG is byte for byte the one drawn with the live date locator and concise
    formatter (the review's four-panel daily chart, shared time axis, tight bounding box)."""
    import io

    days = pd.DataFrame(
        {
            "day": pd.date_range("2025-09-01", periods=30, freq="D", tz="UTC"),
            "observations": [1440] * 25 + [0] * 5,
            "requests": range(1000, 1030),
            "errors": range(30),
            "error_rate": [i / 1000 for i in range(30)],
            "mean_ms": [80.0 + i for i in range(30)],
            "cache_hit_ratio": [0.6 + i / 100 for i in range(30)],
        }
    )

    endpoints = pd.DataFrame(
        {"endpoint": [f"/api/e{i}" for i in range(12)], "requests": [100] * 12, "errors": range(12)}
    )

    def png(settle: bool) -> list[bytes]:
        real = plots.review.settle_date_ticks, plots.review.settle_titles
        if not settle:  # the oracle: the same charts, ticks, labels and titles placed live
            plots.review.settle_date_ticks = plots.review.settle_titles = lambda fig: None
        out = []
        try:
            with plots.style():
                charts = (plots.daily_trends(days), plots.endpoint_errors(endpoints).figure)
                for fig in charts:
                    buf = io.BytesIO()
                    fig.savefig(buf, format="png", bbox_inches="tight")
                    out.append(buf.getvalue())
                    plt.close(fig)
        finally:
            plots.review.settle_date_ticks, plots.review.settle_titles = real
        return out

    settled = png(True)
    assert settled == png(False)
    fig = plots.daily_trends(days)  # settled: a fixed locator, the remembered labels
    assert not isinstance(fig.axes[-1].xaxis.get_major_locator(), matplotlib.dates.DateLocator)


def test_titles_are_settled_only_with_nothing_above_the_axes() -> None:
    """A title stays placed by matplotlib when something may be drawn above its axes:
    ticks or labels on top, or a y offset text (a ScalarFormatter's)."""
    from lsops_lib.plots.look import _nothing_above

    fig, (plain, top, scalar) = plt.subplots(3, 1)
    for ax in (plain, top):
        plots.count_axis(ax)
    top.xaxis.tick_top()
    assert _nothing_above(plain)
    assert not _nothing_above(top)
    assert not _nothing_above(scalar)  # ScalarFormatter: an offset text may sit top left


def _y_labels(ax: Any) -> list[tuple[float, str]]:
    ax.figure.canvas.draw()
    low, high = ax.get_ylim()
    return [
        (tick, label.get_text())
        for tick, label in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
        if low - 1e-9 <= tick <= high + 1e-9
    ]


@pytest.mark.parametrize("counts", [[0, 0, 0, 0], [0, 1, 3, 2], [0, 2, 1, 0]])
def test_a_count_axis_of_a_few_counts_labels_whole_numbers_once(counts: list[int]) -> None:
    """The 401/403 chart of a quiet month (all zero, or a few records): each tick a whole
    number, labelled with itself, no label twice (not 0, 0, 0, 0, 0)."""
    hours = pd.date_range("2025-09-01", periods=len(counts), freq="h", tz="UTC")
    hourly = pd.DataFrame({"hour": hours, "auth_failures": counts, "rate_limited": 0})
    ax = plots.auth_failures(hourly)
    labels = _y_labels(ax)
    assert len(labels) >= 2, labels
    assert all(float(tick).is_integer() and text == f"{int(tick):,}" for tick, text in labels)
    assert len({text for _, text in labels}) == len(labels)
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= max(1, max(counts))
    plt.close("all")


def test_a_chart_is_described_by_its_titles_or_what_it_says_instead() -> None:
    fig, (top, bottom) = plt.subplots(2, 1)
    top.set_title("p95 met 500 ms in 97 % of hours", loc="left")
    bottom.set_title("Errors\n  on 3 days", loc="center")
    bottom.set_title("p95 met 500 ms in 97 % of hours", loc="right")  # said once
    assert plots.describe(fig) == "Chart: p95 met 500 ms in 97 % of hours; Errors on 3 days"
    fig.suptitle("Latency")
    assert plots.describe(fig).startswith("Chart: Latency; p95 met")
    empty, ax = plt.subplots()
    ax.text(0.5, 0.5, "no memory reading")
    assert plots.describe(empty) == "Chart: no memory reading"
    assert plots.describe(plt.figure()) == ""


def test_the_charts_write_thresholds_with_the_digits_they_need() -> None:
    """error_rate 0.005 is "0.5 %" on the daily chart, never "0 %"; cache 72.5 %."""
    from lsops_lib.config import Thresholds

    days = pd.DataFrame(
        {
            "day": pd.date_range("2026-10-01", periods=5, freq="D", tz="UTC"),
            "observations": [1440] * 5,
            "requests": [1000] * 5,
            "errors": [1, 2, 9, 3, 4],
            "error_rate": [0.001, 0.002, 0.009, 0.003, 0.004],
            "mean_ms": [80.0] * 5,
            "cache_hit_ratio": [0.7, 0.8, 0.71, 0.9, 0.6],
        }
    )
    th = Thresholds(error_rate=0.005, cache_hit_rate=0.725)
    fig = plots.daily_trends(days, th)
    titles = [ax.get_title("left") or ax.get_title() for ax in fig.axes]
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]
    assert "Error rate at or above 0.5 % on 1 of 5 days with traffic" in titles
    assert "Cache hit rate at or below 72.5 % on 3 of 5 days" in titles
    assert {"target < 0.5 %", "target > 72.5 %"} <= set(labels), labels
    plt.close(fig)
