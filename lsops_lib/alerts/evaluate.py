"""One round of alerting: the rules, then the state, then the notifications.

    result = evaluate(store, settings, target="prod")          # now; lsops alerts check
    result = evaluate(store, settings, target=t, now=clock())   # a virtual clock (demo, tests)

`evaluate` runs every rule of `rules.RULES` (or those given) for the target, applies the
results to the stored state in one transaction (state.apply_round), delivers what this
call claimed (notify.deliver_entries) and records the outcome (state.settle). It returns
a JSON-ready dict: target, now, rules [{rule, status (evaluated | skipped | failed),
alerts, note}], alerts [the rows: name, key, state, severity, since, ..., owed, held,
held_until],
notifications [{notifier, name, state, severity, ok, error}].

A rule that raises is reported (`failed`, its message with secrets masked) and the others
go on: alerting never stops a collection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..times import from_ms, utcnow
from . import rules as rules_module
from .notify import NO_NOTIFIER, _mask, deliver_entries
from .settings import AlertSettings, alert_settings
from .state import apply_round, settle

__all__ = ["after_round", "evaluate", "evaluate_targets", "owed_counts"]


def _lease_s(cfg: AlertSettings) -> float:
    """How long a claim holds: every notifier's timeout, twice, and a minute."""
    return 60.0 + 2 * sum(n.timeout_s for n in cfg.notifiers.values())


def _secrets(settings: Any, cfg: AlertSettings) -> list[str]:
    found = list(cfg.secrets())
    if hasattr(settings, "secrets"):
        found += settings.secrets()
    return [s for s in found if s]


def evaluate(
    store: Any,
    settings: Any,
    *,
    target: str | None = None,
    now: datetime | None = None,
    alerts: AlertSettings | None = None,
    rules: Mapping[str, Any] | None = None,
    cache: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One round for `target` (default: the settings' target). See the module docstring.
    `cache`: the reads of a round of several targets (`evaluate_targets`), shared."""
    cfg = alerts if alerts is not None else alert_settings(settings)
    target = target or settings.target.name
    now = now or utcnow()
    chosen = rules if rules is not None else rules_module.RULES
    config = rules_module.RuleConfig(
        settings=settings, alerts=cfg, cache={} if cache is None else cache
    )
    secrets = config.once("round:secrets", lambda: _secrets(settings, cfg))
    results: dict[str, Any] = {}
    report = []
    for name, rule in chosen.items():
        try:
            found = rule(store, now, config, target)
        except Exception as exc:  # noqa: BLE001 - one broken rule never stops the round
            results[name] = None
            report.append({"rule": name, "status": "failed", "alerts": 0,
                           "note": _mask(f"{type(exc).__name__}: {exc}", secrets)})  # fmt: skip
            continue
        results[name] = found
        note = _mask(config.why.get(name, "could not judge"), secrets) if found is None else None
        report.append({"rule": name, "status": "skipped" if found is None else "evaluated",
                       "alerts": len(found or []), "note": note})  # fmt: skip
    rows, claims = apply_round(store, target, now, results, cfg, lease_s=_lease_s(cfg))
    sent: list[dict[str, Any]] = []
    left: dict[str, list[dict[str, Any]]] = {}
    for claim in claims:
        delivered, attempts = deliver_entries(claim.entries, cfg, now, secrets)
        settle(store, claim, delivered, attempts, now)
        sent += [{"name": claim.name, **a} for a in attempts]
        left[claim.key] = [e for e in claim.entries if e["id"] not in delivered]
    alerts = []
    for row in rows:
        if row["state"] != "inactive":
            alerts.append(_public(row))
            due = left.get(row["key"], json.loads(row["due"] or "[]"))
            alerts[-1].update(owed_counts(due, cfg, now))
    return {
        "target": target,
        "now": now,
        "rules": report,
        "alerts": alerts,
        "notifications": sent,
    }


def owed_counts(due: list[dict[str, Any]], cfg: AlertSettings, now: datetime) -> dict[str, Any]:
    """`owed`: the notifications of an alert not yet delivered; `held` of them, those
    waiting for business hours, which open at `held_until` (None: no business day)."""
    held = 0 if cfg.in_business_hours(now) else sum(1 for e in due if e.get("business_hours"))
    return {
        "owed": len(due),
        "held": held,
        "held_until": cfg.business_opens(now) if held else None,
    }


def _public(row: dict[str, Any]) -> dict[str, Any]:
    def instant(ms: Any) -> Any:
        return None if ms is None else from_ms(ms)

    return {
        "name": row["name"],
        "key": row["key"],
        "state": row["state"],
        "severity": row["severity"],
        "since": instant(row["since"]),
        "value": row["value"],
        "threshold": row["threshold"],
        "summary": row["summary"],
        "flapping": bool(row["flapping"]),
        "inhibited": bool(row["inhibited"]),
        "last_notified": instant(row["last_sent_at"]),
        "owed": len(json.loads(row["due"] or "[]")),
    }


def evaluate_targets(
    store: Any, settings: Any, targets: list[str], *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """`evaluate` for each target (the collector's hook after a round), all at the same
    instant `now` (default: now, once). What the rules read target by target is read
    for all the targets at once first (`rules.prefetch`: burn-rate windows and the last
    day's scrapes; `rules_sources.prefetch_sources`: the sources collected in the
    window); should one of those reads fail, each target's rules read alone, as
    `evaluate` does."""
    from .rules_sources import prefetch_sources

    cfg = alert_settings(settings)
    if not cfg.enabled:
        return []
    now = now or utcnow()
    cache: dict[str, Any] = {}
    for prefetch in (rules_module.prefetch, prefetch_sources) if targets else ():
        part: dict[str, Any] = {}
        try:
            prefetch(store, now, rules_module.RuleConfig(settings, cfg, part), list(targets))
        except Exception:  # noqa: BLE001 - each rule reads its target alone and says so
            continue
        cache.update(part)
    return [evaluate(store, settings, target=t, now=now, alerts=cfg, cache=cache) for t in targets]


def after_round(
    store: Any,
    settings: Any,
    targets: list[str],
    *,
    now: datetime | None = None,
    on_error: Any = None,
) -> list[dict[str, Any]]:
    """The collector's hook: `evaluate_targets` after a collection round, which never
    raises (alerting must not stop a collection): a failure, and every notification that
    could not be delivered (retried next round) or was dropped (its notifier no longer
    configured), is one line through `on_error` (default: stderr)."""
    import sys

    def report(message: str) -> None:
        if on_error is not None:
            on_error(message)
        else:
            print(f"lsops: alerts: {message}", file=sys.stderr, flush=True)

    try:
        results = evaluate_targets(store, settings, targets, now=now)
    except Exception as exc:  # noqa: BLE001 - LsopsError (store, config) or a bug: say it
        secrets = settings.secrets() if hasattr(settings, "secrets") else []
        report(_mask(str(exc) or type(exc).__name__, secrets))
        return []
    for result in results:
        for sent in result["notifications"]:
            if sent["ok"]:
                continue
            said = f"{sent['notifier']}: {sent['name']} {sent['state']}"
            if sent["error"] == NO_NOTIFIER:
                report(f"{said} dropped: {NO_NOTIFIER}")
            else:
                report(f"{said} not delivered ({sent['error']}); retried next round")
    return results
