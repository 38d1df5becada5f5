"""The service's logs (issue 10): pm2 log files in the real format, rotation and truncation
between collections, a writer appending and rotating while collection runs, journald's
JSON export, hostile lines; the patterns of `lsops logs` against the writer's ledger."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.sources import collect_sources, log_patterns, logs, new_error_log_patterns
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log, fake_journalctl, journal_record

pytestmark = pytest.mark.timeout(120)
SAMPLES = Path(__file__).parent / "data" / "samples"
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)


def _settings(folder: Path, **kw: object) -> SourceSettings:
    return SourceSettings(logs=LogSettings(paths=(str(folder / "api-*.log*"),), **kw))  # type: ignore[arg-type]


def _stored(store: Store) -> list[str]:
    return sorted(tables.log_lines(store, "default", None, None)["text"])


def _truth(*logs: Pm2Log) -> list[str]:
    return sorted(w.text for log in logs for w in log.ledger)


def test_the_reference_pm2_files_become_entries_with_their_stack_traces(
    sqlite_store: Store, tmp_path: Path
) -> None:
    shutil.copy(SAMPLES / "pm2-api-error.log", tmp_path / "api-error.log")
    shutil.copy(SAMPLES / "pm2-api-out.log", tmp_path / "api-out.log")
    # the sample (wc -l): 48 error lines = 2 x (handler line + 11-line stack, its second
    # write) + 2 warnings + 2 x 11-line console.error(new Error); 4 out lines
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 2 + 2 + 2 + 4
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 0  # nothing twice
    lines = tables.log_lines(sqlite_store, "default", None, None)
    assert int(lines["lines"].sum()) == 48 + 4  # every physical line kept once
    err = lines[lines["stream"] == "error"]
    assert Counter(err["level"]) == {"error": 4, "warning": 2}
    handled = err[
        err["text"].str.startswith("❌ Express Error: Database query timeout after 8712ms")
    ]
    assert len(handled) == 1 and handled["lines"].iloc[0] == 1 + 11
    assert handled["text"].iloc[0].split("\n")[1:3] == [
        "Error: Database query timeout after 8712ms",
        "    at /srv/longsang/api/pm2app.js:3:44",
    ]
    assert not err["text"].str.startswith("Error: Database query timeout").any()
    # 14:17:53 +07:00 is 07:17:53 UTC; nothing estimated (pm2 stamps every line)
    assert set(err["ts"]) == {datetime(2026, 11, 30, 7, 17, 53, tzinfo=UTC)}
    assert not lines["estimated"].any()


def test_the_express_handler_line_and_its_stack_are_one_entry_and_only_they(
    sqlite_store: Store, tmp_path: Path
) -> None:
    log = Pm2Log(tmp_path)
    log.write("❌ Express Error: Cannot read properties of undefined", T0)
    log.write("TypeError: Cannot read properties of undefined", T0, frames=2)  # its stack
    log.write("❌ Express Error: timeout", T0 + timedelta(seconds=5))
    log.write("Error: something else", T0 + timedelta(seconds=5), frames=1)  # another error
    log.write("❌ Express Error: late", T0 + timedelta(seconds=10))
    log.write("Error: late", T0 + timedelta(seconds=12))  # two seconds on: not its write
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    texts = [t.split("\n") for t in tables.log_lines(sqlite_store, "default", None, None)["text"]]
    assert [t[0] for t in texts] == [
        "❌ Express Error: Cannot read properties of undefined",
        "❌ Express Error: timeout",
        "Error: something else",
        "❌ Express Error: late",
        "Error: late",
    ]
    assert len(texts[0]) == 1 + 1 + 2  # the handler line, the stack's head, two frames
    # journald: the handler's two writes are two records, one entry all the same
    records = [
        journal_record(1, T0, "❌ Express Error: boom", priority=3),
        journal_record(2, T0, "Error: boom", priority=3),
        journal_record(3, T0, "    at handler (/srv/app.js:1:1)", priority=3),
    ]
    script = fake_journalctl(tmp_path, records)
    settings = SourceSettings(logs=LogSettings(journal_unit="u", journal_command=str(script)))
    assert collect_logs(sqlite_store, settings, "default") == 1
    stored = tables.log_lines(sqlite_store, "default", None, None)["text"]
    assert [t for t in stored if "boom" in t] == [
        "❌ Express Error: boom\nError: boom\n    at handler (/srv/app.js:1:1)"
    ]


def test_rotation_and_truncation_between_collections_lose_and_double_nothing(
    store: Store, tmp_path: Path
) -> None:
    log = Pm2Log(tmp_path)
    settings = _settings(tmp_path)
    n = 0

    def burst(count: int = 3) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            log.write(
                f"❌ Express Error: request {n} failed after {n * 7}ms",
                T0 + timedelta(seconds=n),
                frames=n % 3,
            )

    def collect() -> None:
        collect_logs(store, settings, "default")
        assert _stored(store) == _truth(log)

    burst()
    collect()
    burst()
    log.rotate_rename()  # api-error.log -> api-error__2026-10-17_00-00-00.log, unread lines in it
    burst()
    collect()
    burst()
    log.rotate_copytruncate()  # pm2-logrotate: copy, then truncate the original
    burst()
    collect()
    burst()
    log.rotate_copytruncate(gz=True)  # ... compressed
    burst()
    collect()
    log.truncate()  # by hand, after everything was read
    burst()
    collect()
    # a half-written last line is left for next time, then read once
    with open(log.path, "ab") as fh:
        fh.write(b"2026-10-16 15:30:00 +07:00: \xe2\x9d\x8c Express Error: half")
    collect()
    with open(log.path, "ab") as fh:
        fh.write(b" written\n")
    log.ledger.append(type(log.ledger[0])(T0, "❌ Express Error: half written"))
    collect()
    assert {p.name for p in tmp_path.glob("api-error*")} == {
        "api-error.log",
        "api-error__2026-10-17_00-00-00.log",
        "api-error__2026-10-18_00-00-00.log",
        "api-error__2026-10-19_00-00-00.log.gz",
    }


def test_a_writer_appending_and_rotating_while_collection_runs_loses_and_doubles_nothing(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """The writer appends (its last line often half-written), and rotates by rename, by
    copy-then-truncate and gzip, while collections run back to back; the store then holds
    exactly the writer's ledger, and each planted pattern's count equals its lines."""
    err, out = Pm2Log(tmp_path, "api-error"), Pm2Log(tmp_path, "api-out")
    settings = _settings(tmp_path)
    stop = threading.Event()
    rng = random.Random(10)
    templates = {
        "timeout": "❌ Express Error: Database query timeout after {n}ms",
        "refused": "Error: connect ECONNREFUSED 127.0.0.1:{n}",
        "context": "✅ Context retrieved in {n}ms for conversation {n}",
    }
    planted: Counter[str] = Counter()
    errors: list[BaseException] = []
    started = threading.Event()  # a log file exists: before it, "no file matches" is right

    def writer() -> None:
        try:
            k = 0
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and not stop.is_set():
                k += 1
                kind = rng.choice(list(templates))
                log = out if kind == "context" else err
                log.write(
                    templates[kind].format(n=1000 + k),
                    T0 + timedelta(seconds=k),
                    frames=3 if kind == "refused" else 0,
                    split=k % 2 == 0,
                )
                planted[kind] += 1
                started.set()
                if k % 40 == 0:
                    choice = rng.choice(["rename", "copy", "gz"])
                    target = rng.choice([err, out])
                    if choice == "rename":
                        target.rotate_rename()
                    else:
                        target.rotate_copytruncate(gz=choice == "gz")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(10)
    rounds = 0
    while thread.is_alive():
        collect_logs(sqlite_store, settings, "default")
        rounds += 1
    thread.join()
    collect_logs(sqlite_store, settings, "default")
    assert not errors
    assert rounds >= 3 and err.rotations + out.rotations >= 2
    assert _stored(sqlite_store) == _truth(err, out)

    found = log_patterns(sqlite_store, "default", T0, T0 + timedelta(days=1))
    by_template = {p["template"]: p["count"] for p in found}
    assert by_template["❌ Express Error: Database query timeout after <NUM>"] == planted["timeout"]
    assert by_template["Error: connect ECONNREFUSED <IP>"] == planted["refused"]
    assert by_template["✅ Context retrieved in <NUM> for conversation <NUM>"] == planted["context"]


def test_a_stack_trace_split_across_collections_stays_one_entry(
    store: Store, tmp_path: Path
) -> None:
    log = Pm2Log(tmp_path)
    log.path.write_text(f"{_pm2(T0)}: Error: boom\n")
    collect_logs(store, _settings(tmp_path), "default")
    with open(log.path, "a") as fh:
        fh.write(f"{_pm2(T0)}:     at a (/x.js:1:1)\n{_pm2(T0)}:     at b (/x.js:2:2)\n")
    collect_logs(store, _settings(tmp_path), "default")
    lines = tables.log_lines(store, "default", None, None)
    assert list(lines["text"]) == ["Error: boom\n    at a (/x.js:1:1)\n    at b (/x.js:2:2)"]
    assert list(lines["lines"]) == [3]


def _pm2(ts: datetime) -> str:
    from tests.fixtures.sources import stamp

    return stamp(ts)


def test_lines_without_a_stamp_are_placed_by_their_neighbours_or_the_file_time(
    sqlite_store: Store, tmp_path: Path
) -> None:
    (tmp_path / "api-out.log").write_text(
        "server starting\n"  # before any stamped line: the next stamped one
        f"{_pm2(T0)}: 🚀 listening 3001\n"
        "plain console.log without a stamp\n"  # after: the one before
    )
    bare = tmp_path / "api-error.log"
    bare.write_text("Error: no stamp at all\n")
    mtime = T0 + timedelta(hours=5)
    os.utime(bare, (mtime.timestamp(), mtime.timestamp()))
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    lines = tables.log_lines(sqlite_store, "default", None, None)
    got = {r.text: (r.ts, bool(r.estimated)) for r in lines.itertuples()}
    assert got == {
        "server starting": (T0, True),
        "🚀 listening 3001": (T0, False),
        "plain console.log without a stamp": (T0, True),
        "Error: no stamp at all": (mtime, True),
    }


def test_a_1_mb_line_and_invalid_utf8_are_handled(sqlite_store: Store, tmp_path: Path) -> None:
    big = "x" * (1024 * 1024)
    (tmp_path / "api-error.log").write_bytes(
        f"{_pm2(T0)}: ❌ Express Error: {big}\n".encode()
        + f"{_pm2(T0)}: bad bytes \xff\xfe here\n".encode("latin-1").replace(
            _pm2(T0).encode("latin-1"), _pm2(T0).encode()
        )
        + f"{_pm2(T0)}: after them\n".encode()
    )
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    texts = list(tables.log_lines(sqlite_store, "default", None, None)["text"])
    assert len(texts) == 3
    assert texts[0].startswith("❌ Express Error: xxx") and "more characters not kept" in texts[0]
    assert len(texts[0]) < tables.TEXT_LIMIT + 100
    assert texts[1] == "bad bytes \ufffd\ufffd here" and texts[2] == "after them"


def test_journald_json_export_with_its_cursor(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        journal_record(1, T0, "🚀 listening 3001"),
        journal_record(
            2, T0 + timedelta(seconds=1), "Error: connect ECONNREFUSED 127.0.0.1:5432", 3
        ),
        journal_record(
            3, T0 + timedelta(seconds=1), "    at TCPConnectWrap.afterConnect (node:net:1555:16)", 3
        ),
        journal_record(4, T0 + timedelta(seconds=2), [0xE2, 0x9D, 0x8C, 0x20, 0xFF, 0x21], 3),
        journal_record(5, T0 + timedelta(seconds=3), None),
    ]
    script = fake_journalctl(tmp_path, records[:3])
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    settings = SourceSettings(logs=LogSettings(journal_unit="longsang-api"))
    assert collect_logs(store, settings, "default") == 2
    fake_journalctl(tmp_path, records)  # two more entries arrive
    # a null MESSAGE is journalctl hiding a field over 4 KiB (without --all): an entry of
    # its own, with its own priority, never glued to the entry before it
    assert collect_logs(store, settings, "default") == 2
    assert collect_logs(store, settings, "default") == 0
    lines = tables.log_lines(store, "default", None, None)
    assert list(lines["text"]) == [
        "🚀 listening 3001",
        "Error: connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap.afterConnect (node:net:1555:16)",
        "❌ \ufffd!",
        logs.NULL_MESSAGE,
    ]
    assert list(lines["level"])[:3] == ["info", "error", "error"]
    assert list(lines["ts"])[1] == T0 + timedelta(seconds=1)
    assert script.exists()


def test_a_failing_journalctl_fails_the_logs_source_alone(
    sqlite_store: Store, tmp_path: Path
) -> None:
    log = Pm2Log(tmp_path)
    log.write("❌ Express Error: x", T0)
    settings = SourceSettings(
        logs=LogSettings(
            paths=(str(tmp_path / "api-*.log"),),
            journal_unit="longsang-api",
            journal_command=str(tmp_path / "no-such-journalctl"),
        )
    )
    (result,) = collect_sources(sqlite_store, settings, target="default")
    assert not result.ok and "journald" in str(result.error) and "\n" not in str(result.error)
    runs = tables.source_runs(sqlite_store, "default", None, None)
    assert list(runs["ok"]) == [False]


def test_a_missing_log_folder_fails_the_logs_source(sqlite_store: Store, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "no-such-folder")
    (result,) = collect_sources(sqlite_store, settings, target="default")
    assert not result.ok
    assert (
        result.error
        == f"logs: no folder {tmp_path / 'no-such-folder'} (for {settings.logs.paths[0]})"
    )
    # a folder without any file yet (pm2 not started) is no failure
    (tmp_path / "empty").mkdir()
    (result,) = collect_sources(sqlite_store, _settings(tmp_path / "empty"), target="default")
    assert result.ok and result.items == 0


READ_AS_USER = """
import json, sys
from lsops_lib.sources import collect_sources
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
settings = SourceSettings(logs=LogSettings(paths=(sys.argv[2],)))
with Store(sys.argv[1]) as store:
    (result,) = collect_sources(store, settings, target="default")
print(json.dumps(result.as_dict()))
"""


def test_an_unreadable_log_file_fails_the_source_and_the_others_are_stored(tmp_path: Path) -> None:
    Pm2Log(tmp_path, "api-out").write("✅ Context retrieved in 40ms", T0)
    Pm2Log(tmp_path, "api-error").write("❌ Express Error: boom", T0)
    (tmp_path / "api-error.log").chmod(0)
    # root reads any file: the collection runs without the capabilities that allow it
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: every file is readable")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    argv = [sys.executable, "-c", READ_AS_USER, url, str(tmp_path / "api-*.log*")]
    done = subprocess.run(
        drop + argv if os.geteuid() == 0 else argv, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert result["error"] == (
        f"logs: cannot read {tmp_path / 'api-error.log'}: Permission denied (1 entry stored)"
    )
    with Store(url) as store:
        assert _stored(store) == ["✅ Context retrieved in 40ms"]


def test_lsops_logs_patterns_baseline_new_and_around(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    """Counts against hand-planted lines: a pattern seen the day before (baseline 2, not
    new), a new one (3 in the window), an info one; the window is 24 h."""
    log, out = Pm2Log(tmp_path, "api-error"), Pm2Log(tmp_path, "api-out")
    day = timedelta(days=1)
    for k in range(2):
        log.write(
            f"❌ Express Error: Database query timeout after {100 + k}ms",
            T0 - day + timedelta(minutes=k),
        )
    for k in range(4):
        log.write(
            f"❌ Express Error: Database query timeout after {200 + k}ms", T0 + timedelta(minutes=k)
        )
    for k in range(3):
        log.write(
            f"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory {k}",
            T0 + timedelta(hours=2, seconds=k),
            frames=2,
        )
    out.write("✅ Context retrieved in 297ms", T0 + timedelta(hours=3))
    collect_logs(sqlite_store, _settings(tmp_path), "default")

    env = {
        **lsops_env,
        "LSOPS_STORE": sqlite_store._url,
        "LSOPS_LOGS": str(tmp_path / "api-*.log*"),
    }
    args = ["logs", "--since", T0.isoformat(), "--until", (T0 + day).isoformat(), "--json"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    got = {
        p["template"]: (p["level"], p["count"], p["baseline"], p["new"]) for p in doc["patterns"]
    }
    assert got == {
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory <NUM>": (
            "fatal",
            3,
            0,
            True,
        ),
        "❌ Express Error: Database query timeout after <NUM>": ("error", 4, 2, False),
        "✅ Context retrieved in <NUM>": ("info", 1, 0, True),
    }
    fatal = doc["patterns"][0]
    assert fatal["example"].count("\n") == 2 and fatal["first_seen"].startswith(
        "2026-10-16T10:00:00"
    )

    errors_only = CliRunner().invoke(main, [*args, "--level", "error"], env=env)
    assert {p["level"] for p in json.loads(errors_only.stdout)["patterns"]} == {"fatal", "error"}
    grep = CliRunner().invoke(main, [*args, "--grep", "HEAP LIMIT"], env=env)
    assert [p["count"] for p in json.loads(grep.stdout)["patterns"]] == [3]

    around = CliRunner().invoke(
        main, ["logs", "--around", (T0 + timedelta(minutes=2)).isoformat(), "--json"], env=env
    )
    assert around.exit_code == 0, around.output
    assert [e["text"][-5:] for e in json.loads(around.stdout)["lines"]] == [
        "200ms",
        "201ms",
        "202ms",
        "203ms",
    ]
    text = CliRunner().invoke(main, args[:-1], env=env)
    assert text.exit_code == 0 and "FATAL ERROR" in text.stdout

    # for the alert rules: new error patterns in the window, with their exact counts
    new = new_error_log_patterns(sqlite_store, "default", T0, T0 + day)
    assert [(p["count"], p["first_seen"]) for p in new] == [(3, T0 + timedelta(hours=2))]
    assert new_error_log_patterns(sqlite_store, "default", T0 + timedelta(hours=3), T0 + day) == []


def test_a_rotated_gz_read_whole_is_not_decompressed_again(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsops_lib.sources import logs

    log = Pm2Log(tmp_path)
    for k in range(5):
        log.write(f"❌ Express Error: request {k} failed", T0 + timedelta(seconds=k))
    log.rotate_copytruncate(gz=True)
    log.write("❌ Express Error: after the rotation", T0 + timedelta(minutes=1))
    calls: list[int] = []
    real = logs._gunzip
    monkeypatch.setattr(logs, "_gunzip", lambda data: calls.append(1) or real(data))
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert calls == [1]
    log.write("❌ Express Error: later", T0 + timedelta(minutes=2))
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert calls == [1]  # the .gz kept its size: its state is carried, not read again
    assert _stored(sqlite_store) == _truth(log)
