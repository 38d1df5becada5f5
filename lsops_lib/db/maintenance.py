"""Maintenance: dead tuples and (auto)vacuum/analyze, bloat, wraparound, sequences,
sessions, connections and cache hit ratios.

What the inspecting role may not see is said, never silently missing: sequences it may not
read (`pg_sequences` hides their last value), tables it may not read (`pg_stats` hides their
statistics, so no bloat estimate), and other roles' sessions (`pg_stat_activity` hides them
from a role that is neither superuser nor has pg_read_all_stats): each is a note on the
inspector (`insp.unavailable`, the `unavailable` of `lsops db maintenance --json`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import fmt
from . import drift
from ._frames import TS, empty, typed
from .connect import Inspector, count_param
from .queries import mask_secrets
from .settings import DbThresholds

__all__ = [
    "autovacuum_off",
    "autovacuum_settings",
    "cache_hit_ratios",
    "connections",
    "database_wraparound",
    "dead_tuple_tables",
    "idle_in_transaction",
    "long_running_queries",
    "never_analyzed_tables",
    "sequences_near_max",
    "table_bloat",
    "table_maintenance",
    "table_wraparound",
]

XID_LIMIT = 2**31  # transaction IDs and multixacts wrap around after 2^31
TIME_COLUMNS = ["last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"]
# the types of the columns that may be NULL in every row of an answer (no table with a
# tuple, no sequence feeding a column, sessions over a unix socket): as with a value
_MAINTENANCE_DTYPES = {"dead_ratio": "float64"} | dict.fromkeys(TIME_COLUMNS, TS)
_SEQUENCE_DTYPES = {
    "schema": "str",
    "sequence": "str",
    "column": "str",
    "table_schema": "str",
    "table_name": "str",
    "column_name": "str",
    "sequence_type": "str",
    "column_type": "str",
    "increment_by": "int64",
    "cycle": "bool",
    "last_value": "int64",
    "sequence_max": "int64",
    "column_max": "object",  # Python ints, None without a column or for a bigint one
    "max_value": "int64",
    "fraction": "float64",
    "capped_by": "str",
    "severity": "str",
}
_SESSION_DTYPES = {
    "pid": "int64",
    "user": "str",
    "application_name": "str",
    "client_addr": "str",
    "state": "str",
    "wait_event_type": "str",
    "wait_event": "str",
    "query_s": "float64",
    "transaction_s": "float64",
    "state_s": "float64",
    "query": "str",
}


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _unreadable(insp: Inspector, what: str, kinds: str, privilege: str, lacks: str) -> None:
    """Note the relations of `kinds` (pg_class.relkind letters; the system schemas left
    out) on which the role has none of `privilege`: `what` cannot see them."""
    check = "has_sequence_privilege" if kinds == "S" else "has_table_privilege"
    df = insp.frame(
        f"""
        SELECT current_user AS role, n.nspname || '.' || c.relname AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = ANY(:kinds)
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT pg_is_other_temp_schema(n.oid)
          AND NOT {check}(c.oid, :privilege)
        ORDER BY 2
        """,
        {"kinds": list(kinds), "privilege": privilege},
    )
    if not df.empty:
        noun = "sequence" if kinds == "S" else "table"
        drift.note(
            insp,
            f"{what}: {fmt.counted(len(df), noun)} not checked (role {df['role'].iloc[0]} "
            f"{lacks}): {_names(list(df['name']))}",
        )


def _hidden_sessions(insp: Inspector, what: str) -> None:
    """Note the processes of other roles that pg_stat_activity hides from this role (it is
    neither superuser nor has the privileges of pg_read_all_stats): `what` misses them."""
    row = insp.frame(
        """
        SELECT current_user AS role,
               pg_has_role('pg_read_all_stats', 'USAGE') AS sees_all,
               count(*) FILTER (WHERE backend_type IS NULL AND usesysid IS NOT NULL) AS hidden
        FROM pg_stat_activity
        """
    ).iloc[0]
    if not row["sees_all"] and int(row["hidden"]):
        drift.note(
            insp,
            f"{what}: {fmt.counted(int(row['hidden']), 'session')} of other roles not seen "
            f"(role {row['role']} is neither superuser nor a member of pg_read_all_stats "
            "or pg_monitor)",
        )


# the spellings of a boolean reloption PostgreSQL reads as false (parse_bool: any prefix of
# "false" or "no", "of(f)", "0"; case-insensitive), as 'autovacuum_enabled=<value>'
_FALSE_SPELLINGS = ("f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0")
_AUTOVACUUM_OFF = ", ".join(f"'autovacuum_enabled={v}'" for v in _FALSE_SPELLINGS)
# a table's own setting as a column (`c`: its pg_class row)
_AUTOVACUUM_ENABLED = f"""NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) AS o
                           WHERE lower(o) IN ({_AUTOVACUUM_OFF})) AS autovacuum_enabled"""


def autovacuum_settings(insp: Inspector) -> dict[str, Any]:
    """The server-wide settings autovacuum needs: {autovacuum: bool, track_counts: bool,
    analyze_threshold: int, running: bool}. With `autovacuum = off` (or `track_counts =
    off`, which it needs) no table is vacuumed nor analyzed automatically, whatever its own
    `autovacuum_enabled`; only the vacuums preventing transaction ID wraparound still run."""
    row = insp.frame(
        """
        SELECT current_setting('autovacuum') AS autovacuum,
               current_setting('track_counts') AS track_counts,
               current_setting('autovacuum_analyze_threshold')::int AS analyze_threshold
        """
    ).iloc[0]
    on = str(row["autovacuum"]) == "on"
    counts = str(row["track_counts"]) == "on"
    return {
        "autovacuum": on,
        "track_counts": counts,
        "analyze_threshold": int(row["analyze_threshold"]),
        "running": on and counts,
    }


def autovacuum_off(settings: Any) -> str:
    """'autovacuum = off' (and/or 'track_counts = off', which autovacuum needs) when the
    server's settings (`autovacuum_settings`) stop autovacuum; '' otherwise (or unknown)."""
    if not isinstance(settings, dict):
        return ""
    off = [k for k in ("autovacuum", "track_counts") if settings.get(k) is False]
    return " and ".join(f"{k} = off" for k in off)


_NEVER_ANALYZED_DTYPES = {
    "schema": "str",
    "table": "str",
    "live_tuples": "int64",
    "modified_since_analyze": "int64",
    "table_bytes": "int64",
    "autovacuum_enabled": "bool",
}


def never_analyzed_tables(insp: Inspector) -> pd.DataFrame:
    """Tables with no planner statistics (never analyzed, or analyzed only while empty)
    and at least as many changes since as make autovacuum analyze a table
    (`autovacuum_analyze_threshold`, 50 by default): the planner guesses their row counts
    and value distributions, and `table_bloat` has no estimate for them. ANALYZE is due.
    Tables the role may not read are left out (pg_stats hides theirs; `table_bloat` notes
    them).

    Columns: schema, table, live_tuples, modified_since_analyze, table_bytes,
    autovacuum_enabled (the table's own setting; most changes first)."""
    df = insp.frame(
        f"""
        SELECT s.schemaname AS schema,
               s.relname AS "table",
               s.n_live_tup AS live_tuples,
               s.n_mod_since_analyze AS modified_since_analyze,
               pg_relation_size(c.oid) AS table_bytes,
               {_AUTOVACUUM_ENABLED}
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        WHERE c.relkind IN ('r', 'm')
          AND s.n_mod_since_analyze >= current_setting('autovacuum_analyze_threshold')::int
          AND s.n_mod_since_analyze > 0
          AND has_table_privilege(c.oid, 'SELECT')
          AND NOT EXISTS (SELECT 1 FROM pg_stats st
                          WHERE st.schemaname = s.schemaname AND st.tablename = s.relname)
        ORDER BY s.n_mod_since_analyze DESC, s.schemaname, s.relname
        """
    )
    if df.empty:
        return empty(_NEVER_ANALYZED_DTYPES)
    return typed(df, _NEVER_ANALYZED_DTYPES)


def table_maintenance(insp: Inspector) -> pd.DataFrame:
    """Per table: live and dead tuples, dead share, last (auto)vacuum and (auto)analyze.

    Columns: schema, table, live_tuples, dead_tuples, dead_ratio, last_vacuum,
    last_autovacuum, last_analyze, last_autoanalyze, vacuum_count, autovacuum_count,
    analyze_count, autoanalyze_count, modified_since_analyze, autovacuum_enabled
    (most dead tuples first).

    `autovacuum_enabled` is the table's own setting (`WITH (autovacuum_enabled = ...)`),
    read as PostgreSQL reads a boolean: off, false, no, 0 and their accepted prefixes (f,
    fa, n, of, ...), in any case, disable it. `toast.autovacuum_enabled` is its TOAST
    table's, not read here. The server-wide `autovacuum` setting is `autovacuum_settings`'.
    """
    df = insp.frame(
        f"""
        SELECT s.schemaname AS schema,
               s.relname AS "table",
               s.n_live_tup AS live_tuples,
               s.n_dead_tup AS dead_tuples,
               s.n_dead_tup::float / NULLIF(s.n_live_tup + s.n_dead_tup, 0) AS dead_ratio,
               s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
               s.vacuum_count, s.autovacuum_count, s.analyze_count, s.autoanalyze_count,
               s.n_mod_since_analyze AS modified_since_analyze,
               {_AUTOVACUUM_ENABLED}
        FROM pg_stat_user_tables s
        JOIN pg_class c ON c.oid = s.relid
        ORDER BY s.n_dead_tup DESC, s.schemaname, s.relname
        """
    )
    return typed(df, _MAINTENANCE_DTYPES)


def dead_tuple_tables(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Tables due a VACUUM: at least dead_tuples_min dead tuples and a dead share of at
    least dead_tuple_ratio. Same columns as `table_maintenance`."""
    t = thresholds or DbThresholds()
    df = table_maintenance(insp)
    mask = (df["dead_tuples"] >= t.dead_tuples_min) & (
        df["dead_ratio"].fillna(0) >= t.dead_tuple_ratio
    )
    return df[mask].reset_index(drop=True)


def table_bloat(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Estimated table bloat: pages the table has against pages its rows need, from the
    planner statistics (row estimate, average column widths, null fractions, fillfactor).
    An ESTIMATE (the method of the well-known ioguix query, simplified): tables never
    analyzed have no estimate (`never_analyzed_tables` lists those due an ANALYZE, and the
    recommendations say it), nor tables the role may not read (noted on `insp`).

    Columns: schema, table, table_bytes, expected_bytes, bloat_bytes, bloat_ratio, flagged
    (bloat_ratio >= bloat_ratio and bloat_bytes >= bloat_min_bytes); most bloat first.
    """
    t = thresholds or DbThresholds()
    _unreadable(insp, "bloat", "rm", "SELECT", "has no SELECT, pg_stats hides them")
    df = insp.frame(
        """
        WITH widths AS (
            SELECT s.schemaname, s.tablename,
                   sum((1 - COALESCE(s.null_frac, 0)) * COALESCE(s.avg_width, 0)) AS data_width,
                   max(COALESCE(s.null_frac, 0)) > 0 AS has_nulls,
                   count(*) AS n_cols
            FROM pg_stats s
            GROUP BY s.schemaname, s.tablename
        ), sizes AS (
            SELECT n.nspname AS schema, c.relname AS "table",
                   c.relpages::bigint AS pages, GREATEST(c.reltuples, 0) AS tuples,
                   current_setting('block_size')::int AS bs,
                   COALESCE((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int
                             FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100)
                       AS fillfactor,
                   w.data_width, w.has_nulls, w.n_cols
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN widths w ON w.schemaname = n.nspname AND w.tablename = c.relname
            WHERE c.relkind IN ('r', 'm')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        ), estimate AS (
            SELECT *,
                   -- tuple: 23-byte header (+ null bitmap) aligned to 8, data aligned to 8,
                   -- plus its 4-byte line pointer
                   (ceil((23 + CASE WHEN has_nulls THEN ceil(n_cols / 8.0) ELSE 0 END) / 8.0) * 8
                    + ceil(data_width / 8.0) * 8 + 4) AS tuple_bytes
            FROM sizes
        )
        SELECT schema, "table",
               pages * bs AS table_bytes,
               (ceil(tuples / GREATEST(floor((bs - 24) * fillfactor / 100.0 / tuple_bytes), 1))
                   * bs)::bigint AS expected_bytes
        FROM estimate
        """
    )
    columns = [
        "schema",
        "table",
        "table_bytes",
        "expected_bytes",
        "bloat_bytes",
        "bloat_ratio",
        "flagged",
    ]
    df["table_bytes"] = df["table_bytes"].astype("int64")
    df["expected_bytes"] = df["expected_bytes"].astype("int64")
    df["bloat_bytes"] = (df["table_bytes"] - df["expected_bytes"]).clip(lower=0)
    df["bloat_ratio"] = (df["bloat_bytes"] / df["table_bytes"].where(df["table_bytes"] > 0)).fillna(
        0.0
    )
    df["flagged"] = (df["bloat_ratio"] >= t.bloat_ratio) & (df["bloat_bytes"] >= t.bloat_min_bytes)
    return df[columns].sort_values("bloat_bytes", ascending=False).reset_index(drop=True)


def database_wraparound(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Transaction ID and multixact age of every database against the 2^31 limit.

    Columns: database, xid_age, xid_fraction, mxid_age, mxid_fraction,
    autovacuum_freeze_max_age, severity (ok | warning | critical).
    """
    t = thresholds or DbThresholds()
    df = insp.frame(
        """
        SELECT datname AS database,
               age(datfrozenxid)::bigint AS xid_age,
               mxid_age(datminmxid)::bigint AS mxid_age,
               current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age
        FROM pg_database
        WHERE datallowconn
        ORDER BY age(datfrozenxid) DESC
        """
    )
    df["xid_fraction"] = df["xid_age"] / XID_LIMIT
    df["mxid_fraction"] = df["mxid_age"] / XID_LIMIT
    worst = df[["xid_fraction", "mxid_fraction"]].max(axis=1)
    df["severity"] = "ok"
    df.loc[worst >= t.wraparound_warn, "severity"] = "warning"
    df.loc[worst >= t.wraparound_critical, "severity"] = "critical"
    return df[
        [
            "database",
            "xid_age",
            "xid_fraction",
            "mxid_age",
            "mxid_fraction",
            "autovacuum_freeze_max_age",
            "severity",
        ]
    ]


def table_wraparound(insp: Inspector, n: int = 10) -> pd.DataFrame:
    """The n tables of this database with the oldest unfrozen transaction IDs.

    Columns: schema, table, xid_age, xid_fraction, mxid_age, mxid_fraction, table_bytes.
    """
    df = insp.frame(
        """
        SELECT n.nspname AS schema, c.relname AS "table",
               age(c.relfrozenxid)::bigint AS xid_age,
               mxid_age(c.relminmxid)::bigint AS mxid_age,
               pg_total_relation_size(c.oid) AS table_bytes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
        ORDER BY age(c.relfrozenxid) DESC
        LIMIT :n
        """,
        {"n": count_param(n, "n")},
    )
    df["xid_fraction"] = df["xid_age"] / XID_LIMIT
    df["mxid_fraction"] = df["mxid_age"] / XID_LIMIT
    return df[
        ["schema", "table", "xid_age", "xid_fraction", "mxid_age", "mxid_fraction", "table_bytes"]
    ]


def sequences_near_max(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Sequences (or the integer columns they feed) past sequence_warn of their limit.

    The limit of an ascending sequence is the smaller of its own MAXVALUE and the maximum
    of the column it feeds (owned by it, or whose DEFAULT calls it): a bigint sequence
    feeding an integer column overflows at 2^31 - 1; a descending one, the larger of its
    MINVALUE and the column's minimum. What caps it decides the fix (see
    `recommend.sequence_fix`). Columns: schema, sequence, column ("table.column" or None,
    for reading: a name may hold a dot), table_schema, table_name, column_name (the column
    as separate names, None without one), sequence_type, column_type, increment_by, cycle, last_value,
    sequence_max (its MAXVALUE, or MINVALUE descending), column_max (the column type's
    limit, None for bigint or no column), max_value (the limit), fraction (the share of its
    range used: from MINVALUE, descending from MAXVALUE, to the limit), capped_by
    ("sequence" | "column"), severity (warning | critical: past sequence_critical).
    Sequences the role may not read are noted on `insp`.
    """
    t = thresholds or DbThresholds()
    _unreadable(insp, "sequences", "S", "SELECT,USAGE", "has neither SELECT nor USAGE")
    df = insp.frame(
        """
        WITH seqs AS (
            SELECT s.schemaname, s.sequencename, s.data_type::text AS sequence_type,
                   s.last_value, s.increment_by, s.cycle,
                   CASE WHEN s.increment_by > 0 THEN s.max_value ELSE s.min_value END
                       AS sequence_max,
                   -- where its range starts: MINVALUE ascending, MAXVALUE descending
                   CASE WHEN s.increment_by > 0 THEN s.min_value ELSE s.max_value END
                       AS sequence_start,
                   col.table_schema, col.table_name, col.column_name, col.owner,
                   col.column_type,
                   CASE WHEN s.increment_by > 0 THEN col.type_max ELSE col.type_min END
                       AS column_max
            FROM pg_sequences s
            JOIN pg_namespace sn ON sn.nspname = s.schemaname
            JOIN pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename
            LEFT JOIN LATERAL (
                SELECT tn.nspname AS table_schema,
                       t.relname AS table_name, a.attname AS column_name,
                       t.relname || '.' || a.attname AS owner,
                       format_type(a.atttypid, a.atttypmod) AS column_type,
                       CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                                       WHEN 'int4'::regtype THEN 2147483647 END AS type_max,
                       CASE a.atttypid WHEN 'int2'::regtype THEN -32768
                                       WHEN 'int4'::regtype THEN -2147483648 END AS type_min
                FROM (
                    -- OWNED BY (serial, identity): the sequence depends on the column
                    SELECT d.refobjid AS relid, d.refobjsubid AS attnum, 1 AS rank
                    FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = sc.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                    UNION ALL
                    -- DEFAULT nextval('...'): the column's default depends on the sequence
                    SELECT ad.adrelid, ad.adnum, 2
                    FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
                    WHERE d.classid = 'pg_attrdef'::regclass AND d.refobjid = sc.oid
                      AND d.refclassid = 'pg_class'::regclass
                ) dep
                JOIN pg_class t ON t.oid = dep.relid
                JOIN pg_namespace tn ON tn.oid = t.relnamespace
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = dep.attnum
                ORDER BY dep.rank
                LIMIT 1
            ) col ON true
            WHERE s.last_value IS NOT NULL
        ), limits AS (
            SELECT *,
                   COALESCE(CASE WHEN increment_by > 0 THEN column_max <= sequence_max
                                 ELSE column_max >= sequence_max END, false) AS column_caps
            FROM seqs
        ), shares AS (
            SELECT *, CASE WHEN column_caps THEN column_max ELSE sequence_max END AS max_value
            FROM limits
        )
        SELECT schemaname AS schema, sequencename AS sequence, owner AS "column",
               table_schema, table_name, column_name, sequence_type, column_type, increment_by, cycle, last_value,
               sequence_max, column_max, max_value,
               CASE WHEN column_caps THEN 'column' ELSE 'sequence' END AS capped_by,
               -- the share used: from the start of its range to its limit, whatever the
               -- signs (a range of one value is used up once it has handed it out)
               COALESCE((last_value::numeric - sequence_start)
                            / NULLIF(max_value::numeric - sequence_start, 0), 1)::float
                   AS fraction
        FROM shares
        """
    )
    columns = list(_SEQUENCE_DTYPES)
    if df.empty:
        return empty(_SEQUENCE_DTYPES)
    df["column_max"] = pd.Series(
        [None if pd.isna(v) else int(v) for v in df["column_max"]], index=df.index, dtype=object
    )
    df = df[df["fraction"].fillna(0) >= t.sequence_warn].copy()
    df["severity"] = "warning"
    df.loc[df["fraction"] >= t.sequence_critical, "severity"] = "critical"
    df = df[columns].sort_values("fraction", ascending=False).reset_index(drop=True)
    return typed(df, _SEQUENCE_DTYPES)


_ACTIVITY = """
    SELECT pid, usename AS "user", application_name, client_addr::text AS client_addr,
           state, wait_event_type, wait_event,
           EXTRACT(EPOCH FROM now() - query_start)::float AS query_s,
           EXTRACT(EPOCH FROM now() - xact_start)::float AS transaction_s,
           EXTRACT(EPOCH FROM now() - state_change)::float AS state_s,
           left(query, 2000) AS query
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


def _sessions(insp: Inspector, what: str, where: str, params: dict) -> pd.DataFrame:
    """The sessions of `_ACTIVITY` + `where`, their statements' passwords masked; the
    sessions the role may not see noted on `insp`."""
    _hidden_sessions(insp, what)
    df = insp.frame(_ACTIVITY + where, params)
    df["query"] = df["query"].map(mask_secrets)
    return typed(df, _SESSION_DTYPES)


def long_running_queries(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Active statements running for at least long_running_s. Columns: pid, user,
    application_name, client_addr, state, wait_event_type, wait_event, query_s,
    transaction_s, state_s, query (longest first)."""
    t = thresholds or DbThresholds()
    return _sessions(
        insp,
        "long-running queries",
        " AND state = 'active' AND now() - query_start >= make_interval(secs => :s)"
        " ORDER BY query_s DESC",
        {"s": t.long_running_s},
    )


def idle_in_transaction(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Sessions idle in an open transaction for at least idle_in_transaction_s (they hold
    locks and the xmin horizon back). Same columns as `long_running_queries`."""
    t = thresholds or DbThresholds()
    return _sessions(
        insp,
        "idle in transaction",
        " AND state IN ('idle in transaction', 'idle in transaction (aborted)')"
        " AND now() - state_change >= make_interval(secs => :s)"
        " ORDER BY state_s DESC",
        {"s": t.idle_in_transaction_s},
    )


def connections(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Client connections against max_connections (one row). Columns: total, active, idle,
    idle_in_transaction, max_connections, reserved, usable, fraction, flagged. Sessions
    the role may not see are not counted (noted on `insp`)."""
    t = thresholds or DbThresholds()
    _hidden_sessions(insp, "connections")
    df = insp.frame(
        """
        SELECT count(*) AS total,
               count(*) FILTER (WHERE state = 'active') AS active,
               count(*) FILTER (WHERE state = 'idle') AS idle,
               count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
               current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int AS reserved
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
        """
    )
    df["usable"] = df["max_connections"] - df["reserved"]
    df["fraction"] = df["total"] / df["usable"].where(df["usable"] > 0)
    df["flagged"] = df["fraction"] >= t.connections_warn
    return df


def cache_hit_ratios(insp: Inspector, thresholds: DbThresholds | None = None) -> pd.DataFrame:
    """Shared-buffer hit ratios of table heaps, indexes and the whole database.

    Columns: kind (table | index | database), hits, reads, ratio (None without reads or
    hits), flagged (ratio below cache_hit_ratio).
    """
    t = thresholds or DbThresholds()
    df = insp.frame(
        """
        SELECT 'table' AS kind,
               COALESCE(sum(heap_blks_hit), 0)::bigint AS hits,
               COALESCE(sum(heap_blks_read), 0)::bigint AS reads
        FROM pg_statio_user_tables
        UNION ALL
        SELECT 'index', COALESCE(sum(idx_blks_hit), 0)::bigint,
               COALESCE(sum(idx_blks_read), 0)::bigint
        FROM pg_statio_user_indexes
        UNION ALL
        SELECT 'database', blks_hit::bigint, blks_read::bigint
        FROM pg_stat_database WHERE datname = current_database()
        """
    )
    total = df["hits"] + df["reads"]
    df["ratio"] = (df["hits"] / total.where(total > 0)).astype(float)
    df["flagged"] = df["ratio"].notna() & (df["ratio"] < t.cache_hit_ratio)
    return df
