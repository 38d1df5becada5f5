"""The numpy parts of the hourly read (`store.intervals`).

The rollup rows read by SQLite as texts of columns (`_rollup_rows`): the values written,
bit for bit, and the driver's rows when a value would not come back exactly.

The grouping (`_grouped_frame`) against an independent pandas groupby: rows in any order, repeated (ts, endpoint) pairs (targets,
edge hours, the hours of one day), endpoints ranked by their path order (not by id), hour
and day buckets, and a span too wide for the one-key sort (the two-key fallback).

Values are integers and dyadic fractions (exact in any summation order), so the pandas
sums are exactly the ones `_grouped_frame` adds one after the other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lsops_lib.store import Store, intervals
from lsops_lib.store.intervals import _ROW_DTYPE, ENDPOINT_COLUMNS, _grouped_frame

HOUR = 3_600_000
DAY = 86_400_000
# (id, path) in the database's path order; the ids deliberately not in that order
ENDPOINTS = [(7, "/a"), (3, "/api/x"), (12, "/api/y"), (1, "/b"), (5, "/z")]
# many endpoints (ids shuffled against the path order): with a span of ~8,000 years of
# milliseconds, too many for the one int64 key (buckets x endpoints >= 2**62)
MANY = list(
    zip(
        np.random.default_rng(3).permutation(20_000).tolist(),
        [f"/e{i:05d}" for i in range(20_000)],
        strict=True,
    )
)


def _rows(
    rng: np.random.Generator,
    endpoints: list[tuple[int, str]],
    n: int,
    size: int,
    first_bucket: int,
    buckets: int,
) -> np.ndarray:
    rows = np.empty(n, dtype=_ROW_DTYPE)
    rows["ts"] = (first_bucket + rng.integers(0, buckets, n)) * size
    rows["endpoint_id"] = rng.choice([i for i, _ in endpoints], n)
    rows["requests"] = rng.integers(0, 5_000, n)
    rows["errors"] = rng.integers(0, 40, n)
    rows["time_sum_ms"] = rng.integers(0, 2**20, n) / 8.0  # dyadic: exact sums
    rows["resets"] = rng.integers(0, 2, n)
    return rows


def _want(rows: np.ndarray, endpoints: list[tuple[int, str]]) -> pd.DataFrame:
    """The same frame by pandas: group, sum, order by ts then the path's position."""
    path_of = dict(endpoints)
    rank_of = {i: r for r, (i, _) in enumerate(endpoints)}
    df = pd.DataFrame({name: rows[name] for name in rows.dtype.names})
    g = df.groupby(["ts", "endpoint_id"], as_index=False)[
        ["requests", "errors", "time_sum_ms", "resets"]
    ].sum()
    g["rank"] = g["endpoint_id"].map(rank_of)
    g = g.sort_values(["ts", "rank"]).reset_index(drop=True)
    out = pd.DataFrame(
        {
            "ts": pd.to_datetime(g["ts"], unit="ms", utc=True),
            "endpoint": g["endpoint_id"].map(path_of),
            "requests": g["requests"].astype("int64"),
            "errors": g["errors"].astype("int64"),
            "time_sum_ms": g["time_sum_ms"].astype(float),
            "resets": g["resets"].astype("int64"),
        }
    )
    requests = out["requests"].where(out["requests"] > 0)
    out["mean_ms"] = out["time_sum_ms"] / requests
    out["error_rate"] = out["errors"] / requests
    return out[ENDPOINT_COLUMNS]


@pytest.mark.parametrize(
    ("endpoints", "size", "first_bucket", "buckets", "n"),
    [
        (ENDPOINTS, HOUR, 480_000, 30, 400),  # hours of 2024-2025, many repeats
        (ENDPOINTS, HOUR, 480_000, 3_000, 200),  # mostly one row a pair
        (ENDPOINTS, DAY, 20_000, 9, 300),  # days
        (ENDPOINTS, HOUR, 1, 3, 1),  # one row
        (MANY, 1, 0, 250_000_000_000_000, 400),  # the two-key (lexsort) path
    ],
)
def test_grouped_frame_equals_pandas(
    endpoints: list[tuple[int, str]], size: int, first_bucket: int, buckets: int, n: int
) -> None:
    rng = np.random.default_rng(size % 97 + buckets % 89 + n)
    rows = _rows(rng, endpoints, n, size, first_bucket, buckets)
    if endpoints is MANY:  # a few repeated pairs too
        rows = np.concatenate([rows, rows[:50]])
    got = _grouped_frame(rows, endpoints, size)
    want = _want(rows, endpoints)
    # the paths as the database's strings are typed in the real read (an object array)
    got = got.assign(endpoint=got["endpoint"].astype(object))
    want = want.assign(endpoint=want["endpoint"].astype(object))
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_grouped_frame_of_no_rows() -> None:
    got = _grouped_frame(np.empty(0, dtype=_ROW_DTYPE), ENDPOINTS, HOUR)
    assert got.empty and list(got.columns) == ENDPOINT_COLUMNS


# rollup rows as written: (hour_ts, endpoint_id, requests, errors, time_sum_ms, resets)
EXACT = [
    (3_600_000 * 480_001, 2, 12, 0, 1234.5678901234567, 0),
    (3_600_000 * 480_001, 1, 2**62 + 1, 7, 0.0, 1),  # an integer beyond a double's 2**53
    (3_600_000 * 480_002, 2, 0, 0, 2.0**62 + 2.0**11, 0),  # near the exact range's top
    (3_600_000 * 480_003, 3, 5, 1, 1.0000000000000002, 2),  # 1 + 2**-52
    (3_600_000 * 480_004, 4, 9, 2, -3.25, 0),  # negative
    (3_600_000 * 480_005, 5, 1, 0, 0.5, 0),  # below 1, a multiple of 2**-52
    (3_600_000 * 480_006, 6, 1, 0, 987654321.0009766, 0),
]
INEXACT = [  # a time sum the two integers would not carry: the driver's rows instead
    [(3_600_000 * 480_007, 7, 1, 0, 0.1, 0)],  # below 1: bits below 2**-52
    [(3_600_000 * 480_007, 7, 1, 0, 2.0**64, 0)],  # beyond an int64
    [(3_600_000 * 480_007, 7, 1, 0, 1e-300, 0)],
]
FROM = "FROM lsops_rollup r WHERE r.hour_ts >= :a AND r.hour_ts < :b"
PARAMS = {"a": 0, "b": 2**62}


def _write_rollup(path: Path, rows: list[tuple[int, int, int, int, float, int]]) -> Store:
    store = Store(f"sqlite:///{path}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO lsops_rollup (target_id, hour_ts, endpoint_id, requests, errors, "
            "time_sum_ms, resets, samples) VALUES (1, ?, ?, ?, ?, ?, ?, 1)",
            rows,
        )
    return store


def _as_written(rows: list[tuple[int, int, int, int, float, int]]) -> np.ndarray:
    return np.array(sorted(rows, key=lambda r: (r[0], r[1])), dtype=_ROW_DTYPE)


def _assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    assert len(got) == len(want)
    for name in _ROW_DTYPE.names:
        assert (got[name].view(np.int64) == want[name].view(np.int64)).all(), name


def test_rollup_columns_carry_every_value_exactly(tmp_path: Path, monkeypatch) -> None:
    store = _write_rollup(tmp_path / "exact.sqlite", EXACT)
    try:

        def no_tuples(*_args: object) -> None:
            raise AssertionError("the exact values were read as the driver's rows")

        monkeypatch.setattr(intervals, "_rollup_tuples", no_tuples)
        with store.engine.connect() as conn:
            got = intervals._rollup_rows(conn, FROM, PARAMS)
            empty = intervals._rollup_rows(conn, FROM, {"a": 0, "b": 1})
    finally:
        store.close()
    _assert_bitwise(got, _as_written(EXACT))
    assert len(empty) == 0 and empty.dtype == _ROW_DTYPE


@pytest.mark.parametrize("extra", INEXACT)
def test_rollup_rows_fall_back_to_the_driver(tmp_path: Path, extra: list, monkeypatch) -> None:
    store = _write_rollup(tmp_path / "inexact.sqlite", EXACT + extra)
    used: list[bool] = []
    tuples = intervals._rollup_tuples

    def counted(*args: object) -> np.ndarray:
        used.append(True)
        return tuples(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(intervals, "_rollup_tuples", counted)
    try:
        with store.engine.connect() as conn:
            got = intervals._rollup_rows(conn, FROM, PARAMS)
    finally:
        store.close()
    assert used == [True]
    _assert_bitwise(got, _as_written(EXACT + extra))


def test_an_integer_column_holding_a_real_falls_back(tmp_path: Path) -> None:
    """A value no integer text can carry (a REAL kept by a BIGINT column): the driver's
    rows, as the read gave before the texts."""
    store = _write_rollup(
        tmp_path / "real.sqlite", [*EXACT, (3_600_000 * 480_008, 8, 1, 0, 2.0, 0)]
    )
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE lsops_rollup SET requests = 2.5 WHERE endpoint_id = 8")
        with store.engine.connect() as conn:
            assert intervals._rollup_columns(conn, FROM, PARAMS) is None
            got = intervals._rollup_rows(conn, FROM, PARAMS)
            want = intervals._rollup_tuples(
                conn, f"SELECT {intervals._ROLLUP_COLUMNS} {FROM}", PARAMS
            )
    finally:
        store.close()
    _assert_bitwise(got, want)


def test_texts_longer_than_sqlite_allows_fall_back(tmp_path: Path) -> None:
    """A read whose column texts pass SQLite's length limit (SQLITE_LIMIT_LENGTH: ~1 GB by
    default, a year of hundreds of targets) takes the driver's rows, on the same
    connection, with the same values."""
    store = _write_rollup(tmp_path / "long.sqlite", EXACT)
    try:
        with store.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 40)  # shorter than one column's text
            assert intervals._rollup_columns(conn, FROM, PARAMS) is None
            got = intervals._rollup_rows(conn, FROM, PARAMS)
            raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000_000)
    finally:
        store.close()
    _assert_bitwise(got, _as_written(EXACT))
