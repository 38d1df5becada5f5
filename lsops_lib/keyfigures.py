"""Where an executed notebook keeps its key figures, and how to read them back.

The contract between the notebooks, which write the block (`present.key_figures`), and
whoever reads it: the report runner judging a run (`reports.outcome`), schedulers, tests.
Reading needs only JSON, so the runner does not import what the notebooks display with
(matplotlib, the whole of `present`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["KEY_FIGURES_TAG", "read_key_figures"]

KEY_FIGURES_TAG = "lsops-key-figures"


def read_key_figures(nb: Any) -> dict[str, Any]:
    """The key figures of an executed notebook (a NotebookNode, a dict or a path).

    KeyError when the notebook shows none."""
    if isinstance(nb, str | Path):
        nb = json.loads(Path(nb).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata") or {}
            tagged = meta.get("lsops") == KEY_FIGURES_TAG or KEY_FIGURES_TAG in cell.get(
                "metadata", {}
            ).get("tags", [])
            data = output.get("data") or {}
            if tagged and "application/json" in data:
                value = data["application/json"]
                return json.loads(value) if isinstance(value, str) else dict(value)
    raise KeyError("no key figures in this notebook")
