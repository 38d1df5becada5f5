"""Processes opening a NEW SQLite store at the same instant (two cron lines, one collector
per target on a first run) all open it: switching the new file to WAL needed a lock
SQLite's busy handler does not wait for, and one of two failed with "database is locked"
in about a third of such starts."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

PROCESSES, ROUNDS = 3, 8


def _open(url: str, at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from lsops_lib.store import Store

    while time.time() < at:
        pass
    try:
        Store(url).close()
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports what failed
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    import lsops_lib.store  # noqa: F401 - imported before the fork, as a warm process is

    ctx = mp.get_context("fork")
    failures = []
    for n in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'{n}.sqlite'}"
        out = ctx.Queue()
        at = time.time() + 0.5
        procs = [ctx.Process(target=_open, args=(url, at, out)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        results = [out.get(timeout=90) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        failures += [r for r in results if r != "ok"]
    assert failures == []
