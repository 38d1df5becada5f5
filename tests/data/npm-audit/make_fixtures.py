"""Write the npm audit fixtures of this folder with the machine's real npm (see README.md).

    python tests/data/npm-audit/make_fixtures.py [OUTDIR [PREFIX]]

`NPM` in the environment: the npm to run (default `npm`; e.g. `node .../npm-cli.js` for
another version); PREFIX goes before each file name (e.g. `npm7-`).

1. a tiny package (`package.json` below: old lodash, old mkdirp pulling an old minimist)
   gets a lockfile from the configured registry (`npm install --package-lock-only`);
2. `npm audit --json` against the configured registry: where its audit endpoint refuses
   (405 here), npm prints its error object -> registry-refused.json;
3. `npm audit --json` against a loopback stub registry that answers the bulk advisory
   endpoint with ADVISORIES (public GitHub advisories, their ids, titles, severities and
   ranges) and forwards every other request (package metadata) to the configured
   registry: npm computes the report itself (which packages, direct or transitive, the
   fix) -> vulnerable.json; the same stub with no advisory -> clean.json;
4. the package and its lockfile -> app/ (for the tests running npm audit in a checkout);
5. `npm audit --json` without a lockfile -> no-lockfile.json (npm 7: its stderr,
   no-lockfile.stderr.txt, where it prints the error object).

The configured registry's origin is replaced by "..." in what is written (the committed
files name no registry host).
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PACKAGE = {
    "name": "lsops-audit-fixture",
    "version": "1.0.0",
    "private": True,
    "description": "old, vulnerable dependencies for a real npm audit report",
    "dependencies": {"lodash": "4.17.15", "mkdirp": "0.5.1"},
}


def _advisory(
    ident: int, ghsa: str, title: str, severity: str, versions: str, cwe: list[str], score: float
) -> dict:
    return {
        "id": ident,
        "url": f"https://github.com/advisories/{ghsa}",
        "title": title,
        "severity": severity,
        "vulnerable_versions": versions,
        "cwe": cwe,
        "cvss": {"score": score, "vectorString": None},
    }


ADVISORIES = {
    "lodash": [
        _advisory(
            1001,
            "GHSA-p6mc-m468-83gw",
            "Prototype Pollution in lodash",
            "high",
            ">=3.7.0 <4.17.19",
            ["CWE-770", "CWE-1321"],
            7.4,
        ),
        _advisory(
            1002,
            "GHSA-35jh-r3h4-6jhm",
            "Command Injection in lodash",
            "high",
            "<4.17.21",
            ["CWE-77", "CWE-94"],
            7.2,
        ),
        _advisory(
            1003,
            "GHSA-29mw-wpgm-hmr9",
            "Regular Expression Denial of Service (ReDoS) in lodash",
            "moderate",
            "<4.17.21",
            ["CWE-400", "CWE-1333"],
            5.3,
        ),
    ],
    "minimist": [
        _advisory(
            1004,
            "GHSA-xvch-5gv4-984h",
            "Prototype Pollution in minimist",
            "critical",
            "<0.2.4",
            ["CWE-1321"],
            9.8,
        ),
        _advisory(
            1005,
            "GHSA-vh95-rmgr-6w4m",
            "Prototype Pollution in minimist",
            "moderate",
            "<0.2.1",
            ["CWE-1321"],
            5.6,
        ),
    ],
}


def _npm(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    npm = shlex.split(os.environ.get("NPM", "npm"))
    return subprocess.run(
        [*npm, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _stub(upstream: str, advisories: dict) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            asked = json.loads(body or b"{}")
            answer = {k: v for k, v in advisories.items() if k in asked}
            self._send(200, json.dumps(answer).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802
            request = urllib.request.Request(
                upstream.rstrip("/") + self.path,
                headers={"accept": self.headers.get("accept") or "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    self._send(answer.status, answer.read(), answer.headers["content-type"])
            except urllib.error.HTTPError as exc:
                self._send(exc.code, exc.read(), "application/json")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _save_app(app: Path, to: Path) -> None:
    """The package and its lockfile (without `resolved` URLs: they name the registry), for
    the tests that run npm audit in a checkout."""
    to.mkdir(exist_ok=True)
    shutil.copy2(app / "package.json", to / "package.json")
    lock = json.loads((app / "package-lock.json").read_text())
    for entry in lock.get("packages", {}).values():
        entry.pop("resolved", None)
    for entry in lock.get("dependencies", {}).values():
        entry.pop("resolved", None)
    (to / "package-lock.json").write_text(json.dumps(lock, indent=2) + "\n")


def main(out: Path, prefix: str = "") -> None:
    upstream = _npm("config", "get", "registry", cwd=Path.cwd()).stdout.strip()
    version = _npm("--version", cwd=Path.cwd()).stdout.strip()
    origin = upstream.rstrip("/")

    def save(name: str, text: str) -> None:
        text = text.replace(origin, "...")
        if name.endswith(".json"):
            json.loads(text)  # npm printed one JSON document
        (out / f"{prefix}{name}").write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        print(f"{prefix}{name}: npm {version}")

    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app"
        app.mkdir()
        (app / "package.json").write_text(json.dumps(PACKAGE, indent=2))
        bare = Path(tmp) / "bare"
        shutil.copytree(app, bare)
        done = _npm("install", "--package-lock-only", "--ignore-scripts", "--no-audit", cwd=app)
        if done.returncode != 0:
            sys.exit(f"npm install failed: {done.stderr[-2000:]}")
        _save_app(app, out / "app")
        refused = _npm("audit", "--json", cwd=app)
        if '"statusCode"' in refused.stdout:
            save("registry-refused.json", refused.stdout)
        for name, advisories in (("vulnerable.json", ADVISORIES), ("clean.json", {})):
            server = _stub(upstream, advisories)
            try:
                port = server.server_address[1]
                report = _npm("audit", "--json", f"--registry=http://127.0.0.1:{port}/", cwd=app)
            finally:
                server.shutdown()
            save(name, report.stdout)
        bare_audit = _npm("audit", "--json", cwd=bare)
        if bare_audit.stdout.strip():
            save("no-lockfile.json", bare_audit.stdout)
        else:  # npm 7 prints its error object on stderr, among its log lines
            save("no-lockfile.stderr.txt", bare_audit.stderr)


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent,
        sys.argv[2] if len(sys.argv) > 2 else "",
    )
