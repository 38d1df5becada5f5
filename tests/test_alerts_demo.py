"""The demo's alerts (issue 11, point 6): the planted outage, replayed through the alert
rules into the loopback webhook and SMTP server the demo starts, gives exactly one page
when it starts and one resolution when it ends (the session's `demo_run`, no new run)."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

from tests.fixtures.demo import DemoRun

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres, pytest.mark.slow]


def test_the_outage_pages_once_and_resolves_once(demo_run: DemoRun) -> None:
    folder = demo_run.demo_dir / "alerts"
    bodies = [json.loads(x) for x in (folder / "webhook.jsonl").read_text().splitlines()]
    pages = [b["alert"] for b in bodies if b["alert"]["severity"] == "critical"]
    assert [(a["name"], a["state"]) for a in pages] == [
        ("api_down", "firing"),
        ("api_down", "resolved"),
    ]
    # the planted outage (world.plan: 02:12 - 02:52 UTC, scraped every 5 min): the second
    # unanswered scrape (02:20) pages, the first answer (02:55) resolves
    assert [a["since"][11:16] for a in pages] == ["02:20", "02:55"]
    mails = [message_from_bytes(p.read_bytes(), policy=policy.default)
             for p in sorted((folder / "mail").glob("*.eml"))]  # fmt: skip
    assert [m["Subject"].split()[:3] for m in mails] == [
        ["[FIRING]", "critical", "api_down"],
        ["[RESOLVED]", "critical", "api_down"],
    ]
    assert demo_run.state["alerts"]["notifications"] == [b["alert"] for b in bodies]
    assert "the outage paged: api_down firing 02:20, api_down resolved 02:55" in demo_run.stdout


def _report_text(demo_run: DemoRun, kind: str) -> str:
    import html
    import re

    from lsops_lib.reports import list_runs

    runs = sorted(list_runs(demo_run.outputs, kind), key=lambda r: (r.started, r.run_id))
    assert runs, f"no {kind} run archived"
    page = (runs[0].path / "report.html").read_text()
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_reports_tell_the_alerts(demo_run: DemoRun) -> None:
    # the postmortem's Detection: the page came 8 min after the first unanswered scrape
    # (02:12 planted, seen at 02:15, paged at 02:20), resolved with the first answer
    postmortem = _report_text(demo_run, "postmortem")
    assert "First alert: api_down (critical) at" in postmortem
    assert "Time to detect:" in postmortem and "time to recover:" in postmortem
    # the monthly review: the month's alerts, and every incident checked against them
    review = _report_text(demo_run, "monthly-review")
    assert "paged someone" in review
    assert "Every alert (fired, resolved, time to resolve)" in review
    # and in its key figures: the one page of the outage; the outage is caught
    from lsops_lib import present
    from lsops_lib.reports import list_runs

    first = sorted(list_runs(demo_run.outputs, "monthly-review"), key=lambda r: r.started)[0]
    alerts = present.read_key_figures(first.path / "report.ipynb")["alerts"]
    assert alerts["pages"] == 1
    assert {(a["name"], a["severity"], a["fired"]) for a in alerts["by_name"]} >= {
        ("api_down", "critical", 1)
    }
    assert "no_answer" not in {u["kind"] for u in alerts["uncaught"]}


def test_the_replays_cut_reads_equal_the_stores_reads(demo_run: DemoRun) -> None:
    # demo.alerts.ReplayReads reads the scrape data once over the replay's reach and cuts
    # it per tick: each cut must be the store's own read of that window (rows, values,
    # dtypes), for every window the burn-rate rules and the latest-scrapes read ask for
    from datetime import timedelta

    import pandas as pd

    from lsops_lib.alerts.burnrate import PAGE, TICKET
    from lsops_lib.demo.alerts import AFTER, MARGIN, TICK, ReplayReads, _tick
    from lsops_lib.store import Store
    from lsops_lib.times import parse_time

    start, end = (_tick(parse_time(t)) for t in demo_run.state["plan"]["outage"])
    start, end = start - MARGIN, end + MARGIN
    windows = sorted({w for p in (*PAGE, *TICKET) for w in (p.long_s, p.short_s)} | {86400.0})
    columns = ["ts", "rt_count", "rt_min", "rt_p50", "rt_p95", "rt_p99", "rt_max"]
    latest = ["ts", "ok", "health_status", "failure_kind", "rss"]
    # the ticks the replay may read at: the outage's, and on after it while an alert it saw
    # begin still fires (its reads reach AFTER past the outage): every 3rd tick of the first,
    # every 36th (3 hours) of the rest; each cut is one window of the same 5-minute grid
    ticks = [start + i * TICK for i in range(0, int((end - start) / TICK) + 1, 3)]
    ticks += [end + i * TICK for i in range(36, int(AFTER / TICK) + 1, 36)]
    with Store(f"sqlite:///{demo_run.demo_dir / 'store.sqlite'}") as store:
        target = store.targets()[0]
        reads = ReplayReads(
            store, start - timedelta(seconds=max(windows)), end + AFTER + timedelta(milliseconds=1)
        )
        compared = 0
        for now in ticks:
            for w in windows:
                a = now - timedelta(seconds=w) + timedelta(milliseconds=1)
                b = now + timedelta(milliseconds=1)
                for name, kwargs in (
                    ("health", {"target": target}),
                    ("scrapes", {"target": target, "columns": columns}),
                    ("scrapes", {"target": target, "columns": latest}),
                    ("endpoint_intervals", {"target": target, "bucket": "scrape"}),
                ):
                    got = getattr(reads, name)(a, b, **kwargs)
                    pd.testing.assert_frame_equal(got, getattr(store, name)(a, b, **kwargs))
                    compared += len(got)
    assert compared > 0
