"""The demo's backups (issue 12): three dumps of the demo's LongSang database, judged.

In `<demo folder>/backups/`: a good dump taken now (`pg_dump -Fc`), an older one (three days
old: too old to be the newest) and a truncated one (yesterday's run cut short: its table
of contents reads, its data does not). `lsops backup check --restore` is run on them (the
library's `check_configured`, the command's own code) against the demo's database: the good
one is the newest, restored into a second throwaway cluster and compared table by table.
The check is stored in the demo's store, so the DB optimization report shows its Backups
section; `[backups] paths` is added to the demo's lsops.toml, so `lsops backup check` in a
demo shell (`. .demo/lsops.env`) checks the same files.

    run(demo)      the phase "backups" of `lsops demo`, one line printed per dump
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import world
from .errors import DemoError
from .folder import toml_string

__all__ = ["DemoDumps", "check", "make_dumps", "run"]

FOLDER = "backups"
OLDER_AGE = timedelta(days=3)  # beyond [backups] max_age (26 h by default)
TRUNCATED_AGE = timedelta(days=1)  # the last nightly dump, cut short


@dataclass(frozen=True)
class DemoDumps:
    good: Path
    older: Path
    truncated: Path
    expected: dict[str, str]  # file name -> the verdict it must get


def _name(when: datetime) -> str:
    return f"{world.DATABASE}-{when:%Y-%m-%d}.dump"


def make_dumps(
    cluster: Any,
    folder: Path,
    *,
    database: str = world.DATABASE,
    now: datetime | None = None,
) -> DemoDumps:
    """Write the three dumps of `database` (the demo's) into `folder` (emptied first).
    pg_dump is one at least as new as the cluster (it refuses a newer server): the
    cluster's own, else the newest found (`dumps.find_tool`); none is, or pg_dump fails:
    DemoError, one line (the versions, or pg_dump's own last line)."""
    from ..db.dumps import BackupError, clean_env, find_tool, last_line

    try:
        tool = find_tool(
            "pg_dump", server_version=cluster.server_version_num(), prefer=cluster.bindir
        )
    except BackupError as exc:
        raise DemoError(f"cannot write the demo's dumps: {exc}") from None
    now = now or datetime.now(UTC)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    good = folder / _name(now)
    try:
        done = subprocess.run(
            [
                tool,
                "-Fc",
                "-Z1",  # light compression: a third of the time of the default level, here
                "-h",
                str(cluster.host),
                "-p",
                str(cluster.port),
                "-U",
                cluster.superuser,
                "-f",
                str(good),
                database,
            ],
            capture_output=True,
            text=True,
            errors="replace",
            env=clean_env(),
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"{tool} took over 5 minutes to dump the demo's database") from None
    except OSError as exc:
        raise DemoError(f"cannot run {tool}: {exc.strerror}") from None
    if done.returncode != 0:
        raise DemoError(f"{tool} failed (exit {done.returncode}): {last_line(done.stderr)}")
    older = folder / _name(now - OLDER_AGE)
    shutil.copyfile(good, older)
    truncated = folder / _name(now - TRUNCATED_AGE)
    with good.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(good.stat().st_size // 2))
    for path, age in ((older, OLDER_AGE), (truncated, TRUNCATED_AGE)):
        stamp = (now - age).timestamp()
        os.utime(path, (stamp, stamp))
    return DemoDumps(
        good,
        older,
        truncated,
        {good.name: "ok", older.name: "too old", truncated.name: "truncated"},
    )


def add_to_config(demo_folder: Any, folder: Path) -> None:
    """`[backups] paths` in the demo's lsops.toml (`DemoFolder.add_config`: written anew
    by every demo run, kept by `--lab`)."""
    demo_folder.add_config("backups", f"paths = [{toml_string(f'{folder}/*.dump')}]")


def check(settings: Any, folder: Path, store_url: str) -> Any:
    """`lsops backup check --restore` on the demo's dumps, stored in the demo's store."""
    from ..db.backups import check_configured
    from ..store import Store
    from ..store.backups import record_backup_check

    result = check_configured(settings, [str(folder)], restore=True)
    with Store(store_url) as store:
        record_backup_check(store, result.as_dict(), database=result.database)
    return result


def lines(result: Any, dumps: DemoDumps) -> list[str]:
    """One line per dump: its name, its verdict, why, and whether that is the verdict the
    demo planted (a wrong one says so)."""
    out = []
    for dump in result.files:
        expected = dumps.expected.get(dump.path.name)
        mark = "" if expected == dump.verdict else f"  (WRONG: planted as {expected})"
        out.append(f"    {dump.path.name:<26} {dump.verdict:<10} {dump.reason}{mark}")
    return out


def run(demo: Any) -> None:
    """The demo's phase `backups`: dumps written, checked with a restore drill, stored."""
    from ..config import load_settings

    folder = demo.folder.dir / FOLDER
    with demo.phase("backups") as info:
        dumps = make_dumps(demo.cluster, folder)
        add_to_config(demo.folder, folder)
        result = check(load_settings(env=demo.demo_env()), folder, demo.folder.store_url)
        drill = result.restore
        tables = drill.tables if drill is not None else []
        matched = sum(1 for t in tables if t["match"])
        info["detail"] = (
            f"3 dumps in {folder.name}/: {result.status} (exit {result.exit_code}); restore "
            + (
                f"drill {drill.seconds:.1f} s, {matched} of {len(tables)} tables match live"
                if drill is not None and drill.seconds is not None
                else f"drill failed: {drill.error if drill else 'not run'}"
            )
        )
    for text in lines(result, dumps):
        demo.echo(text)
    wrong = [d.path.name for d in result.files if dumps.expected.get(d.path.name) != d.verdict]
    if wrong:
        demo.o.warn(f"lsops: demo backups judged wrongly: {', '.join(wrong)}")
