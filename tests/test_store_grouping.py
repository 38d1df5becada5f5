"""The numpy grouping of the hourly read (`store.intervals._grouped_frame`) against an
independent pandas groupby: rows in any order, repeated (ts, endpoint) pairs (targets,
edge hours, the hours of one day), endpoints ranked by their path order (not by id), hour
and day buckets, and a span too wide for the one-key sort (the two-key fallback).

Values are integers and dyadic fractions (exact in any summation order), so the pandas
sums are exactly the ones `_grouped_frame` adds one after the other."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
