"""Bad input is one line and an exit code, always (issue 13): a property-based test.

Every option of every command is enumerated from the click group (so an option added
later is covered without touching this file) and given random and extreme values by
hypothesis according to what it takes (its metavar or type): months, instants,
durations, windows, titles, paths, names, numbers, choices; URLs come in through the
environment (LSOPS_API_URL, LSOPS_STORE, LSOPS_DATABASE_URL) and `-p store URL`. For
each example:

- the exit code is 0, 1 or 2 (3 too for the monitoring-plugin commands, `health` and
  `checklist`, whose bad usage is UNKNOWN), and bad usage is ONE line on stderr;
- no traceback, no exception escaping the command;
- nothing is written in the sandbox outside its outputs folder and its data folder
  (the metrics store), nothing is left in the temporary folder;
- no secret (the API token, a database password) appears in the output or the outputs.

Bounded: a fixed number of examples per command (derandomized: the same ones each run;
LSOPS_HYPOTHESIS_RANDOM=1 explores new ones), a deadline per example, no network beyond
loopback (every URL generated points at 127.0.0.1/localhost/[::1] or is malformed).
What would run for long is replaced AFTER the command's own checks: a report's kernel
(papermill only injects the parameters: `prepare_only`), `collect --every`'s loop, the
demo's phases after its plan.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lsops_lib.cli import PluginCommand, main  # noqa: E402

pytestmark = pytest.mark.timeout(600)

TOKEN = "tok-HOSTILE-3b9d7e1f"
PASSWORD = "pw-HOSTILE-c4a8f2"
EXAMPLES = 50
REPORT_EXAMPLES = 40  # each archives a report (nbconvert's HTML export)
RANDOM = os.environ.get("LSOPS_HYPOTHESIS_RANDOM") == "1"

# --- values ---------------------------------------------------------------------------------

# what a command line in a foreign encoding, a paste or a fuzzer gives (never NUL: argv
# and the environment cannot carry it)
text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=40,
) | st.sampled_from(
    [
        "",
        " ",
        "-",
        "--",
        "..",
        "../../..",
        "/",
        "~",
        "%s%n%x",
        "${HOME}",
        "$(id)",
        "'",
        '"',
        "\\",
        "\n",
        "line\nbreak",
        "\t",
        "\u202e",
        "\udcff",  # an undecodable byte, as Python hands it over (surrogateescape)
        "😀",
        "nan",
        "inf",
        "-inf",
        "1e309",
        "-1",
        "0",
        "9" * 400,
        "x" * 5000,
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "postgresql://u:pw@127.0.0.1:1/db",
    ]
)


def _or_good(good: list[str], hostile: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Half the time a value a user means (so that the command goes on to do its work with
    the other options' values), half the time a hostile one."""
    return st.one_of(st.sampled_from(good), hostile)


months = st.one_of(
    st.sampled_from(
        [
            "9999-12",
            "0000-01",
            "1899-12",
            "1900-01",
            "2199-12",
            "2200-01",
            "2026-13",
            "2026-00",
            "2026-1",
            "+2026-01",
            " 2026-10 ",
            "２０２６-１０",
            "2026-01..9999-12",
            "2026-01..2026-01",
            "2026-12..2026-01",
            "1900-01..2199-12",
            "..",
            "2026-01..",
            "2026-10",
        ]
    ),
    st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(0, 9999), st.integers(0, 13)),
    st.builds(
        lambda a, b: f"{a[0]:04d}-{a[1]:02d}..{b[0]:04d}-{b[1]:02d}",
        st.tuples(st.integers(0, 9999), st.integers(1, 12)),
        st.tuples(st.integers(0, 9999), st.integers(1, 12)),
    ),
    text,
)

instants = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T23:59:59-23:59",
            "0001-01-01",
            "1899-12-31T23:59Z",
            "2199-12-31T23:59Z",
            "2200-01-01",
            "2026-10-01T01:00Z",
            "2026-10-01T05:00Z",
            "2026-02-30",
            "2026-10-03T25:00",
            "1970-01-01T00:00:00+25:00",
            "now",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    text,
)

durations = st.one_of(
    st.sampled_from(
        [
            "0s",
            "-1s",
            "1e9d",
            "99999999999d",
            "1.5h",
            "0.0000001ms",
            "1ms",
            "36500d",
            "36501d",
            "5m",
            "24h",
            "1w",
            " 5 m ",
            "5",
            "m",
            "5M",
            "٥m",
            "9" * 400 + "d",
        ]
    ),
    st.builds(
        lambda n, u: f"{n}{u}",
        st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True)),
        st.sampled_from(["ms", "s", "m", "h", "d", "w", "y", ""]),
    ),
    text,
)

paths = st.one_of(
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "/",
            "/dev/null",
            "/proc/self/environ",
            "~",
            "~nobody/x",
            "x" * 5000,
            "a/b/../../..",
            "\udcff",
            "outputs",
            "nonexistent/dir/lsops.toml",
            "/etc/passwd",
            "lsops.toml",
        ]
    ),
    text,
)

integers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from(["-1", "0", "1", "999", "2147483648", "1e3", "0x10", "", "nan"]),
).map(str)

floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["nan", "inf", "-inf", "-0", "1e309", "0", "-5", ""]),
)

names = st.one_of(
    st.sampled_from(
        ["default", "prod", "monthly-review", "postmortem", "db-optimization", "SEV1", "sev9"]
    ),
    text,
)


def _urls(refused: int, data: Path) -> st.SearchStrategy[str]:
    """URLs pointing at loopback (a refused port) or malformed; passwords are the secret."""
    hosts = ["127.0.0.1", "localhost", "[::1]", "[::1", "127.0.0.1:99999999", "127.0.0.1:abc", ""]
    schemes = ["http", "https", "postgresql", "postgres", "sqlite", "mysql", "file", ""]
    built = st.builds(
        lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}/{path}",
        st.sampled_from(schemes),
        st.sampled_from(["", "u@", f"u:{PASSWORD}@", f":{PASSWORD}@", f"u:{PASSWORD}@x@"]),
        st.sampled_from(hosts),
        st.sampled_from(["", f":{refused}", ":0", ":-1"]),
        st.sampled_from(["", "db", "a b", "%zz", "..", "?sslmode=require&password=" + PASSWORD]),
    )
    return st.one_of(
        st.sampled_from(
            [
                f"postgresql://u:{PASSWORD}@[::1/x",
                f"postgresql://u:{PASSWORD}@127.0.0.1:99999999/x",
                f"postgresql://u:{PASSWORD}@127.0.0.1:abc/x",
                f"postgresql://lsops:{PASSWORD}@127.0.0.1:{refused}/longsang",
                "postgres://",
                "http://",
                "http://[::1",
                "file:///etc/passwd",
                "javascript:alert(1)",
                f"sqlite:///{data}/m.sqlite",
                f"sqlite:///{data}/sub/dir/m.sqlite",
                "sqlite://",
                "sqlite:////proc/lsops.sqlite",
                f"mysql://u:{PASSWORD}@127.0.0.1:{refused}/x",
            ]
        ),
        built,
    )


# --- the commands and their options ------------------------------------------------------------

# working command lines (after the command's name) that the examples start from half the
# time, so that hostile values also reach the deep paths (a report archived, a scrape
# stored); a command not listed starts from nothing
BASES: dict[str, list[list[str]]] = {
    "report": [
        ["monthly-review", "--month=2026-10"],
        ["monthly-review", "--months=2026-09..2026-10"],
        ["postmortem", "--start=2026-10-01T01:00Z", "--end=2026-10-01T03:00Z", "--title=Outage"],
        ["db-optimization"],
    ],
    "collect": [["--once"], ["--every=5m"]],
    "endpoints": [["--since=2026-10-01T00:00Z", "--until=2026-10-01T06:00Z"]],
    "incidents": [["--since=2026-10-01T00:00Z", "--until=2026-10-01T06:00Z"]],
    "checklist": [["--since=2026-10-01T00:00Z", "--until=2026-10-01T06:00Z"]],
    "demo": [["--days=3"]],
}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            found.update(_commands(command, path))
        else:
            found[" ".join(path)] = path
    return found


COMMANDS = _commands(main)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _strategy(param: click.Parameter, urls: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """The values a parameter is fed, chosen by what it takes (metavar, then type)."""
    metavar = (getattr(param, "metavar", None) or "").upper()
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return st.booleans()
    if param.nargs == 2:  # -p NAME VALUE
        return st.tuples(
            st.sampled_from(["store", "target", "month", "title", "top_n", "sleep_s"]) | text,
            st.one_of(urls, months, instants, text),
        )
    if metavar == "YYYY-MM":
        return _or_good(["2026-10", "2026-09"], months)
    if metavar == "A..B":
        return _or_good(["2026-09..2026-10", "2026-10"], months)
    if metavar == "T":
        return _or_good(["2026-10-01T01:00Z", "2026-10-01T05:00Z"], instants)
    if metavar == "DURATION":
        return _or_good(["24h", "7d", "30d", "5m"], durations)
    if metavar == "TEXT":
        return _or_good(["Chat outage", "API: 503s / timeouts!"], text)
    if metavar == "KIND":
        return _or_good(["monthly-review", "postmortem", "db-optimization"], names)
    if metavar == "PATH" or isinstance(kind, click.Path):
        return _or_good(["lsops.toml", "outputs", "./.demo"], paths)
    if metavar == "URL":
        return urls
    if isinstance(kind, click.types.IntParamType | click.IntRange):
        return integers
    if isinstance(kind, click.types.FloatParamType):
        return floats
    if isinstance(kind, click.Choice):
        return st.sampled_from(list(kind.choices)) | text
    return names  # NAME, KIND, SEV, N, anything new: names and hostile text


def _argv(path: tuple[str, ...], chosen: dict[str, Any]) -> list[str]:
    command = _command(path)
    args: list[str] = []
    for param in command.params:
        if param.name not in chosen:
            continue
        value = chosen[param.name]
        if isinstance(param, click.Argument):
            args.append(str(value))
            continue
        opt = max(param.opts, key=len)
        if isinstance(param, click.Option) and param.is_flag:
            if value:
                args.append(opt)
        elif param.nargs == 2:
            args += [opt, str(value[0]), str(value[1])]
        else:
            args.append(f"{opt}={value}")
    return args


# --- the sandbox ----------------------------------------------------------------------------------


def _snapshot(root: Path, allowed: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in allowed]
        for name in dirnames:  # a folder: that it exists (its mtime follows its content)
            found[str((here / name).relative_to(root))] = (-1, -1)
        for name in filenames:
            path = here / name
            with contextlib.suppress(OSError):
                stat = path.lstat()
                found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@contextlib.contextmanager
def _sandbox(store_copy: Path) -> Iterator[dict[str, Path]]:
    root = Path(tempfile.mkdtemp(prefix="lsops-hostile-"))
    try:
        places = {
            "root": root,
            "work": root / "work",
            "outputs": root / "work" / "outputs",
            "data": root / "work" / "data",
            "tmp": root / "tmp",
        }
        for name in ("work", "data", "tmp"):
            places[name].mkdir(parents=True, exist_ok=True)
        shutil.copy(store_copy, places["data"] / "store.sqlite")
        yield places
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile_store(cli_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the CLI world's store (six hours of scrapes), copied again per example."""
    import sqlite3

    copy = tmp_path_factory.mktemp("hostile") / "store.sqlite"
    source = sqlite3.connect(cli_world.store_url[len("sqlite:///") :])
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # whole, whatever the WAL holds
    finally:
        target.close()
        source.close()
    return copy


class _Threads(ThreadPoolExecutor):
    def __init__(self, max_workers: int, mp_context: Any = None) -> None:
        super().__init__(max_workers=max_workers)


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    """What would run for long, replaced after the command's own checks."""
    import papermill
    import papermill.iorw
    import papermill.parameterize

    from lsops_lib import collect, demo, reports
    from lsops_lib.reports import batch
    from lsops_lib.reports.execute import Execution

    def execute(notebook: Path, scratch: Path, parameters: dict[str, Any], **kw: Any) -> Any:
        nb = papermill.iorw.load_notebook_node(str(notebook))  # as papermill reads it
        nb = papermill.parameterize.parameterize_notebook(nb, parameters)  # real injection
        return Execution(nb=nb, error=None)

    def run_demo(options: Any) -> Any:
        from lsops_lib.demo.run import Demo, Result

        Demo(options).plan()  # the demo's own checks of --month, --days, --seed
        return Result(code=0)

    monkeypatch.setattr(reports.run, "execute", execute)
    # `--jobs N`: worker threads instead of processes, which would not see these stubs
    monkeypatch.setattr(batch, "ProcessPoolExecutor", _Threads)
    monkeypatch.setattr(collect, "collect_forever", lambda *a, **k: 0)
    monkeypatch.setattr(collect, "collect_rounds_forever", lambda *a, **k: 0)
    monkeypatch.setattr(demo, "run_demo", run_demo)
    monkeypatch.setattr(demo, "run_lab", lambda options: 0)


def _texts(folder: Path) -> Iterator[tuple[Path, str]]:
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".ipynb", ".txt", ".log", ""):
            yield path, path.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_any_value_of_any_option_is_handled(
    command: str,
    hostile_store: Path,
    faulty_api: Any,
    stubs: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fixtures.faults import free_port

    path = COMMANDS[command]
    refused = free_port()
    plugin = isinstance(_command(path), PluginCommand)
    examples = REPORT_EXAMPLES if path[0] == "report" else EXAMPLES

    @settings(
        max_examples=examples,
        deadline=60_000,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        with _sandbox(hostile_store) as places:
            urls = _urls(refused, places["data"])
            params = {p.name: p for p in _command(path).params if p.name}
            arguments = [n for n, p in params.items() if isinstance(p, click.Argument)]
            # half the time a working command line, one or two of its values made hostile
            base = data.draw(st.sampled_from([[], *BASES.get(command, [])]), label="base")
            if base:
                params = {n: p for n, p in params.items() if n not in arguments}
                arguments = []
            picked = data.draw(
                st.sets(st.sampled_from(sorted(params)), max_size=3) if params else st.just(set()),
                label="options",
            )
            options = {
                name: data.draw(_strategy(params[name], urls), label=name)
                for name in sorted({*picked, *arguments})  # a missing argument: click's error
                if name in picked or data.draw(st.integers(0, 9), label=f"{name}?") > 0
            }
            rarely = st.integers(0, 4).map(lambda n: n == 0)
            global_options = []
            if data.draw(rarely, label="give --target"):
                global_options.append(f"--target={data.draw(names, label='--target')}")
            if data.draw(rarely, label="give --config"):
                global_options.append(f"--config={data.draw(paths, label='--config')}")
            # the caller's LSOPS_* unset (CliRunner: None), the sandbox's set
            env: dict[str, str | None] = dict.fromkeys(
                [k for k in os.environ if k.startswith("LSOPS_")], None
            )
            env.update(
                LSOPS_API_TOKEN=TOKEN,
                LSOPS_API_URL=faulty_api.url("ok"),
                LSOPS_STORE=f"sqlite:///{places['data'] / 'store.sqlite'}",
                LSOPS_DATABASE_URL=f"postgresql://lsops:{PASSWORD}@127.0.0.1:{refused}/db",
                LSOPS_OUTPUTS=str(places["outputs"]),
                LSOPS_DATA=str(places["data"]),
                COLUMNS="120",
            )
            for name in ("LSOPS_API_URL", "LSOPS_STORE", "LSOPS_DATABASE_URL"):
                if data.draw(rarely, label=f"hostile {name}"):
                    env[name] = data.draw(urls, label=name)
            # a later value of an option wins in click: the hostile ones come last
            argv = [*global_options, *path, *base, *_argv(path, options)]
            before = _snapshot(places["root"], (places["outputs"], places["data"]))
            monkeypatch.setattr(tempfile, "tempdir", str(places["tmp"]))
            with contextlib.chdir(places["work"]):
                result = CliRunner().invoke(main, argv, env=env)
            monkeypatch.setattr(tempfile, "tempdir", None)
            out = result.stdout + result.stderr
            where = f"lsops {' '.join(argv)!r}\n--- exit {result.exit_code}\n{out[:3000]}"

            # an exit code, never an exception
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"{where}\n{result.exception!r}") from result.exception
            assert "Traceback" not in out, where
            codes = {0, 1, 2, 3} if plugin else {0, 1, 2}
            assert result.exit_code in codes, where
            usage = 3 if plugin else 2
            if result.exit_code == usage and not result.stdout.strip():
                lines = [x for x in result.stderr.splitlines() if x.strip()]
                assert len(lines) == 1, where  # bad usage: ONE line
            # no secret echoed
            assert TOKEN not in out and PASSWORD not in out, where
            # nothing written outside the outputs folder and the data folder
            after = _snapshot(places["root"], (places["outputs"], places["data"]))
            assert after == before, f"{where}\nwritten: {set(after) ^ set(before)}"
            assert list(places["tmp"].iterdir()) == [], where  # nothing left in temp
            if places["outputs"].exists():
                for file, content in _texts(places["outputs"]):
                    assert TOKEN not in content and PASSWORD not in content, (where, file)

    check()


def test_a_group_without_its_subcommand_shows_its_help() -> None:
    """`lsops db`, `lsops backup`: the group's help, its subcommands one per line (click
    shows it; exit 2 since click 8.2, 0 before), never squeezed into an error line."""
    from lsops_lib.cli import main

    groups = {
        name: c
        for name, c in main.commands.items()
        if isinstance(c, click.Group) and c.no_args_is_help  # not `alerts`: it lists
    }
    assert {"db", "backup"} <= set(groups)
    for name, group in groups.items():
        result = CliRunner().invoke(main, [name])
        lines = result.output.splitlines()
        assert result.exit_code in (0, 2), (name, result.output)
        assert lines[0].startswith(f"Usage: main {name} "), (name, lines[:2])
        assert "\\n" not in result.output and "lsops:" not in result.output, name
        listed = {line.split()[0] for line in lines[lines.index("Commands:") + 1 :] if line}
        assert listed == set(group.commands), (name, listed)


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_limit_option_refuses_a_count_below_one(tmp_path: Path) -> None:
    """`--limit 0` or `--limit -1` (rows to show, runs to list) is bad usage: exit 2 and
    one line naming the option, before any work (no database, no store is touched)."""
    from lsops_lib.cli import main

    limited = [
        path
        for path, command in _commands(main)
        if any("--limit" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert {("reports",), ("db", "size"), ("db", "queries")} <= set(limited)
    env = {
        "LSOPS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "LSOPS_DATA": str(tmp_path),
    }
    for path in limited:
        for value in ("0", "-1"):
            result = CliRunner().invoke(main, [*path, "--limit", value], env=env)
            lines = result.output.strip().splitlines()
            assert result.exit_code == 2, (path, value, result.output)
            assert len(lines) == 1 and "--limit" in lines[0], (path, lines)
    # the latest indexing failures: 0 shows none, below that is bad usage
    result = CliRunner().invoke(main, ["index-stats", "--failures", "-1"], env=env)
    assert result.exit_code == 2 and "--failures" in result.output, result.output
