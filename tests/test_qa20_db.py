"""QA 20, `lsops db` and the DB optimization report: what a role may not see in
pg_stat_statements is counted, never "none"; the report's absences make it partial;
sequences whose range excludes 0; thresholds and ratios that never contradict each other;
the flags of `db maintenance`; the statistics' age as a duration; --limit out of range.
On a real PostgreSQL (tests/fixtures/pg.py), against what the superuser reads itself."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import DbThresholds, maintenance
from lsops_lib.db.connect import count_param
from lsops_lib.db.recommend import recommendations
from lsops_lib.exceptions import ParameterError
from lsops_lib.pgtemp import PostgresCluster
from lsops_lib.present import dboptimization
from lsops_lib.present.display import PROBLEMS
from tests.fixtures.pg import Planted

pytestmark = pytest.mark.postgres


def _libpq(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def _invoke(args: list[str], url: str) -> Result:
    return CliRunner().invoke(
        main, args, env={"LSOPS_DATABASE_URL": url, "COLUMNS": "300"}, catch_exceptions=False
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LSOPS_DATABASE_URL", "LSOPS_CONFIG", "LSOPS_STORE", "LSOPS_TARGET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LSOPS_STORE", f"sqlite:///{tmp_path / 'absent' / 'metrics.sqlite'}")
    monkeypatch.setenv("LSOPS_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def weak_role(pg_url: str) -> Iterator[str]:
    """A login role without pg_read_all_stats on `pg_url`: its URL."""
    role, password = f"weak_{uuid.uuid4().hex[:8]}", "Weak-Pw-20"
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")  # type: ignore[arg-type]
    try:
        yield (
            sa.engine.make_url(pg_url).set(username=role, password=password).render_as_string(False)
        )
    finally:
        with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


# --- 1. statements pg_stat_statements hides from a role are counted ---------------------------


def test_statements_hidden_from_a_weak_role_are_counted_not_read_as_none(
    pg_cluster: PostgresCluster, pg_url: str, weak_role: str, tmp_path: Path
) -> None:
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("pg_stat_statements is not available here")
    (tmp_path / "lsops.toml").write_text(
        "[thresholds]\nslow_query_calls = 3\nslow_query_mean_ms = 20\n"
    )
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(3):  # the superuser's slow statement: 3 calls of >= 20 ms
            conn.execute("SELECT pg_sleep(0.021) AS qa20_slow")
    time.sleep(0.2)

    result = _invoke(["db", "queries", "--json"], weak_role)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    text = _invoke(["db", "queries"], weak_role).stdout
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        slow, hidden = conn.execute(  # /* qa20 count */ as the superuser sees them all
            """
            SELECT count(*) FILTER (WHERE calls >= 3 AND mean_exec_time >= 20),
                   count(*) FILTER (WHERE query NOT LIKE '%%qa20 count%%')
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND userid <> (SELECT oid FROM pg_roles WHERE rolname = %s)
            """,
            (sa.engine.make_url(weak_role).username,),
        ).fetchone()  # type: ignore[misc]
    assert slow == 1
    assert data["slow"] == [] and data["hidden_slow"] == slow
    assert data["hidden_statements"] >= 1 and data["hidden_statements"] <= hidden
    assert any("1 slow statement of other roles not listed" in n for n in data["unavailable"])
    assert "none visible, 1 slow statement hidden" in text
    assert "Slow queries (mean >= 20 ms, calls >= 3): none\n" not in text

    # the report: the hidden slow statement is a key figure and a problem of its section
    report = db.optimization_report(url=weak_role, store=None, slow_query_calls=3)
    queries = report.sections["queries"]
    assert any("1 slow statement of other roles" in n for n in queries.unavailable)
    assert report.summary()["slow_queries_hidden"] == 1
    PROBLEMS.clear()
    dboptimization.show_db_section(report, "queries")
    assert any(
        p["section"] == "Queries" and "slow statement of other roles" in p["reason"]
        for p in PROBLEMS
    )
    # 6. the statistics' age as the CLI says it: a duration, never "0.0 days ago"
    (note,) = [n for n in report.sections["indexes"].notes if n.startswith("usage statistics")]
    assert re.search(r"\((\d+ s|\d+ min|\d+ h \d\d min|\d+ d \d+ h) ago\)", note), note
    assert "days ago" not in note


# --- 2. what a section could not check makes the report partial -------------------------------


def test_a_database_without_pg_stat_statements_gives_a_partial_report(
    pg_url: str, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    result = CliRunner().invoke(
        main,
        ["report", "db-optimization", "--no-progress", "--json"],
        env={"LSOPS_DATABASE_URL": pg_url, "LSOPS_OUTPUTS": str(outputs), "MPLBACKEND": "Agg"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    (run_json,) = outputs.glob("db-optimization/*/*/run.json")
    warnings = json.loads(run_json.read_text())["warnings"]
    assert warnings == run["warnings"]
    # the extension missing in this database, and the growth snapshots (no store)
    assert any(w.startswith("Queries: pg_stat_statements is not enabled") for w in warnings)
    assert any(w.startswith("Space: no size snapshots stored") for w in warnings)
    html = run_json.with_name("report.html").read_text()
    assert "This report is partial" in html and "Queries: unavailable" in html


# --- 3. sequences whose range excludes 0 --------------------------------------------------------


def test_sequences_whose_range_excludes_zero_are_flagged(pg_url: str) -> None:
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE countdown INCREMENT -1 MINVALUE 1 MAXVALUE 1000 START 1000")
        conn.execute("SELECT setval('countdown', 2)")  # one value left: 1
        conn.execute("CREATE SEQUENCE neg_up INCREMENT 1 MINVALUE -1000 MAXVALUE -1 START -1000")
        conn.execute("SELECT setval('neg_up', -2)")  # one value left: -1
        conn.execute("CREATE SEQUENCE offset_up MINVALUE 1000 MAXVALUE 2000 START 1000")
        conn.execute("SELECT setval('offset_up', 1500)")  # half used: not flagged
    with db.connect(pg_url) as insp:
        seqs = maintenance.sequences_near_max(insp).set_index("sequence")
    # 998 of the 999 steps from the start of the range to its limit
    assert set(seqs.index) == {"countdown", "neg_up"}
    assert seqs.loc["countdown", "fraction"] == pytest.approx((1000 - 2) / (1000 - 1))
    assert seqs.loc["neg_up", "fraction"] == pytest.approx((-2 - -1000) / (-1 - -1000))
    assert set(seqs["severity"]) == {"critical"}  # past sequence_critical (95 %)

    # 5. db maintenance applies sequence_critical too, in the JSON and the text
    data = json.loads(_invoke(["db", "maintenance", "--json"], pg_url).stdout)
    assert {s["sequence"]: s["severity"] for s in data["sequences"]} == {
        "countdown": "critical",
        "neg_up": "critical",
    }
    text = _invoke(["db", "maintenance"], pg_url).stdout
    assert "Sequences near their maximum (>= 80 % used, critical from 95 %)" in text
    assert len(re.findall(r"(countdown|neg_up) .*critical", text)) == 2
    recs = recommendations({"sequences": seqs.reset_index()}, DbThresholds())
    assert "Sequence countdown is at 99.9 % of its minimum" in recs["title"].tolist()


# --- 4. thresholds and the values compared with them never contradict each other -------------


def _percent(text: str) -> float:
    return float(text.replace("%", "").strip())


def test_a_ratio_below_its_threshold_never_reads_as_equal() -> None:
    cases = [(0.98999, 0.99), (0.996, 0.999), (0.99949, 0.9995), (0.9999, 0.99995)]
    for ratio, threshold in cases:
        cache = pd.DataFrame(
            [{"kind": "table", "hits": 9, "reads": 1, "ratio": ratio, "flagged": True}]
        )
        (title,) = recommendations({"cache": cache}, DbThresholds(cache_hit_ratio=threshold))[
            "title"
        ]
        shown, limit = re.fullmatch(r"Table cache hit ratio (.+ %) is below (.+ %)", title).groups()
        assert _percent(shown) < _percent(limit), title
        assert _percent(limit) == pytest.approx(threshold * 100), title

    conns = pd.DataFrame(
        [{"total": 995, "usable": 1000, "idle": 1, "fraction": 0.995, "flagged": True}]
    )
    (evidence,) = recommendations({"connections": conns}, DbThresholds())["evidence"]
    assert "(99.5 %; flagged from 80 %)" in evidence  # not "100 %" with 5 left

    expected = {
        ("cache_hit_ratio", 0.995): "99.5 %",
        ("cache_hit_ratio", 0.999): "99.9 %",
        ("sequence_warn", 0.995): "99.5 %",
        ("dead_tuple_ratio", 0.005): "0.5 %",
        ("wraparound_warn", 0.004): "0.4 %",
    }
    for (name, value), text in expected.items():
        assert dboptimization._threshold_value(name, value) == text


def test_db_maintenance_marks_its_flags_in_the_text(longsang_db: Planted, tmp_path: Path) -> None:
    (tmp_path / "lsops.toml").write_text(
        "[thresholds]\nconnections_warn = 0.001\ncache_hit_ratio = 1\ndead_tuple_ratio = 0.005\n"
    )
    data = json.loads(_invoke(["db", "maintenance", "--json"], longsang_db.url).stdout)
    text = _invoke(["db", "maintenance"], longsang_db.url).stdout
    assert data["connections"]["flagged"] is True
    (connections,) = [x for x in text.splitlines() if x.startswith("connections:")]
    assert connections.endswith("; FLAGGED: at or above 0.1 %")
    flagged = [c["kind"] for c in data["cache"] if c["flagged"]]
    assert flagged  # any block read from disk: below 100 %
    marked = [x.strip("│ ").split()[0] for x in text.splitlines() if "below 100 %" in x]
    assert marked == flagged
    assert "due a VACUUM (>= 1,000 dead, >= 0.5 %)" in text


# --- 6. the statistics' age in the recommendations ------------------------------------------------


def test_the_statistics_age_reads_as_a_duration() -> None:
    unused = pd.DataFrame(
        [
            {
                "schema": "public",
                "table": "t",
                "index": "t_note",
                "size_bytes": 8192,
                "drop_proposed": False,
                "stats_age_days": 2 / 1440,
                "stats_reset": pd.Timestamp("2026-10-01 12:00", tz="UTC"),
                "stats_since": pd.Timestamp("2026-10-01 12:00", tz="UTC"),
            }
        ]
    )
    (evidence,) = recommendations({"unused": unused}, DbThresholds(unused_index_min_age=1 / 24))[
        "evidence"
    ]
    assert "(statistics reset 2026-10-01 12:00 UTC, 2 min ago)" in evidence
    assert "before the statistics cover 0.0417 days" in evidence


# --- 7. integer options out of range are bad usage ----------------------------------------------


def test_a_limit_beyond_bigint_is_bad_usage(pg_url: str) -> None:
    result = _invoke(["db", "queries", "--limit", "99999999999999999999"], pg_url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "lsops: --limit must be at most 9,223,372,036,854,775,807, not 99999999999999999999"
    )
    result = _invoke(["index-stats", "--failures", "99999999999999999999"], pg_url)
    assert result.exit_code == 2 and "--failures must be at most" in result.stderr
    with pytest.raises(ParameterError, match="expected at most"):
        count_param(2**63, "limit")
    assert count_param(2**63 - 1, "limit") == 2**63 - 1


def test_a_nan_threshold_is_shown_as_given(pg_url: str) -> None:
    result = _invoke(["db", "vectors", "--threshold", "nan"], pg_url)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("lsops: --threshold is a cosine similarity (-1 .. 1), not nan")


def test_collect_db_counts_the_statements_hidden_from_its_role(
    pg_cluster: PostgresCluster,
    pg_url: str,
    weak_role: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`lsops collect --db` as a role without pg_read_all_stats: the other roles' statements
    it cannot store are counted and said, as `db queries` says them."""
    if not pg_cluster.has_pg_stat_statements:
        pytest.skip("pg_stat_statements is not available here")
    from lsops_lib.cli.collect import _db_view
    from lsops_lib.collect import collect_db
    from lsops_lib.config import load_settings
    from lsops_lib.store import Store

    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT 20 AS qa20_superuser_statement")
    role = sa.engine.make_url(weak_role).username

    def collect(url: str) -> dict:
        settings = load_settings(
            env={"LSOPS_DATABASE_URL": url, "LSOPS_DATA": str(tmp_path)}, cwd=tmp_path
        )
        with Store(f"sqlite:///{tmp_path / 'm.sqlite'}") as store:
            return collect_db(settings, store)

    weak = collect(weak_role)
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        others = conn.execute(  # as the superuser sees them all, this query left out
            """
            SELECT count(*) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND userid <> (SELECT oid FROM pg_roles WHERE rolname = %s)
              AND query NOT LIKE '%%qa20 others%%'
            """,
            (role,),
        ).fetchone()[0]  # type: ignore[index]
    assert weak["queries_error"] is None
    assert 1 <= weak["queries_hidden"] <= others
    _db_view({"db": weak})
    said = capsys.readouterr().out
    assert f"{weak['queries_hidden']} statement" in said and "hidden from this role" in said
    assert collect(pg_url)["queries_hidden"] == 0  # the superuser sees every statement
