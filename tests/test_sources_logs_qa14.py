"""The service's logs, QA 14: what Node's util.inspect prints after an error with
properties (`}` at column 0), a [logs] glob that matches no file, date formats with
12-hour clocks (and moment.js tokens lsops does not read), pm2's merged `log_file`."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.config import load_settings
from lsops_lib.exceptions import ConfigError
from lsops_lib.sources import collect_sources, source_settings
from lsops_lib.sources.collect import collect_logs
from lsops_lib.sources.logs import Batch, read_files
from lsops_lib.sources.settings import LogSettings, SourceSettings
from lsops_lib.store import Store
from lsops_lib.store import sources as tables
from tests.fixtures.sources import Pm2Log, fake_journalctl, journal_record, stamp

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 10, 16, 8, 0, tzinfo=UTC)

# console.error(err) of pg's ECONNREFUSED (node 20): the frames, the last one opening the
# error's own properties, `}` at column 0
ECONNREFUSED = [
    "Error: connect ECONNREFUSED 127.0.0.1:5432",
    "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {",
    "  errno: -111,",
    "  code: 'ECONNREFUSED',",
    "  syscall: 'connect',",
    "  address: '127.0.0.1',",
    "  port: 5432",
    "}",
]
# node 20's AggregateError of a dual-stack connect: nested errors and objects, closed indented
AGGREGATE = [
    "AggregateError [ECONNREFUSED]: ",
    "    at internalConnectMultiple (node:net:1118:18)",
    "    at afterConnectMultiple (node:net:1685:7) {",
    "  code: 'ECONNREFUSED',",
    "  [errors]: [",
    "    Error: connect ECONNREFUSED ::1:5432",
    "        at createConnectionError (node:net:1648:14)",
    "        at afterConnectMultiple (node:net:1678:16) {",
    "      errno: -111,",
    "      code: 'ECONNREFUSED',",
    "      address: '::1',",
    "      port: 5432",
    "    },",
    "    Error: connect ECONNREFUSED 127.0.0.1:5432",
    "        at createConnectionError (node:net:1648:14) {",
    "      errno: -111,",
    "      port: 5432",
    "    }",
    "  ]",
    "}",
]
# console.log('Config:', JSON.stringify(config, null, 2)); console.log(['a', ...]) of 7+ items
CONFIG = ["Config: {", '  "port": 3001,', '  "cache": true', "}"]
ARRAY = ["[", "  'embeddings',", "  'indexing',", "  'sentry'", "]"]


def _settings(folder: Path, glob: str = "api-*.log*", **kw: object) -> SourceSettings:
    return SourceSettings(logs=LogSettings(paths=(str(folder / glob),), **kw))  # type: ignore[arg-type]


def _texts(store: Store) -> list[str]:
    return list(tables.log_lines(store, "default", None, None)["text"])


def _write(path: Path, lines: list[str], ts: datetime) -> None:
    """One write of pm2: every physical line stamped."""
    with open(path, "a") as fh:
        fh.write("".join(f"{stamp(ts)}: {line}\n" for line in lines))


# --- 1. the `}` util.inspect closes an error with properties with ---------------------------


def test_an_error_with_properties_and_its_closing_brace_are_one_entry(
    sqlite_store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "api-error.log"
    _write(log, ECONNREFUSED, T0)
    _write(log, ["❌ Express Error: after the brace: a new entry"], T0 + timedelta(seconds=1))
    _write(log, AGGREGATE, T0 + timedelta(seconds=2))
    _write(log, CONFIG, T0 + timedelta(seconds=3))
    _write(log, ARRAY, T0 + timedelta(seconds=4))
    _write(log, ["✅ ready"], T0 + timedelta(seconds=5))
    _write(log, ["}"], T0 + timedelta(seconds=6))  # nothing open before it: its own entry
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 7
    assert _texts(sqlite_store) == [
        "\n".join(ECONNREFUSED),
        "❌ Express Error: after the brace: a new entry",
        "\n".join(AGGREGATE),
        "\n".join(CONFIG),
        "\n".join(ARRAY),
        "✅ ready",
        "}",
    ]
    lines = tables.log_lines(sqlite_store, "default", None, None)
    assert list(lines["lines"]) == [8, 1, 20, 4, 5, 1, 1]
    assert list(lines["level"])[:3] == ["error", "error", "error"]


def test_the_closing_brace_read_by_the_next_collection_continues_the_stored_entry(
    sqlite_store: Store, tmp_path: Path
) -> None:
    log = tmp_path / "api-error.log"
    _write(log, ECONNREFUSED[:-1], T0)  # the collection runs before pm2 wrote the `}`
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 1
    _write(log, ["}"], T0)
    _write(log, ["Error: connect ECONNREFUSED 127.0.0.1:6379"], T0 + timedelta(seconds=1))
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 1
    assert _texts(sqlite_store) == [
        "\n".join(ECONNREFUSED),
        "Error: connect ECONNREFUSED 127.0.0.1:6379",
    ]


def test_journald_an_error_with_properties_is_one_entry(
    sqlite_store: Store, tmp_path: Path
) -> None:
    records = [journal_record(k + 1, T0, line, 3) for k, line in enumerate(ECONNREFUSED)]
    records.append(journal_record(len(records) + 1, T0, "🚀 listening 3001", 6))
    script = fake_journalctl(tmp_path, records)
    settings = SourceSettings(logs=LogSettings(journal_unit="u", journal_command=str(script)))
    assert collect_logs(sqlite_store, settings, "default") == 2
    assert _texts(sqlite_store) == ["\n".join(ECONNREFUSED), "🚀 listening 3001"]


# --- 2. a glob that matches no file -------------------------------------------------------


def test_a_glob_matching_no_file_of_its_folder_fails_the_logs_source(
    sqlite_store: Store, tmp_path: Path
) -> None:
    Pm2Log(tmp_path, "api-error").write("❌ Express Error: boom", T0)
    Pm2Log(tmp_path, "api-out").write("✅ Context retrieved in 40ms", T0)
    typo = str(tmp_path / "api-eror*.log*")
    settings = SourceSettings(logs=LogSettings(paths=(str(tmp_path / "api-out*.log*"), typo)))
    (result,) = collect_sources(sqlite_store, settings, target="default")
    assert not result.ok
    assert result.error == f"logs: no file matches {typo} (1 entry stored)"
    assert _texts(sqlite_store) == ["✅ Context retrieved in 40ms"]
    runs = tables.source_runs(sqlite_store, "default", None, None)
    assert list(runs["ok"]) == [False]
    # a folder without any log file yet (pm2 not started; the store beside) is no failure
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "metrics.sqlite").write_bytes(b"")
    (result,) = collect_sources(sqlite_store, _settings(fresh), target="default")
    assert result.ok and result.items == 0
    # the CLI: the collection's line says it, exit 1
    env = {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'cli.sqlite'}",
        "LSOPS_API_URL": "http://127.0.0.1:9",
        "LSOPS_PM2": "off",
        "LSOPS_LOGS": typo,
    }
    done = CliRunner().invoke(main, ["collect", "--once"], env=env)
    assert done.exit_code == 1
    assert f"logs: FAILED (recorded): no file matches {typo}" in done.stdout.splitlines()


# --- 3. date formats ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_format", "strftime"),
    [
        ("YYYY-MM-DD hh:mm:ss A", "%Y-%m-%d %I:%M:%S %p"),
        ("YYYY-MM-DD h:mm:ss a Z", "%Y-%m-%d {h}:%M:%S {a} +07:00"),
        ("DD/MM/YY HH:mm:ss.SSS ZZ", "%d/%m/%y %H:%M:%S.{ms} +0700"),
        ("ddd, D MMM YYYY HH:mm:ss Z", "%a, {d} %b %Y %H:%M:%S +07:00"),
        ("[at] YYYY-MM-DDTHH:mm:ss", "at %Y-%m-%dT%H:%M:%S"),
    ],
)
def test_moment_tokens_of_12_hour_clocks_names_and_literals_are_read(
    sqlite_store: Store, tmp_path: Path, date_format: str, strftime: str
) -> None:
    zone = timezone(timedelta(hours=7)) if "Z" in date_format else UTC
    # the instants a 12-hour clock gets wrong: midnight, 1 AM, noon, 1 PM, 11 PM
    moments = [
        datetime(2026, 10, 16, h, 5, 9, 250000, tzinfo=zone).astimezone(UTC)
        for h in (0, 1, 12, 13, 23)
    ]

    def written(ts: datetime) -> str:
        local = ts.astimezone(zone)
        hour12 = local.hour % 12 or 12
        return local.strftime(
            strftime.format(
                h=hour12,
                a="am" if local.hour < 12 else "pm",
                ms=f"{local.microsecond // 1000:03d}",
                d=local.day,
            )
        )

    log = tmp_path / "api-error.log"
    log.write_text(
        "".join(f"{written(ts)}: ❌ Express Error: boom {k}\n" for k, ts in enumerate(moments))
    )
    settings = _settings(tmp_path, date_format=date_format)
    assert collect_logs(sqlite_store, settings, "default") == len(moments)
    lines = tables.log_lines(sqlite_store, "default", None, None)
    keeps_ms = "SSS" in date_format
    assert list(lines["ts"]) == [ts if keeps_ms else ts.replace(microsecond=0) for ts in moments]
    assert list(lines["text"]) == [f"❌ Express Error: boom {k}" for k in range(len(moments))]
    assert not lines["estimated"].any()


@pytest.mark.parametrize(
    ("date_format", "said"),
    [
        ("YYYY-MM-Do HH:mm:ss", "the moment.js token Do is not supported"),
        ("YYYY-MM-DD kk:mm:ss", "the moment.js token kk is not supported"),
        ("YYYY-DDDD HH:mm", "the moment.js token DDDD is not supported"),
        ("HH:mm:ss", "it has no date (YYYY or YY, MM or MMM, DD; or X, x)"),
    ],
)
def test_a_date_format_lsops_cannot_read_is_one_config_error(
    tmp_path: Path, date_format: str, said: str
) -> None:
    config = tmp_path / "lsops.toml"
    config.write_text(f'[logs]\npaths = ["{tmp_path}/api-*.log*"]\ndate_format = "{date_format}"\n')
    env = {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'store.sqlite'}",
        "LSOPS_API_URL": "http://127.0.0.1:9",
        "LSOPS_PM2": "off",
    }
    done = CliRunner().invoke(main, ["--config", str(config), "collect", "--once"], env=env)
    assert done.exit_code == 2
    assert done.stderr == f"lsops: lsops.toml: [logs] date_format {date_format!r}: {said}\n"
    assert "Traceback" not in done.output
    with pytest.raises(ConfigError):
        source_settings(load_settings(config, env=env), env=env)


# --- 4. pm2's merged log_file -------------------------------------------------------------


def test_pm2s_merged_log_file_next_to_out_and_error_is_not_counted_twice(
    sqlite_store: Store, tmp_path: Path
) -> None:
    out, err = Pm2Log(tmp_path, "api-out"), Pm2Log(tmp_path, "api-error")
    combined = tmp_path / "api-combined.log"
    for k in range(3):
        ts = T0 + timedelta(seconds=k)
        out.write(f"✅ Context retrieved in {40 + k}ms", ts)
        err.write(f"❌ Express Error: timeout {k}", ts, frames=2)
    # pm2 writes each line to its stream's file and to the merged one
    combined.write_text(out.path.read_text() + err.path.read_text())
    # pm2-logrotate's rotated copy of it, gzipped; and pm2's default name for it (`--log`)
    (tmp_path / "api-combined__2026-10-16_00-00-00.log.gz").write_bytes(
        gzip.compress(combined.read_bytes())
    )
    (tmp_path / "api.log").write_text(combined.read_text())
    truth = sorted(w.text for log in (out, err) for w in log.ledger)
    assert collect_logs(sqlite_store, _settings(tmp_path), "default") == 6
    assert sorted(_texts(sqlite_store)) == truth
    # said once, naming the files left aside
    batch = Batch()
    read_files([str(tmp_path / "api*.log*")], [], "YYYY-MM-DD HH:mm:ss Z", batch)
    assert batch.notes == [
        "skipped 3 merged log files (api-combined.log, api-combined__2026-10-16_00-00-00.log.gz,"
        " api.log): pm2's log_file repeats the -out and -error files read"
    ]
    assert not batch.errors and len(batch.entries) == 6


def test_a_merged_log_file_without_both_stream_files_is_read(
    sqlite_store: Store, tmp_path: Path
) -> None:
    # a glob taking only the out file and the merged one: the errors are in the merged one alone
    out = Pm2Log(tmp_path, "api-out")
    out.write("✅ Context retrieved in 40ms", T0)
    Pm2Log(tmp_path, "api-combined").write("❌ Express Error: boom", T0)
    settings = SourceSettings(
        logs=LogSettings(paths=(str(tmp_path / "api-out.log"), str(tmp_path / "api-combined.log")))
    )
    assert collect_logs(sqlite_store, settings, "default") == 2
    assert sorted(_texts(sqlite_store)) == [
        "✅ Context retrieved in 40ms",
        "❌ Express Error: boom",
    ]


def test_the_collection_says_which_merged_files_it_left_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    out, err = Pm2Log(logs, "api-out"), Pm2Log(logs, "api-error")
    out.write("✅ Context retrieved in 40ms", T0)
    err.write("❌ Express Error: timeout", T0, frames=2)
    (logs / "api-combined.log").write_text(out.path.read_text() + err.path.read_text())
    monkeypatch.chdir(tmp_path)
    env = {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'm.sqlite'}",
        "LSOPS_API_URL": "http://127.0.0.1:9",  # the scrape fails; the sources go on
        "LSOPS_LOGS": str(logs / "api-*.log*"),
        "LSOPS_PM2": "off",
    }
    result = CliRunner().invoke(main, ["collect", "--once", "--quick"], env=env)
    shown = [x for x in result.stdout.splitlines() if x.startswith("logs:")]
    assert shown == [
        "logs: OK, 2 stored (skipped 1 merged log file (api-combined.log): pm2's log_file "
        "repeats the -out and -error files read)"
    ], result.output
    doc = CliRunner().invoke(main, ["collect", "--once", "--quick", "--json"], env=env)
    (run,) = json.loads(doc.stdout)["source_runs"]
    assert run["note"].startswith("skipped 1 merged log file") and run["items"] == 0
