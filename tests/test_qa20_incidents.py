"""QA 20: `lsops incidents` and the postmortems it suggests.

- a log_burst's median hour is that of the 30 days before the window's end (from the first
  stored entry on), not of the window: the postmortem window `lsops incidents` suggests for
  a burst (3 hours, mostly the burst itself) finds that burst, also across a month's end;
- a burst cut by the window starts at the window's start, and its top pattern is counted
  over the same span as its total (the planted log's ledger is the truth);
- under `lsops --target NAME`, or LSOPS_TARGET, the suggested commands name the target;
- a memory climb that levelled off but is still above its middle is not "still climbing";
- the postmortem's baseline requests per hour are over the hours the history covers;
- the "no incidents" line keeps the seconds of its window, as the table's title does.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import analysis as A
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History, MiB
from tests.fixtures.sources import Pm2Log
from tests.fixtures.targets import TwoTargets

H = timedelta(hours=1)
LOGS_START = datetime(2026, 10, 30, tzinfo=UTC)
# error entries an hour: 2, but 30 in 10:00-12:00 of Oct 31 and 15 in 23:00-01:00 across
# the month's end (Oct 31 -> Nov 1), for three days
BURSTS = {
    LOGS_START + 34 * H: 30,
    LOGS_START + 35 * H: 30,
    LOGS_START + 47 * H: 15,
    LOGS_START + 48 * H: 15,
}


@pytest.fixture
def burst_store(sqlite_store: Store, tmp_path: Path) -> tuple[Store, Pm2Log]:
    """Three days of pm2 error log (entries spread over each hour) and of 30-minute scrapes."""
    log = Pm2Log(tmp_path)
    for hour in range(72):
        begin = LOGS_START + hour * H
        n = BURSTS.get(begin, 2)
        for k in range(n):
            log.write(f"❌ Express Error: query timeout ({k})", begin + k * (H / n))
        if hour == 35:  # one more pattern, in the second hour of the first burst
            log.write("❌ Express Error: pool exhausted", begin + timedelta(minutes=50))
    collect_logs(sqlite_store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
    h = History(sqlite_store, start=LOGS_START, step=timedelta(minutes=30))
    h.run(72 * 2 + 1, {"/a": (50, 20.0, 0)})
    return sqlite_store, log


def _bursts(store: Store, start: datetime, end: datetime) -> pd.DataFrame:
    return A.incidents(store, start, end, Thresholds(), target="default", kinds=("log_burst",))


def test_the_postmortem_a_log_burst_suggests_finds_that_burst(burst_store) -> None:
    store, _ = burst_store
    listed = _bursts(store, LOGS_START, LOGS_START + 72 * H)
    assert [(r.start, r.end) for r in listed.itertuples()] == [
        (LOGS_START + 34 * H, LOGS_START + 36 * H),
        (LOGS_START + 47 * H, LOGS_START + 49 * H),  # across 2026-11-01 00:00
    ]
    for row in listed.to_dict("records"):
        start, end = A.incident_window(row["start"], row["end"], Thresholds())
        assert end - start == 3 * H  # mostly the burst: its own median hour is the burst's
        pm = A.postmortem(store, start, end, Thresholds(), target="default")
        assert (pm.impact_start, pm.impact_end) == (row["start"], row["end"])
        assert "log_burst" in set(pm.incidents["kind"])
        # the median hour is the history's quiet one: 2 entries
        assert "the median hour 2 of the 72 hours to 2026-11-02 00:00 UTC" in row["detail"]


def test_a_burst_cut_by_the_window_starts_there_and_counts_what_is_inside(burst_store) -> None:
    store, log = burst_store
    since = LOGS_START + 34 * H + timedelta(minutes=30)
    (cut,) = _bursts(store, since, LOGS_START + 40 * H).to_dict("records")
    assert (cut["start"], cut["end"]) == (since, LOGS_START + 36 * H)
    inside = [w for w in log.ledger if since <= w.ts < LOGS_START + 36 * H]
    top = sum("query timeout" in w.text for w in inside)
    assert cut["detail"].startswith(f"{len(inside)} error log entries in 1 h 30 min (0 fatal")
    assert f"top pattern ({top}): ❌ Express Error: query timeout" in cut["detail"]
    assert top < len(inside) == 15 + 30 + 1
    # cut at the end: it ends there, ongoing, and counts only what came before
    until = LOGS_START + 34 * H + timedelta(minutes=20)
    (end,) = _bursts(store, LOGS_START, until).to_dict("records")
    assert (end["start"], end["end"], end["ongoing"]) == (LOGS_START + 34 * H, until, True)
    before = [w for w in log.ledger if LOGS_START + 34 * H <= w.ts < until]
    assert end["detail"].startswith(f"{len(before)} error log entries in 20 min")
    assert f"top pattern ({len(before)}):" in end["detail"]


def _commands(args: list[str], env: dict[str, str]) -> list[str]:
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows
    return [r["postmortem_command"] for r in rows]


def test_the_commands_name_a_target_chosen_by_the_flag_or_the_environment(
    two_targets: TwoTargets, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    plain = str(two_targets.config(tmp_path))  # alpha first: the default
    incidents = ["incidents", *two_targets.span]
    for args, env in [
        (["--config", plain, "--target", "bravo"], lsops_env),
        (["--config", plain], {**lsops_env, "LSOPS_TARGET": "bravo"}),
    ]:
        for command in _commands([*args, *incidents], env):
            words = shlex.split(command)
            assert words[:4] == ["lsops", "--target", "bravo", "report"], command
            assert words[4:6] == ["postmortem", "--start"]
    # the file's default_target: the same file names it again, the command needs no flag
    chosen = str(two_targets.config(tmp_path, default="bravo"))
    for command in _commands(["--config", chosen, *incidents], lsops_env):
        assert command.startswith("lsops report postmortem --start "), command


def test_the_window_command_names_its_target() -> None:
    window = A.IncidentWindow(pd.Timestamp(T0), pd.Timestamp(T0 + H), "x y", "given")
    assert window.command.startswith("lsops report postmortem ")
    named = A.IncidentWindow(pd.Timestamp(T0), pd.Timestamp(T0 + H), "x", "given", target="a b")
    assert shlex.split(named.command)[:4] == ["lsops", "--target", "a b", "report"]


def test_a_climb_that_levelled_off_is_not_said_to_climb_still(sqlite_store: Store) -> None:
    """RSS flat at 100 MiB for 2 h, climbing 10 MiB/h for 4 h, then flat at 140 MiB for
    3 h (above the middle of the climb, 120 MiB, no restart): ongoing, levelled off."""
    h = History(sqlite_store)
    climb = [int((100 + 10 * (i + 1) / 12) * MiB) for i in range(48)]
    for value in [100 * MiB] * 24 + climb + [140 * MiB] * 36:
        h.scrape(rss=value)
    (row,) = A.incidents(sqlite_store, None, None, Thresholds(), kinds=("memory_climb",)).to_dict(
        "records"
    )
    assert row["ongoing"] and "still climbing" not in row["detail"]
    assert "levelled off at 2026-10-01 05:55 UTC" in row["detail"]  # the 72nd scrape: 140 MiB
    assert row["detail"].endswith("(the middle of the climb) at the last observation")
    # still climbing at the last scrape: says so
    for value in [int((140 + 10 * (i + 1) / 12) * MiB) for i in range(36)]:
        h.scrape(rss=value)
    found = A.incidents(sqlite_store, None, None, Thresholds(), kinds=("memory_climb",))
    assert found.iloc[-1]["detail"].endswith("; still climbing at the last observation")


def test_the_baseline_requests_per_hour_are_over_the_hours_the_history_covers(
    sqlite_store: Store,
) -> None:
    """1,200 requests an hour from T0 (100 every 5 minutes); the postmortem of 10:00-11:00
    has a 24 h baseline of which the history covers 10 h."""
    h = History(sqlite_store)
    h.scrape()
    h.run(12 * 12, {"/a": (100, 20.0, 0)})
    pm = A.postmortem(sqlite_store, T0 + 10 * H, T0 + 11 * H, Thresholds())
    rates = pm.comparison.set_index("metric").loc["requests per hour"]
    # the baseline's scrapes (00:05 .. 09:55; the one of 10:00 is the window's) hold 119 x
    # 100 requests, over the 9 h 55 min their deltas cover (from the first scrape, a
    # baseline counting nothing, to 09:55; not 24 h, nor 10 h)
    assert rates["baseline"] == pytest.approx(119 * 100 / (9 + 55 / 60))
    assert rates["window"] == pytest.approx(1200.0)
    assert any("covers 9 h 55 min of the" in n for n in pm.notes), pm.notes


def test_the_no_incidents_line_keeps_the_seconds(
    sqlite_store: Store, lsops_env: dict[str, str]
) -> None:
    History(sqlite_store).run(3)
    env = {**lsops_env, "LSOPS_STORE": sqlite_store.url}
    args = ["incidents", "--since", "2026-10-01T00:04:59Z", "--until", "2026-10-01T00:09:59Z"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert (
        "no incidents of default between 2026-10-01 00:04:59 UTC and 2026-10-01 00:09:59 UTC"
        in " ".join(result.output.split())
    )


def test_a_review_of_a_chosen_target_names_it_in_its_postmortem_commands(
    two_targets: TwoTargets,
) -> None:
    """The monthly review of bravo: the postmortem commands it lists read bravo, as the
    ones of `lsops --target bravo incidents` do."""
    from lsops_lib.analysis import monthly_review

    month = two_targets.span[1][:7]  # --since's month
    with Store(two_targets.store_url) as store:
        review = monthly_review(store, month, target="bravo")
    commands = list(review.incidents["postmortem_command"])
    assert commands, "bravo's six hours hold incidents"
    for command in commands:
        assert shlex.split(command)[:4] == ["lsops", "--target", "bravo", "report"], command


def test_a_window_without_observations_says_breaches_unknown(sqlite_store: Store) -> None:
    """A postmortem of an hour before the history's first scrape: nothing was observed, so
    "no threshold breach found" would read as a quiet hour."""
    h = History(sqlite_store)
    h.scrape()
    h.run(12, {"/a": (100, 20.0, 0)})
    pm = A.postmortem(sqlite_store, T0 - 3 * H, T0 - 2 * H, Thresholds())
    assert pm.impact_start is None
    assert any("no observation collected in the window" in n for n in pm.notes), pm.notes
    assert not any("no threshold breach found" in n for n in pm.notes)
    # with observations and no breach, the note stays what it was
    quiet = A.postmortem(sqlite_store, T0 + timedelta(minutes=10), T0 + H, Thresholds())
    assert any("no threshold breach found" in n for n in quiet.notes), quiet.notes


def test_an_outage_s_impact_is_not_widened_to_the_hour_of_its_log_burst(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """An outage of 11:10-11:40 (the API unanswered: its scrapes failed) whose errors fill the
    log (a burst in the 11:00 hour, 2 entries in the other hours of two days): the impact is
    the outage the scrapes measured, the burst listed among the incidents, not the whole
    11:00-12:00 hour."""
    start = LOGS_START
    log = Pm2Log(tmp_path)
    for hour in range(48):
        begin = start + hour * H
        n = 30 if hour == 35 else 2
        for k in range(n):
            log.write(f"❌ Express Error: upstream gone ({k})", begin + k * (H / n))
    collect_logs(sqlite_store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
    h = History(sqlite_store, start=start + 33 * H, step=timedelta(minutes=5))
    outage = (start + 35 * H + timedelta(minutes=10), start + 35 * H + timedelta(minutes=40))
    for i in range(12 * 4 + 1):  # 09:00 .. 13:00 every 5 minutes
        at = start + 33 * H + i * timedelta(minutes=5)
        h.traffic("/a", 50, 20.0)
        h.scrape(answer=not outage[0] <= at < outage[1], at=at)
    pm = A.postmortem(sqlite_store, start + 34 * H + timedelta(minutes=30), start + 36 * H + H / 2)
    kinds = set(pm.incidents["kind"])
    assert {"no_answer", "log_burst"} <= kinds, kinds
    no_answer = pm.incidents[pm.incidents["kind"] == "no_answer"].iloc[0]
    assert (pm.impact_start, pm.impact_end) == (no_answer["start"], no_answer["end"])
    assert pm.impact_start == pd.Timestamp(outage[0])  # the first unanswered scrape
    assert pm.impact_end - pm.impact_start < H  # not the burst's whole hour
