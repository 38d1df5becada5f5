"""What the reports say about alerting (issue 11, point 5), from the stored alert history.

    alert_episodes(store, start, end, target)   one row per firing episode begun in [start, end)
    detection(store, impact_start, impact_end, start, end, target)
                                                 the postmortem's Detection: the first alert of
                                                 the window against the start of impact
    month_alerts(store, start, end, target, incidents)
                                                 the monthly review: the alerts of the month
                                                 (fired, duration, time to resolve, pages per
                                                 week) and the incidents no alert caught

An episode starts at a `firing` event and ends at the next `resolved` of the same alert
(key); one still firing at the end has no `resolved_at` (`ongoing`). `duration_s` is
resolved - fired (the time to resolve). An incident is caught when an episode STARTED
within [incident start - `CATCH_GRACE_S`, incident end + `CATCH_GRACE_S`] (the burn-rate
alerts need a few scrapes of evidence: 10 minutes of grace); an alert already firing for
something earlier did not detect it (a ticket left firing for days catches nothing new).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["CATCH_GRACE_S", "EPISODE_COLUMNS", "alert_episodes", "detection", "month_alerts"]

CATCH_GRACE_S = 600.0
EPISODE_COLUMNS = ["name", "key", "severity", "fired_at", "resolved_at", "duration_s",
                   "ongoing", "notified", "summary"]  # fmt: skip
WEEK_S = 7 * 86400.0


def alert_episodes(
    store: Any, start: datetime | None, end: datetime | None, target: str | None = None
) -> pd.DataFrame:
    """The firing episodes begun in [start, end) (EPISODE_COLUMNS), oldest first.
    A store without alert history (or a reader that is not a Store) gives none."""
    from ..store.alerts import alert_events

    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in EPISODE_COLUMNS})
    if not hasattr(store, "engine"):
        return empty
    events = alert_events(store, target, start, None)
    rows: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for e in events.to_dict("records"):
        if e["state"] == "firing" and e["key"] not in open_:
            if end is not None and e["ts"] >= pd.Timestamp(end):
                continue
            open_[e["key"]] = {"name": e["name"], "key": e["key"], "severity": e["severity"],
                               "fired_at": e["ts"], "resolved_at": pd.NaT,
                               "notified": bool(e["notified"]) if pd.notna(e["notified"]) else False,
                               "summary": e["summary"]}  # fmt: skip
        elif e["state"] == "resolved" and e["key"] in open_:
            episode = open_.pop(e["key"])
            episode["resolved_at"] = e["ts"]
            rows.append(episode)
    rows += list(open_.values())
    if not rows:
        return empty
    df = pd.DataFrame(rows).sort_values("fired_at", kind="stable").reset_index(drop=True)
    df["ongoing"] = df["resolved_at"].isna()
    df["duration_s"] = (df["resolved_at"] - df["fired_at"]).dt.total_seconds()
    return df[EPISODE_COLUMNS]


def detection(
    store: Any,
    impact_start: Any,
    impact_end: Any,
    start: datetime,
    end: datetime,
    target: str | None = None,
) -> dict[str, Any]:
    """The first alert fired in [start, end) (the first NOTIFIED one, when one was: the
    moment someone was told) against the start of impact: alert, severity,
    fired_at, resolved_at, time_to_detect_s (fired - impact start), time_to_recover_s
    (resolved - impact start), notified, and `message` (one line for the report)."""
    from .. import fmt

    episodes = alert_episodes(store, start, end, target)
    out: dict[str, Any] = {"alert": None, "severity": None, "fired_at": None,
                           "resolved_at": None, "time_to_detect_s": None,
                           "time_to_recover_s": None, "notified": None, "alerts": len(episodes)}  # fmt: skip
    if episodes.empty:
        out["message"] = "No alert fired in this window: the incident was not detected by lsops."
        return out
    told = episodes[episodes["notified"].astype(bool)]
    first = (told if not told.empty else episodes).iloc[0]  # the first that told someone
    out.update(alert=first["name"], severity=first["severity"], fired_at=first["fired_at"],
               notified=bool(first["notified"]))  # fmt: skip
    if pd.notna(first["resolved_at"]):
        out["resolved_at"] = first["resolved_at"]
    text = f"First alert: {first['name']} ({first['severity']}) at {fmt.instant(first['fired_at'])}"
    if impact_start is not None and not pd.isna(impact_start):
        impact = pd.Timestamp(impact_start)
        out["time_to_detect_s"] = (first["fired_at"] - impact).total_seconds()
        text += f", {fmt.duration(max(0.0, out['time_to_detect_s']))} after the start of impact"
        if out["resolved_at"] is not None:
            out["time_to_recover_s"] = (out["resolved_at"] - impact).total_seconds()
    if out["resolved_at"] is not None:
        text += f"; resolved at {fmt.instant(out['resolved_at'])}"
        if out["time_to_recover_s"] is not None:
            text += f" ({fmt.duration(out['time_to_recover_s'])} after the start of impact)"
    else:
        text += "; still firing at the end of the window"
    out["message"] = text + ("." if first["notified"] else " (not notified on its own).")
    return out


def month_alerts(
    store: Any,
    start: datetime,
    end: datetime,
    target: str | None = None,
    incidents: pd.DataFrame | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The alerts of [start, end): episodes (a DataFrame), fired, by_name [{name, severity,
    fired, total_s, mean_resolve_s, still_firing}], pages (critical episodes notified),
    pages_per_week, and uncaught: the incidents (analysis.incidents rows, restarts aside)
    no alert caught. `total_s` is the time firing within the period: an episode still
    firing (`still_firing` counts them) up to the end or `now`, whichever is earlier, one
    resolved after the end up to the end."""
    from ..times import utcnow

    episodes = alert_episodes(store, start, end, target)
    until = min(_utc(end), _utc(now if now is not None else utcnow()))
    weeks = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / WEEK_S
    pages = 0  # critical episodes that were notified: someone was paged
    if not episodes.empty:
        pages = int(
            ((episodes["severity"] == "critical") & episodes["notified"].astype(bool)).sum()
        )
    by_name = []
    if not episodes.empty:
        resolved = pd.to_datetime(episodes["resolved_at"], utc=True)  # all NaT: naive
        stop = resolved.where(resolved < until, until)
        firing_s = (stop - episodes["fired_at"]).dt.total_seconds().clip(lower=0.0)
        for (name, severity), part in episodes.groupby(["name", "severity"], sort=True):
            by_name.append({"name": name, "severity": severity, "fired": int(len(part)),
                            "total_s": float(firing_s[part.index].sum()),
                            "mean_resolve_s": float(part["duration_s"].mean())
                            if part["duration_s"].notna().any() else None,
                            "still_firing": int(part["ongoing"].sum())})  # fmt: skip
    uncaught = pd.DataFrame()
    if incidents is not None and not incidents.empty:
        real = incidents[incidents["kind"] != "restart"]
        caught = [_caught(row, episodes, end) for row in real.to_dict("records")]
        uncaught = real[[not c for c in caught]].reset_index(drop=True)
    return {
        "episodes": episodes,
        "fired": int(len(episodes)),
        "by_name": by_name,
        "pages": pages,
        "pages_per_week": pages / weeks if weeks > 0 else None,
        "uncaught": uncaught,
    }


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _caught(incident: dict[str, Any], episodes: pd.DataFrame, end: datetime) -> bool:
    if episodes.empty:
        return False
    grace = pd.Timedelta(seconds=CATCH_GRACE_S)
    lo = pd.Timestamp(incident["start"]) - grace
    hi = pd.Timestamp(incident["end"] if pd.notna(incident["end"]) else end) + grace
    return bool(((episodes["fired_at"] >= lo) & (episodes["fired_at"] <= hi)).any())
