"""Reading dump files: which format, how big, how old, what they hold, whether complete.

    find_dumps(["/var/backups/*.dump"])   globs -> dump paths (files and -Fd folders)
    dump_format(path)          plain | custom | directory | tar | None (not a PostgreSQL dump)
    dump_bytes(path), dump_mtime(path)
    read_archive(path)         custom / directory / tar: `pg_restore --list` (its tables,
                               extensions, database name), then a read of the whole archive
                               (`pg_restore -f /dev/null`): the table of contents sits at
                               the start of a custom dump, so `--list` alone passes a
                               truncated one; a dump newer than pg_restore reads is
                               `client_too_old`, not a bad dump
    tar_cut(path)              why a tar archive is cut short (pg_restore restores a cut
                               `-Ft` dump up to the cut and exits 0), else None
    read_plain(path)           .sql / .sql.gz: pg_dump's header, its CREATE TABLE and
                               CREATE EXTENSION lines, and the `PostgreSQL database dump
                               complete` trailer (a truncated .gz fails to decompress)
    find_tool("pg_restore")    the client programs, found where pgtemp finds the server's:
                               LSOPS_PG_BINDIR, else the newest found; given a server's
                               version, one at least as new (pg_dump refuses a newer
                               server), preferring the server's own bin folder

Never raises for a bad dump (`DumpContents.problem` says what is wrong with it); a missing
client program is a `BackupError`. The programs run with the caller's PG* environment
removed (a PGHOST or PGPASSWORD of production never reaches them).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..exceptions import LsopsError

__all__ = [
    "DUMP_SUFFIXES",
    "FORMATS",
    "BackupError",
    "DumpContents",
    "clean_env",
    "dump_bytes",
    "dump_format",
    "dump_mtime",
    "find_dumps",
    "find_tool",
    "is_gzip",
    "last_line",
    "major_version",
    "parse_toc",
    "qualified",
    "quote_ident",
    "read_archive",
    "read_dump",
    "read_plain",
    "tar_cut",
    "tool_version",
    "version_text",
]

FORMATS = ("plain", "custom", "directory", "tar")
_TAR_BLOCK = 512
PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"
# file names a folder of dumps is searched for (a folder holding toc.dat IS a dump)
DUMP_SUFFIXES = (".sql", ".sql.gz", ".dump", ".backup", ".pgdump", ".custom", ".tar")
_IDENT = r'(?:"(?:[^"]|"")+"|[^\s."(]+)'
_CREATE_TABLE = re.compile(
    rf"^CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?({_IDENT})\.({_IDENT})[\s(]"
)
_CREATE_EXTENSION = re.compile(rf"^CREATE EXTENSION (?:IF NOT EXISTS )?({_IDENT})")
_CREATE_DATABASE = re.compile(rf"^CREATE DATABASE ({_IDENT})")
_TOC_ENTRY = re.compile(r"^\s*\d+;\s+\d+\s+\d+\s+(.*)$")
# what pg_dump writes after its trailer: comment lines and psql's \unrestrict (15.14+)
_AFTER_TRAILER = (b"--", b"\\unrestrict")
_TOOL_TIMEOUT_S = 6 * 3600  # reading a dump to its end: a bound, not an expectation


class BackupError(LsopsError):
    """The backups cannot be checked (a PostgreSQL client program is missing)."""


# --- names and tools -----------------------------------------------------------------------


def _unquote(name: str) -> str:
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def qualified(schema: str, table: str) -> str:
    """`schema.table` as lsops names a table in its output (never quoted)."""
    return f"{schema}.{table}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def find_tool(
    name: str,
    *,
    server_version: int | None = None,
    prefer: str | os.PathLike[str] | None = None,
) -> str:
    """A PostgreSQL client program (`pg_dump`, `pg_restore`, `psql`): `LSOPS_PG_BINDIR`
    when set, else the NEWEST of those found where pgtemp finds the server's
    (`pg_config --bindir`, Debian's `/usr/lib/postgresql/<version>/bin`, the `pgserver`
    wheel, the PATH): a newer client reads every older dump and talks to every older
    server, an older one neither.

    `server_version` (the `server_version_num` of the server the program talks to, e.g.
    160002): pg_dump refuses a server newer than itself, so the program must be at least
    the server's major version: `prefer` (the server's own bin folder, e.g. a pgtemp
    cluster's `bindir`) when its program is, else the newest found that is. None is: a
    BackupError naming both versions.

    BackupError when there is none, or when `LSOPS_PG_BINDIR` is set and holds no such
    program, or one older than the server (it names the client the user wants, e.g. one
    new enough for their dumps: another one found elsewhere would misjudge them).
    Remembered per LSOPS_PG_BINDIR and PATH."""
    bindir = os.environ.get("LSOPS_PG_BINDIR", "")
    if bindir and not _runnable(Path(bindir) / name):
        where = "is not a folder" if not os.path.isdir(bindir) else f"holds no {name}"
        raise BackupError(
            f"LSOPS_PG_BINDIR ({bindir}) {where}: name the bin folder of a PostgreSQL "
            "client, or unset it"
        )
    path = os.environ.get("PATH", "")
    if server_version is None:
        found = _find_tool(name, bindir, path)
        if found is None:
            raise _not_found(name)
        return found
    need = major_version(server_version)
    server = version_text(server_version)
    if bindir:
        tool = str(Path(bindir) / name)
        have = tool_version(tool)
        if have is None or _major(have) < need:
            raise BackupError(
                f"{_named(name, have)} of LSOPS_PG_BINDIR ({bindir}) is older than the "
                f"server (PostgreSQL {server}): {name} must be at least its major version "
                f"({_dotted(need)}): name a newer client's bin folder, or unset it"
            )
        return tool
    tools = _tools(name, str(prefer) if prefer else "", path)
    if not tools:
        raise _not_found(name)
    for tool, have in tools:
        if have is not None and _major(have) >= need:
            return tool
    newest, have = tools[0]
    raise BackupError(
        f"{_named(name, have)} ({newest}, the newest found) is older than the server "
        f"(PostgreSQL {server}): {name} must be at least its major version "
        f"({_dotted(need)}): install a newer PostgreSQL client or set LSOPS_PG_BINDIR"
    )


def _not_found(name: str) -> BackupError:
    return BackupError(
        f"{name} not found: install the PostgreSQL client (Debian: postgresql-client) "
        "or set LSOPS_PG_BINDIR"
    )


def major_version(version_num: int) -> tuple[int, ...]:
    """The major version of a `server_version_num`: 160002 -> (16,), 90624 -> (9, 6)."""
    num = int(version_num)
    return (num // 10000,) if num >= 100000 else (num // 10000, num // 100 % 100)


def version_text(version_num: int) -> str:
    """`server_version_num` as PostgreSQL writes it: 160002 -> 16.2, 90624 -> 9.6.24."""
    num = int(version_num)
    if num >= 100000:
        return f"{num // 10000}.{num % 10000}"
    return f"{num // 10000}.{num // 100 % 100}.{num % 100}"


def _major(version: tuple[int, ...]) -> tuple[int, ...]:
    return version[:1] if version and version[0] >= 10 else version[:2]


def _dotted(version: tuple[int, ...] | None) -> str:
    return ".".join(str(part) for part in version) if version else "(version unknown)"


def _named(name: str, version: tuple[int, ...] | None) -> str:
    return f"{name} {_dotted(version)}"


@functools.lru_cache(maxsize=64)
def tool_version(tool: str) -> tuple[int, ...] | None:
    """The version of a client program (`pg_dump --version`: `pg_dump (PostgreSQL) 15.18
    (Debian ...)` -> (15, 18)), None when it does not say."""
    try:
        out = subprocess.run(
            [tool, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env(),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\)\s*(\d+(?:\.\d+)*)", out) or re.search(r"(\d+(?:\.\d+)+)", out)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _candidates(prefer: str) -> list[Path]:
    """The bin folders searched, in the order of preference for a tie: `prefer`,
    `pg_config --bindir`, Debian's (newest first), the pgserver wheel (the PATH last)."""
    candidates: list[Path] = [Path(prefer)] if prefer else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)[::-1]
    ]
    with contextlib.suppress(ImportError, ValueError):  # found, not imported (it warns)
        spec = importlib.util.find_spec("pgserver")
        if spec is not None and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations)))
            candidates.append(folder / "pginstall" / "bin")
    return candidates


@functools.lru_cache(maxsize=32)
def _tools(name: str, prefer: str, path: str) -> list[tuple[str, tuple[int, ...] | None]]:
    """Every `name` program found (LSOPS_PG_BINDIR aside), with its version: `prefer`'s
    first, then the others newest first (a tie in the order of `_candidates`); one path
    once."""
    found: list[str] = []
    for folder in _candidates(prefer):
        tool = folder / name
        if _runnable(tool) and str(tool) not in found:
            found.append(str(tool))
    on_path = shutil.which(name, path=path)
    if on_path and on_path not in found:
        found.append(on_path)
    tools = [(tool, tool_version(tool)) for tool in found]
    first = tools[:1] if prefer and tools and tools[0][0] == str(Path(prefer) / name) else []
    rest = sorted(tools[len(first) :], key=lambda t: t[1] or (), reverse=True)  # stable
    return first + rest


@functools.lru_cache(maxsize=32)
def _find_tool(name: str, bindir: str, path: str) -> str | None:
    """LSOPS_PG_BINDIR's `name` when set, else the newest `name` found."""
    if bindir and _runnable(Path(bindir) / name):
        return str(Path(bindir) / name)
    tools = _tools(name, "", path)
    return tools[0][0] if tools else None


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a client program: no PG* variable of the caller (a PGHOST or
    PGPASSWORD pointing at production must never reach a tool lsops runs), C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", **extra)
    return env


def last_line(text: str) -> str:
    lines = [" ".join(line.split()) for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# --- finding and reading dumps ---------------------------------------------------------------


def _is_dump_name(path: Path) -> bool:
    return path.name.endswith(DUMP_SUFFIXES)


def _holds_dump(path: Path) -> bool:
    """A dump file or a `-Fd` folder (a folder with `toc.dat`); OSError when it cannot be
    looked at (a folder we may not enter)."""
    return path.is_file() or (path.is_dir() and (path / "toc.dat").exists())


def find_dumps(patterns: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The dumps that `patterns` (globs, `~` expanded; a path that exists is taken as it
    is, `[` and all) name: files, `-Fd` folders (a folder with `toc.dat`), and in any other
    folder matched, the dump files and `-Fd` folders directly inside it (by name: .sql,
    .sql.gz, .dump, .backup, .pgdump, .custom). What cannot be looked at (a folder we may
    not list or enter, a file in one) is returned too, each on its own: `inspect_dump`
    judges it unreadable, with the system's reason."""
    found: set[Path] = set()
    for pattern in patterns:
        text = os.path.expanduser(str(pattern))
        literal = os.path.lexists(text) or not glob.has_magic(text)
        for match in [text] if literal else sorted(glob.glob(text)):
            path = Path(match)
            try:
                if _holds_dump(path):
                    found.add(path.absolute())
                    continue
                if not path.is_dir():
                    continue
                children = list(path.iterdir())
            except OSError:  # cannot look: judged unreadable, not skipped
                found.add(path.absolute())
                continue
            for child in children:
                if child.name == "lost+found":  # a mount point's fsck folder, never a dump
                    continue
                try:
                    if (child.is_file() and _is_dump_name(child)) or (
                        child.is_dir() and (child / "toc.dat").exists()
                    ):
                        found.add(child.absolute())
                except OSError:  # a folder in it we may not enter: maybe a -Fd dump
                    found.add(child.absolute())
    return sorted(found)


def _is_pg_tar(head: bytes) -> bool:
    """The start of a `pg_dump -Ft` archive: a POSIX tar whose first member is `toc.dat`."""
    return len(head) >= 262 and head[257:262] == b"ustar" and head[:8] == b"toc.dat\0"


def dump_format(path: Path) -> str | None:
    """plain, custom, directory or tar by the content (`PGDMP` magic, pg_dump's tar with
    its `toc.dat` first, gzip, pg_dump's header), else by the name for an empty file; None
    for anything else."""
    if path.is_dir():
        return "directory" if (path / "toc.dat").exists() else None
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    name = path.name.lower()
    if not head:
        if name.endswith((".sql", ".sql.gz")):
            return "plain"
        if name.endswith(".tar"):
            return "tar"
        return "custom" if name.endswith(DUMP_SUFFIXES) else None
    if head.startswith(b"PGDMP"):
        return "custom"
    if _is_pg_tar(head):
        return "tar"
    if head.startswith(b"\x1f\x8b"):  # gzip: a compressed plain dump (pg_dump | gzip)
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(512)
        except (OSError, EOFError, zlib.error):
            return "plain" if ".sql" in name else None
        return None if inner.startswith(b"PGDMP") or _is_pg_tar(inner) else "plain"
    if name.endswith((".sql", ".sql.gz")) or head.lstrip().startswith((b"--", b"SET ")):
        return "plain"
    return None


def dump_bytes(path: Path) -> int:
    """Bytes on disk: the file, or every file of a `-Fd` folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def dump_mtime(path: Path) -> datetime:
    """When the dump was written (its modification time; a `-Fd` folder's `toc.dat`,
    which pg_dump writes last), aware UTC."""
    stamp = (path / "toc.dat").stat().st_mtime if path.is_dir() else path.stat().st_mtime
    return datetime.fromtimestamp(stamp, UTC)


@dataclass
class DumpContents:
    """What reading a dump found: complete or why not, its tables (`schema.table`), the
    extensions it creates, the database it was dumped from (custom, directory and tar
    formats; a plain dump names it only when made with --create)."""

    complete: bool
    tables: list[str] | None = None
    extensions: list[str] = field(default_factory=list)
    dbname: str | None = None
    create_database: str | None = None  # a plain dump made with --create: \connect's target
    problem: str | None = None  # why it is incomplete or unreadable
    truncated: bool = False  # incomplete (cut short) rather than unreadable
    client_too_old: bool = False  # written by a newer pg_dump than pg_restore reads


def _toc_entry(line: str) -> tuple[str, list[str]] | None:
    """`222; 1259 16527 TABLE public agents postgres` -> ("TABLE", [public, agents, owner])."""
    match = _TOC_ENTRY.match(line)
    if not match:
        return None
    rest = match.group(1)
    # the longer kinds first: a partition is listed as `TABLE` and again as `TABLE ATTACH`
    for kind in ("TABLE DATA", "TABLE ATTACH", "TABLE", "EXTENSION"):
        if rest.startswith(kind + " "):
            return kind, rest[len(kind) + 1 :].split(" ")
    return None


def parse_toc(listing: str) -> DumpContents:
    """The tables, extensions and database name of a `pg_restore --list` listing."""
    tables: list[str] = []
    extensions: list[str] = []
    dbname = None
    for line in listing.splitlines():
        if line.startswith(";"):
            head = line.lstrip("; ").strip()
            if head.startswith("dbname:"):
                dbname = head.split(":", 1)[1].strip() or None
            continue
        entry = _toc_entry(line)
        if entry is None:
            continue
        kind, words = entry
        if kind == "TABLE" and len(words) >= 3:  # schema, name (may hold spaces), owner
            tables.append(qualified(words[0], " ".join(words[1:-1])))
        elif kind == "EXTENSION" and len(words) >= 2:  # "-", name, [owner]
            extensions.append(words[1])
    return DumpContents(
        complete=True, tables=sorted(set(tables)), extensions=sorted(set(extensions)), dbname=dbname
    )


def _client(tool: str) -> str:
    """`pg_restore 15.14 (/usr/lib/postgresql/15/bin/pg_restore)`: the program and its version."""
    try:
        out = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=30, env=clean_env()
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    version = re.search(r"\d+(?:\.\d+)*", out)
    return f"pg_restore {version.group(0) if version else '(version unknown)'} ({tool})"


def read_archive(path: Path, *, whole: bool = True) -> DumpContents:
    """A custom, directory or tar dump: `pg_restore --list` reads its table of contents, then
    (`whole`) `pg_restore -f /dev/null` reads every data block to the end (a cut custom
    file fails here)."""
    tool = find_tool("pg_restore")
    try:
        listed = subprocess.run(
            [tool, "--list", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=600,
            env=clean_env(),
        )
    except subprocess.TimeoutExpired:
        return DumpContents(False, problem="pg_restore --list took over 10 minutes")
    if listed.returncode != 0:
        why = last_line(listed.stderr)
        if "unsupported version" in why:  # "unsupported version (1.15) in file header"
            return DumpContents(
                False,
                problem=f"{_client(tool)} is older than the pg_dump that wrote this dump "
                f"({why}): set LSOPS_PG_BINDIR to the bin folder of a PostgreSQL client "
                "as new as the dumped server",
                client_too_old=True,
            )
        return DumpContents(False, problem=f"pg_restore --list: {why}")
    contents = parse_toc(listed.stdout)
    if not whole:
        return contents
    try:
        whole = subprocess.run(
            [tool, "-f", os.devnull, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TOOL_TIMEOUT_S,
            env=clean_env(),
        )
    except subprocess.TimeoutExpired:
        whole = None
    if whole is None or whole.returncode != 0:
        contents.complete = False
        contents.truncated = True
        why = "timed out" if whole is None else last_line(whole.stderr)
        contents.problem = f"its table of contents reads, its data does not: {why}"
    return contents


def read_plain(path: Path) -> DumpContents:
    """A plain dump (`.sql`, or gzip-compressed `.sql.gz`) read line by line: pg_dump's
    header, the tables and extensions it creates, and its closing trailer."""
    tables: set[str] = set()
    extensions: set[str] = set()
    header = trailer = False
    create_database = None
    try:
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(path.open("rb"))
            magic = raw.read(2)
            raw.seek(0)
            fh: Any = stack.enter_context(gzip.open(raw, "rb")) if magic == b"\x1f\x8b" else raw
            for number, line in enumerate(fh):
                if number < 20 and line.startswith(PLAIN_HEADER):
                    header = True
                if line.startswith(b"CREATE "):
                    text = line.decode("utf-8", "replace")
                    if m := _CREATE_TABLE.match(text):
                        tables.add(qualified(_unquote(m.group(1)), _unquote(m.group(2))))
                    elif m := _CREATE_EXTENSION.match(text):
                        extensions.add(_unquote(m.group(1)))
                    elif m := _CREATE_DATABASE.match(text):
                        create_database = _unquote(m.group(1))
                elif line.startswith(PLAIN_TRAILER):
                    trailer = True
                elif trailer and line.strip() and not line.startswith(_AFTER_TRAILER):
                    trailer = False  # the trailer must END the dump (a row may quote it)
    except EOFError:
        return DumpContents(
            False,
            sorted(tables),
            sorted(extensions),
            problem="the compressed stream ends early (truncated .gz)",
            truncated=True,
        )
    except (OSError, zlib.error) as exc:
        return DumpContents(False, problem=f"cannot read: {exc}")
    if not header:
        return DumpContents(False, problem="not a pg_dump plain dump (no pg_dump header)")
    contents = DumpContents(
        complete=trailer,
        tables=sorted(tables),
        extensions=sorted(extensions),
        create_database=create_database,
    )
    if not trailer:
        contents.truncated = True
        contents.problem = "no 'PostgreSQL database dump complete' trailer: cut short"
    return contents


def tar_cut(path: Path) -> str | None:
    """Why a tar archive ends before its end (a member's data past the end of the file, or
    no end-of-archive blocks), else None. pg_restore restores a cut `-Ft` dump up to the
    cut and exits 0, or reads a member cut short for ever, so the file's own structure is
    checked (before pg_restore reads its data)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        offset = 0
        while offset + _TAR_BLOCK <= size:
            fh.seek(offset)
            header = fh.read(_TAR_BLOCK)
            if header == bytes(_TAR_BLOCK):  # the end-of-archive marker
                return None
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
            field = header[124:136]
            try:  # octal; from 8 GiB on (a big table's data), base-256 with the top bit set
                length = (
                    int.from_bytes(field[1:], "big")
                    if field[0] & 0x80
                    else int(field.split(b"\0", 1)[0].strip() or b"0", 8)
                )
            except ValueError:
                return f"a damaged tar header at byte {offset:,}"
            data = -(-length // _TAR_BLOCK) * _TAR_BLOCK
            if offset + _TAR_BLOCK + data > size:
                return f"{name} ends past the end of the file"
            offset += _TAR_BLOCK + data
    return "the archive's end-of-archive blocks are missing"


def _gzipped_archive(path: Path) -> bool:
    """A custom or tar dump piped through gzip (`pg_dump -Fc | gzip`): pg_restore cannot
    read it as it is."""
    try:
        with gzip.open(path, "rb") as fh:
            inner = fh.read(512)
    except (OSError, EOFError, zlib.error):
        return False
    return inner.startswith(b"PGDMP") or _is_pg_tar(inner)


def read_dump(path: Path, format: str | None) -> DumpContents:
    """Read a dump of a known format (DumpContents; never raises for a bad file)."""
    if format == "plain":
        return read_plain(path)
    if format in ("custom", "directory"):
        return read_archive(path)
    if format == "tar":  # a cut one, pg_restore reads to the cut and exits 0, or spins
        cut = tar_cut(path)
        contents = read_archive(path, whole=cut is None)
        if cut and contents.tables is not None:
            contents.complete, contents.truncated = False, True
            contents.problem = f"cut short: {cut}"
        return contents
    if path.is_file() and is_gzip(path) and _gzipped_archive(path):
        return DumpContents(
            False,
            problem="a gzip-compressed custom or tar dump: pg_restore cannot read it as it "
            "is (gunzip it, or let pg_dump -Fc compress it itself)",
        )
    return DumpContents(False, problem="not a PostgreSQL dump (plain, custom, directory or tar)")


def is_gzip(path: Path) -> bool:
    """A gzip-compressed file (by its magic bytes)."""
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"
