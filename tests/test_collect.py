"""The collector over real sockets: against the simulated API (interval totals equal the
scenario's ground truth through restart, reset-kill and outage) and against servers that
answer badly; the `lsops collect` command's exit codes and its SIGTERM handling."""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from lsops_lib.api import Client
from lsops_lib.cli import main
from lsops_lib.collect import collect_forever, collect_once, next_tick, record, scrape
from lsops_lib.exceptions import StoreError
from lsops_lib.simapi import EndpointSpec, Event, Scenario, SimClock, SimulatedAPI
from lsops_lib.store import SCHEMA_VERSION, Store
from lsops_lib.times import from_ms

START = datetime(2026, 10, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def h(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def scenario() -> Scenario:
    endpoints = [
        EndpointSpec("/copilot/chat", "POST", 6.0, 850.0, 0.02),
        EndpointSpec("/copilot/suggestions", "GET", 8.0, 120.0, 0.01),
        EndpointSpec("/projects/:id", "GET", 5.0, 25.0, 0.05),
        EndpointSpec("/context/search", "POST", 2.0, 300.0, 0.0),
    ]
    events = [
        Event("restart", h(1) + timedelta(minutes=2)),  # between two scrapes
        Event("errors", h(1.5), h(2), "/projects/:id", 0.4),
        Event("latency", h(2), h(2.5), "/copilot/chat", 3.0),
        Event("outage", h(3) + timedelta(minutes=1), h(3.4)),  # no answer, same process
        Event("error", h(4), h(4.2)),  # deep health 503 with a body: an answer
    ]
    return Scenario(endpoints=endpoints, events=events, seed=7, start=START)


@pytest.fixture
def sim() -> Iterator[tuple[SimulatedAPI, SimClock]]:
    clock = SimClock(START)
    api = SimulatedAPI(scenario(), clock=clock, restart_delay_s=0.2)
    api.start()
    try:
        yield api, clock
    finally:
        api.stop()


def expected_from_ledger(
    api: SimulatedAPI, scrapes: pd.DataFrame, *, include_monitoring: bool
) -> pd.DataFrame:
    """Per interval between consecutive scrapes with metrics: what the scenario sent since
    the later of the previous scrape and the process's (re)start (a restart loses what the
    old process counted after the previous scrape: the delta is a lower bound by design)."""
    rows = []
    ok = scrapes[scrapes["requests_total"].notna()].reset_index(drop=True)
    for i in range(1, len(ok)):
        prev, cur = ok.iloc[i - 1], ok.iloc[i]
        lo = max(
            prev["ts"],
            pd.Timestamp(from_ms(int(cur["uptime_start_ms"]))),
            pd.Timestamp(from_ms(int(cur["last_reset_ms"]))),
        )
        ledger = api.ledger(
            lo.to_pydatetime(), cur["ts"].to_pydatetime(), include_monitoring=include_monitoring
        )
        ledger["ts"] = cur["ts"]
        rows.append(ledger)
    return pd.concat(rows, ignore_index=True)


def test_interval_totals_equal_the_ledger(
    sim: tuple[SimulatedAPI, SimClock], tmp_path: Path
) -> None:
    api, clock = sim
    store = Store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    client = Client(api.url, retries=0, timeout_s=2.0)
    reset_done = False
    try:
        for step in range(0, 6 * 12 + 1):  # every 5 minutes for 6 hours
            clock.set(h(step / 12))
            result = collect_once(client, store, clock=clock.now)
            if step == 5 * 12 + 6 and not reset_done:
                # POST /api/metrics/reset: empties the counters and kills the process (quirk 4)
                httpx.post(api.url + "/api/metrics/reset", timeout=2.0)
                reset_done = True
                clock.advance(timedelta(minutes=1))
                refused = collect_once(client, store, clock=clock.now)
                assert not refused.ok and refused.failures[0].kind == "unreachable"
                deadline = time.monotonic() + 5
                while not api.alive and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert api.alive
            assert result.id
    finally:
        client.close()

    scrapes = store.scrapes()
    health = store.health()
    # the outage is recorded as no answer, the 503 deep health as an answer (ERROR)
    in_outage = (scrapes["ts"] >= pd.Timestamp(h(3) + timedelta(minutes=1))) & (
        scrapes["ts"] < pd.Timestamp(h(3.4))
    )
    assert in_outage.sum() >= 4 and (~scrapes.loc[in_outage, "ok"]).all()
    assert set(scrapes.loc[in_outage, "failure_kind"]) == {"unreachable"}
    erroring = health[(health["ts"] >= pd.Timestamp(h(4))) & (health["ts"] < pd.Timestamp(h(4.2)))]
    assert set(erroring["status"]) == {"ERROR"} and set(erroring["http_status"]) == {503}
    assert scrapes.loc[scrapes["ts"].isin(erroring["ts"]), "ok"].all()
    assert store.resets()["kind"].tolist() == ["restart", "restart"]  # the event and the reset-kill

    # per endpoint and interval: requests and errors exactly, mean latency within 1e-6
    got = store.endpoint_intervals(bucket="scrape")
    want = expected_from_ledger(api, scrapes, include_monitoring=False)
    merged = want.merge(got, on=["ts", "endpoint"], how="outer", suffixes=("_want", "_got"))
    merged = merged[
        (merged["requests_want"].fillna(0) > 0) | (merged["requests_got"].fillna(0) > 0)
    ]
    assert merged["requests_got"].notna().all() and merged["requests_want"].notna().all()
    assert (merged["requests_got"] == merged["requests_want"]).all()
    assert (merged["errors_got"] == merged["errors_want"]).all()
    assert merged["time_sum_ms_got"].tolist() == pytest.approx(
        merged["time_sum_ms_want"].tolist(), rel=1e-6, abs=1e-6
    )
    assert merged["errors_want"].sum() > 20 and merged["requests_want"].sum() > 3000

    # whole-run totals, hour buckets
    hours = (
        store.endpoint_intervals(bucket="hour")
        .groupby("endpoint")[["requests", "errors", "time_sum_ms"]]
        .sum()
    )
    totals = want.groupby("endpoint")[["requests", "errors", "time_sum_ms"]].sum()
    assert hours["requests"].to_dict() == totals["requests"].to_dict()
    assert hours["errors"].to_dict() == totals["errors"].to_dict()
    assert (hours["time_sum_ms"] / hours["requests"]).tolist() == pytest.approx(
        (totals["time_sum_ms"] / totals["requests"]).tolist(), rel=1e-6
    )

    # requests.total (monitoring included) through the same rule
    counters = store.counter_intervals(bucket="scrape")
    with_monitoring = (
        expected_from_ledger(api, scrapes, include_monitoring=True).groupby("ts")["requests"].sum()
    )
    got_total = counters.set_index("ts")["requests"]
    got_total = got_total[got_total.index.isin(with_monitoring.index)]
    assert got_total.to_dict() == with_monitoring.to_dict()
    store.close()


def test_collect_forever_on_a_virtual_clock(
    sim: tuple[SimulatedAPI, SimClock], tmp_path: Path
) -> None:
    api, clock = sim
    clock.set(h(0) + timedelta(seconds=17))
    seen: list[tuple[str, bool]] = []
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store, Client(api.url, retries=0) as client:
        code = collect_forever(
            client,
            store,
            timedelta(minutes=5),
            stop=threading.Event(),
            clock=clock.now,
            sleep=lambda s: clock.advance(timedelta(seconds=s)),
            max_scrapes=6,
            on_scrape=lambda s, stored: seen.append((s.id, stored)),
        )
        assert code == 0
        ts = store.scrapes()["ts"].tolist()
    assert len(seen) == 6 and all(stored for _, stored in seen)
    # the first scrape at once, the others on the 5-minute grid
    assert ts == [pd.Timestamp(h(0) + timedelta(seconds=17))] + [
        pd.Timestamp(h(0) + timedelta(minutes=5 * k)) for k in range(1, 6)
    ]
    assert next_tick(h(0), timedelta(minutes=5)) == h(0) + timedelta(minutes=5)


def test_collect_forever_stops_on_event(sim: tuple[SimulatedAPI, SimClock], tmp_path: Path) -> None:
    api, _clock = sim
    stop = threading.Event()
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store, Client(api.url, retries=0) as client:
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert collect_forever(client, store, timedelta(hours=1), stop=stop) == 0
        assert time.monotonic() - started < 3
        assert len(store.scrapes()) == 1


# --- store write retries ------------------------------------------------------------------


class FlakyStore:
    """Fails the first writes; `commit_then_fail` stores, then reports a failure anyway."""

    def __init__(self, store: Store, failures: int, *, commit_then_fail: bool = False) -> None:
        self.store, self.failures, self.commit_then_fail, self.calls = (
            store,
            failures,
            commit_then_fail,
            0,
        )

    def record_scrape(self, s: object) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            if self.commit_then_fail:
                self.store.record_scrape(s)  # type: ignore[arg-type]
            raise StoreError("database is locked")
        return self.store.record_scrape(s)  # type: ignore[arg-type]


def test_store_write_is_retried_with_the_same_id(
    sim: tuple[SimulatedAPI, SimClock], tmp_path: Path
) -> None:
    api, clock = sim
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store, Client(api.url, retries=0) as client:
        flaky = FlakyStore(store, 2)
        s = collect_once(client, flaky, clock=clock.now)  # type: ignore[arg-type]
        assert flaky.calls == 3 and store.scrapes()["scrape_id"].tolist() == [s.id]
        committed = FlakyStore(store, 1, commit_then_fail=True)
        s2 = scrape(client, clock=clock.now)
        assert record(committed, s2, backoff_s=0.01) is False  # type: ignore[arg-type]
        assert store.scrapes()["scrape_id"].tolist() == [s.id, s2.id]
        with pytest.raises(StoreError):
            record(
                FlakyStore(store, 10), scrape(client, clock=clock.now), attempts=2, backoff_s=0.01
            )  # type: ignore[arg-type]


# --- servers that answer badly ---------------------------------------------------------------


class BadServer:
    """A loopback HTTP server answering every request one bad way."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.released = threading.Event()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                outer.answer(self.wfile)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def answer(self, out: object) -> None:
        write = out.write  # type: ignore[attr-defined]
        if self.mode == "html":
            body = b"<!DOCTYPE html><html><body><pre>Cannot GET /api/metrics</pre></body></html>"
            write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
        elif self.mode == "500":
            body = b'{"success": false, "error": "boom"}'
            write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
        elif self.mode == "truncated":
            body = b'{"success": true, "metrics": {"requests": {"total": 12'
            write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n"
                + body
            )
        elif self.mode == "shape":
            body = b'{"hello": "world"}'
            write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
        elif self.mode == "slow":
            self.released.wait(3.0)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("mode", "kind", "status"),
    [
        ("dead", "unreachable", None),
        ("html", "not_json", 200),
        ("500", "bad_status", 500),
        ("truncated", "unreachable", None),
        ("shape", "bad_shape", 200),
        ("slow", "timeout", None),
    ],
)
def test_bad_answers_are_recorded_failures(
    mode: str, kind: str, status: int | None, tmp_path: Path
) -> None:
    server = None if mode == "dead" else BadServer(mode)
    url = dead_url() if server is None else server.url
    try:
        with (
            Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store,
            Client(url, retries=0, timeout_s=0.3) as client,
        ):
            started = time.monotonic()
            result = collect_once(client, store)
            assert time.monotonic() - started < 3
            assert not result.ok and result.health is None and result.metrics is None
            assert [(f.part, f.kind, f.http_status) for f in result.failures] == [
                ("health", kind, status),
                ("metrics", kind, status),
            ]
            assert all("\n" not in f.message for f in result.failures)
            row = store.scrapes().iloc[0]
            assert row["scrape_id"] == result.id and not row["ok"] and row["failure_kind"] == kind
            assert store.health()["status"].tolist() == ["NO_ANSWER"]
    finally:
        if server is not None:
            server.close()


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no lsops.toml around
    for name in ("LSOPS_CONFIG", "LSOPS_TARGET", "LSOPS_API_TOKEN", "LSOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store' / 'metrics.sqlite'}",
        "LSOPS_DATA": str(tmp_path / "data"),
    }


def invoke(args: list[str], env: dict[str, str]) -> object:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_cli_once_ok_and_json(sim: tuple[SimulatedAPI, SimClock], cli_env: dict[str, str]) -> None:
    api, _ = sim
    env = {**cli_env, "LSOPS_API_URL": api.url}
    result = invoke(["collect", "--once"], env)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "OK" in result.stdout and "endpoints" in result.stdout  # type: ignore[attr-defined]
    result = invoke(["collect", "--once", "--quick", "--json"], env)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    data = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (
        data["ok"] is True
        and data["stored"] is True
        and data["health"] == "OK"
        and data["failures"] == []
    )
    with Store(env["LSOPS_STORE"]) as store:
        scrapes = store.scrapes()
        assert len(scrapes) == 2 and scrapes["ok"].all()
        assert scrapes["deep"].tolist() == [True, False]


def test_cli_once_no_answer_exits_1_and_stores_the_failure(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "LSOPS_API_URL": dead_url()}
    result = invoke(["collect", "--once", "--json"], env)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert json.loads(result.stdout)["failures"][0]["kind"] == "unreachable"  # type: ignore[attr-defined]
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert stderr.startswith("lsops: ") and "\n" not in stderr and "Traceback" not in stderr
    with Store(env["LSOPS_STORE"]) as store:
        assert store.health()["status"].tolist() == ["NO_ANSWER"]


@pytest.mark.parametrize(
    "args",
    [
        ["collect"],
        ["collect", "--once", "--every", "5m"],
        ["collect", "--every", "soon"],
        ["collect", "--every", "0s"],
        ["collect", "--once", "--bogus"],
        ["--config", "missing.toml", "collect", "--once"],
        ["--config", "broken.toml", "collect", "--once"],
        ["collect", "--once", "--db"],  # no database configured
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[api\nurl = ")
    result = invoke(args, {**cli_env, "LSOPS_API_URL": dead_url()})
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert stderr.startswith("lsops:") and len(stderr.splitlines()) == 1
    with Store(cli_env["LSOPS_STORE"]) as store:
        assert store.scrapes().empty  # nothing was collected


def test_cli_store_newer_than_lsops_exits_2(cli_env: dict[str, str]) -> None:
    with Store(cli_env["LSOPS_STORE"]) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE lsops_meta SET value = :v"), {"v": str(SCHEMA_VERSION + 5)})
    result = invoke(["collect", "--once"], {**cli_env, "LSOPS_API_URL": dead_url()})
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "newer" in result.stderr and len(result.stderr.strip().splitlines()) == 1  # type: ignore[attr-defined]


def test_cli_every_exits_0_on_sigterm(tmp_path: Path) -> None:
    api = SimulatedAPI(scenario())  # real time
    api.start()
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    env = {
        **os.environ,
        "LSOPS_API_URL": api.url,
        "LSOPS_STORE": store_url,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("LSOPS_CONFIG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from lsops_lib.cli import main; main()",
            "collect",
            "--every",
            "1s",
            "--quick",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
        )  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + 20
        while len(lines) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(lines) >= 2, proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        assert time.monotonic() - sent < 3
        assert code == 0, proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
        reader.join(timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        api.stop()
    with Store(store_url) as store:
        stored = store.scrapes()
    assert len(stored) >= len([x for x in lines if "stored" in x]) >= 2
    assert stored["ok"].all()


# --- lsops collect --db ------------------------------------------------------------------------


def test_collect_db_snapshots_sizes_and_queries(
    pg_cluster: object, pg_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    from lsops_lib.collect import collect_db
    from lsops_lib.config import load_settings
    from lsops_lib.store import engine_url

    engine = create_engine(engine_url(pg_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE documents (id serial PRIMARY KEY, body text)"))
        conn.execute(
            text(
                "INSERT INTO documents (body) SELECT repeat('x', 200) FROM generate_series(1, 500)"
            )
        )
        if getattr(pg_cluster, "has_pg_stat_statements", False):
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            conn.execute(text("SELECT count(*) FROM documents"))
    engine.dispose()
    settings = load_settings(
        env={"LSOPS_DATABASE_URL": pg_url, "LSOPS_DATA": str(tmp_path)}, cwd=tmp_path
    )
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
        result = collect_db(settings, store, clock=lambda: START)
        assert result["tables"] >= 1
        sizes = store.db_sizes(result["database"])
        row = sizes[sizes["table"] == "documents"].iloc[0]
        assert (
            row["ts"] == pd.Timestamp(START)
            and row["total_bytes"] > 0
            and row["schema"] == "public"
        )
        if getattr(pg_cluster, "has_pg_stat_statements", False):
            assert result["queries"] > 0 and result["queries_error"] is None
            assert len(store.db_queries(result["database"])) == result["queries"]
        else:
            assert result["queries"] == 0 and "pg_stat_statements" in result["queries_error"]


def test_cli_once_with_db(
    sim: tuple[SimulatedAPI, SimClock], pg_url: str, cli_env: dict[str, str]
) -> None:
    api, _ = sim
    env = {**cli_env, "LSOPS_API_URL": api.url, "LSOPS_DATABASE_URL": pg_url}
    result = invoke(["collect", "--once", "--db"], env)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "database" in result.stdout  # type: ignore[attr-defined]


def test_cli_bad_store_url_exits_2(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "LSOPS_API_URL": dead_url(), "LSOPS_STORE": "mysql://u:s3cret@h/db"}
    result = invoke(["collect", "--once"], env)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "s3cret" not in result.stderr and "unsupported store backend" in result.stderr  # type: ignore[attr-defined]
