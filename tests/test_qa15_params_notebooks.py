"""Bad notebook parameters (QA 15): refused by `lsops report` before anything runs, and
under plain papermill one line in the notebook (the cell still fails), by the same rules.

- the postmortem's `baseline_hours` and `sample_errors`, and db-optimization's thresholds,
  are checked by `lsops report` (exit 2, nothing written), as its other parameters are;
- under plain papermill the postmortem checks `severity`, `baseline_hours` and
  `sample_errors`, db_optimization `top_n`, with the rules `lsops report` applies;
- an error lsops raises on purpose in a notebook cell is its one line, not a traceback;
  `lsops report` records it in run.json as before (`ParameterError: ... (in cell N)`);
- explore_metrics opens the store as the other notebooks do (a mistyped path is never
  created) and says what is missing for an empty window or an unknown endpoint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

from lsops_lib import reports
from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ParameterError
from tests.fixtures.history import HISTORY_ENDPOINTS, ShortHistory

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
WINDOW = ["--start", "2026-10-03T14:00Z", "--end", "2026-10-03T15:00Z", "--title", "x"]


# --- lsops report: refused before anything runs ------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    outputs = tmp_path / "outputs"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LSOPS_NOTEBOOKS", str(NOTEBOOKS))
    monkeypatch.setenv("LSOPS_OUTPUTS", str(outputs))
    monkeypatch.setenv("LSOPS_STORE", f"sqlite:///{tmp_path / 'm.sqlite'}")
    monkeypatch.delenv("LSOPS_CONFIG", raising=False)
    return outputs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["postmortem", *WINDOW, "-p", "baseline_hours", "-5"], "at least 1,"),
        (["postmortem", *WINDOW, "-p", "baseline_hours", "0"], "at least 1,"),
        (["postmortem", *WINDOW, "-p", "baseline_hours", "1e9"], "at most 8784,"),
        (["postmortem", *WINDOW, "-p", "baseline_hours", "nan"], "finite number"),
        (["postmortem", *WINDOW, "-p", "sample_errors", "-3"], "at least 0,"),
        (["postmortem", *WINDOW, "-p", "sample_errors", "1001"], "at most 1000,"),
        (["postmortem", *WINDOW, "-p", "sample_errors", "2.5"], "integer"),
        (["db-optimization", "-p", "slow_query_mean_ms", "-1"], "at least 0,"),
        (["db-optimization", "-p", "dead_tuple_ratio", "-0.1"], "at least 0,"),
        (["db-optimization", "-p", "slow_query_calls", "-100"], "at least 0,"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(
    cli_env: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["report", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("lsops: parameter ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not cli_env.exists()


def test_values_at_the_bounds_are_accepted() -> None:
    window = {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "x"}
    for hours, samples in (("1", "0"), ("8784", "1000")):
        _, values = reports.validate(
            "postmortem",
            {**window, "baseline_hours": hours, "sample_errors": samples},
            notebooks_dir=NOTEBOOKS,
        )
        assert values["baseline_hours"] == float(hours)
        assert values["sample_errors"] == int(samples)


def test_check_parameter_applies_the_rule_of_lsops_report() -> None:
    from lsops_lib.reports.parameters import check_parameter

    assert check_parameter("postmortem", "severity", " sev1 ") == "SEV1"
    assert check_parameter("postmortem", "severity", None) is None
    assert check_parameter("db-optimization", "top_n", 5) == 5
    window = {"start": "2026-10-03T14:00Z", "end": "2026-10-03T15:00Z", "title": "x"}
    for kind, name, value in (
        ("postmortem", "severity", "SEV9"),
        ("postmortem", "baseline_hours", -5.0),
        ("postmortem", "sample_errors", -3),
        ("db-optimization", "top_n", -1),
        ("db-optimization", "top_n", 0),
    ):
        given = {**(window if kind == "postmortem" else {}), name: value}
        with pytest.raises(ParameterError) as refused:
            reports.validate(kind, given, notebooks_dir=NOTEBOOKS)
        with pytest.raises(ParameterError) as checked:
            check_parameter(kind, name, value)
        assert str(checked.value) == str(refused.value)  # the same rule, the same words


# --- plain papermill: one line in the notebook -------------------------------------------------
#
# One case runs as a user runs it, `python -m papermill` in its own process. The others run
# in one kernel, one after the other, each notebook parameterized by papermill's own code
# from the values `-p` would give, its cells executed until the first error (papermill stops
# there too); the errors recorded are the kernel's own `error` messages, as papermill
# writes them into the notebook. One kernel instead of nine processes (~35 s of the suite).


def _papermill(notebook: str, out: Path, params: dict[str, str], env: dict[str, str]):
    args = [sys.executable, "-m", "papermill", str(NOTEBOOKS / notebook), str(out)]
    for name, value in params.items():
        args += ["-p", name, value]
    args += ["--no-progress-bar", "--cwd", str(out.parent)]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def _in_one_kernel(cases: dict[str, tuple[str, dict[str, str]]], env: dict[str, str], cwd: Path):
    """name -> (the cell that failed or None, the notebook with its error output) for each
    case, all in one python3 kernel started with `env` in `cwd`."""
    from jupyter_client.manager import KernelManager
    from papermill.cli import _resolve_type
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    # Unix sockets, not TCP ports: a port chosen free can be taken by another process of
    # the suite before the kernel binds it ("Address already in use", the kernel dies)
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(cwd / "kernel-ipc"))
    km.start_kernel(env=env, cwd=str(cwd))
    kc = km.blocking_client()
    kc.start_channels()
    found: dict[str, Any] = {}
    try:
        kc.wait_for_ready(timeout=120)
        for name, (notebook, params) in cases.items():
            nb = load_notebook_node(str(NOTEBOOKS / notebook))  # as papermill reads it
            values = {key: _resolve_type(value) for key, value in params.items()}
            nb = parameterize_notebook(nb, values, kernel_name="python3", language="python")
            failed = None
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                errors: list[Any] = []

                def hook(msg: dict[str, Any], errors: list[Any] = errors) -> None:
                    if msg["msg_type"] == "error":
                        errors.append(nbformat.v4.new_output("error", **msg["content"]))

                reply = kc.execute_interactive(cell.source, timeout=120, output_hook=hook)
                cell.outputs = errors
                if reply["content"]["status"] != "ok":
                    failed = index
                    break
            found[name] = (failed, nb)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return found


@pytest.fixture(scope="module")
def plain(short_history: ShortHistory, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("qa15-plain")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_")}
    env.update(LSOPS_STORE=short_history.store_url, LSOPS_DATA=str(tmp / "data"))
    inside = short_history.start.strftime("%Y-%m-%dT%H:%MZ")
    later = (short_history.start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    runs = {
        "pm_severity": ("incident_postmortem.ipynb", {"severity": "SEV9"}),
        "pm_baseline": ("incident_postmortem.ipynb", {"baseline_hours": "1e9"}),
        "pm_samples": ("incident_postmortem.ipynb", {"sample_errors": "-3"}),
        "db_top_n": ("db_optimization.ipynb", {"top_n": "-1"}),
        "ex_store": ("explore_metrics.ipynb", {"store": f"sqlite:///{tmp / 'stor.sqlite'}"}),
        "ex_empty": ("explore_metrics.ipynb", {"start": "2020-01-01", "end": "2020-01-05"}),
        "ex_endpoint": ("explore_metrics.ipynb", {"endpoint": "/nosuch"}),
        "ex_target": ("explore_metrics.ipynb", {"target": "nosuch"}),
    }
    with ThreadPoolExecutor(max_workers=1) as pool:  # beside the kernel's cases
        out = tmp / "pm_reversed.ipynb"
        real = pool.submit(
            _papermill, "incident_postmortem.ipynb", out, {"start": later, "end": inside}, env
        )
        found = _in_one_kernel(runs, env, tmp)
        done = real.result()
    assert done.returncode != 0  # the cell still fails: papermill stops there
    found["pm_reversed"] = (None, nbformat.read(out, as_version=4))
    return {"tmp": tmp, **found}


def _the_error(nb: Any) -> Any:
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize(
    ("name", "ename", "words"),
    [
        ("pm_reversed", "ParameterError", "is after end"),
        ("pm_severity", "ParameterError", "parameter severity must be SEV1 .. SEV5, not 'SEV9'"),
        ("pm_baseline", "ParameterError", "parameter baseline_hours must be at most 8784"),
        ("pm_samples", "ParameterError", "parameter sample_errors must be at least 0"),
        ("db_top_n", "ParameterError", "parameter top_n must be at least 1, not '-1'"),
        ("ex_store", "StoreError", "stor.sqlite does not exist: run 'lsops collect' first"),
        ("ex_empty", "ParameterError", "no request in 2020-01-01 00:00 .. 2020-01-05 00:00 UTC"),
        ("ex_endpoint", "ParameterError", "no request to /nosuch in the window"),
        ("ex_target", "ParameterError", "no scrapes of the target nosuch"),
    ],
)
def test_a_bad_parameter_is_one_line_in_the_notebook(
    plain: dict, name: str, ename: str, words: str
) -> None:
    failed, nb = plain[name]
    if name != "pm_reversed":  # (the papermill process failed: checked in the fixture)
        assert failed is not None  # the cell still fails: execution stops there
    error = _the_error(nb)
    assert error.ename == ename and words in error.evalue
    shown = ANSI.sub("", "\n".join(error.traceback)).strip().splitlines()
    assert shown == [f"{ename}: {error.evalue}"]


def test_explore_never_creates_a_mistyped_store(plain: dict) -> None:
    assert not (plain["tmp"] / "stor.sqlite").exists()


def test_the_unknown_endpoint_message_names_the_busiest_ones(plain: dict) -> None:
    error = _the_error(plain["ex_endpoint"][1])
    assert all(endpoint in error.evalue for endpoint in HISTORY_ENDPOINTS)


# --- lsops report records the failure as before -------------------------------------------------


def test_lsops_report_records_a_one_line_error_as_before(tmp_path: Path) -> None:
    """A notebook that calls present.begin() and raises a ParameterError: run.json's error
    is `ParameterError: <message> (in cell N)`, the archived notebook and HTML show the one
    line, no traceback."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    params = nbformat.v4.new_code_cell('month = "2026-10"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "from lsops_lib import present\n"
            "from lsops_lib.exceptions import ParameterError\n"
            "\n"
            "present.begin()\n"
            "raise ParameterError('planted: no such month here')"
        ),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    nbformat.write(nb, folder / "monthly_review.ipynb")
    settings = load_settings(
        env={"LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}"}, cwd=tmp_path
    )
    run = reports.run_report(
        "monthly-review",
        {"month": "2026-10"},
        settings=settings,
        outputs_dir=tmp_path / "outputs",
        notebooks_dir=folder,
        timeout_s=120,
        progress=False,
        cwd=tmp_path,
    )
    assert run.status == "failed"
    assert re.fullmatch(r"ParameterError: planted: no such month here \(in cell \d+\)", run.error)
    executed = nbformat.read(run.path / "report.ipynb", as_version=4)
    error = _the_error(executed)
    assert ANSI.sub("", "\n".join(error.traceback)).strip().splitlines() == [
        "ParameterError: planted: no such month here"
    ]
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert "planted: no such month here" in page
    assert "Traceback" not in page and "raise ParameterError" not in page
