"""Report kinds and their parameters: checked before anything runs or is written.

Each kind names its notebook, the parameters it accepts (with a type, whether it is
required and a default) and how its archive key is derived from the parameters:

| kind              | notebook                          | key                                   |
| ----------------- | --------------------------------- | ------------------------------------- |
| `monthly-review`  | `monthly_review.ipynb`            | the month, `2026-10`                  |
| `postmortem`      | `incident_postmortem.ipynb`       | a slug of the title, `api-outage`     |
| `db-optimization` | `db_optimization.ipynb`           | the database name, else `default`     |

When a report fails and when it succeeds partially (issue 13; the rules are in
`outcome.RULES`, each kind names its own in `fails_when`): a notebook that runs to its
end is judged by its key figures. A rule that holds makes the run FAILED (exit 1,
`status: failed`, the reason in run.json's `error` and at the top of the HTML); every
other problem the key figures list is a WARNING (`status: succeeded`, `warnings: [...]`
in run.json and at the top of the HTML, exit 0).

| kind              | failed when                                                  | warnings (partial report)                                  |
| ----------------- | ------------------------------------------------------------ | ---------------------------------------------------------- |
| `monthly-review`  | the metrics store cannot be read; the review could not be computed; the month holds no observation | the database section (not configured, unreachable), any other section that could not be produced |
| `postmortem`      | the metrics store cannot be read; the postmortem could not be computed; the window holds no observation | any section that could not be produced |
| `db-optimization` | the database cannot be reached                               | a check that could not run (pg_stat_statements missing, the store's growth snapshots, a missing table or column) |

A parameter the kind does not list is accepted when the notebook's `parameters` cell
declares it (typed by the default the notebook gives it), so notebook authors can add
knobs without touching this module. A user-supplied parameter the notebook does not
declare is an error. A notebook run without lsops (plain papermill, JupyterLab) checks
its parameters by the same rules: `check_parameter(kind, name, value)`. Values that hold a
password are refused (a URL's `user:password@`, its `?password=`, libpq's `password=`), as
are tokens of the well-known formats (`CREDENTIAL_TOKEN`: `ghp_...`, `sk-...`, JWTs...):
secrets reach the notebook through the environment (`LSOPS_*`), never as parameters. A
`store` must be a store URL (`sqlite:///PATH`, `postgresql://...`), checked as the settings'
store is; a `target` the settings do not name is checked against the store by `run_report`
(the notebook's own rule) before anything runs.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import times
from ..exceptions import ConfigError, ParameterError, ReportError
from ..urls import check_store_url

NOTEBOOKS_ENV = "LSOPS_NOTEBOOKS"

# a URL carrying a password: scheme://user:password@host
CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@")
# a password in a URL's query or in libpq's keyword form: `...?password=secret`,
# `host=db password=secret dbname=x` (the key starts the text or follows `?`, `&`, `;` or a
# space; group 1 is the key and its `=`, the value runs to `&`, `;`, `#`, a space or a quote)
CREDENTIAL_SETTING = re.compile(
    r"(?<![^?&;\s])([A-Za-z_]*(?:password|passwd)=)[^&;#\s'\"]+", re.IGNORECASE
)
# a credential in one of the well-known formats, whoever's it is (not configured here, so
# not known by value): GitHub, OpenAI-style `sk-`, Slack, AWS access key ids, Sentry auth
# tokens, Stripe, Google API keys, JSON web tokens, PEM private keys (QA 24: a title
# `... sk-proj-...` named its run's folder and reached every archived file)
CREDENTIAL_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{12,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|sntry[su]_[A-Za-z0-9+/=_-]{20,}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r")"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SEVERITY = re.compile(r"^SEV[1-5]$")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


@dataclass(frozen=True)
class Param:
    """One parameter of a report kind.

    `type` is one of `month`, `time`, `str`, `name`, `target`, `int`, `float`, `bool`, `severity`,
    `store`, `json` (see `convert`). `default` is a value or a zero-argument callable; `None`
    leaves the notebook's own default in place.
    """

    name: str
    type: str
    required: bool = False
    default: Any = None
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


@dataclass(frozen=True)
class Kind:
    """A report kind: its notebook, parameters and archive key."""

    name: str
    notebook: str
    title: str
    params: tuple[Param, ...]
    key: Callable[[Mapping[str, Any]], str]
    check: Callable[[Mapping[str, Any]], None] | None = None
    # the rules (outcome.RULES) that make a run that ran to its end FAILED; any other
    # problem in its key figures is a warning (see the module's docstring)
    fails_when: tuple[str, ...] = ()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def slugify(text: str, *, max_length: int = 60) -> str:
    """`"API outage: 503s on /api/chat"` -> `api-outage-503s-on-api-chat`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def _previous_month() -> str:
    return times.previous_month(times.utcnow().strftime("%Y-%m"))


def _postmortem_key(values: Mapping[str, Any]) -> str:
    slug = slugify(str(values.get("title", "")))
    if not slug:  # a title with no latin letters or digits at all
        slug = "incident-" + str(values.get("start", ""))[:10]
    return slug


def _check_window(values: Mapping[str, Any]) -> None:
    start, end = values.get("start"), values.get("end")
    if start and end and times.parse_time(start) >= times.parse_time(end):
        raise ParameterError(f"start {start} is not before end {end}")


MAX_BASELINE_HOURS = 366 * 24  # a postmortem's baseline: at most a year before the window
MAX_SAMPLE_ERRORS = 1000  # error records a postmortem samples

_STORE = Param(
    "store", "store", help="metrics store URL (no password; default: the settings' store)"
)
_TARGET = Param("target", "target", help="API target name from lsops.toml")
_DATABASE = Param("database", "name", help="database NAME from lsops.toml (never a URL)")

KINDS: dict[str, Kind] = {
    "monthly-review": Kind(
        name="monthly-review",
        notebook="monthly_review.ipynb",
        title="Monthly performance review",
        params=(
            Param("month", "month", default=_previous_month, help="YYYY-MM (default: last month)"),
            _TARGET,
            _STORE,
            _DATABASE,
            Param("include_monitoring", "bool", help="count /health and /metrics requests"),
        ),
        key=lambda v: str(v["month"]),
        fails_when=("store", "computed", "data"),
    ),
    "postmortem": Kind(
        name="postmortem",
        notebook="incident_postmortem.ipynb",
        title="Incident postmortem",
        params=(
            Param(
                "start", "time", required=True, help="start of the incident window (ISO 8601, UTC)"
            ),
            Param("end", "time", required=True, help="end of the incident window (ISO 8601, UTC)"),
            Param(
                "title",
                "str",
                required=True,
                help="the incident's title; the archive key is its slug",
            ),
            Param("severity", "severity", default="SEV2", help="SEV1 .. SEV5"),
            _TARGET,
            _STORE,
            Param(
                "baseline_hours",
                "float",
                minimum=1,
                maximum=MAX_BASELINE_HOURS,
                help="the baseline is this many hours just before the window",
            ),
            Param(
                "sample_errors",
                "int",
                minimum=0,
                maximum=MAX_SAMPLE_ERRORS,
                help="how many error records to sample over the window",
            ),
            Param("include_monitoring", "bool", help="count /health and /metrics requests"),
        ),
        key=_postmortem_key,
        check=_check_window,
        fails_when=("store", "computed", "data"),
    ),
    "db-optimization": Kind(
        name="db-optimization",
        notebook="db_optimization.ipynb",
        title="Database optimization",
        params=(
            _DATABASE,
            Param(
                "top_n",
                "int",
                default=20,
                minimum=1,
                maximum=10_000,
                help="how many tables/queries/indexes to list",
            ),
            _STORE,
            # the database thresholds: what lsops.toml [thresholds] takes, a number >= 0
            # (a ratio at most 1, as lsops.toml's fractions)
            *(
                Param(
                    name,
                    type_,
                    minimum=0,
                    maximum=maximum,
                    help=f"[thresholds] {name} for this report",
                )
                for name, type_, maximum in (
                    ("slow_query_mean_ms", "float", None),
                    ("slow_query_calls", "int", None),
                    ("slow_queries_per_hour", "int", None),
                    ("dead_tuples_min", "int", None),
                    ("dead_tuple_ratio", "float", 1),
                )
            ),
        ),
        key=lambda v: str(v.get("database") or "default"),
        fails_when=("database",),
    ),
}


def notebooks_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the notebooks are: `override`, else `$LSOPS_NOTEBOOKS`, else the checkout's
    `notebooks/` (where people edit them), else the copy the wheel ships inside the
    package (`lsops_lib/notebooks`)."""
    if override is not None:
        return Path(override)
    if os.environ.get(NOTEBOOKS_ENV):
        return Path(os.environ[NOTEBOOKS_ENV]).expanduser()
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return checkout / "notebooks"
    return package / "notebooks"


def notebook_path(kind: str, directory: str | os.PathLike[str] | None = None) -> Path:
    spec = get_kind(kind)
    path = notebooks_dir(directory) / spec.notebook
    if not path.is_file():
        raise ReportError(f"notebook for {kind} not found: {path}")
    return path


def get_kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ParameterError(f"unknown report kind {kind!r} (known: {', '.join(KINDS)})") from None


def declared_parameters(path: Path) -> dict[str, str]:
    """The notebook's `parameters` cell: name -> inferred type name (`int`, `str`, ...)."""
    stat = path.stat()
    return dict(_declared(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=32)
def _declared(path: str, _mtime: int, _size: int) -> tuple[tuple[str, str], ...]:
    import papermill

    try:
        found = papermill.inspect_notebook(path)
    except Exception as exc:  # a broken notebook file
        raise ReportError(f"cannot read the parameters of {path}: {exc}") from None
    return tuple((name, _infer_type(info)) for name, info in found.items())


def _infer_type(info: Mapping[str, Any]) -> str:
    """`int`, `float`, `bool`, `str`, `dict`, `list` from the annotation or the default."""
    inferred = str(info.get("inferred_type_name") or "None")
    if inferred != "None":
        return inferred
    try:
        default = ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError):
        return "None"
    return type(default).__name__ if default is not None else "None"


# --- conversion ------------------------------------------------------------------------------


def _refuse_credentials(name: str, value: str) -> None:
    if CREDENTIAL_URL.search(value) or CREDENTIAL_SETTING.search(value):
        raise ParameterError(
            f"parameter {name} holds a password (in a URL or a password= setting); refer to "
            "it by name in lsops.toml or set it in an LSOPS_* environment variable instead"
        )
    if CREDENTIAL_TOKEN.search(value):
        raise ParameterError(
            f"parameter {name} holds what looks like a secret token (an API key, a JWT); "
            "leave it out: every archived file would carry it"
        )


MAX_TEXT = 2000  # characters of a text parameter (a title, a note)


def _check_text(name: str, value: str) -> None:
    """Text a notebook, a file name and an HTML page can all carry: not too long, no NUL,
    no undecodable bytes (lone surrogates from a command line in a foreign encoding)."""
    if len(value) > MAX_TEXT:
        raise ParameterError(
            f"parameter {name} is too long ({len(value)} characters, at most {MAX_TEXT})"
        )
    if "\x00" in value:
        raise ParameterError(f"parameter {name} holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParameterError(
            f"parameter {name} is not valid text (bytes that are not UTF-8)"
        ) from None


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParameterError(f"parameter {name} must be true or false, not {times.shown(value)}")


def _to_number(name: str, value: Any, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise ParameterError(f"parameter {name} must be a number, not {times.shown(value)}")
    what = "an integer" if kind is int else "a number"
    try:
        number = kind(str(value).strip()) if isinstance(value, str) else kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"parameter {name} must be {what}, not {times.shown(value)}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ParameterError(f"parameter {name} must be a finite number, not {times.shown(value)}")
    return number


MAX_TIMEOUT_S = 7 * 86400.0  # a week per cell


def check_timeout(value: float) -> float:
    """The per-cell execution timeout: a finite number of seconds, > 0, at most a week
    (a fraction is rounded up to whole seconds when the report runs: nbclient's unit)."""
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise ParameterError(
            f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, "
            f"not {times.shown(value)}"
        )
    return float(value)


def convert(name: str, type_: str, value: Any) -> Any:
    """Check `value` and turn it into its canonical, JSON-friendly form."""
    if isinstance(value, str):
        _check_text(name, value)
        _refuse_credentials(name, value)
    if type_ == "month":
        start, _ = times.parse_month(str(value))
        return f"{start:%Y-%m}"
    if type_ == "time":
        stamp = times.parse_time(value if isinstance(value, datetime) else str(value))
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if type_ == "bool":
        return _to_bool(name, value)
    if type_ == "int":
        return _to_number(name, value, int)
    if type_ == "float":
        return _to_number(name, value, float)
    if type_ == "name":
        text = str(value).strip()
        if "://" in text:
            raise ParameterError(f"parameter {name} must be a NAME from lsops.toml, not a URL")
        if not _NAME.match(text) or ".." in text:
            raise ParameterError(
                f"parameter {name} must be a name (letters, digits, '.', '_', '-'), not {times.shown(value)}"
            )
        return text
    if type_ == "target":  # every name lsops.toml's [targets.NAME] takes (config's rule)
        from ..config import target_name_problem

        text = str(value)
        if "://" in text:
            raise ParameterError(f"parameter {name} must be a NAME from lsops.toml, not a URL")
        problem = target_name_problem(text)
        if problem is not None:
            raise ParameterError(
                f"parameter {name} must be a target's name: {times.shown(value)} {problem}"
            )
        return text
    if type_ == "severity":
        text = str(value).strip().upper()
        if not _SEVERITY.match(text):
            raise ParameterError(f"parameter {name} must be SEV1 .. SEV5, not {times.shown(value)}")
        return text
    if type_ == "store":
        text = str(value).strip()
        try:
            return check_store_url(text, f"parameter {name}")
        except ConfigError as exc:
            raise ParameterError(str(exc)) from None
    if type_ == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ParameterError(
                    f"parameter {name} must be JSON, not {times.shown(value)}"
                ) from None
        _refuse_credentials(name, json.dumps(value, default=str))
        return value
    # "str" and anything the notebook declared without a clear type
    if isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


_INFERRED = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "dict": "json",
    "list": "json",
}


def check_key(key: str) -> str:
    """A key is one path segment: no separators, no `..`, no leading dot."""
    if (
        not key
        or len(key) > 100
        or "/" in key
        or "\\" in key
        or ".." in key
        or key.startswith(".")
        or any(ord(c) < 32 for c in key)
    ):
        raise ParameterError(
            f"not a usable report key: {key!r} (it must be a plain name, not a path)"
        )
    return key


def _within(param: Param, converted: Any, value: Any) -> Any:
    """`converted` when it lies within the parameter's bounds (a required text is not blank:
    a postmortem's title is its heading); ParameterError when not."""
    if param.required and isinstance(converted, str) and not converted.strip():
        raise ParameterError(f"parameter {param.name} must not be blank ({param.help})")
    if param.minimum is not None and converted < param.minimum:
        raise ParameterError(
            f"parameter {param.name} must be at least {param.minimum:g}, not {times.shown(value)}"
        )
    if param.maximum is not None and converted > param.maximum:
        raise ParameterError(
            f"parameter {param.name} must be at most {param.maximum:g}, not {times.shown(value)}"
        )
    return converted


def check_parameter(kind: str, name: str, value: Any) -> Any:
    """One parameter of `kind` checked by the rule `lsops report` applies to it (its type
    and bounds), for a notebook run without lsops (plain papermill, JupyterLab): its
    canonical value (`"sev1"` -> `"SEV1"`), None left as it is; ParameterError when wrong."""
    param = get_kind(kind).param(name)
    if param is None:
        raise ParameterError(f"{kind} has no parameter {name!r} that lsops checks")
    if value is None:
        return None
    return _within(param, convert(name, param.type, value), value)


def validate(
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    notebooks_dir: str | os.PathLike[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check `params` for `kind` -> (key, parameters to inject). ParameterError when wrong.

    Missing optional parameters take the kind's default (when it has one); parameters
    whose value is `None` are left to the notebook's own default. Nothing is written.
    """
    spec = get_kind(kind)
    # the values of the kind's own parameters first, without the notebook: a bad month is
    # exit 2 whatever the notebooks folder holds (a missing notebook is exit 1)
    for raw_name, value in (params or {}).items():
        param = spec.param(str(raw_name).replace("-", "_"))
        if param is not None and value is not None:
            _within(param, convert(param.name, param.type, value), value)
    declared = declared_parameters(notebook_path(kind, notebooks_dir))
    values: dict[str, Any] = {}
    given: set[str] = set()
    for raw_name, value in (params or {}).items():
        name = str(raw_name).replace("-", "_")
        param = spec.param(name)
        if param is None and name not in declared:
            known = sorted({p.name for p in spec.params} | set(declared))
            raise ParameterError(
                f"unknown parameter {raw_name!r} for {kind} (known: {', '.join(known)})"
            )
        if declared and name not in declared:
            raise ParameterError(f"the {kind} notebook ({spec.notebook}) has no parameter {name!r}")
        if value is None:
            continue
        type_ = param.type if param else _INFERRED.get(declared.get(name, ""), "str")
        converted = convert(name, type_, value)
        values[name] = _within(param, converted, value) if param is not None else converted
        given.add(name)
    for param in spec.params:
        if param.name in values:
            continue
        if param.required:
            raise ParameterError(f"{kind} needs the parameter {param.name} ({param.help})")
        default = param.default_value()
        if default is not None:
            values[param.name] = convert(param.name, param.type, default)
    if spec.check is not None:
        spec.check(values)
    key = check_key(spec.key(values))
    if declared:  # defaults the notebook does not declare are not injected
        values = {k: v for k, v in values.items() if k in declared or k in given}
    return key, values
