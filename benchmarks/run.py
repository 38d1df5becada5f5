"""`make bench [QUICK=1]`: every figure of docs/benchmarks.md, measured with its baseline.

    python benchmarks/run.py [--quick] [--only NAME ...] [--keep] [--no-docs]

Data sets are generated, seeded, into a temporary folder (removed afterwards unless
--keep). Prints one table, writes benchmarks/results.json (a list of objects with name,
value, unit, baseline, ratio, goal, met, plus details) and, after a FULL run of every
figure, rewrites docs/benchmarks.md from those same results.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import REPO, Context, Result, load_average, machine  # noqa: E402
from render_docs import render_markdown, run_meta  # noqa: E402

NAMES = [
    "report_overhead",
    "history_query",
    "year_query",
    "store_bytes",
    "hourly_vs_peer",
    "ingest_cpu",
    "collect_fanout",
    "inspect_large_catalog",
    "reports_parallel",
    "demo_wall",
]


def steps() -> list[tuple[tuple[str, ...], Callable[[Context], list[Result]]]]:
    """(figures produced, function), in this order (report_overhead needs the 30-day
    store). Imported here: rendering the docs needs none of lsops."""
    from collect_figs import collect_fanout
    from demo_figs import demo_wall
    from history import history_figures, year_figure
    from inspect_figs import inspect_large_catalog
    from peer_figs import peer_figures
    from reports_figs import report_overhead, reports_parallel

    return [
        (("history_query",), history_figures),
        (("store_bytes", "hourly_vs_peer", "ingest_cpu"), peer_figures),
        (("year_query",), year_figure),
        (("report_overhead",), report_overhead),
        (("reports_parallel",), reports_parallel),
        (("collect_fanout",), collect_fanout),
        (("inspect_large_catalog",), inspect_large_catalog),
        (("demo_wall",), demo_wall),
    ]


NEEDS = {
    "year_query": "history_query",
    "report_overhead": "history_query",
    "store_bytes": "history_query",
    "hourly_vs_peer": "history_query",
    "ingest_cpu": "history_query",
}
RESULTS = HERE / "results.json"
DOCS = REPO / "docs" / "benchmarks.md"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def table(results: list[dict]) -> str:
    header = ["name", "value", "unit", "baseline", "ratio", "goal", "met"]
    rows = [
        [
            r["name"],
            _fmt(r["value"]),
            r["unit"],
            _fmt(r["baseline"]),
            _fmt(r["ratio"]),
            r["goal"],
            {True: "yes", False: "NO", None: "-"}[r["met"]],
        ]
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down data (a minute or two)")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help="these figures")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data sets")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--render-docs",
        action="store_true",
        help="only re-render docs/benchmarks.md from results.json (after a full run)",
    )
    args = parser.parse_args(argv)
    if args.render_docs:
        meta = run_meta(DOCS.read_text()) if DOCS.is_file() else None
        if meta is None:
            parser.error("docs/benchmarks.md records no full run to re-render")
        results = json.loads(RESULTS.read_text())
        if any(r.get("details", {}).get("run") != "full" for r in results) or len(results) != len(
            NAMES
        ):
            parser.error("results.json does not hold a full run of every figure")
        DOCS.write_text(
            render_markdown(
                results,
                meta["machine"],
                duration_s=meta["duration_s"],
                table=table,
                when=meta["when"],
            )
        )
        print(f"docs: {DOCS.relative_to(REPO)} re-rendered from {RESULTS.relative_to(REPO)}")
        return 0
    wanted = set(args.only or NAMES)
    for name in list(wanted):
        if name in NEEDS:
            wanted.add(NEEDS[name])

    tmp = Path(tempfile.mkdtemp(prefix="lsops-bench-"))
    started = time.time()

    def log(message: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {message}", flush=True)

    ctx = Context(tmp=tmp, quick=args.quick, log=log)
    info = machine()
    log(f"{'QUICK' if args.quick else 'FULL'} run in {tmp} on {info['cpu']}, {info['cores']} cores")
    results: dict[str, Result] = {}
    try:
        for names, step in steps():
            if not wanted.intersection(names):
                continue
            log(f"{' / '.join(names)}")
            clock = time.perf_counter()
            try:
                for result in step(ctx):
                    result.details["load_average_after"] = load_average()
                    results[result.name] = result
            except Exception as exc:  # one broken figure must not hide the others
                traceback.print_exc()
                for name in names:
                    results[name] = Result(
                        name, None, "s", None, "-", False, {"error": f"{type(exc).__name__}: {exc}"}
                    )
            log(f"  ({time.perf_counter() - clock:.1f} s, load {load_average()})")
    finally:
        if args.keep:
            log(f"data sets kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    ordered = [results[n].as_dict() for n in NAMES if n in results and n in (args.only or NAMES)]
    for item in ordered:
        item["details"]["run"] = "quick" if args.quick else "full"
    RESULTS.write_text(json.dumps(ordered, indent=2) + "\n")
    print()
    print(table(ordered))
    print()
    print(
        f"results: {RESULTS.relative_to(REPO)}  ({'quick' if args.quick else 'full'} run, "
        f"{(time.time() - started) / 60:.1f} min)"
    )
    if not args.quick and not args.only and not args.no_docs:
        DOCS.write_text(
            render_markdown(ordered, info, duration_s=time.time() - started, table=table)
        )
        print(f"docs:    {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
