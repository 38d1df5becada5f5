"""What the README promises, checked after the QA pass of issue 14:

- a report killed with SIGKILL is archived by the sweep with `duration_s: null` (its
  duration is not known: nothing is written in its run folder while the notebook runs);
- `lsops db size --forecast` with too little history: no growth per day for the tables
  either (`null`, a dash), never a made-up figure;
- the help texts: no internal references, every subcommand of `lsops db`, every incident
  kind of the registry in `lsops incidents --help`; the line of an empty `lsops incidents`;
- the lsops.env of `lsops demo --dir X` names X/lsops.env, and a shell can source it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.db import forecast
from lsops_lib.demo.folder import DemoFolder
from lsops_lib.store import Store
from tests.fixtures.analysis import History
from tests.fixtures.faults import wait_for
from tests.fixtures.sizes import size_snapshots

MiB = 2**20
GiB = 2**30
DAY0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)

# --- 1. a SIGKILLed report: its duration is unknown ---------------------------------------------

# what `reports.run_report` does before it executes the notebook (under the index lock):
# reserve the run folder and take its lock; then it would run for a while
_RUNNER = textwrap.dedent(
    """
    import os, sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from lsops_lib.reports import hold_run, locked
    from lsops_lib.reports.archive import iso, reserve_run_dir

    outputs, started = Path(sys.argv[1]), datetime.now(UTC)
    with locked(outputs):
        run_id, run_dir = reserve_run_dir(outputs, "monthly-review", "2026-10", started)
        hold_run(run_dir, {"kind": "monthly-review", "key": "2026-10", "started": iso(started),
                           "parameters": {"month": "2026-10"}, "pid": os.getpid()})
    print(run_dir, flush=True)
    time.sleep(60)
    """
)


def _killed_run(outputs: Path) -> Path:
    """A run folder whose process was SIGKILLed 1.5 s after it reserved it."""
    outputs.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(outputs)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_dir = Path(proc.stdout.readline().strip())
    assert (run_dir / ".lsops-run.lock").is_file(), proc.communicate()
    wait_for(lambda: False, 1.5)  # it "runs" a while
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not (run_dir / "run.json").exists()
    return run_dir


def test_a_sigkilled_report_is_archived_with_an_unknown_duration(tmp_path: Path) -> None:
    run_dir = _killed_run(tmp_path / "outputs")
    (marked,) = reports.sweep(tmp_path / "outputs")
    assert marked.status == "interrupted"
    data = json.loads((run_dir / "run.json").read_text())
    assert data["status"] == "interrupted" and data["kind"] == "monthly-review"
    assert "duration_s" in data and data["duration_s"] is None  # not 0.0: unknown


def test_lsops_reports_shows_the_unknown_duration_as_a_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = _killed_run(tmp_path / "outputs")
    env = {"LSOPS_OUTPUTS": str(tmp_path / "outputs"), "COLUMNS": "200"}
    listed = CliRunner().invoke(main, ["reports", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.stdout)["runs"]
    assert run["run_id"] == run_dir.name and run["duration_s"] is None
    text = CliRunner().invoke(main, ["reports"], env=env)
    row = next(x for x in text.stdout.splitlines() if run_dir.name in x)
    assert "interrupted  –" in re.sub(r" +", "  ", row) and " ms" not in row
    index = (tmp_path / "outputs" / "index.html").read_text()
    assert '<td class="num">–</td>' in index


# --- 2. the forecast with too little history ----------------------------------------------------


def _hourly(n: int) -> pd.DataFrame:
    """`n` snapshots an hour apart; `documents` grows 1 MiB an hour, `agents` not."""
    return size_snapshots(
        [
            (DAY0 + timedelta(hours=i), {"documents": GiB + i * MiB, "agents": 8 * MiB})
            for i in range(n)
        ]
    )


def test_not_enough_history_gives_no_growth_for_the_tables_either() -> None:
    fc = forecast.capacity_forecast(_hourly(3), 2 * GiB)
    assert fc.status == "not_enough_history" and fc.growth_bytes_per_day is None
    data = json.loads(json.dumps(fc.as_dict()))
    assert {t["table"] for t in data["tables"]} == {"documents", "agents"}
    for row in data["tables"]:  # 24 MiB/day and 0 B/day before: from 2 hours of history
        assert row["growth_bytes_per_day"] is None and row["share_of_growth"] is None, row
    assert {t["table"]: t["total_bytes"] for t in data["tables"]} == {
        "documents": GiB + 2 * MiB,
        "agents": 8 * MiB,
    }


def test_a_table_with_too_little_history_of_its_own_has_no_growth() -> None:
    """30 days of two tables growing 10 and 2 MiB a day; a third appears on the last day."""
    points = []
    for day in range(30):
        sizes = {"documents": GiB + day * 10 * MiB, "agents": 64 * MiB + day * 2 * MiB}
        if day == 29:
            sizes["news_digests"] = 5 * MiB
        points.append((DAY0 + timedelta(days=day), sizes))
    points.append((DAY0 + timedelta(days=29, hours=1), {**points[-1][1], "news_digests": 9 * MiB}))
    fc = forecast.capacity_forecast(size_snapshots(points), 2 * GiB)
    assert fc.status == "ok"
    rate = {t["table"]: t["growth_bytes_per_day"] for t in fc.as_dict()["tables"]}
    assert rate["documents"] == pytest.approx(10 * MiB, rel=1e-6)
    assert rate["agents"] == pytest.approx(2 * MiB, rel=1e-6)
    assert rate["news_digests"] is None  # not 96 MiB/day from one hour
    share = {t["table"]: t["share_of_growth"] for t in fc.as_dict()["tables"]}
    assert share["documents"] == pytest.approx(10 / 12, rel=1e-6)


@pytest.mark.postgres
def test_db_size_forecast_shows_a_dash_per_table_without_enough_history(
    longsang_db: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store_url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    with Store(store_url) as store:
        for ts, part in _hourly(3).groupby("ts"):
            store.record_db_sizes("default", ts.to_pydatetime(), part.drop(columns="ts"))
    env = {
        "LSOPS_DATABASE_URL": longsang_db.password_url,  # type: ignore[attr-defined]
        "LSOPS_STORE": store_url,
        "COLUMNS": "200",
    }
    body = json.loads(
        CliRunner().invoke(main, ["db", "size", "--forecast", "--json"], env=env).stdout
    )
    assert body["status"] == "not_enough_history" and body["growth_bytes_per_day"] is None
    assert [t["growth_bytes_per_day"] for t in body["tables"]] == [None, None]
    text = CliRunner().invoke(main, ["db", "size", "--forecast"], env=env)
    assert text.exit_code == 0 and "not enough history" in text.stdout
    rows = [x for x in text.stdout.splitlines() if "documents" in x or "agents" in x]
    assert len(rows) == 2 and not any("/day" in r for r in rows), rows
    assert all(r.split("│")[4].strip() == "–" for r in rows), rows  # the growth/day cell


# --- 3. help texts and the empty incidents line -------------------------------------------------


def _help(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_help_texts_hold_no_internal_reference() -> None:
    for args in (("alerts",), ("alerts", "check"), ("alerts", "test"), ("db",), ("incidents",)):
        assert not re.search(r"\(issue \d+", _help(*args)), args


def test_db_help_names_every_subcommand() -> None:
    from lsops_lib.cli.db import db_group

    first = _help("db").split("Options:")[0]
    assert sorted(db_group.commands) == ["indexes", "maintenance", "queries", "size", "vectors"]
    for name in db_group.commands:
        assert re.search(rf"\b{name}\b", first), name


def test_incidents_help_lists_every_kind_of_the_registry() -> None:
    from lsops_lib.analysis.incidents import DETECTORS, KINDS

    text = _help("incidents")
    assert "log_burst" in text and "pm2_restart" in text
    for kind in (*KINDS, *DETECTORS):
        assert re.search(rf"\b{kind}\b", text), kind


def test_incidents_on_a_quiet_window_says_so_in_one_plain_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    store_url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    with Store(store_url) as store:
        History(store).run(13, {"/projects/:id": (50, 20.0, 0)})  # one quiet hour
    env = {"LSOPS_STORE": store_url, "LSOPS_API_URL": "http://127.0.0.1:9"}
    args = ["incidents", "--since", "2026-10-01T00:00Z", "--until", "2026-10-01T01:00Z"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "no incidents of default between 2026-10-01 00:00 UTC and 2026-10-01 01:00 UTC"
    ]


# --- 4. the demo folder's lsops.env -------------------------------------------------------------


def test_the_demo_env_file_names_itself_and_a_shell_can_source_it(tmp_path: Path) -> None:
    folder = DemoFolder(tmp_path / "my demo" / "X", tmp_path / "out puts")
    folder.create()
    folder.write_config()
    env_file = tmp_path / "my demo" / "X" / "lsops.env"
    first = env_file.read_text().splitlines()[0]
    command = re.search(r"`(.+)`", first)
    assert command is not None, first
    assert ".demo/" not in first and str(env_file) in first.replace("'", "")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shell_env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    out = subprocess.run(
        [
            "sh",
            "-c",
            command.group(1) + '; printf "%s\\n" "$LSOPS_CONFIG" "$LSOPS_STORE" "$LSOPS_OUTPUTS"',
        ],
        cwd=elsewhere,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        str(tmp_path / "my demo" / "X" / "lsops.toml"),
        f"sqlite:///{tmp_path / 'my demo' / 'X' / 'store.sqlite'}",
        str(tmp_path / "out puts"),
    ]


def test_python_dash_m_runs_the_command_line(tmp_path: Path) -> None:
    """`python -m lsops_lib.cli` is `lsops` (tests' fallback where no console script is)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-m", "lsops_lib.cli", "reports", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "reports" in done.stdout
