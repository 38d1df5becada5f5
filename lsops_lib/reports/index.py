"""Listing archived runs, and `outputs/index.html`: every run, newest first, by kind.

The index is a static page (no JavaScript), every text escaped, links relative to it. It
is rewritten atomically, under a lock, after every run so that concurrent runs (threads or
processes) never drop each other from it.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from .. import __version__, fmt
from ..times import utcnow
from .archive import REPORT_HTML, REPORT_IPYNB, RUN_JSON, Run, atomic_write, iso
from .parameters import KINDS

INDEX_HTML = "index.html"
_LOCK = ".index.lock"


def list_runs(outputs_dir: str | os.PathLike[str], kind: str | None = None) -> list[Run]:
    """Every archived run under `outputs_dir` (those with a readable run.json), newest first."""
    return scan_runs(outputs_dir, kind)[0]


def scan_runs(
    outputs_dir: str | os.PathLike[str], kind: str | None = None
) -> tuple[list[Run], list[dict[str, str]]]:
    """The archived runs under `outputs_dir`, newest first, and the run folders whose
    run.json cannot be read (QA 17: they were left out silently), by folder:
    `{"path": folder, "error": why}`."""
    root = Path(outputs_dir)
    runs: list[Run] = []
    unreadable: list[dict[str, str]] = []
    if not root.is_dir():
        return runs, unreadable
    pattern = f"{kind}/*/*/{RUN_JSON}" if kind else f"*/*/*/{RUN_JSON}"
    for path in root.glob(pattern):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            runs.append(Run.from_dict(data, path.parent))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            unreadable.append({"path": str(path.parent), "error": _why(exc)})
    runs.sort(key=lambda r: (r.started, r.run_id), reverse=True)
    unreadable.sort(key=lambda u: u["path"])
    return runs, unreadable


def _why(exc: Exception) -> str:
    """Why a run.json is unreadable, in a few words."""
    if isinstance(exc, OSError):
        return f"{RUN_JSON}: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"{RUN_JSON} is not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"{RUN_JSON} is not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
    if isinstance(exc, KeyError):
        return f"{RUN_JSON} has no {exc.args[0]!r}"
    return f"{RUN_JSON} is not a run's record: {exc}"


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """The outputs folder's lock (index rewrites, run reservations, sweeps). Not
    re-entrant: a second `locked` in the same process while one is held waits forever."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / _LOCK, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_index(outputs_dir: str | os.PathLike[str]) -> Path:
    """(Re)write `outputs/index.html` atomically; return its path."""
    root = Path(outputs_dir)
    root.mkdir(parents=True, exist_ok=True)
    with locked(root):
        runs, unreadable = scan_runs(root)
        page = render_index(runs, root, unreadable)
        target = root / INDEX_HTML
        atomic_write(target, page)
    return target


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _link(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return quote(rel, safe="/")


def _shown(root: Path, path: Path) -> str:
    """`path` relative to `root` when it is under it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _target(run: Run) -> str:
    """The API target a run reviewed (its `target` parameter); a dash for none."""
    target = run.parameters.get("target")
    return fmt.value(str(target) if target is not None else None, "target")


def _duration(seconds: float | None) -> str:
    """As `lsops report` and `lsops reports` write it (one rule: `fmt.value`); a dash for a
    run whose process died (unknown)."""
    return fmt.value(seconds, "duration_s")


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 72em; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; }
td:first-child, td:nth-child(2), td:nth-child(5) { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-succeeded { color: #1a7f37; font-weight: 600; }
.status-failed { color: #c62828; font-weight: 600; }
.status-interrupted { color: #ef6c00; font-weight: 600; }
.warning { color: #ef6c00; font-size: .9em; }
.error { color: #c62828; font-size: .9em; }
.meta { color: #666; font-size: .9em; }
code { font-size: .95em; }
"""


def render_index(runs: list[Run], root: Path, unreadable: Sequence[Mapping[str, str]] = ()) -> str:
    """The index page for `runs` (already newest first), links relative to `root`, and
    the run folders whose run.json is `unreadable` (`scan_runs`)."""
    order = [k for k in KINDS] + sorted({r.kind for r in runs} - set(KINDS))
    now = utcnow()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>lsops reports</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>lsops reports</h1>",
        f'<p class="meta">{fmt.counted(len(runs), "run")}, newest first. '
        f'Generated <time datetime="{_e(iso(now))}">{_e(fmt.instant(now, seconds=True))}</time> '
        f"by lsops {_e(__version__)}. Times are UTC.</p>",
    ]
    if unreadable:
        items = "".join(
            f"<li><code>{_e(_shown(root, Path(u['path'])))}</code>: {_e(u['error'])}</li>"
            for u in unreadable
        )
        parts.append(
            f'<div class="error"><p>{fmt.counted(len(unreadable), "run")} unreadable '
            f"(its run.json is damaged):</p><ul>{items}</ul></div>"
        )
    if not runs:
        parts.append("<p>No reports archived yet. Run <code>lsops report KIND</code>.</p>")
    present = [k for k in order if any(r.kind == k for r in runs)]
    if len(present) > 1:
        nav = " · ".join(
            f'<a href="#{_e(quote(k))}">{_e(KINDS[k].title if k in KINDS else k)}</a> '
            f"({sum(r.kind == k for r in runs)})"
            for k in present
        )
        parts.append(f"<nav><p>{nav}</p></nav>")
    for kind in order:
        group = [r for r in runs if r.kind == kind]
        if not group:
            continue
        title = KINDS[kind].title if kind in KINDS else kind
        parts.append(
            f'<h2 id="{_e(quote(kind))}">{_e(title)} <span class="meta">({_e(kind)})</span></h2>'
        )
        parts.append(
            "<table><thead><tr><th>started (UTC)</th><th>key</th><th>target</th><th>status</th>"
            '<th class="num">duration</th><th>files</th></tr></thead><tbody>'
        )
        for run in group:
            status = run.status if run.status in ("succeeded", "failed", "interrupted") else "other"
            links = []
            for name in (REPORT_HTML, REPORT_IPYNB, RUN_JSON):
                if (run.path / name).is_file():
                    links.append(f'<a href="{_e(_link(root, run.path / name))}">{_e(name)}</a>')
            error = f'<div class="error">{_e(run.error)}</div>' if run.error else ""
            if run.warnings:  # partial: a run that succeeded with warnings, never a failed one
                count = fmt.counted(len(run.warnings), "warning")
                if run.status == "succeeded":
                    count = f"partial: {count}"
                items = "".join(f"<li>{_e(w)}</li>" for w in run.warnings)
                error += (
                    f'<details class="warning"><summary>{count}</summary><ul>{items}</ul></details>'
                )

            parts.append(
                "<tr>"
                f"<td>{_e(fmt.instant(run.started, seconds=True))}</td>"
                f"<td><code>{_e(run.key)}</code></td>"
                f"<td>{_e(_target(run))}</td>"
                f'<td><span class="status-{status}">{_e(run.status)}</span>{error}</td>'
                f'<td class="num">{_e(_duration(run.duration_s))}</td>'
                f"<td>{' · '.join(links)}</td>"
                "</tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
