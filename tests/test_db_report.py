"""The DB optimization report's bundle and its presentation: OptimizationReport.summary()
against independent queries of the planted database, the review's database overview, the
tables and boxes (formats, escaping), the charts, the names kept for old notebooks."""

from __future__ import annotations

import ast
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from lsops_lib import db, plots, present  # noqa: E402
from lsops_lib.config import load_settings  # noqa: E402
from lsops_lib.db import overview  # noqa: E402
from lsops_lib.present import dboptimization, display  # noqa: E402
from tests.fixtures.pg import Planted  # noqa: E402

XSS = "<script>alert(1)</script>"
PRESENT = Path(__file__).resolve().parents[1] / "lsops_lib" / "present"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every piece of markup the present functions display, in order."""
    out: list[str] = []

    def capture(obj: Any, **_kw: Any) -> None:
        out.append(str(getattr(obj, "data", obj)))

    monkeypatch.setattr(display, "_display", capture)
    present.begin()
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _independent(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


# --- summary(): the key figures -----------------------------------------------------------


@pytest.mark.postgres
def test_summary_against_independent_queries(longsang_db: Planted) -> None:
    report = db.optimization_report(url=longsang_db.password_url, top_n=5, store=None)
    s = report.summary()
    q = lambda sql: _independent(longsang_db.url, sql)  # noqa: E731
    assert s["report"] == "db-optimization" and s["reachable"] and s["error"] is None
    user_tables = """
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"""
    assert s["tables"] == q(f"SELECT count(*) {user_tables}")
    assert s["largest_table"] == q(
        f"SELECT n.nspname || '.' || c.relname {user_tables} "
        "ORDER BY pg_total_relation_size(c.oid) DESC, 1 LIMIT 1"
    )
    size = q("SELECT pg_database_size(current_database())")
    assert abs(s["database_bytes"] - size) <= 0.02 * size  # autovacuum may add a map
    assert s["invalid_indexes"] == q("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 1
    assert s["tables_due_vacuum"] == q(
        "SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup >= 1000 "
        "AND n_dead_tup >= 0.10 * (n_live_tup + n_dead_tup)"
    )
    assert s["embeddings"] == q("SELECT count(*) FROM context_embeddings") == 13
    assert s["embeddings_null"] == q(
        "SELECT count(*) FROM context_embeddings WHERE embedding IS NULL"
    )
    assert s["embeddings_failed"] == q(
        "SELECT count(*) FROM context_indexing_log WHERE status = 'failed'"
    )
    assert s["embeddings_pending"] == q(
        "SELECT count(*) FROM context_indexing_log WHERE status = 'pending'"
    )
    # findings: by severity and by kind, both adding up to every recommendation
    recs = report.recommendations
    assert s["findings"] == len(recs) == s["critical"] + s["warning"] + s["info"]
    assert sum(s["kinds"].values()) == len(recs)
    assert s["kinds"]["invalid_index"] == 1 and s["kinds"]["duplicate_index"] >= 1
    assert s["warning"] == int((recs["severity"] == "warning").sum()) >= 5
    assert s["pg_stat_statements"] is longsang_db.has_pg_stat_statements
    if longsang_db.has_pg_stat_statements:
        assert s["slow_queries"] >= 1
    else:
        assert s["slow_queries"] is None
    # no store: the growth is what was unavailable, and said so
    assert s["snapshots"] is None and s["growth_bytes"] is None
    assert any(u.startswith("Space: no size snapshots") for u in s["unavailable"])
    assert json.loads(json.dumps(present.jsonable(s))) == present.jsonable(s)


def test_summary_of_an_unreachable_database() -> None:
    url = f"postgresql://ops:Hidden42@127.0.0.1:{_closed_port()}/x"
    report = db.optimization_report(url=url)
    s = report.summary()
    assert not s["reachable"] and "cannot connect" in s["error"]
    assert (s["critical"], s["warning"], s["info"], s["kinds"]) == (1, 0, 0, {"unreachable": 1})
    assert s["tables"] is None and s["database_bytes"] is None and s["pg_stat_statements"] is None
    assert [u.split(":")[0] for u in s["unavailable"]] == list(db.report.SECTION_TITLES.values())
    assert "Hidden42" not in json.dumps(present.jsonable(s))


# --- the review's database overview (db/overview.py) ---------------------------------------


def test_overview_of_a_database_not_configured(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    got = overview.database_overview(settings, None, None, datetime(2026, 10, 1, tzinfo=UTC), None)
    assert not got.configured and not got.available and got.reason
    assert got.summary() == got.figures() and got.summary()["configured"] is False


def test_overview_of_a_database_down(tmp_path: Path) -> None:
    url = f"postgresql://ops:Hidden42@127.0.0.1:{_closed_port()}/x"
    settings = load_settings(env={"LSOPS_DATABASE_URL": url}, cwd=tmp_path)
    got = overview.database_overview(settings, None, None, datetime(2026, 10, 1, tzinfo=UTC), None)
    assert got.configured and not got.available
    assert "cannot connect" in got.reason and "Hidden42" not in got.reason
    assert any("no size snapshot" in n for n in got.notes)


def test_no_module_of_present_opens_a_connection_or_runs_a_query() -> None:
    checks = {"connect", "space", "indexes", "queries", "maintenance", "embeddings", "Inspector"}
    for path in PRESENT.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
                assert not names & {"sqlalchemy", "psycopg"}, path.name
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert module.split(".")[0] not in {"sqlalchemy", "psycopg"}, path.name
                if module.endswith("db") or ".db." in f".{module}.":
                    imported = {a.name for a in node.names} | {module.rsplit(".", 1)[-1]}
                    assert not imported & checks, f"{path.name}: from {module} import ..."
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                assert name not in {"connect", "frame", "scalar"}, f"{path.name}: {name}()"


# --- tables, boxes, header --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("total_bytes", 1536, "1.5 KiB"),
        ("bytes_per_day", 2048.0, "2.0 KiB/day"),
        ("queryid", 6623577630422276296, "6623577630422276296"),
        ("mean_ms", 0.00486, "0.00486 ms"),
        ("mean_ms", 31.2, "31 ms"),
        ("total_ms", 964.0, "964 ms"),
        ("dead_ratio", 0.00004, "< 0.1 %"),
        ("ratio", 0.9934, "99.3 %"),
        ("xid_fraction", 0.5, "50.0 %"),
        ("share_of_growth", 0.5155, "51.5 %"),
        ("calls", 3436, "3,436"),
        ("idle_s", 90.0, "1.5 min"),
        ("flagged", True, "yes"),
        ("latest", pd.Timestamp("2026-10-31 12:46", tz="UTC"), "2026-10-31 12:46 UTC"),
        ("stats_reset", None, "–"),
        ("rows", float("nan"), "–"),
        ("title", "response_cache holds 8192 kB", "response_cache holds 8192 KiB"),
        ("query", "SELECT 1\\nFROM  t\n WHERE x", "SELECT 1 FROM t WHERE x"),
    ],
)
def test_cells_by_column_name(column: str, value: Any, text: str) -> None:
    assert present.db_cell(column, value) == text


def test_long_queries_are_cut_and_other_text_later() -> None:
    # how long the statistics have counted, as a duration (was "0.0001522" days)
    assert present.db_cell("stats_age_days", 0.0001522) == "13 s"
    assert present.db_cell("stats_age_days", 2.5) == "2 d 12 h"
    assert present.db_cell("query", "x" * 500) == "x" * 200 + "…"
    assert present.db_cell("definition", "y" * 201) == "y" * 200 + "…"
    assert present.db_cell("error_message", "z" * 300) == "z" * 300


def test_tables_escape_every_cell_and_say_how_many_rows_are_left(shown: list[str]) -> None:
    df = pd.DataFrame(
        {
            "entity_type": [XSS] * 3,
            "error_message": [XSS] * 3,
            "created_at": [pd.Timestamp("2026-10-31 08:16", tz="UTC")] * 3,
            "tokens_used": [40, 40, 40],
        }
    )
    present.show_db_table(df, f"Latest {XSS}", note=XSS, max_rows=2)
    markup = "".join(shown)
    assert XSS not in markup and "&lt;script&gt;" in markup
    assert "<th>entity type</th>" in markup and "<th>created</th>" in markup
    assert "2026-10-31 08:16 UTC" in markup and "1 more row not shown" in markup
    shown.clear()
    present.show_db_table(df.head(0), "Invalid indexes")
    assert "<h3>Invalid indexes</h3>" in shown[0] and "<em>none</em>" in shown[0]


def test_thresholds_table_by_threshold_name(shown: list[str]) -> None:
    report = db.optimization_report(url=f"postgresql://u@127.0.0.1:{_closed_port()}/x")
    present.show_db_table(report.thresholds_frame(), "Thresholds")
    markup = shown[0]
    for text in ("10.0 MiB", "50 %", "20 ms", "5.0 min", "1,000", "bloat_min_bytes"):
        assert text in markup, text


def test_an_unreachable_database_gives_a_report_whose_sections_say_so(shown: list[str]) -> None:
    url = f"postgresql://ops:Hidden42@127.0.0.1:{_closed_port()}/x"
    report = db.optimization_report(url=url)
    present.show_optimization_header(report)
    for name in report.sections:
        present.show_db_section(report, name)
    present.show_recommendations(report)
    markup = "".join(shown)
    assert "The database could not be inspected." in markup and "cannot connect" in markup
    for title in ("Space", "Indexes", "Queries", "Maintenance", "Embeddings indexing"):
        assert f"{title}: unavailable" in markup
    assert "[critical] The database could not be inspected" in markup
    assert [p["section"] for p in display.PROBLEMS] == list(db.report.SECTION_TITLES.values())
    assert "Hidden42" not in markup


def test_recommendations_escape_their_text_and_print_the_sql(shown: list[str]) -> None:
    report = db.optimization_report(url=f"postgresql://u@127.0.0.1:{_closed_port()}/x")
    report.recommendations = pd.DataFrame(
        [
            {
                "severity": "warning",
                "kind": "vacuum",
                "object": "public.t",
                "title": f"t needs VACUUM {XSS}",
                "evidence": "8192 kB of dead tuples",
                "sql": "VACUUM (ANALYZE) public.t;",
                "check": None,
            }
        ]
    )
    present.show_recommendations(report)
    markup = shown[0]
    assert XSS not in markup and "&lt;script&gt;" in markup
    assert "[warning] t needs VACUUM" in markup and "8192 KiB of dead tuples" in markup
    assert "<pre><code>VACUUM (ANALYZE) public.t;</code></pre>" in markup
    assert markup.count("<blockquote") == markup.count("</blockquote>") == 1


def test_slow_queries_per_hour_say_they_are_a_rate_between_snapshots(shown: list[str]) -> None:
    report = db.optimization_report(url=f"postgresql://u@127.0.0.1:{_closed_port()}/x")
    t0 = pd.Timestamp("2026-11-01T02:00:00Z")
    snaps = pd.DataFrame(  # daily snapshots: 120 slow calls (50 ms) a day, 5 an hour
        [
            {"ts": t0 + pd.Timedelta(days=d), "queryid": 1, "calls": 120 * d}
            | {"total_ms": 6000.0 * d, "query": "q", "rows": 0}
            for d in range(3)
        ]
    )
    section = report.sections["queries"]
    section.errors.clear()
    section.frames["slow_per_hour"] = db.queries.slow_per_hour(snaps)
    present.show_db_section(report, "queries", only=["slow_per_hour"])
    markup = "".join(shown)
    assert "0 of 2 hours over the runbook&#x27;s threshold of 10 slow queries an hour" in markup
    assert "divided by the hours between them" in markup


def test_a_section_that_fails_to_render_becomes_a_box(shown: list[str]) -> None:
    report = db.optimization_report(url=f"postgresql://u@127.0.0.1:{_closed_port()}/x")
    report.sections["space"].errors.clear()
    report.sections["space"].frames["tables"] = "not a frame"  # type: ignore[assignment]
    present.show_db_section(report, "space")
    assert "Space: could not be produced" in "".join(shown)


# --- charts ----------------------------------------------------------------------------------


def _sizes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "schema": ["public", "public"],
            "table": ["context_embeddings", "response_cache"],
            "total_bytes": [16 * 2**20, 6 * 2**20],
            "table_bytes": [2**18, 4 * 2**20],
            "index_bytes": [2**19, 2**20],
            "toast_bytes": [15 * 2**20, 2**13],
            "rows_estimate": [1943, 800],
        }
    )


def test_charts_draw_from_the_report_frames_and_skip_what_is_missing() -> None:
    ax = plots.top_tables(_sizes(), database_bytes=32 * 2**20)
    assert ax.get_title(loc="left") == (
        "context_embeddings holds 50 % of the database (16.0 MiB, mostly TOAST)"
    )
    assert [t.get_text() for t in ax.get_yticklabels()] == ["response_cache", "context_embeddings"]
    when = pd.date_range("2026-10-01", periods=31, freq="D", tz="UTC")
    growth = pd.DataFrame(
        {
            "ts": when,
            "total_bytes": [2**20 * (1 + i) for i in range(31)],
            "toast_bytes": [0] * 31,
            "index_bytes": [0] * 31,
        }
    )
    assert "grew 30.0 MiB in 30 days" in plots.database_growth(growth).get_title(loc="left")
    month = plots.database_month(growth, when[0], when[-1])
    assert "grew by 30.0 MiB" in month.get_title(loc="left")
    by_type = pd.DataFrame({"entity_type": ["agent", "project"], "count": [28, 37]})
    ax = plots.embeddings_by_type(by_type, entities={"agent": 32, "project": 40})
    assert (
        ax.get_title(loc="left") == "65 of 72 entities have an embedding; agent lacks the most (4)"
    )
    # 3 of the project rows hold a NULL embedding (the coverage's embedded: 34): no
    # embedding, as the coverage table counts them (QA 23: the title said 65)
    by_type.attrs["embedded"] = {"agent": 28, "project": 34}
    ax = plots.embeddings_by_type(by_type, entities={"agent": 32, "project": 40})
    assert (
        ax.get_title(loc="left")
        == "62 of 72 entities have an embedding; project lacks the most (6)"
    )
    for chart in (plots.top_tables, plots.database_growth, plots.embeddings_by_type):
        assert chart(None) is None
    assert plots.database_month(growth.head(1)) is None
    assert plots.top_tables(_sizes().head(0)).get_title(loc="left") == "No table in this database"


def test_names_kept_for_old_notebooks() -> None:
    from lsops_lib.db.report import (  # noqa: F401
        OptimizationReport,
        optimization_report,
        plot_embeddings,
        plot_growth,
        plot_top_tables,
        show,
        show_header,
        show_recommendations,
        show_section,
        show_text,
        thresholds_frame,
    )

    assert plot_top_tables is plots.top_tables and show is dboptimization.show_db_table
    assert show_section is present.show_db_section
    assert present.database_overview and present.show_database and present.DatabaseOverview
    assert present.DatabaseOverview is overview.DatabaseOverview
    with pytest.raises(AttributeError):
        db.report.nothing_here  # noqa: B018
