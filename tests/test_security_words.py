"""`lsops security`'s words: its own default window (30 days) in --help, hours counted as
"1 hour" / "22 hours", and what it says about the top sources being true (lsops collects
the logs; it does not count requests by client address in them)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from lsops_lib.cli import main
from tests.fixtures.security import NPM_AUDIT, AuthPlant


def _env(lsops_env: dict[str, str], store: str) -> dict[str, str]:
    return {**lsops_env, "LSOPS_STORE": store, "COLUMNS": "200"}


def test_the_help_gives_the_default_window_the_command_uses(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    helped = runner.invoke(main, ["security", "--help"], env={**lsops_env, "COLUMNS": "200"})
    assert helped.exit_code == 0
    assert "How far back to look (default 30d)." in helped.stdout and "24h" not in helped.stdout
    env = _env(lsops_env, f"sqlite:///{tmp_path / 'none.sqlite'}")
    args = ["security", "--audit-file", str(NPM_AUDIT / "clean.json"), "--json"]
    auth = json.loads(runner.invoke(main, args, env=env).stdout)["auth"]
    span = pd.Timestamp(auth["end"]) - pd.Timestamp(auth["start"])
    assert span == timedelta(days=30)


def test_hours_are_counted_and_the_top_sources_are_said_truly(
    lsops_env: dict[str, str], auth_store: AuthPlant
) -> None:
    env = _env(lsops_env, auth_store.url)
    runner = CliRunner()
    base = ["security", "--audit-file", str(NPM_AUDIT / "clean.json")]
    ten = auth_store.start + timedelta(hours=10)  # one covered hour: 10:00 to 11:00
    one = runner.invoke(
        main, [*base, "--since", ten.isoformat(), "--until", (ten + timedelta(hours=1)).isoformat()],
        env=env,
    )  # fmt: skip
    day = runner.invoke(
        main,
        [*base, "--since", auth_store.start.isoformat(), "--until", auth_store.end.isoformat()],
        env=env,
    )
    assert " x 429 over 1 hour covered; " in one.stdout, one.stdout
    assert f" x 429 over {auth_store.hours_covered} hours covered; " in day.stdout, day.stdout
    reason = (
        "top sources: client addresses are only in the API's logs, which lsops collects "
        "(lsops logs) but does not count by client address: top sources unknown"
    )
    assert reason in " ".join(day.stdout.split())
    assert "another issue" not in day.stdout and "does not read the" not in day.stdout
