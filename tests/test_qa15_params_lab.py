"""`lsops demo --lab` from an installed wheel (QA 15): JupyterLab opens on copies of the
notebooks in the demo's folder, never on the package's own files in site-packages; the
demo's last line names a command that works without a checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from lsops_lib.demo.lab import lab_hint, lab_notebooks
from tests.test_packaging import _clean_env, wheel  # noqa: F401 - the wheel fixture

REPO = Path(__file__).resolve().parents[1]


def _package(tmp_path: Path) -> tuple[Path, Path]:
    """An installed package's layout: `<site>/lsops_lib/notebooks/*.ipynb`."""
    package = tmp_path / "site" / "lsops_lib"
    notebooks = package / "notebooks"
    notebooks.mkdir(parents=True)
    for source in (REPO / "notebooks").glob("*.ipynb"):
        (notebooks / source.name).write_bytes(source.read_bytes())
    return package, notebooks


def test_the_package_notebooks_are_copied_into_the_demo_folder(tmp_path: Path) -> None:
    package, notebooks = _package(tmp_path)
    folder = tmp_path / "demo"
    names = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    where, copied = lab_notebooks(folder, notebooks, package)
    assert where == folder / "notebooks" and copied == names
    for name in names:
        assert (where / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
    # an analyst's edit is kept on the next --lab; a notebook removed comes back
    (where / names[0]).write_text("edited")
    (where / names[1]).unlink()
    where, copied = lab_notebooks(folder, notebooks, package)
    assert copied == [names[1]]
    assert (where / names[0]).read_text() == "edited"
    assert (notebooks / names[0]).read_bytes() == (REPO / "notebooks" / names[0]).read_bytes()


def test_a_checkout_or_lsops_notebooks_is_opened_where_it_is(tmp_path: Path) -> None:
    package, _ = _package(tmp_path)
    folder = tmp_path / "demo"
    assert lab_notebooks(folder, REPO / "notebooks", package) == (REPO / "notebooks", None)
    assert not folder.exists()


def test_the_last_line_says_make_lab_only_for_the_checkouts_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert lab_hint(REPO / ".demo") == (
        "Explore the same data in JupyterLab: make lab  (lsops demo --lab)"
    )
    monkeypatch.chdir(tmp_path)
    assert lab_hint(tmp_path / ".demo") == "Explore the same data in JupyterLab: lsops demo --lab"
    elsewhere = tmp_path / "my demo"
    assert lab_hint(elsewhere) == (
        "Explore the same data in JupyterLab: lsops demo --lab --dir 'my demo'"
    )


@pytest.mark.slow
def test_installed_wheel_opens_lab_on_copies_in_the_demo_folder(
    wheel: Path,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + [str(wheel)],
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
    probe = (
        "import json, lsops_lib\n"
        "from pathlib import Path\n"
        "from lsops_lib.demo.lab import lab_hint, lab_notebooks\n"
        "where, copied = lab_notebooks(Path('.demo').resolve())\n"
        "print(json.dumps({'package': lsops_lib.__file__, 'where': str(where),\n"
        "                  'copied': copied, 'hint': lab_hint(Path('.demo'))}))\n"
    )
    done = subprocess.run(
        [str(python), "-c", probe],
        cwd=elsewhere,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).is_relative_to(venv)  # the installed copy
    assert found["where"] == str(elsewhere / ".demo" / "notebooks")
    assert found["copied"] == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    for name in found["copied"]:
        copy = elsewhere / ".demo" / "notebooks" / name
        assert copy.read_bytes() == (REPO / "notebooks" / name).read_bytes()
        assert os.access(copy, os.W_OK)
    assert found["hint"] == "Explore the same data in JupyterLab: lsops demo --lab"
