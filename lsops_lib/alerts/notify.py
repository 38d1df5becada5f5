"""Notifiers: where a firing or resolved alert is told. One JSON payload for all:

    {"text": "one readable line",
     "alert": {"name", "state" (firing | resolved), "severity" (critical | warning),
               "since", "value", "threshold", "summary", "target",
               resolved only: "started" (when it began firing), "duration_s"}}

`text` is Slack-compatible: &, < and > escaped as Slack requires (&amp; &lt; &gt;), so
that an alert quoting `<!channel>` or `<http://x|label>` shows it, never turns it into
markup; the `alert` fields are raw (JSON escaping only); the email shows the line itself.

Kinds (`[alerts.notifiers.NAME] kind = ...`, settings.py):

    webhook  HTTP POST of the payload as JSON; the URL from the environment variable
             `url_env`; 2xx is delivered
    email    SMTP with STARTTLS (and login with the password from `password_env`); a
             text part and an HTML part, every field escaped
    command  the program run with the payload as JSON on standard input; exit 0 is delivered

Each attempt, as a whole, is bounded by the notifier's `timeout_s`: at the deadline the
connection is shut down however slowly the peer answers (a webhook is judged on its
status, its body is not waited for), the command is killed with its whole process group
(nothing it started delivers late). Deliveries to different notifiers run in parallel,
those to one notifier in order (a failure holds the later ones back, so `resolved` never
overtakes `firing`; a newer state replaces what is still owed, state.py). An error is one short line that never
contains a secret (URLs, passwords and anything the settings hold as secret are masked).
"""

from __future__ import annotations

import html
import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from .. import fmt
from .settings import AlertSettings, NotifierSettings

__all__ = ["deliver_entries", "payload", "send", "test_payload", "text_line"]

MAX_ERROR = 300
NO_NOTIFIER = "notifier no longer configured"  # the error of an entry dropped, not retried


def _instant(ms: Any) -> str | None:
    if ms is None:
        return None
    from ..times import from_ms

    return from_ms(ms).isoformat().replace("+00:00", "Z")


def text_line(alert: dict[str, Any]) -> str:
    """The readable line: `[FIRING] critical api_down (prod): summary (since ...)`; for a
    resolved alert (its `since` is when it resolved) how long it fired from when, not the
    figures of its last firing (they are past; `summary` keeps them): `[RESOLVED]
    critical api_down (prod): fired for 2 h 05 min from ... (resolved ...)`."""
    since = fmt.instant(alert["since"]) if alert.get("since") else fmt.DASH
    summary = " ".join(str(alert.get("summary") or "").split())
    head = f"[{alert['state'].upper()}] {alert['severity']} {alert['name']} ({alert['target']})"
    if alert.get("state") != "resolved":
        return f"{head}: {summary} (since {since})"
    fired = "no longer firing"
    if alert.get("started") and alert.get("duration_s") is not None:
        fired = (
            f"fired for {fmt.duration(alert['duration_s'])} from {fmt.instant(alert['started'])}"
        )
    return f"{head}: {fired} (resolved {since})"


def payload(row: dict[str, Any], state: str) -> dict[str, Any]:
    """The notification of an alert row in `state` (firing | resolved). A resolved one
    also has `started` (when it began firing) and `duration_s` (how long it fired)."""
    alert = {
        "name": row["name"],
        "state": state,
        "severity": row["severity"],
        "since": _instant(row["since"]),
        "value": row.get("value"),
        "threshold": row.get("threshold"),
        "summary": row.get("summary") or "",
        "target": row["target"],
    }
    if state == "resolved":
        fired, ended = row.get("fired_at"), row.get("since")
        alert["started"] = _instant(fired)
        alert["duration_s"] = None if fired is None or ended is None else (ended - fired) / 1000
    return {"text": _slack(text_line(alert)), "alert": alert}


def _slack(text: str) -> str:
    """The payload's `text` as Slack reads it: &, <, > escaped (Slack's "Escaping text"),
    so that a log line's `<!channel>` or `<http://x|label>` is shown, never markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unslack(text: str) -> str:
    """The line itself again (for the email, which escapes for HTML on its own)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_payload(target: str, now: datetime) -> dict[str, Any]:
    alert = {
        "name": "lsops_test",
        "state": "firing",
        "severity": "warning",
        "since": now.isoformat().replace("+00:00", "Z"),
        "value": None,
        "threshold": None,
        "summary": "a test notification from `lsops alerts test`: nothing is wrong",
        "target": target,
    }
    return {"text": _slack(text_line(alert)), "alert": alert}


def _mask(text: str, secrets: Iterable[str]) -> str:
    line = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"


def _shut(sockets: Iterable[Any]) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on it
        except (OSError, AttributeError):  # already closed, or not connected (None)
            pass


@contextmanager
def _deadline(seconds: float, sockets: Callable[[], Iterable[Any]]) -> Iterator[threading.Event]:
    """Shut the connection's `sockets` down once `seconds` have passed (then the event is
    set), so that a peer answering a byte at a time cannot hold an attempt longer than its
    `timeout_s`: socket timeouts bound each read, not the whole exchange."""
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        _shut(sockets())

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()


def _webhook(n: NotifierSettings, body: dict[str, Any]) -> None:
    import httpx  # here: a report reading the month's alerts never posts (~0.1 s to import)

    sockets: list[Any] = []
    client = httpx.Client(timeout=httpx.Timeout(n.timeout_s))  # its TLS set-up: not timed
    with client, _deadline(n.timeout_s, lambda: list(sockets)) as expired:

        def trace(event: str, info: dict[str, Any]) -> None:  # httpcore's: the socket
            if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
                sockets.append(info["return_value"].get_extra_info("socket"))
                if expired.is_set():  # connected just after the deadline
                    _shut(sockets)

        try:
            with client.stream(
                "POST",
                str(n.secret),
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
                extensions={"trace": trace},
            ) as answer:
                code = answer.status_code  # the verdict: the body is not waited for
        except httpx.TimeoutException:
            raise RuntimeError(f"no answer within {n.timeout_s:g} s") from None
        except Exception as exc:  # noqa: BLE001 - its message may quote the URL (a secret)
            if expired.is_set():
                raise RuntimeError(f"no answer within {n.timeout_s:g} s") from None
            raise RuntimeError(f"{type(exc).__name__}: cannot reach the webhook") from None
    if not 200 <= code < 300:
        raise RuntimeError(f"the webhook answered HTTP {code}")


def _html(body: dict[str, Any]) -> str:
    a = body["alert"]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape('' if v is None else str(v))}</td></tr>"
        for k, v in a.items()
    )
    text = html.escape(_unslack(body["text"]))
    return f"<html><body><p>{text}</p><table>{rows}</table></body></html>"


def _email(n: NotifierSettings, body: dict[str, Any]) -> None:
    message = EmailMessage()
    plain = _unslack(body["text"])
    subject = " ".join(plain.split())[:200]
    if subject.isascii():
        message["Subject"] = subject
    else:  # encoded-words that hold the spaces too: the policy's folding leaves them BETWEEN
        # encoded-words, where readers drop them (RFC 2047 6.2): "Ngânhàngdữliệu"; lines of
        # 76 keep each encoded-word within RFC 2047's 75 characters
        encoded = Header(subject, "utf-8", maxlinelen=76, header_name="Subject").encode()
        message.set_raw("Subject", encoded)
    message["From"] = str(n.sender)
    message["To"] = ", ".join(n.to)
    # RFC 5322 requires Date; a Message-ID lets mail clients and archives tell messages apart
    # (its domain is the sender's: never a DNS lookup of this host's name)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(str(n.sender))[1].rpartition("@")[2] or "lsops.invalid"
    message["Message-ID"] = make_msgid("lsops", domain=domain)
    message.set_content(plain + "\n\n" + json.dumps(body["alert"], indent=2))
    message.add_alternative(_html(body), subtype="html")
    try:  # before the deadline: loading the CA file is not the server's time
        context = ssl.create_default_context(cafile=n.ca_file) if n.starttls else None
    except OSError as exc:  # a ca_file that cannot be read
        raise RuntimeError(f"SMTP: {type(exc).__name__}: {exc}") from None
    smtp = smtplib.SMTP(timeout=n.timeout_s)  # connected below, under the deadline
    smtp._host = str(n.host)  # the name STARTTLS checks (only a connecting constructor sets it)
    with _deadline(n.timeout_s, lambda: [smtp.sock]) as expired:
        try:
            with smtp:
                smtp.connect(str(n.host), n.port)
                if expired.is_set():  # connected just after the deadline
                    raise TimeoutError
                smtp.ehlo()
                if context is not None:
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if n.username:
                    smtp.login(n.username, n.secret or "")
                # smtplib raises only when every recipient is refused; the others it returns
                refused = smtp.send_message(message, to_addrs=list(n.to))
        except (TimeoutError, OSError) as exc:  # smtplib's and ssl's errors are OSErrors
            if expired.is_set():
                raise RuntimeError(f"SMTP: no answer within {n.timeout_s:g} s") from None
            raise RuntimeError(f"SMTP: {type(exc).__name__}: {exc}") from None
    if refused:
        raise Refused(refused)


class Refused(RuntimeError):
    """Some recipients of an email refused (the others got it): `refused` {address:
    (code, reply)}, as smtplib returns them."""

    def __init__(self, refused: dict[str, tuple[int, bytes]]) -> None:
        self.refused = list(refused)
        said = "; ".join(
            f"{to}: {code} {reply.decode(errors='replace')}"
            for to, (code, reply) in refused.items()
        )
        super().__init__(f"SMTP: refused {said}")


def _command(n: NotifierSettings, body: dict[str, Any]) -> None:
    """The command in a session of its own: at the deadline its whole process group is
    killed (a `sh -c` wrapper's children too), so nothing delivers late after the attempt
    was counted as failed (and retried: the receiver would get it twice)."""
    try:
        child = subprocess.Popen(
            list(n.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise RuntimeError(f"cannot run the command: {exc.strerror}") from None
    with child:
        try:
            _, stderr = child.communicate(json.dumps(body).encode(), timeout=n.timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:  # the group is gone already
                pass
            child.wait()  # (a descendant that left the group may hold the pipes: not read)
            raise RuntimeError(f"the command did not finish within {n.timeout_s:g} s") from None
    if child.returncode != 0:
        said = stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"the command exited {child.returncode}" + (f": {said[-1]}" if said else "")
        )


_KINDS = {"webhook": _webhook, "email": _email, "command": _command}


def send(
    n: NotifierSettings,
    body: dict[str, Any],
    secrets: Iterable[str],
    refused: list[str] | None = None,
) -> str | None:
    """Deliver `body` through `n`: None when delivered, else the error (one line, masked).
    An email some recipients refused is not delivered: those are added to `refused`."""
    if n.missing:
        return n.missing
    try:
        _KINDS[n.kind](n, body)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
        if isinstance(exc, Refused) and refused is not None:
            refused += exc.refused
        return _mask(str(exc) or type(exc).__name__, [*secrets, n.secret or ""])
    return None


def deliver_entries(
    entries: list[dict[str, Any]], cfg: AlertSettings, now: datetime, secrets: Iterable[str]
) -> tuple[set[str], list[dict[str, Any]]]:
    """Deliver owed entries ({id, notifier, business_hours, payload}): per notifier in
    order, notifiers in parallel. Returns (ids delivered, attempts for the record).
    Entries of a notifier no longer configured are dropped as failed (`NO_NOTIFIER`);
    entries held to business hours wait outside them. An email some recipients refused
    stays owed to those only: the entry's `to` is narrowed to them (in `entries`, for
    `state.settle` to keep), so the others are not sent it again at each retry."""
    secrets = list(secrets)
    by_notifier: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_notifier.setdefault(entry["notifier"], []).append(entry)
    business = cfg.in_business_hours(now)

    def run(name: str, items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str | None]]:
        done = []
        notifier = cfg.notifiers.get(name)
        for entry in items:
            if entry.get("business_hours") and not business:
                break
            error = NO_NOTIFIER if notifier is None else None
            if notifier is not None:
                if entry.get("to") and notifier.kind == "email":
                    notifier = replace(notifier, to=tuple(entry["to"]))
                refused: list[str] = []
                error = send(notifier, entry["payload"], secrets, refused)
                if refused:
                    entry["to"] = refused
                notifier = cfg.notifiers.get(name)
            done.append((entry, error))
            if error is not None and notifier is not None:
                break
        return done

    delivered: set[str] = set()
    attempts: list[dict[str, Any]] = []
    if not by_notifier:
        return delivered, attempts
    with ThreadPoolExecutor(max_workers=min(8, len(by_notifier))) as pool:
        results = list(pool.map(lambda kv: run(*kv), by_notifier.items()))
    for done in results:
        for entry, error in done:
            if error is None or error == NO_NOTIFIER:
                delivered.add(entry["id"])
            alert = entry["payload"]["alert"]
            attempts.append(
                {"notifier": entry["notifier"], "state": alert["state"],
                 "severity": alert["severity"], "ok": error is None, "error": error}
            )  # fmt: skip
    return delivered, attempts
