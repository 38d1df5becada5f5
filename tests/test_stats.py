"""`lsops_lib.stats.wilson_lower`, the one Wilson bound the incident scan, the cache-fall
scan and the recall suggestion share, against the bound found by bisection: the
proportion p0 below which the observed p is more than z standard errors of a binomial
of n trials away."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lsops_lib.analysis.cache_fall import _upper
from lsops_lib.analysis.incident_base import wilson_lower as wilson_of_columns
from lsops_lib.stats import wilson_lower


def by_bisection(p: float, n: float, z: float) -> float:
    """Wilson's lower bound, searched (also test_vectors' check of the recall bound)."""
    lo, hi = 0.0, p
    for _ in range(200):
        mid = (lo + hi) / 2
        far = (p - mid) / np.sqrt(mid * (1 - mid) / n) > z if 0 < mid < 1 else True
        lo, hi = (mid, hi) if far else (lo, mid)
    return lo


CASES = [
    (0.5, 10, 1.645),
    (0.02, 1000, 1.645),
    (1.0, 500, 2.0096),
    (0.9, 49, 2.0096),
    (0.3, 3, 1.96),
]


@pytest.mark.parametrize(("p", "n", "z"), CASES)
def test_the_bound_is_the_one_bisection_finds(p: float, n: float, z: float) -> None:
    assert float(wilson_lower(p, n, z)) == pytest.approx(by_bisection(p, n, z), abs=1e-9)


def test_arrays_are_bounded_element_by_element_and_never_below_zero() -> None:
    p, n = np.array([c[0] for c in CASES]), np.array([c[1] for c in CASES])
    got = wilson_lower(p, n, 1.645)
    assert got.shape == (len(CASES),)
    assert list(got) == pytest.approx(
        [by_bisection(a, b, 1.645) for a, b in zip(p, n, strict=True)], abs=1e-9
    )
    assert float(wilson_lower(0.0, 20, 1.645)) == 0.0


def test_the_callers_keep_their_shapes() -> None:
    """The incident scan's columns (its index kept, 0 without requests) and the cache
    scan's upper bound of a hit rate (one minus the misses' lower bound; 1 without
    operations)."""
    errors = pd.Series([5, 0, 3], index=[10, 11, 12])
    requests = pd.Series([100, 0, 3], index=[10, 11, 12])
    got = wilson_of_columns(errors, requests, 1.645)
    assert list(got.index) == [10, 11, 12] and got[11] == 0.0
    assert got[10] == pytest.approx(by_bisection(0.05, 100, 1.645), abs=1e-9)
    assert _upper(90, 100) == pytest.approx(1 - by_bisection(0.1, 100, 1.645), abs=1e-9)
    assert _upper(0, 0) == 1.0
