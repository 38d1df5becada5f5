"""URLs in the settings: shown with their secrets masked, checked before anything uses
them (issue 13: a malformed URL is one line and exit 2, never a traceback). Only the
standard library: `load_settings` checks every URL at each command's start (`lsops health`
never imports SQLAlchemy); `lsops_lib.config` re-exports these names. And `masked`: a
text or a parsed JSON answer with given secrets (a token, a password) replaced by `***`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .exceptions import ConfigError


def masked(value: Any, secrets: Iterable[str | None]) -> Any:
    """`value` (a text, or a parsed JSON answer) with each secret replaced by `***`, the
    longest first (a secret inside another is not left half shown); empty secrets
    ignored. What a server, Sentry or a log line echoes of a token is masked with it
    before anything prints or stores it.

    In a parsed answer every string value is a text, masked wherever the secret occurs;
    a key is a name of the answer, masked as `masked_name` masks one."""
    found = sorted({s for s in secrets if s}, key=len, reverse=True)
    return _masked(value, found) if found else value


def masked_name(name: str, secrets: Iterable[str | None]) -> str:
    """A name of an answer (a JSON key, an endpoint path, a service, a method) with each
    secret masked, but a secret made of letters alone: that is a word, maybe the
    answer's own (a token `status`, `OK` or `t` would turn a field, a status or every
    endpoint path into `***`, and the figures with them), masked in texts only. A token
    has digits or signs: it is masked in a name wherever it occurs (an endpoint
    `/x?token=...`, a key that is the token itself)."""
    found = sorted({s for s in secrets if s}, key=len, reverse=True)
    return _masked_name(name, found) if found else name


def _masked_name(name: str, found: list[str]) -> str:
    for secret in found:
        if not secret.isalpha():
            name = name.replace(secret, "***")
    return name


def _masked(value: Any, found: list[str]) -> Any:
    if isinstance(value, str):
        for secret in found:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, list):
        return [_masked(v, found) for v in value]
    if isinstance(value, dict):
        return {
            (_masked_name(k, found) if isinstance(k, str) else k): _masked(v, found)
            for k, v in value.items()
        }
    return value


def redact_url(url: str | None) -> str | None:
    """`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db`; other URLs unchanged.
    Everything between `user:` and the LAST `@` is masked: a password holding an
    unencoded `@`, `/`, `?` or `#` is masked whole, whichever way a parser would split it
    (the checks then refuse such a URL: `credentials_problem`)."""
    if not url:
        return url
    if _LOOSE_CREDENTIALS.match(url):
        return _SECRET_QUERY.sub(r"\1***", _LOOSE_CREDENTIALS.sub(r"\1:***@", url))
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return _SECRET_QUERY.sub(r"\1***", url)
    if parts.query and _SECRET_QUERY.search(parts.query):
        parts = parts._replace(query=_SECRET_QUERY.sub(r"\1***", parts.query))
        url = urlunsplit(parts)
    if password is None:
        return _SECRET_QUERY.sub(r"\1***", url)
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


# --- URL checks (issue 13: a malformed URL is one line and exit 2, never a traceback) -------

# user:password@ in a URL that urlsplit cannot parse, or parses without a password: after
# `scheme://`, a mistyped `scheme:/` or `scheme//`, or no scheme (greedy: up to the LAST @)
# (`host:5432/db?x=a@b` has no password: digits up to `/`, `?`, `#` or the end are a port)
_LOOSE_USER = r"(?:(?:[A-Za-z][A-Za-z0-9+.-]*)?:?/+|(?![A-Za-z][A-Za-z0-9+.-]*:?/))[^:/@\s]*"
_NOT_A_PORT = r"(?!\d*(?:[/?#]|$))"
_LOOSE_CREDENTIALS = re.compile(rf"^({_LOOSE_USER}):{_NOT_A_PORT}.*@", re.DOTALL)
_LOOSE_PASSWORD = re.compile(rf"^{_LOOSE_USER}:{_NOT_A_PORT}(.*)@", re.DOTALL)
_RESERVED_IN_PASSWORD = "@/?#"


# a secret in a URL's query (libpq and psycopg take ?password=..., some APIs ?token=...),
# or in libpq's keyword form (`host=db user=u password=secret dbname=x`, which also takes
# `password = secret` and a single-quoted value with spaces, `password='a b'`: QA 23)
_SECRET_QUERY = re.compile(
    r"((?:^|[?&;\s])[^=&;#\s]*(?:password|passwd|secret|token|api_?key|sslkey)[^=&;#\s]*"
    r"\s*=\s*)"
    r"(?:'(?:[^'\\]|\\.)*'?|[^&;#\s]*)",
    re.IGNORECASE,
)


def url_password(url: str) -> str | None:
    """The password inside `url`: everything between `user:` and the last `@` (the widest
    reading, also when the URL is too malformed for urlsplit)."""
    match = _LOOSE_PASSWORD.match(url)
    if match and match.group(1):
        return match.group(1)
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def credentials_problem(url: str) -> str | None:
    """Why the user:password of `url` cannot be read the same way by every parser (an
    unencoded `@`, `/`, `?` or `#` in it: urlsplit, SQLAlchemy and libpq would each cut it
    elsewhere, and a piece of the password would become a host name, a port or a path, to
    be looked up and printed), or None. The password itself is never in the answer."""
    password = url_password(url)
    reserved = sorted({c for c in password or "" if c in _RESERVED_IN_PASSWORD})
    if not reserved:
        return None
    return (
        f"the password holds an unencoded {' '.join(reserved)} (or the URL an @ after it): "
        "percent-encode it (@ as %40, / as %2F, ? as %3F, # as %23)"
    )


def _scrubbed(reason: str, url: str) -> str:
    """A parser's message about `url` without its password (or any piece of it)."""
    password = url_password(url)
    if password:
        pieces = [password, *re.split(r"[@/?#:]", password)]
        for piece in sorted({p for p in pieces if len(p) >= 3}, key=len, reverse=True):
            reason = reason.replace(piece, "***")
    return reason


def url_secrets(url: str) -> list[str]:
    """Every secret inside `url`: its password and the values of secret query parameters."""
    found = [url_password(url)]
    for m in _SECRET_QUERY.finditer(url):
        value = m.group(0)[len(m.group(1)) :]
        found.append(value)
        if value.startswith("'"):  # libpq's quoted value: its text too, as a driver shows it
            found.append(re.sub(r"\\(.)", r"\1", value.strip("'")))
    return [s for s in found if s]


def check_url(url: str, what: str, *, schemes: tuple[str, ...] | None = None) -> str:
    """`url` if it parses as a URL with a host and a valid port (and one of `schemes`,
    when given); else ConfigError naming `what`, the URL shown redacted."""
    shown = redact_url(url)
    problem = credentials_problem(url)
    parts = None
    if problem is None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad or out-of-range port
        except ValueError as exc:
            problem = _scrubbed(str(exc).splitlines()[0], url) if str(exc) else "malformed"
            parts = None
    if parts is not None:
        scheme = parts.scheme.lower()
        if schemes is not None and not scheme.startswith(schemes):
            problem = f"the scheme must be {' or '.join(s + '://' for s in schemes)}"
        elif not parts.hostname and scheme.split("+")[0] not in ("sqlite", "postgresql"):
            problem = "no host"
        elif any(ord(c) < 32 or c.isspace() for c in url):
            problem = "spaces or control characters"
    if problem is not None:
        raise ConfigError(f"{what}: not a usable URL: {shown} ({problem})")
    return url


def check_database_url(url: str, name: str | None = None, setting: str | None = None) -> str:
    """A database URL SQLAlchemy and psycopg can use (postgresql://...), else ConfigError
    naming the database and the `setting` it came from."""
    what = f"database {name}" if name else "database URL"
    if setting:
        what = f"{what} ({setting})" if name else setting
    check_url(url, what, schemes=("postgresql", "postgres"))
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError, ValueError
        reason = _scrubbed(str(exc).splitlines()[0], url) if str(exc) else type(exc).__name__
        raise ConfigError(f"{what}: not a usable URL: {redact_url(url)} ({reason})") from None
    return url


def check_store_url(url: str, setting: str) -> str:
    """`url` if `store.make_engine` can take it (`scheme://...` with a number for a port,
    a SQLite or PostgreSQL one), else ConfigError naming `setting`, the URL redacted.
    Checked by `load_settings` without importing SQLAlchemy (`lsops health` never does)."""
    problem: str | None = None
    if not re.match(r"[\w+]+://", url):
        problem = "expected sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    elif (problem := credentials_problem(url)) is None:
        try:
            urlsplit(url).port  # noqa: B018 - raises ValueError for a bad or out-of-range port
        except ValueError as exc:
            problem = _scrubbed(str(exc).splitlines()[0], url) if str(exc) else "malformed"
    if problem is not None:
        raise ConfigError(f"{setting}: not a store URL: {redact_url(url)} ({problem})")
    backend = "postgresql" if url.startswith("postgres://") else url.split("://")[0].split("+")[0]
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{setting}: unsupported store backend {backend!r}: use sqlite:/// or postgresql://"
        )
    driver = url.split("://")[0].partition("+")[2]
    if driver and driver != STORE_DRIVERS[backend]:
        raise ConfigError(
            f"{setting}: unsupported store driver {driver!r}: lsops uses "
            f"{backend}+{STORE_DRIVERS[backend]}:// (or {backend}://)"
        )
    return url


STORE_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}  # what lsops installs and tests
