"""The notebooks and their archived reports (QA 20).

- a boolean parameter given as text ("false", as papermill's -p, Airflow or JupyterLab give
  it) is read as `lsops report` reads it, and "maybe" is refused, in every notebook;
- a blank postmortem title is refused (exit 2, one line; the same rule under papermill);
- a month or a window without any observation shows its incidents, breaches and alerts
  as unknown, never as good; a month not started says so (no "nan%", no elapsed month);
- the postmortem's hourly traffic chart names the whole hours it counts;
- the review's memory climb ends at the end of its last hour, not at its start;
- counts read as everywhere else ("2 restarts", "1,993 observations").
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from click.testing import CliRunner

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from lsops_lib import analysis as A  # noqa: E402
from lsops_lib import plots, present, reports  # noqa: E402
from lsops_lib.alerts.report import detection  # noqa: E402
from lsops_lib.cli import main  # noqa: E402
from lsops_lib.config import Thresholds  # noqa: E402
from lsops_lib.exceptions import ParameterError  # noqa: E402
from lsops_lib.reports.parameters import check_parameter  # noqa: E402
from lsops_lib.store import Store  # noqa: E402
from tests.fixtures.analysis import History, MiB  # noqa: E402
from tests.fixtures.monthly import october  # noqa: E402
from tests.test_qa15_params_notebooks import cli_env  # noqa: E402, F401 - the fixture

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
TH = Thresholds()
WINDOW = {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z"}


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every piece of markup the report's sections display."""
    out: list[str] = []
    monkeypatch.setattr(
        present.display, "_display", lambda obj, **_kw: out.append(getattr(obj, "data", str(obj)))
    )
    present.begin()
    return out


def _source(store: Store) -> present.StoreSource:
    return present.StoreSource(store=store, url="sqlite:///m.sqlite", available=True)


def _title(ax: Any) -> str:
    return ax.get_title("left") or ax.get_title()


# --- 1. a boolean parameter given as text -------------------------------------------------------


def test_include_monitoring_given_as_text_is_read_as_lsops_report_reads_it(
    sqlite_store: Store,
) -> None:
    """Three intervals of /a 100 requests and the collector's /health 10: without the
    monitoring endpoints the month counts 300 requests, with them 330."""
    h = History(sqlite_store, start=datetime(2026, 10, 5, tzinfo=UTC))
    h.scrape()  # the baseline: nothing counted yet
    for _ in range(3):
        h.traffic("/a", 100, 20.0).traffic("/health", 10, 1.0)
        h.scrape()
    source = _source(sqlite_store)
    for given, requests in (("false", 300), ("False", 300), ("no", 300), ("true", 330)):
        review = present.load_review(source, "2026-10", TH, include_monitoring=given)
        assert review.totals["requests"] == requests, given
    with pytest.raises(ParameterError) as checked:
        present.load_review(source, "2026-10", TH, include_monitoring="maybe")
    with pytest.raises(ParameterError) as refused:
        reports.validate("monthly-review", {"include_monitoring": "maybe"}, notebooks_dir=NOTEBOOKS)
    assert str(checked.value) == str(refused.value)  # the same rule, the same words


def test_every_notebook_checks_its_boolean_parameters() -> None:
    """Each parameter a notebook declares as a bool is checked by `check_parameter` in
    the notebook itself (plain papermill gives "false" as text)."""
    import papermill

    found = 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        declared = papermill.inspect_notebook(str(path))
        code = "\n".join(
            "".join(c["source"])
            for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"
        )
        for name, info in declared.items():
            if info.get("inferred_type_name") == "bool":
                found += 1
                call = rf'{name} = check_parameter\("[a-z-]+", "{name}", {name}\)'
                assert re.search(call, code), (path.name, name)
    assert found >= 1  # monthly_review's include_monitoring at least


def test_plain_papermill_refuses_a_bad_boolean_and_a_blank_title(tmp_path: Path) -> None:
    from tests.test_qa15_params_notebooks import ANSI, _in_one_kernel

    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env.update(LSOPS_STORE=f"sqlite:///{tmp_path / 'never.sqlite'}", LSOPS_DATA=str(tmp_path))
    runs = {
        "monitoring": ("monthly_review.ipynb", {"include_monitoring": "maybe"}),
        "title": ("incident_postmortem.ipynb", {"title": "   "}),
    }
    found = _in_one_kernel(runs, env, tmp_path)
    for name, words in (
        ("monitoring", "parameter include_monitoring must be true or false, not 'maybe'"),
        ("title", "parameter title must not be blank"),
    ):
        failed, nb = found[name]
        assert failed is not None, name  # the parameters' cell fails: nothing runs after it
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert len(errors) == 1 and errors[0].ename == "ParameterError", errors
        assert words in errors[0].evalue
        shown = ANSI.sub("", "\n".join(errors[0].traceback)).strip().splitlines()
        assert shown == [f"ParameterError: {errors[0].evalue}"]
    assert not (tmp_path / "never.sqlite").exists()


# --- 6. a blank title -------------------------------------------------------------------------------


def test_a_blank_title_is_refused_before_anything_runs(cli_env: Path) -> None:  # noqa: F811
    outputs = cli_env
    args = ["report", "postmortem", "--start", WINDOW["start"], "--end", WINDOW["end"]]
    for blank in ("   ", "", "\t"):
        result = CliRunner().invoke(main, [*args, "--title", blank])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("lsops: parameter title must not be blank")
        assert result.stderr.count("\n") == 1
    assert not outputs.exists()
    with pytest.raises(ParameterError) as checked:
        check_parameter("postmortem", "title", "  ")
    assert str(checked.value).startswith("parameter title must not be blank")
    assert check_parameter("postmortem", "title", None) is None  # named after the incident
    _, values = reports.validate("postmortem", {**WINDOW, "title": " x "}, notebooks_dir=NOTEBOOKS)
    assert values["title"] == " x "


# --- 2. a month or a window without any observation ---------------------------------------------


def test_a_month_without_data_shows_its_incidents_and_alerts_as_unknown(
    sqlite_store: Store, shown: list[str]
) -> None:
    october(sqlite_store)  # nothing at all in November
    source = _source(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-11", TH)
    assert not review.has_data and review.incidents.empty
    present.monthly.show_incidents(review.incidents, review)
    alerts = present.alerts.month_alerts(source, "2026-11", None, review.incidents, review)
    present.alerts.show_month_alerts(alerts)
    page = "".join(shown)
    assert "Incidents: unknown" in page and "no incident could be found" in page
    assert "Incidents caught by an alert: unknown" in page
    assert "No incident found" not in page and "caught by an alert</strong>" not in page
    # October has data and no incident other than restarts: nothing to catch, not "all caught"
    shown.clear()
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    assert review.has_data
    assert (review.incidents["kind"] == "restart").all() if len(review.incidents) else True
    alerts = present.alerts.month_alerts(source, "2026-10", None, review.incidents, review)
    present.alerts.show_month_alerts(alerts)
    page = "".join(shown)
    assert "none for an alert to catch" in page and "Every incident" not in page


def test_a_postmortem_of_an_empty_window_says_unknown(
    sqlite_store: Store, shown: list[str]
) -> None:
    october(sqlite_store)  # hourly scrapes from 2026-10-05, nothing in September
    source = _source(sqlite_store)
    window = present.choose_window(
        source, TH, start="2026-09-01T00:00Z", end="2026-09-01T02:00Z", title="quiet"
    )
    pm = present.load_postmortem(source, window, TH)
    assert pm.problem is None and pm.availability.observations == 0
    present.show_pm_summary(pm.summary())
    present.show_impact(pm, pm.endpoints)
    present.show_detection(pm.incidents, present.alerts.alert_detection(source, pm), pm)
    page = "".join(shown)
    assert "whether a threshold was breached, and how many requests failed, is unknown" in page
    assert "unknown: no observation in the window" in page
    assert "No observation in this window: whether a threshold was breached is unknown" in page
    assert "whether lsops would have detected the incident is unknown" in page
    for good in ("No threshold breach", "0 of 0 requests failed", "no threshold breach in this"):
        assert good not in page, good
    assert "not detected by lsops" not in page
    # a window with observations and no breach still says so
    shown.clear()
    window = present.choose_window(
        source, TH, start="2026-10-05T06:00Z", end="2026-10-05T09:00Z", title="calm"
    )
    pm = present.load_postmortem(source, window, TH)
    assert pm.availability.observations > 0 and pm.impact_start is None
    present.show_pm_summary(pm.summary())
    present.show_detection(pm.incidents, None, pm)
    page = "".join(shown)
    assert "No threshold breach found between" in page
    assert "The history shows no threshold breach in this window." in page
    said = detection(sqlite_store, None, None, window.start, window.end, observations=36)
    assert said["message"].endswith("the incident was not detected by lsops.")


# --- 5. a month not started -----------------------------------------------------------------------


def test_a_month_not_started_says_so(sqlite_store: Store, shown: list[str]) -> None:
    october(sqlite_store)
    review = A.monthly_review(sqlite_store, "2099-01", TH)
    detail = review.targets.set_index("key").loc["availability", "detail"]
    assert "nan" not in detail and detail.endswith("; month not started")
    assert review.data_quality["elapsed_s"] == 0.0 and review.data_quality["started"] is False
    figures = review.summary()["data_quality"]
    assert figures["elapsed_s"] == 0.0 and figures["started"] is False
    assert "2099-01 has not started: no observation could be collected yet" in review.notes
    assert present.monthly._in_progress(review) == ""  # no "0 s passed" of a month to come
    present.monthly.show_data_quality(review.data_quality, _source(sqlite_store))
    page = "".join(shown)
    assert ">not started</td>" in page and "the month has not started" in page
    assert "no gap in collection" not in page
    # a month that is over keeps its figures
    over = A.monthly_review(sqlite_store, "2026-10", TH)
    assert over.data_quality["started"] is True
    assert over.data_quality["elapsed_s"] == 31 * 86400.0


# --- 3. the hourly traffic chart ------------------------------------------------------------------


def test_an_hourly_traffic_chart_names_the_whole_hours_it_counts() -> None:
    """Hourly buckets of 100 requests over four days; an impact window from 09:40 to
    12:10 on the first day lies in the buckets 09:00, 10:00, 11:00 and 12:00: 400
    requests from 09:00 to 13:00, which is what the title must say (not 'in the impact
    window', whose own count is the bundle's, per scrape)."""
    start = pd.Timestamp("2026-11-19T00:00Z")
    ts = pd.date_range(start, periods=96, freq="h")
    series = pd.DataFrame(
        {
            "ts": ts,
            "period": "window",
            "requests": 100,
            "errors": 0,
            "error_rate": 0.0,
            "mean_ms": 20.0,
        }
    )
    fig = plots.window_traffic(
        series, start + pd.Timedelta("9h40min"), start + pd.Timedelta("12h10min")
    )
    assert _title(fig.axes[0]) == (
        "Requests per interval: 400 in the whole hours 2026-11-19 09:00 to 2026-11-19 13:00 UTC"
    )
    assert "in the impact window" not in _title(fig.axes[1])


# --- 4. the memory climb's end ----------------------------------------------------------------------


def test_the_memory_climb_ends_at_the_end_of_its_last_hour(sqlite_store: Store) -> None:
    """Two flat days, then 3 MiB an hour to the last scrape (10 min apart): the climb
    lasts to the last scrape, 2026-10-07 23:50, so the detail's span must reach it."""
    h = History(sqlite_store, start=datetime(2026, 10, 1, tzinfo=UTC), step=timedelta(minutes=10))
    for i in range(7 * 144):
        h.scrape(rss=int(100 * MiB + max(0.0, i / 6 - 48) * 3 * MiB))
    last = datetime(2026, 10, 1, tzinfo=UTC) + 1007 * timedelta(minutes=10)
    review = A.monthly_review(sqlite_store, "2026-10", TH)
    detail = review.targets.set_index("key").loc["memory", "detail"]
    found = re.search(r"from (\S+ \S+) UTC to (\S+ \S+) UTC$", detail)
    assert found is not None, detail
    start, end = (datetime.fromisoformat(f"{t}+00:00") for t in found.groups())
    assert start <= datetime(2026, 10, 3, 1, tzinfo=UTC)  # the climb starts after 48 h
    assert last <= end <= last + timedelta(hours=1), detail
    assert found[2] == "2026-10-07 23:50"  # the last scrape (analysis.memory.climb_span, QA 23)


# --- 7, 8. counts in words ------------------------------------------------------------


def test_incident_kinds_are_counted_in_words(shown: list[str]) -> None:
    t = pd.Timestamp("2026-11-03T10:00Z")
    rows = [
        ("restart", None),
        ("restart", None),
        ("cache_fall", None),
        ("error_rate", "/a"),
        ("error_rate", "/b"),
        ("memory_climb", None),
    ]
    incidents = pd.DataFrame(
        {
            "start": [t] * len(rows),
            "end": [t + pd.Timedelta(minutes=10)] * len(rows),
            "duration_s": [600.0] * len(rows),
            "kind": [k for k, _ in rows],
            "severity": ["warning"] * len(rows),
            "endpoint": [e for _, e in rows],
            "detail": ["x"] * len(rows),
            "postmortem_command": [""] * len(rows),
        }
    )
    present.monthly.show_incidents(incidents)
    assert (
        "<p>6 incidents: 2 restarts, 2 error-rate breaches, 1 cache fall, 1 memory climb</p>"
        in "".join(shown)
    )


def test_the_health_chart_separates_thousands() -> None:
    health = pd.DataFrame(
        {
            "ts": pd.date_range("2026-11-01T00:00Z", periods=1993, freq="5min"),
            "status": ["OK"] * 1992 + ["NO_ANSWER"],
        }
    )
    ax = plots.window_health(health)
    assert _title(ax) == "Health: 1 of 1,993 observations in the window were not OK"
