"""`lsops db vectors`: retrieval quality of the embeddings (pgvector), read-only: data
quality of every vector column, recall@k of every HNSW / IVFFlat index with the smallest
ef_search / probes reaching `[thresholds] recall_target`, and the similarity threshold.

Exit codes as the other `db` commands: 0 done (pgvector missing included: one line
saying so, as a missing pg_stat_statements), 1 the database cannot be reached or failed,
2 bad usage (a sample, k or threshold out of range; no database configured).
"""

from __future__ import annotations

from typing import Any

import click

from .. import fmt
from . import App, pass_app, run_command
from .db import _database_option, _inspector, _json_option, _note, db_group
from .render import RIGHT, Column, clip, emit, line, table

__all__ = ["db_vectors"]


def _ids(groups: Any) -> str:
    return "; ".join(", ".join(clip(i, 40) for i in group) for group in groups) or fmt.DASH


def _norm(value: Any) -> str:
    return fmt.DASH if fmt.missing(value) else f"{float(value):.4f}"


def _recall(value: Any) -> str:
    return fmt.DASH if fmt.missing(value) else f"{float(value):.3f}"


def _suggested(s: Any) -> str:
    if s["setting"] is None:
        return fmt.DASH
    tried = ", ".join(
        f"{t['value']}: {_recall(t['recall_at_k'])}" for t in s["tried"]
    )  # the curve, in the JSON too
    now = f"now {s['current']}" if s["current"] is not None else "now unknown"
    if s["value"] is None:  # the index's note says why: rebuild it, or a larger --sample
        return (
            f"no {s['setting']} suggested: none shown to reach the target with confidence "
            f"({now}; tried {tried or fmt.DASH})"
        )
    return (
        f"suggested SET {s['setting']} = {s['value']} (recall {_recall(s['recall_at_k'])}; "
        f"{now}; tried {tried})"
    )


_COLUMN_COLUMNS = [
    Column("table", "table", clip),
    Column("column", "column", clip),
    Column("dims", "dims", fmt.integer, RIGHT),
    Column("rows", "rows", fmt.integer, RIGHT),
    Column("nulls", "NULL", fmt.integer, RIGHT),
    Column("zero_vectors", "zero", fmt.integer, RIGHT),
    Column("duplicate_groups", "dup. groups", fmt.integer, RIGHT),
    Column("duplicate_rows", "dup. rows", fmt.integer, RIGHT),
    Column("norm_min", "norm min", _norm, RIGHT),
    Column("norm_median", "median", _norm, RIGHT),
    Column("norm_max", "max", _norm, RIGHT),
]
_INDEX_COLUMNS = [
    Column("index", "index", clip),
    Column("table", "table", clip),
    Column("column", "column", clip),
    Column("method", "method"),
    Column("options", "options", lambda v: clip(v) if v else "defaults"),
    Column("bytes", "size", fmt.size, RIGHT),
    Column("table_bytes", "table", fmt.size, RIGHT),
    Column("k", "k", fmt.integer, RIGHT),
    Column("sample", "queries", fmt.integer, RIGHT),
    Column("recall_at_k", "recall@k", _recall, RIGHT),
    Column("recall_p10", "p10", _recall, RIGHT),
    Column("index_ms", "index/query", fmt.ms, RIGHT),
    Column("exact_ms", "exact/query", fmt.ms, RIGHT),
]


def _view(d: Any) -> None:
    if not d["available"]:
        line(f"vector checks unavailable: {d['message']}")
        return
    columns = d["columns"]
    table(columns, _COLUMN_COLUMNS, title="Vector columns: data quality", empty="none")
    for c in columns:
        if c["duplicate_groups"]:
            line(
                f"duplicates in {clip(c['table'])}.{clip(c['column'])}, largest groups first: "
                f"{_ids(c['duplicate_examples'])}"
            )
    indexes = d["indexes"]
    table(
        indexes, _INDEX_COLUMNS, title="Vector indexes: recall@k (the index against an exact scan)"
    )
    for ix in indexes:
        what = f"{clip(ix['index'])}: "
        if ix["note"]:
            line(what + clip(ix["note"], 300))
        suggestion = ix["suggested"]
        if suggestion["setting"] is not None and ix["recall_at_k"] is not None:
            line(what + _suggested(suggestion))
    for note in d["notes"]:
        line(clip(note, 300))
    t = d["threshold"]
    if t is None:
        return
    where = f"{clip(columns[0]['table'])}.{clip(columns[0]['column'])}" if columns else ""
    have = "has" if t["sample"] == 1 else "have"
    line(
        f"similarity threshold {fmt.number(t['value'])} on {where}: "
        f"{fmt.pct(t['share_with_result'])} of {fmt.counted(t['sample'], 'query', 'queries')} "
        f"{have} a nearest other row at or above it (below it the API returns no context); top-1 "
        f"similarity p10 {_recall(t['top1_p10'])}, median {_recall(t['top1_median'])}, "
        f"p90 {_recall(t['top1_p90'])}"
    )


@db_group.command("vectors")
@_json_option
@_database_option
@click.option(
    "--sample",
    default=50,
    show_default=True,
    type=int,
    help="Stored vectors used as queries.",
)
@click.option("--k", "k", default=10, show_default=True, type=int, help="Neighbours per query.")
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Similarity threshold (default: [thresholds] similarity_threshold, 0.7).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample.")
@pass_app
def db_vectors(
    app: App,
    as_json: bool,
    database: str | None,
    sample: int,
    k: int,
    threshold: float | None,
    seed: int,
) -> None:
    """Embeddings: data quality, recall@k of the vector indexes, the similarity threshold."""
    from ..db import vectors

    with run_command():
        t = app.settings().thresholds
        value = t.similarity_threshold if threshold is None else threshold
        name = "--threshold" if threshold is not None else "[thresholds] similarity_threshold"
        vectors.check_parameters(sample, k, value, threshold_name=name)  # before connecting: exit 2
        with _inspector(app, database) as insp:
            rq = vectors.retrieval_quality(
                insp, sample=sample, k=k, seed=seed, threshold=value, target=t.recall_target
            )
    data = rq.as_dict()
    if as_json and not data["available"]:
        _note(str(data["message"]))  # stdout stays the JSON
    emit(data, as_json, _view)
