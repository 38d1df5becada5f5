"""The database section of the monthly review: its data, read once, read-only.

    db = database_overview(settings, None, store, start, end)   # never raises
    db.available, db.reason          # not configured / down: a finding, with the reason
    db.size_bytes, db.tables         # pg_database_size, db.space.table_sizes
    db.growth, db.growth_bytes       # the month's size snapshots (lsops collect --db)
    db.embeddings["by_entity_type"]  # the runbook's weekly check; "log", "coverage"
    db.forecast                      # db.forecast: the size limit date, as of the month's end
    db.retrieval                     # retrieval_overview: recall@k, the threshold share
    db.summary()                     # the section's figures (the review's key figures)

    rq = retrieval_overview(settings, None)   # recall and threshold share alone (the
                                              # review's Latency section), measured once

`lsops_lib.present.database.show_database` shows it; `plots.database_month` draws its chart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..config import Settings
from ..exceptions import LsopsError
from . import embeddings, forecast, space, vectors
from .connect import connect
from .drift import SchemaMissing

__all__ = ["DatabaseOverview", "RetrievalOverview", "database_overview", "retrieval_overview"]


@dataclass
class DatabaseOverview:
    name: str | None
    configured: bool
    available: bool
    reason: str | None = None
    size_bytes: int | None = None
    tables: pd.DataFrame | None = None
    growth: pd.DataFrame | None = None  # ts, total_bytes, ... (snapshots of the month)
    growth_bytes: float | None = None
    embeddings: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    forecast: forecast.Forecast | None = None  # issue 15: as of the month's end
    retrieval: RetrievalOverview | None = None  # issue 15: recall, threshold share

    def summary(self) -> dict[str, Any]:
        """The section's figures, flat (in the review's key figures under "database")."""
        return {
            "name": self.name,
            "configured": self.configured,
            "available": self.available,
            "reason": self.reason,
            "size_bytes": self.size_bytes,
            "growth_bytes": self.growth_bytes,
            **(self.forecast.summary() if self.forecast is not None else {}),
            **(self.retrieval.summary() if self.retrieval is not None else {}),
        }

    figures = summary  # the name present.monthly.review_figures calls

    @property
    def projection(self) -> pd.DataFrame | None:
        """The size snapshots, the fitted growth and the projection to the size limit, as of
        the month's end (plots.capacity_projection); None without a forecast."""
        return None if self.forecast is None else self.forecast.frame


@dataclass
class RetrievalOverview:
    """Recall and the similarity threshold of the configured database (`db.vectors`):
    `available` False with the `reason` (not configured, down, no pgvector)."""

    name: str | None
    available: bool
    reason: str | None = None
    quality: vectors.RetrievalQuality | None = None

    def summary(self) -> dict[str, Any]:
        base = {"vectors_available": self.available, "vectors_reason": self.reason}
        if self.quality is None:
            return {**base, "recall_at_k": None, "threshold_share_with_result": None}
        return {**self.quality.summary(), **base}


# one measurement per database and parameters for a while: the review's Latency section
# and its Database section show the same figures without measuring twice
_RETRIEVAL_CACHE: dict[tuple[Any, ...], tuple[float, RetrievalOverview]] = {}
RETRIEVAL_CACHE_S = 600.0


def retrieval_overview(
    settings: Settings,
    database: str | None,
    *,
    sample: int = vectors.DEFAULT_SAMPLE,
    k: int = vectors.DEFAULT_K,
    seed: int = 0,
    cache: bool = True,
) -> RetrievalOverview:
    """recall@k of the vector indexes and the similarity threshold's share of the
    configured database `database` (a NAME; None: the default one), read-only, with the
    settings' similarity_threshold and recall_target. Never raises. Measured once per
    RETRIEVAL_CACHE_S for the same database and parameters (`cache=False`: again)."""
    try:
        url = settings.database(database)
    except LsopsError as exc:
        return RetrievalOverview(name=database, available=False, reason=str(exc))
    name = database or settings.database_name or "default"
    t = settings.thresholds
    key = (url, sample, k, seed, t.similarity_threshold, t.recall_target)
    hit = _RETRIEVAL_CACHE.get(key)
    if cache and hit is not None and time.monotonic() - hit[0] < RETRIEVAL_CACHE_S:
        return hit[1]
    try:
        insp = connect(url)
    except Exception as exc:  # noqa: BLE001 - DatabaseError and anything else: a finding
        reason = _scrub(f"cannot connect to the database {name}: {exc}".splitlines()[0], settings)
        return RetrievalOverview(name=name, available=False, reason=reason)
    try:
        rq = vectors.retrieval_quality(
            insp,
            sample=sample,
            k=k,
            seed=seed,
            threshold=t.similarity_threshold,
            target=t.recall_target,
        )
    except LsopsError as exc:
        out = RetrievalOverview(name=name, available=False, reason=_scrub(str(exc), settings))
    else:
        out = RetrievalOverview(name=name, available=rq.available, reason=rq.message, quality=rq)
    finally:
        insp.close()
    _RETRIEVAL_CACHE[key] = (time.monotonic(), out)
    return out


def _scrub(text: str, settings: Settings | None) -> str:
    for secret in settings.secrets() if settings is not None else []:
        text = text.replace(secret, "***")
    return text


def database_overview(
    settings: Settings,
    database: str | None,
    store: Any,
    start: datetime,
    end: datetime,
) -> DatabaseOverview:
    """Size, growth over [start, end) (from `lsops collect --db` snapshots) and embeddings
    indexing of the configured database `database` (a NAME; None: the default one),
    read-only. `store`: the metrics store holding the snapshots (a `Store`), or None.
    Never raises: a database that is not configured or down is `available=False` with the
    reason."""
    try:
        url = settings.database(database)
    except LsopsError as exc:
        return DatabaseOverview(name=database, configured=False, available=False, reason=str(exc))
    name = database or settings.database_name or "default"
    out = DatabaseOverview(name=name, configured=True, available=False)
    if store is not None:
        try:
            snaps = space.growth(store, name, start, end)
            if snaps is not None and not snaps.empty:
                total = space.total_growth(snaps)
                out.growth = total
                out.growth_bytes = float(
                    total["total_bytes"].iloc[-1] - total["total_bytes"].iloc[0]
                )
        except Exception as exc:  # noqa: BLE001 - an unreadable store costs the growth only
            out.notes.append(_scrub(f"size snapshots unreadable: {exc}", settings))
    if out.growth is None:
        out.notes.append(
            "no size snapshot stored in this month: run 'lsops collect --db' daily to see growth"
        )
    if store is not None:  # as of the month's end: every snapshot before it, projected from
        try:  # the fitted line at the last one (a past month's review stays the same)
            t = settings.thresholds
            out.forecast = forecast.capacity_forecast(
                space.growth(store, name, None, end),
                t.database_size_limit_bytes,
                min_snapshots=t.forecast_min_snapshots,
                min_days=t.forecast_min_days,
                shrink_ratio=t.forecast_shrink_ratio,
            )
        except Exception as exc:  # noqa: BLE001 - an unreadable store costs the forecast only
            out.notes.append(_scrub(f"capacity forecast: {exc}", settings))
    try:
        insp = connect(url)
    except Exception as exc:  # noqa: BLE001 - DatabaseError and anything else: a finding
        out.reason = _scrub(
            f"cannot connect to the database {name}: {exc}".splitlines()[0], settings
        )
        return out
    out.available = True
    try:
        for what, fn in (
            ("database size", lambda: setattr(out, "size_bytes", int(space.database_size(insp)))),
            ("table sizes", lambda: setattr(out, "tables", space.table_sizes(insp))),
        ):
            try:
                fn()
            except LsopsError as exc:
                out.notes.append(_scrub(f"{what}: {exc}", settings))
        # each figure on its own: a deployment may lack a table or a column (schema drift)
        for key, what, fn2 in (
            ("by_entity_type", "embeddings per entity type", embeddings.by_entity_type),
            ("log", "indexing log", embeddings.log_by_status),
            ("coverage", "embeddings coverage", embeddings.coverage),
        ):
            try:
                out.embeddings[key] = fn2(insp)
            except SchemaMissing as exc:
                text = str(exc)
                out.notes.append(
                    _scrub(text if text.startswith(f"{what}:") else f"{what}: {text}", settings)
                )
            except LsopsError as exc:
                out.notes.append(_scrub(f"embeddings {key}: {exc}", settings))
        out.notes += [_scrub(n, settings) for n in insp.unavailable]
    finally:
        insp.close()
    out.retrieval = retrieval_overview(settings, database)
    return out
