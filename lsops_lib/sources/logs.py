"""The service's logs: pm2 log files (and their rotated and gzipped copies) and journald.

pm2 writes `YYYY-MM-DD HH:mm:ss Z: message` with `log_date_format` (every physical line
stamped, stack frames included; `merge_logs` drops the `-0` instance suffix). Reading:

- **What was read is remembered per file** (`store.sources.FileState`): device and inode,
  the length and SHA-256 of its first bytes (up to HEAD bytes), and the offset read up to.
  A file is the same stream as a remembered one when its first bytes hash the same (a
  renamed, copied or gzipped rotation keeps them; a truncated file does not), preferring
  the one with the same device and inode. So: renamed rotation (`api-error.log` ->
  `api-error__2026-10-16_00-00-00.log`) and pm2-logrotate's copy-then-truncate both read
  the rotated file on from the old offset and the live file from 0; a truncated file is
  read from 0; `.gz` files are read decompressed. When two files continue one stream (the
  copy and the not yet truncated original), the bytes read from the first are not read
  again from the second. Nothing is read twice, nothing skipped.
- **Only whole lines**: a half-written last line (no newline yet) is left for next time;
  but a file that no longer grows (a `.gz` whose gzip stream ends, a rotated name such as
  `api-error__2026-10-16_00-00-00.log` or `api-error.log.1` untouched FINAL_AFTER_S) is
  read to its end: its last line without a newline (the crash line) is read too.
- **Entries**: a line whose message starts with whitespace (`    at ...` stack frames) or
  is empty continues the entry before it, across collections too; so does the `}` (or
  `]`) at column 0 that closes an object Node's util.inspect printed (an error with
  properties: `... (node:net:1555:16) {`, `  errno: -111,`, ..., `}`); so does the stack the
  Express error handler writes right after its `❌ Express Error: <message>` line
  (`Error: <message>`, the same message, the same second): one error, one entry.
- **Files**: a glob whose folder is missing, or that matches none of the log files
  (`*.log*`) its folder holds (a typo), fails the source (a folder without any log file
  yet is pm2 not started yet);
  pm2's merged `log_file` (`<app>-combined.log`, or `<app>.log` as pm2 names it) is not
  read when the out and error files of the same app are read too (`Batch.notes` says so).
- **Instants**: the stamp when the line has one; else the last stamped line before it
  (in the file), else the next one, else the file's modification time; such instants are
  marked `estimated`. A format without a zone is read as UTC.
- **Hostile lines**: invalid UTF-8 is replaced (U+FFFD), a 1 MB line is read whole and
  stored cut (store.sources.TEXT_LIMIT), its first line given to the miner cut; a line
  longer than MAX_READ is given cut at MAX_READ and the rest of it skipped, by this read
  and the next ones (a read starting right after a byte that is not a newline is inside
  such a line), so the lines after it are read.

journald: `journal_command -u UNIT -o json --all --no-pager [--after-cursor C | --since @T]`;
the cursor and the last instant read are remembered (a cursor that no longer seeks: read
again from that instant); exit 1 with `-- No entries --` is nothing new; `MESSAGE` may be
a string, null (its own entry), an array of strings or a byte array.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import fmt
from ..store.sources import Continuation, Entry, FileState
from ..urls import masked
from .common import SourceError, one_line
from .stamps import parse_stamp, stamp_regex

HEAD = 512  # bytes of a file's start that identify it
MIN_MATCH = 64  # a copy still being written is recognised by this many first bytes
MAX_READ = 64 * 1024 * 1024  # bytes read from one file in one collection (the rest: next time)
MAX_KEPT = 1000  # remembered streams no current file continues (deleted rotations)
FINAL_AFTER_S = 60.0  # a rotated plain file untouched this long no longer grows
JOURNAL_TIMEOUT_S = 60.0

# --- levels -----------------------------------------------------------------------------

# as Node, pm2 and Go print them, case and all: `FATAL ERROR: ... JavaScript heap out of
# memory`, an upper-case FATAL word, `UnhandledPromiseRejection`, `Unhandled 'error' event`,
# `uncaughtException`, Go's `panic: ...` and `fatal error: ...` (its runtime's, at the start);
# never "(0 fatal)", "non-fatal" or "0 unhandled jobs"
_FATAL = re.compile(
    r"FATAL ERROR|\bFATAL\b|heap out of memory|\bUnhandled|uncaughtException|\bpanic:"
    r"|^fatal error: "
)
_WARNING = re.compile(r"⚠|\bwarn(?:ing)?\b|DeprecationWarning", re.I)
_ERROR = re.compile(r"❌|\berror\b|\w*Error:|\bECONN\w+|\bfailed\b|\bexception\b", re.I)


def classify(message: str, stream: str, priority: int | None = None) -> str:
    """A log entry's level from its first line and its stream (pm2's error file holds
    console.error AND console.warn; journald's PRIORITY when there is one)."""
    head = message[:2000]
    if _FATAL.search(head):
        return "fatal"
    if priority is not None and priority <= 2:
        return "fatal"
    if _WARNING.search(head) and not head.lstrip().startswith(("❌", "Error")):
        return "warning"
    if _ERROR.search(head):
        return "error"
    if priority is not None:
        return "error" if priority == 3 else "warning" if priority == 4 else "info"
    return "error" if stream == "error" else "info"


def stream_of(path: str) -> str:
    name = os.path.basename(path).lower()
    return "error" if "err" in name else "out"


# --- the files ------------------------------------------------------------------------------


@dataclass
class _File:
    path: str
    device: int
    inode: int
    disk_size: int
    mtime: float
    gz: bool
    content: bytes | None = None  # .gz: the decompressed stream
    head: bytes = b""
    size: int = 0  # bytes of the (decompressed) stream
    fh: Any = None  # the open file (read through it: a rename after the open changes nothing)
    unchanged: FileState | None = None  # a .gz read whole before, not decompressed again
    final: bool = False  # never grows again (a whole .gz, a rotation left alone): read to its end


def expand(patterns: Iterable[str]) -> list[str]:
    """The files the globs name (sorted, each once; folders skipped)."""
    found: set[str] = set()
    for pattern in patterns:
        for path in glob.glob(os.path.expanduser(pattern)):
            if os.path.isfile(path):
                found.add(os.path.abspath(path))
    return sorted(found)


# pm2's names: `<app>-out.log`, `<app>-error.log`, the merged `log_file` (`<app>.log` by
# default, `<app>-combined.log` for LongSang), `-N` per instance without merge_logs,
# `__YYYY-MM-DD_HH-mm-ss` and `.gz` once pm2-logrotate rotated them
_PM2_NAME = re.compile(
    r"(?P<app>.+?)(?:-(?P<kind>out|err|error|combined))?(?:-\d+)?"
    r"(?:__\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})?\.log(?:\.gz)?"
)


def merged_logs(paths: Iterable[str]) -> list[str]:
    """The files among `paths` that are pm2's merged `log_file` of an app whose out and
    error files are among them too: both streams again, so not read (else every line
    counts twice)."""
    apps: dict[tuple[str, str], set[str]] = {}
    named: list[tuple[str, tuple[str, str], str]] = []
    for path in paths:
        name = _PM2_NAME.fullmatch(os.path.basename(path))
        if name is None:
            continue
        app = (os.path.dirname(path), name["app"])
        kind = {"err": "error", None: "combined"}.get(name["kind"], name["kind"])
        apps.setdefault(app, set()).add(kind)
        named.append((path, app, kind))
    return [
        path for path, app, kind in named if kind == "combined" and {"out", "error"} <= apps[app]
    ]


def _gunzip(data: bytes) -> tuple[bytes, bool]:
    """What a (possibly still being written) gzip file decompresses to so far, and whether
    it is whole (every member ends)."""
    out = bytearray()
    whole = bool(data)
    while data:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            out += d.decompress(data)
        except zlib.error:
            whole = False
            break
        if not d.eof:
            whole = False
            break
        data = d.unused_data
    return bytes(out), whole


# a rotated file: pm2-logrotate's `__YYYY-MM-DD_HH-mm-ss`, or anything after `.log` (`.1`)
_ROTATED = re.compile(r"(?:__\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\.log|\.log[.-].+)$")


def _final(path: str, mtime: float) -> bool:
    """Whether a plain file no longer grows: a rotated name, untouched FINAL_AFTER_S."""
    return _ROTATED.search(os.path.basename(path)) is not None and (
        time.time() - mtime >= FINAL_AFTER_S
    )


def _open(
    path: str, done: dict[tuple[int | None, int | None], FileState], errors: list[str]
) -> _File | None:
    """The file opened, its head read (.gz: decompressed, unless `done` holds its state
    from a complete read at the same size: a rotated .gz never changes). None when it
    vanished since the glob (its state is kept) or cannot be read (said in `errors`)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by read_files
    except FileNotFoundError:
        return None  # vanished between the glob and the open: its state is kept
    except OSError as exc:
        errors.append(f"cannot read {path}: {exc.strerror or type(exc).__name__}")
        return None
    try:
        st = os.fstat(fh.fileno())
        gz = path.endswith(".gz")
        f = _File(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime, gz, fh=fh)
        known = done.get((st.st_dev, st.st_ino)) if gz else None
        if known is not None and known.disk_size == st.st_size:
            f.unchanged = known
        elif gz:
            f.content, f.final = _gunzip(fh.read())
            f.size = len(f.content)
            f.head = f.content[:HEAD]
        else:
            f.head = fh.read(HEAD)
            f.size = max(st.st_size, len(f.head))
            f.final = _final(path, st.st_mtime)
    except OSError as exc:
        fh.close()
        errors.append(f"cannot read {path}: {exc.strerror or type(exc).__name__}")
        return None
    return f


def _base(pattern: str) -> Path:
    """The folder a glob looks in: its leading components without a wildcard."""
    parts = Path(os.path.expanduser(pattern)).parent.parts
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return Path(*fixed) if fixed else Path(".")


def _holds_logs(pattern: str) -> bool:
    """Whether the folder(s) a glob looks in hold log files (`*.log*`): a glob matching
    none of them is a mistake (a folder without any yet is pm2 not started yet)."""
    parent = os.path.dirname(os.path.expanduser(pattern)) or "."
    for folder in glob.glob(parent) if glob.has_magic(parent) else [parent]:
        try:
            with os.scandir(folder) as found:
                if any(".log" in e.name and e.is_file() for e in found):
                    return True
        except OSError:
            continue
    return False


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(f: _File, start: int) -> tuple[bytes, int]:
    """Whole lines of `f` from `start` (at most MAX_READ bytes), and how many bytes from
    `start` they took. A line longer than MAX_READ is given cut, the rest of it skipped
    (then and by the next reads: a read starting after no newline is inside it); a file
    that no longer grows (`final`) gives its last line without a newline too."""
    back = 1 if start > 0 else 0  # the byte before: inside a line cut before?
    if f.content is not None:
        chunk = f.content[start - back : start + MAX_READ]
    else:
        try:
            f.fh.seek(start - back)
            chunk = f.fh.read(MAX_READ + back)
        except OSError:
            return b"", 0
    skipped = 0
    if back:
        inside, chunk = chunk[:1] != b"\n", chunk[1:]
        if inside:  # the rest of a line given cut: skipped up to its end
            skipped = chunk.find(b"\n") + 1 or len(chunk)
            chunk = chunk[skipped:]
    end = chunk.rfind(b"\n")
    full = skipped + len(chunk) >= MAX_READ  # the read stopped at MAX_READ, not at the end
    if (end < 0 and full) or (f.final and not full):
        data = chunk  # a line longer than MAX_READ (cut); the end of a file that is done
    else:
        data = chunk[: end + 1]
    return data, skipped + len(data)


def _same_head(f: _File) -> bool:
    """Whether the file still starts with the bytes read at its open (plain files)."""
    if f.content is not None:
        return True
    try:
        f.fh.seek(0)
        return f.fh.read(len(f.head)) == f.head
    except OSError:
        return False


def _matches(f: _File, s: FileState) -> bool:
    """Whether `f` continues the stream `s` remembers: it starts with the same bytes (all
    of the remembered head; or, for a copy still being written, at least MIN_MATCH of
    them), and if it is the same inode, it was not truncated below the offset."""
    if s.cursor is not None or s.path.startswith("journal:"):
        return False
    same_inode = (s.device, s.inode) == (f.device, f.inode) and not f.gz
    if same_inode and f.size < s.offset:
        return False  # truncated
    if s.head_len == 0:
        return same_inode
    if len(f.head) >= s.head_len:
        return _hash(f.head[: s.head_len]) == s.head_hash
    if s.head_len >= MIN_MATCH and len(f.head) >= MIN_MATCH and s.start_hash:
        return _hash(f.head[:MIN_MATCH]) == s.start_hash  # a copy being written
    return False


@dataclass
class Batch:
    """What one collection read: entries, continuations of stored entries, new states."""

    entries: list[Entry] = field(default_factory=list)
    continuations: list[Continuation] = field(default_factory=list)
    states: list[FileState] = field(default_factory=list)
    lines: int = 0  # physical lines read
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left aside, and why
    stamps: dict[str, list[int]] = field(default_factory=dict)  # path -> [lines, stamped]
    secrets: Sequence[str] = ()  # masked in every text read (`mask`)


def read_files(
    patterns: Sequence[str], states: Sequence[FileState], date_format: str, batch: Batch
) -> None:
    """Read what the files matching `patterns` gained since `states` into `batch`. A file
    that cannot be read, a glob whose folder is missing or that matches none of the log
    files its folder holds (a typo), are said in `batch.errors` (the other files are read
    all the same); pm2's merged log_file next to the out and error files is skipped, said in
    `batch.notes`."""
    regex = stamp_regex(date_format)
    done = {(s.device, s.inode): s for s in states if s.path.endswith(".gz")}
    paths = expand(patterns)
    merged = merged_logs(paths)
    if merged:
        paths = [p for p in paths if p not in merged]
        names = ", ".join(os.path.basename(p) for p in merged)
        batch.notes.append(
            f"skipped {fmt.counted(len(merged), 'merged log file', 'merged log files')}"
            f" ({names}): pm2's log_file repeats the -out and -error files read"
        )
    for p in patterns:
        if not (d := _base(p)).is_dir():
            batch.errors.append(f"no folder {d} (for {p})")
        elif not expand([p]) and _holds_logs(p):
            batch.errors.append(f"no file matches {p}")
    files = [f for f in (_open(p, done, batch.errors) for p in paths) if f is not None]
    try:
        _read_streams(files, [s for s in states if not s.path.startswith("journal:")], regex, batch)
    finally:
        for f in files:
            f.fh.close()
    for path, (lines, stamped) in sorted(batch.stamps.items()):
        if lines and not stamped:  # pm2 without --time, or another date_format
            batch.notes.append(
                f"{os.path.basename(path)}: none of its {fmt.counted(lines, 'new line')} "
                f"starts with a stamp of date_format {date_format!r}: dated by their "
                "neighbours or the file's modification time"
            )


def _read_streams(
    files: list[_File], file_states: list[FileState], regex: re.Pattern[str], batch: Batch
) -> None:
    # files continuing one stream (a copy and its not yet truncated original, a rotated
    # file and its .gz) are grouped by the identity of the state they continue, and the
    # bytes one of them gave are not read again from another
    groups: dict[str, list[tuple[_File, FileState]]] = {}
    claimed: set[int] = set()
    for f in files:
        if f.unchanged is not None:  # a .gz read whole before: its state as it was
            claimed.add(id(f.unchanged))
            batch.states.append(dataclasses.replace(f.unchanged, path=f.path))
            continue
        candidates = [s for s in file_states if _matches(f, s)]
        if not candidates:
            groups.setdefault(_stream_key(f), []).append((f, _fresh(f)))
            continue

        def rank(s: FileState, f: _File = f) -> tuple[int, bool]:
            # the furthest any file of this stream was read; then the same inode
            return (s.offset, (s.device, s.inode) == (f.device, f.inode) and not f.gz)

        groups.setdefault(_stream_key(f), []).append((f, max(candidates, key=rank)))
    for members in groups.values():
        members.sort(key=lambda m: (m[1].offset, m[0].gz, m[0].path))
        read_to = 0
        for f, s in members:
            claimed.add(id(s))
            state = None if s.path == "" else s
            read_to = max(read_to, _process(f, max(s.offset, read_to), state, regex, batch))
    # a remembered stream no file continued this time is kept (a file renamed between the
    # glob and the open shows up next time under its new name), the newest MAX_KEPT
    kept = [s for s in file_states if id(s) not in claimed and s.head_len > 0]
    kept.sort(key=lambda s: s.last_ts or 0, reverse=True)
    for s in kept[:MAX_KEPT]:
        s.carried = True
        batch.states.append(s)


def _stream_key(f: _File) -> str:
    """Files starting with the same MIN_MATCH bytes are one stream (a copy, a .gz)."""
    return _hash(f.head[:MIN_MATCH]) if len(f.head) >= MIN_MATCH else f"path:{f.path}"


def _fresh(f: _File) -> FileState:
    """The state of a file never seen: read from 0."""
    return FileState(path="", device=f.device, inode=f.inode, head_len=0, head_hash="", offset=0)


def _process(
    f: _File, start: int, state: FileState | None, regex: re.Pattern[str], batch: Batch
) -> int:
    """Read `f` from `start`, add its entries and its new state; returns the offset reached."""
    data, taken = _read(f, start) if f.size > start else (b"", 0)
    if taken and not _same_head(f):
        # truncated (and written again) between the open and the read: what was read is
        # not the remembered stream; keep the state as it was, read again next time
        if state is not None:
            batch.states.append(state)
        return start
    end = start + taken
    stream = stream_of(f.path)
    last_ts = state.last_ts if state else None
    last_entry = state.last_entry if state else None
    new_state = FileState(
        path=f.path,
        device=f.device,
        inode=f.inode,
        head_len=len(f.head),
        head_hash=_hash(f.head),
        start_hash=_hash(f.head[:MIN_MATCH]) if len(f.head) >= MIN_MATCH else None,
        offset=end,
        # a .gz read to its end at this size: not decompressed again while it keeps it
        disk_size=f.disk_size if not f.gz or end >= f.size else None,
        last_entry=last_entry,
        last_ts=last_ts,
    )
    if data:
        lines = data.split(b"\n")
        if not lines[-1]:
            lines.pop()  # after the last newline
        batch.lines += len(lines)
        new_state.last_ts = _entries(lines, regex, f, stream, last_ts, last_entry, batch)
    batch.states.append(new_state)
    return end


_HANDLER = re.compile(r"Express Error: (?P<message>.+)$")
_STACK_HEAD = re.compile(r"[\w$.]+: (?P<message>.+)$")  # `${err.name}: ${err.message}`
STACK_GAP_MS = 1000  # the handler's two writes are stamped within the same second


def _stack_of(current: Entry, message: str, ts: int | None) -> bool:
    """Whether `message` is the stack the Express error handler writes right after its
    `❌ Express Error: <message>` line (a second write: `Error: <message>` and the frames):
    one error, so one entry."""
    if current.lines != 1:
        return False
    handler = _HANDLER.search(current.text)
    head = _STACK_HEAD.match(message)
    return (
        handler is not None
        and head is not None
        and head["message"] == handler["message"]
        and (ts is None or abs(ts - current.ts) <= STACK_GAP_MS)
    )


def _continues(current: Entry | None, message: str) -> bool:
    """Whether a line (its stamp removed) continues the entry before it, in a file or the
    journal: an empty or indented line (a stack frame), or the bracket that closes what
    Node's util.inspect opened (`_closes`)."""
    return message == "" or message[:1] in (" ", "\t") or _closes(current, message)


_CLOSERS = re.compile(r"[}\]][}\]),;]*")  # a line of closing brackets only


def _closes(current: Entry | None, message: str) -> bool:
    """Whether `message` (at column 0) closes what Node's util.inspect opened in the entry
    before it: `console.error(err)` of an error with properties prints its frames, the
    last one ending ` {`, the properties indented, then `}` at column 0 (nested objects and
    arrays close indented; `JSON.stringify(o, null, 2)` and a plain object end the same
    way, `]` for an array). Only when that entry has an unclosed `{` or `[`; an entry
    stored by an earlier collection (`current` None) is closed by a line of brackets only."""
    if not message.startswith(("}", "]")):
        return False
    if current is None:
        return _CLOSERS.fullmatch(message) is not None
    text = current.text
    return text.count("{") > text.count("}") or text.count("[") > text.count("]")


def _entries(
    raw_lines: list[bytes],
    regex: re.Pattern[str],
    f: _File,
    stream: str,
    last_ts: int | None,
    last_entry: int | None,
    batch: Batch,
) -> int | None:
    parsed: list[tuple[int | None, str]] = []
    for raw in raw_lines:
        text = masked(raw.decode("utf-8", "replace").rstrip("\r"), batch.secrets)
        match = regex.match(text)
        stamp = parse_stamp(match) if match else None
        if stamp is not None and match is not None:
            parsed.append((int(stamp.timestamp() * 1000), text[match.end() :]))
        else:
            parsed.append((None, text))
    tally = batch.stamps.setdefault(f.path, [0, 0])
    tally[0] += len(parsed)
    tally[1] += sum(ts is not None for ts, _ in parsed)
    # the next stamped instant after each line (for unstamped lines with none before)
    following: list[int | None] = [None] * len(parsed)
    nxt: int | None = None
    for i in range(len(parsed) - 1, -1, -1):
        following[i] = nxt
        if parsed[i][0] is not None:
            nxt = parsed[i][0]
    mtime_ms = int(f.mtime * 1000)
    current: Entry | None = None
    pending: list[str] = []  # continuation lines of an entry stored earlier
    for i, (ts, message) in enumerate(parsed):
        continues = _continues(current, message)
        if current is not None and (continues or _stack_of(current, message, ts)):
            current.text += "\n" + message
            current.lines += 1
            if ts is not None:
                last_ts = ts
            continue
        if continues and current is None and last_entry is not None:
            pending.append(message)
            if ts is not None:
                last_ts = ts
            continue
        estimated = ts is None
        if ts is None:
            ts = last_ts if last_ts is not None else following[i]
            if ts is None:
                ts = mtime_ms
        else:
            last_ts = ts
        current = Entry(
            ts=ts,
            estimated=estimated,
            source=f.path,
            stream=stream,
            level=classify(message, stream),
            pattern_id=0,
            text=message,
            key=f.path,
        )
        batch.entries.append(current)
    if pending and last_entry is not None:
        batch.continuations.append(Continuation(last_entry, "\n".join(pending), len(pending)))
    return last_ts


# --- journald -----------------------------------------------------------------------------

MAX_JOURNAL_RECORDS = 50_000  # records read from journalctl in one collection (the rest: next time)
_JOURNAL_FIELDS = ("__CURSOR", "__REALTIME_TIMESTAMP", "PRIORITY", "MESSAGE")
NULL_MESSAGE = "[MESSAGE not given by journalctl (null: over 4 KiB without --all)]"
SEEK_FAILED = "Failed to seek to cursor"
NO_ENTRIES = "-- No entries --"  # systemd 247 prints it on stdout and exits 1 when nothing is new
RECHECK_MS = 60_000  # after a failed seek: stored entries this far before the last instant


def _journal_message(value: object) -> tuple[str, bool]:
    """The text of a MESSAGE field, and whether it is an entry of its own whatever it looks
    like: null (journalctl gives a field over 4 KiB as null without --all) or a repeated
    field (an array of its values) is never a continuation line."""
    if isinstance(value, str):
        return value, False
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        # journald's byte array (binary or invalid UTF-8): the text it is
        return bytes(b & 0xFF for b in value).decode("utf-8", "replace"), False
    if isinstance(value, list):  # the field repeated: its values, one a line
        return "\n".join(_journal_message(v)[0] for v in value), True
    return NULL_MESSAGE, True


def _journalctl(
    command: str, args: list[str], records: list[dict[str, Any]]
) -> tuple[int, str, str]:
    """Run journalctl; its records (the fields read) appended to `records` as they come, at
    most MAX_JOURNAL_RECORDS within JOURNAL_TIMEOUT_S (then it is stopped: the rest next
    time, after the last cursor read). Returns its exit code (0 when stopped so), its
    stderr and the lines of its stdout that are not records."""
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    except FileNotFoundError:
        err.close()
        raise SourceError(
            "logs", f"journald: {command} not found (set [logs] journal_command)"
        ) from None
    except OSError as exc:
        err.close()
        why = exc.strerror or type(exc).__name__
        raise SourceError("logs", f"journald: cannot run {command}: {why}") from None
    over = threading.Event()

    def stop() -> None:
        over.set()
        proc.kill()

    timer = threading.Timer(JOURNAL_TIMEOUT_S, stop)
    timer.start()
    other: list[str] = []
    full = False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                record = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:  # "-- No entries --", or a line cut short by a kill
                if raw.strip() and len(other) < 5:
                    other.append(raw.decode("utf-8", "replace").strip())
                continue
            if isinstance(record, dict):
                records.append({k: record.get(k) for k in _JOURNAL_FIELDS})
                if len(records) >= MAX_JOURNAL_RECORDS:
                    full = True
                    break
    finally:
        timer.cancel()
        if full:
            proc.kill()
        proc.stdout.close()  # type: ignore[union-attr]
        code = proc.wait()
        err.seek(0)
        said = err.read(64 * 1024).decode("utf-8", "replace")
        err.close()
    if over.is_set() and not records:
        raise SourceError("logs", f"journald: {command} ran over {JOURNAL_TIMEOUT_S:g} s")
    return (0 if full or over.is_set() else code), said, "\n".join(other)


def _failure(code: int, said: str, other: str, secrets: Sequence[str]) -> str | None:
    """Why a run of journalctl failed (one line), or None when it did not: exit 1 with only
    `-- No entries --` on stdout is nothing new (systemd 247)."""
    if code == 0 or (code == 1 and not said.strip() and other == NO_ENTRIES):
        return None
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return (
        one_line(masked(said, secrets)) or one_line(masked(other, secrets), 200) or f"exit {code}"
    )


def read_journal(
    unit: str,
    state: FileState | None,
    batch: Batch,
    *,
    command: str = "journalctl",
    date_format: str | None = None,
    stored: Callable[[int], list[str]] | None = None,
) -> None:
    """The unit's journal entries after the remembered cursor (all of it the first time),
    at most MAX_JOURNAL_RECORDS (the rest next time). A cursor that no longer seeks (the
    journal rotated or vacuumed) is read again from the last instant read (`--since`), the
    entries before it skipped and those at it that `stored(ms)` (the texts of the unit's
    entries stored from `ms`) holds already; `batch.notes` says so."""
    try:
        base = [*shlex.split(command), "-u", unit, "-o", "json", "--all", "--no-pager"]
    except ValueError as exc:
        raise SourceError("logs", f"journald: [logs] journal_command {command!r}: {exc}") from None
    records: list[dict[str, Any]] = []
    since: int | None = None  # read again from this instant (ms): the cursor did not seek
    again = False
    if state is not None and state.cursor:
        code, said, other = _journalctl(command, [*base, f"--after-cursor={state.cursor}"], records)
        if code != 0 and not records and SEEK_FAILED in said:
            again, since = True, state.last_ts
            args = [*base, f"--since=@{since // 1000}"] if since is not None else base
            code, said, other = _journalctl(command, args, records)
    else:
        code, said, other = _journalctl(command, base, records)
    why = _failure(code, said, other, batch.secrets)
    if why is not None:
        raise SourceError("logs", f"journald: {command} -u {unit} failed: {why}")
    if len(records) >= MAX_JOURNAL_RECORDS:
        batch.notes.append(
            f"journald: read {fmt.counted(len(records), 'record')} of {unit}, the rest next time"
        )
    regex = stamp_regex(date_format) if date_format else None
    key = f"journal:{unit}"
    cursor = state.cursor if state else None
    last_ts = state.last_ts if state else None
    last_entry = state.last_entry if state else None
    known = Counter(  # the lines stored from RECHECK_MS before `since`, each as often
        line
        for text in (stored(since) if stored and since is not None else [])
        for line in text.split("\n")
    )
    skipped = 0
    current: Entry | None = None
    pending: list[str] = []
    for record in records:
        cursor = str(record.get("__CURSOR") or cursor or "") or None
        message, own = _journal_message(record.get("MESSAGE"))
        message = masked(message, batch.secrets)
        if regex is not None:
            match = regex.match(message)
            if match:
                message = message[match.end() :]
        try:
            ts = int(record.get("__REALTIME_TIMESTAMP")) // 1000  # type: ignore[arg-type]
        except (TypeError, ValueError):
            ts = None
        if since is not None and ts is not None and ts <= since:
            lines = Counter(message.split("\n"))
            if ts < since - RECHECK_MS or all(known[k] >= n for k, n in lines.items()):
                known.subtract(lines)
                skipped += 1  # read and stored before the journal was rotated
                continue
        batch.lines += 1
        if ts is not None:
            last_ts = ts
        try:
            priority: int | None = int(record.get("PRIORITY"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            priority = None
        continues = not own and _continues(current, message)
        if current is not None and (continues or (not own and _stack_of(current, message, ts))):
            current.text += "\n" + message
            current.lines += 1
            continue
        if continues and current is None and last_entry is not None:
            pending.append(message)
            continue
        current = Entry(
            ts=ts if ts is not None else 0,
            estimated=ts is None,
            source=key,
            stream="journal",
            level=classify(message, "journal", priority),
            pattern_id=0,
            text=message,
            key=key,
        )
        batch.entries.append(current)
    if again:
        start = "its start"
        if since is not None:
            start = fmt.instant(datetime.fromtimestamp(since / 1000, UTC), seconds=True)
        batch.notes.append(
            f"journald: the remembered cursor no longer seeks (journal rotated or vacuumed):"
            f" read again from {start}, {fmt.counted(skipped, 'record')} already stored skipped"
        )
    if pending and last_entry is not None:
        batch.continuations.append(Continuation(last_entry, "\n".join(pending), len(pending)))
    batch.states.append(
        FileState(
            path=key,
            device=None,
            inode=None,
            head_len=0,
            head_hash="",
            offset=0,
            last_entry=last_entry,
            last_ts=last_ts,
            cursor=cursor,
        )
    )


def gzip_bytes(data: bytes) -> bytes:
    """`data` gzipped (tests and the demo write rotated `.gz` files with it)."""
    return gzip.compress(data)
