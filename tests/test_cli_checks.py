"""The morning checks on the command line: exit codes, JSON keys, one-line errors.

The API side runs against the simulated API over real loopback sockets; the store side
against SQLite stores filled with known scrapes (or collected from the simulated API).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lsops_lib.cli import main
from lsops_lib.simapi import EndpointSpec, Event, Scenario, SimClock, SimulatedAPI
from lsops_lib.store import Store
from tests.fixtures.analysis import DEEP_OK, T0, History

SINCE = ["--since", "2026-10-01T00:00Z", "--until", "2026-10-01T06:00Z"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray lsops.toml
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    return {
        "LSOPS_API_URL": f"http://127.0.0.1:{_free_port()}",
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'metrics.sqlite'}",
    }


def _scenario(*events: Event) -> Scenario:
    return Scenario(
        endpoints=[
            EndpointSpec("/copilot/chat", "POST", 4.0, 120.0, 0.0),
            EndpointSpec("/projects/:id", "GET", 5.0, 25.0, 0.01),
        ],
        events=list(events),
        start=T0,
        seed=3,
    )


@pytest.fixture
def sim() -> Iterator[tuple[SimulatedAPI, SimClock]]:
    """A simulated API, degraded 01:00-02:00, erroring (503) 03:00-04:00 and throwing (503
    `{status, timestamp, error}`) 05:00-06:00 (virtual time)."""
    clock = SimClock(T0 + timedelta(minutes=30))
    scenario = _scenario(
        Event("degraded", T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        Event("error", T0 + timedelta(hours=3), T0 + timedelta(hours=4)),
        Event(
            "error", T0 + timedelta(hours=5), T0 + timedelta(hours=6), value=1.0
        ),  # handler throws
    )
    with SimulatedAPI(scenario, clock=clock, restart_delay_s=0.1) as api:
        yield api, clock


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


# --- lsops health ------------------------------------------------------------------------


def test_health_exit_codes_follow_the_plugin_convention(
    env: dict[str, str], sim: tuple[SimulatedAPI, SimClock]
) -> None:
    api, clock = sim
    env = {**env, "LSOPS_API_URL": api.url}
    quick = run(env, "health")
    assert quick.exit_code == 0, quick.output
    assert "OK" in quick.output and "database" in quick.output and "MiB" in quick.output

    data = json.loads(run(env, "health", "--deep", "--json").output)
    assert data["status"] == "OK" and data["deep"] is True
    assert {"status", "http_status", "services", "memory", "checks", "uptime_s", "pid"} <= set(data)
    assert {s["name"] for s in data["services"]} >= {
        "database",
        "openai",
        "cache",
        "vectorDB",
        "tables",
    }
    assert all({"name", "status", "message"} <= set(s) for s in data["services"])
    assert data["memory"]["rss"] > 0

    clock.set(T0 + timedelta(hours=1, minutes=30))
    degraded = run(env, "health", "--deep")
    assert degraded.exit_code == 1, degraded.output
    assert "DEGRADED" in degraded.output and "vectorDB" in degraded.output
    assert run(env, "health").exit_code == 0  # the quick check cannot see it

    clock.set(T0 + timedelta(hours=3, minutes=30))
    error = run(env, "health", "--deep", "--json")
    assert error.exit_code == 2
    body = json.loads(error.output)
    assert body["status"] == "ERROR" and body["http_status"] == 503

    clock.set(T0 + timedelta(hours=5, minutes=30))
    thrown = run(env, "health")  # the exception shape: no services at all, in both modes
    assert thrown.exit_code == 2 and "Cannot read properties" in thrown.output
    assert json.loads(run(env, "health", "--json").output)["error"].startswith("Cannot read")


def test_health_no_answer_is_critical(env: dict[str, str]) -> None:
    result = run(env, "health", "--json")  # nothing listens on that port
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["status"] == "NO_ANSWER" and data["kind"] == "unreachable"
    text = run(env, "health")
    assert text.exit_code == 2 and "NO ANSWER" in text.output


def test_health_bad_usage_and_bad_settings_are_unknown(env: dict[str, str]) -> None:
    assert run(env, "health", "--bogus").exit_code == 3
    assert run(env, "health", "extra").exit_code == 3
    bad = run({**env, "LSOPS_API_URL": "ftp://nowhere"}, "health")
    assert bad.exit_code == 3 and "http://" in bad.output
    assert "Traceback" not in bad.output


def test_health_exit_code_of_the_installed_command(env: dict[str, str]) -> None:
    """The console script itself, as cron or Nagios runs it."""
    lsops = Path(sys.executable).parent / "lsops"
    cmd = [str(lsops)] if lsops.exists() else [sys.executable, "-m", "lsops_lib.cli"]
    proc = subprocess.run(
        [*cmd, "health"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


_FOOTPRINT = """
import sys
from lsops_lib.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("EXIT", code, "PANDAS", "pandas" in sys.modules, "SQLALCHEMY", "sqlalchemy" in sys.modules)
"""


@pytest.mark.parametrize("args", [["health"], ["health", "--json"], ["cache"]])
def test_the_live_checks_load_neither_pandas_nor_the_store(
    env: dict[str, str], sim: tuple[SimulatedAPI, SimClock], args: list[str]
) -> None:
    """`lsops health` and `lsops cache` ask the API and print: they start without pandas
    and SQLAlchemy (~0.3 s of each run by cron or a monitoring agent)."""
    api, clock = sim
    clock.set(T0 + timedelta(minutes=50))
    proc = subprocess.run(
        [sys.executable, "-c", _FOOTPRINT, *args],
        env={**os.environ, **env, "LSOPS_API_URL": api.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    *_, last = proc.stdout.strip().splitlines()
    assert last == "EXIT 0 PANDAS False SQLALCHEMY False", (proc.stdout, proc.stderr)


# --- lsops cache -------------------------------------------------------------------------


def test_cache_json_from_the_live_api(
    env: dict[str, str], sim: tuple[SimulatedAPI, SimClock]
) -> None:
    api, clock = sim
    clock.set(T0 + timedelta(minutes=50))
    result = run({**env, "LSOPS_API_URL": api.url}, "cache", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"hits", "misses", "hit_rate", "caches"} <= set(data)
    assert data["hits"] + data["misses"] > 0 and 0 <= data["hit_rate"] <= 1
    assert {c["cache"] for c in data["caches"]} == {
        "context",
        "embedding",
        "suggestions",
        "preferences",
    }
    dead = run(env, "cache")
    assert dead.exit_code == 1 and "Traceback" not in dead.output


# --- lsops endpoints ---------------------------------------------------------------------


def test_endpoints_json_matches_what_the_scenario_sent(env: dict[str, str]) -> None:
    from lsops_lib.api import Client
    from lsops_lib.collect import collect_once

    clock = SimClock(T0)
    with SimulatedAPI(_scenario(), clock=clock) as api, Store(env["LSOPS_STORE"]) as store:
        with Client(api.url, retries=0) as client:
            for i in range(13):  # 00:00 .. 01:00 every 5 min
                clock.set(T0 + timedelta(minutes=5 * i))
                collect_once(client, store, clock=clock.now)
        truth = api.ledger(T0, clock.now(), include_monitoring=False).set_index("endpoint")
    result = run(env, "endpoints", *SINCE, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all(
        {"endpoint", "requests", "errors", "error_rate", "mean_ms"} <= set(r) for r in rows
    )
    assert {r["endpoint"] for r in rows} == set(truth.index)  # /health and /metrics excluded
    for r in rows:
        assert isinstance(r["requests"], int) and isinstance(r["errors"], int)
        assert r["requests"] == truth.loc[r["endpoint"], "requests"]
        assert r["errors"] == truth.loc[r["endpoint"], "errors"]
        assert 0 <= r["error_rate"] <= 1 and isinstance(r["mean_ms"], float)
    full = json.loads(run(env, "endpoints", *SINCE, "--include-monitoring", "--json").output)
    assert {"/health", "/metrics"} <= {r["endpoint"] for r in full}
    table = run(env, "endpoints", *SINCE)
    assert (
        table.exit_code == 0
        and "/copilot/chat" in table.output
        and "excluded monitoring" in table.output
    )


def test_endpoints_bad_window_is_one_line_exit_2(env: dict[str, str]) -> None:
    for args in (
        ["--window", "banana"],
        ["--since", "yesterday-ish"],
        ["--window", "1h", "--since", "2026-10-01"],
    ):
        result = CliRunner().invoke(main, ["endpoints", *args, "--json"], env=env)
        assert result.exit_code == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    Store(env["LSOPS_STORE"]).close()  # a store without a scrape: nothing counted
    empty = run(env, "endpoints", *SINCE, "--json")
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []


# --- lsops checklist ---------------------------------------------------------------------


def _fill(env: dict[str, str], *, final: str = "OK", answer: bool = True) -> None:
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store)
        h.scrape()
        for _ in range(12):
            h.traffic("/a", 100, 20.0).cache(8, 2).scrape()
        services = (
            DEEP_OK if final != "DEGRADED" else {**DEEP_OK, "vectorDB": ("ERROR", "fetch failed")}
        )
        h.run(2, status=final, services=services, answer=answer)


@pytest.mark.parametrize(
    ("final", "answer", "code"),
    [("OK", True, 0), ("DEGRADED", True, 1), ("OK", False, 2)],
)
def test_checklist_exit_codes(env: dict[str, str], final: str, answer: bool, code: int) -> None:
    _fill(env, final=final, answer=answer)
    result = run(
        env, "checklist", "--since", "2026-10-01T00:00Z", "--until", "2026-10-01T01:15Z", "--json"
    )
    assert result.exit_code == code, result.output
    data = json.loads(result.output)
    assert data["exit_code"] == code
    checks = {c["key"]: c for c in data["checks"]}
    assert len(checks) == 14 and checks["cpu"]["status"] == "unknown"  # 14: issue 10
    assert all(
        {"name", "status", "value", "threshold", "detail"} <= set(c) for c in checks.values()
    )
    assert (
        checks["cache_hit_rate"]["value"] == pytest.approx(0.8)
        and checks["cache_hit_rate"]["threshold"] == 0.7
    )
    text = run(env, "checklist", "--since", "2026-10-01T00:00Z", "--until", "2026-10-01T01:15Z")
    assert text.exit_code == code and "Cache hit rate > 70%" in text.output


def test_checklist_nothing_known_and_bad_usage_are_unknown(env: dict[str, str]) -> None:
    missing = run(env, "checklist", "--json")  # no store at all: one line, unknown
    assert missing.exit_code == 3 and "does not exist" in missing.stderr and not missing.stdout
    Store(env["LSOPS_STORE"]).close()  # a store without a scrape
    nothing = run(env, "checklist", "--json")
    assert nothing.exit_code == 3 and json.loads(nothing.output)["status"] == "UNKNOWN"
    assert run(env, "checklist", "--window", "banana").exit_code == 3
    assert run(env, "checklist", "--bogus").exit_code == 3


# --- lsops incidents ---------------------------------------------------------------------


def test_incidents_json_lists_the_outage_with_its_postmortem_command(env: dict[str, str]) -> None:
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store)
        h.run(12)
        h.run(8, answer=False)  # 01:00 .. 01:35
        h.run(6)
    result = run(
        env, "incidents", "--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z", "--json"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    outage = [r for r in rows if r["kind"] == "no_answer"]
    assert len(outage) == 1 and outage[0]["duration_s"] == 40 * 60
    assert outage[0]["start"].startswith("2026-10-01T01:00")
    assert outage[0]["postmortem_command"].startswith("lsops report postmortem --start ")
    # the suggested window is analysis.incident_window's (30 min margin), and only that
    from lsops_lib.analysis import incident_window
    from lsops_lib.config import Thresholds

    first, last = incident_window(outage[0]["start"], outage[0]["end"], Thresholds())
    assert outage[0]["postmortem_start"] == first.isoformat() == "2026-10-01T00:30:00+00:00"
    assert outage[0]["postmortem_end"] == last.isoformat() == "2026-10-01T02:10:00+00:00"
    assert (
        f"--start {first:%Y-%m-%dT%H:%M:%SZ} --end {last:%Y-%m-%dT%H:%M:%SZ}"
        in outage[0]["postmortem_command"]
    )
    text = run(env, "incidents", "--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z")
    assert (
        text.exit_code == 0
        and "no_answer" in text.output
        and "lsops report postmortem" in text.output
    )
    assert run(env, "incidents", "--since", "not a time").exit_code == 2


def test_a_window_without_a_scrape_says_where_the_stored_ones_are(env: dict[str, str]) -> None:
    """A window the collector never saw (after it stopped, before it started, the demo's
    month asked for today): `endpoints` and the checklist's API line say where the
    target's stored scrapes are, so the reader knows when collection stopped."""
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store)
        written = [h.scrape()]
        for _ in range(4):
            written.append(h.traffic("/a", 100, 20.0).scrape())
    first, last = written[0].collected_at, written[-1].collected_at
    span = f"{first:%Y-%m-%d %H:%M} UTC .. {last:%Y-%m-%d %H:%M} UTC"
    said = f"(the store's observations of {h.target!r}: {span})"
    for window in (
        ["--since", "2026-10-03T00:00Z", "--until", "2026-10-04T00:00Z"],  # after
        ["--since", "2026-09-01T00:00Z", "--until", "2026-09-02T00:00Z"],  # before
    ):
        text = run(env, "endpoints", *window)
        assert text.exit_code == 0, text.output
        assert f"no scrape in the window {said}" in " ".join(text.output.split())
        as_json = run(env, "endpoints", *window, "--json")
        assert json.loads(as_json.stdout) == []
        # QA 23: the bare list has no room for why it is empty: the line is on stderr
        assert " ".join(as_json.stderr.split()) == f"lsops: no scrape in the window {said}"
        checks = json.loads(run(env, "checklist", *window, "--json").output)["checks"]
        api = {c["key"]: c for c in checks}["api"]
        assert api["status"] == "unknown" and api["detail"].endswith(said), api
    # scrapes in the window: the counts, no such line
    inside = run(env, "endpoints", "--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z")
    assert "/a" in inside.output and "store's observations" not in inside.output
    inside = run(
        env, "endpoints", "--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z", "--json"
    )
    assert [e["endpoint"] for e in json.loads(inside.stdout)] == ["/a"] and inside.stderr == ""
    # a store without a scrape: nothing to point at
    empty = {**env, "LSOPS_STORE": env["LSOPS_STORE"].replace("metrics.sqlite", "empty.sqlite")}
    Store(empty["LSOPS_STORE"]).close()
    assert "store's observations" not in run(empty, "endpoints", *SINCE).output


def test_the_bare_json_lists_say_why_they_are_empty_on_stderr(env: dict[str, str]) -> None:
    """`endpoints --json` and `incidents --json` print a bare list (as scripts expect):
    an empty one was the same for "no traffic", "the API did not answer" and "no such
    target in the store" (QA 23). The text's warning is now said on stderr, stdout stays
    the list; the routine "excluded monitoring endpoints" line stays out of stderr."""
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store, target="legacy")
        h.scrape()
        for _ in range(3):
            h.traffic("/a", 100, 20.0).traffic("/health", 5, 2.0).scrape()
    window = ["--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z"]
    holds = (
        "lsops: the store holds no scrape of target 'default'; it holds 'legacy' "
        "(choose with --target NAME or LSOPS_TARGET)"
    )
    for command in ("endpoints", "incidents"):
        result = run(env, command, *window, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
        assert result.stderr.strip() == holds
    # the target the store holds: its rows; the monitoring endpoints left out are said
    # in the text only, as before
    result = run(env, "--target", "legacy", "endpoints", *window, "--json")
    assert [e["endpoint"] for e in json.loads(result.stdout)] == ["/a"]
    assert "excluded" not in result.stderr  # only "its stored history is read" (QA 20)
    assert (
        "excluded monitoring endpoints: /health (15)"
        in run(env, "--target", "legacy", "endpoints", *window).output
    )
    # the default target's four scrapes, none answered
    with Store(env["LSOPS_STORE"]) as store:
        down = History(store, start=T0 + timedelta(hours=3))
        for _ in range(4):
            down.scrape(answer=False)
    result = run(env, "endpoints", *window, "--json")
    assert json.loads(result.stdout) == []
    assert result.stderr.strip() == (
        "lsops: the API did not answer in the window (4 scrapes without an answer)"
    )
