"""Sentry (issue 10) against a loopback stand-in that follows the documented issues API:
Link-header pagination, 401 for a bad token, 429 with Retry-After; `lsops errors` and its
exit codes; `lsops collect` with Sentry failing on its own; the token never shown or kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.sim.sentry import SentryStandIn, SimIssue
from lsops_lib.sources import SourceError, collect_sources, errors_view, new_fatal_sentry_issues
from lsops_lib.sources.sentry import SentryClient, parse_link
from lsops_lib.sources.settings import SentrySettings, SourceSettings, source_settings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import SENTRY_TOKEN

pytestmark = pytest.mark.timeout(120)

ERRORS_KEYS = {
    "id",
    "short_id",
    "title",
    "culprit",
    "level",
    "status",
    "events",
    "users",
    "first_seen",
    "last_seen",
    "new",
    "regressed",
    "unresolved_for",
    "permalink",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _settings(
    stand_in: SentryStandIn, token: str = SENTRY_TOKEN, timeout_s: float = 10.0
) -> SentrySettings:
    return SentrySettings(
        url=stand_in.url, org="longsang", project="longsang-api", token=token, timeout_s=timeout_s
    )


def _plant(stand_in: SentryStandIn, now: datetime) -> None:
    """Five issues seen in the last 24 h (one fatal, two new errors, a resolved, an old
    regressed one) and one last seen 3 days ago."""
    h = timedelta(hours=1)
    stand_in.issues += [
        SimIssue(
            "101",
            "LONGSANG-API-1",
            "Error: connect ECONNREFUSED 127.0.0.1:5432",
            "pool.connect",
            "error",
            events=[now - 10 * 24 * h, now - 5 * h, now - 4 * h, now - 3 * h],
            substatus="regressed",
        ),
        SimIssue(
            "102",
            "LONGSANG-API-2",
            "FATAL ERROR: JavaScript heap out of memory",
            "node",
            "fatal",
            events=[now - 30 * h, now - 2 * h],
        ),
        SimIssue(
            "103",
            "LONGSANG-API-3",
            "TypeError: Cannot read properties of undefined",
            "copilot.chat",
            "error",
            events=[now - 6 * h, now - 5 * h],
        ),
        SimIssue(
            "104",
            "LONGSANG-API-4",
            "[bold red]markup[/] <script>alert(1)</script>",
            "x",
            "error",
            events=[now - 1 * h],
        ),
        SimIssue(
            "105",
            "LONGSANG-API-5",
            "Slow query warning",
            "db",
            "warning",
            status="resolved",
            substatus=None,
            events=[now - 7 * h],
        ),
        SimIssue("106", "LONGSANG-API-6", "Old timeout", "db", "error", events=[now - 72 * h]),
    ]


def test_link_header_parsing() -> None:
    header = (
        '<https://sentry.io/api/0/projects/o/p/issues/?cursor=0:0:1>; rel="previous"; '
        'results="false"; cursor="0:0:1", '
        '<https://sentry.io/api/0/projects/o/p/issues/?cursor=0:100:0>; rel="next"; '
        'results="true"; cursor="0:100:0"'
    )
    links = parse_link(header)
    assert links["next"]["results"] == "true" and links["next"]["cursor"] == "0:100:0"
    assert links["previous"]["results"] == "false"
    assert links["next"]["url"].endswith("cursor=0:100:0")


def test_every_page_is_read_and_the_window_counts_are_exact(sentry_stand_in: SentryStandIn) -> None:
    now = _now()
    sentry_stand_in.now = lambda: now
    _plant(sentry_stand_in, now)
    start = now - timedelta(hours=24)
    view = errors_view(_settings(sentry_stand_in), start, now + timedelta(seconds=1), now=now)
    # page size 2: 5 issues last seen in the window -> 3 pages, cursors 0:0:0, 0:2:0, 0:4:0
    pages = [r["params"].get("cursor") for r in sentry_stand_in.requests]
    assert pages == [None, "0:2:0", "0:4:0"]
    got = {i["short_id"]: i for i in view["issues"]}
    assert set(got) == {f"LONGSANG-API-{k}" for k in (1, 2, 3, 4, 5)}
    assert all(set(i) == ERRORS_KEYS for i in view["issues"])
    # events in the window, by hand: hourly buckets starting in the last 24 h
    assert {k: i["events"] for k, i in got.items()} == {
        "LONGSANG-API-1": 3,
        "LONGSANG-API-2": 1,
        "LONGSANG-API-3": 2,
        "LONGSANG-API-4": 1,
        "LONGSANG-API-5": 1,
    }
    assert {k for k, i in got.items() if i["new"]} == {
        "LONGSANG-API-3",
        "LONGSANG-API-4",
        "LONGSANG-API-5",
    }
    assert got["LONGSANG-API-1"]["regressed"] and not got["LONGSANG-API-3"]["regressed"]
    assert got["LONGSANG-API-5"]["unresolved_for"] is None
    assert got["LONGSANG-API-2"]["unresolved_for"] == pytest.approx(30 * 3600 + 1)
    # worst first: the fatal one, then the unresolved errors
    assert view["issues"][0]["short_id"] == "LONGSANG-API-2"
    assert view["exit_code"] == 2


def test_a_bad_token_is_one_clear_line_without_the_token(sentry_stand_in: SentryStandIn) -> None:
    with pytest.raises(SourceError) as caught:
        with SentryClient(_settings(sentry_stand_in, token="not-the-token")) as client:
            client.issues(since=_now() - timedelta(hours=1))
    message = str(caught.value)
    assert "refused (401)" in message and "SENTRY_AUTH_TOKEN" in message
    assert "not-the-token" not in message and "\n" not in message
    # the bearer token went to the stand-in's path only
    assert sentry_stand_in.requests[0]["authorization"] == "Bearer not-the-token"


def test_429_waits_for_retry_after_within_the_timeout(sentry_stand_in: SentryStandIn) -> None:
    now = _now()
    _plant(sentry_stand_in, now)
    waited: list[float] = []
    sentry_stand_in.rate_limit(2, "3")
    with SentryClient(_settings(sentry_stand_in), sleep=waited.append) as client:
        issues = client.issues(since=now - timedelta(hours=24))
    assert waited == [3.0, 3.0] and len(issues) == 5
    # a Retry-After beyond the timeout: a failure saying so, no wait
    sentry_stand_in.rate_limit(1, "120")
    waited.clear()
    with pytest.raises(SourceError, match=r"rate limited \(429\): Retry-After 120 s"):
        with SentryClient(_settings(sentry_stand_in, timeout_s=5), sleep=waited.append) as client:
            client.issues(since=now - timedelta(hours=24))
    assert waited == []


def _env(
    lsops_env: dict[str, str], tmp_path: Path, url: str, token: str = SENTRY_TOKEN
) -> dict[str, str]:
    return {
        **lsops_env,
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "LSOPS_SENTRY_URL": url,
        "LSOPS_SENTRY_ORG": "longsang",
        "LSOPS_SENTRY_PROJECT": "longsang-api",
        "SENTRY_AUTH_TOKEN": token,
        "LSOPS_PM2": "off",
    }


@pytest.mark.parametrize(
    ("plant", "code", "last"),
    [
        # an unresolved fatal issue seen in the window
        ({"102"}, 2, "CRITICAL (exit 2): 1 unresolved fatal issue, 0 new unresolved errors"),
        # a new unresolved error
        ({"103"}, 1, "WARNING (exit 1): 0 unresolved fatal issues, 1 new unresolved error"),
        ({"103", "104"}, 1, "WARNING (exit 1): 0 unresolved fatal issues, 2 new unresolved errors"),
        # regressed (not new), resolved, seen before the window
        (
            {"101", "105", "106"},
            0,
            "OK (exit 0): 0 unresolved fatal issues, 0 new unresolved errors",
        ),
    ],
)
def test_lsops_errors_exit_codes(
    sentry_stand_in: SentryStandIn,
    lsops_env: dict[str, str],
    tmp_path: Path,
    plant: set[str],
    code: int,
    last: str,
) -> None:
    _plant(sentry_stand_in, _now())
    sentry_stand_in.issues = [i for i in sentry_stand_in.issues if i.id in plant]
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    result = CliRunner().invoke(main, ["errors", "--window", "24h", "--json"], env=env)
    assert result.exit_code == code, result.output
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == code and doc["error"] is None
    text = CliRunner().invoke(main, ["errors"], env=env)
    assert text.exit_code == code and SENTRY_TOKEN not in text.output + result.output
    assert text.stdout.splitlines()[-1] == last


def test_lsops_errors_unknown_says_which(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    runner = CliRunner()
    unconfigured = {k: v for k, v in env.items() if k != "LSOPS_SENTRY_ORG"}
    result = runner.invoke(main, ["errors", "--json"], env=unconfigured)
    assert result.exit_code == 3 and "not configured" in json.loads(result.stdout)["error"]
    refused = runner.invoke(main, ["errors"], env={**env, "SENTRY_AUTH_TOKEN": "wrong"})
    assert refused.exit_code == 3 and "refused (401)" in refused.output
    sentry_stand_in.stop()
    down = runner.invoke(main, ["errors", "--json"], env=env)
    assert down.exit_code == 3 and "cannot reach" in json.loads(down.stdout)["error"]
    assert "Traceback" not in result.output + refused.output + down.output
    bad = runner.invoke(main, ["errors", "--window", "soon"], env=env)
    assert bad.exit_code == 3


def test_titles_are_shown_as_text_never_as_markup(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    _plant(sentry_stand_in, _now())
    sentry_stand_in.issues = [i for i in sentry_stand_in.issues if i.id == "104"]
    env = {**_env(lsops_env, tmp_path, sentry_stand_in.url), "COLUMNS": "400"}
    text = CliRunner().invoke(main, ["errors"], env=env)
    assert "[bold red]markup[/] <script>alert(1)</script>" in text.stdout


def test_collect_takes_sentry_and_a_failing_source_fails_alone(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """`lsops collect --once` with the API down, Sentry answering and the logs failing:
    Sentry is stored, each source's outcome is one line and recorded, exit 1; the token
    is in no output, no file of the store."""
    now = _now()
    _plant(sentry_stand_in, now)
    env = {
        **_env(lsops_env, tmp_path, sentry_stand_in.url),
        "LSOPS_API_URL": "http://127.0.0.1:9",
        "LSOPS_LOGS": str(tmp_path / "logs" / "api-*.log"),
    }
    (tmp_path / "lsops.toml").write_text(
        '[logs]\njournal_unit = "longsang-api"\njournal_command = "/nonexistent/journalctl"\n'
    )
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "lsops.toml"), "collect", "--once"], env=env
    )
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert [line.split(":")[0] for line in out[1:]] == ["sentry", "logs"]
    assert out[1] == "sentry: OK, 6 stored"  # 5 in the last 24 h + the old unresolved one
    assert out[2].startswith("logs: FAILED (recorded): journald:")
    with Store(env["LSOPS_STORE"]) as store:
        runs = tables.source_runs(store, "default", None, None)
        assert list(zip(runs["source"], runs["ok"], strict=True)) == [
            ("sentry", True),
            ("logs", False),
        ]
        fatal = new_fatal_sentry_issues(store, "default", now - timedelta(days=2), now)
        assert [(i["short_id"], i["level"]) for i in fatal] == [("LONGSANG-API-2", "fatal")]
        assert set(fatal[0]) == {"id", "short_id", "title", "level", "first_seen", "permalink"}
        # an issue resolved in Sentry since is marked resolved at the next collection
        sentry_stand_in.issues[0].status = "resolved"
        sources = source_settings(load_settings(env={**env}), env=env)
        collect_sources(store, SourceSettings(sentry=sources.sentry), target="default")
        status = tables.sentry_issues(store, "default").set_index("short_id")["status"]
        assert status["LONGSANG-API-1"] == "resolved" and status["LONGSANG-API-3"] == "unresolved"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SENTRY_TOKEN.encode() not in path.read_bytes(), path
    assert SENTRY_TOKEN not in result.output + result.stderr


def test_the_sentry_token_is_redacted_from_settings(tmp_path: Path) -> None:
    env = {"LSOPS_SENTRY_ORG": "o", "LSOPS_SENTRY_PROJECT": "p", "SENTRY_AUTH_TOKEN": SENTRY_TOKEN}
    settings = load_settings(env=env, cwd=tmp_path)
    sentry = source_settings(settings, env=env).sentry
    assert sentry.token == SENTRY_TOKEN and SENTRY_TOKEN not in repr(sentry)
    assert SENTRY_TOKEN not in json.dumps(settings.public())
    (tmp_path / "lsops.toml").write_text(
        '[sentry]\norg = "o"\nproject = "p"\ntoken_env = "MY_TOKEN"\n'
    )
    other = source_settings(load_settings(cwd=tmp_path, env={}), env={"MY_TOKEN": "t2"}).sentry
    assert other.token == "t2" and other.token_env == "MY_TOKEN"
    assert (
        source_settings(
            None, env={"LSOPS_SENTRY_TOKEN": "t3", "SENTRY_AUTH_TOKEN": "t4"}
        ).sentry.token
        == "t3"
    )


def test_a_sentry_token_in_the_settings_own_variables_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings read from a mapping (`load_settings(env=...)`, a library caller's) carry it:
    the Sentry token found there is among the secrets a report redacts, and what the
    sources read, even when the process's own environment has none; the process's own
    token stays among the secrets too."""
    for name in ("LSOPS_SENTRY_TOKEN", "SENTRY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    token = "sntrys_MAPPING-7c2e9a41"
    settings = load_settings(
        env={"LSOPS_SENTRY_TOKEN": token, "LSOPS_STORE": f"sqlite:///{tmp_path}/m.db"},
        cwd=tmp_path,
    )
    assert token in settings.secrets()
    assert source_settings(settings).sentry.token == token
    assert token not in repr(settings)
    plain = load_settings(env={"LSOPS_STORE": f"sqlite:///{tmp_path}/m.db"}, cwd=tmp_path)
    assert source_settings(plain).sentry.token is None
    # the process's own token is redacted as well: a report's kernel inherits it
    monkeypatch.setenv("LSOPS_SENTRY_TOKEN", "sntrys_PROCESS-31d8b0")
    assert {token, "sntrys_PROCESS-31d8b0"} <= set(settings.secrets())
    assert "sntrys_PROCESS-31d8b0" in plain.secrets()


def test_429_again_and_again_says_sentry_kept_answering_429(
    sentry_stand_in: SentryStandIn,
) -> None:
    """Retry-After fits each time, but Sentry answers 429 until the timeout is spent: the
    line says it kept answering 429 and after how many tries (not that 0.5 s "does not fit")."""
    sentry_stand_in.rate_limit(1000, "0.5")
    with pytest.raises(SourceError) as caught:
        with SentryClient(_settings(sentry_stand_in, timeout_s=1.2)) as client:
            client.issues(since=_now() - timedelta(hours=1))
    tries = len(sentry_stand_in.requests)
    assert tries >= 2
    assert str(caught.value) == (
        f"sentry: rate limited: Sentry kept answering 429 after {tries} tries "
        "within the 1.2 s timeout"
    )


def test_a_password_in_the_sentry_url_is_never_shown_nor_stored(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """LSOPS_SENTRY_URL with user:password: `lsops errors` and `lsops collect` name the URL
    with the password masked, in their output and in the store."""
    host = sentry_stand_in.url.removeprefix("http://")
    sentry_stand_in.stop()  # nothing answers there: "cannot reach <url>"
    password = "URLPASSW0RD"
    env = {
        **_env(lsops_env, tmp_path, f"http://admin:{password}@{host}"),
        "LSOPS_API_URL": "http://127.0.0.1:9",
    }
    runner = CliRunner()
    text = runner.invoke(main, ["errors"], env={**env, "COLUMNS": "300"})
    doc = runner.invoke(main, ["errors", "--json"], env=env)
    assert text.exit_code == doc.exit_code == 3
    assert f"cannot reach http://admin:***@{host}: ConnectError" in text.stdout
    shown = f"sentry: cannot reach http://admin:***@{host}: ConnectError"
    assert json.loads(doc.stdout)["error"] == shown
    collect = runner.invoke(main, ["collect", "--once"], env=env)
    assert f"sentry: FAILED (recorded): cannot reach http://admin:***@{host}" in (collect.stdout)
    with Store(env["LSOPS_STORE"]) as store:
        (error,) = tables.source_runs(store, "default", None, None)["error"]
    assert error == shown
    for result in (text, doc, collect):
        assert password not in result.output + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


def test_lsops_errors_over_24h_counts_the_hourly_stats(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """The default window (24h, ending now) asks for the hourly stats: an event 23 h ago
    counts (in the daily stats its bucket starts yesterday at midnight, before the window)."""
    now = _now()
    ago = [23.0, 22.5, 12.0, 0.5]  # hours
    sentry_stand_in.issues = [
        SimIssue(
            "201",
            "LONGSANG-API-21",
            "Error: boom",
            "x",
            "error",
            events=[now - timedelta(hours=h) for h in ago],
        )
    ]
    env = _env(lsops_env, tmp_path, sentry_stand_in.url)
    for args in (["errors", "--json"], ["errors", "--window", "24h", "--json"]):
        sentry_stand_in.requests.clear()
        doc = json.loads(CliRunner().invoke(main, args, env=env).stdout)
        periods = {r["params"].get("statsPeriod") for r in sentry_stand_in.requests}
        assert periods == {"24h"}, args
        (issue,) = doc["issues"]
        # each event's hour starts inside [now - 24 h, now): all four (23 h ago: its hour
        # began at most 24 h ago, since `now` has whole seconds and hours begin on the hour)
        assert issue["events"] == len(ago), args
