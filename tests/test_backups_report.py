"""Backups in the DB optimization report (the latest check stored in the metrics store)
and in the demo (a good dump, an older one and a truncated one, judged)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from lsops_lib import db, present
from lsops_lib.db import connect
from lsops_lib.db.backups import check_backups, find_dumps
from lsops_lib.present import display
from lsops_lib.store import Store
from lsops_lib.store.backups import latest_backup_check, record_backup_check
from tests.fixtures.backups import BackupDumps, cut, place
from tests.fixtures.demo import DemoRun
from tests.fixtures.pg import Planted

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    out: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj, **_kw: out.append(str(obj.data)))
    present.begin()
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stored(backup_dumps: BackupDumps, longsang_db: Planted, tmp_path: Path) -> dict[str, Any]:
    """Two checks in a store: an older failed one, then one with a drill (the latest)."""
    folder = tmp_path / "dumps"
    cut(place(backup_dumps.custom, folder, f"{XSS}.dump", age_s=600))
    store_url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    insp = connect(longsang_db.password_url)
    try:
        first = check_backups(find_dumps([folder]), live=insp, database="default")
        place(backup_dumps.custom, folder, "nightly.dump", age_s=60)
        latest = check_backups(find_dumps([folder]), live=insp, restore=True, database="default")
    finally:
        insp.close()
    with Store(store_url) as store:
        record_backup_check(store, first.as_dict(), database="default")
        record_backup_check(store, latest.as_dict(), database="default")
        record_backup_check(store, {**first.as_dict(), "status": "X"}, database="elsewhere")
    return {"url": store_url, "check": latest.as_dict(), "folder": folder}


@pytest.mark.postgres
def test_the_report_shows_the_latest_stored_check(
    stored: dict[str, Any], longsang_db: Planted, shown: list[str]
) -> None:
    check = stored["check"]
    assert check["exit_code"] == 0 and check["restore"]["error"] is None
    report = db.optimization_report(url=longsang_db.url, store=stored["url"])
    section = report.sections["backups"]
    assert section.errors == [] and section.unavailable == []
    files = section.frames["backup_files"]
    assert list(files["verdict"]) == [f["verdict"] for f in check["files"]] == ["ok", "truncated"]
    assert list(files["tables"]) == [len(f["tables"]) for f in check["files"]]
    drill = section.frames["backup_restore"]
    assert drill.to_dict("records") == check["restore"]["tables"]
    s = report.summary()
    assert (s["backup_status"], s["backup_newest_verdict"]) == ("OK", "ok")
    assert s["backup_restore_seconds"] == check["restore"]["seconds"]
    assert (s["backup_restore_failed"], s["backup_restore_mismatches"]) == (False, 0)

    present.show_db_section(report, "backups")
    markup = "".join(shown)
    assert "Backups: OK (exit 0)" in markup
    assert "Restore drill: rows restored against the live database" in markup
    assert "restored in " in markup and "rows match within 10 %" in markup
    assert XSS not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert display.PROBLEMS == []


@pytest.mark.postgres
def test_an_unreachable_database_still_shows_its_backups(
    stored: dict[str, Any], shown: list[str]
) -> None:
    url = f"postgresql://ops:Hidden42@127.0.0.1:{_closed_port()}/x"
    report = db.optimization_report(url=url, store=stored["url"])
    assert not report.reachable
    section = report.sections["backups"]
    assert section.errors == [] and "backup_restore" in section.frames
    assert all(sec.errors for name, sec in report.sections.items() if name != "backups")
    present.show_db_section(report, "backups")
    assert "Backups: OK (exit 0)" in "".join(shown)


def test_no_check_stored_is_said_in_a_box(tmp_path: Path, shown: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    Store(url).close()
    report = db.optimization_report(url=f"postgresql://ops@127.0.0.1:{_closed_port()}/x", store=url)
    section = report.sections["backups"]
    assert section.unavailable and "no backup check stored" in section.unavailable[0]
    assert report.summary()["backup_status"] is None
    present.show_db_section(report, "backups")
    assert "Backups: unavailable" in "".join(shown)
    assert [p["section"] for p in display.PROBLEMS] == ["Backups"]


def test_the_table_joins_a_store_on_open_without_a_new_schema_version(tmp_path: Path) -> None:
    import sqlite3

    from lsops_lib.store import SCHEMA_VERSION

    path = tmp_path / "m.sqlite"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:  # a store from before this table existed
        conn.execute("DROP TABLE lsops_backup_checks")
    with Store(f"sqlite:///{path}") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert latest_backup_check(store) is None
        record_backup_check(store, {"status": "OK", "exit_code": 0, "newest": None, "files": []})
        assert latest_backup_check(store)["status"] == "OK"


# --- the demo ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_demo_dumps_are_judged_as_planted(
    pg_cluster: Any, longsang_db: Planted, tmp_path: Path
) -> None:
    from lsops_lib.demo import backups

    dumps = backups.make_dumps(pg_cluster, tmp_path / "backups", database=longsang_db.name)
    assert sorted(p.name for p in find_dumps([tmp_path / "backups"])) == sorted(dumps.expected)
    assert dumps.truncated.stat().st_size == dumps.good.stat().st_size // 2
    insp = connect(longsang_db.password_url)
    try:
        check = check_backups(find_dumps([tmp_path / "backups"]), live=insp)
    finally:
        insp.close()
    assert {f.path.name: f.verdict for f in check.files} == dumps.expected
    assert check.newest is not None and check.newest.path == dumps.good
    lines = backups.lines(check, dumps)
    assert len(lines) == 3 and not any("WRONG" in line for line in lines)
    assert [line.split()[1] for line in lines] == ["ok", "truncated", "too"]


@pytest.mark.postgres
def test_the_demo_shows_its_three_dumps_and_the_report_its_drill(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.stderr
    out = demo_run.stdout
    phase = next(line for line in out.splitlines() if line.startswith("  backups"))
    assert "OK (exit 0)" in phase and "restore drill" in phase and "tables match live" in phase
    verdicts = {
        line.split()[0]: line.split()[1]
        for line in out.splitlines()
        if line.startswith("    longsang-") and ".dump" in line
    }
    assert sorted(verdicts.values()) == ["ok", "too", "truncated"]
    assert "WRONG" not in out
    folder = demo_run.demo_dir / "backups"
    assert sorted(p.name for p in folder.iterdir()) == sorted(verdicts)
    assert "[backups]" in (demo_run.demo_dir / "lsops.toml").read_text()
    html = next(demo_run.outputs.glob("db-optimization/*/*/report.html")).read_text()
    assert "Backups: OK (exit 0)" in html and "Restore drill" in html
