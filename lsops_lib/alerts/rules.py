"""The alert rules: each a small named function `rule(store, now, config, target)` that
returns the alerts it sees now (a list, empty when all is well), or None when it cannot
judge (its source not configured, the collector did not cover its windows): its alerts
then keep their state.

    RULES                     name -> rule, in evaluation order (api_down first)
    register(name)(function)  adds one (the Sentry and log rules are registered so)

Alert names: `api_down` (critical, `[alerts] down_after` consecutive unanswered scrapes;
pending before), `health_error` (critical), `memory_critical` (critical, RSS above
`[thresholds] memory_critical_fraction` of `memory_limit_bytes`), `slo_<objective>_page`
(critical) and `slo_<objective>_ticket` (warning) for availability, error_rate and latency,
`sentry_fatal` (critical), `log_error_pattern` (warning), `backup_too_old` (warning),
`capacity` (warning, issue 15).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import fmt
from .burnrate import (
    LATEST_COLUMNS,
    OBJECTIVES,
    BurnWindow,
    WindowRead,
    describe,
    objective_reads,
    pair_fires,
    targets_reads,
)
from .settings import AlertSettings

__all__ = [
    "LATEST_SPAN",
    "RULES",
    "Alert",
    "RuleConfig",
    "Rule",
    "burn_windows",
    "prefetch",
    "register",
]

LATEST_SPAN = timedelta(days=1)  # the scrapes api_down, health_error, memory_critical read


@dataclass(frozen=True)
class Alert:
    """One alert instance a rule sees now. `key` identifies it (name + what it is about)."""

    rule: str
    name: str
    severity: str  # critical | warning
    summary: str
    value: float | None = None
    threshold: float | None = None
    key: str = ""
    pending: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


@dataclass
class RuleConfig:
    """What the rules read besides the store: the settings, `[alerts]`, and a cache of
    the reads several rules share within one round."""

    settings: Any
    alerts: AlertSettings
    cache: dict[str, Any] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # rule -> why it could not judge

    def skip(self, rule: str, reason: str) -> None:
        """Say why `rule` returns None (shown by `lsops alerts check`)."""
        self.why[rule] = reason

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """The round's value of `key`: `compute()` on first use, then the same value for
        every rule and target of the round (a batched round prefetches some keys)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


Rule = Callable[[Any, datetime, RuleConfig, str], "list[Alert] | None"]
RULES: dict[str, Rule] = {}


def register(name: str) -> Callable[[Rule], Rule]:
    def add(function: Rule) -> Rule:
        RULES[name] = function
        return function

    return add


def _latest(store: Any, now: datetime, config: RuleConfig, target: str) -> pd.DataFrame:
    """The scrapes of the last day (newest last), read once a round."""
    return config.once(
        f"latest:{target}",
        lambda: store.scrapes(
            now - LATEST_SPAN,
            now + timedelta(milliseconds=1),
            target=target,
            columns=LATEST_COLUMNS,
        ),
    )


@register("api_down")
def api_down(store: Any, now: datetime, config: RuleConfig, target: str) -> list[Alert] | None:
    """The API did not answer the last `down_after` scrapes (pending after the first)."""
    df = _latest(store, now, config, target)
    if df.empty:
        config.skip("api_down", "no scrape of this target in the last day")
        return None
    unanswered = 0
    for status in reversed(df["health_status"].tolist()):
        if status is not None and not (isinstance(status, float) and math.isnan(status)):
            break
        unanswered += 1
    if unanswered == 0:
        return []
    need = config.alerts.down_after
    return [
        Alert(
            "api_down",
            "api_down",
            "critical",
            f"the API did not answer {fmt.counted(unanswered, 'consecutive scrape')} "
            f"(last: {df['failure_kind'].iloc[-1] or 'no answer'})",
            float(unanswered),
            float(need),
            pending=unanswered < need,
        )
    ]


@register("health_error")
def health_error(store: Any, now: datetime, config: RuleConfig, target: str) -> list[Alert] | None:
    df = _latest(store, now, config, target)
    if df.empty:
        config.skip("health_error", "no scrape of this target in the last day")
        return None
    if df["health_status"].iloc[-1] != "ERROR":
        return []
    return [Alert("health_error", "health_error", "critical", "the health check says ERROR")]


@register("memory_critical")
def memory_critical(
    store: Any, now: datetime, config: RuleConfig, target: str
) -> list[Alert] | None:
    rss = _latest(store, now, config, target)["rss"].dropna()
    if rss.empty:
        config.skip("memory_critical", "no memory figure in the last day")
        return None
    t = config.settings.thresholds
    if t.memory_limit_bytes <= 0:
        config.skip("memory_critical", "no memory limit ([thresholds] memory_limit_bytes = 0)")
        return None
    share = float(rss.iloc[-1]) / t.memory_limit_bytes
    if share <= t.memory_critical_fraction:
        return []
    return [
        Alert(
            "memory_critical",
            "memory_critical",
            "critical",
            f"memory (RSS) at {fmt.share(share)} of {fmt.size(t.memory_limit_bytes)}",
            share,
            t.memory_critical_fraction,
        )
    ]


# --- burn rates ---------------------------------------------------------------------------


def burn_windows(a: AlertSettings) -> set[float]:
    """Every window (s) the burn-rate rules of `[alerts]` read."""
    return {w for p in (*a.page, *a.ticket) for w in (p.long_s, p.short_s)}


def _reads(store: Any, now: datetime, config: RuleConfig, target: str) -> Any:
    t = config.settings.thresholds
    return config.once(
        f"burn:{target}",
        lambda: objective_reads(store, target, now, burn_windows(config.alerts), t),
    )


def prefetch(store: Any, now: datetime, config: RuleConfig, targets: list[str]) -> None:
    """Read what `_latest` and `_reads` read, for every target of a round at once
    (`burnrate.targets_reads`: two reads in all instead of four a target), into
    `config.cache`: the same frames and windows each target's own reads give."""
    t = config.settings.thresholds
    reads, latest = targets_reads(
        store, targets, now, burn_windows(config.alerts), t, LATEST_SPAN.total_seconds()
    )
    for target in targets:
        config.cache[f"burn:{target}"] = reads[target]
        config.cache[f"latest:{target}"] = latest[target]


def burn_alert(
    objective: str, severity: str, pairs: tuple[BurnWindow, ...], reads: dict[float, WindowRead],
    min_coverage: float,
) -> list[Alert] | None:  # fmt: skip
    """The alert of one objective at one severity: fires when any covered pair fires."""
    kind = "page" if severity == "critical" else "ticket"
    name = f"slo_{objective}_{kind}"
    covered = [
        p
        for p in pairs
        if reads[p.long_s].covered(min_coverage) and reads[p.short_s].covered(min_coverage)
    ]
    if not covered:
        return None
    for p in covered:
        long, short = reads[p.long_s], reads[p.short_s]
        if pair_fires(long.burn, short.burn, p.factor):
            what = objective.replace("_", " ")
            return [
                Alert(
                    name,
                    name,
                    severity,
                    f"{what} {describe(p.factor, long, short)}",
                    long.burn,
                    p.factor,
                )  # fmt: skip
            ]
    return []


def _burn_rule(objective: str, severity: str) -> Rule:
    def rule(store: Any, now: datetime, config: RuleConfig, target: str) -> list[Alert] | None:
        pairs = config.alerts.page if severity == "critical" else config.alerts.ticket
        reads = _reads(store, now, config, target)[objective]
        found = burn_alert(objective, severity, pairs, reads, config.alerts.min_coverage)
        if found is None:
            p = pairs[0]
            config.skip(
                rule.__name__,
                f"no window pair covered enough: the scrapes cover "
                f"{fmt.share(reads[p.long_s].coverage)} of {fmt.duration(p.long_s)} and "
                f"{fmt.share(reads[p.short_s].coverage)} of {fmt.duration(p.short_s)}; "
                f"{fmt.share(config.alerts.min_coverage)} of both windows is needed",
            )
        return found

    rule.__name__ = f"slo_{objective}_{'page' if severity == 'critical' else 'ticket'}"
    return rule


for _objective in OBJECTIVES:
    for _severity in ("critical", "warning"):
        _rule = _burn_rule(_objective, _severity)
        RULES[_rule.__name__] = _rule

# the Sentry, log, backup and capacity rules: rules_sources.py
from . import rules_sources as _rules_sources  # noqa: E402,F401
