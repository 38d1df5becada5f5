"""The metrics store: the history of every scrape, and reads that aggregate in SQL.

    from lsops_lib.store import Store
    with Store("sqlite:///metrics.sqlite") as store:
        store.record_scrape(scrape)
        hourly = store.endpoint_intervals(start, end, bucket="hour")

One SQLAlchemy Core schema on SQLite (the embedded default, WAL) or PostgreSQL (shared).
Writes: `record_scrape` stores one `models.Scrape` in ONE transaction, its series link and
hourly rollup included; a retried write of the same scrape stores nothing twice, and any
number of collectors may write the same target (its series is ordered by what the API
answered, not by the collectors' clocks). Reads return pandas
DataFrames whose instants are `Timestamp(tz="UTC")`; interval figures are deltas of the
cumulative counters computed IN SQL, so a year of one-minute scrapes is never loaded raw.

The package, one concern a module (see docs/internals.md, store):

    schema      tables, SCHEMA_VERSION, engine and URL handling, version checks
    series      the delta rule's SQL fragments (series order and kinds, deltas), buckets
    chain       the series links: each scrape's predecessor, kept on write, relinking
    rollup      the hourly rollup: write path, catch-up, migrations from versions 1, 2
    codec       the packed sample block (schema 4): lossless encoding and decoding
    pack        packing past periods, unpacking, the samples reads see
    pack_scrapes  the wide columns of packed scrape rows and packed services, for reads
    core        StoreCore: opening, connections, a read's frame
    writes      record_scrape and the rows of a scrape
    reads       scrapes, health, services, error records, raw payloads, targets, extent
    intervals   endpoint_intervals, counter_intervals, resets
    snapshots   database snapshots (record_db_sizes, db_sizes, record_db_queries, db_queries)
    reader      StoreReader, the protocol analysis accepts
    sources     issue 10: Sentry issues, log files and lines, patterns, pm2 samples, source
                runs (tables and writes; their reads in source_reads)
"""

from __future__ import annotations

from ..exceptions import StoreError, StoreVersionError
from . import alerts as alerts  # issue 11: the alert state tables, created on open
from . import backups as backups  # issue 12: the lsops_backup_checks table, created on open
from . import sources as sources  # issue 10: Sentry, log and pm2 tables, created on open
from .intervals import IntervalReads
from .reader import StoreReader
from .reads import FIGURE_COLUMNS, HEALTH_COLUMNS, SCRAPE_COLUMNS, ScrapeReads
from .schema import (
    SCHEMA_VERSION,
    StoreUrlError,
    db_queries_table,
    db_sizes_table,
    endpoints_table,
    engine_url,
    errors_table,
    meta_table,
    metadata,
    pack_state_table,
    raw_blocks_table,
    raw_table,
    rollup_table,
    sample_blocks_table,
    samples_table,
    scrape_blocks_table,
    scrape_details_table,
    scrapes_table,
    service_blocks_table,
    services_table,
    targets_table,
)
from .series import BUCKETS
from .snapshots import DB_QUERY_COLUMNS, DB_SIZE_COLUMNS, Snapshots
from .writes import Writes


class Store(Writes, ScrapeReads, IntervalReads, Snapshots):
    """The metrics history behind a SQLAlchemy URL (SQLite file or PostgreSQL).

    `Store(url)` opens it: creates the schema, refuses a newer one (StoreVersionError),
    migrates an older one; a bad URL is a StoreUrlError. `url` (redacted), `dialect`,
    `engine`, `schema_version()`, `close()`, and a context manager.

    Writes: `record_scrape(scrape) -> bool` (False when that scrape id is already stored).
    Reads (start, end: datetimes, naive ones UTC, or ISO 8601 strings; end exclusive, None =
    unbounded; target None = all; an empty answer has the columns and types of a full one;
    an unknown bucket or a value that is no instant is a ParameterError):
    `scrapes`, `scrape_figures`, `health`, `services`, `error_records`, `raw_payload`,
    `targets`, `extent`; intervals: `endpoint_intervals`, `counter_intervals`, `resets`.
    Database snapshots: `record_db_sizes`, `db_sizes`, `record_db_queries`, `db_queries`.
    """


__all__ = [
    "BUCKETS",
    "DB_QUERY_COLUMNS",
    "DB_SIZE_COLUMNS",
    "FIGURE_COLUMNS",
    "HEALTH_COLUMNS",
    "SCHEMA_VERSION",
    "SCRAPE_COLUMNS",
    "Store",
    "StoreError",
    "StoreReader",
    "StoreUrlError",
    "StoreVersionError",
    "db_queries_table",
    "db_sizes_table",
    "endpoints_table",
    "engine_url",
    "errors_table",
    "meta_table",
    "metadata",
    "pack_state_table",
    "raw_blocks_table",
    "raw_table",
    "rollup_table",
    "sample_blocks_table",
    "samples_table",
    "scrape_blocks_table",
    "scrape_details_table",
    "scrapes_table",
    "service_blocks_table",
    "services_table",
    "targets_table",
]
