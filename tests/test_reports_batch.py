"""`lsops report monthly-review --months A..B --jobs N`: many months, validated first.

A tiny store (one scrape a day over three months) and a small notebook that reads its
month from it; the reports run two at a time in worker processes. No timing is asserted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from lsops_lib.times import parse_month
from tests.fixtures.analysis import History
from tests.fixtures.notebooks import python3_notebook

PARAMETERS = 'month = "2025-01"\nfail_month = ""\nwarn_month = ""\n'
BODY = """\
from IPython.display import display
from lsops_lib.config import load_settings
from lsops_lib.keyfigures import KEY_FIGURES_TAG
from lsops_lib.store import Store
from lsops_lib.times import parse_month

start, end = parse_month(month)
with Store(load_settings().store_url) as store:
    frame = store.endpoint_intervals(start, end, bucket="day")
if month == fail_month:
    raise RuntimeError(f"planted failure in {month}")
print(f"REQUESTS {month} {int(frame['requests'].sum())}")
problems = []
if month == warn_month:
    problems.append({"section": "Database", "kind": "unavailable", "reason": f"planted in {month}"})
figures = {"application/json": {"problems": problems}, "text/plain": repr(problems)}
display(figures, raw=True, metadata={"lsops": KEY_FIGURES_TAG})
"""


@pytest.fixture
def batch_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = python3_notebook(PARAMETERS, BODY)
    nbformat.write(nb, notebooks / "monthly_review.ipynb")

    store_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with Store(store_url) as store:
        history = History(store, start=datetime(2024, 12, 31, tzinfo=UTC), step=timedelta(days=1))
        day = 0
        while history.t < datetime(2025, 4, 1, tzinfo=UTC):
            history.traffic("/api/chat", 10 + day % 7, 120.0, day % 2)
            history.traffic("/api/projects", 3, 30.0)
            history.scrape()
            day += 1
        expected = {
            m: int(store.endpoint_intervals(*parse_month(m), bucket="day")["requests"].sum())
            for m in ("2025-01", "2025-02", "2025-03")
        }

    outputs = tmp_path / "outputs"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LSOPS_NOTEBOOKS", str(notebooks))
    monkeypatch.setenv("LSOPS_OUTPUTS", str(outputs))
    monkeypatch.setenv("LSOPS_STORE", store_url)
    monkeypatch.delenv("LSOPS_CONFIG", raising=False)
    monkeypatch.delenv("LSOPS_DATABASE_URL", raising=False)
    return {"outputs": outputs, "expected": expected}


def _printed(run_path: Path) -> str:
    nb = nbformat.read(run_path / "report.ipynb", as_version=4)
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def test_month_range() -> None:
    assert reports.month_range("2025-11..2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert reports.month_range(" 2025-03 .. 2025-03 ") == ["2025-03"]
    assert reports.month_range("2025-03") == ["2025-03"]
    assert len(reports.month_range("2025-01..2025-12")) == 12
    for bad in ("2025-13..2026-01", "2025-03..2025-01", "2025-01..", "2025-01...2025-02", "x"):
        with pytest.raises(ParameterError):
            reports.month_range(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["--months", "2025-01..2025-13"],
        ["--months", "2025-03..2025-01"],
        ["--months", "2025-01..2025-02", "--month", "2025-01"],
        ["--months", "2025-01..2025-02", "--jobs", "0"],
        ["--jobs", "2"],
        ["--months", "2025-01..2025-02", "-p", "colour", "red"],
        ["--months", "2025-01..2025-02", "--database", "not-configured"],
    ],
)
def test_bad_parameters_exit_2_and_nothing_runs(batch_env: dict, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["report", "monthly-review", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("lsops: ") and result.stderr.count("\n") == 1
    assert not batch_env["outputs"].exists()


def test_months_only_for_the_monthly_review(batch_env: dict) -> None:
    result = CliRunner().invoke(main, ["report", "db-optimization", "--months", "2025-01..2025-02"])
    assert result.exit_code == 2 and "monthly-review" in result.stderr
    assert not batch_env["outputs"].exists()


def test_three_months_two_at_a_time(batch_env: dict) -> None:
    result = CliRunner().invoke(
        main,
        ["report", "monthly-review", "--months", "2025-01..2025-03", "--jobs", "2", "--json"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [r["month"] for r in data["runs"]] == ["2025-01", "2025-02", "2025-03"]
    for run in data["runs"]:
        assert run["status"] == "succeeded" and run["key"] == run["month"]
        assert Path(run["html"]).is_file()
        expected = batch_env["expected"][run["month"]]
        assert f"REQUESTS {run['month']} {expected}" in _printed(Path(run["path"]))
    assert sorted(r.key for r in reports.list_runs(batch_env["outputs"])) == [
        "2025-01",
        "2025-02",
        "2025-03",
    ]
    page = (batch_env["outputs"] / "index.html").read_text()
    assert all(r["run_id"] in page for r in data["runs"])


def test_one_failed_month_exits_1_and_the_others_are_archived(batch_env: dict) -> None:
    result = CliRunner().invoke(
        main,
        [
            "report",
            "monthly-review",
            "--months",
            "2025-02..2025-03",
            "--jobs",
            "2",
            "-p",
            "fail_month",
            "2025-03",
        ],
    )
    assert result.exit_code == 1, result.output + result.stderr
    assert "1 of 2 reports succeeded" in result.stdout
    runs = {r.key: r for r in reports.list_runs(batch_env["outputs"])}
    assert runs["2025-02"].status == "succeeded"
    assert runs["2025-03"].status == "failed" and "planted failure" in (runs["2025-03"].error or "")


def test_each_month_lists_its_warnings(batch_env: dict) -> None:
    """A month that succeeded partially says what is missing, as `--month` does."""
    args = ["report", "monthly-review", "--months", "2025-01..2025-02", "-p", "warn_month"]
    result = CliRunner().invoke(main, [*args, "2025-02"])
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    (at,) = [i for i, text in enumerate(lines) if text.startswith("report monthly-review 2025-02:")]
    assert lines[at + 1] == "  warning  Database: planted in 2025-02", lines
    assert sum("warning" in text for text in lines) == 1, lines
    result = CliRunner().invoke(main, [*args, "2025-01", "--json"])
    runs = json.loads(result.stdout)["runs"]
    assert [r["warnings"] for r in runs] == [["Database: planted in 2025-01"], []]


def test_run_reports_checks_everything_before_running(batch_env: dict) -> None:
    settings = load_settings()
    outputs = batch_env["outputs"]
    bad_sets = [
        [{"month": "2025-01"}, {"month": "2025-13"}],  # one bad month: nothing runs
        [{"month": "2025-01"}, {"month": "2025-01"}],  # the same report twice
        [],
    ]
    for param_sets in bad_sets:
        with pytest.raises(ParameterError):
            reports.run_reports("monthly-review", param_sets, settings=settings)
    with pytest.raises(ParameterError):
        reports.run_reports("monthly-review", [{"month": "2025-01"}], settings=settings, jobs=0)
    assert not outputs.exists()


def test_run_reports_one_at_a_time_in_process(batch_env: dict) -> None:
    done: list[reports.BatchResult] = []
    results = reports.run_reports(
        "monthly-review",
        [{"month": "2025-02"}],
        settings=load_settings(),
        jobs=1,
        on_done=done.append,
    )
    assert [r.ok for r in results] == [True] and done == results
    run = results[0].run
    assert run is not None and run.key == "2025-02"
    assert f"REQUESTS 2025-02 {batch_env['expected']['2025-02']}" in _printed(run.path)
