"""The latency time slices leave out those whose hour held only monitoring requests.

The server's window statistics (`responseTimes`, the last hour) count every request,
the collector's own deep /health and /metrics too (reference quirk 2): on an idle API
the p95 is the monitoring requests' own (a slow deep health check: ~5 s), and the
latency check failed on it while the rest of the checklist excluded them. A slice is
left out when no application request was counted in its hour; the expected slices are
computed here from the traffic this test drove, hour by hour."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
from click.testing import CliRunner

from lsops_lib import analysis as A
from lsops_lib.analysis.slo import latency_slices, monitoring_only
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History

STEP = timedelta(minutes=5)
SLOW = (3.0, 40.0, 5003.0, 5003.0, 5004.0)  # a deep health check timing out
APP_FROM, APP_TO = T0 + timedelta(hours=2), T0 + timedelta(minutes=150)  # 02:00-02:30


def _history(store: Store) -> list[pd.Timestamp]:
    """Six hours of 5-minute scrapes: the collector's /health always, the application's
    /copilot/chat only between 02:00 and 02:30; every slice slow. Their instants."""
    h = History(store, step=STEP)
    stamps = []
    for i in range(72):
        at = T0 + i * STEP
        h.traffic("/health", 1, 5000.0)
        if APP_FROM < at <= APP_TO:
            h.traffic("/copilot/chat", 3, 120.0)
        h.scrape(rt=SLOW)
        stamps.append(pd.Timestamp(at))
    return stamps


def _expected_hourly(stamps: list[pd.Timestamp], read_from: pd.Timestamp) -> set[pd.Timestamp]:
    """The slices an hourly read from `read_from` can tell held only monitoring requests:
    their hour (ts - 1 h, ts] wholly after the read's first hour, and no application delta
    filed in an hour bucket that starts in (ts - 2 h, ts]."""
    hours = {pd.Timestamp(s).floor("h") for s in stamps if APP_FROM < s <= APP_TO}
    first = max(read_from, stamps[1].floor("h"))  # the first delta is the second scrape's
    out = set()
    for ts in stamps:
        if ts < read_from or ts - pd.Timedelta(hours=1) < first + pd.Timedelta(hours=1):
            continue
        if not any(ts - pd.Timedelta(hours=2) < h <= ts for h in hours):
            out.add(ts)
    return out


def test_the_month_figures_leave_out_the_monitoring_only_slices(sqlite_store: Store) -> None:
    stamps = _history(sqlite_store)
    own = _expected_hourly(stamps, pd.Timestamp(T0))
    assert len(own) == 24  # 04:00-05:55: two hours past the application's half hour
    lat = A.latency_timeslices(sqlite_store, None, None, threshold_ms=500)
    assert lat["monitoring_only"] == len(own)
    assert (lat["slices"], lat["met"]) == (len(stamps) - len(own), 0)
    slices = latency_slices(
        sqlite_store,
        None,
        None,
        app=A.slo.app_traffic(sqlite_store, None, None)[0],
        since=A.slo.app_traffic(sqlite_store, None, None)[1],
    )
    assert set(slices.loc[slices["monitoring_only"], "ts"]) == own


def test_the_review_key_figures_count_the_left_out_slices(sqlite_store: Store) -> None:
    stamps = _history(sqlite_store)
    own = _expected_hourly(stamps, pd.Timestamp(T0))
    review = A.monthly_review(sqlite_store, "2026-10", Thresholds())
    latency = review.summary()["latency"]
    # README: counted apart, JSON `monitoring_only` (QA 23: the key figures lacked it)
    assert (latency["monitoring_only"], latency["slices"]) == (len(own), len(stamps) - len(own))


def test_per_scrape_deltas_tell_the_very_hour(sqlite_store: Store) -> None:
    """With counter deltas per scrape (the burn-rate alerts' read), the slices whose
    exact hour (ts - 1 h, ts] held no application request: from 03:30 on."""
    stamps = _history(sqlite_store)
    deltas = sqlite_store.endpoint_intervals(None, None, bucket="scrape")
    got = monitoring_only(pd.Series(stamps), deltas, stamps[0], bucket_ms=0)
    app = [s for s in stamps if APP_FROM < s <= APP_TO]
    want = [
        ts - pd.Timedelta(hours=1) >= stamps[0]
        and not any(ts - pd.Timedelta(hours=1) < a <= ts for a in app)
        for ts in stamps
    ]
    assert list(got) == want and sum(want) == 13 + 30  # 01:00-02:00 and 03:30-05:55


def test_the_checklist_says_it_and_is_unknown_on_monitoring_alone(sqlite_store: Store) -> None:
    stamps = _history(sqlite_store)
    start = T0 + timedelta(hours=5)
    checks = A.checklist(sqlite_store, start, T0 + timedelta(hours=6), Thresholds())
    (lat,) = [c for c in checks if c.key == "latency"]
    assert lat.status == "unknown", lat
    assert "12 time slices left out" in lat.detail and "quirk 2" in lat.detail
    # a window with the application's half hour in it: judged on those slices only
    checks = A.checklist(
        sqlite_store, T0 + timedelta(hours=2), T0 + timedelta(hours=6), Thresholds()
    )
    (lat,) = [c for c in checks if c.key == "latency"]
    own = _expected_hourly([s for s in stamps if s >= T0 + timedelta(hours=2)], pd.Timestamp(T0))
    kept = sum(1 for s in stamps if s >= T0 + timedelta(hours=2)) - len(own)
    assert lat.status == "fail" and f"0 of {kept} time slices" in lat.detail
    assert f"{len(own)} time slices left out" in lat.detail
    # the same counts as data (QA 23: `--json` had them only in the detail's words)
    assert {k: lat.figures[k] for k in ("slices", "met", "monitoring_only")} == {
        "slices": kept,
        "met": 0,
        "monitoring_only": len(own),
    }


def test_the_checklist_json_holds_the_left_out_slices(
    sqlite_store: Store, lsops_env: dict[str, str]
) -> None:
    _history(sqlite_store)
    env = {**lsops_env, "LSOPS_STORE": sqlite_store.url}
    window = ["--since", (T0 + timedelta(hours=5)).isoformat(), "--until"]
    window.append((T0 + timedelta(hours=6)).isoformat())
    result = CliRunner().invoke(main, ["checklist", *window, "--json"], env=env)
    (lat,) = [c for c in json.loads(result.stdout)["checks"] if c["key"] == "latency"]
    assert (lat["status"], lat["figures"]["monitoring_only"], lat["figures"]["slices"]) == (
        "unknown",
        12,  # 05:00-05:55: each hour (ts - 1 h, ts] after the application's last request
        0,
    )


def test_slices_whose_window_held_the_servers_1000_requests_are_counted(
    sqlite_store: Store,
) -> None:
    """Quirk 6: the statistics cover at most the server's last 1000 requests; a slice
    whose count reached it covers less than its hour, and the checklist says how many."""
    h = History(sqlite_store, step=STEP)
    counts = [120, 1000, 999, 1000, 40]
    for n in counts:
        h.traffic("/copilot/chat", n, 80.0)
        h.scrape(rt_count=n)
    lat = A.latency_timeslices(sqlite_store, None, None, threshold_ms=500)
    assert lat["slices"] == len(counts) and lat["capped"] == sum(n >= 1000 for n in counts)
    checks = A.checklist(sqlite_store, T0, T0 + len(counts) * STEP, Thresholds())
    (line,) = [c for c in checks if c.key == "latency"]
    assert "2 slices held the server's last 1,000 requests" in line.detail, line.detail
