"""Read-only inspection of PostgreSQL, grouped by concern like pgHero.

    from lsops_lib import db
    with db.connect(url) as insp:                 # READ ONLY, statement_timeout, app lsops
        db.space.table_sizes(insp)                 # one function per question -> DataFrame
        db.indexes.duplicate_indexes(insp)
        db.queries.slow_queries(insp, db.DbThresholds())
    db.optimization_report("prod")                 # everything, for the notebook

Modules: `space`, `indexes`, `queries`, `maintenance`, `embeddings`, `recommend`, `report`,
`schema` (the LongSang schema loader, for tests and the demo), `settings` (thresholds),
`drift` (schema drift: a missing table or column costs only the figure that needs it).
"""

from __future__ import annotations

from . import drift, embeddings, indexes, maintenance, queries, recommend, space
from .connect import Inspector, connect
from .drift import SchemaMissing
from .recommend import recommendations
from .report import OptimizationReport, optimization_report
from .schema import LONGSANG_TABLES, load_longsang_schema
from .settings import DbThresholds

__all__ = [
    "LONGSANG_TABLES",
    "DbThresholds",
    "Inspector",
    "OptimizationReport",
    "SchemaMissing",
    "connect",
    "drift",
    "embeddings",
    "indexes",
    "load_longsang_schema",
    "maintenance",
    "optimization_report",
    "queries",
    "recommend",
    "recommendations",
    "space",
]
