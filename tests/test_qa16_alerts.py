"""Alerts, QA round 16: `lsops alerts` on a store that does not exist creates nothing; a
command notifier that times out is killed with everything it started; malformed [alerts]
settings are one line (exit 2), in `lsops collect` too, before anything is collected;
repeats do not pile up while a notification is held or undelivered (a newer state
supersedes it) and `lsops alerts` says until when it is held; the webhook text is
escaped for Slack; a resolved notification says when it started and for how long."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib.alerts import evaluate, parse_alert_settings
from lsops_lib.alerts.notify import payload, send
from lsops_lib.alerts.settings import NotifierSettings
from lsops_lib.cli import main
from lsops_lib.store import Store
from tests.fixtures.alerts import SMTP_PASSWORD, SMTP_USER, Receiver, Switch
from tests.fixtures.alerts import alert_env as _env
from tests.fixtures.alerts import stub_alert as _alert
from tests.fixtures.alerts import told as _states

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2026, 10, 1, tzinfo=UTC)  # a Thursday


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# --- 1. a store that does not exist ------------------------------------------------------------


@pytest.mark.parametrize("command", [["alerts"], ["alerts", "check"]])
def test_alerts_on_a_missing_store_create_nothing_and_exit_1(
    tmp_path: Path, command: list[str]
) -> None:
    folder = tmp_path / "typo"
    _, env = _env(tmp_path, LSOPS_STORE=f"sqlite:///{folder / 'metrics.sqlite'}")
    out = CliRunner().invoke(main, command, env=env)
    assert out.exit_code == 1, out.output
    assert "does not exist: run 'lsops collect' first" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.output
    assert not folder.exists()


# --- 2. a command that times out: its whole process group goes ---------------------------------


def test_a_command_timing_out_leaves_nothing_running_to_deliver_late(tmp_path: Path) -> None:
    late = tmp_path / "late.txt"
    # the shell's background child is what would deliver, after the deadline
    pager = NotifierSettings("pager", "command", timeout_s=0.5,
                             command=("sh", "-c", f"(sleep 1.5; echo late >> {late}) & wait"))  # fmt: skip
    began = time.monotonic()
    assert send(pager, {"text": "t", "alert": {}}, []) == "the command did not finish within 0.5 s"
    assert time.monotonic() - began < 1.4
    time.sleep(2.5)
    assert not late.exists()


# --- 3. malformed [alerts]: one line naming the setting, exit 2 ---------------------------------

X = '[alerts.notifiers.x]\nkind = "{kind}"\n'
MAIL = X.format(kind="email") + 'host = "h"\nfrom = "a@b"\nto = "c@d"\n'
BAD = [
    (X.format(kind="webhook") + "url_env = 5\n", "[alerts.notifiers.x] url_env must be a string"),
    ("[alerts]\nnotifiers = 5\n", "[alerts] notifiers must be tables"),
    ("[alerts]\nroute = 5\n", "[alerts] route must be tables"),
    ('[alerts]\nenabled = "false"\n', "[alerts] enabled must be true or false, not 'false'"),
    (MAIL + 'starttls = "no"\n', "[alerts.notifiers.x] starttls must be true or false"),
    (MAIL + "username = 7\n", "[alerts.notifiers.x] username must be a string"),
    (X.format(kind="command") + 'command = "echo hi"\n', "[alerts.notifiers.x] command must be a list"),
    ("[alerts]\ndown_after = 2.7\n", "[alerts] down_after must be a whole number >= 1, not 2.7"),
    ("[alerts]\nflapping_changes = 3.5\n", "[alerts] flapping_changes must be a whole number"),
    ("[alerts]\nrepeat_interval = 1e400\n", "[alerts] repeat_interval must be a duration"),
    # seconds as a number keep parse_duration's range: 1 ms .. 100 years
    ("[alerts]\nrecent = 1e300\n", "[alerts] recent must be a duration"),
    ("[alerts]\nnew_within = 1e-9\n", "[alerts] new_within must be a duration"),
    ("[alerts]\nflapping_window = -5\n", "[alerts] flapping_window must be positive"),
    (X.format(kind="webhook") + 'url_env = "U"\ntimeout_s = 0\n',
     "[alerts.notifiers.x] timeout_s must be a number >= 0.001, not 0"),
    ('[alerts]\npage = [{factor = "x", long = "1h", short = "5m"}]\n',
     "[alerts] page factor must be a number >= 0, not 'x'"),
    ('[alerts]\nticket = [{factor = 3, long = "1 day", short = "2h"}]\n',
     "[alerts] ticket long must be a duration"),
    (X.format(kind="webhook") + 'url_env = "U"\n[[alerts.route]]\nnotify = ["x"]\n'
     'business_hours = "yes"\n', "[[alerts.route]] business_hours must be true or false"),
    ("alerts = 0\n", "[alerts] must be a table"),
]  # fmt: skip


@pytest.mark.parametrize(("toml", "said"), BAD, ids=[b[1][:45] for b in BAD])
def test_malformed_alert_settings_are_one_line_naming_the_setting(
    tmp_path: Path, toml: str, said: str
) -> None:
    _, env = _env(tmp_path, toml)
    out = CliRunner().invoke(main, ["alerts", "check"], env=env)
    assert out.exit_code == 2, out.output
    assert out.stderr.strip() == f"lsops: lsops.toml: {said}" or said in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.output


def test_well_formed_booleans_and_counts_are_taken_as_written() -> None:
    cfg = parse_alert_settings(
        {"enabled": False, "down_after": 3, "flapping_changes": 0,
         "notifiers": {"m": {"kind": "email", "host": "h", "from": "a@b", "to": "c@d",
                             "starttls": False},
                       "p": {"kind": "command", "command": ["echo", "hi"]}},
         "route": [{"severity": "warning", "notify": ["m"], "business_hours": True}]},
        env={},
    )  # fmt: skip
    assert (cfg.enabled, cfg.down_after, cfg.flapping_changes) == (False, 3, 0)
    assert cfg.notifiers["m"].starttls is False and cfg.notifiers["p"].command == ("echo", "hi")
    assert cfg.routes[0].business_hours is True


def test_collect_with_malformed_alerts_exits_2_before_collecting(tmp_path: Path) -> None:
    store = tmp_path / "c.sqlite"
    _, env = _env(tmp_path, '[alerts]\nbusiness_hours = "9-18"\n',
                  LSOPS_STORE=f"sqlite:///{store}", LSOPS_API_URL=_dead_url())  # fmt: skip
    out = CliRunner().invoke(main, ["collect", "--once"], env=env)
    assert out.exit_code == 2, out.output
    assert out.stderr.strip() == (
        "lsops: lsops.toml: [alerts] business_hours must be \"HH:MM-HH:MM\", not '9-18'"
    )
    assert not store.exists()  # nothing collected, no store made


# --- 4. repeats while a notification is held or undelivered --------------------------------------


def _chat(url: str, **alerts: Any) -> Any:
    return parse_alert_settings(
        {"notifiers": {"chat": {"kind": "webhook", "url_env": "CHAT_URL"}}, **alerts},
        env={"CHAT_URL": url},
    )


def test_a_warning_held_over_the_weekend_arrives_once_on_monday(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    settings, _ = _env(tmp_path)
    cfg = _chat(webhook_receiver.url, business_hours="09:00-18:00", timezone="Asia/Ho_Chi_Minh",
                route=[{"severity": "warning", "notify": ["chat"], "business_hours": True}])  # fmt: skip
    rule = Switch()
    rule.seen = [_alert("minor", "warning")]
    friday = datetime(2026, 10, 2, 11, 0, tzinfo=UTC)  # 18:00 in Hanoi: closed
    monday = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)  # 09:00 in Hanoi: open
    told_at: dict[datetime, int] = {}
    with Store(settings.store_url) as store:
        now = friday
        while now <= monday + timedelta(hours=4):  # hourly rounds; repeat_interval 4 h
            result = evaluate(store, settings, now=now, alerts=cfg, rules={"probe": rule})
            told_at[now] = len(webhook_receiver.bodies)
            now += timedelta(hours=1)
    assert told_at[monday - timedelta(hours=1)] == 0
    assert told_at[monday] == 1 and told_at[monday + timedelta(hours=3)] == 1
    assert told_at[monday + timedelta(hours=4)] == 2  # the repeat: 4 h after it was told
    assert _states(webhook_receiver.bodies) == [("minor", "firing", "warning")] * 2
    assert result["alerts"][0]["owed"] == 0


def test_after_a_receiver_outage_it_gets_the_current_state_once(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    settings, _ = _env(tmp_path)
    cfg = _chat(webhook_receiver.url)
    rule = Switch()
    with Store(settings.store_url) as store:

        def hours(first: int, last: int, seen: list[Any], mode: str) -> None:
            webhook_receiver.mode, rule.seen = mode, seen
            for h in range(first, last + 1):
                now = T0 + timedelta(hours=h)
                evaluate(store, settings, now=now, alerts=cfg, rules={"probe": rule})

        hours(0, 8, [_alert()], "error")  # firing at 0 owed; no repeat queued at 4, 8
        hours(9, 9, [_alert()], "ok")
        assert _states(webhook_receiver.bodies) == [("probe", "firing", "critical")]
        hours(10, 20, [_alert()], "error")  # a repeat owed at 12, none more at 16, 20
        hours(21, 21, [], "error")  # resolved while down: supersedes the owed repeat
        hours(22, 22, [], "ok")
    assert _states(webhook_receiver.bodies) == [("probe", "firing", "critical"),
                                                ("probe", "resolved", "critical")]  # fmt: skip
    resolved = webhook_receiver.bodies[-1]["alert"]
    assert resolved["started"] == "2026-10-01T00:00:00Z" and resolved["duration_s"] == 21 * 3600


def test_alerts_says_until_when_a_notification_is_held(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    from lsops_lib.alerts import alert_settings

    now = datetime.now(UTC)
    # business hours (UTC, every day) that do not hold `now`, and when they next open
    if now.hour < 12:
        window, opens = "18:00-19:00", now.replace(hour=18, minute=0, second=0, microsecond=0)
    else:
        window = "06:00-07:00"
        opens = (now + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    toml = (
        f'[alerts]\nbusiness_hours = "{window}"\nbusiness_days = [1, 2, 3, 4, 5, 6, 7]\n'
        '[alerts.notifiers.chat]\nkind = "webhook"\nurl_env = "CHAT_URL"\n'
        '[[alerts.route]]\nseverity = "warning"\nnotify = ["chat"]\nbusiness_hours = true\n'
    )
    settings, env = _env(tmp_path, toml, CHAT_URL=webhook_receiver.url)
    rule = Switch()
    rule.seen = [_alert("minor", "warning")]
    with Store(settings.store_url) as store:
        evaluate(store, settings, now=now, alerts=alert_settings(settings, env=env),
                 rules={"probe": rule})  # fmt: skip
    assert webhook_receiver.bodies == []
    note = f"1 notification held until {opens:%Y-%m-%d %H:%M} UTC (business hours)"
    for command in (["alerts"], ["alerts", "check"]):
        out = CliRunner().invoke(main, [*command, "--json"], env=env)
        assert out.exit_code == 0, out.output
        (alert,) = json.loads(out.stdout)["alerts"]
        assert (alert["owed"], alert["held"]) == (1, 1)
        assert pd.Timestamp(alert["held_until"]) == pd.Timestamp(opens)
        assert alert["note"] == note
    table = CliRunner().invoke(main, ["alerts"], env={**env, "COLUMNS": "300"})
    assert "held until" in table.stdout and "retried next round" not in table.stdout


# --- 5. Slack escaping of the webhook's text ------------------------------------------------------

SLACKY = "<!channel> see <http://x|label> & co"


def test_the_text_is_escaped_for_slack_and_the_fields_stay_raw(
    tmp_path: Path, webhook_receiver: Receiver, smtp_server: Any
) -> None:
    settings, _ = _env(tmp_path)
    cfg = parse_alert_settings(
        {"notifiers": {
            "chat": {"kind": "webhook", "url_env": "CHAT_URL"},
            "mail": {"kind": "email", "host": "127.0.0.1", "port": smtp_server.port,
                     "username": SMTP_USER, "password_env": "SMTP_PASSWORD",
                     "from": "lsops@example.com", "to": ["oncall@example.com"],
                     "ca_file": smtp_server.cert}}},
        env={"CHAT_URL": webhook_receiver.url, "SMTP_PASSWORD": SMTP_PASSWORD},
    )  # fmt: skip
    rule = Switch()
    rule.seen = [_alert("probe", summary=SLACKY)]
    with Store(settings.store_url) as store:
        evaluate(store, settings, now=T0, alerts=cfg, rules={"probe": rule})
    (body,) = webhook_receiver.bodies
    assert body["text"] == (
        "[FIRING] critical probe (default): &lt;!channel&gt; see &lt;http://x|label&gt; "
        "&amp; co (since 2026-10-01 00:00 UTC)"
    )
    assert body["alert"]["summary"] == SLACKY
    (mail,) = smtp_server.messages  # the email shows the line itself
    assert (
        mail["Subject"]
        == f"[FIRING] critical probe (default): {SLACKY} (since 2026-10-01 00:00 UTC)"
    )


# --- 6. the resolved notification ------------------------------------------------------------------


def test_a_resolved_notification_says_when_it_started_and_how_long_it_lasted(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    settings, _ = _env(tmp_path)
    cfg = _chat(webhook_receiver.url)
    rule = Switch()
    with Store(settings.store_url) as store:
        for minutes, seen in ((5, [_alert(summary="burning its error budget 21.9x")]), (130, [])):
            rule.seen = seen
            evaluate(store, settings, now=T0 + timedelta(minutes=minutes), alerts=cfg,
                     rules={"probe": rule})  # fmt: skip
    firing, resolved = webhook_receiver.bodies
    assert set(firing["alert"]) == {"name", "state", "severity", "since", "value", "threshold",
                                    "summary", "target"}  # fmt: skip
    assert resolved["alert"]["state"] == "resolved"
    assert resolved["alert"]["since"] == "2026-10-01T02:10:00Z"  # kept: when it resolved
    assert resolved["alert"]["started"] == "2026-10-01T00:05:00Z"
    assert resolved["alert"]["duration_s"] == 125 * 60
    assert resolved["text"] == (
        "[RESOLVED] critical probe (default): fired for 2 h 05 min from 2026-10-01 00:05 UTC "
        "(resolved 2026-10-01 02:10 UTC)"
    )
    # the payload of a row, as state.py builds it
    row = {"name": "n", "severity": "warning", "since": 7_200_000, "fired_at": 3_600_000,
           "target": "t"}  # fmt: skip
    assert payload(row, "resolved")["alert"]["duration_s"] == 3600
