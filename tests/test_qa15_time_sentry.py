"""QA 15 (time): `lsops errors` and the edges of its window, against the Sentry stand-in.

- An issue first seen inside the window is seen, also beyond the stats' 14 days.
- Sentry's stats are hourly (daily beyond 24 h) buckets that cannot be split: the events
  are counted in the whole buckets the window overlaps, and the view says which span that
  is (`events_start`, `events_end`), never an issue seen in the window with 0 events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.sim.sentry import SentryStandIn, SimIssue
from lsops_lib.sources import errors_view
from lsops_lib.sources.settings import SentrySettings
from tests.fixtures.sources import SENTRY_TOKEN

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 11, 20, 20, 10, tzinfo=UTC)  # the stand-in's clock and the view's
MINUTE = timedelta(minutes=1)


def _settings(stand_in: SentryStandIn) -> SentrySettings:
    return SentrySettings(
        url=stand_in.url, org="longsang", project="longsang-api", token=SENTRY_TOKEN
    )


def _issue(issue_id: str, *events: datetime, level: str = "error") -> SimIssue:
    return SimIssue(
        issue_id, f"LONGSANG-API-{issue_id}", f"issue {issue_id}", "x", level, events=list(events)
    )


def _seen(view: dict) -> dict[str, tuple[int | None, bool]]:
    return {i["id"]: (i["events"], i["new"]) for i in view["issues"]}


def test_an_issue_first_seen_in_a_window_beyond_14_days_is_seen(
    sentry_stand_in: SentryStandIn,
) -> None:
    sentry_stand_in.now = lambda: NOW
    sentry_stand_in.issues = [
        _issue("1", NOW - timedelta(days=20), NOW - timedelta(minutes=5)),  # first seen inside
        _issue("2", NOW - timedelta(days=25), NOW - timedelta(days=1)),  # before, after: unknown
        _issue("3", NOW - timedelta(days=18)),  # after the window
    ]
    start, end = NOW - timedelta(days=21), NOW - timedelta(days=19)
    view = errors_view(_settings(sentry_stand_in), start, end, now=NOW)
    # no stats reach 21 days back: seen by first / last seen alone, events not counted
    assert _seen(view) == {"1": (None, True)}
    assert view["events_counted"] is False and view["events_start"] is None
    assert view["exit_code"] == 1  # a new unresolved error


def test_events_are_counted_in_the_whole_hours_the_window_overlaps(
    sentry_stand_in: SentryStandIn,
) -> None:
    """Window 18:02 .. 19:30 (now 20:10): the hours 18:00 and 19:00 overlap it."""
    sentry_stand_in.now = lambda: NOW
    h18 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    sentry_stand_in.issues = [
        # first seen 18:01 (before the window), last 18:03 (inside): 3 events in hour 18
        _issue("1", h18 + MINUTE, h18 + 2.5 * MINUTE, h18 + 3 * MINUTE),
        # first seen 19:45, after the window: not seen, though its hour overlaps it
        _issue("2", h18 + 105 * MINUTE),
        # 17:00 and 19:40, nothing inside the window that the stats can tell apart from
        # the hour 19:00: found per whole bucket, 1 event (hour 17 does not overlap)
        _issue("3", h18 - 60 * MINUTE, h18 + 100 * MINUTE),
        # first seen 18:20, new, and seen again at 20:05 (after the window)
        _issue("4", h18 + 20 * MINUTE, h18 + 125 * MINUTE, level="fatal"),
    ]
    start, end = h18 + 2 * MINUTE, h18 + 90 * MINUTE
    view = errors_view(_settings(sentry_stand_in), start, end, now=NOW)
    assert _seen(view) == {"4": (1, True), "1": (3, False), "3": (1, False)}
    assert (view["events_start"], view["events_end"]) == (h18, h18 + 120 * MINUTE)
    assert view["events_counted"] is True and view["exit_code"] == 2


def test_lsops_errors_says_the_span_it_counted(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """The repro: --since 2 minutes into an hour whose events are at minutes 1 to 3."""
    now = datetime.now(UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0) - timedelta(hours=2)
    sentry_stand_in.issues = [_issue("1", *(hour + m * MINUTE for m in (1, 2, 3)))]
    env = {
        **lsops_env,
        "COLUMNS": "400",
        "LSOPS_SENTRY_URL": sentry_stand_in.url,
        "LSOPS_SENTRY_ORG": "longsang",
        "LSOPS_SENTRY_PROJECT": "longsang-api",
        "SENTRY_AUTH_TOKEN": SENTRY_TOKEN,
    }
    since = (hour + 2 * MINUTE).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = json.loads(
        CliRunner().invoke(main, ["errors", "--since", since, "--json"], env=env).stdout
    )
    (issue,) = doc["issues"]
    assert issue["events"] == 3 and issue["new"] is False
    assert doc["events_start"] == hour.isoformat()
    text = CliRunner().invoke(main, ["errors", "--since", since], env=env).stdout
    assert f"events counted in Sentry's whole stats buckets: {hour:%Y-%m-%d %H:%M} UTC .. " in text
