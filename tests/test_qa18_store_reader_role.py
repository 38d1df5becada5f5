"""Opening a PostgreSQL store never needs the right to write nor waits for a writer's lock
(QA 17, store 1): the periods a late sample left dirty are packed on open by a role that
can, when no writer holds the target; a SELECT-only role, or a target a writer holds
locked, leaves them to the writers, and every read answers the same from rows and blocks
(checked against the Oracle, the delta rule in plain Python)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from lsops_lib.exceptions import StoreError
from lsops_lib.models import Scrape
from lsops_lib.store import Store, pack, schema
from lsops_lib.times import to_ms
from tests.fixtures.store import T0, Oracle, assert_same_intervals, make_scrape

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

PERIOD_MS = 30 * 60_000  # periods of 30 minutes: two are packed by minute 60


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _count(minute: float) -> int:
    return int(100 + 8 * minute)


def _dirty(url: str) -> list[str]:
    with psycopg.connect(_libpq(url)) as conn:
        rows = conn.execute(
            "SELECT key FROM lsops_pack_state WHERE key LIKE 'pack_dirty:%' ORDER BY key"
        ).fetchall()
    return [str(k) for (k,) in rows]


@pytest.fixture
def dirty_store(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> list[Scrape]:
    """A store of one target, scrapes every 5 minutes from 0 to 70 (periods 0 and 30
    packed), then a late scrape at minute 12.5 (another collector, behind): period 0 left
    dirty, as a collector killed before its next pass leaves it. The scrapes written."""
    monkeypatch.setenv(pack.PERIOD_ENV, str(PERIOD_MS))
    minutes = [*range(0, 75, 5), 12.5]
    scrapes = [
        make_scrape(m, {"/api/a": (_count(m), 10.0 + m, 0.01), "/api/b": (int(m), 5.0, 0.0)})
        for m in minutes
    ]
    with Store(pg_url) as store:
        for s in scrapes:
            assert store.record_scrape(s)
    assert _dirty(pg_url) == [f"{pack.DIRTY}1:{to_ms(T0)}"]  # period 0
    return scrapes


@pytest.fixture
def reader_url(pg_url: str, dirty_store: list[Scrape]) -> Iterator[str]:
    """The store's URL as a role granted USAGE on the schema and SELECT on its tables only."""
    role, password = f"ro_{uuid.uuid4().hex[:8]}", "Ro-pw-18x"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # type: ignore[arg-type]
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")  # type: ignore[arg-type]
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")  # type: ignore[arg-type]
    try:
        yield make_url(pg_url).set(username=role, password=password).render_as_string(False)
    finally:
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]


def _assert_reads(store: Store, scrapes: list[Scrape]) -> None:
    oracle = Oracle(scrapes)
    for bucket in ("minute", "hour"):
        assert_same_intervals(
            store.endpoint_intervals(bucket=bucket),
            oracle.endpoint_intervals(bucket=bucket),
            bucket,
        )
    assert len(store.scrapes()) == len(scrapes)


def test_a_select_only_role_opens_and_reads_a_store_with_dirty_periods(
    pg_url: str, dirty_store: list[Scrape], reader_url: str
) -> None:
    dirty = _dirty(pg_url)
    with Store(reader_url) as store:  # was: "cannot open store ...: permission denied"
        _assert_reads(store, dirty_store)
    assert _dirty(pg_url) == dirty  # left to a writer
    with Store(pg_url) as store:  # a writer's open packs them
        _assert_reads(store, dirty_store)
    assert _dirty(pg_url) == []
    with Store(reader_url) as store:
        _assert_reads(store, dirty_store)


def test_an_open_leaves_a_target_a_writer_holds_to_it_and_never_waits(
    pg_url: str, dirty_store: list[Scrape], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "PG_LOCK_WAIT_S", 4.0)
    dirty = _dirty(pg_url)
    holder = psycopg.connect(_libpq(pg_url))  # a writer in the middle of its transaction
    try:
        holder.execute("SELECT id FROM lsops_targets FOR UPDATE")
        started = time.monotonic()
        try:
            with Store(pg_url) as store:  # was: waited the 4 s, then "lock timeout"
                waited = time.monotonic() - started
                _assert_reads(store, dirty_store)
        except StoreError as exc:
            pytest.fail(f"the open waited {time.monotonic() - started:.1f} s: {exc}")
    finally:
        holder.close()
    assert waited < 2.0, waited
    assert _dirty(pg_url) == dirty  # left to the writer holding the target
    with Store(pg_url) as store:  # the lock gone: the next open packs them
        _assert_reads(store, dirty_store)
    assert _dirty(pg_url) == []


def _readme_grants() -> str:
    """The README's SQL block of the store's privileges, as written there."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("## Sharing the store on PostgreSQL", 1)[1].split("```sql\n", 1)[1]
    return block.split("```", 1)[0]


def test_the_readme_grants_let_a_collector_write_and_a_reader_read(
    pg_url: str, dirty_store: list[Scrape]
) -> None:
    """The README's GRANTs, run as written: a collector role with them writes (and packs)
    the store, a reader role with them reads it and cannot write."""
    suffix = uuid.uuid4().hex[:8]
    roles = {"lsops_collector": f"col_{suffix}", "lsops_reader": f"rd_{suffix}"}
    database = make_url(pg_url).database
    sql = _readme_grants().replace("lsops_metrics", f'"{database}"')
    for name, role in roles.items():
        sql = sql.replace(name, role)
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        for role in roles.values():
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{suffix}'")  # type: ignore[arg-type]
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement.split("--")[0])  # type: ignore[arg-type]
    url = {
        name: make_url(pg_url).set(username=role, password=f"pw-{suffix}").render_as_string(False)
        for name, role in roles.items()
    }
    try:
        late = make_scrape(80, {"/api/a": (_count(80), 90.0, 0.01), "/api/b": (80, 5.0, 0.0)})
        with Store(url["lsops_collector"]) as store:  # opens, packs the dirty period, writes
            assert store.record_scrape(late)
        assert _dirty(pg_url) == []
        with Store(url["lsops_reader"]) as store:
            _assert_reads(store, [*dirty_store, late])
            with pytest.raises(StoreError, match="permission denied"):
                store.record_scrape(make_scrape(85, {"/api/a": (_count(85), 9.0, 0.0)}))
    finally:
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            for role in roles.values():
                conn.execute(f"DROP OWNED BY {role}")  # type: ignore[arg-type]
                conn.execute(f"DROP ROLE {role}")  # type: ignore[arg-type]
