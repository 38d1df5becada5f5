"""The postmortem's timeline events from the sources (issue 10), in its columns (ts, event,
detail, endpoint):

    sentry issue        an issue first seen in the window
    sentry spike        an older issue with at least SPIKE_FACTOR times (and SPIKE_MIN)
                        the events of the same length of time before the window; Sentry
                        counts by the hour, so both are the whole hours the window
                        overlaps (as `lsops errors`), said when they reach beyond it
    log pattern         each warning-or-worse log pattern of the window (the TOP most
                        frequent): its count, whether new, its first and last lines
    pm2 restart         a rise of pm2's restart counter between two samples

and the top new error pattern of the window (what the postmortem's summary names).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from .. import fmt
from ..store import sources as tables
from .views import log_patterns

COLUMNS = ["ts", "event", "detail", "endpoint"]
TOP = 10
SPIKE_FACTOR = 3.0
SPIKE_MIN = 5


def _clip(text: Any, limit: int = 200) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def source_timeline(
    store: Any, start: datetime, end: datetime, target: str | None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """(timeline rows, the top new error pattern {pattern_id, template, count} or None)."""
    if getattr(store, "engine", None) is None:
        return pd.DataFrame(columns=COLUMNS), None
    rows: list[dict[str, Any]] = []
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    issues = tables.sentry_issues(store, target, seen_since=start)
    if not issues.empty:
        # Sentry's hourly buckets cannot be split: the window's whole hours, and as many before
        first_hour, after_hour = lo.floor("h"), hi.ceil("h")
        now = tables.sentry_events(store, target, first_hour, after_hour)
        before = tables.sentry_events(
            store, target, first_hour - (after_hour - first_hour), first_hour
        )
        counted = (
            "in the window"
            if (first_hour, after_hour) == (lo, hi)
            else "in the window's whole hours "
            f"{fmt.instant(first_hour)} .. {fmt.instant(after_hour)}"
        )
        in_window = dict(zip(now["issue_id"], now["events"], strict=False))
        earlier = dict(zip(before["issue_id"], before["events"], strict=False))
        for r in issues.itertuples():
            if r.first_seen is None or pd.isna(r.first_seen) or r.first_seen >= hi:
                continue
            label = f"{r.short_id} ({r.level}, {r.status}): {_clip(r.title, 160)}"
            if r.first_seen >= lo:
                rows.append(
                    {"ts": r.first_seen, "event": "sentry issue", "detail": f"first seen: {label}"}
                )
                continue
            n, m = int(in_window.get(r.issue_id, 0) or 0), int(earlier.get(r.issue_id, 0) or 0)
            if n >= SPIKE_MIN and n >= SPIKE_FACTOR * max(m, 1):
                rows.append(
                    {
                        "ts": max(lo, min(r.last_seen, hi)),
                        "event": "sentry spike",
                        "detail": f"{n} events {counted} ({m} before it): {label}",
                    }
                )
    patterns = [p for p in log_patterns(store, target, start, end, level="warning")]
    patterns.sort(key=lambda p: (-p["count"], p["pattern_id"]))
    for p in patterns[:TOP]:
        last = tables.log_lines(
            store, target, p["last_seen"], p["last_seen"] + pd.Timedelta(milliseconds=1)
        )
        last = last[last["pattern_id"] == p["pattern_id"]]
        last_line = str(last["text"].iloc[-1]).split("\n", 1)[0] if not last.empty else ""
        first_line = str(p["example"]).split("\n", 1)[0]
        rows.append(
            {
                "ts": p["first_seen"]
                if p["new"]
                else _first_in_window(store, target, p, start, end),
                "event": "log pattern",
                "detail": (
                    f"{p['level']} x{p['count']}{' (new)' if p['new'] else ''}: "
                    f"{_clip(p['template'], 160)}; first: {_clip(first_line)}; last "
                    f"{fmt.instant(p['last_seen'], seconds=True)}: {_clip(last_line)}"
                ),
            }
        )
    samples = tables.pm2_samples(store, target, start, end)
    for _, proc in samples.dropna(subset=["restarts"]).groupby("pm_id", dropna=False):
        proc = proc.sort_values("ts")
        values = proc["restarts"].astype(int).tolist()
        for (a, b), ts in zip(
            zip(values, values[1:], strict=False), proc["ts"].iloc[1:], strict=False
        ):
            rose = b - a if b >= a else b
            if rose > 0:
                rows.append(
                    {
                        "ts": ts,
                        "event": "pm2 restart",
                        "detail": (
                            f"pm2 counted {fmt.counted(rose, 'restart')} of the app since the "
                            "sample before"
                        ),
                    }
                )
    news = [p for p in log_patterns(store, target, start, end, level="error") if p["new"]]
    top = max(news, key=lambda p: (p["count"], -p["pattern_id"]), default=None)
    top_new = (
        {"pattern_id": top["pattern_id"], "template": top["template"], "count": top["count"]}
        if top
        else None
    )
    if not rows:
        return pd.DataFrame(columns=COLUMNS), top_new
    out = pd.DataFrame(rows)
    out["endpoint"] = None
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out[COLUMNS], top_new


def _first_in_window(
    store: Any, target: str | None, p: dict[str, Any], start: datetime, end: datetime
) -> Any:
    counts = tables.pattern_counts(store, target, start, end)
    row = counts[counts["pattern_id"] == p["pattern_id"]]
    return row["first"].iloc[0] if not row.empty else pd.Timestamp(start)
