"""What every incident kind shares: the columns of an incident row, the runs of flagged
observations, the Wilson score bound, and the `Detector` signature of a pluggable kind.

A detector is one small named function `(store, start, end, thresholds, *, target)` that
returns rows of `COLUMNS` for its kind; `analysis.incidents.DETECTORS` maps each such
kind to its function (cache_fall, memory_climb; more kinds register there the same way).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .. import stats
from ..config import Thresholds
from ._common import empty

COLUMNS = ["start", "end", "duration_s", "kind", "severity", "detail", "endpoint", "ongoing"]


class Detector(Protocol):
    """One incident kind: its incidents in [start, end) of `target` (all targets: None)."""

    def __call__(
        self,
        store: Any,
        start: datetime | None,
        end: datetime | None,
        thresholds: Thresholds,
        *,
        target: str | None = None,
    ) -> pd.DataFrame: ...


def runs(flags: Any) -> list[tuple[int, int]]:
    """(first, last) positional indexes of each run of True."""
    values = np.asarray(flags, dtype=bool)
    if not values.any():
        return []
    padded = np.concatenate([[False], values, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def wilson_lower(errors: pd.Series, requests: pd.Series, z: float = 1.645) -> pd.Series:
    """Lower bound of the Wilson score interval of errors / requests (0 without requests),
    row by row (`stats.wilson_lower`)."""
    n = requests.astype(float)
    p = (errors.astype(float) / n.where(n > 0)).fillna(0.0)
    n = n.where(n > 0, 1.0)
    return pd.Series(stats.wilson_lower(p.to_numpy(), n.to_numpy(), z), index=p.index)


def row(
    start: Any,
    end: Any,
    kind: str,
    severity: str,
    detail: str,
    *,
    endpoint: str | None = None,
    ongoing: bool = False,
) -> dict[str, Any]:
    """One incident row of `COLUMNS` (duration_s from start and end)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    return {
        "start": start,
        "end": end,
        "duration_s": (end - start).total_seconds(),
        "kind": kind,
        "severity": severity,
        "detail": detail,
        "endpoint": endpoint,
        "ongoing": bool(ongoing),
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as an incidents frame (empty with COLUMNS when there are none): `endpoint`
    is text (`str`) as in every frame, missing (NaN) for an incident of the whole API,
    whichever rows there are (a detector's rows hold None there)."""
    return typed(pd.DataFrame(rows, columns=COLUMNS) if rows else empty(COLUMNS))


def typed(found: pd.DataFrame) -> pd.DataFrame:
    """An incidents frame with `endpoint` as text (`str`, NaN: the whole API), the type
    it has in every other frame, with rows or without, whichever kinds were found."""
    found["endpoint"] = found["endpoint"].astype("str")
    return found
