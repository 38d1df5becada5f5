"""Retrieval quality of the embeddings (pgvector), read-only: the runbook's "Incorrect
results: review context retrieval, check similarity thresholds, verify data quality".

    rq = db.vectors.retrieval_quality(insp, sample=50, k=10, seed=0, threshold=0.7)
    rq.columns      every `vector` column: rows, NULLs, zero vectors, duplicates, norms, dims
    rq.indexes      every HNSW / IVFFlat index: recall@k at the session's setting, the
                    smallest ef_search / probes reaching the target (a suggestion)
    rq.curves       recall per setting tried (the chart "recall vs ef_search")
    rq.threshold    the share of queries whose nearest other row is at or above the
                    similarity threshold, and the top-1 similarity's distribution
    rq.as_dict()    the JSON of `lsops db vectors`

How recall is measured: `sample` stored vectors (non-NULL, non-zero, chosen by
md5(key || seed): repeatable with the same seed) are the queries. For each, the index's
answer (`ORDER BY embedding <op> q LIMIT k + 1`, the index forced with `enable_seqscan =
off` and checked with EXPLAIN, at the session's `hnsw.ef_search` / `ivfflat.probes`) is
compared with the exact answer (the same ordering wrapped as `(embedding <op> q) + 0`,
which no index can serve: a sequential scan). The query row itself is left out of both;
an answer counts as found when its distance is within the exact k-th distance (ties are
not misses). recall@k is the mean over the queries, with its 10th percentile.

The suggestion: settings on a ladder (`HNSW_LADDER`, powers of two up to `lists` for
IVFFlat) are tried with `SET LOCAL`, smallest first; the suggested one is the smallest
whose recall reaches `recall_target` with 95 % confidence (`recall.lower_bound`: Wilson's
bound on the neighbours found, their number divided by the design effect of queries that
miss together, this setting's or the one tried before's if larger, at 97.5 % for each
setting the ladder tries), so that it holds beyond the sample it was measured on.

Everything runs in ONE transaction, READ ONLY and REPEATABLE READ (the index's answer and
the exact one see the same rows), under the inspection's `statement_timeout`, rolled back
at the end: no `SET LOCAL` outlives it and nothing is written. Without pgvector every
function raises `ExtensionMissing` (`ENABLE_HINT`).

The recall test is the one inspection that must scan an index, and an index scan counts in
`pg_stat_user_indexes.idx_scan` (the unused-index list) even in a transaction rolled back.
So the transaction first turns the statistics counters off for itself (`SET LOCAL
track_counts = off`, `Transaction.stop_counting`): a superuser may, and so may a role
granted it (PostgreSQL 15+: `GRANT SET ON PARAMETER track_counts TO <role>`); its scans
then count nowhere. A role that may not leaves unmeasured every index the statistics show
never scanned (`scans` 0: measuring it would make it look used, its `note` says so) and
measures only indexes already used, whose idx_scan then grows by its own scans: each
index's `own_scans` (read from `pg_stat_get_xact_numscans` before and after) says how many,
and a note in `notes`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .. import fmt
from ..exceptions import ExtensionMissing, ParameterError
from .connect import Inspector
from .recall import (
    COLUMN_KEYS,
    CURVE_KEYS,
    DEFAULT_K,
    DEFAULT_SAMPLE,
    HNSW_LADDER,
    INDEX_KEYS,
    TIE,
    RetrievalQuality,
    answers_by_query,
    design_effect,
    exhaustive,
    ladder,
    neighbours,
    problems,
    recall,
    sample_needed,
    summarize,
    threshold_figures,
)

__all__ = [
    "Asker",
    "DEFAULT_K",
    "DEFAULT_SAMPLE",
    "ENABLE_HINT",
    "HNSW_LADDER",
    "RetrievalQuality",
    "Transaction",
    "UNCOUNTED_HINT",
    "check_parameters",
    "column_quality",
    "duplicate_vectors",
    "exact_neighbours",
    "index_neighbours",
    "own_scans",
    "pgvector_schema",
    "plan_indexes",
    "problems",
    "recall",
    "require_pgvector",
    "retrieval_quality",
    "sample_keys",
    "transaction",
    "vector_columns",
    "vector_index_catalog",
]

MAX_SAMPLE = 1000
MAX_K = 100
DUPLICATE_EXAMPLES = 5  # groups listed with their ids
EXAMPLE_IDS = 5  # ids listed per group
ENABLE_HINT = (
    "pgvector is not installed in this database: no vector column to check "
    "(CREATE EXTENSION vector; Supabase: Database > Extensions, schema 'extensions')"
)
SETTINGS = {"hnsw": "hnsw.ef_search", "ivfflat": "ivfflat.probes"}
# the distance operator each operator class orders by; cosine is the API's semantic_search
OPERATORS = {
    "vector_cosine_ops": "<=>",
    "vector_l2_ops": "<->",
    "vector_ip_ops": "<#>",
    "vector_l1_ops": "<+>",
}
COSINE = "<=>"
_SAVEPOINT = "lsops_track_counts"
# what a role that may not turn track_counts off needs to measure a never-scanned index
UNCOUNTED_HINT = (
    "a superuser, or a role granted SET on track_counts (PostgreSQL 15+: GRANT SET ON "
    "PARAMETER track_counts TO <role>), measures it without counting"
)


class Asker(Protocol):
    """What the question functions need: an `Inspector` or an open `Transaction`."""

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame: ...


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _relation(schema: str, table: str) -> str:
    return f"{_ident(schema)}.{_ident(table)}"


# --- one read-only transaction ---------------------------------------------------------------


class Transaction:
    """Statements on one open READ ONLY, REPEATABLE READ transaction (see `transaction`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import sqlalchemy as sa

        result = self._conn.execute(sa.text(sql), params or {})
        if not result.returns_rows:
            return pd.DataFrame()
        rows = result.fetchall()
        return pd.DataFrame([tuple(r) for r in rows], columns=list(result.keys()))

    def timed(self, sql: str, params: dict[str, Any] | None = None) -> tuple[pd.DataFrame, float]:
        """The answer and the seconds it took (sent, run and fetched)."""
        started = time.perf_counter()
        df = self.frame(sql, params)
        return df, time.perf_counter() - started

    def set_local(self, name: str, value: int | str) -> None:
        """`SET LOCAL name = value` for this transaction only (`name` from `SETTINGS` or a
        planner switch; `value` an integer or on/off)."""
        if name not in {*SETTINGS.values(), "enable_seqscan"}:
            raise ValueError(f"not a setting lsops changes: {name}")
        text = str(int(value)) if isinstance(value, int) else str(value)
        if text not in ("on", "off") and not text.isdigit():
            raise ValueError(f"not a setting value: {value!r}")
        self._conn.exec_driver_sql(f"SET LOCAL {name} = {text}")

    def setting(self, name: str) -> str | None:
        df = self.frame("SELECT current_setting(:name, true) AS value", {"name": name})
        return None if df.empty else df.iat[0, 0]

    def stop_counting(self) -> bool:
        """`SET LOCAL track_counts = off`: nothing this transaction reads counts in the
        statistics views (its index scans never make an index look used). True when the
        counters are off; False when this role may not turn them off (only a superuser or
        a role granted SET on the parameter may), the transaction unharmed (a savepoint)."""
        self._conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
        try:
            self._conn.exec_driver_sql("SET LOCAL track_counts = off")
        except DBAPIError:
            self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        else:
            self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        return self.setting("track_counts") == "off"


@contextmanager
def transaction(insp: Inspector) -> Iterator[Transaction]:
    """ONE transaction on the inspector's database: READ ONLY (a write fails), REPEATABLE
    READ (every statement sees the same rows), the inspection's statement_timeout; always
    rolled back, so that no `SET LOCAL` outlives it. Failures: `DatabaseError`, one line."""
    try:
        with insp._session() as conn:  # READ ONLY + statement_timeout, per transaction
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            try:
                yield Transaction(conn)
            finally:
                conn.rollback()
    except DBAPIError as exc:
        raise insp._error(exc, "query failed on") from None
    except SQLAlchemyError as exc:
        raise insp._error(exc, "cannot use") from None


# --- the questions ---------------------------------------------------------------------------


def pgvector_schema(q: Asker) -> str | None:
    """The schema pgvector is installed in (`extensions` on Supabase), or None."""
    df = q.frame(
        """
        SELECT n.nspname FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'vector'
        """
    )
    return None if df.empty else str(df.iat[0, 0])


def vector_columns(q: Asker, ext: str) -> pd.DataFrame:
    """Every `vector` column of the user tables (partitions counted in their parent), the
    searched one first (`context_embeddings.embedding`). Columns: schema, table, column,
    dims (declared; None when the column has no dimension), key (the single-column primary
    key, else `ctid`), key_type."""
    df = q.frame(
        """
        SELECT n.nspname AS schema, c.relname AS "table", a.attname AS "column",
               NULLIF(a.atttypmod, -1) AS dims,
               pk.attname AS key, pk.key_type
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type ty ON ty.oid = a.atttypid
        JOIN pg_namespace tn ON tn.oid = ty.typnamespace
        LEFT JOIN LATERAL (
            SELECT pa.attname, format_type(pa.atttypid, pa.atttypmod) AS key_type
            FROM pg_index x
            JOIN pg_attribute pa ON pa.attrelid = x.indrelid AND pa.attnum = x.indkey[0]
            WHERE x.indrelid = c.oid AND x.indisprimary AND x.indnatts = 1
        ) pk ON true
        WHERE ty.typname = 'vector' AND tn.nspname = :ext
          AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'm', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg_temp%'
        ORDER BY (c.relname = 'context_embeddings' AND a.attname = 'embedding') DESC,
                 n.nspname, c.relname, a.attname
        """,
        {"ext": ext},
    )
    if df.empty:
        return pd.DataFrame(columns=["schema", "table", "column", "dims", "key", "key_type"])
    df["dims"] = df["dims"].astype("Int64")
    no_key = df["key"].isna()
    df.loc[no_key, "key_type"] = "tid"
    df["key"] = df["key"].astype(object).where(~no_key, "ctid")
    return df.reset_index(drop=True)


def _key(column: Any) -> str:
    return "ctid" if column.key == "ctid" else _ident(column.key)


def column_quality(q: Asker, column: Any, ext: str) -> dict[str, Any]:
    """One vector column's data: rows, nulls, zero_vectors, the norm's minimum, median and
    maximum over the non-zero vectors (OpenAI embeddings are unit length), and the
    dimensions found (dims_min, dims_max)."""
    col, rel, e = _ident(column.column), _relation(column.schema, column.table), _ident(ext)
    df = q.frame(
        f"""
        SELECT count(*) AS rows,
               count(*) FILTER (WHERE v IS NULL) AS nulls,
               count(*) FILTER (WHERE norm = 0) AS zero_vectors,
               min(norm) FILTER (WHERE norm > 0) AS norm_min,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY norm) FILTER (WHERE norm > 0)
                   AS norm_median,
               max(norm) FILTER (WHERE norm > 0) AS norm_max,
               min({e}.vector_dims(v)) AS dims_min,
               max({e}.vector_dims(v)) AS dims_max
        FROM (SELECT {col} AS v, {e}.vector_norm({col}) AS norm FROM {rel}) s
        """
    )
    row = df.iloc[0]
    out: dict[str, Any] = {}
    for name in ("rows", "nulls", "zero_vectors", "dims_min", "dims_max"):
        out[name] = None if pd.isna(row[name]) else int(row[name])
    for name in ("norm_min", "norm_median", "norm_max"):
        out[name] = None if pd.isna(row[name]) else float(row[name])
    return out


def duplicate_vectors(q: Asker, column: Any, ext: str) -> dict[str, Any]:
    """One embedding stored for several rows (zero vectors left out: they are counted on
    their own): groups, rows (in those groups) and examples (the largest groups first,
    up to DUPLICATE_EXAMPLES groups of up to EXAMPLE_IDS ids each)."""
    col, rel, e = _ident(column.column), _relation(column.schema, column.table), _ident(ext)
    df = q.frame(
        f"""
        SELECT count(*) OVER () AS groups, sum(n) OVER () AS rows, n, ids
        FROM (SELECT count(*) AS n, array_agg({_key(column)}::text ORDER BY {_key(column)}::text)
                  AS ids
              FROM {rel}
              WHERE {col} IS NOT NULL AND {e}.vector_norm({col}) > 0
              GROUP BY {col}
              HAVING count(*) > 1) d
        ORDER BY n DESC, ids
        LIMIT :limit
        """,
        {"limit": DUPLICATE_EXAMPLES},
    )
    if df.empty:
        return {"groups": 0, "rows": 0, "examples": []}
    return {
        "groups": int(df["groups"].iloc[0]),
        "rows": int(df["rows"].iloc[0]),
        "examples": [list(ids)[:EXAMPLE_IDS] for ids in df["ids"]],
    }


def vector_index_catalog(q: Asker) -> pd.DataFrame:
    """Every HNSW / IVFFlat index: schema, index, table, column (None for an expression),
    method, opclass, options (`m=16, ef_construction=64`; empty: the defaults), bytes,
    table_bytes, valid, partial, oid, scans (`pg_stat_user_indexes.idx_scan`: a
    partitioned index's is the sum of its partitions')."""
    df = q.frame(
        """
        SELECT n.nspname AS schema, i.relname AS "index", t.relname AS "table",
               a.attname AS "column", am.amname AS method, opc.opcname AS opclass,
               COALESCE(array_to_string(i.reloptions, ', '), '') AS options,
               pg_relation_size(i.oid) AS bytes,
               pg_total_relation_size(t.oid) AS table_bytes,
               x.indisvalid AS valid,
               x.indpred IS NOT NULL AS partial,
               i.oid::bigint AS oid,
               (CASE WHEN i.relkind = 'I'
                     THEN (SELECT COALESCE(sum(pg_stat_get_numscans(p.relid)), 0)
                           FROM pg_partition_tree(i.oid) p)
                     ELSE pg_stat_get_numscans(i.oid) END)::bigint AS scans
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = i.relam
        JOIN pg_opclass opc ON opc.oid = x.indclass[0]
        LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
                                 AND x.indkey[0] <> 0
        WHERE am.amname IN ('hnsw', 'ivfflat')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        ORDER BY n.nspname, t.relname, i.relname
        """
    )
    for name in ("bytes", "table_bytes", "oid", "scans"):
        if name in df:
            df[name] = df[name].astype("int64")
    return df


def own_scans(q: Asker, oids: list[int]) -> dict[int, int]:
    """The scans of each index (by oid) this transaction has counted so far and not yet
    reported (`pg_stat_get_xact_numscans`): read before and after the recall test, the
    difference is what the test adds to `idx_scan` (0 with `track_counts` off)."""
    if not oids:
        return {}
    df = q.frame(
        """
        SELECT o::bigint AS oid, pg_stat_get_xact_numscans(o) AS scans
        FROM unnest(CAST(:oids AS oid[])) o
        """,
        {"oids": [int(o) for o in oids]},
    )
    return {int(o): int(n) for o, n in zip(df["oid"], df["scans"], strict=True)}


def sample_keys(q: Asker, column: Any, ext: str, n: int, seed: int) -> list[str]:
    """The query rows: up to n keys (as text) of rows with a non-NULL, non-zero vector,
    in md5(key || seed) order: the same seed, the same sample."""
    col, rel, e = _ident(column.column), _relation(column.schema, column.table), _ident(ext)
    key = _key(column)
    df = q.frame(
        f"""
        SELECT {key}::text AS key FROM {rel}
        WHERE {col} IS NOT NULL AND {e}.vector_norm({col}) > 0
        ORDER BY md5({key}::text || :salt), {key}::text
        LIMIT :n
        """,
        {"salt": f":{int(seed)}", "n": int(n)},
    )
    return [str(k) for k in df["key"]] if not df.empty else []


def _neighbours_sql(column: Any, ext: str, op: str, *, exact: bool) -> str:
    col, rel = _ident(column.column), _relation(column.schema, column.table)
    key = _key(column)
    operator = f"OPERATOR({_ident(ext)}.{op})"
    order = f"(s.{col} {operator} q.v) + 0" if exact else f"s.{col} {operator} q.v"
    where = f"WHERE s.{col} IS NOT NULL" if exact else ""
    return f"""
        SELECT q.key::text AS query, a.hit::text AS hit, a.distance
        FROM (SELECT {key} AS key, {col} AS v FROM {rel}
              WHERE {key} = ANY(CAST(:keys AS {column.key_type}[]))) q
        CROSS JOIN LATERAL (
            SELECT s.{key} AS hit, s.{col} {operator} q.v AS distance
            FROM {rel} s {where}
            ORDER BY {order}
            LIMIT :limit
        ) a
    """


def exact_neighbours(
    q: Transaction, column: Any, ext: str, op: str, keys: list[str], k: int
) -> tuple[pd.DataFrame, float]:
    """The exact k + 1 nearest rows of each query (a sequential scan: no index can order
    by `(a <op> b) + 0`): query, hit, distance; and the seconds it took."""
    return q.timed(
        _neighbours_sql(column, ext, op, exact=True), {"keys": keys, "limit": int(k) + 1}
    )


def index_neighbours(
    q: Transaction, column: Any, ext: str, op: str, keys: list[str], k: int
) -> tuple[pd.DataFrame, float]:
    """The k + 1 nearest rows of each query as the index answers them (at the
    transaction's ef_search / probes): query, hit, distance; and the seconds it took."""
    return q.timed(
        _neighbours_sql(column, ext, op, exact=False), {"keys": keys, "limit": int(k) + 1}
    )


def plan_indexes(q: Transaction, column: Any, ext: str, op: str, keys: list[str], k: int) -> set:
    """The indexes the planner uses for the index's answer (EXPLAIN, not run)."""
    df = q.frame(
        "EXPLAIN (FORMAT JSON) " + _neighbours_sql(column, ext, op, exact=False),
        {"keys": keys[:1], "limit": int(k) + 1},
    )
    plan = df.iat[0, 0] if not df.empty else []
    if isinstance(plan, str):
        plan = json.loads(plan)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Index Name" in node:
                found.add(str(node["Index Name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


# --- the whole inspection --------------------------------------------------------------------


def check_parameters(
    sample: int, k: int, threshold: float, *, threshold_name: str = "the similarity threshold"
) -> None:
    """ParameterError (one line) for a sample, k or threshold out of range; the threshold
    named `threshold_name` (where it came from: `--threshold`, a setting)."""
    if not 1 <= int(sample) <= MAX_SAMPLE:
        raise ParameterError(f"--sample must be between 1 and {MAX_SAMPLE}, not {sample}")
    if not 1 <= int(k) <= MAX_K:
        raise ParameterError(f"--k must be between 1 and {MAX_K}, not {k}")
    if not -1.0 <= float(threshold) <= 1.0:
        raise ParameterError(
            f"{threshold_name} is a cosine similarity (-1 .. 1), not "
            # NaN as given ("nan"), never the dash of a missing value
            f"{threshold if math.isnan(float(threshold)) else fmt.number(threshold)}"
        )


def _no_suggestion(
    setting: str,
    values: list[int],
    target: float,
    best: tuple[float, int, Any, Any] | None,
    needed: int | None,
    most: int,
) -> str:
    """Why no setting is suggested: the index misses the target at every setting (rebuild
    it), or a setting found it on this sample (`best`) but too few queries show it with
    confidence: `needed` queries would (`sample_needed`), or none up to `most` (what
    `--sample` allows, or the rows with a vector the column has to ask with)."""
    if best is not None and best[0] >= target - TIE:
        mean, value, per_query, _before = best
        these = "this" if len(per_query) == 1 else "these"
        found = (
            f"{setting} = {value} finds recall {mean:.3f} on {these} "
            f"{fmt.counted(len(per_query), 'query', 'queries')}, but so few cannot show "
            f"{target:g} with confidence"
        )
        if needed is not None:
            return found + f": about {needed} would (--sample)"
        if most < MAX_SAMPLE:  # the column has fewer rows to ask with than --sample allows
            return found + f", nor could all {fmt.counted(most, 'row')} with a vector"
        return found + f", nor could the {MAX_SAMPLE:,} queries --sample allows"
    return (
        f"no {setting} up to {values[-1]} reaches recall {target:g} with confidence: "
        "rebuild the index with larger parameters"
    )


def _most(rows: int | None) -> int:
    """The largest sample a column allows: `MAX_SAMPLE`, or fewer rows to ask with."""
    return MAX_SAMPLE if rows is None else max(0, min(MAX_SAMPLE, int(rows)))


def retrieval_quality(
    insp: Inspector,
    *,
    sample: int = DEFAULT_SAMPLE,
    k: int = DEFAULT_K,
    seed: int = 0,
    threshold: float = 0.7,
    target: float = 0.95,
) -> RetrievalQuality:
    """Data quality of every vector column, recall@k of every vector index, the similarity
    threshold: in ONE read-only transaction. pgvector missing: `available=False` with
    `message` (not an error). Bad parameters: ParameterError; the database failing:
    DatabaseError."""
    check_parameters(sample, k, threshold)
    out = RetrievalQuality(
        available=True, sample=int(sample), k=int(k), seed=int(seed), target=float(target)
    )
    with transaction(insp) as tx:
        uncounted = tx.stop_counting()  # first: nothing below counts as use when it can
        ext = pgvector_schema(tx)
        if ext is None:
            out.available, out.message = False, ENABLE_HINT
            return out
        columns = vector_columns(tx, ext)
        if columns.empty:
            out.notes.append("pgvector is installed but no table has a vector column")
            return out
        _quality(tx, out, columns, ext)
        catalog = vector_index_catalog(tx)
        keys = {
            (c.schema, c.table, c.column): sample_keys(tx, c, ext, sample, seed)
            for c in columns.itertuples(index=False)
        }
        out.queries = keys
        _measure(tx, out, columns, catalog, keys, ext, threshold, uncounted=uncounted)
    return out


def _quality(tx: Transaction, out: RetrievalQuality, columns: pd.DataFrame, ext: str) -> None:
    rows = []
    for c in columns.itertuples(index=False):
        q = column_quality(tx, c, ext)
        d = duplicate_vectors(tx, c, ext)
        dims = int(c.dims) if not pd.isna(c.dims) else q["dims_max"]
        if pd.isna(c.dims) and q["dims_min"] != q["dims_max"]:
            out.notes.append(
                f"{c.table}.{c.column}: vectors of {q['dims_min']} to {q['dims_max']} dimensions"
            )
        rows.append(
            {
                "schema": c.schema,
                "table": c.table,
                "column": c.column,
                "dims": dims,
                "rows": q["rows"],
                "nulls": q["nulls"],
                "zero_vectors": q["zero_vectors"],
                "duplicate_groups": d["groups"],
                "duplicate_rows": d["rows"],
                "duplicate_examples": d["examples"],
                "norm_min": q["norm_min"],
                "norm_median": q["norm_median"],
                "norm_max": q["norm_max"],
            }
        )
    out.columns = pd.DataFrame(rows, columns=COLUMN_KEYS)


def _measure(
    tx: Transaction,
    out: RetrievalQuality,
    columns: pd.DataFrame,
    catalog: pd.DataFrame,
    keys: dict[tuple[str, str, str], list[str]],
    ext: str,
    threshold: float,
    *,
    uncounted: bool = False,
) -> None:
    """Recall of every index of `catalog`. `uncounted`: the transaction's statistics
    counters are off (`Transaction.stop_counting`); if not, a never-scanned index is left
    unmeasured (its scans would make it look used) and each index's `own_scans` says how
    many scans the test added to its idx_scan."""
    k = out.k
    scans_before = own_scans(tx, [int(o) for o in catalog["oid"]]) if len(catalog) else {}
    by_name = {(c.schema, c.table, c.column): c for c in columns.itertuples(index=False)}
    exact_cache: dict[tuple[tuple[str, str, str], str], tuple[dict, float]] = {}

    def exact(where: tuple[str, str, str], op: str) -> tuple[dict, float]:
        if (where, op) not in exact_cache:
            frame, seconds = exact_neighbours(tx, by_name[where], ext, op, keys[where], k)
            exact_cache[(where, op)] = (answers_by_query(frame, keys[where]), seconds)
        return exact_cache[(where, op)]

    # the exact answers first: a sequential scan, before the index is forced
    measurable = []
    rows: dict[str, dict[str, Any]] = {}
    for ix in catalog.itertuples(index=False):
        where = (ix.schema, ix.table, ix.column)
        op = OPERATORS.get(str(ix.opclass))
        note = None
        if ix.column is None or pd.isna(ix.column):
            note = "an index on an expression: recall not measured"
        elif where not in by_name:
            note = f"operator class {ix.opclass}: not a vector column, recall not measured"
        elif op is None:
            note = f"operator class {ix.opclass}: recall not measured"
        elif not bool(ix.valid):
            note = "invalid index (a failed build): recall not measured"
        elif bool(ix.partial):
            note = "a partial index: recall not measured"
        elif not keys[where]:
            note = "no non-NULL, non-zero vector to query with"
        elif not uncounted and int(ix.scans) == 0:
            note = (
                "never scanned (idx_scan 0): recall not measured, its scans would make it "
                f"look used to the unused-index check; {UNCOUNTED_HINT}"
            )
        rows[ix.index] = {
            "schema": ix.schema,
            "index": ix.index,
            "table": ix.table,
            "column": None if pd.isna(ix.column) else ix.column,
            "method": ix.method,
            "opclass": ix.opclass,
            "options": ix.options,
            "bytes": int(ix.bytes),
            "table_bytes": int(ix.table_bytes),
            "k": k,
            "sample": len(keys.get(where, [])),
            "recall_at_k": None,
            "recall_p10": None,
            "index_ms": None,
            "exact_ms": None,
            "setting": SETTINGS.get(str(ix.method)),
            "current": None,
            "suggested": None,
            "suggested_recall": None,
            "sample_needed": None,
            "own_scans": 0,
            "note": note,
        }
        if note is None:
            assert op is not None
            truth, seconds = exact(where, op)
            rows[ix.index]["exact_ms"] = seconds * 1000 / max(1, len(keys[where]))
            measurable.append((ix, where, op))
    if out.columns is not None and len(out.columns):
        first = out.columns.iloc[0]
        where = (first["schema"], first["table"], first["column"])
        if keys.get(where):
            truth, _ = exact(where, COSINE)
            threshold_figures(out, truth, threshold, len(keys[where]))

    # the index's answers: forced (enable_seqscan off), first at the session's settings
    tx.set_local("enable_seqscan", "off")
    found_at_default: dict[str, dict[str, float]] = {}
    for ix, where, op in measurable:
        row = rows[ix.index]
        used = plan_indexes(tx, by_name[where], ext, op, keys[where], k)
        if ix.index not in used:
            row["note"] = (
                f"the planner answers with {', '.join(sorted(used)) or 'no index'}, "
                "not this index: recall not measured"
            )
            continue
        truth, _ = exact(where, op)
        if not any(truth.values()):
            row["note"] = "no other row with a vector to find: recall not measured"
            continue
        frame, seconds = index_neighbours(tx, by_name[where], ext, op, keys[where], k)
        per_query = recall(truth, answers_by_query(frame, keys[where]), k)
        mean, p10, _low = summarize(per_query, k)
        row.update(
            recall_at_k=mean,
            recall_p10=p10,
            index_ms=seconds * 1000 / max(1, len(keys[where])),
            current=_int(tx.setting(str(row["setting"]))),
        )
        found_at_default[ix.index] = per_query
    curves = []
    for ix, where, op in measurable:
        row = rows[ix.index]
        if ix.index not in found_at_default:
            continue
        truth, _ = exact(where, op)
        kk = neighbours(truth, k)  # k, or the fewer other rows a small column has
        setting = str(row["setting"])
        # the ladder's highest mean (then the least design effect: the fewest queries to
        # show it), as (mean, value, its per-query recalls, those of the setting before)
        best: tuple[float, int, np.ndarray, np.ndarray | None] | None = None
        before: np.ndarray | None = None  # the setting tried before's per-query recalls
        for value in ladder(str(ix.method), str(ix.options), k):
            tx.set_local(setting, value)
            frame, seconds = index_neighbours(tx, by_name[where], ext, op, keys[where], k)
            per_query = recall(truth, answers_by_query(frame, keys[where]), k)
            if exhaustive(str(ix.method), str(ix.options), value):
                before = None  # every list searched: no misses of the lists skipped before
            mean, p10, low = summarize(per_query, kk, before)
            values = np.array(list(per_query.values()), dtype=float)
            # the same neighbours found can sum to means an ulp apart (0.992 and
            # 0.9919999999999999): a tie is a tie, broken by the design effect
            if mean is not None and (
                best is None
                or mean > best[0] + TIE
                or (
                    abs(mean - best[0]) <= TIE
                    and design_effect(values, kk, before) < design_effect(best[2], kk, best[3])
                )
            ):
                best = (mean, value, values, before)
            before = values
            curves.append(
                {
                    "index": ix.index,
                    "setting": setting,
                    "value": value,
                    "recall_at_k": mean,
                    "recall_p10": p10,
                    "recall_low": low,
                    "index_ms": seconds * 1000 / max(1, len(keys[where])),
                }
            )
            if low is not None and low >= out.target:
                row["suggested"], row["suggested_recall"] = value, mean
                break
        if row["current"] is not None:
            tx.set_local(setting, int(row["current"]))  # the next index starts as the app
        if row["suggested"] is None:
            most = _most(_queryable(out, where))
            if best is not None and best[0] >= out.target - TIE:
                row["sample_needed"] = sample_needed(best[2], kk, out.target, most, best[3])
            row["note"] = _no_suggestion(setting, ladder(str(ix.method), str(ix.options), k),
                                         out.target, best, row["sample_needed"], most)  # fmt: skip
    scans_after = own_scans(tx, [int(o) for o in catalog["oid"]]) if len(catalog) else {}
    counted = []
    for ix in catalog.itertuples(index=False):
        added = scans_after.get(int(ix.oid), 0) - scans_before.get(int(ix.oid), 0)
        rows[ix.index]["own_scans"] = added
        if added:
            counted.append(f"{ix.index} {added:,}")
    if counted:
        out.notes.append(
            "the recall test's index scans count in idx_scan (this role may not turn "
            f"track_counts off): {', '.join(counted)}; those indexes were already used"
        )
    searched = tuple(columns.iloc[0][["schema", "table", "column"]])  # its indexes first
    ordered = sorted(
        rows.values(), key=lambda r: (r["schema"], r["table"], r["column"]) != searched
    )
    # settings are integers, also in a column where another index has none
    out.indexes = pd.DataFrame(ordered, columns=INDEX_KEYS).astype(
        {"current": "Int64", "suggested": "Int64", "sample_needed": "Int64"}
    )
    out.curves = pd.DataFrame(curves, columns=CURVE_KEYS)
    measured = [r for r in rows.values() if r["recall_at_k"] is not None]
    out.curves.attrs.update(  # for plots.recall_curve: where each index is now, the target
        target=out.target,
        k=k,
        current={r["index"]: r["current"] for r in measured},
        current_recall={r["index"]: r["recall_at_k"] for r in measured},
        suggested={r["index"]: r["suggested"] for r in measured},
    )


def _queryable(out: RetrievalQuality, where: tuple[str, str, str]) -> int | None:
    """The rows of a column that can be queries (a non-NULL, non-zero vector), or None."""
    for c in out.columns.to_dict("records"):
        if (c["schema"], c["table"], c["column"]) == where:
            return int(c["rows"]) - int(c["nulls"]) - int(c["zero_vectors"])
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def require_pgvector(insp: Inspector) -> str:
    """The pgvector schema, or ExtensionMissing (ENABLE_HINT)."""
    schema = insp.extension_schema("vector")
    if schema is None:
        raise ExtensionMissing(ENABLE_HINT)
    return schema
