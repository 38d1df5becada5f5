"""QA 24: `lsops report` without a target, on a store that holds only other targets, ran
the report of the settings' default target (`default`) and archived "no observation in
the window" (with an invented collection gap): the default target the store never saw is
refused with the targets it holds, as the notebook refuses target=None on such a store; a
target that was named (--target, LSOPS_TARGET) is reported as asked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ParameterError
from lsops_lib.present.source import open_store, resolve_target
from lsops_lib.store import Store
from tests.fixtures.store import T0, make_scrape

pytestmark = pytest.mark.timeout(300)


def _store(tmp_path: Path, targets: tuple[str, ...]) -> str:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        for name in targets:
            for m in range(0, 60, 5):
                store.record_scrape(make_scrape(m, {"/a": (m + 1, 10.0, 0.0)}, target=name))
    return url


@pytest.mark.parametrize("targets", [("prod", "staging"), ("prod",)])
def test_the_default_target_a_store_never_saw_is_refused(
    tmp_path: Path, lsops_env: dict[str, str], targets: tuple[str, ...]
) -> None:
    url = _store(tmp_path, targets)
    held = ", ".join(repr(t) for t in targets)
    source = open_store(url, load_settings(env={**lsops_env, "LSOPS_STORE": url}))
    try:
        default = load_settings(env={**lsops_env, "LSOPS_STORE": url})
        assert default.target.name == "default" and not default.target_named
        with pytest.raises(ParameterError) as caught:
            resolve_target(source, "default", default)
        assert str(caught.value) == (
            f"the store holds no scrape of target 'default', the default one; it holds "
            f"{held}: choose one with the `target` parameter (--target NAME, or LSOPS_TARGET)"
        )
        # named: as asked (a configured API not scraped yet reads "no observation")
        named = load_settings(env={**lsops_env, "LSOPS_STORE": url, "LSOPS_TARGET": "default"})
        assert named.target_named and resolve_target(source, "default", named) == "default"
        assert resolve_target(source, "prod", default) == "prod"
    finally:
        source.store.close()


def test_a_report_without_a_target_on_a_store_of_others_fails_saying_which(
    tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    url = _store(tmp_path, ("prod", "staging"))
    env = {**lsops_env, "LSOPS_STORE": url}
    window = ["--start", T0.isoformat(), "--end", (T0 + timedelta(hours=1)).isoformat()]
    result = CliRunner().invoke(
        main, ["report", "postmortem", *window, "--title", "t", "--json"], env=env
    )
    assert result.exit_code == 1, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "failed"
    assert "the store holds no scrape of target 'default', the default one" in run["error"]
    assert "'prod', 'staging'" in run["error"]

    result = CliRunner().invoke(
        main,
        ["--target", "prod", "report", "postmortem", *window, "--title", "p", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "succeeded"


def _burst(store: Store, target: str) -> None:
    """12 requests a minute on /a, 6 of them failing from minute 30 to 60 (the API's
    errorRate is over its whole count: the cumulative errors / the cumulative count)."""
    errors = 0
    for m in range(0, 120, 5):
        if 30 <= m < 60:
            errors += 30
        count = 60 * (m // 5 + 1)
        store.record_scrape(make_scrape(m, {"/a": (count, 10.0, errors / count)}, target=target))


def test_a_postmortems_incident_commands_name_the_target_of_a_store_of_several(
    tmp_path: Path,
) -> None:
    """The postmortem's incidents (`pm.incidents`) carried commands without `--target`: run
    as printed, on a store of several targets, they reported the default one."""
    from lsops_lib.analysis import postmortem

    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        _burst(store, "prod")
        _burst(store, "staging")
        pm = postmortem(store, T0, T0 + timedelta(hours=2), target="prod")
    commands = [c for c in pm.incidents["postmortem_command"] if c]
    assert commands, pm.incidents
    assert all(c.startswith("lsops --target prod report postmortem ") for c in commands), commands
    # one target in the store: none named (the default reads it)
    url = f"sqlite:///{tmp_path / 'one.sqlite'}"
    with Store(url) as store:
        _burst(store, "prod")
        pm = postmortem(store, T0, T0 + timedelta(hours=2), target="prod")
    commands = [c for c in pm.incidents["postmortem_command"] if c]
    assert commands and all(c.startswith("lsops report postmortem ") for c in commands), commands
