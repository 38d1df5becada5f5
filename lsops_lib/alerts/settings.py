"""`[alerts]` of lsops.toml (issue 11): rules' settings, notifiers and routes.

    [alerts]
    down_after = 2                 # api_down after this many consecutive unanswered scrapes
    repeat_interval = "4h"         # a firing alert is notified again this often
    capacity_warning_days = 30     # capacity: the database reaches its limit sooner (issue 15)
    flapping_changes = 4           # more state changes than this within flapping_window ...
    flapping_window = "1h"         # ... and the alert is flapping: notifications suppressed
    min_coverage = 0.75            # a burn-rate window counts only when scrapes cover this share
    new_within = "24h"             # a new Sentry issue / log pattern fires for this long
    timezone = "Asia/Ho_Chi_Minh"  # of business_hours
    business_hours = "09:00-18:00"
    business_days = [1, 2, 3, 4, 5]  # ISO weekdays (Monday = 1)
    page = [{factor = 14.4, long = "1h", short = "5m"}, {factor = 6, long = "6h", short = "30m"}]
    ticket = [{factor = 3, long = "1d", short = "2h"}, {factor = 1, long = "3d", short = "6h"}]

    [alerts.notifiers.chat]
    kind = "webhook"               # webhook | email | command
    url_env = "LSOPS_CHAT_WEBHOOK" # the URL is a secret: only the variable's NAME is here
    timeout_s = 5

    [[alerts.route]]
    severity = "critical"          # critical | warning | "*"
    notify = ["chat", "mail"]
    [[alerts.route]]
    severity = "warning"
    notify = ["chat"]
    business_hours = true          # held until business hours

`LSOPS_ALERT_WEBHOOK` (a URL) adds the notifier `webhook` for every severity. Without
any `[[alerts.route]]`, every notifier gets every severity. A secret's variable that is
not set is not a configuration error: that notifier fails (recorded, retried) and
`lsops alerts test` says why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import (
    ALERT_WEBHOOK_ENV,
    MAX_TIMEOUT_S,
    checked_section,
    names_its_file,
    read_toml,
    timeout_setting,
)
from ..exceptions import ConfigError, ParameterError
from ..times import duration_seconds, parse_duration
from .burnrate import PAGE, TICKET, BurnWindow

__all__ = [
    "ALERT_WEBHOOK_ENV",
    "AlertSettings",
    "NotifierSettings",
    "Route",
    "alert_settings",
    "parse_alert_settings",
]

KINDS = ("webhook", "email", "command")
SEVERITIES = ("critical", "warning")
DEFAULT_TIMEOUT_S = 5.0

_ALERT_KEYS = {
    "enabled", "down_after", "repeat_interval", "capacity_warning_days", "flapping_changes",
    "flapping_window", "min_coverage", "new_within", "timezone", "business_hours",
    "business_days", "page", "ticket", "notifiers", "route", "recent",
}  # fmt: skip
_NOTIFIER_KEYS = {
    "webhook": {"kind", "url_env", "timeout_s"},
    "email": {
        "kind", "host", "port", "starttls", "username", "password_env", "from", "to",
        "timeout_s", "ca_file",
    },
    "command": {"kind", "command", "timeout_s"},
}  # fmt: skip


@dataclass(frozen=True)
class NotifierSettings:
    """One notifier. `secret` (the webhook URL, the SMTP password) is read from the
    environment variable `secret_env`; `missing` says why the notifier cannot work."""

    name: str
    kind: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    secret_env: str | None = None
    secret: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int = 587
    starttls: bool = True
    username: str | None = None
    sender: str | None = None
    to: tuple[str, ...] = ()
    ca_file: str | None = None
    command: tuple[str, ...] = ()
    missing: str | None = None

    def public(self) -> dict[str, Any]:
        """What may be printed: kind, where the secret comes from (the variable's NAME)."""
        where = {
            "webhook": f"URL from ${self.secret_env}",
            "email": f"{self.host}:{self.port} to {', '.join(self.to)}",
            "command": " ".join(self.command[:1]),
        }[self.kind]
        return {"notifier": self.name, "kind": self.kind, "where": where}


@dataclass(frozen=True)
class Route:
    severity: str  # critical | warning | *
    notify: tuple[str, ...]
    business_hours: bool = False


@dataclass(frozen=True)
class AlertSettings:
    enabled: bool = True
    down_after: int = 2
    repeat_interval_s: float = 4 * 3600.0
    capacity_warning_days: float = 30.0
    flapping_changes: int = 4
    flapping_window_s: float = 3600.0
    min_coverage: float = 0.75
    new_within_s: float = 86400.0
    recent_s: float = 7 * 86400.0  # `lsops alerts` shows what resolved within this
    page: tuple[BurnWindow, ...] = PAGE
    ticket: tuple[BurnWindow, ...] = TICKET
    timezone: str = "UTC"
    business_hours: tuple[time, time] | None = None
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    notifiers: dict[str, NotifierSettings] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()

    def notifiers_for(self, severity: str) -> list[tuple[NotifierSettings, bool]]:
        """(notifier, only within business hours) for an alert of `severity`."""
        if not self.routes:
            return [(n, False) for n in self.notifiers.values()]
        chosen: dict[str, bool] = {}
        for route in self.routes:
            if route.severity in (severity, "*"):
                for name in route.notify:
                    chosen[name] = chosen.get(name, True) and route.business_hours
        if ALERT_WEBHOOK_ENV in self.notifiers:  # every severity, always
            chosen[ALERT_WEBHOOK_ENV] = False
        return [(self.notifiers[n], bh) for n, bh in chosen.items()]

    def in_business_hours(self, now: datetime) -> bool:
        if self.business_hours is None:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        start, end = self.business_hours
        return local.isoweekday() in self.business_days and start <= local.time() < end

    def business_opens(self, now: datetime) -> datetime | None:
        """When what is held to business hours is sent: `now` within them, else the next
        start of business hours (UTC); None when no day is a business day."""
        if self.in_business_hours(now) or self.business_hours is None:
            return now
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        for days in range(8):
            day = local.date() + timedelta(days=days)
            opening = datetime.combine(day, self.business_hours[0], tzinfo=zone)
            if day.isoweekday() in self.business_days and opening > local:
                return opening.astimezone(UTC)
        return None

    def secrets(self) -> list[str]:
        return [n.secret for n in self.notifiers.values() if n.secret]


@names_its_file
def alert_settings(settings: Any, *, env: Mapping[str, str] | None = None) -> AlertSettings:
    """The `[alerts]` block of the settings' lsops.toml (LSOPS_ALERT_WEBHOOK added)."""
    path = getattr(settings, "config_path", None)
    doc = read_toml(path) if path else {}
    return parse_alert_settings(doc.get("alerts", {}), env=os.environ if env is None else env)


def _duration(
    section: Mapping[str, Any], key: str, default: float, *, where: str = "[alerts]"
) -> float:
    value = section.get(key)
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ParameterError(str(value))
        if isinstance(value, int | float):
            seconds = float(value)
            if seconds <= 0:  # nan passes on to the range check
                raise ConfigError(f"lsops.toml: {where} {key} must be positive")
            seconds = duration_seconds(seconds, value).total_seconds()  # 1 ms .. 100 years
        else:
            seconds = parse_duration(str(value)).total_seconds()
    except ParameterError:
        raise ConfigError(
            f"lsops.toml: {where} {key} must be a duration (5m, 4h, 1d), not {value!r}"
        ) from None
    if seconds <= 0:
        raise ConfigError(f"lsops.toml: {where} {key} must be positive")
    return seconds


def _number(
    section: Mapping[str, Any],
    key: str,
    default: float,
    *,
    lo: float = 0.0,
    where: str = "[alerts]",
) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= lo:
        raise ConfigError(f"lsops.toml: {where} {key} must be a number >= {lo:g}, not {value!r}")
    return float(value)


def _count(section: Mapping[str, Any], key: str, default: int, *, lo: int = 0) -> int:
    """A whole number: 2.7 scrapes is a mistake to say, not to round."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not value >= lo:
        raise ConfigError(
            f"lsops.toml: [alerts] {key} must be a whole number >= {lo}, not {value!r}"
        )
    return value


def _flag(section: Mapping[str, Any], key: str, default: bool, *, where: str = "[alerts]") -> bool:
    """true or false: the string "false" is not false (bool("false") is True)."""
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"lsops.toml: {where} {key} must be true or false, not {value!r}")
    return value


def _text(section: Mapping[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"lsops.toml: {where} {key} must be a string, not {value!r}")
    return value


def _windows(section: Mapping[str, Any], key: str, default: tuple[BurnWindow, ...]) -> Any:
    items = section.get(key)
    if items is None:
        return default
    if not isinstance(items, list) or not items:
        raise ConfigError(f"lsops.toml: [alerts] {key} must be a list of {{factor, long, short}}")
    out = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != {"factor", "long", "short"}:
            raise ConfigError(f"lsops.toml: [alerts] {key}: each window is {{factor, long, short}}")
        here = f"[alerts] {key}"
        factor = _number(item, "factor", 0.0, lo=0.0, where=here)
        long_s = _duration(item, "long", 0, where=here)
        short_s = _duration(item, "short", 0, where=here)
        if short_s >= long_s:
            raise ConfigError(f"lsops.toml: [alerts] {key}: short must be shorter than long")
        out.append(BurnWindow(factor, long_s, short_s))
    return tuple(out)


def _hours(value: Any) -> tuple[time, time] | None:
    if value is None:
        return None
    try:
        start, end = (time.fromisoformat(p.strip()) for p in str(value).split("-"))
    except ValueError:
        raise ConfigError(
            f'lsops.toml: [alerts] business_hours must be "HH:MM-HH:MM", not {value!r}'
        ) from None
    if not start < end:
        raise ConfigError("lsops.toml: [alerts] business_hours must end after they start")
    return start, end


def _strings(value: Any, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"lsops.toml: {what} must be a list of strings")
    return tuple(values)


def _notifier(name: str, section: Any, env: Mapping[str, str]) -> NotifierSettings:
    where = f"[alerts.notifiers.{name}]"
    if not isinstance(section, Mapping):
        raise ConfigError(f"lsops.toml: {where} must be a table")
    kind = section.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"lsops.toml: {where} kind must be one of {', '.join(KINDS)}")
    unknown = sorted(set(section) - _NOTIFIER_KEYS[kind])
    if unknown:
        if {"url", "password"} & set(unknown):
            raise ConfigError(
                f"lsops.toml: {where}: give the secret by the NAME of an environment variable "
                "(url_env, password_env), never inline"
            )
        raise ConfigError(f"lsops.toml: {where}: unknown key(s) {', '.join(unknown)}")
    timeout = _number(section, "timeout_s", DEFAULT_TIMEOUT_S, lo=0.001, where=where)
    if timeout > MAX_TIMEOUT_S:  # inf too: a traceback in httpx, smtplib or subprocess
        timeout_setting(section["timeout_s"], f"{where} timeout_s")
    secret_env = _text(section, "url_env" if kind == "webhook" else "password_env", where)
    secret = env.get(secret_env) if secret_env else None
    missing = None
    if kind == "webhook" and not secret_env:
        raise ConfigError(f"lsops.toml: {where} needs url_env (the variable holding the URL)")
    if secret_env and not secret:
        missing = f"environment variable {secret_env} is not set"
    extra: dict[str, Any] = {}
    if kind == "email":
        if not section.get("host") or not section.get("to") or not section.get("from"):
            raise ConfigError(f"lsops.toml: {where} needs host, from and to")
        port = section.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"lsops.toml: {where} port must be a TCP port")
        extra = {
            "host": _text(section, "host", where),
            "port": port,
            "starttls": _flag(section, "starttls", True, where=where),
            "username": _text(section, "username", where),
            "sender": _text(section, "from", where),
            "to": _strings(section["to"], f"{where} to"),
            "ca_file": _text(section, "ca_file", where),
        }
    if kind == "command":
        argv = section.get("command") or []
        if isinstance(argv, str):  # "echo hi" would be a program named "echo hi"
            raise ConfigError(
                f"lsops.toml: {where} command must be a list: [program, args...], not {argv!r}"
            )
        argv = _strings(argv, f"{where} command")
        if not argv:
            raise ConfigError(f"lsops.toml: {where} needs command = [program, args...]")
        extra = {"command": argv}
    return NotifierSettings(
        name=name,
        kind=kind,
        timeout_s=timeout,
        secret_env=secret_env,
        secret=secret,
        missing=missing,
        **extra,
    )


def parse_alert_settings(section: Any, *, env: Mapping[str, str]) -> AlertSettings:
    """`[alerts]` as AlertSettings; ConfigError (one line) for anything malformed."""
    section = checked_section(section, "alerts", _ALERT_KEYS)
    tables = section.get("notifiers", {})
    if not isinstance(tables, Mapping):
        raise ConfigError("lsops.toml: [alerts] notifiers must be tables [alerts.notifiers.NAME]")
    notifiers = {str(name): _notifier(str(name), sub, env) for name, sub in tables.items()}
    if env.get(ALERT_WEBHOOK_ENV):
        notifiers[ALERT_WEBHOOK_ENV] = NotifierSettings(
            name=ALERT_WEBHOOK_ENV,
            kind="webhook",
            secret_env=ALERT_WEBHOOK_ENV,
            secret=env[ALERT_WEBHOOK_ENV],
        )
    routes = []
    items = section.get("route", [])
    if not isinstance(items, list):
        raise ConfigError("lsops.toml: [alerts] route must be tables [[alerts.route]]")
    for item in items:
        if not isinstance(item, Mapping) or not set(item) <= {
            "severity",
            "notify",
            "business_hours",
        }:
            raise ConfigError("lsops.toml: [[alerts.route]] has severity, notify, business_hours")
        severity = item.get("severity", "*")
        if severity not in (*SEVERITIES, "*"):
            raise ConfigError(f"lsops.toml: [[alerts.route]] severity {severity!r} is unknown")
        names = _strings(item.get("notify") or [], "[[alerts.route]] notify")
        for name in names:
            if name not in notifiers:
                raise ConfigError(f"lsops.toml: [[alerts.route]] names no notifier {name!r}")
        hours = _flag(item, "business_hours", False, where="[[alerts.route]]")
        routes.append(Route(severity, names, hours))
    zone = str(section.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"lsops.toml: [alerts] timezone {zone!r} is unknown") from None
    days = section.get("business_days", [1, 2, 3, 4, 5])
    if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
        raise ConfigError("lsops.toml: [alerts] business_days: ISO weekdays 1 (Monday) to 7")
    coverage = _number(section, "min_coverage", 0.75)
    if coverage > 1:
        raise ConfigError("lsops.toml: [alerts] min_coverage is a share between 0 and 1")
    return AlertSettings(
        enabled=_flag(section, "enabled", True),
        down_after=_count(section, "down_after", 2, lo=1),
        repeat_interval_s=_duration(section, "repeat_interval", 4 * 3600.0),
        capacity_warning_days=_number(section, "capacity_warning_days", 30.0),
        flapping_changes=_count(section, "flapping_changes", 4),
        flapping_window_s=_duration(section, "flapping_window", 3600.0),
        min_coverage=coverage,
        new_within_s=_duration(section, "new_within", 86400.0),
        recent_s=_duration(section, "recent", 7 * 86400.0),
        page=_windows(section, "page", PAGE),
        ticket=_windows(section, "ticket", TICKET),
        timezone=zone,
        business_hours=_hours(section.get("business_hours")),
        business_days=tuple(days),
        notifiers=notifiers,
        routes=tuple(routes),
    )
