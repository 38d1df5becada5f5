"""QA 22, `db vectors` after the design effect borrowed from the setting before (and not at
an IVFFlat setting probing every list): the number of queries the note asks for is one
that works when rerun; text, JSON and `problems()` say the same; IVFFlat with 1, 2 and 3
lists, options written with spaces, `--k 1`, k above ladder values, a column with fewer
rows than the sample; and ties between settings that found the same neighbours.

Every expectation is computed here (Wilson's bound and Student's t written out again,
numpy's exact neighbours), never by the code under test. IVFFlat probing every list is an
exact search whatever the build, so the tests built on it are deterministic."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lsops_lib import db
from lsops_lib.db import vectors
from lsops_lib.db.recall import problems
from tests.fixtures.vectors import distances, make_docs
from tests.test_qa21_vectors import _run as _run_all

pytestmark = pytest.mark.postgres

DIMS = 8
ROWS = 300


def _t(df: int, z: float = 1.96) -> float:
    """Student's t, 97.5 % one-sided (Cornish-Fisher)."""
    df = max(df, 1)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _wilson(p: float, trials: float, t: float) -> float:
    centre = p + t * t / (2 * trials)
    margin = t * math.sqrt(p * (1 - p) / trials + t * t / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + t * t / trials))


def _design(values: np.ndarray, k: int) -> float:
    p = float(values.mean())
    binomial = p * (1 - p) / k
    return max(1.0, float(values.var(ddof=1)) / binomial) if binomial > 0 else 1.0


def _needed(p: float, design: float, k: int, target: float, most: int = 1000) -> int | None:
    """The smallest multiple of 10 queries whose bound reaches the target in 4 samples of
    5 when the recall is p: at a mean 0.84 standard errors (of n queries) below p."""
    for n in range(10, most + 1, 10):
        trials = n * k / design
        if _wilson(p - 0.84 * math.sqrt(p * (1 - p) / trials), trials, _t(n - 1)) >= target:
            return n
    return None


def _topics(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = rng.normal(size=(6, DIMS))
    x = centres[rng.integers(0, 6, n)] + 0.6 * rng.normal(size=(n, DIMS))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def dbs(pgvector_cluster: Any) -> dict[str, Any]:
    """IVFFlat with 1, 2 and 3 lists (the 3 written with spaces), a tiny IVFFlat column of
    8 rows, and an HNSW index; all over the same 300 clustered vectors (L2)."""
    rng = np.random.default_rng(22)
    x = _topics(rng, ROWS)
    ivf = "CREATE INDEX docs_ix ON docs USING ivfflat (embedding vector_l2_ops) WITH "
    return {
        "x": x,
        "lists1": make_docs(pgvector_cluster, "qa22_lists1", x, ivf + "(lists = 1)"),
        "lists2": make_docs(pgvector_cluster, "qa22_lists2", x, ivf + "(lists = 2)"),
        "lists3": make_docs(pgvector_cluster, "qa22_lists3", x, ivf + "(  lists   =   3 )"),
        "tiny": make_docs(pgvector_cluster, "qa22_tiny", x[:8], ivf + "(lists = 1)"),
        "hnsw": make_docs(
            pgvector_cluster,
            "qa22_hnsw",
            x,
            "CREATE INDEX docs_ix ON docs USING hnsw (embedding vector_l2_ops)",
        ),
    }


def _run(url: str, tmp_path: Path, target: float, *args: str) -> tuple[dict[str, Any], str]:
    """`lsops db vectors` at `target`: the JSON of its one index, and the text."""
    body, text = _run_all(url, tmp_path, target, *args)
    (ix,) = body["indexes"]
    return ix, text


def _problems(url: str, target: float, **kw: Any) -> list[str]:
    with db.connect(url) as insp:
        return problems(vectors.retrieval_quality(insp, target=target, **kw))


def _agree(ix: dict[str, Any], text: str, said: list[str]) -> None:
    """The note, the JSON, the text and problems() tell one story."""
    s = ix["suggested"]
    lines = [line for line in text.splitlines() if line.startswith("docs_ix: ")]
    if s["value"] is None:
        assert ix["note"], ix
        assert f"docs_ix: {ix['note']}" in lines, lines
        assert any("none shown to reach the target with confidence" in ln for ln in lines)
        assert ("about" in ix["note"]) == (s["sample_needed"] is not None)
        if s["sample_needed"] is not None:
            assert ix["note"].endswith(f"about {s['sample_needed']} would (--sample)")
        below = [p for p in said if p.startswith("docs_ix:")]
        assert len(below) <= 1 and all(p.endswith(f"; {ix['note']}") for p in below), said
    else:
        assert ix["note"] is None and s["sample_needed"] is None
        assert any(ln.startswith(f"docs_ix: suggested SET {s['setting']} = {s['value']} ")
                   for ln in lines), lines  # fmt: skip
        assert all("reaches it" in p for p in said if p.startswith("docs_ix:"))


# --- 1. the number of queries asked for, rerun ----------------------------------------------


def test_the_queries_asked_for_give_a_suggestion_when_rerun(
    dbs: dict[str, Any], tmp_path: Path
) -> None:
    """IVFFlat with 2 lists, target 0.995: 50 queries can vouch for at most 0.992 (all
    found at every setting), so none is suggested whatever the build; probes = 2 is an exact
    search (recall 1.000, its own design effect 1: nothing borrowed from probes = 1), so
    1 / (1 + t^2 / 10n) >= 0.995 asks for 80 queries, and 80 queries, any seed, do."""
    target = 0.995
    assert _needed(1.0, 1.0, 10, target) == 80
    for seed in (0, 1):
        ix, text = _run(dbs["lists2"], tmp_path, target, "--seed", str(seed))
        s = ix["suggested"]
        assert s["value"] is None and [t["value"] for t in s["tried"]] == [1, 2], s
        assert s["tried"][-1]["recall_at_k"] == 1.0
        assert s["sample_needed"] == 80, ix
        assert "rebuild" not in ix["note"]
        _agree(ix, text, _problems(dbs["lists2"], target, seed=seed))
        again, text = _run(dbs["lists2"], tmp_path, target, "--sample", "80", "--seed", str(seed))
        assert again["sample"] == 80 and again["suggested"]["value"] in (1, 2), again
        _agree(again, text, _problems(dbs["lists2"], target, sample=80, seed=seed))


def test_one_list_is_exhaustive_at_once(dbs: dict[str, Any], tmp_path: Path) -> None:
    """lists = 1: the ladder is [1], an exact search: suggested at 0.95 (50 queries at
    recall 1.000 vouch for 0.992); at 0.999 the 390 queries needed exceed the 300 rows."""
    ix, text = _run(dbs["lists1"], tmp_path, 0.95)
    s = ix["suggested"]
    assert ix["options"] == "lists=1" and ix["recall_at_k"] == 1.0
    assert s["value"] == 1 and s["tried"] == [{"value": 1, "recall_at_k": 1.0}], s
    _agree(ix, text, _problems(dbs["lists1"], 0.95))
    assert _needed(1.0, 1.0, 10, 0.999) == 390 > ROWS
    ix, text = _run(dbs["lists1"], tmp_path, 0.999)
    assert ix["suggested"]["value"] is None and ix["suggested"]["sample_needed"] is None
    assert ix["note"] == (
        "ivfflat.probes = 1 finds recall 1.000 on these 50 queries, but so few cannot show "
        f"0.999 with confidence, nor could all {ROWS} rows with a vector"
    )
    _agree(ix, text, _problems(dbs["lists1"], 0.999))


def test_k_1_asks_for_the_queries_one_neighbour_each_needs(
    dbs: dict[str, Any], tmp_path: Path
) -> None:
    """--k 1 on an exact search: 50 queries finding their one neighbour vouch for
    1 / (1 + t^2 / 50) = 0.926; 0.95 needs 80 (n >= 19 t^2), and 80 get it."""
    assert _needed(1.0, 1.0, 1, 0.95) == 80
    ix, text = _run(dbs["lists1"], tmp_path, 0.95, "--k", "1")
    assert ix["k"] == 1 and ix["recall_at_k"] == 1.0
    assert ix["suggested"]["value"] is None and ix["suggested"]["sample_needed"] == 80
    _agree(ix, text, [])
    ix, text = _run(dbs["lists1"], tmp_path, 0.95, "--k", "1", "--sample", "80")
    assert ix["suggested"]["value"] == 1, ix
    _agree(ix, text, [])


def test_three_lists_written_with_spaces(dbs: dict[str, Any], tmp_path: Path) -> None:
    """`lists   =   3`: the ladder is 1, 2, 3 (3 not a power of two), and 3 is exhaustive:
    recall 1.000 against numpy's exact neighbours, judged on its own sample."""
    ix, text = _run(dbs["lists3"], tmp_path, 0.995)
    s = ix["suggested"]
    assert ix["options"] == "lists=3"
    assert [t["value"] for t in s["tried"]] == [1, 2, 3] and s["tried"][-1]["recall_at_k"] == 1.0
    assert s["value"] is None and s["sample_needed"] == 80, ix  # never borrowed from probes 2
    _agree(ix, text, _problems(dbs["lists3"], 0.995))


def test_hnsw_ladder_skips_settings_not_above_k(dbs: dict[str, Any], tmp_path: Path) -> None:
    """--k 25: ef_search 20 cannot return 25 neighbours, so the ladder starts at 40; the
    recall at each setting tried is numpy's within the sample (tie-aware)."""
    ix, text = _run(dbs["hnsw"], tmp_path, 0.999, "--k", "25")
    tried = [t["value"] for t in ix["suggested"]["tried"]]
    assert tried and tried[0] == 40 and all(v > 25 for v in tried), tried
    assert tried == sorted(tried) and set(tried) <= {40, 80, 160, 320, 640, 1000}
    _agree(ix, text, _problems(dbs["hnsw"], 0.999, k=25))


def test_a_column_with_fewer_rows_than_the_sample(dbs: dict[str, Any], tmp_path: Path) -> None:
    """8 rows, --sample 50: 8 queries with 7 neighbours each, found by an exact search; no
    number of queries the column has could show 0.95, and the note says so."""
    x = dbs["x"][:8]
    d = distances(x, "l2")
    assert np.isfinite(np.sort(d, axis=1)[:, 6]).all()
    ix, text = _run(dbs["tiny"], tmp_path, 0.95)
    assert ix["sample"] == 8 and ix["recall_at_k"] == 1.0
    assert ix["suggested"]["value"] is None and ix["suggested"]["sample_needed"] is None
    assert ix["note"].endswith("nor could all 8 rows with a vector"), ix["note"]
    assert "(--sample)" not in text
    _agree(ix, text, _problems(dbs["tiny"], 0.95))
    # each query has 7 neighbours to find, not 10: its bound counts 8 x 7 trials (counted
    # as 8 x 10 it vouched for more than the column can show)
    with db.connect(dbs["tiny"]) as insp:
        rq = vectors.retrieval_quality(insp, sample=50, k=10, seed=0)
    (low,) = rq.curves["recall_low"].tolist()
    assert low == pytest.approx(_wilson(1.0, 8 * 7, _t(7)), abs=1e-12), low
    assert low < _wilson(1.0, 8 * 10, _t(7))


# --- 2. the best setting: a tie is a tie -------------------------------------------------------


def test_settings_finding_the_same_neighbours_tie_whatever_the_float_sum(
    dbs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two settings find 496 of 500 neighbours: ef_search 40 with its 4 misses on 4 queries
    (design effect 1), ef_search 80 with them on 2 queries (0.7 and 0.9: design effect
    2.49). Their means are 0.9919999999999999 and 0.992 as numpy sums them: the best was
    ef_search 80 by one ulp, and the note said not even all 300 rows would show 0.986,
    where ef_search 40's 270 queries would (ties go to the smaller design effect). The per-query
    recalls of the ladder are set here (the database, the sample and the rest are real)."""
    n = 50
    spread = np.ones(n)
    spread[[5, 20, 26, 29]] = 0.9
    lumped = np.ones(n)
    lumped[[1, 18]] = [0.7, 0.9]
    assert round(spread.sum() * 10) == round(lumped.sum() * 10) == 496  # neighbours found
    assert spread.mean() < lumped.mean()  # as floats: an ulp apart
    target = 0.986
    assert _needed(0.992, _design(spread, 10), 10, target, ROWS) == 270
    assert _needed(0.992, _design(lumped, 10), 10, target, ROWS) is None  # more than 300 rows
    lower = np.ones(n)
    lower[:6] = 0.9  # later settings: less found (mean 0.988, bound < 0.986), design 1
    ladder = {20: np.full(n, 0.9), 40: spread, 80: lumped}
    real_recall = vectors.recall
    calls: list[int] = []

    def crafted(truth: Any, found: Any, k: int) -> dict[str, float]:
        real = real_recall(truth, found, k)
        calls.append(len(calls))
        if len(calls) == 1:  # the session's setting
            return real
        values = list(ladder.values())[len(calls) - 2] if len(calls) - 2 < 3 else lower
        return dict(zip(real, values.tolist(), strict=True))

    monkeypatch.setattr(vectors, "recall", crafted)
    with db.connect(dbs["hnsw"]) as insp:
        rq = vectors.retrieval_quality(insp, sample=n, k=10, seed=0, target=target)
    row = rq.indexes.iloc[0]
    assert list(rq.curves["value"]) == [20, 40, 80, 160, 320, 640, 1000]
    assert row["suggested"] is None or str(row["suggested"]) == "<NA>"
    assert int(row["sample_needed"]) == 270, row["note"]
    assert row["note"] == (
        "hnsw.ef_search = 40 finds recall 0.992 on these 50 queries, but so few cannot show "
        "0.986 with confidence: about 270 would (--sample)"
    )


def test_a_mean_at_the_target_is_at_the_target() -> None:
    """496 of 500 neighbours found, as per-query shares: numpy's mean is 0.9919999999999999.
    At a target of 0.992 the setting found the target on its sample, which no sample size
    can show with confidence (a lower bound stays below the mean): the note says that, not
    "rebuild the index", as for a setting below the target."""
    from lsops_lib.db.recall import sample_needed

    spread = np.ones(50)
    spread[[5, 20, 26, 29]] = 0.9
    assert spread.mean() < 0.992  # the float sum, one ulp below
    assert sample_needed(spread, 10, 0.992, 1000) is None
    best = (float(spread.mean()), 40, spread, None)
    note = vectors._no_suggestion("hnsw.ef_search", [20, 40], 0.992, best, None, 1000)
    assert note == (
        "hnsw.ef_search = 40 finds recall 0.992 on these 50 queries, but so few cannot show "
        "0.992 with confidence, nor could the 1,000 queries --sample allows"
    )
    below = (0.99, 40, spread, None)
    assert vectors._no_suggestion("hnsw.ef_search", [20, 40], 0.992, below, None, 1000).endswith(
        "rebuild the index with larger parameters"
    )
