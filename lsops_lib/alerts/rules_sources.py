"""The rules over the other sources: Sentry, the service's logs (issue 10's
`lsops_lib.sources`), the stored backup checks (issue 12) and the capacity forecast
(issue 15).

The Sentry and log rules follow the checklist's lines (`sources.checks`): a rule is
judged when its source was collected in its window (the last `[alerts] new_within`; a
collector elsewhere filling a shared store counts, whatever this machine's settings say),
and is not judged (None: its alerts keep their state, a firing one is not resolved)
when it was not: not configured (the settings; without settings, the sources the store
ever collected for the target), configured but not collected in the window, or failing
at each collection; the rule's note says which."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import fmt
from .rules import Alert, RuleConfig, register


def _sources() -> Any:
    try:
        from .. import sources
    except ImportError:
        return None
    return sources


# the source each rule reads
_SOURCE = {"new_fatal_sentry_issues": "sentry", "new_error_log_patterns": "logs"}


def _window(now: datetime, config: RuleConfig) -> tuple[datetime, datetime]:
    """The window the rules judge: the last `[alerts] new_within`."""
    return now - timedelta(seconds=config.alerts.new_within_s), now


def _source_settings(config: RuleConfig) -> Any:
    """The settings' sources, once a round; None without settings (then the sources the
    store ever collected are the configured ones, as for the checklist)."""
    from ..sources.settings import source_settings

    def read() -> Any:
        if config.settings is None:
            return None
        try:
            return source_settings(config.settings)
        except Exception:  # noqa: BLE001 - a malformed section: the collector says so (exit 2)
            return None

    return config.once("round:source_settings", read)


def _unobserved(store: Any, now: datetime, config: RuleConfig, target: str) -> dict[str, str]:
    """The sources of `target` not collected in the window, each with why (the
    checklist's rule, `sources.checks.unobserved`), read once a round."""
    from ..sources.checks import unobserved

    def read() -> dict[str, str]:
        since, until = _window(now, config)
        found = unobserved(store, since, until, [target], sources=_source_settings(config))
        return found[target]

    return config.once(f"sources_unobserved:{target}", read)


def prefetch_sources(store: Any, now: datetime, config: RuleConfig, targets: list[str]) -> None:
    """What `_unobserved` reads for one target, for every target of a round in the same
    few reads, into `config.cache`."""
    from ..sources.checks import unobserved

    since, until = _window(now, config)
    found = unobserved(store, since, until, targets, sources=_source_settings(config))
    for target, missing in found.items():
        config.cache[f"sources_unobserved:{target}"] = missing


def _new_items(kind: str, store: Any, now: datetime, config: RuleConfig, target: str) -> Any:
    """The new items of `kind` in the window, or None (not judged: its alerts keep their
    state) when its source was not collected in the window, as the checklist's lines
    (`sources.checks`): not configured, configured but not collected, or failing at each
    collection (said in the rule's note); no data is not "nothing new"."""
    rule = {"new_fatal_sentry_issues": "sentry_fatal"}.get(kind, "log_error_pattern")
    sources = _sources()
    function = getattr(sources, kind, None) if sources is not None else None
    if function is None:
        config.skip(rule, f"lsops_lib.sources.{kind} is not available")
        return None
    source = _SOURCE[kind]
    try:
        missing = _unobserved(store, now, config, target)
    except Exception as exc:  # noqa: BLE001 - a store reader without the source tables
        config.skip(rule, f"{type(exc).__name__}: {exc}")
        return None
    if source in missing:
        config.skip(rule, missing[source])
        return None
    since, until = _window(now, config)
    try:
        return function(store, target, since, until)
    except Exception as exc:  # noqa: BLE001 - a source not configured or unreachable: skip
        config.skip(rule, f"{type(exc).__name__}: {exc}")
        return None


def _ident(item: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if item.get(key) not in (None, ""):
            return str(item[key])
    return str(abs(hash(repr(sorted(item.items())))))


def _item_alerts(
    rule: str,
    severity: str,
    items: list[dict[str, Any]],
    ident_keys: tuple[str, ...],
    text_keys: tuple[str, ...],
    summary: str,
) -> list[Alert]:
    """One alert a new item (keyed `rule:ident`): `summary` formatted with the item's
    ident and its first non-empty text of `text_keys`; value: its count, when numeric."""
    out = []
    for item in items:
        ident = _ident(item, *ident_keys)
        text = str(next((item[k] for k in text_keys if item.get(k)), ident))
        count = item.get("count")
        out.append(
            Alert(
                rule,
                rule,
                severity,
                summary.format(ident=ident, text=text),
                float(count) if isinstance(count, int | float) else None,
                None,
                key=f"{rule}:{ident}",
            )  # fmt: skip
        )
    return out


@register("sentry_fatal")
def sentry_fatal(store: Any, now: datetime, config: RuleConfig, target: str) -> list[Alert] | None:
    """A new unresolved fatal Sentry issue (first seen within `[alerts] new_within`)."""
    items = _new_items("new_fatal_sentry_issues", store, now, config, target)
    if items is None:
        return None
    return _item_alerts(  # the keys of sources.new_fatal_sentry_issues
        "sentry_fatal", "critical", items, ("id", "short_id"), ("title", "short_id"),
        "new fatal Sentry issue {ident}: {text}",
    )  # fmt: skip


@register("log_error_pattern")
def log_error_pattern(
    store: Any, now: datetime, config: RuleConfig, target: str
) -> list[Alert] | None:
    """A new error-level log pattern (first seen within `[alerts] new_within`)."""
    items = _new_items("new_error_log_patterns", store, now, config, target)
    if items is None:
        return None
    return _item_alerts(  # the keys of sources.new_error_log_patterns: the template, not
        "log_error_pattern", "warning", items, ("pattern_id",),  # the first whole entry
        ("template", "example"), "new error log pattern: {text}",
    )  # fmt: skip


@register("backup_too_old")
def backup_too_old(
    store: Any, now: datetime, config: RuleConfig, target: str
) -> list[Alert] | None:
    """The newest dump the last `lsops backup check` saw is now older than `[backups]
    max_age` (its age then plus the time since). No stored check: not judged."""
    from ..config import backup_settings
    from ..store.backups import latest_backup_check

    # the same for every target: once a round
    check = config.once("round:backup_check", lambda: latest_backup_check(store))
    if check is None:
        config.skip("backup_too_old", "no backup check stored (lsops backup check)")
        return None
    max_age_s = config.once(
        "round:backup_max_age_s", lambda: backup_settings(config.settings).max_age_s
    )
    newest = next(
        (f for f in check.get("files") or [] if f.get("path") == check.get("newest")), None
    )
    if newest is None or newest.get("age_s") is None:
        return [
            Alert(
                "backup_too_old",
                "backup_too_old",
                "warning",
                "the last backup check found no dump",
                None,
                max_age_s,
            )  # fmt: skip
        ]
    age = float(newest["age_s"]) + (now - check["checked_at"].to_pydatetime()).total_seconds()
    if age <= max_age_s:
        return []
    return [
        Alert(
            "backup_too_old",
            "backup_too_old",
            "warning",
            f"the newest backup is {fmt.duration(age)} old (allowed: {fmt.duration(max_age_s)})",
            age,
            max_age_s,
        )  # fmt: skip
    ]


@register("capacity")
def capacity(store: Any, now: datetime, config: RuleConfig, target: str) -> list[Alert] | None:
    """The database reaches `[thresholds] database_size_limit_bytes` within `[alerts]
    capacity_warning_days` (the forecast of lsops_lib/db/forecast.py from the stored size
    history; its date, or its earliest date). No database, no limit (0) or too little
    history: not judged."""
    from ..db.forecast import forecast_for
    from ..exceptions import ConfigError

    settings = config.settings
    try:
        settings.database()
    except ConfigError:
        config.skip("capacity", "no database configured")
        return None
    name = settings.database_name or "default"
    fc = forecast_for(settings, name, database_bytes=None, now=now, store=store)
    days = config.alerts.capacity_warning_days
    if fc.status == "over_limit":
        return [
            Alert(
                "capacity",
                "capacity",
                "warning",
                f"database {name} is over its size limit ({fmt.size(fc.limit_bytes)})",
                0.0,
                days,
                key=f"capacity:{name}",
            )  # fmt: skip
        ]
    if fc.status in ("not_enough_history", "no_limit"):
        config.skip("capacity", fc.message)
        return None
    if fc.status != "ok" or fc.reaches_limit_on is None:
        return []
    left = (fc.reaches_limit_on - now.date()).days
    if left >= days:
        return []
    return [
        Alert(
            "capacity",
            "capacity",
            "warning",
            f"database {name} reaches its size limit ({fmt.size(fc.limit_bytes)}) on "
            f"{fc.reaches_limit_on.isoformat()}, in {fmt.counted(left, 'day')}",
            float(left),
            days,
            key=f"capacity:{name}",
        )  # fmt: skip
    ]
