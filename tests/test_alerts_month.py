"""The monthly review's "Alerts of the month, by alert" (`alerts.report.month_alerts`):
the time firing counts an alert still firing up to the end of the month, or up to now
while the month runs, and says it is still firing; an episode resolved after the month
counts up to the end. The history is made by real evaluation rounds (a stub rule)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib.alerts import alert_settings, evaluate
from lsops_lib.alerts.report import month_alerts
from lsops_lib.store import Store
from tests.fixtures.alerts import Switch, alert_env, stub_alert

pytestmark = pytest.mark.timeout(120)

OCT, NOV = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _by_name(store: Store, now: datetime) -> dict[str, tuple[float, int, int]]:
    month = month_alerts(store, OCT, NOV, "default", now=now)
    return {r["name"]: (r["total_s"], r["fired"], r["still_firing"]) for r in month["by_name"]}


def test_an_alert_still_firing_counts_up_to_the_end_of_the_month_or_now(tmp_path: Path) -> None:
    settings, env = alert_env(tmp_path)
    cfg = alert_settings(settings, env=env)
    rule = Switch()
    probe, minor = stub_alert("probe"), stub_alert("minor", "warning")

    def at(when: datetime, *seen: object) -> None:
        rule.seen = list(seen)  # type: ignore[arg-type]
        evaluate(store, settings, now=when, alerts=cfg, rules={"probe": rule})

    with Store(settings.store_url) as store:
        # probe: 10 Oct 00:00 to 02:00, then from 30 Oct 00:00 on (never resolved)
        at(OCT + timedelta(days=9), probe)
        at(OCT + timedelta(days=9) + 2 * H)
        at(OCT + timedelta(days=29), probe)
        # the month still running, on 30 Oct at 06:00: 2 h + 6 h so far, still firing
        assert _by_name(store, OCT + timedelta(days=29) + 6 * H) == {"probe": (8 * 3600.0, 2, 1)}
        # minor: 31 Oct 22:00 to 1 Nov 01:00 (2 h of it in October)
        at(NOV - 2 * H, probe, minor)
        at(NOV + H, probe)
        # the review of October, run on 5 November: probe 2 h + 2 days to the month's end
        assert _by_name(store, NOV + timedelta(days=4)) == {
            "minor": (2 * 3600.0, 1, 0),
            "probe": ((2 + 48) * 3600.0, 2, 1),
        }


def test_the_review_table_says_which_alert_is_still_firing(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsops_lib.present import alerts as present_alerts
    from lsops_lib.present import display

    shown: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj: shown.append(obj.data))
    by_name = [
        {"name": "probe", "severity": "critical", "fired": 2, "total_s": 180000.0,
         "mean_resolve_s": 7200.0, "still_firing": 1, "before": 2},
        {"name": "minor", "severity": "warning", "fired": 1, "total_s": 7200.0,
         "mean_resolve_s": 10800.0, "still_firing": 0, "before": 0},
    ]  # fmt: skip
    figures = {"fired": 3, "pages": 2, "pages_per_week": 0.5, "by_name": by_name,
               "episodes": None, "uncaught": None}  # fmt: skip
    present_alerts.show_month_alerts(figures)
    table = next(m for m in shown if "Alerts of the month, by alert" in m)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert "still firing" in header
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in table.split("<tr")[2:]]
    column = header.index("still firing") - (len(header) - len(rows[0]))
    assert [r[column] for r in rows] == ["1", "0"]  # counts, 0 written (QA 23)
    before = header.index("fired before the month") - (len(header) - len(rows[0]))
    assert [r[before] for r in rows] == ["2", "0"]
