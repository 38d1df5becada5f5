"""`lsops demo`: the simulated API, an embedded PostgreSQL, a month of history and the
three reports, in one command.

    world      what happens: the month, the planted incidents, the LongSang database
    run        how it is run: Options, the Demo's phases, Result, run_demo
    folder     the demo folder: store, settings, state.json, logs, its lock
    database   the demo's PostgreSQL: the LongSang database grown over the window
    workers    the child processes: history collection (History), reports (ReportRun)
    processes  generic child-process handling: descendants, alive, kill_all, Children
    lab        `lsops demo --lab`: JupyterLab on the demo's store and database
    errors     DemoError, UsageError, Interrupted
    sources    Sentry, the pm2 log files and pm2 jlist agreeing with the incidents (issue 10)
"""

from __future__ import annotations

from .errors import DemoError, Interrupted, UsageError, format_exception
from .lab import run_lab
from .processes import alive, descendants
from .run import Options, Result, run_demo
from .world import Plan, Segment, plan

__all__ = [
    "DemoError",
    "Interrupted",
    "Options",
    "Plan",
    "Result",
    "Segment",
    "UsageError",
    "alive",
    "descendants",
    "format_exception",
    "plan",
    "run_demo",
    "run_lab",
]
