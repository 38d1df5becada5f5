"""QA 21, `db vectors` after the suggestion rule of 97.5 % per ladder step: when no setting
is suggested, the text, the JSON and `problems()` say the note's reason (a larger --sample,
or rebuild), never 'none reaches the target' beside a setting that reached it; a sample
larger than --sample allows, or than the column has rows, is never asked for; a recall
below the target is never rounded up to it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import vectors
from lsops_lib.db.recall import INDEX_KEYS, RetrievalQuality, problems
from tests.fixtures.vectors import PlantedVectors

pytestmark = pytest.mark.postgres


def _run(url: str, tmp_path: Path, target: float, *args: str) -> tuple[dict[str, Any], str]:
    config = tmp_path / "lsops.toml"
    config.write_text(f"[thresholds]\nrecall_target = {target}\n")
    env = {"LSOPS_DATABASE_URL": url, "LSOPS_CONFIG": str(config), "COLUMNS": "250"}
    result = CliRunner().invoke(main, ["db", "vectors", *args, "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    text = CliRunner().invoke(main, ["db", "vectors", *args], env=env)
    assert text.exit_code == 0, text.stderr
    return json.loads(result.stdout), text.stdout


def _t(df: int, z: float = 1.96) -> float:
    """Student's t, 97.5 % one-sided (Cornish-Fisher, as the tables to 3 decimals)."""
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def _needed_at_one(k: int, target: float) -> int | None:
    """Queries that all find all k neighbours: Wilson's bound at p = 1 is 1 / (1 + t^2 / nk);
    the smallest multiple of 10 reaching the target, None beyond 10,000."""
    for n in range(10, 10_001, 10):
        if 1.0 / (1.0 + _t(n - 1) ** 2 / (n * k)) >= target:
            return n
    return None


def test_no_suggestion_is_said_as_the_note_says_in_text_and_json(
    planted_vectors: PlantedVectors, tmp_path: Path
) -> None:
    body, text = _run(planted_vectors.password_url, tmp_path, 0.999, "--sample", "50")
    assert "none reaches the target" not in text
    items = next(i for i in body["indexes"] if i["index"] == "idx_items_embedding")
    s = items["suggested"]
    assert s["value"] is None and max(t["recall_at_k"] for t in s["tried"]) == 1.0
    # a setting found every neighbour of the 50 queries: a larger sample, with its size
    assert s["sample_needed"] == _needed_at_one(10, 0.999) == 390
    assert items["note"].endswith("cannot show 0.999 with confidence: about 390 would (--sample)")
    assert f"idx_items_embedding: {items['note']}" in text
    assert "idx_items_embedding: no ivfflat.probes suggested: none shown to reach" in text
    assert "rebuild" not in items["note"]
    said = [p for p in problems_of(planted_vectors, 0.999) if p.startswith("idx_items_embedding")]
    assert len(said) == 1 and said[0].endswith("about 390 would (--sample)"), said


def problems_of(pv: PlantedVectors, target: float) -> list[str]:
    with db.connect(pv.password_url) as insp:
        rq = vectors.retrieval_quality(insp, sample=50, k=10, seed=0, target=target)
    return problems(rq)


def test_a_sample_beyond_what_sample_allows_is_never_asked_for(
    planted_vectors: PlantedVectors, tmp_path: Path
) -> None:
    body, text = _run(planted_vectors.password_url, tmp_path, 0.999, "--sample", "5", "--k", "1")
    # one neighbour a query: 0.999 needs ~3,850 queries that all find it, --sample stops at 1000
    assert _needed_at_one(1, 0.999) == 3850
    for ix in body["indexes"]:
        assert ix["suggested"]["value"] is None and ix["suggested"]["sample_needed"] is None
        assert ix["note"].endswith(
            "cannot show 0.999 with confidence, nor could the 1,000 queries --sample allows"
        ), ix["note"]
        assert f"{ix['index']}: {ix['note']}" in text
    assert "more than 1000 would" not in text


def test_a_sample_beyond_the_rows_of_the_column_is_never_asked_for(
    pgvector_cluster: Any, tmp_path: Path
) -> None:
    """60 rows with a vector (and a NULL, a zero vector): 50 queries all find their 10
    neighbours, 0.999 would take 390 queries, more than the column has."""
    name = "qa21_small"
    url = pgvector_cluster.create_database(name)
    rng = np.random.default_rng(21)
    x = rng.normal(size=(60, 8))
    with pgvector_cluster.connect(name) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE docs (id int PRIMARY KEY, embedding vector(8))")
        for i, v in enumerate(x):
            conn.execute(
                "INSERT INTO docs VALUES (%s, %s::vector)", (i, "[" + ",".join(map(str, v)) + "]")
            )
        conn.execute("INSERT INTO docs VALUES (60, NULL), (61, '[0,0,0,0,0,0,0,0]')")
        conn.execute("CREATE INDEX docs_hnsw ON docs USING hnsw (embedding vector_l2_ops)")
        conn.execute("ANALYZE")
    body, text = _run(url, tmp_path, 0.999, "--sample", "50")
    (ix,) = body["indexes"]
    assert ix["sample"] == 50 and ix["recall_at_k"] == 1.0  # 60 rows: HNSW finds them all
    assert ix["suggested"]["value"] is None and ix["suggested"]["sample_needed"] is None
    assert _needed_at_one(10, 0.999) == 390 > 60
    assert ix["note"].endswith("0.999 with confidence, nor could all 60 rows with a vector")
    assert "(--sample)" not in text


def test_a_recall_below_the_target_is_never_rounded_up_to_it() -> None:
    """problems() said 'recall@10 1.00 ..., below 0.999' for 0.996."""
    row = dict.fromkeys(INDEX_KEYS)
    row.update(index="ix", setting="hnsw.ef_search", current=40, recall_at_k=0.996)
    row["note"] = "no hnsw.ef_search up to 1000 reaches recall 0.999 with confidence: rebuild"
    rq = RetrievalQuality(available=True, target=0.999, indexes=pd.DataFrame([row]))
    (said,) = problems(rq)
    figure = said.split("recall@10 ")[1].split(" ")[0]
    assert float(figure) < 0.999 and math.isclose(float(figure), 0.996)
    assert said == (
        "ix: recall@10 0.996 at hnsw.ef_search = 40, below 0.999; no hnsw.ef_search up to "
        "1000 reaches recall 0.999 with confidence: rebuild"
    )
    row.update(recall_at_k=0.91)
    rq.target = 0.95
    rq.indexes = pd.DataFrame([row])
    assert problems(rq)[0].startswith("ix: recall@10 0.91 at hnsw.ef_search = 40, below 0.95; ")
