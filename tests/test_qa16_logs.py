"""QA 16, the log and pm2 sources: ordinary lines that say "fatal" are not fatal; `lsops
logs --around T` shows the entries nearest to T and says how many of how many; a rotated
file's last line without a newline is read; pm2's `[PM2]` notices before jlist's JSON; a
store that does not exist is not created by `lsops logs`; the review counts restarts, not
rows; a line longer than MAX_READ does not block its file; a file none of whose lines
matches date_format is said."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib import present
from lsops_lib.cli import main
from lsops_lib.config import Thresholds
from lsops_lib.present import display
from lsops_lib.sources import logs
from lsops_lib.sources.checks import source_checks
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.pm2 import parse_jlist
from lsops_lib.sources.review import errors_review
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log, pm2_sample, stamp

pytestmark = pytest.mark.timeout(120)
JLIST = Path(__file__).parent / "data" / "samples" / "pm2-jlist.json"
T0 = datetime(2026, 10, 16, 2, 0, tzinfo=UTC)


def _settings(folder: Path) -> SourceSettings:
    return SourceSettings(logs=LogSettings(paths=(str(folder / "api-*.log*"),)))


def _levels(store: Store) -> dict[str, str]:
    lines = tables.log_lines(store, "default", None, None)
    return {
        text.split("\n")[0]: level
        for text, level in zip(lines["text"], lines["level"], strict=True)
    }


# --- 1. fatal: as Node, pm2 and Go print it -----------------------------------------------

INFO = [  # the explorer's lines, on the out stream
    "✅ [Sentry Poller] Fetched 3 issues (0 fatal)",
    "✅ Retrying non-fatal cache miss for key user:42",
    "✅ Queue drained, 0 unhandled jobs",
]
FATAL = [  # as Node 20, pm2 and Go print them
    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - "
    "JavaScript heap out of memory",
    "[UnhandledPromiseRejection: This error originated either by throwing inside of an "
    "async function without a catch block, or by rejecting a promise which was not handled "
    'with .catch(). The promise rejected with the reason "boom".] {',
    "(node:2968) UnhandledPromiseRejectionWarning: Error: connect ECONNREFUSED 127.0.0.1:5432",
    "Error [ERR_UNHANDLED_ERROR]: Unhandled error. ('boom')",
    "process uncaughtException: TypeError: Cannot read properties of undefined",
    "[PM2] FATAL app longsang-api exited",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "fatal error: concurrent map writes",
]


def test_info_lines_saying_fatal_are_not_fatal_and_node_fatal_lines_are(
    store: Store, tmp_path: Path
) -> None:
    out, err = Pm2Log(tmp_path, "api-out"), Pm2Log(tmp_path, "api-error")
    for k, message in enumerate(INFO):
        out.write(message, T0 + timedelta(seconds=k))
    for k, message in enumerate(FATAL):
        err.write(message, T0 + timedelta(minutes=1, seconds=k))
        if message.endswith("{"):  # Node prints the rejection's properties, then `}`
            err.write("  code: 'ERR_UNHANDLED_REJECTION'", T0 + timedelta(minutes=1, seconds=k))
            err.write("}", T0 + timedelta(minutes=1, seconds=k))
    collect_logs(store, _settings(tmp_path), "default")
    assert len(tables.log_lines(store, "default", None, None)) == len(INFO) + len(FATAL)
    levels = _levels(store)
    assert {m: levels[m] for m in INFO} == dict.fromkeys(INFO, "info")
    assert {m: levels[m] for m in FATAL} == dict.fromkeys(FATAL, "fatal")
    # the checklist's "No critical errors": the planted fatal lines, none of the info ones
    tables.record_source_run(store, "default", "logs", T0, ok=True, items=1, error=None)
    kw = {"target": "default", "sources": _settings(tmp_path)}
    checks = source_checks(store, T0, T0 + timedelta(hours=1), Thresholds(), **kw)
    assert checks["critical_errors"].value == len(FATAL)
    quiet = source_checks(store, T0, T0 + timedelta(seconds=30), Thresholds(), **kw)
    assert (quiet["critical_errors"].status, quiet["critical_errors"].value) == ("pass", 0)


# --- 2. lsops logs --around T: the entries nearest to T, and how many of how many ---------


def test_around_shows_the_entries_nearest_to_t_and_says_how_many_of_how_many(
    sqlite_store: Store, tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    at = T0 + timedelta(minutes=5)
    with open(tmp_path / "api-out.log", "w") as fh:  # 10 entries a second from T0 + 10 s
        for i in range(3000):
            fh.write(f"{stamp(T0 + timedelta(seconds=10 + i // 10))}: ✅ request {i}\n")
    Pm2Log(tmp_path).write("FATAL ERROR: heap out of memory at T", at)
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    env = {**lsops_env, "LSOPS_STORE": sqlite_store._url, "LSOPS_LOGS": str(tmp_path / "*.log")}
    done = CliRunner().invoke(main, ["logs", "--around", at.isoformat(), "--json"], env=env)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    # the window T-5min..T+5min holds all 3,001 (requests 02:00:10..02:05:09, the fatal
    # entry at T = 02:05:00): the 2,000 shown are the nearest to T, computed here by hand
    stamps = [datetime.fromisoformat(e["ts"]) for e in doc["lines"]]
    assert (doc["shown"], doc["total"], doc["truncated"]) == (2000, 3001, True)
    assert len(doc["lines"]) == 2000 and stamps == sorted(stamps)  # oldest first
    assert any(e["text"] == "FATAL ERROR: heap out of memory at T" for e in doc["lines"])
    assert stamps[-1] == T0 + timedelta(seconds=10 + 2999 // 10)  # the newest are there
    written = [at] + [T0 + timedelta(seconds=10 + i // 10) for i in range(3000)]
    nearest = sorted(abs(s - at) for s in written)[:2000]
    assert sorted(abs(s - at) for s in stamps) == nearest
    text = CliRunner().invoke(main, ["logs", "--around", at.isoformat()], env=env)
    assert text.exit_code == 0 and "FATAL ERROR: heap out of memory at T" in text.stdout
    assert "shown: the 2,000 entries nearest to 2026-10-16 02:05:00 UTC of 3,001 entries" in (
        " ".join(text.stdout.split())
    )
    # fewer than the limit: all of them, nothing said
    few = CliRunner().invoke(
        main, ["logs", "--around", at.isoformat(), "--grep", "FATAL", "--json"], env=env
    )
    doc = json.loads(few.stdout)
    assert (doc["shown"], doc["total"], doc["truncated"]) == (1, 1, False)
    assert (
        "shown:" not in CliRunner().invoke(main, ["logs", "--around", "2026-10-17"], env=env).stdout
    )


# --- 3. a rotated file's last line without a newline --------------------------------------

CRASH = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"


def test_the_last_line_of_a_rotated_file_without_a_newline_is_read(
    sqlite_store: Store, tmp_path: Path
) -> None:
    live = tmp_path / "api-error.log"
    live.write_text(f"{stamp(T0)}: ❌ Express Error: first\n{stamp(T0)}: ✅ ok 1\n")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    # the crash: a last line without its newline, then copy-then-truncate and gzip
    with open(live, "a") as fh:
        fh.write(f"{stamp(T0 + timedelta(minutes=5))}: {CRASH}")
    rotated = tmp_path / "api-error__2026-10-16_09-10-00.log.gz"
    rotated.write_bytes(gzip.compress(live.read_bytes()))
    live.write_text(f"{stamp(T0 + timedelta(minutes=10))}: 🚀 listening 3001\n")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert _levels(sqlite_store) == {
        "❌ Express Error: first": "error",
        "✅ ok 1": "error",
        CRASH: "fatal",
        "🚀 listening 3001": "error",
    }
    # a live file's half-written last line still waits for its newline
    with open(live, "a") as fh:
        fh.write(f"{stamp(T0 + timedelta(minutes=11))}: half")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert "half" not in _levels(sqlite_store)
    with open(live, "a") as fh:
        fh.write("-written\n")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert "half-written" in _levels(sqlite_store)


def test_a_renamed_rotation_left_alone_gives_its_last_line(
    sqlite_store: Store, tmp_path: Path
) -> None:
    log = Pm2Log(tmp_path)
    log.write("❌ Express Error: before", T0)
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    with open(log.path, "a") as fh:
        fh.write(f"{stamp(T0 + timedelta(minutes=1))}: {CRASH}")
    renamed = log.rotate_rename()
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    assert CRASH not in _levels(sqlite_store)  # just renamed: it may still grow
    old = time.time() - logs.FINAL_AFTER_S - 1
    os.utime(renamed, (old, old))
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    texts = list(tables.log_lines(sqlite_store, "default", None, None)["text"])
    assert texts == ["❌ Express Error: before", CRASH]


# --- 4. pm2's notices before jlist's JSON ---------------------------------------------------


@pytest.mark.parametrize(
    "notices",
    [
        "[PM2][WARN] Current process list is not synchronized with saved list. "
        "Type 'pm2 save' to synchronize.\n",
        "[PM2] Spawning PM2 daemon with pm2_home=/root/.pm2\n[PM2] PM2 Successfully daemonized\n",
        "",
    ],
)
def test_pm2_notices_before_the_jlist_array_are_skipped(notices: str) -> None:
    text = JLIST.read_text()
    now = datetime.fromtimestamp(json.loads(text)[0]["pm2_env"]["pm_uptime"] / 1000 + 60, UTC)
    (proc,) = parse_jlist(notices + text, "longsang-api", now)
    assert (proc["pid"], proc["restarts"], proc["status"]) == (2968, 1, "online")


# --- 5. lsops logs never creates a store ----------------------------------------------------


def test_lsops_logs_on_a_store_that_does_not_exist_says_so_and_creates_nothing(
    tmp_path: Path, lsops_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'sub' / 'x.sqlite'}"
    env = {**lsops_env, "LSOPS_STORE": url}
    for args in (["logs", "--window", "1h"], ["logs", "--around", "2026-10-16T02:05Z"]):
        done = CliRunner().invoke(main, args, env=env)
        assert done.exit_code == 1
        assert done.output.strip().splitlines() == [
            f"lsops: the store {url} does not exist: run 'lsops collect' first"
        ]
    assert not (tmp_path / "no").exists()


# --- 6. the review counts restarts, not rows ------------------------------------------------


def test_the_review_counts_the_unseen_restarts_not_the_rows(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj, **_kw: shown.append(str(obj.data)))
    present.begin()
    oct1 = datetime(2026, 10, 1, tzinfo=UTC)
    for k, restarts in enumerate([0, 0, 3, 3, 4]):  # 3 in one interval, then 1
        tables.record_pm2(
            sqlite_store,
            "default",
            oct1 + timedelta(days=9, minutes=5 * k),
            [pm2_sample(1.0, restarts)],
        )
    tables.record_source_run(sqlite_store, "default", "pm2", oct1, ok=True, items=1, error=None)
    review = errors_review(sqlite_store, oct1, datetime(2026, 11, 1, tzinfo=UTC), target="default")
    present.errors.show_errors(review)
    page = "".join(shown)
    facts = dict(re.findall(r"<th[^>]*>([^<]*)</th><td[^>]*>([^<]*)</td>", page))
    # no scrape at all saw them: all 4 unseen (2 rows: 3 restarts, then 1)
    assert len(review.unseen_restarts) == 2
    assert facts["Restarts (pm2&#x27;s counter)"] == "4"
    assert facts["Of them not seen by the scrapes"] == "4"


# --- 7. a line longer than MAX_READ ---------------------------------------------------------


def test_a_line_longer_than_max_read_is_cut_and_the_lines_after_it_are_read(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "MAX_READ", 4096)
    log = Pm2Log(tmp_path)
    log.write("✅ before", T0)
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    log.write("❌ Express Error: HUGE " + "y" * 3 * 4096, T0 + timedelta(seconds=1))
    log.write("❌ Express Error: after the huge line", T0 + timedelta(seconds=2))
    for _ in range(5):
        collect_logs(sqlite_store, _settings(tmp_path), "default")
    texts = list(tables.log_lines(sqlite_store, "default", None, None)["text"])
    assert len(texts) == 3
    assert texts[0] == "✅ before" and texts[2] == "❌ Express Error: after the huge line"
    assert texts[1].startswith("❌ Express Error: HUGE yyy") and set(texts[1][22:]) == {"y"}
    assert len(texts[1].encode()) == 4096 - len(stamp(T0)) - 2  # cut at MAX_READ
    # a long line still being written: cut, and its rest skipped as it comes
    with open(log.path, "a") as fh:
        fh.write(f"{stamp(T0 + timedelta(seconds=3))}: ❌ Express Error: BIG " + "z" * 5000)
    collect_logs(sqlite_store, _settings(tmp_path), "default")
    with open(log.path, "a") as fh:
        fh.write("z" * 9000 + "\n")
    log.write("✅ the next one", T0 + timedelta(seconds=4))
    for _ in range(3):  # its rest, 14,000 bytes less the 4,096 read: skipped 4,096 a time
        collect_logs(sqlite_store, _settings(tmp_path), "default")
    texts = list(tables.log_lines(sqlite_store, "default", None, None)["text"])
    assert [t[:26] for t in texts[3:]] == ["❌ Express Error: BIG zzzzz", "✅ the next one"]


# --- a date_format no line matches: said, not silent ------------------------------------------


def test_a_file_whose_lines_match_no_stamp_of_date_format_is_said(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """pm2 stamping ISO instants (log_date_format changed) while lsops expects its default:
    the entries are still stored, dated by the file's time, and the collection says why;
    a file whose lines carry the expected stamps gets no such note."""
    (tmp_path / "api-out.log").write_text(
        "".join(f"2026-10-16T09:0{i}:00.123+07:00: ✅ request {i}\n" for i in range(4))
    )
    (tmp_path / "api-error.log").write_text(f"{stamp(T0)}: ❌ Express Error: boom\n")
    notes: list[str] = []
    stored = collect_logs(sqlite_store, _settings(tmp_path), "default", notes=notes)
    assert stored == 5
    said = [n for n in notes if "date_format" in n]
    assert len(said) == 1, notes
    assert said[0].startswith("api-out.log: none of its 4 new lines starts with a stamp")
    assert "YYYY-MM-DD HH:mm:ss Z" in said[0]
    lines = tables.log_lines(sqlite_store, "default", None, None)
    assert lines["estimated"].sum() == 4  # dated by the file, and marked so
    # the next collection reads nothing new: nothing to say
    notes.clear()
    collect_logs(sqlite_store, _settings(tmp_path), "default", notes=notes)
    assert not [n for n in notes if "date_format" in n]


# --- 9. the review's pattern tables count entries, and say so -------------------------------


def test_the_review_pattern_tables_count_entries_not_physical_lines(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three errors of one pattern, each with a 4-line stack trace: 3 entries (15 physical
    lines); the column says entries."""
    err = Pm2Log(tmp_path, "api-error")
    for k in range(3):
        err.write(f"Error: upstream timeout after {k + 1} s", T0 + timedelta(minutes=k), frames=4)
    collect_logs(store, _settings(tmp_path), "default")
    tables.record_source_run(store, "default", "logs", T0, ok=True, items=3, error=None)
    assert sum(1 for _ in err.path.read_text().splitlines()) == 15
    shown: list[str] = []
    monkeypatch.setattr(display, "_display", lambda obj, **_kw: shown.append(str(obj.data)))
    present.begin()
    review = errors_review(store, T0, T0 + timedelta(hours=1), target="default")
    present.errors.show_errors(review)
    page = "".join(shown)
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    assert "entries" in heads and "lines" not in heads
    top = page[page.index("Top log patterns") :]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", top)
    assert "3" in cells and "15" not in cells


# --- 10. a source that fails is said to fail, not "is lsops collect running?" ---------------


def test_a_failing_source_is_said_to_fail_not_the_collector_asked_about(store: Store) -> None:
    for minutes, error in ((10, "logs: journald: exit 1"), (20, "logs: journald: killed")):
        tables.record_source_run(
            store, "default", "logs", T0 + timedelta(minutes=minutes), ok=False, items=None,
            error=error,
        )  # fmt: skip
    kw = {"target": "default", "sources": SourceSettings(logs=LogSettings(journal_unit="api"))}
    checks = source_checks(store, T0, T0 + timedelta(hours=1), Thresholds(), **kw)
    assert checks["critical_errors"].detail == (
        "logs failed at each of its 2 collections in the window (last, 2026-10-16 02:20 UTC: "
        "logs: journald: killed)"
    )
    quiet = source_checks(
        store, T0 + timedelta(hours=2), T0 + timedelta(hours=3), Thresholds(), **kw
    )
    assert "is `lsops collect` running?" in quiet["critical_errors"].detail
