"""QA 14: the checklist of a stopped collector, and the memory line during a steady leak
whose process started before the window (a real SQLite Store filled with known scrapes)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib import analysis as A
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from lsops_lib.times import to_ms
from tests.fixtures.analysis import T0, History, MiB

H = timedelta(hours=1)
SERVICES = ("database", "openai", "cache", "tables")


def _until_noon(store: Store, **kw: object) -> History:
    """Healthy 5-minute scrapes from 00:00 to 12:00 (the collector stops after that)."""
    h = History(store)
    h.scrape(**kw)
    for _ in range(144):
        h.traffic("/a", 100, 20.0).cache(8, 2).scrape(**kw)
    return h


# --- a stopped collector -----------------------------------------------------------------


def test_stale_service_lines_are_unknown_and_the_checklist_is_unknown(
    sqlite_store: Store,
) -> None:
    _until_noon(sqlite_store)  # last scrape 12:00, the window ends at 24:00: 12 h of silence
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, T0 + 24 * H, Thresholds())}
    assert checks["api"].status == "unknown"
    for key in SERVICES:
        c = checks[key]
        assert c.status == "unknown", c
        assert c.detail.endswith("; no observation for the last 12 h 00 min"), c.detail
        assert c.value == "OK"  # what it said then
    # the window's figures are still judged (they are sums over what was collected)
    assert {checks[k].status for k in ("latency", "cache_hit_rate", "error_rate", "memory")} == {
        "pass"
    }
    assert A.exit_code(list(checks.values())) == 3  # nothing recent: not OK


def test_a_fresh_checklist_is_still_ok(sqlite_store: Store) -> None:
    h = _until_noon(sqlite_store)
    checks = A.checklist(sqlite_store, T0, h.t, Thresholds())
    assert {c.key: c.status for c in checks if c.key in SERVICES} == dict.fromkeys(SERVICES, "pass")
    assert A.exit_code(checks) == 0


def test_a_stale_checklist_with_a_fail_keeps_its_fail_level(sqlite_store: Store) -> None:
    _until_noon(sqlite_store, rss=450 * MiB)  # 88 % of 512 MiB: a warning-level fail
    checks = A.checklist(sqlite_store, T0, T0 + 24 * H, Thresholds())
    statuses = {c.key: c.status for c in checks}
    assert statuses["api"] == "unknown" and statuses["memory"] == "fail"
    assert A.exit_code(checks) == 1


def test_services_unknown_while_the_api_has_not_answered_for_hours(sqlite_store: Store) -> None:
    h = _until_noon(sqlite_store)
    h.run(24, answer=False)  # 12:05 .. 14:00 without an answer
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, h.t, Thresholds())}
    assert (checks["api"].status, checks["api"].severity) == ("fail", "critical")
    # the services' last word is from 12:00, the window ends at 14:05
    assert checks["database"].status == "unknown"
    assert checks["database"].detail.endswith("no observation for the last 2 h 05 min")
    assert A.exit_code(list(checks.values())) == 2


def test_cli_stale_checklist_exits_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray lsops.toml
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    with Store(url) as store:
        _until_noon(store)
    args = ["checklist", "--since", "2026-10-01T00:00Z", "--until", "2026-10-02T00:00Z"]
    env = {"LSOPS_STORE": url}
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 3, result.output
    data = json.loads(result.output)
    assert (data["status"], data["exit_code"]) == ("UNKNOWN", 3)
    text = CliRunner().invoke(main, args, env=env)
    assert text.exit_code == 3 and "UNKNOWN (exit 3)" in text.output


# --- memory: the level of a process started before the window ----------------------------

LEVEL = 100 * MiB
LEAK = 2.4 * MiB  # an hour: 2.4 % of the level, above the 2 %/h threshold


def _leak(store: Store, *, older_than_store: bool = False) -> None:
    """A process at 100 MiB for 3 hours from 00:00, then leaking 2.4 MiB an hour for two
    days (5-minute scrapes). Before it, another process at 300 MiB (its level must not
    count); or, `older_than_store`, a process started ten days before the store's first
    scrape."""
    h = History(store)
    if older_than_store:
        h.up_start = to_ms(T0 - timedelta(days=10))
    else:
        for _ in range(24):  # 22:00 .. 23:55 the day before
            h.scrape(rss=300 * MiB, at=T0 - 2 * H + _ * h.step)
        h.restart(T0 - timedelta(minutes=1))
    for i in range(51 * 12 + 1):
        hours = i / 12
        h.scrape(rss=round(LEVEL + max(0.0, hours - 3) * LEAK), at=T0 + i * h.step)


@pytest.mark.parametrize("older_than_store", [False, True])
def test_memory_growth_of_a_segment_begun_before_the_window(
    sqlite_store: Store, older_than_store: bool
) -> None:
    _leak(sqlite_store, older_than_store=older_than_store)
    expected = LEAK / LEVEL  # the level: the first three hours after the start, 100 MiB
    for start in (T0 + 24 * H, T0 + 27 * H, T0 + 4 * H):  # windows inside the climb
        trend = A.memory_trend(sqlite_store, start, start + 24 * H, Thresholds())
        seg = trend.segments.iloc[0]
        assert len(trend.segments) == 1 and trend.leak
        assert seg["growth_per_hour"] == pytest.approx(expected, rel=1e-6)
        assert seg["climb_growth_per_hour"] == pytest.approx(expected, rel=1e-6)
    # the checklist and `lsops incidents` agree on the same day
    start = T0 + 24 * H
    checks = {c.key: c for c in A.checklist(sqlite_store, start, start + 24 * H, Thresholds())}
    assert checks["memory"].status == "fail"
    assert "possible leak: rss climbing +2.4 %/h" in checks["memory"].detail
    climbs = A.memory_climb_incidents(sqlite_store, start, start + 24 * H, Thresholds())
    assert list(climbs["kind"]) == ["memory_climb"]


def test_memory_level_of_a_process_started_just_before_the_window(sqlite_store: Store) -> None:
    """Started 2.5 hours before the window: its first three hourly medians (00:00-01:00,
    01:00-02:00, 02:00-03:00) span the window's start, each hour taken whole."""
    _leak(sqlite_store)
    whole = A.memory_trend(sqlite_store, T0, T0 + 6 * H, Thresholds()).segments.iloc[0]
    late = A.memory_trend(sqlite_store, T0 + 2.5 * H, T0 + 6 * H, Thresholds()).segments.iloc[0]
    # the straight line of the later window, over the same level (100 MiB: flat hours 0-3)
    assert late["growth_per_hour"] == pytest.approx(late["slope_bytes_per_hour"] / LEVEL)
    assert whole["growth_per_hour"] == pytest.approx(whole["slope_bytes_per_hour"] / LEVEL)
