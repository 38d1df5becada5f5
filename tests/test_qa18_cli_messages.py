"""QA 17, the CLI's messages: `collect --database` without `--db` is refused (it was
ignored); counts are pluralised ("1 table", "1 day"); an empty `--config` or `--target` is
refused in one line; an outputs folder that is a file says so (exit 2), not "no reports
archived"; `lsops reports` and index.html list the runs whose run.json is damaged as
unreadable, with their folder and why (they were left out silently)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import collect, db, main, security, sources

POSTMORTEM = ["report", "postmortem", "--start", "2026-10-01T00:00Z", "--end", "2026-10-01T01:00Z"]


def _run(env: dict[str, str], *args: str):  # noqa: ANN202 - click's Result
    return CliRunner().invoke(main, list(args), env=env)


# --- 3. collect --database without --db ----------------------------------------------------------


def test_collect_database_without_db_is_refused(lsops_env: dict[str, str], tmp_path: Path) -> None:
    store = tmp_path / "m.sqlite"
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{store}", "LSOPS_API_URL": "http://127.0.0.1:9"}
    result = _run(env, "collect", "--once", "--database", "nosuch")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "lsops: --database NAME names the database of --db: add --db"
    assert not store.exists()  # refused before anything


# --- 4. counts -----------------------------------------------------------------------------------


def test_counts_of_one_are_singular(capsys: pytest.CaptureFixture[str]) -> None:
    collect._db_view({"db": {"database": "app", "tables": 1, "queries": 1, "queries_error": None}})
    assert capsys.readouterr().out.strip() == "database app: 1 table, 1 query"
    collect._db_view({"db": {"database": "app", "tables": 2, "queries": 0, "queries_error": None}})
    assert capsys.readouterr().out.strip() == "database app: 2 tables, 0 queries"

    secret = {"name": "A", "rotated": "2026-09-30", "age_days": 1, "due_on": "x", "status": "ok"}
    security._secrets_view(
        {"status": "ok", "reason": "fine", "secrets": [secret], "max_age_days": 1, "today": "x"}
    )
    assert "max age 1 day, today x" in capsys.readouterr().out

    around = datetime(2026, 10, 1, tzinfo=UTC)
    sources._logs_view(
        {"around": around, "target": "default", "start": around, "end": around, "lines": [],
         "truncated": True, "shown": 1, "total": 5, "note": None}
    )  # fmt: skip
    assert "no log entry" in capsys.readouterr().out  # no lines: the count is not said
    line = {"ts": around, "estimated": False, "level": "error", "text": "boom"}
    sources._logs_view(
        {"around": around, "target": "default", "start": around, "end": around, "lines": [line],
         "truncated": True, "shown": 1, "total": 5, "note": None}
    )  # fmt: skip
    assert "shown: the 1 entry nearest to" in " ".join(capsys.readouterr().out.split())

    empty = {k: [] for k in ("unused", "duplicate", "invalid", "fk_without_index", "seq_scan")}
    indexes = {"stats_reset": None, "stats_since": around, "stats_age_days": 2.0,
               "unused_index_min_age": 1.0, "unavailable": [], **empty}  # fmt: skip
    db._indexes_view(indexes)
    assert "once they cover 1 day" in " ".join(capsys.readouterr().out.split())
    db._indexes_view({**indexes, "unused_index_min_age": 0.5})
    assert "once they cover 0.5 days" in " ".join(capsys.readouterr().out.split())


# --- 5. empty options, an outputs folder that is a file ------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--config", "", "reports"], 2, "lsops: --config is empty: give the path of a settings file"),
        (["--target", "", "endpoints"], 2, "lsops: --target is empty: give the name of a target of lsops.toml"),
        (["--target", " ", "health"], 3, "lsops: --target is empty: give the name of a target of lsops.toml"),
    ],
)  # fmt: skip
def test_an_empty_config_or_target_is_refused(
    lsops_env: dict[str, str], tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    env = {**lsops_env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"}
    result = _run(env, *args)
    assert result.exit_code == code, result.output
    assert result.output.strip() == message


@pytest.mark.parametrize(
    "args", [["reports"], ["reports", "--json"], [*POSTMORTEM, "--title", "x"]]
)
def test_an_outputs_folder_that_is_a_file(
    lsops_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    afile = tmp_path / "outputs"
    afile.write_text("not a folder\n")
    env = {**lsops_env, "LSOPS_OUTPUTS": str(afile), "LSOPS_STORE": f"sqlite:///{tmp_path / 'm'}"}
    result = _run(env, *args)
    assert result.exit_code == 2, result.output
    assert result.output == f"lsops: the outputs folder {afile} (LSOPS_OUTPUTS) is not a folder\n"
    assert afile.read_text() == "not a folder\n"


# --- 6. runs whose run.json is damaged -----------------------------------------------------------

DAMAGED = {
    "bad-json": (b"{bad", "run.json is not JSON"),
    "not-utf8": (b"\xff\xfe", "run.json is not UTF-8 text"),
    "a-list": (b"[1,2]", "run.json is not a run's record: a JSON list, not an object"),
}


def test_reports_lists_the_unreadable_runs(
    cli_archive: Path, lsops_env: dict[str, str], tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    shutil.copytree(cli_archive, outputs)
    (good,) = [p.parent for p in outputs.glob("*/*/*/run.json")]
    for name, (content, _) in DAMAGED.items():
        folder = outputs / "postmortem" / "damaged" / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_bytes(content)
    env = {**lsops_env, "LSOPS_OUTPUTS": str(outputs)}

    result = _run(env, "reports", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [r["run_id"] for r in data["runs"]] == [good.name]  # the readable one, as before
    expected = {str(outputs / "postmortem" / "damaged" / n): why for n, (_, why) in DAMAGED.items()}
    got = {u["path"]: u["error"] for u in data["unreadable"]}
    assert got.keys() == expected.keys()
    assert all(got[p].startswith(expected[p]) for p in expected), got

    text = _run(env, "reports")
    assert text.exit_code == 0
    assert "3 runs unreadable:" in text.output
    for name in DAMAGED:
        assert f"damaged/{name}: run.json" in text.output
    assert good.name in text.output

    page = reports.write_index(outputs).read_text()
    assert "3 runs unreadable" in page
    for name in DAMAGED:
        assert f"postmortem/damaged/{name}</code>" in page
