"""The demo folder (default `./.demo/`): what one demo run keeps between runs and shows
while it runs.

    store.sqlite          the metrics store
    lsops.toml, lsops.env the demo's settings (what `make lab` and a shell use)
    state.json            the run in progress: its processes, ports and cluster
    logs/demo-*.log       the run's log; logs/demo-*-<child>.log its child processes'
    .lock                 held while a demo runs (one demo per folder at a time)

The reports do not go here but to the outputs folder (`LSOPS_OUTPUTS`, else ./outputs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import threading
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STORE_FILE = "store.sqlite"
CONFIG_FILE = "lsops.toml"
ENV_FILE = "lsops.env"
STATE_FILE = "state.json"
LOCK_FILE = ".lock"
# LSOPS_* variables of the caller's environment that the demo keeps (every other
# LSOPS_* would point the demo at a real API, store or database)
KEEP_ENV = ("LSOPS_OUTPUTS", "LSOPS_NOTEBOOKS", "LSOPS_PG_BINDIR", "LSOPS_PG_USER", "LSOPS_DATA")


def outputs_dir(outputs: Path | None = None) -> Path:
    """Where the reports go: `outputs`, else LSOPS_OUTPUTS, else ./outputs."""
    if outputs is not None:
        return Path(outputs).expanduser().resolve()
    env = os.environ.get("LSOPS_OUTPUTS")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / "outputs").resolve()


class DemoFolder:
    def __init__(self, directory: Path, outputs: Path | None = None) -> None:
        self.dir = Path(directory).expanduser().resolve()
        self.store_path = self.dir / STORE_FILE
        self.store_url = f"sqlite:///{self.store_path}"
        self.config_path = self.dir / CONFIG_FILE
        self.outputs = outputs_dir(outputs)
        self.log_path: Path | None = None
        self.state: dict[str, Any] = {}
        self.state_lock = threading.Lock()
        self._log: Any = None
        self._lock_fh: Any = None
        self._log_handler: logging.Handler | None = None

    # -- opening and closing --------------------------------------------------------------

    def create(self) -> None:
        """The folder and its logs/ (OSError when it cannot be)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)

    def lock(self) -> bool:
        """Take the folder's lock, held until `close`; False when another demo has it."""
        self._lock_fh = open(self.dir / LOCK_FILE, "w")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            return False
        return True

    def open_log(self) -> None:
        """A new log file for this run; library warnings (psycopg on an interrupted
        query, ...) go to it too, not to the console."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.log_path = self.dir / "logs" / f"demo-{stamp}.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in close()
        handler = logging.StreamHandler(self._log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self._log_handler = handler
        logging.getLogger().addHandler(handler)

    def remove_store(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / (STORE_FILE + suffix)).unlink()

    def remove_empty_child_logs(self) -> None:
        if self.log_path is None:
            return
        for path in self.log_path.parent.glob(f"{self.log_path.stem}-*.log"):
            with contextlib.suppress(OSError):
                if path.stat().st_size == 0:
                    path.unlink()

    def close(self) -> None:
        """Release the lock and close the log. Never raises."""
        if self._lock_fh is not None:
            with contextlib.suppress(Exception):
                self._lock_fh.close()
            self._lock_fh = None
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler = None
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log.close()
            self._log = None

    # -- while it runs ----------------------------------------------------------------------

    def log(self, text: str) -> None:
        if self._log is not None:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            with contextlib.suppress(OSError, ValueError):
                self._log.write(f"{stamp} {text}\n")
                self._log.flush()

    def child_log(self, name: str) -> str | None:
        """The log file of a child process (next to the demo's log)."""
        if self.log_path is None:
            return None
        return str(self.log_path.with_name(f"{self.log_path.stem}-{name}.log"))

    def save_state(self, **updates: Any) -> None:
        """Update state.json (atomically: a reader never sees half of it)."""
        with self.state_lock:
            self.state.update(updates)
            data = json.dumps(self.state, indent=2, default=str)
        tmp = self.dir / f".{STATE_FILE}.tmp"
        with contextlib.suppress(OSError):
            tmp.write_text(data + "\n")
            os.replace(tmp, self.dir / STATE_FILE)

    def append_state(self, key: str, value: Any) -> None:
        """Add `value` to the list `key` of state.json."""
        with self.state_lock:
            values = [*self.state.get(key, []), value]
        self.save_state(**{key: values})

    # -- settings ---------------------------------------------------------------------------

    def env(self, db_url: str | None = None) -> dict[str, str]:
        """The environment of everything the demo runs: the caller's, minus LSOPS_*
        settings that would point elsewhere, plus the demo's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LSOPS_") or k in KEEP_ENV}
        env.update(
            LSOPS_CONFIG=str(self.config_path),
            LSOPS_STORE=self.store_url,
            LSOPS_OUTPUTS=str(self.outputs),
        )
        env.pop("LSOPS_DATABASE_URL", None)
        if db_url:
            env["LSOPS_DATABASE_URL"] = db_url
        return env

    def write_config(self, *, keep_added: bool = False) -> None:
        """lsops.toml and lsops.env: the demo's settings for `make lab` and a shell.
        `keep_added`: the sections the full demo added to lsops.toml (`ADDED_SECTIONS`:
        its dumps, its log files) are kept (`lsops demo --lab` on the store they go with);
        else lsops.toml is written anew, and the demo's phases add them again."""
        kept = self.added_sections() if keep_added else {}
        self.config_path.write_text(
            "# Written by `lsops demo`: the demo's settings (what `make lab` uses).\n"
            "# The database URL changes with every start of the throwaway PostgreSQL: it is\n"
            "# given as LSOPS_DATABASE_URL by `lsops demo --lab` while it runs.\n"
            "[store]\n"
            f"url = {toml_string(self.store_url)}\n\n"
            "[outputs]\n"
            f"dir = {toml_string(str(self.outputs))}\n" + "".join(kept.values())
        )
        env = self.dir / ENV_FILE
        q = shlex.quote  # a shell reads this file: a path with a space stays one word
        env.write_text(
            f"# `set -a; . {q(str(env))}; set +a` gives a shell the demo's settings\n"
            f"LSOPS_CONFIG={q(str(self.config_path))}\n"
            f"LSOPS_STORE={q(self.store_url)}\n"
            f"LSOPS_OUTPUTS={q(str(self.outputs))}\n"
        )

    def add_config(self, section: str, lines: str) -> None:
        """Add the section `[section]` (one of `ADDED_SECTIONS`) with `lines` to lsops.toml,
        in place of the one there (a phase run again never writes it twice)."""
        text = self.config_path.read_text() if self.config_path.is_file() else ""
        chunks = _sections(text)
        head = "".join(body for name, body in chunks if name != section)
        self.config_path.write_text(head.rstrip("\n") + f"\n\n[{section}]\n{lines.strip()}\n")

    def added_sections(self) -> dict[str, str]:
        """The `ADDED_SECTIONS` of the demo's lsops.toml as written (a section that no
        longer reads as TOML is left out), by name."""
        try:
            text = self.config_path.read_text()
        except (OSError, UnicodeDecodeError):
            return {}
        kept: dict[str, str] = {}
        for name, body in _sections(text):
            if name in ADDED_SECTIONS and name not in kept:
                try:
                    tomllib.loads(body)
                except tomllib.TOMLDecodeError:
                    continue
                kept[name] = "\n" + body.strip("\n") + "\n"
        return kept


# the sections the full demo adds to its lsops.toml: its dumps (`[backups] paths`, the
# phase "backups") and its pm2 log files (`[logs] paths`, the phase "errors"). The
# store they go with is the demo's: `lsops demo --lab`, which reuses it, keeps them.
ADDED_SECTIONS = ("backups", "logs")
_HEADER = re.compile(r"^\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(?:#.*)?$")


def _sections(text: str) -> list[tuple[str | None, str]]:
    """`text` cut at its top-level `[name]` lines: (name, the lines from it to the next
    one); the lines before the first, name None."""
    chunks: list[tuple[str | None, str]] = [(None, "")]
    for line in text.splitlines(keepends=True):
        match = _HEADER.match(line.strip())
        if match:
            chunks.append((match.group(1), line))
        else:
            name, body = chunks[-1]
            chunks[-1] = (name, body + line)
    return [c for c in chunks if c[1]]


def toml_string(text: str) -> str:
    """`text` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
