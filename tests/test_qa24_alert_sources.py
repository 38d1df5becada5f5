"""Alerts, QA round 24: the Sentry and log rules follow the checklist's source lines
(`sources.checks`): a rule is judged only when its source was collected in its window
(`[alerts] new_within`), whatever the settings say (a collector elsewhere counts); a
source the store collected long ago, configured or not, failing at each collection of
the window, or never collected gives a rule that is not judged, its note saying which
as the checklist's line does; a firing alert then keeps firing (missing data resolves
nothing) until a collection says the issue is no longer new. "Configured" is the
settings' answer (without settings: the sources the store ever collected). The
collector's batched round judges each target as it would alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib.alerts import RULES, evaluate, evaluate_targets, parse_alert_settings
from lsops_lib.alerts.rules import RuleConfig
from lsops_lib.alerts.rules_sources import log_error_pattern, sentry_fatal
from lsops_lib.alerts.settings import AlertSettings
from lsops_lib.config import load_settings
from lsops_lib.sources.sentry import issue_row
from lsops_lib.store import Store
from lsops_lib.store.sources import record_sentry_issues, record_source_run
from tests.fixtures.alerts import alert_env as _env

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NAMES = ("sentry_fatal", "log_error_pattern")
CONFIGURED = '[sentry]\norg = "o"\nproject = "p"\n[logs]\npaths = ["/var/log/app/*.log"]\n'


def _rules() -> dict:  # type: ignore[type-arg]
    return {n: RULES[n] for n in NAMES}


def _by_rule(result: dict) -> dict:  # type: ignore[type-arg]
    return {r["rule"]: r for r in result["rules"]}


def _run(store: Store, target: str, source: str, ts: datetime, error: str | None = None) -> None:
    record_source_run(store, target, source, ts, ok=error is None, items=0, error=error)


def _fatal(store: Store, target: str, issue_id: str, seen: datetime) -> None:
    """A new unresolved fatal issue, stored as `lsops collect` stores it, collected at `seen`."""
    issue = {"id": issue_id, "shortId": f"API-{issue_id}", "title": "TypeError: boom",
             "level": "fatal", "status": "unresolved", "count": "3",
             "firstSeen": seen.isoformat(), "lastSeen": seen.isoformat()}  # fmt: skip
    record_sentry_issues(store, target, seen, [issue_row(issue)], [], unresolved={issue_id})
    _run(store, target, "sentry", seen)


def test_sources_the_store_once_held_are_not_judged_without_a_collection_in_the_window(
    tmp_path: Path,
) -> None:
    # no [sentry] nor [logs]: the store's Sentry and logs were collected 3 days ago (the
    # window is the last 24 h): not judged, the note naming the setting and the store's
    # last collection; a Sentry collection in the window (another collector) is judged
    settings, _ = _env(tmp_path)
    cfg = parse_alert_settings({}, env={})
    target = settings.target.name
    now = T0 + timedelta(days=3)
    with Store(settings.store_url) as store:
        _run(store, target, "sentry", T0)
        _run(store, target, "logs", T0)
        rules = _by_rule(evaluate(store, settings, now=now, alerts=cfg, rules=_rules()))
        assert {n: rules[n]["status"] for n in NAMES} == dict.fromkeys(NAMES, "skipped")
        assert rules["sentry_fatal"]["note"].startswith("not configured: set [sentry] org")
        assert "the store's last sentry collection: 2026-10-01" in rules["sentry_fatal"]["note"]
        assert rules["log_error_pattern"]["note"].startswith("not configured: set [logs] paths")
        assert "the store's last logs collection: 2026-10-01" in rules["log_error_pattern"]["note"]
        _fatal(store, target, "7", now - timedelta(hours=1))
        result = evaluate(store, settings, now=now, alerts=cfg, rules=_rules())
        rules = _by_rule(result)
        assert (rules["sentry_fatal"]["status"], rules["sentry_fatal"]["alerts"]) == (
            "evaluated",
            1,
        )
        assert rules["log_error_pattern"]["status"] == "skipped"
        assert [(a["key"], a["state"]) for a in result["alerts"]] == [("sentry_fatal:7", "firing")]


def test_configured_sources_not_collected_or_failing_in_the_window_are_not_judged(
    tmp_path: Path,
) -> None:
    # [sentry] and [logs] configured: Sentry failed at both collections of the window (its
    # last success 2 days before), the logs were never collected: neither is judged, and
    # each note says why as the checklist's line does; a logs collection judges its rule
    settings, _ = _env(tmp_path, CONFIGURED)
    cfg = parse_alert_settings({}, env={})
    target = settings.target.name
    now = T0 + timedelta(days=2)
    with Store(settings.store_url) as store:
        _run(store, target, "sentry", T0)
        _run(store, target, "sentry", now - timedelta(hours=2), error="HTTP 500")
        _run(store, target, "sentry", now - timedelta(hours=1), error="HTTP 401 Unauthorized")
        rules = _by_rule(evaluate(store, settings, now=now, alerts=cfg, rules=_rules()))
        assert {n: rules[n]["status"] for n in NAMES} == dict.fromkeys(NAMES, "skipped")
        sentry = rules["sentry_fatal"]["note"]
        assert sentry.startswith("sentry failed at each of its 2 collections in the window")
        assert sentry.endswith("HTTP 401 Unauthorized)")
        assert rules["log_error_pattern"]["note"] == (
            "no collection of logs in the window: is `lsops collect` running?"
        )
        _run(store, target, "logs", now - timedelta(minutes=5))
        rules = _by_rule(evaluate(store, settings, now=now, alerts=cfg, rules=_rules()))
        assert (rules["log_error_pattern"]["status"], rules["log_error_pattern"]["note"]) == (
            "evaluated",
            None,
        )
        assert rules["sentry_fatal"]["status"] == "skipped"


def test_a_firing_alert_keeps_firing_while_its_source_is_not_collected(tmp_path: Path) -> None:
    # a fatal issue collected at T0 fires; Sentry is then not collected for a day: the rule
    # is not judged (the issue's first sight left the window, but no collection said
    # anything), so the alert keeps firing; the next collection resolves it
    settings, _ = _env(tmp_path, CONFIGURED)
    cfg = parse_alert_settings({}, env={})
    target = settings.target.name
    with Store(settings.store_url) as store:
        _fatal(store, target, "42", T0)
        result = evaluate(store, settings, now=T0 + timedelta(hours=1), alerts=cfg, rules=_rules())
        assert [(a["key"], a["state"]) for a in result["alerts"]] == [("sentry_fatal:42", "firing")]
        later = T0 + timedelta(hours=25)
        result = evaluate(store, settings, now=later, alerts=cfg, rules=_rules())
        rules = _by_rule(result)
        assert rules["sentry_fatal"]["status"] == "skipped"
        assert rules["sentry_fatal"]["note"].startswith(
            "no collection of sentry in the window (the last: 2026-10-01"
        )
        assert [(a["key"], a["state"]) for a in result["alerts"]] == [("sentry_fatal:42", "firing")]
        _run(store, target, "sentry", later + timedelta(minutes=5))
        result = evaluate(
            store, settings, now=later + timedelta(minutes=5), alerts=cfg, rules=_rules()
        )
        assert _by_rule(result)["sentry_fatal"]["status"] == "evaluated"
        assert [(a["key"], a["state"]) for a in result["alerts"]] == [
            ("sentry_fatal:42", "resolved")
        ]


def test_without_settings_the_sources_the_store_collected_are_the_configured_ones(
    store: Store,
) -> None:
    # a library call (no settings): the logs the store collected 2 days ago are configured
    # (not collected in the window: not judged); Sentry, never collected, is not configured
    now = T0 + timedelta(days=2)
    _run(store, "default", "logs", T0)
    config = RuleConfig(settings=None, alerts=AlertSettings())
    assert log_error_pattern(store, now, config, "default") is None
    assert config.why["log_error_pattern"].startswith(
        "no collection of logs in the window (the last: 2026-10-01"
    )
    assert sentry_fatal(store, now, config, "default") is None
    assert config.why["sentry_fatal"].startswith("not configured: set [sentry] org and project")
    assert "the store's last" not in config.why["sentry_fatal"]


def test_the_collectors_round_judges_each_targets_sources_as_alone(store: Store) -> None:
    # evaluate_targets (the batched reads of every target's collections) against evaluate
    # of each target: a's logs collected in the window; b's Sentry 3 days ago only; c's
    # Sentry failing in the window; d nothing; e another target's collections only
    now = T0 + timedelta(days=3)
    _run(store, "a", "logs", now - timedelta(minutes=10))
    _run(store, "b", "sentry", T0)
    _run(store, "c", "sentry", now - timedelta(minutes=10), error="HTTP 502")
    _run(store, "x", "sentry", now - timedelta(minutes=10))
    _run(store, "x", "logs", now - timedelta(minutes=10))
    settings = load_settings(env={"LSOPS_STORE": store._url}, cwd=Path("/"))
    targets = ["a", "b", "c", "d", "e"]
    batched = evaluate_targets(store, settings, targets, now=now)
    cfg = parse_alert_settings({}, env={})
    for result in batched:
        alone = evaluate(store, settings, target=result["target"], now=now, alerts=cfg)
        assert result["rules"] == alone["rules"]
    rules = {r["target"]: _by_rule(r) for r in batched}
    judged = {t: {n for n in NAMES if rules[t][n]["status"] == "evaluated"} for t in targets}
    assert judged == {"a": {"log_error_pattern"}, "b": set(), "c": set(), "d": set(), "e": set()}
    assert "the store's last sentry collection: 2026-10-01" in rules["b"]["sentry_fatal"]["note"]
    assert rules["c"]["sentry_fatal"]["note"].startswith("not configured: set [sentry]")
    assert "the store's last" not in rules["e"]["sentry_fatal"]["note"]
