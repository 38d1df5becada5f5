"""The monthly security review (`lsops_lib.security`, `lsops security`).

npm audit: parsed from REAL outputs of npm 7.24 and 11.19 (tests/data/npm-audit/, their
source in its README), and run for real in a checkout against loopback registries (one
that refuses the audit endpoint, one that knows no advisory). Auth: a store with planted
401/403/429 records (tests/fixtures/security.py), the answers stated there. Secrets: dates
against the thresholds, and no secret value ever printed.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.exceptions import ConfigError
from lsops_lib.security import audit, auth, rotation, security_review
from lsops_lib.store import Store
from tests.fixtures.security import NPM_AUDIT, XSS, AuthPlant

SEVERITIES = ("critical", "high", "moderate", "low", "info")


def _load(name: str) -> dict[str, Any]:
    return json.loads((NPM_AUDIT / name).read_text())


# --- npm audit: real outputs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vulnerable.json", "npm7-vulnerable.json"])
def test_a_real_report_with_vulnerabilities(name: str) -> None:
    result = audit.read_audit_file(NPM_AUDIT / name)
    doc = _load(name)
    vulns = doc["vulnerabilities"]
    assert result["status"] == "attention" and result["report_version"] == 2
    # counted again here from the packages themselves, not from npm's metadata
    for severity in SEVERITIES:
        expected = sum(v["severity"] == severity for v in vulns.values())
        assert result["counts"][severity] == expected, severity
    assert result["counts"]["total"] == len(vulns) == 3
    rows = {r["name"]: r for r in result["vulnerabilities"]}
    assert {n for n, r in rows.items() if r["direct"]} == {"lodash", "mkdirp"}
    assert rows["minimist"]["direct"] is False and result["transitive"] == 1
    assert rows["minimist"]["severity"] == "critical"
    assert rows["mkdirp"]["via"] == ["via minimist"]  # vulnerable through its dependency
    assert rows["lodash"]["fix"] == f"lodash@{vulns['lodash']['fixAvailable']['version']}"
    assert (
        rows["minimist"]["fix"] == "mkdirp@0.5.6" and rows["minimist"]["fix_semver_major"] is False
    )
    assert result["fixable"] == 3
    assert "https://github.com/advisories/GHSA-xvch-5gv4-984h" in rows["minimist"]["advisories"]
    # most severe first, direct before transitive
    assert [r["name"] for r in result["vulnerabilities"]] == ["mkdirp", "minimist", "lodash"]


@pytest.mark.parametrize("name", ["clean.json", "npm7-clean.json"])
def test_a_real_clean_report(name: str) -> None:
    result = audit.read_audit_file(NPM_AUDIT / name)
    assert result["status"] == "ok" and result["counts"]["total"] == 0
    assert result["vulnerabilities"] == [] and result["dependencies"] == 3


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        ("registry-refused.json", "POST .../-/npm/v1/security/advisories/bulk"),
        ("npm7-registry-refused.json", "POST .../-/npm/v1/security/audits/quick"),
    ],
)
def test_the_registry_refusing_the_audit_endpoint_is_unknown(name: str, endpoint: str) -> None:
    doc = _load(name)
    assert doc["statusCode"] == 405  # the real error object npm printed
    result = audit.read_audit_file(NPM_AUDIT / name)
    assert result["status"] == "unknown" and result["configured"] is True
    assert f"405 Method Not Allowed - {endpoint}" in result["reason"]
    assert result["counts"] is None and result["vulnerabilities"] is None  # unknown, not none


@pytest.mark.parametrize("name", ["no-lockfile.json", "npm7-no-lockfile.stderr.txt"])
def test_npm_failing_is_unknown(name: str) -> None:
    result = audit.read_audit_file(NPM_AUDIT / name)
    assert result["status"] == "unknown"
    assert "ENOLOCK" in result["reason"] and "existing lockfile" in result["reason"]


def test_what_is_not_an_npm7_report_is_unknown(tmp_path: Path) -> None:
    for text, words in (
        ("", "no JSON object"),
        ("npm ERR! something", "no JSON object"),
        ('{"advisories": {}, "actions": [], "metadata": {}}', "npm 6 report"),
        ('{"hello": 1}', "no vulnerabilities"),
    ):
        result = audit.parse_audit(text, source="test")
        assert result["status"] == "unknown" and words in result["reason"], text
    missing = audit.read_audit_file(tmp_path / "nope.json")
    assert missing["status"] == "unknown" and "cannot read" in missing["reason"]
    hidden = audit.parse_audit(
        '{"message": "401 Unauthorized - POST https://u:Pw123@r.example/-/x", "statusCode": 401}',
        source="test",
    )
    assert "Pw123" not in hidden["reason"] and "//***@" in hidden["reason"]


def test_the_fixtures_name_their_source_and_no_registry_host() -> None:
    readme = (NPM_AUDIT / "README.md").read_text()
    for name in sorted(p.name for p in NPM_AUDIT.iterdir() if p.suffix in (".json", ".txt")):
        assert name in readme, name
    for words in ("npm audit --json", "11.19.1", "7.24.2", "2026-11-30"):
        assert words in readme
    host = re.compile(r"npmjs|yarnpkg|npmmirror|registry\.[a-z0-9-]+\.[a-z]")
    for path in NPM_AUDIT.rglob("*"):
        if path.is_file():
            assert not host.search(path.read_text(errors="replace").lower()), path.name


# --- npm audit run for real in a checkout --------------------------------------------------------


class _Registry:
    """A loopback registry: POSTs (the audit endpoints) answer `status` with `body`."""

    def __init__(self, status: int, body: bytes, *, hang: bool = False) -> None:
        self.requests: list[str] = []
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    data = gzip.decompress(data)
                if hang and outer.closed.wait(20):
                    return  # closed: no answer (a write to the client gone would print a traceback)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Any]:
    """The fixture package and its lockfile, its registry set by an .npmrc of its own."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed here")
    app = tmp_path / "app"
    shutil.copytree(NPM_AUDIT / "app", app)
    registries: list[_Registry] = []

    def use(registry: _Registry) -> Path:
        registries.append(registry)
        (app / ".npmrc").write_text(
            f"registry={registry.url}\naudit=true\nfund=false\nupdate-notifier=false\n"
            f"cache={tmp_path / 'npm-cache'}\n"
        )
        return app

    yield use
    for registry in registries:
        registry.close()


def test_npm_audit_run_where_the_registry_refuses(checkout: Any) -> None:
    registry = _Registry(405, b"")
    app = checkout(registry)
    result = audit.run_npm_audit(app, timeout_s=120)
    assert result["status"] == "unknown" and result["source"] == f"npm audit --json in {app}"
    assert "405 Method Not Allowed - POST" in result["reason"]
    assert "/-/npm/v1/security/" in result["reason"] and result["tool"].startswith("npm ")
    assert any("/security/" in r for r in registry.requests)
    assert not (app / "node_modules").exists()  # read-only: nothing installed, nothing fixed


def test_npm_audit_run_with_no_advisory(checkout: Any) -> None:
    app = checkout(_Registry(200, b"{}"))
    result = audit.run_npm_audit(app, timeout_s=120)
    assert result["status"] == "ok", result["reason"]
    assert result["counts"]["total"] == 0 and result["dependencies"] == 3


def test_npm_audit_that_hangs_or_is_missing(checkout: Any, tmp_path: Path) -> None:
    app = checkout(_Registry(200, b"{}", hang=True))
    slow = audit.run_npm_audit(app, timeout_s=4)
    assert slow["status"] == "unknown" and "did not finish within 4 s" in slow["reason"]
    missing = audit.run_npm_audit(app, npm="npm-is-not-here")
    assert missing["status"] == "unknown" and "not found on PATH" in missing["reason"]
    empty = audit.run_npm_audit(tmp_path)
    assert empty["status"] == "unknown" and "no package.json" in empty["reason"]


# --- auth failures from the store ----------------------------------------------------------------


def _hour(plant: AuthPlant, h: int) -> datetime:
    return plant.start + timedelta(hours=h)


def test_auth_review_finds_the_planted_bursts(auth_store: AuthPlant) -> None:
    p = auth_store
    with Store(p.url) as store:
        result, hourly = auth.auth_review(store, p.start, p.end, Thresholds())
    assert result["status"] == "attention"
    assert (result["unauthorized"], result["forbidden"], result["rate_limited"]) == (
        p.unauthorized,
        p.forbidden,
        p.rate_limited,
    )
    assert result["auth_failures"] == p.unauthorized + p.forbidden
    assert result["hours_covered"] == p.hours_covered == len(hourly)
    assert result["baseline"] == {"auth_failures": 1.0, "rate_limited": 0.0}
    found = {(b["hour"], b["kind"], b["count"]) for b in result["bursts"]}
    assert found == {(_hour(p, h), kind, n) for h, kind, n in p.bursts}
    per_endpoint = {
        r["endpoint"]: (r["unauthorized"], r["forbidden"], r["rate_limited"])
        for r in result["by_endpoint"]
    }
    assert per_endpoint == p.endpoints
    assert result["by_endpoint"][0]["endpoint"] == "/auth/login"  # most records first
    by_hour = {r["hour"]: (r["auth_failures"], r["rate_limited"]) for r in result["by_hour"]}
    assert by_hour[_hour(p, 10)] == (31, 0) and by_hour[_hour(p, 16)] == (1, 5)
    assert _hour(p, 6) not in set(hourly["hour"])  # a gap is not an hour of zero
    assert result["sources"]["available"] is False
    assert "logs" in result["sources"]["reason"] and "lower bounds" in result["note"]


def test_auth_thresholds_decide_the_bursts(auth_store: AuthPlant) -> None:
    p = auth_store
    with Store(p.url) as store:
        high, _ = auth.auth_review(store, p.start, p.end, Thresholds(auth_burst_min=40))
        factor, _ = auth.auth_review(
            store, p.start, p.end, Thresholds(auth_burst_min=1, auth_burst_factor=4.0)
        )
        before, _ = auth.auth_review(store, p.start - timedelta(days=2), p.start, Thresholds())
    assert high["status"] == "ok" and high["bursts"] == []
    # min 1: the 429 hours burst (baseline 0 x 4 = 0); 401/403 hours need 4 x baseline 1
    assert {(b["hour"].hour, b["kind"]) for b in factor["bursts"]} == {
        (10, "auth_failures"),
        (15, "rate_limited"),
        (16, "rate_limited"),
    }
    assert before["status"] == "unknown" and before["hours_covered"] == 0


# --- secrets --------------------------------------------------------------------------------------


def test_rotation_against_the_thresholds() -> None:
    today = date(2026, 11, 30)
    rotations = {
        "OPENAI_API_KEY": today - timedelta(days=91),  # past 90: overdue
        "DB_PASSWORD": today - timedelta(days=90),  # at the limit: due
        "SENTRY_TOKEN": today - timedelta(days=76),  # 14 days before the limit: due
        "SUPABASE_KEY": today - timedelta(days=75),  # ok
        "TYPO": today + timedelta(days=3),  # in the future
    }
    result = rotation.rotation(rotations, Thresholds(), today)
    statuses = {r["name"]: r["status"] for r in result["secrets"]}
    assert statuses == {
        "OPENAI_API_KEY": "overdue",
        "DB_PASSWORD": "due",
        "SENTRY_TOKEN": "due",
        "SUPABASE_KEY": "ok",
        "TYPO": "future",
    }
    assert result["status"] == "attention" and (result["due"], result["overdue"]) == (2, 1)
    assert result["secrets"][0]["name"] == "OPENAI_API_KEY"  # the most urgent first
    row = next(r for r in result["secrets"] if r["name"] == "SUPABASE_KEY")
    assert row["age_days"] == 75 and row["due_on"] == today + timedelta(days=15)
    fine = rotation.rotation({"A": today}, Thresholds(secret_max_age=30), today)
    assert fine["status"] == "ok" and fine["max_age_days"] == 30
    none = rotation.rotation({}, Thresholds(), today)
    assert none["status"] == "unknown" and none["configured"] is False
    assert "[secrets]" in none["reason"]


def test_secrets_config_reads_dates_and_never_shows_a_value(tmp_path: Path) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text(
        '[secrets]\nA = "2026-09-01"\nB = 2026-08-15\n'
        "[thresholds]\nsecret_max_age = 60\n"
        '[security]\naudit_file = "audit.json"\n'
    )
    settings = load_settings(config, env={}, cwd=tmp_path)
    assert settings.secret_rotations == {"A": date(2026, 9, 1), "B": date(2026, 8, 15)}
    assert settings.thresholds.secret_max_age == 60
    assert settings.audit_file == tmp_path / "audit.json" and settings.app_dir is None
    config.write_text('[secrets]\nOPENAI_API_KEY = "sk-PLANTED-value-123"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={}, cwd=tmp_path)
    assert "OPENAI_API_KEY" in str(caught.value) and "sk-PLANTED" not in str(caught.value)


# --- the review and the command -------------------------------------------------------------------


def test_every_part_says_when_it_is_not_configured(tmp_path: Path) -> None:
    settings = load_settings(env={"LSOPS_DATA": str(tmp_path)}, cwd=tmp_path)
    review = security_review(settings, store=None, store_problem="no metrics store here")
    data = review.as_dict()
    assert list(data) == ["audit", "auth", "secrets"]
    for part in data.values():
        assert part["status"] == "unknown" and part["configured"] is False
    assert "--app-dir" in data["audit"]["reason"] and "[secrets]" in data["secrets"]["reason"]
    assert data["auth"]["reason"] == "no metrics store here"
    assert review.status == "unknown" and len(review.summary()["unknown"]) == 3


def _env(lsops_env: dict[str, str], tmp_path: Path, store: str) -> dict[str, str]:
    (tmp_path / "lsops.toml").write_text(
        '[secrets]\nOPENAI_API_KEY = "2026-01-01"\n'
        '[databases.prod]\nurl = "postgresql://ops:Db-PLANTED-77@127.0.0.1:1/x"\n'
    )
    return {
        **lsops_env,
        "LSOPS_STORE": store,
        "LSOPS_API_TOKEN": "tok-PLANTED-55",
        "LSOPS_DATA": str(tmp_path / "data"),
    }


def test_the_command(lsops_env: dict[str, str], tmp_path: Path, auth_store: AuthPlant) -> None:
    env = _env(lsops_env, tmp_path, auth_store.url)
    span = ["--since", auth_store.start.isoformat(), "--until", auth_store.end.isoformat()]
    args = ["security", "--audit-file", str(NPM_AUDIT / "vulnerable.json"), *span]
    runner = CliRunner()
    result = runner.invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 1, result.output  # a part needs attention
    data = json.loads(result.stdout)
    assert set(data) == {"audit", "auth", "secrets"}
    assert {p["status"] for p in data.values()} <= {"ok", "attention", "unknown"}
    assert data["audit"]["counts"]["critical"] == 2
    assert data["auth"]["unauthorized"] == auth_store.unauthorized
    assert data["secrets"]["secrets"][0]["status"] == "overdue"
    text = runner.invoke(main, args, env=env)
    assert text.exit_code == 1 and "Traceback" not in text.output
    for words in ("audit: ATTENTION", "auth: ATTENTION", "secrets: ATTENTION", "mkdirp@0.5.6"):
        assert words in text.stdout, words
    assert XSS in text.stdout  # printed as plain text (rich Text, never markup)
    for secret in ("Db-PLANTED-77", "tok-PLANTED-55"):
        assert secret not in result.output + text.output
    refused = runner.invoke(
        main,
        ["security", "--audit-file", str(NPM_AUDIT / "registry-refused.json"), "--json"],
        env={**env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'none.sqlite'}"},
    )
    data = json.loads(refused.stdout)
    assert (
        data["audit"]["status"] == "unknown" and "405 Method Not Allowed" in data["audit"]["reason"]
    )
    assert data["auth"]["status"] == "unknown" and "lsops collect" in data["auth"]["reason"]
    assert not (tmp_path / "none.sqlite").exists()  # never created by reading


def test_command_usage_errors(lsops_env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(
        main,
        ["security", "--app-dir", str(tmp_path), "--audit-file", str(NPM_AUDIT / "clean.json")],
        env=lsops_env,
    )
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    absent = runner.invoke(main, ["security", "--audit-file", str(tmp_path / "x")], env=lsops_env)
    assert absent.exit_code == 2 and "Traceback" not in absent.output
    (tmp_path / "lsops.toml").write_text('[secrets]\nKEY = "sk-PLANTED-in-config"\n')
    bad = runner.invoke(main, ["security"], env=lsops_env)
    assert bad.exit_code == 2 and "sk-PLANTED" not in bad.output
    assert len(bad.stderr.strip().splitlines()) == 1
    window = runner.invoke(main, ["security", "--window", "soon"], env=lsops_env)
    assert window.exit_code == 2 and "not a duration" in window.stderr
