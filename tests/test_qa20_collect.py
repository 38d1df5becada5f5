"""QA 20, the long-running collector with every source (`lsops collect --every` with Sentry,
the logs, pm2 and `--db`): a slow source makes rounds run over ticks of the grid, which is
said (once on stderr, `skipped_ticks` in the JSON); a database that is down is said once
and when it is back; a failed snapshot is in the JSON; a SIGTERM during a slow source
starts nothing more (Sentry's next request, the logs, pm2) and cuts pm2's wait short; the
forecast's basis over less than a day is a duration.

Real parts: `lsops collect` processes against the simulated API in real time, the Sentry
stand-in made slow, a pm2 script, the session PostgreSQL behind a loopback port that is
closed then opened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.collect import skipped_ticks
from lsops_lib.db import forecast
from lsops_lib.sim import SimulatedAPI
from lsops_lib.sim.sentry import SentryStandIn, SimIssue
from tests.fixtures.sources import SENTRY_TOKEN
from tests.test_faults_collect import Collector
from tests.test_faults_collect import api as api  # the simulated API fixture
from tests.test_forecast import linear, snapshots

pytestmark = pytest.mark.timeout(120)


class SlowSentry(SentryStandIn):
    """The stand-in answering each request after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(token=SENTRY_TOKEN)
        self.delay = delay
        self.arrived: list[float] = []  # when each request came (`requests`: once answered)
        now = datetime.now(UTC)
        self.issues = [SimIssue("1", "LONGSANG-1", "TypeError", "api/chat", events=[now])]

    def answer(self, path: str, params: dict[str, str], auth: str | None) -> Any:
        self.arrived.append(time.monotonic())
        time.sleep(self.delay)
        return super().answer(path, params, auth)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The collector's environment (`Collector` copies os.environ): no LSOPS_* of the host,
    pm2 off unless a test sets it."""
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LSOPS_PM2", "off")
    return monkeypatch


def slow_sentry(env: pytest.MonkeyPatch, delay: float) -> SlowSentry:
    stand_in = SlowSentry(delay)
    stand_in.start()
    env.setenv("LSOPS_SENTRY_URL", stand_in.url)
    env.setenv("LSOPS_SENTRY_ORG", "longsang")
    env.setenv("LSOPS_SENTRY_PROJECT", "longsang-api")
    env.setenv("LSOPS_SENTRY_TOKEN", SENTRY_TOKEN)
    return stand_in


def objects(collector: Collector) -> list[dict[str, Any]]:
    return [json.loads(x) for x in list(collector.lines) if x.endswith("\n")]


def wait_until(collector: Collector, done: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        assert collector.proc.poll() is None, collector.stderr
        time.sleep(0.02)
    assert done(), collector.stderr


# --- a slow source: the ticks it skipped are said -------------------------------------------


def test_skipped_ticks_are_the_ticks_a_round_ran_over() -> None:
    t0 = datetime(2026, 10, 16, 8, 0, 0, tzinfo=UTC)  # on the 2 s grid
    every = timedelta(seconds=2)
    # by hand: a round from 08:00:00 to 08:00:12.3 ran over :02 :04 :06 :08 :10 :12
    assert skipped_ticks(t0, t0 + timedelta(seconds=12.3), every) == 6
    assert skipped_ticks(t0, t0 + timedelta(seconds=1.9), every) == 0
    assert skipped_ticks(t0 - timedelta(milliseconds=3), t0 + timedelta(seconds=2.5), every) == 1
    assert skipped_ticks(t0, t0 + timedelta(minutes=5), timedelta(minutes=5)) == 1


def test_rounds_slowed_by_sentry_say_the_ticks_they_skipped(
    api: SimulatedAPI, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    stand_in = slow_sentry(env, 0.8)  # two requests a round: ~1.7 s rounds on a 200 ms grid
    collector = Collector(
        api.url, f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path, "--every", "200ms", "--quick",
        "--json",
    )  # fmt: skip
    try:
        wait_until(collector, lambda: len(collector.confirmed()) >= 4)
        collector.proc.send_signal(signal.SIGTERM)
        assert collector.finish(timeout=30) == 0, collector.stderr
    finally:
        collector.kill()
        stand_in.stop()
    scrapes = collector.confirmed()
    said = re.findall(
        r"^lsops: round took [\d.]+ s: (\d+) ticks of the --every 200ms grid skipped$",
        collector.stderr,
        re.M,
    )
    assert len(said) == 1, collector.stderr  # once while rounds keep running late
    assert [s["skipped_ticks"] for s in scrapes[:2]] == [0, 0]  # the first round is off-grid
    for before, after in zip(scrapes[1:], scrapes[2:], strict=False):
        gap = (
            datetime.fromisoformat(after["ts"]) - datetime.fromisoformat(before["ts"])
        ).total_seconds()
        # independently: the grid ticks between two scrapes taken on ticks, theirs aside
        assert after["skipped_ticks"] == round(gap / 0.2) - 1 >= 5, (before, after)
    assert int(said[0]) == scrapes[2]["skipped_ticks"]


# --- the database down, then back ------------------------------------------------------------


class Gate:
    """A loopback port in front of PostgreSQL: refused (bound, not listening) until
    `open()`, then forwarding every connection to `target` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()

    def open(self) -> None:
        self.sock.listen()
        self.sock.settimeout(0.1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with closing(src), closing(dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def test_a_database_down_is_said_once_and_when_it_is_back(
    api: SimulatedAPI, tmp_path: Path, env: pytest.MonkeyPatch, pg_url: str
) -> None:
    real = re.search(r"@([\d.]+):(\d+)/", pg_url)
    assert real is not None, pg_url
    gate = Gate((real.group(1), int(real.group(2))))
    env.setenv("LSOPS_DATABASE_URL", pg_url.replace(real.group(0), f"@127.0.0.1:{gate.port}/"))
    collector = Collector(
        api.url, f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path, "--every", "200ms", "--quick",
        "--db", "--json",
    )  # fmt: skip
    try:

        def snapshots() -> list[dict[str, Any]]:
            return [o["db"] for o in objects(collector) if "db" in o]

        wait_until(collector, lambda: len(snapshots()) >= 3)
        gate.open()
        wait_until(collector, lambda: any(d["ok"] for d in snapshots()))
        collector.proc.send_signal(signal.SIGTERM)
        assert collector.finish(timeout=30) == 0, collector.stderr
    finally:
        collector.kill()
        gate.close()
    taken = snapshots()
    failed = [d for d in taken if not d["ok"]]
    assert len(failed) >= 3 and all(d["database"] and d["error"] for d in failed), taken
    assert taken[: len(failed)] == failed  # down first, then back
    good = taken[len(failed)]
    assert good["ok"] is True and good["tables"] == 0 and "error" not in good
    lines = [x for x in collector.stderr.splitlines() if x.strip()]
    assert len(lines) == 2, collector.stderr  # not one a round
    assert lines[0].startswith("lsops: database snapshot failed: ")
    assert str(gate.port) in lines[0]
    assert lines[1] == (
        f"lsops: the database snapshot: working again after {len(failed)} failed rounds"
    )


def test_a_failed_snapshot_is_in_the_once_json_document(
    api: SimulatedAPI, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = "pw-QA20-do-not-print"
    cli = {
        "LSOPS_API_URL": api.url,
        "LSOPS_STORE": f"sqlite:///{tmp_path / 's.sqlite'}",
        "LSOPS_PM2": "off",
        "LSOPS_DATABASE_URL": f"postgresql://reader:{password}@127.0.0.1:{port}/longsang",
    }
    result = CliRunner().invoke(main, ["collect", "--once", "--quick", "--db", "--json"], env=cli)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)  # ONE document, the snapshot's failure inside it
    assert doc["ok"] is True and doc["db"]["ok"] is False
    # named as a taken snapshot of this setting is stored (`collect_db`: no [databases] name)
    assert doc["db"]["database"] == "default" and str(port) in doc["db"]["error"]
    assert password not in result.output and "***" in doc["db"]["error"]
    text = CliRunner().invoke(main, ["collect", "--once", "--quick", "--db"], env=cli)
    assert text.exit_code == 1 and "database default: FAILED: " in text.stdout
    assert password not in text.output


# --- SIGTERM during a slow source ------------------------------------------------------------


def test_sigterm_during_a_slow_sentry_starts_nothing_more(
    api: SimulatedAPI, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    stand_in = slow_sentry(env, 2.0)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api-out.log").write_text("2026-10-16 08:00:00 +00:00: server listening on 3001\n")
    env.setenv("LSOPS_LOGS", str(logs / "api-*.log"))
    ran = tmp_path / "pm2-ran"
    pm2 = tmp_path / "pm2"
    pm2.write_text(f"#!/bin/sh\ntouch {ran}\necho '[]'\n")
    pm2.chmod(0o755)
    env.setenv("LSOPS_PM2", str(pm2))
    store = tmp_path / "s.sqlite"
    collector = Collector(api.url, f"sqlite:///{store}", tmp_path, "--every", "1h", "--json")
    try:
        wait_until(collector, lambda: bool(stand_in.arrived))  # Sentry's first request
        collector.proc.send_signal(signal.SIGTERM)
        assert collector.finish(timeout=30) == 0, collector.stderr
    finally:
        collector.kill()
        stand_in.stop()
    assert len(stand_in.arrived) == 1  # not the unresolved issues after it
    runs = [o["source_run"] for o in objects(collector) if "source_run" in o]
    assert [(r["source"], r["ok"]) for r in runs] == [("sentry", False)], runs
    assert "stopped" in runs[0]["error"]
    assert not ran.exists()  # pm2 was not run
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM lsops_log_lines").fetchone() == (0,)
    assert collector.stderr.strip() == ""


def test_sigterm_during_a_hanging_pm2_ends_its_wait(
    api: SimulatedAPI, tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "pm2-started"
    pm2 = tmp_path / "pm2"
    pm2.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 60\n")  # [pm2] timeout_s: 20 s
    pm2.chmod(0o755)
    env.setenv("LSOPS_PM2", str(pm2))
    collector = Collector(
        api.url, f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path, "--every", "1h", "--json"
    )
    try:
        wait_until(collector, started.exists)
        sent = time.monotonic()
        collector.proc.send_signal(signal.SIGTERM)
        assert collector.finish(timeout=30) == 0, collector.stderr
        assert time.monotonic() - sent < 5  # not the 20 s of pm2's timeout
    finally:
        collector.kill()
    (run,) = [o["source_run"] for o in objects(collector) if "source_run" in o]
    assert run["source"] == "pm2" and not run["ok"] and "stopped" in run["error"]


# --- the forecast over less than a day -------------------------------------------------------


def test_a_forecast_over_less_than_a_day_says_how_long() -> None:
    # 96 snapshots a minute apart: 95 minutes, by hand 1 h 35 min (was "over 0 days")
    fc = forecast.capacity_forecast(
        snapshots(linear(96, rate=1000), every_h=1 / 60), 0, min_days=0.001
    )
    assert fc.status == "no_limit"
    assert fc.message.endswith("(96 snapshots over 1 h 35 min)"), fc.message
    two = forecast.capacity_forecast(snapshots(linear(30), every_h=36), 0)  # 43.5 days
    assert two.message.endswith("(30 snapshots over 44 days)"), two.message
