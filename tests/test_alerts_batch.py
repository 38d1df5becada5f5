"""The alert round's batched reads (`burnrate.targets_reads`, `rules.prefetch`): one read
of every target's scrapes and counter deltas gives each target the windows (and the last
day's scrapes) its own reads give, checked against hand counts from the scrapes written,
for targets with different data: gaps, a restart, a degraded answer, slow windows, only
unanswered scrapes, scrapes older than every window, and a target never scraped; in a
store of rows and in one that packs (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from lsops_lib.alerts import evaluate, evaluate_targets, parse_alert_settings
from lsops_lib.alerts.burnrate import LATEST_COLUMNS, objective_reads, targets_reads
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.models import ResponseTimes
from lsops_lib.store import Store, pack
from lsops_lib.store.sources import record_source_run
from lsops_lib.times import to_ms
from tests.fixtures.store import at, make_scrape

pytestmark = pytest.mark.timeout(180)

FIVE, HALF, HOUR = 300.0, 1800.0, 3600.0
NOW = at(60)
TARGETS = ["a", "b", "c", "d", "e"]  # e: never scraped


def _slow(scrape, p95: float):  # type: ignore[no-untyped-def]
    """The scrape with its window's p95 at `p95` ms (p99 and max above it)."""
    rt = ResponseTimes(count=10, avg=12.0, min=1.0, max=p95 + 100, p50=30.0, p95=p95,
                       p99=p95 + 50)  # fmt: skip
    return dataclasses.replace(
        scrape, metrics=dataclasses.replace(scrape.metrics, response_times=rt)
    )


def _write(store: Store) -> None:
    # a: every 5 min, 45 and 50 unanswered; /projects +100 a scrape; 5 errors in each
    #    interval closing after minute 30 (the one closing at 55 spans the gap: 15)
    for minute in range(0, 61, 5):
        if minute in (45, 50):
            store.record_scrape(make_scrape(minute, None, target="a"))
            continue
        k = minute // 5
        count, errors = 100 * (k + 1), 5 * max(0, k - 6)
        store.record_scrape(
            make_scrape(minute, {"/projects": (count, 20.0, errors / count)}, target="a")
        )
    # b: the collector stopped from 10 to 40; the API restarted at 38 (new uptime.start)
    #    and its counters began again; 55 answered DEGRADED; 45 and 60 slow (p95 900 ms)
    restart = to_ms(at(38))
    for minute, count, errors in [(0, 50, 0), (5, 100, 0), (10, 150, 0)]:
        store.record_scrape(
            make_scrape(minute, {"/projects": (count, 20.0, errors / count)}, target="b")
        )
    for minute, count, errors in [(40, 20, 0), (45, 40, 0), (50, 60, 2), (55, 80, 2), (60, 100, 4)]:
        scrape = make_scrape(
            minute,
            {"/projects": (count, 20.0, errors / count)},
            target="b",
            uptime_start=restart,
            status="DEGRADED" if minute == 55 else "OK",
        )
        store.record_scrape(_slow(scrape, 900.0) if minute in (45, 60) else scrape)
    # c: never answered, every minute from 54 (its own collection interval: 1 min)
    for minute in range(54, 61):
        store.record_scrape(make_scrape(minute, None, target="c"))
    # d: one answer, long before every window (and the last day)
    store.record_scrape(make_scrape(-2000, {"/projects": (10, 20.0, 0.0)}, target="d"))


# (bad, total) per objective and window, and the coverage per window, counted by hand
# from the scrapes above (windows (now - w, now], now = minute 60; the collection
# interval is the median gap of a target's scrapes in the hour: 5 min, c's 1 min)
EXPECTED = {
    "a": {
        # hour: minutes 5..60 (12 scrapes, 45 and 50 unanswered); deltas 5..40 +100 each,
        # 55 +300 (the gap), 60 +100 = 1200; errors 5 (35) + 5 (40) + 15 (55) + 5 (60)
        "availability": {FIVE: (0, 1), HALF: (2, 6), HOUR: (2, 12)},
        "error_rate": {FIVE: (5, 100), HALF: (30, 600), HOUR: (30, 1200)},
        "latency": {FIVE: (0, 1), HALF: (0, 4), HOUR: (0, 10)},
        "coverage": {FIVE: 1.0, HALF: 1.0, HOUR: 1.0},
    },
    "b": {
        # hour: 5, 10, 40..60 (7 scrapes, 55 degraded); deltas 5 +50, 10 +50, 40 the
        # restart counts whole (20), then +20 each; errors 2 (50) + 0 (55) + 2 (60)
        "availability": {FIVE: (0, 1), HALF: (1, 5), HOUR: (1, 7)},
        "error_rate": {FIVE: (2, 20), HALF: (4, 100), HOUR: (4, 200)},
        "latency": {FIVE: (1, 1), HALF: (2, 5), HOUR: (2, 7)},
        "coverage": {FIVE: 1.0, HALF: 5 * 300 / HALF, HOUR: 7 * 300 / HOUR},
    },
    "c": {  # minutes 54..60, one apart: 5 of them in (55, 60]
        "availability": {FIVE: (5, 5), HALF: (7, 7), HOUR: (7, 7)},
        "error_rate": {FIVE: (0, 0), HALF: (0, 0), HOUR: (0, 0)},
        "latency": {FIVE: (0, 0), HALF: (0, 0), HOUR: (0, 0)},
        "coverage": {
            FIVE: 1.0,
            HALF: 6 * 60 / HALF,
            HOUR: 6 * 60 / HOUR,
        },  # c: no scrape before its first
    },
    **{
        t: {
            "availability": {FIVE: (0, 0), HALF: (0, 0), HOUR: (0, 0)},
            "error_rate": {FIVE: (0, 0), HALF: (0, 0), HOUR: (0, 0)},
            "latency": {FIVE: (0, 0), HALF: (0, 0), HOUR: (0, 0)},
            "coverage": {FIVE: 0.0, HALF: 0.0, HOUR: 0.0},
        }
        for t in ("d", "e")
    },
}
SLO = {"availability": 0.995, "error_rate": 0.99, "latency": 0.99}
# the last day's scrapes per target: how many, and how many unanswered
LATEST = {"a": (13, 2), "b": (8, 0), "c": (7, 7), "d": (0, 0), "e": (0, 0)}


def _check(reads: dict, target: str) -> None:  # type: ignore[type-arg]
    want = EXPECTED[target]
    for objective in ("availability", "error_rate", "latency"):
        for w, (bad, total) in want[objective].items():
            got = reads[objective][w]
            assert (got.bad, got.total) == (bad, total), (target, objective, w)
            assert got.coverage == pytest.approx(want["coverage"][w]), (target, objective, w)
            thresholds = Thresholds()
            slo = {
                "availability": thresholds.availability_slo,
                "error_rate": 1.0 - thresholds.error_rate,
                "latency": thresholds.latency_slo,
            }[objective]
            if total:
                assert got.burn == pytest.approx((bad / total) / (1 - slo))
            else:
                assert math.isnan(got.burn)


@pytest.mark.parametrize("packed", [False, True], ids=["rows", "packed"])
def test_one_read_for_all_targets_gives_each_target_its_own_windows(
    store_url: str, monkeypatch: pytest.MonkeyPatch, packed: bool
) -> None:
    # packed: periods of 20 min, all but the current one packed into blocks
    monkeypatch.setenv(pack.PERIOD_ENV, str(20 * 60_000 if packed else 0))
    with Store(store_url) as store:
        _write(store)
        windows = {FIVE, HALF, HOUR}
        reads, latest = targets_reads(store, TARGETS, NOW, windows, Thresholds())
        assert sorted(reads) == sorted(latest) == sorted(TARGETS)
        for target in TARGETS:
            _check(reads[target], target)
            # ... as each target's own read gives them (the path a single target takes)
            alone = objective_reads(store, target, NOW, windows, Thresholds())
            for objective, by_window in alone.items():
                for w, read in by_window.items():
                    got = reads[target][objective][w]
                    assert (got.bad, got.total, got.coverage) == (read.bad, read.total,
                                                                   read.coverage)  # fmt: skip
            # the last day's scrapes: by hand, and as `store.scrapes` reads them alone
            n, unanswered = LATEST[target]
            frame = latest[target]
            assert len(frame) == n
            assert int(frame["health_status"].isna().sum()) == unanswered
            own = store.scrapes(
                NOW - timedelta(days=1),
                NOW + timedelta(milliseconds=1),
                target=target,
                columns=LATEST_COLUMNS,
            )
            if n:
                pd.testing.assert_frame_equal(frame, own)
                assert frame["ts"].iloc[-1] == pd.Timestamp(at(60))
        # a window longer than the last day: both spans come from the one read
        long_reads, long_latest = targets_reads(store, ["a", "d"], NOW, {FIVE, 3 * 86400.0},
                                                Thresholds())  # fmt: skip
        assert (long_reads["d"]["availability"][3 * 86400.0].total,
                len(long_latest["d"])) == (1, 0)  # fmt: skip
        assert long_reads["a"]["availability"][3 * 86400.0].total == 13


def test_the_collectors_round_judges_every_target_as_alone(store: Store) -> None:
    # evaluate_targets (the batched reads) against evaluate of each target (its own
    # reads): the same rule outcomes (status, alerts, note), target by target; a's logs
    # and b's Sentry issues were collected (twice), so those rules judge them
    _write(store)
    for target, source in [("a", "logs"), ("b", "sentry"), ("b", "sentry"), ("b", "pm2")]:
        record_source_run(store, target, source, at(59), ok=True, items=0, error=None)
    settings = load_settings(env={"LSOPS_STORE": store._url}, cwd=Path("/"))
    batched = evaluate_targets(store, settings, TARGETS, now=NOW)
    assert [r["target"] for r in batched] == TARGETS
    cfg = parse_alert_settings({}, env={})
    for result in batched:
        alone = evaluate(store, settings, target=result["target"], now=NOW, alerts=cfg)
        assert result["rules"] == alone["rules"]
    rules = {r["target"]: {x["rule"]: x for x in r["rules"]} for r in batched}
    # by hand: c never answered its 7 scrapes, a and b answered the last; d and e have no
    # scrape in the last day; availability page: c burns 200x over 5 min and 1 h, but the
    # hour is covered 12 % (< 75 %) and 6 h less: not judged; a: 2 bad of 12 over the
    # hour but none over 5 min: no alert
    assert [rules[t]["api_down"]["alerts"] for t in "abc"] == [0, 0, 1]
    assert rules["d"]["api_down"]["status"] == rules["e"]["api_down"]["status"] == "skipped"
    assert rules["c"]["slo_availability_page"]["status"] == "skipped"
    judged = {t: {r for r in ("sentry_fatal", "log_error_pattern")
                  if rules[t][r]["status"] == "evaluated"} for t in "abc"}  # fmt: skip
    assert judged == {"a": {"log_error_pattern"}, "b": {"sentry_fatal"}, "c": set()}
    assert rules["a"]["slo_availability_page"] == {
        "rule": "slo_availability_page", "status": "evaluated", "alerts": 0, "note": None
    }  # fmt: skip
