"""`lsops backup check`: real dumps of the planted LongSang database (the machine's
pg_dump) judged against that database, read only. Every verdict is checked against what
the test itself did to the file (cut it, emptied it, aged it, dumped another database,
left a table out) and the table lists against `pg_tables`, asked here with psycopg."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import BackupSettings, Thresholds, backup_settings, load_settings
from lsops_lib.db import connect
from lsops_lib.db.backups import check_backups, check_configured, find_dumps
from lsops_lib.exceptions import ConfigError
from tests.fixtures.backups import OTHER_DATABASE, BackupDumps, cut, place
from tests.fixtures.pg import Planted

HOUR = 3600.0
FILE_KEYS = {
    "path",
    "format",
    "gzip",
    "bytes",
    "age_s",
    "complete",
    "tables",
    "verdict",
    "detail",
}


def _check(paths: list[Path], live_url: str | None = None, **kw: Any) -> Any:
    insp = connect(live_url) if live_url else None
    try:
        return check_backups(paths, live=insp, **kw)
    finally:
        if insp is not None:
            insp.close()


def _bytes(path: Path) -> int:
    if path.is_dir():
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the verdicts -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["custom", "directory", "tar", "plain", "plain_gz"])
def test_a_complete_dump_passes_in_every_format(
    kind: str, backup_dumps: BackupDumps, longsang_db: Planted, tmp_path: Path
) -> None:
    dump = place(getattr(backup_dumps, kind), tmp_path, age_s=HOUR)
    check = _check([dump], longsang_db.password_url, database="prod")
    doc = check.as_dict()
    (entry,) = doc["files"]
    assert entry["format"] == ("plain" if kind == "plain_gz" else kind)
    assert entry["gzip"] is (kind == "plain_gz")
    assert entry["complete"] is True and entry["verdict"] == "ok", entry["detail"]
    assert sorted(entry["tables"]) == sorted(backup_dumps.tables)  # pg_tables, asked apart
    assert entry["bytes"] == _bytes(dump)
    assert abs(entry["age_s"] - HOUR) < 120
    assert f"all {len(backup_dumps.tables)} live tables present" in entry["detail"]
    assert (doc["status"], doc["exit_code"], doc["newest"]) == ("OK", 0, str(dump))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "fraction"),
    [
        ("custom", 0.5),
        ("custom", 0.97),
        ("tar", 0.5),
        ("tar", 0.97),
        ("plain", 0.6),
        ("plain_gz", 0.5),
    ],
)
def test_a_truncated_dump_is_judged_truncated(
    kind: str, fraction: float, backup_dumps: BackupDumps, longsang_db: Planted, tmp_path: Path
) -> None:
    dump = cut(place(getattr(backup_dumps, kind), tmp_path), fraction)
    check = _check([dump], longsang_db.password_url)
    (entry,) = check.as_dict()["files"]
    assert (entry["verdict"], entry["complete"]) == ("truncated", False), entry["detail"]
    assert (check.status, check.exit_code) == ("CRITICAL", 2)


def test_a_tar_member_of_8_gib_or_more_is_read_by_its_base_256_size(tmp_path: Path) -> None:
    """A table's data of 8 GiB or more: tar writes its size in base-256 (the top bit of the
    field set), not in octal. A sparse file: toc.dat, a 9 GiB member, the end blocks."""
    import tarfile

    from lsops_lib.db.dumps import tar_cut

    def header(name: str, size: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        return info.tobuf(format=tarfile.GNU_FORMAT)

    big = 9 * 2**30
    toc = b"PGDMP" + bytes(507)
    whole, cut = tmp_path / "big.tar", tmp_path / "big-cut.tar"
    for path, complete in ((whole, True), (cut, False)):
        with path.open("wb") as fh:
            fh.write(header("toc.dat", len(toc)) + toc)
            member = header("3338.dat", big)
            assert member[124] & 0x80  # base-256, as tar writes it from 8 GiB on
            fh.write(member)
            fh.seek(big, os.SEEK_CUR)  # a hole: nothing written
            if complete:
                fh.write(bytes(1024))
            else:
                fh.truncate(fh.tell() - 4096)
    assert tar_cut(whole) is None
    assert tar_cut(cut) == "3338.dat ends past the end of the file"


@pytest.mark.postgres
def test_a_tar_dump_cut_at_a_member_boundary_is_truncated(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    """pg_restore reads a cut `-Ft` dump up to the cut and exits 0 (restoring part of the
    rows): the archive's own structure tells. Cut where tarfile says a member ends, the
    last data member and the end-of-archive blocks gone."""
    import tarfile

    with tarfile.open(backup_dumps.tar) as tar:
        members = tar.getmembers()
    data = [m for m in members if m.name.endswith(".dat") and m.name != "toc.dat"]
    assert members[0].name == "toc.dat" and data, [m.name for m in members]
    last = data[-1]
    dump = place(backup_dumps.tar, tmp_path)
    with dump.open("r+b") as fh:
        fh.truncate(last.offset)  # every member before the last table's data, whole
    check = check_backups([dump], restore=True)  # a drill would spin in pg_restore
    (entry,) = check.as_dict()["files"]
    assert (entry["verdict"], entry["complete"]) == ("truncated", False), entry["detail"]
    assert "end-of-archive" in entry["detail"]
    assert check.restore is not None and "not restored" in str(check.restore.error)


@pytest.mark.postgres
def test_the_trailer_must_end_a_plain_dump(backup_dumps: BackupDumps, tmp_path: Path) -> None:
    text = backup_dumps.plain.read_text()
    assert "-- PostgreSQL database dump complete" in text[-400:]
    cases = {
        "whole.sql": text,
        # a second dump appended and cut short: the first one's trailer ends nothing
        "appended.sql": text + text[: len(text) // 3],
    }
    for name, body in cases.items():
        (tmp_path / name).write_text(body)
    check = check_backups(find_dumps([tmp_path]))
    assert {f.path.name: f.verdict for f in check.files} == {
        "whole.sql": "ok",
        "appended.sql": "truncated",
    }


@pytest.mark.postgres
def test_a_directory_dump_missing_a_data_file_is_truncated(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    dump = place(backup_dumps.directory, tmp_path)
    biggest = max(dump.glob("*.dat*"), key=lambda p: p.stat().st_size)
    biggest.unlink()
    (entry,) = check_backups([dump]).as_dict()["files"]
    assert (entry["verdict"], entry["complete"]) == ("truncated", False)
    assert "its data does not" in entry["detail"]


@pytest.mark.parametrize("name", ["nightly.dump", "nightly.sql", "nightly.sql.gz"])
def test_a_zero_byte_file_is_judged_empty(name: str, tmp_path: Path) -> None:
    (tmp_path / name).touch()
    check = check_backups(find_dumps([tmp_path]))
    (entry,) = check.as_dict()["files"]
    assert entry["verdict"] == "empty" and entry["bytes"] == 0 and entry["complete"] is False
    assert entry["tables"] is None
    assert (check.status, check.exit_code) == ("CRITICAL", 2)


def test_a_file_that_is_no_dump_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "nightly.dump").write_text("this is not a dump\n")
    (tmp_path / "notes.sql").write_text("SELECT 1;\n")  # SQL, but not pg_dump's
    check = check_backups(find_dumps([tmp_path]))
    assert {f.path.name: f.verdict for f in check.files} == {
        "nightly.dump": "unreadable",
        "notes.sql": "unreadable",
    }
    assert check.exit_code == 2
    (nightly,) = [f for f in check.files if f.path.name == "nightly.dump"]
    assert (
        nightly.detail == "not a PostgreSQL dump (plain, custom, directory or tar); 0 s old; 19 B"
    )


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["custom", "tar"])
def test_a_gzip_compressed_archive_is_said_to_be_one(
    kind: str, backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    """`pg_dump -Fc | gzip`: pg_restore cannot read it; the verdict says what it is (a
    tar that is not pg_dump's, gzip'd or not, is no dump)."""
    import gzip
    import tarfile

    with (
        getattr(backup_dumps, kind).open("rb") as src,
        gzip.open(tmp_path / "a.dump.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    (tmp_path / "notes.txt").write_text("hello\n")
    with tarfile.open(tmp_path / "files.tar", "w") as tar:
        tar.add(tmp_path / "notes.txt", arcname="notes.txt")
    check = check_backups(find_dumps([tmp_path / "a.dump.gz", tmp_path / "files.tar"]))
    verdicts = {f.path.name: (f.format, f.verdict, f.contents.problem) for f in check.files}
    assert verdicts["a.dump.gz"][:2] == (None, "unreadable")
    assert verdicts["a.dump.gz"][2].startswith("a gzip-compressed custom or tar dump")
    assert verdicts["files.tar"] == (
        None,
        "unreadable",
        "not a PostgreSQL dump (plain, custom, directory or tar)",
    )


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["custom", "directory"])
def test_a_dump_newer_than_pg_restore_is_unknown_not_unreadable(
    kind: str, backup_dumps: BackupDumps, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """A dump written by a newer pg_dump (archive version 1.99 in its header, as a
    PostgreSQL 16 dump is 1.15 to a pg_restore 15) is not a bad backup: UNKNOWN (exit 3),
    saying the client is too old and how to name a newer one."""
    dump = place(getattr(backup_dumps, kind), tmp_path / "dumps")
    header = dump / "toc.dat" if dump.is_dir() else dump
    data = bytearray(header.read_bytes())
    assert data[:5] == b"PGDMP"  # then the archive version: major, minor, revision
    data[6] = 99
    header.write_bytes(bytes(data))
    check = check_backups([dump])
    (entry,) = check.as_dict()["files"]
    assert entry["verdict"] == "client too old"
    assert (check.status, check.exit_code) == ("UNKNOWN", 3)
    assert "unsupported version (1.99) in file header" in entry["detail"]
    assert "is older than the pg_dump that wrote this dump" in entry["detail"]
    assert "LSOPS_PG_BINDIR" in entry["detail"]
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"}
    result = _run([str(dump), "--restore"], env)
    assert result.exit_code == 3, result.output
    assert "UNKNOWN (exit 3)" in result.stdout and "client too old" in result.stdout
    assert "not restored: the client programs are too old to read it" in result.stdout


@pytest.mark.postgres
def test_a_dump_of_another_database_is_judged_as_such(
    backup_dumps: BackupDumps, longsang_db: Planted, tmp_path: Path
) -> None:
    dump = place(backup_dumps.other, tmp_path)
    check = _check([dump], longsang_db.password_url)
    (entry,) = check.as_dict()["files"]
    assert entry["complete"] is True and entry["tables"] == ["public.invoices"]
    assert entry["verdict"] == "other database"
    assert f"dumped from database '{OTHER_DATABASE}'" in entry["detail"]
    assert f"none of the {len(backup_dumps.tables)} tables" in entry["detail"]
    assert (check.status, check.exit_code) == ("WARNING", 1)  # "missing tables": all of them
    assert "; 1 table; " in entry["detail"]


@pytest.mark.postgres
def test_a_dump_older_than_the_allowed_age_is_too_old(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    dump = place(backup_dumps.custom, tmp_path, age_s=27 * HOUR)
    old = check_backups([dump], max_age_s=26 * HOUR)
    assert (old.files[0].verdict, old.exit_code) == ("too old", 2)
    assert "over the 1 d 2 h allowed" in old.files[0].detail
    assert check_backups([dump], max_age_s=28 * HOUR).exit_code == 0


@pytest.mark.postgres
def test_a_live_table_left_out_is_missing(
    backup_dumps: BackupDumps, longsang_db: Planted, tmp_path: Path
) -> None:
    dump = place(backup_dumps.without_audit, tmp_path)
    check = _check([dump], longsang_db.password_url)
    (entry,) = check.as_dict()["files"]
    assert "public.plant_audit" in backup_dumps.tables
    assert sorted(entry["tables"]) == sorted(set(backup_dumps.tables) - {"public.plant_audit"})
    assert entry["verdict"] == "missing tables"
    assert "; 1 live table missing: public.plant_audit" in entry["detail"]
    assert check.exit_code == 1
    # without a live database there is nothing to miss: said, not judged
    alone = check_backups([dump])
    assert alone.exit_code == 0
    assert "tables not compared: no database configured" in alone.files[0].detail


@pytest.mark.postgres
def test_a_shrink_beyond_the_threshold_against_the_previous_dump(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    before = place(backup_dumps.plain, tmp_path, "monday.sql", age_s=25 * HOUR)
    after = place(backup_dumps.without_audit_data, tmp_path, "tuesday.sql", age_s=HOUR)
    drop = (after.stat().st_size - before.stat().st_size) / before.stat().st_size
    assert drop < -0.2  # the planted shrink: plant_audit's 12,000 rows left out
    check = check_backups([before, after], thresholds=Thresholds(backup_shrink=0.2))
    assert [f.path.name for f in check.files] == ["tuesday.sql", "monday.sql"]  # newest first
    assert check.files[0].verdict == "shrunk" and check.exit_code == 1
    assert f"{drop * 100:+.1f} %" in check.files[0].detail
    tolerant = check_backups([before, after], thresholds=Thresholds(backup_shrink=-drop + 0.01))
    assert tolerant.files[0].verdict == "ok" and tolerant.exit_code == 0
    # sizes are compared within a format only: a custom dump is not a shrunk plain one
    custom = place(backup_dumps.custom, tmp_path, "wednesday.dump", age_s=60)
    mixed = check_backups([before, custom])
    assert mixed.files[0].verdict == "ok" and "no earlier complete custom dump" in (
        mixed.files[0].detail
    )


@pytest.mark.postgres
def test_a_compressed_plain_dump_is_named_alike_in_the_table_and_the_detail(
    backup_dumps: BackupDumps, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    dump = place(backup_dumps.plain_gz, tmp_path / "dumps", age_s=HOUR)
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}", "COLUMNS": "200"}
    result = _run([str(dump)], env)
    assert result.exit_code == 0, result.output
    assert "no earlier complete plain (gzip) dump" in result.stdout
    (row,) = [r for r in result.stdout.splitlines() if "│" in r and "longsang.sql.gz" in r]
    assert [c.strip() for c in row.split("│")][3] == "plain (gzip)"


@pytest.mark.postgres
def test_judged_on_the_newest_older_ones_keep_their_own_verdicts(
    backup_dumps: BackupDumps, tmp_path: Path
) -> None:
    good = place(backup_dumps.custom, tmp_path, "a-good.dump", age_s=30 * HOUR)
    cut(place(backup_dumps.custom, tmp_path, "b-cut.dump", age_s=HOUR))
    check = check_backups(find_dumps([tmp_path]))
    assert [(f.path.name, f.verdict) for f in check.files] == [
        ("b-cut.dump", "truncated"),
        ("a-good.dump", "too old"),
    ]
    assert check.exit_code == 2
    os.utime(good, None)  # the good one is now the newest
    again = check_backups(find_dumps([tmp_path]))
    assert [(f.path.name, f.verdict) for f in again.files] == [
        ("a-good.dump", "ok"),
        ("b-cut.dump", "truncated"),
    ]
    assert again.exit_code == 0


def test_no_dump_at_all_is_critical(tmp_path: Path) -> None:
    check = check_backups(find_dumps([str(tmp_path / "*.dump")]))
    assert check.as_dict() == {
        "status": "CRITICAL",
        "exit_code": 2,
        "newest": None,
        "files": [],
        "restore": None,
    }


# --- finding the dumps, the settings ---------------------------------------------------------


def test_globs_folders_and_directory_dumps_are_found(tmp_path: Path) -> None:
    (tmp_path / "a.dump").write_bytes(b"PGDMP")
    (tmp_path / "b.sql.gz").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("x")
    fd = tmp_path / "nightly.dir"
    fd.mkdir()
    (fd / "toc.dat").write_bytes(b"PGDMP")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "c.backup").write_bytes(b"PGDMP")
    assert [p.name for p in find_dumps([tmp_path])] == ["a.dump", "b.sql.gz", "nightly.dir"]
    assert [p.name for p in find_dumps([str(tmp_path / "*.dump"), other])] == [
        "a.dump",
        "c.backup",
    ]
    assert [p.name for p in find_dumps([fd])] == ["nightly.dir"]


def test_backup_settings_from_lsops_toml_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text('[backups]\npaths = ["/b/*.dump"]\nmax_age = "2d"\nschemas = ["app"]\n')
    settings = load_settings(config, env={})
    assert backup_settings(settings, env={}) == BackupSettings(("/b/*.dump",), 172800.0, ("app",))
    env = {"LSOPS_BACKUPS": os.pathsep.join(["/x/*.dump", "/y/*.sql.gz"])}
    assert backup_settings(settings, env=env).paths == ("/x/*.dump", "/y/*.sql.gz")
    config.write_text("[backups]\nmax_age = 30\n")  # a number: hours
    assert backup_settings(load_settings(config, env={}), env={}).max_age_s == 30 * HOUR
    assert backup_settings(None, env={}) == BackupSettings((), 26 * HOUR, ("public",))
    for bad in ('max_age = "soon"', "max_age = -1", "paths = 3", "path = []"):
        config.write_text(f"[backups]\n{bad}\n")
        with pytest.raises(ConfigError):
            backup_settings(load_settings(config, env={}), env={})
    config.write_text("[thresholds]\nbackup_shrink = 0.5\nbackup_exact_rows = 10\n")
    t = load_settings(config, env={}).thresholds
    assert (t.backup_shrink, t.backup_exact_rows, Thresholds().backup_shrink) == (0.5, 10, 0.2)


def test_nothing_configured_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no backups to check"):
        check_configured(load_settings(env={}, cwd=tmp_path), env={})


# --- the command -------------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, ["backup", "check", *args], env=env)


@pytest.mark.postgres
def test_the_command_json_exit_codes_and_the_stored_check(
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "dumps"
    place(backup_dumps.custom, folder, "monday.dump", age_s=30 * HOUR)
    place(backup_dumps.without_audit, folder, "tuesday.dump", age_s=HOUR)
    store = tmp_path / "m.sqlite"
    env = {
        **lsops_env,
        "LSOPS_BACKUPS": str(folder / "*.dump"),
        "LSOPS_DATABASE_URL": longsang_db.password_url,
        "LSOPS_STORE": f"sqlite:///{store}",
    }
    result = _run(["--json"], env)
    assert result.exit_code == 1, result.output  # the newest lacks a live table
    doc = json.loads(result.stdout)
    assert set(doc) == {"status", "exit_code", "newest", "files", "restore"}
    assert all(set(f) == FILE_KEYS for f in doc["files"])
    assert (doc["status"], doc["exit_code"], doc["restore"]) == ("WARNING", 1, None)
    assert doc["newest"] == str(folder / "tuesday.dump")
    assert [f["verdict"] for f in doc["files"]] == ["missing tables", "too old"]
    assert [f["format"] for f in doc["files"]] == ["custom", "custom"]

    from lsops_lib.store import Store
    from lsops_lib.store.backups import backup_checks, latest_backup_check

    with Store(f"sqlite:///{store}") as s:
        stored = latest_backup_check(s, "default")
        rows = backup_checks(s)
    assert stored is not None
    assert {k: stored[k] for k in doc} == doc
    assert stored["database"] == "default"
    assert list(rows["newest_verdict"]) == ["missing tables"]

    # PATHs on the command line win over LSOPS_BACKUPS; the text says what the JSON says
    text = _run([str(folder / "monday.dump")], env)
    assert text.exit_code == 2
    assert "CRITICAL (exit 2)" in text.stdout and "too old" in text.stdout
    with Store(f"sqlite:///{store}") as s:
        assert len(backup_checks(s)) == 2


def test_usage_and_settings_errors_exit_3_with_one_line(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    nothing = _run([], {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"})
    assert nothing.exit_code == 3
    assert nothing.stderr.strip().startswith("lsops: no backups to check")
    assert len(nothing.stderr.strip().splitlines()) == 1
    bad = _run(["--bogus"], lsops_env)
    assert bad.exit_code == 3 and "Traceback" not in bad.output
    (tmp_path / "lsops.toml").write_text('[backups]\nmax_age = "later"\n')
    config = _run([str(tmp_path)], lsops_env)
    assert config.exit_code == 3 and "max_age" in config.stderr


@pytest.mark.postgres
def test_no_password_reaches_the_output_or_the_store(
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    pg_cluster: Any,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    dump = place(backup_dumps.custom, tmp_path / "dumps")
    store = tmp_path / "m.sqlite"
    secret = pg_cluster.password
    down = f"postgresql://ops:Hidden42secret@127.0.0.1:{_closed_port()}/x"
    outputs = []
    for url, args in ((longsang_db.password_url, ["--restore"]), (down, [])):
        env = {**lsops_env, "LSOPS_DATABASE_URL": url, "LSOPS_STORE": f"sqlite:///{store}"}
        for fmt_args in ([], ["--json"]):
            result = _run([str(dump), *args, *fmt_args], env)
            assert "Traceback" not in result.output
            outputs.append(result.stdout + result.stderr)
    # the database that is down is said, its password never
    assert "tables not compared: cannot connect to" in outputs[-1]
    assert "ops:***@" in outputs[-1]
    stored = b""
    for path in tmp_path.glob("m.sqlite*"):
        stored += path.read_bytes()
    with sqlite3.connect(store) as conn:
        documents = " ".join(r[0] for r in conn.execute("SELECT document FROM lsops_backup_checks"))
    for text in [*outputs, documents]:
        assert secret not in text and "Hidden42secret" not in text
    assert secret.encode() not in stored and b"Hidden42secret" not in stored


@pytest.mark.postgres
def test_a_missing_client_program_is_unknown_not_a_bad_backup(
    backup_dumps: BackupDumps,
    lsops_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lsops_lib.db import dumps

    monkeypatch.setattr(dumps, "_find_tool", lambda name, bindir, path: None)
    dump = place(backup_dumps.custom, tmp_path / "dumps")
    result = _run([str(dump)], {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"})
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "lsops: pg_restore not found: install the PostgreSQL client (Debian: "
        "postgresql-client) or set LSOPS_PG_BINDIR"
    )


@pytest.mark.postgres
@pytest.mark.parametrize("bindir", ["missing", "empty"])
def test_a_pg_bindir_without_the_client_is_said_not_passed_over(
    bindir: str,
    backup_dumps: BackupDumps,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """LSOPS_PG_BINDIR names the client the user wants (one new enough for their dumps):
    a typo or a folder without pg_restore is said, not replaced by another client."""
    folder = tmp_path / bindir
    if bindir == "empty":
        folder.mkdir()
    dump = place(backup_dumps.custom, tmp_path / "dumps")
    env = {
        **lsops_env,
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}",
        "LSOPS_PG_BINDIR": str(folder),
    }
    result = _run([str(dump)], env)
    assert result.exit_code == 3
    where = "is not a folder" if bindir == "missing" else "holds no pg_restore"
    assert result.stderr.strip() == (
        f"lsops: LSOPS_PG_BINDIR ({folder}) {where}: name the bin folder of a PostgreSQL "
        "client, or unset it"
    )


@pytest.mark.postgres
def test_a_partitioned_table_is_counted_once_in_every_format(
    pg_cluster: Any, tmp_path: Path
) -> None:
    """pg_restore --list shows a partition twice: `TABLE public events_2026` and
    `TABLE ATTACH public events_2026`; the second is no table of its own."""
    from tests.fixtures.backups import pg_dump

    name = "backup_partitioned"
    pg_cluster.drop_database(name)
    pg_cluster.create_database(name)
    try:
        pg_cluster.execute(
            "CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at)",
            "CREATE TABLE events_2026 PARTITION OF events"
            " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "CREATE TABLE notes (id serial PRIMARY KEY, body text)",
            "INSERT INTO events SELECT g, DATE '2026-03-01' + g FROM generate_series(1, 20) g",
            dbname=name,
        )
        with pg_cluster.connect(name) as conn:
            live = sorted(
                f"public.{t}"
                for (t,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            )
        assert live == ["public.events", "public.events_2026", "public.notes"]
        for fmt_args, file in ((["-Fc"], "p.dump"), (["-Fd"], "p.dir"), ([], "p.sql")):
            dump = pg_dump(pg_cluster, name, tmp_path / file, *fmt_args)
            (entry,) = _check([dump]).as_dict()["files"]
            assert sorted(entry["tables"]) == live, (file, entry["tables"])
    finally:
        pg_cluster.drop_database(name)
