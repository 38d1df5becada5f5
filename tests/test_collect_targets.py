"""Rounds over several targets: `collect_round` / `collect_rounds_forever` against several
simulated APIs on loopback (one of them dead), and `lsops collect --all-targets` (exit
codes, --json, SIGTERM in --every)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib.api import Client
from lsops_lib.cli import main
from lsops_lib.collect import collect_round, collect_rounds_forever, target_clients
from lsops_lib.config import Target, load_settings
from lsops_lib.exceptions import ConfigError, StoreError
from lsops_lib.models import Scrape
from lsops_lib.simapi import Scenario, SimClock, SimulatedAPI
from lsops_lib.store import Store
from tests.fixtures.sim import SIM_START

ROOT = Path(__file__).resolve().parent.parent
LIVE = ("alpha", "bravo", "charlie")


@pytest.fixture
def sims() -> Iterator[tuple[dict[str, SimulatedAPI], SimClock]]:
    """Three simulated APIs on one virtual clock, named alpha, bravo, charlie."""
    clock = SimClock(SIM_START + timedelta(minutes=10))
    apis = {
        name: SimulatedAPI(
            Scenario.default(SIM_START, seed=i, incidents=False), clock=clock
        ).start()
        for i, name in enumerate(LIVE)
    }
    try:
        yield apis, clock
    finally:
        for api in apis.values():
            api.stop()


def dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def write_config(path: Path, urls: dict[str, str], store_url: str) -> Path:
    lines = [f'[store]\nurl = "{store_url}"\n']
    for name, url in urls.items():
        lines.append(f'[targets.{name}]\nurl = "{url}"\nretries = 0\ntimeout_s = 2\n')
    path.write_text("\n".join(lines))
    return path


class OneWriter:
    """A store proxy that checks every write comes from one thread, never two at once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.threads: set[int] = set()
        self.busy = threading.Lock()
        self.overlaps = 0

    def record_scrape(self, s: Scrape) -> bool:
        self.threads.add(threading.get_ident())
        if not self.busy.acquire(blocking=False):
            self.overlaps += 1
            self.busy.acquire()
        try:
            time.sleep(0.005)  # widen the window a concurrent writer would hit
            return self.store.record_scrape(s)
        finally:
            self.busy.release()


# --- the library ---------------------------------------------------------------------------


def test_round_stores_every_target_under_its_name_and_the_dead_one_as_a_failure(
    sims: tuple[dict[str, SimulatedAPI], SimClock], tmp_path: Path
) -> None:
    apis, clock = sims
    urls = {name: api.url for name, api in apis.items()} | {"delta": dead_url()}
    targets = [Target(name, url, retries=0, timeout_s=2.0) for name, url in urls.items()]
    seen: list[tuple[str, bool]] = []
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store, target_clients(targets) as clients:
        assert list(clients) == [*LIVE, "delta"]
        assert len({id(c) for c in clients.values()}) == 4  # each target its own client
        writer = OneWriter(store)
        scrapes = collect_round(
            clients,
            writer,  # type: ignore[arg-type]
            clock=clock.now,
            workers=3,
            on_scrape=lambda s, stored: seen.append((s.target, stored)),
        )
        assert [s.target for s in scrapes] == [*LIVE, "delta"]  # the order of the targets
        assert [s.ok for s in scrapes] == [True, True, True, False]
        assert writer.threads == {threading.get_ident()} and writer.overlaps == 0
        assert sorted(seen) == sorted((name, True) for name in urls)

        rows = store.scrapes()
        assert sorted(rows["target"]) == sorted(urls)
        assert set(rows["scrape_id"]) == {s.id for s in scrapes}
        by_target = rows.set_index("target")
        for name in LIVE:
            assert by_target.loc[name, "ok"] and by_target.loc[name, "requests_total"] > 0
        assert not by_target.loc["delta", "ok"]
        assert by_target.loc["delta", "failure_kind"] == "unreachable"
        # each live target's counters are its own API's, not a neighbour's
        for name in LIVE:
            one = store.scrapes(target=name)
            assert len(one) == 1 and one["target"].tolist() == [name]
        health = store.health()
        assert sorted(health["status"].tolist()) == ["NO_ANSWER", "OK", "OK", "OK"]


def test_round_scrapes_concurrently_within_the_bound(tmp_path: Path) -> None:
    class Slow:
        """An API client that answers nothing, slowly, and counts who is in flight."""

        active = 0
        peak = 0
        lock = threading.Lock()

        def _enter(self) -> None:
            with Slow.lock:
                Slow.active += 1
                Slow.peak = max(Slow.peak, Slow.active)
            time.sleep(0.1)
            with Slow.lock:
                Slow.active -= 1
            raise OSError("no answer")

        def get_health(self, *, deep: bool = False) -> object:
            self._enter()

        def get_metrics(self, *, time_window_ms: int = 0) -> object:
            self._enter()

    clients = {f"t{i:02d}": Slow() for i in range(12)}
    with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
        started = time.monotonic()
        scrapes = collect_round(clients, store, workers=4)  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
        assert Slow.peak == 4
        assert elapsed < 12 * 0.2  # not one after the other
        assert len(scrapes) == 12 and not any(s.ok for s in scrapes)
        assert sorted(store.scrapes()["target"]) == sorted(clients)
        assert {f.kind for s in scrapes for f in s.failures} == {"error"}


def test_round_goes_on_when_the_store_refuses_a_write(
    sims: tuple[dict[str, SimulatedAPI], SimClock], tmp_path: Path
) -> None:
    apis, clock = sims

    class Refusing:
        def __init__(self, store: Store) -> None:
            self.store = store

        def record_scrape(self, s: Scrape) -> bool:
            if s.target == "bravo":
                raise StoreError("database is locked")
            return self.store.record_scrape(s)

    with (
        Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store,
        target_clients(Target(n, a.url, retries=0) for n, a in apis.items()) as clients,
    ):
        stored: dict[str, bool] = {}
        with pytest.raises(StoreError, match="locked"):
            collect_round(
                clients,
                Refusing(store),  # type: ignore[arg-type]
                clock=clock.now,
                attempts=1,
                on_scrape=lambda s, ok: stored.__setitem__(s.target, ok),
            )
        # every other scrape of the round was written before the error was raised
        assert stored == {"alpha": True, "bravo": False, "charlie": True}
        assert sorted(store.scrapes()["target"]) == ["alpha", "charlie"]
        errors: list[Exception] = []
        scrapes = collect_round(
            clients,
            Refusing(store),  # type: ignore[arg-type]
            clock=clock.now,
            attempts=1,
            on_error=errors.append,
        )
        assert len(scrapes) == 3 and len(errors) == 1


def test_rounds_forever_on_a_virtual_clock(
    sims: tuple[dict[str, SimulatedAPI], SimClock], tmp_path: Path
) -> None:
    apis, clock = sims
    clock.set(SIM_START + timedelta(hours=1, seconds=17))
    rounds: list[list[str]] = []
    with (
        Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store,
        target_clients(Target(n, a.url, retries=0) for n, a in apis.items()) as clients,
    ):
        code = collect_rounds_forever(
            clients,
            store,
            timedelta(minutes=5),
            stop=threading.Event(),
            clock=clock.now,
            sleep=lambda s: clock.advance(timedelta(seconds=s)),
            max_rounds=3,
            on_round=lambda scrapes: rounds.append([s.target for s in scrapes]),
        )
        assert code == 0
        rows = store.scrapes()
    assert rounds == [list(LIVE)] * 3
    assert rows["ok"].all() and rows.groupby("target").size().to_dict() == dict.fromkeys(LIVE, 3)
    first = pd.Timestamp(SIM_START + timedelta(hours=1, seconds=17))
    grid = [pd.Timestamp(SIM_START + timedelta(hours=1, minutes=m)) for m in (5, 10)]
    assert sorted(set(rows["ts"])) == [first, *grid]


def test_rounds_forever_stops_on_event(
    sims: tuple[dict[str, SimulatedAPI], SimClock], tmp_path: Path
) -> None:
    apis, clock = sims
    stop = threading.Event()
    with (
        Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store,
        target_clients(Target(n, a.url, retries=0) for n, a in apis.items()) as clients,
    ):
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert collect_rounds_forever(clients, store, timedelta(hours=1), stop=stop) == 0
        assert time.monotonic() - started < 3
        assert sorted(store.scrapes()["target"]) == sorted(LIVE)


def test_target_clients_refuses_a_bad_url_before_making_any() -> None:
    made: list[str] = []

    def factory(t: Target) -> Client:
        made.append(t.name)
        return Client(t.url)

    bad = [Target("ok", "http://127.0.0.1:9"), Target("bad", "ftp://example.org")]
    with pytest.raises(ConfigError, match=r"\[targets.bad\]"):
        with target_clients(bad, factory=factory):
            pass
    assert made == []


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in ("LSOPS_CONFIG", "LSOPS_TARGET", "LSOPS_API_URL", "LSOPS_API_TOKEN", "LSOPS_STORE"):
        monkeypatch.delenv(name, raising=False)
    return {"LSOPS_DATA": str(tmp_path / "data")}


def invoke(args: list[str], env: dict[str, str]) -> object:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_cli_all_targets_one_dead_exits_1_and_stores_every_target(
    sims: tuple[dict[str, SimulatedAPI], SimClock], cli_env: dict[str, str], tmp_path: Path
) -> None:
    apis, _ = sims
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    urls = {"alpha": apis["alpha"].url, "delta": dead_url()} | {
        n: apis[n].url for n in ("bravo", "charlie")
    }
    config = write_config(tmp_path / "lsops.toml", urls, store_url)
    result = invoke(["--config", str(config), "collect", "--once", "--all-targets"], cli_env)
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    lines = result.stdout.splitlines()  # type: ignore[attr-defined]
    assert [line.split()[1] for line in lines] == ["alpha", "delta", "bravo", "charlie"]
    assert all("stored" in line and "NOT stored" not in line for line in lines)
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert stderr.startswith("lsops: 1 of 4 targets") and "delta" in stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr

    result = invoke(
        ["--config", str(config), "collect", "--once", "--all-targets", "--json", "--quick"],
        cli_env,
    )
    assert result.exit_code == 1  # type: ignore[attr-defined]
    objects = [json.loads(line) for line in result.stdout.splitlines()]  # type: ignore[attr-defined]
    assert [(o["target"], o["ok"], o["stored"]) for o in objects] == [
        ("alpha", True, True),
        ("delta", False, True),
        ("bravo", True, True),
        ("charlie", True, True),
    ]
    assert objects[1]["failures"][0]["kind"] == "unreachable"

    with Store(store_url) as store:
        rows = store.scrapes()
    assert rows.groupby("target").size().to_dict() == dict.fromkeys(urls, 2)
    assert rows.groupby("target")["ok"].all().to_dict() == {
        "alpha": True,
        "bravo": True,
        "charlie": True,
        "delta": False,
    }
    assert set(rows.loc[rows["target"] == "delta", "failure_kind"]) == {"unreachable"}


def test_cli_all_targets_all_live_exits_0(
    sims: tuple[dict[str, SimulatedAPI], SimClock], cli_env: dict[str, str], tmp_path: Path
) -> None:
    apis, _ = sims
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    write_config(tmp_path / "lsops.toml", {n: a.url for n, a in apis.items()}, store_url)
    result = invoke(["collect", "--once", "--all-targets"], cli_env)  # ./lsops.toml
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stderr == ""  # type: ignore[attr-defined]
    with Store(store_url) as store:
        rows = store.scrapes()
    assert sorted(rows["target"]) == sorted(LIVE) and rows["ok"].all()
    # the single-target command is unchanged: --target picks one
    result = invoke(["--target", "bravo", "collect", "--once"], cli_env)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    with Store(store_url) as store:
        assert store.scrapes()["target"].value_counts().to_dict() == {
            "bravo": 2,
            "alpha": 1,
            "charlie": 1,
        }


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "alpha", "collect", "--once", "--all-targets"],
        ["collect", "--all-targets"],
        ["collect", "--once", "--every", "1m", "--all-targets"],
        ["collect", "--every", "0s", "--all-targets"],
    ],
)
def test_cli_all_targets_usage_errors_exit_2(
    args: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    write_config(tmp_path / "lsops.toml", {"alpha": dead_url(), "bravo": dead_url()}, store_url)
    result = invoke(args, cli_env)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert stderr.startswith("lsops:") and len(stderr.splitlines()) == 1
    with Store(store_url) as store:
        assert store.scrapes().empty


def test_cli_all_targets_bad_target_url_exits_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    write_config(tmp_path / "lsops.toml", {"alpha": dead_url(), "bravo": "ftp://x"}, store_url)
    assert load_settings().target.name == "alpha"  # only the chosen target is checked there
    result = invoke(["collect", "--once", "--all-targets"], cli_env)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "[targets.bravo]" in result.stderr  # type: ignore[attr-defined]
    with Store(store_url) as store:
        assert store.scrapes().empty


def test_cli_all_targets_every_exits_0_on_sigterm(tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)  # real clock: a short history
    apis = {
        name: SimulatedAPI(Scenario.default(start, seed=i, incidents=False)).start()
        for i, name in enumerate(LIVE)
    }
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    urls = {n: a.url for n, a in apis.items()} | {"delta": dead_url()}
    config = write_config(tmp_path / "lsops.toml", urls, store_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from lsops_lib.cli import main; main()",
            "--config",
            str(config),
            "collect",
            "--every",
            "1s",
            "--all-targets",
            "--quick",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        reader = threading.Thread(
            target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        deadline = time.monotonic() + 20
        while len(lines) < 2 * len(urls) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(lines) >= 2 * len(urls), proc.stderr.read() if proc.stderr else ""  # type: ignore[union-attr]
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
        for api in apis.values():
            api.stop()
    objects = [json.loads(line) for line in lines]
    assert all(o["stored"] for o in objects)
    with Store(store_url) as store:
        rows = store.scrapes()
    counts = rows.groupby("target").size().to_dict()
    # every round finished its writes: each target the same number of scrapes, all printed
    assert set(counts) == set(urls) and len(set(counts.values())) == 1
    assert sum(counts.values()) == len(objects) >= 2 * len(urls)
    assert rows.loc[rows["target"] != "delta", "ok"].all()
    assert not rows.loc[rows["target"] == "delta", "ok"].any()
