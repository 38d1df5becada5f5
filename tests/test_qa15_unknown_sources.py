"""QA 15: `lsops logs` and `lsops errors` give no figure for what was not observed: a
pattern's baseline is null ("–") when the logs of the window before are not known (not
collected then, nothing stored from before), never 0; `lsops errors` with Sentry unknown
gives `issues: null` beside `fatal` and `new_errors` null, never [].

Real pm2 log files (tests/fixtures/sources.py's `Pm2Log`) collected through
`collect_sources` at a chosen clock (the run it records is what the rule reads), a real
SQLite store, the Sentry stand-in on loopback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lsops_lib.cli import main
from lsops_lib.sim.sentry import SentryStandIn
from lsops_lib.sources import collect_sources
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from tests.fixtures.sources import SENTRY_TOKEN, Pm2Log

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ERROR = "❌ Express Error: Database query timeout after {}ms"


def _collect(store: Store, folder: Path, at: datetime) -> None:
    settings = SourceSettings(logs=LogSettings(paths=(str(folder / "api-*.log*"),)))
    [run] = collect_sources(store, settings, target="default", clock=lambda: at)
    assert run.source == "logs" and run.ok, run


def _logs(env: dict[str, str], *extra: str) -> Result:
    span = ["--since", T0.isoformat(), "--until", (T0 + DAY).isoformat()]
    return CliRunner().invoke(main, ["logs", *span, *extra], env=env)


def _env(lsops_env: dict[str, str], store: Store, folder: Path) -> dict[str, str]:
    return {
        **lsops_env,
        "LSOPS_STORE": store._url,
        "LSOPS_LOGS": str(folder / "api-*.log*"),
        "COLUMNS": "200",
    }


def test_no_baseline_when_the_window_before_was_never_collected(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    log = Pm2Log(tmp_path)
    for k in range(3):
        log.write(ERROR.format(100 + k), T0 + timedelta(hours=1, minutes=k))
    _collect(sqlite_store, tmp_path, T0 + timedelta(hours=2))  # the first collection ever
    env = _env(lsops_env, sqlite_store, tmp_path)
    doc = json.loads(_logs(env, "--json").stdout)
    assert [(p["count"], p["baseline"]) for p in doc["patterns"]] == [(3, None)]
    text = _logs(env)
    assert text.exit_code == 0, text.output
    row = next(line for line in text.stdout.splitlines() if "Express Error" in line)
    cells = [c.strip() for c in row.split("│")]
    assert cells[4:6] == ["3", "–"], row  # count, before


def test_a_quiet_window_before_that_was_collected_is_a_zero(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    """The logs collected during the day before (the file empty then): 0 lines of each
    pattern before, a known zero, as the checklist counts a collection in its window."""
    log = Pm2Log(tmp_path)
    log.path.touch()
    _collect(sqlite_store, tmp_path, T0 - timedelta(hours=12))  # nothing to read yet
    for k in range(2):
        log.write(ERROR.format(200 + k), T0 + timedelta(hours=1, minutes=k))
    _collect(sqlite_store, tmp_path, T0 + timedelta(hours=2))
    doc = json.loads(_logs(_env(lsops_env, sqlite_store, tmp_path), "--json").stdout)
    assert [(p["count"], p["baseline"]) for p in doc["patterns"]] == [(2, 0)]


def test_lines_stored_from_before_make_the_baseline_known(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    """One collection (inside the window) read the file back from its beginning: the lines
    of the day before are stored, so are the counts before (1 of one pattern, 0 of the
    other)."""
    log = Pm2Log(tmp_path)
    log.write(ERROR.format(300), T0 - timedelta(hours=5))
    log.write(ERROR.format(301), T0 + timedelta(hours=1))
    log.write("FATAL ERROR: Reached heap limit", T0 + timedelta(hours=1, minutes=5))
    _collect(sqlite_store, tmp_path, T0 + timedelta(hours=2))
    doc = json.loads(_logs(_env(lsops_env, sqlite_store, tmp_path), "--json").stdout)
    got = {p["template"].split(":")[0]: (p["count"], p["baseline"]) for p in doc["patterns"]}
    assert got == {"❌ Express Error": (1, 1), "FATAL ERROR": (1, 0)}


def test_lsops_errors_with_sentry_unknown_lists_no_issue(
    sentry_stand_in: SentryStandIn, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **lsops_env,
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "LSOPS_SENTRY_URL": sentry_stand_in.url,
        "LSOPS_SENTRY_ORG": "longsang",
        "LSOPS_SENTRY_PROJECT": "longsang-api",
        "SENTRY_AUTH_TOKEN": SENTRY_TOKEN,
    }
    runner = CliRunner()
    answered = runner.invoke(main, ["errors", "--json"], env=env)
    assert answered.exit_code == 0, answered.output
    doc = json.loads(answered.stdout)  # Sentry answered, no issue: a known empty list
    assert (doc["issues"], doc["fatal"], doc["new_errors"]) == ([], 0, 0)
    unconfigured = {k: v for k, v in env.items() if k != "LSOPS_SENTRY_ORG"}
    sentry_stand_in.stop()
    for case in (unconfigured, env):  # not configured; configured but unreachable
        result = runner.invoke(main, ["errors", "--json"], env=case)
        assert result.exit_code == 3, result.output
        doc = json.loads(result.stdout)
        assert doc["error"] and (doc["issues"], doc["fatal"], doc["new_errors"]) == (None,) * 3
        text = runner.invoke(main, ["errors"], env=case)
        assert text.exit_code == 3 and text.stdout.startswith("UNKNOWN: ")
        assert "Traceback" not in result.output + text.output
