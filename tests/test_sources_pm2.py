"""pm2 (issue 10): `pm2 jlist` captured from a real pm2 5.4.3 (tests/data/samples/
pm2-jlist.json, its source named in the README there), run through a `pm2` stand-in
script; and the checklist's four lines fed by pm2, Sentry and the logs."""

from __future__ import annotations

import json
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.analysis import checklist
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.sources import collect_sources
from lsops_lib.sources.checks import source_checks
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.pm2 import parse_jlist
from lsops_lib.sources.settings import (
    LogSettings,
    Pm2Settings,
    SentrySettings,
    SourceSettings,
    source_settings,
)
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log, pm2_sample

pytestmark = pytest.mark.timeout(120)
JLIST = Path(__file__).parent / "data" / "samples" / "pm2-jlist.json"
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)


def _fake_pm2(folder: Path, payload: str, code: int = 0) -> Path:
    data = folder / "jlist.out"
    data.write_text(payload)
    script = folder / "pm2"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"sys.stdout.write(open({str(data)!r}).read())\n"
        f"sys.stderr.write('[PM2] daemon not running\\n' if {code} else '')\n"
        f"sys.exit({code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_the_captured_jlist_gives_the_app_and_never_its_environment() -> None:
    text = JLIST.read_text()
    started = json.loads(text)[0]["pm2_env"]["pm_uptime"] / 1000
    now = datetime.fromtimestamp(started + 3600, UTC)
    (proc,) = parse_jlist(">>>> In-memory PM2 is out-of-date, do:\n" + text, "longsang-api", now)
    assert proc == {
        "app": "longsang-api",
        "pm_id": 0,
        "pid": 2968,
        "status": "online",
        "restarts": 1,
        "unstable_restarts": 0,
        "cpu": 1.8,
        "memory": 57688064,
        "uptime_s": pytest.approx(3600.0),
    }
    assert "sk-EXAMPLE" not in json.dumps(proc)
    assert parse_jlist(text, "other-app", now) == []


def test_garbled_figures_are_unknown_and_the_rest_is_stored(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """monit.memory 1e30, an infinite cpu, a negative restart count, a pid beyond 64 bits:
    each is unknown (None); the sample is stored, not the collection failed."""
    data = json.loads(JLIST.read_text())
    data[0]["monit"] = {"memory": 1e30, "cpu": "Infinity"}
    data[0]["pm2_env"]["restart_time"] = -3
    data[0]["pid"] = 2**70
    now = datetime.fromtimestamp(data[0]["pm2_env"]["pm_uptime"] / 1000 + 60, UTC)
    (proc,) = parse_jlist(json.dumps(data), "longsang-api", now)
    assert (proc["memory"], proc["cpu"], proc["restarts"], proc["pid"]) == (None,) * 4
    assert proc["pm_id"] == 0 and proc["uptime_s"] == pytest.approx(60.0)
    script = _fake_pm2(tmp_path, json.dumps(data))
    settings = SourceSettings(pm2=Pm2Settings(command=str(script), enabled=True))
    (ok,) = collect_sources(sqlite_store, settings, target="default", clock=lambda: T0)
    assert ok.ok and ok.items == 1, ok.error
    samples = tables.pm2_samples(sqlite_store, "default", None, None)
    assert samples["memory"].isna().all() and list(samples["status"]) == ["online"]


def test_pm2_is_collected_and_fails_on_its_own(sqlite_store: Store, tmp_path: Path) -> None:
    script = _fake_pm2(tmp_path, JLIST.read_text())
    settings = SourceSettings(pm2=Pm2Settings(command=str(script), enabled=True))
    (ok,) = collect_sources(sqlite_store, settings, target="default", clock=lambda: T0)
    assert ok.ok and ok.items == 1
    samples = tables.pm2_samples(sqlite_store, "default", None, None)
    assert list(samples["cpu"]) == [1.8] and list(samples["status"]) == ["online"]
    for path in tmp_path.glob("*.sqlite*"):
        assert b"sk-EXAMPLE" not in path.read_bytes()

    wrong = SourceSettings(pm2=Pm2Settings(app="nope", command=str(script), enabled=True))
    (missing,) = collect_sources(sqlite_store, wrong, target="default")
    assert not missing.ok and "does not run an app named 'nope'" in str(missing.error)
    down = _fake_pm2(tmp_path, "", code=1)
    (failed,) = collect_sources(
        sqlite_store,
        SourceSettings(pm2=Pm2Settings(command=str(down), enabled=True)),
        target="default",
    )
    assert failed.error == "pm2: pm2 jlist failed: [PM2] daemon not running"


def test_lsops_pm2_switch() -> None:
    assert not source_settings(None, env={"LSOPS_PM2": "off"}).pm2.configured
    on = source_settings(None, env={"LSOPS_PM2": "on"}).pm2
    assert on.configured and on.command == "pm2" and on.app == "longsang-api"
    path = source_settings(None, env={"LSOPS_PM2": "/opt/bin/pm2"}).pm2
    assert path.configured and path.command == "/opt/bin/pm2"


def _fill(store: Store, tmp_path: Path) -> SourceSettings:
    """A day with: pm2 CPU samples 10..100 % (p95 by hand below), Sentry issues (one
    fatal unresolved, one error first seen 10 days ago still unresolved, one resolved),
    and log files with a fatal line and a new error pattern."""
    cpu = [10.0 * k for k in range(1, 11)]  # 10 samples
    for k, value in enumerate(cpu):
        tables.record_pm2(
            store,
            "default",
            T0 + timedelta(minutes=5 * k),
            [pm2_sample(value, restarts=k // 4)],
        )
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    issues = [
        ("1", "fatal", "unresolved", T0 + timedelta(hours=1)),
        ("2", "error", "unresolved", T0 - timedelta(days=10)),
        ("3", "error", "resolved", T0 - timedelta(days=20)),
    ]
    tables.record_sentry_issues(
        store,
        "default",
        T0 + timedelta(hours=2),
        [
            {
                "issue_id": i,
                "short_id": f"API-{i}",
                "title": f"t{i}",
                "culprit": "",
                "level": lvl,
                "status": st,
                "substatus": None,
                "first_seen": ms(first),
                "last_seen": ms(T0 + timedelta(hours=2)),
                "events": 1,
                "users": 1,
                "permalink": "",
            }
            for i, lvl, st, first in issues
        ],
        [],
    )
    log = Pm2Log(tmp_path)
    log.write(
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        T0 + timedelta(hours=1),
    )
    log.write(
        "❌ Express Error: Database query timeout after 8712ms", T0 + timedelta(hours=1, minutes=1)
    )
    settings = SourceSettings(
        sentry=SentrySettings(org="o", project="p", token="t"),
        logs=LogSettings(paths=(str(tmp_path / "api-*.log"),)),
        pm2=Pm2Settings(enabled=True),
    )
    collect_logs(store, settings, "default")
    for name in ("sentry", "logs", "pm2"):
        tables.record_source_run(
            store, "default", name, T0 + timedelta(hours=2), ok=True, items=1, error=None
        )
    return settings


def test_the_four_checklist_lines_with_their_figures(store: Store, tmp_path: Path) -> None:
    settings = _fill(store, tmp_path)
    end = T0 + timedelta(days=1)
    checks = source_checks(store, T0, end, Thresholds(), target="default", sources=settings)
    # p95 of 10, 20, ..., 100 with linear interpolation: 95.5 % of one core
    assert checks["cpu"].status == "fail" and checks["cpu"].value == pytest.approx(0.955)
    assert checks["cpu"].threshold == pytest.approx(0.70) and "2 restarts" in checks["cpu"].detail
    relaxed = source_checks(
        store, T0, end, Thresholds(cpu_percent=96), target="default", sources=settings
    )
    assert relaxed["cpu"].status == "pass"
    # 1 unresolved fatal Sentry issue + 1 fatal log entry
    assert (checks["critical_errors"].status, checks["critical_errors"].value) == ("fail", 2)
    assert checks["critical_errors"].severity == "critical"
    assert checks["critical_errors"].detail == (
        "1 unresolved fatal Sentry issue; 1 fatal log entry (FATAL ERROR, Unhandled, heap out "
        "of memory)"
    )
    # new error log patterns: the heap one and the timeout one; new Sentry issues: "1"
    assert (checks["new_error_patterns"].status, checks["new_error_patterns"].value) == ("fail", 3)
    assert checks["new_error_patterns"].detail.startswith("2 new error log patterns (first: ")
    assert checks["new_error_patterns"].detail.endswith(
        "; 1 new Sentry issue of level error or fatal"
    )
    # unresolved and first seen more than 7 days before the end: issue "2" only
    assert (checks["errors_resolved"].status, checks["errors_resolved"].value) == ("fail", 1)
    later = source_checks(
        store,
        T0,
        end,
        Thresholds(errors_resolve_within=11),
        target="default",
        sources=settings,
    )
    assert later["errors_resolved"].status == "pass"
    # a window with no collection of the configured sources: unknown (not observed: no
    # data is neither a pass nor a fail, QA 24), saying so and when the last one was
    quiet = source_checks(store, end, end + timedelta(days=1), target="default", sources=settings)
    assert {c.status for c in quiet.values()} == {"unknown"}
    assert "is `lsops collect` running" in quiet["cpu"].detail
    assert "(the last: 2026-10-16 10:00 UTC)" in quiet["cpu"].detail

    full = checklist(store, T0, end, Thresholds(), target="default", sources=settings)
    keys = [c.key for c in full]
    assert keys[-6:] == [
        "memory",
        "cpu",
        "critical_errors",
        "error_rate_stable",
        "new_error_patterns",
        "errors_resolved",
    ]


def test_lsops_checklist_shows_the_lines_and_their_settings(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    Store(url).close()  # an empty store: a missing one is no checklist at all
    env = {**lsops_env, "LSOPS_STORE": url, "LSOPS_PM2": "off"}
    result = CliRunner().invoke(main, ["checklist", "--json"], env=env)
    checks = {c["key"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["cpu"]["status"] == "unknown" and "[pm2]" in checks["cpu"]["detail"]
    assert "[sentry]" in checks["errors_resolved"]["detail"]
    assert "[logs]" in checks["new_error_patterns"]["detail"]
    assert checks["critical_errors"]["name"] == "No critical errors"


def _pm2_sample(store: Store, ts: datetime, restarts: int) -> None:
    tables.record_pm2(
        store,
        "default",
        ts,
        [
            {
                "app": "longsang-api",
                "pm_id": 0,
                "pid": 1,
                "status": "online",
                "restarts": restarts,
                "unstable_restarts": 0,
                "cpu": 1.0,
                "memory": 1,
                "uptime_s": 1.0,
            }
        ],
    )


def test_log_bursts_and_pm2_restarts_the_scrapes_did_not_see_are_incidents(
    sqlite_store: Store, tmp_path: Path
) -> None:
    from lsops_lib.analysis import incidents
    from tests.fixtures.analysis import History

    log = Pm2Log(tmp_path)
    for hour in range(6):  # 2 error entries an hour, then 12 (3 fatal) in hour 3
        burst = hour == 3
        for k in range(12 if burst else 2):
            text = (
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
                if burst and k < 3
                else f"❌ Express Error: connect ECONNREFUSED 127.0.0.1:5432 ({k})"
            )
            log.write(text, T0 + timedelta(hours=hour, minutes=k))
    collect_logs(sqlite_store, SourceSettings(logs=LogSettings(paths=(str(log.path),))), "default")
    # the API restarted (scrapes saw it) at 01:30; pm2 counted that one and a crash at 04:30
    h = History(sqlite_store, start=T0)
    for minute in range(0, 6 * 60 + 1, 30):
        if minute == 90:
            h.restart()
        h.scrape(at=T0 + timedelta(minutes=minute))
    for minute, restarts in [(0, 4), (60, 4), (120, 5), (240, 5), (300, 6), (360, 6)]:
        _pm2_sample(sqlite_store, T0 + timedelta(minutes=minute), restarts)

    found = incidents(sqlite_store, T0, T0 + timedelta(hours=7), Thresholds(), target="default")
    mine = found[found["kind"].isin(["log_burst", "pm2_restart"])]
    assert [(r.kind, r.start, r.end, r.severity) for r in mine.itertuples()] == [
        ("log_burst", T0 + timedelta(hours=3), T0 + timedelta(hours=4), "critical"),
        ("pm2_restart", T0 + timedelta(hours=4), T0 + timedelta(hours=5), "warning"),
    ]
    burst = mine.iloc[0]
    assert burst["detail"].startswith("12 error log entries in 1 h (3 fatal")
    assert "top pattern (9): ❌ Express Error: connect ECONNREFUSED <IP> (<NUM>)" in burst["detail"]
    quieter = incidents(
        sqlite_store, T0, T0 + timedelta(hours=7), Thresholds(log_burst_min=13), target="default"
    )
    assert "log_burst" not in set(quieter["kind"])
    # a window ending in the burst's hour (as "now" would): it ends there, ongoing
    cut = T0 + timedelta(hours=3, minutes=20)
    (mid,) = incidents(
        sqlite_store, T0, cut, Thresholds(), target="default", kinds=("log_burst",)
    ).itertuples()
    assert (mid.start, mid.end, mid.duration_s, mid.ongoing) == (
        T0 + timedelta(hours=3),
        cut,
        1200.0,
        True,
    )


def test_the_alerts_of_new_source_items_follow_the_sources_contract(
    store: Store, tmp_path: Path
) -> None:
    """A new error-level log pattern alerts with its template (one line, not the first
    whole entry), keyed by its pattern id; a new fatal Sentry issue by its id and title."""
    from lsops_lib.alerts.rules import RuleConfig
    from lsops_lib.alerts.rules_sources import log_error_pattern, sentry_fatal
    from lsops_lib.alerts.settings import AlertSettings
    from lsops_lib.sources.views import new_error_log_patterns

    _fill(store, tmp_path)
    now = T0 + timedelta(hours=3)
    config = RuleConfig(settings=None, alerts=AlertSettings())  # the sources were collected
    logs = log_error_pattern(store, now, config, "default")
    assert logs is not None and len(logs) == 2, config.why
    want = {
        f"log_error_pattern:{p['pattern_id']}": f"new error log pattern: {p['template']}"
        for p in new_error_log_patterns(store, "default", now - timedelta(days=1), now)
    }
    assert {a.key: a.summary for a in logs} == want
    assert any("heap out of memory" in a.summary for a in logs)
    assert all("\n" not in a.summary for a in logs)
    sentry = sentry_fatal(store, now, config, "default")
    assert sentry is not None
    assert [(a.key, a.summary) for a in sentry] == [
        ("sentry_fatal:1", "new fatal Sentry issue 1: t1")
    ]
