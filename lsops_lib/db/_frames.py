"""The types of the frames `lsops_lib.db` answers: an empty answer has the columns and
types of a full one, and a column without any value in a full answer has its column's
type too (README "Guarantees"): text `str`, instants `TS`, numbers as their values type
them (a float column of NULLs is float64 NaN, never `object` of None).

`empty` is the store's (`lsops_lib.store.reads.empty`), imported when first needed: the
database inspection does not load the store otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..times import TS

__all__ = ["TS", "empty", "instants", "typed"]


def empty(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame with these columns (name -> dtype) and no row (`store.reads.empty`)."""
    from ..store.reads import empty as store_empty

    return store_empty(dtypes)


def instants(values: Any) -> pd.Series:
    """timestamptz values as UTC instants of `TS`: the dtype a column of some dates gets,
    also when it is empty or all NULL (which pandas would make `datetime64[s, UTC]`)."""
    return pd.to_datetime(values, utc=True).astype(TS)


def typed(df: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """`df` (changed in place, and returned) with each of its columns named in `dtypes`
    of that type, rows or none: instants (`TS`) converted to UTC in microseconds, the
    other types cast (a NULL of a text column is NaN, as pandas reads some text and a
    NULL)."""
    for col, dtype in dtypes.items():
        if col not in df.columns or df[col].dtype == dtype:
            continue
        if dtype == TS:
            df[col] = instants(df[col])
        else:
            df[col] = df[col].astype(dtype)
    return df
