"""QA 18 (SLO text): the budgets' time figures of a month in progress are over the part of
the month that has passed, and say so; thresholds that are not whole percents (0.5 %,
2.5 %, 99.95 %) are written as they are, never rounded to "0 %" or "100.0 %".

The store is a real SQLite Store filled with known scrapes (tests.fixtures.analysis); the
CLI runs on it through click's runner.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib import analysis as A
from lsops_lib import fmt, present
from lsops_lib.cli import main
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.store import Store
from tests.fixtures.analysis import History
from tests.test_monthly_review import shown as shown  # noqa: PLC0414 - the fixture

pytestmark = pytest.mark.timeout(300)

# valid fractions that are not whole percents (QA's lsops.toml)
TOML = (
    "[thresholds]\nerror_rate = 0.005\nerror_rate_warn = 0.025\n"
    "availability_slo = 0.9995\nlatency_slo = 0.995\n"
)
EXACT = replace(
    Thresholds(),
    error_rate=0.005,
    error_rate_warn=0.025,
    availability_slo=0.9995,
    latency_slo=0.995,
)


def _text(markup: list[str]) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup("".join(markup), "html.parser").get_text(" ")


# --- 1. a month in progress: time figures over the part that has passed -------------------------

MARCH = datetime(2099, 3, 1, tzinfo=UTC)  # ahead of any clock: the history says where it ends


def test_the_time_figures_of_a_month_in_progress_are_over_the_time_passed(
    sqlite_store: Store, shown: list
) -> None:
    """A day of 5-min scrapes from March 1st 2099 00:00 to March 2nd 00:00 (289), the last
    70 minutes DEGRADED (the 14 scrapes after 22:50). The month is in progress: 24 h of it
    have passed, so 14 / 289 bad observations spend 14 / 289 x 24 h (1.16 h), within the
    24 h; over the whole month (31 days) it was 36 h, longer than the time passed."""
    h = History(sqlite_store, start=MARCH)
    last = MARCH + timedelta(days=1)
    while h.t <= last:
        h.traffic("/a", 100, 40.0, 1)
        h.scrape("DEGRADED" if h.t > last - timedelta(minutes=70) else "OK")
    review = A.monthly_review(sqlite_store, "2099-03", Thresholds())
    b = review.error_budget
    assert (b["total"], b["bad"]) == (289, 14)
    day = 86400.0
    assert b["period_s"] == day and review.data_quality["elapsed_s"] == day
    assert b["budget_s"] == pytest.approx((1 - 0.995) * day)
    assert b["spent_s"] == pytest.approx(14 / 289 * day) and b["spent_s"] <= day
    r = review.request_budget  # 1 error in 100 requests per scrape (the first counts none)
    assert r["spent_s"] == pytest.approx(r["bad"] / r["total"] * day)
    assert review.latency_budget["period_s"] == day
    assert review.summary()["data_quality"]["elapsed_s"] == day

    frame = present.monthly.budget_frame(review).set_index("SLO")
    assert frame.loc["availability (health OK)", "spent (time, so far)"] == "1.2 h"
    assert frame.loc["availability (health OK)", "budget (time, so far)"] == "0.1 h"
    present.monthly.show_summary(review, present.StoreSource(sqlite_store, "sqlite:///m", True))
    page = _text(shown)
    assert "of the month so far" in page
    assert (
        "March 2099 is in progress: the time figures (budget, spent) are over the 1 d 0 h "
        "passed until 2099-03-02 00:00 UTC, not the whole month." in page
    )
    # a month that is over keeps its length and its plain columns
    over = replace(review, data_quality={**review.data_quality, "elapsed_s": 31 * day})
    assert "spent (time)" in present.monthly.budget_frame(over).columns
    assert present.monthly._in_progress(over) == ""


# --- 2. thresholds written as they are --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9995, "99.95 %"),
        (0.005, "0.5 %"),
        (0.025, "2.5 %"),
        (0.01, "1 %"),
        (0.995, "99.5 %"),
        (0.7, "70 %"),
        (0.999999, "99.9999 %"),
        (0.0, "0 %"),
        (1.0, "100 %"),
        (None, fmt.DASH),
    ],
)
def test_a_threshold_is_written_with_the_digits_it_needs(value: Any, text: str) -> None:
    assert fmt.exact_pct(value) == text


def _errors_for_an_hour(store: Store) -> History:
    """3 h of 5-min scrapes from T0, /a 100 requests a scrape; in the second hour 4 errors a
    scrape (44 of 1,200: 3.7 %, above a 2.5 % warning level even at its Wilson lower bound,
    below the 5 % default one); cache 80 / 20 a scrape."""
    h = History(store)
    for i in range(37):
        h.traffic("/a", 100, 40.0, 4 if 12 < i <= 24 else 0).cache(80, 20)
        h.scrape()
    return h


def test_the_review_writes_its_thresholds_as_they_are(sqlite_store: Store, shown: list) -> None:
    """Before: "health OK in at least 100.0% of observations", "error rate < 0%", "in at
    least 100% of time slices", header "availability >= 100.0 % ...; error rate < 0 %"."""
    _errors_for_an_hour(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10", EXACT)
    targets = review.targets.set_index("key")["target"]
    assert targets["availability"] == "health OK in at least 99.95 % of observations"
    assert targets["error_rate"] == "error rate < 0.5 %"
    assert targets["latency"] == "reported p95 < 500 ms in at least 99.5 % of time slices"
    assert targets["cache_hit_rate"] == "cache hit rate > 70 %"
    frame = present.monthly.budget_frame(review).set_index("SLO")["objective"]
    assert frame.to_dict() == {
        "availability (health OK)": "99.95 %",
        "requests without error": "99.5 %",
        "latency (time slices)": "99.5 %",
    }
    source = present.StoreSource(sqlite_store, "sqlite:///m", True)
    present.monthly.show_summary(review, source)
    assert "Error budget of the availability SLO (99.95 % of health observations OK)" in (
        _text(shown)
    )
    shown.clear()
    settings = load_settings(None, env={})
    settings = replace(settings, thresholds=EXACT)
    present.show_review_header("2026-10", source, settings)
    header = _text(shown)
    assert "availability >= 99.95 % of health checks OK; error rate < 0.5 %;" in header
    assert "in >= 99.5 % of time slices" in header
    shown.clear()
    present.monthly.show_latency(review.latency, review.daily, EXACT)
    assert "at least 99.5 % of slices" in _text(shown)
    shown.clear()
    memory = replace(review.memory, growth_threshold=0.025)
    present.monthly.show_memory(memory, "2026-10")
    assert "faster than 2.5 % an hour" in _text(shown)
    found = A.incidents(sqlite_store, None, None, EXACT)
    detail = found.loc[found["kind"] == "error_rate", "detail"].tolist()
    assert detail and all("warning above 2.5 %, critical above 10 %" in d for d in detail)


def test_the_checklist_writes_its_thresholds_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: "Error rate < 0%" with threshold "< 0 %", and "every hour <= 2 %" though the
    warning level is 2.5 % (the hour at 3.7 % is counted above it)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("LSOPS_"):
            monkeypatch.delenv(name)
    (tmp_path / "lsops.toml").write_text(TOML)
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    store = Store(url)
    _errors_for_an_hour(store)
    store.close()
    env = {"LSOPS_STORE": url, "LSOPS_CONFIG": str(tmp_path / "lsops.toml"), "COLUMNS": "200"}
    args = ["checklist", "--since", "2026-10-01T00:00Z", "--until", "2026-10-01T03:00Z"]
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    checks = {c["key"]: c for c in json.loads(result.output)["checks"]}
    assert checks["error_rate"]["name"] == "Error rate < 0.5%"
    assert checks["error_rate"]["threshold"] == 0.005  # the JSON keeps the number
    assert "1 of 3 hours above 2.5 %" in checks["error_rate_stable"]["detail"]
    text = CliRunner().invoke(main, args, env=env).output
    assert "Error rate < 0.5%" in text and "< 0.5 %" in text
    assert "every hour <= 2.5 %" in text
    assert ">= 99.5 %" in text and "Cache hit rate > 70%" in text
