"""Backups verified: the dump files read and judged, and the restore drill.

    dumps = find_dumps(["/var/backups/longsang/*.dump"])      # globs -> dump paths
    check = check_backups(dumps, live=insp, restore=True)      # BackupCheck
    check.exit_code, check.status, check.as_dict()             # what `lsops backup check` prints

The runbook: "Supabase handles automatic backups - verify backup completion"; "Manual
backup: `pg_dump ... > backup.sql`"; "Data loss: restore from backup". A backup nobody has
restored is a hope, so each dump is read to its end, and `restore=True` restores the newest
one into a throwaway cluster (`pgtemp.PostgresCluster`, the embedded PostgreSQL of the demo)
and compares its tables' rows with the live database's.

Three modules, one concern each: `db.dumps` reads the files (format, size, age, tables,
extensions, complete or not: see there), this one judges them, `db.drill` restores one.
Each question is one small function:

    live_tables(insp, schemas)      the live database's tables (extension members left out)
    live_row_counts(insp, ...)      exact count(*) below `backup_exact_rows`, else the
                                    planner's estimate; exact again where the estimate
                                    disagrees with the dump's rows (`expected`)
    judge(dump, previous, ...)      a dump's verdict: ok, too old, empty, truncated,
                                    unreadable, client too old, future, no live tables,
                                    other database, missing tables, shrunk
    check_backups(paths, ...)       every dump judged, newest first (one dated in the
                                    future after those dated in the past); the drill
    unmatched(patterns)             the paths and globs that name no dump, in words

Exit codes follow the monitoring-plugin convention, judged on the newest dump (`exit_code`):
2 when it is older than `[backups] max_age`, empty, truncated or unreadable, or the drill
failed; 3 (unknown) when the client programs are older than the pg_dump that wrote it
(`client too old`: pg_restore cannot read it, which says nothing of the dump); 1 for a
shrink beyond `[thresholds] backup_shrink` against the previous dump of the same format
(a gzip-compressed plain dump is its own format there), missing tables (a dump of another
database is one whose tables are all missing), a date more than FUTURE_TOLERANCE_S in the
future (`future`: its age is unknown), no live table in `[backups] schemas` (`no live
tables`: nothing compared) or restored rows off the live count by more than
`backup_rows_tolerance`; else 0.
The live database is only ever read (a READ ONLY `Inspector`); the drill's PostgreSQL is
its own.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import fmt
from ..config import (
    BACKUPS_ENV,
    DEFAULT_BACKUP_MAX_AGE_S,
    Settings,
    Thresholds,
    backup_settings,
)
from ..exceptions import DatabaseError
from .dumps import (
    FORMATS,
    BackupError,
    DumpContents,
    dump_bytes,
    dump_format,
    dump_mtime,
    find_dumps,
    find_tool,
    is_gzip,
    qualified,
    quote_ident,
    read_dump,
)

if TYPE_CHECKING:
    from .connect import Inspector
    from .drill import Drill

__all__ = [
    "FORMATS",
    "PLUGIN_STATUS",
    "VERDICTS",
    "BackupCheck",
    "BackupError",
    "DumpCheck",
    "DumpContents",
    "check_backups",
    "check_configured",
    "find_dumps",
    "find_tool",
    "inspect_dump",
    "judge",
    "live_database_name",
    "live_row_counts",
    "live_tables",
    "unmatched",
]

PLUGIN_STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
FUTURE_TOLERANCE_S = 300.0  # a dump dated further ahead than this is `future`
EMPTY = "zero bytes"
# every verdict with its severity (the exit code it gives the newest dump), worst first
VERDICTS = {
    "empty": 2,
    "truncated": 2,
    "unreadable": 2,
    "too old": 2,
    "client too old": 3,  # pg_restore older than the dump: unknown, not a bad dump
    "future": 1,  # dated ahead of this machine's clock: its age is unknown
    "no live tables": 1,  # the configured schemas hold no live table: nothing compared
    "other database": 1,
    "missing tables": 1,
    "shrunk": 1,
    "ok": 0,
}


# --- the live database (read only) ---------------------------------------------------------


def live_database_name(insp: Inspector) -> str:
    return str(insp.scalar("SELECT current_database()"))


def live_tables(insp: Inspector, schemas: Sequence[str]) -> list[str]:
    """The live database's tables (`schema.table`) in `schemas`: ordinary and partitioned
    tables, without those an extension owns (pg_dump leaves them out too)."""
    df = insp.frame(
        """
        SELECT n.nspname AS schema, c.relname AS "table"
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname = ANY(:schemas)
          AND NOT EXISTS (
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """,
        {"schemas": list(schemas)},
    )
    return [qualified(s, t) for s, t in zip(df["schema"], df["table"], strict=True)]


def live_row_counts(
    insp: Inspector,
    schemas: Sequence[str],
    exact_below: int,
    *,
    expected: Mapping[str, int] | None = None,
    tolerance: float = 0.0,
) -> dict[str, tuple[int, bool]]:
    """Rows per live table in `schemas`: {`schema.table`: (rows, exact)}. Exact
    `count(*)` for tables the planner estimates below `exact_below` rows, the planner's
    estimate (`reltuples`, else the live tuple count) for the big ones. Tables an
    extension owns are left out, as in `live_tables`.

    `expected` (the restored dump's rows per table): a big table whose estimate is off
    them by more than `tolerance` of the larger is counted exactly after all, each in its
    own statement under the inspection's statement_timeout (an estimate is stale after a
    bulk DELETE or INSERT not yet analyzed: it alone never makes a mismatch). A count
    that fails (the timeout, a lock) leaves the estimate, still marked not exact."""
    df = insp.frame(
        """
        SELECT n.nspname AS schema, c.relname AS "table",
               (CASE WHEN c.reltuples >= 0 THEN c.reltuples
                     ELSE COALESCE(s.n_live_tup, 0) END)::bigint AS estimate
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(:schemas)
          AND NOT EXISTS (
              SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """,
        {"schemas": list(schemas)},
    )
    counts: dict[str, tuple[int, bool]] = {}
    small: list[tuple[str, str]] = []
    for schema, table, estimate in zip(df["schema"], df["table"], df["estimate"], strict=True):
        if int(estimate) < exact_below:
            small.append((schema, table))
        else:
            counts[qualified(schema, table)] = (int(estimate), False)
    for start in range(0, len(small), 50):  # one query per 50 small tables
        chunk = small[start : start + 50]
        sql = " UNION ALL ".join(
            f"SELECT {i} AS i, count(*) AS n FROM {quote_ident(s)}.{quote_ident(t)}"
            for i, (s, t) in enumerate(chunk)
        )
        exact = insp.frame(sql)
        for i, n in zip(exact["i"], exact["n"], strict=True):
            counts[qualified(*chunk[int(i)])] = (int(n), True)
    if expected:
        for schema, table in zip(df["schema"], df["table"], strict=True):
            name = qualified(schema, table)
            rows, exact = counts[name]
            want = expected.get(name)
            if exact or want is None or abs(rows - want) <= tolerance * max(rows, want):
                continue
            try:
                n = insp.scalar(f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}")
            except DatabaseError:
                continue  # the estimate stays (not exact): said as such
            counts[name] = (int(n), True)
    return counts


# --- judging -------------------------------------------------------------------------------


@dataclass
class DumpCheck:
    """One dump, judged. `as_dict()` is its entry in the check's JSON."""

    path: Path
    format: str | None
    bytes: int
    mtime: datetime
    age_s: float
    contents: DumpContents
    verdict: str = "ok"
    findings: list[str] = field(default_factory=list)
    reason: str = ""  # the finding that gave the verdict
    gzip: bool = False  # a plain dump compressed with gzip
    ahead_s: float = 0.0  # how far its date is ahead of the check's clock (age_s is then 0)

    @property
    def future(self) -> bool:
        return self.ahead_s > FUTURE_TOLERANCE_S

    @property
    def kind(self) -> str:
        """What sizes are compared within, as the dumps table shows it: the format,
        `plain (gzip)` for a compressed plain dump."""
        return f"{self.format} (gzip)" if self.gzip else str(self.format)

    @property
    def complete(self) -> bool:
        return self.contents.complete

    @property
    def severity(self) -> int:
        return VERDICTS[self.verdict]

    @property
    def detail(self) -> str:
        return "; ".join(self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "gzip": self.gzip,
            "bytes": self.bytes,
            "age_s": round(self.age_s, 1),
            "complete": self.complete,
            "tables": self.contents.tables,
            "verdict": self.verdict,
            "detail": self.detail,
        }


def _names(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def judge(
    dump: DumpCheck,
    previous: DumpCheck | None,
    *,
    max_age_s: float,
    shrink: float,
    live: list[str] | None,
    live_name: str | None = None,
    live_problem: str | None = None,
    schemas: Sequence[str] = ("public",),
) -> DumpCheck:
    """Set the dump's verdict (the worst of its findings) and its findings, in words:
    completeness, age against `max_age_s`, size against the `previous` complete dump of
    the same format (a drop beyond `shrink` flagged), tables against the `live` ones
    (None: not compared, `live_problem` says why; empty: the `schemas` hold none, a
    warning). A dump dated more than FUTURE_TOLERANCE_S ahead is `future`, its age unknown."""
    found: list[tuple[str, str]] = []  # (verdict, text)
    c = dump.contents
    if dump.bytes == 0 and c.problem == EMPTY:
        found.append(("empty", EMPTY))
    elif c.client_too_old:
        found.append(("client too old", c.problem or "client too old"))
    elif not c.complete:
        found.append(("truncated" if c.truncated else "unreadable", c.problem or "unreadable"))
    else:
        found.append(("ok", "complete"))
    old = dump.age_s > max_age_s
    if dump.future:
        found.append(
            (
                "future",
                f"dated {fmt.instant(dump.mtime)}, {fmt.duration(dump.ahead_s)} ahead of this "
                "machine's clock: its age is unknown",
            )
        )
    else:
        found.append(
            (
                "too old" if old else "ok",
                f"{fmt.duration(dump.age_s)} old"
                + (f", over the {fmt.duration(max_age_s)} allowed" if old else ""),
            )
        )
    if dump.bytes == 0:
        pass
    elif dump.format is None:  # not a dump: no earlier one of its kind to compare with
        found.append(("ok", fmt.size(dump.bytes)))
    elif previous is not None and previous.bytes > 0:
        change = (dump.bytes - previous.bytes) / previous.bytes
        shrunk = change < -shrink
        found.append(
            (
                "shrunk" if shrunk else "ok",
                f"{fmt.size(dump.bytes)}, {fmt.rel(change)} against the previous {previous.kind}"
                f" dump of {fmt.instant(previous.mtime)}"
                + (f" (a drop over {fmt.pct(shrink, 0)})" if shrunk else ""),
            )
        )
    else:
        found.append(("ok", f"{fmt.size(dump.bytes)}, no earlier complete {dump.kind} dump"))
    if c.tables is not None:
        found.append(("ok", fmt.counted(len(c.tables), "table")))
        if live is None:
            found.append(("ok", f"tables not compared: {live_problem or 'no database configured'}"))
        elif live:
            held = set(c.tables)
            missing = [t for t in live if t not in held]
            if len(missing) == len(live) and c.complete:
                origin = f"dumped from database {c.dbname!r}, " if c.dbname else ""
                found.append(
                    (
                        "other database",
                        f"{origin}holds none of the {len(live)} tables of the live database"
                        + (f" {live_name!r}" if live_name else ""),
                    )
                )
            elif missing and c.complete:
                found.append(
                    (
                        "missing tables",
                        f"{fmt.counted(len(missing), 'live table')} missing: {_names(missing)}",
                    )
                )
            elif not missing:
                every = "all" if len(live) > 1 else "the"
                found.append(("ok", f"{every} {fmt.counted(len(live), 'live table')} present"))
        else:
            found.append(
                (
                    "no live tables",
                    "tables not compared: the live database"
                    + (f" {live_name!r}" if live_name else "")
                    + f" has no table in the schemas {', '.join(schemas)} ([backups] schemas)",
                )
            )
    verdict = min((v for v, _ in found), key=list(VERDICTS).index)  # VERDICTS: worst first
    dump.verdict = verdict
    dump.findings = [text for _, text in found]
    dump.reason = next(text for v, text in found if v == verdict)
    return dump


@dataclass
class BackupCheck:
    """A whole check: every dump judged (newest first), the drill when asked for, the exit
    code and status of the monitoring-plugin convention."""

    files: list[DumpCheck]
    restore: Drill | None = None
    database: str | None = None  # the live database's NAME the tables were compared with
    unmatched: list[str] = field(default_factory=list)  # paths naming no dump, in words

    @property
    def newest(self) -> DumpCheck | None:
        return self.files[0] if self.files else None

    @property
    def exit_code(self) -> int:
        """2 no dump / newest too old, empty, truncated, unreadable / drill failed;
        3 newest client too old (unknown); 1 newest shrunk, missing tables, restored rows
        off; 0 otherwise."""
        newest = self.newest
        if newest is None:
            return 2
        code = newest.severity
        if self.restore is not None:
            code = max(code, self.restore.severity)
        return code

    @property
    def status(self) -> str:
        return PLUGIN_STATUS[self.exit_code]

    def as_dict(self) -> dict[str, Any]:
        """The `--json` document: status, exit_code, newest, files, restore (or None);
        unmatched (the paths and globs that named no dump, in words) when there are any."""
        newest = self.newest
        doc = {
            "status": self.status,
            "exit_code": self.exit_code,
            "newest": str(newest.path) if newest else None,
            "files": [f.as_dict() for f in self.files],
            "restore": self.restore.as_dict() if self.restore is not None else None,
        }
        if self.unmatched:
            doc["unmatched"] = list(self.unmatched)
        return doc


def unmatched(patterns: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Of `patterns`, those that name no dump, each said: `X does not exist`, `nothing
    matches X`, `no dump in X` (a folder)."""
    said: list[str] = []
    for pattern in patterns:
        if find_dumps([pattern]):
            continue
        text = os.path.expanduser(str(pattern))
        if os.path.isdir(text):
            said.append(f"no dump in {text}")
        elif os.path.lexists(text):
            said.append(f"{text} is not a file or folder")
        elif glob.has_magic(text):
            said.append(f"nothing matches {text}")
        else:
            said.append(f"{text} does not exist")
    return said


def inspect_dump(path: Path, now: datetime) -> DumpCheck:
    """One dump read (not yet judged); one that cannot be read at all is `unreadable`
    (dated by its own entry when that can be looked at, else `now`)."""
    try:
        size, mtime = dump_bytes(path), dump_mtime(path)
    except OSError as exc:  # gone since it was found, or a folder we may not enter
        problem = f"cannot read: {exc.strerror or exc}"
        try:
            mtime = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
        except OSError:
            mtime = now
        check = DumpCheck(path, None, 0, mtime, 0.0, DumpContents(False, problem=problem))
        check.age_s = max(0.0, (now - mtime).total_seconds())
        check.ahead_s = max(0.0, (mtime - now).total_seconds())
        return check
    form = dump_format(path)
    if not os.access(path, os.R_OK):
        contents = DumpContents(False, problem="cannot read: permission denied")
    elif size == 0:
        contents = DumpContents(False, problem=EMPTY)
    else:
        contents = read_dump(path, form)
    age = max(0.0, (now - mtime).total_seconds())
    check = DumpCheck(
        path, form, size, mtime, age, contents, gzip=form == "plain" and is_gzip(path)
    )
    check.ahead_s = max(0.0, (mtime - now).total_seconds())
    return check


def check_backups(
    paths: Sequence[str | os.PathLike[str]],
    *,
    max_age_s: float = DEFAULT_BACKUP_MAX_AGE_S,
    thresholds: Thresholds | None = None,
    live: Inspector | None = None,
    live_problem: str | None = None,
    database: str | None = None,
    schemas: Sequence[str] = ("public",),
    restore: bool = False,
    now: datetime | None = None,
) -> BackupCheck:
    """Judge the dumps `paths` (dump paths, e.g. from `find_dumps`); `live`: the live
    database (read only) for the table comparison and the drill's counts (`live_problem`:
    why there is none, said in each dump's findings); `database`: its name, as stored;
    `restore`: run the drill on the newest dump. An unreachable live database is said in
    each dump's findings, never raised."""
    from .drill import restore_drill, skipped_drill

    t = thresholds or Thresholds()
    now = now or datetime.now(UTC)
    dumps = [inspect_dump(Path(p), now) for p in paths]
    # newest first; a dump dated in the future after those dated in the past (never "the
    # newest" while there is one of those: it would hide tonight's dump)
    dumps.sort(key=lambda d: (not d.future, d.mtime, str(d.path)), reverse=True)

    live_list: list[str] | None = None
    live_name, problem = None, live_problem
    if live is not None:
        from ..exceptions import DatabaseError

        try:
            live_list = live_tables(live, schemas)
            live_name = live_database_name(live)
        except DatabaseError as exc:
            live_list, problem = None, str(exc)
    for i, dump in enumerate(dumps):
        previous = next(
            (d for d in dumps[i + 1 :] if d.complete and d.kind == dump.kind and d.bytes > 0),
            None,
        )
        judge(
            dump,
            previous,
            max_age_s=max_age_s,
            shrink=t.backup_shrink,
            live=live_list,
            live_name=live_name,
            live_problem=problem,
            schemas=schemas,
        )
    check = BackupCheck(dumps, database=database)
    if restore and dumps:
        newest = dumps[0]
        cut_tar = newest.format == "tar" and newest.contents.truncated  # pg_restore may spin
        if newest.bytes == 0 or newest.format is None or newest.contents.tables is None or cut_tar:
            why = (
                "the client programs are too old to read it"
                if newest.verdict == "client too old"
                else f"the newest dump is {newest.verdict}"
            )
            check.restore = skipped_drill(newest, t, f"not restored: {why}")
        else:
            check.restore = restore_drill(
                newest,
                live=live if live_list is not None else None,
                schemas=schemas,
                thresholds=t,
            )
    return check


def check_configured(
    settings: Settings,
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    database: str | None = None,
    restore: bool = False,
    env: Mapping[str, str] | None = None,
) -> BackupCheck:
    """`lsops backup check`: the dumps of `paths`, else of `[backups] paths` /
    `LSOPS_BACKUPS`, judged against the configured database (`database`: a name of
    lsops.toml) when there is one. ConfigError when there is nothing to check."""
    from ..exceptions import ConfigError, DatabaseError
    from .connect import connect

    conf = backup_settings(settings, env=env)
    patterns = [str(p) for p in paths] or list(conf.paths)
    if not patterns:
        raise ConfigError(
            "no backups to check: give PATHs, or set [backups] paths in lsops.toml "
            f"or {BACKUPS_ENV}"
        )
    live: Inspector | None = None
    problem = name = None
    if database is not None or settings.database_url:
        url = settings.database(database)
        name = database or settings.database_name or "default"
        try:
            live = connect(url)
        except DatabaseError as exc:
            problem = str(exc)
    try:
        check = check_backups(
            find_dumps(patterns),
            max_age_s=conf.max_age_s,
            thresholds=settings.thresholds,
            live=live,
            live_problem=problem,
            database=name,
            schemas=conf.schemas,
            restore=restore,
        )
        check.unmatched = unmatched(patterns)
        return check
    finally:
        if live is not None:
            live.close()
