"""QA 23, the store's frames: a text column has one type whatever the window holds. A
window without a failure read `failure_kind` (and the other text columns without a value
there) as `object`, a window with one as `str`: `.str.contains()` then gave None, no
boolean mask, and frames of two windows concatenated to `object`. Both backends, packed
periods and rows."""

from __future__ import annotations

import pandas as pd
import pytest

from lsops_lib.store import Store, pack
from tests.fixtures.store import at, make_scrape

PERIOD = 20 * 60_000  # the first periods packed, the last one rows

TEXTS = {
    "scrapes": ["target", "failure_kind", "failure_message", "health_status", "scrape_id"],
    "health": ["status", "target", "failure_kind"],
    "figures": ["target", "failure_kind", "status"],
    "error_records": ["endpoint", "method", "error", "target"],
    "services": ["service", "status", "message", "target"],
}


def _reads(store: Store, start: object, end: object) -> dict[str, pd.DataFrame]:
    return {
        "scrapes": store.scrapes(start, end),
        "health": store.health(start, end),
        "figures": store.scrape_figures(start, end, with_health=True),
        "error_records": store.error_records(start, end),
        "services": store.services(start, end),
    }


def test_text_columns_are_str_with_or_without_a_value(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    with Store(store_url) as store:
        for minute in range(70):  # answered scrapes; two without an answer, at 30 and 65
            endpoints = None if minute in (30, 65) else {"/api/x": (minute, 10.0, 0.0)}
            store.record_scrape(make_scrape(minute, endpoints))
        for start, end, failures in (
            (at(0), at(25), 0),  # packed, no failure: every failure text NULL
            (at(28), at(35), 1),  # packed, one failure
            (at(61), at(64), 0),  # rows, no failure
            (at(61), at(70), 1),  # rows, one failure
            (at(200), at(300), 0),  # nothing
        ):
            frames = _reads(store, start, end)
            scrapes = frames["scrapes"]
            assert int((~scrapes["ok"]).sum()) == failures
            for read, columns in TEXTS.items():
                for col in columns:
                    assert frames[read][col].dtype == "str", (read, col, start, failures)
            # a mask, True exactly at the failures (written in this test: "unreachable")
            mask = scrapes["failure_kind"].str.contains("unreachable")
            assert mask.dtype == bool
            assert int(mask.sum()) == failures
            assert len(scrapes[mask]) == failures
        quiet, failed = store.scrapes(at(0), at(25)), store.scrapes(at(28), at(35))
        both = pd.concat([quiet, failed], ignore_index=True)
        assert both["failure_kind"].dtype == "str"
        assert both["failure_kind"].notna().sum() == 1
