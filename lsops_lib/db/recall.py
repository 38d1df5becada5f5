"""Recall and the similarity threshold, from the answers (no SQL here: `db.vectors` asks
the database and hands the answers over), and `RetrievalQuality`, the inspection's result.

    per_query = recall(exact, found, k)      # tie-aware recall@k of each query
    mean, p10, low = summarize(per_query, k) # low: the mean's lower confidence bound
    ladder("hnsw", "m=16", k)                # the settings tried for a suggestion
    threshold_figures(out, exact, 0.7, n)    # share with a result, top-1 percentiles
    problems(rq)                             # what a person should look at, in sentences
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..stats import wilson_lower

__all__ = [
    "COLUMN_KEYS",
    "CONFIDENCE_Z",
    "CURVE_KEYS",
    "DEFAULT_K",
    "DEFAULT_SAMPLE",
    "HNSW_LADDER",
    "INDEX_KEYS",
    "THRESHOLD_KEYS",
    "TIE",
    "SAMPLE_POWER_Z",
    "RetrievalQuality",
    "answers_by_query",
    "design_effect",
    "exhaustive",
    "ladder",
    "neighbours",
    "lower_bound",
    "problems",
    "recall",
    "sample_needed",
    "summarize",
    "threshold_figures",
]

DEFAULT_SAMPLE = 50
DEFAULT_K = 10
HNSW_LADDER = (20, 40, 80, 160, 320, 640, 1000)  # hnsw.ef_search: 1 .. 1000
IVFFLAT_DEFAULT_LISTS = 100
# one-sided 97.5 % at each setting tried: the ladder tries several one after the other and
# recall is skewed (a few hard queries), so that the suggestion holds beyond its sample at
# 95 % or more (measured over 30 index builds with `design_effect`: at most 3.8 % wrong)
CONFIDENCE_Z = 1.96
# "about N would (--sample)": N queries show the target in ~4 samples of 5 (80 % power) when
# the recall is what this sample found (computed at the mean itself: ~1 in 2, measured)
SAMPLE_POWER_Z = 0.84
# recall means equal but for rounding (496 of 500 neighbours: 0.992 or 0.9919999999999999,
# as the per-query shares add up): equal, when settings are compared or a target is met
TIE = 1e-9
COLUMN_KEYS = """
    schema table column dims rows nulls zero_vectors duplicate_groups duplicate_rows
    duplicate_examples norm_min norm_median norm_max
""".split()
INDEX_KEYS = """
    schema index table column method opclass options bytes table_bytes k sample
    recall_at_k recall_p10 index_ms exact_ms setting current suggested
    suggested_recall sample_needed own_scans note
""".split()
THRESHOLD_KEYS = ["value", "sample", "share_with_result", "top1_p10", "top1_median", "top1_p90"]
CURVE_KEYS = ["index", "setting", "value", "recall_at_k", "recall_p10", "recall_low", "index_ms"]


def answers_by_query(frame: pd.DataFrame, keys: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Each query's answers without the query row itself, nearest first (NaN last)."""
    out: dict[str, list[tuple[str, float]]] = {key: [] for key in keys}
    for query, hit, distance in frame[["query", "hit", "distance"]].itertuples(index=False):
        if hit != query and query in out:
            d = float("nan") if distance is None else float(distance)
            out[query].append((str(hit), d))
    for key, hits in out.items():
        out[key] = sorted(hits, key=lambda h: (math.isnan(h[1]), h[1]))
    return out


def recall(
    exact: dict[str, list[tuple[str, float]]],
    found: dict[str, list[tuple[str, float]]],
    k: int,
) -> dict[str, float]:
    """recall@k per query: the share of the index's first k answers whose distance is
    within the exact k-th distance (a tie with the k-th is no miss). k shrinks to the rows
    there are; a query with no other row is left out."""
    out: dict[str, float] = {}
    for query, truth in exact.items():
        kk = min(int(k), len(truth))
        if kk == 0:
            continue
        kth = truth[kk - 1][1]
        if math.isnan(kth):
            kth = math.inf
        eps = 1e-6 * max(1.0, abs(kth)) if math.isfinite(kth) else 0.0
        answers = found.get(query, [])[:kk]
        hits = sum(1 for _, d in answers if not math.isnan(d) and d <= kth + eps)
        out[query] = hits / kk
    return out


def neighbours(exact: dict[str, list[tuple[str, float]]], k: int) -> int:
    """The neighbours each query has to find, the trials it counts for in `lower_bound`:
    k, or fewer where the column has fewer other rows with a vector (`recall`'s own k)."""
    found = [len(truth) for truth in exact.values() if truth]
    return max(1, min([int(k), *found]))


def summarize(
    per_query: dict[str, float], k: int, before: np.ndarray | None = None
) -> tuple[float | None, float | None, float | None]:
    """(mean, 10th percentile, lower confidence bound of the mean: `lower_bound`);
    `before`: the per-query recalls of the setting tried before this one, if any."""
    values = np.array(list(per_query.values()), dtype=float)
    if values.size == 0:
        return None, None, None
    return float(values.mean()), float(np.percentile(values, 10)), lower_bound(values, k, before)


def lower_bound(values: np.ndarray, k: int, before: np.ndarray | None = None) -> float:
    """The one-sided lower confidence bound (`CONFIDENCE_Z`) of the mean recall@k of the
    queries the sample stands for. Each query finds some of its k neighbours: the sample is
    n * k neighbour trials, clustered by query, so the bound is Wilson's on those trials
    with their number divided by the design effect (`design_effect`), at Student's t for
    n - 1 degrees of freedom. The plain mean - 1.645 standard errors trusted a sample with
    little spread: 50 queries that all found every neighbour gave a bound of 1.0, and
    skewed recalls (a few hard queries) made it name a setting below the target in 10-15 %
    of samples, ~40 % near 0.999 (tests/test_vectors.py)."""
    n = int(values.size)
    p = float(values.mean())
    return float(wilson_lower(p, n * k / design_effect(values, k, before), _t(n - 1)))


def design_effect(values: np.ndarray, k: int, before: np.ndarray | None = None) -> float:
    """How much the queries miss together: the sample's variance over a binomial's
    p(1-p)/k, at least 1, and at least that of `before`, the same queries at the setting
    tried before this one. One sample's spread is a noisy measure of it, and none at all
    where the sample found every neighbour; the hard queries of one setting are the hard
    queries of the next. With its own spread only, the rule named a setting below the
    target in up to 10 % of samples of 50 (a build of the test's IVFFlat index, 0.98625 at
    probes = 2: its misses fall on ~15 of 400 queries, and a sample that missed them all
    showed none); with the setting before's, at most 3.8 % over 30 builds and samples of 30
    to 100 queries, for suggestions about half a ladder step higher."""
    design = _design(values, k)
    if before is not None and before.size:
        design = max(design, _design(before, k))
    return design


def sample_needed(
    values: np.ndarray, k: int, target: float, most: int, before: np.ndarray | None = None
) -> int | None:
    """The number of queries (a multiple of 10, at most `most`) whose `lower_bound` would
    reach `target` in ~4 samples of 5 if recall is what these found (their mean, their
    design effect): the bound at a mean `SAMPLE_POWER_Z` of its standard errors below
    this one, as a sample of that size finds it in 1 case of 5. Computed at the mean
    itself, the number asked for gave a suggestion in 49 of 96 reruns on one HNSW index
    (target 0.99), 79 of 96 this way. Queries that all found every neighbour have no
    spread: the number is the bound's own. None: the mean is below the target, or more
    than `most` queries would be needed."""
    if values.size == 0 or float(values.mean()) < target - TIE:
        return None
    p, design = float(values.mean()), design_effect(values, k, before)
    for n in range(10, most + 1, 10):
        trials = n * k / design
        low_mean = p - SAMPLE_POWER_Z * math.sqrt(p * (1.0 - p) / trials)
        if wilson_lower(low_mean, trials, _t(n - 1)) >= target:
            return n
    return None


def _design(values: np.ndarray, k: int) -> float:
    """The design effect of one sample: its variance over a binomial's p(1-p)/k, >= 1."""
    p = float(values.mean())
    binomial = p * (1.0 - p) / k
    spread = float(values.var(ddof=1)) if values.size > 1 else 0.0
    return max(1.0, spread / binomial) if binomial > 0 else 1.0


def _t(df: int) -> float:
    """Student's t at `CONFIDENCE_Z`, by its Cornish-Fisher expansion (2.0096 at 49
    degrees of freedom, as the tables)."""
    df = max(df, 1)
    z = CONFIDENCE_Z
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ladder(method: str, options: str, k: int) -> list[int]:
    """The settings tried for a suggestion, smallest first: `HNSW_LADDER` above k for HNSW,
    powers of two up to `lists` for IVFFlat."""
    if method == "hnsw":
        return [v for v in HNSW_LADDER if v > k]
    lists = _lists(options)
    values, v = [], 1
    while v < lists:
        values.append(v)
        v *= 2
    return [*values, lists]


def exhaustive(method: str, options: str, value: int) -> bool:
    """True when the setting makes the index search everything: IVFFlat probing all its
    lists. Its misses then owe nothing to the lists a smaller setting skipped, so its bound
    takes no design effect from the setting before (`lower_bound`)."""
    return method == "ivfflat" and value >= _lists(options)


def _lists(options: str) -> int:
    """An IVFFlat index's `lists` from its options ("lists=100"), else pgvector's default."""
    lists = IVFFLAT_DEFAULT_LISTS
    for part in str(options or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip() == "lists" and value.strip().isdigit():
            lists = int(value)
    return lists


def threshold_figures(
    out: RetrievalQuality,
    truth: dict[str, list[tuple[str, float]]],
    threshold: float,
    sample: int,
) -> None:
    """The share of queries whose nearest other row has a cosine similarity at or above
    the threshold (below it semantic_search returns no context), and the top-1 similarity's
    10th, 50th and 90th percentiles."""
    top1 = []
    for query, hits in truth.items():
        d = hits[0][1] if hits else float("nan")
        top1.append({"query": query, "similarity": 1.0 - d if not math.isnan(d) else None})
    frame = pd.DataFrame(top1, columns=["query", "similarity"])
    values = pd.to_numeric(frame["similarity"], errors="coerce")
    known = values.dropna().to_numpy(dtype=float)
    with_result = int((known >= threshold).sum())
    out.top1 = frame
    frame.attrs.update(threshold=float(threshold), sample=int(sample))  # plots.similarity_threshold
    out.threshold = {
        "value": float(threshold),
        "sample": int(sample),
        "share_with_result": with_result / sample if sample else None,
        "top1_p10": float(np.percentile(known, 10)) if known.size else None,
        "top1_median": float(np.percentile(known, 50)) if known.size else None,
        "top1_p90": float(np.percentile(known, 90)) if known.size else None,
    }


@dataclass
class RetrievalQuality:
    """`retrieval_quality`'s answer. `available` False: pgvector missing (`message`)."""

    available: bool
    message: str | None = None
    sample: int = DEFAULT_SAMPLE
    k: int = DEFAULT_K
    seed: int = 0
    target: float = 0.95
    columns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMN_KEYS))
    indexes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=INDEX_KEYS))
    curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CURVE_KEYS))
    threshold: dict[str, Any] | None = None
    top1: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["query", "similarity"])
    )
    queries: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON of `lsops db vectors`: available, message, columns, indexes, threshold,
        notes."""
        columns = [{k: _plain(r[k]) for k in COLUMN_KEYS} for r in self.columns.to_dict("records")]
        indexes = []
        for r in self.indexes.to_dict("records"):
            tried = self.curves[self.curves["index"] == r["index"]] if len(self.curves) else None
            indexes.append(
                {
                    **{
                        k: _plain(r[k])
                        for k in INDEX_KEYS
                        if k
                        not in (
                            "setting",
                            "current",
                            "suggested",
                            "suggested_recall",
                            "sample_needed",
                        )
                    },
                    "suggested": {
                        "setting": _plain(r["setting"]),
                        "current": _plain(r["current"]),
                        "value": _plain(r["suggested"]),
                        "recall_at_k": _plain(r["suggested_recall"]),
                        # no value: the queries that would show a setting found on this
                        # sample reaching the target with confidence (the note says it)
                        "sample_needed": _plain(r["sample_needed"]),
                        "tried": [
                            {"value": _plain(t["value"]), "recall_at_k": _plain(t["recall_at_k"])}
                            for t in (tried.to_dict("records") if tried is not None else [])
                        ],
                    },
                }
            )
        threshold = None
        if self.threshold is not None:
            threshold = {k: self.threshold[k] for k in THRESHOLD_KEYS}
        return {
            "available": self.available,
            "message": self.message,
            "columns": columns,
            "indexes": indexes,
            "threshold": threshold,
            "notes": list(self.notes),
        }

    def summary(self) -> dict[str, Any]:
        """Flat key figures: the searched column's recall and threshold share."""
        first = self.indexes.iloc[0] if len(self.indexes) else None
        col = self.columns.iloc[0] if len(self.columns) else None
        t = self.threshold or {}
        return {
            "vectors_available": self.available,
            "vector_columns": int(len(self.columns)),
            "vector_index": None if first is None else str(first["index"]),
            "recall_at_k": None if first is None else _plain(first["recall_at_k"]),
            "recall_k": self.k,
            "suggested_setting": None if first is None else _plain(first["suggested"]),
            "similarity_threshold": t.get("value"),
            "threshold_share_with_result": t.get("share_with_result"),
            "top1_median": t.get("top1_median"),
            "zero_vectors": None if col is None else _plain(col["zero_vectors"]),
            "duplicate_groups": None if col is None else _plain(col["duplicate_groups"]),
        }


def _plain(value: Any) -> Any:
    """A cell as a plain Python value (NaN / NA -> None, numpy scalars -> Python)."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def problems(rq: RetrievalQuality) -> list[str]:
    """What a person should look at, one sentence each (for reports): zero vectors,
    duplicates, norms far from 1, recall below the target, a threshold in the crowd."""
    out: list[str] = []
    for c in rq.columns.to_dict("records"):
        name = f"{c['table']}.{c['column']}"
        if c["zero_vectors"]:
            out.append(f"{name}: {c['zero_vectors']:,} zero vectors (no direction: never found)")
        if c["duplicate_groups"]:
            out.append(
                f"{name}: {c['duplicate_rows']:,} rows share {c['duplicate_groups']:,} "
                "embeddings (one embedding stored for several entities)"
            )
        for bound in ("norm_min", "norm_max"):
            value = c[bound]
            if value is not None and not pd.isna(value) and abs(float(value) - 1.0) > 0.01:
                out.append(
                    f"{name}: a norm of {float(value):.3g} (OpenAI embeddings are unit length: "
                    "a wrong model or truncated input?)"
                )
                break
    for r in rq.indexes.to_dict("records"):
        value = r["recall_at_k"]
        if value is not None and not pd.isna(value) and float(value) < rq.target - TIE:
            if r["suggested"] is not None and not pd.isna(r["suggested"]):
                fix = f"; SET {r['setting']} = {int(r['suggested'])} reaches it"
            else:  # why not: rebuild the index, or a larger sample would show it
                fix = f"; {r['note']}" if r["note"] else ""
            out.append(
                f"{r['index']}: recall@{rq.k} {_below(float(value), rq.target)} at "
                f"{r['setting']} = {_plain(r['current'])}, below {rq.target:g}{fix}"
            )
    return out


def _below(value: float, target: float) -> str:
    """A recall below the target, with the digits that keep it below (0.996 under 0.999
    is 0.996, never 1.00)."""
    for digits in range(2, 13):
        text = f"{value:.{digits}f}"
        if float(text) < target:
            return text
    return repr(value)
