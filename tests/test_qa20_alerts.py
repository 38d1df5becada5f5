"""Alerts, QA round 20: an email some recipients refused is not delivered (smtplib says
so only in what send_message returns): the failure is recorded and the message is owed
to the refused recipients only; an entry whose notifier is no longer configured is said
to be dropped, not "retried next round"."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.alerts import evaluate, parse_alert_settings, send
from lsops_lib.alerts.evaluate import after_round
from lsops_lib.alerts.notify import test_payload as _test_payload
from lsops_lib.alerts.settings import NotifierSettings
from lsops_lib.store import Store
from lsops_lib.store.alerts import alert_notifications
from tests.fixtures.alerts import Receiver, Switch
from tests.fixtures.alerts import alert_env as _env
from tests.fixtures.alerts import stub_alert as _alert
from tests.fixtures.store import at, make_scrape

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


# --- 2. an email one recipient refused ------------------------------------------------------


class Picky:
    """aiosmtpd on loopback (no TLS) refusing the RCPT of every address in `refuse`;
    `received`: (envelope recipients, message) of each message accepted."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.received: list[tuple[list[str], Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: Any) -> str:  # fmt: skip
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def picky() -> Iterator[tuple[Picky, int]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Picky()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _mail(port: int) -> dict[str, Any]:
    return {"kind": "email", "host": "127.0.0.1", "port": port, "starttls": False,
            "from": "lsops@example.com", "to": ["oncall@example.com", "team@example.com"]}  # fmt: skip


def test_an_email_one_recipient_refused_is_not_delivered(picky: tuple[Picky, int]) -> None:
    server, port = picky
    server.refuse = {"team@example.com"}
    n = NotifierSettings(
        name="mail", kind="email", host="127.0.0.1", port=port, starttls=False,
        sender="lsops@example.com", to=("oncall@example.com", "team@example.com"),
    )  # fmt: skip
    error = send(n, _test_payload("prod", T0), [])  # what `lsops alerts test` calls
    assert error == "SMTP: refused team@example.com: 550 5.1.1 no such user here"
    assert [to for to, _ in server.received] == [["oncall@example.com"]]


def test_a_refused_recipient_is_retried_alone_next_round(
    tmp_path: Path, picky: tuple[Picky, int]
) -> None:
    server, port = picky
    server.refuse = {"team@example.com"}
    settings, _ = _env(tmp_path)
    cfg = parse_alert_settings({"notifiers": {"mail": _mail(port)}}, env={})
    rule = Switch()
    rule.seen = [_alert("probe")]
    with Store(settings.store_url) as store:
        first = evaluate(store, settings, now=T0, alerts=cfg, rules={"probe": rule})
        (sent,) = first["notifications"]
        assert not sent["ok"]
        assert sent["error"] == "SMTP: refused team@example.com: 550 5.1.1 no such user here"
        assert first["alerts"][0]["owed"] == 1  # still owed, retried next round
        assert [to for to, _ in server.received] == [["oncall@example.com"]]

        server.refuse = set()  # the mailbox exists now
        second = evaluate(store, settings, now=T0 + 5 * MIN, alerts=cfg, rules={"probe": rule})
        assert [n["ok"] for n in second["notifications"]] == [True]
        assert second["alerts"][0]["owed"] == 0
        # the refused one gets it, the one who had it is not sent it again
        assert [to for to, _ in server.received] == [["oncall@example.com"], ["team@example.com"]]
        assert "[FIRING] critical probe" in server.received[1][1]["Subject"]

        third = evaluate(store, settings, now=T0 + 10 * MIN, alerts=cfg, rules={"probe": rule})
        assert third["notifications"] == [] and len(server.received) == 2
        record = alert_notifications(store, "default")
        assert list(record["ok"]) == [False, True]
        assert record["error"].iloc[0].startswith("SMTP: refused team@example.com: 550")


# --- 3. a notifier removed while a notification was owed ------------------------------------


def test_an_entry_of_a_removed_notifier_is_said_dropped_not_retried(tmp_path: Path) -> None:
    down = Receiver(mode="error").start()
    try:
        settings, _ = _env(
            tmp_path, '[alerts.notifiers.other]\nkind = "command"\ncommand = ["true"]\n'
        )
        cfg = parse_alert_settings(
            {"notifiers": {"chat": {"kind": "webhook", "url_env": "CHAT_URL"}}},
            env={"CHAT_URL": down.url},
        )
        rule = Switch()
        rule.seen = [_alert("probe")]
        with Store(settings.store_url) as store:
            first = evaluate(store, settings, now=T0, alerts=cfg, rules={"probe": rule})
            assert [n["ok"] for n in first["notifications"]] == [False]  # owed to chat
            # the settings no longer name "chat": the collector's next round drops it
            lines: list[str] = []
            results = after_round(store, settings, ["default"], now=T0 + 5 * MIN,
                                  on_error=lines.append)  # fmt: skip
    finally:
        down.stop()
    assert [n["error"] for r in results for n in r["notifications"]] == [
        "notifier no longer configured"
    ]
    assert lines == ["chat: probe firing dropped: notifier no longer configured"]
    assert all(a["owed"] == 0 for r in results for a in r["alerts"])


# --- 1. the demo's replay around an incident tells what a replay of the whole history does ---


OUTAGE, END = 26 * 60, 40 * 60  # minutes from T0 (Thursday 1 October 2026, 00:00 UTC)


def _history(url: str) -> None:
    # a scrape every 5 min for 40 h, no answer on day 2 02:00 - 02:40 (an outage), else
    # all well (a day of history first: the ticket's window of 1 d is judged)
    with Store(url) as store:
        for minute in range(0, END + 1, 5):
            if OUTAGE <= minute < OUTAGE + 40:
                store.record_scrape(make_scrape(minute, None))
            else:
                count = 100 * (minute // 5 + 1)
                store.record_scrape(make_scrape(minute, {"/projects": (count, 20.0, 0.0)}))


def test_the_demo_replay_around_the_outage_tells_what_the_whole_replay_tells(
    tmp_path: Path, command_notifier: tuple[list[str], Path]
) -> None:
    from sqlalchemy import select

    from lsops_lib.demo.alerts import replay
    from lsops_lib.store.alerts import alert_events_table

    argv, _ = command_notifier
    cfg = parse_alert_settings(
        {"notifiers": {"chat": {"kind": "command", "command": argv}},
         "route": [{"severity": "critical", "notify": ["chat"]},
                   {"severity": "warning", "notify": ["chat"], "business_hours": True}],
         "business_hours": "09:00-18:00", "timezone": "UTC"},
        env={},
    )  # fmt: skip
    told = {}
    for how in ("whole", "around"):
        (tmp_path / how).mkdir()
        settings, _ = _env(tmp_path / how)
        _history(settings.store_url)
        with Store(settings.store_url) as store:
            if how == "whole":  # a collector evaluating after every round (from 12 h on)
                sent = replay(store, settings, "default", at(12 * 60), at(END), cfg)
            else:  # the demo's: the outage and 30 min either side, then on while needed
                sent = replay(store, settings, "default", at(OUTAGE - 30), at(OUTAGE + 70), cfg,
                              until=at(END))  # fmt: skip
            t = alert_events_table
            with store.engine.connect() as conn:
                events = [(r.name, r.state, r.ts) for r in conn.execute(
                    select(t).where(t.c.state != "pending").order_by(t.c.ts, t.c.id))]  # fmt: skip
            told[how] = (events, [(n["at"], n["name"], n["state"], n["ok"]) for n in sent])
    events, sent = told["whole"]
    names = {(name, state) for name, state, _ in events}
    # the outage pages, trips the availability ticket, and every one of them resolves
    assert {("api_down", "resolved"), ("slo_availability_ticket", "resolved")} <= names
    assert told["around"] == told["whole"]
