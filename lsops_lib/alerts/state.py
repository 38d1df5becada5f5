"""Alert state that survives between rounds, kept in the store (`store/alerts.py`).

Each alert (target, key) is `inactive`, `pending` (seen, not yet for long enough:
api_down before `down_after` scrapes), `firing` or `resolved`. The rules of one round
are applied in ONE write transaction that locks the target's rows (PostgreSQL: SELECT ...
FOR UPDATE; SQLite: BEGIN IMMEDIATE), so two collectors sharing a store take turns:

- a rule that could not judge (None) leaves its alerts as they are;
- seen and not pending -> firing (since = now); not seen while firing -> resolved;
- the notification owed is decided by comparing the state with the last one notified:
  firing and never notified -> `firing`; firing and notified `repeat_interval` ago ->
  `firing` again; resolved after a notified firing -> `resolved`. The decision is
  written in the same transaction (last_sent_state, last_sent_at), so the other
  collector, which waits for the lock, sees it made and owes nothing;
- a notification is not queued again while one of the same state to the same notifier
  is still owed (held to business hours, receiver down); a new state supersedes the
  repeats owed to that notifier (`_queue`);
- the deliveries owed (`due`: notifier + payload) are CLAIMED by the transaction that
  queued them (or, once a claim's lease ran out, by a later round): only the claimant
  delivers, and a delivery that failed stays owed and is retried next round;
- flapping: more than `flapping_changes` firing/resolved changes within
  `flapping_window`: no notification until it settles (then the settled state is told);
- inhibition: an alert that starts firing while `api_down` of its target is pending or
  firing is covered by it (Alertmanager's inhibit rule): no notification of its own for
  that episode, so an outage pages once. When `api_down` was only pending and goes away
  without firing (a missed scrape, no outage), what it covered is no longer covered: the
  alerts still firing are told then.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import StoreError
from ..store.alerts import alert_events_table, alert_notifications_table, alerts_table
from ..store.schema import insert_ignore, one_line
from ..times import to_ms
from .rules import Alert
from .settings import AlertSettings

__all__ = ["INHIBITORS", "Claim", "apply_round", "settle"]

INHIBITORS = ("api_down",)  # pending or firing: covers every other alert of the target


@dataclass
class Claim:
    """Deliveries this evaluation owns: (row id, token, entries in order)."""

    row_id: int
    token: str
    target: str
    key: str
    name: str
    entries: list[dict[str, Any]] = field(default_factory=list)


def _transition(
    row: dict[str, Any], seen: Alert | None, now: int, cfg: AlertSettings
) -> str | None:
    """Update `row` for what its rule saw; return the new state when it changed."""
    state = row["state"]
    new = state
    if seen is not None:
        row.update(value=seen.value, threshold=seen.threshold, summary=seen.summary,
                   severity=seen.severity, name=seen.name)  # fmt: skip
        if seen.pending:
            new = state if state in ("pending", "firing") else "pending"
        else:
            new = "firing"
    elif state == "firing":
        new = "resolved"
    elif state == "pending":
        new = "inactive"
    row["updated"] = now
    if new == state:
        return None
    row["state"] = new
    row["since"] = now
    if new == "firing":
        row["fired_at"] = now
    if new == "resolved":
        row["resolved_at"] = now
    if new in ("firing", "resolved"):
        changes = [c for c in json.loads(row["changes"]) if now - c < cfg.flapping_window_s * 1000]
        row["changes"] = json.dumps([*changes, now])
    return new


def _flapping(row: dict[str, Any], now: int, cfg: AlertSettings) -> bool:
    changes = [c for c in json.loads(row["changes"]) if now - c < cfg.flapping_window_s * 1000]
    return len(changes) > cfg.flapping_changes


def _owed(row: dict[str, Any], now: int, cfg: AlertSettings) -> str | None:
    """The notification this row owes now: firing | resolved | None."""
    if row["flapping"] or row["inhibited"]:
        return None
    if row["state"] == "firing":
        if row["last_sent_state"] != "firing":
            return "firing"
        if now - (row["last_sent_at"] or 0) >= cfg.repeat_interval_s * 1000:
            return "firing"
    if row["state"] == "resolved" and row["last_sent_state"] == "firing":
        return "resolved"
    return None


def _queue(due: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    """`due` with `entry` owed too. While a notification of the alert to the same notifier
    is still owed (held to business hours, or its receiver down), a repeat of the same
    state is not queued; a new state supersedes the repeats owed (the receiver gets the
    current state once, not every repeat of the hours it could not be told). A first
    `firing` still owed stays: a receiver that missed it is told it, then `resolved`."""
    mine = [e for e in due if e["notifier"] == entry["notifier"]]
    state = entry["payload"]["alert"]["state"]
    if mine and mine[-1]["payload"]["alert"]["state"] == state:
        return due
    return [e for e in due if not (e["notifier"] == entry["notifier"] and e.get("repeat"))] + [
        entry
    ]


def apply_round(
    store: Any,
    target: str,
    now: datetime,
    results: dict[str, list[Alert] | None],
    cfg: AlertSettings,
    *,
    lease_s: float,
) -> tuple[list[dict[str, Any]], list[Claim]]:
    """Apply one round's rule results for `target`; return the rows after it and the
    deliveries this call claimed. StoreError when the store cannot be written."""
    from .notify import payload

    now_ms = to_ms(now)
    seen: dict[str, Alert] = {a.key: a for found in results.values() if found for a in found}
    t = alerts_table
    try:
        with store._lock, store._small_write() as conn:
            query = select(t).where(t.c.target == target).with_for_update()
            rows = {r.key: dict(r._mapping) for r in conn.execute(query)}
            fresh = [k for k in seen if k not in rows]
            if fresh:
                insert_ignore(conn, t, [
                    {"target": target, "key": k, "rule": seen[k].rule, "name": seen[k].name,
                     "severity": seen[k].severity, "state": "inactive", "changes": "[]",
                     "due": "[]", "flapping": False, "inhibited": False, "version": 0}
                    for k in fresh
                ])  # fmt: skip
                rows = {r.key: dict(r._mapping) for r in conn.execute(query)}
            before = {k: dict(r) for k, r in rows.items()}
            changed: dict[str, str] = {}
            for key, row in rows.items():
                if key not in seen and results.get(row["rule"], None) is None:
                    continue  # its rule could not judge: keep the state
                new = _transition(row, seen.get(key), now_ms, cfg)
                if new is not None:
                    changed[key] = new
            covering = any(
                r["name"] in INHIBITORS and r["state"] in ("pending", "firing")
                for r in rows.values()
            )
            # an inhibitor that was pending and went away without firing was no outage:
            # what it covered is told after all (one missed scrape must not silence alerts)
            false_alarm = not covering and any(
                r["name"] in INHIBITORS and before[k]["state"] == "pending"
                and changed.get(k) == "inactive"
                for k, r in rows.items()
            )  # fmt: skip
            events, claims = [], []
            for key, row in rows.items():
                new = changed.get(key)
                if new == "firing":
                    row["inhibited"] = covering and row["name"] not in INHIBITORS
                elif row["state"] != "firing" or false_alarm:
                    row["inhibited"] = False
                row["flapping"] = _flapping(row, now_ms, cfg)
                owed = _owed(row, now_ms, cfg)
                due = json.loads(row["due"])
                notifiers = cfg.notifiers_for(row["severity"])
                if owed is not None and notifiers:  # none to tell: nothing counts as told
                    repeat = owed == row["last_sent_state"]
                    row["last_sent_state"], row["last_sent_at"] = owed, now_ms
                    body = payload(row, owed)
                    for notifier, hours in notifiers:
                        due = _queue(due, {"id": str(uuid.uuid4()), "notifier": notifier.name,
                                           "business_hours": hours, "repeat": repeat,
                                           "payload": body})  # fmt: skip
                    row["due"] = json.dumps(due)
                if new in ("pending", "firing", "resolved"):
                    told = owed is not None and bool(notifiers)
                    notified = None if new == "pending" else told
                    events.append({k: row[k] for k in ("target", "key", "name", "severity",
                                   "state", "value", "threshold", "summary")}
                                  | {"ts": now_ms, "notified": notified})  # fmt: skip
                if due and (row["claim"] is None or (row["claim_until"] or 0) <= now_ms):
                    row["claim"] = str(uuid.uuid4())
                    row["claim_until"] = now_ms + int(lease_s * 1000)
                    claims.append(Claim(row["id"], row["claim"], target, key, row["name"], due))
                if row != before[key]:
                    row["version"] = before[key]["version"] + 1
                    values = {k: v for k, v in row.items() if k != "id"}
                    conn.execute(t.update().where(t.c.id == row["id"]).values(**values))
            if events:
                conn.execute(alert_events_table.insert(), events)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write alert state to {store.url}: {one_line(exc)}") from None
    return list(rows.values()), claims


def settle(
    store: Any, claim: Claim, delivered: set[str], attempts: list[dict[str, Any]], now: datetime
) -> None:
    """After delivering: the delivered entries are no longer owed, the claim is released,
    every attempt (failures included) is recorded, an email is owed to the recipients that
    refused it only (`to`, deliver_entries); a firing told late (held to business
    hours, receiver down) counts as told now (the next repeat is `repeat_interval` later)."""
    t = alerts_table
    try:
        with store._lock, store._small_write() as conn:
            row = conn.execute(select(t).where(t.c.id == claim.row_id).with_for_update()).first()
            if row is not None:
                due = [e for e in json.loads(row.due) if e["id"] not in delivered]
                narrowed = {e["id"]: e["to"] for e in claim.entries if e.get("to")}
                for e in due:  # an email some recipients refused: owed to those only
                    if e["id"] in narrowed:
                        e["to"] = narrowed[e["id"]]
                values: dict[str, Any] = {"due": json.dumps(due), "version": row.version + 1}
                told = [e for e in claim.entries if e["id"] in delivered]
                if row.last_sent_state == "firing" and any(
                    e["payload"]["alert"]["state"] == "firing" for e in told
                ):  # a firing told late (held, retried): the next repeat counts from now
                    values["last_sent_at"] = max(row.last_sent_at or 0, to_ms(now))
                if row.claim == claim.token:
                    values.update(claim=None, claim_until=None)
                conn.execute(t.update().where(t.c.id == claim.row_id).values(**values))
            if attempts:
                conn.execute(alert_notifications_table.insert(), [
                    {"target": claim.target, "key": claim.key, "name": claim.name,
                     "ts": to_ms(now), **a} for a in attempts
                ])  # fmt: skip
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot write alert state to {store.url}: {one_line(exc)}") from None
