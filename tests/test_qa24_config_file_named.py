"""QA 24: a bad value in a settings file given by `--config other.toml` (or LSOPS_CONFIG)
was reported as `lsops.toml: ...`, naming a file the user does not have (an unknown key
named the right one): every block's messages name the file the settings came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main

CASES = [
    ("[thresholds]\nerror_rate = 5\n", ["endpoints"], "threshold error_rate must be a fraction"),
    ("[alerts]\ndown_after = 0\n", ["alerts"], "[alerts] down_after must be a whole number >= 1"),
    ("[backups]\nmax_age = -1\n", ["backup", "check"], "[backups] max_age must be positive"),
    ("[sentry]\ntimeout_s = -1\n", ["errors"], "[sentry] timeout_s must be a number of seconds"),
    ("default_target = 3\n", ["endpoints"], "default_target must be the name of a target"),
]


@pytest.mark.parametrize(("text", "command", "said"), CASES)
def test_a_bad_value_names_the_settings_file_it_is_in(
    tmp_path: Path, lsops_env: dict[str, str], text: str, command: list[str], said: str
) -> None:
    other = tmp_path / "staging-settings.toml"
    other.write_text(text)
    for args, env in (
        (["--config", str(other), *command], lsops_env),
        (command, {**lsops_env, "LSOPS_CONFIG": str(other)}),
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code != 0, (args, result.output)  # each command's own code
        assert result.output.startswith(f"lsops: {other}: {said}"), (args, result.output)
    # the file of the usual name keeps the usual words
    (tmp_path / "lsops.toml").write_text(text)
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "lsops.toml"), *command], env=lsops_env
    )
    assert result.output.startswith(f"lsops: lsops.toml: {said}"), result.output
