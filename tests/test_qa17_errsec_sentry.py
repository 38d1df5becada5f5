"""QA 17, Sentry and the CLI's text: a 429 with `Retry-After: 0` (or a past date) never
floods Sentry; a malformed token is one line, exit 3, never shown; a token echoed by
Sentry is masked before it is printed or stored; a count too large for the store leaves
the issue's events unknown instead of failing the collection; control characters of a
title (a terminal's escape sequences) never reach the terminal."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.sim.sentry import SentryStandIn, SimIssue
from lsops_lib.sources import SourceError
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.sentry import SentryClient
from lsops_lib.sources.settings import LogSettings, SentrySettings, SourceSettings
from lsops_lib.store import Store
from tests.fixtures.sources import SENTRY_TOKEN, Pm2Log

pytestmark = pytest.mark.timeout(120)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _env(lsops_env: dict[str, str], tmp_path: Path, url: str) -> dict[str, str]:
    return {
        **lsops_env,
        "COLUMNS": "300",
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "LSOPS_SENTRY_URL": url,
        "LSOPS_SENTRY_ORG": "longsang",
        "LSOPS_SENTRY_PROJECT": "longsang-api",
        "SENTRY_AUTH_TOKEN": SENTRY_TOKEN,
        "LSOPS_PM2": "off",
    }


@pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_429_without_a_wait_is_retried_after_a_growing_wait(
    sentry_stand_in: SentryStandIn, retry_after: str
) -> None:
    """Retry-After 0 (or a date long past) and 429 every time: the waits are 0.5 s,
    then doubled (1 s, 2 s), until the next one no longer fits in the 3.5 s timeout:
    4 requests, not thousands."""
    sentry_stand_in.rate_limit(100_000, retry_after)
    waited: list[float] = []
    settings = SentrySettings(
        url=sentry_stand_in.url, org="longsang", project="longsang-api", token=SENTRY_TOKEN
    )
    settings = SentrySettings(**{**settings.__dict__, "timeout_s": 3.5})
    with pytest.raises(SourceError) as caught:
        with SentryClient(settings, sleep=waited.append) as client:
            client.issues(since=_now() - timedelta(hours=1))
    assert waited == [0.5, 1.0, 2.0]
    assert len(sentry_stand_in.requests) == 4
    assert str(caught.value) == (
        "sentry: rate limited: Sentry kept answering 429 after 4 tries within the 3.5 s timeout"
    )


@pytest.mark.parametrize("token", ["sntrys-SËCRET-abc123", "sntrys-SECRET-abc123\r", "a b"])
def test_a_malformed_token_is_one_line_exit_3_without_the_token(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path, token: str
) -> None:
    env = {**_env(lsops_env, tmp_path, sentry_stand_in.url), "SENTRY_AUTH_TOKEN": token}
    runner = CliRunner()
    text = runner.invoke(main, ["errors"], env=env)
    doc = runner.invoke(main, ["errors", "--json"], env=env)
    assert text.exit_code == doc.exit_code == 3, text.output
    expected = (
        "sentry: the token is malformed (only printable ASCII, no space, accent or line "
        "end): check SENTRY_AUTH_TOKEN or LSOPS_SENTRY_TOKEN"
    )
    assert json.loads(doc.stdout)["error"] == expected
    assert text.stdout.splitlines()[0] == f"UNKNOWN: {expected}"
    collect = runner.invoke(main, ["collect", "--once"], env={**env, "LSOPS_API_URL": ""})
    # the source's name once: "sentry: FAILED (recorded): the token is malformed ..."
    assert f"sentry: FAILED (recorded): {expected.removeprefix('sentry: ')}" in collect.stdout
    for result in (text, doc, collect):
        assert "Traceback" not in result.output and "SECRET" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sentry_stand_in.requests == []  # nothing was sent with it


def _leaky_issues(stand_in: SentryStandIn, now: datetime) -> None:
    stand_in.issues = [
        SimIssue(
            "301",
            "LONGSANG-API-31",
            f"Error with token {SENTRY_TOKEN} in message",
            f"lib/leak?auth={SENTRY_TOKEN}",
            "error",
            events=[now - timedelta(minutes=90)],
        ),
        SimIssue(
            "302",
            "LONGSANG-API-32",
            "Error: \x1b[31mANSI\x1b[0m \x9b2J \u202eRTL \x07bell",
            "lib/\x1b]0;title\x07x",
            "error",
            events=[now - timedelta(minutes=30)],
        ),
        SimIssue(
            "303", "LONGSANG-API-33", "Huge", "db", "warning", events=[now - timedelta(hours=2)]
        ),
    ]


def test_an_echoed_token_is_neither_printed_nor_stored(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    now = _now()
    _leaky_issues(sentry_stand_in, now)
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    runner = CliRunner()
    text = runner.invoke(main, ["errors"], env=env)
    doc = runner.invoke(main, ["errors", "--json"], env=env)
    assert text.exit_code == doc.exit_code == 1
    titles = {i["short_id"]: (i["title"], i["culprit"]) for i in json.loads(doc.stdout)["issues"]}
    assert titles["LONGSANG-API-31"] == ("Error with token *** in message", "lib/leak?auth=***")
    assert "Error with token *** in message" in text.stdout
    collect = runner.invoke(main, ["collect", "--once"], env={**env, "LSOPS_API_URL": ""})
    assert "sentry: OK, 3 stored" in collect.stdout
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        stored = dict(db.execute("select short_id, title from lsops_sentry_issues"))
    assert stored["LONGSANG-API-31"] == "Error with token *** in message"
    for result in (text, doc, collect):
        assert SENTRY_TOKEN not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SENTRY_TOKEN.encode() not in path.read_bytes(), path


def test_a_count_too_large_for_the_store_leaves_that_issue_unknown(
    sentry_stand_in: SentryStandIn,
    lsops_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sentry's `count` of issue 303 is "99999999999999999999999" (beyond 2^63 - 1): the
    collection stores every issue, that one's events unknown (NULL), the others' exact,
    and its line says so."""
    now = _now()
    _leaky_issues(sentry_stand_in, now)
    body = sentry_stand_in._body

    def huge(issue: SimIssue, period: str) -> dict[str, Any]:
        out = body(issue, period)
        if issue.id == "303":
            out["count"], out["userCount"] = "99999999999999999999999", 2**63
        return out

    monkeypatch.setattr(sentry_stand_in, "_body", huge)
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    collect = CliRunner().invoke(main, ["collect", "--once"], env={**env, "LSOPS_API_URL": ""})
    assert (
        "sentry: OK, 3 stored (1 issue without a usable event count (unknown))" in collect.stdout
    ), collect.output
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        rows = {
            r[0]: r[1:]
            for r in db.execute("select short_id, events, users from lsops_sentry_issues")
        }
    assert rows == {
        "LONGSANG-API-31": (1, 1),
        "LONGSANG-API-32": (1, 1),
        "LONGSANG-API-33": (None, None),
    }


def test_control_characters_of_a_title_never_reach_the_terminal(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    now = _now()
    _leaky_issues(sentry_stand_in, now)
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    text = CliRunner().invoke(main, ["errors"], env=env)
    assert text.exit_code == 1
    # ESC -> ␛, the C1 CSI and the right-to-left override -> U+FFFD (rich drops a BEL)
    assert "Error: ␛[31mANSI␛[0m �2J �RTL bell" in text.stdout
    assert "lib/␛]0;titlex" in text.stdout
    assert not any(c in text.stdout for c in "\x1b\x07\x9b\u202e")
    # the JSON keeps Sentry's text as it is (json.dumps escapes it)
    doc = json.loads(CliRunner().invoke(main, ["errors", "--json"], env=env).stdout)
    titles = {i["short_id"]: i["title"] for i in doc["issues"]}
    assert titles["LONGSANG-API-32"] == "Error: \x1b[31mANSI\x1b[0m \x9b2J \u202eRTL \x07bell"


def test_control_characters_of_log_lines_never_reach_the_terminal(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    """`lsops logs` (patterns and --around) shows a log line's escape sequences as
    visible characters; a stack trace keeps its line ends."""
    at = datetime(2026, 10, 16, 2, 0, tzinfo=UTC)
    Pm2Log(tmp_path).write("Error: \x1b[2J\x1b[31mcleared\x1b[0m \u202eevil", at)
    collect_logs(
        sqlite_store, SourceSettings(logs=LogSettings(paths=(str(tmp_path / "*.log"),))), "default"
    )
    env = {**lsops_env, "COLUMNS": "300", "LSOPS_STORE": sqlite_store._url}
    window = ["--since", "2026-10-16T01:00Z", "--until", "2026-10-16T03:00Z"]
    for args in (["logs", *window], ["logs", "--around", at.isoformat()]):
        text = CliRunner().invoke(main, args, env=env)
        assert text.exit_code == 0, text.output
        assert "Error: ␛[2J␛[31mcleared␛[0m �evil" in text.stdout, args
        assert "\x1b" not in text.stdout and "\u202e" not in text.stdout
