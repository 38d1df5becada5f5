"""Reports (QA 17): a password in a `?password=` URL or a libpq `password=` setting is
refused and masked; a fractional `--timeout` runs, a timed-out cell is named in one line
without asyncio noise; a run that cannot be archived is `failed` (or gone), never
`interrupted`; `-p target` and `-p store` are checked before anything runs; SEV0 is
refused; a bad month is exit 2 whatever the notebooks folder; an interrupted run's HTML
says it did not finish; the index writes durations as `lsops reports` does.

The notebooks are the placeholders of tests/test_reports.py (tests/data/notebooks)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import lsops_lib.reports
import lsops_lib.reports.run
from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ParameterError, ReportError
from lsops_lib.reports.archive import Redactor, Run, reserve_run_dir
from lsops_lib.store import Store
from tests.fixtures.store import make_scrape

NOTEBOOKS = Path(__file__).parent / "data" / "notebooks"
QUERY_SECRET = "QPWSECRET55"
KEYWORD_SECRET = "KWSECRET66"
QUERY_URL = f"postgresql://lsops@127.0.0.1:1/x?password={QUERY_SECRET}"
KEYWORD_DSN = f"host=127.0.0.1 port=1 dbname=x password={KEYWORD_SECRET}"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The placeholder notebooks, a store that holds one scrape of target `default`."""
    store = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(store) as s:
        s.record_scrape(make_scrape(0, {"/api/chat": (10, 100.0, 0.0)}, target="default"))
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("LSOPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LSOPS_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.setenv("LSOPS_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("LSOPS_STORE", store)
    return tmp_path / "outputs"


def _settings(tmp: Path):
    return load_settings(env={"LSOPS_STORE": f"sqlite:///{tmp / 'm.sqlite'}"}, cwd=tmp)


# --- 1. passwords in ?password= and libpq password= --------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "store", QUERY_URL],
        ["-p", "store", KEYWORD_DSN],
        ["-p", "store", f"postgresql://lsops@h/x?sslmode=require&PassWord={QUERY_SECRET}"],
    ],
)
def test_a_password_in_a_query_or_a_libpq_setting_is_refused(
    cli_env: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("lsops: parameter store holds a password")
    assert result.stderr.count("\n") == 1
    assert QUERY_SECRET not in result.output and KEYWORD_SECRET not in result.output
    assert not cli_env.exists()


def test_a_password_in_a_title_is_refused_as_in_a_store() -> None:
    with pytest.raises(ParameterError, match="holds a password") as info:
        reports.validate(
            "postmortem",
            {
                "start": "2026-10-03T14:00Z",
                "end": "2026-10-03T15:00Z",
                "title": f"outage after {KEYWORD_DSN}",
            },
            notebooks_dir=NOTEBOOKS,
        )
    assert KEYWORD_SECRET not in str(info.value)
    # a word ending in password, without a value, is just a word
    key, _ = reports.validate(
        "postmortem",
        {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "reset password = x"},
        notebooks_dir=NOTEBOOKS,
    )
    assert key == "reset-password-x"


def test_the_redactor_masks_query_and_libpq_passwords() -> None:
    r = Redactor([])
    assert r.text(f"store {QUERY_URL}") == "store postgresql://lsops@127.0.0.1:1/x?password=***"
    assert r.text(f'store = "{KEYWORD_DSN}"') == (
        'store = "host=127.0.0.1 port=1 dbname=x password=***"'
    )
    assert r.text("a?x=1&db_password=s3cr3t&y=2") == "a?x=1&db_password=***&y=2"
    assert r.text("f(password=pw)") == "f(password=pw)"  # code, no setting
    assert r.obj({"store": KEYWORD_DSN}) == {"store": "host=127.0.0.1 port=1 dbname=x password=***"}


# --- 2. --timeout: fractions, and a timeout in one line --------------------------------------


def test_a_fractional_timeout_runs_the_report(tmp_path: Path) -> None:
    run = reports.run_report(
        "monthly-review",
        {"month": "2026-10"},
        settings=_settings(tmp_path),
        outputs_dir=tmp_path / "outputs",
        notebooks_dir=NOTEBOOKS,
        timeout_s=900.5,
        progress=False,
        cwd=tmp_path,
    )
    assert run.status == "succeeded", run.error


def _sleeping_cell_number() -> int:
    """The execution count of the placeholder's sleeping cell: its place among the code
    cells, plus papermill's injected-parameters cell (after the parameters cell)."""
    nb = nbformat.read(NOTEBOOKS / "monthly_review.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    (place,) = [i for i, c in enumerate(code, 1) if "time.sleep(sleep_s)" in c.source]
    return place + 1


def test_a_timed_out_cell_is_named_in_one_line_without_asyncio_noise(cli_env: Path) -> None:
    args = ["report", "monthly-review", "--month", "2026-10", "-p", "sleep_s", "30"]
    result = subprocess.run(
        [sys.executable, "-m", "lsops_lib.cli", *args, "--timeout", "0.5", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    run = json.loads(result.stdout)
    cell = _sleeping_cell_number()
    assert run["error"] == (
        f"CellTimeoutError: cell {cell} ran longer than the execution timeout of 1 s"
    )
    assert "Task was destroyed" not in result.stderr, result.stderr
    assert json.loads(Path(run["run_json"]).read_text())["error"] == run["error"]


# --- 3. a run that cannot be archived ------------------------------------------------------------


def _disk_full(monkeypatch: pytest.MonkeyPatch, names: set[str]) -> None:
    real = lsops_lib.reports.run.atomic_write

    def full(path: Path, data: str | bytes) -> None:
        if path.name in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(lsops_lib.reports.run, "atomic_write", full)


def _run(tmp_path: Path) -> None:
    reports.run_report(
        "monthly-review",
        {"month": "2026-10"},
        settings=_settings(tmp_path),
        outputs_dir=tmp_path / "outputs",
        notebooks_dir=NOTEBOOKS,
        progress=False,
        cwd=tmp_path,
    )


def test_a_run_that_cannot_be_archived_is_failed_not_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full(monkeypatch, {"report.html"})
    with pytest.raises(ReportError, match="No space left on device"):
        _run(tmp_path)
    outputs = tmp_path / "outputs"
    assert reports.sweep(outputs) == []  # nothing to mark interrupted
    (run,) = reports.list_runs(outputs)
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith(
        f"cannot archive the report in {run.path}: No space left on device"
    )
    assert not (run.path / ".lsops-run.lock").exists()
    assert "cannot archive the report" in (outputs / "index.html").read_text()


def test_a_run_that_cannot_write_anything_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _disk_full(monkeypatch, {"report.ipynb", "report.html", "run.json"})
    with pytest.raises(ReportError, match="No space left on device"):
        _run(tmp_path)
    outputs = tmp_path / "outputs"
    assert reports.sweep(outputs) == [] and reports.list_runs(outputs) == []
    assert list(outputs.glob("*/*/*")) == []


# --- 4. -p target and -p store checked before anything runs ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "target", "nosuch"], "lsops: unknown target 'nosuch': the store holds 'default'"),
        (["-p", "store", "not a url"], "lsops: parameter store: not a store URL: not a url"),
        (["-p", "store", "mysql://h/x"], "lsops: parameter store: unsupported store backend"),
    ],
)
def test_a_bad_target_or_store_parameter_is_exit_2_and_writes_nothing(
    cli_env: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert not cli_env.exists()


def test_a_target_the_store_holds_is_accepted_though_not_configured(tmp_path: Path) -> None:
    """The notebook's rule: a target of the store's history (a removed one) is fine."""
    store = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(store) as s:
        s.record_scrape(make_scrape(0, {"/api/chat": (1, 10.0, 0.0)}, target="old-api"))
    settings = _settings(tmp_path)
    assert "old-api" not in settings.targets
    reports.check_target({"target": "old-api"}, settings)
    with pytest.raises(ParameterError, match="unknown target 'other'"):
        reports.check_target({"target": "other"}, settings)


# --- 5, 6. severities, and a bad month whatever the notebooks folder -----------------------------


@pytest.mark.parametrize("severity", ["SEV0", "sev0", "SEV6"])
def test_severities_outside_sev1_to_sev5_are_refused(severity: str) -> None:
    window = {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "x"}
    with pytest.raises(ParameterError, match=r"SEV1 \.\. SEV5"):
        reports.validate("postmortem", {**window, "severity": severity}, notebooks_dir=NOTEBOOKS)
    _, values = reports.validate(
        "postmortem", {**window, "severity": "sev5"}, notebooks_dir=NOTEBOOKS
    )
    assert values["severity"] == "SEV5"


def test_the_dead_tuple_ratio_is_a_fraction_as_in_lsops_toml() -> None:
    with pytest.raises(ParameterError, match="dead_tuple_ratio must be at most 1, not '5'"):
        reports.validate("db-optimization", {"dead_tuple_ratio": 5})  # the shipped notebook
    _, values = reports.validate("db-optimization", {"dead_tuple_ratio": 0.3})
    assert values["dead_tuple_ratio"] == 0.3


def test_a_bad_month_is_exit_2_whatever_the_notebooks_folder(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LSOPS_NOTEBOOKS", str(tmp_path / "nonexistent"))
    result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-13"])
    assert result.exit_code == 2, result.output
    assert result.stderr == "lsops: not a month: '2026-13' (expected YYYY-MM)\n"
    # a good month: the missing notebook is said (exit 1)
    result = CliRunner().invoke(main, ["report", "monthly-review", "--month", "2026-10"])
    assert result.exit_code == 1 and "notebook for monthly-review not found" in result.stderr


# --- 7. an interrupted run's banner -------------------------------------------------------------


def test_an_interrupted_run_is_not_called_failed_in_its_report(tmp_path: Path) -> None:
    started = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    run_id, path = reserve_run_dir(tmp_path, "monthly-review", "2026-10", started)
    run = Run(
        kind="monthly-review",
        key="2026-10",
        run_id=run_id,
        path=path,
        status="interrupted",
        started=started,
        duration_s=2.0,
        error="interrupted (SIGTERM)",
    )
    source = nbformat.read(NOTEBOOKS / "monthly_review.ipynb", as_version=4)
    lsops_lib.reports.run._archive(run, source, Redactor([]), title="Monthly performance review")
    page = run.html_path.read_text()
    assert "This report run did not finish:</strong> interrupted (SIGTERM)" in page
    assert "failed" not in page.lower()
    nb = nbformat.read(run.ipynb_path, as_version=4)
    assert nb.cells[0].source == "**This report run did not finish:** interrupted \\(SIGTERM\\)"


# --- 8. durations: one rule ----------------------------------------------------------------------


def test_the_index_writes_durations_as_lsops_reports_does(cli_env: Path) -> None:
    started = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)
    for key, seconds in (("2026-08", 62.0), ("2026-09", 2 * 86400 + 6.0), ("2026-10", None)):
        run_id, path = reserve_run_dir(cli_env, "monthly-review", key, started)
        data = {"kind": "monthly-review", "key": key, "run_id": run_id, "status": "succeeded"}
        data.update(started=started.isoformat(), duration_s=seconds, parameters={}, versions={})
        (path / "run.json").write_text(json.dumps(data))
    page = reports.write_index(cli_env).read_text()
    listing = CliRunner().invoke(main, ["reports"])
    assert listing.exit_code == 0, listing.output
    rows = [row for row in listing.stdout.splitlines() if row.startswith("2026-11-02 03:04 UTC")]
    assert len(rows) == 3, listing.stdout
    for row in rows:
        key, duration = row.split()[4], " ".join(row.split()[6:-1])
        assert f"<code>{key}</code>" in page
        cell = page.split(f"<code>{key}</code>")[1].split('<td class="num">')[1].split("</td>")[0]
        assert cell == duration, (key, cell, duration)
