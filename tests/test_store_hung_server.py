"""A PostgreSQL store server that hangs while its host still answers TCP (its processes
stopped: SIGSTOP, a stalled disk) made the collector's write wait for ever: the kernel
acknowledges every packet and answers the keepalives, so neither they nor
tcp_user_timeout end it (QA 23). `store.stall.StallGuard` bounds the write (the pool's
pre-ping included) from the client's side; once the server answers again, the next
write goes through on a new connection."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lsops_lib.exceptions import StoreError
from lsops_lib.pgtemp import PostgresCluster
from lsops_lib.store import Store, stall
from tests.fixtures.store import make_scrape

pytestmark = pytest.mark.timeout(120)


def _server_pids(cluster: PostgresCluster) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer...)."""
    assert cluster.data_dir is not None
    postmaster = int((Path(cluster.data_dir) / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:  # its parent
                pids.append(int(entry.name))
    return pids


@contextmanager
def _hung(cluster: PostgresCluster) -> Iterator[None]:
    """The whole server stopped (its host still answers TCP), started again after."""
    pids = _server_pids(cluster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_a_write_to_a_hung_store_server_fails_after_the_bound(
    pg_cluster: PostgresCluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to find the server's processes")
    assert stall.PG_STALL_S >= 2 * 30  # above the lock wait a write may legitimately take
    monkeypatch.setattr(stall, "PG_STALL_S", 2.0)  # the same path, a minute less of waiting
    store = Store(pg_url)
    try:
        assert store.record_scrape(make_scrape(0, {"/copilot/chat": (10, 40.0, 0.0)}))
        outcome: list[object] = []

        def write() -> None:
            try:
                outcome.append(
                    store.record_scrape(make_scrape(1, {"/copilot/chat": (20, 40.0, 0.0)}))
                )
            except StoreError as exc:
                outcome.append(exc)

        with _hung(pg_cluster):
            started = time.monotonic()
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(timeout=30)
            waited = time.monotonic() - started
            assert not writer.is_alive(), "the write still waits on the hung server"
        (error,) = outcome
        assert isinstance(error, StoreError), error
        assert 1.5 <= waited < 15, waited
        message = str(error)
        assert "did not answer for 2 s" in message and "\n" not in message, message
        # the server answers again: the same scrape is written on a fresh connection
        assert store.record_scrape(make_scrape(1, {"/copilot/chat": (20, 40.0, 0.0)}))
        assert len(store.scrapes()) == 2
    finally:
        store.close()


def test_a_write_that_answers_in_time_is_left_alone(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard cuts nothing once its block is done: writes spaced beyond the bound
    go through on the same pooled connection."""
    monkeypatch.setattr(stall, "PG_STALL_S", 0.3)
    store = Store(pg_url)
    try:
        opened: list[object] = []
        from sqlalchemy import event

        event.listen(store.engine, "connect", lambda conn, rec: opened.append(conn))
        for minute in range(3):
            assert store.record_scrape(make_scrape(minute, {"/copilot/chat": (minute, 40.0, 0.0)}))
            time.sleep(0.5)  # past the bound: a timer left running would cut the connection
        assert len(store.scrapes()) == 3
        assert opened == []  # no new connection: none was cut
    finally:
        store.close()
