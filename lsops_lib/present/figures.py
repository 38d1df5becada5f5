"""Key figures: one machine-readable block per executed notebook (tests, schedulers)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..keyfigures import KEY_FIGURES_TAG, read_key_figures
from .display import PROBLEMS, _display, _missing, esc

__all__ = ["KEY_FIGURES_TAG", "jsonable", "key_figures", "read_key_figures"]


# --- key figures ----------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Figures -> JSON: NaN/NaT -> None, timestamps -> ISO 8601 `Z`, numpy -> Python."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict("records")]
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta | pd.Timedelta):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(float(value)) else None
    return value if isinstance(value, str) else str(value)


def key_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """Display the report's key figures as one JSON output (tagged), and return them."""
    data = jsonable({**figures, "problems": list(PROBLEMS)})
    text = json.dumps(data, indent=1, ensure_ascii=False)
    markup = (
        f"<details><summary>Key figures as JSON ({len(data)} entries; the notebook keeps them as "
        f"the application/json output tagged {KEY_FIGURES_TAG})</summary><pre>{esc(text)}</pre>"
        "</details>"
    )
    _display(
        {"application/json": data, "text/html": markup, "text/plain": text},
        raw=True,
        metadata={"application/json": {"lsops": KEY_FIGURES_TAG}, "lsops": KEY_FIGURES_TAG},
    )
    return data
