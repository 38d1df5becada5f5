"""Secret rotation: the runbook's "rotate secrets: update API keys, rotate database
credentials", from the dates in lsops.toml.

    [secrets]
    OPENAI_API_KEY = "2026-09-01"        # when it was last rotated: a date, never the value

Each secret's age against `Thresholds.secret_max_age` (days, default 90): `overdue` past
it, `due` within `Thresholds.secret_due_days` of it, `ok` before, `future` for a date
after today (a typo to fix). lsops never reads a secret's value for this.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from .. import fmt
from ..config import Thresholds

__all__ = ["SECRETS_KEYS", "rotation"]

SECRETS_KEYS = (
    "status",
    "configured",
    "reason",
    "today",
    "max_age_days",
    "due",
    "overdue",
    "secrets",
)
_ORDER = {"overdue": 0, "future": 1, "due": 2, "ok": 3}


def _verdict(age: int, t: Thresholds) -> str:
    if age < 0:
        return "future"
    if age > t.secret_max_age:
        return "overdue"
    if age >= t.secret_max_age - t.secret_due_days:
        return "due"
    return "ok"


def rotation(rotations: Mapping[str, date], thresholds: Thresholds, today: date) -> dict[str, Any]:
    """The secrets part of the security review (`SECRETS_KEYS`); `secrets`: one row per
    name (name, rotated, age_days, due_on, status), most urgent first."""
    out: dict[str, Any] = dict.fromkeys(SECRETS_KEYS)
    out.update(today=today, max_age_days=int(thresholds.secret_max_age))
    if not rotations:  # unknown: `due`, `overdue` and `secrets` stay None (never 0 nor [])
        out.update(
            status="unknown",
            configured=False,
            reason=(
                'not configured: no [secrets] in lsops.toml (NAME = "YYYY-MM-DD", the date '
                "each secret was last rotated)"
            ),
        )
        return out
    rows = []
    for name, rotated in rotations.items():
        age = (today - rotated).days
        rows.append(
            {
                "name": name,
                "rotated": rotated,
                "age_days": age,
                "due_on": rotated + timedelta(days=int(thresholds.secret_max_age)),
                "status": _verdict(age, thresholds),
            }
        )
    rows.sort(key=lambda r: (_ORDER[r["status"]], -r["age_days"], r["name"]))
    due = sum(r["status"] == "due" for r in rows)
    overdue = sum(r["status"] == "overdue" for r in rows)
    future = sum(r["status"] == "future" for r in rows)
    words = [
        f"{n} {w}"
        for n, w in ((overdue, "overdue"), (due, "due"), (future, "dated in the future"))
        if n
    ]
    out.update(
        status="attention" if due or overdue or future else "ok",
        configured=True,
        reason=", ".join(words) if words else _all_rotated(len(rows)),
        due=due,
        overdue=overdue,
        secrets=rows,
    )
    return out


def _all_rotated(n: int) -> str:
    """'1 secret rotated within the allowed age', 'all 3 secrets rotated within ...'."""
    return f"{'' if n == 1 else 'all '}{fmt.counted(n, 'secret')} rotated within the allowed age"
