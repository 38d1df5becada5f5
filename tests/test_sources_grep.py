"""`lsops logs --grep` is "(any case)" for all of Unicode, on SQLite (whose own lower()
lowers ASCII only) and on PostgreSQL (whose lower() under the C locale of the test
cluster does too): the stored entries found are those Python's `str.lower` finds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.sources.patterns import PatternMiner
from lsops_lib.store import Store
from lsops_lib.store import sources as tables

pytestmark = pytest.mark.timeout(120)

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TEXTS = [
    "Đã lưu bản ghi 17 vào Ngân hàng dữ liệu",
    "ĐÃ LƯU BẢN GHI 18 VÀO NGÂN HÀNG DỮ LIỆU",
    "đã lưu bản ghi 19",
    "Da luu ban ghi 20 (no diacritics)",
    "❌ Express Error: Ngân hàng dữ liệu từ chối kết nối",
    "ÉCHEC: 100%_done Straße ÖL",
    "heap limit reached",
]
GREPS = ["Đã lưu", "đã LƯU", "ngân HÀNG", "ĐÃ LƯU BẢN GHI 1", "échec", "öl", "100%_d", "HEAP"]


def _plant(store: Store) -> None:
    miner = PatternMiner()
    entries = [
        tables.Entry(
            ts=int((START + timedelta(minutes=k)).timestamp() * 1000),
            estimated=False,
            source="api-error.log",
            stream="error",
            level="error",
            pattern_id=miner.assign(text),
            text=text,
        )
        for k, text in enumerate(TEXTS)
    ]
    tables.record_logs(store, "default", entries, [], [], miner.changed())


def _expected(grep: str) -> list[str]:
    return [t for t in TEXTS if grep.lower() in t.lower()]


def test_grep_matches_every_case_of_unicode_on_both_backends(store: Store) -> None:
    _plant(store)
    end = START + timedelta(hours=1)
    for grep in GREPS:
        found = tables.log_lines(store, "default", START, end, grep=grep)
        assert list(found["text"]) == _expected(grep), grep
        counts = tables.pattern_counts(store, "default", START, end, grep=grep)
        assert int(counts["count"].sum()) == len(_expected(grep)), grep
    # the expectations are not empty: every grep above finds something
    assert {g: len(_expected(g)) for g in GREPS[:3]} == {"Đã lưu": 3, "đã LƯU": 3, "ngân HÀNG": 3}


def test_lsops_logs_grep_finds_vietnamese_capitals(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'store.sqlite'}"}
    with Store(env["LSOPS_STORE"]) as store:
        _plant(store)
    args = ["logs", "--since", "2026-12-01T08:00:00Z", "--until", "2026-12-01T09:00:00Z"]
    result = CliRunner().invoke(main, [*args, "--grep", "đã lưu", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert sum(p["count"] for p in json.loads(result.stdout)["patterns"]) == 3
