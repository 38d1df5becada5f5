"""A PostgreSQL store whose tables another session keeps locked (a migration, a `LOCK
TABLE` left open, a stuck transaction) fails a write after `schema.PG_LOCK_WAIT_S`, as
SQLite's busy handler does after `SQLITE_BUSY_S`: the collector says so and scrapes again,
instead of waiting for ever with no word."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url

from lsops_lib.api import Client
from lsops_lib.collect import collect_forever
from lsops_lib.exceptions import StoreError
from lsops_lib.store import Store, schema
from tests.fixtures.store import make_scrape

pytestmark = pytest.mark.timeout(120)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _locked(url: str) -> psycopg.Connection:
    """Another session holding the scrapes table in ACCESS EXCLUSIVE mode, left open."""
    holder = psycopg.connect(_libpq(url))
    holder.execute("LOCK TABLE lsops_scrapes IN ACCESS EXCLUSIVE MODE")
    return holder


def test_a_write_waits_for_a_lock_as_long_as_the_bound_then_fails(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schema.PG_LOCK_WAIT_S == schema.SQLITE_BUSY_S
    monkeypatch.setattr(schema, "PG_LOCK_WAIT_S", 1.0)
    with Store(pg_url) as store:
        store.record_scrape(make_scrape(0, {"/a": (1, 10.0, 0.0)}))
    with Store(pg_url) as store:
        holder = _locked(pg_url)
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match="lock timeout"):
                store.record_scrape(make_scrape(1, {"/a": (2, 10.0, 0.0)}))
            waited = time.monotonic() - started
        finally:
            holder.close()
    assert 0.9 <= waited < 30, waited  # the bound, not an immediate refusal nor for ever
    with Store(pg_url) as store:  # the lock gone, writes go on
        assert store.record_scrape(make_scrape(2, {"/a": (3, 10.0, 0.0)}))
        assert len(store.scrapes()) == 2


def test_a_url_that_sets_its_own_options_keeps_them(pg_url: str) -> None:
    url = f"{pg_url}?options=-c%20lock_timeout%3D123"
    with Store(url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "123ms"
    with Store(pg_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"


def test_the_collector_reports_the_locked_store_and_goes_on(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, sim_client: Client
) -> None:
    monkeypatch.setattr(schema, "PG_LOCK_WAIT_S", 0.5)
    errors: list[str] = []
    stored: list[bool] = []
    with Store(pg_url) as store:  # opened (the collector's start), then the lock is taken
        holder = _locked(pg_url)
        release = threading.Timer(6.0, holder.close)  # past a write's 4 attempts
        release.start()
        try:
            collect_forever(
                sim_client,
                store,
                every=timedelta(milliseconds=700),
                stop=threading.Event(),
                max_scrapes=8,
                on_error=lambda exc: errors.append(str(exc)),
                on_scrape=lambda _scrape, ok: stored.append(ok),
            )
        finally:
            release.cancel()
            holder.close()
        kept = len(store.scrapes())
    assert len(stored) == 8  # every tick scraped: none stuck behind the lock
    assert errors and all("lock timeout" in e for e in errors), errors
    assert stored.count(True) == kept >= 1  # the writes after the lock went away are kept
