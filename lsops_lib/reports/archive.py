"""The archive: `outputs/<kind>/<key>/<run-id>/{report.ipynb, report.html, run.json}`.

- `<run-id>` is `YYYYmmddTHHMMSSZ-<6 hex>` (sortable UTC time, random suffix), reserved
  with an atomic `mkdir`, so two runs starting at the same moment never share a directory.
- Each file is written to a hidden temporary name in the run directory and `os.replace`d,
  so it appears whole or not at all; `run.json` is written last: a run directory without
  it is a run still going (or one that died) and is not listed.
- Before anything is written, every secret of the settings (API tokens, database
  passwords) and every password inside a URL (`user:password@`, `?password=`) or a libpq
  `password=` setting is replaced by `***` in the notebook, the HTML and run.json.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
import os
import re
import secrets as _random
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from .. import fmt
from ..config import Settings
from ..exceptions import ReportError
from .parameters import CREDENTIAL_SETTING, CREDENTIAL_TOKEN, CREDENTIAL_URL

MASK = "***"
RUN_JSON = "run.json"
REPORT_IPYNB = "report.ipynb"
REPORT_HTML = "report.html"
HIDE_INPUT_TAG = "lsops-hide-input"
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
# binary outputs (base64) are never searched: a short secret could match by chance and
# replacing it would break the image
_BINARY_MIME = re.compile(r"^(image/(png|jpeg|gif|webp)|application/pdf)$")
_DATA_URI = r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+"


@dataclass
class Run:
    """One archived run (what run.json holds, plus where it is)."""

    kind: str
    key: str
    run_id: str
    path: Path
    status: str  # "succeeded" | "failed" | "interrupted" (its process died: cleanup.py)
    started: datetime
    duration_s: float | None  # None: unknown (a run whose process died, cleanup.py)
    parameters: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    notebook: str | None = None
    # what a succeeded run could not show (outcome.py): a partial report says so
    warnings: list[str] = field(default_factory=list)
    # the notebook's preloads (lsops_lib.preload): name -> taken | computed | failed | pending
    preload: dict[str, str] = field(default_factory=dict)
    # kernels that never answered and were replaced by another before any cell ran
    # (execute.START_ATTEMPTS): the report is whole; one line each, why
    replaced_kernels: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def html_path(self) -> Path:
        return self.path / REPORT_HTML

    @property
    def ipynb_path(self) -> Path:
        return self.path / REPORT_IPYNB

    @property
    def json_path(self) -> Path:
        return self.path / RUN_JSON

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "run_id": self.run_id,
            "status": self.status,
            "started": iso(self.started),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "parameters": self.parameters,
            "versions": self.versions,
            "notebook": self.notebook,
            "warnings": list(self.warnings),
        }
        if self.preload:
            data["preload"] = dict(self.preload)
        if self.replaced_kernels:
            data["replaced_kernels"] = list(self.replaced_kernels)
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> Run:
        return cls(
            kind=str(data["kind"]),
            key=str(data["key"]),
            run_id=str(data.get("run_id") or path.name),
            path=path,
            status=str(data.get("status", "unknown")),
            started=datetime.fromisoformat(str(data["started"])).astimezone(UTC),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            parameters=dict(data.get("parameters") or {}),
            versions=dict(data.get("versions") or {}),
            error=data.get("error"),
            notebook=data.get("notebook"),
            warnings=[str(w) for w in data.get("warnings") or [] if w],
            preload={str(k): str(v) for k, v in _mapping(data.get("preload")).items()},
            replaced_kernels=[str(r) for r in data.get("replaced_kernels") or [] if r],
        )


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def iso(value: datetime) -> str:
    """`2026-11-29T06:26:42.123Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- run directories and atomic files ----------------------------------------------------------


def reserve_run_dir(outputs_dir: Path, kind: str, key: str, started: datetime) -> tuple[str, Path]:
    """Create `outputs/<kind>/<key>/<run-id>/` atomically -> (run_id, path)."""
    parent = Path(outputs_dir) / kind / key
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {parent}: {exc.strerror}") from None
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(100):
        run_id = f"{stamp}-{_random.token_hex(3)}"
        try:
            (parent / run_id).mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise ReportError(
                f"cannot create a run directory in {parent}: {exc.strerror}"
            ) from None
        return run_id, parent / run_id
    raise ReportError(f"cannot reserve a run directory in {parent}")  # pragma: no cover


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a hidden temporary file next to `path`, then `os.replace` it into place."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- redaction ---------------------------------------------------------------------------------


# CREDENTIAL_URL (a scheme, "://", user ":" password "@"), tried only where a run of scheme
# characters begins, its leading non-letters (digits, "+", ".", "-": no scheme starts with
# them) kept in group 1. The same matches as CREDENTIAL_URL.sub: its leftmost match starts
# at the first letter of such a run (a start inside the run after that letter would be
# later; the run must end at "://"), and after a match (ending "@") the next run begins
# afresh. Without the anchor every letter of a long run (base64 images: ~0.5 s for a
# report's HTML) restarted a scan to the run's end.
_SCHEME_RUN = re.compile(
    r"(?<![A-Za-z0-9+.-])([0-9+.-]*)(" + CREDENTIAL_URL.pattern.replace("*://", "*+://", 1) + ")"
)


def _url_password_sub(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        lead, prefix = match.group(1), match.group(2)
        scheme_user, _, _ = prefix[:-1].rpartition(":")
        return f"{lead}{scheme_user}:{MASK}@"

    return _SCHEME_RUN.sub(repl, text)


class Redactor:
    """Replaces secrets (and any password inside a URL, any token of a well-known format)
    by `***` in text, JSON and notebooks."""

    def __init__(self, secrets: Iterable[str | None]):
        values: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            values.add(secret)
            values.add(html.escape(secret))  # as it appears in HTML
            values.add(json.dumps(secret)[1:-1])  # as it appears inside a JSON string
        self.secrets = sorted(values, key=len, reverse=True)
        # the secrets by value, then tokens of well-known formats; a data URI (an image)
        # is matched first and kept whole, never masked inside
        self._pattern = re.compile(
            "|".join(
                [f"({_DATA_URI})", *(re.escape(s) for s in self.secrets), CREDENTIAL_TOKEN.pattern]
            )
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        from ..config import url_secrets

        extra: list[str | None] = []
        for url in (
            settings.store_url,
            settings.target.url,
            *[t.url for t in settings.targets.values()],
        ):
            extra.extend(url_secrets(url))  # passwords, ?password=..., ?token=...
        return cls([*settings.secrets(), *extra])

    def text(self, text: str) -> str:
        text = self._pattern.sub(lambda m: m.group(1) or MASK, text)
        # `?password=...` in a URL, libpq's `host=h password=...`: the value masked
        return _url_password_sub(CREDENTIAL_SETTING.sub(rf"\1{MASK}", text))

    def obj(self, value: Any) -> Any:
        """Every string in a JSON-like structure (dict keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.obj(k): self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value

    def notebook(self, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """A redacted copy; base64 image payloads are left alone."""
        data = self._walk(nb, mime=None)
        return nbformat.from_dict(data)

    def _walk(self, value: Any, mime: str | None) -> Any:
        if isinstance(value, str):
            if mime is not None and _BINARY_MIME.match(mime):
                return value
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self._walk(v, mime=k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, mime=mime) for v in value]
        return value


# --- HTML export -------------------------------------------------------------------------------


def failed_cell_index(nb: nbformat.NotebookNode) -> int | None:
    """The cell papermill marked as failing (or the first with an error output)."""
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            return index
    for index, cell in enumerate(nb.cells):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index
    return None


def failure_banner(error: str, *, interrupted: bool = False) -> nbformat.NotebookNode:
    """A markdown cell saying the run failed, or (`interrupted`: Ctrl-C, SIGTERM) that it
    did not finish (the error escaped: it may quote anything)."""
    cell = nbformat.v4.new_markdown_cell(_failure_text(error, interrupted=interrupted))
    cell.metadata["tags"] = ["lsops-failure"]
    return cell


def warning_banner(warnings: list[str]) -> nbformat.NotebookNode:
    """A markdown cell saying the report is partial, listing what is missing (escaped)."""
    items = "\n".join(f"- {md_text(w)}" for w in warnings)
    cell = nbformat.v4.new_markdown_cell(
        f"**This report is partial ({fmt.counted(len(warnings), 'warning')}):** "
        f"the run succeeded, but not everything could be shown.\n\n{items}"
    )
    cell.metadata["tags"] = ["lsops-warnings"]
    return cell


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_text(text: str) -> str:
    """Untrusted text as literal markdown on one line: HTML escaped, and every markdown
    punctuation backslash-escaped (no link, image or emphasis can come from data)."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def _failure_text(error: str | None, *, interrupted: bool = False) -> str:
    text = md_text(error) if error else "see the failing cell below"
    if interrupted:  # stopped, not failed: as run.json and the index say
        return f"**This report run did not finish:** {text}"
    return f"**This report run failed:** {text}"


def _plain_error_markers(nb: nbformat.NotebookNode, error: str | None) -> None:
    """papermill's error markers are raw HTML (styled spans) that the sanitizer mangles:
    say the same in plain markdown."""
    for cell in nb.cells:
        if PAPERMILL_ERROR_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        if "An Exception was encountered" in cell.source:
            cell.source = (
                _failure_text(error) + " (the cell that failed is shown below, with its error)"
            )
        else:
            cell.source = "**Execution stopped at this cell with an error:**"


_ALLOWED_TAGS = frozenset(
    "a abbr acronym b blockquote br caption code col colgroup dd del details div dl dt em "
    "h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol p pre s small span strong style sub summary sup "
    "table tbody td tfoot th thead tr u ul".split()
)
_ALLOWED_ATTRIBUTES = {
    "*": ["class", "id", "title", "align", "colspan", "rowspan", "scope", "style"],
    "style": ["scoped", "type"],
    "a": ["href", "title"],
    "img": ["src", "alt", "width", "height"],
    "table": ["class", "id", "border"],
}
_DROPPED_MIME = (
    "application/javascript",
    "text/javascript",
    "application/vnd.jupyter.widget-view+json",
)


def sanitize_html(fragment: str, cleaner: Any = None) -> str:
    """An output's HTML with everything that could run removed: `<script>`, `<iframe>`,
    event handlers, `javascript:` links are escaped or dropped; tables, headings, inline
    styles (pandas, Styler) survive. Disallowed tags are escaped: shown, not executed.
    `cleaner`: one from `html_cleaner()`, reused across a notebook's outputs."""
    return (cleaner or html_cleaner()).clean(fragment)


def html_cleaner() -> Any:
    """The bleach `Cleaner` of `sanitize_html` (what `bleach.clean` builds for every call;
    not thread-safe: one per export)."""
    import bleach

    kwargs: dict[str, Any] = {}
    try:
        from bleach.css_sanitizer import CSSSanitizer

        kwargs["css_sanitizer"] = CSSSanitizer()
        attributes: dict[str, list[str]] = _ALLOWED_ATTRIBUTES
    except ImportError:  # tinycss2 missing: no inline styles at all
        attributes = {k: [a for a in v if a != "style"] for k, v in _ALLOWED_ATTRIBUTES.items()}
    return bleach.Cleaner(
        tags=_ALLOWED_TAGS,
        attributes=attributes,
        protocols=["http", "https", "mailto", "data"],
        **kwargs,
    )


def sanitize_outputs(nb: nbformat.NotebookNode, ready: Presanitizer | None = None) -> None:
    """In place, for the HTML export: HTML and markdown outputs (they may quote data) are
    sanitized, markdown rendered to HTML first; script-like outputs are dropped.
    `ready`: the fragments sanitized while the notebook ran (the same text, the same
    function); any other fragment is sanitized here."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    cleaner = html_cleaner()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            for mime in _DROPPED_MIME:
                data.pop(mime, None)
            if "text/markdown" in data:
                markdown = data.pop("text/markdown")
                markdown = "".join(markdown) if isinstance(markdown, list) else str(markdown)
                data.setdefault("text/html", markdown2html_mistune(markdown))
            if "text/html" in data:
                fragment = data["text/html"]
                fragment = "".join(fragment) if isinstance(fragment, list) else str(fragment)
                done = ready.get(fragment) if ready is not None else None
                data["text/html"] = done if done is not None else sanitize_html(fragment, cleaner)
            if "image/svg+xml" in data and "image/png" in data:
                data.pop("image/svg+xml")  # inline SVG could script; the PNG says the same


class Presanitizer:
    """Sanitizes a running report's HTML outputs as its cells complete, on a thread of its
    own, while the kernel runs the next cells (this process only waits for it then):
    `sanitize_outputs(nb, ready=...)` finds them done instead of sanitizing ~0.3 s of a
    monthly review's tables after the run. Each fragment is redacted as the archive
    redacts the notebook, then sanitized by `sanitize_html`; `get` answers only for that
    exact text (an output changed since is sanitized at export, as before)."""

    def __init__(self, redactor: Redactor):
        from concurrent.futures import ThreadPoolExecutor

        self._redactor = redactor
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lsops-sanitize")
        self._done: dict[str, str | None] = {}  # redacted fragment -> sanitized (None: failed)
        self._cleaner: Any = None  # the worker's own (a Cleaner is not thread-safe)

    def add_cell(self, cell: Any) -> None:
        """Queue the HTML outputs of a cell that completed (called by the executor)."""
        for output in cell.get("outputs", []):
            data = output.get("data")
            fragment = data.get("text/html") if isinstance(data, dict) else None
            if isinstance(fragment, list):
                fragment = "".join(fragment)
            if isinstance(fragment, str):
                self._pool.submit(self._sanitize, fragment)

    def _sanitize(self, fragment: str) -> None:
        redacted = self._redactor.text(fragment)
        if redacted in self._done:
            return
        if self._cleaner is None:
            self._cleaner = html_cleaner()
        try:
            self._done[redacted] = sanitize_html(redacted, self._cleaner)
        except Exception:  # noqa: BLE001 - the export sanitizes it again and says
            self._done[redacted] = None

    def get(self, fragment: str) -> str | None:
        """`sanitize_html(fragment)` if it was computed (waiting for the queue), else None."""
        self._pool.shutdown(wait=True)
        return self._done.get(fragment)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def export_html(
    nb: nbformat.NotebookNode,
    *,
    title: str,
    error: str | None = None,
    ready: Presanitizer | None = None,
) -> str:
    """nbconvert HTML: code hidden (except the failing cell's), no prompts, images embedded,
    the notebook's HTML and markdown outputs sanitized (no script from data).

    Markdown cells (written by the notebook's author, not data) are rendered as they are."""
    nb = copy.deepcopy(nb)
    _plain_error_markers(nb, error)
    failed = failed_cell_index(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and index != failed:
            tags = list(cell.metadata.get("tags", []))
            cell.metadata["tags"] = [*tags, HIDE_INPUT_TAG]
    nb.metadata["title"] = title
    sanitize_outputs(nb, ready)
    alts = image_alts(nb)
    with _EXPORTER_LOCK:  # one export at a time through the process's exporter
        exporter = _html_exporter()
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return with_alts(body, alts)


_OBJECT_REPR = re.compile(r"<[^<>]*>")  # "<Figure size 1000x400 with 1 Axes>": says nothing
_IMG_TAG = re.compile(r"<img\s[^>]*>")
_PNG_SRC = re.compile(r'(?<=\s)src="data:image/png;base64,([^"]*)"')
_ALT_ATTR = re.compile(r'(?<=\s)alt="[^"]*"')


def image_alts(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The alt text of each PNG output, by its base64 payload (whitespace removed): the
    output's text/plain, a chart's `plots.describe` ("Chart: ..."), unless that is a
    bare object repr."""
    alts: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not isinstance(data, dict) or "image/png" not in data:
                continue
            text = data.get("text/plain") or ""
            text = " ".join(("".join(text) if isinstance(text, list) else str(text)).split())
            if text and not _OBJECT_REPR.fullmatch(text):
                alts["".join(str(data["image/png"]).split())] = text
    return alts


def with_alts(page: str, alts: dict[str, str]) -> str:
    """`page` with each embedded PNG's alt text from `alts` (escaped) instead of
    nbconvert's "No description has been provided for this image"."""
    if not alts:
        return page

    def one(match: re.Match[str]) -> str:
        tag = match.group(0)
        src = _PNG_SRC.search(tag)
        alt = alts.get("".join(src.group(1).split())) if src else None
        if alt is None:
            return tag
        attr = f'alt="{html.escape(alt, quote=True)}"'
        if _ALT_ATTR.search(tag):
            return _ALT_ATTR.sub(lambda _: attr, tag, count=1)
        return f"<img {attr}{tag[4:]}"

    return _IMG_TAG.sub(one, page)


_EXPORTER_LOCK = threading.Lock()
_EXPORTER: list[Any] = []  # the process's HTMLExporter, once built


def _html_exporter() -> Any:
    """The process's HTMLExporter (call under `_EXPORTER_LOCK`): built once, as nbconvert's
    own command line converts many notebooks with one, because its first export also
    imports nbconvert's filters, BeautifulSoup and mistune and compiles the template
    (~0.4 s, against ~0.3 s for each export after it)."""
    if not _EXPORTER:
        from nbconvert import HTMLExporter
        from traitlets.config import Config

        config = Config()
        config.TagRemovePreprocessor.enabled = True
        config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
        config.HTMLExporter.exclude_input_prompt = True
        config.HTMLExporter.exclude_output_prompt = True
        config.HTMLExporter.embed_images = True
        config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES)]
        config.HTMLExporter.template_name = "lsops-report"  # lab look, no CDN scripts
        _EXPORTER.append(HTMLExporter(config=config))
    return _EXPORTER[0]


def warm_export() -> threading.Thread | None:
    """Start exporting a small notebook on a thread of its own (None when this process
    has exported before): `run_report` calls it while the kernel runs the notebook, when
    this process only waits, so that its export after the run finds nbconvert imported and
    the template compiled. Never raises; a failure is the real export's to report."""
    if _EXPORTER:
        return None

    def warm() -> None:
        from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

        table = new_output("display_data", data={"text/html": "<table><tr><td>1</td></tr></table>"})
        nb = new_notebook(
            cells=[new_markdown_cell("# warm-up"), new_code_cell("1", outputs=[table])]
        )
        with contextlib.suppress(Exception):
            export_html(nb, title="warm-up")

    thread = threading.Thread(target=warm, name="lsops-warm-export", daemon=True)
    thread.start()
    return thread
