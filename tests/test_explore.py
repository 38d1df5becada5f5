"""The analyst's starting points: notebooks/explore_metrics.ipynb under plain papermill,
and the README's library example run as written. Both against a short collected history
and the planted LongSang database; their figures checked against the simulator's ledger
and the database's own catalog."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lsops_lib import present
from tests.fixtures.history import HISTORY_ENDPOINTS, ShortHistory

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _env(short_history: ShortHistory, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env.update(LSOPS_STORE=short_history.store_url, LSOPS_DATABASE_URL=database_url)
    return env


def _user_tables(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'm') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchone()
    return int(count)


def test_explore_notebook_runs_under_papermill(
    short_history: ShortHistory, longsang_db: object, tmp_path: Path
) -> None:
    endpoint = HISTORY_ENDPOINTS[1]
    out = tmp_path / "explore.ipynb"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(REPO / "notebooks" / "explore_metrics.ipynb"),
            str(out),
            "-p",
            "endpoint",
            endpoint,
            "-p",
            "start",
            short_history.start.isoformat(),
            "-p",
            "end",
            short_history.end.isoformat(),
            "--no-progress-bar",
            "--cwd",
            str(tmp_path),
        ],
        env=_env(short_history, longsang_db.url),  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = present.read_key_figures(out)
    ledger = short_history.ledger.set_index("endpoint")
    assert found["endpoint"] == endpoint
    assert found["days"] == 2
    # the store's counter deltas of the window = what the simulator sent (no restart)
    assert found["requests"] == int(ledger.loc[endpoint, "requests"])
    assert found["errors"] == int(ledger.loc[endpoint, "errors"])
    assert found["tables"] == _user_tables(longsang_db.url)  # type: ignore[attr-defined]
    assert found["problems"] == []


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The library, for JupyterLab") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_library_example_runs_as_written(
    short_history: ShortHistory, longsang_db: object, tmp_path: Path
) -> None:
    code = _readme_example()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(short_history, longsang_db.url),  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for endpoint in HISTORY_ENDPOINTS:
        assert endpoint in done.stdout  # the summary printed every endpoint
    planted = longsang_db.tables  # type: ignore[attr-defined]
    assert any(table in done.stdout for table in planted)  # the table sizes printed
