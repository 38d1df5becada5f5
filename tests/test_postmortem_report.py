"""The postmortem's presentation without a kernel: its charts (lsops_lib.plots.postmortem),
its sections (lsops_lib.present.postmortem), its key figures, a failing bundle, and the
notebook's layout (the shared style of the report notebooks)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lsops_lib import analysis as A
from lsops_lib import plots, present
from lsops_lib.analysis.incidents import IncidentWindow
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import T0
from tests.fixtures.postmortem import outage_and_burst

matplotlib.use("Agg")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "incident_postmortem.ipynb"
# the key figures the postmortem had before issue 9 (baseline keyfig-postmortem.json)
EARLIER_KEYS = {
    "availability",
    "computed",
    "duration_s",
    "endpoints_by_harm",
    "error_rate",
    "error_records_sampled",
    "failed",
    "impact_end",
    "impact_start",
    "incidents",
    "no_answer",
    "notes",
    "observations",
    "problems",
    "report",
    "requests",
    "restarts",
    "severity",
    "store",
    "timeline_events",
    "title",
    "window_chosen",
    "window_end",
    "window_start",
}
ADDED_KEYS = {"most_harmed_endpoint", "harmed", "excluded"}
ADDED_KEYS |= {"top_new_pattern"}  # issue 10: the logs' top new error pattern of the window


@pytest.fixture
def burst(sqlite_store: Store) -> A.Postmortem:
    outage_and_burst(sqlite_store)
    return A.postmortem(
        sqlite_store,
        T0 + pd.Timedelta(minutes=90),
        T0 + pd.Timedelta(minutes=210),
        Thresholds(),
        baseline=(T0, T0 + pd.Timedelta(minutes=60)),
        title="/b errors",
    )


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
    yield
    plt.close("all")


def _title(ax: Any) -> str:
    """The title wherever the look puts it (left, in the lsops look)."""
    return ax.get_title("left") or ax.get_title()


# --- charts --------------------------------------------------------------------------------------


def test_window_traffic_titles_state_the_impact_windows_figures(burst: A.Postmortem) -> None:
    fig = plots.window_traffic(
        burst.series,
        burst.impact_start,
        burst.impact_end,
        restarts=burst.restarts["ts"],
        error_target=burst.thresholds.error_rate,
    )
    top, rate, latency = fig.axes
    assert _title(top) == f"Requests per interval: {burst.requests:,} in the impact window"
    assert _title(rate).startswith(f"Error rate {burst.error_rate:.2%}".replace("%", " %"))
    assert "in the baseline" in _title(rate) and "Mean latency" in _title(latency)
    labels = rate.get_legend_handles_labels()[1]
    assert {"baseline", "window", "impact window", "target < 1 %"} <= set(labels)


def test_charts_with_nothing_to_draw() -> None:
    empty = pd.DataFrame(columns=["ts", "period", "requests", "errors", "error_rate", "mean_ms"])
    fig = plots.window_traffic(empty)
    assert _title(fig.axes[0]) == "No traffic counted in the window or its baseline"
    assert plots.window_health(pd.DataFrame(columns=["ts", "status"])) is None
    assert plots.window_memory(pd.DataFrame(columns=["ts", "rss"])) is None
    assert plots.harm_ranking(pd.DataFrame(columns=["endpoint", "harm_s", "harmed"])) is None


def test_harm_and_health_and_memory_charts(burst: A.Postmortem) -> None:
    ax = plots.harm_ranking(burst.endpoints)
    assert ax is not None and _title(ax).startswith("Most harmed: /b, ")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["/b"]
    assert ax.get_legend_handles_labels()[1] == ["errors beyond the baseline"]
    health = plots.window_health(burst.health)
    assert health is not None and _title(health).startswith(
        "Health: 2 of 24 "
    )  # the outage's last two
    memory = plots.window_memory(burst.memory, burst.thresholds)
    assert memory is not None and "no steady climb" in _title(memory)
    assert set(plots.postmortem.__all__) <= set(plots.__all__)


# --- sections ------------------------------------------------------------------------------------


def test_harm_findings_in_words() -> None:
    th = Thresholds()
    base = {"requests": 500, "errors_p": 0.5, "latency_p": 0.5}
    assert present.postmortem.finding(
        {**base, "errors_significant": True, "errors_p": 1e-9}, th
    ) == ("errors beyond the baseline (p < 0.001)")
    assert present.postmortem.finding(
        {**base, "latency_significant": True, "latency_p": 0.004}, th
    ) == ("slower (p = 0.004)")
    assert present.postmortem.finding({**base, "errors_p": 0.0875}, th) == (
        "within noise (errors p = 0.087, latency p = 0.500)"
    )
    assert present.postmortem.finding({**base, "latency_p": 1e-7}, th) == (
        "latency beyond chance but below the minimum that counts"
    )
    few = {"requests": 9, "errors_p": 1.0, "latency_p": float("nan")}
    assert present.postmortem.finding(few, th) == (
        "within noise (errors p = 1.000, latency not tested (under 30 requests))"
    )


def test_sections_show_the_frames_they_are_given(burst: A.Postmortem, shown: list[str]) -> None:
    summary = burst.summary()
    assert summary["harmed"][0]["reference"] == "baseline"  # tested against its baseline
    present.show_pm_summary(summary)
    assert "Most harmed endpoint: /b (" in shown[0] and "errors beyond its baseline" in shown[0]
    present.show_impact(burst, burst.endpoints)
    page = "".join(shown)
    assert (
        "Endpoints ranked by harm" in page and "errors beyond the baseline (p &lt; 0.001)" in page
    )
    shown.clear()
    present.show_timeline(burst.timeline)
    present.show_detection(burst.incidents)
    present.show_resolution(burst, burst.restarts)
    present.show_evidence(burst, burst.error_counts)
    page = "".join(shown)
    assert "threshold crossed" in page and "The first breaching observation" in page
    assert "Back within thresholds at" in page
    assert present.PROBLEMS == []


def test_key_figures_are_the_bundles_summary(burst: A.Postmortem) -> None:
    source = present.StoreSource(store=None, url="sqlite:///m", available=True)
    window = IncidentWindow(
        pd.Timestamp(burst.start), pd.Timestamp(burst.end), "/b errors", "the window given"
    )
    figures = present.postmortem_figures(burst, window, "SEV2", source)
    assert set(figures) | {"problems"} == EARLIER_KEYS | ADDED_KEYS
    summary = burst.summary()
    assert {k: figures[k] for k in summary} == summary
    assert figures["endpoints_by_harm"][0] == "/b" and figures["most_harmed_endpoint"] == "/b"
    assert figures["harmed"][0]["excess_errors"] == pytest.approx(480.0)
    assert json.dumps(present.jsonable(figures))


def test_a_bundle_that_cannot_be_computed_keeps_every_cell_running(
    shown: list[str], tmp_path: Path
) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("disk I/O error")

    source = present.StoreSource(store=Broken(), url="sqlite:///m", available=True)
    window = present.choose_window(
        present.open_store(f"sqlite:///{tmp_path / 'none.sqlite'}"),
        Thresholds(),
        start="2026-10-16T01:45Z",
        end="2026-10-16T03:25Z",
    )
    pm = present.load_postmortem(source, window, Thresholds())
    assert pm.problem == "RuntimeError: disk I/O error"
    assert [p["section"] for p in present.PROBLEMS] == ["Postmortem facts"]
    # every cell of the notebook, as written there
    present.show_postmortem_header(pm, window, "SEV2", source)
    present.show_pm_summary(pm.summary())
    present.show_impact(pm, pm.endpoints)
    assert plots.harm_ranking(pm.endpoints) is None
    present.show_timeline(pm.timeline)
    plots.window_traffic(pm.series, pm.impact_start, pm.impact_end, restarts=pm.restarts["ts"])
    assert plots.window_health(pm.health) is None
    assert plots.window_memory(pm.memory, pm.thresholds) is None
    present.show_detection(pm.incidents)
    present.show_resolution(pm, pm.restarts)
    present.show_evidence(pm, pm.error_counts)
    figures = present.postmortem_figures(pm, window, "SEV2", source)
    assert figures["computed"] is False and figures["title"] == window.title
    assert "requests" not in figures  # unknown, never 0
    assert [p["section"] for p in present.PROBLEMS] == ["Postmortem facts"]
    assert "disk I/O error" in "".join(shown)


# --- the notebook: the report notebooks' shared style -----------------------------------------------

_PARAMETER = re.compile(r"^[a-z_][a-z0-9_]*: (str|int|float|bool) = \S.*  # \S.*$")


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_notebook_follows_the_shared_style() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = nb["cells"]
    ids = [c["id"] for c in cells]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"cell-\d\d", i) for i in ids)
    for cell in cells:  # the source only: no outputs, no execution counts
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    # (a) the title and the rules behind the figures
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith(
        "# Incident postmortem\n"
    )
    assert "harm_significance" in _source(cells[0]) and "incident_margin_minutes" in _source(
        cells[0]
    )
    # (b) the parameters, one `name: type = default  # comment` a line
    assert cells[1]["metadata"].get("tags") == ["parameters"]
    lines = [line for line in _source(cells[1]).splitlines() if not line.startswith("#")]
    assert lines and all(_PARAMETER.match(line) for line in lines), lines
    # (c) the setup
    setup = _source(cells[2]).splitlines()
    assert setup[:3] == [
        "%matplotlib inline",
        "from lsops_lib import plots, present",
        "from lsops_lib.config import load_settings",
    ]
    assert "present.begin()" in setup and "settings = load_settings()" in setup
    assert any(line.startswith("pm = present.load_postmortem(") for line in setup)
    # (d) each section: a `## Heading` cell saying what it shows, then one code cell
    body = cells[3:]
    for heading, code in zip(body[0::2], body[1::2], strict=True):
        assert heading["cell_type"] == "markdown" and _source(heading).startswith("#")
        assert code["cell_type"] == "code"
    headings = [_source(c).splitlines()[0] for c in body[0::2]]
    assert headings == [
        "## Summary",
        "## Impact",
        "## Timeline",
        "### The window against its baseline",
        "## Detection",
        "## Resolution",
        "## Root cause and trigger",
        "## Action items",
        "## Lessons learned",
        "## Key figures",
    ]
    # each chart drawn in its cell from the data, by plots
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    for chart in ("plots.harm_ranking(harm)", "plots.window_traffic(", "plots.window_health("):
        assert chart in code
    assert "show_window_charts" not in code
    # (e) the key figures, last, from the bundle's summary
    assert cells[-1]["metadata"].get("tags") == [present.KEY_FIGURES_TAG]
    assert "present.postmortem_figures(pm, window, severity, source)" in _source(cells[-1])
