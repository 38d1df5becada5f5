"""The bundles behind the reports (kept for imports of `lsops_lib.analysis.review`).

Notebooks call `monthly_review(store, month)` / `postmortem(store, start, end)` and draw;
see `monthly.py` and `postmortem.py`.
"""

from __future__ import annotations

from .monthly import MonthlyReview, monthly_review
from .postmortem import Postmortem, postmortem

__all__ = ["MonthlyReview", "Postmortem", "monthly_review", "postmortem"]
