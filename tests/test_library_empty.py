"""The library's empty answers have the types of its answers with rows: a read of a window
without data, an unknown database, a LIMIT 0 give the very columns and dtypes the same call
gives with rows (instants `datetime64[us, UTC]`, counts int64, text `str`), so that
`df["ts"].dt...` or an integer sum works on an empty frame too. Each call is made twice on
real data (a History written into a real SQLite store, the planted PostgreSQL database),
once where it has rows and once where it has none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lsops_lib import analysis, db
from lsops_lib.db import embeddings, indexes, maintenance, queries, space
from lsops_lib.store import Store
from tests.fixtures.analysis import T0, History
from tests.fixtures.history import ShortHistory
from tests.fixtures.pg import Planted

TS = "datetime64[us, UTC]"
NONE = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 2, tzinfo=UTC))  # before any data
STEADY = {"/copilot/chat": (100, 50.0, 0), "/projects/:id": (50, 20.0, 0), "/health": (12, 1.0, 0)}
SPIKE = {**STEADY, "/copilot/chat": (100, 900.0, 30)}  # slow and failing


@dataclass(frozen=True)
class Incidents:
    store: Store
    start: datetime
    end: datetime


@pytest.fixture(scope="module")
def incident_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incidents]:
    """8 hours of 5-minute scrapes with every kind of trouble: a latency and error spike on
    one endpoint, half an hour without an answer, a restart, a collection gap of an hour,
    a DEGRADED half hour; cache traffic throughout; two size and query snapshots."""
    path = tmp_path_factory.mktemp("library") / "incidents.sqlite"
    store = Store(f"sqlite:///{path}")
    h = History(store)

    def run(n: int, traffic: dict[str, tuple[int, float, int]], **kw: Any) -> None:
        for _ in range(n):
            h.cache(80, 20)
            for endpoint, (count, mean, errors) in traffic.items():
                h.traffic(endpoint, count, mean, errors)
            h.scrape(**kw)

    run(36, STEADY)
    run(12, SPIKE)
    for _ in range(6):
        h.scrape(answer=False)
    h.restart()
    run(12, STEADY)
    h.t += timedelta(hours=1)  # the collector was down: a gap, not downtime
    run(12, STEADY)
    run(6, STEADY, status="DEGRADED")
    run(12, STEADY)
    sizes = pd.DataFrame(
        {
            "schema": ["public", "public"],
            "table": ["agents", "documents"],
            "total_bytes": [8192, 65536],
            "table_bytes": [8192, 49152],
            "index_bytes": [0, 16384],
            "toast_bytes": [0, 0],
            "rows_estimate": [10, 200],
        }
    )
    calls = pd.DataFrame(
        {"queryid": [7, 8], "query": ["SELECT 1", "SELECT 2"], "calls": [5, 9], "total_ms": [1.5, 2.0], "rows": [5, 9]}
    )  # fmt: skip
    for day in range(2):
        taken = T0 + timedelta(days=day)
        store.record_db_sizes(
            "prod", taken, sizes.assign(total_bytes=sizes["total_bytes"] * (day + 1))
        )
        store.record_db_queries("prod", taken, calls.assign(calls=calls["calls"] * (day + 1)))
    try:
        yield Incidents(store, T0, h.t)
    finally:
        store.close()


def assert_same_types(full: pd.DataFrame, none: pd.DataFrame, what: str) -> None:
    """`none` (no row) has the columns and dtypes of `full` (some rows)."""
    assert len(full) > 0, f"{what}: the call with data found no row"
    assert len(none) == 0, f"{what}: the call without data found rows"
    assert list(none.columns) == list(full.columns), what
    assert dict(none.dtypes.astype(str)) == dict(full.dtypes.astype(str)), what


def assert_usable(none: pd.DataFrame, what: str) -> None:
    """What an analyst does with a frame works on an empty one: instants convert, counts sum."""
    for col in none.columns:
        if str(none[col].dtype) == TS:
            assert none[col].dt.tz_convert("Europe/Paris").empty, (what, col)
        if str(none[col].dtype) == "int64":
            assert none[col].sum() == 0, (what, col)


# --- the store's reads -------------------------------------------------------------------------

STORE_READS: dict[str, Callable[[Store, tuple[Any, Any]], pd.DataFrame]] = {
    "endpoint_intervals hour": lambda s, w: s.endpoint_intervals(*w),
    "endpoint_intervals day": lambda s, w: s.endpoint_intervals(*w, bucket="day"),
    "endpoint_intervals minute": lambda s, w: s.endpoint_intervals(*w, bucket="minute"),
    "endpoint_intervals scrape": lambda s, w: s.endpoint_intervals(*w, bucket="scrape"),
    "counter_intervals hour": lambda s, w: s.counter_intervals(*w),
    "counter_intervals scrape": lambda s, w: s.counter_intervals(*w, bucket="scrape"),
    "scrapes": lambda s, w: s.scrapes(*w),
    "scrape_figures": lambda s, w: s.scrape_figures(*w),
    "scrape_figures with health": lambda s, w: s.scrape_figures(*w, with_health=True),
    "health": lambda s, w: s.health(*w),
    "services": lambda s, w: s.services(*w),
    "resets": lambda s, w: s.resets(*w),
    "answered_hours": lambda s, w: s.answered_hours(*w),
    "db_sizes": lambda s, w: s.db_sizes("prod" if w[0] == T0 else "nope"),
    "db_queries": lambda s, w: s.db_queries("prod" if w[0] == T0 else "nope"),
}


@pytest.mark.parametrize("read", list(STORE_READS))
def test_an_empty_store_read_has_the_types_of_one_with_rows(
    incident_store: Incidents, read: str
) -> None:
    store, full_window = incident_store.store, (incident_store.start, incident_store.end)
    full = STORE_READS[read](store, full_window)
    none = STORE_READS[read](store, NONE)
    assert_same_types(full, none, read)
    assert_usable(none, read)
    if "ts" in none.columns:
        assert str(none["ts"].dtype) == TS  # the instants of every read


def test_empty_interval_reads_have_integer_counts(incident_store: Incidents) -> None:
    """The QA's case: an empty endpoint_intervals had float64 counts and datetime64[s]."""
    none = incident_store.store.endpoint_intervals(*NONE)
    want = {
        "ts": TS, "endpoint": "str", "requests": "int64", "errors": "int64",
        "time_sum_ms": "float64", "mean_ms": "float64", "error_rate": "float64", "resets": "int64",
    }  # fmt: skip
    assert dict(none.dtypes.astype(str)) == want
    counters = incident_store.store.counter_intervals(*NONE)
    assert {c: str(t) for c, t in counters.dtypes.items() if c != "ts"} == {
        "requests": "int64", "cache_hits": "int64", "cache_misses": "int64",
        "cache_hit_ratio": "float64", "resets": "int64", "scrapes": "int64", "failures": "int64",
    }  # fmt: skip


def test_an_empty_error_read_has_the_types_of_one_with_rows(short_history: ShortHistory) -> None:
    with Store(short_history.store_url) as store:
        full = store.error_records(short_history.start, short_history.end)
        none = store.error_records(*NONE)
    assert_same_types(full, none, "error_records")


# --- the analysis ------------------------------------------------------------------------------


def _steady(window: tuple[Any, Any]) -> tuple[Any, Any]:
    return window if window[0] == T0 else (T0, T0 + timedelta(hours=2))


ANALYSIS: dict[str, Callable[[Store, tuple[Any, Any]], pd.DataFrame]] = {
    "traffic_series": lambda s, w: analysis.traffic_series(s, *w),
    "traffic_series hour": lambda s, w: analysis.traffic_series(s, *w, bucket="hour"),
    "endpoint_series": lambda s, w: analysis.endpoint_series(s, *w),
    "endpoint_summary": lambda s, w: analysis.endpoint_summary(s, *w),
    "excluded_monitoring": lambda s, w: analysis.excluded_monitoring(s, *w),
    "cache_stats": lambda s, w: analysis.cache_stats(s, *w),
    "incidents": lambda s, w: analysis.incidents(s, *w),
    # a window without data is one gap; no gap: the first two hours, collected throughout
    "collection_gaps": lambda s, w: analysis.collection_gaps(s, *_steady(w)),
    "availability.gaps": lambda s, w: analysis.availability(s, *_steady(w)).gaps,
    # no day at all: a window of no time
    "availability.daily": lambda s, w: (
        analysis.availability(s, w[0], w[1] if w[0] == T0 else w[0]).daily
    ),
    "latency_slices": lambda s, w: analysis.latency_slices(s, *w),
    "memory_trend.frame": lambda s, w: analysis.memory_trend(s, *w).frame,
    "memory_trend.segments": lambda s, w: analysis.memory_trend(s, *w).segments,
    "memory_trend.restarts": lambda s, w: analysis.memory_trend(s, *w).restarts,
    "space.growth": lambda s, w: space.growth(s, "prod" if w[0] == T0 else "nope"),
    "space.total_growth": lambda s, w: space.total_growth(
        space.growth(s, "prod" if w[0] == T0 else "nope")
    ),
    "space.table_growth": lambda s, w: space.table_growth(
        space.growth(s, "prod" if w[0] == T0 else "nope")
    ),
}


@pytest.mark.parametrize("call", list(ANALYSIS))
def test_an_empty_analysis_frame_has_the_types_of_one_with_rows(
    incident_store: Incidents, call: str
) -> None:
    store = incident_store.store
    full = ANALYSIS[call](store, (incident_store.start, incident_store.end))
    none = ANALYSIS[call](store, NONE)
    assert_same_types(full, none, call)
    assert_usable(none, call)


def test_incidents_cover_every_kind_the_history_holds(incident_store: Incidents) -> None:
    """The frame compared above holds incidents of an endpoint and of the whole API."""
    found = analysis.incidents(incident_store.store, incident_store.start, incident_store.end)
    kinds = set(found["kind"])
    assert {"latency", "error_rate", "no_answer", "restart", "health_degraded"} <= kinds
    assert found["endpoint"].isna().any() and (found["endpoint"] == "/copilot/chat").any()


def _frames(value: Any, prefix: str) -> dict[str, pd.DataFrame]:
    """Every DataFrame of a result dataclass (nested ones too), by its path."""
    out: dict[str, pd.DataFrame] = {}
    for name, item in vars(value).items():
        if isinstance(item, pd.DataFrame):
            out[f"{prefix}.{name}"] = item
        elif hasattr(item, "__dataclass_fields__"):
            out.update(_frames(item, f"{prefix}.{name}"))
    return out


def test_the_frames_of_an_empty_postmortem_have_the_types_of_a_full_one(
    incident_store: Incidents, short_history: ShortHistory
) -> None:
    """A postmortem of the spike (and, for its error records, one of the short history)
    against a postmortem of a window without data, and the unavailable one a report shows
    when the postmortem failed."""
    store = incident_store.store
    full = _frames(
        analysis.postmortem(store, T0 + timedelta(hours=2), T0 + timedelta(hours=6)), "pm"
    )
    with Store(short_history.store_url) as other:
        full["pm.errors"] = analysis.postmortem(
            other, short_history.start, short_history.end
        ).errors
    empties = {
        "no data": _frames(analysis.postmortem(store, *NONE), "pm"),
        "unavailable": _frames(analysis.unavailable_postmortem(*NONE, problem="down"), "pm"),
    }
    for how, none in empties.items():
        assert set(none) == set(full), how
        for key, frame in full.items():
            if len(frame) and not len(none[key]):
                assert_same_types(frame, none[key], f"{how}: {key}")
            else:  # the comparison frame (metric rows) has rows in both
                assert list(none[key].columns) == list(frame.columns), (how, key)


# --- the inspected PostgreSQL ------------------------------------------------------------------

# each call on the planted LongSang database (rows) and with nothing to answer (no row)
DB_CALLS: dict[str, tuple[Callable[[db.Inspector], pd.DataFrame], Callable[[db.Inspector], pd.DataFrame]]] = {
    "queries.query_stats": (queries.query_stats, lambda i: queries.query_stats(i, limit=0)),
    "queries.top_by_total": (queries.top_by_total, lambda i: queries.top_by_total(i, 0)),
    "maintenance.table_wraparound": (maintenance.table_wraparound, lambda i: maintenance.table_wraparound(i, 0)),
    "embeddings.missing_entities": (embeddings.missing_entities, lambda i: embeddings.missing_entities(i, 0)),
    "embeddings.latest_failures": (embeddings.latest_failures, lambda i: embeddings.latest_failures(i, 0)),
}  # fmt: skip

# each call on the planted database (rows) and on an empty database (no row)
DB_EMPTY_DATABASE: dict[str, Callable[[db.Inspector], pd.DataFrame]] = {
    "space.table_sizes": space.table_sizes,
    "indexes.index_catalog": indexes.index_catalog,
    "indexes.unused_indexes": indexes.unused_indexes,
    "indexes.fk_without_index": indexes.fk_without_index,
    "indexes.duplicate_indexes": indexes.duplicate_indexes,
    "indexes.invalid_indexes": indexes.invalid_indexes,
    "maintenance.table_bloat": maintenance.table_bloat,
    "maintenance.table_maintenance": maintenance.table_maintenance,
    "maintenance.dead_tuple_tables": maintenance.dead_tuple_tables,
}


@pytest.mark.postgres
def test_empty_inspection_frames_have_the_types_of_full_ones(
    longsang_db: Planted, pg_url: str
) -> None:
    with db.connect(longsang_db.password_url) as planted, db.connect(pg_url) as bare:
        for what, (full, none) in DB_CALLS.items():
            if what.startswith("queries.") and not longsang_db.has_pg_stat_statements:
                continue
            assert_same_types(full(planted), none(planted), what)
        for what, call in DB_EMPTY_DATABASE.items():
            assert_same_types(call(planted), call(bare), what)
            assert_usable(call(bare), what)


@pytest.mark.postgres
def test_the_statistics_reset_is_a_utc_instant(longsang_db: Planted) -> None:
    if not longsang_db.has_pg_stat_statements:
        pytest.skip("no pg_stat_statements here")
    with db.connect(longsang_db.password_url) as insp:
        reset = queries.status(insp)["stats_reset"]
        server = pd.Timestamp(
            insp.scalar("SELECT stats_reset FROM extensions.pg_stat_statements_info")
        )
    assert str(reset.tz) == "UTC"  # not the server's Etc/UTC (nor its TimeZone)
    assert reset == server  # the same instant


def test_the_forecast_json_is_plain_json(tmp_path: Path) -> None:
    """as_dict() goes through json.dumps as it is: `since` is an ISO string in UTC (what
    `lsops db size --forecast --json` printed for it before), and one snapshot is one."""
    import json

    from lsops_lib.db import forecast

    snaps = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-11-25T06:00:00Z"] * 2, utc=True),
            "schema": ["public"] * 2,
            "table": ["a", "b"],
            "total_bytes": [100, 300],
            "table_bytes": [100, 300],
            "index_bytes": [0, 0],
            "toast_bytes": [0, 0],
            "rows_estimate": [1, 3],
        }
    )
    fc = forecast.capacity_forecast(snaps, 10**9)
    data = json.loads(json.dumps(fc.as_dict()))
    assert data["since"] == "2026-11-25T06:00:00+00:00"
    assert fc.message.startswith("not enough history: 1 snapshot over 0.0 days ")
    assert "5 over 3 days" in fc.message
