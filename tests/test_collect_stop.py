"""A stop request during a scrape of an API that does not answer: the collector makes no
further try of a part (before: every retry, 3 x timeout_s a part, past systemd's stop
timeout with a long timeout_s), and a second signal ends it at once, by that signal."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_faults_collect import Collector

pytestmark = pytest.mark.timeout(120)


class Silent:
    """A loopback server that accepts connections and never answers; notes when."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[float] = []
        self.held: list[socket.socket] = []
        self.sock.settimeout(0.1)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(time.monotonic())
            self.held.append(conn)

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()


def _collector(silent: Silent, tmp_path: Path, timeout_s: int) -> Collector:
    (tmp_path / "lsops.toml").write_text(f"[api]\ntimeout_s = {timeout_s}\nretries = 2\n")
    return Collector(silent.url, f"sqlite:///{tmp_path / 's.sqlite'}", tmp_path, "--every", "1h")


def _first_try(silent: Silent, collector: Collector) -> None:
    deadline = time.monotonic() + 60
    while not silent.accepted and time.monotonic() < deadline:
        assert collector.proc.poll() is None, collector.stderr
        time.sleep(0.02)
    assert silent.accepted, "the collector never tried the API"


def test_a_stop_request_makes_no_further_try(silent: Silent, tmp_path: Path) -> None:
    collector = _collector(silent, tmp_path, timeout_s=3)
    try:
        _first_try(silent, collector)
        time.sleep(0.3)  # both parts (health, metrics) are in their first try
        asked = time.monotonic()
        collector.proc.send_signal(signal.SIGTERM)
        assert collector.finish(timeout=30) == 0, collector.stderr
    finally:
        collector.kill()
    # one try of each part (health, then metrics), none of the 2 retries each had left
    assert len(silent.accepted) == 2, f"{len(silent.accepted)} tries"
    assert sum(t > asked for t in silent.accepted) <= 1  # at most the metrics' first try


def test_a_second_signal_ends_the_collector_at_once(silent: Silent, tmp_path: Path) -> None:
    collector = _collector(silent, tmp_path, timeout_s=60)  # a try would take a minute
    try:
        _first_try(silent, collector)
        collector.proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        collector.proc.send_signal(signal.SIGINT)
        assert collector.finish(timeout=20) == -signal.SIGINT
    finally:
        collector.kill()


@pytest.mark.parametrize(
    ("args", "signum"), [(("--every", "1m"), signal.SIGTERM), (("--once",), signal.SIGINT)]
)
def test_a_stop_while_the_store_connects_exits_0_at_once(
    silent: Silent, tmp_path: Path, args: tuple[str, ...], signum: int
) -> None:
    """README: SIGTERM or SIGINT at any moment of `lsops collect`, start-up included, exits
    0. A store host that accepts and never answers held the start-up for the connect
    timeout (10 s): the stop came out as exit 1, "cannot open store", 8 s late (QA 23)."""
    port = silent.url.rsplit(":", 1)[1]
    collector = Collector(
        "http://127.0.0.1:9", f"postgresql://u@127.0.0.1:{port}/x", tmp_path, *args
    )
    try:
        _first_try(silent, collector)  # the store's connection, before any scrape
        asked = time.monotonic()
        collector.proc.send_signal(signum)
        assert collector.finish(timeout=30) == 0, collector.stderr
        assert time.monotonic() - asked < 5  # not the connect timeout
    finally:
        collector.kill()
    assert "cannot open store" not in collector.stderr
