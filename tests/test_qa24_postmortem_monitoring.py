"""QA 24: the postmortem said its figures leave out /health and /metrics "unless
include_monitoring=True", a parameter `lsops report postmortem` did not have: it has it
now, as the monthly review does, and counts them when asked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.keyfigures import read_key_figures
from lsops_lib.reports import validate
from lsops_lib.store import Store
from tests.fixtures.store import T0, make_scrape

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_the_postmortem_takes_include_monitoring() -> None:
    window = {"start": "2026-10-01T00:00Z", "end": "2026-10-01T01:00Z", "title": "t"}
    _, values = validate(
        "postmortem", {**window, "include_monitoring": "true"}, notebooks_dir=NOTEBOOKS
    )
    assert values["include_monitoring"] is True


def test_a_postmortem_counts_the_monitoring_requests_when_asked(
    tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    # /a: 10 requests every 5 min; /health: 1 every 5 min (the collector's own)
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as store:
        for k, m in enumerate(range(0, 125, 5)):
            store.record_scrape(
                make_scrape(m, {"/a": (10 * (k + 1), 20.0, 0.0), "/health": (k + 1, 1.0, 0.0)})
            )
    env = {**lsops_env, "LSOPS_STORE": url}
    window = ["--start", (T0 + timedelta(hours=1)).isoformat(), "--end"]
    window += [(T0 + timedelta(hours=2)).isoformat(), "--title", "quiet hour"]
    counted = {}
    for asked in ("false", "true"):
        result = CliRunner().invoke(
            main,
            ["report", "postmortem", *window, "-p", "include_monitoring", asked, "--json"],
            env=env,
        )
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)
        assert run["parameters"]["include_monitoring"] is (asked == "true")
        figures = read_key_figures(Path(run["path"]) / "report.ipynb")
        counted[asked] = figures["requests"]
    # the hour's 12 deltas: 120 requests of /a, 12 of /health
    assert counted == {"false": 120, "true": 132}, counted
