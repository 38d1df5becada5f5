"""Recommendations: each finding with its evidence and the SQL a person would run.

The SQL is PRINTED, never executed (`DROP INDEX CONCURRENTLY`, `CREATE INDEX CONCURRENTLY`,
`VACUUM (ANALYZE)`, ...). Where the `hypopg` extension is installed, a suggested index is
checked with a hypothetical index: the planner's cost of a lookup before and after.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from .. import fmt
from ..exceptions import DatabaseError
from .connect import Inspector
from .indexes import REINDEX_LEFTOVER, min_age_text, proposed_drops
from .maintenance import autovacuum_off
from .reindex import INDEX_ROUTES, RUNBOOK_COMMAND
from .settings import DbThresholds

__all__ = [
    "RECOMMENDATION_COLUMNS",
    "SEVERITIES",
    "hypothetical_index",
    "quote_ident",
    "recommendations",
    "sequence_fix",
    "summary",
]

SEVERITIES = ("critical", "warning", "info")
RECOMMENDATION_COLUMNS = ["severity", "kind", "object", "title", "evidence", "sql", "check"]

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
# the keywords PostgreSQL reserves in some way (every category but unreserved): as an
# identifier each needs quotes, as quote_ident() quotes them. PostgreSQL 16's list
# (15's without json_array, json_arrayagg, json_object, json_objectagg, system_user;
# quoting a word an older server does not reserve is harmless):
# SELECT word FROM pg_get_keywords() WHERE catcode <> 'U' ORDER BY word
_RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint
    binary bit boolean both case cast char character check coalesce collate collation
    column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for
    foreign freeze from full grant greatest group grouping having ilike in initially inner
    inout int integer intersect interval into is isnull join json_array json_arrayagg
    json_object json_objectagg lateral leading least left like limit localtime
    localtimestamp national natural nchar none normalize not notnull null nullif numeric
    offset on only or order out outer overlaps overlay placing position precision primary
    real references returning right row select session_user setof similar smallint some
    substring symmetric system_user table tablesample then time timestamp to trailing
    treat trim true union unique user using values varchar variadic verbose when where
    window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
    xmlparse xmlpi xmlroot xmlserialize xmltable
    """.split()
)


def quote_ident(name: str) -> str:
    """An identifier as SQL would need it: quoted unless it is lower case
    [a-z_][a-z0-9_$]* and no keyword PostgreSQL reserves (`_RESERVED`)."""
    if _PLAIN.match(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _size(n: Any) -> str:
    """Bytes in IEC units (fmt.size), "?" when not a number."""
    try:
        return fmt.size(float(n))
    except (TypeError, ValueError):
        return "?"


def _plan_cost(insp: Inspector, sql: str, params: dict[str, Any]) -> float:
    """The planner's total cost of `sql` with its usual settings (index scans on: EXPLAIN
    plans, it never scans)."""
    df = insp.frames([insp.planner_defaults(), ("EXPLAIN (FORMAT JSON) " + sql, params)])[1]
    plan = df.iat[0, 0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Total Cost"])


def hypothetical_index(
    insp: Inspector, schema: str, table: str, columns: list[str]
) -> dict[str, Any] | None:
    """With hypopg: planner cost of an equality lookup on `columns` before and after a
    hypothetical index on them. None when hypopg is not installed (or nothing to look up).

    {"before": float, "after": float, "uses_index": bool, "ddl": str}
    """
    hypopg = insp.extension_schema("hypopg")
    if hypopg is None:
        return None
    relation = _q(schema, table)
    cols = [quote_ident(c) for c in columns]
    sample = insp.frame(
        f"SELECT {', '.join(f'{c}::text AS c{i}' for i, c in enumerate(cols))} FROM {relation} "
        f"WHERE {' AND '.join(f'{c} IS NOT NULL' for c in cols)} LIMIT 1"
    )
    if sample.empty:
        return None
    params = {f"v{i}": sample.iat[0, i] for i in range(len(cols))}
    # compare on the column itself so the index is usable: cast the sample, not the column
    types = insp.frame(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = CAST(:rel AS regclass) AND a.attname = ANY(:cols)",
        {"rel": relation, "cols": list(columns)},
    )
    type_of = dict(zip(types.iloc[:, 0], types.iloc[:, 1], strict=False))
    where = " AND ".join(
        f"{c} = CAST(:v{i} AS {type_of.get(columns[i], 'text')})" for i, c in enumerate(cols)
    )
    lookup = f"SELECT * FROM {relation} WHERE {where}"
    ddl = f"CREATE INDEX ON {relation} ({', '.join(cols)})"
    try:
        before = _plan_cost(insp, lookup, params)
        frames = insp.frames(
            [
                insp.planner_defaults(),
                (f"SELECT * FROM {quote_ident(hypopg)}.hypopg_create_index(:ddl)", {"ddl": ddl}),
                ("EXPLAIN (FORMAT JSON) " + lookup, params),
                (f"SELECT {quote_ident(hypopg)}.hypopg_reset()", None),
            ]
        )
    except DatabaseError:
        return None
    plan = frames[2].iat[0, 0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    after = float(plan[0]["Plan"]["Total Cost"])
    return {
        "before": before,
        "after": after,
        "uses_index": "<" in json.dumps(plan) or after < before,
        "ddl": ddl,
    }


def _when(value: Any) -> str:
    """A timestamp as `2026-10-03 14:05 UTC`, `never` when missing (None or NaT)."""
    if value is None or pd.isna(value):
        return "never"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def _pct(value: Any, *thresholds: float, digits: int = 0) -> str:
    """`value` (a fraction) as a percent (fmt.pct), with as many more decimals as it takes
    to read on the same side of each of `thresholds` as it is (0.98999 against 0.99:
    '98.999 %', never '99.0 %'; 0.999 against 1: '99.9 %', never '100 %')."""
    x = float(value)

    def side(a: float, b: float) -> int:
        return 0 if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) else (1 if a > b else -1)

    while digits < 10 and any(
        side(round(x * 100, digits) / 100, float(t)) != side(x, float(t)) for t in thresholds
    ):
        digits += 1
    return fmt.pct(x, digits)


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _rec(
    severity: str,
    kind: str,
    obj: str,
    title: str,
    evidence: str,
    sql: str | None = None,
    check: str | None = None,
) -> dict[str, Any]:
    return {
        "severity": severity,
        "kind": kind,
        "object": obj,
        "title": title,
        "evidence": evidence,
        "sql": sql,
        "check": check,
    }


def _stats_age(unused: pd.DataFrame) -> str:
    """' (statistics reset <when>, <n> days ago)', or since the postmaster start."""
    if unused.empty or "stats_age_days" not in unused:
        return ""
    row = unused.iloc[0]
    age = row["stats_age_days"]
    if age is None or pd.isna(age):
        return ""
    reset = row.get("stats_reset")
    if reset is not None and not pd.isna(reset):
        return f" (statistics reset {_when(reset)}, {fmt.duration(float(age) * 86400)} ago)"
    since = row.get("stats_since")
    return (
        f" (statistics never reset: counting since the server started {_when(since)}, "
        f"{fmt.duration(float(age) * 86400)} ago)"
    )


def sequence_fix(row: Any) -> str | None:
    """The SQL that raises the limit of a sequence near it (a row of
    `maintenance.sequences_near_max`), as the case needs:

    - the column's type caps it (an integer column): the column becomes bigint, then the
      sequence is raised to bigint's maximum (`AS bigint NO MAXVALUE`);
    - its own MAXVALUE caps it: the cap is raised to what its type and column hold
      (`NO MAXVALUE`, or `MAXVALUE <column maximum>`), or, when its TYPE is the cap, the
      type changes too (`AS bigint`: `ALTER SEQUENCE ... AS bigint` alone keeps an explicit
      MAXVALUE, which is why the cap is always named).

    Descending sequences get the same with MINVALUE. None when nothing can be raised (a
    bigint sequence at bigint's own limit)."""
    ascending = int(row["increment_by"]) > 0
    bound, no_bound = ("MAXVALUE", "NO MAXVALUE") if ascending else ("MINVALUE", "NO MINVALUE")
    seq = _q(row["schema"], row["sequence"])
    column = row["column"] if isinstance(row["column"], str) else None
    type_limit = _TYPE_LIMITS.get(str(row["sequence_type"]), _TYPE_LIMITS["bigint"])
    own_type_limit = type_limit[0] if ascending else type_limit[1]
    big = _TYPE_LIMITS["bigint"][0 if ascending else 1]
    steps: list[str] = []
    col_limit = row["column_max"]
    col_limit = None if col_limit is None or pd.isna(col_limit) else int(col_limit)
    if row["capped_by"] == "column" and column:
        # the names as the catalog has them ("table.column" is ambiguous: a name may hold
        # a dot); the joined form only for a row without them
        table, col = row.get("table_name"), row.get("column_name")
        if not (isinstance(table, str) and isinstance(col, str)):
            table, col = column.rsplit(".", 1)
        schema = row["table_schema"] if isinstance(row["table_schema"], str) else row["schema"]
        steps.append(
            f"ALTER TABLE {_q(schema, table)} ALTER COLUMN {quote_ident(col)} TYPE bigint;"
            "  -- rewrites the table under an ACCESS EXCLUSIVE lock"
        )
        col_limit = None
    target = big if col_limit is None else col_limit  # what the column now holds
    current = int(row["sequence_max"])
    if (ascending and current >= target) or (not ascending and current <= target):
        return "\n".join(steps) or None
    if (ascending and target <= own_type_limit) or (not ascending and target >= own_type_limit):
        cap = no_bound if target == own_type_limit else f"{bound} {target}"
        steps.append(f"ALTER SEQUENCE {seq} {cap};")
    else:
        cap = no_bound if target == big else f"{bound} {target}"
        steps.append(f"ALTER SEQUENCE {seq} AS bigint {cap};")
    return "\n".join(steps)


_TYPE_LIMITS = {
    "smallint": (32767, -32768),
    "integer": (2147483647, -2147483648),
    "bigint": (9223372036854775807, -9223372036854775808),
}


def _drop_index(r: Any) -> str:
    """DROP INDEX of a row of `indexes`' checks: CONCURRENTLY, except for a partitioned
    table's index (PostgreSQL cannot drop one concurrently)."""
    if bool(getattr(r, "is_partitioned", False)):
        return (
            f"DROP INDEX IF EXISTS {_q(r.schema, r.index)};  -- a partitioned index: not "
            "CONCURRENTLY (PostgreSQL cannot), it locks the table and its partitions"
        )
    return f"DROP INDEX CONCURRENTLY IF EXISTS {_q(r.schema, r.index)};"


def _incomplete_partitioned_index(r: Any) -> dict[str, Any]:
    """A partitioned table's index left invalid because a partition has no index attached
    to it (`CREATE INDEX ... ON ONLY`): build one on each such partition and attach it,
    or drop the partitioned index."""
    missing = list(r.missing_partitions) if isinstance(r.missing_partitions, list) else []
    definition = str(r.definition)
    using = definition[definition.find(" USING ", definition.find(" ON ")) :]
    create = "CREATE UNIQUE INDEX" if bool(r.is_unique) else "CREATE INDEX"
    steps = []
    for part in missing:
        name = f"{part['table']}_{r.index}"
        # a partition partitioned in turn takes no CONCURRENTLY either
        concurrently = "" if part["is_partitioned"] else " CONCURRENTLY"
        steps.append(
            f"{create}{concurrently} {quote_ident(name)} ON {_q(part['schema'], part['table'])}"
            f"{using};\n"
            f"ALTER INDEX {_q(r.schema, r.index)} ATTACH PARTITION {_q(part['schema'], name)};"
        )
    drop = _drop_index(r)
    if steps:
        sql = (
            "-- build an index on each partition without one, and attach it:\n"
            + "\n".join(steps)
            + "\n-- or, if the index is not wanted:\n-- "
            + drop
        )
    else:
        sql = drop
    parts = ", ".join(p["table"] for p in missing) or "none left"
    return _rec(
        "warning",
        "invalid_index",
        _q(r.schema, r.index),
        f"Partitioned index {r.index} on {r.table} is incomplete (created ON ONLY): attach an "
        "index of each partition, or drop it",
        f"indisvalid = false until every partition has an index attached to it "
        f"({fmt.counted(len(missing), 'partition')} without one: {parts}); it serves no query "
        "until then",
        sql,
    )


def _needless_invalid_index(r: Any, equivalent: str, valid: bool) -> dict[str, Any]:
    """An invalid index another index of its table makes needless (`equivalent`): the
    leftover of an interrupted REINDEX CONCURRENTLY (`_ccnew`, `_ccold`), or a failed build
    an index covers. Drop it; re-created, it would only duplicate `equivalent`."""
    leftover = REINDEX_LEFTOVER.match(str(r.index))
    if leftover and leftover["name"] != equivalent:
        leftover = None  # named like one, but another index covers it
    kept = _q(r.schema, equivalent)
    if leftover:
        what = (
            f"the new copy an interrupted REINDEX CONCURRENTLY of {equivalent} left"
            if leftover["kind"] == "new"
            else f"the old index an interrupted REINDEX CONCURRENTLY of {equivalent} left "
            "(the rebuild itself succeeded)"
        )
        title = f"Invalid index {r.index} on {r.table}: a leftover of REINDEX CONCURRENTLY, drop it"
    else:
        what = f"a failed build that {equivalent} covers"
        title = f"Invalid index {r.index} on {r.table}: {equivalent} covers it, drop it"
    sql = f"DROP INDEX CONCURRENTLY IF EXISTS {_q(r.schema, r.index)};"
    if not valid:
        sql += (
            f"\n-- {equivalent} is invalid too: rebuild it as its own recommendation says, "
            f"e.g. REINDEX INDEX CONCURRENTLY {kept};"
        )
    elif leftover and leftover["kind"] == "new":
        sql += f"\n-- then, if the rebuild is still wanted: REINDEX INDEX CONCURRENTLY {kept};"
    same = "has the same definition" if leftover else "covers its keys"
    return _rec(
        "warning",
        "invalid_index",
        _q(r.schema, r.index),
        title,
        f"indisvalid = false: {what}; {_size(r.size_bytes)} maintained on every write, used "
        f"by no query. {equivalent} ({'valid' if valid else 'invalid'}) {same}: re-creating "
        f"{r.index} would only make a permanent duplicate of it",
        sql,
    )


def _invalid_index(r: Any, insp: Inspector | None) -> dict[str, Any]:
    """An invalid index: drop and rebuild it. A UNIQUE one failed most likely on duplicate
    keys, and its rebuild fails again while they remain: the SQL lists them first, and
    with `insp` the check counts them now. A partitioned table's index is invalid for
    another reason: a partition without an index attached to it. One that another index
    makes needless (`equivalent_index`: a REINDEX CONCURRENTLY leftover, a build a valid
    index covers) is only dropped."""
    if bool(getattr(r, "is_partitioned", False)):
        return _incomplete_partitioned_index(r)
    equivalent = getattr(r, "equivalent_index", None)
    if isinstance(equivalent, str):
        return _needless_invalid_index(r, equivalent, bool(getattr(r, "equivalent_valid", True)))
    definition = str(r.definition).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)
    definition = definition.replace("CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1)
    rebuild = f"DROP INDEX CONCURRENTLY IF EXISTS {_q(r.schema, r.index)};\n{definition};"
    evidence = (
        f"indisvalid = false (a failed CREATE INDEX CONCURRENTLY or REINDEX); "
        f"{_size(r.size_bytes)} maintained on every write, used by no query"
    )
    unique = bool(getattr(r, "is_unique", False)) and isinstance(
        getattr(r, "key_definitions", None), list | tuple
    )
    if not unique:
        return _rec(
            "warning",
            "invalid_index",
            _q(r.schema, r.index),
            f"Invalid index {r.index} on {r.table}: rebuild or drop it",
            evidence,
            rebuild,
        )
    from .indexes import duplicate_key_count, duplicate_keys_sql

    predicate = r.predicate if isinstance(r.predicate, str) else None
    finder = duplicate_keys_sql(
        r.schema,
        r.table,
        list(r.key_definitions),
        predicate,
        nulls_not_distinct=bool(r.nulls_not_distinct),
    )
    check = None
    if insp is not None:
        try:
            n = duplicate_key_count(insp, r._asdict())
        except DatabaseError:
            n = None
        if n is not None:
            check = (
                f"{fmt.counted(n, 'duplicate key')} now: the rebuild fails until they are resolved"
                if n
                else "no duplicate key now: the rebuild should succeed"
            )
    return _rec(
        "warning",
        "invalid_index",
        _q(r.schema, r.index),
        f"Invalid unique index {r.index} on {r.table}: resolve its duplicate keys, then rebuild it",
        evidence + "; a unique build that failed on duplicate keys fails again on the same "
        "rows: re-creating it as it is does not work while they remain. The first query "
        "lists them.",
        "-- 1. the duplicate keys (resolve each, e.g. merge or delete rows, until none is "
        f"left):\n{finder};\n-- 2. then rebuild the index:\n{rebuild}",
        check,
    )


def _fk_index_kept(r: Any, foreign_key: str, age: str) -> dict[str, Any]:
    """An unused index kept: a foreign key of its table needs it (no DROP proposed)."""
    references = getattr(r, "foreign_key_references", None)
    referenced = references if isinstance(references, str) else "the referenced table"
    plural = "," in foreign_key
    noun = "foreign keys" if plural else "foreign key"
    whose = "foreign keys'" if plural else "foreign key's"
    return _rec(
        "info",
        "unused_index",
        _q(r.schema, r.index),
        f"Unused index {r.index} on {r.table}: kept, {noun} {foreign_key} "
        + ("need it" if plural else "needs it"),
        f"0 scans{age}; {_size(r.size_bytes)}. No drop is proposed: no other index that stays "
        f"supports the {whose} columns, and without one every delete or key update on "
        f"{referenced} scans {r.table} for referencing rows (the foreign key would then be "
        "reported as having no supporting index). Unused so far means no such delete or "
        "update ran since the statistics started counting.",
        None,
    )


def _redundant_kept(r: Any) -> dict[str, Any]:
    """A redundant index kept: its cover is proposed for a drop itself (`proposed_drops`),
    and dropping both would leave its columns without an index (no DROP proposed)."""
    return _rec(
        "info",
        "duplicate_index",
        _q(r.schema, r.index),
        f"Redundant index {r.index} on {r.table}: kept, its cover {r.covered_by} is "
        "proposed for a drop",
        f"{r.definition} is covered by {r.covered_by_definition}; "
        f"{_size(r.size_bytes)}, {fmt.counted(int(r.scans), 'scan')}. No drop is proposed: "
        f"{r.covered_by} is proposed for a drop itself (unused), and running both drops "
        "would leave these columns without an index. "
        f"Once {r.covered_by} is dropped, {r.index} is no longer redundant.",
        None,
    )


def _autovacuum_said(r: Any, server_off: str) -> str:
    """What stops autovacuum on the table of row `r`: its own setting, the server's."""
    return ("" if r.autovacuum_enabled else "; autovacuum is DISABLED on this table") + (
        f"; autovacuum is off server-wide ({server_off})" if server_off else ""
    )


def _query_statistics(status: dict[str, Any], insp: Inspector | None) -> dict[str, Any]:
    """pg_stat_statements unavailable (`queries.status`): what to run depends on why. Not
    installed in this database: CREATE EXTENSION (once it is in shared_preload_libraries);
    installed but not loaded: shared_preload_libraries and a restart; installed but the
    role may not read it: the GRANTs (pg_read_all_stats alone does not give SELECT on the
    view, it lets the role see every role's statements)."""
    message = str(status.get("message"))
    schema = status.get("schema")
    title = "Query statistics are not available"
    if not isinstance(schema, str):
        sql: str | None = (
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;  "
            "-- after adding it to shared_preload_libraries"
        )
    elif "shared_preload_libraries" in message:
        title = "Query statistics are not available: pg_stat_statements is not loaded"
        sql = (
            "-- the extension exists: add 'pg_stat_statements' to shared_preload_libraries "
            "(postgresql.conf, or ALTER SYSTEM SET shared_preload_libraries = "
            "'<the libraries listed now>,pg_stat_statements'), then restart PostgreSQL"
        )
    elif "permission denied" in message or "privilege" in message:
        role = "<role>"
        if insp is not None:
            try:
                role = quote_ident(str(insp.scalar("SELECT current_user")))
            except DatabaseError:
                pass
        ext = quote_ident(schema)
        title = "Query statistics are not available: the role may not read pg_stat_statements"
        sql = (
            f"GRANT SELECT ON {ext}.pg_stat_statements TO {role};\n"
            f"GRANT EXECUTE ON FUNCTION {ext}.pg_stat_statements(boolean) TO {role};\n"
            f"GRANT pg_read_all_stats TO {role};  -- to see the statements of every role, "
            "not only its own"
        )
    else:
        sql = None
    return _rec("info", "extension", "pg_stat_statements", title, message, sql)


def recommendations(
    findings: dict[str, pd.DataFrame | Any],
    thresholds: DbThresholds | None = None,
    *,
    insp: Inspector | None = None,
) -> pd.DataFrame:
    """Recommendations from the findings of the checks (keys as `report.findings`):
    unused, duplicate, invalid, fk_without_index, seq_scan, autovacuum, dead_tuples,
    never_analyzed, bloat, wraparound, sequences, long_running, idle_in_transaction,
    connections, cache, slow, slow_per_hour, queries_status, embeddings_coverage,
    embeddings_log.

    Columns: severity (critical | warning | info), kind, object, title, evidence, sql
    (printed, never executed; None when there is nothing to run), check (hypopg result).
    With `insp`, suggested indexes are checked with hypopg when it is installed.

    The DROPs proposed for unused and redundant indexes are safe run all together
    (`indexes.proposed_drops`): afterwards every index that had scans still has an index
    serving its leading columns, every foreign key a supporting index, and of a chain of
    indexes covering one another (used or not) one stays. A redundant index whose cover
    is proposed for a drop as unused is kept (said, no DROP): give `duplicate` with
    `unused`, or every redundant index's cover is taken to stay.
    """
    t = thresholds or DbThresholds()
    recs: list[dict[str, Any]] = []

    def frame(key: str) -> pd.DataFrame:
        value = findings.get(key)
        return value if isinstance(value, pd.DataFrame) else pd.DataFrame()

    for r in frame("invalid").itertuples(index=False):
        recs.append(_invalid_index(r, insp))
    unused = frame("unused")
    duplicate = frame("duplicate")
    drops = proposed_drops(unused, duplicate)
    for r in duplicate.itertuples(index=False):
        if (r.schema, r.index) not in drops:
            recs.append(_redundant_kept(r))
            continue
        recs.append(
            _rec(
                "warning",
                "duplicate_index",
                _q(r.schema, r.index),
                f"Redundant index {r.index} on {r.table}: covered by {r.covered_by}",
                f"{r.definition} is covered by {r.covered_by_definition}; "
                f"{_size(r.size_bytes)}, {fmt.counted(int(r.scans), 'scan')} (the covering "
                "index serves them)",
                _drop_index(r),
            )
        )
    duplicate_names = (
        set(zip(duplicate["schema"], duplicate["index"], strict=True))
        if {"schema", "index"} <= set(duplicate.columns)
        else set()
    )
    age = _stats_age(unused)
    for r in unused.itertuples(index=False):
        if (r.schema, r.index) in duplicate_names:
            continue  # already recommended as redundant
        proposed = bool(getattr(r, "drop_proposed", True))
        foreign_key = getattr(r, "foreign_key", None)
        if isinstance(foreign_key, str):
            recs.append(_fk_index_kept(r, foreign_key, age))
            continue
        if proposed:
            title = f"Unused index {r.index} on {r.table}"
            advice = "Check replicas and rare jobs before dropping."
            sql: str | None = _drop_index(r)
        else:
            title = f"Unused index {r.index} on {r.table}: too early to drop"
            advice = (
                "No drop is proposed before the statistics cover "
                f"{min_age_text(t.unused_index_min_age)} ([thresholds] unused_index_min_age): "
                "a fresh index, or a job that runs "
                "monthly, shows 0 scans until then."
            )
            sql = None
        recs.append(
            _rec(
                "info",
                "unused_index",
                _q(r.schema, r.index),
                title,
                f"0 scans{age}; {_size(r.size_bytes)}; not a primary key, unique or "
                f"constraint index. {advice}",
                sql,
            )
        )
    for r in frame("fk_without_index").itertuples(index=False):
        columns = list(r.columns)
        cols = ", ".join(quote_ident(c) for c in columns)
        check = None
        if insp is not None:
            try:
                hypo = hypothetical_index(insp, r.schema, r.table, columns)
            except DatabaseError:
                hypo = None
            if hypo is not None:
                check = (
                    f"hypopg: lookup cost {hypo['before']:.1f} -> {hypo['after']:.1f} "
                    f"with a hypothetical index"
                )
        recs.append(
            _rec(
                "warning",
                "fk_without_index",
                f"{_q(r.schema, r.table)} ({cols})",
                f"Foreign key {r.constraint} on {r.table} ({cols}) has no supporting index",
                f"references {r.referenced_table}; deletes and key updates there scan "
                f"{r.table} (~{fmt.counted(r.rows_estimate, 'row')})",
                f"CREATE INDEX CONCURRENTLY ON {_q(r.schema, r.table)} ({cols});",
                check,
            )
        )
    for r in frame("seq_scan").itertuples(index=False):
        share = getattr(r, "seq_read_share", None)
        read_share = (
            f" ({_pct(share, t.seq_scan_ratio, 1.0)} of the rows read from it)"
            if share is not None and not pd.isna(share)
            else ""
        )
        recs.append(
            _rec(
                "info",
                "seq_scan_table",
                _q(r.schema, r.table),
                f"{r.table} is read mostly by sequential scans: an index candidate",
                f"{fmt.counted(r.seq_scan, 'sequential scan')} "
                f"({_pct(r.seq_scan_share, 1.0)} of scans) read "
                f"{fmt.counted(r.seq_tup_read, 'row')}{read_share}; "
                f"~{fmt.counted(r.rows_estimate, 'row')}. Find the "
                "filtering columns in the top queries (lsops's own reads are sequential "
                "scans too, a few per check).",
                None,
            )
        )
    autovacuum = findings.get("autovacuum")
    server_off = autovacuum_off(autovacuum)
    if server_off:
        recs.append(
            _rec(
                "warning",
                "autovacuum",
                "autovacuum",
                f"Autovacuum is off server-wide ({server_off})",
                "no table is vacuumed or analyzed automatically, whatever its own setting "
                "(only the vacuums preventing transaction ID wraparound still run): dead "
                "tuples pile up and the planner's statistics go stale",
                "\n".join(
                    f"ALTER SYSTEM SET {k} = on;"
                    for k in ("autovacuum", "track_counts")
                    if not autovacuum.get(k, True)
                )
                + "\nSELECT pg_reload_conf();  -- or the provider's settings page",
            )
        )
    for r in frame("dead_tuples").itertuples(index=False):
        recs.append(
            _rec(
                "warning",
                "vacuum",
                _q(r.schema, r.table),
                f"{r.table} needs VACUUM: {fmt.counted(int(r.dead_tuples), 'dead tuple')}",
                f"{int(r.dead_tuples):,} dead / {int(r.live_tuples):,} live "
                f"({_pct(r.dead_ratio, t.dead_tuple_ratio, 1.0)}); last vacuum {_when(r.last_vacuum)}, "
                f"last autovacuum {_when(r.last_autovacuum)}" + _autovacuum_said(r, server_off),
                f"VACUUM (ANALYZE) {_q(r.schema, r.table)};",
            )
        )
    for r in frame("never_analyzed").itertuples(index=False):
        recs.append(
            _rec(
                "warning",
                "analyze",
                _q(r.schema, r.table),
                f"{r.table} was never analyzed: no planner statistics",
                f"{fmt.counted(int(r.modified_since_analyze), 'row change')} (inserts, "
                f"updates, deletes), ~{fmt.counted(int(r.live_tuples), 'live row')}, and no "
                "planner statistics (never analyzed, or only while empty): the planner "
                "guesses its row count and value distributions, and no bloat estimate is "
                "possible" + _autovacuum_said(r, server_off),
                f"ANALYZE {_q(r.schema, r.table)};",
            )
        )
    bloat = frame("bloat")
    if not bloat.empty:
        for r in bloat[bloat["flagged"]].itertuples(index=False):
            recs.append(
                _rec(
                    "info",
                    "bloat",
                    _q(r.schema, r.table),
                    f"{r.table} looks bloated (estimate): ~{_size(r.bloat_bytes)} wasted",
                    f"{_size(r.table_bytes)} on disk against ~{_size(r.expected_bytes)} needed "
                    f"({_pct(r.bloat_ratio, t.bloat_ratio, 1.0)} estimated waste)",
                    f"VACUUM (ANALYZE) {_q(r.schema, r.table)};  "
                    "-- space returns to the OS only with VACUUM FULL or pg_repack",
                )
            )
    wrap = (t.wraparound_warn, t.wraparound_critical)
    for r in frame("wraparound").itertuples(index=False):
        if r.severity == "ok":
            continue
        recs.append(
            _rec(
                r.severity,
                "wraparound",
                str(r.database),
                f"Database {r.database} is approaching transaction ID wraparound",
                f"xid age {fmt.integer(r.xid_age)} ({_pct(r.xid_fraction, *wrap)} of 2^31), "
                f"multixact age {fmt.integer(r.mxid_age)} ({_pct(r.mxid_fraction, *wrap)}); "
                f"a warning from {fmt.exact_pct(t.wraparound_warn)}, critical from "
                f"{fmt.exact_pct(t.wraparound_critical)}",
                "VACUUM (FREEZE, ANALYZE);  -- in that database, oldest tables first",
            )
        )
    for r in frame("sequences").itertuples(index=False):
        row = r._asdict()
        column = r.column if isinstance(r.column, str) else None
        capped = (
            f"the column {column} ({r.column_type}) caps it"
            if row.get("capped_by") == "column"
            else f"its own {'MAXVALUE' if int(row.get('increment_by', 1)) > 0 else 'MINVALUE'} "
            f"({row.get('sequence_type', 'bigint')}) caps it"
        )
        recs.append(
            _rec(
                "critical" if float(r.fraction) >= t.sequence_critical else "warning",
                "sequence",
                _q(r.schema, r.sequence),
                f"Sequence {r.sequence} is at "
                f"{_pct(r.fraction, t.sequence_warn, t.sequence_critical, 1.0)} of its "
                + ("maximum" if int(row.get("increment_by", 1)) > 0 else "minimum"),
                f"last value {int(r.last_value)} of {int(r.max_value)}"
                + (f" (feeds {column})" if column else "")
                + f"; {capped}"
                + ("; it CYCLEs: it will wrap and reuse values" if row.get("cycle") else ""),
                sequence_fix(row) if "capped_by" in row else None,
            )
        )
    for key, what in (
        ("long_running", "Long-running query"),
        ("idle_in_transaction", "Idle in transaction"),
    ):
        for r in frame(key).itertuples(index=False):
            seconds = r.query_s if key == "long_running" else r.state_s
            recs.append(
                _rec(
                    "warning",
                    key,
                    f"pid {int(r.pid)}",
                    f"{what}: pid {int(r.pid)} ({r.application_name or 'no application'})",
                    f"{float(seconds):.0f} s; user {r.user}; query: {str(r.query)[:200]}",
                    f"SELECT pg_cancel_backend({int(r.pid)});  -- or pg_terminate_backend",
                )
            )
    conns = frame("connections")
    if not conns.empty and bool(conns["flagged"].iloc[0]):
        c = conns.iloc[0]
        recs.append(
            _rec(
                "warning",
                "connections",
                "max_connections",
                "Connections near max_connections",
                f"{int(c['total'])} of {int(c['usable'])} usable connections "
                f"({_pct(c['fraction'], t.connections_warn, 1.0)}; flagged from "
                f"{fmt.exact_pct(t.connections_warn)}); {int(c['idle'])} idle: use a pooler",
                None,
            )
        )
    cache = frame("cache")
    for r in cache.itertuples(index=False) if not cache.empty else []:
        if r.flagged:
            recs.append(
                _rec(
                    "info",
                    "cache_hit",
                    str(r.kind),
                    f"{str(r.kind).capitalize()} cache hit ratio "
                    f"{_pct(r.ratio, t.cache_hit_ratio, 1.0, digits=1)} is below "
                    f"{fmt.exact_pct(t.cache_hit_ratio)}",
                    f"{fmt.counted(int(r.hits), 'hit')}, {fmt.counted(int(r.reads), 'read')} from disk",
                    None,
                )
            )
    for r in frame("slow").itertuples(index=False):
        recs.append(
            _rec(
                "warning",
                "slow_query",
                f"queryid {r.queryid}",
                f"Slow query: mean {float(r.mean_ms):.1f} ms over {fmt.counted(r.calls, 'call')}",
                f"total {float(r.total_ms) / 1000:.1f} s, {fmt.counted(r.rows, 'row')}; "
                f"query: {str(r.query)[:300]}",
                None,
            )
        )
    per_hour = frame("slow_per_hour")
    if not per_hour.empty and per_hour["over_threshold"].any():
        over = per_hour[per_hour["over_threshold"]]
        worst = over.loc[over["slow_per_hour"].idxmax()]
        recs.append(
            _rec(
                "warning",
                "slow_per_hour",
                "pg_stat_statements",
                f"More than {t.slow_queries_per_hour} slow queries an hour in "
                f"{fmt.counted(len(over), 'hour')}",
                f"worst hour {worst['hour']}: {float(worst['slow_per_hour']):.1f} slow calls an "
                f"hour ({fmt.counted(worst['slow_calls'], 'slow call')} between snapshots "
                f"{fmt.number(worst['hours'], 1)} h apart)",
                None,
            )
        )
    status = findings.get("queries_status")
    if isinstance(status, dict) and not status.get("available", True):
        recs.append(_query_statistics(status, insp))
    log = findings.get("embeddings_log")
    if isinstance(log, dict) and log.get("failed", 0):
        recs.append(
            _rec(
                "warning",
                "indexing_failures",
                "context_indexing_log",
                f"{fmt.counted(int(log['failed']), 'failed embedding indexing run')}",
                "see the latest failures; re-index through the API: POST /api/context/index/all",
                None,
            )
        )
    coverage = frame("embeddings_coverage")
    if not coverage.empty:
        for r in coverage.itertuples(index=False):
            missing = 0 if pd.isna(r.missing) else int(r.missing)
            stale = 0 if pd.isna(r.stale) else int(r.stale)
            if missing or stale:
                route = INDEX_ROUTES.get(str(r.entity_type))
                reindex = (
                    f"re-index: {route}"
                    if route
                    else f"re-index: the API has no route for {r.entity_type} entities alone "
                    "(POST /api/context/index/all re-indexes every type, or the runbook's "
                    f"{RUNBOOK_COMMAND})"
                )
                recs.append(
                    _rec(
                        "info",
                        "embeddings_coverage",
                        str(r.entity_type),
                        f"{r.entity_type}: {missing} without embedding, {stale} stale",
                        f"{int(r.entities)} {r.source_table}, {int(r.embedded)} embedded; "
                        + reindex,
                        None,
                    )
                )
            if int(r.null_embeddings):
                recs.append(
                    _rec(
                        "warning",
                        "null_embeddings",
                        str(r.entity_type),
                        f"{r.entity_type}: {_rows(int(r.null_embeddings))} with a NULL embedding",
                        "rows stored without a vector are invisible to similarity search",
                        None,
                    )
                )
    df = pd.DataFrame(recs, columns=RECOMMENDATION_COLUMNS)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    if not df.empty:
        df = df.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(
            drop=True
        )
    return df


def summary(recs: pd.DataFrame) -> pd.DataFrame:
    """Findings by severity: severity, count, kinds (every severity listed, zero included:
    its kinds "none", never a blank cell a reader takes for unknown)."""
    rows = []
    for severity in SEVERITIES:
        part = recs[recs["severity"] == severity] if not recs.empty else recs
        kinds = sorted(set(part["kind"])) if not part.empty else []
        rows.append(
            {"severity": severity, "count": int(len(part)), "kinds": ", ".join(kinds) or "none"}
        )
    return pd.DataFrame(rows, columns=["severity", "count", "kinds"])
