"""Generate notebooks/monthly_review.ipynb and notebooks/incident_postmortem.ipynb.

    .venv/bin/python notebooks/build_notebooks.py && .venv/bin/ruff format notebooks

The notebooks only call `lsops_lib.present` (which draws the `lsops_lib.analysis`
bundles): each code cell reads like a sentence of the report. Edit here, regenerate, and
commit the .ipynb files with this script.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KEY_FIGURES_TAG = "lsops-key-figures"  # lsops_lib.present.KEY_FIGURES_TAG


def build(cells: list[tuple[str, str] | tuple[str, str, list[str]]]) -> nbformat.NotebookNode:
    out = []
    for index, item in enumerate(cells):
        kind, source = item[0], item[1].strip("\n")
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"cell-{index:02d}"  # stable ids: regenerating changes nothing
        if len(item) > 2:
            cell.metadata["tags"] = list(item[2])  # type: ignore[misc]
        out.append(cell)
    nb = new_notebook(cells=out)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


MONTHLY = [
    (
        "md",
        """
# Monthly performance review

The runbook's monthly review of the LongSang Admin AI Copilot API, from the metrics
history that `lsops collect` stores: each runbook target met or missed, the error
budgets, latency told honestly, daily trends, memory, endpoints, incidents, the
database, and the quality of the data behind every figure.

Figures come from deltas of the API's cumulative counters (never from averaged ratios);
times are UTC; the collector's own monitoring requests are left out unless asked.
""",
    ),
    (
        "code",
        """
# Parameters (papermill -p NAME VALUE / `lsops report monthly-review --month YYYY-MM`).
month: str = None  # YYYY-MM; None: the previous calendar month (UTC)
target: str = None  # an API target NAME from lsops.toml; None: every target in the store
store: str = None  # metrics store URL (no password); None: the configured store (LSOPS_STORE)
database: str = None  # a database NAME from lsops.toml (never a URL); None: the configured one
include_monitoring: bool = False  # count the collector's own /health and /metrics requests
""",
        ["parameters"],
    ),
    (
        "code",
        """
from lsops_lib import present
from lsops_lib.config import load_settings

present.begin()
settings = load_settings()
month = present.resolve_month(month)
source = present.open_store(store, settings)
target = present.resolve_target(source, target, settings)
present.show_review_header(month, source, settings, target=target)
review = present.load_review(
    source, month, settings.thresholds, target=target, include_monitoring=include_monitoring
)
""",
    ),
    (
        "md",
        """
## Summary

Each runbook target for the month, met or missed, with its figure; the error budget of
each objective (budget = (1 - SLO) x period, burn rate = observed error ratio / (1 - SLO),
a burn rate above 1 spends more than the budget); and what changed against the month
before.
""",
    ),
    ("code", "present.show_summary(review, source)"),
    (
        "md",
        """
## Latency

The server's p50/p95/p99 are untrusted (they are often out of order), so there is no
"monthly p95" here. The latency objective is the **share of time slices whose reported
p95 met the target** (OpenSLO time slices: one slice per scrape), and the mean latency
comes from the request counters (time sum / count), weighted by traffic.
""",
    ),
    ("code", "present.show_latency(review)"),
    (
        "md",
        """
## Daily trends

Requests, error rate, mean latency and cache hit rate per UTC day, targets as dashed
lines. Days without data are gaps, not zeros.
""",
    ),
    ("code", "present.show_daily_trends(review)"),
    (
        "md",
        """
## Memory

Resident memory per scrape, restarts and counter resets marked. Between two restarts a
steady climb faster than the threshold is flagged as a possible leak.
""",
    ),
    ("code", "present.show_memory(review)"),
    (
        "md",
        """
## Endpoints

Volume, error rate and mean latency per endpoint with the change against the previous
month, worst first (most errors, then the largest latency increase, then volume).
""",
    ),
    ("code", "present.show_endpoints(review)"),
    (
        "md",
        """
## Incidents

Incidents found in the history: no answer, ERROR or DEGRADED health, error-rate and
latency breaches, restarts. Each comes with the command that writes its postmortem.
""",
    ),
    ("code", "present.show_incidents(review)"),
    (
        "md",
        """
## Database

The database's size and growth over the month (from the snapshots `lsops collect --db`
stores) and the embeddings indexing (the runbook's weekly check), read-only. When no
database is configured, or it cannot be reached, this section says so.
""",
    ),
    (
        "code",
        """
month_start, month_end = present.month_window(month)
db = present.database_overview(settings, database, source, month_start, month_end)
present.show_database(db, review)
""",
    ),
    (
        "md",
        """
## Data quality

How much of the month the collector covered, the gaps (never counted as uptime), the
counter resets and restarts (figures across them are lower bounds), and what was
excluded and why.
""",
    ),
    ("code", "present.show_data_quality(review, source)"),
    (
        "md",
        """
## Key figures

The report's figures in machine-readable form (for schedulers, dashboards and tests).
""",
    ),
    (
        "code",
        "figures = present.key_figures(present.review_figures(review, source, db))",
        [KEY_FIGURES_TAG],
    ),
]

POSTMORTEM = [
    (
        "md",
        """
# Incident postmortem

A blameless postmortem after the Google SRE template. The facts (impact window, failed
requests, endpoints ranked by harm, error records, restarts, a timeline, charts against
a baseline) are filled from the metrics history; the sections marked
**TO BE WRITTEN BY THE INCIDENT OWNER** (root cause, trigger, action items, lessons) are
left for a person. Times are UTC.
""",
    ),
    (
        "code",
        """
# Parameters (papermill -p NAME VALUE / `lsops report postmortem --start T --end T --title ...`).
start: str = None  # start of the incident window (ISO 8601, UTC); None: the latest incident found
end: str = None  # end of the incident window (ISO 8601, UTC)
title: str = None  # the incident's title; None: named after the incident found
severity = "SEV2"  # SEV1 .. SEV5
target: str = None  # an API target NAME from lsops.toml; None: every target in the store
store: str = None  # metrics store URL (no password); None: the configured store (LSOPS_STORE)
baseline_hours = 24.0  # the baseline is this many hours just before the window
sample_errors = 20  # how many error records to sample over the window
""",
        ["parameters"],
    ),
    (
        "code",
        """
from lsops_lib import present
from lsops_lib.config import load_settings

present.begin()
settings = load_settings()
source = present.open_store(store, settings)
target = present.resolve_target(source, target, settings)
window = present.choose_window(
    source, settings.thresholds, start=start, end=end, title=title, target=target
)
pm = present.load_postmortem(
    source,
    window,
    settings.thresholds,
    target=target,
    baseline_hours=baseline_hours,
    sample_errors=sample_errors,
)
present.show_postmortem_header(pm, window, severity, source)
""",
    ),
    ("md", "## Summary"),
    ("code", "present.show_pm_summary(pm)"),
    (
        "md",
        """
## Impact

The impact window runs from the first breach to the last one found in the history. Endpoints
are ranked by harm: errors beyond what their baseline error rate predicts, then the
latency added over their baseline mean.
""",
    ),
    ("code", "present.show_impact(pm)"),
    ("md", "## Timeline"),
    ("code", "present.show_timeline(pm)"),
    (
        "md",
        """
### The window against its baseline

Per scrape interval (per hour for long windows): the baseline before the window in grey,
the window in blue, the impact window shaded, restarts dotted.
""",
    ),
    ("code", "present.show_window_charts(pm)"),
    ("md", "## Detection"),
    ("code", "present.show_detection(pm)"),
    ("md", "## Resolution"),
    ("code", "present.show_resolution(pm)"),
    (
        "md",
        """
## Root cause and trigger

The history shows symptoms, not causes. The evidence below (error records the API kept,
grouped and sampled) is where the incident owner starts.
""",
    ),
    (
        "code",
        """
present.todo("Root cause", "The underlying defect or condition, and why it existed.")
present.todo("Trigger", "The change or event that turned the latent cause into an incident.")
present.show_evidence(pm)
""",
    ),
    ("md", "## Action items"),
    ("code", "present.show_action_items()"),
    ("md", "## Lessons learned"),
    ("code", "present.show_lessons()"),
    (
        "md",
        """
## Key figures

The postmortem's figures in machine-readable form (for tools and tests).
""",
    ),
    (
        "code",
        "figures = present.key_figures(present.postmortem_figures(pm, window, severity, source))",
        [KEY_FIGURES_TAG],
    ),
]


def main() -> None:
    for name, cells in (("monthly_review", MONTHLY), ("incident_postmortem", POSTMORTEM)):
        nbformat.write(build(cells), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
