"""Named thresholds of the database checks (pgHero's defaults where pgHero has one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..exceptions import ParameterError

__all__ = ["DbThresholds"]


@dataclass(frozen=True)
class DbThresholds:
    # queries (pgHero: slow = mean >= 20 ms over >= 100 calls)
    slow_query_mean_ms: float = 20.0
    slow_query_calls: int = 100
    slow_queries_per_hour: int = 10  # the runbook: warning above 10 slow queries an hour
    # tables and indexes
    dead_tuples_min: int = 1000  # below this many dead tuples a table is never flagged
    dead_tuple_ratio: float = 0.10  # dead / (live + dead) above which VACUUM is due
    seq_scan_min_rows: int = 10_000  # smaller tables are fine to scan (pgHero: 10,000)
    seq_scan_ratio: float = 0.50  # share of scans that are sequential
    bloat_ratio: float = 0.50  # estimated wasted share of a table's heap
    bloat_min_bytes: int = 10 * 1024 * 1024  # never flag bloat smaller than this
    # wraparound and sequences (fractions of the hard limit)
    wraparound_warn: float = 0.50
    wraparound_critical: float = 0.75
    sequence_warn: float = 0.80
    # sessions and connections
    long_running_s: float = 300.0
    idle_in_transaction_s: float = 60.0
    connections_warn: float = 0.80
    # cache hit ratios (pgHero: 99 %)
    cache_hit_ratio: float = 0.99

    @classmethod
    def from_settings(cls, thresholds: Any | None = None, **overrides: Any) -> DbThresholds:
        """From `config.Thresholds` (slow_query_* and slow_queries_per_hour) plus overrides."""
        base = cls()
        if thresholds is not None:
            shared = {
                f.name: getattr(thresholds, f.name)
                for f in fields(cls)
                if hasattr(thresholds, f.name)
            }
            base = replace(base, **shared)
        return base.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> DbThresholds:
        known = {f.name: f.type for f in fields(self)}
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise ParameterError(
                    f"unknown database threshold {key!r} (known: {', '.join(known)})"
                )
            try:
                values[key] = int(value) if known[key] == "int" else float(value)
            except (TypeError, ValueError):
                raise ParameterError(f"threshold {key} must be a number, not {value!r}") from None
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
