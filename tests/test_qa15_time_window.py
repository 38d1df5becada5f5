"""QA 15 (time): `--until T` alone is the command's default span ending at T (30 days for
`incidents` and `security`, 24 h for the others), `--since T` alone runs to now; the text
headers show a window's ends to the second when they are not whole minutes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lsops_lib import times
from lsops_lib.cli import main
from lsops_lib.store import Store
from tests.fixtures.analysis import History
from tests.fixtures.security import AuthPlant

pytestmark = pytest.mark.timeout(120)


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _words(env: dict[str, str], *args: str) -> str:
    """The command's stdout with its lines joined (a table's title wraps to its width)."""
    return " ".join(_run(env, *args).stdout.split())


@pytest.fixture
def env(lsops_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'metrics.sqlite'}"}


def test_the_window_without_since_is_the_default_span_ending_at_until() -> None:
    now = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
    until = datetime(2024, 2, 20, tzinfo=UTC)
    assert times.window(until="2024-02-20T00:00Z", default="30d", now=now) == (
        until - timedelta(days=30),
        until,
    )
    assert times.window(until="2024-02-20T00:00Z", now=now) == (until - timedelta(days=1), until)
    assert times.window(since="2024-02-20T00:00Z", default="30d", now=now) == (until, now)
    assert times.window(default="30d", now=now) == (now - timedelta(days=30), now)
    assert times.window("2h", default="30d", now=now) == (now - timedelta(hours=2), now)
    with pytest.raises(times.ParameterError, match="before 1900-01-01"):
        times.window(until="1900-01-10T00:00Z", default="30d", now=now)


def test_incidents_until_alone_looks_30_days_back(env: dict[str, str]) -> None:
    """An outage 01:00-01:40 on T0; `--until` ten days later: inside the 30 days the help
    promises (the old 24 h window ending there held nothing)."""
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store)
        h.run(12)
        h.run(8, answer=False)  # 01:00 .. 01:35 without an answer
        h.run(6)
    until = "2026-10-11T00:00Z"
    result = _run(env, "incidents", "--until", until, "--json")
    assert result.exit_code == 0, result.output
    outage = [r for r in json.loads(result.output) if r["kind"] == "no_answer"]
    assert len(outage) == 1 and outage[0]["start"].startswith("2026-10-01T01:00")
    text = _words(env, "incidents", "--until", until)
    assert "Incidents of default 2026-09-11 00:00 UTC .. 2026-10-11 00:00 UTC" in text
    # --since alone: from there to now
    since = json.loads(_run(env, "incidents", "--since", "2026-10-01T00:30Z", "--json").output)
    assert [r["kind"] for r in since if r["kind"] == "no_answer"] == ["no_answer"]


def test_security_until_alone_looks_30_days_back(
    lsops_env: dict[str, str], tmp_path: Path, auth_store: AuthPlant
) -> None:
    env = {**lsops_env, "LSOPS_STORE": auth_store.url, "LSOPS_DATA": str(tmp_path / "data")}
    until = auth_store.end + timedelta(days=10)
    result = _run(env, "security", "--until", until.isoformat(), "--json")
    auth = json.loads(result.stdout)["auth"]
    assert auth["start"] == (until - timedelta(days=30)).isoformat()
    assert auth["end"] == until.isoformat()
    assert auth["unauthorized"] == auth_store.unauthorized  # the planted day is inside
    text = _words(env, "security", "--until", until.isoformat())
    assert "window: 2026-09-12 00:00 UTC .. 2026-10-12 00:00 UTC" in text


def test_the_help_says_what_until_alone_gives(env: dict[str, str]) -> None:
    for command, default in [
        ("checklist", "24h"),
        ("endpoints", "24h"),
        ("errors", "24h"),
        ("logs", "24h"),
        ("incidents", "30 days"),
        ("security", "30d"),
    ]:
        text = _words(env, command, "--help")
        assert f"default: {default} before --until" in text, command


def _fill_checklist(env: dict[str, str]) -> None:
    with Store(env["LSOPS_STORE"]) as store:
        h = History(store)  # a scrape every 5 min from 2026-10-01 00:00
        h.scrape()
        for _ in range(12):
            h.traffic("/a", 100, 20.0).cache(8, 2).scrape()


def test_window_headers_keep_the_seconds(env: dict[str, str], tmp_path: Path) -> None:
    _fill_checklist(env)
    wide = {**env, "COLUMNS": "200", "LSOPS_DATA": str(tmp_path / "data")}
    span = ["--since", "2026-10-01T00:04:59Z", "--until", "2026-10-01T00:10:01Z"]
    shown = "2026-10-01 00:04:59 UTC .. 2026-10-01 00:10:01 UTC"
    assert f"Monitoring checklist of default {shown}" in _words(wide, "checklist", *span)
    assert f"Endpoints of default {shown}" in _words(wide, "endpoints", *span)
    assert f"Log patterns of default {shown}" in _words(wide, "logs", *span)
    assert f"window: {shown}" in _words(wide, "security", *span)
    # a whole minute as before; a fraction of a second is not shown (the JSON has it)
    half = ["--since", "2026-10-01T00:05Z", "--until", "2026-10-01T00:10:00.5Z"]
    shown = "2026-10-01 00:05 UTC .. 2026-10-01 00:10:00 UTC"
    assert f"Monitoring checklist of default {shown}" in _words(wide, "checklist", *half)
    whole = ["--since", "2026-10-01T00:00Z", "--until", "2026-10-01T01:15Z"]
    head = _run(wide, "checklist", *whole).stdout.splitlines()[0]
    assert head.strip() == (
        "Monitoring checklist of default 2026-10-01 00:00 UTC .. 2026-10-01 01:15 UTC"
    )
