"""journald, QA pass 19: a cursor that no longer seeks (journal rotated or vacuumed), a
MESSAGE over 4 KiB (null without `--all`) or repeated (an array), the service's own token in
its log, `-- No entries --` with exit 1, a journal_command with arguments, a first read too
long for one collection. A journalctl stand-in that behaves as systemd's does."""

from __future__ import annotations

import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lsops_lib.config import load_settings
from lsops_lib.exceptions import ConfigError
from lsops_lib.sources import collect_sources, logs
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.settings import LogSettings, SourceSettings, source_settings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log, journal_record

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)

# systemd's journalctl, as far as lsops uses it: -u, -o json, --all (else a field over 4096
# bytes is null), --after-cursor=C (a cursor of another seqnum id: "Failed to seek to
# cursor", exit 1), --since=@EPOCH, "-- No entries --" and exit 1 when nothing is new
# (systemd 247); $FJ_SLEEP: sleep that long after each record
JOURNALCTL = r"""
import json, os, sys, time
folder = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(folder, "calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\n")
records = [json.loads(l) for l in open(os.path.join(folder, "journal.jsonl"))]
after = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
since = next((a.split("=@", 1)[1] for a in args if a.startswith("--since=@")), None)
if after is not None:
    if after.split(";")[0] != records[0]["__CURSOR"].split(";")[0] if records else True:
        sys.stderr.write("Failed to seek to cursor: Invalid argument\n")
        sys.exit(1)
    i = int(after.split(";")[1][2:], 16)
    records = [r for r in records if int(r["__CURSOR"].split(";")[1][2:], 16) > i]
if since is not None:
    records = [r for r in records if int(r["__REALTIME_TIMESTAMP"]) >= int(since) * 1_000_000]
if not records and os.environ.get("FJ_EMPTY") == "247":
    print("-- No entries --")
    sys.exit(1)
for r in records:
    if "--all" not in args:
        r = {k: (None if isinstance(v, str) and len(v.encode()) > 4096 else v) for k, v in r.items()}
    sys.stdout.write(json.dumps(r) + "\n")
    sys.stdout.flush()
    time.sleep(float(os.environ.get("FJ_SLEEP", "0")))
"""


def _journalctl(folder: Path, records: list[dict]) -> Path:
    (folder / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    script = folder / "journalctl"
    if not script.exists():
        script.write_text(f"#!{sys.executable}\n{JOURNALCTL}")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _record(n: int, ts: datetime, message: object, priority: int = 6, seq: str = "0b1c") -> dict:
    r = journal_record(n, ts, message, priority)
    r["__CURSOR"] = f"s={seq};i={n:x};b=4d1c;m={n:x}"
    return r


def _settings(script: Path | str, **kw: object) -> SourceSettings:
    return SourceSettings(
        logs=LogSettings(journal_unit="longsang-api", journal_command=str(script), **kw)
    )  # type: ignore[arg-type]


def _texts(store: Store) -> list[str]:
    return list(tables.log_lines(store, "default", None, None)["text"])


def test_a_cursor_that_no_longer_seeks_reads_again_from_the_last_instant_stored(
    sqlite_store: Store, tmp_path: Path
) -> None:
    old = [
        _record(n, T0 + timedelta(seconds=n), f"GET /api/projects/{n} 200 12ms") for n in (1, 2, 3)
    ]
    script = _journalctl(tmp_path, old)
    assert collect_logs(sqlite_store, _settings(script), "default") == 3
    (state,) = tables.file_states(sqlite_store, "default")
    assert state.last_ts == int((T0 + timedelta(seconds=3)).timestamp() * 1000)
    # vacuumed and rotated: a new seqnum id, the first record gone, two new ones (one in the
    # same second as the last one read)
    new = [
        _record(2, T0 + timedelta(seconds=2), "GET /api/projects/2 200 12ms", seq="77aa"),
        _record(3, T0 + timedelta(seconds=3), "GET /api/projects/3 200 12ms", seq="77aa"),
        _record(
            4,
            T0 + timedelta(seconds=3, milliseconds=400),
            "Database query failed #1",
            3,
            seq="77aa",
        ),
        _record(5, T0 + timedelta(seconds=9), "Database query failed #2", 3, seq="77aa"),
    ]
    _journalctl(tmp_path, new)
    (result,) = collect_sources(sqlite_store, _settings(script), target="default")
    assert result.ok and result.items == 2, result
    assert "no longer seeks" in str(result.note) and "1 record already stored" in str(result.note)
    assert "2026-10-16 08:00:03 UTC" in str(result.note)
    assert _texts(sqlite_store) == [f"GET /api/projects/{n} 200 12ms" for n in (1, 2, 3)] + [
        "Database query failed #1",
        "Database query failed #2",
    ]
    assert collect_logs(sqlite_store, _settings(script), "default") == 0  # the new cursor seeks
    (state,) = tables.file_states(sqlite_store, "default")
    assert state.cursor == new[-1]["__CURSOR"]
    assert state.last_ts == int((T0 + timedelta(seconds=9)).timestamp() * 1000)


def test_a_message_over_4_kib_or_repeated_is_an_entry_of_its_own(
    sqlite_store: Store, tmp_path: Path
) -> None:
    big = "FATAL: " + "x" * 5000
    script = _journalctl(
        tmp_path,
        [
            _record(1, T0, "Database query failed: connect ECONNREFUSED 127.0.0.1:5432", 3),
            _record(2, T0 + timedelta(seconds=1), big, 2),
            _record(3, T0 + timedelta(seconds=2), ["retrying", "in 5 s"], 4),
        ],
    )
    assert collect_logs(sqlite_store, _settings(script), "default") == 3
    lines = tables.log_lines(sqlite_store, "default", None, None)
    assert list(lines["level"]) == ["error", "fatal", "warning"]
    assert lines["text"][1].startswith("FATAL: xxxx") and len(lines["text"][1]) > 4000
    assert lines["text"][2] == "retrying\nin 5 s"
    # a null MESSAGE (a journalctl run without --all) is an entry all the same
    batch = logs.Batch()
    (tmp_path / "journal.jsonl").write_text(json.dumps(_record(4, T0, None, 2)) + "\n")
    logs.read_journal("longsang-api", None, batch, command=str(script))
    assert [(e.level, e.text) for e in batch.entries] == [("fatal", logs.NULL_MESSAGE)]


def test_the_api_token_in_the_service_log_is_never_stored(
    sqlite_store: Store, tmp_path: Path
) -> None:
    token = "tok-SECRET-never-stored-123"
    config = tmp_path / "lsops.toml"
    config.write_text(
        f'[logs]\npaths = ["{tmp_path}/api-*.log"]\njournal_unit = "longsang-api"\n'
        f'journal_command = "{tmp_path}/journalctl"\n'
    )
    settings = load_settings(config, env={"LSOPS_API_TOKEN": token})
    said = f"auth failed: Authorization: Bearer {token} rejected"
    _journalctl(tmp_path, [_record(1, T0, said, 3)])
    log = Pm2Log(tmp_path)
    log.write(f"❌ Express Error: bad token {token}", T0)
    sources = source_settings(settings)
    assert collect_logs(sqlite_store, sources, "default") == 2
    texts = _texts(sqlite_store)
    assert sorted(texts) == sorted(
        ["auth failed: Authorization: Bearer *** rejected", "❌ Express Error: bad token ***"]
    )
    dump = "\n".join(tables.patterns(sqlite_store, "default").values()) + "\n".join(texts)
    assert token not in dump


def test_no_entries_with_exit_1_is_nothing_new_and_failures_say_why(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _journalctl(tmp_path, [_record(1, T0, "🚀 listening 3001")])
    assert collect_logs(sqlite_store, _settings(script), "default") == 1
    monkeypatch.setenv("FJ_EMPTY", "247")
    (result,) = collect_sources(sqlite_store, _settings(script), target="default")
    assert result.ok and result.items == 0, result
    # a failure with nothing on stderr quotes stdout; a signal is named
    quiet = tmp_path / "quiet"
    quiet.write_text("#!/bin/sh\necho 'Unknown output format json'\nexit 1\n")
    killed = tmp_path / "killed"
    killed.write_text("#!/bin/sh\nkill -9 $$\n")
    for path, why in ((quiet, "failed: Unknown output format json"), (killed, "killed by SIGKILL")):
        path.chmod(0o755)
        (result,) = collect_sources(sqlite_store, _settings(path), target="default")
        assert not result.ok and why in str(result.error), result


def test_journal_command_is_split_and_checked(sqlite_store: Store, tmp_path: Path) -> None:
    script = _journalctl(tmp_path, [_record(1, T0, "🚀 listening 3001")])
    command = f"{sys.executable} {script}"  # as "sudo -n journalctl"
    assert collect_logs(sqlite_store, _settings(command), "default") == 1
    assert json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])[:2] == [
        "-u",
        "longsang-api",
    ]
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\n")
    (result,) = collect_sources(sqlite_store, _settings(plain), target="default")
    assert result.error == f"logs: journald: cannot run {plain}: Permission denied"
    (result,) = collect_sources(sqlite_store, _settings(tmp_path / "nope"), target="default")
    assert "not found (set [logs] journal_command)" in str(result.error)
    for value, name in (('["a", "b"]', "journal_unit"), ("5", "journal_unit")):
        config = tmp_path / "lsops.toml"
        config.write_text(f"[logs]\n{name} = {value}\n")
        with pytest.raises(
            ConfigError, match=rf"^lsops.toml: \[logs\] {name} must be one unit name"
        ):
            source_settings(load_settings(config, env={}))
    config.write_text('[logs]\njournal_unit = "u"\njournal_command = "sudo \'journalctl"\n')
    with pytest.raises(ConfigError, match=r"^lsops.toml: \[logs\] journal_command"):
        source_settings(load_settings(config, env={}))


def test_a_long_journal_is_read_a_part_at_a_time(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        _record(n, T0 + timedelta(seconds=n), f"GET /api/projects/{n} 200 12ms")
        for n in range(1, 6)
    ]
    script = _journalctl(tmp_path, records)
    monkeypatch.setattr(logs, "MAX_JOURNAL_RECORDS", 3)
    (result,) = collect_sources(sqlite_store, _settings(script), target="default")
    assert result.ok and result.items == 3 and "the rest next time" in str(result.note), result
    assert collect_logs(sqlite_store, _settings(script), "default") == 2
    assert _texts(sqlite_store) == [r["MESSAGE"] for r in records]
    # a journal slower than the time allowed: what was read in time is kept
    more = [
        _record(n, T0 + timedelta(seconds=n), f"GET /api/projects/{n} 200 12ms")
        for n in range(6, 10)
    ]
    _journalctl(tmp_path, records + more)
    monkeypatch.setattr(logs, "JOURNAL_TIMEOUT_S", 1.5)
    monkeypatch.setenv("FJ_SLEEP", "1")
    assert 1 <= collect_logs(sqlite_store, _settings(script), "default") < 4
    monkeypatch.setenv("FJ_SLEEP", "0")
    collect_logs(sqlite_store, _settings(script), "default")
    assert _texts(sqlite_store) == [r["MESSAGE"] for r in records + more]
    assert os.path.exists(script)
