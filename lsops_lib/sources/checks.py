"""The Monitoring Checklist's lines fed by Sentry, the logs and pm2 (issue 10):

    cpu                 "CPU usage acceptable": p95 of pm2's CPU of the app in the window
                        against [thresholds] cpu_percent; critical above cpu_critical_percent
    critical_errors     "No critical errors": unresolved fatal Sentry issues seen in the
                        window, fatal log entries (FATAL ERROR, Unhandled, heap out of memory)
    new_error_patterns  "No new error patterns": error-level log patterns never seen before
                        the window, Sentry issues first seen in it
    errors_resolved     "Errors resolved promptly": unresolved Sentry issues first seen
                        longer than [thresholds] errors_resolve_within days before the end

A line is judged on the sources OBSERVED in the window: those collected successfully in
it (whatever this machine's settings say: a collector elsewhere may fill a shared store).
A line none of whose sources was observed is unknown, never a fail (nor critical), its
detail saying why: a source the settings configure (`sources`; without settings, the
sources the store ever collected for the target) was not collected in the window ("no
collection of pm2 in the window (the last: T): is `lsops collect` running?") or failed
at each collection (the failure said); none is configured ("not configured: set [pm2]
...", with the store's last collection of a source the target used to have). A line
judged on some of its sources while another configured one was not observed fails when
the observed ones fail, and is unknown when they pass: no data is not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .. import fmt
from ..analysis.checklist import FAIL, PASS, UNKNOWN, Check
from ..config import Thresholds
from ..store import sources as tables
from ..store.source_reads import (
    collected_sources,
    collected_sources_of,
    last_collections,
    source_runs_of,
)
from ..times import parse_time
from .settings import SourceSettings
from .views import collected, new_error_log_patterns, runs_of

ENABLE = {
    "sentry": "[sentry] org and project with a token (LSOPS_SENTRY_ORG, LSOPS_SENTRY_PROJECT, "
    "SENTRY_AUTH_TOKEN)",
    "logs": "[logs] paths or journal_unit (LSOPS_LOGS)",
    "pm2": "[pm2] (or LSOPS_PM2=on)",
}


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


@dataclass
class _Seen:
    """What the settings and the store say of the three sources for one window."""

    configured: set[str]  # by the settings (without settings: the store's history)
    observed: set[str]  # collected in the window: the lines are judged on these
    runs: pd.DataFrame  # the window's collections (`source_runs`)
    last: dict[str, pd.Timestamp]  # each source's last successful collection by the end
    start: datetime
    end: datetime

    def used(self, needs: list[str]) -> list[str]:
        """The sources of `needs` observed in the window: the line is judged on these."""
        return [n for n in needs if n in self.observed]

    def unseen(self, needs: list[str]) -> list[str]:
        """The configured sources of `needs` that were not observed in the window."""
        return [n for n in needs if n in self.configured and n not in self.observed]

    def why_unseen(self, name: str) -> str:
        """Why the configured source `name` gave nothing for the window."""
        failed = _failures(self.runs, name, self.start, self.end)
        if failed:
            return failed
        last = self.last.get(name)
        since = f" (the last: {fmt.instant(last)})" if last is not None else ""
        return f"no collection of {name} in the window{since}: is `lsops collect` running?"

    def not_configured(self, needs: list[str]) -> str:
        """`not configured: set ...`, with the store's last collection of each source of
        `needs` it holds some of (what the target used to have)."""
        said = f"not configured: set {' or '.join(ENABLE[n] for n in needs)}"
        earlier = [(n, fmt.instant(self.last[n])) for n in needs if n in self.last]
        if len(earlier) == 1:
            said += f" (the store's last {earlier[0][0]} collection: {earlier[0][1]})"
        elif earlier:
            said += f" (the store's last collections: {'; '.join(f'{n} {t}' for n, t in earlier)})"
        return said

    def why_none(self, needs: list[str]) -> str:
        """Why none of `needs` was observed: each configured one not collected or failing,
        else not configured."""
        unseen = self.unseen(needs)
        if unseen:
            return "; ".join(self.why_unseen(n) for n in unseen)
        return self.not_configured(needs)

    def unknown(
        self, key: str, name: str, needs: list[str], threshold: Any, severity: str
    ) -> Check | None:
        """The line unknown when none of `needs` was observed (why, in its detail), else None."""
        if self.used(needs):
            return None
        return Check(key, name, UNKNOWN, None, threshold, self.why_none(needs), severity)

    def judged(self, check: Check, needs: list[str]) -> Check:
        """`check`, judged on the observed sources of `needs`: a pass is unknown while a
        configured source of the line was not observed (said either way)."""
        unseen = self.unseen(needs)
        if not unseen:
            return check
        said = "; ".join(f"not observed: {self.why_unseen(n)}" for n in unseen)
        status = check.status if check.status == FAIL else UNKNOWN
        return Check(
            check.key,
            check.name,
            status,
            check.value,
            check.threshold,
            f"{check.detail}; {said}",
            check.severity,
            check.figures,
        )


def _seen(
    store: Any,
    target: str | None,
    sources: SourceSettings | None,
    start: datetime,
    end: datetime,
) -> _Seen:
    """What the settings and the store say of the sources of `target` (None: every
    target's together) for [start, end]."""
    return _seen_of(store, None if target is None else [target], sources, start, end)[target]


def _seen_of(
    store: Any,
    targets: list[str] | None,
    sources: SourceSettings | None,
    start: datetime,
    end: datetime,
) -> dict[str | None, _Seen]:
    """`_Seen` of each of `targets` (None: one, of every target together, keyed None), in
    the same few reads whatever the number of targets."""
    keys: list[str | None] = list(targets) if targets is not None else [None]
    configured = set(sources.configured()) if sources is not None else set()
    if getattr(store, "engine", None) is None:  # a reader that is not a Store: nothing
        empty = pd.DataFrame(columns=tables.RUN_COLUMNS)
        return {k: _Seen(set(configured), set(), empty, {}, start, end) for k in keys}
    # the window's collections, one at its end included (`views.collected`)
    runs = source_runs_of(store, targets, start, end + timedelta(milliseconds=1))
    last = last_collections(store, targets, end)
    history: dict[str | None, set[str]] = {}
    if sources is None:  # no settings (a library call): what the store ever collected
        if targets is None:
            history[None] = collected_sources(store, None)
        else:
            history.update(collected_sources_of(store, targets))
    out: dict[str | None, _Seen] = {}
    for key in keys:
        mine = runs if key is None else runs[runs["target"] == key]
        mine = mine.drop(columns="target").reset_index(drop=True)
        observed = {n for n in ENABLE if collected(mine, n, start, end)}
        said = configured if sources is not None else history.get(key, set()) & set(ENABLE)
        out[key] = _Seen(set(said), observed, mine, last.get(key, {}), start, end)
    return out


def unobserved(
    store: Any,
    start: datetime,
    end: datetime,
    targets: list[str],
    *,
    sources: SourceSettings | None = None,
) -> dict[str, dict[str, str]]:
    """For each of `targets`: those of Sentry, the logs and pm2 NOT collected successfully
    in [start, end] (a collection at the end counts), each with why, as the checklist's
    lines say it (not collected in the window, failing at each collection, or not
    configured); a source collected in the window is absent, whatever the settings.
    `sources`: the settings (None: the sources the store ever collected for the target).
    The alert rules' notion of a source they can judge (`alerts.rules_sources`); the reads
    are the same few for any number of targets."""
    start, end = parse_time(start), parse_time(end)
    seen = _seen_of(store, list(targets), sources, start, end)
    return {
        str(t): {n: s.why_none([n]) for n in ENABLE if n not in s.observed} for t, s in seen.items()
    }


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
    seen = _seen(store, target, sources, start, end)
    samples = None
    if "pm2" in seen.configured | seen.observed and getattr(store, "engine", None) is not None:
        samples = tables.pm2_samples(store, target, start, end)
        if not samples.empty:  # samples answer for themselves: pm2 was read in the window
            seen.observed.add("pm2")
    out: dict[str, Check] = {}

    # --- CPU usage acceptable
    key, name, limit = "cpu", "CPU usage acceptable", th.cpu_percent / 100.0
    check = seen.unknown(key, name, ["pm2"], limit, "warning")
    if check is None:
        if samples is None or samples.empty or samples["cpu"].dropna().empty:
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
    key, name, needs = "critical_errors", "No critical errors", ["sentry", "logs"]
    check = seen.unknown(key, name, needs, 0, "critical")
    if check is None:
        parts, total = [], 0
        if "sentry" in seen.observed:
            issues = tables.sentry_issues(store, target, seen_since=start)
            fatal = issues[
                (issues["level"] == "fatal")
                & (issues["status"] == "unresolved")
                & (issues["first_seen"] < pd.Timestamp(end))
            ]
            total += len(fatal)
            parts.append(fmt.counted(len(fatal), "unresolved fatal Sentry issue"))
        if "logs" in seen.observed:
            fatal_lines = tables.pattern_counts(store, target, start, end, level="fatal")
            count = int(fatal_lines["count"].sum()) if not fatal_lines.empty else 0
            total += count
            parts.append(
                f"{fmt.counted(count, 'fatal log entry', 'fatal log entries')} "
                "(FATAL ERROR, Unhandled, heap out of memory)"
            )
        check = seen.judged(
            Check(key, name, PASS if total == 0 else FAIL, total, 0, "; ".join(parts), "critical"),
            needs,
        )
    out[key] = check

    # --- No new error patterns
    key, name = "new_error_patterns", "No new error patterns"
    check = seen.unknown(key, name, needs, 0, "warning")
    if check is None:
        parts, total = [], 0
        if "logs" in seen.observed:
            new = new_error_log_patterns(store, target, start, end)
            total += len(new)
            text = fmt.counted(len(new), "new error log pattern")
            if new:
                text += f" (first: {str(new[0]['template'])[:120]})"
            parts.append(text)
        if "sentry" in seen.observed:
            issues = tables.sentry_issues(
                store, target, first_seen_since=start, first_seen_until=end
            )
            issues = issues[issues["level"].isin(["error", "fatal"])]
            total += len(issues)
            # the level said: the review counts every new issue, warnings too (QA 23)
            parts.append(fmt.counted(len(issues), "new Sentry issue") + " of level error or fatal")
        check = seen.judged(
            Check(key, name, PASS if total == 0 else FAIL, total, 0, "; ".join(parts)), needs
        )
    out[key] = check

    # --- Errors resolved promptly
    key, name = "errors_resolved", "Errors resolved promptly"
    days = th.errors_resolve_within
    threshold = days  # raw, as the other lines' (JSON); the text says "< 7 days"
    check = seen.unknown(key, name, ["sentry"], threshold, "warning")
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
