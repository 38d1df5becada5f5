"""The monthly review's Errors section (issue 10): its figures from a hand-planted store,
shown escaped, the CPU chart drawn; and the notebook cell that shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib import plots, present
from lsops_lib.config import Thresholds
from lsops_lib.present import display
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.review import errors_review
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log

pytestmark = pytest.mark.timeout(120)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj, **_kw: out.append(str(obj.data)))
    present.begin()
    return out


def _issue(
    i: str, level: str, status: str, first: datetime, last: datetime, sub: str | None = None
) -> dict:
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    return {
        "issue_id": i,
        "short_id": f"API-{i}",
        "title": f"{XSS} issue {i}",
        "culprit": "c",
        "level": level,
        "status": status,
        "substatus": sub,
        "first_seen": ms(first),
        "last_seen": ms(last),
        "events": 9,
        "users": 1,
        "permalink": f"https://s/{i}",
    }


def _plant(store: Store, folder: Path) -> None:
    d = timedelta(days=1)
    tables.record_sentry_issues(
        store,
        "default",
        NOV,
        [
            _issue("1", "error", "unresolved", OCT + 3 * d, OCT + 20 * d),  # new, open
            _issue("2", "error", "resolved", OCT + 14 * d, OCT + 16 * d),  # new, resolved
            _issue("3", "error", "unresolved", OCT - 30 * d, OCT + 5 * d, "regressed"),
            _issue("4", "fatal", "resolved", OCT - 60 * d, OCT - 40 * d),  # not seen in October
        ],
        [
            {"issue_id": "1", "hour": int((OCT + 3 * d).timestamp() * 1000), "events": 4},
            {"issue_id": "1", "hour": int((OCT + 20 * d).timestamp() * 1000), "events": 2},
            {"issue_id": "1", "hour": int((NOV + d).timestamp() * 1000), "events": 50},
        ],
    )
    log = Pm2Log(folder)
    log.write("❌ Express Error: Database query timeout after 100ms", OCT - 2 * d)  # September
    for k in range(3):
        log.write(f"❌ Express Error: Database query timeout after {k}ms", OCT + k * d)
    log.write(f"Error: {XSS} new in October", OCT + 15 * d)
    collect_logs(store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
    for k, restarts in enumerate([0, 0, 1, 1, 3]):
        tables.record_pm2(
            store,
            "default",
            OCT + k * d,
            [
                {
                    "app": "longsang-api",
                    "pm_id": 0,
                    "pid": 1,
                    "status": "online",
                    "restarts": restarts,
                    "unstable_restarts": 0,
                    "cpu": 10.0 * (k + 1),
                    "memory": 1,
                    "uptime_s": 1.0,
                }
            ],
        )
    for name in ("sentry", "logs", "pm2"):
        tables.record_source_run(store, "default", name, OCT, ok=True, items=1, error=None)


def test_the_errors_section_of_a_month(
    sqlite_store: Store, tmp_path: Path, shown: list[str]
) -> None:
    _plant(sqlite_store, tmp_path)
    review = errors_review(sqlite_store, OCT, NOV, Thresholds(), target="default")
    assert review.configured == {"sentry": True, "logs": True, "pm2": True}
    assert list(review.new_issues["short_id"]) == ["API-1", "API-2"]
    assert list(review.new_issues["events"]) == [6, 0]  # October's hours only (not 50)
    assert list(review.resolved_issues["short_id"]) == ["API-2"]
    assert list(review.regressed_issues["short_id"]) == ["API-3"]
    assert sorted(review.open_issues["short_id"]) == ["API-1", "API-3"]
    top = review.top_patterns.set_index("template")
    assert top.loc["❌ Express Error: Database query timeout after <NUM>", "count"] == 3
    assert top.loc["❌ Express Error: Database query timeout after <NUM>", "baseline"] == 1
    assert list(review.new_patterns["template"]) == [
        "Error: <img src=x onerror=alert(<NUM>)> new in October"
    ]
    assert review.restart_count == 3  # 0 -> 1, 1 -> 3
    assert review.cpu_p95 == pytest.approx(48.0)  # 10..50, linear interpolation
    assert review.summary()["sentry_open"] == 2

    present.errors.show_errors(review)
    page = "".join(shown)
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x onerror=alert(<NUM>)>" not in page  # the template, escaped too
    assert "Sentry: attention" in page and "pm2: attention" in page
    assert plots.pm2_cpu(review.cpu, Thresholds(), restarts=review.unseen_restarts) is not None


def test_sources_not_configured_say_how(sqlite_store: Store, shown: list[str]) -> None:
    review = errors_review(sqlite_store, OCT, NOV, Thresholds(), target="default")
    assert review.configured == {"sentry": False, "logs": False, "pm2": False}
    present.errors.show_errors(review)
    page = "".join(shown)
    assert "Sentry: not configured" in page and "LSOPS_LOGS" in page and "[pm2]" in page
    assert plots.pm2_cpu(review.cpu, Thresholds()) is None


def test_the_postmortem_timeline_places_the_sources(sqlite_store: Store, tmp_path: Path) -> None:
    """Sentry issues first seen or spiking in the window, the window's log patterns with
    counts and first and last lines, pm2 restarts; the summary names the top new pattern."""
    from lsops_lib.analysis import postmortem
    from lsops_lib.present.postmortem import impact_sentence
    from tests.fixtures.analysis import History

    t0 = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)
    h = History(sqlite_store, start=t0 - timedelta(hours=2))
    for minute in range(0, 4 * 60 + 1, 5):
        h.traffic("/a", 10, 20.0).scrape(at=t0 - timedelta(hours=2) + timedelta(minutes=minute))
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    hour = lambda d: ms(d.replace(minute=0))  # noqa: E731
    tables.record_sentry_issues(
        sqlite_store,
        "default",
        t0 + timedelta(hours=1),
        [
            _issue(
                "7", "fatal", "unresolved", t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)
            ),
            _issue("8", "error", "unresolved", t0 - timedelta(days=3), t0 + timedelta(minutes=30)),
            _issue("9", "error", "unresolved", t0 - timedelta(days=3), t0 + timedelta(minutes=30)),
        ],
        [
            {"issue_id": "8", "hour": hour(t0), "events": 12},  # 12 in the window, 0 before
            {"issue_id": "9", "hour": hour(t0), "events": 2},  # too few to be a spike
        ],
    )
    log = Pm2Log(tmp_path)
    log.write("⚠️ Slow query: 900ms on documents", t0 - timedelta(minutes=30))
    for k in range(4):
        log.write(
            f"Error: connect ECONNREFUSED 127.0.0.1:{5400 + k}",
            t0 + timedelta(minutes=5 + k),
            frames=1,
        )
    log.write("⚠️ Slow query: 1200ms on documents", t0 + timedelta(minutes=40))
    collect_logs(sqlite_store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
    for minute, restarts in [(0, 2), (15, 3), (45, 3)]:
        tables.record_pm2(
            sqlite_store,
            "default",
            t0 + timedelta(minutes=minute),
            [
                {
                    "app": "longsang-api",
                    "pm_id": 0,
                    "pid": 1,
                    "status": "online",
                    "restarts": restarts,
                    "unstable_restarts": 0,
                    "cpu": 1.0,
                    "memory": 1,
                    "uptime_s": 1.0,
                }
            ],
        )

    pm = postmortem(sqlite_store, t0, t0 + timedelta(hours=1), Thresholds(), target="default")
    events = pm.timeline[
        pm.timeline["event"].isin(["sentry issue", "sentry spike", "log pattern", "pm2 restart"])
    ]
    got = [(r.ts, r.event, r.detail.split(":")[0]) for r in events.itertuples()]
    assert got == [
        (t0 + timedelta(minutes=5), "log pattern", "error x4 (new)"),
        (t0 + timedelta(minutes=10), "sentry issue", "first seen"),
        (
            t0 + timedelta(minutes=15),
            "pm2 restart",
            "pm2 counted 1 restart of the app since the sample before",
        ),
        (t0 + timedelta(minutes=30), "sentry spike", "12 events in the window (0 before it)"),
        (t0 + timedelta(minutes=40), "log pattern", "warning x1"),
    ]
    pattern = events[events["event"] == "log pattern"]["detail"].iloc[0]
    assert "first: Error: connect ECONNREFUSED 127.0.0.1:5400" in pattern
    assert "last 2026-10-02 02:08:00 UTC: Error: connect ECONNREFUSED 127.0.0.1:5403" in pattern
    summary = pm.summary()
    assert summary["top_new_pattern"]["count"] == 4
    assert (
        "Top new error log pattern: Error: connect ECONNREFUSED <IP> (4 lines"
        in impact_sentence(summary)
    )


def test_the_reports_import_no_http_client_until_a_source_is_collected() -> None:
    """Reading what was collected (the review's Errors section) imports neither httpx (and
    the command line it imports: click, rich) nor drain3; `sources.collect_sources` is
    still there, imported when first asked for."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lsops_lib import plots, present\n"
        "assert 'httpx' not in sys.modules and 'drain3' not in sys.modules, 'eager import'\n"
        "from lsops_lib.sources import SourceResult, collect_sources\n"
        "from lsops_lib.sources.collect import collect_sources as direct\n"
        "assert collect_sources is direct and SourceResult.__name__ == 'SourceResult'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
