"""QA 20, API targets: a target the store holds but lsops.toml no longer names is read by
the commands that only read the store and refused by those that need its URL; malformed
[targets] / secret settings and unusable target names are one line, not a traceback;
`-p target` takes every name lsops.toml takes; `--target A report -p target B` is refused;
`lsops reports` and index.html tell the targets of runs apart; `endpoints` of a target
that never answered says so."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ConfigError, ParameterError
from lsops_lib.reports.archive import RUN_JSON, Run
from lsops_lib.store import Store
from tests.fixtures.store import T0, make_scrape

pytestmark = pytest.mark.timeout(300)

WINDOW = ["--since", T0.isoformat(), "--until", (T0 + timedelta(hours=2)).isoformat()]


def _run(env: dict[str, str], *args: str):  # noqa: ANN202 - click's Result
    return CliRunner().invoke(main, list(args), env=env)


def _store_of(tmp_path: Path, lsops_env: dict[str, str], scrapes: list) -> dict[str, str]:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        for scrape in scrapes:
            store.record_scrape(scrape)
    return {**lsops_env, "LSOPS_STORE": url}


# --- 1. a target the store holds, lsops.toml no longer --------------------------------------


def test_a_renamed_target_is_read_from_the_store(lsops_env: dict[str, str], tmp_path: Path) -> None:
    # 12 scrapes of "old", 5 minutes apart, /a counting minute + 1: 55 requests between
    # the first and the last (counter deltas)
    scrapes = [make_scrape(m, {"/a": (m + 1, 10.0, 0.0)}, target="old") for m in range(0, 60, 5)]
    env = _store_of(tmp_path, lsops_env, scrapes)
    (tmp_path / "lsops.toml").write_text('[targets.new]\nurl = "http://127.0.0.1:9"\n')
    note = "lsops: target 'old' is not in lsops.toml: its stored history is read"

    result = _run(env, "--target", "old", "endpoints", *WINDOW, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == note
    assert [(e["endpoint"], e["requests"]) for e in json.loads(result.stdout)] == [("/a", 55)]

    for args in (
        ["checklist", *WINDOW],
        ["incidents", *WINDOW],
        ["alerts"],
        ["logs", *WINDOW],
        ["errors", *WINDOW],
        ["reports"],  # the archive: every target's runs
        ["security", *WINDOW],  # the stored error records (audit and secrets: none)
    ):
        result = _run({**env, "LSOPS_TARGET": "old"}, *args)
        assert "unknown target" not in result.output, (args, result.output)
        assert "needs its URL" not in result.output, (args, result.output)
        assert note in result.stderr, (args, result.output)

    # the commands that ask its API refuse it, in one line naming why
    for args, code in ((["health"], 3), (["cache"], 2), (["collect", "--once"], 2)):
        result = _run(env, "--target", "old", *args)
        assert result.exit_code == code, (args, result.output)
        assert result.output.strip().splitlines() == [
            "lsops: target 'old' is not in lsops.toml: this command needs its URL; its stored "
            "history is read by endpoints, checklist, incidents, alerts, logs, errors, "
            "security, report and reports"
        ], args
    # a name neither knows: as ever
    result = _run(env, "--target", "nosuch", "endpoints", *WINDOW)
    assert result.exit_code == 2
    assert result.output.strip() == "lsops: unknown target 'nosuch' (configured: new)"


def test_commands_that_ask_no_target_are_not_stopped_by_one(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    # a stale LSOPS_TARGET (renamed in lsops.toml, stored or not) or a --target given out of
    # habit: the database, backup and embeddings commands go on to their own answer
    env = _store_of(tmp_path, lsops_env, [make_scrape(0, {"/a": (1, 10.0, 0.0)}, target="old")])
    env = {k: v for k, v in env.items() if not k.startswith(("LSOPS_DATABASE", "LSOPS_BACKUP"))}
    (tmp_path / "lsops.toml").write_text('[targets.new]\nurl = "http://127.0.0.1:9"\n')
    no_db = "lsops: no database configured: set LSOPS_DATABASE_URL or [databases] in lsops.toml"
    no_dumps = (
        "lsops: no backups to check: give PATHs, or set [backups] paths in lsops.toml or "
        "LSOPS_BACKUPS"
    )
    for stale in ("old", "nosuch"):
        for args, code, line in (
            (["db", "size"], 2, no_db),
            (["db", "vectors"], 2, no_db),
            (["index-stats"], 2, no_db),
            (["reindex-list"], 2, no_db),
            (["backup", "check"], 3, no_dumps),
        ):
            for how in ({"LSOPS_TARGET": stale}, {}):
                given = [] if how else ["--target", stale]
                result = _run({**env, **how}, *given, *args)
                assert (result.exit_code, result.output.strip()) == (code, line), (stale, args)
    # a command that asks its API still refuses a name lsops.toml lacks
    result = _run({**env, "LSOPS_TARGET": "nosuch"}, "health")
    assert result.output.strip() == "lsops: unknown target 'nosuch' (configured: new)"


def test_the_postmortem_incidents_suggests_for_a_renamed_target_runs_as_printed(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    """`lsops --target old incidents` names `--target old` in the postmortem command it
    prints; that command, run as printed, reads old's history (it was refused: "this
    command needs its URL"), its kernel loading lsops.toml's own target."""
    import shlex

    up = {"/a": lambda m: (m + 1, 10.0, 0.0)}
    scrapes = [
        make_scrape(m, {k: f(m) for k, f in up.items()}, target="old") for m in range(0, 30, 5)
    ]
    scrapes += [make_scrape(m, None, target="old") for m in range(30, 75, 5)]  # 45 min down
    scrapes += [make_scrape(m, {"/a": (m + 1, 10.0, 0.0)}, target="old") for m in range(75, 120, 5)]
    env = _store_of(tmp_path, lsops_env, scrapes)
    (tmp_path / "lsops.toml").write_text('[targets.new]\nurl = "http://127.0.0.1:9"\n')
    env["LSOPS_NOTEBOOKS"] = str(Path(__file__).parent / "data" / "notebooks")
    found = _run(env, "--target", "old", "incidents", *WINDOW, "--json")
    assert found.exit_code == 0, found.output
    commands = [i["postmortem_command"] for i in json.loads(found.stdout) if i["kind"] != "restart"]
    assert commands and commands[0].startswith("lsops --target old report postmortem "), commands
    ran = _run(env, *shlex.split(commands[0])[1:], "--json")
    assert ran.exit_code == 0, ran.output
    assert "lsops: target 'old' is not in lsops.toml: its stored history is read" in ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded", run
    assert run["parameters"]["target"] == "old"
    printed = Path(run["path"], "report.ipynb").read_text()
    assert "target new store" in printed  # the kernel's own settings: lsops.toml's target


# --- 6. endpoints of a target that never answered ----------------------------------------------


def test_endpoints_of_a_target_that_never_answered(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    scrapes = [make_scrape(m, None, target="down") for m in range(0, 60, 5)]  # 12, all failed
    env = _store_of(tmp_path, lsops_env, scrapes)
    (tmp_path / "lsops.toml").write_text('[targets.down]\nurl = "http://127.0.0.1:9"\n')
    result = _run(env, "endpoints", *WINDOW)
    assert result.exit_code == 0, result.output
    assert "the API did not answer in the window (12 scrapes without an answer)" in result.stdout
    assert "is the collector running" not in result.output


# --- 3. malformed [targets] and secret settings ------------------------------------------------

BAD_TOML = {
    "targets = 5": "lsops: lsops.toml: [targets] must be a table of [targets.NAME] tables",
    'targets = "x"': "lsops: lsops.toml: [targets] must be a table of [targets.NAME] tables",
    "[targets.a]\ntoken_env = 5": "lsops: lsops.toml: [targets.a] token_env must be the name "
    "of an environment variable (a string)",
    '[targets.a]\ntoken_env = ["A", "B"]': "lsops: lsops.toml: [targets.a] token_env must be "
    "the name of an environment variable (a string)",
    "[databases.p]\nurl_env = 5": "lsops: lsops.toml: [databases.p] url_env must be the name "
    "of an environment variable (a string)",
    "databases = 5": "lsops: lsops.toml: [databases] must be a table",
    "store = 5": "lsops: lsops.toml: [store] must be a table",
    "outputs = 5": "lsops: lsops.toml: [outputs] must be a table",
    "default_target = 5": "lsops: lsops.toml: default_target must be the name of a target "
    "(a string)",
    # --- 4. target names every part can hold
    '[targets."   "]': "lsops: lsops.toml: the target name '   ' in [targets] is blank",
    '[targets."a\\nb"]': "lsops: lsops.toml: the target name 'a\\nb' in [targets] holds a "
    "control character",
    '[targets."nul\\u0000x"]': "lsops: lsops.toml: the target name 'nul\\x00x' in [targets] "
    "holds a control character",
    f"[targets.{'t' * 201}]": f"lsops: lsops.toml: the target name '{'t' * 60}…' in [targets] "
    "is longer than 200 characters (201)",
}


@pytest.mark.parametrize("body", list(BAD_TOML))
def test_a_malformed_target_setting_is_one_line(
    body: str, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "lsops.toml").write_text(body + "\n")
    result = _run(lsops_env, "health")
    assert result.exit_code == 3, result.output
    assert result.output.strip() == BAD_TOML[body]


def test_target_names_lsops_toml_takes_are_parameters_too(tmp_path: Path) -> None:
    names = ["Ω-c.3", "stagé 2", "t" * 200, "prod"]
    toml = "".join(f'[targets."{n}"]\nurl = "http://127.0.0.1:9"\n' for n in names)
    (tmp_path / "lsops.toml").write_text(toml)
    settings = load_settings(tmp_path / "lsops.toml", env={})
    assert sorted(settings.targets) == sorted(names)
    for name in names:
        _, values = reports.validate("monthly-review", {"month": "2026-10", "target": name})
        assert values["target"] == name
    for bad in ("   ", "a\nb", "t" * 201, "http://x"):
        with pytest.raises(ParameterError, match="parameter target must be"):
            reports.validate("monthly-review", {"month": "2026-10", "target": bad})
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "lsops.toml", target="nosuch", env={})


# --- 5. --target A report -p target B --------------------------------------------------------


def test_target_and_target_parameter_that_differ_are_refused(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "lsops.toml").write_text(
        '[targets.a]\nurl = "http://127.0.0.1:9"\n[targets.b]\nurl = "http://127.0.0.1:9"\n'
    )
    result = _run(
        lsops_env, "--target", "a", "report", "monthly-review", "--month", "2026-10",
        "-p", "target", "b",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "lsops: --target 'a' and the parameter target 'b' differ: give one of them"
    )
    assert not (tmp_path / "outputs").exists()


# --- 2. runs of different targets, told apart ---------------------------------------------------


def _fake_run(outputs: Path, run_id: str, target: str | None, minute: int) -> None:
    kind = "monthly-review" if target else "db-optimization"
    path = outputs / kind / "2026-10" / run_id
    path.mkdir(parents=True)
    params = {"month": "2026-10", **({"target": target} if target else {})}
    run = Run(
        kind, "2026-10", run_id, path, "succeeded", T0 + timedelta(minutes=minute), 1.0, params
    )
    (path / RUN_JSON).write_text(json.dumps(run.to_dict()))


def test_reports_and_the_index_name_each_runs_target(
    lsops_env: dict[str, str], tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    _fake_run(outputs, "r-prod", "prod", 1)
    _fake_run(outputs, "r-staging", "staging", 2)
    _fake_run(outputs, "r-db", None, 3)
    result = _run(lsops_env, "reports")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["started", "kind", "key", "target", "status", "duration", "run"]
    rows = {line.split()[-1]: line.split()[5] for line in lines[1:4]}
    assert rows == {"r-prod": "prod", "r-staging": "staging", "r-db": "–"}
    doc = json.loads(_run(lsops_env, "reports", "--json").stdout)
    assert {r["run_id"]: r["target"] for r in doc["runs"]} == {
        "r-prod": "prod",
        "r-staging": "staging",
        "r-db": None,
    }
    page = reports.write_index(outputs).read_text()
    assert "<th>target</th>" in page
    assert "<td>prod</td>" in page and "<td>staging</td>" in page


@pytest.mark.timeout(600)
def test_the_report_title_names_its_target(lsops_env: dict[str, str], tmp_path: Path) -> None:
    scrapes = [make_scrape(m, {"/a": (m + 1, 10.0, 0.0)}, target="prod") for m in range(0, 60, 5)]
    env = _store_of(tmp_path, lsops_env, scrapes)
    (tmp_path / "lsops.toml").write_text(
        '[targets.prod]\nurl = "http://127.0.0.1:9"\n[targets.staging]\nurl = "http://127.0.0.1:9"\n'
    )
    result = _run(
        env, "--target", "prod", "report", "monthly-review", "--month", "2026-10", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    (page,) = (tmp_path / "outputs" / "monthly-review" / "2026-10").glob("*/report.html")
    assert "<title>Monthly performance review: 2026-10, target prod</title>" in page.read_text()
