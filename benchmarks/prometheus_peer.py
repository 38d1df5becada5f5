"""The peer: Prometheus (Debian's `prometheus` package) on the same data, side by side.

- `available()`: `prometheus` and `promtool` on PATH, else installed with
  `apt-get install prometheus` when this process may (root, or sudo without a password);
  where it cannot, the reason, and the figures are judged on their absolute goals only.
- `build_tsdb`: the history of a benchmark store (its scrapes and samples, read through
  the store's own codec) as three counters per endpoint, as Prometheus would scrape them
  from an exporter (`lsops_requests_total`, `lsops_request_time_ms_total`,
  `lsops_request_errors_total`, label `endpoint`), written as OpenMetrics text, one file
  per two-hour window, turned into blocks by `promtool tsdb create-blocks-from
  openmetrics`; then Prometheus is started on those blocks and left to compact them
  (until the block count settles); `bytes` is the whole storage folder, index included.
- `Server.increase_hourly`: the 30-day hourly per-endpoint read, three `increase(...[1h])`
  range queries (step 1h) through the HTTP API on loopback.
- `scrape_cpu`: Prometheus's CPU per scrape of the same 150 series: 20 loopback exporter
  targets scraped every second for a while, the server's CPU (from /proc) over the
  scrapes it made (its idle CPU measured beforehand and taken off).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from datasets import raw_samples

FAMILIES = (
    ("lsops_requests", "count"),
    ("lsops_request_time_ms", "time"),
    ("lsops_request_errors", "errors"),
)
WINDOW_MS = 2 * 3_600_000


def available() -> tuple[bool, str]:
    """(prometheus and promtool usable, how / why not)."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return True, "found on PATH"
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    sudo = [] if root else ["sudo", "-n"]
    if not root and not shutil.which("sudo"):
        return False, "prometheus is not installed and this user cannot install it (no sudo)"
    if not shutil.which("apt-get"):
        return False, "prometheus is not installed and there is no apt-get here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(
        [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=900,
    )
    if proc.returncode == 0 and shutil.which("prometheus") and shutil.which("promtool"):
        return True, "installed with apt-get install prometheus"
    last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
    return False, f"apt-get install prometheus failed: {last[0]}"


def version() -> str:
    out = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


# --- the same data as counters ---------------------------------------------------------------


def _history(path: Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(ts per scrape, endpoint paths, count, time sum, errors as [scrape, endpoint] arrays)
    of a benchmark store of one target (every endpoint in every scrape)."""
    con = sqlite3.connect(path)
    try:
        sids, ts = (
            np.array(c)
            for c in zip(
                *con.execute("SELECT sid, ts FROM lsops_scrapes ORDER BY sid"), strict=True
            )
        )
        eids, paths = zip(
            *con.execute("SELECT id, path FROM lsops_endpoints ORDER BY id"), strict=True
        )
    finally:
        con.close()
    s = raw_samples(path)  # every sample: the packed blocks decoded and the rows
    si = np.searchsorted(sids, s["sid"].to_numpy())
    ei = np.searchsorted(np.array(eids), s["endpoint_id"].to_numpy())
    shape = (len(sids), len(eids))
    count, tsum, errs = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    c, avg, err = (s[k].to_numpy() for k in ("count", "avg_time", "error_rate"))
    count[si, ei] = c
    tsum[si, ei] = avg * c
    errs[si, ei] = np.floor(err * c + 0.5)
    return ts, list(paths), count, tsum, errs


def _openmetrics(ts: np.ndarray, paths: list[str], cols: dict[str, np.ndarray]) -> str:
    lines: list[str] = []
    stamps = [f"{t / 1000:.3f}" for t in ts.tolist()]
    for family, key in FAMILIES:
        lines.append(f"# TYPE {family} counter")
        values = cols[key]
        for j, path in enumerate(paths):
            label = f'{family}_total{{endpoint="{path}"}} '
            lines += [
                label + f"{v:.17g} {s}" for v, s in zip(values[:, j].tolist(), stamps, strict=True)
            ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def build_tsdb(store_path: Path, work: Path, log: Any) -> dict[str, Any]:
    """promtool blocks of the store's history in `work/data` (see the module docstring)."""
    ts, paths, count, tsum, errs = _history(store_path)
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    text_dir = work / "om"
    text_dir.mkdir(exist_ok=True)
    clock = time.perf_counter()
    window = (ts // WINDOW_MS) * WINDOW_MS
    files = 0
    for w in np.unique(window).tolist():
        m = window == w
        om = _openmetrics(ts[m], paths, {"count": count[m], "time": tsum[m], "errors": errs[m]})
        f = text_dir / f"{w}.om"
        f.write_text(om)
        proc = subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(f), str(data)],
            capture_output=True,
            text=True,
            check=False,
        )
        f.unlink()
        if proc.returncode != 0:
            raise RuntimeError(f"promtool failed: {(proc.stderr or proc.stdout)[-300:]}")
        files += 1
    log(f"  promtool: {files} two-hour files in {time.perf_counter() - clock:.1f} s")
    return {
        "samples": int(count.size) * 3,
        "endpoint_samples": int(count.size),
        "openmetrics_files": files,
        "totals": {
            "requests": float(_increase_total(count)),
            "errors": float(_increase_total(errs)),
        },
    }


def _increase_total(values: np.ndarray) -> float:
    """The counter increases summed (a drop: the new value counts whole), as lsops counts."""
    d = np.diff(values, axis=0)
    return float(np.where(d < 0, values[1:], d).sum())


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != "lock")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ------------------------------------------------------------------------------


class Server:
    """`prometheus` on a storage folder, listening on loopback."""

    def __init__(self, work: Path, targets: list[str] | None = None, interval_s: int = 1):
        self.port = _free_port()
        config = work / "prometheus.yml"
        scrape = ""
        if targets:
            scrape = (
                f"scrape_configs:\n  - job_name: peer\n    scrape_interval: {interval_s}s\n"
                f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
            )
        config.write_text(f"global:\n  scrape_interval: {interval_s}s\n{scrape}")
        self.data = work / "data"
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data}",
                "--storage.tsdb.retention.time=3650d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self.get("/-/ready")
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("prometheus exited at start") from None
                time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready")

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=300) as answer:  # noqa: S310 - loopback
            body = answer.read()
        return json.loads(body) if path.startswith("/api") else body

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def blocks(self) -> int:
        return sum(1 for d in self.data.iterdir() if (d / "meta.json").is_file())

    def settle(self, log: Any, limit_s: float = 420) -> int:
        """Wait until compaction has merged the blocks (the count settles after at least
        one compaction round, which Prometheus runs every minute)."""
        start = time.monotonic()
        first = self.blocks()
        last, since = first, time.monotonic()
        while time.monotonic() - start < limit_s:
            time.sleep(5)
            n = self.blocks()
            if n != last:
                last, since = n, time.monotonic()
            elif n < first and time.monotonic() - since > 75:
                break
            elif time.monotonic() - start > 150 and time.monotonic() - since > 75:
                break
        log(
            f"  prometheus compaction: {first} -> {last} blocks in {time.monotonic() - start:.0f} s"
        )
        return last

    def increase_hourly(self, start_ms: int, end_ms: int) -> list[Any]:
        """The three hourly increase() range queries (per endpoint), one after the other."""
        out = []
        for family, _ in FAMILIES:
            answer = self.get(
                "/api/v1/query_range",
                {
                    "query": f"increase({family}_total[1h])",
                    "start": (start_ms + 3_600_000) / 1000,
                    "end": end_ms / 1000,
                    "step": "3600",
                },
            )
            if answer.get("status") != "success":
                raise RuntimeError(f"prometheus query failed: {answer}")
            out.append(answer["data"]["result"])
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


# --- CPU per scrape ----------------------------------------------------------------------------


class _Exporter(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _exporter(paths: list[str]) -> tuple[_Exporter, list[str]]:
    """A loopback exporter of the 150 series (counters rising at every answer)."""
    state = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state["n"] += 1
            n = state["n"]
            lines = []
            for family, _ in FAMILIES:
                lines.append(f"# TYPE {family}_total counter")
                lines += [
                    f'{family}_total{{endpoint="{p}"}} {n * (i + 1) * 7 + (n * 13 + i) % 97}'
                    for i, p in enumerate(paths)
                ]
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Exporter(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    return server, [f"127.0.0.1:{port}"]


def scrape_cpu(work: Path, paths: list[str], seconds: float, log: Any) -> dict[str, Any]:
    """Prometheus's CPU per scrape of the 150 series (see the module docstring)."""
    work.mkdir(parents=True, exist_ok=True)
    exporters = [_exporter(paths) for _ in range(20)]
    targets = [t for _, ts in exporters for t in ts]
    idle_dir = work / "idle"
    idle_dir.mkdir(exist_ok=True)
    idle = Server(idle_dir)
    try:
        time.sleep(5)
        c0 = idle.cpu_s()
        time.sleep(seconds / 2)
        idle_rate = (idle.cpu_s() - c0) / (seconds / 2)
    finally:
        idle.stop()
    busy_dir = work / "busy"
    busy_dir.mkdir(exist_ok=True)
    server = Server(busy_dir, targets)
    try:
        time.sleep(5)  # first scrapes, caches warm
        n0 = _scrapes(server)
        c0, t0 = server.cpu_s(), time.monotonic()
        time.sleep(seconds)
        n1, c1, t1 = _scrapes(server), server.cpu_s(), time.monotonic()
    finally:
        server.stop()
        for exp, _ in exporters:
            exp.shutdown()
    scrapes = n1 - n0
    cpu = (c1 - c0) - idle_rate * (t1 - t0)
    log(
        f"  prometheus: {scrapes:.0f} scrapes, {c1 - c0:.2f} s CPU ({idle_rate * (t1 - t0):.2f} idle)"
    )
    return {
        "scrapes": scrapes,
        "cpu_s": round(c1 - c0, 3),
        "idle_cpu_s": round(idle_rate * (t1 - t0), 3),
        "ms_per_scrape": 1000 * cpu / scrapes if scrapes else None,
        "targets": len(targets),
        "series_per_scrape": 3 * len(paths),
    }


def _scrapes(server: Server) -> float:
    """The scrapes Prometheus made so far (its own /metrics: the count of its scrape
    interval summary)."""
    total = 0.0
    for line in server.get("/metrics").decode().splitlines():
        if line.startswith("prometheus_target_interval_length_seconds_count"):
            total += float(line.rsplit(" ", 1)[1])
    return total
