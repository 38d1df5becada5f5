"""lsops installed as a wheel, not only editable from the checkout.

The wheel is built from this checkout (setuptools, no build isolation: the test extras
carry setuptools and wheel), installed without its dependencies into a fresh virtual
environment whose only other path is this environment's site-packages (where the
dependencies are; its editable lsops is not loaded: a path line in a .pth file does not
process the .pth files of that folder), and a report is run from a folder that has
nothing of the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.history import ShortHistory

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _packages_in_tree() -> set[str]:
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "lsops_lib").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    # data-only folders shipped as packages
    found |= {"lsops_lib.sql", "lsops_lib.templates", "lsops_lib.notebooks"}
    return found


def test_every_package_of_the_tree_is_declared() -> None:
    """pyproject lists its packages (the notebooks need a package-dir mapping, which
    setuptools' automatic discovery cannot express): a new package must be added there."""
    declared = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert declared == _packages_in_tree()


def _clean_env() -> dict[str, str]:
    """No LSOPS_* settings, and no PYTHONPATH pointing at a checkout."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LSOPS_", "PYTHON"))}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # built from a copy of what the wheel is made of: setuptools writes build/ and
    # *.egg-info beside the sources, never into the checkout
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("lsops_lib", "notebooks"):
        shutil.copytree(
            REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        env=_clean_env(),
    )
    (built,) = out.glob("lsops-*.whl")
    return built


def test_the_wheel_carries_the_notebooks_and_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"lsops_lib/notebooks/{notebook.name}" in names
    for module in (REPO / "lsops_lib").rglob("*.py"):
        assert module.relative_to(REPO).as_posix() in names
    assert "lsops_lib/sql/longsang_schema.sql" in names
    assert "lsops_lib/templates/lsops-report/index.html.j2" in names


def test_installed_wheel_runs_a_report_from_another_folder(
    wheel: Path, short_history: ShortHistory, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        env=_clean_env(),
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_lsops_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env()
    env.update(LSOPS_STORE=short_history.store_url, LSOPS_OUTPUTS=str(tmp_path / "outputs"))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    where = subprocess.run(
        [str(python), "-c", "import lsops_lib; print(lsops_lib.__file__)"],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the installed copy, not the checkout

    done = subprocess.run(
        [str(venv / "bin" / "lsops"), "report", "monthly-review", "--month", "2026-10"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run_json,) = (tmp_path / "outputs" / "monthly-review" / "2026-10").glob("*/run.json")
    run = json.loads(run_json.read_text())
    assert run["status"] == "succeeded"
    executed = json.loads((run_json.parent / "report.ipynb").read_text())
    assert executed["cells"], "an executed notebook"
    assert not list(elsewhere.iterdir()), "nothing written to the working folder"
