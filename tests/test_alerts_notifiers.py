"""The notifiers against real loopback peers (issue 11): a mail subject in Vietnamese
keeps its spaces for an RFC 2047 reader, and no notifier waits longer than its
`timeout_s` however slowly the peer answers (a byte at a time: each read is quick, the
whole exchange is not)."""

from __future__ import annotations

import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest

from lsops_lib.alerts.notify import send
from lsops_lib.alerts.settings import NotifierSettings
from tests.fixtures.alerts import SMTP_PASSWORD, SMTP_USER

pytestmark = pytest.mark.timeout(120)

TEXT = (
    "[FIRING] warning log_error_pattern (Ngân hàng dữ liệu): new error log pattern: "
    "❌ Express Error: Ngân hàng dữ liệu từ chối kết nối: quota exceeded "
    "(since 2026-12-01 15:31 UTC)"
)
BODY = {"text": TEXT, "alert": {"name": "log_error_pattern", "state": "firing"}}


def test_a_vietnamese_subject_keeps_its_spaces_for_an_rfc_2047_reader(smtp_server: Any) -> None:
    mail = NotifierSettings(
        "mail", "email", timeout_s=10, secret=SMTP_PASSWORD, host="127.0.0.1",
        port=smtp_server.port, username=SMTP_USER, sender="lsops@example.com",
        to=("oncall@example.com",), ca_file=smtp_server.cert,
    )  # fmt: skip
    assert send(mail, BODY, []) is None
    (received,) = smtp_server.messages
    raw = dict(received.raw_items())["Subject"]  # as it came over the wire, still encoded
    assert str(make_header(decode_header(raw))) == TEXT
    # and it is a header RFC 2047 and RFC 5322 allow: ASCII, encoded-words of at most 75
    # characters, lines of at most 78
    assert raw.isascii()
    assert all(len(word) <= 75 for word in raw.split())
    assert len("Subject: ") + len(raw.splitlines()[0]) <= 78
    assert all(len(line) <= 78 for line in raw.splitlines())
    # an ASCII subject stays readable as it is
    smtp_server.messages.clear()
    assert send(mail, {**BODY, "text": "[FIRING] critical api_down (prod): down"}, []) is None
    (plain,) = smtp_server.messages
    assert dict(plain.raw_items())["Subject"] == "[FIRING] critical api_down (prod): down"


class _Drip(socketserver.ThreadingTCPServer):
    """A peer that reads the request's head (HTTP: up to the blank line; with `greet`
    nothing, SMTP speaks first), sends the first `quick` bytes of `reply` at once, then
    the rest a byte every `pace` s."""

    daemon_threads = True

    def __init__(self, reply: bytes, pace: float, *, quick: int = 0, greet: bool = False):
        self.reply, self.pace, self.quick, self.greet = reply, pace, quick, greet
        self.served = threading.Event()
        super().__init__(("127.0.0.1", 0), _DripHandler)
        self.port = self.server_address[1]
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


class _DripHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Drip = self.server  # type: ignore[assignment]
        head = b""
        while not server.greet and b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        server.served.set()
        try:
            self.request.sendall(server.reply[: server.quick])
            for byte in server.reply[server.quick :]:
                self.request.sendall(bytes([byte]))
                time.sleep(server.pace)
        except OSError:  # the client gave up: what the test wants
            pass


@pytest.fixture
def drip() -> Iterator[Callable[..., _Drip]]:
    servers: list[_Drip] = []

    def start(reply: bytes, pace: float, **kw: Any) -> _Drip:
        servers.append(_Drip(reply, pace, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _webhook(port: int, timeout_s: float) -> NotifierSettings:
    return NotifierSettings(
        "chat", "webhook", timeout_s=timeout_s, secret=f"http://127.0.0.1:{port}/hook/TOKEN-9"
    )


def test_a_webhook_dripping_its_status_line_is_cut_at_timeout_s(drip: Any) -> None:
    """`HTTP/1.1 200 OK` a byte every 0.3 s: each read is well within 1 s, the answer takes
    ~18 s; the attempt ends after 1 s as a failure saying so."""
    server = drip(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0.3)
    began = time.monotonic()
    error = send(_webhook(server.port, 1.0), BODY, [])
    took = time.monotonic() - began
    assert error == "no answer within 1 s"
    assert server.served.wait(5) and 0.9 <= took < 4, took


def test_a_webhook_dripping_its_body_is_delivered_on_its_status(drip: Any) -> None:
    """200 at once, then a 40-byte body a byte every 0.25 s (10 s): a 2xx is delivered,
    told without waiting for the body, well within `timeout_s` (3 s)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
    server = drip(head + b"x" * 40, 0.25, quick=len(head))
    began = time.monotonic()
    assert send(_webhook(server.port, 3.0), BODY, []) is None
    assert time.monotonic() - began < 4


def test_an_smtp_server_dripping_its_greeting_is_cut_at_timeout_s(drip: Any) -> None:
    server = drip(b"220 slow.example.com ESMTP " + b"." * 40 + b"\r\n", 0.2, greet=True)
    mail = NotifierSettings(
        "mail", "email", timeout_s=1.0, host="127.0.0.1", port=server.port, starttls=False,
        sender="lsops@example.com", to=("oncall@example.com",),
    )  # fmt: skip
    began = time.monotonic()
    error = send(mail, BODY, [])
    took = time.monotonic() - began
    assert error == "SMTP: no answer within 1 s"
    assert 0.9 <= took < 4, took


def test_a_command_that_never_ends_is_killed_at_timeout_s() -> None:
    chatter = (
        "import sys, time\n"
        "while True:\n    print('x', file=sys.stderr, flush=True)\n    time.sleep(0.05)\n"
    )
    pager = NotifierSettings(
        "pager", "command", timeout_s=1.0, command=(sys.executable, "-c", chatter)
    )
    began = time.monotonic()
    assert send(pager, BODY, []) == "the command did not finish within 1 s"
    assert time.monotonic() - began < 4
