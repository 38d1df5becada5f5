"""`lsops alerts [--json]`, `lsops alerts check [--json]`, `lsops alerts test [--json]`.

`lsops alerts`: the alerts of the selected target that fire, are pending, or resolved
within `[alerts] recent` (7 days), each with its history (state changes), and the last
notification attempts (failures included). `check`: one evaluation round now (the rules,
the state, the notifications owed), as the collector does after each round. `test`: one
test notification through every configured notifier, which worked and which did not.

Exit codes: 0; 1 the store cannot be read or written, or (test) a notifier failed;
2 bad settings, or (test) no notifier configured. Never a secret in the output: notifiers
are shown by name, kind and the NAME of the variable holding their secret.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .. import fmt
from ..exceptions import ConfigError
from . import main, pass_app, run_command
from .render import Column, clipper, emit, line, table

__all__ = ["alerts_group"]

_STATE_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_ALERT_COLUMNS = [
    Column("state", "state", style=_STATE_STYLE, no_wrap=True),
    Column("severity", "severity", style={"critical": "red", "warning": "yellow"}),
    Column("name", "alert"),
    Column("since", "since", fmt.instant, no_wrap=True),
    Column("value", "value", lambda v: fmt.number(v)),
    Column("threshold", "threshold", lambda v: fmt.number(v)),
    Column("summary", "summary", clipper(100)),
    Column("last_notified", "last notified", fmt.instant),
    Column("note", "note"),
]
_NOTIFICATION_COLUMNS = [
    Column("ts", "at", fmt.instant, no_wrap=True),
    Column("notifier", "notifier"),
    Column("name", "alert"),
    Column("state", "state"),
    Column(
        "ok", "delivered", lambda v: "yes" if v else "NO", style={"True": "green", "False": "red"}
    ),
    Column("error", "error", clipper(100)),
]
_TEST_COLUMNS = [
    Column("notifier", "notifier"),
    Column("kind", "kind"),
    Column("where", "where"),
    Column("ok", "worked", lambda v: "yes" if v else "NO", style={"True": "green", "False": "red"}),
    Column("error", "error", clipper(120)),
]
_HISTORY_LIMIT = 20


def _note(alert: dict[str, Any]) -> str | None:
    notes = []
    if alert.get("flapping"):
        notes.append("flapping: notifications suppressed")
    if alert.get("inhibited"):
        notes.append("covered by api_down: not notified")
    held = alert.get("held") or 0
    if (alert.get("owed") or 0) > held:
        retried = alert["owed"] - held
        notes.append(f"{fmt.counted(retried, 'notification')} owed, retried next round")
    if held:
        until = alert.get("held_until")
        when = fmt.instant(until) if until is not None else "a business day (none configured)"
        notes.append(f"{fmt.counted(held, 'notification')} held until {when} (business hours)")
    return "; ".join(notes) or None  # null in JSON, the dash in the table


def _listing(store: Any, target: str, now: Any, cfg: Any) -> dict[str, Any]:
    import pandas as pd

    from ..alerts.evaluate import owed_counts
    from ..store.alerts import alert_events, alert_notifications, stored_alerts

    recent_s = cfg.recent_s

    rows = stored_alerts(store, target)
    cut = pd.Timestamp(now) - pd.Timedelta(seconds=recent_s)
    rows = rows[(rows["state"] != "resolved") | (rows["since"] >= cut)]
    events = alert_events(store, target, cut.to_pydatetime())
    sent = alert_notifications(store, target, cut.to_pydatetime())
    alerts = []
    for r in rows.to_dict("records"):
        mine = events[events["key"] == r["key"]].tail(_HISTORY_LIMIT)
        alert = {
            "name": r["name"],
            "key": r["key"],
            "state": r["state"],
            "severity": r["severity"],
            "since": r["since"],
            "value": r["value"],
            "threshold": r["threshold"],
            "summary": r["summary"],
            "flapping": bool(r["flapping"]),
            "inhibited": bool(r["inhibited"]),
            "last_notified": r["last_sent_at"],
            **owed_counts(json.loads(r["due"] or "[]"), cfg, now),
            "history": [
                {
                    "ts": e["ts"],
                    "state": e["state"],
                    "value": e["value"],
                    "notified": None if pd.isna(e["notified"]) else bool(e["notified"]),
                }
                for e in mine.to_dict("records")
            ],  # fmt: skip
        }
        alert["note"] = _note(alert)
        alerts.append(alert)
    order = {"firing": 0, "pending": 1, "resolved": 2}
    alerts.sort(key=lambda a: (order.get(a["state"], 3), a["name"]))
    return {
        "target": target,
        "alerts": alerts,
        "notifications": [
            {k: e[k] for k in ("ts", "notifier", "name", "state", "ok", "error")}
            for e in sent.tail(_HISTORY_LIMIT).to_dict("records")
        ],
    }


def _view(d: Any) -> None:
    alerts = d["alerts"]
    firing = sum(1 for a in alerts if a["state"] == "firing")
    line(f"target {d['target']}: {fmt.counted(firing, 'alert')} firing")
    table(alerts, _ALERT_COLUMNS, title="Alerts (firing, pending, recently resolved)")
    for a in alerts:
        if a["history"]:
            changes = ", ".join(f"{h['state']} {fmt.instant(h['ts'])}" for h in a["history"])
            line(f"  {a['name']}: {changes}", style="dim")
    table(d["notifications"], _NOTIFICATION_COLUMNS, title="Notifications")


def _check_view(d: Any) -> None:
    ran = sum(1 for r in d["rules"] if r["status"] == "evaluated")
    line(f"target {d['target']} at {fmt.instant(d['now'])}: {ran} of {len(d['rules'])} rules "
         "evaluated")  # fmt: skip
    for r in d["rules"]:
        if r["status"] != "evaluated":
            line(f"  {r['rule']}: {r['status']}" + (f" ({r['note']})" if r["note"] else ""),
                 style="dim")  # fmt: skip
    table(d["alerts"], _ALERT_COLUMNS, title="Alerts")
    table(d["notifications"], _NOTIFICATION_COLUMNS[1:], title="Notifications sent now")


def _test_view(d: Any) -> None:
    table(d["notifiers"], _TEST_COLUMNS, title="Test notification")
    failed = sum(1 for n in d["notifiers"] if not n["ok"])
    line(f"{fmt.counted(failed, 'notifier')} failed" if failed else "every notifier worked",
         style="red" if failed else "green")  # fmt: skip


def _settings(app: Any) -> tuple[Any, Any]:
    from ..alerts import alert_settings

    settings = app.settings()
    return settings, alert_settings(settings)


@main.group("alerts", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
@pass_app
@click.pass_context
def alerts_group(ctx: click.Context, app: Any, as_json: bool) -> None:
    """Firing and recently resolved alerts, with their history."""
    if ctx.invoked_subcommand is not None:
        return
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..times import utcnow
    from .checks import _store

    with run_command(usage=2, failure=1):
        settings, cfg = _settings(app)
        with _store(app) as store:
            data = _listing(store, app.selected_target(), utcnow(), cfg)
        emit(data, as_json, _view)


@alerts_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
@pass_app
def alerts_check(app: Any, as_json: bool) -> None:
    """Evaluate the rules now and send what is owed (as after each collection round)."""
    from ..alerts import evaluate
    from .checks import _store

    with run_command(usage=2, failure=1):
        settings, cfg = _settings(app)
        with _store(app) as store:
            data = evaluate(store, settings, target=app.selected_target(), alerts=cfg)
        for alert in data["alerts"]:
            alert["note"] = _note(alert)
        emit(data, as_json, _check_view)


@alerts_group.command("test")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_app
def alerts_test(app: Any, as_json: bool) -> None:
    """Send one test notification through every configured notifier (exit 1 if any failed)."""
    from ..alerts import send, test_payload
    from ..times import utcnow

    with run_command(usage=2, failure=1):
        settings, cfg = _settings(app)
        if not cfg.notifiers:
            raise ConfigError(
                "no notifier configured: set LSOPS_ALERT_WEBHOOK or [alerts.notifiers.NAME]"
            )
        body = test_payload(settings.target.name, utcnow())
        secrets = [*cfg.secrets(), *settings.secrets()]
        results = []
        for n in cfg.notifiers.values():
            error = send(n, body, secrets)
            results.append({**n.public(), "ok": error is None, "error": error})
        emit({"notifiers": results}, as_json, _test_view)
        if any(not r["ok"] for r in results):
            raise SystemExit(1)
