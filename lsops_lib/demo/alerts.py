"""The demo's alerting (issue 11): the planted outage, told as it would have been told.

The history is collected by parallel workers, so the alerts are evaluated afterwards, by
replaying `alerts.evaluate` at every 5-minute tick from 30 minutes before the outage to
30 minutes after it (the rules only ever read what was stored up to their `now`, so the replay
is what a collector evaluating after each round would have done). The notifications go
to two receivers the demo starts on loopback:

    webhook   an HTTP server; every POSTed payload -> <demo folder>/alerts/webhook.jsonl
    email     a minimal SMTP server (no TLS on loopback); every message ->
              <demo folder>/alerts/mail/NNN.eml

The outage gives exactly one page (`api_down` firing) and one resolution: the availability
burn-rate page it also trips is covered by `api_down` (inhibition), so it is not told.
Routing as in the README: pages to both receivers at any hour, warnings (the latency
ticket the demo's month also burns) to the webhook within business hours only.

    run(demo, outage)   the phase "alerts" of `lsops demo`
    replay(...)         `evaluate` at each tick; the rules' scrape reads through
                        `ReplayReads` (read once over the replay's reach, cut per tick)
"""

from __future__ import annotations

import json
import socketserver
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from ..sim.server import serve
from ..store.core import typed_texts
from ..times import stamps_to_ms, to_ms

__all__ = ["MailSink", "ReplayReads", "WebhookSink", "replay", "run"]

FOLDER = "alerts"
MARGIN = timedelta(minutes=30)
AFTER = timedelta(hours=12)  # how far past the incident the replay's reads are read at once
TICK = timedelta(minutes=5)
API_RULES = (
    "api_down", "health_error", "memory_critical", "slo_availability_page",
    "slo_error_rate_page", "slo_latency_page", "slo_availability_ticket",
    "slo_error_rate_ticket", "slo_latency_ticket",
)  # fmt: skip


class WebhookSink:
    """A loopback HTTP server appending every POSTed JSON body to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bodies: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    sink.bodies.append(json.loads(body))
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink.path.open("a") as fh:
                    fh.write(json.dumps(sink.bodies[-1]) + "\n")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/demo-hook"
        serve(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """A minimal SMTP server on loopback (EHLO, MAIL, RCPT, DATA, QUIT): every message is
    saved under `folder` as NNN.eml."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.messages: list[bytes] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def say(self, text: str) -> None:
                self.wfile.write((text + "\r\n").encode())

            def handle(self) -> None:
                self.say("220 lsops-demo ESMTP")
                while True:
                    raw = self.rfile.readline(65536)
                    if not raw:
                        return
                    verb = raw.decode(errors="replace").strip().split(" ")[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.say("250 lsops-demo")
                    elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                        self.say("250 OK")
                    elif verb == "DATA":
                        self.say("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (line := self.rfile.readline(65536)) not in (b".\r\n", b".\n", b""):
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        sink.save(b"".join(lines))
                        self.say("250 OK")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        serve(self.server)

    def save(self, message: bytes) -> None:
        self.messages.append(message)
        (self.folder / f"{len(self.messages):03d}.eml").write_bytes(message)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ReplayReads:
    """The store as the replay's rules read it: each of their reads of scrape data
    (`health`, `scrapes`, `endpoint_intervals` by scrape) made once over the replay's
    whole reach [lo, hi) and cut to each tick's window, instead of read again at every
    tick (a tick's reads of the longest burn-rate window cost ~0.2 s: most of the phase).

    A cut is the read of the narrower window: every row is one scrape (or one scrape and
    endpoint) filed at its own ts, and its figures do not depend on the window (a delta's
    predecessor is found wherever it lies: `Store.endpoint_intervals`). Windows that
    reach outside [lo, hi), other buckets, empty cuts and everything else (the alert
    state the rules write) go to the store itself. The scrapes must not change meanwhile
    (the demo replays once the history is collected)."""

    def __init__(self, store: Any, lo: datetime, hi: datetime) -> None:
        self._store = store
        self._lo, self._hi = to_ms(lo), to_ms(hi)
        self._lo_at, self._hi_at = lo, hi
        self._whole: dict[tuple[Any, ...], tuple[pd.DataFrame, np.ndarray]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _cut(
        self, key: tuple[Any, ...], start: Any, end: Any, read: Callable[..., pd.DataFrame]
    ) -> pd.DataFrame | None:
        if start is None or end is None:
            return None
        a, b = to_ms(start), to_ms(end)
        if a < self._lo or b > self._hi:
            return None
        if key not in self._whole:
            df = read(self._lo_at, self._hi_at)
            self._whole[key] = (df, stamps_to_ms(df["ts"]))
        df, ms = self._whole[key]
        # the reads are ordered by ts (and endpoint): the window is one run of rows
        i, j = np.searchsorted(ms, a, side="left"), np.searchsorted(ms, b, side="left")
        if i >= j:
            return None  # an empty read: the store's own (its dtypes)
        return typed_texts(df.iloc[i:j].reset_index(drop=True))

    def health(self, start: Any = None, end: Any = None, target: str | None = None) -> Any:
        got = self._cut(
            ("health", target), start, end, lambda a, b: self._store.health(a, b, target=target)
        )
        return self._store.health(start, end, target=target) if got is None else got

    def scrapes(
        self,
        start: Any = None,
        end: Any = None,
        target: str | None = None,
        columns: Any = None,
    ) -> Any:
        cols = None if columns is None else tuple(columns)
        got = None
        if cols is not None and "ts" in cols:
            got = self._cut(
                ("scrapes", target, cols),
                start,
                end,
                lambda a, b: self._store.scrapes(a, b, target=target, columns=list(cols)),
            )
        return (
            self._store.scrapes(start, end, target=target, columns=columns) if got is None else got
        )

    def endpoint_intervals(
        self, start: Any = None, end: Any = None, *, bucket: str = "hour", **kwargs: Any
    ) -> Any:
        got = None
        if bucket == "scrape":
            got = self._cut(
                ("intervals", tuple(sorted(kwargs.items()))),
                start,
                end,
                lambda a, b: self._store.endpoint_intervals(a, b, bucket="scrape", **kwargs),
            )
        if got is None:
            return self._store.endpoint_intervals(start, end, bucket=bucket, **kwargs)
        return got


def replay(
    store: Any,
    settings: Any,
    target: str,
    start: datetime,
    end: datetime,
    cfg: Any,
    *,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """`evaluate` at every tick of [start, end] (the API rules), then on while an alert
    that began within them is still pending or firing (a ticket's long window outlasts the
    incident; one firing at the first tick began before: not followed), and once more
    when business hours open if notifications are held to them: as a collector would
    have, up to `until` (the history's end; default `end`). The notifications sent.
    The rules' reads of scrape data go through `ReplayReads` (read once, cut per tick)."""
    from ..alerts import RULES, evaluate
    from ..alerts.rules import LATEST_SPAN, burn_windows

    until = end if until is None else max(until, end)
    rules = {name: RULES[name] for name in API_RULES}
    reach = max([*burn_windows(cfg), LATEST_SPAN.total_seconds()])
    hi = min(until, end + AFTER) + timedelta(milliseconds=1)  # later ticks: the store's reads
    reads = ReplayReads(store, start - timedelta(seconds=reach), hi)
    sent: list[dict[str, Any]] = []

    def tick(now: datetime) -> dict[str, Any]:
        result = evaluate(reads, settings, target=target, now=now, alerts=cfg, rules=rules)
        sent.extend({"at": now, **n} for n in result["notifications"])
        return result

    result = tick(start)
    before = _live(result)  # firing at the first tick: an episode the replay did not see begin
    now = start + TICK
    while now <= end or (now <= until and _live(result) - before):
        result = tick(now)
        now += TICK
    held = any(a["held"] for a in result["alerts"])
    opens = cfg.business_opens(now) if held else None
    if opens is not None and opens <= until:
        tick(_tick(opens + TICK - timedelta(microseconds=1)))  # the first tick at or after
    return sent


def _live(result: dict[str, Any]) -> set[str]:
    """The alerts pending or firing after a tick."""
    return {a["key"] for a in result["alerts"] if a["state"] in ("pending", "firing")}


def run(demo: Any, outage: dict[str, Any]) -> dict[str, Any]:
    """The phase "alerts": the receivers, the replay around the outage, one line printed."""
    from ..alerts import parse_alert_settings
    from ..config import load_settings
    from ..store import Store
    from ..times import parse_time

    folder = demo.folder.dir / FOLDER
    (folder / "mail").mkdir(parents=True, exist_ok=True)
    (folder / "webhook.jsonl").unlink(missing_ok=True)
    for old in (folder / "mail").glob("*.eml"):
        old.unlink()
    hook, mail = WebhookSink(folder / "webhook.jsonl"), MailSink(folder / "mail")
    try:
        with demo.phase("alerts") as info:
            settings = load_settings(env=demo.demo_env())
            cfg = parse_alert_settings(
                {
                    "notifiers": {
                        "chat": {"kind": "webhook", "url_env": "DEMO_ALERT_WEBHOOK"},
                        "mail": {"kind": "email", "host": "127.0.0.1", "port": mail.port,
                                 "starttls": False, "from": "lsops-demo@localhost",
                                 "to": ["oncall@localhost"]},
                    },
                    # the README's routing: pages to both at any hour, warnings to chat
                    # within business hours only (the outage is at night: they wait)
                    "route": [
                        {"severity": "critical", "notify": ["chat", "mail"]},
                        {"severity": "warning", "notify": ["chat"], "business_hours": True},
                    ],
                    "business_hours": "09:00-18:00",
                },
                env={"DEMO_ALERT_WEBHOOK": hook.url},
            )  # fmt: skip
            start = _tick(parse_time(outage["start"])) - MARGIN
            end = _tick(parse_time(outage["end"])) + MARGIN
            with Store(demo.folder.store_url) as store:
                target = (store.targets() or [settings.target.name])[0]
                last = store.scrapes(target=target, columns=["ts"])["ts"].max()
                until = _tick(last.to_pydatetime()) if pd.notna(last) else end
                sent = replay(store, settings, target, start, end, cfg, until=until)
            told = [b["alert"] for b in hook.bodies]
            pages = [a for a in told if a["severity"] == "critical"]
            said = ", ".join(f"{a['name']} {a['state']} {a['since'][11:16]}" for a in pages)
            held = sum(1 for a in told if a["severity"] != "critical")
            info["detail"] = (
                f"the outage paged: {said or 'nothing'} (webhook and "
                f"{fmt.counted(len(mail.messages), 'mail')} on loopback, in {FOLDER}/)"
                + (
                    f"; {fmt.counted(held, 'warning')} told"
                    if held
                    else "; warnings wait for business hours"
                )
            )
        return {
            "notifications": told,
            "mails": len(mail.messages),
            "failed": [n for n in sent if not n["ok"]],
            "folder": str(folder),
        }
    finally:
        hook.close()
        mail.close()


def _tick(at: datetime) -> datetime:
    """`at` on the 5-minute grid (down)."""
    seconds = at.timestamp() // TICK.total_seconds() * TICK.total_seconds()
    return datetime.fromtimestamp(seconds, at.tzinfo)
