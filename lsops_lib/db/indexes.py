"""Indexes: unused, duplicate or redundant, invalid, missing (foreign keys, sequential scans),
and vector indexes. Every verdict on usage comes with the age of the statistics behind it."""

from __future__ import annotations

import re
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
    "foreign_keys",
    "index_catalog",
    "invalid_indexes",
    "min_age_text",
    "proposed_drops",
    "REINDEX_LEFTOVER",
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
    backs_constraint, is_immediate (False: a DEFERRABLE constraint's), is_replica_identity
    (REPLICA IDENTITY USING INDEX), keys (attnums, 0 = expression), key_count, opclasses,
    collations, options, expressions, predicate, definition, key_definitions (each key
    column or expression as SQL), nulls_not_distinct, size_bytes, table_bytes, scans,
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
               x.indimmediate AS is_immediate,
               x.indisreplident AS is_replica_identity,
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
    stats_since, stats_age_days, drop_proposed, is_partitioned, foreign_key,
    foreign_key_references (largest first). A partitioned table's index counts the scans
    of its partitions' indexes, which are not listed themselves (they are dropped with it,
    never on their own). `drop_proposed` is True only once the statistics cover
    `unused_index_min_age` days: before that, 0 scans may just mean "too early to tell" (a
    fresh index, a monthly job not yet run). lsops's own queries never count here (see
    `connect.OWN_SCAN_SETTINGS`).

    An index that a foreign key of its table needs is kept, never proposed for a drop
    (`drop_proposed` False, `foreign_key` names the constraint(s), `foreign_key_references`
    the referenced table(s)): without it every delete or key update on the referenced
    table scans this one (and `fk_without_index` would ask for it back). It is needed when
    no other index supporting that foreign key's columns (`fk_without_index`'s rule) stays:
    none is used, unique or backing a constraint, and of several unused ones the one kept
    is not itself a redundant duplicate (`duplicate_indexes`), then the narrowest.

    A redundant unused index (`duplicate_indexes`) is proposed for a drop only when an
    index covering it stays (`proposed_drops`): when its cover is itself proposed for a
    drop, it is the one kept (`drop_proposed` False), so that one index of a chain of
    unused ones stays.
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
        "foreign_key",
        "foreign_key_references",
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
    dup = pd.DataFrame()
    kept: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if len(out):
        tables = set(zip(out["schema"], out["table"], strict=True))
        dup = duplicate_indexes(
            insp, cat[[k in tables for k in zip(cat["schema"], cat["table"], strict=True)]]
        )
        kept = _kept_for_foreign_keys(insp, cat, out, dup)
    out["foreign_key"] = [
        ", ".join(c for c, _ in kept[k]) if k in kept else None
        for k in zip(out["schema"], out["index"], strict=True)
    ]
    out["foreign_key_references"] = [
        ", ".join(dict.fromkeys(r for _, r in kept[k])) if k in kept else None
        for k in zip(out["schema"], out["index"], strict=True)
    ]
    out.loc[out["foreign_key"].notna(), "drop_proposed"] = False
    drops = proposed_drops(out, dup)
    stays = [k not in drops for k in zip(out["schema"], out["index"], strict=True)]
    out.loc[pd.Series(stays, index=out.index, dtype="bool"), "drop_proposed"] = False
    out = out.sort_values(
        ["size_bytes", "schema", "table", "index"], ascending=[False, True, True, True]
    )
    # instants with or without a value (never reset: NaT), rows or none
    return typed(
        out[columns].reset_index(drop=True),
        {
            "stats_reset": TS,
            "stats_since": TS,
            "drop_proposed": "bool",
            "foreign_key": "str",
            "foreign_key_references": "str",
        },
    )


def foreign_keys(insp: Inspector) -> pd.DataFrame:
    """The foreign keys of the user's tables: schema, table, constraint, keys (the
    referencing columns' attnums), referenced_table."""
    df = insp.frame(
        f"""
        SELECT n.nspname AS schema,
               c.relname AS "table",
               con.conname AS "constraint",
               con.conkey::int[] AS keys,
               con.confrelid::regclass::text AS referenced_table
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype = 'f' AND {_USER_SCHEMAS}
        ORDER BY n.nspname, c.relname, con.conname
        """
    )
    if not df.empty:
        df["keys"] = df["keys"].map(list)
    return df


def _supports(index: Mapping[str, Any], fk_keys: list[int]) -> bool:
    """Whether `index` supports a foreign key on `fk_keys` as `fk_without_index` counts
    it: valid, not partial, its leading key columns those of the foreign key (any order)."""
    n = len(fk_keys)
    if not index["is_valid"] or _text_or_none(index["predicate"]) is not None:
        return False
    if int(index["key_count"]) < n:
        return False
    return sorted(list(index["keys"])[:n]) == sorted(fk_keys)


def _kept_for_foreign_keys(
    insp: Inspector, cat: pd.DataFrame, unused: pd.DataFrame, dup: pd.DataFrame
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, index) of the unused indexes a foreign key needs -> [(constraint,
    referenced table)]: for each foreign key of a table with an unused index, when every
    index supporting its columns is unused, the one kept (not a redundant duplicate, then
    the fewest keys, the smallest, the first name). `dup`: `duplicate_indexes` of those
    tables. A supporting index that is not unused stays, or an index covering it does (a
    cover supports the same columns; `proposed_drops`)."""
    fks = foreign_keys(insp)
    tables = set(zip(unused["schema"], unused["table"], strict=True))
    fks = fks[[k in tables for k in zip(fks["schema"], fks["table"], strict=True)]]
    if fks.empty:
        return {}
    unused_names = set(zip(unused["schema"], unused["index"], strict=True))
    redundant = set(zip(dup["schema"], dup["index"], strict=True))
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in cat[cat["parent_index"].isna()].to_dict("records"):
        key = (record["schema"], record["table"])
        if key in tables:
            by_table.setdefault(key, []).append(record)
    kept: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for fk in fks.to_dict("records"):
        support = [
            i for i in by_table.get((fk["schema"], fk["table"]), []) if _supports(i, fk["keys"])
        ]
        if not support or any((i["schema"], i["index"]) not in unused_names for i in support):
            continue  # no index to keep (fk_without_index says so), or one that stays
        keep = min(
            support,
            key=lambda i: (
                (i["schema"], i["index"]) in redundant,
                int(i["key_count"]),
                int(i["size_bytes"]),
                i["index"],
            ),
        )
        kept.setdefault((keep["schema"], keep["index"]), []).append(
            (fk["constraint"], fk["referenced_table"])
        )
    return kept


def proposed_drops(unused: pd.DataFrame, duplicate: pd.DataFrame) -> set[tuple[str, str]]:
    """(schema, index) of the indexes whose drop lsops proposes, chosen to be safe taken
    together: after running every one of them, every index that had scans still has an
    index serving its leading columns (itself or one covering it), every redundant index
    is kept or still covered, and every foreign key keeps a supporting index.

    `unused` (`unused_indexes`) proposes an index not redundant when its `drop_proposed`
    (statistics old enough) and no `foreign_key` keeps it. A redundant index (`duplicate`,
    `duplicate_indexes`) is proposed only when an index of its chain of covers (its
    `covered_by`, that one's, ...: each covers it) stays, never when they all go: the
    unused cover is dropped and the index it covers kept (the used one, or of two unused
    ones one, not both; of a chain, the next below the dropped cover). Used, unique or
    constraint indexes are never in `unused`, so they and too-early ones stay."""
    cover = dict(_keys(duplicate, "covered_by"))
    fk = {k for k, v in _keys(unused, "foreign_key") if isinstance(v, str)}
    unused_drop = {k for k, v in _keys(unused, "drop_proposed") if bool(v) and k not in fk}
    memo: dict[tuple[str, str], bool] = {}

    def dropped(key: tuple[str, str]) -> bool:
        if key not in memo:
            memo[key] = False  # a cycle of covers (never expected): kept
            if key not in cover:
                memo[key] = key in unused_drop
            elif key not in fk:
                memo[key] = any(not dropped(a) for a in _cover_chain(key, cover))
        return memo[key]

    return {k for k in set(cover) | unused_drop if dropped(k)}


def _keys(df: pd.DataFrame, column: str) -> list[tuple[tuple[str, str], Any]]:
    """[((schema, index), value of `column`)], `covered_by` as (schema, index); [] when
    `df` lacks a column (a frame of no check)."""
    if not {"schema", "index", column} <= set(df.columns):
        return []
    rows = zip(df["schema"], df["index"], df[column], strict=True)
    if column == "covered_by":
        return [((s, i), (s, c)) for s, i, c in rows]
    return [((s, i), v) for s, i, v in rows]


def _cover_chain(
    key: tuple[str, str], cover: dict[tuple[str, str], tuple[str, str]]
) -> list[tuple[str, str]]:
    """The covers of `key` up its chain: its `covered_by`, that one's, ... (each covers
    `key`), to the first not redundant itself."""
    chain: list[tuple[str, str]] = []
    node = key
    while node in cover and cover[node] != key and cover[node] not in chain:
        node = cover[node]
        chain.append(node)
    return chain


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
    if a["is_unique"] and bool(a.get("nulls_not_distinct")) and not b.get("nulls_not_distinct"):
        return False  # b lets rows with NULL keys repeat, which a refuses
    if a["is_unique"] and a.get("is_immediate", True) and not b.get("is_immediate", True):
        return False  # b is DEFERRABLE: it checks later than a, ON CONFLICT cannot use it
    return True


def duplicate_indexes(insp: Inspector, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Indexes covered by another index of the same table: same method, predicate and
    expressions, and key columns a leading prefix of the other's (exact duplicates included).

    A primary key or an index backing a constraint is never the one to drop, nor a
    partition's index attached to a partitioned one. A unique index is, when another
    unique index on the same keys enforces at least what it does (NULLS NOT DISTINCT if it
    is, not DEFERRABLE if it is not): a `CREATE UNIQUE INDEX` repeating a UNIQUE
    constraint's index is covered by the constraint's, and of two such plain unique
    indexes one is. Columns: schema, table, index, covered_by, size_bytes, scans,
    definition, covered_by_definition, is_partitioned.
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
            if a["is_primary"] or a["backs_constraint"] or a.get("is_replica_identity"):
                continue  # the table's key, a constraint's or logical replication's index
            if a.get("parent_index") is not None:
                continue  # dropped with its parent, never on its own
            best: dict[str, Any] | None = None
            for b in series:
                if b["index"] == a["index"] or not _covers(a, b):
                    continue
                exact = len(a["keys"]) == len(b["keys"]) and _covers(b, a)
                if exact and not (b["is_primary"] or b["backs_constraint"]):
                    # two equivalent indexes (plain, or both unique backing no constraint):
                    # keep the more used (then the first name)
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
    missing_partitions, equivalent_index, equivalent_valid. A partitioned table's index is
    invalid while a partition has no index attached to it (`CREATE INDEX ... ON ONLY`, the
    partitions' indexes not yet attached): `missing_partitions` lists those partitions
    ({schema, table, is_partitioned}), None for any other index.

    `equivalent_index` names an index of the same table that makes this one needless, None
    if none: a valid one covering it (`duplicate_indexes`' rule: rebuilt, it would only be
    redundant), `equivalent_valid` True; or, for the leftover of an interrupted `REINDEX
    CONCURRENTLY` (`<name>_ccnew`, `<name>_ccold`, a number after them when repeated),
    the index `<name>` it copies when that one is invalid too, `equivalent_valid` False.
    Either way the leftover is to be dropped, never re-created (PostgreSQL's REINDEX
    documentation)."""
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
    invalid = cat.loc[~cat["is_valid"]]
    out = invalid[columns].reset_index(drop=True)
    out["missing_partitions"] = pd.Series(
        [
            _missing_partitions(insp, r["schema"], r["index"]) if r["is_partitioned"] else None
            for r in out.to_dict("records")
        ],
        index=out.index,
        dtype=object,
    )
    same_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if len(invalid):
        tables = set(zip(invalid["schema"], invalid["table"], strict=True))
        for record in cat.to_dict("records"):
            if (record["schema"], record["table"]) in tables:
                same_table.setdefault((record["schema"], record["table"]), []).append(record)
    found = [
        _equivalent(a, same_table[(a["schema"], a["table"])]) for a in invalid.to_dict("records")
    ]
    out["equivalent_index"] = pd.Series(
        [f[0] if f else None for f in found], index=out.index, dtype=object
    ).astype("str")
    out["equivalent_valid"] = pd.Series(
        [bool(f and f[1]) for f in found], index=out.index, dtype="bool"
    )
    return out


# the leftover of an interrupted REINDEX CONCURRENTLY: `<name>_ccnew` (the copy being
# built) or `<name>_ccold` (the original, swapped out), a number after when repeated
REINDEX_LEFTOVER = re.compile(r"^(?P<name>.+)_cc(?P<kind>new|old)[0-9]*$")


def _equivalent(a: Mapping[str, Any], series: list[dict[str, Any]]) -> tuple[str, bool] | None:
    """(name, valid) of the index that makes the invalid index `a` needless (see
    `invalid_indexes`), None if none."""
    if a.get("is_partitioned") or a.get("parent_index") is not None:
        return None  # incomplete until its partitions' indexes are attached
    valid = [
        b
        for b in series
        if b["index"] != a["index"]
        and b["is_valid"]
        and b.get("parent_index") is None
        and _covers(a, b)
    ]
    if valid:
        # the exact equivalent first (a REINDEX CONCURRENTLY's original), then the narrowest
        best = min(valid, key=lambda b: (not _covers(b, a), len(b["keys"]), b["index"]))
        return str(best["index"]), True
    match = REINDEX_LEFTOVER.match(str(a["index"]))
    if match:
        for b in series:
            if b["index"] == match["name"] and _covers(a, b) and _covers(b, a):
                return str(b["index"]), bool(b["is_valid"])
    return None


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
    """Tables whose rows are read mostly by sequential scans although big enough for an
    index to pay: index candidates. Judged by the rows the scans read, not by their count
    alone: a table is listed when it has at least `seq_scan_min_rows` rows, was scanned
    sequentially at least `seq_scan_min_scans` times, reading at least
    `seq_scan_min_rows_read` rows in all, and those rows are at least `seq_scan_ratio` of
    the rows read from it (sequentially, or as index entries through its indexes). A few
    scans (a one-off, a scan reading nothing) are noise, and so are a few full reads among
    many index lookups only when they read little.

    lsops's own reads of the LongSang tables are sequential scans (its sessions turn index
    scans off, see `connect.OWN_SCAN_SETTINGS`) and count here like any client's: a few per
    check, which the minimums keep out of the list unless lsops runs very often against a
    table the application never reads.

    Columns: schema, table, seq_scan, seq_tup_read, idx_scan, idx_tup_read (index entries
    returned by the table's indexes), rows_estimate, seq_scan_share (share of the scans),
    seq_read_share (share of the rows read), rows_per_seq_scan (most rows read first)."""
    t = thresholds or DbThresholds()
    return insp.frame(
        """
        WITH reads AS (
            SELECT s.schemaname, s.relname, s.seq_scan, s.seq_tup_read,
                   COALESCE(s.idx_scan, 0) AS idx_scan,
                   COALESCE((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i
                             WHERE i.relid = s.relid), 0)::bigint AS idx_tup_read,
                   s.n_live_tup
            FROM pg_stat_user_tables s
        )
        SELECT schemaname AS schema,
               relname AS "table",
               seq_scan,
               seq_tup_read,
               idx_scan,
               idx_tup_read,
               n_live_tup AS rows_estimate,
               seq_scan::float / NULLIF(seq_scan + idx_scan, 0) AS seq_scan_share,
               seq_tup_read::float / NULLIF(seq_tup_read + idx_tup_read, 0) AS seq_read_share,
               seq_tup_read::float / NULLIF(seq_scan, 0) AS rows_per_seq_scan
        FROM reads
        WHERE n_live_tup >= :min_rows
          AND seq_scan >= GREATEST(:min_scans, 1)
          AND seq_tup_read >= GREATEST(:min_rows_read, 1)
          AND seq_tup_read::float / NULLIF(seq_tup_read + idx_tup_read, 0) >= :ratio
        ORDER BY seq_tup_read DESC, schemaname, relname
        """,
        {
            "min_rows": t.seq_scan_min_rows,
            "min_scans": t.seq_scan_min_scans,
            "min_rows_read": t.seq_scan_min_rows_read,
            "ratio": t.seq_scan_ratio,
        },
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
