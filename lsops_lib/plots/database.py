"""The charts of the database reports (the DB optimization report, the review's database
section): each takes the DataFrame the library returns, draws on `ax` (a new figure when
None) and returns the Axes; given nothing to draw (None: the check could not run) it draws
nothing and returns None, so a notebook cell never fails on a missing frame.

    plots.top_tables(tables)                  db.space.table_sizes: heap, TOAST, indexes
    plots.database_growth(growth_total)       db.space.total_growth: size per snapshot
    plots.embeddings_by_type(by_entity_type)  db.embeddings.by_entity_type, with targets
    plots.database_month(growth, start, end)  the review's size over the month
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .. import fmt
from .look import TARGET_COLOR, bytes_axis, count_axis, figure, style, timeseries, utc_axis

__all__ = ["database_growth", "database_month", "embeddings_by_type", "top_tables"]


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
    frame's `attrs["entities"]`, which db.report fills from the coverage)."""
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
        ax.set_title(_embeddings_title(types, counts, entities))
        ax.legend(loc="upper left")
    return ax


def _embeddings_title(types: list[str], counts: list[int], entities: Mapping[str, int]) -> str:
    if not counts:
        return "No embedding stored"
    known = [t for t in types if t in entities]
    if known:
        have = dict(zip(types, counts, strict=True))
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


# the names db.report gave these charts before they moved here (kept for old notebooks)
plot_top_tables = top_tables
plot_growth = database_growth
plot_embeddings = embeddings_by_type
