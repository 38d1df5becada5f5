"""lsops_lib.analysis through a real SQLite Store filled with known Scrape records."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from lsops_lib import analysis as A
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.analysis import DEEP_OK, T0, History, MiB

M = timedelta(minutes=1)


# --- traffic ---------------------------------------------------------------------------


def test_endpoint_summary_weighted_mean_across_a_restart(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.traffic("/a", 7, 99.0).scrape()  # baseline: what happened before we watched is unknown
    h.traffic("/a", 100, 10.0, errors=1).traffic("/health", 5, 2.0).scrape()
    h.traffic("/a", 300, 30.0, errors=3).traffic("/b", 10, 500.0, errors=5).scrape()
    h.restart().traffic("/a", 50, 20.0).scrape()  # after a restart: the new value itself
    summary = A.endpoint_summary(sqlite_store, None, None)
    assert list(summary["endpoint"]) == ["/a", "/b"]  # monitoring excluded by default
    a = summary.iloc[0]
    assert a["requests"] == 450 and a["errors"] == 4
    # weighted: (100*10 + 300*30 + 50*20) / 450, never the mean of the interval means (20)
    assert a["mean_ms"] == pytest.approx(11000 / 450)
    assert a["error_rate"] == pytest.approx(4 / 450)
    assert summary["requests"].dtype.kind == "i" and summary["errors"].dtype.kind == "i"
    full = A.endpoint_summary(sqlite_store, None, None, include_monitoring=True)
    assert set(full["endpoint"]) == {"/a", "/b", "/health"}
    excluded = A.excluded_monitoring(sqlite_store, None, None)
    assert list(excluded["endpoint"]) == ["/health"] and excluded["requests"].iloc[0] == 5
    assert "quirk 2" in excluded["reason"].iloc[0]
    series = A.endpoint_series(sqlite_store, None, None, bucket="scrape", include_monitoring=True)
    assert (series["requests"] >= 0).all() and (series["errors"] >= 0).all()
    totals = A.request_totals(summary)
    assert totals["requests"] == 460 and totals["mean_ms"] == pytest.approx((11000 + 5000) / 460)


def test_deltas_never_negative_across_resets_and_counter_drops(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.scrape()
    for i in range(12):
        h.traffic("/a", 10 + i, 5.0, errors=i % 2).cache(8, 2)
        if i == 4:
            h.reset()
        if i == 8:
            h.restart()
        if i == 10:  # a counter going down without a new start or reset
            h.counts["/a"] = [3, 15.0, 0]
            h.hits, h.misses = 1, 0
        h.scrape()
    series = A.endpoint_series(sqlite_store, None, None, bucket="scrape")
    assert (series["requests"] >= 0).all() and (series["errors"] >= 0).all()
    assert (series["time_sum_ms"] >= 0).all()
    cache = A.cache_stats(sqlite_store, None, None, bucket="hour")
    assert (cache["cache_hits"] >= 0).all() and (cache["cache_misses"] >= 0).all()
    resets = sqlite_store.resets(None, None)
    assert sorted(resets["kind"]) == ["counter_drop", "reset", "restart"]


def test_cache_hit_ratio_from_counter_deltas_not_the_servers_rate(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.cache(1000, 0).scrape()  # baseline with a 100 % server hitRate: must not count
    h.cache(60, 40).scrape()
    h.cache(30, 10).scrape()
    total = A.cache_summary(sqlite_store, None, None)
    assert total == {
        "hits": 90,
        "misses": 50,
        "operations": 140,
        "hit_ratio": pytest.approx(90 / 140),
    }
    per = A.cache_stats(sqlite_store, None, None, bucket="scrape")
    assert list(per["operations"]) == [0, 100, 40]  # the baseline scrape: no delta
    assert math.isnan(per["hit_ratio"].iloc[0])  # no operations: unknown, never 0 %
    assert list(per["hit_ratio"].iloc[1:]) == pytest.approx([0.6, 0.75])


# --- availability ------------------------------------------------------------------------


def test_availability_counts_statuses_apart_and_shows_gaps(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.run(10)  # 00:00 .. 00:45 OK
    h.run(2, status="DEGRADED")  # 00:50, 00:55
    h.run(1, status="ERROR")  # 01:00
    h.run(3, answer=False)  # 01:05 .. 01:15: no answer IS an observation
    h.run(4)  # 01:20 .. 01:35
    h.t = T0 + timedelta(hours=3)  # the collector stopped: nothing 01:35 -> 03:00
    h.run(4)  # 03:00 .. 03:15
    end = T0 + timedelta(hours=3, minutes=20)
    av = A.availability(sqlite_store, T0, end)
    assert (av.observations, av.ok, av.degraded, av.error, av.no_answer) == (24, 18, 2, 1, 3)
    assert av.availability == pytest.approx(18 / 24)
    assert av.no_answer_share == pytest.approx(3 / 24)
    assert av.interval_s == 300
    assert len(av.gaps) == 1
    gap = av.gaps.iloc[0]
    assert gap["start"] == pd.Timestamp(T0 + timedelta(hours=1, minutes=35))
    assert gap["end"] == pd.Timestamp(T0 + timedelta(hours=3))
    assert gap["duration_s"] == 85 * 60
    assert av.period_s == 200 * 60 and av.gap_s == 85 * 60
    assert av.coverage == pytest.approx(115 / 200)
    gaps = A.collection_gaps(sqlite_store, T0, end)
    assert len(gaps) == 1 and gaps.iloc[0]["duration_s"] == 85 * 60
    # a window reaching past the last scrape: the uncovered tail is a gap, not uptime
    later = A.availability(sqlite_store, T0, T0 + timedelta(hours=5))
    assert later.gap_s == 85 * 60 + (5 * 60 - 195) * 60
    assert later.availability == pytest.approx(18 / 24)


def test_availability_of_an_empty_window_is_unknown_and_all_gap(sqlite_store: Store) -> None:
    av = A.availability(sqlite_store, T0, T0 + timedelta(hours=1))
    assert av.observations == 0 and math.isnan(av.availability)
    assert av.gap_s == 3600 and av.coverage == 0


# --- SLOs --------------------------------------------------------------------------------


def test_error_budget_arithmetic() -> None:
    b = A.error_budget(0.99, good=9950, total=10_000, period=timedelta(days=30))
    assert b["bad"] == 50 and b["error_ratio"] == pytest.approx(0.005)
    assert b["budget_events"] == pytest.approx(100)
    assert b["spent_share"] == pytest.approx(0.5) and b["left_share"] == pytest.approx(0.5)
    assert b["burn_rate"] == pytest.approx(0.5)
    assert b["budget_s"] == pytest.approx(0.01 * 30 * 86400)
    assert b["spent_s"] == pytest.approx(0.005 * 30 * 86400)
    assert b["left_s"] == pytest.approx(0.005 * 30 * 86400)
    assert b["met"] is True
    over = A.error_budget(0.995, good=970, total=1000)
    assert over["burn_rate"] == pytest.approx(6.0) and over["spent_share"] == pytest.approx(6.0)
    assert over["left_share"] == pytest.approx(-5.0) and over["met"] is False
    none = A.error_budget(0.99, good=0, total=0, period=timedelta(days=1))
    assert math.isnan(none["error_ratio"]) and none["met"] is None
    assert none["budget_s"] == pytest.approx(864)
    with pytest.raises(ValueError):
        A.error_budget(99, 1, 1)


def test_percentile_sanity_and_latency_timeslices(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.scrape(rt=(5, 40, 200, 300, 400))  # ordered, met
    h.scrape(rt=(5, 300, 200, 350, 400))  # p50 > p95
    h.scrape(rt=(5, 40, 900, 300, 1000))  # p95 > p99, missed
    h.scrape(rt=(5, 40, 600, 700, 800))  # ordered, missed
    h.scrape(rt=None)  # no request in the window: no slice, no snapshot
    h.scrape(answer=False)
    sanity = A.percentile_sanity(sqlite_store, None, None)
    assert sanity == {
        "snapshots": 4,
        "ordered": 2,
        "disordered": 2,
        "disordered_share": 0.5,
        "p50_gt_p95": 1,
        "p95_gt_p99": 1,
    }
    lat = A.latency_timeslices(sqlite_store, None, None, threshold_ms=500)
    assert (lat["slices"], lat["met"], lat["missed"]) == (4, 2, 2) and lat["share"] == 0.5
    assert "time slices" in lat["label"] and "OpenSLO" in lat["label"]


# --- memory ------------------------------------------------------------------------------


def test_memory_leak_flag_between_restarts(sqlite_store: Store) -> None:
    h = History(sqlite_store, step=timedelta(minutes=10))
    for i in range(36):  # 6 h, climbing 5 %/h of 100 MiB: a possible leak
        h.scrape(rss=int(100 * MiB * (1 + 0.05 * i / 6)))
    h.restart()
    for i in range(36):  # flat with noise after the restart
        h.scrape(rss=int(100 * MiB + (i % 3) * MiB // 10))
    trend = A.memory_trend(sqlite_store, None, None, Thresholds())
    assert trend.leak is True
    assert len(trend.segments) == 2 and list(trend.segments["leak"]) == [True, False]
    # 5 MiB an hour over the segment's level after its start: the median of its first
    # three hourly medians (scrapes 0-5, 6-11, 12-17: the middle one, i = 8.5)
    level = 100 * MiB * (1 + 0.05 * 8.5 / 6)
    assert trend.segments["growth_per_hour"].iloc[0] == pytest.approx(5 * MiB / level, rel=1e-6)
    assert trend.segments["climb_growth_per_hour"].iloc[0] == pytest.approx(5 * MiB / level)
    assert trend.segments["climb_start"].iloc[0] == pd.Timestamp(T0)
    assert int(trend.frame["restart"].sum()) == 1 and len(trend.restarts) == 1
    assert trend.peak_rss == pytest.approx(100 * MiB * (1 + 0.05 * 35 / 6), rel=1e-6)
    relaxed = A.memory_trend(sqlite_store, None, None, Thresholds(memory_growth_per_hour=0.10))
    assert relaxed.leak is False


def test_memory_leak_found_at_the_end_of_a_long_flat_segment(sqlite_store: Store) -> None:
    """Two flat days, then 6 MiB an hour for a day: a straight line over the whole
    segment fits badly, the climb is still found, with its start."""
    h = History(sqlite_store, step=timedelta(minutes=15))
    hours, rss = [], []
    for i in range(3 * 96):
        hours.append(i / 4)
        climb = max(0.0, i / 4 - 48) * 6 * MiB
        rss.append(int(100 * MiB + climb + ((i * 7919) % 11 - 5) * MiB / 10))
        h.scrape(rss=rss[-1])
    trend = A.memory_trend(sqlite_store, None, None, Thresholds())
    seg = trend.segments.iloc[0]
    assert trend.leak and seg["r2"] < 0.9
    # the whole segment's slope over its level after its start (100 MiB, within the
    # noise), not over the fitted line's intercept (about 68 MiB here)
    slope = np.polyfit(hours, rss, 1)[0]
    assert seg["slope_bytes_per_hour"] == pytest.approx(slope)
    assert seg["growth_per_hour"] == pytest.approx(slope / (100 * MiB), rel=0.01)
    assert (
        abs((seg["climb_start"] - pd.Timestamp(T0 + timedelta(hours=48))).total_seconds())
        <= 6 * 3600
    )
    flat = A.memory_trend(sqlite_store, None, T0 + timedelta(hours=47), Thresholds())
    assert flat.leak is False


# --- incidents ---------------------------------------------------------------------------


def _outage_history(store: Store) -> History:
    h = History(store)
    busy = {"/a": (200, 20.0, 0), "/b": (100, 50.0, 0)}
    h.run(12, busy)  # 00:00 .. 00:55
    h.run(8, busy, answer=False)  # 01:00 .. 01:35: a 40-minute outage
    h.restart()
    h.run(4, busy)  # 01:40 .. 01:55 (process came back)
    h.run(12, {"/a": (200, 20.0, 0), "/b": (100, 50.0, 40)})  # 02:00 .. 02:55: /b fails 40 %
    h.run(12, busy)  # 03:00 .. 03:55
    h.run(3, busy, status="DEGRADED")  # 04:00 .. 04:10
    h.run(12, {"/a": (200, 200.0, 0), "/b": (100, 50.0, 0)})  # 04:15 .. 05:10: /a 10x slower
    h.run(12, busy)
    return h


def test_incidents_merge_consecutive_breaches(sqlite_store: Store) -> None:
    _outage_history(sqlite_store)
    found = A.incidents(sqlite_store, None, None, Thresholds())
    assert list(found.columns[:7]) == [
        "start",
        "end",
        "duration_s",
        "kind",
        "severity",
        "detail",
        "endpoint",
    ]
    outage = found[found["kind"] == "no_answer"]
    assert len(outage) == 1
    row = outage.iloc[0]
    assert row["start"] == pd.Timestamp(T0 + 60 * M) and row["end"] == pd.Timestamp(T0 + 100 * M)
    assert row["duration_s"] == 40 * 60 and row["severity"] == "critical"
    assert "8 consecutive scrapes" in row["detail"] and "unreachable" in row["detail"]
    restart = found[found["kind"] == "restart"]
    assert len(restart) == 1 and restart.iloc[0]["start"] == pd.Timestamp(T0 + 100 * M)
    degraded = found[found["kind"] == "health_degraded"].iloc[0]
    assert degraded["duration_s"] == 15 * 60 and degraded["severity"] == "warning"
    errors = found[found["kind"] == "error_rate"]
    assert len(errors) == 1 and errors.iloc[0]["endpoint"] == "/b"
    assert errors.iloc[0]["start"] == pd.Timestamp(T0 + 120 * M)
    assert errors.iloc[0]["duration_s"] == 3600 and errors.iloc[0]["severity"] == "critical"
    latency = found[found["kind"] == "latency"]
    assert list(latency["endpoint"]) == ["/a"]
    assert (found["start"].diff().dropna() >= pd.Timedelta(0)).all()
    cmd = A.postmortem_command(outage.iloc[0])
    assert cmd.startswith(
        "lsops report postmortem --start 2026-10-01T00:30:00Z --end 2026-10-01T02:10:00Z"
    )
    assert "--title 'no answer 2026-10-01 01:00 UTC'" in cmd


def test_postmortem_bundle_of_an_outage_window(sqlite_store: Store) -> None:
    _outage_history(sqlite_store)
    pm = A.postmortem(
        sqlite_store,
        T0 + 110 * M,
        T0 + 190 * M,
        Thresholds(),
        baseline=(T0, T0 + 55 * M),
        title="/b errors",
    )
    # the burst's deltas are closed by the scrapes of 02:00 .. 02:55: the impact is
    # (01:55, 02:55], the scrape before its first to its last
    assert pm.impact_start == pd.Timestamp(T0 + 115 * M)
    assert pm.impact_end == pd.Timestamp(T0 + 175 * M)
    assert pm.duration_s == 3600
    assert pm.endpoints.iloc[0]["endpoint"] == "/b" and pm.endpoints.iloc[0]["rank"] == 1
    # the 12 deltas closed in it, the burst's (not the first good one of 03:00)
    assert pm.requests == 12 * 300 and pm.failed == 12 * 40
    assert pm.error_rate == pytest.approx(480 / 3600)
    assert set(pm.comparison["metric"]) >= {"error_rate", "mean_ms", "availability"}
    assert "threshold crossed" in set(pm.timeline["event"])
    assert not pm.series.empty and set(pm.series["period"]) == {"baseline", "window"}
    assert pm.incidents["postmortem_command"].str.startswith("lsops report postmortem").all()


# --- checklist ---------------------------------------------------------------------------


def _healthy(store: Store, n: int = 24, **kw: object) -> History:
    h = History(store)
    h.scrape(**kw)
    for _ in range(n):
        h.traffic("/a", 100, 20.0, errors=0).cache(8, 2)
        h.scrape(**kw)
    return h


def _statuses(checks: list[A.Check]) -> dict[str, str]:
    return {c.key: c.status for c in checks}


def test_checklist_all_pass_on_a_healthy_history(sqlite_store: Store) -> None:
    h = _healthy(sqlite_store)
    checks = A.checklist(sqlite_store, T0, h.t, Thresholds())
    assert [c.name for c in checks] == [
        "API server responding",
        "Database connected",
        "OpenAI API accessible",
        "Cache working",
        "All tables exist",
        "Response times < 500ms (95th percentile)",
        "Cache hit rate > 70%",
        "Error rate < 1%",
        "Memory usage stable",
        "CPU usage acceptable",
        "No critical errors",
        "Error rate stable",
        "No new error patterns",
        "Errors resolved promptly",
    ]
    statuses = _statuses(checks)
    # issue 10: no Sentry, logs or pm2 configured nor collected: unknown, naming the setting
    for key in ("cpu", "critical_errors", "new_error_patterns", "errors_resolved"):
        assert statuses.pop(key) == "unknown"
        assert "set [" in next(c.detail for c in checks if c.key == key)
    assert set(statuses.values()) == {"pass"}
    hit = next(c for c in checks if c.key == "cache_hit_rate")
    assert hit.value == pytest.approx(0.8) and hit.threshold == 0.7
    assert A.exit_code(checks) == 0


def test_checklist_fails_with_figures_and_exit_levels(sqlite_store: Store) -> None:
    h = History(sqlite_store)
    h.scrape(rt=None)
    for _ in range(12):
        h.traffic("/a", 100, 20.0, errors=3).cache(6, 4)  # 3 % errors, 60 % hits
        h.scrape(rss=450 * MiB, rt=(5, 40, 700, 800, 900))
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, h.t, Thresholds())}
    assert checks["error_rate"].status == "fail" and checks["error_rate"].value == pytest.approx(
        0.03
    )
    assert checks["cache_hit_rate"].status == "fail" and checks[
        "cache_hit_rate"
    ].value == pytest.approx(0.6)
    assert checks["latency"].status == "fail" and checks["latency"].value == 0
    assert (
        checks["memory"].status == "fail" and checks["memory"].severity == "warning"
    )  # 88 %: > 80, < 90
    assert checks["error_rate_stable"].status == "pass"  # 3 % < the 5 % warning level
    assert A.exit_code(list(checks.values())) == 1
    # configurable thresholds
    lenient = Thresholds(
        error_rate=0.05, cache_hit_rate=0.5, latency_p95_ms=1000, memory_fraction=0.9
    )
    again = {c.key: c.status for c in A.checklist(sqlite_store, T0, h.t, lenient)}
    assert (
        again["error_rate"]
        == again["cache_hit_rate"]
        == again["latency"]
        == again["memory"]
        == "pass"
    )


def test_checklist_critical_and_unknown(sqlite_store: Store, tmp_path: object) -> None:
    h = _healthy(sqlite_store, n=6)
    h.run(2, answer=False)
    checks = A.checklist(sqlite_store, T0, h.t, Thresholds())
    api = checks[0]
    assert api.status == "fail" and api.severity == "critical" and api.value == "NO_ANSWER"
    assert A.exit_code(checks) == 2
    nothing = A.checklist(
        sqlite_store, T0 - timedelta(days=2), T0 - timedelta(days=1), Thresholds()
    )
    assert {c.status for c in nothing} == {"unknown"}
    assert A.exit_code(nothing) == 3


def test_checklist_quick_only_database_is_unknown(sqlite_store: Store) -> None:
    quick = {
        "database": ("OK", "Configured"),
        "openai": ("OK", "Configured"),
        "cache": ("OK", "Available"),
    }
    h = _healthy(sqlite_store, n=3, services=quick)
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, h.t, Thresholds())}
    assert checks["database"].status == "unknown" and "quick" in checks["database"].detail
    assert checks["tables"].status == "unknown"
    assert checks["openai"].status == "pass"


def test_checklist_details_count_in_words_with_separators(sqlite_store: Store) -> None:
    h = _healthy(sqlite_store, n=130)  # 130 intervals of 100 requests, 8 hits, 2 misses
    h.restart()
    h.scrape()
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, h.t, Thresholds())}
    assert checks["cache_hit_rate"].detail == "1,040 hits, 260 misses (from counter deltas)"
    assert checks["error_rate"].detail.startswith("0 errors of 13,000 requests")
    assert checks["memory"].detail.endswith("; 1 restart")
    # 5-minute intervals from 00:00, each counted in the hour it ends in: 11 in hour 0
    assert "(0 of 1,100); 0 of 11 hours" in checks["error_rate_stable"].detail


def test_checklist_says_how_long_the_collector_has_been_silent(sqlite_store: Store) -> None:
    h = _healthy(sqlite_store, n=3)
    last = h.t - h.step  # the last scrape
    end = last + timedelta(days=2, hours=3)
    api = {c.key: c for c in A.checklist(sqlite_store, T0, end, Thresholds())}["api"]
    assert api.status == "unknown" and api.severity == "critical"
    assert api.detail.endswith("0 of 4 scrapes without answer; no observation for the last 2 d 3 h")


def test_checklist_error_health_makes_service_fails_critical(sqlite_store: Store) -> None:
    failing = {
        "database": ("ERROR", "TypeError: fetch failed"),
        "openai": ("OK", "API key configured"),
        "cache": ("OK", None),
        "vectorDB": ("ERROR", "TypeError: fetch failed"),
        "tables": ("OK", "All required tables exist"),
    }
    h = _healthy(sqlite_store, n=3)
    h.run(2, status="ERROR", services=failing)
    checks = {c.key: c for c in A.checklist(sqlite_store, T0, h.t, Thresholds())}
    assert checks["api"].status == "fail" and checks["api"].severity == "critical"
    assert "database ERROR: TypeError: fetch failed" in checks["api"].detail
    assert checks["database"].status == "fail" and checks["database"].severity == "critical"
    assert "fetch failed" in checks["database"].detail
    assert A.exit_code(list(checks.values())) == 2


def test_checklist_degraded_health_is_a_warning(sqlite_store: Store) -> None:
    degraded = {**DEEP_OK, "vectorDB": ("ERROR", "TypeError: fetch failed")}
    h = _healthy(sqlite_store, n=3)
    h.run(2, status="DEGRADED", services=degraded)
    checks = A.checklist(sqlite_store, T0, h.t, Thresholds())
    api = checks[0]
    assert (api.status, api.severity, api.value) == ("fail", "warning", "DEGRADED")
    assert "vectorDB ERROR" in api.detail
    assert A.exit_code(checks) == 1


# --- monthly review ----------------------------------------------------------------------


def test_monthly_review_bundle(sqlite_store: Store) -> None:
    # previous month: a quiet day
    prev = History(sqlite_store, start=T0 - timedelta(days=3), step=timedelta(hours=1))
    prev.scrape()
    prev.run(24, {"/a": (100, 10.0, 0), "/b": (50, 40.0, 1), "/health": (12, 2.0, 0)})
    h = _outage_history(sqlite_store)
    assert h.t < T0 + timedelta(days=1)
    review = A.monthly_review(sqlite_store, "2026-10", Thresholds())
    assert review.has_data and review.previous_month == "2026-09"
    assert list(review.targets["key"]) == [
        "availability",
        "error_rate",
        "latency",
        "cache_hit_rate",
        "memory",
    ]
    av = review.availability
    assert av.no_answer == 8 and av.degraded == 3
    assert review.error_budget["total"] == av.observations and review.error_budget["bad"] == 11
    assert (
        review.targets.set_index("key").loc["availability", "met"] is False
        or av.availability >= 0.995
    )
    assert review.endpoints.iloc[0]["endpoint"] == "/b"  # most errors first
    assert review.endpoints.iloc[0]["prev_requests"] == 1200
    assert "/health" not in set(review.endpoints["endpoint"])
    assert list(review.excluded["endpoint"]) == [] or set(review.excluded["endpoint"]) <= {
        "/health"
    }
    assert review.data_quality["excluded_reason"] and review.data_quality["coverage"] > 0.0
    assert len(review.daily) == 31 and review.daily["requests"].sum() == review.totals["requests"]
    kinds = set(review.incidents["kind"])
    assert {"no_answer", "restart", "error_rate", "latency", "health_degraded"} <= kinds
    assert review.incidents["postmortem_command"].str.contains("--title").all()
    assert set(review.changes["metric"]) >= {"requests", "error_rate", "mean_ms", "availability"}
    assert review.previous_totals["requests"] == 24 * 150


def test_monthly_review_of_an_empty_month_says_so(sqlite_store: Store) -> None:
    review = A.monthly_review(sqlite_store, "2026-10")
    assert not review.has_data and review.notes
    assert review.targets["met"].isna().all() or all(m is None for m in review.targets["met"])
    assert review.incidents.empty and review.endpoints.empty


# --- end to end: the collector against the simulated API ----------------------------------


def _collect(
    api: object, store: Store, clock: object, start: object, steps: int, every: timedelta
) -> None:
    from lsops_lib.api import Client
    from lsops_lib.collect import collect_once

    with Client(api.url, retries=0, timeout_s=5.0) as client:  # type: ignore[attr-defined]
        for i in range(steps):
            clock.set(start + i * every)  # type: ignore[attr-defined, operator]
            collect_once(client, store, clock=clock.now)  # type: ignore[attr-defined]


def test_collected_history_matches_the_scenario(sqlite_store: Store) -> None:
    from lsops_lib.simapi import EndpointSpec, Event, Scenario, SimClock, SimulatedAPI

    start = T0
    at = lambda h, m=0: start + timedelta(hours=h, minutes=m)  # noqa: E731
    scenario = Scenario(
        endpoints=[
            EndpointSpec("/copilot/chat", "POST", 4.0, 120.0, 0.0),
            EndpointSpec("/projects/:id", "GET", 5.0, 25.0, 0.0),
            EndpointSpec("/agents", "GET", 2.0, 30.0, 0.0),
        ],
        events=[
            Event("outage", at(1), at(1, 40)),  # a planted 40-minute outage
            Event("errors", at(3), at(4), "/projects/:id", 0.5),  # an error burst on one endpoint
        ],
        start=start,
        seed=7,
    )
    clock = SimClock(start)
    every = timedelta(minutes=5)
    with SimulatedAPI(scenario, clock=clock, restart_delay_s=0.1) as api:
        _collect(api, sqlite_store, clock, start, 5 * 12 + 1, every)  # 00:00 .. 05:00
        last = clock.now()
        truth = api.ledger(start, last, include_monitoring=False).set_index("endpoint")

    # interval totals from counter deltas equal what the scenario sent
    summary = A.endpoint_summary(sqlite_store, None, None).set_index("endpoint")
    assert sorted(summary.index) == sorted(truth.index)
    for endpoint, row in truth.iterrows():
        assert summary.loc[endpoint, "requests"] == row["requests"]
        assert summary.loc[endpoint, "errors"] == row["errors"]
        assert summary.loc[endpoint, "mean_ms"] == pytest.approx(
            row["time_sum_ms"] / row["requests"], rel=1e-3
        )

    found = A.incidents(sqlite_store, None, None, Thresholds())
    outage = found[found["kind"] == "no_answer"]
    assert len(outage) == 1
    assert abs(outage.iloc[0]["duration_s"] - 40 * 60) <= every.total_seconds()
    assert (
        abs((outage.iloc[0]["start"] - pd.Timestamp(at(1))).total_seconds())
        <= every.total_seconds()
    )
    burst = found[found["kind"] == "error_rate"]
    assert list(burst["endpoint"]) == ["/projects/:id"]
    assert burst.iloc[0]["start"] == pd.Timestamp(at(3))

    av = A.availability(sqlite_store, start, last + every)
    assert av.no_answer == 8 and av.gaps.empty and av.availability == pytest.approx(53 / 61)

    pm = A.postmortem(
        sqlite_store, at(2, 30), at(5), Thresholds(), baseline=(at(0), at(1)), title="burst"
    )
    assert pm.endpoints.iloc[0]["endpoint"] == "/projects/:id"
    assert abs((pm.impact_start - pd.Timestamp(at(3))).total_seconds()) <= every.total_seconds()
    assert abs(pm.duration_s - 3600) <= 2 * every.total_seconds()
    assert pm.failed > 0 and pm.failed <= pm.requests
    assert not pm.errors.empty and (pm.errors["endpoint"] == "/projects/:id").any()


def test_bundle_summaries_are_flat(sqlite_store: Store) -> None:
    _outage_history(sqlite_store)
    review = A.monthly_review(sqlite_store, "2026-10")
    s = review.summary()
    assert s["month"] == "2026-10" and s["targets"]["availability"]["met"] is False
    assert len(s["incidents"]) >= 5
    assert not any(isinstance(v, pd.DataFrame) for v in s.values())
    pm = A.postmortem(sqlite_store, T0 + 50 * M, T0 + 110 * M, baseline=timedelta(minutes=50))
    p = pm.summary()
    assert p["impact_start"] == pd.Timestamp(T0 + 60 * M) and p["duration_s"] == 40 * 60
    assert p["no_answer"] == 8 and p["restarts"] == 1


def test_figures_agree_on_every_store_backend(store: Store) -> None:
    """The same history on SQLite and PostgreSQL (the store fixture runs both)."""
    _outage_history(store)
    summary = A.endpoint_summary(store, None, None).set_index("endpoint")
    # 11 deltas before the outage (the first scrape is a baseline), the traffic of the
    # outage died with the process, 55 deltas after the restart
    assert summary.loc["/b", "requests"] == 66 * 100 and summary.loc["/b", "errors"] == 12 * 40
    assert summary.loc["/a", "mean_ms"] == pytest.approx(
        (54 * 200 * 20.0 + 12 * 200 * 200.0) / (66 * 200)
    )
    av = A.availability(store, None, None)
    assert (av.no_answer, av.degraded) == (8, 3)
    found = A.incidents(store, None, None)
    assert found.loc[found["kind"] == "no_answer", "duration_s"].tolist() == [40 * 60]
    assert found.loc[found["kind"] == "error_rate", "endpoint"].tolist() == ["/b"]


def test_daily_availability_shows_uncovered_days(sqlite_store: Store) -> None:
    h = History(sqlite_store, step=timedelta(hours=1))
    h.run(24)  # day 1 fully covered, then nothing on day 2, then day 3 again
    h.t = T0 + timedelta(days=2)
    h.run(24)
    av = A.availability(sqlite_store, T0, T0 + timedelta(days=3))
    daily = av.daily.set_index("day")
    assert list(daily["observations"]) == [24, 0, 24]
    assert math.isnan(daily["availability"].iloc[1])  # unknown, never 100 % up
    assert daily["coverage"].iloc[1] == 0.0
    assert daily["coverage"].iloc[0] == pytest.approx(1 - 3600 / 86400)  # the gap starts at 23:00
    assert av.gap_s == 25 * 3600
