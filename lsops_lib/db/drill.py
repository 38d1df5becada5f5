"""The restore drill: the newest dump restored into a throwaway PostgreSQL, its tables
counted and compared with the live database's (the runbook's "Data loss: restore from
backup", rehearsed).

    drill = restore_drill(dump_check, live=insp, schemas=["public"], thresholds=t)
    drill.seconds        the restore's wall time (the recovery time objective as observed)
    drill.tables         table, dump_rows, live_rows, match (per table)
    drill.error          why it failed (None: it restored without an error)

The cluster is `pgtemp.PostgresCluster` (the demo's embedded PostgreSQL: the machine's
server binaries, else the `pgserver` wheel; `LSOPS_PG_BACKEND=pgserver` picks the wheel,
which has pgvector). It is always removed: `stop()` in a `finally` (an exception, Ctrl-C's
KeyboardInterrupt), pgtemp's SIGTERM handler and exit hook, and pgtemp's watchdog process
even when lsops is killed outright. The restore runs as the cluster's superuser with
`--no-owner --no-privileges` (custom, directory) or psql (plain; errors about roles that
only exist in production are ignored, and so are the "does not exist" errors of the DROP
statements a `pg_dump --clean` dump starts with, the database being empty), with the
caller's PG* environment removed. The live
database is only read: its row counts through the read-only `Inspector`.

Counts: the restored tables exactly (`count(*)`, our own throwaway copy); the live tables
exactly below `[thresholds] backup_exact_rows` rows, else the planner's estimate, and
exactly after all where that estimate disagrees with the restored rows (a stale
`reltuples` alone never makes a mismatch; `backups.live_row_counts`). A table matches
when the two differ by at most `backup_rows_tolerance` of the larger (the live database
moved on since the dump).
"""

from __future__ import annotations

import contextlib
import gzip
import re
import subprocess
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import fmt, interrupts
from ..config import Thresholds
from ..exceptions import DatabaseError, LsopsError
from .backups import DumpCheck, live_row_counts
from .connect import Inspector
from .dumps import (
    clean_env,
    find_tool,
    is_gzip,
    last_line,
    qualified,
    quote_ident,
)

__all__ = [
    "RESTORE_DATABASE",
    "Drill",
    "missing_extensions",
    "restore_drill",
    "restored_row_counts",
    "rows_match",
    "skipped_drill",
]

RESTORE_DATABASE = "lsops_restore"
# errors of a plain dump's ownership and grants to roles that exist only in production
_IGNORED = (re.compile(r'role "[^"]*" does not exist'),)
# the statements of a `pg_dump --clean` dump (and --create's DROP DATABASE) that fail on the
# drill's empty database: their "does not exist" errors are ignored (psql -b echoes the
# statement that failed on the line after its error)
_CLEAN_STATEMENT = re.compile(r"^psql:[^\n]*?:\d+: STATEMENT:\s+(?:DROP |ALTER .* DROP )")
# an error line starts so (after psql's file:line prefix); the lines after it (LINE 1: ...,
# HINT:, pg_restore's "Command was: ...", psql -b's STATEMENT: echo) quote the statement
_ERROR = re.compile(r"^(?:psql:[^\n]*?:\d+: )?(?:ERROR:|FATAL:|pg_restore: error:|psql: error:)")
_PSQL_PREFIX = re.compile(r"^psql:[^\n]*?:\d+: ")


@dataclass
class Drill:
    """A restore drill's result. `as_dict()` is the `restore` object of the check's JSON."""

    dump: str
    tolerance: float
    exact_below: int
    seconds: float | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    estimated: list[str] = field(default_factory=list)  # live_rows that are estimates
    missing_extensions: list[str] = field(default_factory=list)
    error: str | None = None
    ignored_errors: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def mismatches(self) -> list[str]:
        return [str(t["table"]) for t in self.tables if t["match"] is False]

    @property
    def severity(self) -> int:
        """2 the drill failed; 1 a live table missing from the restore or its rows off
        beyond the tolerance; 0 otherwise."""
        if self.failed:
            return 2
        return 1 if self.mismatches else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dump": self.dump,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "error": self.error,
            "missing_extensions": list(self.missing_extensions),
            "tolerance": self.tolerance,
            "exact_below_rows": self.exact_below,
            "estimated": list(self.estimated),
            "tables": [dict(t) for t in self.tables],
        }


def rows_match(dump_rows: int, live_rows: int, tolerance: float) -> bool:
    """Within `tolerance` of the larger of the two (0 and 0 match)."""
    return abs(dump_rows - live_rows) <= tolerance * max(dump_rows, live_rows)


def skipped_drill(dump: DumpCheck, thresholds: Thresholds, reason: str) -> Drill:
    """The drill of a dump that cannot be restored at all (no cluster started): failed."""
    return Drill(
        str(dump.path),
        thresholds.backup_rows_tolerance,
        thresholds.backup_exact_rows,
        error=reason,
    )


def missing_extensions(cluster: Any, needed: Sequence[str]) -> list[str]:
    """The extensions of `needed` that the cluster cannot create (not installed there)."""
    if not needed:
        return []
    with cluster.connect("postgres") as conn:
        rows = conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (list(needed),)
        ).fetchall()
    available = {r[0] for r in rows}
    return sorted(set(needed) - available)


def restored_row_counts(cluster: Any, dbname: str, schemas: Sequence[str]) -> dict[str, int]:
    """Exact rows of every table in `schemas` of the restored database."""
    with cluster.connect(dbname) as conn:
        tables = conn.execute(
            """
            SELECT n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
              AND NOT EXISTS (
                  SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
            ORDER BY 1, 2
            """,
            (list(schemas),),
        ).fetchall()
        counts: dict[str, int] = {}
        for schema, table in tables:
            row = conn.execute(
                f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}"  # type: ignore[arg-type]
            ).fetchone()
            counts[qualified(schema, table)] = int(row[0]) if row else 0
    return counts


def _restore_command(cluster: Any, dump: DumpCheck, dbname: str) -> tuple[list[str], bool]:
    """The restore command and whether the dump is fed on its stdin (a .sql.gz)."""
    where = ["-h", str(cluster.host), "-p", str(cluster.port), "-U", cluster.superuser]
    if dump.format == "plain":
        gz = is_gzip(dump.path)
        command = [find_tool("psql"), "-X", "-q", "-b", "-v", "ON_ERROR_STOP=0", *where]
        command += ["-d", dbname]
        return [*command, "-f", "-" if gz else str(dump.path)], gz
    command = [find_tool("pg_restore"), "--no-owner", "--no-privileges", *where, "-d", dbname]
    return [*command, str(dump.path)], False


def _run(command: list[str], log: Path, feed: Path | None) -> int:
    """Run a restore command, its stderr to `log`, a .gz decompressed into its stdin.
    The child never outlives an exception here (Ctrl-C included)."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(),
        )
        try:
            if feed is not None:
                assert proc.stdin is not None
                try:  # read1: each read hands over what decompressed before a cut's EOFError
                    with gzip.open(feed, "rb") as src:
                        while chunk := src.read1(1 << 16):
                            proc.stdin.write(chunk)
                except (EOFError, OSError, zlib.error):
                    pass  # a cut .gz: what was read is restored, the check says it is cut
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            with interrupts.noted([]) as noted:
                while True:  # a Ctrl-C dropped on the way stops the restore all the same
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        return proc.wait(timeout=0.2)
                    interrupts.again(noted)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _errors(log: Path) -> tuple[list[str], int]:
    """The restore's error lines (psql's file:line prefix removed) and how many were
    ignored (roles that exist only in production; the DROP statements of a --clean dump
    finding nothing to drop)."""
    try:
        text = log.read_text("utf-8", "replace")
    except OSError:
        return [], 0
    errors: list[str] = []
    ignored = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _ERROR.match(line):
            continue
        if any(p.search(line) for p in _IGNORED):
            ignored += 1
            continue
        after = lines[i + 1] if i + 1 < len(lines) else ""
        if "does not exist" in line and _CLEAN_STATEMENT.match(after):
            ignored += 1
            continue
        errors.append(" ".join(_PSQL_PREFIX.sub("", line).split())[:300])
    return errors, ignored


def _new_cluster() -> Any:
    from ..pgtemp import PostgresCluster

    return PostgresCluster(pg_stat_statements=False)


def restore_drill(
    dump: DumpCheck,
    *,
    live: Inspector | None = None,
    schemas: Sequence[str] = ("public",),
    thresholds: Thresholds | None = None,
    cluster_factory: Callable[[], Any] | None = None,
) -> Drill:
    """Restore `dump` into a new throwaway cluster, count its tables, compare with the
    `live` database (read only; None: no comparison), remove the cluster. Never raises
    for a failed restore: `Drill.error` says what failed."""
    from ..pgtemp import PostgresUnavailable

    t = thresholds or Thresholds()
    drill = Drill(str(dump.path), t.backup_rows_tolerance, t.backup_exact_rows)
    restored: dict[str, int] | None = None
    cluster = (cluster_factory or _new_cluster)()
    try:
        cluster.start()
        target = dump.contents.create_database
        if target is None:
            cluster.create_database(RESTORE_DATABASE)
        drill.missing_extensions = missing_extensions(cluster, dump.contents.extensions)
        command, gz = _restore_command(cluster, dump, "postgres" if target else RESTORE_DATABASE)
        log = Path(cluster.root) / "restore.log"
        started = time.monotonic()
        code = _run(command, log, dump.path if gz else None)
        drill.seconds = time.monotonic() - started
        errors, drill.ignored_errors = _errors(log)
        if errors or code != 0:
            drill.error = _failure(errors, code, log, drill.missing_extensions)
        restored = restored_row_counts(cluster, target or RESTORE_DATABASE, schemas)
    except PostgresUnavailable as exc:
        drill.error = f"no PostgreSQL for the drill: {exc}"
    except LsopsError as exc:
        drill.error = drill.error or str(exc)
    except Exception as exc:  # noqa: BLE001 - psycopg talking to the drill's own cluster
        drill.error = drill.error or f"the drill's PostgreSQL failed: {last_line(str(exc))}"
    finally:
        cluster.stop()
    if drill.error is None and not dump.complete:
        drill.error = f"restored, but the dump is {dump.verdict}: {dump.contents.problem}"
    if restored is not None:
        _compare(drill, restored, live, schemas, t)
    return drill


def _failure(errors: list[str], code: int, log: Path, missing: list[str]) -> str:
    if errors:
        text = f"{fmt.counted(len(errors), 'error')} restoring; first: {errors[0]}"
    else:
        text = f"the restore exited with {code}: {last_line(log.read_text('utf-8', 'replace'))}"
    if missing:
        text += (
            f"; extensions the dump needs that the drill's PostgreSQL lacks: {', '.join(missing)}"
        )
        if "vector" in missing:
            text += " (LSOPS_PG_BACKEND=pgserver gives a PostgreSQL with pgvector)"
    return text


def _compare(
    drill: Drill,
    restored: dict[str, int],
    live: Inspector | None,
    schemas: Sequence[str],
    t: Thresholds,
) -> None:
    counts: dict[str, tuple[int, bool]] | None = None
    if live is not None:
        with contextlib.suppress(DatabaseError):  # said by the files' findings already
            counts = live_row_counts(
                live,
                schemas,
                t.backup_exact_rows,
                expected=restored,
                tolerance=t.backup_rows_tolerance,
            )
    names = sorted(set(restored) | set(counts or {}))
    for name in names:
        dump_rows = restored.get(name)
        live_rows, exact = (counts or {}).get(name, (None, True))
        match: bool | None = None
        if counts is not None and live_rows is not None:
            match = dump_rows is not None and rows_match(
                dump_rows, live_rows, t.backup_rows_tolerance
            )
        if live_rows is not None and not exact:
            drill.estimated.append(name)
        drill.tables.append(
            {"table": name, "dump_rows": dump_rows, "live_rows": live_rows, "match": match}
        )
