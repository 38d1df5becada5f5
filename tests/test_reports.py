"""Reports: validation, papermill runs, the archive (atomic, redacted, escaped) and the index.

The notebooks here are small placeholders in tests/data/notebooks/ (the real ones are
tested with their content elsewhere); kernels are few: two runs started at the same
moment (one succeeds, one fails) share a module fixture; the CLI runs two more.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ConfigError, ParameterError
from lsops_lib.reports.archive import Redactor, Run, atomic_write, iso, reserve_run_dir

NOTEBOOKS = Path(__file__).parent / "data" / "notebooks"
TOKEN = "tok-PLANTED-7f3a9c1e5b"
DB_PASSWORD = "pw-PLANTED-e8d2b4a6"
DB_URL = f"postgresql://lsops:{DB_PASSWORD}@db.internal:5432/longsang"
XSS = "<script>alert(1)</script>"
SAME_MOMENT = datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC)


def _settings(tmp: Path):
    env = {
        "LSOPS_API_TOKEN": TOKEN,
        "LSOPS_DATABASE_URL": DB_URL,
        "LSOPS_STORE": f"sqlite:///{tmp / 'm.sqlite'}",
    }
    return load_settings(env=env, cwd=tmp)


# --- validation (no kernel) --------------------------------------------------------------------


def test_validate_derives_keys_and_types() -> None:
    key, params = reports.validate(
        "monthly-review", {"month": "2026-10", "fail": "no"}, notebooks_dir=NOTEBOOKS
    )
    assert key == "2026-10"
    assert (
        params["month"] == "2026-10" and params["fail"] is False
    )  # typed by the notebook's default
    key, params = reports.validate(
        "postmortem",
        {
            "start": "2026-10-03T14:05",
            "end": "2026-10-03 15:20Z",
            "title": "Chat API: 503s / timeouts!",
        },
        notebooks_dir=NOTEBOOKS,
    )
    assert key == "chat-api-503s-timeouts"
    assert params == {
        "start": "2026-10-03T14:05:00Z",
        "end": "2026-10-03T15:20:00Z",
        "title": "Chat API: 503s / timeouts!",
        "severity": "SEV2",
    }
    assert reports.validate("db-optimization", {}, notebooks_dir=NOTEBOOKS) == (
        "default",
        {"top_n": 20},
    )
    assert reports.validate(
        "db-optimization", {"database": "prod", "top-n": "5"}, notebooks_dir=NOTEBOOKS
    ) == (
        "prod",
        {"database": "prod", "top_n": 5},
    )
    key, _ = reports.validate("monthly-review", {}, notebooks_dir=NOTEBOOKS)  # default: last month
    assert re.fullmatch(r"\d{4}-\d{2}", key)


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("weekly", {}, "unknown report kind"),
        ("monthly-review", {"month": "2026-13"}, "not a month"),
        ("monthly-review", {"month": "Oct 2026"}, "not a month"),
        ("monthly-review", {"colour": "red"}, "unknown parameter"),
        (
            "postmortem",
            {"start": "2026-10-03T16:00Z", "end": "2026-10-03T15:00Z", "title": "x"},
            "not before",
        ),
        (
            "postmortem",
            {"start": "yesterday", "end": "2026-10-03T15:00Z", "title": "x"},
            "not a time",
        ),
        ("postmortem", {"end": "2026-10-03T15:00Z", "title": "x"}, "needs the parameter start"),
        (
            "postmortem",
            {
                "start": "2026-10-03T14:00Z",
                "end": "2026-10-03T15:00Z",
                "title": "x",
                "severity": "P1",
            },
            "SEV",
        ),
        ("db-optimization", {"database": "../../etc"}, "must be a name"),
        ("db-optimization", {"database": ".hidden"}, "must be a name"),
        ("db-optimization", {"database": "a/b"}, "must be a name"),
        ("db-optimization", {"database": "a\\b"}, "must be a name"),
        ("db-optimization", {"database": DB_URL}, "password"),
        ("db-optimization", {"database": "postgresql://h/db"}, "not a URL"),
        ("db-optimization", {"top_n": 0}, "at least 1"),
        ("db-optimization", {"top_n": "many"}, "integer"),
        ("monthly-review", {"store": DB_URL}, "password"),
    ],
)
def test_validate_rejects(kind: str, params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as info:
        reports.validate(kind, params, notebooks_dir=NOTEBOOKS)
    text = str(info.value)
    assert "\n" not in text and DB_PASSWORD not in text


@pytest.mark.parametrize("key", ["", "..", "a/b", "a\\b", ".hidden", "x..y", "a\nb"])
def test_path_like_keys_are_refused(key: str) -> None:
    with pytest.raises(ParameterError):
        reports.check_key(key)


def test_postmortem_key_is_a_plain_slug_whatever_the_title() -> None:
    key, _ = reports.validate(
        "postmortem",
        {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "../../etc/passwd"},
        notebooks_dir=NOTEBOOKS,
    )
    assert key == "etc-passwd"
    key, _ = reports.validate(
        "postmortem",
        {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "障害"},
        notebooks_dir=NOTEBOOKS,
    )
    assert key == "incident-2026-10-03"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    outputs = tmp_path / "outputs"
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "LSOPS_NOTEBOOKS": str(NOTEBOOKS),
        "LSOPS_OUTPUTS": str(outputs),
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}",
        "LSOPS_API_TOKEN": TOKEN,
        "LSOPS_DATABASE_URL": DB_URL,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LSOPS_CONFIG", raising=False)
    return outputs


@pytest.mark.parametrize(
    "args",
    [
        ["report", "monthly-review", "--month", "2026-13"],
        ["report", "quarterly-review"],
        ["report", "monthly-review", "--month", "2026-10", "-p", "colour", "red"],
        [
            "report",
            "postmortem",
            "--start",
            "2026-10-03T16:00Z",
            "--end",
            "2026-10-03T15:00Z",
            "--title",
            "x",
        ],
        ["report", "db-optimization", "--database", "../x"],
        ["report", "db-optimization", "--database", "not-configured"],  # ConfigError
        [
            "report",
            "monthly-review",
            "--month",
            "2026-10",
            "--title",
            "x",
        ],  # not a review parameter
    ],
)
def test_cli_bad_parameters_exit_2_and_write_nothing(cli_env: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("lsops: ") and result.stderr.count("\n") == 1
    assert not cli_env.exists()


# --- archive building blocks (no kernel) -------------------------------------------------------


def test_run_dirs_reserved_at_the_same_moment_never_collide(tmp_path: Path) -> None:
    found: list[tuple[str, Path]] = []
    barrier = threading.Barrier(16)

    def reserve() -> None:
        barrier.wait()
        found.append(reserve_run_dir(tmp_path, "monthly-review", "2026-10", SAME_MOMENT))

    threads = [threading.Thread(target=reserve) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {run_id for run_id, _ in found}
    assert len(ids) == 16
    assert all(i.startswith("20261102T030405Z-") for i in ids)
    assert len(list((tmp_path / "monthly-review" / "2026-10").iterdir())) == 16


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.json", "{}")
    atomic_write(tmp_path / "a.json", '{"b": 1}')
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": 1}


def test_redactor_masks_secrets_and_url_passwords_but_not_images() -> None:
    r = Redactor(["s3cr&t", None, ""])
    assert r.text("token s3cr&t and s3cr&amp;t") == "token *** and ***"
    assert r.text("postgresql://u:other@h/db") == "postgresql://u:***@h/db"
    assert r.text("redis://:p4ss@cache:6379/0") == "redis://:***@cache:6379/0"
    image = "data:image/png;base64,AAAAs3cr&tAAAA"
    assert r.text(f'<img src="{image}">') == f'<img src="{image}">'
    assert r.obj({"url": "x://a:b@c", "n": 1}) == {"url": "x://a:***@c", "n": 1}


def _fake_run(
    outputs: Path, kind: str, key: str, started: datetime, status: str = "succeeded", **extra
) -> Path:
    run_id, path = reserve_run_dir(outputs, kind, key, started)
    for name in ("report.html", "report.ipynb"):
        (path / name).write_text("x")
    data = {
        "kind": kind,
        "key": key,
        "run_id": run_id,
        "status": status,
        "started": iso(started),
        "duration_s": 1.5,
        "parameters": {},
        "versions": {},
        **extra,
    }
    (path / "run.json").write_text(json.dumps(data))
    return path


def test_index_lists_runs_newest_first_by_kind_escaped_with_working_links(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    old = _fake_run(outputs, "monthly-review", "2026-09", datetime(2026, 10, 1, tzinfo=UTC))
    new = _fake_run(outputs, "monthly-review", "2026-10", datetime(2026, 11, 1, tzinfo=UTC))
    pm = _fake_run(
        outputs,
        "postmortem",
        "a b",
        datetime(2026, 10, 15, tzinfo=UTC),
        status="failed",
        error=f"boom {XSS}",
    )
    (
        outputs / "monthly-review" / "2026-10" / "20261101T000000Z-unfinished"
    ).mkdir()  # no run.json: running
    (outputs / "postmortem" / "x" / "r1").mkdir(parents=True)
    (outputs / "postmortem" / "x" / "r1" / "run.json").write_text("{not json")  # damaged

    runs = reports.list_runs(outputs)
    assert [r.path for r in runs] == [new, pm, old]
    assert [r.path for r in reports.list_runs(outputs, kind="monthly-review")] == [new, old]
    assert runs[1].error == f"boom {XSS}" and not runs[1].ok

    index = reports.write_index(outputs)
    assert index == outputs / "index.html"
    page = index.read_text()
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page  # static, no JavaScript
    # when it was written: read as the table's times are, exact in the attribute
    stamp = re.search(r'Generated <time datetime="([^"]+)">([^<]+)</time>', page)
    assert stamp is not None, page[:600]
    written = datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00"))
    assert stamp.group(2) == written.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert (
        page.index("2026-10</code>") < page.index("2026-09</code>") < page.index("a b</code>")
    )  # by kind
    links = re.findall(r'href="([^"]+)"', page)
    links = [link for link in links if not link.startswith("#")]
    assert len(links) == 9
    for link in links:
        assert not link.startswith(("/", "file:")), link
        assert (outputs / unquote(link)).is_file(), link
    assert [p.name for p in outputs.iterdir() if p.name.startswith(".index.html")] == []


def test_index_calls_partial_only_a_run_that_succeeded(tmp_path: Path) -> None:
    """Partial is a success with warnings; a failed run's warnings are counted, not
    called partial."""
    outputs = tmp_path / "outputs"
    at = datetime(2026, 11, 1, tzinfo=UTC)
    _fake_run(outputs, "monthly-review", "2026-09", at, warnings=["Database: down"])
    _fake_run(
        outputs,
        "monthly-review",
        "2026-10",
        at,
        status="failed",
        error="the metrics store cannot be read",
        warnings=["Database: down", "Errors: no Sentry"],
    )
    page = reports.write_index(outputs).read_text()
    rows = {
        key: row for row in page.split("<tr>") for key in re.findall(r"<code>([^<]+)</code>", row)
    }
    assert "<summary>partial: 1 warning</summary>" in rows["2026-09"]
    assert "<summary>2 warnings</summary>" in rows["2026-10"] and "partial" not in rows["2026-10"]


def test_run_round_trips_through_json(tmp_path: Path) -> None:
    path = _fake_run(tmp_path, "db-optimization", "prod", SAME_MOMENT)
    run = Run.from_dict(json.loads((path / "run.json").read_text()), path)
    assert run.started == SAME_MOMENT and run.ok and run.html_path == path / "report.html"


# --- real runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two monthly reviews started at the same moment in two threads: one succeeds (prints
    the planted secrets, shows hostile text, draws a plot), one fails (secret in the error)."""
    tmp = tmp_path_factory.mktemp("reports")
    outputs = tmp / "outputs"
    settings = _settings(tmp)
    results: dict[str, Run] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)
    common = {"month": "2026-10", "leak": True}
    jobs = {
        "ok": {**common, "payload": XSS, "plot": True},
        "failed": {**common, "fail": True},
    }

    def run(name: str) -> None:
        try:
            barrier.wait()
            results[name] = reports.run_report(
                "monthly-review",
                jobs[name],
                settings=settings,
                outputs_dir=outputs,
                notebooks_dir=NOTEBOOKS,
                timeout_s=60,
                progress=False,
                cwd=tmp,
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reports.run, "utcnow", lambda: SAME_MOMENT)
        threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    return {"outputs": outputs, **results}


def _files(outputs: Path) -> list[Path]:
    return [p for p in outputs.rglob("*") if p.is_file() and p.name != ".index.lock"]


def test_runs_started_at_the_same_moment_are_archived_side_by_side(archive: dict) -> None:
    ok, failed = archive["ok"], archive["failed"]
    assert ok.status == "succeeded" and ok.error is None
    assert failed.status == "failed"
    assert ok.path != failed.path and ok.path.parent == failed.path.parent
    assert ok.path.parent == archive["outputs"] / "monthly-review" / "2026-10"
    assert ok.run_id.startswith("20261102T030405Z-") and failed.run_id.startswith(
        "20261102T030405Z-"
    )
    for run in (ok, failed):
        assert sorted(p.name for p in run.path.iterdir()) == [
            "report.html",
            "report.ipynb",
            "run.json",
        ]
    assert [p for p in _files(archive["outputs"]) if p.name.endswith(".tmp")] == []


def test_run_json_records_the_run(archive: dict) -> None:
    data = json.loads(archive["ok"].json_path.read_text())
    assert {"kind", "key", "parameters", "versions", "started", "duration_s", "status"} <= set(data)
    assert (
        data["kind"] == "monthly-review"
        and data["key"] == "2026-10"
        and data["status"] == "succeeded"
    )
    assert data["parameters"]["month"] == "2026-10" and data["parameters"]["payload"] == XSS
    assert data["started"] == "2026-11-02T03:04:05.000Z"
    assert data["duration_s"] > 0
    assert {"lsops", "python", "papermill", "pandas", "nbconvert"} <= set(data["versions"])
    assert "error" not in data
    failed = json.loads(archive["failed"].json_path.read_text())
    assert failed["status"] == "failed"
    assert failed["error"].startswith("ValueError: planted failure") and "***" in failed["error"]


def test_no_secret_in_any_archived_file(archive: dict) -> None:
    files = _files(archive["outputs"])
    assert {p.suffix for p in files} == {".html", ".ipynb", ".json"}
    for path in files:
        raw = path.read_bytes()
        assert TOKEN.encode() not in raw, path
        assert DB_PASSWORD.encode() not in raw, path
    # the notebook did print them: what the archive holds is the mask
    printed = archive["ok"].ipynb_path.read_text()
    assert "token ***" in printed and "postgresql://lsops:***@db.internal" in printed


def test_the_kernel_is_this_interpreter_and_sees_the_settings(archive: dict) -> None:
    import sys

    nb = json.loads(archive["ok"].ipynb_path.read_text())
    text = json.dumps(nb["cells"])
    assert json.dumps(f"python {sys.executable}")[1:-1] in text
    assert "target default store sqlite:///" in text
    assert nb["metadata"]["papermill"]["parameters"]["month"] == "2026-10"
    assert nb["metadata"]["lsops"]["run_id"] == archive["ok"].run_id
    # where the notebook came from by its name, not this host's path (QA 23)
    papermill = nb["metadata"]["papermill"]
    assert (papermill["input_path"], papermill["output_path"]) == (
        archive["ok"].notebook,
        "report.ipynb",
    )


def test_hostile_text_from_data_is_escaped_in_the_html(archive: dict) -> None:
    page = archive["ok"].html_path.read_text()
    assert XSS not in page
    assert "alert(1)" in page  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for tag in re.findall(r"<script[^>]*>", page):  # only the template's own scripts
        assert "alert" not in tag


def test_html_hides_code_and_prompts_and_embeds_plots(archive: dict) -> None:
    page = archive["ok"].html_path.read_text()
    assert "load_settings" not in page  # code hidden
    assert 'class="jp-InputPrompt' not in page and 'class="jp-OutputPrompt' not in page
    assert "data:image/png;base64," in page
    assert "REPORT DONE" in page
    assert re.search(r'<img[^>]+src="(?!data:)', page) is None  # no image outside the file


def test_failed_run_shows_the_failing_cell_and_its_error(archive: dict) -> None:
    page = archive["failed"].html_path.read_text()
    assert "This report run failed:" in page  # the banner (papermill's marker, in plain words)
    assert "Execution stopped at this cell" in page
    assert "&lt;p&gt;" not in page and "&lt;span" not in page  # no mangled markup
    assert (
        "planted failure: cannot connect to postgresql://lsops:***@db.internal" in page
    )  # the error
    assert "settings.database_url}" in page  # the failing cell's source, shown
    assert "load_settings" not in page  # other cells' code still hidden
    assert "REPORT DONE" not in page  # execution stopped there


def test_index_lists_both_runs(archive: dict) -> None:
    page = (archive["outputs"] / "index.html").read_text()
    for run in (archive["ok"], archive["failed"]):
        link = run.html_path.relative_to(archive["outputs"]).as_posix()
        assert f'href="{link}"' in page
    assert page.count('class="status-failed"') == 1 and page.count('class="status-succeeded"') == 1


def test_report_and_index_open_in_a_browser(
    archive: dict, browser_page, artifacts_dir: Path
) -> None:
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((archive["outputs"] / "index.html").as_uri())
    assert page.title() == "lsops reports"
    page.screenshot(path=str(artifacts_dir / "reports-index.png"), full_page=True)
    page.click(f'a[href$="{archive["ok"].run_id}/report.html"]')
    page.wait_for_load_state()
    assert page.url.endswith("/report.html")
    assert page.locator("table.dataframe").first.is_visible()
    assert page.locator("img").count() >= 1
    assert dialogs == []  # the hostile endpoint name did not run
    page.screenshot(path=str(artifacts_dir / "report-monthly-review.png"), full_page=True)
    page.goto(archive["failed"].html_path.as_uri())
    assert page.get_by_text("This report run failed:").is_visible()
    page.screenshot(path=str(artifacts_dir / "report-failed.png"), full_page=True)


def test_a_cell_running_too_long_is_a_failed_run(tmp_path: Path) -> None:
    run = reports.run_report(
        "monthly-review",
        {"month": "2026-10", "sleep_s": 30},
        settings=_settings(tmp_path),
        outputs_dir=tmp_path / "outputs",
        notebooks_dir=NOTEBOOKS,
        timeout_s=1,
        progress=False,
        cwd=tmp_path,
    )
    assert run.status == "failed" and "timeout" in (run.error or "").lower()
    assert run.html_path.is_file() and "failed" in run.html_path.read_text().lower()


def test_unknown_database_name_is_a_config_error_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        reports.run_report(
            "db-optimization",
            {"database": "nowhere"},
            settings=_settings(tmp_path),
            outputs_dir=tmp_path / "outputs",
            notebooks_dir=NOTEBOOKS,
        )
    assert not (tmp_path / "outputs").exists()


def test_cli_report_and_reports(cli_env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "report",
            "postmortem",
            "--start",
            "2026-10-03T14:00Z",
            "--end",
            "2026-10-03T15:00Z",
            "--title",
            "Chat 503s",
            "--severity",
            "sev1",
        ],
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "succeeded" in result.stdout
    assert "postmortem/chat-503s/" in result.stdout and "index.html" in result.stdout
    result = runner.invoke(
        main, ["report", "monthly-review", "--month", "2026-10", "-p", "fail", "true", "--json"]
    )
    assert result.exit_code == 1
    failed = json.loads(result.stdout)
    assert failed["status"] == "failed" and Path(failed["html"]).is_file()
    assert failed["index"] == str(cli_env / "index.html")

    listing = json.loads(runner.invoke(main, ["reports", "--json"]).stdout)
    assert [r["kind"] for r in listing["runs"]] == ["monthly-review", "postmortem"]  # newest first
    assert listing["runs"][1]["parameters"]["severity"] == "SEV1"
    only = json.loads(runner.invoke(main, ["reports", "--kind", "postmortem", "--json"]).stdout)
    assert [r["key"] for r in only["runs"]] == ["chat-503s"]
    table = runner.invoke(main, ["reports"])
    assert table.exit_code == 0 and "chat-503s" in table.stdout
    assert runner.invoke(main, ["reports", "--kind", "weekly"]).exit_code == 2


def test_reports_text_never_wraps_a_key_or_a_run_id(cli_env: Path) -> None:
    """Piped (80 columns, no terminal), each run is one line with its key and run id
    whole, to grep and to copy."""
    long_key = "api-outage-2026-11-16-no-answer-for-40-min-then-503s-on-chat"
    paths = [
        _fake_run(cli_env, "postmortem", long_key, SAME_MOMENT, status="failed"),
        _fake_run(cli_env, "monthly-review", "2026-10", SAME_MOMENT),
    ]
    result = CliRunner().invoke(main, ["reports"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["started", "kind", "key", "status", "duration", "run"]
    for path in paths:
        key, run_id = path.parent.name, path.name
        (row,) = [text for text in lines if run_id in text]
        assert row.startswith("2026-11-02 03:04 UTC") and f"  {key}  " in row, row
        assert row.endswith(f"  {run_id}"), row


def test_a_secret_in_the_title_never_names_the_archive(cli_env: Path) -> None:
    """The key is the slug of the redacted title: run.json's key, the folder, the index,
    the listing and the command's output all say `outage`, never the token (which the
    slug would have lowercased past the redaction of the archived files)."""
    runner = CliRunner()
    args = ["report", "postmortem", "--start", "2026-10-03T14:00Z", "--end", "2026-10-03T15:00Z"]
    result = runner.invoke(main, [*args, "--title", f"Outage {TOKEN}"])
    assert result.exit_code == 0, result.output + result.stderr
    listing = runner.invoke(main, ["reports", "--json"]).stdout
    (run,) = json.loads(listing)["runs"]
    assert run["key"] == "outage" and Path(run["path"]).parent.name == "outage"
    assert json.loads(Path(run["run_json"]).read_text())["key"] == "outage"
    for secret in (TOKEN, TOKEN.lower()):
        assert secret not in result.stdout + result.stderr and secret not in listing
        for path in cli_env.rglob("*"):
            assert secret not in str(path.relative_to(cli_env)), path
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    assert "postmortem/outage/" in result.stdout
    # a title that is nothing but the secret: the key of an untitled incident
    result = runner.invoke(main, [*args, "--title", TOKEN, "--json"])
    assert json.loads(result.stdout)["key"] == "incident-2026-10-03"


# two `lsops report` processes at once into one outputs folder, both archived and indexed:
# tests/test_faults.py::test_two_reports_at_once_into_one_outputs_folder (the same command on
# the same placeholder notebooks; it was run by both files)


_IRI_PROBE = """
import sys
{first}
import nbformat
from nbformat.v4 import new_code_cell, new_notebook
nb = new_notebook(cells=[new_code_cell("1")])
nbformat.validate(nb)
nb.cells[0]["bogus"] = 1
try:
    nbformat.validate(nb)
except nbformat.ValidationError:
    rejected = True
else:
    rejected = False
print(sys.modules.get("rfc3987_syntax") is not None, rejected)
"""


def test_lsops_processes_read_notebooks_without_compiling_the_iri_grammar() -> None:
    """jsonschema (under nbformat) imports rfc3987_syntax, which compiles a grammar at
    import (seconds of CPU); lsops marks it absent, and notebook validation still works."""
    import subprocess
    import sys
    from importlib import metadata

    try:
        metadata.version("rfc3987-syntax")
    except metadata.PackageNotFoundError:
        pytest.skip("rfc3987_syntax is not installed: nothing to keep out")

    def probe(first: str) -> list[str]:
        code = _IRI_PROBE.format(first=first)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert probe("") == ["True", "True"]  # plain nbformat loads it
    assert probe("import lsops_lib") == ["False", "True"]


_LEAN_RUNNER = """
import json, sys
from pathlib import Path
from lsops_lib import reports
from lsops_lib.config import load_settings
out = Path(sys.argv[1])
settings = load_settings(env={{"LSOPS_STORE": "sqlite:///" + str(out / "m.sqlite")}}, cwd=out)
params = {{"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "Lean",
          "payload": {token!r}}}
run = reports.run_report("postmortem", params, settings=settings,
                         notebooks_dir={notebooks!r}, outputs_dir=out / "outputs")
archived = "".join(p.read_text() for p in run.path.iterdir() if p.is_file())
print(json.dumps({{"ok": run.ok, "error": run.error, "leaked": {token!r} in archived,
                  "redacted": "REPORT DONE" in archived,
                  "heavy": sorted(m for m in ("matplotlib", "pandas", "sqlalchemy", "lsops_lib.present",
                                               "lsops_lib.store") if m in sys.modules)}}))
"""


def test_the_runner_reads_key_figures_and_the_sentry_token_without_the_notebook_stack(
    tmp_path: Path,
) -> None:
    """The runner process reads the key figures (`lsops_lib.keyfigures`), the Sentry token
    it redacts (`sources.settings`) and writes the index without importing what the
    notebooks draw and read with (pandas, matplotlib and `present`, the store and
    SQLAlchemy: ~0.8-1 s of every `lsops report` whose notebook is not preloaded); the
    token is still redacted from every archived file."""
    import subprocess
    import sys

    token = "sntrys_LEAN-4c1d9e7b2a"
    code = _LEAN_RUNNER.format(token=token, notebooks=str(NOTEBOOKS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env={**env, "LSOPS_SENTRY_TOKEN": token},  # the Sentry token comes from the environment
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    assert result["redacted"] and not result["leaked"], result
    assert result["heavy"] == [], result


def test_a_report_kernel_checks_its_parameters_without_the_runner_stack() -> None:
    """What every report notebook's setup cell imports (`check_parameter`, and with it the
    `lsops_lib.reports` package) brings none of the runner's stack: nbformat and its
    jsonschema, papermill, nbclient, nbconvert (~0.1 s of each report kernel); the
    package's public names are still there when asked for."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lsops_lib.reports.parameters import check_parameter\n"
        "heavy = [m for m in ('nbformat', 'jsonschema', 'papermill', 'nbclient', 'nbconvert',\n"
        "                     'lsops_lib.reports.run', 'lsops_lib.reports.execute') if m in sys.modules]\n"
        "from lsops_lib import reports\n"
        "print(heavy, reports.run_report.__module__, reports.validate.__module__,\n"
        "      sorted(set(reports.__all__) - set(dir(reports))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "[]",
        "lsops_lib.reports.run",
        "lsops_lib.reports.parameters",
        "[]",
    ], proc.stdout


_DEAF_TO_SHUTDOWN = """
async def _ignore(*args, **kwargs):
    pass
get_ipython().kernel.control_handlers["shutdown_request"] = _ignore
"""


def test_a_kernel_deaf_to_its_shutdown_request_is_terminated_after_the_shorter_wait() -> None:
    """The runner's kernel manager: a kernel that does not exit after its shutdown
    request (ipykernel can deadlock in its own exit) gets SIGTERM after half of
    `SHUTDOWN_WAIT_S` (1.5 s), not jupyter_client's 2.5 s; then it is gone."""
    import asyncio
    import time

    from lsops_lib.reports.execute import SHUTDOWN_WAIT_S, _EnvKernelManager

    async def scenario() -> tuple[float, int | None]:
        km = _EnvKernelManager(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute_interactive(_DEAF_TO_SHUTDOWN, timeout=60)
            assert reply["content"]["status"] == "ok", reply
            process = km.provisioner.process
            started = time.monotonic()
            await km.shutdown_kernel()
            return time.monotonic() - started, process.returncode
        finally:
            kc.stop_channels()

    took, returncode = asyncio.run(scenario())
    assert returncode == -15, returncode  # SIGTERM, not the kernel's own exit nor SIGKILL
    assert SHUTDOWN_WAIT_S / 2 <= took < 2.5, took  # jupyter_client's default waited 2.5 s
