"""Alert state in the metrics store (issue 11): three NEW tables on the shared metadata
(created on open like any missing table; SCHEMA_VERSION unchanged).

    lsops_alerts               one row per (target, key): state, since, value, threshold,
                               summary, flapping, inhibited, last notification, the
                               deliveries still owed (`due`, JSON) and their claim
    lsops_alert_events         every state change (pending, firing, resolved), the history
    lsops_alert_notifications  every delivery attempt: notifier, state, ok, error

No secret is stored: a due delivery holds the notifier's NAME and the payload (the alert's
own fields); an error is a short line with every configured secret masked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import StoreError
from ..times import to_ms
from .schema import _ID, metadata, one_line

__all__ = [
    "ALERT_COLUMNS",
    "alert_events",
    "alert_events_table",
    "alert_notifications",
    "alert_notifications_table",
    "alerts_table",
    "stored_alerts",
]

alerts_table = Table(
    "lsops_alerts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("key", String(400), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # inactive | pending | firing | resolved
    Column("since", BigInteger),  # epoch ms of the last state change
    Column("value", Float),
    Column("threshold", Float),
    Column("summary", Text),
    Column("fired_at", BigInteger),
    Column("resolved_at", BigInteger),
    Column("updated", BigInteger),  # the last evaluation that judged it
    Column("changes", Text, nullable=False, server_default="[]"),  # JSON: ms of changes
    Column("flapping", Boolean, nullable=False, server_default="0"),
    Column("inhibited", Boolean, nullable=False, server_default="0"),
    Column("last_sent_state", String(16)),
    Column("last_sent_at", BigInteger),
    Column("due", Text, nullable=False, server_default="[]"),  # JSON: deliveries owed
    Column("claim", String(36)),  # the evaluation delivering them now
    Column("claim_until", BigInteger),
    Column("version", Integer, nullable=False, server_default="0"),
    UniqueConstraint("target", "key", name="lsops_alerts_target_key"),
)

alert_events_table = Table(
    "lsops_alert_events",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("key", String(400), nullable=False),
    Column("name", String(100), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("summary", Text),
    Column("notified", Boolean),  # NULL: no notification due at this change
)
Index("lsops_alert_events_ts", alert_events_table.c.ts)

alert_notifications_table = Table(
    "lsops_alert_notifications",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("key", String(400), nullable=False),
    Column("name", String(100), nullable=False),
    Column("notifier", String(200), nullable=False),
    Column("state", String(16), nullable=False),  # firing | resolved | test
    Column("severity", String(16)),
    Column("ts", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
)
Index("lsops_alert_notifications_ts", alert_notifications_table.c.ts)

ALERT_COLUMNS = [
    "target", "key", "name", "severity", "state", "since", "value", "threshold", "summary",
    "fired_at", "resolved_at", "flapping", "inhibited", "last_sent_state", "last_sent_at", "due",
]  # fmt: skip
_MS_COLUMNS = ("since", "fired_at", "resolved_at", "last_sent_at", "ts")


def _frame(store: Any, query: Any, columns: list[str]) -> pd.DataFrame:
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read store {store.url}: {one_line(exc)}") from None
    df = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for col in _MS_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_datetime(pd.to_numeric(df[col]), unit="ms", utc=True)
    return df


def _window(table: Table, query: Any, target: str | None, start: Any, end: Any) -> Any:
    if target is not None:
        query = query.where(table.c.target == target)
    if start is not None:
        query = query.where(table.c.ts >= to_ms(start))
    if end is not None:
        query = query.where(table.c.ts < to_ms(end))
    return query


def stored_alerts(store: Any, target: str | None = None) -> pd.DataFrame:
    """Every alert row (of `target`; None: all) but the inactive ones: ALERT_COLUMNS."""
    t = alerts_table
    query = select(*[t.c[c] for c in ALERT_COLUMNS]).where(t.c.state != "inactive")
    if target is not None:
        query = query.where(t.c.target == target)
    return _frame(store, query.order_by(t.c.since, t.c.id), ALERT_COLUMNS)


EVENT_COLUMNS = ["ts", "target", "key", "name", "severity", "state", "value", "threshold",
                 "summary", "notified"]  # fmt: skip
NOTIFICATION_COLUMNS = ["ts", "target", "key", "name", "notifier", "state", "severity", "ok",
                        "error"]  # fmt: skip


def alert_events(
    store: Any,
    target: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The state changes in [start, end), oldest first: EVENT_COLUMNS."""
    t = alert_events_table
    query = _window(t, select(*[t.c[c] for c in EVENT_COLUMNS]), target, start, end)
    return _frame(store, query.order_by(t.c.ts, t.c.id), EVENT_COLUMNS)


def alert_notifications(
    store: Any,
    target: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The delivery attempts in [start, end), oldest first: NOTIFICATION_COLUMNS."""
    t = alert_notifications_table
    query = _window(t, select(*[t.c[c] for c in NOTIFICATION_COLUMNS]), target, start, end)
    return _frame(store, query.order_by(t.c.ts, t.c.id), NOTIFICATION_COLUMNS)
