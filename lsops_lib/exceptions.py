"""Every error lsops raises on purpose. One line each, safe to print: no credentials.

The command line turns these into one line on stderr and an exit code; anything else
escaping is a bug.
"""

from __future__ import annotations


class LsopsError(Exception):
    """Base of every error lsops raises on purpose."""


class ConfigError(LsopsError):
    """A setting is missing, malformed or names something that does not exist."""


class ParameterError(LsopsError):
    """A user-supplied parameter (month, window, report kind, ...) is invalid."""


class ParameterValueError(ParameterError, ValueError):
    """A ParameterError where the library raised ValueError before (an unknown bucket or
    scrape column, an SLO that is no fraction): code that catches ValueError goes on
    working."""


# --- the LongSang API ---------------------------------------------------------------


class ApiError(LsopsError):
    """The LongSang API did not answer properly. `kind` names the failure for the store."""

    kind = "error"

    def __init__(self, message: str, *, url: str = "", status: int | None = None):
        self.url = url
        self.status = status
        super().__init__(f"{message} ({url})" if url else message)


class ApiUnreachable(ApiError):
    kind = "unreachable"


class ApiTimeout(ApiError):
    kind = "timeout"


class ApiBadStatus(ApiError):
    kind = "bad_status"


class ApiNotJSON(ApiError):
    kind = "not_json"


class ApiUnexpectedShape(ApiError):
    kind = "bad_shape"


# --- the metrics store --------------------------------------------------------------


class StoreError(LsopsError):
    """The metrics store cannot be opened, read or written."""


class StoreVersionError(StoreError):
    """The store was written by a newer lsops than this one."""


# --- the inspected PostgreSQL ---------------------------------------------------------


class DatabaseError(LsopsError):
    """The inspected database cannot be reached or answered with an error."""


class ExtensionMissing(DatabaseError):
    """A feature needs a PostgreSQL extension that is not installed."""


# --- reports --------------------------------------------------------------------------


class ReportError(LsopsError):
    """A report could not be executed or archived."""
