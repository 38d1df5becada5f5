"""QA 20 (scale): the checklist, memory_trend, latency_slices, latency_timeslices and
percentile_sanity read the scrape columns they use (`Store.scrape_figures`), not the ~40
of every scrape, and the checklist reads the services rows back from the last scrape, not
every row of the window (a year of one-minute scrapes: 525,600 scrapes, 2.6 M services
rows). Their answers are those of the whole rows, computed here in plain Python from a
full `Store.scrapes()` and `Store.services()` read, on a store with restarts, failed
scrapes, disordered percentiles and a service reported only hours before the end; once
with every row kept, once packed by the hour (LSOPS_PACK_PERIOD_MS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lsops_lib import analysis as A
from lsops_lib import fmt
from lsops_lib.config import Thresholds
from lsops_lib.store import FIGURE_COLUMNS, Store
from lsops_lib.store.pack import PERIOD_ENV
from tests.fixtures.analysis import DEEP_OK, T0, History, MiB

NARROW = {"ts", "target", *FIGURE_COLUMNS}  # what `Store.scrape_figures` reads
SERVICES = ("database", "openai", "cache", "tables")
QUICK = {k: v for k, v in DEEP_OK.items() if k != "tables"}  # no tables line


class Recording(Store):
    """A Store that records the columns each `scrapes` read names (None: all) and the
    window of each `services` read."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.scrape_reads: list[list[str] | None] = []
        self.service_reads: list[tuple[Any, Any]] = []

    def scrapes(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        target: str | None = None,
        columns: Any = None,
    ) -> pd.DataFrame:
        self.scrape_reads.append(None if columns is None else list(columns))
        return super().scrapes(start, end, target, columns)

    def services(
        self, start: datetime | None = None, end: datetime | None = None, target: str | None = None
    ) -> pd.DataFrame:
        self.service_reads.append((start, end))
        return super().services(start, end, target)


def _history(store: Store, *, quick_after: int | None = 60) -> datetime:
    """5-minute scrapes from T0: 4 h of a flat process (some percentiles out of order, some
    p95 above 500 ms, some scrapes without window statistics), two scrapes without answer,
    a restart, then 8 h of a process leaking 3 MiB an hour whose health stops reporting
    `tables` after its `quick_after`-th scrape; the last scrape DEGRADED (database slow).
    The end of the window: one step after the last scrape."""
    h = History(store)
    per_step = {"/api/agents": (50, 30.0, 1)}
    for i in range(48):
        rt: tuple[float, float, float, float, float] | None = (10.0, 40.0, 200.0, 300.0, 400.0)
        if i % 7 == 3:
            rt = (10.0, 600.0, 450.0, 700.0, 800.0)  # p50 > p95 (quirk 1)
        elif i % 5 == 2:
            rt = (10.0, 90.0, 700.0, 650.0, 900.0)  # missed, p95 > p99
        elif i % 11 == 6:
            rt = None
        h.run(1, per_step, rss=100 * MiB + (i % 3) * MiB, rt=rt)
    h.run(2, per_step, answer=False)
    h.restart()
    for i in range(96):
        services = QUICK if quick_after is not None and i >= quick_after else DEEP_OK
        h.run(1, per_step, rss=round(120 * MiB + i / 12 * 3 * MiB), services=services)
    last = {**(QUICK if quick_after is not None else DEEP_OK), "database": ("DEGRADED", "slow")}
    h.run(1, per_step, status="DEGRADED", rss=160 * MiB, services=last)
    return h.t


@pytest.fixture(params=["rows", "packed"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PERIOD_ENV, "0" if request.param == "rows" else str(3_600_000))
    return f"sqlite:///{tmp_path / 'metrics.sqlite'}"


@pytest.fixture
def built(url: str) -> Iterator[tuple[Recording, pd.DataFrame, pd.DataFrame, datetime]]:
    """The recording store, its whole scrape and services rows, and the window's end."""
    with Store(url) as store:
        end = _history(store)
        scrapes, services = store.scrapes(T0, end), store.services(T0, end)
    assert len(scrapes.columns) > 30 and len(services) > 500
    with Recording(url) as recording:
        yield recording, scrapes, services, end


# --- the answers, computed from the whole rows -------------------------------------------


def _rt(r: Any) -> list[float]:
    return [r.rt_min, r.rt_p50, r.rt_p95, r.rt_p99, r.rt_max]


def _in_order(values: list[float]) -> bool:
    return not any(pd.isna(v) for v in values) and all(
        a <= b for a, b in zip(values, values[1:], strict=False)
    )


def _slices(scrapes: pd.DataFrame) -> list[tuple[pd.Timestamp, float, bool, bool]]:
    return [
        (r.ts, float(r.rt_p95), r.rt_p95 < 500, _in_order(_rt(r)))
        for r in scrapes.itertuples()
        if not pd.isna(r.rt_p95) and (pd.isna(r.rt_count) or r.rt_count > 0)
    ]


def _segments(scrapes: pd.DataFrame) -> list[list[tuple[pd.Timestamp, float]]]:
    """The answered scrapes' (ts, rss), split where the process's uptime start changes."""
    out: list[list[tuple[pd.Timestamp, float]]] = []
    up = None
    for r in scrapes.itertuples():
        if pd.isna(r.rss):
            continue
        if not out or r.uptime_start_ms != up:
            out.append([])
        up = r.uptime_start_ms
        out[-1].append((r.ts, float(r.rss)))
    return out


def _last_rows(services: pd.DataFrame) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for r in services.itertuples():  # oldest first: a later row replaces an earlier one
        last[r.service] = r
    return last


def test_each_answer_is_the_whole_rows_answer(
    built: tuple[Recording, pd.DataFrame, pd.DataFrame, datetime],
) -> None:
    store, scrapes, services, end = built
    th = Thresholds()

    sanity = A.percentile_sanity(store, T0, end)
    full = [_rt(r) for r in scrapes.itertuples() if not any(pd.isna(v) for v in _rt(r))]
    assert sanity["snapshots"] == len(full) > 100
    assert sanity["disordered"] == sum(not _in_order(v) for v in full) > 10
    assert sanity["p50_gt_p95"] == sum(v[1] > v[2] for v in full) > 0
    assert sanity["p95_gt_p99"] == sum(v[2] > v[3] for v in full) > 0

    want = _slices(scrapes)
    got = A.latency_slices(store, T0, end)
    assert list(got[["ts", "p95", "met", "ordered"]].itertuples(index=False, name=None)) == want
    assert not got["monitoring_only"].any()
    lat = A.latency_timeslices(store, T0, end)
    met = sum(s[2] for s in want)
    assert (lat["slices"], lat["met"], lat["monitoring_only"]) == (len(want), met, 0)
    assert lat["share"] == met / len(want) < 1

    trend = A.memory_trend(store, T0, end, th)
    segments = _segments(scrapes)
    assert len(segments) == 2 and len(scrapes) == sum(map(len, segments)) + 2  # 2 no answer
    assert list(zip(trend.frame["ts"], trend.frame["rss"], strict=True)) == [
        p for seg in segments for p in seg
    ]
    seg = trend.segments
    assert list(seg["start"]) == [s[0][0] for s in segments]
    assert list(seg["end"]) == [s[-1][0] for s in segments]
    assert list(seg["points"]) == [len(s) for s in segments]
    assert list(seg["leak"]) == [False, True]  # the flat process, then the leaking one
    assert trend.peak_rss == max(p[1] for s in segments for p in s)
    assert trend.last_rss == segments[-1][-1][1]

    checks = {c.key: c for c in A.checklist(store, T0, end, th)}
    last = _last_rows(services)
    for name in SERVICES:
        row = last[name]
        assert checks[name].value == row.status.upper()
        assert checks[name].detail.startswith(f"{name} {row.status} at {fmt.instant(row.ts)}")
    assert last["tables"].ts < scrapes["ts"].iloc[-1] - timedelta(hours=2)  # read back to it
    assert checks["tables"].status == "unknown"  # not heard of for hours
    bad = services[(services["ts"] == scrapes["ts"].iloc[-1]) & (services["status"] != "OK")]
    assert [(r.service, r.message) for r in bad.itertuples()] == [("database", "slow")]
    assert checks["api"].detail.endswith(
        f"DEGRADED; 2 of {len(scrapes)} scrapes without answer (database DEGRADED: slow)"
    )
    assert checks["latency"].value == lat["share"]
    assert checks["memory"].value == trend.peak_rss / th.memory_limit_bytes


# --- the reads ----------------------------------------------------------------------------


def test_no_read_takes_every_column(
    built: tuple[Recording, pd.DataFrame, pd.DataFrame, datetime],
) -> None:
    store, _, _, end = built
    calls = {
        "memory_trend": lambda: A.memory_trend(store, T0, end, Thresholds()),
        "latency_slices": lambda: A.latency_slices(store, T0, end),
        "latency_timeslices": lambda: A.latency_timeslices(store, T0, end),
        "percentile_sanity": lambda: A.percentile_sanity(store, T0, end),
        "checklist": lambda: A.checklist(store, T0, end, Thresholds()),
    }
    for name, call in calls.items():
        store.scrape_reads.clear()
        call()
        assert store.scrape_reads, name
        for columns in store.scrape_reads:
            assert columns is not None and set(columns) <= NARROW, (name, columns)
    # a column the figures do not hold, carried along: the whole rows, as before
    store.scrape_reads.clear()
    got = A.latency_slices(store, T0, end, carry=["failure_kind", "target"])
    assert list(got.columns[-2:]) == ["failure_kind", "target"] and len(got) > 100
    assert None in store.scrape_reads


def test_the_checklist_reads_the_services_back_from_the_last_scrape(
    built: tuple[Recording, pd.DataFrame, pd.DataFrame, datetime],
) -> None:
    store, scrapes, services, end = built
    A.checklist(store, T0, end, Thresholds())
    last_ts = scrapes["ts"].iloc[-1]
    assert store.service_reads[0] == (last_ts, end)  # the last scrape's rows
    # then back until `tables` (last reported hours before): never the whole window
    reach = min(pd.Timestamp(a) for a, _ in store.service_reads)
    assert last_ts - timedelta(hours=8) < reach <= _last_rows(services)["tables"].ts


def test_every_service_in_the_last_scrape_is_one_read(url: str) -> None:
    with Store(url) as store:
        end = _history(store, quick_after=None)
    with Recording(url) as store:
        checks = {c.key: c for c in A.checklist(store, T0, end, Thresholds())}
        last_ts = store.scrapes(T0, end, columns=["ts"])["ts"].iloc[-1]
        assert store.service_reads == [(last_ts, end)]
    assert [checks[k].status for k in SERVICES] == ["fail", "pass", "pass", "pass"]
