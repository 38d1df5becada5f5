"""QA 15: `lsops health --json`'s `checks_summary.fraction` in quick mode, where the server
gives `passed` and `total` but no `percentage`: the share that passed (null only for 0 of
0 checks). The API is the canned loopback server of tests/test_api.py serving the real
quick-health sample."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from tests.test_api import CannedServer, sample
from tests.test_api import canned as canned  # noqa: PLC0414 - the fixture, used here
from tests.test_collect_qa13 import cli_env as cli_env  # noqa: PLC0414 - the fixture
from tests.test_collect_qa13 import serve


def test_quick_health_gives_the_share_of_checks_passed(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    health = sample("health-quick.json")
    checks = {k: v for k, v in health["checks"].items() if k != "summary"}
    assert "percentage" not in health["checks"]["summary"]  # quick mode: none
    health["checks"] = {**checks, "openai": False, "summary": {"passed": 2, "total": 3}}
    serve(canned, health=health)
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    data = json.loads(CliRunner().invoke(main, ["health", "--json"], env=env).output)
    summary = data["checks_summary"]
    passed = sum(v is True for v in health["checks"].values())  # the booleans themselves
    assert (summary["passed"], summary["total"], summary["percentage"]) == (2, 3, None)
    assert summary["fraction"] == pytest.approx(passed / 3)
    text = CliRunner().invoke(main, ["health"], env=env).output
    assert "checks passed: 2 of 3 (66.7 %)" in text, text


def test_the_real_quick_sample_passes_all_its_checks(
    canned: CannedServer, cli_env: dict[str, str]
) -> None:
    serve(canned)  # tests/data/samples/health-quick.json as it is: 3 of 3
    env = {**cli_env, "LSOPS_API_URL": canned.url}
    data = json.loads(CliRunner().invoke(main, ["health", "--json"], env=env).output)
    assert data["checks_summary"]["fraction"] == 1.0
