"""`db.vectors` on a real pgvector (the pgserver wheel's PostgreSQL 16): planted data
quality counted exactly, recall@k and the threshold share against numpy over the very
vectors the fixture wrote, the suggested setting checked on a second, disjoint sample,
and nothing written, no setting left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import vectors
from lsops_lib.exceptions import DatabaseError, ParameterError
from tests.fixtures.vectors import (
    DIMS,
    ITEM_DIMS,
    K,
    PlantedVectors,
    context_distances,
    cosine_similarities,
    distances,
    index_answers,
    index_recall,
    index_recalls,
    item_distances,
    make_docs,
)

pytestmark = pytest.mark.postgres

CONTEXT = ("public", "context_embeddings", "embedding")
ITEMS = ("public", "items", "embedding")


@pytest.fixture(scope="module")
def rq(planted_vectors: PlantedVectors) -> vectors.RetrievalQuality:
    with db.connect(planted_vectors.password_url) as insp:
        return vectors.retrieval_quality(insp, sample=50, k=K, seed=7)


def _index(rq: vectors.RetrievalQuality, name: str) -> dict[str, Any]:
    rows = rq.indexes[rq.indexes["index"] == name].to_dict("records")
    assert len(rows) == 1, name
    return rows[0]


# --- data quality -----------------------------------------------------------------------------


def test_planted_nulls_zero_vectors_and_duplicates_are_counted_exactly(
    rq: vectors.RetrievalQuality, planted_vectors: PlantedVectors
) -> None:
    pv = planted_vectors
    columns = {(r["schema"], r["table"], r["column"]): r for r in rq.columns.to_dict("records")}
    assert list(columns)[0] == CONTEXT  # the searched column first (the threshold's)
    c = columns[CONTEXT]
    assert (c["rows"], c["nulls"], c["zero_vectors"]) == (pv.rows, 3, 4)
    assert (c["duplicate_groups"], c["duplicate_rows"]) == (2, pv.duplicate_rows) == (2, 5)
    assert [sorted(g) for g in c["duplicate_examples"]] == [sorted(g) for g in pv.duplicate_groups]
    norms = np.linalg.norm(pv.vectors.astype(np.float64), axis=1)
    norms = norms[norms > 0]
    assert c["norm_min"] == pytest.approx(norms.min(), rel=1e-5) == pytest.approx(0.5, rel=1e-5)
    assert c["norm_max"] == pytest.approx(norms.max(), rel=1e-5) == pytest.approx(2.5, rel=1e-5)
    assert c["norm_median"] == pytest.approx(np.median(norms), rel=1e-5)
    assert c["dims"] == DIMS
    items = columns[ITEMS]
    assert (items["rows"], items["nulls"], items["zero_vectors"], items["duplicate_groups"]) == (
        len(pv.item_ids),
        0,
        0,
        0,
    )
    assert items["dims"] == ITEM_DIMS


# --- recall -----------------------------------------------------------------------------------


def test_recall_at_k_matches_numpy_on_the_same_sample(
    rq: vectors.RetrievalQuality, planted_vectors: PlantedVectors, pgvector_cluster: Any
) -> None:
    pv = planted_vectors
    for where, name, table, op, (d, pos) in (
        (
            CONTEXT,
            "idx_context_embeddings_embedding",
            "context_embeddings",
            "<=>",
            context_distances(pv),
        ),
        (ITEMS, "idx_items_embedding", "items", "<->", item_distances(pv)),
    ):
        keys = rq.queries[where]
        assert len(keys) == 50 and len(set(keys)) == 50
        assert not set(keys) & set(pv.zero_ids)  # queries have a direction
        row = _index(rq, name)
        assert row["note"] is None and row["sample"] == 50 and row["k"] == K
        ours = index_recall((d, pos), index_answers(pgvector_cluster, pv.name, table, op, keys))
        assert abs(row["recall_at_k"] - ours) <= 0.05, (name, row["recall_at_k"], ours)
        assert row["recall_p10"] <= row["recall_at_k"]
        assert row["index_ms"] > 0 and row["exact_ms"] > 0
    # the planted low parameters show: the default setting misses the target
    hnsw = _index(rq, "idx_context_embeddings_embedding")
    assert hnsw["method"] == "hnsw" and hnsw["options"] == "m=4, ef_construction=8"
    assert hnsw["setting"] == "hnsw.ef_search" and hnsw["current"] == 40
    assert hnsw["recall_at_k"] < 0.95
    ivf = _index(rq, "idx_items_embedding")
    assert ivf["setting"] == "ivfflat.probes" and ivf["current"] == 1 and ivf["recall_at_k"] < 0.95


def _second_samples(
    rq: vectors.RetrievalQuality, pv: PlantedVectors
) -> list[tuple[tuple[str, str, str], str, str, str, Any, list[str]]]:
    """Per index: (column, index, table, operator, exact distances, the rows the first
    sample did not use: a second sample, disjoint from the first)."""
    out = []
    for where, name, table, op, exact, pool in (
        (
            CONTEXT,
            "idx_context_embeddings_embedding",
            "context_embeddings",
            "<=>",
            context_distances(pv),
            [k for k in pv.ids if k not in pv.zero_ids],
        ),
        (
            ITEMS,
            "idx_items_embedding",
            "items",
            "<->",
            item_distances(pv),
            [str(i) for i in pv.item_ids],
        ),
    ):
        second = sorted(set(pool) - set(rq.queries[where]))
        assert len(second) > 900
        out.append((where, name, table, op, exact, second))
    return out


def test_the_suggested_setting_reaches_the_target_on_a_second_sample(
    rq: vectors.RetrievalQuality, planted_vectors: PlantedVectors, pgvector_cluster: Any
) -> None:
    """The suggestion, applied in our own session, on a second sample of ~1,000+ queries.
    The suggestion holds with 95 % confidence, not always (a setting whose recall is right
    at the target passes the first sample's bound now and then while just under it; once
    in ~40 runs a random HNSW build put one there): the second sample must find the target
    within 0.03, and far above the current setting's recall. That the rule errs no more
    often than it says is the next test's."""
    pv = planted_vectors
    for _where, name, table, op, exact, second in _second_samples(rq, pv):
        row = _index(rq, name)
        assert row["suggested"] is not None and not np.isnan(row["suggested"]), row
        assert row["suggested"] > row["current"]
        got = {
            which: index_recall(
                exact,
                index_answers(
                    pgvector_cluster, pv.name, table, op, second, setting=(row["setting"], value)
                ),
            )
            for which, value in (
                ("suggested", int(row["suggested"])),
                ("current", int(row["current"])),
            )
        }
        assert got["suggested"] >= 0.95 - 0.03, (name, got)
        assert got["suggested"] >= got["current"] + 0.05, (name, got)
    curve = rq.curves[rq.curves["index"] == "idx_context_embeddings_embedding"]
    assert list(curve["value"]) == sorted(curve["value"]) and curve["value"].min() > K
    assert curve["recall_at_k"].iloc[-1] >= curve["recall_at_k"].iloc[0]


RESAMPLES = 2000
POPULATION = 400  # queries of the second sample whose recall is the truth here


def test_the_suggestion_rule_errs_no_more_often_than_its_confidence_says(
    rq: vectors.RetrievalQuality, planted_vectors: PlantedVectors, pgvector_cluster: Any
) -> None:
    """The rule `retrieval_quality` suggests by (the smallest setting on the ladder whose
    recall's lower 95 % bound, `summarize`, reaches the target) on many samples of 50
    queries drawn from a population whose recall at each setting numpy knows (the index's
    answers in our own session, per query): it names a setting whose population recall is
    below the target in at most ~5 % of the samples (10 % allowed: 2,000 samples measure
    a rate within ~0.6 %; the rule measured 3.1 % at worst over 30 builds). The targets
    are 0.95, 0.99, 0.999 and each setting's own recall plus 0.002 and 0.01, where a rule
    trusting the sample's mean errs in ~40 % of the samples, the mean minus 1.645
    standard errors in 10-15 % (~40 % near 0.999: 50 queries that found every neighbour
    had a bound of 1.0), and Wilson's bound with each sample's own design effect only in
    up to 10.85 % (a CI run: a setting whose misses fall on a few queries, 0.98625, and a
    target 0.002 above it)."""
    from lsops_lib.db.recall import exhaustive, ladder, summarize

    pv = planted_vectors
    rng = np.random.default_rng(11)
    for _where, name, table, op, exact, second in _second_samples(rq, pv):
        row = _index(rq, name)
        population = second[:: max(1, len(second) // POPULATION)][:POPULATION]
        recalls: dict[int, np.ndarray] = {}  # setting -> each population query's recall
        for value in ladder(str(row["method"]), str(row["options"]), K):
            answers = index_answers(
                pgvector_cluster, pv.name, table, op, population, setting=(row["setting"], value)
            )
            recalls[value] = index_recalls(exact, answers)
            perfect = [r.mean() == 1.0 for r in recalls.values()]
            if perfect[-2:] == [True, True]:  # later settings are never reached: their
                break  # bound is the one before's (all found, as the setting before)
        truth = {v: float(r.mean()) for v, r in recalls.items()}
        above = [t + d for t in truth.values() for d in (0.002, 0.01) if t + d < 1]
        targets = sorted({0.95, 0.99, 0.999, *above})
        samples = [rng.choice(len(population), 50, replace=False) for _ in range(RESAMPLES)]
        # each sample's lower bound at each setting, by the product's own `summarize`, given
        # the same queries' recalls at the setting tried before
        settings = list(recalls)
        lows = [
            {
                v: summarize(
                    dict(enumerate(recalls[v][sample])),
                    K,
                    recalls[settings[i - 1]][sample]
                    if i and not exhaustive(str(row["method"]), str(row["options"]), v)
                    else None,
                )[2]
                for i, v in enumerate(settings)
            }
            for sample in samples
        ]
        for target in targets:
            wrong = 0
            for low in lows:
                picked = next((v for v, b in low.items() if b is not None and b >= target), None)
                wrong += picked is not None and truth[picked] < target
            assert wrong / RESAMPLES <= 0.10, (name, target, truth, wrong)


# --- the similarity threshold -----------------------------------------------------------------


def test_the_threshold_share_equals_numpy(
    rq: vectors.RetrievalQuality, planted_vectors: PlantedVectors
) -> None:
    pv = planted_vectors
    sims = cosine_similarities(pv.vectors)
    np.fill_diagonal(sims, np.nan)
    pos = {k: i for i, k in enumerate(pv.ids)}
    keys = rq.queries[CONTEXT]
    top1 = np.array([np.nanmax(sims[pos[k]]) for k in keys])
    assert not (np.abs(top1 - 0.7) < 1e-4).any()  # no query sits on the boundary
    t = rq.threshold
    assert t is not None and t["value"] == 0.7 and t["sample"] == len(keys) == 50
    assert t["share_with_result"] == float((top1 >= 0.7).sum()) / len(keys)
    assert 0 < t["share_with_result"] < 1  # the planted topics straddle 0.7
    for key, q in (("top1_p10", 10), ("top1_median", 50), ("top1_p90", 90)):
        assert t[key] == pytest.approx(np.percentile(top1, q), abs=1e-5), key
    # a duplicate's nearest other row is its twin: similarity 1
    dup = {k for g in pv.duplicate_groups for k in g} & set(keys)
    shown = rq.top1.set_index("query")["similarity"]
    for key in dup:
        assert shown[key] == pytest.approx(1.0, abs=1e-6)


def test_a_lower_threshold_keeps_more_queries(planted_vectors: PlantedVectors) -> None:
    with db.connect(planted_vectors.password_url) as insp:
        loose = vectors.retrieval_quality(insp, sample=20, k=K, seed=7, threshold=0.5)
    assert loose.threshold is not None and loose.threshold["share_with_result"] == 1.0


# --- read-only, bounded, repeatable -----------------------------------------------------------


def _checksum(cluster: Any, dbname: str) -> tuple[Any, ...]:
    with cluster.connect(dbname) as conn:
        return conn.execute(
            "SELECT (SELECT md5(string_agg(id::text || coalesce(embedding::text, '-'), ',' "
            "                  ORDER BY id)) FROM context_embeddings),"
            "       (SELECT md5(string_agg(id::text || embedding::text, ',' ORDER BY id))"
            "        FROM items),"
            "       (SELECT count(*) FROM pg_class WHERE relpersistence = 't')"
        ).fetchone()


def test_nothing_is_written_and_no_setting_outlives_the_transaction(
    planted_vectors: PlantedVectors, pgvector_cluster: Any
) -> None:
    pv = planted_vectors
    before = _checksum(pgvector_cluster, pv.name)
    with db.connect(pv.password_url) as insp:
        pid = insp.scalar("SELECT pg_backend_pid()")
        vectors.retrieval_quality(insp, sample=10, k=K, seed=1)
        assert insp.scalar("SELECT pg_backend_pid()") == pid  # the very session it used
        settings = insp.frame(
            "SELECT name, setting, source FROM pg_settings WHERE name IN "
            "('hnsw.ef_search', 'ivfflat.probes', 'enable_seqscan', "
            "'default_transaction_isolation', 'statement_timeout')"
        )
        isolation = insp.scalar("SHOW transaction_isolation")
    got = {r.name: (r.setting, r.source) for r in settings.itertuples(index=False)}
    assert got == {
        "hnsw.ef_search": ("40", "default"),
        "ivfflat.probes": ("1", "default"),
        "enable_seqscan": ("on", "default"),
        "default_transaction_isolation": ("read committed", "default"),
        "statement_timeout": ("30000", "session"),  # the inspection's own, as before
    }
    assert isolation == "read committed"
    with pgvector_cluster.connect(pv.name) as conn:  # a new session: the server's defaults
        conn.execute("LOAD 'vector'")
        assert conn.execute("SHOW hnsw.ef_search").fetchone()[0] == "40"
        assert conn.execute("SHOW ivfflat.probes").fetchone()[0] == "1"
    assert _checksum(pgvector_cluster, pv.name) == before


def test_the_transaction_is_read_only_repeatable_read_and_timed_out(
    planted_vectors: PlantedVectors,
) -> None:
    with db.connect(planted_vectors.password_url, statement_timeout_ms=12_345) as insp:
        with vectors.transaction(insp) as tx:
            assert tx.setting("transaction_read_only") == "on"
            assert tx.setting("transaction_isolation") == "repeatable read"
            assert tx.setting("statement_timeout") == "12345ms"
        with pytest.raises(DatabaseError, match="read-only transaction"):
            with vectors.transaction(insp) as tx:
                tx.frame("CREATE TABLE lsops_must_not_exist (a int)")


def test_every_statement_runs_under_the_statement_timeout(
    planted_vectors: PlantedVectors,
) -> None:
    with db.connect(planted_vectors.password_url, statement_timeout_ms=30) as insp:
        with pytest.raises(DatabaseError) as caught:
            vectors.retrieval_quality(insp, sample=50, k=K)
    message = str(caught.value)
    assert "statement timeout" in message and "\n" not in message


def test_the_sample_is_repeatable_with_its_seed(planted_vectors: PlantedVectors) -> None:
    with db.connect(planted_vectors.password_url) as insp:
        with vectors.transaction(insp) as tx:
            ext = vectors.pgvector_schema(tx)
            assert ext is not None
            column = next(
                c
                for c in vectors.vector_columns(tx, ext).itertuples(index=False)
                if c.table == "context_embeddings"
            )
            a = vectors.sample_keys(tx, column, ext, 20, 3)
            b = vectors.sample_keys(tx, column, ext, 20, 3)
            c = vectors.sample_keys(tx, column, ext, 20, 4)
    assert a == b and len(a) == 20 and a != c
    assert not set(a) & set(planted_vectors.null_ids) and not set(a) & set(planted_vectors.zero_ids)


def test_bad_parameters_are_one_line_and_exit_2() -> None:
    for args, word in (
        (["--sample", "0"], "--sample"),
        (["--k", "0"], "--k"),
        (["--k", "500"], "--k"),
        (["--threshold", "1.5"], "--threshold"),
    ):
        result = CliRunner().invoke(
            main,
            ["db", "vectors", *args],
            env={"LSOPS_DATABASE_URL": "postgresql://u@127.0.0.1:1/x", "LSOPS_CONFIG": ""},
        )
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and word in result.stderr
        assert "Traceback" not in result.stderr
    with pytest.raises(ParameterError):
        vectors.check_parameters(0, 10, 0.7)


# --- without pgvector, without a vector column ------------------------------------------------


@pytest.fixture(scope="module")
def no_pgvector_url(pgvector_cluster: Any) -> str:
    return pgvector_cluster.create_database("vectors_no_extension")


def test_a_database_without_pgvector_gets_one_clear_line(no_pgvector_url: str) -> None:
    with db.connect(no_pgvector_url) as insp:
        rq = vectors.retrieval_quality(insp)
    assert rq.available is False and "CREATE EXTENSION vector" in str(rq.message)
    env = {"LSOPS_DATABASE_URL": no_pgvector_url}
    text = CliRunner().invoke(main, ["db", "vectors"], env=env)
    assert text.exit_code == 0  # as `db queries` without pg_stat_statements
    assert text.stdout.count("\n") == 1 and "pgvector is not installed" in text.stdout
    data = CliRunner().invoke(main, ["db", "vectors", "--json"], env=env)
    assert data.exit_code == 0
    body = json.loads(data.stdout)
    assert body["available"] is False and body["columns"] == body["indexes"] == []
    assert body["threshold"] is None
    assert data.stderr.count("\n") == 1 and "pgvector" in data.stderr


def test_pgvector_without_a_vector_column_says_so(pgvector_cluster: Any) -> None:
    url = pgvector_cluster.create_database("vectors_no_column")
    pgvector_cluster.execute("CREATE EXTENSION vector", dbname="vectors_no_column")
    with db.connect(url) as insp:
        rq = vectors.retrieval_quality(insp)
    assert rq.available and rq.columns.empty and rq.indexes.empty and rq.threshold is None
    assert rq.notes == ["pgvector is installed but no table has a vector column"]


# --- the command ------------------------------------------------------------------------------


ISSUE_COLUMN_KEYS = {
    "table",
    "column",
    "dims",
    "rows",
    "nulls",
    "zero_vectors",
    "duplicate_groups",
    "duplicate_rows",
    "norm_min",
    "norm_median",
    "norm_max",
}
ISSUE_INDEX_KEYS = {
    "index",
    "table",
    "column",
    "method",
    "options",
    "bytes",
    "k",
    "sample",
    "recall_at_k",
    "recall_p10",
    "index_ms",
    "exact_ms",
    "suggested",
}
ISSUE_THRESHOLD_KEYS = {
    "value",
    "sample",
    "share_with_result",
    "top1_p10",
    "top1_median",
    "top1_p90",
}


def test_the_command_json_has_the_issue_keys(
    planted_vectors: PlantedVectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"LSOPS_DATABASE_URL": planted_vectors.password_url}
    # 100 queries of 5 neighbours: enough for a suggestion at 0.95 on every build (20 were
    # not on ~1 build in 10: their misses at one setting left the next unproven)
    args = ["db", "vectors", "--sample", "100", "--k", "5", "--seed", "2", "--threshold", "0.6"]
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert {"columns", "indexes", "threshold"} <= set(body)
    assert all(ISSUE_COLUMN_KEYS <= set(c) for c in body["columns"])
    assert all(ISSUE_INDEX_KEYS <= set(i) for i in body["indexes"])
    assert set(body["threshold"]) == ISSUE_THRESHOLD_KEYS
    assert body["threshold"]["value"] == 0.6 and body["threshold"]["sample"] == 100
    assert {i["k"] for i in body["indexes"]} == {5}
    hnsw = next(i for i in body["indexes"] if i["method"] == "hnsw")
    assert hnsw["suggested"]["setting"] == "hnsw.ef_search" and hnsw["suggested"]["current"] == 40
    assert planted_vectors.password_url.split(":")[2].split("@")[0] not in result.stdout
    text = CliRunner().invoke(main, args, env={**env, "COLUMNS": "250"})
    assert text.exit_code == 0, text.stderr
    assert "recall@k" in text.stdout and "SET hnsw.ef_search" in text.stdout
    assert "similarity threshold 0.6" in text.stdout


# --- the report's section, the review's figures, the charts -----------------------------------


def test_the_optimization_report_has_a_retrieval_section(planted_vectors: PlantedVectors) -> None:
    report = db.optimization_report(url=planted_vectors.password_url, top_n=5, store=None)
    sec = report.sections["retrieval"]
    assert sec.ok and not sec.unavailable
    assert set(sec.frames) == {"vector_columns", "vector_recall"}
    assert any("SET hnsw.ef_search" in n or "hnsw.ef_search =" in n for n in sec.notes)
    assert any(n.startswith("similarity threshold 0.7") for n in sec.notes)
    s = report.summary()
    assert s["vectors_available"] is True and s["zero_vectors"] == 4
    assert s["duplicate_groups"] == 2 and 0 < s["recall_at_k"] < 0.95
    assert report.recall_curves is not None and report.top1_similarity is not None
    assert ("similarity_threshold", 0.7) in set(
        map(tuple, report.thresholds_frame()[["threshold", "value"]].to_numpy().tolist())
    )


def test_the_report_says_when_pgvector_is_missing(no_pgvector_url: str) -> None:
    report = db.optimization_report(url=no_pgvector_url, top_n=5, store=None)
    assert report.sections["retrieval"].unavailable == [vectors.ENABLE_HINT]
    assert any(u.startswith("Retrieval quality: pgvector") for u in report.unavailable())
    assert report.summary()["vectors_available"] is False
    assert report.recall_curves is None and report.top1_similarity is None


def test_the_review_measures_once_and_shows_recall_by_the_latency(
    planted_vectors: PlantedVectors, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lsops_lib import present
    from lsops_lib.config import load_settings
    from lsops_lib.db import overview
    from lsops_lib.present import display

    monkeypatch.chdir(tmp_path)
    env = {"LSOPS_DATABASE_URL": planted_vectors.password_url}
    settings = load_settings(env=env, cwd=tmp_path)
    first = overview.retrieval_overview(settings, None)
    assert first.available and first.quality is not None
    assert overview.retrieval_overview(settings, None) is first  # measured once
    assert first.summary()["recall_at_k"] == first.quality.indexes.iloc[0]["recall_at_k"]
    shown: list[str] = []
    monkeypatch.setattr(display, "_display_html", shown.append, raising=False)
    monkeypatch.setattr(present.database, "show_html", shown.append)
    present.database.show_retrieval(first, None)
    assert "Recall@10 of idx_context_embeddings_embedding" in shown[-1]
    nothing = overview.retrieval_overview(load_settings(env={}, cwd=tmp_path), None)
    assert nothing.available is False and "no database configured" in str(nothing.reason)
    problems = len(display.PROBLEMS)
    present.database.show_retrieval(nothing, None)
    assert len(display.PROBLEMS) == problems  # shown, not recorded (the Database section is)


def test_the_charts_draw_from_the_frames(rq: vectors.RetrievalQuality) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lsops_lib import plots

    ax = plots.recall_curve(rq.curves)
    assert ax is not None and "idx_context_embeddings_embedding: recall" in ax.get_title(loc="left")
    ax = plots.similarity_threshold(rq.top1)
    share = rq.threshold["share_with_result"] if rq.threshold else None
    assert ax is not None and ax.get_title(loc="left").startswith(
        f"{round(share * 100)} % of 50 queries"
    )
    assert plots.recall_curve(None) is None and plots.similarity_threshold(None) is None
    plt.close("all")


def test_pgvector_in_its_own_schema_as_on_supabase(pgvector_cluster: Any) -> None:
    """Supabase installs pgvector in `extensions`, off the search_path: every function,
    operator and type is qualified."""
    name = "vectors_supabase"
    url = pgvector_cluster.create_database(name)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with pgvector_cluster.connect(name) as conn:
        conn.execute("CREATE SCHEMA extensions")
        conn.execute("CREATE EXTENSION vector SCHEMA extensions")
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, embedding extensions.vector(8))")
        for i, v in enumerate(x):
            conn.execute(
                "INSERT INTO docs VALUES (%s, %s::extensions.vector)",
                (i, "[" + ",".join(f"{f:.9g}" for f in v) + "]"),
            )
        conn.execute(
            "CREATE INDEX docs_hnsw ON docs USING hnsw (embedding extensions.vector_cosine_ops)"
        )
    with db.connect(url) as insp:
        assert insp.scalar("SHOW search_path") == '"$user", public'
        rq = vectors.retrieval_quality(insp, sample=20, k=5)
    assert rq.available and rq.columns.iloc[0]["rows"] == 300
    row = _index(rq, "docs_hnsw")
    assert row["note"] is None and row["recall_at_k"] > 0.9
    assert rq.threshold is not None and rq.threshold["sample"] == 20


def test_the_recall_bound_is_wilsons_on_the_neighbours_found() -> None:
    """`lower_bound` against the Wilson bound found by bisection (the p0 below which the
    sample's mean is `t` standard errors of a binomial of `trials` away), with the trials
    the design effect leaves: 10 neighbours a query, queries that find all or none of them
    count as one trial each, queries that all find all of them still leave a margin."""
    from lsops_lib.db.recall import lower_bound
    from tests.test_stats import by_bisection as wilson_by_bisection

    t49 = 2.0096  # Student's t, 97.5 % one-sided, 49 degrees of freedom (tables)

    perfect = np.ones(50)
    assert lower_bound(perfect, 10) == pytest.approx(wilson_by_bisection(1.0, 500, t49), abs=1e-4)
    assert 0.99 < lower_bound(perfect, 10) < 0.993  # not 1.0: 50 queries show no more
    # 45 queries find everything, 5 nothing: misses come by query, 49 trials, not 500
    # (the design effect 10.2: the sample's variance over n - 1)
    lumpy = np.array([1.0] * 45 + [0.0] * 5)
    assert lower_bound(lumpy, 10) == pytest.approx(wilson_by_bisection(0.9, 49, t49), abs=1e-3)
    # a sample that found everything shows nothing of how misses come: the same queries'
    # design effect at the setting tried before stands in (lumpy's: 49 trials, not 500)
    assert lower_bound(perfect, 10, lumpy) == pytest.approx(
        wilson_by_bisection(1.0, 49, t49), abs=1e-3
    )
    assert lower_bound(perfect, 10, lumpy) < 0.95 < lower_bound(perfect, 10)
    assert lower_bound(lumpy, 10, perfect) == lower_bound(lumpy, 10)  # the larger of the two
    # each query misses one of 10: less spread than a binomial's, so the trials stay 500
    even = np.full(50, 0.9)
    assert lower_bound(even, 10) == pytest.approx(wilson_by_bisection(0.9, 500, t49), abs=1e-3)
    # between the two: the design effect the sample's own variance shows
    rng = np.random.default_rng(5)
    mixed = rng.choice([1.0, 0.9, 0.8, 0.3], size=50, p=[0.7, 0.15, 0.1, 0.05])
    p = mixed.mean()
    trials = 500 / max(1.0, mixed.var(ddof=1) / (p * (1 - p) / 10))
    assert lower_bound(mixed, 10) == pytest.approx(wilson_by_bisection(p, trials, t49), abs=1e-3)


def test_a_target_too_high_for_the_sample_says_so_and_how_many_queries_would_do() -> None:
    """No setting suggested: when the best one found the target on the sample but the
    sample is too small to show it (50 queries that found all their neighbours vouch for
    ~0.992), the note asks for a larger --sample, with the number: Wilson's bound at
    p = 1 is 1 / (1 + t^2 / 10 n), which reaches 0.999 once n >= 99.9 t^2 (t 1.966 at
    389 degrees of freedom: n >= 386), so 390; 0.99 once n >= 9.9 t^2 (t 2.023 at 39: 40.5;
    2.010 at 49: 40.0), so 50; an index that misses the target at every setting is to be
    rebuilt."""
    from lsops_lib.db.recall import sample_needed

    perfect = np.ones(50)
    assert sample_needed(perfect, 10, 0.999, 1000) == 390
    assert sample_needed(perfect, 10, 0.99, 1000) == 50
    assert sample_needed(np.full(50, 0.98), 10, 0.99, 1000) is None  # below the target
    assert sample_needed(perfect, 10, 0.9999, 1000) is None  # ~3,860 queries: over the most
    note = vectors._no_suggestion(
        "hnsw.ef_search", [20, 40], 0.999, (1.0, 40, perfect, None), 390, 1000
    )
    assert note == (
        "hnsw.ef_search = 40 finds recall 1.000 on these 50 queries, but so few cannot show "
        "0.999 with confidence: about 390 would (--sample)"
    )
    note = vectors._no_suggestion(
        "hnsw.ef_search", [20, 40], 0.999, (0.99, 40, perfect, None), None, 1000
    )
    assert note.endswith("rebuild the index with larger parameters")


DIMS_2 = 2


def test_probing_every_list_is_judged_on_its_own_sample(pgvector_cluster: Any) -> None:
    """IVFFlat with 2 lists: probes = 1 misses whole groups of neighbours (the queries near
    the lists' border: a large design effect), probes = 2 searches every list and finds
    them all. Its bound takes no design effect from probes = 1 (`recall.exhaustive`):
    borrowed, it fell below a target of 0.99 (50 queries that found every neighbour counted
    as fewer) and no setting was suggested for an index whose last setting is an exact
    search."""
    from lsops_lib.db.recall import exhaustive, lower_bound

    name = "vectors_two_lists"
    x = np.random.default_rng(3).normal(size=(400, DIMS_2)).astype(np.float32)
    url = make_docs(
        pgvector_cluster,
        name,
        x,
        "CREATE INDEX docs_ivf ON docs USING ivfflat (embedding vector_l2_ops) WITH (lists = 2)",
    )
    with db.connect(url) as insp:
        rq = vectors.retrieval_quality(insp, sample=50, k=K, seed=0, target=0.99)
    assert exhaustive("ivfflat", "lists=2", 2) and not exhaustive("ivfflat", "lists=2", 1)
    assert not exhaustive("hnsw", "m=16", 1000)
    # the same 50 queries at each setting, numpy's exact neighbours against the index's
    keys = rq.queries[("public", "docs", "embedding")]
    exact = (distances(x, "l2"), {str(i): i for i in range(len(x))})
    at = {
        probes: index_recalls(
            exact,
            index_answers(pgvector_cluster, name, "docs", "<->", keys, ("ivfflat.probes", probes)),
        )
        for probes in (1, 2)
    }
    assert at[2].min() == 1.0 and at[1].mean() < 0.99, at
    # probes = 1's design effect borrowed would not vouch for probes = 2; its own sample does
    assert lower_bound(at[2], K, at[1]) < 0.99 <= lower_bound(at[2], K)
    row = _index(rq, "docs_ivf")
    curve = rq.curves[rq.curves["index"] == "docs_ivf"]
    assert list(curve["value"]) == [1, 2] and curve["recall_at_k"].tolist()[-1] == 1.0
    assert row["suggested"] == 2, row
