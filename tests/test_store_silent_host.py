"""A PostgreSQL store host that accepts the connection and never answers (a server
booting or frozen, a middlebox holding the connection) is an error after
`schema.PG_CONNECT_S` with one line, not a command or a collector hanging without a word."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.store import schema

pytestmark = pytest.mark.timeout(90)


def test_a_store_host_that_never_answers_is_an_error_not_a_hang(
    lsops_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert schema.PG_CONNECT_S <= 30
    monkeypatch.setattr(schema, "PG_CONNECT_S", 2)  # the same path, 8 s less of waiting
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), says nothing
        url = f"postgresql://lsops:s3cret@127.0.0.1:{silent.getsockname()[1]}/metrics"
        result = CliRunner().invoke(main, ["endpoints"], env={**lsops_env, "LSOPS_STORE": url})
    assert result.exit_code == 1, result.output
    assert "cannot open store" in result.output and "timeout" in result.output
    assert "s3cret" not in result.output and result.output.count("\n") == 1


def test_a_store_connection_gives_up_on_a_lost_host(pg_url: str) -> None:
    """A host lost mid-write (a partition) stalled the collector for TCP's ~15 minutes of
    retries without a word (QA 23): the store's libpq connection carries TCP keepalives
    and tcp_user_timeout (schema.PG_KEEPALIVE, about PG_LOST_S in all); a URL's own
    setting wins."""
    cases = ((pg_url, "10"), (f"{pg_url}?keepalives_idle=60", "60"))
    for url, idle in cases:
        engine = schema.make_engine(url)
        try:
            with engine.connect() as conn:
                params = conn.connection.driver_connection.info.get_parameters()
        finally:
            engine.dispose()
        assert params["keepalives"] == "1" and params["keepalives_idle"] == idle, params
        assert params["keepalives_interval"] == "5" and params["keepalives_count"] == "4"
        assert params["tcp_user_timeout"] == str(schema.PG_LOST_S * 1000)
    assert 10 + 5 * 4 == schema.PG_LOST_S  # the probes end a lost host's wait as soon
