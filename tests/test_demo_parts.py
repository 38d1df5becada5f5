"""The demo's parts that need no PostgreSQL: child-process handling
(lsops_lib.demo.processes) and the demo folder (lsops_lib.demo.folder)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.demo.folder import DemoFolder
from lsops_lib.demo.processes import (
    Children,
    alive,
    descendants,
    kill_all,
    listeners,
    mentioning,
)

SLEEPER = [sys.executable, "-c", "import time, sys; time.sleep(60)"]


def _sleeper(marker: str = "") -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SLEEPER, *([marker] if marker else [])])


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_descendants_alive_and_kill_all() -> None:
    child = _sleeper()
    try:
        assert child.pid in descendants()
        assert alive(child.pid)
        kill_all([child.pid], grace_s=2.0)
        child.wait(timeout=5)
        assert not alive(child.pid)  # reaped; a zombie would not count as alive either
    finally:
        child.kill()
        child.wait()
    assert not alive(2**22 + 12345)  # no such process


def test_mentioning_and_listeners() -> None:
    marker = f"lsops-test-marker-{os.getpid()}-{time.monotonic_ns()}"
    child = _sleeper(marker)
    try:
        deadline = time.monotonic() + 5
        while child.pid not in mentioning(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mentioning(marker) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert mentioning(marker) == []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert os.getpid() in listeners(port)
    assert listeners(port) == []


def _parent_of_a_sleeper() -> None:  # pragma: no cover - runs in a child process
    subprocess.Popen(SLEEPER)
    time.sleep(60)


def _isolated(body: Callable[[], None]) -> None:
    """Run `body` in a forked child: `Children` tracks and stops every new descendant of
    the process it runs in, and in the test process those include the session's
    PostgreSQL backends (a killed backend takes the whole test cluster down)."""
    proc = mp.get_context("fork").Process(target=body)
    proc.start()
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert proc.exitcode == 0, f"the isolated test body ended with {proc.exitcode}"


def test_children_stop_their_processes_and_what_is_below() -> None:
    _isolated(_children_stop_their_processes_and_what_is_below)


def test_children_sweep_ends_orphans_left_below() -> None:
    _isolated(_children_sweep_ends_orphans_left_below)


def _children_stop_their_processes_and_what_is_below() -> None:
    before = _sleeper()  # there before: not ours, left alone
    try:
        children = Children()
        proc = mp.get_context("fork").Process(target=_parent_of_a_sleeper, daemon=True)
        proc.start()
        children.add(proc)
        deadline = time.monotonic() + 5
        while len(descendants(proc.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert children.track()  # new processes seen: the child and its sleeper
        grandchild = descendants(proc.pid)[0]
        assert {proc.pid, grandchild} <= children.seen and before.pid not in children.seen
        assert not children.track()  # nothing new
        lines: list[str] = []
        children.stop(lines.append, grace_s=2.0)
        assert not alive(proc.pid) and _wait_gone(grandchild)
        assert lines and "stopping" in lines[0]
        children.sweep(lines.append)
        assert alive(before.pid)
    finally:
        before.kill()
        before.wait()


def _children_sweep_ends_orphans_left_below() -> None:
    children = Children()
    child = _sleeper()
    lines: list[str] = []
    children.sweep(lines.append, grace_s=2.0)
    child.wait(timeout=5)
    assert lines == [f"cleanup: still there: [{child.pid}]"]


# --- the demo folder ------------------------------------------------------------------------


def test_folder_lock_state_settings_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSOPS_STORE", "postgresql://elsewhere/db")  # dropped
    monkeypatch.setenv("LSOPS_PG_BINDIR", "/opt/pg/bin")  # kept
    folder = DemoFolder(tmp_path / ".demo", tmp_path / "outputs")
    folder.create()
    assert folder.lock()
    other = DemoFolder(tmp_path / ".demo", tmp_path / "outputs")
    assert not other.lock()  # one demo per folder at a time
    folder.open_log()
    folder.log("hello")
    folder.save_state(running=True, reports=[])
    folder.append_state("reports", 42)
    folder.write_config()
    env = folder.env("postgresql://demo/longsang")
    folder.close()
    assert other.lock()
    other.close()
    assert json.loads((folder.dir / "state.json").read_text()) == {
        "running": True,
        "reports": [42],
    }
    assert folder.log_path is not None and "hello" in folder.log_path.read_text()
    assert folder.child_log("report-x") == str(
        folder.log_path.with_name(f"{folder.log_path.stem}-report-x.log")
    )
    assert f'url = "{folder.store_url}"' in folder.config_path.read_text()
    assert f"LSOPS_OUTPUTS={tmp_path / 'outputs'}" in (folder.dir / "lsops.env").read_text()
    assert env["LSOPS_STORE"] == folder.store_url
    assert env["LSOPS_CONFIG"] == str(folder.config_path)
    assert env["LSOPS_DATABASE_URL"] == "postgresql://demo/longsang"
    assert env["LSOPS_PG_BINDIR"] == "/opt/pg/bin"
    assert "LSOPS_DATABASE_URL" not in folder.env(None)


def test_demo_help_gives_the_days_it_accepts() -> None:
    from click.testing import CliRunner

    from lsops_lib.cli import main
    from lsops_lib.demo.world import MAX_DAYS, MIN_DAYS

    out = CliRunner().invoke(main, ["demo", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert f"({MIN_DAYS} to {MAX_DAYS})" in " ".join(out.output.split())


@pytest.mark.postgres
def test_the_statistics_wait_ends_when_the_deletes_show(
    pg_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo waits for the dead tuples it made to show in the statistics before the
    database report reads them: until the rows it deleted show, not until a fixed 1,000
    (a 3-day demo deletes 400: it slept the whole 10 s timeout, polling 100 times)."""
    import uuid

    from lsops_lib.demo import database, world

    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    try:
        with pg_cluster.connect(name) as conn:
            conn.execute(f"CREATE TABLE {world.DEAD_TUPLES_TABLE} (id int)")
            conn.execute(f"INSERT INTO {world.DEAD_TUPLES_TABLE} SELECT generate_series(1, 400)")
            deleted = conn.execute(f"DELETE FROM {world.DEAD_TUPLES_TABLE}").rowcount
        polls: list[float] = []
        real_sleep = time.sleep
        monkeypatch.setattr(database.time, "sleep", lambda s: (polls.append(s), real_sleep(s)))
        database.wait_statistics(pg_cluster, 0, dbname=name)  # nothing deleted: no wait
        assert polls == []
        database.wait_statistics(pg_cluster, deleted, dbname=name)
        assert deleted == 400 and len(polls) < 20, polls  # the old threshold: 100 polls
        with pg_cluster.connect(name) as conn:
            row = conn.execute(
                "SELECT n_tup_del, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                (world.DEAD_TUPLES_TABLE,),
            ).fetchone()
        assert row == (400, 400)
    finally:
        pg_cluster.drop_database(name)
