"""`inspect_large_catalog`: the DB optimization data functions on 5,000 tables.

What the db_optimization notebook calls, `lsops_lib.db.optimization_report(...)` (space,
indexes, queries, maintenance, embeddings, recommendations), against a throwaway
PostgreSQL (`lsops_lib.pgtemp`) holding the LongSang schema plus 5,000 tables with
10,000 indexes (a primary key and one secondary index each), in four schemas. Baseline:
the same call on a database with the LongSang schema alone.
"""

from __future__ import annotations

from common import Context, Result, timed

from lsops_lib.db import load_longsang_schema, optimization_report
from lsops_lib.pgtemp import PostgresCluster, PostgresUnavailable


def _bulk_tables(cluster: PostgresCluster, dbname: str, tables: int) -> None:
    schemas = 4
    with cluster.connect(dbname) as conn:
        for s in range(schemas):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS tenant_{s}")
        batch: list[str] = []
        for i in range(tables):
            name = f"tenant_{i % schemas}.t_{i:05d}"
            batch.append(
                f"CREATE TABLE {name} (id bigserial PRIMARY KEY, owner_id bigint NOT NULL, "
                f"created_at timestamptz NOT NULL DEFAULT now(), payload jsonb);"
                f"CREATE INDEX ON {name} (owner_id, created_at);"
            )
            if len(batch) == 200 or i == tables - 1:
                conn.execute("BEGIN;" + "".join(batch) + "COMMIT;")
                batch = []
        conn.execute("ANALYZE")


def _report(url: str) -> tuple[float, dict[str, object]]:
    seconds, report = timed(lambda: optimization_report(url=url, top_n=20))
    errors = {name: s.errors for name, s in report.sections.items() if s.errors}
    tables = report.sections["space"].frames.get("tables")
    return seconds, {
        "reachable": report.reachable,
        "error": report.error,
        "section_errors": errors,
        "tables_listed": None if tables is None else len(tables),
        "findings": len(report.recommendations),
    }


def inspect_large_catalog(ctx: Context) -> list[Result]:
    tables = 500 if ctx.quick else 5000
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        ctx.log(f"  no PostgreSQL here: {exc}")
        return [
            Result(
                "inspect_large_catalog",
                None,
                "s",
                None,
                "value < 10 s",
                None,
                {"skipped": str(exc)},
            )
        ]
    try:
        small = cluster.create_database("longsang", pg_stat_statements=True)
        load_longsang_schema(small)
        large = cluster.create_database("catalog", pg_stat_statements=True)
        load_longsang_schema(large)
        ctx.log(f"  creating {tables:,} tables with {2 * tables:,} indexes")
        build_s, _ = timed(lambda: _bulk_tables(cluster, "catalog", tables))
        ctx.log(f"  catalog built in {build_s:.1f} s")
        _report(small)  # warm-up: imports, first connection
        base_s, base = _report(small)
        value_s, value = _report(large)
        ctx.log(f"  LongSang schema {base_s:.2f} s, +{tables:,} tables {value_s:.2f} s")
    finally:
        cluster.stop()
    return [
        Result(
            "inspect_large_catalog",
            value_s,
            "s",
            base_s,
            "value < 10 s",
            value_s < 10.0 and bool(value["reachable"]),
            {
                "tables": tables,
                "indexes": 2 * tables,
                "backend": cluster.backend,
                "pg_stat_statements": cluster.has_pg_stat_statements,
                "large": value,
                "baseline": base,
                "build_s": round(build_s, 1),
            },
        )
    ]
