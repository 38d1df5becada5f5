"""The fault suite (issue 13): what a hostile world does to lsops, each probe bounded in time.

- API faults (tests/fixtures/faults.py: a real loopback server) through the real client
  and the real commands: `lsops health` exits 2 (CRITICAL, no answer) with one line,
  `lsops collect --once` exits 1 with one line and STORES the failure; a 50 MB body is
  not read beyond the client's cap.
- Reports whose data source is down are failed runs (exit 1, `status: failed`, the reason
  in run.json and the HTML); a partial report succeeds with `warnings`.
- Interrupted reports clean up: a SIGKILLed `lsops report` leaves nothing in the temporary
  folder once the next `lsops reports` / `lsops report` ran, and its run folder is marked
  `interrupted` (never deleted); SIGTERM archives the run as interrupted (exit 143).
- Two reports at once into one outputs folder.
- The demo killed with SIGKILL leaves no process, no port and no PostgreSQL cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.api import MAX_BODY_BYTES
from lsops_lib.cli import main
from lsops_lib.reports.outcome import NO_KEY_FIGURES, judge
from lsops_lib.store import Store
from tests.fixtures.faults import HUGE_BYTES, FaultyAPI, wait_for

pytestmark = pytest.mark.timeout(300)

TOKEN = "tok-FAULTS-5e1f0c2a9d"
DB_PASSWORD = "pw-FAULTS-a7c3e9"
PLACEHOLDERS = Path(__file__).parent / "data" / "notebooks"

# fault -> the failure kind the client reports (lsops_lib.exceptions.Api*.kind)
API_FAULTS = {
    "refused": "unreachable",
    "hang": "timeout",
    "html500": "bad_status",
    "truncated": "unreachable",
    "shape": "bad_shape",
    "text": "not_json",
    "redirect": "bad_status",
    "huge": "bad_shape",
    "hugestream": "bad_shape",
}


def _config(folder: Path, url: str, store: str) -> Path:
    path = folder / "lsops.toml"
    path.write_text(f'[api]\nurl = "{url}"\ntimeout_s = 2\nretries = 0\n[store]\nurl = "{store}"\n')
    return path


def _url(fault: str, faulty_api: FaultyAPI, refused_url: str) -> str:
    return refused_url if fault == "refused" else faulty_api.url(fault)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("fault", sorted(API_FAULTS))
def test_health_says_no_answer_in_one_line_and_exits_2(
    fault: str,
    faulty_api: FaultyAPI,
    refused_url: str,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, _url(fault, faulty_api, refused_url), f"sqlite:///{tmp_path}/m.db")
    env = {**lsops_env, "LSOPS_API_TOKEN": TOKEN}
    result = CliRunner().invoke(main, ["--config", str(config), "health"], env=env)
    assert result.exit_code == 2, result.output  # CRITICAL: no answer
    assert _lines(result.stdout) and len(_lines(result.stdout)) == 1, result.stdout
    assert result.stdout.startswith("NO ANSWER"), result.stdout
    assert result.stderr == ""
    assert TOKEN not in result.output
    data = json.loads(
        CliRunner().invoke(main, ["--config", str(config), "health", "--json"], env=env).stdout
    )
    assert data["status"] == "NO_ANSWER" and data["kind"] == API_FAULTS[fault], data
    if fault == "redirect":  # where to, and what to do about it
        assert f"redirect to {faulty_api.url('ok')}/api/health" in data["error"], data


@pytest.mark.parametrize("fault", sorted(API_FAULTS))
def test_collect_once_stores_the_failure_and_exits_1_with_one_line(
    fault: str,
    faulty_api: FaultyAPI,
    refused_url: str,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    store_url = f"sqlite:///{tmp_path}/m.db"
    config = _config(tmp_path, _url(fault, faulty_api, refused_url), store_url)
    env = {**lsops_env, "LSOPS_API_TOKEN": TOKEN}
    result = CliRunner().invoke(main, ["--config", str(config), "collect", "--once"], env=env)
    assert result.exit_code == 1, result.output
    assert len(_lines(result.stderr)) == 1, result.stderr
    assert result.stderr.startswith("lsops: the API did not answer properly (failure stored)")
    (summary,) = _lines(result.stdout)
    assert " FAILED " in summary and summary.endswith("stored"), summary
    assert TOKEN not in result.output
    with Store(store_url) as store:
        rows = store.scrapes()
    assert len(rows) == 1 and not rows["ok"].iloc[0]
    assert rows["failure_kind"].iloc[0] == API_FAULTS[fault], rows.iloc[0].to_dict()


@pytest.mark.parametrize("fault", ["huge", "hugestream"])
def test_a_50_mb_body_is_not_read_beyond_the_cap(
    fault: str, faulty_api: FaultyAPI, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """With a Content-Length above the cap the client reads nothing of the body; without
    one it stops at the cap (MAX_BODY_BYTES)."""
    config = _config(tmp_path, faulty_api.url(fault), f"sqlite:///{tmp_path}/m.db")
    faulty_api.sent.pop(fault, None)
    result = CliRunner().invoke(main, ["--config", str(config), "health", "--json"], env=lsops_env)
    assert result.exit_code == 2
    assert "larger than 32 MiB" in json.loads(result.stdout)["error"]
    assert wait_for(lambda: fault in faulty_api.sent, 30)
    # the server pushed at most the cap plus what the socket buffers hold, never 50 MB
    assert faulty_api.sent[fault] < min(HUGE_BYTES, MAX_BODY_BYTES + 16 * 2**20)
    if fault == "hugestream":
        assert faulty_api.sent[fault] >= MAX_BODY_BYTES  # it was read up to the cap


def test_the_working_api_behind_the_same_server_answers(
    faulty_api: FaultyAPI, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """The control: the same server and settings, answering like the API, pass."""
    store_url = f"sqlite:///{tmp_path}/m.db"
    config = _config(tmp_path, faulty_api.url("ok"), store_url)
    result = CliRunner().invoke(
        main, ["--config", str(config), "collect", "--once", "--quick"], env=lsops_env
    )
    assert result.exit_code == 0, result.output
    with Store(store_url) as store:
        assert store.scrapes()["ok"].tolist() == [True]


# --- reports: failed when the source is down, warnings when partial ----------------------------


@pytest.mark.parametrize(
    ("kind", "figures", "failed", "warnings"),
    [
        (
            "db-optimization",
            {
                "reachable": False,
                "error": "cannot connect: refused",
                "problems": [
                    {
                        "section": "Space",
                        "kind": "unavailable",
                        "reason": "database not inspected: cannot connect: refused",
                    },
                ],
            },
            ["the database cannot be reached: cannot connect: refused"],
            [],
        ),
        (
            "db-optimization",
            {
                "reachable": True,
                "error": None,
                "problems": [
                    {
                        "section": "Queries",
                        "kind": "unavailable",
                        "reason": "pg_stat_statements is not installed",
                    },
                ],
            },
            [],
            ["Queries: pg_stat_statements is not installed"],
        ),
        (
            "monthly-review",
            {
                "computed": True,
                "has_data": False,
                "month": "2026-10",
                "store": {"available": False, "problem": "the store x does not exist"},
                "problems": [
                    {
                        "section": "Metrics store",
                        "kind": "unavailable",
                        "reason": "the store x does not exist",
                    },
                    {
                        "section": "Data",
                        "kind": "unavailable",
                        "reason": "no observation (the store x does not exist)",
                    },
                    {
                        "section": "Database",
                        "kind": "unavailable",
                        "reason": "no database configured",
                    },
                ],
            },
            ["the metrics store cannot be read: the store x does not exist"],
            ["Database: no database configured"],
        ),
        (
            "monthly-review",
            {
                "computed": True,
                "has_data": True,
                "store": {"available": True, "problem": None},
                "problems": [
                    {"section": "Database", "kind": "unavailable", "reason": "cannot connect"}
                ],
            },
            [],
            ["Database: cannot connect"],
        ),
        (
            "monthly-review",
            {
                "computed": True,
                "has_data": False,
                "month": "2026-10",
                "store": {"available": True, "problem": None},
                "problems": [],
            },
            ["nothing to report: no observation of 2026-10 in the metrics store"],
            [],
        ),
        (
            "monthly-review",
            {
                "computed": False,
                "store": "no usable metrics store (gone)",
                "problems": [
                    {"section": "Monthly review", "kind": "failed", "reason": "ValueError: boom"}
                ],
            },
            [
                "the metrics store cannot be read: no usable metrics store (gone)",
                "the report could not be computed: ValueError: boom",
            ],
            [],
        ),
        (
            "postmortem",
            {
                "computed": True,
                "observations": 0,
                "store": {"available": True, "problem": None},
                "problems": [{"section": "Timeline", "kind": "failed", "reason": "KeyError: 'x'"}],
            },
            ["nothing to report: no observation of the incident window in the metrics store"],
            ["Timeline: KeyError: 'x'"],
        ),
        ("postmortem", None, [], [NO_KEY_FIGURES]),
    ],
)
def test_the_rules_of_each_kind(
    kind: str, figures: Any, failed: list[str], warnings: list[str]
) -> None:
    outcome = judge(reports.KINDS[kind].fails_when, figures)
    assert outcome.failures == failed
    assert outcome.warnings == warnings


def _report(args: list[str], env: dict[str, str], cwd: Path) -> tuple[Any, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["report", *args, "--json"], env=env)
    assert "Traceback" not in result.output, result.output
    run = json.loads(result.stdout)
    data = json.loads(Path(run["run_json"]).read_text())
    html = Path(run["html"]).read_text()
    return result, data, html


def _no_secret(run_dir: Path, *secrets: str) -> None:
    for path in run_dir.iterdir():
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, (path.name, secret)


@pytest.mark.slow
def test_db_optimization_with_the_database_down_is_a_failed_run(
    lsops_env: dict[str, str], tmp_path: Path, refused_url: str
) -> None:
    port = refused_url.rsplit(":", 1)[1]
    env = {
        **lsops_env,
        "LSOPS_DATABASE_URL": f"postgresql://lsops:{DB_PASSWORD}@127.0.0.1:{port}/longsang",
        "LSOPS_STORE": f"sqlite:///{tmp_path}/none.sqlite",
        "LSOPS_OUTPUTS": str(tmp_path / "outputs"),
    }
    result, data, html = _report(["db-optimization"], env, tmp_path)
    assert result.exit_code == 1, result.output
    assert data["status"] == "failed"
    assert data["error"].startswith("the database cannot be reached: cannot connect")
    assert "This report run failed" in html and "the database cannot be reached" in html
    _no_secret(Path(json.loads(result.stdout)["path"]), DB_PASSWORD)
    listing = json.loads(CliRunner().invoke(main, ["reports", "--json"], env=env).stdout)
    assert [r["status"] for r in listing["runs"]] == ["failed"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, args",
    [
        ("monthly-review", ["--month", "2026-10"]),
        (
            "postmortem",
            ["--start", "2026-10-01T01:00Z", "--end", "2026-10-01T03:00Z", "--title", "x"],
        ),
    ],
)
def test_a_report_without_its_metrics_store_is_a_failed_run(
    kind: str, args: list[str], lsops_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **lsops_env,
        "LSOPS_STORE": f"sqlite:///{tmp_path}/never-collected.sqlite",
        "LSOPS_OUTPUTS": str(tmp_path / "outputs"),
    }
    result, data, html = _report([kind, *args], env, tmp_path)
    assert result.exit_code == 1, result.output
    assert data["status"] == "failed"
    assert data["error"].startswith("the metrics store cannot be read: the store")
    assert "does not exist" in data["error"]
    assert "This report run failed" in html and "the metrics store cannot be read" in html


@pytest.mark.slow
def test_a_review_without_its_database_succeeds_with_a_warning(
    cli_world: Any, lsops_env: dict[str, str], tmp_path: Path, refused_url: str
) -> None:
    """The review's database section is optional: the database down makes the report
    partial (a warning, in run.json and at the top of the HTML), not failed."""
    port = refused_url.rsplit(":", 1)[1]
    env = {
        **lsops_env,
        "LSOPS_STORE": cli_world.store_url,
        "LSOPS_DATABASE_URL": f"postgresql://lsops:{DB_PASSWORD}@127.0.0.1:{port}/longsang",
        "LSOPS_OUTPUTS": str(tmp_path / "outputs"),
    }
    result, data, html = _report(["monthly-review", "--month", "2026-10"], env, tmp_path)
    assert result.exit_code == 0, result.output
    assert data["status"] == "succeeded" and "error" not in data
    assert data["warnings"] and all(w.startswith("Database: ") for w in data["warnings"]), data
    assert "This report is partial (1 warning)" in html
    assert DB_PASSWORD not in html and DB_PASSWORD not in json.dumps(data)
    text = CliRunner().invoke(main, ["reports"], env=env).stdout
    assert "succeeded" in text


# --- interrupted reports clean up ------------------------------------------------------------------


def _lsops(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("lsops")
    return [str(exe), *args] if exe.is_file() else [sys.executable, "-m", "lsops_lib.cli", *args]


def _report_env(tmp: Path, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env.update(
        TMPDIR=str(scratch),
        LSOPS_NOTEBOOKS=str(PLACEHOLDERS),
        LSOPS_STORE=f"sqlite:///{tmp}/m.sqlite",
        LSOPS_OUTPUTS=str(tmp / "outputs"),
        LSOPS_DATA=str(tmp / "data"),
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
        ),
    )
    return env


def _kernels_of(scratch: Path) -> list[int]:
    from lsops_lib.demo.processes import mentioning

    return list(mentioning(str(scratch)))


def _start_long_report(tmp: Path, scratch: Path) -> subprocess.Popen[str]:
    """A placeholder monthly review whose cell sleeps 60 s; returns once its kernel runs."""
    proc = subprocess.Popen(
        _lsops("report", "monthly-review", "--month", "2026-10", "-p", "sleep_s", "60"),
        cwd=tmp,
        env=_report_env(tmp, scratch),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = wait_for(
        lambda: proc.poll() is not None or list(scratch.glob("lsops-run-*/kernel.json")), 120
    )
    assert started and proc.poll() is None, proc.communicate()
    assert wait_for(lambda: _kernels_of(scratch), 60), "the kernel never started"
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("then", ["reports", "report"])
def test_a_sigkilled_report_is_marked_interrupted_and_its_temp_files_removed(
    then: str, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _start_long_report(tmp_path, scratch)
    proc.kill()
    proc.communicate(timeout=30)
    (run_dir,) = (tmp_path / "outputs" / "monthly-review" / "2026-10").iterdir()
    assert not (run_dir / "run.json").exists()
    assert list(scratch.iterdir())  # what the killed run left: its scratch folder
    # the orphaned kernel notices its parent is gone and ends
    assert wait_for(lambda: not _kernels_of(scratch), 30), _kernels_of(scratch)

    if then == "reports":
        args = _lsops("reports", "--json")
    else:
        args = _lsops(
            "report",
            "postmortem",
            "--start",
            "2026-10-01T01:00Z",
            "--end",
            "2026-10-01T02:00Z",
            "--title",
            "after",
            "--json",
        )
    done = subprocess.run(
        args,
        cwd=tmp_path,
        env=_report_env(tmp_path, scratch),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert list(scratch.iterdir()) == []  # nothing left in the temporary folder
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "interrupted" and data["error"].startswith("interrupted")
    assert data["kind"] == "monthly-review" and data["key"] == "2026-10"
    assert data["parameters"]["sleep_s"] == 60
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]  # kept, not deleted
    statuses = {r.run_id: r.status for r in reports.list_runs(tmp_path / "outputs")}
    assert statuses[run_dir.name] == "interrupted"
    index = (tmp_path / "outputs" / "index.html").read_text()
    assert "status-interrupted" in index and run_dir.name in index


@pytest.mark.slow
def test_sigterm_archives_the_report_as_interrupted_and_exits_143(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _start_long_report(tmp_path, scratch)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    # one line of lsops's own (the kernel, a separate process, may log its shutdown)
    assert [x for x in stderr.splitlines() if x.startswith("lsops")] == ["lsops: interrupted"]
    assert "Traceback" not in stderr, stderr
    assert "Kernel died" not in stderr, stderr  # the kernel lsops killed itself: no error
    (run_dir,) = (tmp_path / "outputs" / "monthly-review" / "2026-10").iterdir()
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "interrupted"
    assert list(scratch.iterdir()) == []
    assert wait_for(lambda: not _kernels_of(scratch), 30)


@pytest.mark.slow
def test_two_reports_at_once_into_one_outputs_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    args = _lsops("report", "monthly-review", "--month", "2026-10", "--json")
    procs = [
        subprocess.Popen(
            args,
            cwd=tmp_path,
            env=_report_env(tmp_path, scratch),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = [json.loads(out) for out, _ in outs]
    assert runs[0]["run_id"] != runs[1]["run_id"]
    assert len({r["path"] for r in runs}) == 2
    listed = reports.list_runs(tmp_path / "outputs")
    assert sorted(r.run_id for r in listed) == sorted(r["run_id"] for r in runs)
    assert all(r.status == "succeeded" for r in listed)
    index = (tmp_path / "outputs" / "index.html").read_text()
    assert all(r["run_id"] in index for r in runs)
    assert list(scratch.iterdir()) == []


# --- the demo killed -------------------------------------------------------------------------------


def _postgres_available() -> bool:
    from lsops_lib.pgtemp import find_bindir

    if find_bindir() is not None:
        return True
    try:
        import pgserver  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sigkilled_demo_leaves_nothing_running_and_its_reports_are_swept(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """SIGKILL cannot be handled: the demo's children die with it (PR_SET_PDEATHSIG), the
    cluster's watchdog stops PostgreSQL and removes its folder, the kernels notice their
    parent is gone; the next `lsops reports` marks the three half-written runs interrupted
    and removes their scratch folders. (SIGINT and SIGTERM: test_demo.py.)"""
    from lsops_lib.demo.processes import descendants
    from tests.fixtures.demo import demo_command, demo_env, nothing_left, read_state

    if not _postgres_available():
        pytest.skip("no PostgreSQL server binaries and no pgserver wheel: the demo cannot run")
    demo_dir, outputs = tmp_path / ".demo", tmp_path / "outputs"
    # a temporary folder of its own, that PostgreSQL (run as nobody) can enter
    scratch = Path(tempfile.mkdtemp(prefix="lsops-faults-demo-"))
    scratch.chmod(0o1777)
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    env = {**demo_env(outputs), "TMPDIR": str(scratch)}
    log = (tmp_path / "demo.out").open("w")
    proc = subprocess.Popen(  # --days 3: the shortest demo
        demo_command(demo_dir, days=3), cwd=tmp_path, env=env, stdout=log, stderr=log, text=True
    )
    seen: set[int] = set()

    def unfinished_kinds() -> set[str]:
        return {
            d.parts[-3]
            for d in outputs.glob("*/*/*")
            if d.is_dir() and not (d / "run.json").exists()
        }

    def reports_running() -> bool:  # the monthly review and the postmortem run, both
        seen.update(descendants(proc.pid))  # started (the database report may still run too)
        kernels = list(scratch.glob("lsops-run-*/kernel.json"))
        both = {"monthly-review", "postmortem"} <= unfinished_kinds()
        return proc.poll() is not None or (both and len(kernels) >= 2)

    try:
        assert wait_for(reports_running, 400, every_s=0.1) and proc.poll() is None, (
            tmp_path / "demo.out"
        ).read_text()
        seen.update(descendants(proc.pid))
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    state = read_state(demo_dir)
    assert state["cluster"] and state["reports"]
    # a killed process cannot say it stopped: state.json still says running
    left = [p for p in nothing_left(state, extra_pids=sorted(seen)) if "still running" not in p]
    assert left == []
    runs = [d for d in outputs.glob("*/*/*") if d.is_dir()]
    unfinished = unfinished_kinds()
    assert {"monthly-review", "postmortem"} <= unfinished, runs

    listing = subprocess.run(
        _lsops("reports", "--json"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    statuses = {r["kind"]: r["status"] for r in json.loads(listing.stdout)["runs"]}
    assert len(statuses) == len(runs)  # every run is listed, the killed ones too
    assert {k: v for k, v in statuses.items() if k in unfinished} == dict.fromkeys(
        unfinished, "interrupted"
    )
    assert not list(scratch.glob("lsops-run-*")), list(scratch.iterdir())


def test_scratch_dir_is_removed_even_when_written_into_while_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel being stopped may still write into the run's scratch directory while it
    is removed: the removal goes again until the directory is gone (bounded)."""
    import shutil

    from lsops_lib.reports import cleanup

    real_rmtree = shutil.rmtree
    calls: list[Path] = []

    def rmtree_then_late_write(path: Path, ignore_errors: bool = False) -> None:
        real_rmtree(path, ignore_errors=ignore_errors)
        calls.append(Path(path))
        if len(calls) == 1:  # the kernel's last write lands just after the first removal
            Path(path).mkdir()
            (Path(path) / "kernel-late.json").write_text("{}")

    with cleanup.scratch_dir(tmp_path) as scratch:
        (scratch / "run.ipynb").write_text("{}")
        monkeypatch.setattr(cleanup.shutil, "rmtree", rmtree_then_late_write)
    monkeypatch.undo()
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_kernel_started_after_the_interrupt_is_stopped_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (or SIGTERM) while the kernel is still being started finds no kernel to
    kill: the one started just after is killed as well, and the run returns once the
    papermill worker is done (its last write into the scratch directory made), not after
    STOP_TIMEOUT_S with a kernel running the notebook on. papermill is replaced by a stand-in
    that "starts a kernel" (a real sleeping process) 0.3 s into the run and waits for it."""
    import _thread
    import time
    import types

    import papermill

    from lsops_lib.reports.execute import execute as execute_module

    execute_mod = sys.modules["lsops_lib.reports.execute"]
    monkeypatch.setattr(execute_mod, "STOP_TIMEOUT_S", 5)
    kernels: list[subprocess.Popen] = []

    def fake_execute_notebook(source: str, output: str, **kw: Any) -> Any:
        time.sleep(0.1)
        _thread.interrupt_main()  # the signal lands while the kernel is being started
        time.sleep(0.3)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        kernels.append(proc)
        km = types.SimpleNamespace(provisioner=types.SimpleNamespace(pid=proc.pid))
        kw["kernel_manager_class"].lsops_started.append(km)
        proc.wait()  # nbclient sees its kernel die
        Path(output).write_text("{}")  # papermill's last save, into the scratch directory
        raise RuntimeError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute_notebook)
    source = tmp_path / "n.ipynb"
    source.write_text("{}")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        execute_module(source, tmp_path, {}, env={}, progress=False)
    assert time.monotonic() - started < 4  # not STOP_TIMEOUT_S: the worker was done
    (kernel,) = kernels
    assert kernel.poll() == -signal.SIGKILL
    assert (tmp_path / "executed.ipynb").read_text() == "{}"  # written before the return
