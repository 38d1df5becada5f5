"""QA 20, upgrading: a stop request that arrives while `lsops collect` opens (and migrates)
its store ends it before the first scrape, exit 0 (README: "SIGTERM or SIGINT at any
moment of `lsops collect` (start-up included) exits 0"); a role that may only read a store
still to migrate is told so, not "permission denied for schema public"."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib import store as store_module
from lsops_lib.cli import main
from lsops_lib.store import Store
from tests.test_collect_stop import Silent, silent  # noqa: F401 - the fixture
from tests.test_qa18_store_reader_role import _libpq, dirty_store, reader_url  # noqa: F401


@pytest.mark.parametrize("args", [["--once"], ["--once", "--all-targets"]])
def test_a_stop_while_the_store_opens_ends_collect_before_its_first_scrape(
    silent: Silent,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
) -> None:
    opened = store_module.Store.__init__

    def open_then_signal(self: Store, *a: object, **kw: object) -> None:
        opened(self, *a, **kw)  # the migration of an older store runs in here
        signal.raise_signal(signal.SIGTERM)  # ... and the signal lands while it does

    monkeypatch.setattr(store_module.Store, "__init__", open_then_signal)
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    (tmp_path / "lsops.toml").write_text(f'[api]\nurl = "{silent.url}"\nretries = 0\n')
    result = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "lsops.toml"), "collect", *args],
        env={"LSOPS_STORE": url, "LSOPS_API_URL": None, "LSOPS_DATA": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert silent.accepted == []  # the API was never asked
    monkeypatch.setattr(store_module.Store, "__init__", opened)
    with Store(url) as store:
        assert store.scrapes().empty


# --- a role that may only read, on a store with writing left to do ----------------------------


def _set_meta(pg_url: str, key: str, value: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("UPDATE lsops_meta SET value = %s WHERE key = %s", (value, key))


@pytest.mark.postgres
def test_a_reader_of_a_store_still_to_migrate_is_told_what_it_needs(
    pg_url: str,
    reader_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    from lsops_lib.exceptions import StoreError
    from lsops_lib.store.schema import SCHEMA_VERSION

    old = SCHEMA_VERSION - 1  # as the store of the lsops before the upgrade left it
    _set_meta(pg_url, "schema_version", str(old))
    with pytest.raises(StoreError) as caught:
        Store(reader_url)
    said = str(caught.value)
    assert f"has schema version {old}, older than this lsops's ({SCHEMA_VERSION})" in said
    assert "needs a role that may write its tables" in said and "\n" not in said
    assert "Ro-pw-18x" not in said  # the reader's password masked


@pytest.mark.postgres
def test_a_reader_of_a_store_whose_rollup_is_behind_is_told_what_it_needs(
    pg_url: str,
    reader_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    from lsops_lib.exceptions import StoreError
    from lsops_lib.store import rollup

    _set_meta(pg_url, rollup.MARK, "0")  # written by a bulk loader: the rollup is behind
    with pytest.raises(StoreError) as caught:
        Store(reader_url)
    said = str(caught.value)
    assert "has writes left to finish (its hourly rollup is behind)" in said, said
    assert "needs a role that may write its tables" in said


def test_a_migration_is_said_once_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening a store of an older schema migrates it, which takes minutes for a long
    history: one line on stderr says so first; a store already migrated says nothing."""
    from lsops_lib.store.schema import SCHEMA_VERSION
    from tests.fixtures.store import make_scrape
    from tests.test_store_compact import _v3_store

    url = f"sqlite:///{tmp_path / 'v3.sqlite'}"
    _v3_store(url, [make_scrape(m, {"/api/a": (10 + m, 5.0, 0.0)}) for m in range(0, 60, 5)])
    capsys.readouterr()
    with Store(url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert len(store.scrapes()) == 12
    said = capsys.readouterr().err.splitlines()
    assert said == [
        f"lsops: migrating store {url} from schema version 3 to {SCHEMA_VERSION} (once; a long "
        "history takes minutes, and an interrupted migration goes on at the next open)"
    ]
    with Store(url):
        pass
    assert capsys.readouterr().err == ""
