"""The throwaway PostgreSQL cluster: starts, serves, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from lsops_lib.pgtemp import PostgresCluster, PostgresUnavailable, find_bindir

pytestmark = pytest.mark.postgres

needs_binaries = pytest.mark.skipif(find_bindir() is None, reason="no PostgreSQL server binaries")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_session_cluster_serves_sqlalchemy_urls(pg_cluster: PostgresCluster) -> None:
    assert pg_cluster.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(pg_cluster.url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        fsync = conn.execute(sa.text("SHOW fsync")).scalar()
        preload = conn.execute(sa.text("SHOW shared_preload_libraries")).scalar()
        track = conn.execute(
            sa.text("SELECT current_setting('pg_stat_statements.track', true)")
        ).scalar()
    engine.dispose()
    assert fsync == "off"
    if pg_cluster.has_pg_stat_statements:
        assert "pg_stat_statements" in preload
        assert track == "all"


def test_create_database_and_password_role(pg_cluster: PostgresCluster, pg_url: str) -> None:
    name = sa.engine.make_url(pg_url).database
    engine = sa.create_engine(pg_cluster.password_url(name))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == "lsops_reader"
    engine.dispose()
    # over TCP the role really needs its password
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=pg_cluster.port,
            user="lsops_reader",
            password="wrong",
            dbname=name,
        ).close()


def test_pg_url_is_fresh_and_empty(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        ).scalar()
    engine.dispose()
    assert tables == 0


@needs_binaries
def test_stop_removes_everything_also_after_a_failure() -> None:
    cluster = PostgresCluster(pg_stat_statements=False)
    with pytest.raises(RuntimeError), cluster:
        root = cluster.root
        assert root is not None and root.is_dir()
        pid = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
        raise RuntimeError("a test failing inside the cluster")
    assert not root.exists()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert not cluster.running
    cluster.stop()  # idempotent


@needs_binaries
def test_watchdog_cleans_up_after_a_killed_process(tmp_path: Path) -> None:
    """Even SIGKILL of the owning process leaves no server and no folder behind."""
    script = textwrap.dedent(
        """
        import sys, time
        from lsops_lib.pgtemp import PostgresCluster
        c = PostgresCluster(pg_stat_statements=False)
        c.start()
        pid = open(c.data_dir / "postmaster.pid").readline().strip()
        print(c.root, pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    root, pid = Path(line[0]), int(line[1])
    assert root.is_dir() and _alive(pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while (root.exists() or _alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert not root.exists()


def test_no_binaries_and_no_pgserver_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lsops_lib.pgtemp as pgtemp

    monkeypatch.setattr(pgtemp, "find_bindir", lambda: None)
    monkeypatch.setitem(sys.modules, "pgserver", None)  # import fails
    with pytest.raises(PostgresUnavailable, match="pgserver"):
        PostgresCluster().start()


def test_a_forked_child_ending_on_sigterm_leaves_the_cluster_running(
    pg_cluster: PostgresCluster,
) -> None:
    """The exit and SIGTERM hooks stop only the clusters of the process that started them:
    a forked child (a demo worker) inherits the hooks, not the ownership."""
    import multiprocessing as mp

    child = mp.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    time.sleep(0.5)
    os.kill(child.pid, signal.SIGTERM)  # type: ignore[arg-type]
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGTERM
    with pg_cluster.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
