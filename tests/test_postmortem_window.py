"""The postmortem's window: one rule (analysis.incidents.incident_window) for the default
window, the commands the review and `lsops incidents` print, and the window given."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

import pandas as pd

from lsops_lib import analysis as A
from lsops_lib import present
from lsops_lib.analysis.incidents import (
    IncidentWindow,
    incident_title,
    latest_incident_window,
    postmortem_window,
)
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History
from tests.fixtures.postmortem import outage_and_burst

M = timedelta(minutes=1)


def test_incident_window_margin_floored_and_ceiled_to_the_minute() -> None:
    th = Thresholds()
    start, end = A.incident_window(
        T0 + 62 * M + timedelta(seconds=30), T0 + 97 * M + timedelta(seconds=1), th
    )
    assert start == pd.Timestamp(T0 + 32 * M) and end == pd.Timestamp(T0 + 128 * M)
    wide = Thresholds(incident_margin_minutes=60)
    assert A.incident_window(T0 + 120 * M, T0 + 180 * M, wide) == (
        pd.Timestamp(T0 + 60 * M),
        pd.Timestamp(T0 + 240 * M),
    )


def test_default_window_is_the_latest_incident_and_its_command(sqlite_store: Store) -> None:
    outage_and_burst(sqlite_store)
    th = Thresholds()
    found = A.with_commands(A.incidents(sqlite_store, None, None, th), th)
    assert list(found["kind"]) == ["no_answer", "restart", "error_rate"]
    window = latest_incident_window(sqlite_store, th)
    assert window is not None
    row = found.iloc[-1]  # the /b error burst, the latest that is not a bare restart
    assert window.incident is not None and window.incident["kind"] == "error_rate"
    assert (window.start, window.end) == A.incident_window(row["start"], row["end"], th)
    assert window.start == pd.Timestamp(T0 + 90 * M)  # 02:00 - 30 min
    assert window.title == "error rate on /b 2026-10-01 02:00 UTC" == incident_title(row)
    assert window.how.startswith("the most recent incident in the history")
    assert "30 min either side" in window.how
    # the command the review and `lsops incidents` print for that incident is this window's
    assert window.command == row["postmortem_command"]
    assert window.command == (
        "lsops report postmortem --start 2026-10-01T01:30:00Z --end 2026-10-01T03:30:00Z "
        "--title 'error rate on /b 2026-10-01 02:00 UTC'"
    )
    # restarts are never chosen: before the burst, the outage (its start off the minute grid)
    before = latest_incident_window(sqlite_store, th, last=T0 + 115 * M)
    assert before is not None and before.incident["kind"] == "no_answer"
    assert before.start == pd.Timestamp(T0 + 32 * M)  # 01:02:30 - 30 min, floored
    assert before.command == found.iloc[0]["postmortem_command"]
    assert before.title == incident_title(found.iloc[0]) == "no answer 2026-10-01 01:02 UTC"


def test_default_window_only_looks_back_30_days(sqlite_store: Store) -> None:
    outage_and_burst(sqlite_store)
    h = History(sqlite_store, start=T0 + timedelta(days=40))
    h.run(3, {"/a": (200, 20.0, 0)})
    assert latest_incident_window(sqlite_store, Thresholds()) is None
    window = postmortem_window(sqlite_store, Thresholds())
    last = pd.Timestamp(T0 + timedelta(days=40, minutes=10))
    assert window.how == "no window given and no incident found: the last 24 h of the history"
    assert (window.start, window.end) == (last - timedelta(hours=24), last + timedelta(seconds=1))
    assert window.title == "Last 24 hours of the history"
    assert latest_incident_window(sqlite_store, Thresholds(), lookback=timedelta(days=45))


def test_a_window_given_is_kept_as_given(sqlite_store: Store) -> None:
    th = Thresholds()
    given = postmortem_window(
        sqlite_store, th, start="2026-10-16T01:45Z", end="2026-10-16T03:25:00Z"
    )
    assert (given.start, given.end) == (
        pd.Timestamp("2026-10-16T01:45Z"),
        pd.Timestamp("2026-10-16T03:25Z"),
    )
    assert given.how == "the window given" and given.title == "Incident 2026-10-16 01:45 UTC"
    assert given.command == (
        "lsops report postmortem --start 2026-10-16T01:45:00Z --end 2026-10-16T03:25:00Z "
        f"--title {shlex.quote('Incident 2026-10-16 01:45 UTC')}"
    )
    start_only = postmortem_window(sqlite_store, th, start="2026-10-16T01:45Z", title="X")
    assert start_only.end - start_only.start == timedelta(hours=24) and start_only.title == "X"
    assert start_only.how == "start given; end = start + 24 h"
    end_only = postmortem_window(sqlite_store, th, end="2026-10-16T03:25Z")
    assert end_only.start == pd.Timestamp("2026-10-15T03:25Z")
    assert end_only.title == "Incident before 2026-10-16 03:25 UTC"


def test_title_given_replaces_the_incidents_name(sqlite_store: Store) -> None:
    outage_and_burst(sqlite_store)
    window = postmortem_window(sqlite_store, Thresholds(), title="Chat 503s")
    assert window.title == "Chat 503s" and window.start == pd.Timestamp(T0 + 90 * M)


def test_present_shows_the_window_analysis_chose(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        outage_and_burst(store)
        chosen = latest_incident_window(store, Thresholds())
    source = present.open_store(url)
    assert present.choose_window(source, Thresholds()) == chosen
    assert present.Window is IncidentWindow


def test_an_empty_store_gives_the_last_24_hours_before_now(tmp_path: Path) -> None:
    source = present.open_store(f"sqlite:///{tmp_path}/nope.sqlite")
    window = present.choose_window(source, Thresholds())
    assert window.how.startswith("no window given and no incident found")
    assert window.end - window.start == timedelta(hours=24, seconds=1)


def test_an_outage_ended_by_a_restart_counts_no_request_of_the_new_process(
    sqlite_store: Store,
) -> None:
    """Eight unanswered scrapes, then a restart 2.5 min before the next scrape: that
    scrape's requests came after the recovery (its counters start at the restart), so the
    impact window holds no request and eight of eight health checks without an answer."""
    h = History(sqlite_store)
    for _ in range(24):  # two healthy hours
        h.traffic("/copilot/chat", 100, 50.0).scrape()
    outage = h.t
    for _ in range(8):
        h.scrape(answer=False)
    h.restart(at=h.t - timedelta(seconds=150))
    h.traffic("/copilot/chat", 31, 50.0).scrape()  # after the restart
    for _ in range(12):
        h.traffic("/copilot/chat", 100, 50.0).scrape()
    pm = A.postmortem(sqlite_store, outage - timedelta(minutes=30), outage + timedelta(hours=1))
    assert (pm.impact_start, pm.impact_end) == (outage, outage + timedelta(minutes=40))
    assert pm.requests == 0 and pm.failed == 0
    assert (pm.no_answer, pm.observations) == (8, 8)
    assert any("began a new series" in n for n in pm.notes)
    said = present.postmortem.impact_sentence(pm.summary())
    assert "(40 min): no answer. No request was counted; 8 of 8 health checks" in said, said
    # the restart happened when the process says it started (History: 1 s before the
    # instant given), not when the next scrape saw it
    restarted = outage + timedelta(minutes=40) - timedelta(seconds=151)
    (row,) = pm.restarts.to_dict("records")
    assert (row["started"], row["ts"]) == (restarted, outage + timedelta(minutes=40))
    events = pm.timeline[pm.timeline["event"] == "reset"]
    assert list(events["ts"]) == [restarted]
    assert "seen by the scrape of 2026-10-01 02:40" in events["detail"].iloc[0]
