"""Alerts, QA round 18: the monthly review at a month boundary lists every alert firing
within the month (an episode begun before it too, its time clipped to the month) and an
incident carried over from the month before is caught by the alert firing for it; a new
store's burn-rate windows are covered by the time its scrapes span (the first scrape
covers nothing before it), so the page windows are judged after 45 minutes (75 % of the
hour), not after 40."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from lsops_lib.alerts import alert_settings, evaluate, parse_alert_settings
from lsops_lib.alerts.burnrate import objective_reads, targets_reads
from lsops_lib.alerts.report import month_alerts
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.store import Store
from tests.fixtures.alerts import Receiver, Switch
from tests.fixtures.alerts import alert_env as _env
from tests.fixtures.alerts import stub_alert as _alert
from tests.fixtures.store import at, make_scrape

pytestmark = pytest.mark.timeout(180)

OCT, NOV = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
DEC, JAN = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
H, DAY = timedelta(hours=1), timedelta(days=1)
WEBHOOK = '[alerts.notifiers.chat]\nkind = "webhook"\nurl_env = "CHAT_URL"\n'


# --- 1. the monthly review at a month boundary ----------------------------------------------


def _incidents(*spans: tuple[datetime, datetime, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"kind": k, "start": pd.Timestamp(a), "end": pd.Timestamp(b), "endpoint": None}
         for a, b, k in spans]
    )  # fmt: skip


def test_the_month_lists_the_alerts_firing_within_it_begun_before_it_too(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    settings, _ = _env(tmp_path, WEBHOOK)
    cfg = parse_alert_settings(
        {"notifiers": {"chat": {"kind": "webhook", "url_env": "CHAT_URL"}}},
        env={"CHAT_URL": webhook_receiver.url},
    )
    rule = Switch()
    long, probe, late = _alert("long", "warning"), _alert("probe"), _alert("late")

    with Store(settings.store_url) as store:

        def round_(when: datetime, *seen: object) -> None:
            rule.seen = list(seen)  # type: ignore[arg-type]
            evaluate(store, settings, now=when, alerts=cfg, rules={"probe": rule})

        # long: a ticket from 20 Oct on, never resolved (firing through November);
        # probe: an outage page 31 Oct 23:05 to 1 Nov 02:00 (55 min in October, 2 h in
        # November); late: a page on 15 Nov 10:00 to 10:30
        round_(OCT + 19 * DAY, long)
        round_(NOV - timedelta(minutes=55), long, probe)
        round_(NOV + 2 * H, long)
        round_(NOV + 14 * DAY + 10 * H, long, late)
        round_(NOV + 14 * DAY + 10.5 * H, long)

        now = DEC + 2 * DAY  # the reviews run on 3 December
        october = month_alerts(
            store, OCT, NOV, "default",
            _incidents((NOV - H, NOV - timedelta(minutes=5), "no_answer")), now=now,
        )  # fmt: skip
        # the incidents of November are cut at its start: the outage's rest begins at 00:00
        carried = (NOV, NOV + 2 * H, "no_answer")
        meanwhile = (NOV + 9 * DAY + 4 * H, NOV + 9 * DAY + 4.3 * H, "latency")
        paged = (NOV + 14 * DAY + 9.9 * H, NOV + 14 * DAY + 10.4 * H, "error_rate")
        november = month_alerts(
            store, NOV, DEC, "default", _incidents(carried, meanwhile, paged), now=now
        )
        december = month_alerts(store, DEC, JAN, "default", None, now=now)

    def rows(month: dict) -> dict[str, tuple[int, float, int]]:  # type: ignore[type-arg]
        return {r["name"]: (r["fired"], r["total_s"], r["still_firing"]) for r in month["by_name"]}

    def before(month: dict) -> dict[str, int]:  # type: ignore[type-arg]
        return {r["name"]: r["before"] for r in month["by_name"]}

    # October: long 12 days to the month's end, probe 55 min; both begun in it
    assert rows(october) == {"long": (1, 12 * 86400.0, 1), "probe": (1, 55 * 60.0, 0)}
    assert (october["fired"], october["pages"]) == (2, 1)
    assert october["uncaught"].empty
    # November: long the whole month (30 days), probe its first 2 h, late 30 min; only
    # late began in it (one page: the probe's was October's)
    assert rows(november) == {
        "late": (1, 30 * 60.0, 0),
        "long": (0, 30 * 86400.0, 1),
        "probe": (0, 2 * 3600.0, 0),
    }
    assert before(november) == {"late": 0, "long": 1, "probe": 1}
    assert before(october) == {"long": 0, "probe": 0}
    assert (november["fired"], november["pages"]) == (1, 1)
    assert len(november["episodes"]) == 3
    by = {r["name"]: r for r in november["by_name"]}
    assert by["probe"]["mean_resolve_s"] is None and by["late"]["mean_resolve_s"] == 1800.0
    # the outage's November part was caught by probe (firing since 23:05); the latency
    # incident of 10 Nov by nothing: the ticket left firing since October caught nothing new
    uncaught = november["uncaught"]
    assert [(r["kind"], r["start"]) for r in uncaught.to_dict("records")] == [
        ("latency", pd.Timestamp(meanwhile[0]))
    ]
    # December, reviewed on its 3rd: long still firing, 2 days of it so far
    assert rows(december) == {"long": (0, 2 * 86400.0, 1)}
    assert december["fired"] == 0
    # and the review says so: not "No alert fired this month" while one fires all along
    from lsops_lib.present import alerts as shown_alerts

    said: list[str] = []
    real = shown_alerts.show_text, shown_alerts.show_table
    shown_alerts.show_text = said.append  # type: ignore[assignment]
    shown_alerts.show_table = lambda frame, title, *a, **kw: said.append(title)  # type: ignore[assignment]
    try:
        shown_alerts.show_month_alerts(december)
    finally:
        shown_alerts.show_text, shown_alerts.show_table = real
    assert said[0] == (
        "Alerts: 0 fired this month (1 alert fired before the month and still fired in it), "
        "0 paged someone (0 pages a week)."
    ), said
    assert "Alerts of the month, by alert" in said


# --- 2. a new store's coverage ----------------------------------------------------------------


def test_a_new_store_covers_what_its_scrapes_span(store: Store) -> None:
    # a new store, scraped every 5 min from minute 0: at minute 25 its six scrapes span
    # 25 min of the hour (the first covers nothing before it), all 5 min of (20, 25]
    for minute in range(0, 26, 5):
        store.record_scrape(make_scrape(minute, None))
    windows = {300.0, 3600.0}
    reads = objective_reads(store, "default", at(25), windows, Thresholds())
    batched, _ = targets_reads(store, ["default"], at(25), windows, Thresholds())
    for got in (reads, batched["default"]):
        assert got["availability"][3600.0].coverage == pytest.approx(25 / 60)
        assert got["availability"][300.0].coverage == 1.0
    # a window from a scrape before it: the first scrape in it covers from the window's
    # start; a window ending between scrapes (a check run by a cron of its own), the last
    # scrape covers up to its end too, at most one interval
    store.record_scrape(make_scrape(-35, None))
    between = objective_reads(store, "default", at(27), {300.0, 1800.0}, Thresholds())
    # (-3, 27]: the scrape at 0 covering (-3, 0], 0..25 the 25 min between them, the one at
    # 25 covering (25, 27]: 3 + 25 + 2 = 30 min of 30
    assert between["availability"][1800.0].coverage == pytest.approx(30 / 30)
    # (22, 27]: the scrape at 25 covers (22, 25] (one at 20 before it) and (25, 27]: all 5
    assert between["availability"][300.0].coverage == pytest.approx(1.0)
    late = objective_reads(store, "default", at(40), {300.0}, Thresholds())
    # (35, 40]: no scrape since 25: nothing covered (the collector stopped)
    assert late["availability"][300.0].coverage == 0.0


def _status(store: Store, minute: int) -> tuple[str, str]:
    cfg = parse_alert_settings({}, env={})
    settings = load_settings(env={"LSOPS_STORE": store._url}, cwd=Path("/"))
    result = evaluate(store, settings, now=at(minute), alerts=cfg)
    (rule,) = [r for r in result["rules"] if r["rule"] == "slo_availability_page"]
    return rule["status"], rule.get("note") or ""


def test_a_new_store_judges_the_page_windows_after_45_minutes(store: Store) -> None:
    for minute in range(0, 41, 5):
        store.record_scrape(make_scrape(minute, None))
    status, note = _status(store, 40)  # 40 min of the hour: 66.7 % < 75 %
    assert status == "skipped"
    assert "cover 66.7 % of 1 h 00 min" in note, note
    store.record_scrape(make_scrape(45, None))
    assert _status(store, 45)[0] == "evaluated"  # 45 min: 75 % of the hour


def test_a_month_whose_only_alert_is_still_firing(tmp_path: Path) -> None:
    settings, env = _env(tmp_path)
    rule = Switch()
    rule.seen = [_alert("probe")]
    with Store(settings.store_url) as store:
        evaluate(store, settings, now=DEC + DAY, alerts=alert_settings(settings, env=env),
                 rules={"probe": rule})  # fmt: skip
        december = month_alerts(store, DEC, JAN, "default", None, now=DEC + 2 * DAY)
    (row,) = december["by_name"]
    assert (row["fired"], row["total_s"], row["still_firing"]) == (1, 86400.0, 1)
    assert bool(december["episodes"]["ongoing"].iloc[0])
