"""A password typed into a URL without percent-encoding its `@`, `/`, `?` or `#`: every
parser cuts such a URL elsewhere (urlsplit at the first `/`, SQLAlchemy at the first `@`),
and a piece of the password became a host name, looked up and printed ("failed to resolve
host 'ret9Leak@127.0.0.1'"), or a port ("Port could not be cast to integer value as
'Top'"), on the terminal and in archived reports. Such a URL is refused in one line, exit
2, masked whole; a percent-encoded one works as before. And a store driver lsops does not
use is one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import check_store_url, credentials_problem, load_settings, redact_url
from lsops_lib.exceptions import ConfigError, ParameterError, StoreError
from lsops_lib.present.source import StoreSource, open_store, resolve_target
from lsops_lib.store import Store
from lsops_lib.store.schema import StoreUrlError

# (url, the pieces of its password that must never be shown)
MISTYPED = [
    ("postgresql://lsops:Sec@ret9Leak@127.0.0.1:9/metrics", ["Sec@ret9Leak", "ret9Leak"]),
    ("postgresql://lsops:p@ss/w0rdLeak@127.0.0.1:9/metrics", ["w0rdLeak", "ss/w0rd"]),
    ("postgresql://lsops:Top/SecretLeak@127.0.0.1:9/metrics", ["Top", "SecretLeak"]),
    ("postgresql://lsops:Hash#SecretLeak@127.0.0.1:9/metrics", ["Hash", "SecretLeak"]),
    ("postgresql://lsops:Ask?SecretLeak@127.0.0.1:9/metrics", ["Ask", "SecretLeak"]),
]


@pytest.mark.parametrize("url,pieces", MISTYPED)
def test_the_whole_password_is_masked(url: str, pieces: list[str]) -> None:
    shown = redact_url(url)
    assert shown == "postgresql://lsops:***@127.0.0.1:9/metrics"
    assert credentials_problem(url) is not None
    assert not any(p in credentials_problem(url) for p in pieces)


@pytest.mark.parametrize("url,pieces", MISTYPED)
@pytest.mark.parametrize(
    "variable,args",
    [
        ("LSOPS_STORE", ["endpoints"]),
        ("LSOPS_STORE", ["collect", "--once"]),
        ("LSOPS_DATABASE_URL", ["db", "size"]),
        ("LSOPS_API_URL", ["health"]),
    ],
)
def test_a_command_refuses_it_in_one_line_without_a_piece_of_it(
    url: str, pieces: list[str], variable: str, args: list[str], lsops_env: dict[str, str]
) -> None:
    if variable == "LSOPS_API_URL":
        url = url.replace("postgresql://", "http://")
    result = CliRunner().invoke(main, args, env={**lsops_env, variable: url})
    assert result.exit_code in (2, 3), result.output  # health: 3 is its "unknown"
    assert result.exit_code == (3 if args == ["health"] else 2)
    assert result.output.count("\n") == 1, result.output
    assert variable in result.output and "percent-encode" in result.output
    assert not any(p in result.output for p in pieces), result.output


@pytest.mark.parametrize("url,pieces", MISTYPED)
def test_the_library_refuses_it_too(url: str, pieces: list[str]) -> None:
    with pytest.raises(StoreError) as caught:
        Store(url)
    assert "percent-encode" in str(caught.value)
    assert not any(p in str(caught.value) for p in pieces)


def test_a_percent_encoded_password_is_a_password() -> None:
    url = "postgresql://lsops:p%40ss%2Fw%25rd%3AX9%23%3Fq@127.0.0.1:5432/metrics"
    assert credentials_problem(url) is None
    assert check_store_url(url, "LSOPS_STORE") == url
    assert redact_url(url) == "postgresql://lsops:***@127.0.0.1:5432/metrics"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://db:5432/metrics?application_name=a@b",  # a port, then an @ in the query
        "postgresql://lsops@db:5432/metrics",  # a user, no password
        "sqlite:////tmp/with:colon@sign/metrics.sqlite",  # a path
        "postgresql:///metrics?host=/var/run/postgresql",
    ],
)
def test_urls_without_a_password_are_left_as_they_are(url: str) -> None:
    assert credentials_problem(url) is None
    assert redact_url(url) == url
    assert check_store_url(url, "LSOPS_STORE") == url


@pytest.mark.parametrize("driver", ["psycopg2", "asyncpg", "pg8000"])
def test_a_store_driver_lsops_does_not_use_is_one_line(
    driver: str, lsops_env: dict[str, str]
) -> None:
    url = f"postgresql+{driver}://u:pw@127.0.0.1:9/m"
    result = CliRunner().invoke(main, ["endpoints"], env={**lsops_env, "LSOPS_STORE": url})
    assert result.exit_code == 2, result.output
    assert (
        result.output.count("\n") == 1 and f"unsupported store driver {driver!r}" in result.output
    )
    assert "Traceback" not in result.output and ":pw@" not in result.output
    with pytest.raises(ConfigError, match="unsupported store driver"):
        Store(url)  # the library's own check (StoreUrlError is a ConfigError)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("nope://x", "unsupported store backend 'nope': use sqlite:/// or postgresql://"),
        ("http://h/x", "unsupported store backend 'http': use sqlite:/// or postgresql://"),
        ("mysql://h/x", "unsupported store backend 'mysql': use sqlite:/// or postgresql://"),
        (None, "not a store URL: NoneType (expected a URL string such as sqlite:///"),
        (Path("m.sqlite"), "not a store URL: PosixPath (expected a URL string"),
    ],
)
def test_a_store_url_lsops_cannot_open_is_a_config_error(url: object, said: str) -> None:
    # QA 23: a backend SQLAlchemy has no dialect for was a StoreError ("Can't load plugin"),
    # a dialect without its driver (mysql) a raw ModuleNotFoundError, None a TypeError
    with pytest.raises(StoreUrlError) as caught:
        Store(url)  # type: ignore[arg-type]
    assert str(caught.value).startswith(said)
    assert isinstance(caught.value, ConfigError)


def test_the_explicit_drivers_lsops_uses_are_accepted() -> None:
    for url in ("postgresql+psycopg://u@h/m", "sqlite+pysqlite:////tmp/x.sqlite"):
        assert check_store_url(url, "LSOPS_STORE") == url


def test_a_report_says_once_why_the_store_cannot_be_opened() -> None:
    settings = load_settings(None, env={"LSOPS_STORE": "postgresql://lsops:s3cretpw@127.0.0.1:9/m"})
    assert "s3cretpw" in settings.secrets()  # scrubbed from archived files, as the others
    source = open_store(None, settings)
    assert not source.available
    assert source.problem.count("cannot open") == 1, source.problem
    assert "s3cretpw" not in source.problem and "127.0.0.1:9" in source.problem


def test_a_report_refuses_a_target_neither_the_store_nor_the_settings_know(tmp_path) -> None:  # noqa: ANN001
    from tests.fixtures.store import make_scrape

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        store.record_scrape(make_scrape(0, {"/a": (1, 10.0, 0.0)}, target="prod"))
    settings = load_settings(None, env={"LSOPS_STORE": url})
    source = open_store(None, settings)
    assert isinstance(source, StoreSource) and source.available
    with pytest.raises(ParameterError, match=r"unknown target 'nosuch'.*'prod'"):
        resolve_target(source, "nosuch", settings)
    assert resolve_target(source, "prod", settings) == "prod"
    # the default target, not named, on a store of others: refused (QA 24); named, as asked
    with pytest.raises(ParameterError, match=r"no scrape of target 'default', the default one"):
        resolve_target(source, "default", settings)
    named = load_settings(None, env={"LSOPS_STORE": url, "LSOPS_TARGET": "default"})
    assert resolve_target(source, "default", named) == "default"  # configured, none yet


def test_a_sqlite_url_with_options_names_the_same_file_for_readers_and_writers(
    tmp_path,
    lsops_env: dict[str, str],  # noqa: ANN001
) -> None:
    from tests.fixtures.store import make_scrape

    url = f"sqlite:///{tmp_path / 'q.sqlite'}?timeout=5"
    with Store(url) as store:  # what the collector opens
        store.record_scrape(make_scrape(0, {"/a": (1, 10.0, 0.0)}))
    assert (tmp_path / "q.sqlite").is_file() and not (tmp_path / "q.sqlite?timeout=5").exists()
    result = CliRunner().invoke(
        main, ["endpoints", "--json", "--window", "3650d"], env={**lsops_env, "LSOPS_STORE": url}
    )
    assert "does not exist" not in result.output, result.output
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=127.0.0.1 password = S3cr3tPw dbname=x",
        "host=127.0.0.1 password= S3cr3tPw dbname=x",
        "host=127.0.0.1 password='S3cr3tPw with spaces' dbname=x",
        "host=127.0.0.1 password='S3cr3tPw\\'s' dbname=x",
    ],
)
def test_a_libpq_keyword_password_is_masked_in_every_spelling(
    conninfo: str, lsops_env: dict[str, str]
) -> None:
    # QA 23: libpq takes spaces around '=' and quoted values; the refusal printed them
    assert "S3cr3tPw" not in redact_url(conninfo)
    for variable, args in (("LSOPS_STORE", ["endpoints"]), ("LSOPS_DATABASE_URL", ["db", "size"])):
        result = CliRunner().invoke(main, args, env={**lsops_env, variable: conninfo})
        assert result.exit_code == 2, result.output
        assert "S3cr3tPw" not in result.output and "***" in result.output, result.output
