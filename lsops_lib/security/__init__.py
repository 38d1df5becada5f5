"""The runbook's monthly security review: dependencies, access, secrets.

    review = security_review(settings, store=store, start=start, end=end)
    review.audit      npm audit: vulnerabilities by severity, direct or transitive, fix
    review.auth       401/403 and 429 per hour and per endpoint, bursts, top sources
    review.secrets    each secret's last rotation against [thresholds] secret_max_age
    review.as_dict()  {"audit", "auth", "secrets"}: what `lsops security --json` prints
    review.summary()  the key figures, flat

Each part has a `status`: `ok`, `attention` or `unknown`, and a `reason` in words; a part
whose source is not configured says so (`configured: false`) and is `unknown`. Nothing
here raises for an outside failure (npm missing, the registry refusing, no store).

Modules: `audit` (npm audit), `auth` (the stored error records), `rotation` (secrets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from ..config import Settings, Thresholds, redact_url, sqlite_store_missing
from ..exceptions import LsopsError
from . import audit, auth, rotation

__all__ = [
    "PARTS",
    "STATUSES",
    "SecurityReview",
    "audit",
    "audit_part",
    "auth",
    "open_existing_store",
    "rotation",
    "security_review",
]

PARTS = ("audit", "auth", "secrets")
STATUSES = ("ok", "attention", "unknown")


@dataclass
class SecurityReview:
    """The three parts of the review (plain dicts, JSON-ready) and the hourly auth frame."""

    audit: dict[str, Any]
    auth: dict[str, Any]
    secrets: dict[str, Any]
    hourly: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["hour", "auth_failures", "rate_limited"])
    )

    def as_dict(self) -> dict[str, Any]:
        """{"audit", "auth", "secrets"}: exactly the keys of `lsops security --json`."""
        return {"audit": self.audit, "auth": self.auth, "secrets": self.secrets}

    @property
    def status(self) -> str:
        """`attention` when a part needs it, else `unknown` when a part is, else `ok`."""
        statuses = [self.audit["status"], self.auth["status"], self.secrets["status"]]
        for status in ("attention", "unknown"):
            if status in statuses:
                return status
        return "ok"

    def summary(self) -> dict[str, Any]:
        """The review's key figures, flat."""
        counts = self.audit.get("counts") or {}
        return {
            "status": self.status,
            "audit": self.audit["status"],
            "vulnerabilities": counts.get("total"),
            **{f"vulnerabilities_{s}": counts.get(s) for s in audit.SEVERITIES},
            "auth": self.auth["status"],
            "auth_failures": self.auth.get("auth_failures"),
            "rate_limited": self.auth.get("rate_limited"),
            "auth_bursts": None if self.auth["bursts"] is None else len(self.auth["bursts"]),
            "secrets": self.secrets["status"],
            "secrets_due": self.secrets.get("due"),
            "secrets_overdue": self.secrets.get("overdue"),
            "unknown": [
                f"{name}: {part['reason']}"
                for name, part in self.as_dict().items()
                if part["status"] == "unknown"
            ],
        }


def audit_part(
    settings: Settings | None,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    audit_file: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """npm audit from `app_dir` (run there) or `audit_file` (read), else the settings'
    `[security] app_dir` / `audit_file`, else "not configured"."""
    timeout = settings.audit_timeout_s if settings is not None else 120.0
    if app_dir is None and audit_file is None and settings is not None:
        app_dir, audit_file = settings.app_dir, settings.audit_file
    if app_dir is not None:
        return audit.run_npm_audit(app_dir, timeout_s=timeout)
    if audit_file is not None:
        return audit.read_audit_file(audit_file)
    return audit.not_configured()


def open_existing_store(url: str | None) -> tuple[Any, str | None]:
    """The metrics store at `url` when it exists (a SQLite file is never created here), or
    None and the reason."""
    if not url:
        return None, "no metrics store configured (LSOPS_STORE or [store] url in lsops.toml)"
    if sqlite_store_missing(url):
        return None, f"no metrics store at {redact_url(url)}: run `lsops collect` first"
    from ..store import Store

    try:
        return Store(url), None
    except LsopsError as exc:
        return None, f"the metrics store cannot be opened: {exc}"


def security_review(
    settings: Settings | None,
    *,
    app_dir: str | os.PathLike[str] | None = None,
    audit_file: str | os.PathLike[str] | None = None,
    store: Any = None,
    store_problem: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    target: str | None = None,
    today: date | None = None,
    thresholds: Thresholds | None = None,
) -> SecurityReview:
    """The review. `store`: a Store (or any reader with `error_records` and
    `counter_intervals`), None when there is none (`store_problem` says why); the auth
    window is [start, end) (default: the 30 days before now); `today` (UTC) dates the
    secrets' ages."""
    t = thresholds or (settings.thresholds if settings is not None else Thresholds())
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=30)
    if store is None:
        auth_part = auth.not_configured(store_problem or "no metrics store", start, end)
        hourly = pd.DataFrame(columns=auth.HOUR_COLUMNS)
    else:
        try:
            auth_part, hourly = auth.auth_review(store, start, end, t, target=target)
        except LsopsError as exc:  # the store failed while read: a finding, not a crash
            auth_part = auth.not_configured(f"the metrics store failed: {exc}", start, end)
            auth_part["configured"] = True
            hourly = pd.DataFrame(columns=auth.HOUR_COLUMNS)
    rotations = settings.secret_rotations if settings is not None else {}
    secrets = rotation.rotation(rotations, t, today or datetime.now(UTC).date())
    return SecurityReview(
        audit=audit_part(settings, app_dir=app_dir, audit_file=audit_file),
        auth=auth_part,
        secrets=secrets,
        hourly=hourly,
    )
