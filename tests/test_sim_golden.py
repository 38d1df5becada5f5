"""The simulated API's answers, byte for byte, pinned for one seeded scenario.

`tests/data/sim_golden.json` was computed with the simulator as it was before it was
split into `lsops_lib/sim/` (scenario, traffic, payloads, server): the same scenario and
seed must keep giving the same bodies, statuses, content types and ground-truth ledger.
Every route is visited, during every kind of planted event, across scheduled restarts
and across a POST /api/metrics/reset (the process dies and comes back).

Regenerate (only when a change of the answers is intended):
    LSOPS_REGEN_SIM_GOLDEN=1 pytest tests/test_sim_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from lsops_lib.sim import Event, Scenario, SimClock, SimulatedAPI

GOLDEN = Path(__file__).parent / "data" / "sim_golden.json"
START = datetime(2026, 10, 1, tzinfo=UTC)
SEED = 7

# (days, hours) after START: a visit of every route at each
VISITS = [
    (0, 1),
    (2, 9.5),
    (3, 15),  # latency x4 on /copilot/chat
    (9, 10.5),  # errors on /projects/:id
    (12, 2.2),  # outage: no answer
    (12, 3),  # after the restart that ends it
    (17, 9),  # degraded
    (20, 12.1),  # the handler throws (error, value 1)
    (21, 3),  # cache hit rate down
    (25, 12),  # memory climb
    (26, 4),  # after the deploy restart
    (27, 15.2),  # error
]
RESET_AT = (27, 20)
AFTER_RESET = [(27, 20.5), (29, 0)]
ROUTES = [
    ("GET", "/api/health"),
    ("GET", "/api/health?deep=true"),
    ("GET", "/api/metrics"),
    ("GET", "/api/metrics?timeWindow=600000"),
    ("GET", "/api/metrics/endpoint/%2Fcopilot%2Fchat"),
    ("GET", "/api/metrics/endpoint/%2Fprojects%2F%3Aid?timeWindow=60000"),
    ("GET", "/api/metrics/endpoint/%2Fnever"),
    ("GET", "/api/metrics/endpoint//copilot/chat"),
    ("POST", "/api/projects/42"),
    ("GET", "/nope?<x>"),
]


def scenario() -> Scenario:
    base = Scenario.default(START, seed=SEED)
    at = START + timedelta(days=20, hours=12)
    base.events.append(Event("error", at, at + timedelta(minutes=30), value=1.0))
    return base


def _ledger(api: SimulatedAPI, **kwargs: Any) -> list[dict[str, Any]]:
    frame = api.ledger(**kwargs)
    return json.loads(frame.to_json(orient="records"))


def _request(client: httpx.Client, method: str, path: str, url: str) -> dict[str, Any]:
    try:
        response = client.request(method, url + path)
    except httpx.HTTPError:
        return {"route": f"{method} {path}", "answer": "no answer"}
    body = response.content
    return {
        "route": f"{method} {path}",
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "powered_by": response.headers.get("x-powered-by"),
        "sha256": hashlib.sha256(body).hexdigest(),
        "body": body.decode(),
    }


def _wait(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the simulated process did not come back"
        time.sleep(0.01)


def record() -> dict[str, Any]:
    clock = SimClock(START)
    answers: list[dict[str, Any]] = []
    with (
        SimulatedAPI(scenario(), clock=clock, restart_delay_s=0.05) as api,
        httpx.Client(timeout=5.0) as client,
    ):

        def visit(days: float, hours: float) -> None:
            clock.set(START + timedelta(days=days, hours=hours))
            for method, path in ROUTES:
                answers.append(
                    {"at": clock.now().isoformat(), **_request(client, method, path, api.url)}
                )

        for days, hours in VISITS:
            visit(days, hours)
        clock.set(START + timedelta(days=RESET_AT[0], hours=RESET_AT[1]))
        answers.append(
            {
                "at": clock.now().isoformat(),
                **_request(client, "POST", "/api/metrics/reset", api.url),
            }
        )
        _wait(lambda: api.alive)
        for days, hours in AFTER_RESET:
            visit(days, hours)
        ledger = {
            "all": _ledger(api),
            "window": _ledger(
                api,
                start=START + timedelta(days=3, hours=14),
                end=START + timedelta(days=3, hours=16),
                include_monitoring=False,
            ),
        }
        process = {"pid": api.pid, "uptime_start_ms": api.uptime_start_ms}
    return {"answers": answers, "ledger": ledger, "process": process}


def test_answers_and_ledger_are_those_pinned() -> None:
    got = record()
    if os.environ.get("LSOPS_REGEN_SIM_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert len(got["answers"]) == len(expected["answers"])
    for mine, theirs in zip(got["answers"], expected["answers"], strict=True):
        assert mine == theirs, f"{theirs['at']} {theirs['route']}"
    assert got["ledger"] == expected["ledger"]
    assert got["process"] == expected["process"]


def test_simapi_still_exports_the_public_face() -> None:
    import lsops_lib.sim as sim
    import lsops_lib.simapi as simapi

    assert simapi.__all__ == sim.__all__
    for name in sim.__all__:
        assert getattr(simapi, name) is getattr(sim, name), name
