"""`report_overhead` and `reports_parallel`: `lsops report monthly-review`, as a user runs it.

report_overhead: `lsops report monthly-review --month 2025-09` (validate, papermill
    execution, archive with the HTML export, index) on the 30-day store, against the
    same command running a notebook that only imports pandas and matplotlib and draws one
    plot (the Jupyter pipeline's own cost). One warm-up run first (cold file caches).
reports_parallel: `--months 2025-01..2025-12 --jobs 2` against `--jobs 1`, on a year of
    scrapes every 5 minutes (50 endpoints; the quick run: 3 months of them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
from common import LSOPS, REPO, Context, Result, clean_env, run_timed, tail
from datasets import generate, month_start

TRIVIAL = """\
import matplotlib.pyplot as plt
import pandas as pd

frame = pd.DataFrame({"x": range(24), "y": [i * i for i in range(24)]})
frame.plot(x="x", y="y", title=f"one plot for {month}")
plt.show()
"""


def trivial_notebook(folder: Path) -> Path:
    """A monthly_review.ipynb that only imports pandas and matplotlib and draws one plot."""
    _review_notebook(folder, TRIVIAL)
    return folder


def _review_notebook(folder: Path, body: str) -> None:
    """folder/monthly_review.ipynb on the python3 kernel: the `month` parameter, `body`."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell('month = "2025-09"\n', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nbformat.write(nb, folder / "monthly_review.ipynb")


def review_notebooks(ctx: Context) -> tuple[Path, str]:
    """The repository's notebooks (the real monthly review), or a stand-in while it is
    missing: the review bundle, drawn in one plot."""
    if (REPO / "notebooks" / "monthly_review.ipynb").is_file():
        return REPO / "notebooks", "notebooks/monthly_review.ipynb"
    folder = ctx.tmp / "placeholder-notebooks"
    _review_notebook(
        folder,
        "import matplotlib.pyplot as plt\n"
        "from lsops_lib.analysis import monthly_review\n"
        "from lsops_lib.config import load_settings\n"
        "from lsops_lib.store import Store\n"
        "review = monthly_review(Store(load_settings().store_url), month)\n"
        "review\n",
    )
    return folder, "placeholder (monthly_review() bundle)"


def _report(
    ctx: Context, label: str, store_url: str, notebooks: Path, args: list[str]
) -> tuple[float, dict]:
    outputs = ctx.tmp / f"outputs-{label}"
    env = clean_env(
        {
            "LSOPS_STORE": store_url,
            "LSOPS_OUTPUTS": str(outputs),
            "LSOPS_NOTEBOOKS": str(notebooks),
            "LSOPS_DATA": str(ctx.tmp / "data"),
        }
    )
    seconds, proc = run_timed(
        [LSOPS, "report", "monthly-review", *args, "--no-progress", "--json"],
        env=env,
        cwd=ctx.tmp,
    )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {}
    if proc.returncode != 0:
        ctx.log(f"  {label}: exit {proc.returncode}: {tail(proc.stderr or proc.stdout, 3)}")
    shutil.rmtree(outputs, ignore_errors=True)
    return seconds, {"exit": proc.returncode, "cpu_s": getattr(proc, "cpu_s", None), **data}


def report_overhead(ctx: Context) -> list[Result]:
    data = ctx.cache["history"]
    notebooks, which = review_notebooks(ctx)
    trivial = trivial_notebook(ctx.tmp / "trivial-notebooks")
    month = ["--month", data.start.strftime("%Y-%m")]
    ctx.log("  warm-up run (trivial notebook)")
    _report(ctx, "warmup", data.url, trivial, month)
    repeats = 1 if ctx.quick else 2
    base_s = review_s = float("inf")
    base: dict = {}
    review: dict = {}
    for _ in range(repeats):  # alternated, best of each: the machine may be shared
        seconds, out = _report(ctx, "trivial", data.url, trivial, month)
        ctx.log(f"  trivial notebook {seconds:.1f} s (exit {out['exit']})")
        if seconds < base_s or out["exit"] != 0:
            base_s, base = seconds, out
        seconds, out = _report(ctx, "review", data.url, notebooks, month)
        ctx.log(f"  monthly review {seconds:.1f} s (exit {out['exit']})")
        if seconds < review_s or out["exit"] != 0:
            review_s, review = seconds, out
    ok = base["exit"] == 0 and review["exit"] == 0
    ratio = review_s / base_s
    return [
        Result(
            "report_overhead",
            review_s,
            "s",
            base_s,
            "ratio <= 1.5",
            ok and ratio <= 1.5,
            {
                "notebook": which,
                "dataset": data.as_dict(),
                "repeats": repeats,
                "review_exit": review["exit"],
                "review_error": review.get("error"),
                "review_cpu_s": review["cpu_s"],
                "trivial_cpu_s": base["cpu_s"],
                "review_kernel_s": review.get("duration_s"),
                "trivial_kernel_s": base.get("duration_s"),
            },
        )
    ]


def reports_parallel(ctx: Context) -> list[Result]:
    if ctx.quick:
        months, every_s, days = "2025-01..2025-03", 300, 90
    else:
        months, every_s, days = "2025-01..2025-12", 300, 365
    data = generate(
        ctx.tmp / "reports-year.sqlite",
        start=month_start("2025-01"),
        days=days,
        every_s=every_s,
        seed=3,
    )
    ctx.log(f"  {data.samples:,} samples ({days} days every {every_s} s) in {data.seconds:.1f} s")
    notebooks, which = review_notebooks(ctx)
    args = ["--months", months]
    serial_s, serial = _report(ctx, "serial", data.url, notebooks, [*args, "--jobs", "1"])
    ctx.log(f"  --jobs 1: {serial_s:.1f} s (exit {serial['exit']})")
    parallel_s, parallel = _report(ctx, "parallel", data.url, notebooks, [*args, "--jobs", "2"])
    ctx.log(f"  --jobs 2: {parallel_s:.1f} s (exit {parallel['exit']})")
    data.path.unlink(missing_ok=True)
    speedup = serial_s / parallel_s
    ok = serial["exit"] == 0 and parallel["exit"] == 0
    return [
        Result(
            "reports_parallel",
            parallel_s,
            "s",
            serial_s,
            "speedup baseline/value >= 1.7 (ratio <= 0.59)",
            ok and speedup >= 1.7,
            {
                "months": months,
                "notebook": which,
                "dataset": data.as_dict(),
                "speedup": round(speedup, 2),
                "serial_cpu_s": serial["cpu_s"],
                "parallel_cpu_s": parallel["cpu_s"],
                "serial_exit": serial["exit"],
                "parallel_exit": parallel["exit"],
                "failed": [
                    r.get("month") for r in parallel.get("runs", []) if not r.get("ok", False)
                ],
            },
        )
    ]
