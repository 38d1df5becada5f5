"""Statistics more than one part of lsops uses (numpy only, no lsops import).

wilson_lower(p, n, z)   # the Wilson score interval's lower bound, one-sided
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["wilson_lower"]


def wilson_lower(p: ArrayLike, n: ArrayLike, z: float) -> np.ndarray:
    """Lower bound of the Wilson score interval of a proportion `p` of `n` trials (n > 0),
    `z` standard errors one-sided, never below 0; scalars or arrays alike. The incident
    scan bounds error rates with it (`analysis.incident_base`), the cache-fall scan its
    miss rates (`analysis.cache_fall`), `db.recall` the neighbours an index found."""
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * np.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    return np.maximum((centre - margin) / (1.0 + z2 / n), 0.0)
