"""Settings from `lsops.toml` and `LSOPS_*` environment variables (the environment wins).

Secrets (the API token, database URLs with passwords) live in `Settings` but are never
printed: `Settings.public()` and `redact_url` are what reports and logs see. In
`lsops.toml` a secret is best referred to by the NAME of the variable holding it
(`token_env = "LONGSANG_TOKEN"`, `url_env = "PROD_DATABASE_URL"`).

    # lsops.toml
    default_target = "prod"          # optional; else the first target, else [api]
    [api]                             # the single-target form
    url = "http://localhost:3001"
    token_env = "LONGSANG_TOKEN"
    timeout_s = 5
    [targets.prod]                    # several named targets; `--target prod`
    url = "https://api.example.internal"
    token_env = "LONGSANG_PROD_TOKEN"
    [store]
    url = "sqlite:////var/lib/lsops/metrics.sqlite"
    [databases.prod]                  # named databases; `--database prod`
    url_env = "PROD_DATABASE_URL"
    [outputs]
    dir = "./outputs"
    [thresholds]
    latency_p95_ms = 500
"""

from __future__ import annotations

import copy
import functools
import math
import os
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from . import fmt
from .exceptions import ConfigError
from .thresholds import Thresholds, parse_thresholds  # noqa: F401 - Thresholds re-exported
from .urls import (  # noqa: F401 - re-exported: callers import them from here
    STORE_DRIVERS,
    check_database_url,
    check_store_url,
    check_url,
    credentials_problem,
    redact_url,
    url_password,
    url_secrets,
)

T = TypeVar("T")

DEFAULT_API_URL = "http://localhost:3001"
ALERT_WEBHOOK_ENV = "LSOPS_ALERT_WEBHOOK"  # a webhook URL: a notifier (lsops_lib/alerts)
CONFIG_FILE = "lsops.toml"


class UnknownTargetError(ConfigError):
    """`--target NAME` (or LSOPS_TARGET, default_target) names no target of lsops.toml."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def named_file(error: ConfigError, path: Path | None) -> ConfigError:
    """`error` naming the settings file it is about: a message "lsops.toml: ..." (what the
    parsers say) names `path` instead when the settings came from a file of another name
    (`--config other.toml`, LSOPS_CONFIG)."""
    text = str(error)
    if path is None or path.name == CONFIG_FILE or not text.startswith(f"{CONFIG_FILE}: "):
        return error
    renamed = copy.copy(error)
    renamed.args = (f"{path}: {text[len(CONFIG_FILE) + 2 :]}", *error.args[1:])
    return renamed


def names_its_file(read: Callable[..., T]) -> Callable[..., T]:
    """For a reader of one block of the settings' file (`read(settings, ...)`): its
    ConfigErrors name that file (`named_file`)."""

    @functools.wraps(read)
    def reader(*args: Any, **kwargs: Any) -> T:
        try:
            return read(*args, **kwargs)
        except ConfigError as exc:
            settings = args[0] if args else kwargs.get("settings")
            raise named_file(exc, getattr(settings, "config_path", None)) from None

    return reader


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    token: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0
    retries: int = 2
    # why the token is missing (its `token_env` variable is not set): said by
    # `checked_token`, when the API is asked, not by commands that never ask it
    token_unset: str | None = field(default=None, repr=False, compare=False)

    def checked_token(self) -> str | None:
        """The token; ConfigError when lsops.toml names a variable that is not set."""
        if self.token_unset is not None:
            raise ConfigError(self.token_unset)
        return self.token


@dataclass(frozen=True)
class Settings:
    target: Target
    targets: dict[str, Target]
    store_url: str
    data_dir: Path
    outputs_dir: Path
    database_url: str | None = field(default=None, repr=False)
    database_name: str | None = None
    databases: dict[str, str] = field(default_factory=dict, repr=False)
    thresholds: Thresholds = field(default_factory=Thresholds)
    config_path: Path | None = None
    # --- issue 12: the monthly security review ([secrets], [security]) ---
    # the date each secret was last rotated, by name (the values are never read)
    secret_rotations: dict[str, date] = field(default_factory=dict)
    app_dir: Path | None = None  # the API's checkout, where `npm audit --json` runs
    audit_file: Path | None = None  # or a saved `npm audit --json` output
    audit_timeout_s: float = 120.0
    # the variables these settings were read from when `load_settings(env=...)` was given a
    # mapping (None: the process's environment): where the other readers of lsops.toml
    # (`sources.source_settings`: the Sentry token) look too
    env: dict[str, str] | None = field(default=None, repr=False, compare=False)
    # named databases whose `url_env` variable is not set: why, said when one is asked for
    databases_unset: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # the setting each database URL came from, by database name, and the default one's
    # (`LSOPS_DATABASE_URL`, `[databases.prod] url in ./lsops.toml`): a bad URL names it
    database_settings: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    database_setting: str | None = field(default=None, repr=False, compare=False)
    # where `outputs_dir` came from (`LSOPS_OUTPUTS`, `[outputs] dir in ./lsops.toml`;
    # None: the default ./outputs): a file there is named with it
    outputs_setting: str | None = field(default=None, repr=False, compare=False)
    # whether the target was named (--target, LSOPS_TARGET, default_target) rather than
    # taken by default (`default`, or the first of [targets])
    target_named: bool = field(default=False, compare=False)

    @property
    def api_url(self) -> str:
        return self.target.url

    @property
    def api_token(self) -> str | None:
        return self.target.checked_token()

    def database(self, name: str | None = None) -> str:
        """The URL of a named database (or the default one), checked (`check_database_url`).
        Raises ConfigError."""
        unset = self.databases_unset.get(name if name is not None else self.database_name or "")
        if unset is not None and (name is not None or not self.database_url):
            raise ConfigError(unset)
        if name is None or name == self.database_name:
            if self.database_url:
                return check_database_url(self.database_url, name, self.database_setting)
            if name is None:
                raise ConfigError(
                    "no database configured: set LSOPS_DATABASE_URL or [databases] in lsops.toml"
                )
        if name in self.databases:
            return check_database_url(self.databases[name], name, self.database_settings.get(name))
        known = ", ".join(sorted([*self.databases, *self.databases_unset])) or "none"
        raise ConfigError(f"unknown database {name!r} (configured: {known})")

    def secrets(self) -> list[str]:
        """Every secret value these settings hold, for redaction of archived files."""
        values = [t.token for t in self.targets.values()] + [self.target.token]
        values.extend(_sentry_tokens_quietly(self))  # issue 10
        values.extend(_alert_secrets_quietly(self))  # issue 11: webhook URLs, SMTP passwords
        for url in [self.store_url, self.database_url, *self.databases.values()]:
            if url:
                values.extend(url_secrets(url))
        return [v for v in values if v]

    def public(self) -> dict[str, Any]:
        """Settings safe to print or archive: no token, no password."""
        return {
            "config": str(self.config_path) if self.config_path else None,
            "target": self.target.name,
            "api_url": redact_url(self.target.url),
            "api_token": "***" if self.target.token else None,
            "targets": sorted(self.targets),
            "store": redact_url(self.store_url),
            "database": redact_url(self.database_url) if self.database_url else None,
            "databases": sorted(self.databases),
            "outputs": str(self.outputs_dir),
            "data_dir": str(self.data_dir),
        }


def sqlite_path(url: str) -> Path | None:
    """The file a `sqlite:///PATH` store URL names (`~` expanded, relative to the working
    directory of the process that opens it), or None for any other URL."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            # as SQLAlchemy reads it: the path ends at the first `?` (the query's options)
            return Path(url[len(prefix) :].split("?", 1)[0]).expanduser()
    return None


def sqlite_store_missing(url: str) -> bool:
    """True when `url` names a SQLite file that does not exist (opening it would create
    it: a reader says "no store" instead); False for an existing file or any other URL."""
    path = sqlite_path(url)
    return path is not None and not path.exists()


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """`LSOPS_DATA`, else `$XDG_DATA_HOME/lsops`, else `~/.local/share/lsops`."""
    if env.get("LSOPS_DATA"):
        return Path(env["LSOPS_DATA"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lsops"


def _secret(
    section: Mapping[str, Any], key: str, env: Mapping[str, str], where: str
) -> tuple[str | None, str | None]:
    """(value, None) for a value given inline (`key`) or by the name of an environment
    variable (`key_env`); (None, why) when that variable is not set: the caller says it
    when the value is needed (a database command needs no API token)."""
    if f"{key}_env" in section:
        name = section[f"{key}_env"]
        if not isinstance(name, str) or not name:  # its value is not shown: it may be a secret
            raise ConfigError(
                f"lsops.toml: {where} {key}_env must be the name of an environment variable "
                "(a string)"
            )
        if name not in env:
            return None, f"{where}: environment variable {name} (from {key}_env) is not set"
        return env[name], None
    value = section.get(key)
    return (str(value) if value is not None else None), None


# parsed lsops.toml files by their bytes: the collector's alert round read and parsed the
# file again for every rule and target (a 100-target file: ~6 ms a parse, 300 parses)
_TOML_CACHE: dict[bytes, dict[str, Any]] = {}


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file (a copy: callers may change it); the same bytes are parsed once."""
    try:
        raw = path.read_bytes()
        if raw not in _TOML_CACHE:
            doc = tomllib.loads(raw.decode())
            if len(_TOML_CACHE) >= 16:
                _TOML_CACHE.clear()
            _TOML_CACHE[raw] = doc
        return copy.deepcopy(_TOML_CACHE[raw])
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({exc.reason})") from None
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def checked_section(section: Any, name: str, keys: set[str] | None = None) -> Mapping[str, Any]:
    """The `[name]` table of lsops.toml, checked: a table (of the `keys` only, when given),
    else a ConfigError of one line naming the section (and the unknown keys)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"lsops.toml: [{name}] must be a table")
    unknown = sorted(set(section) - keys) if keys is not None else []
    if unknown:
        raise ConfigError(f"lsops.toml: unknown [{name}] key(s): {', '.join(unknown)}")
    return section


# a timeout of lsops.toml (`timeout_s`, `audit_timeout_s`): seconds, above 0 and at most a
# week, the rule of `lsops report --timeout` (0 would fail every request at once, as if the
# other side were down; inf or a negative number is a traceback in httpx or the socket)
MAX_TIMEOUT_S = 7 * 86400.0
MAX_RETRIES = 10  # the API client waits backoff_s x 2**attempt between attempts


def timeout_setting(value: Any, where: str) -> float:
    """A timeout of lsops.toml in seconds, `where` naming the setting ("[sentry] timeout_s"):
    a number above 0 and at most a week, else a ConfigError of one line naming it."""
    try:
        seconds = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise ConfigError(
            f"lsops.toml: {where} must be a number of seconds above 0 and at most a week "
            f"({fmt.number(MAX_TIMEOUT_S)}), not {value!r}"
        )
    return seconds


# the longest target name: the store's PostgreSQL column is VARCHAR(200)
MAX_TARGET_NAME = 200
# characters a target name never holds: controls (a newline splits a line, a NUL fails a
# PostgreSQL store), invisible format characters, line and paragraph separators
_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def target_name_problem(name: Any) -> str | None:
    """Why `name` cannot name a target (None: it can): blank, a control character, more
    than MAX_TARGET_NAME characters. The one rule of lsops.toml's [targets.NAME] and of a
    report's `target` parameter."""
    if not isinstance(name, str) or not name.strip():
        return "is blank"
    if any(unicodedata.category(c) in _NAME_CATEGORIES for c in name):
        return "holds a control character"
    if len(name) > MAX_TARGET_NAME:
        return f"is longer than {MAX_TARGET_NAME} characters ({fmt.number(len(name))})"
    return None


def _targets_section(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """lsops.toml's [targets]: a table of [targets.NAME] tables, each NAME a usable one."""
    section = doc.get("targets") or {}
    if not isinstance(section, Mapping):
        raise ConfigError("lsops.toml: [targets] must be a table of [targets.NAME] tables")
    for name in section:
        problem = target_name_problem(name)
        if problem is not None:
            shown = name if len(name) <= 60 else name[:60] + "…"
            raise ConfigError(f"lsops.toml: the target name {shown!r} in [targets] {problem}")
    return section


def _target(
    name: str, section: Mapping[str, Any], env: Mapping[str, str], where: str | None = None
) -> Target:
    where = where or f"[targets.{name}]"
    if not isinstance(section, Mapping):
        raise ConfigError(f"lsops.toml: {where} must be a table")
    url = section.get("url") or DEFAULT_API_URL
    token, unset = _secret(section, "token", env, f"[targets.{name}]")
    retries = section.get("retries", 2)
    if isinstance(retries, float) and retries.is_integer():
        retries = int(retries)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise ConfigError(
            f"lsops.toml: {where} retries must be a whole number from 0 to {MAX_RETRIES}, "
            f"not {retries!r}"
        )
    return Target(
        name=name,
        url=str(url).rstrip("/"),
        token=token,
        token_unset=unset,
        timeout_s=timeout_setting(section.get("timeout_s", 5.0), f"{where} timeout_s"),
        retries=retries,
    )


# --- issue 12: the monthly security review ([secrets], [security]) --------------------------
#
#     [secrets]                       # when each secret was last rotated (never its value)
#     OPENAI_API_KEY = "2026-09-01"
#     SUPABASE_SERVICE_ROLE_KEY = 2026-07-15
#     [security]
#     app_dir = "/srv/longsang"       # the API's checkout: `npm audit --json` runs there
#     audit_file = "audit.json"       # or a saved `npm audit --json` output
#     audit_timeout_s = 120


def _rotation_date(name: str, value: Any) -> date:
    """A `[secrets]` entry as a date; the error never shows the value (it may be a secret
    written there by mistake)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(
        f'lsops.toml: [secrets] {name} must be the date it was last rotated ("YYYY-MM-DD"); '
        "its value is not shown"
    )


def _security_settings(doc: Mapping[str, Any], cwd: Path) -> dict[str, Any]:
    """The Settings fields of `[secrets]` and `[security]`."""
    secrets = doc.get("secrets") or {}
    security = doc.get("security") or {}
    if not isinstance(secrets, Mapping) or not isinstance(security, Mapping):
        raise ConfigError("lsops.toml: [secrets] and [security] must be tables")
    unknown = set(security) - {"app_dir", "audit_file", "audit_timeout_s"}
    if unknown:
        raise ConfigError(f"lsops.toml: unknown [security] setting {sorted(unknown)[0]!r}")

    def path(key: str) -> Path | None:
        value = security.get(key)
        if not value:
            return None
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else cwd / p

    timeout = timeout_setting(security.get("audit_timeout_s", 120.0), "[security] audit_timeout_s")
    return {
        "secret_rotations": {str(k): _rotation_date(str(k), v) for k, v in secrets.items()},
        "app_dir": path("app_dir"),
        "audit_file": path("audit_file"),
        "audit_timeout_s": timeout,
    }


# --- [backups] (issue 12: `lsops backup check`, lsops_lib/db/backups.py) -------------------

BACKUPS_ENV = "LSOPS_BACKUPS"
DEFAULT_BACKUP_MAX_AGE_S = 26 * 3600.0


@dataclass(frozen=True)
class BackupSettings:
    """`[backups]`: where the dumps are, how old the newest may be, which live tables
    they must hold.

        [backups]
        paths = ["/var/backups/longsang/*.dump", "/var/backups/longsang/*.sql.gz"]
        max_age = "26h"            # a duration (30m, 26h, 2d) or a number of hours
        schemas = ["public"]       # the live database's schemas the dumps must cover

    `LSOPS_BACKUPS` (globs separated by the OS path separator, `:` on Linux) replaces
    `paths`. The thresholds are `[thresholds] backup_shrink`, `backup_rows_tolerance` and
    `backup_exact_rows`."""

    paths: tuple[str, ...] = ()
    max_age_s: float = DEFAULT_BACKUP_MAX_AGE_S
    schemas: tuple[str, ...] = ("public",)


@names_its_file
def backup_settings(
    settings: Settings | None = None, *, env: Mapping[str, str] | None = None
) -> BackupSettings:
    """The `[backups]` block of the settings' lsops.toml, `LSOPS_BACKUPS` winning."""
    from .exceptions import ParameterError
    from .times import duration_seconds, parse_duration

    env = os.environ if env is None else env
    path = settings.config_path if settings is not None else None
    section = checked_section(
        (read_toml(path) if path else {}).get("backups") or {},
        "backups",
        {"paths", "max_age", "schemas"},
    )

    def strings(key: str, value: Any) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"lsops.toml: [backups] {key} must be a list of strings")
        return tuple(v for v in values if v)

    paths = strings("paths", section.get("paths", []))
    if env.get(BACKUPS_ENV):
        paths = tuple(p for p in env[BACKUPS_ENV].split(os.pathsep) if p)
    max_age = section.get("max_age", DEFAULT_BACKUP_MAX_AGE_S / 3600)
    try:
        if isinstance(max_age, bool):
            raise ParameterError(str(max_age))
        if isinstance(max_age, int | float):  # hours, in the range of a duration
            max_age_s = float(max_age) * 3600
            if not max_age_s <= 0 or not math.isfinite(max_age_s):  # <= 0: said below
                duration_seconds(max_age_s, max_age)
        else:
            max_age_s = parse_duration(str(max_age)).total_seconds()
    except ParameterError:
        raise ConfigError(
            "lsops.toml: [backups] max_age must be a duration (26h, 2d) or hours, from 1ms "
            f"to 36500d, not {max_age!r}"
        ) from None
    if max_age_s <= 0:
        raise ConfigError("lsops.toml: [backups] max_age must be positive")
    schemas = strings("schemas", section.get("schemas", ["public"]))
    return BackupSettings(paths=paths, max_age_s=max_age_s, schemas=schemas or ("public",))


def _sentry_tokens_quietly(settings: Settings) -> list[str]:
    """The Sentry tokens of these settings, for `Settings.secrets()`: the one of the
    variables they were read from and the one of this process's environment (a report's
    kernel inherits it), when they differ. A bad [sentry] block: the variables alone."""
    from .sources.settings import DEFAULT_SENTRY_TOKEN_ENV, source_settings

    tokens: list[str] = []
    for env in (os.environ, settings.env) if settings.env is not None else (os.environ,):
        try:
            token = source_settings(settings, env=env).sentry.token
        except ConfigError:
            token = env.get("LSOPS_SENTRY_TOKEN") or env.get(DEFAULT_SENTRY_TOKEN_ENV)
        if token and token not in tokens:
            tokens.append(token)
    return tokens


def _alert_secrets_quietly(settings: Settings) -> list[str]:
    """The notifiers' secrets of these settings, for `Settings.secrets()`: the values of
    the variables `[alerts]` names (`url_env`, `password_env`) and of LSOPS_ALERT_WEBHOOK,
    in the variables the settings were read from and in this process's environment (a
    report's kernel inherits it). A webhook URL is masked whole: its path is the secret.
    A bad [alerts] block: the variables its notifiers name, as far as they can be read."""
    names = [ALERT_WEBHOOK_ENV]  # read here: `lsops report`'s runner never imports alerts
    try:
        doc = read_toml(settings.config_path) if settings.config_path else {}
    except ConfigError:
        doc = {}
    alerts = doc.get("alerts")
    tables = alerts.get("notifiers") if isinstance(alerts, Mapping) else None
    for table in tables.values() if isinstance(tables, Mapping) else []:
        if isinstance(table, Mapping):
            names += [v for k, v in table.items() if k in ("url_env", "password_env")]
    found: list[str] = []
    for env in (os.environ, settings.env) if settings.env is not None else (os.environ,):
        for name in names:
            value = env.get(name) if isinstance(name, str) else None
            if value and value not in found:
                found.append(value)
    return found


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    target: str | None = None,
    database: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    unconfigured_target: bool = False,
) -> Settings:
    """Read `config` (or `./lsops.toml` when present), then let `LSOPS_*` variables win.
    A chosen target lsops.toml does not name: UnknownTargetError; with
    `unconfigured_target` (a reader of the store's history of it), a Target of that name
    and no URL, which `settings.targets` does not hold."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    path: Path | None = None
    if config is not None:
        path = Path(config).expanduser()
    elif env.get("LSOPS_CONFIG"):
        path = Path(env["LSOPS_CONFIG"]).expanduser()
    elif (cwd / CONFIG_FILE).is_file():
        path = cwd / CONFIG_FILE
    try:
        return _settings(path, target, database, env, cwd, unconfigured_target)
    except ConfigError as exc:
        raise named_file(exc, path) from None


def _settings(
    path: Path | None,
    target: str | None,
    database: str | None,
    env: Mapping[str, str],
    cwd: Path,
    unconfigured_target: bool,
) -> Settings:
    """`load_settings` once its file is known."""
    doc = read_toml(path) if path else {}

    targets: dict[str, Target] = {}
    targets_section = _targets_section(doc)
    for name, section in targets_section.items():
        targets[name] = _target(name, section, env)
    if "api" in doc or not targets:
        targets.setdefault("default", _target("default", doc.get("api") or {}, env, "[api]"))

    if not isinstance(doc.get("default_target", ""), str):
        raise ConfigError("lsops.toml: default_target must be the name of a target (a string)")
    chosen = target or env.get("LSOPS_TARGET") or doc.get("default_target")
    named = chosen is not None
    if chosen is None:
        chosen = "default" if "default" in targets else next(iter(targets))
    if chosen not in targets and not unconfigured_target:
        raise UnknownTargetError(
            f"unknown target {chosen!r} (configured: {', '.join(sorted(targets))})", chosen
        )
    current = targets.get(chosen) or Target(name=chosen, url="")
    # a malformed URL names the setting it came from (README "Bad input")
    api_section = f"[targets.{chosen}]" if chosen in targets_section else "[api]"
    api_setting = f"API URL of target {chosen} ({api_section} url in {path})"
    if env.get("LSOPS_API_URL"):
        current = replace(current, url=env["LSOPS_API_URL"].rstrip("/"))
        api_setting = f"API URL of target {chosen} (LSOPS_API_URL)"
    if env.get("LSOPS_API_TOKEN"):
        current = replace(current, token=env["LSOPS_API_TOKEN"], token_unset=None)
    if chosen in targets:  # an unconfigured target's API is never asked
        check_url(current.url, api_setting, schemes=("http", "https"))
    if chosen in targets and not current.url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{api_setting}: must start with http:// or https://: {redact_url(current.url)}"
        )

    data_dir = default_data_dir(env)
    store_url = env.get("LSOPS_STORE")
    if store_url:
        check_store_url(store_url, "LSOPS_STORE")
    else:
        store_url = checked_section(doc.get("store") or {}, "store").get("url")
        if store_url:
            store_url = check_store_url(str(store_url), f"[store] url in {path}")
    if not store_url:
        store_url = f"sqlite:///{data_dir / 'metrics.sqlite'}"

    databases: dict[str, str] = {}
    databases_unset: dict[str, str] = {}
    database_settings: dict[str, str] = {}
    for name, section in checked_section(doc.get("databases") or {}, "databases").items():
        url, unset = (
            _secret(section, "url", env, f"[databases.{name}]")
            if isinstance(section, Mapping)
            else (str(section), None)
        )
        if url:
            databases[name] = url
            if not isinstance(section, Mapping):
                database_settings[name] = f"[databases] {name} in {path}"
            elif "url_env" in section:
                var = section["url_env"]
                database_settings[name] = f"{var}, named by [databases.{name}] url_env in {path}"
            else:
                database_settings[name] = f"[databases.{name}] url in {path}"
        elif unset is not None:
            databases_unset[name] = unset
    database_url = env.get("LSOPS_DATABASE_URL")
    database_setting = "LSOPS_DATABASE_URL" if database_url else None
    database_name = database
    if database is not None:
        if database in databases_unset:
            raise ConfigError(databases_unset[database])
        if database not in databases:
            known = ", ".join(sorted([*databases, *databases_unset])) or "none"
            raise ConfigError(f"unknown database {database!r} (configured: {known})")
        database_url = databases[database]
        database_setting = database_settings[database]
    elif database_url is None and (databases or databases_unset):
        database_name = doc.get("default_database") or next(iter(doc.get("databases")))
        database_url = databases.get(database_name)
        database_setting = database_settings.get(database_name)

    outputs_file = checked_section(doc.get("outputs") or {}, "outputs").get("dir")
    outputs = env.get("LSOPS_OUTPUTS") or outputs_file or "./outputs"
    outputs_setting = (
        "LSOPS_OUTPUTS"
        if env.get("LSOPS_OUTPUTS")
        else f"[outputs] dir in {path}"
        if outputs_file
        else None
    )
    outputs_dir = Path(outputs).expanduser()
    if not outputs_dir.is_absolute():
        outputs_dir = cwd / outputs_dir

    return Settings(
        target=current,
        targets={**targets, chosen: current} if chosen in targets else targets,
        target_named=named,
        store_url=store_url,
        data_dir=data_dir,
        outputs_dir=outputs_dir,
        database_url=database_url,
        database_name=database_name,
        databases=databases,
        thresholds=parse_thresholds(doc.get("thresholds") or {}, path or CONFIG_FILE),
        config_path=path,
        **_security_settings(doc, cwd),  # issue 12
        env=None if env is os.environ else dict(env),
        databases_unset=databases_unset,
        database_settings=database_settings,
        database_setting=database_setting,
        outputs_setting=outputs_setting,
    )
