"""Regenerate the placeholder notebooks of tests/test_reports.py (then `ruff format` them):

    python tests/data/notebooks/make_placeholders.py && ruff format tests/data/notebooks

They stand in for the real notebooks/ (whose content is tested elsewhere) and can, on
request of a parameter: print the settings' secrets (`leak`), show hostile text
(`payload`), draw a chart with lsops_lib.plots (`plot`), fail (`fail`), sleep (`sleep_s`).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def nb(cells, params):
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    n = new_notebook(
        cells=[new_markdown_cell(cells[0]), p]
        + [
            new_code_cell(c) if not c.startswith("#md ") else new_markdown_cell(c[4:])
            for c in cells[1:]
        ]
    )
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    return n


common = [
    "import sys\n\nimport pandas as pd\nfrom IPython.display import HTML, Markdown, display\n\nfrom lsops_lib.config import load_settings\n\nsettings = load_settings()\nprint('python', sys.executable)\nprint('target', settings.target.name, 'store', settings.store_url)",
    "if leak:\n    # a careless notebook: the archive must still hold no secret\n    print('token', settings.api_token)\n    print('database', settings.database_url)\n    display(pd.DataFrame({'setting': ['token', 'db'], 'value': [settings.api_token, settings.database_url]}))",
    "if payload:\n    print(payload)\n    display(pd.DataFrame({'endpoint': [payload, '/api/chat'], 'requests': [3, 4]}))\n    display(Markdown('endpoint: ' + payload))\n    display(HTML('<b>endpoint</b> ' + payload))",
    "if plot:\n    import matplotlib.pyplot as plt\n\n    from lsops_lib import plots\n\n    df = pd.DataFrame({'ts': pd.date_range('2026-10-01', periods=48, freq='h', tz='UTC'), 'p95': range(48)})\n    with plots.style():\n        plots.timeseries(None, df, 'ts', 'p95', 'p95 under target all month', target=40, target_label='target', ylabel='p95 (ms)')\n        plt.show()",
    "if fail:\n    raise ValueError(f'planted failure: cannot connect to {settings.database_url}')",
    "print('REPORT DONE')",
]

monthly = nb(
    ["# Placeholder monthly review (tests)"] + common,
    "month = '2026-10'\ntarget = None\nstore = None\ndatabase = None\ninclude_monitoring = False\nleak = False\npayload = ''\nplot = False\nfail = False\nsleep_s = 0.0",
)
monthly.cells.insert(3, new_code_cell("import time\ntime.sleep(sleep_s)\nprint('month', month)"))
post = nb(
    ["# Placeholder postmortem (tests)"] + common,
    "start = '2026-10-03T14:00:00Z'\nend = '2026-10-03T15:00:00Z'\ntitle = 'Demo incident'\nseverity = 'SEV2'\ntarget = None\nstore = None\nleak = False\npayload = ''\nplot = False\nfail = False",
)
db = nb(
    ["# Placeholder db optimization (tests)"] + common,
    "database = None\ntop_n = 20\nleak = False\npayload = ''\nplot = False\nfail = False",
)
for name, n in [
    ("monthly_review", monthly),
    ("incident_postmortem", post),
    ("db_optimization", db),
]:
    nbformat.write(n, Path(__file__).parent / f"{name}.ipynb")
