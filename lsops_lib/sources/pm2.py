"""`pm2 jlist`: the app's processes as pm2 sees them.

Only these figures are kept, per process of the app (`name` = `[pm2] app`): `pm_id`,
`pid`, `status` (online, stopping, stopped, launching, errored, one-launch-status),
`restarts` (`pm2_env.restart_time`), `unstable_restarts`, `cpu` (`monit.cpu`, percent of
one core), `memory` (`monit.memory`, bytes) and `uptime_s` (now - `pm2_env.pm_uptime` for
an online process). **`pm2 jlist` prints the app's environment, secrets included**: that
part is never kept, printed or stored.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import threading
import time
from datetime import datetime
from typing import Any

from .common import SourceError, one_line
from .settings import Pm2Settings

STOP_POLL_S = 0.2  # s: how often a running `pm2 jlist` looks at the collector's stop request


def parse_jlist(text: str, app: str, now: datetime) -> list[dict[str, Any]]:
    """The processes of `app` in `pm2 jlist`'s output (text before the JSON array, such as
    pm2's `[PM2] Spawning PM2 daemon ...` notices, is skipped). SourceError when it is not a
    JSON array."""
    data = _json_array(text)
    if data is None:
        raise SourceError("pm2", "pm2 jlist did not print a JSON array")
    found = []
    for proc in data:
        if not isinstance(proc, dict) or proc.get("name") != app:
            continue
        env = proc.get("pm2_env") if isinstance(proc.get("pm2_env"), dict) else {}
        monit = proc.get("monit") if isinstance(proc.get("monit"), dict) else {}
        status = str(env.get("status") or "unknown")
        started = _number(env.get("pm_uptime"))
        uptime = (
            max(0.0, now.timestamp() - started / 1000.0)
            if started is not None and status == "online"
            else None
        )
        found.append(
            {
                "app": app,
                "pm_id": _int(proc.get("pm_id", env.get("pm_id"))),
                "pid": _int(proc.get("pid")),
                "status": status,
                "restarts": _int(env.get("restart_time")),
                "unstable_restarts": _int(env.get("unstable_restarts")),
                "cpu": _number(monit.get("cpu")),
                "memory": _int(monit.get("memory")),
                "uptime_s": uptime,
            }
        )
    return found


def _json_array(text: str) -> list[Any] | None:
    """The first JSON array starting a line of `text` (`[PM2] ...` notices start with a
    bracket too: they do not parse, the array after them does)."""
    decoder = json.JSONDecoder()
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("["):
            try:
                data, _ = decoder.raw_decode(text, offset + len(line) - len(stripped))
            except ValueError:
                data = None
            if isinstance(data, list):
                return data
        offset += len(line)
    return None


_INT_MAX = 2**63 - 1  # what the store's integer columns hold


def _number(value: Any) -> float | None:
    """A finite, non-negative number (every figure of jlist is a count, an id, bytes, a
    percentage or an epoch), else None: a reading pm2 garbled is unknown, not stored."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number <= _INT_MAX else None


def jlist(
    settings: Pm2Settings, now: datetime, *, stop: threading.Event | None = None
) -> list[dict[str, Any]]:
    """Run `pm2 jlist` and return the app's processes; SourceError when pm2 cannot be run,
    fails, does not know the app, or is still running when `stop` is set (the collector
    asked to stop: pm2 is killed, not waited for)."""
    args = [*shlex.split(settings.command), "jlist"]
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise SourceError(
            "pm2", f"{settings.command} not found (set [pm2] command, or LSOPS_PM2=off)"
        ) from None
    except OSError as exc:
        raise SourceError("pm2", f"cannot run {settings.command}: {exc.strerror}") from None
    deadline = time.monotonic() + settings.timeout_s
    with proc:
        while True:
            try:  # in short waits: a stop request is heeded within STOP_POLL_S
                out, err = proc.communicate(timeout=min(STOP_POLL_S, settings.timeout_s))
                break
            except subprocess.TimeoutExpired:
                if stop is not None and stop.is_set():
                    proc.kill()
                    proc.communicate()
                    raise SourceError("pm2", "pm2 jlist stopped (SIGTERM/SIGINT)") from None
                if time.monotonic() >= deadline:
                    proc.kill()
                    proc.communicate()
                    raise SourceError(
                        "pm2", f"pm2 jlist ran over {settings.timeout_s:g} s"
                    ) from None
    if proc.returncode != 0:
        # never its stdout: it may hold the app's environment
        why = one_line(err.decode("utf-8", "replace"), 200) or f"exit {proc.returncode}"
        raise SourceError("pm2", f"pm2 jlist failed: {why}")
    processes = parse_jlist(out.decode("utf-8", "replace"), settings.app, now)
    if not processes:
        raise SourceError("pm2", f"pm2 does not run an app named {settings.app!r}")
    return processes
