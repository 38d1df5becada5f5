"""QA 24: `lsops incidents` on a window the collector never observed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.store import Store
from tests.fixtures.store import T0, make_scrape


def test_a_window_without_a_scrape_is_said_not_read_as_no_incidents(
    tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    """QA 24: `incidents --json` printed `[]` and nothing else for a window the collector
    never observed (the text: "no incidents ...", read as all clear); `endpoints` said
    "no scrape in the window" on stderr already."""
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        for m in range(0, 60, 5):
            store.record_scrape(make_scrape(m, {"/a": (m + 1, 10.0, 0.0)}))
    env = {**lsops_env, "LSOPS_STORE": url}
    before = ["--since", (T0 - timedelta(days=3)).isoformat(), "--until", T0.isoformat()]
    said = (
        "no scrape in the window (the store's observations of 'default': 2026-10-01 00:00 UTC"
        " .. 2026-10-01 00:55 UTC): incidents unknown"
    )
    result = CliRunner().invoke(main, ["incidents", *before, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [] and result.stderr == f"lsops: {said}\n"
    result = CliRunner().invoke(main, ["incidents", *before], env={**env, "COLUMNS": "400"})
    assert result.stdout.strip() == said and "no incidents" not in result.output
    # an observed window without incident still says so, and nothing on stderr
    observed = ["--since", T0.isoformat(), "--until", (T0 + timedelta(hours=1)).isoformat()]
    result = CliRunner().invoke(main, ["incidents", *observed], env={**env, "COLUMNS": "400"})
    assert result.stdout.startswith("no incidents of default between") and not result.stderr
