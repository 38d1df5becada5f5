"""The monthly review's "Security review" section: `present.security` (escaped, each part
saying when it is not configured), `plots.auth_failures`, and the notebook cell under
papermill against the planted auth store (tests/fixtures/security.py) with a config of
secrets dates and a saved real npm audit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import pytest

from lsops_lib import plots, present
from lsops_lib.config import load_settings
from lsops_lib.present import security as view
from tests.fixtures.security import NPM_AUDIT, XSS, AuthPlant

matplotlib.use("Agg")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "monthly_review.ipynb"
SECRET = "sk-PLANTED-never-shown-31"
CONFIG = """
[secrets]
OPENAI_API_KEY = "2026-07-01"
SUPABASE_SERVICE_ROLE_KEY = "2026-10-20"
[security]
audit_file = "{audit}"
[api]
token_env = "PLANTED_TOKEN"
"""


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    markup: list[str] = []
    import lsops_lib.present.display as display

    monkeypatch.setattr(view, "show_html", markup.append)
    monkeypatch.setattr(display, "show_html", markup.append)
    present.begin()
    return markup


def _settings(tmp_path: Path, audit: Path) -> Any:
    (tmp_path / "lsops.toml").write_text(CONFIG.format(audit=audit))
    return load_settings(env={"PLANTED_TOKEN": SECRET}, cwd=tmp_path)


def test_the_section_shows_every_part(
    tmp_path: Path, auth_store: AuthPlant, shown: list[str]
) -> None:
    settings = _settings(tmp_path, NPM_AUDIT / "vulnerable.json")
    source = present.open_store(auth_store.url, settings)
    review = view.security_review(settings, source, auth_store.start, auth_store.end)
    view.show_security(review)
    page = "\n".join(shown)
    for words in (
        "Dependencies (npm audit): attention",
        "3 vulnerable packages",
        "mkdirp@0.5.6",
        "Access: attention",
        "2 hours burst above the baseline",
        "/auth/login",
        "Secrets: attention",
        "OPENAI_API_KEY",
        "top sources unknown",
    ):
        assert words in page, words
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
    assert SECRET not in page and present.PROBLEMS == []
    assert review.summary()["auth_bursts"] == 2


def test_parts_not_configured_are_said_not_problems(tmp_path: Path, shown: list[str]) -> None:
    settings = load_settings(env={"LSOPS_DATA": str(tmp_path)}, cwd=tmp_path)
    source = present.open_store(f"sqlite:///{tmp_path / 'none.sqlite'}", settings)
    review = view.security_review(settings, source, *present.month_window("2026-10"))
    view.show_security(review)
    page = "\n".join(shown)
    for part in ("Dependencies (npm audit)", "Access", "Secrets"):
        assert f"{part}: not configured" in page, part
    assert "does not exist" in page and present.PROBLEMS == []


def test_a_refused_audit_is_a_red_unknown(tmp_path: Path, shown: list[str]) -> None:
    settings = _settings(tmp_path, NPM_AUDIT / "registry-refused.json")
    source = present.open_store(f"sqlite:///{tmp_path / 'none.sqlite'}", settings)
    view.show_security(view.security_review(settings, source, *present.month_window("2026-10")))
    page = "\n".join(shown)
    assert "Dependencies (npm audit): unknown" in page and "#c62828" in page
    assert "405 Method Not Allowed - POST .../-/npm/v1/security/advisories/bulk" in page


def _area(collection: Any) -> float:
    """The area of a filled collection's polygons (shoelace), in data units."""
    import numpy as np

    total = 0.0
    for path in collection.get_paths():
        x, y = path.vertices[:, 0], path.vertices[:, 1]
        total += abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))) / 2
    return total


def test_the_chart(auth_store: AuthPlant, tmp_path: Path) -> None:
    settings = load_settings(env={"LSOPS_DATA": str(tmp_path)}, cwd=tmp_path)
    source = present.open_store(auth_store.url, settings)
    review = view.security_review(settings, source, auth_store.start, auth_store.end)
    ax = plots.auth_failures(review.hourly, bursts=review.auth["bursts"])
    # two filled step areas (one artist each, not two bars an hour): their areas are the
    # planted counts x one hour (matplotlib dates are days)
    areas = {c.get_label(): _area(c) * 24 for c in ax.collections}
    assert areas == {"401/403": pytest.approx(52), "429": pytest.approx(17)}
    assert len(ax.patches) == 0
    assert ax.get_title(loc="left") == "52 x 401/403 and 17 x 429 over 22 hours: 2 burst hours"
    (marks,) = [line for line in ax.get_lines() if line.get_label() == "burst"]
    assert len(marks.get_xdata()) == 2
    assert plots.auth_failures(None) is None
    assert plots.auth_failures(review.hourly.iloc[0:0]) is None


@pytest.mark.slow
def test_the_notebook_section(
    tmp_path: Path, auth_store: AuthPlant, monkeypatch: pytest.MonkeyPatch
) -> None:
    papermill = pytest.importorskip("papermill")
    (tmp_path / "lsops.toml").write_text(CONFIG.format(audit=NPM_AUDIT / "vulnerable.json"))
    for name in [n for n in os.environ if n.startswith("LSOPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LSOPS_CONFIG", str(tmp_path / "lsops.toml"))
    monkeypatch.setenv("LSOPS_STORE", auth_store.url)
    monkeypatch.setenv("LSOPS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PLANTED_TOKEN", SECRET)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters={"month": "2026-10"},  # the planted day is 2026-10-01
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    cells = nb.cells
    heading = next(i for i, c in enumerate(cells) if c.source.startswith("## Security review"))
    # after the month's incidents and errors (issue 10), before the database
    assert cells[heading - 2].source.startswith("## Errors")
    assert cells[heading - 4].source.startswith("## Incidents")
    outputs = cells[heading + 1].outputs
    assert all(o.get("output_type") != "error" for o in outputs)
    page = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "Dependencies (npm audit): attention" in page and "Access: attention" in page
    assert "OPENAI_API_KEY" in page and "overdue" in page
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the chart
    assert SECRET not in (tmp_path / "out.ipynb").read_text()
    figures = present.read_key_figures(tmp_path / "out.ipynb")
    assert "Security review" not in json.dumps(figures["problems"])
