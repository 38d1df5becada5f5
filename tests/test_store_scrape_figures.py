"""`Store.scrape_figures` in a store that packs: the packed scrapes' fields come from their
blocks, the recent scrapes' from their details rows (read apart from the thin scrape rows,
placed by sid), and every row answers what was written (a ledger of the scrapes written,
not another read), both backends."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from lsops_lib.models import Memory
from lsops_lib.store import Store, pack
from tests.fixtures.store import at, make_scrape

PERIOD = 20 * 60_000  # 20-minute periods: the first ones packed, the last one rows


def _scrapes() -> list:
    out = []
    for minute in range(70):
        for target in ("a", "b"):
            if minute % 9 == 4 and target == "a":  # no answer at all
                out.append(make_scrape(minute, None, target=target))
                continue
            status = ["OK", "DEGRADED", "ERROR"][minute % 3]
            s = make_scrape(minute, {"/api/x": (minute, 10.0, 0.0)}, target=target, status=status)
            rss = 50_000_000 + minute * 1_000 + (7 if target == "b" else 0)
            health = dataclasses.replace(s.health, memory=Memory(rss=rss, heap_used=minute))
            out.append(dataclasses.replace(s, health=health))
    return out


def _ints(column: pd.Series) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in column]


def test_scrape_figures_answer_what_was_written(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD))
    scrapes = _scrapes()
    with Store(store_url) as store:
        for s in scrapes:
            store.record_scrape(s)
        with store.engine.connect() as conn:
            blocks = conn.execute(text("SELECT COUNT(*) FROM lsops_scrape_blocks")).scalar()
            rows = conn.execute(text("SELECT COUNT(*) FROM lsops_scrape_details")).scalar()
        assert blocks and rows  # both paths: packed scrapes and details rows
        for target in (None, "a", "b"):
            start, end = at(3), at(66) + timedelta(seconds=30)
            got = store.scrape_figures(start, end, target, with_health=True)
            want = [
                s
                for s in scrapes
                if start <= s.collected_at < end and (target is None or s.target == target)
            ]
            want.sort(key=lambda s: (s.collected_at, s.target))  # a written before b
            assert list(got["ts"]) == [s.collected_at for s in want]
            assert list(got["target"]) == [s.target for s in want]
            assert list(got["status"]) == [
                s.health.status if s.health else "NO_ANSWER" for s in want
            ]
            assert _ints(got["rss"]) == [s.health.memory.rss if s.health else None for s in want]
            assert _ints(got["heap_used"]) == [
                s.health.memory.heap_used if s.health else None for s in want
            ]
            assert _ints(got["http_status"]) == [
                s.health.http_status if s.health else None for s in want
            ]
