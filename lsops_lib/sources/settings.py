"""The settings of the other sources (issue 10): `[sentry]`, `[logs]` and `[pm2]` in
lsops.toml, the `LSOPS_SENTRY_*`, `LSOPS_LOGS` and `LSOPS_PM2` variables winning::

     [sentry]
     url = "https://sentry.io"           # LSOPS_SENTRY_URL
     org = "longsang"                    # LSOPS_SENTRY_ORG
     project = "longsang-api"            # LSOPS_SENTRY_PROJECT
     token_env = "SENTRY_AUTH_TOKEN"     # the variable holding the token (LSOPS_SENTRY_TOKEN wins)
     [logs]
     paths = ["/srv/longsang/logs/api-*.log*"]   # LSOPS_LOGS (globs, os.pathsep-separated)
     date_format = "YYYY-MM-DD HH:mm:ss Z"      # pm2's log_date_format
     journal_unit = "longsang-api"              # read with journalctl -u UNIT -o json
    journal_command = "journalctl"             # split as a shell would: "sudo -n journalctl"
     [pm2]
     app = "longsang-api"
     command = "pm2"                     # LSOPS_PM2: off disables, on enables, else the command
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import (
    Settings,
    check_url,
    checked_section,
    names_its_file,
    read_toml,
    timeout_setting,
)
from ..exceptions import ConfigError

DEFAULT_SENTRY_URL = "https://sentry.io"
DEFAULT_SENTRY_TOKEN_ENV = "SENTRY_AUTH_TOKEN"
DEFAULT_LOG_DATE_FORMAT = "YYYY-MM-DD HH:mm:ss Z"
DEFAULT_PM2_APP = "longsang-api"


@dataclass(frozen=True)
class SentrySettings:
    """`[sentry]`: which Sentry project lsops reads. `configured` when org and project
    are set; `token` (never printed) from LSOPS_SENTRY_TOKEN or the `token_env` variable."""

    url: str = DEFAULT_SENTRY_URL
    org: str | None = None
    project: str | None = None
    token_env: str = DEFAULT_SENTRY_TOKEN_ENV
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0

    @property
    def configured(self) -> bool:
        return bool(self.org and self.project)

    def missing(self) -> str | None:
        """What is missing to read Sentry (a sentence naming the setting), or None."""
        if not self.configured:
            return (
                "Sentry is not configured: set [sentry] org and project in lsops.toml "
                "(or LSOPS_SENTRY_ORG and LSOPS_SENTRY_PROJECT)"
            )
        if not self.token:
            return (
                f"Sentry is not configured: no token (set {self.token_env} or LSOPS_SENTRY_TOKEN)"
            )
        return None


@dataclass(frozen=True)
class LogSettings:
    """`[logs]`: the service's log files (globs) and/or its systemd journal unit; the
    settings they were read from (their secrets are masked in the text read)."""

    paths: tuple[str, ...] = ()
    date_format: str = DEFAULT_LOG_DATE_FORMAT
    journal_unit: str | None = None
    journal_command: str = "journalctl"
    settings: Any = field(default=None, repr=False, compare=False)

    @property
    def configured(self) -> bool:
        return bool(self.paths or self.journal_unit)

    def secrets(self) -> list[str]:
        """The secrets of the settings (Settings.secrets()), the longest first: a service
        that logs its own token must not have it stored nor printed."""
        found = self.settings.secrets() if self.settings is not None else []
        return sorted(set(found), key=len, reverse=True)


@dataclass(frozen=True)
class Pm2Settings:
    """`[pm2]`: the app whose `pm2 jlist` entry is read. Enabled by a [pm2] section or
    LSOPS_PM2 (other than `off`), else when the command is on PATH."""

    app: str = DEFAULT_PM2_APP
    command: str = "pm2"
    enabled: bool = False
    timeout_s: float = 20.0

    @property
    def configured(self) -> bool:
        return self.enabled


@dataclass(frozen=True)
class SourceSettings:
    """The three sources of issue 10 together."""

    sentry: SentrySettings = field(default_factory=SentrySettings)
    logs: LogSettings = field(default_factory=LogSettings)
    pm2: Pm2Settings = field(default_factory=Pm2Settings)

    def configured(self) -> list[str]:
        """The names of the configured sources: sentry, logs, pm2."""
        return [
            name
            for name, part in (("sentry", self.sentry), ("logs", self.logs), ("pm2", self.pm2))
            if part.configured
        ]


@names_its_file
def source_settings(
    settings: Settings | None = None, *, env: Mapping[str, str] | None = None
) -> SourceSettings:
    """The `[sentry]`, `[logs]` and `[pm2]` blocks of the settings' lsops.toml, the
    environment winning (LSOPS_SENTRY_URL, _ORG, _PROJECT, _TOKEN; LSOPS_LOGS; LSOPS_PM2)."""
    import shutil

    from .stamps import stamp_regex

    if env is None:  # the variables the settings were read from
        env = settings.env if settings is not None and settings.env is not None else os.environ
    path = settings.config_path if settings is not None else None
    doc = read_toml(path) if path else {}
    s = checked_section(
        doc.get("sentry") or {}, "sentry", {"url", "org", "project", "token_env", "timeout_s"}
    )
    lg = checked_section(
        doc.get("logs") or {}, "logs", {"paths", "date_format", "journal_unit", "journal_command"}
    )
    pm = checked_section(doc.get("pm2") or {}, "pm2", {"app", "command", "timeout_s"})
    token_env = str(s.get("token_env") or DEFAULT_SENTRY_TOKEN_ENV)
    url = str(env.get("LSOPS_SENTRY_URL") or s.get("url") or DEFAULT_SENTRY_URL).rstrip("/")
    check_url(url, "Sentry URL", schemes=("http", "https"))
    sentry = SentrySettings(
        url=url,
        org=env.get("LSOPS_SENTRY_ORG") or (str(s["org"]) if s.get("org") else None),
        project=env.get("LSOPS_SENTRY_PROJECT")
        or (str(s["project"]) if s.get("project") else None),
        token_env=token_env,
        token=env.get("LSOPS_SENTRY_TOKEN") or env.get(token_env) or None,
        timeout_s=timeout_setting(s.get("timeout_s", 10.0), "[sentry] timeout_s"),
    )
    pm2_timeout = timeout_setting(pm.get("timeout_s", 20.0), "[pm2] timeout_s")

    paths_value = lg.get("paths", [])
    paths_list = [paths_value] if isinstance(paths_value, str) else paths_value
    if not isinstance(paths_list, list | tuple) or not all(isinstance(p, str) for p in paths_list):
        raise ConfigError("lsops.toml: [logs] paths must be a list of globs")
    paths = tuple(p for p in paths_list if p)
    if env.get("LSOPS_LOGS"):
        paths = tuple(p for p in env["LSOPS_LOGS"].split(os.pathsep) if p)
    date_format = str(lg.get("date_format") or DEFAULT_LOG_DATE_FORMAT)
    try:
        stamp_regex(date_format)
    except ValueError as exc:
        raise ConfigError(f"lsops.toml: [logs] date_format {date_format!r}: {exc}") from None
    unit = lg.get("journal_unit")
    if unit is not None and not isinstance(unit, str):
        raise ConfigError("lsops.toml: [logs] journal_unit must be one unit name (a string)")
    journal_command = lg.get("journal_command") or "journalctl"
    try:
        if not isinstance(journal_command, str) or not shlex.split(journal_command):
            raise ValueError("it must be a command (a string)")
    except ValueError as exc:
        raise ConfigError(
            f"lsops.toml: [logs] journal_command {journal_command!r}: {exc}"
        ) from None
    logs = LogSettings(
        paths=paths,
        date_format=date_format,
        journal_unit=unit or None,
        journal_command=journal_command,
        settings=settings,
    )

    command = str(pm.get("command") or "pm2")
    switch = env.get("LSOPS_PM2", "").strip()
    if switch.lower() == "off":
        enabled = False
    elif switch and switch.lower() != "on":
        command, enabled = switch, True
    else:
        enabled = bool(switch) or "pm2" in doc or shutil.which(command) is not None
    pm2 = Pm2Settings(
        app=str(pm.get("app") or DEFAULT_PM2_APP),
        command=command,
        enabled=enabled,
        timeout_s=pm2_timeout,
    )
    return SourceSettings(sentry=sentry, logs=logs, pm2=pm2)
