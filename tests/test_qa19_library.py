"""The library's analysis calls (QA 19): start and end as ISO 8601 strings or naive
datetimes (UTC) answer what the aware datetimes they name answer, on a history with every
incident kind (a cache fall, a memory climb, a pm2 restart no scrape saw) and on an empty
store; numeric parameters that make no sense are a ParameterError naming the parameter;
a detector's empty answer has the types of a full one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lsops_lib import analysis
from lsops_lib.config import Thresholds
from lsops_lib.exceptions import ParameterError
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.analysis import T0, History, MiB
from tests.fixtures.sources import pm2_sample
from tests.test_library_inputs import one_line

END = T0 + timedelta(hours=9)
ISO = ("2026-10-01T00:00:00Z", "2026-10-01T09:00")  # T0 and END; no offset: UTC
NAIVE = (T0.replace(tzinfo=None), END.replace(tzinfo=None))
RISE = (T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=30))  # pm2's samples


@dataclass(frozen=True)
class Planted:
    store: Store
    empty: Store


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    """Nine hours of 5-minute scrapes: the cache at 30 % from 01:00 to 02:00 (80 % else),
    RSS flat at 100 MiB for 2 h, climbing 10 MiB/h for 4 h, back at 100 MiB from 07:00;
    pm2 samples every 30 minutes whose restart counter rises from 0 to 1 between 02:00
    and 02:30 (no restart in the scrapes), collected as `lsops collect` records it. And an
    empty store."""
    folder = tmp_path_factory.mktemp("qa19lib")
    store = Store(f"sqlite:///{folder / 'store.sqlite'}")
    empty = Store(f"sqlite:///{folder / 'empty.sqlite'}")
    h = History(store)
    rss = [100 * MiB] * 24 + [int((100 + 10 * (i + 1) / 12) * MiB) for i in range(48)]
    rss += [140 * MiB] * 12 + [100 * MiB] * 24
    h.scrape()
    for i, value in enumerate(rss):
        h.cache(*((30, 70) if 12 <= i < 24 else (80, 20)))
        h.traffic("/copilot/chat", 100, 50.0, 1 if i % 3 else 0).scrape(rss=value)
    for k in range(18):
        at = T0 + timedelta(minutes=30 * k)
        tables.record_pm2(store, "default", at, [pm2_sample(5.0, restarts=int(at >= RISE[1]))])
    at = END - timedelta(minutes=30)  # pm2 collected: the checklist's CPU line reads it
    tables.record_source_run(store, "default", "pm2", at, ok=True, items=1, error=None)
    try:
        yield Planted(store, empty)
    finally:
        store.close()
        empty.close()


def comparable(answer: Any) -> Any:
    """An answer as plain values (a list of Checks, a dataclass of frames, a dict)."""
    if isinstance(answer, list):
        return [c.as_dict() if hasattr(c, "as_dict") else c for c in answer]
    return answer


TH = Thresholds()
CALLS: dict[str, Callable[[Store, Any, Any], Any]] = {
    "checklist": lambda s, a, b: analysis.checklist(s, a, b, TH),
    "incidents": lambda s, a, b: analysis.incidents(s, a, b, TH),
    "cache_fall_incidents": lambda s, a, b: analysis.cache_fall_incidents(s, a, b, TH),
    "memory_climb_incidents": lambda s, a, b: analysis.memory_climb_incidents(s, a, b, TH),
    "memory_trend.segments": lambda s, a, b: analysis.memory_trend(s, a, b, TH).segments,
    "latency_slices": lambda s, a, b: analysis.latency_slices(s, a, b),
    "latency_timeslices": lambda s, a, b: analysis.latency_timeslices(s, a, b),
    "percentile_sanity": lambda s, a, b: analysis.percentile_sanity(s, a, b),
    "cache_summary": lambda s, a, b: analysis.cache_summary(s, a, b),
}


def test_the_planted_history_holds_every_kind_the_calls_read(planted: Planted) -> None:
    """The reference answer (aware datetimes) finds what was planted: the strings below
    are tested on the paths that failed (pm2's restarts, the checklist's source lines)."""
    cpu = {c.key: c for c in analysis.checklist(planted.store, T0, END, TH)}["cpu"]
    assert cpu.status == "pass" and cpu.value == pytest.approx(0.05)  # 5 % in every sample
    found = analysis.incidents(planted.store, T0, END, TH)
    assert {"cache_fall", "memory_climb", "pm2_restart"} <= set(found["kind"])
    pm2 = found[found["kind"] == "pm2_restart"]
    assert list(zip(pm2["start"], pm2["end"], strict=True)) == [tuple(map(pd.Timestamp, RISE))]
    fall = found[found["kind"] == "cache_fall"]
    assert (fall["start"].iloc[0], fall["end"].iloc[0]) == (
        pd.Timestamp(T0 + timedelta(hours=1)),
        pd.Timestamp(T0 + timedelta(hours=2)),
    )


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("given", ["iso", "naive"])
def test_iso_strings_and_naive_datetimes_read_as_utc(
    planted: Planted, call: str, given: str
) -> None:
    """The QA's cases: checklist with ISO strings or naive datetimes raised "Invalid
    comparison between dtype=datetime64[us, UTC] and Timestamp", incidents with ISO
    strings "can only concatenate str (not datetime.timedelta) to str"."""
    a, b = ISO if given == "iso" else NAIVE
    for store in (planted.store, planted.empty):
        want = comparable(CALLS[call](store, T0, END))
        got = comparable(CALLS[call](store, a, b))
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            assert repr(got) == repr(want)  # NaN figures compare as text


def test_the_checklist_of_an_empty_store_from_iso_strings(planted: Planted) -> None:
    """The QA's case: "unsupported operand type(s) for -: 'str' and 'datetime.timedelta'"."""
    checks = analysis.checklist(planted.empty, *ISO, TH)
    assert {c.status for c in checks} == {"unknown"} and analysis.exit_code(checks) == 3


# --- numeric parameters -------------------------------------------------------------------

BAD: dict[str, tuple[Callable[[Store], Any], str, str]] = {
    "postmortem sample_errors": (
        lambda s: analysis.postmortem(s, T0, END, sample_errors=-1),
        "sample_errors",
        "0 or more",
    ),
    "postmortem sample_errors 2.5": (
        lambda s: analysis.postmortem(s, T0, END, sample_errors=2.5),
        "sample_errors",
        "0 or more",
    ),
    "checklist min_requests": (
        lambda s: analysis.checklist(s, T0, END, min_requests=-5),
        "min_requests",
        "0 or more",
    ),
    "incidents min_requests": (
        lambda s: analysis.incidents(s, T0, END, min_requests=-1),
        "min_requests",
        "0 or more",
    ),
    "memory_trend min_points": (
        lambda s: analysis.memory_trend(s, T0, END, min_points=-1),
        "min_points",
        "0 or more",
    ),
    "notable_changes per_kind": (
        lambda s: analysis.notable_changes(pd.DataFrame(), pd.DataFrame(), per_kind=-1),
        "per_kind",
        "0 or more",
    ),
    "collection_gaps interval 0": (
        lambda s: analysis.collection_gaps(s, T0, END, interval=timedelta(0)),
        "interval",
        "positive",
    ),
    "availability interval -5m": (
        lambda s: analysis.availability(s, T0, END, interval=timedelta(minutes=-5)),
        "interval",
        "positive",
    ),
    "availability_from_health interval": (
        lambda s: analysis.availability_from_health(s.health(None, None), T0, END, interval=0),
        "interval",
        "positive",
    ),
    "latency_slices threshold_ms": (
        lambda s: analysis.latency_slices(s, T0, END, threshold_ms=-1),
        "threshold_ms",
        "more than 0",
    ),
    "latency_timeslices threshold_ms": (
        lambda s: analysis.latency_timeslices(s, T0, END, threshold_ms=0),
        "threshold_ms",
        "more than 0",
    ),
    "latency_timeslices threshold_ms text": (
        lambda s: analysis.latency_timeslices(s, T0, END, threshold_ms="fast"),
        "threshold_ms",
        "'fast'",
    ),
    "error_budget good > total": (
        lambda s: analysis.error_budget(0.999, good=200, total=100),
        "good",
        "more than total '100'",
    ),
    "error_budget good < 0": (
        lambda s: analysis.error_budget(0.999, good=-1, total=100),
        "good",
        "0 or more",
    ),
    "error_budget total < 0": (
        lambda s: analysis.error_budget(0.999, good=0, total=-1),
        "total",
        "0 or more",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_number_that_makes_no_sense_is_a_parameter_error(planted: Planted, case: str) -> None:
    call, name, words = BAD[case]
    with pytest.raises(ParameterError) as info:
        call(planted.store)
    assert one_line(info, words).startswith(f"{name}: "), case


def test_the_edges_of_the_numeric_parameters_are_accepted(planted: Planted) -> None:
    s = planted.store
    errors = analysis.postmortem(s, T0, END, sample_errors=0).errors
    assert errors.empty  # asked for no sample
    assert analysis.incidents(s, T0, END, min_requests=0).equals(
        analysis.incidents(s, T0, END, min_requests=0.0)
    )
    # the budget of all-good events: nothing spent (by hand: 0 bad of 100)
    budget = analysis.error_budget(0.999, good=100, total=100)
    assert (budget["bad"], budget["error_ratio"], budget["met"]) == (0.0, 0.0, True)
    budget = analysis.error_budget(0.99, good=97, total=100)
    assert budget["bad"] == 3.0 and budget["burn_rate"] == pytest.approx(3.0)
    # a 5-minute interval given: gaps are stretches longer than 2 x 5 minutes (none here)
    assert analysis.collection_gaps(s, T0, END, interval=timedelta(minutes=5)).empty
    slices = analysis.latency_timeslices(s, T0, END, threshold_ms=200.5)
    assert slices["met"] == slices["slices"] > 0  # every planted p95 is 200 ms


# --- the types of an empty answer ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["cache_fall", "memory_climb"])
def test_a_detectors_empty_answer_has_the_types_of_a_full_one(
    planted: Planted, kind: str, tmp_path: Path
) -> None:
    detect = analysis.INCIDENT_DETECTORS[kind]
    full = detect(planted.store, T0, END, TH)
    assert len(full) == 1 and full["endpoint"].isna().all()
    later = detect(planted.store, END + timedelta(days=1), END + timedelta(days=2), TH)
    nothing = detect(planted.empty, T0, END, TH)
    for frame in (later, nothing):
        assert frame.empty
        assert dict(frame.dtypes.astype(str)) == dict(full.dtypes.astype(str))
    whole = analysis.incidents(planted.empty, T0, END, TH)
    assert whole.empty and whole["endpoint"].dtype == full["endpoint"].dtype
