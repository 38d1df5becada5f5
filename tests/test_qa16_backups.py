"""QA16, backups: real dumps of the planted LongSang database (the machine's pg_dump) in
the cases the explorer found wrong: unreadable dumps and folders (run without root's
DAC-override capabilities, so file modes apply), the caller's PG* variables and the drill,
`[backups] max_age` as a number, a dump dated in the future, a typo in `[backups] schemas`,
a `pg_dump --clean` plain dump, a truncated .sql.gz drilled, `[` in a path, a path that
does not exist, and the headline of a failed drill. Expected values come from the test's
own doing (the modes it set, the dates it gave, the rows it counted with psycopg or read
from the decompressed dump itself)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import backup_settings, load_settings
from lsops_lib.db import connect
from lsops_lib.db.backups import check_backups, find_dumps
from lsops_lib.exceptions import ConfigError
from tests.fixtures.backups import BackupDumps, cut, live_counts, pg_dump, place
from tests.fixtures.pg import Planted

HOUR = 3600.0
DAY = 24 * HOUR


def _check(paths: list[Path], live_url: str | None = None, **kw: Any) -> Any:
    insp = connect(live_url) if live_url else None
    try:
        return check_backups(paths, live=insp, **kw)
    finally:
        if insp is not None:
            insp.close()


def _run(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, ["backup", "check", *args], env=env)


# --- 1. unreadable dumps and folders ---------------------------------------------------------


def _without_dac(tmp_path: Path) -> list[str]:
    """The lsops command, as root without the DAC-override capabilities (file modes then
    apply to root too), or as the unprivileged user the tests run as."""
    lsops = Path(sys.executable).with_name("lsops")
    command = [str(lsops)] if lsops.is_file() else [sys.executable, "-m", "lsops_lib.cli"]
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be made to apply")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]


def _lsops_json(command: list[str], path: Path, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSOPS_", "PG"))}
    env.update(LSOPS_STORE=f"sqlite:///{tmp_path / 'm.sqlite'}", COLUMNS="160")
    proc = subprocess.run(
        [*command, "backup", "check", "--json", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.mark.postgres
def test_unreadable_entries_are_judged_each_on_their_own(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    command = _without_dac(tmp_path)
    folder = tmp_path / "dumps"
    for name, age in (("a.dump", 3 * HOUR), ("b.dump", 2 * HOUR), ("c.dump", HOUR)):
        place(backup_dumps.custom, folder, name, age_s=age)
    locked = place(backup_dumps.directory, folder, "locked.dir", age_s=5 * HOUR)
    fsck = folder / "lost+found"  # a backup disk's mount point: root's, 0700; not a dump
    fsck.mkdir()
    inner = place(backup_dumps.custom, tmp_path / "closed", "x.dump", age_s=HOUR)
    when = time.time() - 5 * HOUR  # the folder's own date: all that can be read of it
    os.utime(locked, (when, when))
    locked.chmod(0o000)
    inner.parent.chmod(0o000)
    fsck.chmod(0o000)
    try:
        code, doc, _ = _lsops_json(command, folder, tmp_path)
        verdicts = {Path(f["path"]).name: f["verdict"] for f in doc["files"]}
        assert verdicts == {
            "a.dump": "ok",
            "b.dump": "ok",
            "c.dump": "ok",
            "locked.dir": "unreadable",
        }
        (entry,) = [f for f in doc["files"] if f["verdict"] == "unreadable"]
        assert "Permission denied" in entry["detail"]
        assert abs(entry["age_s"] - (time.time() - when)) < 120
        assert (code, doc["newest"]) == (0, str(folder / "c.dump"))  # the newest still judged

        # given on their own: one verdict each, CRITICAL, never a traceback
        for path in (locked, inner):
            code, doc, _ = _lsops_json(command, path, tmp_path)
            (entry,) = doc["files"]
            assert (entry["path"], entry["verdict"]) == (str(path), "unreadable")
            assert "Permission denied" in entry["detail"]
            assert (code, doc["status"]) == (2, "CRITICAL")
    finally:
        locked.chmod(0o755)
        inner.parent.chmod(0o755)
        fsck.chmod(0o755)


# --- 2. the caller's PG* variables and the drill -----------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PGSSLMODE", "require"),
        ("PGOPTIONS", "-c statement_timeout=1"),
        ("PGTARGETSESSIONATTRS", "read-only"),
        ("PGSERVICE", "no_such_service_qa16"),
    ],
)
def test_the_callers_pg_variables_never_reach_the_drill(
    name: str,
    value: str,
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    pg_cluster: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = live_counts(pg_cluster, longsang_db.name)
    dump = place(backup_dumps.custom, tmp_path / "dumps")
    monkeypatch.setenv(name, value)
    check = _check([dump], restore=True)
    assert check.restore.error is None
    assert {t["table"]: t["dump_rows"] for t in check.restore.tables} == expected
    assert (check.status, os.environ[name]) == ("OK", value)  # the caller's, left as it was


# --- 3. [backups] max_age as a number ----------------------------------------------------------


def test_a_number_max_age_is_range_checked_like_a_duration(tmp_path: Path) -> None:
    config = tmp_path / "lsops.toml"
    for bad in ("nan", "inf", "-inf", "1e300", "876001", "1e-9"):
        config.write_text(f"[backups]\nmax_age = {bad}\n")
        with pytest.raises(ConfigError, match=r"max_age .*from 1ms to 36500d"):
            backup_settings(load_settings(config, env={}), env={})
    # the bounds themselves: 36500 days = 876000 hours; 1 ms = 1/3600000 hour
    for good, seconds in (("876000", 36500 * DAY), ("0.001", 3.6), ("30", 30 * HOUR)):
        config.write_text(f"[backups]\nmax_age = {good}\n")
        assert backup_settings(load_settings(config, env={}), env={}).max_age_s == pytest.approx(
            seconds
        )


# --- 4. a dump dated in the future ---------------------------------------------------------------


@pytest.mark.postgres
def test_a_dump_dated_in_the_future_neither_ranks_newest_nor_passes(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    folder = tmp_path / "dumps"
    ahead = place(backup_dumps.custom, folder, "stamped-ahead.dump", age_s=-365 * DAY)
    tonight = cut(place(backup_dumps.custom, folder, "tonight.dump", age_s=HOUR), 0.5)
    skewed = place(backup_dumps.custom, folder, "skewed.dump", age_s=-60)  # a clock a minute off
    check = check_backups(find_dumps([folder]))
    assert [(f.path.name, f.verdict) for f in check.files] == [
        ("skewed.dump", "ok"),
        ("tonight.dump", "truncated"),
        ("stamped-ahead.dump", "future"),
    ]
    skewed.unlink()
    check = check_backups(find_dumps([folder]))
    assert (check.newest.path, check.status, check.exit_code) == (tonight, "CRITICAL", 2)
    (entry,) = [f for f in check.as_dict()["files"] if f["verdict"] == "future"]
    assert "ahead of this machine's clock" in entry["detail"]
    alone = check_backups([ahead])
    assert (alone.newest.verdict, alone.status, alone.exit_code) == ("future", "WARNING", 1)


# --- 5. [backups] schemas naming no live table ----------------------------------------------------


@pytest.mark.postgres
def test_schemas_holding_no_live_table_are_said_not_passed(
    backup_dumps: BackupDumps, longsang_db: Planted, pg_cluster: Any, tmp_path: Path
) -> None:
    with pg_cluster.connect(longsang_db.name) as conn:
        (n,) = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'pubic'").fetchone()
    assert n == 0
    dump = place(backup_dumps.other, tmp_path / "dumps", age_s=HOUR)
    check = _check([dump], longsang_db.password_url, schemas=["pubic"])
    (entry,) = check.as_dict()["files"]
    assert entry["verdict"] == "no live tables"
    assert "no table in the schemas pubic" in entry["detail"]
    assert (check.status, check.exit_code) == ("WARNING", 1)


# --- 6. a pg_dump --clean plain dump drilled ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("args", [["--clean"], ["--clean", "--create"]])
def test_a_clean_plain_dump_restores_without_failing_the_drill(
    args: list[str],
    longsang_db: Planted,
    pg_cluster: Any,
    tmp_path: Path,
) -> None:
    expected = live_counts(pg_cluster, longsang_db.name)
    dump = pg_dump(pg_cluster, longsang_db.name, tmp_path / "clean.sql", *args)
    assert "\nDROP " in dump.read_text()  # DROP TABLE ...; with --create, DROP DATABASE
    check = _check([dump], longsang_db.password_url, restore=True)
    drill = check.restore
    assert drill.error is None and drill.ignored_errors > 0
    assert {t["table"]: t["dump_rows"] for t in drill.tables} == expected
    assert (check.status, check.exit_code) == ("OK", 0)

    # another statement's "does not exist" still fails the drill
    text = dump.read_text()
    at = text.rindex("--\n-- PostgreSQL database dump complete")
    dump.write_text(text[:at] + "INSERT INTO public.no_such_table_qa16 VALUES (1);\n" + text[at:])
    drill = _check([dump], restore=True).restore
    assert drill.error is not None and "no_such_table_qa16" in drill.error


# --- 7. a truncated .sql.gz drilled ---------------------------------------------------------------


def _complete_copies(text: str) -> dict[str, int]:
    """Rows of each COPY block that ends (`\\.`) within `text`: `public.name` -> rows."""
    rows: dict[str, int] = {}
    table, count = None, 0
    for line in text.split("\n"):
        if table is None and line.startswith("COPY ") and line.endswith("FROM stdin;"):
            table, count = line.split()[1], 0
        elif table is not None and line == "\\.":
            rows[table.replace('"', "")] = count
            table = None
        elif table is not None:
            count += 1
    return rows


@pytest.mark.postgres
def test_a_truncated_gz_drill_restores_what_decompresses(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    dump = cut(place(backup_dumps.plain_gz, tmp_path / "dumps"), 0.9)
    reader = zlib.decompressobj(31)  # the gzip the cut file still holds, decompressed here
    text = reader.decompress(dump.read_bytes()).decode("utf-8", "replace")
    assert not reader.eof  # it is cut
    expected = _complete_copies(text)
    assert expected and sum(expected.values()) > 0
    check = _check([dump], restore=True)
    assert check.newest.verdict == "truncated"
    restored = {t["table"]: t["dump_rows"] for t in check.restore.tables}
    assert {name: restored.get(name) for name in expected} == expected


# --- 8. a path holding [ ] --------------------------------------------------------------------------


def test_an_existing_path_is_taken_as_it_is_before_any_glob(tmp_path: Path) -> None:
    brackets = tmp_path / "[bold]x.dump"
    brackets.write_bytes(b"PGDMP")
    (tmp_path / "bx.dump").write_bytes(b"PGDMP")  # what the glob [bold]x.dump would match
    folder = tmp_path / "[nightly]"
    folder.mkdir()
    (folder / "a.dump").write_bytes(b"PGDMP")
    assert find_dumps([brackets]) == [brackets]
    assert find_dumps([folder]) == [folder / "a.dump"]
    assert find_dumps([tmp_path / "*.dump"]) == sorted([brackets, tmp_path / "bx.dump"])


# --- 9. the texts: a path naming nothing, a failed drill under an ok dump ----------------------------


def test_a_path_naming_no_dump_is_named(lsops_env: dict[str, str], tmp_path: Path) -> None:
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"}
    missing = tmp_path / "longsnag"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run([str(missing)], env)
    assert result.exit_code == 2
    assert f"CRITICAL (exit 2)  no dump found: {missing} does not exist" in result.stdout
    doc = json.loads(
        _run([str(missing), str(empty), str(tmp_path / "*.dump"), "--json"], env).stdout
    )
    assert doc["unmatched"] == [
        f"{missing} does not exist",
        f"no dump in {empty}",
        f"nothing matches {tmp_path / '*.dump'}",
    ]
    # beside dumps that were found: said under them, the check judged on what was found
    found = empty / "nightly.sql"
    found.write_bytes(b"")  # an empty dump: judged without any client program
    result = _run([str(missing), str(empty)], env)
    assert result.exit_code == 2 and f"newest dump {found}: empty" in result.stdout
    assert f"no dump found: {missing} does not exist" in result.stdout


@pytest.mark.postgres
def test_the_headline_says_the_drill_failed(
    backup_dumps: BackupDumps, longsang_db: Planted, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    dump = place(backup_dumps.plain, tmp_path / "dumps", age_s=HOUR)
    text = dump.read_text()
    at = text.rindex("--\n-- PostgreSQL database dump complete")
    bad = "SELECT no_such_function_qa16('ERROR: in a string');\n"  # one error, said once
    dump.write_text(text[:at] + bad + text[at:])
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"}
    result = _run([str(dump), "--restore", "--json"], env)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["restore"]["error"].startswith("1 error restoring; first:")
    result = _run([str(dump), "--restore"], env)
    assert result.exit_code == 2
    headline = result.stdout.splitlines()[0]
    assert headline == f"CRITICAL (exit 2)  newest dump {dump}: ok; the restore drill failed"

    # a restore whose rows are off: the headline says that too (WARNING, not "ok" alone)
    short = place(backup_dumps.without_audit_data, tmp_path / "short", age_s=HOUR)
    env["LSOPS_DATABASE_URL"] = longsang_db.password_url
    result = _run([str(short), "--restore"], env)
    assert result.exit_code == 1
    headline = result.stdout.splitlines()[0]
    assert headline == (f"WARNING (exit 1)  newest dump {short}: ok; restored rows off for 1 table")
