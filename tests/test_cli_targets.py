"""Every command that reads the store reads the SELECTED target (issue 13), chosen the same
way everywhere: `--target NAME`, else `LSOPS_TARGET`, else `default_target` of lsops.toml,
else the first target; never the sum of several APIs.

The store (fixture `two_targets`) holds two simulated APIs whose figures differ: `alpha`
(clean) and `bravo` (an outage and an error burst). Each command's figures are compared
with the library's for that target alone (what is tested here is which target a command
reads; the figures themselves are tested in test_analysis and test_cli_checks), and the
two targets' figures are checked to differ, so that reading the wrong one (or their sum)
fails.

`STORE_READERS` enumerates the commands that read the store; `test_every_command_is_
classified` fails for a command added to the CLI until it is listed there or in
`NOT_STORE_READERS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from lsops_lib import analysis
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.store import Store
from tests.fixtures.targets import TwoTargets

pytestmark = pytest.mark.timeout(300)


def _endpoints_truth(store: Store, t: TwoTargets, target: str) -> Any:
    frame = analysis.endpoint_summary(store, t.start, t.end, target=target)
    return {str(r.endpoint): int(r.requests) for r in frame.itertuples()}


def _endpoints_cli(doc: Any) -> Any:
    return {e["endpoint"]: e["requests"] for e in doc}


def _incidents_truth(store: Store, t: TwoTargets, target: str) -> Any:
    frame = analysis.incidents(store, t.start, t.end, Thresholds(), target=target)
    return sorted(
        (str(r.kind), r.endpoint if isinstance(r.endpoint, str) else "") for r in frame.itertuples()
    )


def _incidents_cli(doc: Any) -> Any:
    return sorted((i["kind"], i["endpoint"] or "") for i in doc)


def _checklist_truth(store: Store, t: TwoTargets, target: str) -> Any:
    checks = analysis.checklist(store, t.start, t.end, Thresholds(), target=target)
    return {c["key"]: (c["status"], _rounded(c["value"])) for c in map(_as_dict, checks)}


def _as_dict(check: Any) -> dict[str, Any]:
    return check.as_dict()


def _rounded(value: Any) -> Any:
    return round(value, 9) if isinstance(value, float) else value


def _checklist_cli(doc: Any) -> Any:
    return {c["key"]: (c["status"], _rounded(c["value"])) for c in doc["checks"]}


def _logs_truth(store: Store, t: TwoTargets, target: str) -> Any:
    from lsops_lib.sources import log_patterns

    return sorted((p["template"], p["count"]) for p in log_patterns(store, target, t.start, t.end))


def _logs_cli(doc: Any) -> Any:
    return sorted((p["template"], p["count"]) for p in doc["patterns"])


# command -> (its args after the window, the figure from its --json, the library's figure)
STORE_READERS: dict[str, tuple[list[str], Callable[[Any], Any], Callable[..., Any]]] = {
    "endpoints": ([], _endpoints_cli, _endpoints_truth),
    "incidents": ([], _incidents_cli, _incidents_truth),
    "checklist": ([], _checklist_cli, _checklist_truth),
    "logs": ([], _logs_cli, _logs_truth),  # issue 10
}
# `report` reads the store for two of its kinds: test_reports_read_the_selected_target
STORE_READING_REPORTS = ("monthly-review", "postmortem")
NOT_STORE_READERS = {
    "health",  # the API now (its target: test_collect's target tests)
    "cache",  # the API now
    "collect",  # WRITES the store under the selected target's name (test_collect_targets)
    "db size",
    "db indexes",
    "db queries",
    "db maintenance",
    "index-stats",
    "reports",  # the archive
    "demo",  # its own store
    "report",  # see STORE_READING_REPORTS
    "backup check",  # dumps and the database; WRITES its check to the store
    "reindex-list",  # the database
    "db vectors",  # the database
    # reads the store's error records for app.target, the same selection as the readers
    # above; its window figures are tested in test_security (one target)
    "security",
    # issue 11: `alerts check` evaluates (and writes the state of) app.target alone; the
    # selection is tested in test_alerts_cli (test_alerts_check_judges_the_selected_target)
    "alerts check",
    "alerts test",  # the notifiers
    "errors",  # issue 10: Sentry now (its window: test_sources_sentry)
}


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names += _commands(command, full + " ")
        else:
            names.append(full)
    return names


def test_every_command_is_classified() -> None:
    unknown = set(_commands(main)) - set(STORE_READERS) - NOT_STORE_READERS
    assert not unknown, f"say whether these read the metrics store (and test them): {unknown}"


def _ways(t: TwoTargets, folder: Path, name: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    """The three ways of selecting `name`, as (global options, environment)."""
    plain = str(t.config(folder))
    return {
        "--target": (["--config", plain, "--target", name], {}),
        "LSOPS_TARGET": (["--config", plain], {"LSOPS_TARGET": name}),
        "default_target": (["--config", str(t.config(folder, default=name))], {}),
    }


def _run(args: list[str], env: dict[str, str]) -> Any:
    result = CliRunner().invoke(main, args, env=env)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.exit_code in (0, 1, 2, 3), out
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def truths(two_targets: TwoTargets) -> dict[str, dict[str, Any]]:
    """command -> target -> the library's figure for that target alone."""
    with Store(two_targets.store_url) as store:
        found = {
            command: {name: truth(store, two_targets, name) for name in two_targets.urls}
            for command, (_, _, truth) in STORE_READERS.items()
        }
    for command, by_target in found.items():  # the test can tell the targets apart
        assert by_target["alpha"] != by_target["bravo"], command
    return found


@pytest.mark.parametrize("command", sorted(STORE_READERS))
def test_each_way_of_selecting_a_target_reads_that_target_alone(
    command: str,
    two_targets: TwoTargets,
    truths: dict[str, dict[str, Any]],
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    extra, figure, _ = STORE_READERS[command]
    for name in ("bravo", "alpha"):
        for way, (options, env) in _ways(two_targets, tmp_path, name).items():
            doc = _run(
                [*options, command, *two_targets.span, *extra, "--json"], {**lsops_env, **env}
            )
            assert figure(doc) == truths[command][name], (command, way, name)


@pytest.mark.parametrize("command", sorted(STORE_READERS))
def test_without_a_selection_the_first_target_is_read_never_the_sum(
    command: str,
    two_targets: TwoTargets,
    truths: dict[str, dict[str, Any]],
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    extra, figure, _ = STORE_READERS[command]
    config = str(two_targets.config(tmp_path))
    doc = _run(["--config", config, command, *two_targets.span, *extra, "--json"], lsops_env)
    assert figure(doc) == truths[command]["alpha"]


def test_the_flag_wins_over_the_environment_which_wins_over_the_file(
    two_targets: TwoTargets,
    truths: dict[str, dict[str, Any]],
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    config = str(two_targets.config(tmp_path, default="alpha"))
    args = ["endpoints", *two_targets.span, "--json"]
    doc = _run(["--config", config, *args], {**lsops_env, "LSOPS_TARGET": "bravo"})
    assert _endpoints_cli(doc) == truths["endpoints"]["bravo"]
    doc = _run(
        ["--config", config, "--target", "alpha", *args], {**lsops_env, "LSOPS_TARGET": "bravo"}
    )
    assert _endpoints_cli(doc) == truths["endpoints"]["alpha"]


def test_a_target_the_store_does_not_hold_reads_nothing_and_says_so(
    two_targets: TwoTargets, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text(
        f'[targets.charlie]\nurl = "http://127.0.0.1:9"\n[store]\nurl = "{two_targets.store_url}"\n'
    )
    result = CliRunner().invoke(
        main, ["--config", str(config), "endpoints", *two_targets.span], env=lsops_env
    )
    assert result.exit_code == 0, result.output
    assert "holds no scrape of target 'charlie'" in result.stdout
    assert "'alpha', 'bravo'" in result.stdout
    doc = _run(["--config", str(config), "endpoints", *two_targets.span, "--json"], lsops_env)
    assert doc == []


# --- reports ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, args, way",
    [
        ("monthly-review", ["--month", "2026-10"], "LSOPS_TARGET"),
        (
            "postmortem",
            ["--start", "2026-10-01T01:30Z", "--end", "2026-10-01T05:30Z", "--title", "t"],
            "default_target",
        ),
    ],
)
def test_reports_read_the_selected_target(
    kind: str,
    args: list[str],
    way: str,
    two_targets: TwoTargets,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The report's request count is the selected target's (for the review: the CLI's
    `endpoints` over the month, a different code path; for the postmortem: the library's
    postmortem of that target), not the other target's nor their sum."""
    from datetime import datetime

    from lsops_lib.present import read_key_figures

    assert kind in STORE_READING_REPORTS
    options, env = _ways(two_targets, tmp_path, "bravo")[way]
    env = {**lsops_env, **env, "LSOPS_OUTPUTS": str(tmp_path / "outputs")}
    result = CliRunner().invoke(main, [*options, "report", kind, *args, "--json"], env=env)
    assert result.exit_code in (0, 1), result.output
    run = json.loads(result.stdout)
    assert run["parameters"]["target"] == "bravo"
    figures = read_key_figures(Path(run["ipynb"]))
    counted = {}
    if kind == "postmortem":
        with Store(two_targets.store_url) as store:
            for name in two_targets.urls:
                pm = analysis.postmortem(
                    store,
                    datetime.fromisoformat(args[1].replace("Z", "+00:00")),
                    datetime.fromisoformat(args[3].replace("Z", "+00:00")),
                    target=name,
                )
                counted[name] = pm.requests
        requests = figures["requests"]
    else:
        config = str(two_targets.config(tmp_path))
        for name in two_targets.urls:
            doc = _run(
                ["--config", config, "--target", name, "endpoints", *two_targets.span, "--json"],
                lsops_env,
            )
            counted[name] = sum(e["requests"] for e in doc)
        requests = figures["totals"]["requests"]
    assert counted["alpha"] != counted["bravo"]
    assert requests == counted["bravo"], (requests, counted)
