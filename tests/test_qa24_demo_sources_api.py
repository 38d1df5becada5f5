"""QA 24: the demo's dumps where an older PostgreSQL client is found first (pg_dump at least
the server's major version, the cluster's own preferred; none is: one line naming both
versions; a failing pg_dump: its own last line), `lsops demo --lab` keeping the [backups]
and [logs] the full demo wrote, the checklist's source lines unknown (never failed, never
critical) for a window without collection, and an API token that is a JSON key or a
status word (`t`, `status`, `OK`, `hits`) neither breaking nor masking what is parsed.

Real parts: throwaway PostgreSQL clusters (`tests/fixtures/pg.py`; the `pgserver` wheel's
PostgreSQL 16 where installed, skipped cleanly where not), the machine's client programs,
`lsops demo` run as a user runs it, the simulated API and the canned loopback server of
tests/test_api.py, real SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lsops_lib.api import Client
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.db import dumps
from lsops_lib.db.backups import check_backups, find_dumps
from lsops_lib.demo.backups import make_dumps
from lsops_lib.demo.errors import DemoError
from lsops_lib.pgtemp import PostgresCluster, PostgresUnavailable
from lsops_lib.sim import SimClock, SimulatedAPI
from lsops_lib.sources.checks import source_checks
from lsops_lib.sources.settings import LogSettings, SentrySettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.demo import (
    _require_postgres,
    demo_command,
    demo_env,
    run_demo,
)
from tests.test_api import Canned, CannedServer, sample
from tests.test_api import canned as canned  # noqa: PLC0414 - the fixture, used here
from tests.test_collect_qa13 import cli_env as cli_env  # noqa: PLC0414 - the fixture

HAS_PGSERVER = importlib.util.find_spec("pgserver") is not None
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


# --- 1. the demo's dumps: a pg_dump at least as new as the cluster ------------------------------


@pytest.fixture(scope="module")
def pgserver_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the pgserver wheel (PostgreSQL 16), as `LSOPS_PG_BACKEND=pgserver`
    starts it (the variable set only while it starts: other clusters stay as they are)."""
    if not HAS_PGSERVER:
        pytest.skip("the pgserver wheel is not installed")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSOPS_PG_BACKEND", "pgserver")
    cluster = PostgresCluster(pg_stat_statements=False)
    try:
        cluster.start()
    except PostgresUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"pgserver could not start here: {exc}")
    finally:
        mp.undo()
    try:
        cluster.create_database("longsang")
        cluster.execute(
            "CREATE TABLE agents (id int PRIMARY KEY, name text)",
            "INSERT INTO agents SELECT g, 'a' || g FROM generate_series(1, 500) g",
            dbname="longsang",
        )
        yield cluster
    finally:
        cluster.stop()


def _server_version(cluster: PostgresCluster) -> int:
    with cluster.connect() as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0])


def _version_text(num: int) -> str:
    return f"{num // 10000}.{num % 10000}"  # PostgreSQL 10 and later: 160002 -> 16.2


def _client_version(tool: str) -> tuple[int, ...] | None:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\)\s*(\d+(?:\.\d+)*)", out)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def _older_clients(server_version_num: int) -> list[tuple[str, tuple[int, ...]]]:
    """The pg_dump programs of this machine (pg_config's, Debian's, the PATH's) older
    than the server's major version (PostgreSQL 10 and later)."""
    folders = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        folders.append(Path(out.stdout.strip()))
    tools = {str(f / "pg_dump") for f in folders if (f / "pg_dump").is_file()}
    if shutil.which("pg_dump"):
        tools.add(str(shutil.which("pg_dump")))
    found = [(t, _client_version(t)) for t in sorted(tools)]
    return [(t, v) for t, v in found if v is not None and v[0] < server_version_num // 10000]


def _own_bindir() -> Path:
    from pgserver import _commands  # type: ignore[import-not-found]

    return Path(_commands.POSTGRES_BIN_PATH)


@pytest.mark.postgres
def test_the_demo_dumps_with_the_clusters_own_pg_dump_when_an_older_one_is_found_first(
    pgserver_cluster: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The QA's machine: PostgreSQL 15 client programs (pg_config, /usr/lib/postgresql/15)
    and the pgserver wheel's PostgreSQL 16. pg_dump 15 refuses the 16 server ("server
    version mismatch"): the cluster's own pg_dump writes the dumps, and the check reads
    them with a pg_restore that can (not "client too old"), the drill restoring the good
    one into a pgserver cluster."""
    monkeypatch.delenv("LSOPS_PG_BINDIR", raising=False)
    version = _server_version(pgserver_cluster)
    if not _older_clients(version):
        pytest.skip("no PostgreSQL client older than the pgserver wheel's here")
    planted = make_dumps(pgserver_cluster, tmp_path / "backups", database="longsang")
    listing = subprocess.run(
        [str(_own_bindir() / "pg_restore"), "--list", str(planted.good)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Dumped by pg_dump version: {_version_text(version)}" in listing
    monkeypatch.setenv("LSOPS_PG_BACKEND", "pgserver")  # the drill's cluster: 16 too
    check = check_backups(find_dumps([tmp_path / "backups"]), restore=True)
    verdicts = {f.path.name: f.verdict for f in check.files}
    assert verdicts == planted.expected, [(f.path.name, f.reason) for f in check.files]
    assert check.restore is not None and check.restore.error is None, check.restore
    assert {t["table"] for t in check.restore.tables} == {"public.agents"}


@pytest.mark.postgres
def test_no_client_new_enough_is_one_line_naming_both_versions(
    pgserver_cluster: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LSOPS_PG_BINDIR naming an older client than the server: said in one line with both
    versions, before pg_dump runs (not `CalledProcessError ... exit status 1`)."""
    version = _server_version(pgserver_cluster)
    older = _older_clients(version)
    if not older:
        pytest.skip("no PostgreSQL client older than the pgserver wheel's here")
    tool, have = older[0]
    monkeypatch.setenv("LSOPS_PG_BINDIR", str(Path(tool).parent))
    with pytest.raises(DemoError) as info:
        make_dumps(pgserver_cluster, tmp_path / "backups", database="longsang")
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert f"pg_dump {'.'.join(map(str, have))}" in message
    assert f"PostgreSQL {_version_text(version)}" in message
    assert "exit status" not in message and "LSOPS_PG_BINDIR" in message


def test_find_tool_given_a_server_newer_than_every_client_names_both_versions() -> None:
    """No client at least as new as the server: a BackupError naming the newest client
    found and the server's version."""
    try:
        newest = dumps.find_tool("pg_dump")
    except dumps.BackupError:
        pytest.skip("no pg_dump on this machine")
    have = _client_version(newest)
    with pytest.raises(dumps.BackupError) as info:
        dumps.find_tool("pg_dump", server_version=990001)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"pg_dump {'.'.join(map(str, have or ()))} ({newest}, the newest found)" in message
    assert "is older than the server (PostgreSQL 99.1)" in message


@pytest.mark.postgres
def test_a_failing_pg_dump_says_its_own_last_line(
    pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    """What the user sees of a pg_dump that fails is its stderr's last line, never only
    `returned non-zero exit status 1`."""
    with pytest.raises(DemoError) as info:
        make_dumps(pg_cluster, tmp_path / "backups", database="qa24_no_such_db")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert 'database "qa24_no_such_db" does not exist' in message
    assert "failed (exit 1)" in message and "exit status" not in message


# --- 1, 2, 3 in the demo: pgserver's dumps, the lab's settings, the demo shell's checklist ------


@dataclass
class DemoAndLab:
    root: Path
    demo_dir: Path
    backend: str
    demo_code: int
    demo_stdout: str
    demo_stderr: str
    lab: subprocess.CompletedProcess[str] | None
    plan: dict[str, Any]


def _backend() -> str:
    """The caller's LSOPS_PG_BACKEND (`binaries`: the default one), else the QA's:
    pgserver where the wheel is installed."""
    return os.environ.get("LSOPS_PG_BACKEND") or ("pgserver" if HAS_PGSERVER else "")


PROBE = """\
import json, os, tomllib
from lsops_lib.config import load_settings
from lsops_lib.db.backups import backup_settings
s = load_settings()
doc = tomllib.loads(open(os.environ["LSOPS_CONFIG"]).read())
print(json.dumps({"backups": list(backup_settings(s).paths), "logs": doc.get("logs")}))
"""


@pytest.fixture(scope="module")
def demo_and_lab(tmp_path_factory: pytest.TempPathFactory) -> DemoAndLab:
    """`lsops demo --days 3` (LSOPS_PG_BACKEND=pgserver where the wheel is), then
    `lsops demo --lab` on its folder with a probe for JupyterLab."""
    _require_postgres()
    root = tmp_path_factory.mktemp("qa24-demo")
    backend = _backend()
    extra = {"LSOPS_PG_BACKEND": backend} if backend else {}
    done = run_demo(root, days=3, env=extra)
    lab = None
    if done.code == 0:
        probe = root / "probe.py"
        probe.write_text(PROBE)
        lab = subprocess.run(
            demo_command(
                done.demo_dir, "--lab", "--lab-command", f"{sys.executable} {probe}", days=3
            ),
            cwd=root,
            env={**demo_env(done.outputs), **extra},
            capture_output=True,
            text=True,
            timeout=240,
        )
    return DemoAndLab(
        root,
        done.demo_dir,
        backend,
        done.code,
        done.stdout,
        done.stderr,
        lab,
        done.state.get("plan") or {},  # the demo's (the lab writes its own state)
    )


def _demo_ok(d: DemoAndLab) -> None:
    assert d.demo_code == 0, f"--- stdout\n{d.demo_stdout}\n--- stderr\n{d.demo_stderr}"


def _demo_shell(d: DemoAndLab) -> dict[str, str]:
    """`set -a; . .demo/lsops.env; set +a` in a shell without LSOPS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    for line in (d.demo_dir / "lsops.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0]
    return env


def _lsops(d: DemoAndLab, *args: str) -> subprocess.CompletedProcess[str]:
    lsops = Path(sys.executable).with_name("lsops")
    base = [str(lsops)] if lsops.is_file() else [sys.executable, "-m", "lsops_lib.cli"]
    return subprocess.run(
        [*base, *args], cwd=d.root, env=_demo_shell(d), capture_output=True, text=True, timeout=120
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_the_demo_on_pgserver_judges_its_three_dumps(demo_and_lab: DemoAndLab) -> None:
    """`LSOPS_PG_BACKEND=pgserver lsops demo` on a machine whose client programs are older
    than the wheel's PostgreSQL: the backups phase writes, judges and restores the dumps."""
    if demo_and_lab.backend != "pgserver":
        pytest.skip("the demo ran on the machine's PostgreSQL (no pgserver wheel)")
    _demo_ok(demo_and_lab)
    out = demo_and_lab.demo_stdout
    assert "PostgreSQL (pgserver)" in out
    assert "3 dumps in backups/: OK (exit 0); restore drill" in out, out
    assert "WRONG" not in out and "CalledProcessError" not in demo_and_lab.demo_stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_the_lab_keeps_the_backups_and_logs_the_full_demo_wrote(demo_and_lab: DemoAndLab) -> None:
    _demo_ok(demo_and_lab)
    lab = demo_and_lab.lab
    assert lab is not None and lab.returncode == 0, lab and lab.stderr
    folder = demo_and_lab.demo_dir
    seen = json.loads(lab.stdout.strip().splitlines()[-1])  # what JupyterLab's kernels get
    assert seen["backups"] == [f"{folder}/backups/*.dump"]
    assert seen["logs"] == {"paths": [f"{folder}/app-logs/api-*.log*"]}
    config = tomllib.loads((folder / "lsops.toml").read_text())  # once each, as TOML
    assert config["backups"]["paths"] == seen["backups"]
    assert config["store"]["url"] == f"sqlite:///{folder / 'store.sqlite'}"
    # the demo shell after the lab: the demo's dumps, not "no backups to check" (exit 3)
    checked = _lsops(demo_and_lab, "backup", "check", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = json.loads(checked.stdout)
    assert sorted(f["verdict"] for f in result["files"]) == ["ok", "too old", "truncated"]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_checklist_in_the_demo_shell_without_recent_data_is_unknown(
    demo_and_lab: DemoAndLab,
) -> None:
    """The README's demo shell, a day after the demo's history: nothing collected in the
    window. The source lines are unknown (not configured, or not collected), none fails,
    none is critical: UNKNOWN (exit 3), as for the API line. Over the demo's month they
    are judged on what was collected (the stand-ins' Sentry and pm2 are not in lsops.toml)."""
    _demo_ok(demo_and_lab)
    end = datetime.fromisoformat(demo_and_lab.plan["end"].replace("Z", "+00:00"))
    since, until = end + timedelta(hours=1), end + timedelta(hours=25)
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    done = _lsops(demo_and_lab, "checklist", "--json", *window)
    result = json.loads(done.stdout)
    lines = {c["key"]: c for c in result["checks"]}
    keys = ("cpu", "critical_errors", "new_error_patterns", "errors_resolved")
    assert {k: lines[k]["status"] for k in keys} == dict.fromkeys(keys, "unknown"), lines
    assert not [c for c in result["checks"] if c["status"] == "fail"]
    assert (done.returncode, result["status"]) == (3, "UNKNOWN")
    # not configured ([pm2], [sentry]), with the store's last collection of it
    assert lines["cpu"]["detail"].startswith("not configured: set [pm2]")
    assert "(the store's last pm2 collection: " in lines["cpu"]["detail"]
    assert lines["errors_resolved"]["detail"].startswith("not configured: set [sentry]")
    # configured ([logs], by the full demo) but not collected in the window
    assert lines["critical_errors"]["detail"].startswith("no collection of logs in the window")
    assert lines["critical_errors"]["detail"].endswith("is `lsops collect` running?")
    month = ["--since", demo_and_lab.plan["start"], "--until", demo_and_lab.plan["end"]]
    judged = json.loads(_lsops(demo_and_lab, "checklist", "--json", *month).stdout)
    lines = {c["key"]: c for c in judged["checks"]}
    assert all(lines[k]["status"] in ("pass", "fail") for k in keys), lines
    assert lines["critical_errors"]["status"] == "fail"  # the outage's heap-out-of-memory


# --- 3. the source lines: unknown without a collection in the window ---------------------------


def _issue(issue_id: str, level: str, first: datetime) -> dict[str, Any]:
    ms = int(first.timestamp() * 1000)
    return {
        "issue_id": issue_id,
        "short_id": f"API-{issue_id}",
        "title": f"t{issue_id}",
        "culprit": "",
        "level": level,
        "status": "unresolved",
        "substatus": None,
        "first_seen": ms,
        "last_seen": ms,
        "events": 1,
        "users": 1,
        "permalink": "",
    }


def test_a_source_without_collection_in_the_window_leaves_its_lines_unknown(
    store: Store, tmp_path: Path
) -> None:
    """Sentry and the logs configured, collected the day before the window only: the lines
    are unknown, saying when they last were; never a fail, never critical. A line judged on
    Sentry alone while the logs were not collected: a fail stands (with the logs said), a
    pass is unknown (no data is not a pass)."""
    sources = SourceSettings(
        sentry=SentrySettings(org="o", project="p", token="x"),
        logs=LogSettings(paths=(str(tmp_path / "api-*.log"),)),
    )
    for name in ("sentry", "logs"):
        tables.record_source_run(store, "default", name, T0, ok=True, items=0, error=None)
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=2)
    quiet = source_checks(store, start, end, Thresholds(), target="default", sources=sources)
    assert {k: c.status for k, c in quiet.items()} == dict.fromkeys(quiet, "unknown")
    assert quiet["critical_errors"].detail == (
        "no collection of sentry in the window (the last: 2026-10-16 08:00 UTC): is `lsops "
        "collect` running?; no collection of logs in the window (the last: 2026-10-16 08:00 "
        "UTC): is `lsops collect` running?"
    )
    assert quiet["cpu"].detail.startswith("not configured: set [pm2]")
    # Sentry collected in the window, the logs not: a fatal issue fails the line ...
    at = start + timedelta(hours=1)
    tables.record_sentry_issues(store, "default", at, [_issue("1", "fatal", at)], [])
    tables.record_source_run(store, "default", "sentry", at, ok=True, items=1, error=None)
    half = source_checks(store, start, end, Thresholds(), target="default", sources=sources)
    assert (half["critical_errors"].status, half["critical_errors"].value) == ("fail", 1)
    assert "not observed: no collection of logs in the window" in half["critical_errors"].detail
    # ... and no issue (a later window, Sentry collected in it) is no pass: unknown
    later_start, later_end = end, end + timedelta(days=1)
    tables.record_source_run(
        store, "default", "sentry", later_start + timedelta(hours=1), ok=True, items=0, error=None
    )
    later = source_checks(
        store, later_start, later_end, Thresholds(), target="default", sources=sources
    )
    assert later["critical_errors"].status == "unknown"
    assert later["critical_errors"].detail.startswith("0 unresolved fatal Sentry issues; ")
    assert later["errors_resolved"].status == "pass"  # Sentry alone: judged


# --- 4. the API token: the answer parsed as received, masked where it is kept -----------------


@pytest.fixture
def traffic_api(sim_api: SimulatedAPI, sim_clock: SimClock) -> SimulatedAPI:
    sim_clock.advance(timedelta(minutes=30))  # half an hour of the scenario's traffic
    return sim_api


@pytest.mark.parametrize("token", ["t", "status", "OK", "hits"])
def test_a_token_that_is_a_key_or_a_status_word_breaks_nothing(
    token: str, traffic_api: SimulatedAPI, cli_env: dict[str, str]
) -> None:
    with Client(traffic_api.url, token=token, retries=0) as client:
        health = client.get_health(deep=True).record
        metrics = client.get_metrics()
    assert health.status == "OK"
    assert {s.status for s in health.services.values()} == {"OK"}
    assert "/context/search" in metrics.record.endpoints  # endpoint paths as sent
    assert metrics.record.cache.hits is not None and metrics.record.cache.hits > 0
    env = {**cli_env, "LSOPS_API_URL": traffic_api.url, "LSOPS_API_TOKEN": token}
    collected = run(env, "collect", "--once", "--json")
    assert collected.exit_code == 0, collected.output
    doc = json.loads(collected.stdout)
    assert (doc["health"], doc["failures"]) == ("OK", []), doc
    with Store(env["LSOPS_STORE"]) as store:
        assert list(store.health()["status"]) == ["OK"]
    cache = run(env, "cache", "--json", "--no-deep")
    assert cache.exit_code == 0, cache.output
    figures = json.loads(cache.stdout)
    assert figures["reported"] is True and figures["hits"] > 0


def test_the_token_is_masked_where_it_is_kept_never_where_it_is_read(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    """A token `OK` that is also the services' status word, echoed in a message and at
    the cut of a long error: the statuses read as sent, the echoes masked in the record,
    the raw payload, the store and the output."""
    body = sample("health-deep-error.json")  # 503: ERROR; openai, cache, tables: OK
    body["services"]["openai"]["message"] = "token OK accepted"
    body["error"] = "a" * 496 + "OK and the rest"  # cut at 500 characters: 'O' left there
    canned.set("/api/health", Canned(503, json.dumps(body).encode()))
    canned.set("/api/metrics", Canned(body=json.dumps(sample("metrics.json")).encode()))
    with Client(canned.url, token="OK", retries=0) as client:
        answer = client.get_health(deep=True)
    record = answer.record
    assert record.status == "ERROR"
    assert {n: s.status for n, s in record.services.items()} == {
        "database": "ERROR",
        "openai": "OK",
        "cache": "OK",
        "vectorDB": "ERROR",
        "tables": "OK",
    }
    assert record.services["openai"].message == "token *** accepted"
    assert record.error is not None and record.error.endswith("a***...")
    kept = json.loads(answer.body)  # the raw payload: the answer, its echoes masked
    assert kept["services"]["openai"]["message"] == "token *** accepted"
    assert set(kept["services"]) == set(body["services"])  # its keys as sent
    env = {**cli_env, "LSOPS_API_URL": canned.url, "LSOPS_API_TOKEN": "OK"}
    shown = run(env, "health", "--json")
    assert shown.exit_code == 2 and "token OK accepted" not in shown.output
    assert "token *** accepted" in shown.output
    assert run(env, "collect", "--once", "--quick").exit_code == 0
    with Store(env["LSOPS_STORE"]) as store:
        services = store.services()
        assert set(services["status"]) == {"OK", "ERROR"}
        assert "token *** accepted" in set(services["message"].dropna())
        (scrape_id,) = store.scrapes()["scrape_id"]
        raw = store.raw_payload(scrape_id, "health")
    assert raw is not None and b"token OK accepted" not in raw and b'"status": "ERROR"' in raw
    store_dir = Path(env["LSOPS_STORE"].removeprefix("sqlite:///")).parent
    for path in store_dir.iterdir():
        if path.is_file():
            with contextlib.suppress(OSError):
                assert b"token OK accepted" not in path.read_bytes()
