"""What `lsops errors`, `lsops logs` and the alerts see of the sources.

- `errors_view`: the Sentry issues seen in a window, asked of Sentry now (worst first),
  with the monitoring-plugin exit code of `lsops errors`.
- `log_patterns`: the stored log entries of a window grouped by pattern, with the
  baseline (the window of the same length before; None when the logs of that window are
  not known) and `new` (no line of the pattern stored before the window);
  `lines_around`: the entries a few minutes around an instant (the nearest ones when
  there are too many; `count_around`: how many there are).
- `new_fatal_sentry_issues`, `new_error_log_patterns`: for the alert rules (issue 11).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from ..store import sources as tables
from .common import LEVELS, SourceError, level_rank
from .sentry import (
    SentryClient,
    events_in,
    issue_row,
    parse_instant,
    stats_buckets,
    stats_period_for,
)
from .settings import SentrySettings

AROUND = timedelta(minutes=5)  # `lsops logs --around T`: T - 5 min .. T + 5 min
STATS_REACH = timedelta(days=14)  # Sentry's longest stats period
BUCKET = {"24h": 3600, "14d": 86400}  # seconds per stats bucket: hourly, daily


def _bucket_span(
    issues: list[dict[str, Any]], start: datetime, end: datetime, size: int
) -> tuple[datetime, datetime]:
    """The window widened to the whole stats buckets it overlaps (a bucket cannot be
    split), cut to the buckets Sentry returned: the span `events` are counted in."""
    lo = math.floor(start.timestamp() / size) * size
    hi = math.ceil(end.timestamp() / size) * size
    stamps = [ts for issue in issues for ts, _ in stats_buckets(issue)]
    if stamps:
        lo, hi = max(lo, min(stamps)), max(min(hi, max(stamps) + size), lo)
    return datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --- lsops errors ---------------------------------------------------------------------------


def errors_view(
    settings: SentrySettings,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    transport: Any = None,
) -> dict[str, Any]:
    """The Sentry issues seen in [start, end), worst first, and the exit code:
    2 an unresolved fatal issue seen, 1 a new unresolved error issue, 0 otherwise.
    Raises SourceError when Sentry is not configured or does not answer.

    Seen: first or last seen in the window, or events in it. Sentry's stats are hourly
    buckets (daily beyond 24 h) that cannot be split, so `events` counts the whole buckets
    the window overlaps, from `events_start` to `events_end` (the window widened to whole
    buckets, cut to the buckets Sentry returned); None beyond the stats' 14 days."""
    kw = {"transport": transport} if transport is not None else {}
    period = stats_period_for(start, now)
    with SentryClient(settings, **kw) as client:
        issues = client.issues(since=start, stats_period=period)
    events_start, events_end = _bucket_span(issues, start, end, BUCKET[period])
    counted = now - start <= STATS_REACH and events_start < events_end
    found = []
    for issue in issues:
        row = issue_row(issue)
        first = parse_instant(issue.get("firstSeen"))
        last = parse_instant(issue.get("lastSeen"))
        events = events_in(issue, events_start, events_end) if counted else None
        seen = (
            (last is not None and start <= last < end)
            or (first is not None and start <= first < end)
            or bool(events)
        )
        if not seen or (first is not None and first >= end) or (last is not None and last < start):
            continue
        unresolved = row["status"] == "unresolved"
        found.append(
            {
                "id": row["issue_id"],
                "short_id": row["short_id"],
                "title": row["title"],
                "culprit": row["culprit"],
                "level": row["level"],
                "status": row["status"],
                "events": events,
                "users": row["users"],
                "first_seen": first,
                "last_seen": last,
                "new": first is not None and start <= first < end,
                "regressed": row["substatus"] == "regressed" or bool(issue.get("isRegressed")),
                "unresolved_for": (end - first).total_seconds() if unresolved and first else None,
                "permalink": row["permalink"],
            }
        )
    found.sort(
        key=lambda i: (
            -level_rank(i["level"]),
            i["status"] != "unresolved",
            not i["new"],
            -(i["events"] or 0),
            i["id"],
        )
    )
    fatal = [i for i in found if i["level"] == "fatal" and i["status"] == "unresolved"]
    new_errors = [
        i for i in found if i["level"] == "error" and i["status"] == "unresolved" and i["new"]
    ]
    code = 2 if fatal else 1 if new_errors else 0
    return {
        "project": f"{settings.org}/{settings.project}",
        "start": start,
        "end": end,
        "events_counted": counted,
        # the whole stats buckets the events were counted in (None when not counted)
        "events_start": events_start if counted else None,
        "events_end": events_end if counted else None,
        "exit_code": code,
        "status": ["OK", "WARNING", "CRITICAL"][code],
        "fatal": len(fatal),
        "new_errors": len(new_errors),
        "issues": found,
    }


# --- lsops logs -----------------------------------------------------------------------------


def log_patterns(
    store: Any,
    target: str | None,
    start: datetime,
    end: datetime,
    *,
    level: str | None = None,
    grep: str | None = None,
) -> list[dict[str, Any]]:
    """The window's log entries by pattern, worst level first then new then by count:
    pattern_id, template, level, count, baseline, first_seen, last_seen, new, example."""
    if level is not None and level not in LEVELS:
        raise SourceError("logs", f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    now = tables.pattern_counts(store, target, start, end, level=level, grep=grep)
    if now.empty:
        return []
    before_start = start - (end - start)
    before = tables.pattern_counts(store, target, before_start, start, level=level, grep=grep)
    baseline = {int(r.pattern_id): int(r.count) for r in before.itertuples()}
    known = _logs_known_before(store, target, before_start, start)
    ids = [int(p) for p in now["pattern_id"]]
    first_seen = tables.pattern_first_seen(store, target, ids)
    templates = tables.templates_of(store, target, ids)
    examples = tables.entries_by_id(store, [int(e) for e in now["example_id"]])
    out = []
    for r in now.itertuples():
        pid = int(r.pattern_id)
        first = _ts(first_seen.get(pid))
        out.append(
            {
                "pattern_id": pid,
                "template": templates.get(pid, ""),
                "level": LEVELS[int(r.level_rank)],
                "count": int(r.count),
                "baseline": baseline.get(pid, 0) if known else None,
                "first_seen": first,
                "last_seen": _ts(r.last),
                "new": first is not None and first >= pd.Timestamp(start),
                "example": examples.get(int(r.example_id), ""),
            }
        )
    out.sort(key=lambda p: (-level_rank(p["level"]), not p["new"], -p["count"], p["pattern_id"]))
    return out


def collected(runs: pd.DataFrame, name: str, start: datetime, end: datetime) -> bool:
    """Whether `runs` (`source_runs`) holds a successful collection of `name` in [start,
    end] (a collection at the end counts): the checklist's "was it collected" rule."""
    return not runs_of(runs, name, start, end, ok=True).empty


def runs_of(
    runs: pd.DataFrame, name: str, start: datetime, end: datetime, *, ok: bool
) -> pd.DataFrame:
    """The collections of `name` in `runs` (`source_runs`) in [start, end] that succeeded
    (`ok`) or failed."""
    if runs.empty:
        return runs
    mine = runs[(runs["source"] == name) & (runs["ok"].astype(bool) == ok)]
    return mine[(mine["ts"] >= pd.Timestamp(start)) & (mine["ts"] <= pd.Timestamp(end))]


def _logs_known_before(store: Any, target: str | None, start: datetime, end: datetime) -> bool:
    """Whether the logs of [start, end) are known (a pattern absent from them: 0 lines):
    the logs were collected in the window (`collected`), or the store holds an entry of
    the target from before `end` (a collection reads the files back from where it left
    them, or from their beginning: the lines carry their own instants)."""
    runs = tables.source_runs(store, target, start, end + timedelta(milliseconds=1))
    if collected(runs, "logs", start, end):
        return True
    return not tables.log_lines(store, target, None, end, limit=1).empty


def lines_around(
    store: Any,
    target: str | None,
    at: datetime,
    *,
    level: str | None = None,
    grep: str | None = None,
    margin: timedelta = AROUND,
    limit: int = 2000,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """The stored entries from `at - margin` to `at + margin`, oldest first; when there
    are more than `limit`, the `limit` nearest to `at` (`count_around` counts them all;
    `total`: its count, when the caller took it already)."""
    if total is None:
        total = count_around(store, target, at, level=level, grep=grep, margin=margin)
    reach = margin
    if total > limit:
        # the smallest reach (to the millisecond) around `at` holding `limit` entries
        lo, hi = 0, int(margin / timedelta(milliseconds=1))
        while lo < hi:
            mid = (lo + hi) // 2
            span = timedelta(milliseconds=mid)
            if count_around(store, target, at, level=level, grep=grep, margin=span) >= limit:
                hi = mid
            else:
                lo = mid + 1
        reach = timedelta(milliseconds=lo)
    frame = tables.log_lines(
        store, target, at - reach, at + reach, level=level, grep=grep, limit=None
    )
    if len(frame) > limit:  # ties at the edges of the reach: the nearest, then the oldest
        far = (frame["ts"] - pd.Timestamp(at)).abs()
        frame = frame.assign(far=far).sort_values(["far", "ts", "id"]).head(limit)
        frame = frame.sort_values(["ts", "id"])
    return [
        {
            "ts": r.ts,
            "estimated": bool(r.estimated),
            "level": r.level,
            "pattern_id": int(r.pattern_id),
            "source": r.source,
            "text": r.text,
        }
        for r in frame.itertuples()
    ]


def count_around(
    store: Any,
    target: str | None,
    at: datetime,
    *,
    level: str | None = None,
    grep: str | None = None,
    margin: timedelta = AROUND,
) -> int:
    """How many stored entries `lines_around` chooses from (counted in SQL)."""
    counts = tables.pattern_counts(store, target, at - margin, at + margin, level=level, grep=grep)
    return int(counts["count"].sum()) if not counts.empty else 0


# --- for the alert rules (issue 11) ---------------------------------------------------------


def new_fatal_sentry_issues(
    store: Any, target: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The Sentry issues of level `fatal`, first seen in [since, until) and unresolved at
    the last collection, oldest first, from the store (`lsops collect` keeps them). Each:
    `id`, `short_id`, `title`, `level`, `first_seen` (Timestamp, UTC), `permalink`. Titles
    and permalinks are untrusted text: escape them where rendered."""
    frame = tables.sentry_issues(store, target, first_seen_since=since, first_seen_until=until)
    chosen = frame[(frame["level"] == "fatal") & (frame["status"] == "unresolved")]
    return [
        {
            "id": str(r.issue_id),
            "short_id": r.short_id,
            "title": r.title,
            "level": r.level,
            "first_seen": r.first_seen,
            "permalink": r.permalink,
        }
        for r in chosen.itertuples()
    ]


def new_error_log_patterns(
    store: Any, target: str | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The log patterns with entries of level `error` or `fatal` in [since, until) and no
    entry at all (any level) before `since`, most frequent first, from the store. Each:
    `pattern_id`, `template`, `count` (error-level entries in the window), `first_seen`
    (Timestamp, UTC), `example` (the first such entry, stack trace included; untrusted
    text)."""
    found = log_patterns(store, target, since, until, level="error")
    return [
        {
            "pattern_id": p["pattern_id"],
            "template": p["template"],
            "count": p["count"],
            "first_seen": p["first_seen"],
            "example": p["example"],
        }
        for p in sorted(found, key=lambda p: (-p["count"], p["pattern_id"]))
        if p["new"]
    ]
