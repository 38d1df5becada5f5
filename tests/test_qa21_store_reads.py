"""The store's library reads as an analyst calls them in a notebook, on a store whose
older periods are packed (hourly here) and on one that never packs, with several targets,
on SQLite and PostgreSQL: `scrapes`, `scrape_figures`, `services`, `error_records` give
the same frames, and `raw_payload` the bytes handed to `record_scrape`, whether a
scrape's id is a canonical UUID, an upper-case one or no UUID at all; a scrape id or part
that is no text is one ParameterError.

Every expectation is what the test itself wrote (the scrapes' ids and payloads), or the
same read of the store that keeps every scrape as rows.
"""

from __future__ import annotations

import dataclasses
import uuid

import pandas as pd
import pytest

from lsops_lib.exceptions import ParameterError
from lsops_lib.models import ErrorRecord, Scrape
from lsops_lib.store import Store, pack
from tests.fixtures.store import at, make_scrape

HOUR = 3_600_000
TARGETS = ("web", "worker", "batch")


def _scrapes() -> list[Scrape]:
    """Three targets, four hours of one-minute scrapes: some failed, some DEGRADED, some
    with error records. Ids: canonical UUIDs in the first and last hours (a block's
    UUID column of 16 bytes an id), upper-case UUIDs in the second, the three kinds
    (texts of another kind too) in the third."""
    out = []
    for minute in range(240):
        for k, target in enumerate(TARGETS):
            if (minute + k) % 17 == 0:
                out.append(make_scrape(minute, None, target=target))
                continue
            errors = None
            if minute % 11 == k:
                stamp = int(at(minute).timestamp() * 1000) - 500
                errors = [ErrorRecord(f"/api/{target}", stamp, "GET", 500 + k)]
            s = make_scrape(
                minute,
                {"/api/a": (minute * 3 + k, 10.0 + minute / 7, 0.01), "/api/b": (minute, 5.0, 0)},
                target=target,
                status="DEGRADED" if minute % 13 == 0 else "OK",
                errors=errors,
                raw={
                    "metrics": f'{{"n":{minute},"target":"{target}"}}'.encode(),
                    "health": b"\x00not json %d" % minute,
                },
            )
            if 60 <= minute < 120 or (120 <= minute < 180 and minute % 5 == 1):
                s = dataclasses.replace(s, id=s.id.upper())
            elif 120 <= minute < 180 and minute % 5 == 2:
                s = dataclasses.replace(s, id=f"{target}-scrape-{minute}")
            out.append(s)
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Store, Store, list[Scrape]]:
    """(a store packed hour by hour, a store of rows only, the scrapes both hold), written
    once for the module's tests, which only read them."""
    if request.param == "sqlite":
        tmp = tmp_path_factory.mktemp("qa21-reads")
        urls = [f"sqlite:///{tmp / f'{k}.sqlite'}" for k in ("packed", "rows")]
    else:
        cluster = request.getfixturevalue("pg_cluster")
        urls = [cluster.create_database(f"t_qa21_{uuid.uuid4().hex[:12]}_{k}") for k in "pr"]
    scrapes = _scrapes()
    opened = []
    for url, period in zip(urls, (HOUR, 0), strict=True):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(pack.PERIOD_ENV, str(period))
            store = Store(url)
            request.addfinalizer(store.close)
            for s in scrapes:
                store.record_scrape(s)
        opened.append(store)
    return opened[0], opened[1], scrapes


def test_packed_and_unpacked_stores_answer_the_same(
    stores: tuple[Store, Store, list[Scrape]],
) -> None:
    packed, rows, scrapes = stores
    for read in (
        lambda s: s.scrapes(),
        lambda s: s.scrapes(target="worker"),
        lambda s: s.scrapes(at(50), at(130), columns=["scrape_id", "rt_p95", "rss", "ok"]),
        lambda s: s.scrape_figures(),
        lambda s: s.scrape_figures(at(30), at(200), "batch", with_health=True),
        lambda s: s.services(),
        lambda s: s.services(at(10), at(100), "web"),
        lambda s: s.error_records(),
    ):
        pd.testing.assert_frame_equal(read(packed), read(rows))
    frame = packed.scrapes()
    assert len(frame) == len(scrapes)
    assert sorted(frame["scrape_id"]) == sorted(s.id for s in scrapes)
    assert len(packed.error_records()) == sum(
        bool(s.metrics and s.metrics.recent_errors) for s in scrapes
    )


def test_raw_payload_gives_the_bytes_written_whatever_the_id(
    stores: tuple[Store, Store, list[Scrape]],
) -> None:
    packed, rows, scrapes = stores
    for s in scrapes[::4]:  # every kind of id of every target (all: test_qa15_store_raw)
        for part in ("metrics", "health"):
            expected = s.raw.get(part) if s.raw else None
            assert packed.raw_payload(s.id, part) == expected, (s.id, part)
            assert rows.raw_payload(s.id, part) == expected, (s.id, part)
    canonical = next(s.id for s in scrapes if s.raw and s.id == s.id.lower() and len(s.id) == 36)
    for store in (packed, rows):  # ids are compared as the text they are, as SQL does
        assert store.raw_payload(canonical.upper(), "metrics") is None
        assert store.raw_payload(str(uuid.uuid4()), "metrics") is None
        assert store.raw_payload("no-such-scrape", "health") is None
        assert store.raw_payload(canonical, "sentry") is None  # a part never stored


@pytest.mark.parametrize(
    ("scrape_id", "part"),
    [
        (123, "metrics"),
        (None, "metrics"),
        (uuid.UUID(int=5), "health"),
        ("x", None),
        ("x", b"metrics"),
    ],
)
def test_a_scrape_id_or_part_that_is_no_text_is_one_parameter_error(
    stores: tuple[Store, Store, list[Scrape]], scrape_id: object, part: object
) -> None:
    packed, rows, _ = stores
    for store in (packed, rows):
        with pytest.raises(ParameterError) as info:
            store.raw_payload(scrape_id, part)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
