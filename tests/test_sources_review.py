"""The monthly review's Errors section (issue 10): its figures from a hand-planted store,
shown escaped, the CPU chart drawn; and the notebook cell that shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib import plots, present
from lsops_lib.config import LogSettings, SourceSettings, Thresholds
from lsops_lib.present import display
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.review import errors_review
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
