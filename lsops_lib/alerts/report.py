"""What the reports say about alerting (issue 11, point 5), from the stored alert history.

    alert_episodes(store, start, end, target)   one row per firing episode begun in [start, end)
                                                 (`overlapping=True`: firing at some time in it)
    detection(store, impact_start, impact_end, start, end, target)
                                                 the postmortem's Detection: the first alert of
                                                 the window against the start of impact
    month_alerts(store, start, end, target, incidents)
                                                 the monthly review: the alerts of the month
                                                 (fired, time firing within the month, time to
                                                 resolve, pages per week) and the incidents no
                                                 alert caught

An episode starts at a `firing` event and ends at the next `resolved` of the same alert
(key); one still firing at the end has no `resolved_at` (`ongoing`). `duration_s` is
resolved - fired (the time to resolve). The month lists every episode firing within it,
those begun before it too (their time clipped to the month; `fired` and `pages` count the
ones begun in it). An incident is caught when an episode STARTED within [incident start -
`CATCH_GRACE_S`, incident end + `CATCH_GRACE_S`] (the burn-rate alerts need a few scrapes
of evidence: 10 minutes of grace); an alert already firing for something earlier did not
detect it (a ticket left firing for days catches nothing new). An incident starting within
the grace of the period's start may have begun before it (the incidents of a period are
cut at its start): an episode begun before the period and firing at its start caught it.
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
    store: Any,
    start: datetime | None,
    end: datetime | None,
    target: str | None = None,
    *,
    overlapping: bool = False,
) -> pd.DataFrame:
    """The firing episodes begun in [start, end) (EPISODE_COLUMNS), oldest first;
    `overlapping`: those firing at some time in [start, end), begun before `start` too
    (the history before `start` is read to find where they began). A store without alert
    history (or a reader that is not a Store) gives none."""
    from ..store.alerts import alert_events

    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in EPISODE_COLUMNS})
    if not hasattr(store, "engine"):
        return empty
    events = alert_events(store, target, None if overlapping else start, None)
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
    if overlapping and start is not None:  # the ones over before the period began
        rows = [r for r in rows if pd.isna(r["resolved_at"]) or r["resolved_at"] > _utc(start)]
    if not rows:
        return empty
    df = pd.DataFrame(rows).sort_values("fired_at", kind="stable").reset_index(drop=True)
    df["resolved_at"] = pd.to_datetime(df["resolved_at"], utc=True)  # all NaT: naive
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
    *,
    observations: int | None = None,
) -> dict[str, Any]:
    """The first alert fired in [start, end) (the first NOTIFIED one, when one was: the
    moment someone was told) against the start of impact: alert, severity,
    fired_at, resolved_at, time_to_detect_s (fired - impact start), time_to_recover_s
    (resolved - impact start), notified, and `message` (one line for the report).
    `observations`: the window's health observations; 0 (nothing collected, so nothing
    evaluated) makes "no alert fired" unknown detection, not a miss."""
    from .. import fmt

    episodes = alert_episodes(store, start, end, target)
    out: dict[str, Any] = {"alert": None, "severity": None, "fired_at": None,
                           "resolved_at": None, "time_to_detect_s": None,
                           "time_to_recover_s": None, "notified": None, "alerts": len(episodes)}  # fmt: skip
    if episodes.empty and observations == 0:
        out["message"] = (
            "No alert fired in this window, and no observation was collected in it: whether "
            "lsops would have detected the incident is unknown."
        )
        return out
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
    """The alerts of [start, end): episodes (a DataFrame: every episode firing within the
    period, those begun before it too), fired (the episodes begun in it), by_name [{name,
    severity, fired, before, total_s, mean_resolve_s, still_firing}], pages (critical
    episodes begun in it and notified), pages_per_week, and uncaught: the incidents
    (analysis.incidents rows, restarts aside) no alert caught. `before` counts an alert's
    episodes begun before the period and firing into it; `mean_resolve_s` is of those
    begun in it. `total_s` is the time firing within the period: from its start for an
    episode begun before it, an episode still firing (`still_firing` counts them) up to
    the end or `now`, whichever is earlier, one resolved after the end up to the end."""
    from ..times import utcnow

    episodes = alert_episodes(store, start, end, target, overlapping=True)
    until = min(_utc(end), _utc(now if now is not None else utcnow()))
    weeks = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / WEEK_S
    pages = 0  # critical episodes that were notified: someone was paged
    begun = pd.Series(dtype=bool)  # the episodes begun in the period
    if not episodes.empty:
        begun = episodes["fired_at"] >= _utc(start)
        pages = int(
            (begun & (episodes["severity"] == "critical") & episodes["notified"].astype(bool)).sum()
        )
    by_name = []
    if not episodes.empty:
        resolved = pd.to_datetime(episodes["resolved_at"], utc=True)  # all NaT: naive
        stop = resolved.where(resolved < until, until)
        fired = episodes["fired_at"].where(begun, _utc(start))
        firing_s = (stop - fired).dt.total_seconds().clip(lower=0.0)
        for (name, severity), part in episodes.groupby(["name", "severity"], sort=True):
            mine = part[begun[part.index]]
            by_name.append({"name": name, "severity": severity, "fired": int(len(mine)),
                            "before": int(len(part) - len(mine)),
                            "total_s": float(firing_s[part.index].sum()),
                            "mean_resolve_s": float(mine["duration_s"].mean())
                            if mine["duration_s"].notna().any() else None,
                            "still_firing": int(part["ongoing"].sum())})  # fmt: skip
    uncaught = pd.DataFrame()
    if incidents is not None and not incidents.empty:
        real = incidents[incidents["kind"] != "restart"]
        caught = [_caught(row, episodes, start, end) for row in real.to_dict("records")]
        uncaught = real[[not c for c in caught]].reset_index(drop=True)
    return {
        "episodes": episodes,
        "fired": int(begun.sum()),
        "by_name": by_name,
        "pages": pages,
        "pages_per_week": pages / weeks if weeks > 0 else None,
        "uncaught": uncaught,
    }


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _caught(
    incident: dict[str, Any], episodes: pd.DataFrame, start: datetime, end: datetime
) -> bool:
    """An episode began within the incident (+- the grace), or, for an incident starting
    within the grace of the period's start (cut there: it may have begun before), one
    begun before the period and firing at its start (`episodes` overlap the period)."""
    if episodes.empty:
        return False
    grace = pd.Timedelta(seconds=CATCH_GRACE_S)
    lo = _utc(incident["start"]) - grace
    hi = _utc(incident["end"] if pd.notna(incident["end"]) else end) + grace
    fired = episodes["fired_at"]
    within = (fired >= lo) & (fired <= hi)
    if lo <= _utc(start):
        within |= fired < _utc(start)
    return bool(within.any())
