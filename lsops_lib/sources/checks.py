"""The Monitoring Checklist's lines fed by Sentry, the logs and pm2 (issue 10):

    cpu                 "CPU usage acceptable": p95 of pm2's CPU of the app in the window
                        against [thresholds] cpu_percent; critical above cpu_critical_percent
    critical_errors     "No critical errors": unresolved fatal Sentry issues seen in the
                        window, fatal log entries (FATAL ERROR, Unhandled, heap out of memory)
    new_error_patterns  "No new error patterns": error-level log patterns never seen before
                        the window, Sentry issues first seen in it
    errors_resolved     "Errors resolved promptly": unresolved Sentry issues first seen
                        longer than [thresholds] errors_resolve_within days before the end

Each is unknown only when none of its sources is configured (the line says which setting
enables it). A configured source without any collection in the window fails the line (no
data is not a pass: the line says that `lsops collect` must run). A source counts as
configured when the settings say so or the store holds collections of it for the target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import fmt
from ..analysis.checklist import FAIL, PASS, UNKNOWN, Check
from ..config import Thresholds
from ..store import sources as tables
from ..times import parse_time
from .settings import SourceSettings
from .views import collected, new_error_log_patterns, runs_of

ENABLE = {
    "sentry": "[sentry] org and project with a token (LSOPS_SENTRY_ORG, LSOPS_SENTRY_PROJECT, "
    "SENTRY_AUTH_TOKEN)",
    "logs": "[logs] paths or journal_unit (LSOPS_LOGS)",
    "pm2": "[pm2] (or LSOPS_PM2=on)",
}


def _configured(
    store: Any, target: str | None, sources: SourceSettings | None, end: datetime | None
) -> tuple[set[str], pd.DataFrame]:
    if getattr(store, "engine", None) is None:  # a reader that is not a Store: nothing
        return set(), pd.DataFrame(columns=tables.RUN_COLUMNS)
    runs = tables.source_runs(store, target, None, None)  # ever collected: configured
    names = set(sources.configured()) if sources is not None else set()
    names |= set(runs["source"].astype(str)) if not runs.empty else set()
    return names, runs


def _failures(runs: pd.DataFrame, name: str, start: datetime, end: datetime) -> str:
    """'logs failed at each of its 3 collections in the window (last: ...)' when the source
    was collected and failed, rather than asking whether the collector runs; else ""."""
    mine = runs_of(runs, name, start, end, ok=False)
    if mine.empty:
        return ""
    last = mine.sort_values("ts").iloc[-1]
    return (
        f"{name} failed at each of its {fmt.counted(len(mine), 'collection')} in the window "
        f"(last, {fmt.instant(last['ts'])}: {last['error']})"
    )


def _unknown_line(
    key: str, name: str, needs: list[str], configured: set[str], threshold: Any, severity: str
) -> Check | None:
    """The unknown Check when none of `needs` is configured, else None."""
    if any(n in configured for n in needs):
        return None
    settings = " or ".join(ENABLE[n] for n in needs)
    return Check(key, name, UNKNOWN, None, threshold, f"not collected: set {settings}", severity)


def source_checks(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    sources: SourceSettings | None = None,
) -> dict[str, Check]:
    """The four lines, by key (see the module's docstring)."""
    start, end = parse_time(start), parse_time(end)  # ISO strings, naive datetimes: UTC
    th = thresholds or Thresholds()
    configured, runs = _configured(store, target, sources, end)
    missing = {
        n
        for n in ("sentry", "logs", "pm2")
        if n in configured and not collected(runs, n, start, end)
    }
    out: dict[str, Check] = {}

    def stale(key: str, name: str, needs: list[str], threshold: Any, severity: str) -> Check | None:
        have = [n for n in needs if n in configured]
        if have and all(n in missing for n in have):
            failed = [_failures(runs, n, start, end) for n in have]
            said = "; ".join(f for f in failed if f)
            return Check(
                key,
                name,
                FAIL,
                None,
                threshold,
                said
                or f"no collection of {' or '.join(have)} in the window: is `lsops "
                "collect` running?",
                severity,
            )
        return None

    # --- CPU usage acceptable
    key, name, limit = "cpu", "CPU usage acceptable", th.cpu_percent / 100.0
    samples = tables.pm2_samples(store, target, start, end) if "pm2" in configured else None
    check = _unknown_line(key, name, ["pm2"], configured, limit, "warning")
    if check is None and (samples is None or samples.empty):  # samples answer for themselves
        check = stale(key, name, ["pm2"], limit, "warning")
    if check is None and samples is not None:
        if samples.empty or samples["cpu"].dropna().empty:
            check = Check(key, name, FAIL, None, limit, "pm2 reported no CPU figure")
        else:
            per_sample = samples.groupby("ts")["cpu"].sum()  # the app's processes together
            p95 = float(per_sample.quantile(0.95)) / 100.0
            restarts = _restarts(samples)
            detail = (
                f"p95 of {fmt.counted(len(per_sample), 'pm2 sample')} {fmt.pct(p95)} of one core, "
                f"peak {fmt.pct(float(per_sample.max()) / 100.0)}; "
                f"{fmt.counted(restarts, 'restart')} in the window"
            )
            severity = "critical" if p95 > th.cpu_critical_percent / 100.0 else "warning"
            check = Check(key, name, PASS if p95 < limit else FAIL, p95, limit, detail, severity)
    out[key] = check

    # --- No critical errors
    key, name = "critical_errors", "No critical errors"
    check = _unknown_line(key, name, ["sentry", "logs"], configured, 0, "critical") or stale(
        key, name, ["sentry", "logs"], 0, "critical"
    )
    if check is None:
        parts, total = [], 0
        if "sentry" in configured:
            issues = tables.sentry_issues(store, target, seen_since=start)
            fatal = issues[
                (issues["level"] == "fatal")
                & (issues["status"] == "unresolved")
                & (issues["first_seen"] < pd.Timestamp(end))
            ]
            total += len(fatal)
            parts.append(fmt.counted(len(fatal), "unresolved fatal Sentry issue"))
        if "logs" in configured:
            fatal_lines = tables.pattern_counts(store, target, start, end, level="fatal")
            count = int(fatal_lines["count"].sum()) if not fatal_lines.empty else 0
            total += count
            parts.append(
                f"{fmt.counted(count, 'fatal log entry', 'fatal log entries')} "
                "(FATAL ERROR, Unhandled, heap out of memory)"
            )
        check = Check(
            key, name, PASS if total == 0 else FAIL, total, 0, "; ".join(parts), "critical"
        )
    out[key] = check

    # --- No new error patterns
    key, name = "new_error_patterns", "No new error patterns"
    check = _unknown_line(key, name, ["sentry", "logs"], configured, 0, "warning") or stale(
        key, name, ["sentry", "logs"], 0, "warning"
    )
    if check is None:
        parts, total = [], 0
        if "logs" in configured:
            new = new_error_log_patterns(store, target, start, end)
            total += len(new)
            text = fmt.counted(len(new), "new error log pattern")
            if new:
                text += f" (first: {str(new[0]['template'])[:120]})"
            parts.append(text)
        if "sentry" in configured:
            issues = tables.sentry_issues(
                store, target, first_seen_since=start, first_seen_until=end
            )
            issues = issues[issues["level"].isin(["error", "fatal"])]
            total += len(issues)
            # the level said: the review counts every new issue, warnings too (QA 23)
            parts.append(fmt.counted(len(issues), "new Sentry issue") + " of level error or fatal")
        check = Check(key, name, PASS if total == 0 else FAIL, total, 0, "; ".join(parts))
    out[key] = check

    # --- Errors resolved promptly
    key, name = "errors_resolved", "Errors resolved promptly"
    days = th.errors_resolve_within
    threshold = days  # raw, as the other lines' (JSON); the text says "< 7 days"
    check = _unknown_line(key, name, ["sentry"], configured, threshold, "warning") or stale(
        key, name, ["sentry"], threshold, "warning"
    )
    if check is None:
        issues = tables.sentry_issues(store, target)
        cutoff = pd.Timestamp(end) - timedelta(days=days)
        open_ = issues[issues["status"] == "unresolved"]
        overdue = open_[open_["first_seen"] < cutoff]
        detail = (
            f"{len(overdue):,} of {fmt.counted(len(open_), 'unresolved Sentry issue')} first seen more than "
            f"{days:g} days before {fmt.instant(end)}"
        )
        if not overdue.empty:
            oldest = overdue.sort_values("first_seen").iloc[0]
            detail += f"; oldest {oldest['short_id']} since {fmt.instant(oldest['first_seen'])}"
        check = Check(key, name, PASS if overdue.empty else FAIL, len(overdue), threshold, detail)
    out[key] = check
    return out


def _restarts(samples: pd.DataFrame) -> int:
    """Restarts in the window: the rise of each process's restart counter (a fall, pm2
    itself restarted or `pm2 reset`, counts its new value)."""
    total = 0
    for _, proc in samples.dropna(subset=["restarts"]).groupby("pm_id", dropna=False):
        values = proc.sort_values("ts")["restarts"].astype(int).tolist()
        for a, b in zip(values, values[1:], strict=False):
            total += b - a if b >= a else b
    return total
