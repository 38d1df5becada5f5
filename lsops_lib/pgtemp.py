"""A private, throwaway PostgreSQL cluster for tests and the demo.

    with PostgresCluster() as pg:          # initdb + pg_ctl on a free port, in a temp folder
        url = pg.url                        # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        db = pg.create_database("planted")  # a URL of a new, empty database
        secret = pg.password_url("planted") # same database, as a role that needs a password
        pg.bindir, pg.server_version_num()  # its own client programs' folder, its version

The server binaries come from `LSOPS_PG_BINDIR`, `pg_config --bindir`, Debian's
`/usr/lib/postgresql/<version>/bin` or the PATH; `pg_stat_statements` is preloaded when the
binaries have it (`.has_pg_stat_statements`). Without binaries the `pgserver` wheel is tried
(PostgreSQL with pgvector, no pg_stat_statements; `LSOPS_PG_BACKEND=pgserver` forces it). The cluster is tuned for speed, not
durability (fsync off). Running as root, the server runs as the unprivileged user `nobody`.

The cluster is stopped and its folder removed by `stop()`, at interpreter exit, on SIGTERM,
and - by a small watchdog process that waits on a pipe from this one - even when this
process is killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .exceptions import LsopsError

__all__ = ["PostgresCluster", "PostgresUnavailable", "find_bindir"]

PASSWORD_ROLE = "lsops_reader"


class PostgresUnavailable(LsopsError):
    """No PostgreSQL server could be found or started on this machine."""


def find_bindir() -> Path | None:
    """The folder of the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`), if any."""
    candidates: list[Path] = []
    if os.environ.get("LSOPS_PG_BINDIR"):
        candidates.append(Path(os.environ["LSOPS_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        candidates.append(Path(found))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(os.environ.get("LSOPS_PG_USER", "nobody"))
    except KeyError:
        raise PostgresUnavailable(
            "running as root and no user 'nobody' to run PostgreSQL as"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _demote(ids: tuple[int, int] | None) -> Callable[[], None] | None:
    if ids is None:
        return None
    uid, gid = ids

    def preexec() -> None:  # pragma: no cover - runs in the child
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return preexec


# The watchdog: a separate process holding the read end of a pipe. When the pipe closes
# (stop() or this process dying, even by SIGKILL) it stops the postmaster, kills whatever
# still names the data folder (an initdb or pg_ctl the dead process left running, a
# postmaster started late), and removes the folder until it stays removed. It needs no
# lsops import: the code is passed with -c.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
data, root = sys.argv[1], sys.argv[2]
try:
    while sys.stdin.buffer.read(1):
        pass
except Exception:
    pass

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except Exception:
        return False

def naming(text):
    found, me, needle = [], os.getpid(), text.encode()
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc (not Linux): the postmaster's pid file is all there is
        names = []
    for name in names:
        if name.isdigit() and int(name) != me:
            try:
                with open("/proc/%s/cmdline" % name, "rb") as fh:
                    if needle in fh.read() and alive(int(name)):
                        found.append(int(name))
            except Exception:
                pass
    return found

try:
    pid = int(open(os.path.join(data, "postmaster.pid")).readline().strip())
except Exception:
    pid = None
if pid and os.path.isdir("/proc") and pid not in naming(data):
    pid = None  # a stale pid file: that number may be another process's by now
if pid:
    try:
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
deadline = time.monotonic() + 30
while True:
    others = naming(data)
    for other in others:
        try:
            os.kill(other, signal.SIGKILL)
        except OSError:
            pass
    if others:
        time.sleep(0.1)
    shutil.rmtree(root, ignore_errors=True)
    if (not os.path.exists(root) and not naming(data)) or time.monotonic() > deadline:
        break
    time.sleep(0.1)
"""


_LIVE: set[PostgresCluster] = set()
_LIVE_LOCK = threading.Lock()
# held while libpq connects to a cluster with the PG* variables out of os.environ
_LIBPQ_ENV_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _stop_all() -> None:
    """Stop the clusters THIS process started: a forked child (a demo worker, a test's
    helper process) inherits the exit and SIGTERM hooks, and must not stop its parent's."""
    with _LIVE_LOCK:
        clusters = [c for c in _LIVE if getattr(c, "_owner_pid", None) == os.getpid()]
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:  # pragma: no cover - signal
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)


class PostgresCluster:
    """A throwaway PostgreSQL cluster: `start()` -> SQLAlchemy URL, `stop()` removes it all."""

    def __init__(
        self,
        *,
        pg_stat_statements: bool = True,
        bindir: str | os.PathLike[str] | None = None,
        settings: dict[str, Any] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.want_pg_stat_statements = pg_stat_statements
        self._bindir = Path(bindir) if bindir else None
        self.extra_settings = dict(settings or {})
        self.start_timeout_s = start_timeout_s
        self.root: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.port: int | None = None
        self.host = "127.0.0.1"
        self.superuser = "postgres"
        self.password_role = PASSWORD_ROLE
        self.password = secrets.token_urlsafe(18)
        self.has_pg_stat_statements = False
        self.has_pgvector = False
        self.backend = "none"
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pgserver: Any = None
        self._url: str | None = None
        self._ids: tuple[int, int] | None = None

    # --- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._url is not None

    @property
    def bindir(self) -> Path | None:
        """The folder of the running server's own programs (its `pg_dump`, `pg_restore`,
        `psql` of the same version): the binaries', or the pgserver wheel's. None before
        `start()`."""
        if self._url is None:
            return None
        if self._pgserver is not None:
            return _pgserver_bindir()
        return self._bindir

    def server_version_num(self) -> int:
        """The running server's `server_version_num` (160002 for 16.2)."""
        with self.connect() as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        return int(row[0])

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `postgres` database, as the superuser (no password)."""
        if self._url is None:
            raise PostgresUnavailable("the cluster is not running")
        return self._url

    def start(self) -> str:
        if self._url is not None:
            return self._url
        if os.environ.get("LSOPS_PG_BACKEND") == "pgserver":  # force the fallback
            return self._start_pgserver()
        bindir = self._bindir or find_bindir()
        if bindir is None:
            return self._start_pgserver()
        _install_hooks()
        self._ids = _unprivileged()
        last: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            try:
                return self._start_binaries(bindir)
            except PostgresUnavailable as exc:
                last = exc
                self._cleanup()
        assert last is not None
        raise last

    def _run(self, args: list[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_demote(self._ids),
            cwd=str(self.root),
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        return proc

    def _start_binaries(self, bindir: Path) -> str:
        self.root = Path(tempfile.mkdtemp(prefix="lsops-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        if self._ids is not None:
            os.chmod(self.root, 0o700)
            os.chown(self.root, *self._ids)
            os.chown(self.socket_dir, *self._ids)
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.data_dir), str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
            self._owner_pid = os.getpid()

        init = self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {_last_line(init.stderr or init.stdout)}")

        pkglib = self._pkglibdir(bindir)
        self.has_pg_stat_statements = bool(
            self.want_pg_stat_statements and pkglib and (pkglib / "pg_stat_statements.so").exists()
        )
        self.has_pgvector = bool(pkglib and (pkglib / "vector.so").exists())
        self.port = _free_port()
        conf: dict[str, Any] = {
            "listen_addresses": "'127.0.0.1'",
            "port": self.port,
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 40,
            "shared_buffers": "'32MB'",
            "max_wal_size": "'256MB'",
            "wal_level": "minimal",
            "max_wal_senders": 0,
            "track_io_timing": "on",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        if self.has_pg_stat_statements:
            conf["shared_preload_libraries"] = "'pg_stat_statements'"
            conf["pg_stat_statements.track"] = "all"
            conf["pg_stat_statements.max"] = 5000
        conf.update(self.extra_settings)
        with (self.data_dir / "postgresql.auto.conf").open("a") as fh:
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")
        # local socket: trust; TCP: trust for the superuser, a password for everyone else
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {self.superuser} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        start = self._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                str(int(self.start_timeout_s)),
                "start",
            ],
            timeout=self.start_timeout_s + 10,
        )
        if start.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                log = (self.root / "server.log").read_text()
            raise PostgresUnavailable(f"pg_ctl start failed: {_last_line(log or start.stderr)}")
        self._bindir = bindir
        self.backend = "binaries"
        self._url = f"postgresql+psycopg://{self.superuser}@{self.host}:{self.port}/postgres"
        self._bootstrap()
        return self._url

    def _pkglibdir(self, bindir: Path) -> Path | None:
        pg_config = bindir / "pg_config"
        if pg_config.is_file():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=10
                )
                if out.returncode == 0 and out.stdout.strip():
                    return Path(out.stdout.strip())
        guess = bindir.parent / "lib"
        return guess if guess.is_dir() else None

    def _start_pgserver(self) -> str:
        try:
            import pgserver  # type: ignore[import-not-found]
        except ImportError:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries found (install Debian's 'postgresql' package "
                "or set LSOPS_PG_BINDIR) and the 'pgserver' wheel is not installed"
            ) from None
        _install_hooks()
        self.root = Path(tempfile.mkdtemp(prefix="lsops-pgserver-"))
        self.data_dir = self.root / "data"
        try:
            server = pgserver.get_server(str(self.data_dir), cleanup_mode="delete")
        except Exception as exc:  # noqa: BLE001 - any failure of the wheel
            shutil.rmtree(self.root, ignore_errors=True)
            raise PostgresUnavailable(f"pgserver could not start: {_last_line(str(exc))}") from None
        self._pgserver = server
        with _LIVE_LOCK:
            _LIVE.add(self)
            self._owner_pid = os.getpid()
        uri = str(server.get_uri())
        self.backend = "pgserver"
        self.has_pg_stat_statements = False
        self.has_pgvector = True
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(uri)
        self.host = str(info.get("host") or self.host)  # a unix socket folder
        self.port = int(info["port"]) if info.get("port") else 5432
        self.superuser = str(info.get("user") or self.superuser)
        self._url = self.database_url(str(info.get("dbname") or "postgres"))
        self._bootstrap()
        return self._url

    def _bootstrap(self) -> None:
        """The password role: reads everything, can log in only with its password."""
        pw = self.password.replace("'", "''")
        self.execute(
            f"CREATE ROLE {self.password_role} LOGIN PASSWORD '{pw}'",
            f"GRANT pg_read_all_data, pg_monitor TO {self.password_role}",
        )

    def stop(self) -> None:
        """Stop the server and remove its folder. Idempotent, never raises."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._pgserver is not None:
            with contextlib.suppress(Exception):
                self._pgserver.cleanup()
            self._pgserver = None
        elif self._url is not None and self._bindir is not None and self.data_dir is not None:
            with contextlib.suppress(Exception):
                self._run(
                    [
                        str(self._bindir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    timeout=30,
                )
        self._url = None
        self._cleanup()

    def _cleanup(self) -> None:
        # closing the pipe lets the watchdog kill whatever is left and remove the folder
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(Exception):
                assert watchdog.stdin is not None
                watchdog.stdin.close()
            with contextlib.suppress(Exception):
                watchdog.wait(timeout=15)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    # --- helpers --------------------------------------------------------------------

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg connection to `dbname` as the superuser, in autocommit. The caller's
        PG* variables (PGSSLMODE, PGOPTIONS, PGTARGETSESSIONATTRS, PGSERVICE...) are kept
        out of it: libpq reads them for every setting not given, and this cluster is ours."""
        import psycopg

        with _LIBPQ_ENV_LOCK:
            saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PG")}
            try:
                return psycopg.connect(
                    host=self.host,
                    port=self.port,
                    user=self.superuser,
                    dbname=dbname,
                    sslmode="disable",  # a private cluster, started without SSL
                    autocommit=True,
                )
            finally:
                os.environ.update(saved)

    def execute(self, *statements: str, dbname: str = "postgres") -> None:
        """Run statements as the superuser (autocommit), e.g. to plant a scenario."""
        with self.connect(dbname) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]

    def _at(self, name: str) -> str:
        """`@host:port/name`, or `@/name?host=...` for a unix socket folder (pgserver)."""
        if self.host.startswith("/"):
            from urllib.parse import quote

            return f"@/{name}?host={quote(self.host, safe='/')}&port={self.port}"
        return f"@{self.host}:{self.port}/{name}"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://{self.superuser}{self._at(name)}"

    def password_url(self, name: str = "postgres") -> str:
        """URL of database `name` as the role that must give its password (for leak tests)."""
        from urllib.parse import quote

        return (
            f"postgresql+psycopg://{self.password_role}:{quote(self.password, safe='')}"
            f"{self._at(name)}"
        )

    def create_database(self, name: str, *, pg_stat_statements: bool = False) -> str:
        """Create an empty database and return its SQLAlchemy URL (superuser)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        self.execute(f'CREATE DATABASE "{name}"')
        if pg_stat_statements and self.has_pg_stat_statements:
            self.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=name)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __repr__(self) -> str:
        return (
            f"PostgresCluster(backend={self.backend!r}, port={self.port}, running={self.running})"
        )


def _pgserver_bindir() -> Path | None:
    """The pgserver wheel's bin folder (its PostgreSQL's own client programs)."""
    with contextlib.suppress(ImportError, AttributeError):
        from pgserver import _commands  # type: ignore[import-not-found]

        return Path(_commands.POSTGRES_BIN_PATH)
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
