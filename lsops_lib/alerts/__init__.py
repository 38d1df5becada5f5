"""Alerts (issue 11): rules evaluated after every collection round, state kept in the
metrics store, routed notifications.

    burnrate   the SRE workbook's multiwindow, multi-burn-rate arithmetic over the store
    rules      the rules (RULES, register); rules_sources: Sentry, logs, backups, capacity
    state      pending / firing / resolved in the store, repeat, flapping, inhibition, claims
    notify     the payload and the notifiers (webhook, email, command)
    settings   `[alerts]` of lsops.toml, LSOPS_ALERT_WEBHOOK
    evaluate   one round: rules -> state -> notifications
"""

from __future__ import annotations

from .burnrate import (
    PAGE,
    SLO_PERIOD_S,
    TICKET,
    BurnWindow,
    budget_consumed,
    burn_rate,
    exhaustion_s,
    factor_for,
    pair_fires,
)
from .evaluate import evaluate, evaluate_targets
from .notify import payload, send, test_payload
from .rules import RULES, Alert, RuleConfig, register
from .settings import ALERT_WEBHOOK_ENV, AlertSettings, alert_settings, parse_alert_settings

__all__ = [
    "ALERT_WEBHOOK_ENV",
    "PAGE",
    "RULES",
    "SLO_PERIOD_S",
    "TICKET",
    "Alert",
    "AlertSettings",
    "BurnWindow",
    "RuleConfig",
    "alert_settings",
    "budget_consumed",
    "burn_rate",
    "evaluate",
    "evaluate_targets",
    "exhaustion_s",
    "factor_for",
    "pair_fires",
    "parse_alert_settings",
    "payload",
    "register",
    "send",
    "test_payload",
]
