"""`npm audit --json`: the runbook's "Update Dependencies" check, read from its output.

    run_npm_audit(app_dir)         npm audit run in the API's checkout (read-only: no fix)
    read_audit_file(path)          a saved `npm audit --json` output
    parse_audit(text, source=...)  the output itself

Each returns one dict (`AUDIT_KEYS`): `status` `ok` (no vulnerability), `attention`
(vulnerabilities: by severity, direct or transitive, whether a fix is available) or
`unknown` (no audit source configured, npm missing, npm's error object, a report lsops
cannot read), with the `reason` in words. The formats are those of npm 7 and later
(`auditReportVersion` 2); npm's error objects come in two shapes, both `unknown`:

- the registry refused the advisory request: `{"message": "405 Method Not Allowed - POST
  .../advisories/bulk", "statusCode": 405, "method": ..., "uri": ..., ...}`;
- npm itself failed: `{"error": {"code": "ENOLOCK", "summary": ..., "detail": ...}}`
  (npm 7 prints it on stderr among its log lines, npm 8 and later on stdout).

Real outputs of npm 7 and 11, and where they come from: tests/data/npm-audit/.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import fmt

__all__ = [
    "AUDIT_KEYS",
    "SEVERITIES",
    "not_configured",
    "parse_audit",
    "read_audit_file",
    "run_npm_audit",
]

SEVERITIES = ("critical", "high", "moderate", "low", "info")
AUDIT_KEYS = (
    "status",
    "configured",
    "source",
    "reason",
    "tool",
    "taken_at",
    "report_version",
    "counts",
    "direct",
    "transitive",
    "fixable",
    "dependencies",
    "vulnerabilities",
)
_USERINFO = re.compile(r"(//)[^/@\s]+@")
_LIMIT = 300


def _clean(text: Any) -> str:
    """npm's text on one line, credentials in URLs hidden, cut."""
    line = " ".join(str(text).split())
    line = _USERINFO.sub(r"\1***@", line)
    return line if len(line) <= _LIMIT else line[: _LIMIT - 1] + "…"


def _result(status: str, *, configured: bool = True, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(AUDIT_KEYS)
    # figures stay None unless given (an `unknown` audit: never 0 nor an empty list)
    out.update(status=status, configured=configured)
    out.update(fields)
    return out


def not_configured() -> dict[str, Any]:
    return _result(
        "unknown",
        configured=False,
        reason=(
            "not configured: give --app-dir (the API's checkout, npm audit runs there) or "
            "--audit-file (a saved `npm audit --json`), or set [security] app_dir / "
            "audit_file in lsops.toml"
        ),
    )


def _document(text: str) -> Any:
    """The JSON document of npm's output (npm 7 prints its error object among log lines)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^\{", text, re.M):
        try:
            return decoder.raw_decode(text, match.start())[0]
        except ValueError:
            continue
    return None


def _fix(value: Any) -> tuple[bool, str | None, bool | None]:
    """npm's `fixAvailable` (true | false | {name, version, isSemVerMajor}): available,
    the package version that fixes it, whether that is a semver-major change."""
    if isinstance(value, dict):
        name, version = value.get("name"), value.get("version")
        fix = f"{name}@{version}" if name and version else None
        major = value.get("isSemVerMajor")
        return True, fix, bool(major) if major is not None else None
    return bool(value), None, None


def _vulnerability(name: str, v: dict[str, Any]) -> dict[str, Any]:
    via = v.get("via") or []
    titles, advisories = [], []
    for item in via:
        if isinstance(item, dict):
            titles.append(str(item.get("title") or item.get("name") or "advisory"))
            if item.get("url"):
                advisories.append(str(item["url"]))
        else:
            titles.append(f"via {item}")  # another vulnerable package
    titles = list(dict.fromkeys(titles))  # two advisories may share a title
    available, fix, major = _fix(v.get("fixAvailable"))
    return {
        "name": str(v.get("name") or name),
        "severity": str(v.get("severity") or "unknown"),
        "direct": bool(v.get("isDirect")),
        "via": titles,
        "advisories": advisories,
        "range": v.get("range"),
        "fix_available": available,
        "fix": fix,
        "fix_semver_major": major,
    }


def _count(value: Any, default: int | None) -> int | None:
    """A count of npm's metadata (a whole number, 0 or more), else `default`."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _error_reason(doc: dict[str, Any]) -> str | None:
    """npm's error object in words, or None when `doc` is not one."""
    if "statusCode" in doc or ("message" in doc and "vulnerabilities" not in doc):
        status = doc.get("statusCode")
        message = doc.get("message") or f"HTTP {status}"
        return f"the registry refused the audit request: {_clean(message)}"
    error = doc.get("error")
    if isinstance(error, dict) and "vulnerabilities" not in doc:
        parts = [str(error.get(k)) for k in ("code", "summary") if error.get(k)]
        detail = str(error.get("detail") or "").strip().splitlines()
        if detail:
            parts.append(detail[0])
        return "npm audit failed: " + _clean(": ".join(parts) or "unknown error")
    return None


def parse_audit(
    text: str,
    *,
    source: str,
    tool: str | None = None,
    taken_at: datetime | None = None,
) -> dict[str, Any]:
    """The result of an `npm audit --json` output (see the module docstring)."""
    base = {"source": source, "tool": tool, "taken_at": taken_at}
    doc = _document(text)
    if not isinstance(doc, dict):
        return _result("unknown", reason="not an npm audit report (no JSON object)", **base)
    reason = _error_reason(doc)
    if reason is not None:
        return _result("unknown", reason=reason, **base)
    version = doc.get("auditReportVersion")
    if version is None and "advisories" in doc:
        return _result(
            "unknown",
            reason="an npm 6 report (no auditReportVersion): run npm 7 or later",
            **base,
        )
    vulns = doc.get("vulnerabilities")
    if not isinstance(vulns, dict):
        return _result("unknown", reason="not an npm audit report (no vulnerabilities)", **base)
    rows = [_vulnerability(str(k), v) for k, v in vulns.items() if isinstance(v, dict)]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    rows.sort(key=lambda r: (order.get(r["severity"], 99), not r["direct"], r["name"]))
    # npm's own counts when they are counts; else (null, "two", Infinity) the listed ones
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    counted = metadata.get("vulnerabilities")
    counted = counted if isinstance(counted, dict) else {}
    listed = {s: sum(r["severity"] == s for r in rows) for s in SEVERITIES} | {"total": len(rows)}
    counts = {k: _count(counted.get(k), n) for k, n in listed.items()}
    deps = metadata.get("dependencies") or {}
    total_deps = _count(deps.get("total") if isinstance(deps, dict) else deps, None)
    return _result(
        "attention" if counts["total"] else "ok",
        reason=(
            fmt.counted(counts["total"], "vulnerable package")
            if counts["total"]
            else "no known vulnerability"
        ),
        report_version=version,
        counts=counts,
        direct=sum(r["direct"] for r in rows),
        transitive=sum(not r["direct"] for r in rows),
        fixable=sum(r["fix_available"] for r in rows),
        dependencies=total_deps,
        vulnerabilities=rows,
        **base,
    )


def read_audit_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved `npm audit --json` output; `taken_at` is the file's modification time."""
    p = Path(path)
    source = f"file {p}"
    try:
        text = p.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is no text
        taken = datetime.fromtimestamp(p.stat().st_mtime, UTC)
    except OSError as exc:
        return _result("unknown", source=source, reason=f"cannot read it: {exc.strerror}")
    return parse_audit(text, source=source, taken_at=taken)


def _npm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NO_UPDATE_NOTIFIER="1",
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="true",
    )
    return env


def run_npm_audit(
    app_dir: str | os.PathLike[str], *, timeout_s: float = 120.0, npm: str = "npm"
) -> dict[str, Any]:
    """`npm audit --json` in `app_dir` (never `npm audit fix`: nothing is changed there)."""
    folder = Path(app_dir)
    source = f"npm audit --json in {folder}"
    executable = shutil.which(npm)
    if executable is None:
        return _result("unknown", source=source, reason=f"{npm} not found on PATH")
    if not (folder / "package.json").is_file():
        return _result("unknown", source=source, reason=f"no package.json in {folder}")
    env = _npm_env()
    try:
        version = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            check=False,
        ).stdout.strip()
        done = subprocess.run(
            [executable, "audit", "--json"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _result(
            "unknown", source=source, reason=f"npm audit did not finish within {timeout_s:g} s"
        )
    except OSError as exc:
        return _result("unknown", source=source, reason=f"cannot run {npm}: {exc.strerror}")
    tool = f"npm {version}" if version else "npm"
    taken = datetime.now(UTC)
    # npm audit exits 1 when it finds vulnerabilities: the JSON decides, not the exit code
    text = done.stdout if _document(done.stdout) is not None else done.stderr
    result = parse_audit(text, source=source, tool=tool, taken_at=taken)
    if result["status"] == "unknown" and not (done.stdout.strip() or done.stderr.strip()):
        result["reason"] = f"npm audit printed nothing (exit {done.returncode})"
    return result
