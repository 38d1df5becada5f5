"""Incidents the scrapes cannot see, from the sources (issue 10):

    log_burst     consecutive hours with at least `log_burst_min` error-level log entries
                  and `log_burst_factor` times the median hour of them; critical when fatal
                  entries are among them. The median hour is that of the `BASELINE` (30
                  days) before the window's end, or of the window when it is longer, from
                  the first stored log entry on and up to now: a short window (a
                  postmortem's 3 hours) is not its own baseline, so the burst `lsops
                  incidents` lists is found by the postmortem it suggests. A burst lies in
                  the window: cut at its start and end, its counts over the part inside
    pm2_restart   a rise of pm2's restart counter between two pm2 samples with no restart
                  seen by the scrapes (a new `uptime.start`) between them: the process
                  crashed and came back between two scrapes

Rows in the columns of `analysis.incidents` (start, end, duration_s, kind, severity,
detail, endpoint, ongoing), `endpoint` always None.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import fmt
from ..config import Thresholds
from ..exceptions import StoreError
from ..store import sources as tables
from ..times import parse_time, to_ms

COLUMNS = ["start", "end", "duration_s", "kind", "severity", "detail", "endpoint", "ongoing"]
HOUR_MS = 3_600_000
BASELINE = timedelta(days=30)  # the median hour's span: `lsops incidents`' default look-back


def _hourly_errors(store: Any, target: str | None, start: datetime, end: datetime) -> pd.DataFrame:
    """hour (Timestamp), errors, fatal: error-level entries per hour, in SQL."""
    t = tables.log_lines_table
    hour = (t.c.ts // HOUR_MS).label("hour")
    clauses = [
        t.c.ts >= to_ms(start),
        t.c.ts < to_ms(end),
        t.c.level.in_(["error", "fatal"]),
    ]
    if target is not None:
        clauses.append(t.c.target == target)
    fatal = func.sum(case((t.c.level == "fatal", 1), else_=0))
    query = select(hour, func.count(), fatal).where(and_(*clauses)).group_by(hour)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {exc}") from None
    df = pd.DataFrame([tuple(r) for r in rows], columns=["hour", "errors", "fatal"])
    df["hour"] = pd.to_datetime(pd.to_numeric(df["hour"]) * HOUR_MS, unit="ms", utc=True)
    return df.sort_values("hour").reset_index(drop=True)


def _first_entry(store: Any, target: str | None) -> pd.Timestamp | None:
    """The instant of the first stored log entry (of any level), None without one."""
    t = tables.log_lines_table
    query = select(func.min(t.c.ts))
    if target is not None:
        query = query.where(t.c.target == target)
    try:
        with store.engine.connect() as conn:
            first = conn.execute(query).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {exc}") from None
    return None if first is None else pd.Timestamp(int(first), unit="ms", tz="UTC")


def _median_hour(
    store: Any, target: str | None, start: datetime, end: datetime
) -> tuple[float, int, pd.Timestamp]:
    """The median of the error-level entries an hour (quiet hours count as 0) over the
    `BASELINE` before `end` (the window when longer), from the hour of the first stored
    entry on and up to now: the median, the hours it is over and the end of that span."""
    hi = pd.Timestamp(min(end, datetime.now(UTC)))
    lo = pd.Timestamp(min(start, end - BASELINE))
    first = _first_entry(store, target)
    if first is not None:
        lo = max(lo, first.floor("h"))
    if hi <= lo:  # a window before the first entry, or after now: the window itself
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    hourly = _hourly_errors(store, target, lo.to_pydatetime(), hi.to_pydatetime())
    hours = max(1, -(-(to_ms(hi) - to_ms(lo.floor("h"))) // HOUR_MS))
    counts = list(hourly["errors"].astype(int)) + [0] * max(0, hours - len(hourly))
    return float(pd.Series(counts).median()), hours, hi


def log_burst_incidents(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    th = thresholds or Thresholds()
    start, end = parse_time(start), parse_time(end)  # ISO strings, naive datetimes: UTC
    hourly = _hourly_errors(store, target, start, end)
    if hourly.empty:
        return pd.DataFrame(columns=COLUMNS)
    median, hours, until = _median_hour(store, target, start, end)
    limit = max(float(th.log_burst_min), th.log_burst_factor * median)
    baseline = (
        f"the median hour {median:g} of the {fmt.counted(hours, 'hour')} to {fmt.instant(until)}"
    )
    hot = hourly[hourly["errors"] >= limit]
    # a burst lies in the window: it starts at the window's start at the earliest, and one
    # whose last hour is not over at the window's end (or now) ends there, ongoing
    window = (pd.Timestamp(start), pd.Timestamp(min(end, datetime.now(UTC))))
    rows = []
    run: list[Any] = []
    for r in hot.itertuples():
        if run and r.hour - run[-1].hour > pd.Timedelta(hours=1):
            rows.append(_burst(store, target, run, limit, baseline, window))
            run = []
        run.append(r)
    if run:
        rows.append(_burst(store, target, run, limit, baseline, window))
    return pd.DataFrame(rows, columns=COLUMNS)


def _burst(
    store: Any,
    target: str | None,
    run: list[Any],
    limit: float,
    baseline: str,
    window: tuple[pd.Timestamp, pd.Timestamp],
) -> dict:
    first = max(run[0].hour, window[0])
    whole = run[-1].hour + pd.Timedelta(hours=1)
    last = max(min(whole, window[1]), first)
    errors = sum(int(r.errors) for r in run)  # counted in the window: in [first, last)
    fatal = sum(int(r.fatal or 0) for r in run)
    top = tables.pattern_counts(store, target, first, last, level="error")
    span = (last - first).total_seconds()
    lasted = f"{span / 3600:g} h" if span % 3600 == 0 else fmt.duration(span)
    detail = (
        f"{errors} error log entries in {lasted} ({fatal} fatal; a burst is >= {limit:g} "
        f"an hour, {baseline})"
    )
    if not top.empty:
        best = top.sort_values(["count", "pattern_id"], ascending=[False, True]).iloc[0]
        template = tables.templates_of(store, target, [int(best["pattern_id"])]).get(
            int(best["pattern_id"]), ""
        )
        detail += f"; top pattern ({int(best['count'])}): {template[:160]}"
    return {
        "start": first,
        "end": last,
        "duration_s": span,
        "kind": "log_burst",
        "severity": "critical" if fatal else "warning",
        "detail": detail,
        "endpoint": None,
        "ongoing": bool(whole > window[1]),
    }


def pm2_restart_incidents(
    store: Any,
    start: datetime,
    end: datetime,
    *,
    target: str | None = None,
    margin: timedelta = timedelta(minutes=1),
) -> pd.DataFrame:
    return unseen_pm2_restarts(store, start, end, target=target, margin=margin)[0]


def unseen_pm2_restarts(
    store: Any,
    start: datetime,
    end: datetime,
    *,
    target: str | None = None,
    margin: timedelta = timedelta(minutes=1),
) -> tuple[pd.DataFrame, int]:
    """The pm2_restart incidents (rises of pm2's restart counter no scrape saw a restart
    for) and how many restarts they hold (one row may hold several)."""
    start, end = parse_time(start), parse_time(end)  # ISO strings, naive datetimes: UTC
    samples = tables.pm2_samples(store, target, start, end)
    if samples.empty:
        return pd.DataFrame(columns=COLUMNS), 0
    resets = store.resets(start, end + margin, target=target)
    seen = (
        pd.to_datetime(resets["ts"], utc=True).tolist()
        if resets is not None and not resets.empty
        else []
    )
    rows = []
    restarts = 0
    for _, proc in samples.dropna(subset=["restarts"]).groupby("pm_id", dropna=False):
        proc = proc.sort_values("ts")
        before = None
        for r in proc.itertuples():
            if before is not None:
                rose = int(r.restarts) - int(before.restarts)
                rose = rose if rose >= 0 else int(r.restarts)
                if rose > 0 and not any(before.ts - margin <= s <= r.ts + margin for s in seen):
                    restarts += rose
                    rows.append(
                        {
                            "start": before.ts,
                            "end": r.ts,
                            "duration_s": (r.ts - before.ts).total_seconds(),
                            "kind": "pm2_restart",
                            "severity": "warning",
                            "detail": (
                                f"pm2 restarted {r.app} {fmt.counted(rose, 'time')} between "
                                "two samples "
                                f"(status {r.status}, {int(r.unstable_restarts or 0)} unstable "
                                "restarts); the scrapes saw no restart"
                            ),
                            "endpoint": None,
                            "ongoing": False,
                        }
                    )
            before = r
    return pd.DataFrame(rows, columns=COLUMNS), restarts


def source_incidents(
    store: Any,
    start: datetime | None,
    end: datetime | None,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
    kinds: tuple[str, ...] = ("log_burst", "pm2_restart"),
) -> pd.DataFrame:
    """Both kinds (those in `kinds`) in [start, end). A store reader without the source
    tables (a stand-in that is not a `Store`) has none."""
    if getattr(store, "engine", None) is None:
        return pd.DataFrame(columns=COLUMNS)
    lo = parse_time(start) if start is not None else datetime(1970, 1, 2, tzinfo=UTC)
    hi = parse_time(end) if end is not None else datetime.now(UTC)
    parts = []
    if "log_burst" in kinds:
        parts.append(log_burst_incidents(store, lo, hi, thresholds, target=target))
    if "pm2_restart" in kinds:
        parts.append(pm2_restart_incidents(store, lo, hi, target=target))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True)
