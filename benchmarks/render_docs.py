"""docs/benchmarks.md, rendered from the results of a full run (never edited by hand).

The measured numbers come from the run; the method of each figure and what the profiles
showed (NOTES) are kept here, next to the code that measures them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

METHOD = {
    "report_overhead": (
        "`lsops report monthly-review --month 2025-09 --json` in a fresh process (validate, "
        "papermill execution, archive with the HTML export, index) on the 30-day store; "
        "baseline: the same command with `LSOPS_NOTEBOOKS` pointing at a notebook that only "
        "imports pandas and matplotlib and draws one plot. One warm-up run first."
    ),
    "history_query": (
        '`Store.endpoint_intervals(start, end, bucket="hour")` over the 30 days (43,200 '
        "scrapes x 50 endpoints = 2.16 M samples), best of 3, fresh Store each time; "
        "baseline: the raw sample rows read into pandas (`read_sql_query`), deltas across "
        "restarts per endpoint and hourly sums there. Both give the same totals (details)."
    ),
    "year_query": (
        "the same read over 365 days (26.3 M samples, generated into its own store); "
        "baseline: `history_query` of the same run."
    ),
    "store_bytes": (
        "bytes of the `lsops_samples` table and its indexes (SQLite `dbstat`) divided by "
        "the samples of the 30-day store; baseline: 16 bytes (one raw timestamp and value)."
    ),
    "collect_fanout": (
        "wall time of a fresh Python process doing what `lsops collect --once` does "
        "(settings, store, deep health + metrics, store write) for 100 simulated API "
        "targets at once (a thread pool of 16 over `collect_once`), the servers in their own "
        "process on the real clock; median of 3 rounds; baseline: the same for 1 target."
    ),
    "inspect_large_catalog": (
        "`lsops_lib.db.optimization_report(url=..., top_n=20)`, what the db_optimization "
        "notebook calls, on a throwaway PostgreSQL holding the LongSang schema plus 5,000 "
        "tables with 10,000 indexes (4 schemas); baseline: the LongSang schema alone."
    ),
    "reports_parallel": (
        "`lsops report monthly-review --months 2025-01..2025-12 --jobs 2` against "
        "`--jobs 1`, on a store with a year of 5-minute scrapes of 50 endpoints."
    ),
    "demo_wall": "`lsops demo` in a fresh folder, the venv already installed. No baseline.",
}

# What the profiles (pyinstrument) showed; kept current by whoever changes the hot paths.
NOTES: dict[str, str] = {}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def render_markdown(
    results: list[dict[str, Any]],
    info: dict[str, Any],
    *,
    duration_s: float,
    table: Callable[[list[dict[str, Any]]], str] | None = None,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by `make bench` (benchmarks/run.py) after a full run: do not edit by "
        "hand; the method and the notes live in benchmarks/render_docs.py. -->",
        "",
        f"Latest full run: {when}, {duration_s / 60:.1f} minutes, `make bench`.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, SQLite {info['sqlite']}, {info['os']}. Shared with "
        "other work while it ran (timings are wall clock).",
        "",
        "`ratio` is value / baseline for every figure. `make bench QUICK=1` runs the same "
        "figures on scaled-down data (a minute or two); goals are judged on the full run.",
        "",
        "| name | value | unit | baseline | ratio | goal | met |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in results:
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        lines.append(
            f"| `{r['name']}` | {_cell(r['value'])} | {r['unit']} | {_cell(r['baseline'])} | "
            f"{_cell(r['ratio'])} | {r['goal']} | {met} |"
        )
    missed = [r["name"] for r in results if r["met"] is False]
    lines += [
        "",
        f"Goals met: {sum(r['met'] is True for r in results)} of {len(results)}"
        + (f"; missed: {', '.join(f'`{m}`' for m in missed)}." if missed else "."),
        "",
        "## The figures",
        "",
    ]
    for r in results:
        lines += [f"### `{r['name']}`", "", METHOD.get(r["name"], ""), ""]
        if r["name"] in NOTES:
            lines += [NOTES[r["name"]], ""]
        details = {k: v for k, v in (r.get("details") or {}).items()}
        if details:
            lines += [
                "<details><summary>details of the run</summary>",
                "",
                "```json",
                json.dumps(details, indent=2, default=str),
                "```",
                "",
                "</details>",
                "",
            ]
    if table is not None:
        lines += ["## As `make bench` printed it", "", "```", table(results), "```", ""]
    return "\n".join(lines)
