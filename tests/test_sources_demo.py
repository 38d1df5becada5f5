"""The demo's sources (issue 10): Sentry, pm2 log files and pm2 jlist agree with the
incidents the demo plants; counts against the plan, computed here by hand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lsops_lib.analysis import incidents
from lsops_lib.config import Thresholds
from lsops_lib.demo import plan
from lsops_lib.demo import sources as demo_sources
from lsops_lib.sources import log_patterns, new_error_log_patterns, new_fatal_sentry_issues
from lsops_lib.sources.review import errors_review
from lsops_lib.store import Store
from lsops_lib.store import sources as tables

pytestmark = pytest.mark.timeout(120)


def test_the_demo_sources_agree_with_the_planted_incidents(
    sqlite_store: Store, tmp_path: Path
) -> None:
    p = plan("2026-10", seed=0)  # the whole month, as the demo plants it
    got = demo_sources.plant(sqlite_store, p, tmp_path / "app-logs")
    names = sorted(f.name for f in (tmp_path / "app-logs").iterdir())
    assert "api-error.log" in names and any(n.endswith(".log.gz") for n in names)
    assert any(n.startswith("api-out__") and n.endswith("_00-00-00.log") for n in names)

    outage_minutes = int((p.outage[1] - p.outage[0]).total_seconds() // 60) - 1  # 1 .. 39
    during = {
        q["template"]: (q["level"], q["count"])
        for q in log_patterns(sqlite_store, "default", p.outage[0], p.outage[1])
    }
    assert during == {
        demo_sources.HEAP: ("fatal", 1),
        "Error: connect ECONNREFUSED <IP>": ("error", outage_minutes),
    }
    slow = log_patterns(
        sqlite_store, "default", p.latency[0], p.latency[1], level="warning", grep="Slow query"
    )
    assert [q["count"] for q in slow] == [
        int((p.latency[1] - p.latency[0]) / timedelta(minutes=10))
    ]

    first, last, resolved = demo_sources.new_pattern_window(p)
    new = new_error_log_patterns(
        sqlite_store, "default", first - timedelta(hours=1), last + timedelta(hours=1)
    )
    assert [(q["template"], q["count"]) for q in new] == [
        (demo_sources.NEW_PATTERN, 72)
    ]  # 36 h / 30 min

    issues = tables.sentry_issues(sqlite_store, "default").set_index("short_id")
    assert issues.loc["LONGSANG-API-4", "status"] == "resolved" and resolved < p.end
    assert issues.loc["LONGSANG-API-1", "status"] == "unresolved"
    assert issues.loc["LONGSANG-API-4", "first_seen"] == first
    fatal = new_fatal_sentry_issues(sqlite_store, "default", p.outage[0], p.outage[1])
    assert [i["short_id"] for i in fatal] == ["LONGSANG-API-2"]
    # the events of the outage issue, hour by hour from the daily collections
    events = tables.sentry_events(sqlite_store, "default", p.start, p.end).set_index("issue_id")
    assert int(events.loc["4001", "events"]) == outage_minutes

    found = incidents(
        sqlite_store, p.start, p.end, Thresholds(), target="default", kinds=("log_burst",)
    )
    assert len(found) == 1 and found.iloc[0]["severity"] == "critical"
    assert found.iloc[0]["start"] <= p.outage[0] < found.iloc[0]["end"]

    review = errors_review(sqlite_store, p.month_start, p.month_end, target="default")
    assert review.configured == {"sentry": True, "logs": True, "pm2": True}
    assert review.restart_count == len(p.restarts)
    assert got["pm2_samples"] == 31 * 24
    for path in (tmp_path / "app-logs").iterdir():  # pm2's environment is never kept
        assert b"never-kept" not in path.read_bytes()
