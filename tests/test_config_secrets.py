"""Secrets in the settings: a database URL mistyped in any of the ways people mistype it is
refused in one line with its password masked; a secret variable lsops.toml names but the
environment does not set is said by the command that needs it, and only by that one (a
database-only host runs `lsops db` without the API's token)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ConfigError

SECRET = "Sup3rSecret"

TOML = """\
default_target = "prod"

[targets.prod]
url = "http://127.0.0.1:9"  # nothing listens (the README has the real host)
token_env = "LONGSANG_PROD_TOKEN"

[targets.staging]
url = "http://127.0.0.1:9"

[databases.prod]
url_env = "PROD_DATABASE_URL"

[databases.staging]
url_env = "STAGING_DB"
"""


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql:/lsops:{SECRET}@db:5432/longsang",  # one slash
        f"postgresql//lsops:{SECRET}@db/longsang",  # no colon
        f"lsops:{SECRET}@db/longsang",  # no scheme
        f"host=db user=lsops password={SECRET} dbname=longsang",  # libpq's keyword form
        f"postgresql://lsops:{SECRET}@db:99999/longsang",  # a port out of range
    ],
)
def test_a_mistyped_database_url_is_refused_with_its_password_masked(
    url: str, lsops_env: dict[str, str]
) -> None:
    for args in (["db", "size"], ["index-stats"]):
        result = CliRunner().invoke(main, args, env={**lsops_env, "LSOPS_DATABASE_URL": url})
        assert result.exit_code == 2, (args, result.output)
        assert SECRET not in result.output
        assert result.output.count("\n") == 1 and "not a usable URL" in result.output


def _settings(env: dict[str, str], **kw: object):  # noqa: ANN202 - Settings
    return load_settings(None, env=env, **kw)  # type: ignore[arg-type]


def test_an_unset_secret_is_said_by_what_needs_it_only(tmp_path) -> None:  # noqa: ANN001
    config = tmp_path / "lsops.toml"
    config.write_text(TOML)
    env = {"LSOPS_CONFIG": str(config), "PROD_DATABASE_URL": "postgresql://u@127.0.0.1:9/x"}
    settings = _settings(env)  # neither the token nor the staging database is set: fine
    assert settings.database() == "postgresql://u@127.0.0.1:9/x"
    assert settings.database("prod") == "postgresql://u@127.0.0.1:9/x"
    with pytest.raises(
        ConfigError, match=r"^\[databases.staging\]: environment variable STAGING_DB"
    ):
        settings.database("staging")
    with pytest.raises(
        ConfigError, match=r"^unknown database 'typo' \(configured: prod, staging\)$"
    ):
        settings.database("typo")
    with pytest.raises(
        ConfigError, match=r"^unknown database 'typo' \(configured: prod, staging\)$"
    ):
        _settings(env, database="typo")
    with pytest.raises(ConfigError, match="STAGING_DB"):
        _settings(env, database="staging")  # asked for by name: said at once
    with pytest.raises(
        ConfigError, match=r"^\[targets.prod\]: environment variable LONGSANG_PROD_TOKEN"
    ):
        settings.api_token  # noqa: B018 - the API is asked: now it is said
    assert _settings({**env, "LONGSANG_PROD_TOKEN": "t0k"}).api_token == "t0k"
    assert _settings({**env, "LSOPS_API_TOKEN": "t1k"}).api_token == "t1k"
    assert _settings(env, target="staging").api_token is None  # staging needs none


def test_the_api_commands_say_the_unset_token_the_database_ones_do_not(
    tmp_path,
    lsops_env: dict[str, str],  # noqa: ANN001
) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text(TOML)
    env = {
        **lsops_env,
        "LSOPS_CONFIG": str(config),
        "PROD_DATABASE_URL": "postgresql://u@127.0.0.1:9/x",
    }
    health = CliRunner().invoke(main, ["health"], env=env)
    assert health.exit_code != 0 and "LONGSANG_PROD_TOKEN" in health.output
    assert "Traceback" not in health.output and health.output.count("\n") == 1
    size = CliRunner().invoke(main, ["db", "size"], env=env)  # port 9: nothing listens
    assert size.exit_code == 1, size.output
    assert "LONGSANG_PROD_TOKEN" not in size.output and "STAGING_DB" not in size.output
