"""The runbook's targets as named settings (`Thresholds`), and the `[thresholds]` table of
lsops.toml read into them: every name known, each value a number in its range (a fraction
from 0 to 1, a whole number where one is counted, a duration where one is meant)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import fmt
from .exceptions import ConfigError


@dataclass(frozen=True)
class Thresholds:
    """The runbook's targets (reference: "The runbook's targets"), all configurable."""

    latency_p95_ms: float = 500.0  # target: p95 < 500 ms
    latency_p95_warn_ms: float = 1000.0  # warning: p95 > 1000 ms
    error_rate: float = 0.01  # target < 1 %
    error_rate_warn: float = 0.05  # warning > 5 %
    error_rate_critical: float = 0.10  # critical > 10 %
    cache_hit_rate: float = 0.70  # target > 70 %
    cache_hit_rate_warn: float = 0.50  # warning < 50 %
    memory_fraction: float = 0.80  # target < 80 % of available
    memory_critical_fraction: float = 0.90  # critical > 90 %
    memory_limit_bytes: int = 512 * 1024 * 1024  # "available": the process's memory budget
    memory_growth_per_hour: float = (
        0.02  # a steady climb above 2 %/h between restarts: possible leak
    )
    slow_queries_per_hour: int = 10  # warning: more than 10 slow queries an hour
    slow_query_mean_ms: float = 20.0  # pgHero's default
    slow_query_calls: int = 100  # pgHero's default
    availability_slo: float = 0.995  # share of health observations that are OK
    latency_slo: float = 0.95  # share of time slices whose p95 met latency_p95_ms
    incident_margin_minutes: float = 30.0  # a postmortem window: the incident +- this margin
    # month over month: when the review calls a change against the previous month notable
    # (analysis/changes.py; "difference" of fractions in points, "relative" as a share)
    notable_traffic_change: float = 0.0  # requests per covered day, relative (0: always said)
    notable_error_rate_change: float = 0.001  # error rate, difference (0.1 pp)
    notable_latency_change: float = 0.05  # mean latency (counter deltas), relative (5 %)
    notable_availability_change: float = 0.001  # availability, difference (0.1 pp)
    notable_cache_hit_rate_change: float = 0.001  # cache hit rate, difference (0.1 pp)
    notable_endpoint_error_rate_change: float = 0.005  # an endpoint's error rate rose > 0.5 pp
    notable_endpoint_latency_change: float = 0.20  # an endpoint's mean latency rose > 20 %
    # postmortem harm (analysis/harm.py): an endpoint is harmed by what chance does not explain
    harm_significance: float = 0.01  # one-sided test level of the error and latency tests
    harm_min_excess_errors: float = 3.0  # fewer errors beyond the baseline than this: no harm
    harm_min_latency_ms: float = 20.0  # a mean less than this above the baseline's: no harm
    harm_min_latency_increase: float = 0.10  # nor one less than 10 % above the baseline's
    harm_min_requests: int = 30  # latency is not tested on fewer requests (either period)
    harm_seconds_per_error: float = 30.0  # a failed request weighs 30 request-seconds of delay
    # --- issue 12: the monthly security review (`lsops security`, the review's section) ---
    secret_max_age: int = 90  # days: a secret last rotated longer ago than this is overdue
    secret_due_days: int = 14  # days: within this of secret_max_age a rotation is due
    auth_burst_factor: float = 5.0  # an hour with this many times the hourly baseline ...
    auth_burst_min: int = 10  # ... and at least this many 401/403 (or 429) is a burst
    # backups (issue 12, `lsops backup check`; lsops_lib/db/backups.py)
    backup_shrink: float = 0.20  # a dump smaller than the previous one by more than 20 %
    backup_rows_tolerance: float = 0.10  # restore drill: rows within 10 % of the live count
    backup_exact_rows: int = 100_000  # restore drill: live tables below this counted exactly
    # --- issue 15: retrieval quality (db/vectors.py) and the capacity forecast (db/forecast.py)
    similarity_threshold: float = 0.7  # semantic_search's DEFAULT: keeps 1 - (a <=> b) >= 0.7
    recall_target: float = 0.95  # recall@k a vector index should reach (ef_search / probes)
    database_size_limit_bytes: int = 8 * 1024**3  # the plan's database size (Supabase Pro: 8 GB)
    forecast_min_snapshots: int = 5  # fewer size snapshots (since a shrink): "not enough history"
    forecast_min_days: float = 3.0  # ... or spanning fewer days
    forecast_shrink_ratio: float = 0.05  # a drop below every recent snapshot by 5 %: a new series
    # --- issue 13: the database checks (lsops_lib/db; db.settings.DbThresholds takes its
    # defaults from here, so every one is settable in lsops.toml [thresholds]; pgHero's
    # defaults where pgHero has one). slow_query_* and slow_queries_per_hour are above.
    dead_tuples_min: int = 1000  # below this many dead tuples a table is never flagged
    dead_tuple_ratio: float = 0.10  # dead / (live + dead) above which VACUUM is due
    seq_scan_min_rows: int = 10_000  # smaller tables are fine to scan (pgHero: 10,000)
    seq_scan_min_scans: int = 20  # fewer sequential scans are noise (a one-off, lsops's own)
    seq_scan_min_rows_read: int = 100_000  # nor fewer rows read by them, in all
    seq_scan_ratio: float = 0.50  # share of the rows read that sequential scans read
    bloat_ratio: float = 0.50  # estimated wasted share of a table's heap
    bloat_min_bytes: int = 10 * 1024 * 1024  # never flag bloat smaller than this
    wraparound_warn: float = 0.50  # transaction ID age, share of the 2^31 limit
    wraparound_critical: float = 0.75
    sequence_warn: float = 0.80  # a sequence's share of its maximum
    sequence_critical: float = 0.95
    long_running_s: float = 300.0  # an active statement running this long
    idle_in_transaction_s: float = 60.0  # a session idle in an open transaction this long
    connections_warn: float = 0.80  # share of the usable connections
    cache_hit_ratio: float = 0.99  # shared-buffer hit ratio below which it is flagged
    # no DROP is proposed for an unused index before the usage statistics cover this many
    # days (a number of days, or a duration such as "30d" or "4w" in lsops.toml)
    unused_index_min_age: float = 30.0
    # --- issue 10 (point 6): incident kinds cache_fall and memory_climb
    # (analysis/cache_fall.py, analysis/memory_climb.py)
    cache_fall_min_minutes: float = 30.0  # a hit rate below cache_hit_rate this long: a fall
    cache_fall_min_ops_per_minute: float = 1.0  # intervals with fewer cache ops are not judged
    memory_climb_per_hour: float = 0.002  # RSS growth, share of memory_limit_bytes an hour
    memory_climb_min_hours: float = 3.0  # a climb lasting this long (also its slope window)
    # --- issue 10: errors and logs (the checklist's Sentry and pm2 lines) ---
    errors_resolve_within: float = 7.0  # days: an unresolved Sentry issue older is overdue
    cpu_percent: float = 70.0  # pm2 CPU of the app, p95 of the window, below this (percent)
    cpu_critical_percent: float = 90.0  # critical: the p95 above this (percent)
    log_burst_min: int = 10  # incidents: an hour with at least this many error log entries ...
    log_burst_factor: float = (
        5.0  # ... and this many times the median hour (30 days back) is a burst
    )


# issue 13: thresholds given as a duration in lsops.toml ("30d"), kept in this unit (s)
_DURATION_THRESHOLDS = {"unused_index_min_age": 86400.0}  # days

# thresholds that are fractions (shares, rates, probabilities): 0 .. 1, never a percent
# (`error_rate = 5` would be a target of 500 % that every month meets)
_FRACTION_THRESHOLDS = frozenset(
    {
        "error_rate", "error_rate_warn", "error_rate_critical", "cache_hit_rate",
        "cache_hit_rate_warn", "memory_fraction", "memory_critical_fraction",
        "memory_growth_per_hour", "availability_slo", "latency_slo",
        "notable_error_rate_change", "notable_availability_change",
        "notable_cache_hit_rate_change", "notable_endpoint_error_rate_change",
        "harm_significance", "backup_shrink", "backup_rows_tolerance", "recall_target",
        "forecast_shrink_ratio", "dead_tuple_ratio", "seq_scan_ratio", "bloat_ratio",
        "wraparound_warn", "wraparound_critical", "sequence_warn", "sequence_critical",
        "connections_warn", "cache_hit_ratio", "memory_climb_per_hour",
    }
)  # fmt: skip
# the others' range where it is not "0 or more" (a byte limit of 0 is no limit)
_THRESHOLD_RANGES = {
    **{key: (0.0, 1.0) for key in _FRACTION_THRESHOLDS},
    "similarity_threshold": (-1.0, 1.0),  # a cosine similarity
    "forecast_min_snapshots": (2.0, math.inf),  # a line needs two points
}


def _threshold_value(key: str, kind: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(value)
    if key in _DURATION_THRESHOLDS and isinstance(value, str):
        import re

        from .exceptions import ParameterError
        from .times import parse_duration

        if re.fullmatch(r"\s*0+(?:\.0*)?\s*(?:ms|s|m|h|d|w)\s*", value):
            return 0.0  # "0d": no minimum (parse_duration wants a positive one)
        try:
            seconds = parse_duration(value).total_seconds()
        except (ParameterError, OverflowError):
            raise ValueError(value) from None
        return seconds / _DURATION_THRESHOLDS[key]
    number = float(value)
    low, high = _THRESHOLD_RANGES.get(key, (0.0, math.inf))
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(value)
    if kind == "int" and not isinstance(value, int):  # 1.5 bytes: said, not rounded
        if not number.is_integer():
            raise ValueError(value)
        return int(number)
    return value if kind == "int" else number


def _threshold_expected(key: str, kind: str, value: Any) -> str:
    """What the threshold `key` must be, for the line refusing `value`."""
    if key in _DURATION_THRESHOLDS:
        return "a number of days or a duration such as 30d"
    if key in _FRACTION_THRESHOLDS:
        percent = value if isinstance(value, int | float) and 1 < value <= 100 else 5
        return f"a fraction from 0 to 1 ({fmt.number(percent / 100, 6)} for {percent:g} %)"
    if key == "similarity_threshold":
        return "a cosine similarity from -1 to 1"
    if key == "forecast_min_snapshots":
        return "a whole number of at least 2 (a forecast needs two snapshots)"
    if key.endswith("_bytes"):
        return "a whole number of bytes, 0 or more"
    return "a whole number, 0 or more" if kind == "int" else "a non-negative number"


def parse_thresholds(section: Mapping[str, Any], path: Path | str = "lsops.toml") -> Thresholds:
    """The [thresholds] table: every field of `Thresholds` (the database checks' too),
    a number each (`unused_index_min_age` also a duration such as "30d"); an unknown name
    is refused naming the file, with the closest names and the list of known ones; a
    fraction outside 0 .. 1 (a percent), or a fraction of a whole number, is refused."""
    if not isinstance(section, Mapping):
        raise ConfigError("lsops.toml: [thresholds] must be a table")
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            # the closest names first, then every name (the CLI's line has room for them)
            close = [repr(n) for n in difflib.get_close_matches(str(key), known, n=3, cutoff=0.5)]
            names = ", ".join(close[:-1]) + " or " + close[-1] if len(close) > 1 else "".join(close)
            hint = f"; did you mean {names}?" if close else ""
            raise ConfigError(
                f"{path}: unknown threshold {key!r} in [thresholds]{hint} "
                f"(known: {', '.join(sorted(known))})"
            )
        try:
            values[key] = _threshold_value(key, str(known[key]), value)
        except (TypeError, ValueError, OverflowError):
            what = _threshold_expected(key, str(known[key]), value)
            raise ConfigError(
                f"lsops.toml: threshold {key} must be {what}, not {value!r}"
            ) from None
    return Thresholds(**values)
