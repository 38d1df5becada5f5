"""Named thresholds of the database checks (pgHero's defaults where pgHero has one).

Their defaults are those of `config.Thresholds`, where each is declared once: every one is
settable in lsops.toml `[thresholds]`, and `from_settings` copies them all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..config import Thresholds
from ..exceptions import ParameterError

__all__ = ["DbThresholds"]

_T = Thresholds()


@dataclass(frozen=True)
class DbThresholds:
    # queries (pgHero: slow = mean >= 20 ms over >= 100 calls)
    slow_query_mean_ms: float = _T.slow_query_mean_ms
    slow_query_calls: int = _T.slow_query_calls
    slow_queries_per_hour: int = _T.slow_queries_per_hour  # the runbook: > 10 an hour
    # tables and indexes
    dead_tuples_min: int = _T.dead_tuples_min  # below this many dead tuples: never flagged
    dead_tuple_ratio: float = _T.dead_tuple_ratio  # dead / (live + dead): VACUUM is due
    seq_scan_min_rows: int = _T.seq_scan_min_rows  # smaller tables are fine to scan
    seq_scan_min_scans: int = _T.seq_scan_min_scans  # fewer sequential scans: noise
    seq_scan_min_rows_read: int = _T.seq_scan_min_rows_read  # fewer rows read by them: noise
    seq_scan_ratio: float = _T.seq_scan_ratio  # share of the rows read read sequentially
    bloat_ratio: float = _T.bloat_ratio  # estimated wasted share of a table's heap
    bloat_min_bytes: int = _T.bloat_min_bytes  # never flag bloat smaller than this
    unused_index_min_age: float = _T.unused_index_min_age  # days of statistics before a DROP
    # wraparound and sequences (fractions of the hard limit)
    wraparound_warn: float = _T.wraparound_warn
    wraparound_critical: float = _T.wraparound_critical
    sequence_warn: float = _T.sequence_warn
    sequence_critical: float = _T.sequence_critical
    # sessions and connections
    long_running_s: float = _T.long_running_s
    idle_in_transaction_s: float = _T.idle_in_transaction_s
    connections_warn: float = _T.connections_warn
    # cache hit ratios (pgHero: 99 %)
    cache_hit_ratio: float = _T.cache_hit_ratio

    @classmethod
    def from_settings(cls, thresholds: Any | None = None, **overrides: Any) -> DbThresholds:
        """From `config.Thresholds` (every field of both) plus overrides."""
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
