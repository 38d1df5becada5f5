"""The charts of the database reports (the DB optimization report, the review's database
section): each takes the DataFrame the library returns, draws on `ax` (a new figure when
None) and returns the Axes; given nothing to draw (None: the check could not run) it draws
nothing and returns None, so a notebook cell never fails on a missing frame.

    plots.top_tables(tables)                  db.space.table_sizes: heap, TOAST, indexes
    plots.database_growth(growth_total)       db.space.total_growth: size per snapshot
    plots.embeddings_by_type(by_entity_type)  db.embeddings.by_entity_type, with targets
    plots.database_month(growth, start, end)  the review's size over the month
    plots.capacity_projection(projection)     db.forecast: snapshots, growth, the limit date
    plots.recall_curve(curves)                db.vectors: recall@k per ef_search / probes
    plots.similarity_threshold(top1)          db.vectors: top-1 similarity vs the threshold
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import fmt
from .look import (
    BAD,
    GOOD,
    TARGET_COLOR,
    bytes_axis,
    count_axis,
    figure,
    style,
    target_line,
    timeseries,
    utc_axis,
)

__all__ = [
    "capacity_projection",
    "database_growth",
    "database_month",
    "embeddings_by_type",
    "recall_curve",
    "similarity_threshold",
    "top_tables",
]


def _table_names(frame: pd.DataFrame) -> list[str]:
    """`table`, or `schema.table` when the tables are not all in `public`."""
    if set(frame["schema"].astype(str)) == {"public"}:
        return [str(t) for t in frame["table"]]
    return [f"{s}.{t}" for s, t in zip(frame["schema"], frame["table"], strict=False)]


def top_tables(
    tables: pd.DataFrame | None,
    ax: Any = None,
    *,
    n: int = 10,
    database_bytes: float | None = None,
) -> Any:
    """Horizontal stacked bars: heap, TOAST and index bytes of the `n` largest tables, the
    largest on top; the title says how much of the database (`database_bytes`, else the
    frame's `attrs["database_bytes"]`, else the tables shown) the largest one holds."""
    if not isinstance(tables, pd.DataFrame):
        return None
    if database_bytes is None:
        database_bytes = tables.attrs.get("database_bytes")
    top = tables.head(n)
    with style():
        if ax is None:
            _fig, ax = figure(max(3.0, 0.42 * len(top) + 1.6))
        rows = top.iloc[::-1]
        names = _table_names(rows) if len(rows) else []
        left = None
        for col, label in (
            ("table_bytes", "heap"),
            ("toast_bytes", "TOAST"),
            ("index_bytes", "indexes"),
        ):
            values = rows[col].astype(float).fillna(0.0).to_numpy()
            ax.barh(names, values, left=left, label=label)
            left = values if left is None else left + values
        if left is not None and len(left):
            for y, total in enumerate(left):
                ax.text(total, y, f" {fmt.size(total)}", va="center", fontsize=9)
            ax.set_xlim(0, max(float(left.max()), 1.0) * 1.15)
        bytes_axis(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.set_title(_top_tables_title(top, database_bytes))
        if len(top):
            ax.legend(loc="lower right")
    return ax


def _top_tables_title(top: pd.DataFrame, database_bytes: Any) -> str:
    if top.empty:
        return "No table in this database"
    first = top.iloc[0]
    total = float(first["total_bytes"])
    whole = float(database_bytes) if database_bytes else float(top["total_bytes"].sum())
    where = "the database" if database_bytes else f"the {len(top)} largest tables"
    name = _table_names(top.head(1))[0]
    toast = float(first.get("toast_bytes") or 0)
    mostly = ", mostly TOAST" if total and toast / total > 0.5 else ""
    share = fmt.pct(total / whole, 0) if whole else fmt.DASH
    return f"{name} holds {share} of {where} ({fmt.size(total)}{mostly})"


def database_growth(growth: pd.DataFrame | None, ax: Any = None) -> Any:
    """Database size per snapshot (the sum over tables; TOAST and indexes beside it) on a
    UTC axis; the title says how much it grew and how fast."""
    if not isinstance(growth, pd.DataFrame) or growth.empty:
        return None
    when = pd.to_datetime(growth["ts"], utc=True)
    total = growth["total_bytes"].astype(float)
    with style():
        if ax is None:
            _fig, ax = figure(3.5)
        ax.plot(when, total, marker="o", markersize=3, label="all tables")
        ax.plot(when, growth["toast_bytes"].astype(float), label="TOAST")
        ax.plot(when, growth["index_bytes"].astype(float), label="indexes")
        ax.set_ylim(bottom=0)
        bytes_axis(ax)
        utc_axis(ax)
        ax.set_ylabel("size")
        ax.set_title(_growth_title(when, total))
        ax.legend(loc="upper left")
    return ax


def _growth_title(when: pd.Series, total: pd.Series) -> str:
    if len(total) < 2:
        return f"Database size: {fmt.size(total.iloc[-1] if len(total) else None)}"
    growth = float(total.iloc[-1] - total.iloc[0])
    days = (when.iloc[-1] - when.iloc[0]).total_seconds() / 86400
    span = f"{days:,.0f} days" if days >= 2 else f"{days * 24:,.0f} hours"
    if growth == 0:
        return f"The database did not grow in {span} ({fmt.size(total.iloc[-1])})"
    verb = "grew" if growth > 0 else "shrank"
    rate = f" ({fmt.size(abs(growth) / days)}/day)" if days > 0 else ""
    return f"The database {verb} {fmt.size(abs(growth))} in {span}{rate}"


def embeddings_by_type(
    by_type: pd.DataFrame | None,
    ax: Any = None,
    *,
    entities: Mapping[str, int] | None = None,
) -> Any:
    """Embeddings per entity type (the runbook's weekly check) as bars, with the number of
    source entities to embed as a dashed target where it is known (`entities`, else the
    frame's `attrs["entities"]`, which db.report fills from the coverage). The title counts
    the entities with an embedding as the coverage does (`attrs["embedded"]`: rows whose
    embedding is NULL are none), else the bars' rows."""
    if not isinstance(by_type, pd.DataFrame) or by_type.empty:
        return None
    types = by_type["entity_type"].astype(str).tolist()
    counts = by_type["count"].astype(int).tolist()
    if entities is None:
        entities = by_type.attrs.get("entities") or {}
    with style():
        if ax is None:
            _fig, ax = figure(3.5, width=8.0)
        ax.bar(types, counts, width=0.6, label="embeddings")
        for x, (kind, count) in enumerate(zip(types, counts, strict=True)):
            top = max(count, int(entities.get(kind, 0)))  # above the target mark, not on it
            ax.text(x, top, f"{count:,}", ha="center", va="bottom", fontsize=9)
        drawn = False
        for x, kind in enumerate(types):
            if kind in entities:
                ax.hlines(
                    entities[kind],
                    x - 0.4,
                    x + 0.4,
                    colors=TARGET_COLOR,
                    linestyles="--",
                    linewidth=1.2,
                    label=None if drawn else "entities to embed",
                )
                drawn = True
        count_axis(ax)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("embeddings")
        embedded = by_type.attrs.get("embedded") or {}
        ax.set_title(_embeddings_title(types, counts, entities, embedded))
        ax.legend(loc="upper left")
    return ax


def _embeddings_title(
    types: list[str],
    counts: list[int],
    entities: Mapping[str, int],
    embedded: Mapping[str, int] | None = None,
) -> str:
    if not counts:
        return "No embedding stored"
    known = [t for t in types if t in entities]
    if known:
        have = {**dict(zip(types, counts, strict=True)), **(embedded or {})}
        missing = {t: max(0, int(entities[t]) - have[t]) for t in known}
        worst = max(missing, key=lambda t: missing[t])
        total = sum(int(entities[t]) for t in known)
        embedded = sum(min(have[t], int(entities[t])) for t in known)
        if missing[worst] == 0:
            return f"Every one of the {total:,} entities has an embedding"
        return (
            f"{embedded:,} of {total:,} entities have an embedding; "
            f"{worst} lacks the most ({missing[worst]:,})"
        )
    top = max(range(len(counts)), key=lambda i: counts[i])
    return f"{types[top]} holds {counts[top]:,} of {sum(counts):,} embeddings"


def database_month(
    growth: pd.DataFrame | None,
    start: Any = None,
    end: Any = None,
    ax: Any = None,
) -> Any:
    """The review's chart: the database size (sum over tables) per stored snapshot over
    the month [start, end); the title says by how much it grew. Fewer than two snapshots:
    nothing to draw (None)."""
    if not isinstance(growth, pd.DataFrame) or len(growth) < 2:
        return None
    change = float(growth["total_bytes"].iloc[-1] - growth["total_bytes"].iloc[0])
    verb = "grew" if change >= 0 else "shrank"
    with style():
        if ax is None:
            _fig, ax = figure(3.0)
        timeseries(
            ax,
            growth,
            "ts",
            "total_bytes",
            f"The database {verb} by {fmt.size(abs(change))} over the month's snapshots",
            ylabel="size",
        )
        bytes_axis(ax)
        if start is not None and end is not None:
            ax.set_xlim(pd.Timestamp(start), pd.Timestamp(end))
    return ax


# --- issue 15: the capacity forecast and retrieval quality -----------------------------------


def capacity_projection(projection: pd.DataFrame | None, ax: Any = None) -> Any:
    """The database size per snapshot, its fitted growth (Theil-Sen), and the projection
    to the size limit with its plausible range (shaded), the limit dashed; the projection
    starts from the live size now when there was one (the DB report), else from the fitted
    line at the last snapshot (the review); the title gives the date or says why there is
    none (`db.forecast.Forecast.frame`)."""
    if not isinstance(projection, pd.DataFrame) or projection.empty:
        return None
    attrs = projection.attrs
    when = pd.to_datetime(projection["ts"], utc=True)
    with style():
        if ax is None:
            _fig, ax = figure(3.8)
        seen = projection["observed"].notna()
        ax.plot(when[seen], projection.loc[seen, "observed"], "o", markersize=3, label="snapshots")
        if "fitted" in projection and projection["fitted"].notna().any():
            fit = projection["fitted"].notna()
            ax.plot(when[fit], projection.loc[fit, "fitted"], label="growth (Theil-Sen)")
        ahead = projection["projected"].notna()
        if ahead.any():
            ax.plot(when[ahead], projection.loc[ahead, "projected"], "--", label="projection")
            start = projection.loc[ahead].index[0]
            live = attrs.get("start") == "database_size"  # pg_database_size: catalogs too
            ax.plot(
                [when[start]],
                [projection.at[start, "projected"]],
                "D",
                label="database size now (projection start)" if live else "projection start",
            )
            ax.fill_between(
                when[ahead],
                projection.loc[ahead, "low"].astype(float),
                projection.loc[ahead, "high"].astype(float),
                alpha=0.2,
                label="plausible range (95 %)",
            )
        limit = attrs.get("limit_bytes")
        top = float(projection[["observed", "projected", "high"]].max().max())
        if limit is not None and (attrs.get("status") == "ok" or top >= 0.5 * float(limit)):
            target_line(ax, float(limit), f"size limit {fmt.size(limit)}")
        ax.set_ylim(bottom=0)
        bytes_axis(ax)
        utc_axis(ax)
        ax.set_ylabel("size")
        ax.set_title(_projection_title(attrs))
        ax.legend(loc="upper left")
    return ax


def _projection_title(attrs: Mapping[str, Any]) -> str:
    limit = fmt.size(attrs.get("limit_bytes"))
    when = attrs.get("reaches_limit_on")
    if attrs.get("status") == "ok" and when:
        rng = attrs.get("reaches_limit_range") or [None, None]
        between = f" (between {rng[0] or fmt.DASH} and {rng[1] or 'not foreseeable'})"
        return f"The database reaches {limit} on {when}{between}"
    message = str(attrs.get("message") or "no forecast")
    return message[0].upper() + message[1:] if message else message


def recall_curve(curves: pd.DataFrame | None, ax: Any = None) -> Any:
    """recall@k of each vector index per ef_search / probes tried (log scale), the target
    dashed, the session's setting ringed and the suggestion filled (`RetrievalQuality.curves`,
    its attrs: target, k, current, current_recall, suggested)."""
    if not isinstance(curves, pd.DataFrame) or curves.empty:
        return None
    attrs = curves.attrs
    target = attrs.get("target")
    current = attrs.get("current") or {}
    current_recall = attrs.get("current_recall") or {}
    suggested = attrs.get("suggested") or {}
    with style():
        if ax is None:
            _fig, ax = figure(3.5)
        for name, part in curves.groupby("index", sort=False):
            part = part.sort_values("value")
            setting = str(part["setting"].iloc[0])
            (line,) = ax.plot(
                part["value"], part["recall_at_k"], marker="o", label=f"{name} ({setting})"
            )
            now = current.get(name)
            if now is not None and current_recall.get(name) is not None:
                ax.plot([now], [current_recall[name]], "o", markersize=11, mfc="none", color=BAD)
            best = suggested.get(name)
            if best is not None and not pd.isna(best):
                hit = part[part["value"] == best]
                ax.plot(hit["value"], hit["recall_at_k"], "o", markersize=9, color=GOOD)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_integer_ticks())
        target_line(
            ax,
            target,
            f"target {target:g} (suggested: reached with 95 % confidence)"
            if target is not None
            else None,
        )
        ax.set_ylim(top=1.01)
        ax.set_xlabel("hnsw.ef_search / ivfflat.probes (red ring: now; green: suggested)")
        ax.set_ylabel(f"recall@{attrs.get('k', 'k')}")
        ax.set_title(_recall_title(curves, current, current_recall, suggested, target))
        ax.legend(loc="lower right")
    return ax


def _integer_ticks() -> Any:
    """The settings' ticks on their log2 axis, each written as its value (1, 2, 64,
    1,024; a tick below 1 as 0.5, never 0)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: fmt.number(v))


def _recall_title(
    curves: pd.DataFrame,
    current: Mapping[str, Any],
    current_recall: Mapping[str, Any],
    suggested: Mapping[str, Any],
    target: Any,
) -> str:
    name = str(curves["index"].iloc[0])
    setting = str(curves["setting"].iloc[0])
    recall, now, best = current_recall.get(name), current.get(name), suggested.get(name)
    if recall is None:
        return f"recall@k of {name}"
    head = f"{name}: recall {float(recall):.2f} at {setting} = {now}"
    if best is None or pd.isna(best):
        return head + f"; no setting tried reaches {target:g}"
    if now is not None and int(best) <= int(now):
        return head + f"; {int(best)} is enough for {target:g}"
    return head + f"; {int(best)} reaches {target:g}"


def similarity_threshold(top1: pd.DataFrame | None, ax: Any = None) -> Any:
    """The top-1 similarity of each sampled query (its nearest other row) as a histogram,
    the similarity threshold dashed: the queries left of it get no context from
    semantic_search (`RetrievalQuality.top1`, its attrs: threshold, sample)."""
    if not isinstance(top1, pd.DataFrame) or top1.empty:
        return None
    values = pd.to_numeric(top1["similarity"], errors="coerce").dropna()
    threshold = top1.attrs.get("threshold")
    sample = int(top1.attrs.get("sample") or len(top1))
    with style():
        if ax is None:
            _fig, ax = figure(3.5)
        if len(values):
            low = min(float(values.min()), float(threshold) if threshold is not None else 1.0)
            bins = np.linspace(max(-1.0, low - 0.02), 1.0, 41)
            ax.hist(values, bins=bins, label="queries (top-1 similarity)")
        if threshold is not None:
            target_line(ax, float(threshold), f"threshold {float(threshold):g}", axis="x")
        count_axis(ax)
        ax.set_xlabel("cosine similarity of the nearest other row")
        ax.set_ylabel("queries")
        if threshold is not None:
            share = (values >= float(threshold)).sum() / sample if sample else float("nan")
            ax.set_title(
                f"{fmt.pct(share, 0)} of {sample} queries find context at similarity >= "
                f"{float(threshold):g} (median top-1 {values.median():.2f})"
            )
        ax.legend(loc="upper left")
    return ax


# the names db.report gave these charts before they moved here (kept for old notebooks)
plot_top_tables = top_tables
plot_growth = database_growth
plot_embeddings = embeddings_by_type
