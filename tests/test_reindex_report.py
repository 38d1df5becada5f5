"""The DB optimization report's "Re-index" section: its data (`db.report`, section
`reindex`), its key figures against independent SQL, its rendering (escaped, "unknown"
where the schema does not tell), and the notebook cell under papermill."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import sqlalchemy as sa

from lsops_lib import present
from lsops_lib.db import optimization_report
from lsops_lib.present import dboptimization
from tests.fixtures.dbreport import DbNotebook
from tests.fixtures.pg import Planted
from tests.fixtures.reindex import Drift

pytestmark = pytest.mark.postgres

COMMAND = "node scripts/index-production-data.js"


def _scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML the present functions display, in order."""
    markup: list[str] = []
    monkeypatch.setattr(dboptimization, "show_html", markup.append)
    import lsops_lib.present.display as display

    monkeypatch.setattr(display, "show_html", markup.append)
    present.begin()
    return markup


def test_the_section_and_its_key_figures(longsang_db: Planted, shown: list[str]) -> None:
    report = optimization_report(url=longsang_db.password_url, top_n=3)
    section = report.sections["reindex"]
    assert section.title == "Re-index" and section.ok
    assert list(report.sections)[-1] == "reindex"
    counts = section.frames["reindex_counts"]
    assert list(counts["entity_type"]) == ["project", "workflow", "execution", "agent", "post"]
    assert len(section.frames["reindex_entities"]) == 3  # top_n rows; the note says so
    assert any("the first 3 of 8 rows" in n for n in section.notes)
    figures = report.summary()
    url = longsang_db.url
    # independent SQL: source rows without a non-NULL embedding, over the four source tables
    missing = sum(
        _scalar(
            url,
            f"SELECT count(*) FROM {table} s WHERE NOT EXISTS (SELECT 1 FROM context_embeddings e "
            f"WHERE e.entity_type = '{kind}' AND e.entity_id = s.id AND e.embedding IS NOT NULL)",
        )
        for kind, table in (
            ("project", "projects"),
            ("workflow", "workflows"),
            ("execution", "workflow_executions"),
            ("agent", "agents"),
        )
    )
    assert figures["reindex_missing"] == missing == 5
    assert figures["reindex_stale"] == 1 and figures["reindex_failed"] == 2
    assert figures["reindex_entities"] == 8
    assert not [u for u in figures["unavailable"] if u.startswith("Re-index")]

    dboptimization.show_reindex(report)
    page = "\n".join(shown)
    assert "8 entities to re-index" in page and COMMAND in page
    assert "unknown" in page  # post's missing count
    assert "workflow_executions has no" not in page  # executions: dated by completion
    assert present.PROBLEMS == []


def test_a_drifted_schema_reads_unknown(longsang_drift_db: Drift, shown: list[str]) -> None:
    report = optimization_report(url=longsang_drift_db.url)
    assert report.sections["reindex"].ok
    figures = report.summary()
    assert figures["reindex_stale"] == 0 and figures["reindex_missing"] == 5  # executions
    dboptimization.show_reindex(report)
    page = "\n".join(shown)
    assert "source table agents is absent" in page and "has no updated_at column" in page


def test_an_unreachable_database(shown: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = optimization_report(url=f"postgresql://u:Zz9secret@127.0.0.1:{port}/x")
    figures = report.summary()
    assert figures["reindex_entities"] is None and figures["reindex_missing"] is None
    dboptimization.show_reindex(report)
    page = "\n".join(shown)
    assert "Re-index: unavailable" in page and "Zz9secret" not in page
    assert [p["section"] for p in present.PROBLEMS] == ["Re-index"]


def test_a_database_that_is_not_longsang(pg_url: str, shown: list[str]) -> None:
    report = optimization_report(url=pg_url)
    assert report.summary()["reindex_entities"] is None
    assert "Re-index: no context_embeddings table" in " ".join(report.unavailable())
    dboptimization.show_reindex(report)
    assert "no context_embeddings table" in "\n".join(shown)


@pytest.mark.slow
def test_the_notebook_cell(db_notebook: DbNotebook, longsang_db: Planted) -> None:
    """The session's one run of the notebook on the planted database (tests/fixtures/
    dbreport.py: shared with test_db.py; top_n=20 lists all 8 rows)."""
    nb = db_notebook.nb
    cells = nb["cells"]
    heading = next(i for i, c in enumerate(cells) if c["source"].startswith("## Re-index"))
    assert cells[heading - 2]["source"].startswith("## Embeddings indexing")
    outputs = cells[heading + 1]["outputs"]
    page = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "8 entities to re-index" in page and COMMAND in page
    assert "00000000-0000-0000-0003-000000000002" in page  # the stale agent
    assert "&lt;script&gt;" in page and "<script>" not in page  # a failure's message
    figures = present.read_key_figures(db_notebook.path)
    assert (figures["reindex_missing"], figures["reindex_stale"], figures["reindex_failed"]) == (
        5,
        1,
        2,
    )
    # no backup check stored in this store: the Backups section says so (issue 12), and
    # without pgvector the Retrieval quality section too (QA 20: what a section could not
    # check makes the run partial)
    vector = [] if longsang_db.vector else ["Retrieval quality"]
    assert [p["section"] for p in figures["problems"]] in (vector, [*vector, "Backups"])
