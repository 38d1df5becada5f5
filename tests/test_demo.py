"""`lsops demo`, run as a user runs it: the reports it archives show the planted incidents,
running it twice gives two runs of each, and nothing is left behind - after success, after
an interruption, and after `--lab`.

The demo runs with a shortened history (tests/fixtures/demo.py: DEMO_DAYS days, the
incidents placed by fractions of the window so all of them are in it).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.demo.processes import descendants
from lsops_lib.demo.world import MIN_DAYS
from lsops_lib.reports import list_runs
from tests.fixtures.demo import (
    DEMO_DAYS,
    DemoRun,
    demo_command,
    demo_env,
    nothing_left,
    read_state,
)

KINDS = ("monthly-review", "db-optimization", "postmortem")
KEY_FIGURES_TAG = "lsops-key-figures"


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _runs(outputs: Path, kind: str) -> list[Any]:
    return [r for r in list_runs(outputs, kind) if r.ok]


def _first_run(run: DemoRun, kind: str) -> Any:
    """The run of `kind` the first demo made (the oldest one in the archive)."""
    runs = sorted(list_runs(run.outputs, kind), key=lambda r: (r.started, r.run_id))
    assert runs, f"no {kind} run archived"
    return runs[0]


def _key_figures(run: Any) -> dict[str, Any]:
    nb = json.loads((run.path / "report.ipynb").read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {})
            data = out.get("data", {})
            tagged = KEY_FIGURES_TAG in json.dumps(meta)
            if tagged and "application/json" in data:
                return data["application/json"]
            if tagged and "text/plain" in data:
                return json.loads("".join(data["text/plain"]))
    raise AssertionError(f"no key figures in {run.path / 'report.ipynb'}")


def _html_text(run: Any) -> str:
    html = (run.path / "report.html").read_text()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&nbsp;", " ")


# --- one demo -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_demo_succeeds_with_three_archived_runs_linked_from_the_index(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.stderr
    assert demo_run.stderr.strip() == ""
    out = demo_run.stdout
    for phase in ("prepare", "database", "history", "incidents", "reports", "total"):
        assert re.search(rf"^\s+{phase}\s+\d+\.\d s", out, re.M), f"no timing for {phase}:\n{out}"
    assert "index.html" in out
    index = demo_run.outputs / "index.html"
    assert index.is_file()
    page = index.read_text()
    for kind in KINDS:
        run = _first_run(demo_run, kind)
        assert run.status == "succeeded", f"{kind}: {run.error}"
        link = (run.path / "report.html").relative_to(demo_run.outputs).as_posix()
        assert f'href="{link}"' in page, f"the index does not link {link}"
        # the summary line says a run with warnings partial, as index.html does (QA 23)
        n = len(run.warnings)
        mark = f"partial ({n} warning{'s' if n > 1 else ''})" if n else "ok"
        assert re.search(rf"\b{kind} {re.escape(mark)} \d+ s", out), (kind, mark, out)
    # everything else lives in the demo folder
    for name in ("store.sqlite", "lsops.toml", "lsops.env", "state.json"):
        assert (demo_run.demo_dir / name).is_file(), name
    assert list((demo_run.demo_dir / "logs").glob("demo-*.log"))
    assert not (demo_run.root / "lsops.toml").exists()


@pytest.mark.postgres
@pytest.mark.slow
def test_history_went_through_the_collector(demo_run: DemoRun) -> None:
    from lsops_lib.store import Store

    plan = demo_run.state["plan"]
    with Store(f"sqlite:///{demo_run.demo_dir / 'store.sqlite'}") as store:
        scrapes = store.scrapes(None, None)
        resets = store.resets(None, None)
        sizes = store.db_sizes("default")
    assert len(scrapes) == plan["scrapes"] == demo_run.days * 288
    assert scrapes["ts"].diff().dropna().dt.total_seconds().eq(300).all()  # every 5 min
    failed = scrapes[~scrapes["ok"].astype(bool)]
    assert len(failed) == 8  # the 40 minute outage
    assert set(failed["failure_kind"]) == {"unreachable"}
    assert sorted(resets["kind"]) == ["restart", "restart"]  # after the outage; the deploy
    assert sizes["ts"].nunique() == demo_run.days  # one real snapshot per virtual day
    totals = sizes.groupby("ts")["total_bytes"].sum()
    assert totals.is_monotonic_increasing and totals.iloc[-1] > totals.iloc[0]


@pytest.mark.postgres
@pytest.mark.slow
def test_postmortem_and_review_find_the_outage_with_its_length(demo_run: DemoRun) -> None:
    plan = demo_run.state["plan"]
    planted_start, planted_end = (_ts(t) for t in plan["outage"])
    pm = _key_figures(_first_run(demo_run, "postmortem"))
    assert pm["computed"] is True and not pm["problems"]
    assert pm["duration_s"] == 40 * 60
    assert _ts(pm["impact_start"]) - planted_start < (planted_end - planted_start) / 4
    assert pm["no_answer"] == 8
    assert "40 min" in _html_text(_first_run(demo_run, "postmortem"))
    review = _key_figures(_first_run(demo_run, "monthly-review"))
    outages = [i for i in review["incidents"] if i["kind"] == "no_answer"]
    assert [o["duration_s"] for o in outages] == [2400.0]
    assert planted_start <= _ts(outages[0]["start"]) <= planted_end


@pytest.mark.postgres
@pytest.mark.slow
def test_review_projects_the_database_size_to_its_limit(demo_run: DemoRun) -> None:
    """Issue 15: the review's Database section draws the capacity projection from the size
    snapshots the demo collected, and its key figures carry the forecast it draws."""
    run = _first_run(demo_run, "monthly-review")
    database = _key_figures(run)["database"]
    assert database["available"] is True
    assert database["forecast_status"] is not None and database["limit_bytes"] > 0
    nb = json.loads((run.path / "report.ipynb").read_text())
    (cell,) = [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and "plots.capacity_projection(db.projection)" in "".join(c["source"])
    ]
    images = [o for o in cell["outputs"] if "image/png" in o.get("data", {})]
    # the month's growth and the projection (drawn whenever there are snapshots)
    assert len(images) == 2, [list(o.get("data", {})) for o in cell["outputs"]]


@pytest.mark.postgres
@pytest.mark.slow
def test_postmortem_window_is_the_incident_window(demo_run: DemoRun) -> None:
    """The demo's postmortem studies the window `lsops incidents` and the review suggest
    for the outage (analysis.incident_window), not one of its own."""
    from lsops_lib.analysis import incident_window, incidents
    from lsops_lib.config import Thresholds
    from lsops_lib.store import Store

    with Store(f"sqlite:///{demo_run.demo_dir / 'store.sqlite'}") as store:
        found = incidents(store, None, None, Thresholds(), kinds=("no_answer",))
    assert len(found) == 1
    start, end = incident_window(found["start"].iloc[0], found["end"].iloc[0], Thresholds())
    params = _first_run(demo_run, "postmortem").parameters
    assert (_ts(params["start"]), _ts(params["end"])) == (start, end)


@pytest.mark.postgres
@pytest.mark.slow
def test_slow_endpoint_is_ranked_worst_in_its_days(demo_run: DemoRun) -> None:
    from lsops_lib.analysis import postmortem
    from lsops_lib.store import Store

    plan = demo_run.state["plan"]
    slow = plan["slow_endpoint"]
    lat_start, lat_end = (_ts(t) for t in plan["latency"])
    # the monthly review reports the regression on that endpoint, over those days
    review = _key_figures(_first_run(demo_run, "monthly-review"))
    latency = [i for i in review["incidents"] if i["kind"] == "latency"]
    assert [i["endpoint"] for i in latency] == [slow]
    assert abs((_ts(latency[0]["start"]) - lat_start).total_seconds()) <= 3600
    assert abs((_ts(latency[0]["end"]) - lat_end).total_seconds()) <= 3600
    assert slow in _html_text(_first_run(demo_run, "monthly-review"))
    # and in its days, against the day before, it is the endpoint that got slowest: by far
    # the most latency added (requests x mean increase) and a mean several times its baseline
    with Store(f"sqlite:///{demo_run.demo_dir / 'store.sqlite'}") as store:
        facts = postmortem(store, lat_start, lat_end)
    ranked = facts.endpoints.sort_values("extra_latency_ms", ascending=False)
    assert ranked["endpoint"].iloc[0] == slow, ranked
    worst, second = ranked.iloc[0], ranked.iloc[1]
    assert worst["extra_latency_ms"] > 10 * second["extra_latency_ms"]
    assert worst["mean_ms"] > 3 * worst["baseline_mean_ms"]
    ratio = facts.endpoints["mean_ms"] / facts.endpoints["baseline_mean_ms"]
    assert facts.endpoints.loc[ratio.idxmax(), "endpoint"] == slow


@pytest.mark.postgres
@pytest.mark.slow
def test_incidents_lists_the_planted_cache_fall_and_memory_climb(demo_run: DemoRun) -> None:
    """`lsops incidents` on the demo's store (its own settings, lsops.env) lists the cache
    fall and the memory climb the plan planted (state.json), once each: the fall within a
    scrape interval (5 min) of its bounds; the climb ending at the deploy's restart (the
    first scrape of the new process), starting within 3 intervals of the planted start (a
    2.3 MiB/h climb under the simulator's ~1 MiB RSS noise per scrape places its first
    scrape to a few minutes, not to one interval)."""
    plan = demo_run.state["plan"]
    env = demo_env(demo_run.outputs)
    for line in (demo_run.demo_dir / "lsops.env").read_text().splitlines():
        if line.startswith("LSOPS_"):
            name, _, value = line.partition("=")
            env[name] = value
    lsops = demo_command(demo_run.demo_dir)[:-5]  # the lsops command, without `demo ...`
    proc = subprocess.run(
        [*lsops, "incidents", "--since", plan["start"], "--until", plan["end"], "--json"],
        cwd=demo_run.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    every = 300.0

    def off(a: str, b: str) -> float:
        return abs((_ts(a) - _ts(b)).total_seconds())

    falls = [i for i in found if i["kind"] == "cache_fall"]
    assert len(falls) == 1, falls
    assert off(falls[0]["start"], plan["cache"][0]) <= every
    assert off(falls[0]["end"], plan["cache"][1]) <= every
    climbs = [i for i in found if i["kind"] == "memory_climb"]
    assert len(climbs) == 1, climbs
    assert off(climbs[0]["start"], plan["memory"][0]) <= 3 * every
    deploy = plan["restarts"][-1]  # the restart that ended the climb
    assert off(climbs[0]["end"], deploy) <= every
    assert "ended by a restart" in climbs[0]["detail"]
    assert climbs[0]["postmortem_command"].startswith("lsops report postmortem --start ")


@pytest.mark.postgres
@pytest.mark.slow
def test_db_report_recommends_removing_the_redundant_index(demo_run: DemoRun) -> None:
    text = _html_text(_first_run(demo_run, "db-optimization"))
    assert "Redundant index idx_context_embeddings_entity_type" in text
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.idx_context_embeddings_entity_type" in text
    # the rest of the planted workload
    assert "Unused index idx_conversations_title" in text
    assert re.search(r"response_cache needs VACUUM: \d{1,3}(,\d{3})* dead tuples?", text)
    assert "failed embedding indexing runs" in text
    assert "Size of all tables per snapshot" in text


@pytest.mark.postgres
@pytest.mark.slow
def test_the_demo_leaves_nothing_behind(demo_run: DemoRun) -> None:
    state = demo_run.state
    assert state["cluster"]["root"] and state["api_ports"] and state["workers"]
    assert len(state["reports"]) == 3
    assert nothing_left(state) == []


# --- twice ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_running_twice_gives_two_runs_of_each(demo_second_run: DemoRun) -> None:
    """The second demo, into the same folders, has a postmortem notebook that raises: it
    exits 1 with one line naming the failed report, and archives the other two beside the
    first demo's runs (the failed one too, marked failed)."""
    run = demo_second_run
    assert run.code == 1, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "lsops: postmortem: failed: RuntimeError: planted failure"
    ), lines
    page = (run.outputs / "index.html").read_text()
    for kind in KINDS:
        runs = list_runs(run.outputs, kind)
        assert len(runs) == 2, f"{kind}: {[r.run_id for r in runs]}"
        assert len({r.run_id for r in runs}) == 2
        assert len({r.key for r in runs}) == 1  # the same report, twice
        first, second = sorted(runs, key=lambda r: (r.started, r.run_id))
        assert first.ok
        if kind == "postmortem":
            assert second.status == "failed"
        else:
            assert second.ok
        for r in runs:
            link = (r.path / "report.html").relative_to(run.outputs).as_posix()
            assert f'href="{link}"' in page
    assert nothing_left(run.state) == []


# --- interrupted, lab, usage -------------------------------------------------------------------


def _watch(proc: subprocess.Popen[str], seen: set[int]) -> None:
    seen.update(descendants(proc.pid))


def _mid_history(state: dict[str, Any]) -> bool:
    # the cluster is up and the history workers serve their simulated APIs
    return bool(state.get("cluster")) and len(state.get("api_ports", [])) >= 2


def _mid_reports(state: dict[str, Any]) -> bool:
    # the three report processes run (their kernels below them)
    return len(state.get("reports", [])) == 3


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "when", "days"),
    [
        (signal.SIGINT, _mid_history, DEMO_DAYS),  # a history long enough to land in
        (signal.SIGTERM, _mid_reports, MIN_DAYS),  # the shortest demo reaches its reports
    ],
    ids=["sigint-during-history", "sigterm-during-reports"],
)
def test_an_interrupted_demo_leaves_nothing_behind(
    tmp_path: Path, demo_run: DemoRun, signum: int, when: Any, days: int
) -> None:
    demo_dir, outputs = tmp_path / ".demo", tmp_path / "outputs"
    proc = subprocess.Popen(
        demo_command(demo_dir, days=days),
        cwd=tmp_path,
        env=demo_env(outputs),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            _watch(proc, seen)
            if when(read_state(demo_dir)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the demo ended before it could be interrupted"
        time.sleep(1.0)  # well inside: kernels started, scrapes stored
        _watch(proc, seen)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, (stdout, stderr)
    assert stderr.strip().splitlines() == [
        "lsops: interrupted; everything the demo started is stopped"
    ]
    state = read_state(demo_dir)
    assert state["cluster"] and state["api_ports"]
    assert seen, "no child process was seen"
    assert nothing_left(state, extra_pids=sorted(seen)) == []
    # no run is listed half-written: a report the demo stopped is archived `interrupted`
    # (its kernel and scratch removed), the others as they finished
    runs = list_runs(outputs)
    assert all(r.ok or r.status == "interrupted" for r in runs), [r.status for r in runs]


@pytest.mark.postgres
@pytest.mark.slow
def test_lab_runs_with_the_demo_settings_and_a_live_database(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    """`--lab` reuses the demo's store, starts the database again and runs the lab command
    (here: a script checking what JupyterLab would get) with the demo's environment; the
    database stops when the command exits."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, sqlalchemy as sa\n"
        "from lsops_lib.config import load_settings\n"
        "from lsops_lib.store import Store\n"
        "s = load_settings()\n"
        "engine = sa.create_engine(s.database())\n"
        "with engine.connect() as c:\n"
        "    n = c.execute(sa.text('SELECT count(*) FROM context_embeddings')).scalar()\n"
        "engine.dispose()\n"
        "with Store(s.store_url) as st:\n"
        "    scrapes = len(st.scrapes(None, None))\n"
        "print(json.dumps({'store': s.store_url, 'embeddings': n, 'scrapes': scrapes}))\n"
    )
    import sys

    proc = subprocess.run(
        demo_command(
            demo_run.demo_dir,
            "--lab",
            "--lab-command",
            f"{sys.executable} {probe}",
            days=demo_run.days,
        ),
        cwd=demo_run.root,
        env=demo_env(demo_run.outputs),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["store"] == f"sqlite:///{demo_run.demo_dir / 'store.sqlite'}"
    assert answer["embeddings"] > 100
    assert answer["scrapes"] == demo_run.days * 288  # the demo's store, reused
    state = read_state(demo_run.demo_dir)
    assert state["lab"] and nothing_left(state) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between"),
        (["--days", "500"], "--days must be between"),
        (["--month", "2026-13"], "not a month"),
        (["--days", "x"], "not a valid integer"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    from tests.fixtures.demo import demo_command as command

    cmd = command(tmp_path / ".demo")
    cmd = cmd[: cmd.index("--days")] + args + ["--dir", str(tmp_path / ".demo")]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        env=demo_env(tmp_path / "outputs"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "outputs").exists()


def test_without_postgresql_it_says_so_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from lsops_lib.cli import main

    monkeypatch.setattr("lsops_lib.pgtemp.find_bindir", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "pgserver", None)  # import fails
    monkeypatch.setenv("LSOPS_OUTPUTS", str(tmp_path / "outputs"))
    result = CliRunner().invoke(main, ["demo", "--days", "3", "--dir", str(tmp_path / ".demo")])
    assert result.exit_code == 1, result.output
    assert "the demo needs PostgreSQL" in result.output
    assert not (tmp_path / ".demo").exists() and not (tmp_path / "outputs").exists()
