"""The monthly review and postmortem notebooks, executed with papermill (through
`lsops_lib.reports.run_report` and under plain `papermill`) against a history that the
collector gathered from the simulated API with a scripted scenario.

The scenario (5-minute scrapes, 2026-09-30T20:00Z .. 2026-10-04T00:00Z, ~4 s to collect):

- 4 hours of September (the previous month of the review), then 3 days of October;
- a 40-minute outage on 2026-10-02 02:00-02:40, then a process restart;
- an error burst on /projects/:id (half its requests fail) on 2026-10-03 03:00-04:00;
- an endpoint named `<script>alert(1)</script>` with a little traffic;
- settings holding a planted API token and a database URL with a planted password (the
  database is down: nothing listens on its port).

Figures are read back from the report's key-figures output (`present.read_key_figures`:
the `application/json` output tagged `lsops-key-figures`), text from the archived HTML.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from lsops_lib import present, reports
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.exceptions import ParameterError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TOKEN = "tok-PLANTED-nb-4c1d9e"
DB_PASSWORD = "pw-PLANTED-nb-a7b3f0"
DB_URL = f"postgresql://lsops:{DB_PASSWORD}@127.0.0.1:1/longsang"  # nothing listens there
XSS = "<script>alert(1)</script>"
EVERY = timedelta(minutes=5)
START = datetime(2026, 9, 30, 20, tzinfo=UTC)
END = datetime(2026, 10, 4, tzinfo=UTC)
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)


def at(days: int, hours: int = 0, minutes: int = 0) -> datetime:
    return DAY0 + timedelta(days=days, hours=hours, minutes=minutes)


OUTAGE = (at(1, 2), at(1, 2, 40))
BURST = (at(2, 3), at(2, 4))


def _collect_history(url: str) -> pd.DataFrame:
    """Collect the scenario into the store at `url`; returns the ledger of October."""
    from lsops_lib.api import Client
    from lsops_lib.collect import collect_once
    from lsops_lib.simapi import EndpointSpec, Event, Scenario, SimClock, SimulatedAPI
    from lsops_lib.store import Store

    scenario = Scenario(
        endpoints=[
            EndpointSpec("/copilot/chat", "POST", 4.0, 300.0, 0.0),
            EndpointSpec("/projects/:id", "GET", 5.0, 25.0, 0.0),
            EndpointSpec("/agents", "GET", 2.0, 30.0, 0.0),
            EndpointSpec(XSS, "GET", 0.5, 20.0, 0.0),
        ],
        events=[
            Event("outage", *OUTAGE),
            Event("restart", OUTAGE[1]),
            Event("errors", *BURST, "/projects/:id", 0.5),
        ],
        start=START,
        seed=11,
    )
    clock = SimClock(START)
    steps = int((END - START) / EVERY) + 1
    with Store(url) as store, SimulatedAPI(scenario, clock=clock, restart_delay_s=0.05) as api:
        with Client(api.url, token=TOKEN, retries=0, timeout_s=5.0) as client:
            for i in range(steps):
                clock.set(START + i * EVERY)
                collect_once(client, store, clock=clock.now)
        # October's counter deltas start with the scrape that closes 23:55 -> 00:00
        return api.ledger(DAY0 - EVERY, END, include_monitoring=False)


def _papermill(notebook: str, out: Path, params: dict[str, str], env: dict[str, str]):
    args = [sys.executable, "-m", "papermill", str(NOTEBOOKS / notebook), str(out)]
    for name, value in params.items():
        args += ["-p", name, value]
    args += ["--no-progress-bar", "--cwd", str(out.parent)]
    return subprocess.Popen(
        args, env=env, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every kernel run of this file, started together (two cores, ~2-3 s a kernel):
    three archived runs through run_report and two plain papermill runs."""
    tmp = tmp_path_factory.mktemp("notebooks")
    store_url = f"sqlite:///{tmp / 'metrics.sqlite'}"
    ledger = _collect_history(store_url)
    env = {"LSOPS_API_TOKEN": TOKEN, "LSOPS_DATABASE_URL": DB_URL, "LSOPS_STORE": store_url}
    settings = load_settings(env=env, cwd=tmp)
    outputs = tmp / "outputs"

    plain_env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    plain_env.update(LSOPS_STORE=store_url, LSOPS_DATA=str(tmp / "data"))
    plain = tmp / "plain"
    plain.mkdir()
    procs = {
        "plain_review": _papermill(
            "monthly_review.ipynb", plain / "review.ipynb", {"month": "2026-10"}, plain_env
        ),
        "plain_outage": _papermill(
            "incident_postmortem.ipynb",
            plain / "outage.ipynb",
            {"start": "2026-10-02T01:30Z", "end": "2026-10-02T03:30Z", "title": "API outage"},
            plain_env,
        ),
        # no window: the notebook's own default (the latest incident)
        "plain_default": _papermill(
            "incident_postmortem.ipynb", plain / "default.ipynb", {}, plain_env
        ),
    }
    jobs = {
        "review": ("monthly-review", {"month": "2026-10"}),
        "empty": ("monthly-review", {"month": "2026-08"}),
        "burst": (
            "postmortem",
            {
                "start": "2026-10-03T02:30:00Z",
                "end": "2026-10-03T05:00:00Z",
                "title": f"Error burst {XSS}",
                "severity": "SEV2",
            },
        ),
    }

    def run(kind: str, params: dict[str, Any]) -> reports.Run:
        return reports.run_report(
            kind,
            params,
            settings=settings,
            outputs_dir=outputs,
            notebooks_dir=NOTEBOOKS,
            timeout_s=120,
            progress=False,
            cwd=tmp,
        )

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(run, *job) for name, job in jobs.items()}
        result: dict[str, Any] = {name: f.result() for name, f in futures.items()}
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output.decode(errors="replace")[-3000:]
        result[name] = nbformat.read(plain / f"{name.split('_')[1]}.ipynb", as_version=4)
    result.update(outputs=outputs, ledger=ledger, store_url=store_url)
    return result


def _figures(run: reports.Run, *, failed: bool = False) -> dict[str, Any]:
    assert run.ok or failed, run.error
    return present.read_key_figures(run.ipynb_path)


def _html(run: reports.Run) -> str:
    return run.html_path.read_text(encoding="utf-8")


def _html_outputs(nb: Any) -> str:
    """Every text/html and text/markdown output the notebook itself displayed."""
    parts = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            for mime in ("text/html", "text/markdown"):
                value = (output.get("data") or {}).get(mime)
                if value:
                    parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def _no_errors(nb: Any) -> None:
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output.get("evalue")


# --- the monthly review --------------------------------------------------------------------------


def test_review_finds_the_outage_with_its_length(runs: dict) -> None:
    figures = _figures(runs["review"])
    assert figures["month"] == "2026-10" and figures["has_data"] is True
    outages = [i for i in figures["incidents"] if i["kind"] == "no_answer"]
    assert len(outages) == 1
    length = (OUTAGE[1] - OUTAGE[0]).total_seconds()
    assert abs(outages[0]["duration_s"] - length) <= EVERY.total_seconds()
    start = pd.Timestamp(outages[0]["start"])
    assert abs((start - pd.Timestamp(OUTAGE[0])).total_seconds()) <= EVERY.total_seconds()
    assert figures["memory"]["restarts"] >= 1
    # the outage's no-answer observations cost the availability target
    assert figures["targets"]["availability"]["met"] is False
    assert figures["error_budget"]["spent_share"] > 1


def test_review_ranks_the_error_burst_endpoint_first(runs: dict) -> None:
    figures = _figures(runs["review"])
    assert figures["endpoints_worst_first"][0] == "/projects/:id"
    bursts = [i for i in figures["incidents"] if i["kind"] == "error_rate"]
    assert [b["endpoint"] for b in bursts] == ["/projects/:id"]
    assert abs(bursts[0]["duration_s"] - 3600) <= 3600  # hourly buckets: the burst hour


def test_review_totals_match_what_the_scenario_sent(runs: dict) -> None:
    figures, ledger = _figures(runs["review"]), runs["ledger"]
    sent = int(ledger["requests"].sum())
    # a restart loses what the dead process counted after its last scrape: a lower bound
    assert sent * 0.98 <= figures["totals"]["requests"] <= sent
    assert figures["totals"]["errors"] <= int(ledger["errors"].sum())
    assert figures["previous_totals"]["requests"] > 0  # the 4 hours of September
    assert figures["latency"]["slices"] > 0
    assert figures["latency"]["percentiles_disordered"] is not None
    assert figures["data_quality"]["excluded"] == ["/health", "/metrics"]
    assert figures["data_quality"]["resets"] >= 1


def test_review_sections_are_all_there_and_labelled(runs: dict) -> None:
    page = _html(runs["review"])
    for heading in (
        "Summary",
        "Latency",
        "Daily trends",
        "Memory",
        "Endpoints",
        "Incidents",
        "Errors",  # issue 10
        "Database",
        "Data quality",
    ):
        assert f">{heading}<" in page or f"{heading}</h2>" in page, heading
    assert "Share of time slices whose reported p95 met 500 ms" in page  # labelled as such
    # the incident window: the outage (02:00) minus Thresholds.incident_margin_minutes (30)
    assert "lsops report postmortem --start 2026-10-02T01:30:00Z" in page
    assert page.count("data:image/png;base64") >= 4  # latency, daily, memory, endpoints
    figures = _figures(runs["review"])
    # the only problem: the planted database is down, and the report says so
    assert [p["section"] for p in figures["problems"]] == ["Database"]
    assert figures["database"]["configured"] and not figures["database"]["available"]
    assert "Database: unavailable" in page and "cannot connect" in page


def test_every_chart_in_the_html_is_described_by_its_titles(runs: dict) -> None:
    """Each <img> of the exported HTML has the chart's titles as its alt text, never
    nbconvert's placeholder (nor "<Figure size ...>")."""
    from bs4 import BeautifulSoup

    for name in ("review", "burst"):
        images = BeautifulSoup(_html(runs[name]), "html.parser").find_all("img")
        alts = [img.get("alt", "") for img in images]
        assert len(alts) >= 4 and all(a.startswith("Chart: ") for a in alts), (name, alts)
        assert all("<Figure" not in a and "No description" not in a for a in alts), alts
    alts = [img["alt"] for img in BeautifulSoup(_html(runs["review"]), "html.parser")("img")]
    assert any(a.startswith("Chart: Memory peaked at ") for a in alts), alts
    assert any("Reported p95 met 500 ms" in a for a in alts), alts


def test_review_of_a_month_without_data_says_what_is_missing(runs: dict) -> None:
    run = runs["empty"]
    # a month without any observation is a failed run (reports/parameters.py: cron must
    # notice), archived with a report that says what is missing
    assert run.status == "failed" and run.key == "2026-08"
    assert "no observation" in str(run.error)
    figures = _figures(run, failed=True)
    assert figures["has_data"] is False
    assert all(t["met"] is None for t in figures["targets"].values())
    assert figures["incidents"] == [] and figures["endpoints_worst_first"] == []
    page = _html(run)
    assert "no observation was collected in 2026-08" in page
    assert "Data: unavailable" in page
    # the month-over-month table: no data on both sides, never "Requests 0"
    assert re.search(r"<td>Requests</td>\s*<td>no data</td>\s*<td>no data</td>", page)
    assert "Traceback" not in page


def test_review_notebook_is_the_source_an_analyst_edits() -> None:
    nb = nbformat.read(NOTEBOOKS / "monthly_review.ipynb", as_version=4)
    nbformat.validate(nb)
    cells = nb.cells
    ids = [c["id"] for c in cells]
    assert len(set(ids)) == len(ids) and all(ids)
    for cell in cells:  # committed without outputs
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell["id"]
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "parameters" in cells[1].metadata.get("tags", [])
    for line in cells[1].source.splitlines():  # one `name: type = default  # comment` a line
        assert re.fullmatch(r"\w+: \w+ = \S.*  # .+", line), line
    setup = cells[2].source
    for line in (
        "%matplotlib inline",
        "from lsops_lib import plots, present",
        "from lsops_lib.config import load_settings",
        "present.begin()",
        "settings = load_settings()",
        "review = present.load_review(",
    ):
        assert line in setup, line
    # per section: a `## Heading` cell, then one code cell that names its data and, for a
    # chart, draws it with a plots function (no section is one present.show_x(review) call)
    sections = {}
    for heading, body in zip(cells[3:], cells[4:], strict=False):
        if heading.cell_type == "markdown" and heading.source.startswith("## "):
            assert body.cell_type == "code", heading.source
            sections[heading.source.splitlines()[0][3:]] = body.source
    assert list(sections) == [
        "Summary",
        "Latency",
        "Daily trends",
        "Memory",
        "Endpoints",
        "Incidents",
        "Errors",  # issue 10
        "Security review",  # issue 12
        "Database",
        "Data quality",
        "Key figures",
    ]
    for name in ("Latency", "Daily trends", "Memory", "Endpoints"):
        assert re.search(r"^\w+(, \w+)? = review\.\w+", sections[name], re.M), name
        assert "plots." in sections[name], name
    assert "present.review_figures(review, source, db)" in sections["Key figures"]
    assert "lsops-key-figures" in cells[-1].metadata.get("tags", [])


def test_review_under_plain_papermill(runs: dict) -> None:
    nb = runs["plain_review"]
    _no_errors(nb)
    figures = present.read_key_figures(nb)
    assert figures["month"] == "2026-10"
    assert figures["endpoints_worst_first"][0] == "/projects/:id"
    # no database configured in this environment: a section saying so
    assert figures["database"]["configured"] is False
    assert "Database: unavailable" in _html_outputs(nb)


def test_review_preloaded_by_the_runner_is_the_one_the_kernel_computes(runs: dict) -> None:
    """The runner computed the month's review while the kernel started and the kernel took
    it (run.json says so); plain papermill, without a runner, computed it in its kernel:
    two processes, the same figures of the same store."""
    review, empty = runs["review"], runs["empty"]
    assert review.preload == {"monthly_review": "taken"}
    assert json.loads(review.json_path.read_text())["preload"] == {"monthly_review": "taken"}
    assert empty.preload == {"monthly_review": "taken"}  # a month without data too
    assert runs["burst"].preload == {}  # the postmortem declares none
    preloaded, computed = _figures(review), present.read_key_figures(runs["plain_review"])
    # what depends on the environment, not on the review: the database (configured for
    # the runner only) and the data source's description
    for key in ("database", "source", "problems"):
        preloaded.pop(key, None)
        computed.pop(key, None)
    assert preloaded == computed


# --- the postmortem -----------------------------------------------------------------------------


def test_postmortem_ranks_the_burst_endpoint_first_and_finds_its_window(runs: dict) -> None:
    run = runs["burst"]
    assert run.key == "error-burst-script-alert-1-script"
    figures = _figures(run)
    assert figures["endpoints_by_harm"][0] == "/projects/:id"
    start = pd.Timestamp(figures["impact_start"])
    assert abs((start - pd.Timestamp(BURST[0])).total_seconds()) <= EVERY.total_seconds()
    assert abs(figures["duration_s"] - 3600) <= 2 * EVERY.total_seconds()
    assert 0 < figures["failed"] <= figures["requests"]
    assert figures["error_records_sampled"] > 0
    assert figures["problems"] == []


def test_postmortem_follows_the_template_and_leaves_the_rest_to_a_person(runs: dict) -> None:
    page = _html(runs["burst"])
    for heading in (
        "Summary",
        "Impact",
        "Timeline",
        "Detection",
        "Resolution",
        "Root cause and trigger",
        "Action items",
        "Lessons learned",
    ):
        assert f"{heading}</h2>" in page or f">{heading}<" in page, heading
    for left in ("Root cause", "Trigger", "Action items", "What went well", "What went wrong"):
        assert f"{left}: {present.TO_BE_WRITTEN}" in page, left
    assert "Where we got lucky" in page
    for column in ("owner", "due date"):
        assert f"<th>{column}</th>" in page
    assert "threshold crossed" in page  # the timeline from the history
    assert page.count("data:image/png;base64") >= 2


def test_postmortem_under_plain_papermill_finds_the_outage_length(runs: dict) -> None:
    nb = runs["plain_outage"]
    _no_errors(nb)
    figures = present.read_key_figures(nb)
    length = (OUTAGE[1] - OUTAGE[0]).total_seconds()
    assert abs(figures["duration_s"] - length) <= EVERY.total_seconds()
    assert figures["no_answer"] == 8
    assert figures["restarts"] >= 1
    assert figures["title"] == "API outage"


def test_postmortem_default_window_is_the_command_the_review_prints(runs: dict) -> None:
    """Without a window, the notebook studies the latest incident (the /projects/:id
    burst) over the very window of the `lsops report postmortem` command that the review
    prints for it: one rule, analysis.incidents.incident_window."""
    nb = runs["plain_default"]
    _no_errors(nb)
    figures = present.read_key_figures(nb)
    assert figures["window_chosen"].startswith("the most recent incident in the history")
    assert figures["title"] == "error rate on /projects/:id 2026-10-03 03:00 UTC"
    assert figures["window_start"] == "2026-10-03T02:30:00Z"
    assert figures["window_end"] == "2026-10-03T04:30:00Z"
    assert figures["endpoints_by_harm"][0] == "/projects/:id"
    assert figures["most_harmed_endpoint"] == "/projects/:id"
    command = (
        f"lsops report postmortem --start {figures['window_start']} "
        f"--end {figures['window_end']} --title {shlex.quote(figures['title'])}"
    )
    review = nbformat.read(runs["review"].ipynb_path, as_version=4)
    assert html.escape(command, quote=True) in _html_outputs(review)
    # and `lsops report` archives that window under the title's key
    key = reports.validate(
        "postmortem",
        {"start": figures["window_start"], "end": figures["window_end"], "title": figures["title"]},
        notebooks_dir=NOTEBOOKS,
    )[0]
    assert key == "error-rate-on-projects-id-2026-10-03-03-00-utc"


# --- the archive: escaping and secrets --------------------------------------------------------


def test_hostile_endpoint_names_and_titles_are_escaped(runs: dict) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for name in ("review", "burst"):
        page = _html(runs[name])
        assert XSS not in page, name
        assert escaped in page, name
        # escaped by the notebook itself, not only by the archive's sanitizer
        own = _html_outputs(nbformat.read(runs[name].ipynb_path, as_version=4))
        assert XSS not in own and escaped in own, name
    assert XSS not in _html_outputs(runs["plain_review"])


def test_no_secret_in_any_archived_file(runs: dict) -> None:
    files = [p for p in runs["outputs"].rglob("*") if p.is_file()]
    assert len([p for p in files if p.name == "run.json"]) == 3
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert TOKEN not in text, path
        assert DB_PASSWORD not in text, path


# --- helpers, no kernel ----------------------------------------------------------------------------


def test_default_month_is_the_previous_calendar_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(present.source, "utcnow", lambda: datetime(2026, 1, 15, tzinfo=UTC))
    assert present.resolve_month(None) == "2025-12"
    assert present.resolve_month("2026-10") == "2026-10"


def test_default_postmortem_window_is_the_latest_incident(runs: dict) -> None:
    from lsops_lib.analysis import monthly_review

    source = present.open_store(runs["store_url"])
    window = present.choose_window(source, Thresholds())
    assert window.how.startswith("the most recent incident")
    assert "error rate on /projects/:id" in window.title
    assert window.start <= BURST[0] <= window.end
    # the review's command for that incident is this window's
    review = monthly_review(source.store, "2026-10", Thresholds())
    assert window.command in set(review.incidents["postmortem_command"])


def test_missing_store_is_an_empty_stand_in(tmp_path: Path) -> None:
    source = present.open_store(f"sqlite:///{tmp_path / 'nope.sqlite'}")
    assert not source.available and "does not exist" in (source.problem or "")
    assert not (tmp_path / "nope.sqlite").exists()
    assert source.store.extent() is None


def test_tables_escape_every_cell() -> None:
    df = pd.DataFrame({"endpoint": [XSS], "n": [3], "when": [pd.Timestamp(DAY0)]})
    markup = present.table_html(df)
    assert XSS not in markup and "&lt;script&gt;" in markup and "2026-10-01 00:00 UTC" in markup
    assert XSS not in present.box_html(XSS, XSS)


def test_human_formats() -> None:
    assert present.fmt_duration(2400) == "40 min"
    assert present.fmt_duration(3900) == "1 h 05 min"
    assert present.fmt_duration(None) == present.DASH
    assert present.fmt_rel(0.08) == "+8.0 %"
    assert present.fmt_pp(0.0027) == "+0.27 pp"
    assert present.status_label(None) == "UNKNOWN"
    assert json.loads(json.dumps(present.jsonable({"x": float("nan"), "t": pd.Timestamp(DAY0)})))


@pytest.mark.postgres
def test_database_overview_of_a_live_database(longsang_db: Any, tmp_path: Path) -> None:
    from lsops_lib.store import Store

    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(store_url) as store:
        for day, extra in ((1, 0), (20, 4096)):
            sizes = pd.DataFrame(
                [
                    {
                        "schema": "public",
                        "table": "projects",
                        "total_bytes": 65536 + extra,
                        "table_bytes": 32768 + extra,
                        "index_bytes": 32768,
                        "toast_bytes": 0,
                        "rows_estimate": 10,
                    }
                ]
            )
            store.record_db_sizes("default", at(day), sizes)
    settings = load_settings(
        env={"LSOPS_DATABASE_URL": longsang_db.url, "LSOPS_STORE": store_url}, cwd=tmp_path
    )
    source = present.open_store(None, settings)
    db = present.database_overview(settings, None, source, DAY0, at(31))
    assert db.available and db.configured, db.reason
    assert db.size_bytes and db.size_bytes > 0
    assert db.growth_bytes == 4096
    assert not db.embeddings["by_entity_type"].empty
    present.show_database(db)  # renders without a kernel too


def test_a_failing_section_becomes_a_box_and_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(present.display, "show_html", shown.append)
    present.begin()  # no problem left from an earlier section

    @present.guarded("Broken section")
    def broken() -> None:
        raise ValueError(f"cannot draw {XSS}\nsecond line")

    assert broken() is None
    assert present.PROBLEMS == [
        {"section": "Broken section", "kind": "failed", "reason": f"ValueError: cannot draw {XSS}"}
    ]
    assert len(shown) == 1 and "Broken section: could not be produced" in shown[0]
    assert XSS not in shown[0]


def test_target_defaults_to_the_settings_target_when_the_store_holds_several(
    tmp_path: Path,
) -> None:
    from lsops_lib.store import Store
    from tests.fixtures.analysis import History

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        for name in ("default", "staging"):
            History(store, target=name).traffic("/agents", 5, 20.0).scrape()
    settings = load_settings(env={"LSOPS_STORE": url}, cwd=tmp_path)
    source = present.open_store(None, settings)
    assert present.resolve_target(source, None, settings) == "default"
    assert present.resolve_target(source, "staging", settings) == "staging"
    # several targets and none of the configured name: never the sum of different APIs
    (tmp_path / "prod.toml").write_text('[targets.prod]\nurl = "http://127.0.0.1:9"\n')
    other = load_settings(str(tmp_path / "prod.toml"), env={"LSOPS_STORE": url}, cwd=tmp_path)
    with pytest.raises(ParameterError, match="'default', 'staging'.*none named 'prod'"):
        present.resolve_target(source, None, other)
    one = f"sqlite:///{tmp_path / 'one.sqlite'}"
    with Store(one) as store:
        History(store, target="prod").traffic("/agents", 5, 20.0).scrape()
    single = present.open_store(one)
    assert single.available and single.store.targets() == ["prod"]
    assert present.resolve_target(single, None, settings) is None
