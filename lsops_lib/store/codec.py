"""The packed sample block (schema version 4): encoding and decoding, lossless.

A block holds the per-endpoint samples (scrape_sid, endpoint_id, count, avg_time,
error_rate) of the scrapes of one target in one period. Endpoint-major order (all the
samples of one endpoint, scrape by scrape, then the next endpoint), so that each column
is a run of one counter over time:

- sids and endpoint ids: delta-encoded;
- which endpoint answered in which scrape: a bitmap (all ones compresses to nothing);
- count: per endpoint, the first value then the differences (small integers);
- avg_time and error_rate: IEEE doubles kept bit for bit. Each column is written as the
  integers the API computed them from when it can (avg_time = time sum in ms / count,
  error_rate = errors / count, or a fixed number of decimals), delta-encoded, with the
  few values that do not come back bit for bit kept whole as exceptions; else the bits
  of the doubles themselves (delta-encoded).

Every integer array is zigzag-encoded, cut to the bytes its largest value needs and
byte-shuffled (all first bytes, then all second bytes...), and the whole block is then
compressed with zstd (level 9; blocks written as zlib streams are still read): the
shuffled planes of small integers are long runs of zeros. On a month of 50 endpoints,
zstd 9 against zlib 6: samples 5 % and scrape rows 12 % smaller, half the CPU to
compress, a third to decompress (docs/benchmarks.md, store_bytes).
A decoded block gives back exactly the rows that were encoded (`decode(encode(x)) == x`,
the doubles bit for bit; tests/test_store_compact.py).
"""

from __future__ import annotations

import functools
import json
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np
import zstandard

VERSION = 1
LEVEL = 9  # zstd level (measured on a month of 50 endpoints: 19 is 2 % smaller, 15x the CPU)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_local = threading.local()  # zstd contexts are not to be shared between threads


def _compress(data: bytes) -> bytes:
    ctx = getattr(_local, "c", None)
    if ctx is None:
        # with the frame's checksum (4 bytes): a flipped bit is an error, not other figures
        ctx = _local.c = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
    return ctx.compress(data)  # type: ignore[no-any-return]


def _decompress(chunk: bytes) -> bytes:
    if bytes(chunk[:4]) != _ZSTD_MAGIC:
        return zlib.decompress(chunk)  # a block written before zstd
    ctx = getattr(_local, "d", None)
    if ctx is None:
        ctx = _local.d = zstandard.ZstdDecompressor()
    return ctx.decompress(chunk)  # type: ignore[no-any-return]


class DamagedBlock(ValueError):
    """A packed block that does not decode (cut short, overwritten, a bit flipped: its
    zstd checksum): `reason` one line, `where` (table, target id, period start in epoch
    ms) once a caller that knows it passed (`block_of`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.where: tuple[str, int, int] | None = None


@contextmanager
def block_of(table: str, target_id: int, period_ts: int) -> Iterator[None]:
    """Decoding the block of (target, period) of `table`: a DamagedBlock says where."""
    try:
        yield
    except DamagedBlock as exc:
        if exc.where is None:
            exc.where = (table, int(target_id), int(period_ts))
        raise


_P = ParamSpec("_P")
_T = TypeVar("_T")
# what a block's bytes can raise when they are not what was written
_BROKEN = (zstandard.ZstdError, zlib.error, struct.error, ValueError, IndexError, AssertionError)


def _decoding(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """`fn` (a decoder) raising DamagedBlock for any damage of the bytes it reads."""

    @functools.wraps(fn)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except DamagedBlock:
            raise
        except _BROKEN as exc:
            text = str(exc).strip().splitlines()
            raise DamagedBlock(text[0] if text else type(exc).__name__) from None

    return checked


class Samples(NamedTuple):
    """Sample columns (numpy arrays of one length): scrape_sid, endpoint_id, count,
    avg_time, error_rate."""

    sid: np.ndarray
    eid: np.ndarray
    count: np.ndarray
    avg: np.ndarray
    err: np.ndarray

    @staticmethod
    def of_rows(rows: list[tuple]) -> Samples:  # type: ignore[type-arg]
        if not rows:
            return empty()
        return Samples.of_columns(list(zip(*rows, strict=True)))

    @staticmethod
    def of_columns(columns: list[tuple]) -> Samples:  # type: ignore[type-arg]
        """From the five columns (sid, endpoint, count, avg, err) as sequences."""
        sid, eid, count, avg, err = columns
        return Samples(
            np.asarray(sid, np.int64),
            np.asarray(eid, np.int64),
            np.asarray(count, np.int64),
            np.asarray(avg, np.float64),
            np.asarray(err, np.float64),
        )

    def rows(self) -> list[tuple[int, int, int, float, float]]:
        return list(
            zip(
                self.sid.tolist(),
                self.eid.tolist(),
                self.count.tolist(),
                self.avg.tolist(),
                self.err.tolist(),
                strict=True,
            )
        )

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.sid)


def empty() -> Samples:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return Samples(i, i, i, f, f)


def concat(parts: list[Samples]) -> Samples:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    return Samples(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))


# --- integer arrays ----------------------------------------------------------------------


def _zigzag(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return ((u >> np.uint64(1)).view(np.int64)) ^ -((u & np.uint64(1)).view(np.int64))


def _put_ints(out: list[bytes], x: np.ndarray) -> None:
    """Zigzag, narrowest width, byte planes."""
    u = _zigzag(x)
    top = int(u.max()) if len(u) else 0
    width = max(1, (top.bit_length() + 7) // 8)
    planes = u.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :width].T.tobytes()
    out.append(struct.pack("<IB", len(u), width) + planes)


def _get_ints(buf: memoryview, pos: int) -> tuple[np.ndarray, int]:
    n, width = struct.unpack_from("<IB", buf, pos)
    pos += 5
    planes = np.frombuffer(buf, np.uint8, n * width, pos).reshape(width, n)
    full = np.zeros((n, 8), np.uint8)
    full[:, :width] = planes.T
    return _unzigzag(full.view("<u8").reshape(n)), pos + n * width


def _deltas(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Differences within each segment (segments start at `starts`), the first raw."""
    d = np.diff(x, prepend=np.int64(0)) if len(x) else x.astype(np.int64)
    d = d.astype(np.int64)
    d[starts] = x[starts]
    return d


def _undeltas(d: np.ndarray, starts: np.ndarray) -> np.ndarray:
    if not len(d):
        return d
    c = np.cumsum(d)
    lengths = np.diff(np.append(starts, len(d)))
    base = np.where(starts > 0, c[np.maximum(starts - 1, 0)], 0)
    # each segment restarts from its first (raw) value
    return c - np.repeat(base, lengths)


# --- doubles, bit for bit ----------------------------------------------------------------

Enc = Callable[[np.ndarray, np.ndarray], np.ndarray]
Dec = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _per_count(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    return v * c


def _div(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, m / np.where(c > 0, c, 1), m.astype(np.float64))


def _pct(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, (m / np.where(c > 0, c, 1) * 100) / 100, m.astype(np.float64))


def _scaled(k: float) -> tuple[Enc, Dec]:
    return (lambda v, c: v * k), (lambda m, c: m / k)


# (integers of the doubles, the doubles again): the ways the API computes its figures
_MODES: list[tuple[Enc, Dec]] = [
    (_per_count, _div),  # a sum over the requests / count (avgTime: ms; errors)
    (_per_count, _pct),  # errors / count x 100 (percent) / 100 (the fraction stored)
    _scaled(1e3),
    _scaled(1e6),
]
_RAW = len(_MODES)  # the bits of the doubles
_LIMIT = 2.0**52


def _put_floats(out: list[bytes], v: np.ndarray, c: np.ndarray, starts: np.ndarray) -> None:
    bits = v.view(np.int64)
    best: tuple[int, int, np.ndarray, np.ndarray] | None = None
    for mode, (enc, dec) in enumerate(_MODES):
        with np.errstate(invalid="ignore", over="ignore"):
            x = enc(v, c)
            ok = np.isfinite(x) & (np.abs(x) < _LIMIT)
            m = np.where(ok, np.rint(np.where(ok, x, 0.0)), 0.0).astype(np.int64)
            miss = ~ok | (dec(m, c).view(np.int64) != bits)
        misses = int(miss.sum())
        if best is None or misses < best[1]:
            best = (mode, misses, m, miss)
        if misses == 0:
            break
    assert best is not None
    mode, misses, m, miss = best
    if misses > len(v) // 10:
        mode, m, miss = _RAW, bits, np.zeros(len(v), bool)
    if mode != _RAW:
        m = np.where(miss, 0, m)  # exceptions: kept whole below
        # keep the runs smooth: an exception takes its predecessor's integer
        if misses:
            idx = np.flatnonzero(miss)
            seg_first = np.zeros(len(v), bool)
            seg_first[starts] = True
            for i in idx.tolist():
                if not seg_first[i]:
                    m[i] = m[i - 1]
    out.append(struct.pack("<B", mode))
    _put_ints(out, _deltas(m, starts))
    pos = np.flatnonzero(miss)
    _put_ints(out, np.diff(pos, prepend=0))
    out.append(v[pos].astype("<f8").tobytes())


def _get_floats(
    buf: memoryview, pos: int, c: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, int]:
    (mode,) = struct.unpack_from("<B", buf, pos)
    d, pos = _get_ints(buf, pos + 1)
    m = _undeltas(d, starts)
    gaps, pos = _get_ints(buf, pos)
    where = np.cumsum(gaps)
    exc = np.frombuffer(buf, "<f8", len(where), pos).astype(np.float64)
    pos += 8 * len(where)
    v = m.view(np.float64).copy() if mode == _RAW else _MODES[mode][1](m, c).astype(np.float64)
    v[where] = exc
    return v, pos


# --- blocks ------------------------------------------------------------------------------


def encode(s: Samples) -> bytes:
    """The block of samples `s` (any order; (sid, endpoint) pairs unique): one chunk."""
    return _frame(_encode_chunk(s))


def append(body: bytes, s: Samples) -> bytes:
    """A block with the samples `s` added as one more chunk (no re-encoding of the rest;
    the packer merges the chunks once the period is over)."""
    return body + _frame(_encode_chunk(s))


@_decoding
def chunks(body: bytes) -> int:
    return len(_split(body))


def _frame(chunk: bytes) -> bytes:
    return struct.pack("<I", len(chunk)) + chunk


def _split(body: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(body):
        (n,) = struct.unpack_from("<I", body, pos)
        out.append(body[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def _encode_chunk(s: Samples) -> bytes:
    order = np.lexsort((s.sid, s.eid))
    sid, eid = s.sid[order], s.eid[order]
    count, avg, err = s.count[order], s.avg[order], s.err[order]
    sids = np.unique(sid)
    eids = np.unique(eid)
    si = np.searchsorted(sids, sid)
    ei = np.searchsorted(eids, eid)
    mask = np.zeros((len(eids), len(sids)), bool)
    mask[ei, si] = True
    starts = np.flatnonzero(np.diff(ei, prepend=-1)) if len(ei) else np.zeros(0, np.int64)
    out: list[bytes] = [struct.pack("<B", VERSION)]
    _put_ints(out, np.diff(sids, prepend=0))
    _put_ints(out, np.diff(eids, prepend=0))
    bitmap = np.packbits(mask.ravel()).tobytes()
    out.append(struct.pack("<I", len(bitmap)) + bitmap)
    _put_ints(out, _deltas(count, starts))
    _put_floats(out, avg, count, starts)
    _put_floats(out, err, count, starts)
    return _compress(b"".join(out))


@_decoding
def decode(body: bytes) -> Samples:
    """The samples of a block (per chunk: endpoint-major, scrape order within an endpoint)."""
    parts = [_decode_chunk(c) for c in _split(body)]
    return parts[0] if len(parts) == 1 else concat(parts)


@_decoding
def decode_sids(body: bytes, sids: np.ndarray) -> Samples:
    """The samples of the scrapes `sids` (sorted int64) in a block: what `decode` gives,
    kept to those scrapes, decoding only the chunks that hold one of them (a chunk's
    scrape ids come first: the others are decompressed, never decoded)."""
    parts: list[Samples] = []
    for chunk in _split(body):
        buf = memoryview(_decompress(chunk))
        chunk_sids, _ = _chunk_sids(buf)
        if not np.isin(chunk_sids, sids).any():
            continue
        part = _decode_buf(buf)
        keep = np.isin(part.sid, sids)
        parts.append(Samples(*(col[keep] for col in part)))
    return concat(parts)


def _chunk_sids(buf: memoryview) -> tuple[np.ndarray, int]:
    (version,) = struct.unpack_from("<B", buf, 0)
    if version != VERSION:
        raise ValueError(f"unknown sample block version {version}")
    d, pos = _get_ints(buf, 1)
    return np.cumsum(d), pos


def _decode_chunk(chunk: bytes) -> Samples:
    return _decode_buf(memoryview(_decompress(chunk)))


def _decode_buf(buf: memoryview) -> Samples:
    sids, pos = _chunk_sids(buf)
    d, pos = _get_ints(buf, pos)
    eids = np.cumsum(d)
    (nbytes,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    bits = np.unpackbits(np.frombuffer(buf, np.uint8, nbytes, pos))[: len(eids) * len(sids)]
    pos += nbytes
    ei, si = np.nonzero(bits.reshape(len(eids), len(sids)))
    starts = np.flatnonzero(np.diff(ei, prepend=-1)) if len(ei) else np.zeros(0, np.int64)
    d, pos = _get_ints(buf, pos)
    count = _undeltas(d, starts)
    avg, pos = _get_floats(buf, pos, count, starts)
    err, pos = _get_floats(buf, pos, count, starts)
    return Samples(sids[si], eids[ei], count, avg, err)


# --- rows of few distinct values (health services) ----------------------------------------


def encode_rows(rows: list[tuple]) -> bytes:  # type: ignore[type-arg]
    """Rows (first column an integer sid, the others text, numbers, booleans or None) by
    columns: integer and boolean columns as delta-encoded integers, float columns as the
    doubles' integers (`_put_floats`: whole numbers, ms / 1000...) or their bits, each
    with a bitmap of its NULLs; a column of canonical UUIDs (scrape ids) as 16 bytes
    each; any other column as JSON. One zstd frame."""
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else []
    out: list[bytes] = [struct.pack("<BI", VERSION, len(rows))]
    one = np.ones(len(rows), np.int64)
    start = np.zeros(1, np.int64)
    for col in cols:
        kinds = {type(v) for v in col if v is not None}
        nulls = np.array([v is None for v in col], bool)
        kind = "j"
        if kinds <= {int} and all(v is None or abs(v) < 2**62 for v in col):
            kind = "i"
        elif kinds == {bool}:
            kind = "b"
        elif kinds == {float}:
            kind = "f"
        elif kinds == {str} and not nulls.any() and all(map(_is_uuid, col)):
            kind = "u"
        out.append(kind.encode())
        if kind == "u":  # scrape UUIDs: 16 bytes each instead of 36 characters
            out.append(b"".join(uuid.UUID(v).bytes for v in col))
            continue
        if kind == "j":
            text = json.dumps(col, separators=(",", ":")).encode()
            out.append(struct.pack("<I", len(text)) + text)
            continue
        bitmap = np.packbits(nulls).tobytes()
        out.append(bitmap)
        if kind == "f":
            v = np.array([0.0 if x is None else x for x in col], np.float64)
            _put_floats(out, v, one, start)
        else:
            x = np.array([0 if v is None else int(v) for v in col], np.int64)
            _put_ints(out, np.diff(x, prepend=np.int64(0)))
    return ROWS_MAGIC + _frame(_compress(b"".join(out)))


ROWS_MAGIC = b"LSR1"  # a row block: chunks, each (u32 length, zstd frame)


def rows_block(old: bytes | None, rows: list[tuple], over: bool) -> bytes:  # type: ignore[type-arg]
    """The row block `old` (None: none yet) with `rows` added: one more chunk while the
    period goes on, everything in one chunk (by sid) once it is over."""
    if old is None:
        return encode_rows(sorted(rows, key=_first))
    if over:
        return encode_rows(sorted(decode_rows(old) + rows, key=_first))
    return old + encode_rows(sorted(rows, key=_first))


def _first(row: tuple) -> Any:  # type: ignore[type-arg]
    return (row[0], str(row[1]) if len(row) > 1 else "")


@_decoding
def decode_rows(body: bytes) -> list[tuple]:  # type: ignore[type-arg]
    """The rows of a row block, chunk after chunk."""
    out: list[tuple] = []  # type: ignore[type-arg]
    for chunk in _row_chunks(body):
        cols = _decode_rows_chunk(chunk, None)
        out += list(zip(*(cols[i].tolist() for i in sorted(cols)), strict=True)) if cols else []
    return out


@_decoding
def decode_columns(body: bytes, wanted: Iterable[int]) -> dict[int, np.ndarray]:
    """The columns `wanted` (their indexes) of a row block, chunk after chunk, as object
    arrays (None for NULL): what `decode_rows` gives, column by column, without building
    the columns nobody reads nor a tuple per row."""
    want = set(wanted)
    parts: dict[int, list[np.ndarray]] = {i: [] for i in want}
    for chunk in _row_chunks(body):
        for i, values in _decode_rows_chunk(chunk, want).items():
            parts[i].append(values)
    return {
        i: np.concatenate(p) if len(p) > 1 else p[0] if p else np.empty(0, object)
        for i, p in parts.items()
    }


def _row_chunks(body: bytes) -> list[bytes]:
    body = bytes(body)
    if not body.startswith(ROWS_MAGIC):
        return [body]  # one bare stream (written before chunks existed)
    out: list[bytes] = []
    pos = 0
    while pos < len(body):
        assert body[pos : pos + 4] == ROWS_MAGIC
        (n,) = struct.unpack_from("<I", body, pos + 4)
        out.append(body[pos + 8 : pos + 8 + n])
        pos += 8 + n
    return out


def _is_uuid(value: str) -> bool:
    """A UUID in its canonical text (36 characters, lowercase): it comes back exactly."""
    if len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _open_chunk(chunk: bytes) -> tuple[memoryview, int]:
    """A row chunk decompressed, and its number of rows (its columns start at byte 5)."""
    buf = memoryview(_decompress(chunk))
    version, n = struct.unpack_from("<BI", buf, 0)
    if version != VERSION:
        raise ValueError(f"unknown row block version {version}")
    return buf, n


def _decode_rows_chunk(chunk: bytes, want: set[int] | None) -> dict[int, np.ndarray]:
    """The columns of one chunk (all, or those in `want`): `_chunk_columns`."""
    return _chunk_columns(*_open_chunk(chunk), want)


def _chunk_columns(buf: memoryview, n: int, want: set[int] | None) -> dict[int, np.ndarray]:
    """The columns of an opened chunk (all, or those in `want`), by index, as object arrays
    of Python values (int, float, bool, str...; None for NULL). Columns not wanted are
    stepped over without decoding, and the walk stops once every wanted one is read."""
    pos = 5
    one = np.ones(n, np.int64)
    start = np.zeros(1, np.int64)
    cols: dict[int, np.ndarray] = {}
    index = -1
    while pos < len(buf) and (want is None or len(cols) < len(want)):
        index += 1
        kind = bytes(buf[pos : pos + 1]).decode()
        pos += 1
        if want is not None and index not in want:  # past the column without decoding it
            pos = _skip_column(buf, pos, kind, n)
            continue
        if kind == "u":
            raw = bytes(buf[pos : pos + 16 * n])
            values = np.empty(n, object)
            values[:] = [str(uuid.UUID(bytes=raw[i : i + 16])) for i in range(0, 16 * n, 16)]
            cols[index] = values
            pos += 16 * n
            continue
        if kind == "j":
            (size,) = struct.unpack_from("<I", buf, pos)
            values = np.empty(n, object)
            values[:] = json.loads(bytes(buf[pos + 4 : pos + 4 + size]))
            cols[index] = values
            pos += 4 + size
            continue
        nb = (n + 7) // 8
        nulls = np.unpackbits(np.frombuffer(buf, np.uint8, nb, pos))[:n].astype(bool)
        pos += nb
        if kind == "f":
            v, pos = _get_floats(buf, pos, one, start)
        else:
            d, pos = _get_ints(buf, pos)
            v = np.cumsum(d).astype(bool) if kind == "b" else np.cumsum(d)
        values = v.astype(object)  # Python floats, ints, bools
        values[nulls] = None
        cols[index] = values
    return cols


def _skip_column(buf: memoryview, pos: int, kind: str, n: int) -> int:
    """The position after the column of `kind` (its letter read) of `n` rows at `pos`."""
    if kind == "u":
        return pos + 16 * n
    if kind == "j":
        (size,) = struct.unpack_from("<I", buf, pos)
        return int(pos + 4 + size)
    pos += (n + 7) // 8  # the NULL bits
    if kind == "f":
        pos = _skip_ints(buf, pos + 1)  # the mode, then the integers
        (k,) = struct.unpack_from("<I", buf, pos)  # as many exceptions as gaps
        return _skip_ints(buf, pos) + 8 * k
    return _skip_ints(buf, pos)


@_decoding
def find_id(body: bytes, column: int, key: str, wanted: Iterable[int]) -> dict[int, Any] | None:
    """The columns `wanted` of the row of a row block whose text column `column` (UUIDs,
    or any text) holds `key`, or None: a chunk's UUIDs are searched as bytes (no text
    built for the others), and the row decoded only in the chunk where it is found."""
    target = uuid.UUID(key).bytes if _is_uuid(key) else None
    for chunk in _row_chunks(body):
        buf, n = _open_chunk(chunk)
        pos, index, kind = 5, -1, ""
        while pos < len(buf):
            index += 1
            kind = bytes(buf[pos : pos + 1]).decode()
            pos += 1
            if index == column:
                break
            pos = _skip_column(buf, pos, kind, n)
        else:
            continue  # no such column in this chunk
        at = -1
        if kind == "u" and target is not None:
            raw = bytes(buf[pos : pos + 16 * n])
            at = raw.find(target)
            while at >= 0 and at % 16:  # the bytes of two neighbours: not a UUID of its own
                at = raw.find(target, at + 1)
            at = at // 16 if at >= 0 else -1
        elif kind == "j":
            (size,) = struct.unpack_from("<I", buf, pos)
            values = json.loads(bytes(buf[pos + 4 : pos + 4 + size]))
            at = next((i for i, v in enumerate(values) if v == key), -1)
        if at >= 0:
            return {i: v[at] for i, v in _chunk_columns(buf, n, set(wanted)).items()}
    return None


def _skip_ints(buf: memoryview, pos: int) -> int:
    """The position after the integer array at `pos` (`_put_ints`)."""
    n, width = struct.unpack_from("<IB", buf, pos)
    return int(pos + 5 + n * width)


# --- raw payloads (schema version 5) ------------------------------------------------------
#
# The bodies of one target's scrapes in one period as received, byte for byte: one part
# after the other (all "health" bodies by scrape, then all "metrics" bodies...), so that
# each body follows the previous answer of the same kind, which it mostly repeats, and
# zstd compresses the run as a whole (measured, 50 endpoints a minute: the rows' zlib
# bodies 1,143 bytes a scrape, a day's block 800; what is left is the digits of the
# per-endpoint doubles, new in every answer).

PAYLOADS_MAGIC = b"LSP1"  # a payload block: chunks, each (magic, u32 length, zstd frame)
Payload = tuple[int, str, bytes]  # (scrape sid, part, body)


def _payload_chunk(rows: list[Payload]) -> bytes:
    rows = sorted(rows, key=lambda r: (r[1], r[0]))
    head = [struct.pack("<I", len(rows))]
    for sid, part, body in rows:
        name = part.encode()
        head.append(struct.pack("<qB", sid, len(name)) + name + struct.pack("<I", len(body)))
    frame = _compress(b"".join(head + [body for _, _, body in rows]))
    return PAYLOADS_MAGIC + struct.pack("<I", len(frame)) + frame


def payloads_block(old: bytes | None, rows: list[Payload], over: bool) -> bytes:
    """The payload block `old` (None: none yet) with `rows` added: one more chunk while
    the period goes on, everything in one chunk once it is over."""
    if old is None:
        return _payload_chunk(rows)
    if over:
        return _payload_chunk(decode_payloads(old) + rows)
    return bytes(old) + _payload_chunk(rows)


@_decoding
def decode_payloads(body: bytes, sids: set[int] | None = None) -> list[Payload]:
    """The payloads of a block (those of the scrapes `sids` when given), chunk by chunk."""
    body = bytes(body)
    out: list[Payload] = []
    pos = 0
    while pos < len(body):
        if body[pos : pos + 4] != PAYLOADS_MAGIC:
            raise ValueError("not a payload chunk")
        (n,) = struct.unpack_from("<I", body, pos + 4)
        buf = memoryview(_decompress(body[pos + 8 : pos + 8 + n]))
        pos += 8 + n
        (count,) = struct.unpack_from("<I", buf, 0)
        at, heads = 4, []
        for _ in range(count):
            sid, size = struct.unpack_from("<qB", buf, at)
            part = bytes(buf[at + 9 : at + 9 + size]).decode()
            (length,) = struct.unpack_from("<I", buf, at + 9 + size)
            heads.append((sid, part, length))
            at += 13 + size
        for sid, part, length in heads:
            if at + length > len(buf):
                raise ValueError("a payload chunk cut short")
            if sids is None or sid in sids:
                out.append((sid, part, bytes(buf[at : at + length])))
            at += length
    return out
