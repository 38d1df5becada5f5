"""The restore drill: real dumps of the planted LongSang database restored into a throwaway
cluster of the machine's PostgreSQL, counted, and compared with counts asked here (psycopg,
pg_class); the drill's cluster is gone afterwards whether it succeeded, failed or was
interrupted (SIGTERM, SIGINT, SIGKILL), and the live database was only read."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.config import Thresholds
from lsops_lib.db import connect
from lsops_lib.db.backups import check_backups, inspect_dump, judge
from lsops_lib.db.drill import restore_drill, rows_match
from lsops_lib.demo.processes import mentioning
from lsops_lib.pgtemp import PostgresCluster, find_bindir
from tests.fixtures.backups import BackupDumps, cut, live_counts, place
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres


def _drill(paths: list[Path], live_url: str | None, **kw: Any) -> Any:
    insp = connect(live_url) if live_url else None
    try:
        return check_backups(paths, live=insp, restore=True, **kw)
    finally:
        if insp is not None:
            insp.close()


def _cluster_folder() -> Path:
    """A folder of our own for clusters, in the system's temporary folder: the server runs
    as `nobody` when the tests run as root, and pytest's tmp_path is closed to others."""
    folder = Path(tempfile.mkdtemp(prefix="lsops-test-drill-", dir=tempfile.gettempdir()))
    folder.chmod(0o755)
    return folder


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where this test's clusters live (other tests' clusters never show up here)."""
    folder = _cluster_folder()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _gone(folder: Path, timeout_s: float = 20.0) -> list[str]:
    """What is left of the clusters in `folder` once `timeout_s` passed: files, processes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p.name for p in folder.iterdir()] + [str(p) for p in mentioning(str(folder))]
        if not left:
            return []
        time.sleep(0.2)
    return left


@pytest.mark.parametrize("kind", ["custom", "plain_gz", "directory", "tar"])
def test_a_complete_dump_restores_with_equal_counts(
    kind: str,
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    pg_cluster: Any,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    dump = place(getattr(backup_dumps, kind), tmp_path / "dumps")
    expected = live_counts(pg_cluster, longsang_db.name)
    check = _drill([dump], longsang_db.password_url)
    drill = check.as_dict()["restore"]
    assert drill["error"] is None and drill["missing_extensions"] == []
    assert drill["dump"] == str(dump) and drill["seconds"] > 0
    assert {t["table"]: t["dump_rows"] for t in drill["tables"]} == expected
    assert {t["table"]: t["live_rows"] for t in drill["tables"]} == expected  # all small: exact
    assert all(t["match"] is True for t in drill["tables"])
    assert set(drill["tables"][0]) == {"table", "dump_rows", "live_rows", "match"}
    assert drill["estimated"] == [] and drill["tolerance"] == Thresholds().backup_rows_tolerance
    assert expected["public.plant_audit"] == 12000  # the planted rows, restored
    assert (check.status, check.exit_code) == ("OK", 0)
    assert _gone(private_tmp) == []


def test_big_tables_are_compared_with_the_planner_estimate(
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    pg_cluster: Any,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    dump = place(backup_dumps.custom, tmp_path / "dumps")
    t = Thresholds(backup_exact_rows=4000)
    with pg_cluster.connect(longsang_db.name) as conn:
        rows = conn.execute(
            "SELECT 'public.' || relname, reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples >= 4000"
        ).fetchall()
    estimates = {name: int(n) for name, n in rows}
    assert {"public.plant_audit", "public.plant_orders"} <= set(estimates)
    drill = _drill([dump], longsang_db.password_url, thresholds=t).restore
    assert sorted(drill.estimated) == sorted(estimates)
    shown = {row["table"]: row for row in drill.tables}
    for name, estimate in estimates.items():
        assert shown[name]["live_rows"] == estimate
        assert shown[name]["match"] is rows_match(shown[name]["dump_rows"], estimate, 0.10)


def test_rows_off_beyond_the_tolerance_are_flagged(
    backup_dumps: BackupDumps, longsang_db: Planted, private_tmp: Path, tmp_path: Path
) -> None:
    dump = place(backup_dumps.without_audit_data, tmp_path / "dumps")  # plant_audit: 0 rows
    check = _drill([dump], longsang_db.password_url)
    drill = check.restore
    assert drill.error is None
    assert drill.mismatches == ["public.plant_audit"]
    (audit,) = [t for t in drill.tables if t["table"] == "public.plant_audit"]
    assert (audit["dump_rows"], audit["live_rows"], audit["match"]) == (0, 12000, False)
    assert check.exit_code == 1  # a warning: the restore worked, a table came back short
    assert rows_match(95, 100, 0.05) and not rows_match(94, 100, 0.05) and rows_match(0, 0, 0.1)


def test_a_failed_drill_removes_its_cluster(
    backup_dumps: BackupDumps, private_tmp: Path, tmp_path: Path
) -> None:
    dump = cut(place(backup_dumps.custom, tmp_path / "dumps"), 0.6)
    checked = judge(
        inspect_dump(dump, datetime.now(UTC)),
        None,
        max_age_s=3600,
        shrink=0.2,
        live=None,
    )
    assert checked.verdict == "truncated"
    clusters: list[PostgresCluster] = []

    def factory() -> PostgresCluster:
        clusters.append(PostgresCluster(pg_stat_statements=False))
        return clusters[0]

    drill = restore_drill(checked, cluster_factory=factory)
    assert drill.error is not None and "end of file" in drill.error and drill.severity == 2
    (cluster,) = clusters
    assert cluster.root is not None and not cluster.root.exists() and not cluster.running
    assert _gone(private_tmp) == []
    # through the check: the drill of the newest dump fails, so the check is critical
    check = check_backups([dump], restore=True)
    assert check.restore is not None and check.restore.failed and check.exit_code == 2
    assert _gone(private_tmp) == []


def test_an_empty_newest_dump_is_not_restored(tmp_path: Path, private_tmp: Path) -> None:
    (tmp_path / "nightly.dump").touch()
    check = check_backups([tmp_path / "nightly.dump"], restore=True)
    assert check.restore is not None
    assert check.restore.error == "not restored: the newest dump is empty"
    assert check.as_dict()["restore"]["seconds"] is None and check.exit_code == 2
    assert list(private_tmp.iterdir()) == []  # no cluster was even started


def _lsops() -> list[str]:
    lsops = Path(sys.executable).with_name("lsops")
    return [str(lsops)] if lsops.is_file() else [sys.executable, "-m", "lsops_lib.cli"]


def _running(program: str, text: str) -> list[int]:
    """Live processes of `program` (argv[0]'s name) whose command line contains `text`. A
    process lsops forked is lsops's own command line until it execs, so the name counts."""
    found = []
    for pid in mentioning(text):
        with contextlib.suppress(OSError):
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if Path(argv0.decode(errors="replace")).name == program:
                found.append(pid)
    return found


_SIGNALS = {
    "SIGTERM": (signal.SIGTERM, (-signal.SIGTERM, 143)),
    "SIGINT": (signal.SIGINT, (130,)),
    "SIGKILL": (signal.SIGKILL, (-9,)),
}


@pytest.mark.parametrize(
    ("moment", "name"),
    [
        ("restoring", "SIGTERM"),
        ("restoring", "SIGINT"),
        ("restoring", "SIGKILL"),
        ("initializing", "SIGKILL"),
        ("starting", "SIGTERM"),
    ],
)
def test_an_interrupted_drill_removes_its_cluster(
    moment: str,
    name: str,
    backup_dumps: BackupDumps,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Interrupted while `psql -f <dump>` restores, while `initdb` makes the drill's cluster
    or while `pg_ctl start` starts its server (an orphaned initdb or pg_ctl goes on writing
    into the folder, a postmaster may start after the interruption)."""
    sig, codes = _SIGNALS[name]
    clusters = _cluster_folder()
    request.addfinalizer(lambda: shutil.rmtree(clusters, ignore_errors=True))
    dump = place(backup_dumps.slow, tmp_path / "dumps")  # sleeps a minute while restoring
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env.update(TMPDIR=str(clusters), LSOPS_STORE=f"sqlite:///{tmp_path / 'm.sqlite'}")
    proc = subprocess.Popen(
        [*_lsops(), "backup", "check", str(dump), "--restore"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def reached() -> bool:
            if moment == "restoring":
                return bool(_running("psql", str(dump)))
            program = "initdb" if moment == "initializing" else "pg_ctl"
            return bool(_running(program, str(clusters)))

        deadline = time.monotonic() + 90
        while not reached() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.01)
        assert reached(), f"the drill was never seen {moment}"
        assert list(clusters.iterdir()), "no cluster in the private folder"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in codes, proc.stderr.read() if proc.stderr else ""
    assert _gone(clusters) == []


def test_the_live_database_is_only_read(
    backup_dumps: BackupDumps,
    longsang_db: Planted,
    pg_cluster: Any,
    private_tmp: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a trap: the caller's PG* variables point at the live database as its superuser; a
    # restore that used them would create the other dump's `invoices` table there
    for name, value in {
        "PGHOST": str(pg_cluster.host),
        "PGPORT": str(pg_cluster.port),
        "PGUSER": pg_cluster.superuser,
        "PGDATABASE": longsang_db.name,
    }.items():
        monkeypatch.setenv(name, value)

    def databases() -> set[str]:
        with pg_cluster.connect() as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}

    before = databases()
    dump = place(backup_dumps.other, tmp_path / "dumps")
    drill = _drill([dump], longsang_db.password_url).restore
    assert drill.error is None
    assert [t["table"] for t in drill.tables if t["dump_rows"] is not None] == ["public.invoices"]
    assert databases() == before
    with pg_cluster.connect(longsang_db.name) as conn:
        assert conn.execute("SELECT to_regclass('public.invoices')").fetchone() == (None,)
    assert _gone(private_tmp) == []


# --- an extension the drill's PostgreSQL lacks -------------------------------------------------


@pytest.fixture(scope="module")
def vector_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain dump of a LongSang database with a real pgvector column, made by the pg_dump
    of the `pgserver` wheel (PostgreSQL 16 with pgvector) from its own cluster."""
    pgserver = pytest.importorskip("pgserver", reason="the pgserver wheel is not installed")
    if find_bindir() is None:
        pytest.skip("no server binaries: the drill itself would run on pgserver (with pgvector)")
    from lsops_lib.db.schema import load_longsang_schema

    mp = pytest.MonkeyPatch()
    mp.setenv("LSOPS_PG_BACKEND", "pgserver")
    cluster = PostgresCluster()
    try:
        cluster.start()
        mp.undo()
        url = cluster.create_database("longsang_vec")
        assert load_longsang_schema(url) is True
        cluster.execute(
            "INSERT INTO projects (name, slug) VALUES ('p', 'p')", dbname="longsang_vec"
        )
        path = tmp_path_factory.mktemp("vector") / "longsang-vector.sql"
        bindir = Path(pgserver.__file__).parent / "pginstall" / "bin"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
        subprocess.run(
            [str(bindir / "pg_dump"), "-h", cluster.host, "-p", str(cluster.port)]
            + ["-U", cluster.superuser, "-f", str(path), "longsang_vec"],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )
    except Exception as exc:  # noqa: BLE001 - the wheel cannot run here
        pytest.skip(f"pgserver could not make the dump: {exc}")
    finally:
        mp.undo()
        cluster.stop()
    return path


def test_extensions_the_dump_needs_and_the_cluster_lacks_are_named(
    vector_dump: Path, private_tmp: Path, tmp_path: Path
) -> None:
    probe = PostgresCluster(pg_stat_statements=False)
    probe.start()
    try:
        with probe.connect() as conn:
            has_vector = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone() == (1,)
    finally:
        probe.stop()
    if has_vector:
        pytest.skip("this machine's PostgreSQL has pgvector: nothing is missing")
    dump = place(vector_dump, tmp_path / "dumps")
    check = check_backups([dump], restore=True)
    assert check.files[0].contents.extensions == ["vector"]
    drill = check.as_dict()["restore"]
    assert drill["missing_extensions"] == ["vector"]
    assert "extensions the dump needs that the drill's PostgreSQL lacks: vector" in drill["error"]
    assert check.exit_code == 2
    # what could be restored is still counted: projects came back, its one row with it
    assert {"table": "public.projects", "dump_rows": 1, "live_rows": None, "match": None} in (
        drill["tables"]
    )
    assert _gone(private_tmp) == []
