"""Incidents the scrapes cannot see, from the sources (issue 10):

    log_burst     consecutive hours with at least `log_burst_min` error-level log entries
                  and `log_burst_factor` times the window's median hour of them; critical
                  when fatal entries are among them
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


def log_burst_incidents(
    store: Any,
    start: datetime,
    end: datetime,
    thresholds: Thresholds | None = None,
    *,
    target: str | None = None,
) -> pd.DataFrame:
    th = thresholds or Thresholds()
    hourly = _hourly_errors(store, target, start, end)
    if hourly.empty:
        return pd.DataFrame(columns=COLUMNS)
    hours = max(1, int((to_ms(end) - to_ms(start)) // HOUR_MS))
    counts = list(hourly["errors"].astype(int)) + [0] * max(0, hours - len(hourly))
    median = float(pd.Series(counts).median())
    limit = max(float(th.log_burst_min), th.log_burst_factor * median)
    hot = hourly[hourly["errors"] >= limit]
    rows = []
    run: list[Any] = []
    for r in hot.itertuples():
        if run and r.hour - run[-1].hour > pd.Timedelta(hours=1):
            rows.append(_burst(store, target, run, median, limit))
            run = []
        run.append(r)
    if run:
        rows.append(_burst(store, target, run, median, limit))
    # a burst whose last hour is not over at the window's end (or now) ends there, ongoing
    cap = pd.Timestamp(min(parse_time(end), datetime.now(UTC)))
    for row in rows:
        if row["end"] > cap:
            row["end"], row["ongoing"] = max(cap, row["start"]), True
            row["duration_s"] = (row["end"] - row["start"]).total_seconds()
    return pd.DataFrame(rows, columns=COLUMNS)


def _burst(store: Any, target: str | None, run: list[Any], median: float, limit: float) -> dict:
    first = run[0].hour
    last = run[-1].hour + pd.Timedelta(hours=1)
    errors = sum(int(r.errors) for r in run)
    fatal = sum(int(r.fatal or 0) for r in run)
    top = tables.pattern_counts(store, target, first, last, level="error")
    detail = (
        f"{errors} error log entries in {len(run)} h ({fatal} fatal; a burst is >= {limit:g} "
        f"an hour, the window's median hour {median:g})"
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
        "duration_s": (last - first).total_seconds(),
        "kind": "log_burst",
        "severity": "critical" if fatal else "warning",
        "detail": detail,
        "endpoint": None,
        "ongoing": False,
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
