"""The collector's fault suite (issue 13): real `lsops collect` processes against the
simulated API in real time, killed and stopped at random moments.

- SIGKILL mid-write, ten times in a row on one SQLite store: `PRAGMA integrity_check` ok,
  every scrape the collector printed as stored is there and whole, at most the one write
  each kill interrupted is there unprinted, and the totals are the API's ledger;
- two collectors on one store (SQLite, PostgreSQL), scraping on the same grid: exit 0 on
  SIGTERM, `lsops endpoints` reports what the API sent (not ~900 times it), no invented
  restart;
- SIGTERM at random moments (start-up, opening the store, scraping, writing, waiting):
  exit 0 every time, one line of nothing on stderr, every printed scrape stored.

Every wait is bounded; a process left over is killed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.sim import EndpointSpec, Scenario, SimulatedAPI
from lsops_lib.store import Store
from tests.fixtures.store import sample_counts

ROOT = Path(__file__).resolve().parent.parent
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)  # in /proc/PID/status SigCgt


def scenario() -> Scenario:
    endpoints = [
        EndpointSpec("/copilot/chat", "POST", 600.0, 60.0, 0.05),
        EndpointSpec("/projects/:id", "GET", 1200.0, 15.0, 0.1),
        EndpointSpec("/agents", "GET", 300.0, 8.0, 0.0),
    ]
    return Scenario(endpoints=endpoints, seed=21, start=datetime.now(UTC) - timedelta(seconds=5))


@pytest.fixture
def api() -> Iterator[SimulatedAPI]:
    server = SimulatedAPI(scenario())  # real time
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Collector:
    """One `lsops collect --every ... --json` process; its stdout read line by line."""

    def __init__(self, api_url: str, store_url: str, cwd: Path, *args: str) -> None:
        env = {**os.environ, "LSOPS_API_URL": api_url, "LSOPS_STORE": store_url}
        env["PYTHONPATH"] = str(ROOT)
        for name in ("LSOPS_CONFIG", "LSOPS_TARGET", "LSOPS_API_TOKEN"):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from lsops_lib.cli import main; main()", "collect", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )
        self.lines: list[str] = []
        self.stderr = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, ""):
            self.lines.append(raw)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def confirmed(self) -> list[dict[str, Any]]:
        """The scrapes printed as stored (whole JSON lines only)."""
        out = []
        for raw in list(self.lines):
            if raw.endswith("\n"):
                record = json.loads(raw)
                if record.get("stored"):
                    out.append(record)
        return out

    def wait_for(self, scrapes: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.confirmed()) < scrapes and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr
            time.sleep(0.02)
        assert len(self.confirmed()) >= scrapes, self.stderr

    def wait_for_handler(self, timeout: float = 30.0) -> None:
        """Until the process catches SIGTERM (its first lines of Python have run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
            except OSError:
                break
            caught = next(x for x in status.splitlines() if x.startswith("SigCgt:"))
            if int(caught.split()[1], 16) & SIGTERM_BIT:
                return
            time.sleep(0.002)
        pytest.fail(f"collector {self.proc.pid} never caught SIGTERM: {self.stderr}")

    def finish(self, timeout: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        self._out.join(timeout=5)
        self._err.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def sent_between(api: SimulatedAPI, first: Any, last: Any) -> dict[str, tuple[int, int]]:
    """What the API sent in [first, last) (its own clock), outside monitoring."""
    sent = api.ledger(first.to_pydatetime(), last.to_pydatetime(), include_monitoring=False)
    return {str(r.endpoint): (int(r.requests), int(r.errors)) for r in sent.itertuples()}


def stored_totals(store: Store) -> dict[str, tuple[int, int]]:
    got = store.endpoint_intervals(bucket="day").groupby("endpoint")[["requests", "errors"]].sum()
    return {str(e): (int(r.requests), int(r.errors)) for e, r in got.iterrows()}


# --- SIGKILL mid-write -----------------------------------------------------------------------


def test_sigkill_mid_write_ten_times_loses_no_confirmed_scrape(
    api: SimulatedAPI, tmp_path: Path
) -> None:
    path = tmp_path / "store" / "metrics.sqlite"
    url = f"sqlite:///{path}"
    Store(url).close()
    rng = random.Random(13)
    confirmed: list[dict[str, Any]] = []
    for _ in range(10):
        collector = Collector(api.url, url, tmp_path, "--every", "200ms", "--quick", "--json")
        try:
            collector.wait_for(2)
            time.sleep(rng.uniform(0.0, 0.2))  # anywhere in a cycle: scraping, writing, waiting
            collector.proc.send_signal(signal.SIGKILL)
            assert collector.finish() == -signal.SIGKILL
        finally:
            collector.kill()
        confirmed += collector.confirmed()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with Store(url) as store:
        stored = store.scrapes()
        samples = sample_counts(store)  # rows and packed blocks (schema version 4)
        ids = set(stored["scrape_id"])
        assert {c["scrape_id"] for c in confirmed} <= ids
        assert len(ids) - len(confirmed) <= 10  # at most the write each kill cut short
        for c in confirmed:  # each whole: one sample per endpoint it answered
            assert samples[c["scrape_id"]] == c["endpoints"]
        assert set(samples) <= ids and stored["ok"].all()
        # counted once each: the totals are what the API sent between the first and the
        # last answer (the gaps between the processes included: a delta spans a gap)
        got = stored_totals(store)
        assert store.resets().empty
    assert got == sent_between(api, stored["server_ts"].min(), stored["server_ts"].max())


# --- two collectors on one store ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_collector_processes_on_one_store(
    api: SimulatedAPI, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'store' / 'metrics.sqlite'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    Store(url).close()
    pair = [
        Collector(api.url, url, tmp_path, "--every", "200ms", "--quick", "--json") for _ in range(2)
    ]
    try:
        for c in pair:
            c.wait_for(5)
        for c in pair:
            c.proc.send_signal(signal.SIGTERM)
        codes = [c.finish() for c in pair]
    finally:
        for c in pair:
            c.kill()
    assert codes == [0, 0], [c.stderr for c in pair]
    with Store(url) as store:
        stored = store.scrapes()
        assert store.resets().empty  # no invented restart (`lsops incidents` reads these)
    assert {c["scrape_id"] for p in pair for c in p.confirmed()} <= set(stored["scrape_id"])
    # `lsops endpoints` (a fresh process, as a person would run it) reports what was sent
    env = {**os.environ, "LSOPS_STORE": url, "PYTHONPATH": str(ROOT)}
    for name in ("LSOPS_CONFIG", "LSOPS_TARGET", "LSOPS_API_URL"):
        env.pop(name, None)
    shown = subprocess.run(
        [sys.executable, "-c", "from lsops_lib.cli import main; main()", "endpoints", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    reported = {r["endpoint"]: (r["requests"], r["errors"]) for r in json.loads(shown.stdout)}
    first, last = stored["server_ts"].min(), stored["server_ts"].max()
    want = sent_between(api, first, last)
    # an endpoint the API had counted before the first scrape, and not since: listed, at 0
    known = api.ledger(None, last.to_pydatetime(), include_monitoring=False)["endpoint"]
    want |= {str(e): (0, 0) for e in known if str(e) not in want}
    assert reported == want


# --- SIGTERM at random moments -----------------------------------------------------------------


def test_sigterm_at_random_moments_exits_0(api: SimulatedAPI, tmp_path: Path) -> None:
    """From the moment the process catches SIGTERM (its first lines of Python), at a random
    instant of each of six stretches of its life, the first ones during start-up."""
    url = f"sqlite:///{tmp_path / 'store' / 'metrics.sqlite'}"
    rng = random.Random(29)
    stretches = [(0.0, 0.3), (0.3, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.5), (4.5, 6.0)]
    stored_ids: set[str] = set()
    for lo, hi in stretches:
        collector = Collector(api.url, url, tmp_path, "--every", "1s", "--quick", "--json")
        try:
            collector.wait_for_handler()
            time.sleep(rng.uniform(lo, hi))
            sent = time.monotonic()
            collector.proc.send_signal(signal.SIGTERM)
            code = collector.finish(timeout=30)
            waited = time.monotonic() - sent
        finally:
            collector.kill()
        assert code == 0, (lo, hi, collector.stderr)
        assert "Traceback" not in collector.stderr and collector.stderr.strip() == "", (lo, hi)
        assert waited < 30
        stored_ids |= {c["scrape_id"] for c in collector.confirmed()}
    if stored_ids:
        with Store(url) as store:
            assert stored_ids <= set(store.scrapes()["scrape_id"])


HOOK = """
import json, signal, sys
caught = {}
def hook(event, args):
    if event == "import" and args[0] in ("click", "numpy", "pandas", "rich", "sqlalchemy"):
        caught.setdefault(args[0], signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
sys.addaudithook(hook)
sys.argv = ["lsops", *sys.argv[1:]]
import lsops_lib.cli
caught["end"] = signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
print(json.dumps(caught))
"""


@pytest.mark.parametrize(
    ("argv", "caught"),
    [
        (["collect", "--every", "5m"], True),
        (["--target", "b", "collect", "--once"], True),
        (["--config=x.toml", "collect", "--once"], True),
        (["endpoints", "--json"], False),  # other commands keep the default SIGTERM
        (["--target", "collect", "endpoints"], False),
    ],
)
def test_collect_catches_sigterm_before_the_heavy_imports(argv: list[str], caught: bool) -> None:
    """`lsops collect` catches SIGTERM before the CLI imports click and rich (and, once a
    command needs them, numpy, pandas, SQLAlchemy: seconds of start-up): a signal then is
    a stop before the first scrape, exit 0. The CLI itself no longer imports pandas."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", HOOK, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert {"click", "end"} <= set(seen) and "pandas" not in seen, seen
    assert set(seen.values()) == {caught}, seen
