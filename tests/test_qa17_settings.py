"""QA 17, settings: the notifiers' secrets (a webhook URL, an SMTP password) are masked in
archived reports as the API token is; a timeout in lsops.toml is a number of seconds above
0 and at most a week; a fraction threshold is refused outside 0 .. 1 (`error_rate = 5`
meant 5 %), a whole-number threshold given as 1.5 is refused (not rounded), the cosine
similarity threshold is -1 .. 1 and a forecast needs two snapshots at least. Each refusal
is one line naming the setting, exit 2 (3 for the monitoring-plugin commands)."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.alerts import alert_settings
from lsops_lib.cli import main
from lsops_lib.config import Thresholds, load_settings
from lsops_lib.exceptions import ConfigError
from lsops_lib.sources.settings import source_settings

NOTEBOOKS = Path(__file__).parent / "data" / "notebooks"
HOOK = "https://hooks.example.test/services/T0QA17/B0QA17/hookSECRETqa17"
OTHER_HOOK = "https://chat.example.test/v1/spaces/QA17/messages?key=secretKEYqa17"
SMTP_PW = "smtp-PLANTED-qa17-5c1d"
ALERTS = """\
[alerts.notifiers.chat]
kind = "webhook"
url_env = "QA17_CHAT_HOOK"

[alerts.notifiers.mail]
kind = "email"
host = "127.0.0.1"
from = "lsops@example.test"
to = "oncall@example.test"
password_env = "QA17_SMTP_PW"
"""


def _load(tmp_path: Path, toml: str, **env: str):  # noqa: ANN202 - Settings
    config = tmp_path / "lsops.toml"
    config.write_text(toml)
    env = {"LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}", "LSOPS_CONFIG": str(config), **env}
    return load_settings(env=env, cwd=tmp_path)


# --- 1. the notifiers' secrets in archived reports ----------------------------------------------


def test_a_report_printing_the_notifiers_secrets_archives_only_the_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel inherits this process's environment: a careless cell printing the webhook
    URLs and the SMTP password leaves `***` in report.ipynb, report.html and run.json."""
    monkeypatch.setenv("QA17_CHAT_HOOK", HOOK)
    monkeypatch.setenv("QA17_SMTP_PW", SMTP_PW)
    monkeypatch.setenv("LSOPS_ALERT_WEBHOOK", OTHER_HOOK)
    settings = _load(tmp_path, ALERTS)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.read(NOTEBOOKS / "monthly_review.ipynb", as_version=4)
    nb.cells.insert(
        -1,
        nbformat.v4.new_code_cell(
            "import os\n"
            "from lsops_lib.alerts import alert_settings\n"
            "for name in ('QA17_CHAT_HOOK', 'QA17_SMTP_PW', 'LSOPS_ALERT_WEBHOOK'):\n"
            "    print(name, '=', os.environ[name])\n"
            "print('chat', alert_settings(settings).notifiers['chat'].secret)"
        ),
    )
    nbformat.write(nb, notebooks / "monthly_review.ipynb")
    run = reports.run_report(
        "monthly-review",
        {"month": "2026-10"},
        settings=settings,
        outputs_dir=tmp_path / "outputs",
        notebooks_dir=notebooks,
        timeout_s=120,
        progress=False,
        cwd=tmp_path,
    )
    assert run.status == "succeeded", run.error
    files = [run.ipynb_path, run.html_path, run.json_path]
    for path in files:
        raw = path.read_text()
        for secret in (HOOK, OTHER_HOOK, SMTP_PW, "hookSECRETqa17", "secretKEYqa17"):
            assert secret not in raw, (path.name, secret)
    printed = json.dumps(nbformat.read(run.ipynb_path, as_version=4).cells)
    for line in ("QA17_CHAT_HOOK = ***", "QA17_SMTP_PW = ***", "LSOPS_ALERT_WEBHOOK = ***"):
        assert line in printed, printed[-2000:]
    assert "chat ***" in printed


def test_the_secrets_of_the_settings_own_variables_and_of_a_bad_alerts_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings read from a mapping hold its notifier secrets (a library caller's kernel may
    be given them); an [alerts] block refused for another key still masks what it names."""
    for name in ("QA17_CHAT_HOOK", "QA17_SMTP_PW", "LSOPS_ALERT_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    env = {"QA17_CHAT_HOOK": HOOK, "QA17_SMTP_PW": SMTP_PW, "LSOPS_ALERT_WEBHOOK": OTHER_HOOK}
    assert {HOOK, SMTP_PW, OTHER_HOOK} <= set(_load(tmp_path, ALERTS, **env).secrets())
    bad = ALERTS + "\n[alerts]\ndown_after = 2.5\n"  # refused by alert_settings
    settings = _load(tmp_path, bad, **env)
    with pytest.raises(ConfigError):
        alert_settings(settings, env=env)
    assert {HOOK, SMTP_PW, OTHER_HOOK} <= set(settings.secrets())
    assert not {HOOK, SMTP_PW} & set(_load(tmp_path, "").secrets())  # not named: not held


# --- 2. timeouts -------------------------------------------------------------------------------

TIMEOUTS = [
    ("[api]\n", "[api] timeout_s", lambda s: s.target.timeout_s),
    ("[targets.prod]\n", "[targets.prod] timeout_s", lambda s: s.target.timeout_s),
    ("[sentry]\n", "[sentry] timeout_s", lambda s: source_settings(s).sentry.timeout_s),
    ("[pm2]\n", "[pm2] timeout_s", lambda s: source_settings(s).pm2.timeout_s),
    ("[security]\naudit_", "[security] audit_timeout_s", lambda s: s.audit_timeout_s),
    (
        '[alerts.notifiers.x]\nkind = "webhook"\nurl_env = "U"\n',
        "[alerts.notifiers.x] timeout_s",
        lambda s: alert_settings(s, env={}).notifiers["x"].timeout_s,
    ),
]
WEEK = 7 * 86400


@pytest.mark.parametrize(("head", "setting", "read"), TIMEOUTS, ids=[t[1] for t in TIMEOUTS])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "0", str(WEEK + 1), '"soon"'])
def test_a_timeout_out_of_range_is_refused_naming_the_setting(
    tmp_path: Path, head: str, setting: str, read, value: str
) -> None:
    if setting.startswith("[alerts") and value in ("-1", "0", '"soon"', "-inf", "nan"):
        pytest.skip("refused before (tests/test_qa16_alerts.py), by its own words")
    with pytest.raises(ConfigError) as caught:
        read(_load(tmp_path, f"{head}timeout_s = {value}\n"))
    said = str(caught.value)
    assert said.startswith(f"lsops.toml: {setting} must be a number of seconds above 0 and at most")
    assert "604,800" in said and "\n" not in said


@pytest.mark.parametrize(("head", "setting", "read"), TIMEOUTS, ids=[t[1] for t in TIMEOUTS])
def test_a_timeout_in_range_is_taken_as_written(
    tmp_path: Path, head: str, setting: str, read
) -> None:
    for value, seconds in (("0.5", 0.5), ("30", 30.0), (str(WEEK), float(WEEK))):
        assert read(_load(tmp_path, f"{head}timeout_s = {value}\n")) == seconds


@pytest.mark.parametrize(
    ("toml", "args", "code", "said"),
    [
        (
            '[sentry]\nurl = "http://127.0.0.1:9"\norg = "o"\nproject = "p"\ntimeout_s = -1\n',
            ["errors"],
            3,
            "[sentry] timeout_s must be a number of seconds above 0",
        ),
        ("[sentry]\ntimeout_s = inf\n", ["errors"], 3, "[sentry] timeout_s"),
        ("[api]\ntimeout_s = 0\n", ["health"], 3, "[api] timeout_s"),
        ("[security]\naudit_timeout_s = nan\n", ["security"], 2, "[security] audit_timeout_s"),
        ("[security]\naudit_timeout_s = -1\n", ["security"], 2, "[security] audit_timeout_s"),
        ("[targets.p]\nretries = 1.5\n", ["endpoints"], 2, "[targets.p] retries must be a whole"),
        ("[api]\nretries = 1000000\n", ["endpoints"], 2, "[api] retries must be a whole number"),
        (
            '[alerts.notifiers.x]\nkind = "webhook"\nurl_env = "U"\ntimeout_s = inf\n',
            ["alerts", "check"],
            2,
            "[alerts.notifiers.x] timeout_s must be a number of seconds above 0",
        ),
    ],
)
def test_the_commands_say_a_bad_timeout_in_one_line(
    lsops_env: dict[str, str], tmp_path: Path, toml: str, args: list[str], code: int, said: str
) -> None:
    (tmp_path / "lsops.toml").write_text(toml)
    env = {
        **lsops_env,
        "LSOPS_CONFIG": str(tmp_path / "lsops.toml"),
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}",
        "LSOPS_SENTRY_TOKEN": "t",
    }
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(f"lsops: lsops.toml: {said}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


# --- 3 and 4. thresholds ------------------------------------------------------------------------

# the README's table: the thresholds that are shares, rates or probabilities (0 .. 1)
FRACTIONS = """
error_rate error_rate_warn error_rate_critical cache_hit_rate cache_hit_rate_warn
memory_fraction memory_critical_fraction memory_growth_per_hour availability_slo latency_slo
notable_error_rate_change notable_availability_change notable_cache_hit_rate_change
notable_endpoint_error_rate_change harm_significance backup_shrink backup_rows_tolerance
recall_target forecast_shrink_ratio dead_tuple_ratio seq_scan_ratio bloat_ratio
wraparound_warn wraparound_critical sequence_warn sequence_critical connections_warn
cache_hit_ratio memory_climb_per_hour
""".split()


def _thresholds(tmp_path: Path, lines: str) -> Thresholds:
    return _load(tmp_path, f"[thresholds]\n{lines}\n").thresholds


def test_every_default_threshold_written_out_is_taken_as_written(tmp_path: Path) -> None:
    defaults = Thresholds()
    lines = "\n".join(f"{f.name} = {getattr(defaults, f.name)!r}" for f in fields(Thresholds))
    assert _thresholds(tmp_path, lines) == defaults


@pytest.mark.parametrize("key", FRACTIONS)
def test_a_percent_for_a_fraction_threshold_is_refused_with_the_fraction_it_meant(
    tmp_path: Path, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _thresholds(tmp_path, f"{key} = 5")
    assert str(caught.value) == (
        f"lsops.toml: threshold {key} must be a fraction from 0 to 1 (0.05 for 5 %), not 5"
    )
    for value in ("1.0001", "-0.1", "nan", "inf"):
        with pytest.raises(ConfigError, match=f"threshold {key} must be a fraction from 0 to 1"):
            _thresholds(tmp_path, f"{key} = {value}")
    for value in (0, 0.5, 1):
        assert getattr(_thresholds(tmp_path, f"{key} = {value}"), key) == value


def test_the_hint_is_the_fraction_of_the_percent_written(tmp_path: Path) -> None:
    for line, hint in (("latency_slo = 95", "0.95 for 95 %"), ("cache_hit_rate = 70", "0.7 for 70 %"),
                       ("recall_target = 7", "0.07 for 7 %"), ("error_rate = 500", "0.05 for 5 %")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"must be a fraction from 0 to 1 \\({hint}\\)"):
            _thresholds(tmp_path, line)


def test_a_percent_error_rate_target_is_refused_by_the_checklist(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """Before: "Error rate < 500%", passing at 20 % errors."""
    (tmp_path / "lsops.toml").write_text("[thresholds]\nerror_rate = 5\n")
    env = {**lsops_env, "LSOPS_CONFIG": str(tmp_path / "lsops.toml")}
    env["LSOPS_STORE"] = f"sqlite:///{tmp_path / 'm.sqlite'}"
    for args, code in ((["checklist"], 3), (["endpoints"], 2)):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == code, result.output
        assert result.stderr == (
            "lsops: lsops.toml: threshold error_rate must be a fraction from 0 to 1 "
            "(0.05 for 5 %), not 5\n"
        )


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("database_size_limit_bytes = 1.5", "a whole number of bytes, 0 or more, not 1.5"),
        ("memory_limit_bytes = 536870912.5", "a whole number of bytes, 0 or more"),
        ("bloat_min_bytes = -1", "a whole number of bytes, 0 or more, not -1"),
        ("slow_query_calls = 2.5", "a whole number, 0 or more, not 2.5"),
        ("similarity_threshold = 5", "a cosine similarity from -1 to 1, not 5"),
        ("similarity_threshold = -1.5", "a cosine similarity from -1 to 1, not -1.5"),
        ("forecast_min_snapshots = 1", "a whole number of at least 2 (a forecast needs two"),
        ("forecast_min_snapshots = 0", "a whole number of at least 2"),
    ],
)
def test_counts_bytes_similarity_and_snapshots_are_range_checked(
    tmp_path: Path, line: str, said: str
) -> None:
    key = line.split(" = ")[0]
    with pytest.raises(ConfigError) as caught:
        _thresholds(tmp_path, line)
    assert str(caught.value).startswith(f"lsops.toml: threshold {key} must be {said}")


def test_whole_numbers_written_as_floats_and_the_limits_in_range_are_taken(tmp_path: Path) -> None:
    th = _thresholds(
        tmp_path,
        "memory_limit_bytes = 536870912.0\ndatabase_size_limit_bytes = 0\n"  # 0: no limit
        "similarity_threshold = -0.25\nforecast_min_snapshots = 2\n"
        f"backup_exact_rows = {2**62}",
    )
    assert th.memory_limit_bytes == 536870912 and isinstance(th.memory_limit_bytes, int)
    assert th.database_size_limit_bytes == 0 and th.similarity_threshold == -0.25
    assert th.forecast_min_snapshots == 2 and th.backup_exact_rows == 2**62  # not via float
    assert not math.isnan(th.error_rate)


def test_a_similarity_out_of_range_is_said_at_load_naming_the_setting(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """Before: only `lsops db vectors` refused it, as "--threshold is a cosine similarity"."""
    (tmp_path / "lsops.toml").write_text("[thresholds]\nsimilarity_threshold = 5\n")
    env = {**lsops_env, "LSOPS_CONFIG": str(tmp_path / "lsops.toml")}
    env["LSOPS_DATABASE_URL"] = "postgresql://u@127.0.0.1:9/x"
    result = CliRunner().invoke(main, ["db", "vectors"], env=env)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "lsops: lsops.toml: threshold similarity_threshold must be a cosine similarity "
        "from -1 to 1, not 5\n"
    )
