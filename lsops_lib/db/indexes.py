"""Indexes: unused, duplicate or redundant, invalid, missing (foreign keys, sequential scans),
and vector indexes. Every verdict on usage comes with the age of the statistics behind it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import fmt
from ._frames import TS, typed
from .connect import Inspector
from .settings import DbThresholds

__all__ = [
    "duplicate_indexes",
    "duplicate_key_count",
    "duplicate_keys_sql",
    "fk_without_index",
    "index_catalog",
    "invalid_indexes",
    "min_age_text",
    "seq_scan_tables",
    "stats_reset",
    "unused_indexes",
    "vector_indexes",
]

_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
"""


def min_age_text(days: float) -> str:
    """[thresholds] unused_index_min_age as every output writes it: '1 day', '30 days',
    '0.0417 days' (a fraction from '1h' in lsops.toml)."""
    return f"{fmt.number(days)} {'day' if days == 1 else 'days'}"


def stats_reset(insp: Inspector) -> dict[str, Any]:
    """Since when this database's usage counters (index and sequential scans) count.

    {stats_reset, stats_since, stats_since_source, stats_age_days}: `stats_reset` is the
    last reset (None: never reset); `stats_since` is that reset or, never reset, the
    postmaster start (`stats_since_source` "reset" | "postmaster start") - the counters
    cover at least that long, so the age is always known and never overstated;
    `stats_age_days` is now - stats_since.
    """
    df = insp.frame(
        """
        SELECT d.stats_reset,
               pg_postmaster_start_time() AS postmaster_start,
               EXTRACT(EPOCH FROM now() - COALESCE(d.stats_reset, pg_postmaster_start_time()))
                   / 86400.0 AS stats_age_days
        FROM pg_stat_database d WHERE d.datname = current_database()
        """
    )
    if df.empty:  # pragma: no cover - every database has its row
        start = insp.scalar("SELECT pg_postmaster_start_time()")
        age = insp.scalar("SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time()) / 86400")
        df = pd.DataFrame([{"stats_reset": None, "postmaster_start": start, "stats_age_days": age}])
    row = df.iloc[0]
    reset = None if pd.isna(row["stats_reset"]) else _utc(row["stats_reset"])
    since = reset if reset is not None else _utc(row["postmaster_start"])
    return {
        "stats_reset": reset,
        "stats_since": since,
        "stats_since_source": "reset" if reset is not None else "postmaster start",
        "stats_age_days": float(row["stats_age_days"]),
    }


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def index_catalog(insp: Inspector) -> pd.DataFrame:
    """Every index of the user's tables with what the other checks need.

    Columns: schema, table, index, method, is_unique, is_primary, is_valid,
    backs_constraint, keys (attnums, 0 = expression), key_count, opclasses, collations,
    options, expressions, predicate, definition, key_definitions (each key column or
    expression as SQL), nulls_not_distinct, size_bytes, table_bytes, scans,
    is_partitioned (an index of a partitioned table, relkind 'I': its size_bytes and
    scans are those of its partitions' indexes, summed), parent_index (the partitioned
    index this partition's index is attached to, None if none: it is dropped with its
    parent, never on its own).
    """
    # PostgreSQL 15 added UNIQUE NULLS NOT DISTINCT; before, NULLs are always distinct
    nulls = "x.indnullsnotdistinct" if insp.server_version_num >= 150000 else "false"
    # a partitioned index has no storage nor statistics of its own: its partitions' count
    if insp.server_version_num >= 120000:
        size = """CASE WHEN i.relkind = 'I' THEN
                   (SELECT COALESCE(sum(pg_relation_size(pt.relid)), 0)
                    FROM pg_partition_tree(x.indexrelid) pt)
                   ELSE pg_relation_size(x.indexrelid) END"""
        scans = """CASE WHEN i.relkind = 'I' THEN
                   (SELECT COALESCE(sum(ps.idx_scan), 0)
                    FROM pg_partition_tree(x.indexrelid) pt
                    JOIN pg_stat_all_indexes ps ON ps.indexrelid = pt.relid)
                   ELSE COALESCE(s.idx_scan, 0) END"""
    else:  # pragma: no cover - PostgreSQL 11
        size, scans = "pg_relation_size(x.indexrelid)", "COALESCE(s.idx_scan, 0)"
    df = insp.frame(
        f"""
        SELECT n.nspname AS schema,
               t.relname AS "table",
               i.relname AS "index",
               am.amname AS method,
               x.indisunique AS is_unique,
               x.indisprimary AS is_primary,
               x.indisvalid AS is_valid,
               EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
                   AS backs_constraint,
               string_to_array(x.indkey::text, ' ')::int[] AS keys,
               x.indnkeyatts AS key_count,
               string_to_array(x.indclass::text, ' ')::oid[] AS opclasses,
               string_to_array(x.indcollation::text, ' ')::oid[] AS collations,
               string_to_array(x.indoption::text, ' ')::int[] AS options,
               pg_get_expr(x.indexprs, x.indrelid) AS expressions,
               pg_get_expr(x.indpred, x.indrelid) AS predicate,
               pg_get_indexdef(x.indexrelid) AS definition,
               ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                     FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS key_definitions,
               {nulls} AS nulls_not_distinct,
               {size} AS size_bytes,
               pg_relation_size(x.indrelid) AS table_bytes,
               {scans} AS scans,
               i.relkind = 'I' AS is_partitioned,
               (SELECT p.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
                WHERE h.inhrelid = x.indexrelid) AS parent_index
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = i.relam
        LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = x.indexrelid
        WHERE {_USER_SCHEMAS}
        ORDER BY n.nspname, t.relname, i.relname
        """
    )
    for col in ("size_bytes", "table_bytes", "scans", "key_count"):
        if col in df:
            df[col] = df[col].astype("int64")
    for col in ("expressions", "predicate", "parent_index"):
        if col in df:
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def unused_indexes(
    insp: Inspector,
    catalog: pd.DataFrame | None = None,
    thresholds: DbThresholds | None = None,
    *,
    stats: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Valid indexes never scanned since the statistics started counting, whatever their
    size. Never a primary key, a unique index or an index backing a constraint.

    Columns: schema, table, index, method, size_bytes, scans, definition, stats_reset,
    stats_since, stats_age_days, drop_proposed, is_partitioned (largest first). A
    partitioned table's index counts the scans of its partitions' indexes, which are not
    listed themselves (they are dropped with it, never on their own). `drop_proposed` is True
    only once the statistics cover `unused_index_min_age` days: before that, 0 scans may
    just mean "too early to tell" (a fresh index, a monthly job not yet run). lsops's own
    queries never count here (see `connect.OWN_SCAN_SETTINGS`).
    """
    t = thresholds or DbThresholds()
    cat = index_catalog(insp) if catalog is None else catalog
    columns = [
        "schema",
        "table",
        "index",
        "method",
        "size_bytes",
        "scans",
        "definition",
        "stats_reset",
        "stats_since",
        "stats_age_days",
        "drop_proposed",
        "is_partitioned",
    ]
    mask = (
        cat["is_valid"]
        & ~cat["is_unique"]
        & ~cat["is_primary"]
        & ~cat["backs_constraint"]
        & (cat["scans"] == 0)
        & cat["parent_index"].isna()
    )
    out = cat.loc[mask].copy()
    reset = stats if stats is not None else stats_reset(insp)
    out["stats_reset"] = reset["stats_reset"]
    out["stats_since"] = reset["stats_since"]
    out["stats_age_days"] = reset["stats_age_days"]
    out["drop_proposed"] = bool(reset["stats_age_days"] >= t.unused_index_min_age)
    out = out.sort_values(
        ["size_bytes", "schema", "table", "index"], ascending=[False, True, True, True]
    )
    # instants with or without a value (never reset: NaT), rows or none
    return typed(out[columns].reset_index(drop=True), {"stats_reset": TS, "stats_since": TS})


def _covers(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether index `b` makes index `a` redundant (same table assumed)."""
    if a["method"] != b["method"]:
        return False
    if _text_or_none(a["predicate"]) != _text_or_none(b["predicate"]):
        return False
    n = int(a["key_count"])
    a_keys, b_keys = list(a["keys"])[:n], list(b["keys"])[: int(b["key_count"])]
    if n > len(b_keys):
        return False
    if a["method"] != "btree" and n != len(b_keys):
        return False  # only a btree serves a leading-column prefix
    if a_keys != b_keys[:n]:
        return False
    if list(a["opclasses"])[:n] != list(b["opclasses"])[:n]:
        return False
    if list(a["collations"])[:n] != list(b["collations"])[:n]:
        return False
    if list(a["options"])[:n] != list(b["options"])[:n]:
        return False
    if 0 in a_keys:  # expression keys: the expressions must be the same
        if _text_or_none(a["expressions"]) != _text_or_none(b["expressions"]):
            return False
    # INCLUDE columns of a must all be in b
    a_included = set(list(a["keys"])[n:])
    if a_included and not a_included <= set(b["keys"]):
        return False
    if a["is_unique"] and not (b["is_unique"] and n == len(b_keys)):
        return False
    return True


def duplicate_indexes(insp: Inspector, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indexes covered by another index of the same table: same method, predicate and
    expressions, and key columns a leading prefix of the other's (exact duplicates included).

    A unique or primary-key index is never the one to drop, nor a partition's index
    attached to a partitioned one. Columns: schema, table, index, covered_by, size_bytes,
    scans, definition, covered_by_definition, is_partitioned.
    """
    cat = index_catalog(insp) if catalog is None else catalog
    columns = [
        "schema",
        "table",
        "index",
        "covered_by",
        "size_bytes",
        "scans",
        "definition",
        "covered_by_definition",
        "is_partitioned",
    ]
    rows: list[dict[str, Any]] = []
    # each index as a plain dict, grouped by table (a pandas Series an index cost ~8 ms a
    # table: 40 s on a catalog of 5,000 tables, benchmarks' inspect_large_catalog)
    tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in cat[cat["is_valid"]].to_dict("records"):
        tables.setdefault((record["schema"], record["table"]), []).append(record)
    for key in sorted(tables):
        series = tables[key]
        for a in series:
            if a["is_unique"] or a["is_primary"] or a["backs_constraint"]:
                continue
            if a.get("parent_index") is not None:
                continue  # dropped with its parent, never on its own
            best: dict[str, Any] | None = None
            for b in series:
                if b["index"] == a["index"] or not _covers(a, b):
                    continue
                exact = len(a["keys"]) == len(b["keys"]) and _covers(b, a)
                if exact and not (b["is_unique"] or b["is_primary"] or b["backs_constraint"]):
                    # two equivalent plain indexes: keep the more used (then the first name)
                    if (a["scans"], b["index"] < a["index"]) > (
                        b["scans"],
                        a["index"] < b["index"],
                    ):
                        continue
                # prefer a unique/primary cover, then the narrowest one
                if best is None or (
                    (b["is_unique"] or b["is_primary"], -len(b["keys"]))
                    > (best["is_unique"] or best["is_primary"], -len(best["keys"]))
                ):
                    best = b
            if best is not None:
                rows.append(
                    {
                        "schema": a["schema"],
                        "table": a["table"],
                        "index": a["index"],
                        "covered_by": best["index"],
                        "size_bytes": int(a["size_bytes"]),
                        "scans": int(a["scans"]),
                        "definition": a["definition"],
                        "covered_by_definition": best["definition"],
                        "is_partitioned": bool(a["is_partitioned"]),
                    }
                )
    if not rows:  # the types of a frame of some rows
        return pd.DataFrame({c: pd.Series(dtype=_DUPLICATE_DTYPES.get(c, "str")) for c in columns})
    return pd.DataFrame(rows, columns=columns)


_DUPLICATE_DTYPES = {"size_bytes": "int64", "scans": "int64", "is_partitioned": "bool"}


def invalid_indexes(insp: Inspector, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indexes left INVALID (a failed `CREATE INDEX CONCURRENTLY` or `REINDEX`): they cost
    writes and serve no reads. Columns: schema, table, index, size_bytes, definition,
    is_unique, key_definitions, predicate, nulls_not_distinct (what `duplicate_keys_sql`
    needs: a unique build fails again while duplicate keys remain), is_partitioned,
    missing_partitions. A partitioned table's index is invalid while a partition has no
    index attached to it (`CREATE INDEX ... ON ONLY`, the partitions' indexes not yet
    attached): `missing_partitions` lists those partitions ({schema, table,
    is_partitioned}), None for any other index."""
    cat = index_catalog(insp) if catalog is None else catalog
    columns = [
        "schema",
        "table",
        "index",
        "size_bytes",
        "definition",
        "is_unique",
        "key_definitions",
        "predicate",
        "nulls_not_distinct",
        "is_partitioned",
    ]
    out = cat.loc[~cat["is_valid"], columns].reset_index(drop=True)
    out["missing_partitions"] = pd.Series(
        [
            _missing_partitions(insp, r["schema"], r["index"]) if r["is_partitioned"] else None
            for r in out.to_dict("records")
        ],
        index=out.index,
        dtype=object,
    )
    return out


def _missing_partitions(insp: Inspector, schema: str, index: str) -> list[dict[str, Any]]:
    """The partitions of a partitioned index's table with no index attached to it."""
    df = insp.frame(
        """
        SELECT pn.nspname AS schema, pc.relname AS "table", pc.relkind = 'p' AS is_partitioned
        FROM pg_class ix
        JOIN pg_namespace ixn ON ixn.oid = ix.relnamespace
        JOIN pg_index x ON x.indexrelid = ix.oid
        JOIN pg_inherits h ON h.inhparent = x.indrelid
        JOIN pg_class pc ON pc.oid = h.inhrelid
        JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE ixn.nspname = :schema AND ix.relname = :index
          AND NOT EXISTS (SELECT 1 FROM pg_inherits hi JOIN pg_index xi ON xi.indexrelid = hi.inhrelid
                          WHERE hi.inhparent = ix.oid AND xi.indrelid = pc.oid)
        ORDER BY pn.nspname, pc.relname
        """,
        {"schema": schema, "index": index},
    )
    return [
        {
            "schema": str(r["schema"]),
            "table": str(r["table"]),
            "is_partitioned": bool(r["is_partitioned"]),
        }
        for r in df.to_dict("records")
    ]


def duplicate_keys_sql(
    schema: str,
    table: str,
    key_definitions: list[str],
    predicate: str | None = None,
    *,
    nulls_not_distinct: bool = False,
    limit: int | None = None,
) -> str:
    """The query listing the keys a unique index on `key_definitions` would reject: each
    duplicated key with its number of rows, most first. Rows where a key is NULL never
    conflict (unless NULLS NOT DISTINCT); a partial index looks at its own rows only."""
    from .recommend import quote_ident

    keys = list(key_definitions)
    conditions = [f"({predicate})"] if predicate else []  # "(a) OR (b)": wrapped whole
    if not nulls_not_distinct:
        conditions += [f"{k} IS NOT NULL" for k in keys]
    where = f"\nWHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {', '.join(keys)}, count(*) AS rows\n"
        f"FROM {quote_ident(schema)}.{quote_ident(table)}{where}\n"
        f"GROUP BY {', '.join(keys)}\n"
        "HAVING count(*) > 1\n"
        "ORDER BY count(*) DESC" + (f"\nLIMIT {int(limit)}" if limit is not None else "")
    )


def duplicate_key_count(insp: Inspector, row: Any) -> int:
    """How many keys an invalid unique index (a row of `invalid_indexes`) would reject now:
    `duplicate_keys_sql` counted, read-only (a full read of the table, once)."""
    sql = duplicate_keys_sql(
        row["schema"],
        row["table"],
        list(row["key_definitions"]),
        _text_or_none(row["predicate"]),
        nulls_not_distinct=bool(row["nulls_not_distinct"]),
    )
    return int(insp.scalar(f"SELECT count(*) FROM ({sql}) AS duplicates"))


def fk_without_index(insp: Inspector) -> pd.DataFrame:
    """Foreign keys whose columns lead no valid, non-partial index of their table: every
    delete or key update on the referenced table then scans this one.

    Columns: schema, table, constraint, columns (list of names), referenced_table,
    rows_estimate, table_bytes.
    """
    df = insp.frame(
        f"""
        SELECT n.nspname AS schema,
               c.relname AS "table",
               con.conname AS "constraint",
               array_agg(a.attname::text ORDER BY k.ord) AS columns,
               con.confrelid::regclass::text AS referenced_table,
               GREATEST(c.reltuples, 0)::bigint AS rows_estimate,
               pg_relation_size(c.oid) AS table_bytes
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
        WHERE con.contype = 'f'
          AND {_USER_SCHEMAS}
          AND NOT EXISTS (
              SELECT 1 FROM pg_index x
              WHERE x.indrelid = con.conrelid
                AND x.indisvalid
                AND x.indpred IS NULL
                AND x.indnkeyatts >= cardinality(con.conkey)
                AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]
                    @> con.conkey
                AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)]
                    <@ con.conkey
          )
        GROUP BY n.nspname, c.relname, con.conname, con.confrelid, c.reltuples, c.oid
        ORDER BY n.nspname, c.relname, con.conname
        """
    )
    if not df.empty:
        df["columns"] = df["columns"].map(list)
    return df


def seq_scan_tables(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Tables read mostly by sequential scans although big enough for an index to pay:
    index candidates. Columns: schema, table, seq_scan, seq_tup_read, idx_scan,
    rows_estimate, seq_scan_share, rows_per_seq_scan (most rows read first)."""
    t = thresholds or DbThresholds()
    return insp.frame(
        """
        SELECT schemaname AS schema,
               relname AS "table",
               seq_scan,
               seq_tup_read,
               COALESCE(idx_scan, 0) AS idx_scan,
               n_live_tup AS rows_estimate,
               seq_scan::float / NULLIF(seq_scan + COALESCE(idx_scan, 0), 0) AS seq_scan_share,
               seq_tup_read::float / NULLIF(seq_scan, 0) AS rows_per_seq_scan
        FROM pg_stat_user_tables
        WHERE n_live_tup >= :min_rows
          AND seq_scan > 0
          AND seq_scan::float / NULLIF(seq_scan + COALESCE(idx_scan, 0), 0) >= :ratio
        ORDER BY seq_tup_read DESC, schemaname, relname
        """,
        {"min_rows": t.seq_scan_min_rows, "ratio": t.seq_scan_ratio},
    )


def vector_indexes(insp: Inspector) -> pd.DataFrame:
    """pgvector indexes (HNSW, IVFFlat): size against their table, build options, scans.

    Columns: schema, table, index, method, opclass, options, size_bytes, table_bytes,
    size_ratio, scans, is_valid, definition. Empty without pgvector.
    """
    df = insp.frame(
        f"""
        SELECT n.nspname AS schema,
               t.relname AS "table",
               i.relname AS "index",
               am.amname AS method,
               (SELECT string_agg(opc.opcname, ', ')
                FROM unnest(string_to_array(x.indclass::text, ' ')::oid[]) AS u(oid)
                JOIN pg_opclass opc ON opc.oid = u.oid) AS opclass,
               array_to_string(i.reloptions, ', ') AS options,
               pg_relation_size(i.oid) AS size_bytes,
               pg_total_relation_size(t.oid) AS table_bytes,
               pg_relation_size(i.oid)::float / NULLIF(pg_total_relation_size(t.oid), 0)
                   AS size_ratio,
               COALESCE(s.idx_scan, 0) AS scans,
               x.indisvalid AS is_valid,
               pg_get_indexdef(i.oid) AS definition
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = i.relam
        LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = x.indexrelid
        WHERE am.amname IN ('hnsw', 'ivfflat') AND {_USER_SCHEMAS}
        ORDER BY size_bytes DESC
        """
    )
    # no index with build options: `options` NULL in every row, text all the same
    return typed(df, {"options": "str", "size_ratio": "float64"})
