"""Alerts (issue 11) through the CLI and the other sources: `lsops alerts check` judges
the selected target, `lsops collect` evaluates after its round (one target and
--all-targets), `lsops alerts test` names the notifier that failed; the capacity alert
(issue 15's forecast), the backup age and the Sentry / log rules (issue 10's sources,
a stand-in module here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lsops_lib.alerts import evaluate, parse_alert_settings
from lsops_lib.config import load_settings
from lsops_lib.store import Store
from tests.fixtures.alerts import SMTP_USER, Receiver, command_received
from tests.fixtures.alerts import alert_env as _env
from tests.fixtures.alerts import told as _states
from tests.fixtures.store import make_scrape

pytestmark = pytest.mark.timeout(180)

T0 = datetime(2026, 10, 1, tzinfo=UTC)


# --- the CLI: the selected target, and the collector's hook -------------------------------------


def _now_minutes(back: float) -> float:
    """make_scrape's minute (after tests.fixtures.store.T0) of `back` minutes ago."""
    from tests.fixtures.store import T0 as STORE_T0

    return (datetime.now(UTC) - STORE_T0).total_seconds() / 60 - back


def test_alerts_check_judges_the_selected_target(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lsops_lib.cli import main

    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    with Store(url) as store:
        for back in (10, 5):  # bravo does not answer; alpha does
            store.record_scrape(make_scrape(_now_minutes(back), None, target="bravo"))
            store.record_scrape(make_scrape(_now_minutes(back), {"/p": (10, 5.0, 0.0)},
                                            target="alpha"))  # fmt: skip
    config = tmp_path / "lsops.toml"
    config.write_text(
        f'[targets.alpha]\nurl = "http://127.0.0.1:9"\n[targets.bravo]\nurl = "http://127.0.0.1:9"\n'
        f'[store]\nurl = "{url}"\n'
    )
    runner = CliRunner()
    for options, env, firing in [
        (["--target", "bravo"], {}, ["api_down"]),
        ([], {"LSOPS_TARGET": "bravo"}, ["api_down"]),
        ([], {}, []),  # the first target: alpha
    ]:
        out = runner.invoke(main, ["--config", str(config), *options, "alerts", "check", "--json"],
                            env=env)  # fmt: skip
        assert out.exit_code == 0, out.output
        doc = json.loads(out.stdout)
        assert [a["name"] for a in doc["alerts"] if a["state"] == "firing"] == firing
        listing = runner.invoke(main, ["--config", str(config), *options, "alerts", "--json"],
                                env=env)  # fmt: skip
        assert [a["name"] for a in json.loads(listing.stdout)["alerts"]] == firing
        # nothing to note: null in JSON (not the table's dash), the dash in the table
        assert [a["note"] for a in doc["alerts"] + json.loads(listing.stdout)["alerts"]] == [
            None
        ] * (2 * len(firing))
    table = runner.invoke(main, ["--config", str(config), "--target", "bravo", "alerts"],
                          env={"COLUMNS": "250"})  # fmt: skip
    (row,) = [r for r in table.stdout.splitlines() if r.startswith("│ firing")]
    assert row.split("│")[-2].strip() == "–", row


def test_collect_once_evaluates_the_rules_after_its_round(
    tmp_path: Path, webhook_receiver: Receiver
) -> None:
    import socket

    from click.testing import CliRunner

    from lsops_lib.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {
        "LSOPS_API_URL": dead,
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'c.sqlite'}",
        "LSOPS_ALERT_WEBHOOK": webhook_receiver.url,
    }
    runner = CliRunner()
    for _ in range(2):  # down_after = 2: the second unanswered round pages
        out = runner.invoke(main, ["collect", "--once", "--json"], env=env)
        assert out.exit_code == 1  # the API did not answer (the failure is stored)
        assert "Traceback" not in out.output and "secret-token-123" not in out.output
    assert _states(webhook_receiver.bodies) == [("api_down", "firing", "critical")]


# --- capacity (issue 15's forecast) ----------------------------------------------------------


def test_capacity_alert_when_the_limit_is_closer_than_the_warning_days(tmp_path: Path) -> None:
    from lsops_lib.alerts import RULES

    mib, gib = 2**20, 2**30
    day0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    (tmp_path / "lsops.toml").write_text("[thresholds]\ndatabase_size_limit_bytes = 2147483648\n")
    env = {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'cap.sqlite'}",
        "LSOPS_CONFIG": str(tmp_path / "lsops.toml"),
        "LSOPS_DATABASE_URL": "postgresql://lsops@127.0.0.1:9/never_connected",
    }
    settings = load_settings(env=env, cwd=tmp_path)
    cfg = parse_alert_settings({}, env={})
    rules = {"capacity": RULES["capacity"]}

    def snapshot(store: Store, day: int) -> None:
        import pandas as pd

        total = gib + 10 * mib * day  # 10 MiB a day from 1 GiB
        frame = pd.DataFrame([{"schema": "public", "table": "context_embeddings",
                               "total_bytes": total, "table_bytes": total, "index_bytes": 0,
                               "toast_bytes": 0, "rows_estimate": 0}])  # fmt: skip
        store.record_db_sizes("default", day0 + timedelta(days=day), frame)

    def judge(store: Store, now: datetime) -> dict[str, Any]:
        return evaluate(store, settings, now=now, alerts=cfg, rules=rules)

    with Store(settings.store_url) as store:
        for day in range(3):
            snapshot(store, day)
        assert judge(store, day0 + timedelta(days=3))["rules"][0]["status"] == "skipped"
        for day in range(3, 30):
            snapshot(store, day)
        # by hand: 1 GiB + 290 MiB on day 29, 734 MiB to go at 10 MiB a day: 73.4 days
        # later, day 102.4 = 2026-04-13; on 2026-03-01 that is 43 days away, on 03-20 24
        assert judge(store, datetime(2026, 3, 1, tzinfo=UTC))["alerts"] == []
        (alert,) = judge(store, datetime(2026, 3, 20, tzinfo=UTC))["alerts"]
    assert (alert["name"], alert["state"], alert["severity"]) == ("capacity", "firing", "warning")
    assert alert["value"] == 24 and alert["threshold"] == 30
    assert "2026-04-13" in alert["summary"]


def test_backup_age_and_the_sources_rules(tmp_path: Path) -> None:
    """The Sentry and log rules judge only where the source is configured (or collected
    into the store); then a new fatal Sentry issue, stored as `lsops collect` stores it,
    fires `sentry_fatal`; a backup check older than [backups] max_age fires backup_too_old."""
    from lsops_lib.alerts import RULES
    from lsops_lib.sources.sentry import issue_row
    from lsops_lib.store.backups import record_backup_check
    from lsops_lib.store.sources import record_sentry_issues, record_source_run

    settings, _ = _env(tmp_path, '[backups]\nmax_age = "26h"\n')
    cfg = parse_alert_settings({}, env={})
    names = ("backup_too_old", "sentry_fatal", "log_error_pattern")
    rules = {n: RULES[n] for n in names}
    target = settings.target.name
    with Store(settings.store_url) as store:
        result = evaluate(store, settings, now=T0, alerts=cfg, rules=rules)
        assert {r["rule"]: r["status"] for r in result["rules"]} == dict.fromkeys(names, "skipped")
        check = {"status": "OK", "exit_code": 0, "newest": "/b/new.dump",
                 "files": [{"path": "/b/new.dump", "verdict": "ok", "age_s": 3600.0}]}  # fmt: skip
        record_backup_check(store, check, taken_at=T0)
        # 1 h old when checked; 26 h allowed: fine 20 h later, too old 26 h later
        seen = T0 + timedelta(hours=19)
        issue = {"id": "42", "shortId": "API-42", "title": "TypeError: <b>x</b>",
                 "level": "fatal", "status": "unresolved", "count": "3",
                 "firstSeen": seen.isoformat(), "lastSeen": seen.isoformat()}  # fmt: skip
        record_sentry_issues(store, target, seen, [issue_row(issue)], [], unresolved={"42"})
        record_source_run(store, target, "sentry", seen, ok=True, items=1, error=None)
        result = evaluate(store, settings, now=T0 + timedelta(hours=20), alerts=cfg, rules=rules)
        status = {r["rule"]: r["status"] for r in result["rules"]}
        assert status["log_error_pattern"] == "skipped"  # no logs configured nor collected
        assert [a["name"] for a in result["alerts"]] == ["sentry_fatal"]
        assert result["alerts"][0]["key"] == "sentry_fatal:42"
        assert "TypeError: <b>x</b>" in result["alerts"][0]["summary"]
        result = evaluate(store, settings, now=T0 + timedelta(hours=26), alerts=cfg, rules=rules)
    firing = {a["name"]: a for a in result["alerts"] if a["state"] == "firing"}
    assert set(firing) == {"backup_too_old", "sentry_fatal"}
    assert firing["backup_too_old"]["value"] == pytest.approx(27 * 3600)


def test_alerts_test_says_which_notifier_failed_and_exits_1(
    tmp_path: Path, smtp_server: Any, command_notifier: Any
) -> None:
    from click.testing import CliRunner

    from lsops_lib.cli import main

    argv, received = command_notifier
    toml = (
        f'[alerts.notifiers.mail]\nkind = "email"\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
        f'username = "{SMTP_USER}"\npassword_env = "SMTP_PASSWORD"\nfrom = "a@example.com"\n'
        f'to = ["b@example.com"]\nca_file = "{smtp_server.cert}"\ntimeout_s = 2\n'
        f'[alerts.notifiers.pager]\nkind = "command"\ncommand = {json.dumps(argv)}\n'
    )
    wrong = "wrong-pa55word-abc"
    _, env = _env(tmp_path, toml, SMTP_PASSWORD=wrong)
    out = CliRunner().invoke(main, ["alerts", "test", "--json"], env=env)
    assert out.exit_code == 1, out.output
    results = {n["notifier"]: n for n in json.loads(out.stdout)["notifiers"]}
    assert results["pager"]["ok"] and not results["mail"]["ok"]
    assert results["mail"]["error"].startswith("SMTP: ")  # refused login (aiosmtpd: or a hang)
    assert results["mail"]["where"].startswith("127.0.0.1:")
    assert command_received(received)[0]["alert"]["name"] == "lsops_test"
    text = CliRunner().invoke(main, ["alerts", "test"], env=env)
    assert text.exit_code == 1 and "1 notifier failed" in text.stdout
    for shown in (out.output, text.output):
        assert wrong not in shown
    # no notifier at all: a configuration error (exit 2), one line
    none = CliRunner().invoke(main, ["alerts", "test"], env={**env, "LSOPS_CONFIG": ""})
    assert none.exit_code == 2 and "no notifier configured" in none.stderr


def test_collect_all_targets_alerts_each_target(tmp_path: Path, webhook_receiver: Receiver) -> None:
    import socket

    from click.testing import CliRunner

    from lsops_lib.cli import main

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    config = tmp_path / "lsops.toml"
    config.write_text(
        "".join(f'[targets.{n}]\nurl = "http://127.0.0.1:{p}"\n' for n, p in zip("ab", ports, strict=True))
        + '[alerts]\ndown_after = 1\n'
    )  # fmt: skip
    env = {"LSOPS_STORE": f"sqlite:///{tmp_path / 'all.sqlite'}",
           "LSOPS_ALERT_WEBHOOK": webhook_receiver.url}  # fmt: skip
    out = CliRunner().invoke(main, ["--config", str(config), "collect", "--once", "--all-targets"],
                             env=env)  # fmt: skip
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert sorted((b["alert"]["target"], b["alert"]["name"]) for b in webhook_receiver.bodies) == [
        ("a", "api_down"), ("b", "api_down")]  # fmt: skip
