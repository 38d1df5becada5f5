"""The archive's URL-password redaction, the reused HTML cleaner and the outputs sanitized
while a report runs, against the plain forms they replace (the credential-URL regex applied
as written, `bleach.clean` per call, the export sanitizing every output itself)."""

from __future__ import annotations

import random
import re
from typing import Any

import bleach
import nbformat

from lsops_lib.reports import archive
from lsops_lib.reports.parameters import CREDENTIAL_URL
from tests.fixtures.notebooks import python3_notebook


def _plain_sub(text: str) -> str:
    """CREDENTIAL_URL.sub as written: the reference `_url_password_sub` must match."""

    def repl(match: re.Match[str]) -> str:
        scheme_user, _, _ = match.group(0)[:-1].rpartition(":")
        return f"{scheme_user}:{archive.MASK}@"

    return CREDENTIAL_URL.sub(repl, text)


PIECES = [
    "http://",
    "postgresql+psycopg://",
    "u:p@",
    "://",
    ":",
    "@",
    "/",
    "1a",
    "-b.",
    "9",
    "+",
    "ftp",
    " ",
    "\n",
    "=",
    "x",
    "Z",
    "data:image/png;base64,",
]


def test_url_passwords_are_masked_as_the_plain_regex_masks_them() -> None:
    rng = random.Random(7)
    texts = [
        "postgresql://lsops:hunter2@db:5432/x and 1.http://a:b@h/ and -+x9://u:p:q@ end",
        "9+.-://u:p@ a1b2c3://u:p@@ x://:p@ http://u@h http://u:@h",
        "A" * 5000 + "http://u:p@h/" + "+9A/=" * 1000,
    ]
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24))) for _ in range(5000)]
    for text in texts:
        assert archive._url_password_sub(text) == _plain_sub(text), text
    assert "hunter2" not in archive._url_password_sub(texts[0])


def test_the_reused_cleaner_cleans_as_bleach_clean_does() -> None:
    from bleach.css_sanitizer import CSSSanitizer

    fragments = [
        "<script>alert(1)</script><b onclick='x()'>bold</b>",
        "<table class='df'><tr><td style='color: red; position: fixed'>1</td></tr></table>",
        "<a href='javascript:alert(1)'>x</a><a href='https://e.com'>y</a><iframe src=x>",
        "<details><summary>s</summary><pre>{&quot;a&quot;: 1}</pre></details><!-- c -->",
        "<style>td { color: red }</style><img src=x onerror=alert(1)>",
    ]
    cleaner = archive.html_cleaner()
    for fragment in fragments:
        expected = bleach.clean(
            fragment,
            tags=archive._ALLOWED_TAGS,
            attributes=archive._ALLOWED_ATTRIBUTES,
            protocols=["http", "https", "mailto", "data"],
            css_sanitizer=CSSSanitizer(),
        )
        assert archive.sanitize_html(fragment, cleaner) == expected
        assert archive.sanitize_html(fragment) == expected


def test_outputs_sanitized_while_running_give_the_same_page() -> None:
    import nbformat

    hostile = "<b onmouseover='steal()'>x</b><script>alert(1)</script>"
    cells = [
        nbformat.v4.new_code_cell(
            "x",
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"text/html": f"<p>token s3cret-tok</p>{hostile}"}
                ),
                nbformat.v4.new_output(
                    "display_data", data={"text/html": ["<table><tr>", "<td>1"]}
                ),
            ],
        ),
        nbformat.v4.new_code_cell(
            "y", outputs=[nbformat.v4.new_output("display_data", data={"text/html": "<i>old</i>"})]
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    redactor = archive.Redactor(["s3cret-tok"])
    ahead = archive.Presanitizer(redactor)
    for cell in nb.cells:
        ahead.add_cell(cell)
    # an output updated after its cell completed: not what was sanitized ahead
    nb.cells[1].outputs[0].data["text/html"] = "<i>new</i><iframe src=x></iframe>"
    clean = redactor.notebook(nb)
    try:
        page = archive.export_html(clean, title="t", ready=ahead)
    finally:
        ahead.close()
    assert page == archive.export_html(clean, title="t")
    assert "s3cret-tok" not in page and "<script>" not in page and "<iframe" not in page
    assert "new" in page and "onmouseover" not in page
    redacted = f"<p>token {archive.MASK}</p>{hostile}"  # what was queued, redacted
    assert ahead.get(redacted) == archive.sanitize_html(redacted)


def _seen_on_disk(tmp_path, first_cell: str) -> tuple[list, list]:
    """Run [parameters, `first_cell`, a cell reading the saved notebook]: (what the last
    cell saw on disk: per cell (status, outputs); the statuses saved at the end)."""
    import json

    import nbformat

    from lsops_lib.reports.execute import execute

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    nb = python3_notebook(
        "path = None",
        first_cell,
        "import json\n"
        "saved = json.load(open(path))\n"
        "print(json.dumps([(c['metadata']['papermill']['status'], c.get('outputs'))"
        " for c in saved['cells']]))",
    )
    source = tmp_path / "n.ipynb"
    nbformat.write(nb, source)
    run = execute(
        source, scratch, {"path": str(scratch / "executed.ipynb")}, env={}, progress=False
    )
    assert run.error is None
    seen = json.loads(run.nb.cells[-1].outputs[0]["text"])
    on_disk = json.loads((scratch / "executed.ipynb").read_text())
    return seen, [c["metadata"]["papermill"]["status"] for c in on_disk["cells"]]


def test_a_quick_run_saves_its_notebook_at_the_start_and_the_end_only(tmp_path) -> None:
    """No save of the whole notebook at each cell (papermill's): the file a cell reads is
    the one saved when the run started; the run's end saves it whole."""
    seen, final = _seen_on_disk(tmp_path, "print('first cell done')")
    assert [status for status, _ in seen] == ["pending"] * 4
    assert all(outputs in ([], None) for _, outputs in seen)
    assert final == ["completed"] * 4


def test_a_long_run_shows_where_it_is_on_disk(tmp_path, monkeypatch) -> None:
    """Once AUTOSAVE_S passed since the last save, the notebook is saved again (papermill's
    autosave as an output arrives, or a cell's start or end): the long cell's output is on
    disk before the run ends, the cells before it completed."""
    import importlib

    monkeypatch.setattr(importlib.import_module("lsops_lib.reports.execute"), "AUTOSAVE_S", 0.2)
    seen, final = _seen_on_disk(tmp_path, "import time\ntime.sleep(0.5)\nprint('first cell done')")
    statuses = [status for status, _ in seen]
    # injected parameters, parameters: completed; the long cell: running or completed
    assert statuses[:2] == ["completed", "completed"] and statuses[2] != "pending", statuses
    assert "".join(seen[2][1][0]["text"]) == "first cell done\n"
    assert final == ["completed"] * 4


def _two_notebooks() -> tuple[Any, Any]:
    """Two notebooks that differ where an exporter could keep state: language, markdown,
    a failing cell shown with its code, tables and a stream."""
    new = nbformat.v4
    first = new.new_notebook(
        cells=[
            new.new_markdown_cell("# First\n\n*one* `two`"),
            new.new_code_cell(
                "1 / 0",
                outputs=[
                    new.new_output("error", ename="ZeroDivisionError", evalue="no", traceback=[])
                ],
            ),
        ],
        metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},
    )
    second = new.new_notebook(
        cells=[
            new.new_markdown_cell("## Second\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
            new.new_code_cell(
                "SELECT 1",
                outputs=[
                    new.new_output("stream", name="stdout", text="done\n"),
                    new.new_output(
                        "display_data", data={"text/html": "<table><tr><td>3</td></tr></table>"}
                    ),
                ],
            ),
        ],
        metadata={"language_info": {"name": "sql", "pygments_lexer": "sql"}},
    )
    return first, second


_FRESH_EXPORT = """
import sys, nbformat
from lsops_lib.reports import archive
nb = nbformat.reads(sys.stdin.read(), as_version=4)
sys.stdout.write(archive.export_html(nb, title="t", error=sys.argv[1] or None))
"""


def _fresh_page(nb: Any, error: str | None) -> str:
    """The page a process that never exported before makes of `nb`."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_EXPORT, error or ""],
        input=nbformat.writes(nb),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def test_the_process_exporter_gives_each_notebook_the_page_a_fresh_one_gives() -> None:
    """The HTML exporter is built once a process (and warmed while a kernel runs): what
    one export leaves in it never shows in the next page, in either order."""
    first, second = _two_notebooks()
    error = "ZeroDivisionError: no (in cell 1)"
    fresh_first, fresh_second = _fresh_page(first, error), _fresh_page(second, None)
    assert "First" in fresh_first and "Second" in fresh_second and "3</td>" in fresh_second
    warming = archive.warm_export()
    if warming is not None:
        warming.join(timeout=120)
    assert archive.warm_export() is None  # built: nothing left to warm
    for _ in range(2):
        assert archive.export_html(first, title="t", error=error) == fresh_first
        assert archive.export_html(second, title="t") == fresh_second


def test_a_chart_in_the_html_has_its_description_as_alt_text() -> None:
    """A PNG output's text/plain (a chart's `plots.describe`) is its <img> alt text,
    escaped; a bare object repr says nothing: nbconvert's placeholder stays."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bs4 import BeautifulSoup

    def png(color: str) -> str:
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_facecolor(color)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return base64.b64encode(buffer.getvalue()).decode() + "\n"

    said = 'Chart: /api/"x" <b>&</b> errors'
    outputs = [
        nbformat.v4.new_output("display_data", {"image/png": png("red"), "text/plain": said}),
        nbformat.v4.new_output(
            "display_data", {"image/png": png("blue"), "text/plain": "<Figure size 100x100>"}
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=outputs)])
    page = archive.export_html(nb, title="alt")
    alts = [img.get("alt") for img in BeautifulSoup(page, "html.parser").find_all("img")]
    assert alts == [said, "No description has been provided for this image"]
    assert "<b>&" not in page
