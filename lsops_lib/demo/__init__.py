"""`lsops demo`: the simulated API, an embedded PostgreSQL, a month of history and the
three reports, in one command (`world`: what happens; `run`: how it is run)."""

from __future__ import annotations

from .run import (
    DemoError,
    Interrupted,
    Options,
    Result,
    UsageError,
    descendants,
    run_demo,
    run_lab,
)
from .world import Plan, Segment, plan

__all__ = [
    "DemoError",
    "Interrupted",
    "Options",
    "Plan",
    "Result",
    "Segment",
    "UsageError",
    "descendants",
    "plan",
    "run_demo",
    "run_lab",
]
