"""QA 14: an unknown name in lsops.toml [thresholds] is said in one whole line (the closest
names, then every known one, nothing cut); a malformed URL names the setting it came from
(the variable, or the lsops.toml key and file), its password masked; pm2's CPU above the
runbook's critical level (> 90 %) makes the checklist's CPU line critical."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.analysis.checklist import exit_code
from lsops_lib.cli import main
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.sources.checks import source_checks
from lsops_lib.sources.settings import Pm2Settings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.analysis import T0
from tests.fixtures.sources import pm2_sample

SECRET = "Sup3rSecret"


def _invoke(args: list[str], env: dict[str, str]):  # noqa: ANN202 - click's Result
    return CliRunner().invoke(main, args, env=env)


# --- 1. an unknown threshold ---------------------------------------------------------------


def test_an_unknown_threshold_is_one_whole_line_with_every_known_name(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[thresholds]\nlatency_p95 = 400\n")
    result = _invoke(["--config", str(config), "endpoints"], lsops_env)
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    assert "…" not in line  # not cut
    assert line.startswith(f"lsops: {config}: unknown threshold 'latency_p95' in [thresholds]")
    assert "did you mean 'latency_p95_ms'" in line
    listed = line.split("(known: ", 1)[1].removesuffix(")").split(", ")
    assert listed == sorted(f.name for f in fields(Thresholds))  # every one, the last too


# --- 2. a malformed URL names its setting -------------------------------------------------

MISTYPED = f"postgresql:/lsops:{SECRET}@db/longsang"  # one slash
NO_SCHEME = f"lsops:{SECRET}@db/longsang"


@pytest.mark.parametrize(
    ("args", "variables", "toml", "setting"),
    [
        (["endpoints"], {"LSOPS_STORE": MISTYPED}, "", "LSOPS_STORE: not a store URL"),
        (["endpoints"], {"LSOPS_STORE": NO_SCHEME}, "", "LSOPS_STORE: not a store URL"),
        (
            ["endpoints"],
            {},
            f'[store]\nurl = "{MISTYPED}"\n',
            "[store] url in {config}: not a store URL",
        ),
        (["db", "size"], {"LSOPS_DATABASE_URL": NO_SCHEME}, "", "LSOPS_DATABASE_URL: "),
        (["db", "size"], {"LSOPS_DATABASE_URL": MISTYPED}, "", "LSOPS_DATABASE_URL: "),
        (
            ["db", "size"],
            {},
            f'[databases.prod]\nurl = "{NO_SCHEME}"\n',
            "[databases.prod] url in {config}: not a usable URL",
        ),
        (
            ["db", "size", "--database", "prod"],
            {"PROD_DB": MISTYPED},
            '[databases.prod]\nurl_env = "PROD_DB"\n',
            "database prod (PROD_DB, named by [databases.prod] url_env in {config}): ",
        ),
        (
            ["endpoints"],
            {"LSOPS_API_URL": f"http//u:{SECRET}@h"},
            "",
            "API URL of target default (LSOPS_API_URL): not a usable URL",
        ),
        (
            ["endpoints"],
            {},
            f'[targets.prod]\nurl = "ftp://u:{SECRET}@h"\n',
            "API URL of target prod ([targets.prod] url in {config}): not a usable URL",
        ),
    ],
)
def test_a_malformed_url_names_the_setting_it_came_from(
    lsops_env: dict[str, str],
    tmp_path: Path,
    args: list[str],
    variables: dict[str, str],
    toml: str,
    setting: str,
) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text(toml)
    result = _invoke(args, {**lsops_env, **variables, "LSOPS_CONFIG": str(config)})
    assert result.exit_code == 2, result.output
    assert SECRET not in result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"lsops: {setting.format(config=config)}"), result.stderr
    assert ":***@" in result.stderr  # the URL is shown, its password masked


def test_a_good_store_url_is_unchanged_and_a_sqlite_path_may_hold_spaces(tmp_path: Path) -> None:
    for url in (
        f"sqlite:///{tmp_path / 'my data' / 'm.sqlite'}",
        "sqlite://",
        "postgresql+psycopg://u:pw@127.0.0.1:5432/x",
        "postgres://u@127.0.0.1/x",
    ):
        assert load_settings(env={"LSOPS_STORE": url}, cwd=tmp_path).store_url == url


# --- 3. CPU above the critical level ------------------------------------------------------


def _pm2_day(store: Store, percent: float) -> SourceSettings:
    """A day of 5-minute pm2 samples of the app at `percent` of one core."""
    for k in range(288):
        tables.record_pm2(
            store,
            "default",
            T0 + timedelta(minutes=5 * k),
            [pm2_sample(percent)],
        )
    tables.record_source_run(store, "default", "pm2", T0, ok=True, items=1, error=None)
    return SourceSettings(pm2=Pm2Settings(enabled=True))


@pytest.mark.parametrize(
    ("percent", "thresholds", "status", "severity", "code"),
    [
        (98.0, Thresholds(), "fail", "critical", 2),  # the runbook: > 90 % is critical
        (90.5, Thresholds(), "fail", "critical", 2),
        (85.0, Thresholds(), "fail", "warning", 1),  # above the 70 % target only
        (98.0, Thresholds(cpu_critical_percent=99.0), "fail", "warning", 1),  # settable
        (50.0, Thresholds(), "pass", "warning", 0),
    ],
)
def test_cpu_above_the_critical_level_is_critical(
    sqlite_store: Store,
    percent: float,
    thresholds: Thresholds,
    status: str,
    severity: str,
    code: int,
) -> None:
    sources = _pm2_day(sqlite_store, percent)
    end = T0 + timedelta(days=1)
    cpu = source_checks(sqlite_store, T0, end, thresholds, target="default", sources=sources)["cpu"]
    assert (cpu.status, cpu.severity) == (status, severity)
    assert cpu.value == pytest.approx(percent / 100)
    assert exit_code([cpu]) == code


def test_cpu_critical_percent_is_read_from_lsops_toml(tmp_path: Path) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text("[thresholds]\ncpu_critical_percent = 95\n")
    assert load_settings(config, env={}, cwd=tmp_path).thresholds.cpu_critical_percent == 95.0
    assert Thresholds().cpu_critical_percent == 90.0  # the runbook's "CPU > 90 %: critical"
