"""The metrics store on SQLite and on a real throwaway PostgreSQL: writes, the delta rule, reads."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from lsops_lib.exceptions import StoreVersionError
from lsops_lib.models import ErrorRecord
from lsops_lib.store import (
    FIGURE_COLUMNS,
    HEALTH_COLUMNS,
    SCHEMA_VERSION,
    Store,
    engine_url,
)
from lsops_lib.times import to_ms
from tests.fixtures.store import START, T0, at, make_scrape, sample_counts


def by_endpoint(df: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    return df[df["endpoint"] == endpoint].reset_index(drop=True)


# --- basics -----------------------------------------------------------------------------


def test_creates_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "metrics.sqlite"
    with Store(f"sqlite:///{path}") as store:
        store.record_scrape(make_scrape(0, {"/a": (1, 1.0, 0.0)}))
        assert store.dialect == "sqlite"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert path.is_file()


def test_a_home_relative_store_url_is_one_file_for_every_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sqlite:///~/...` names a file under $HOME for the store itself and for the readers
    that first check it exists (the database growth chart, the optimization report)."""
    from datetime import UTC, datetime

    from lsops_lib.db import forecast, gather

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # a literal "~" folder would land here
    url = "sqlite:///~/lsops/metrics.sqlite"
    assert forecast.stored_snapshots("sqlite:///~/lsops/none.sqlite", "prod") is None
    assert gather.open_store(None, "sqlite:///~/lsops/none.sqlite") is None
    sizes = pd.DataFrame(
        [["public", "orders", 3000, 2000, 1000, 0, 10]],
        columns=["schema", "table", "total_bytes", "table_bytes", "index_bytes",
                 "toast_bytes", "rows_estimate"],
    )  # fmt: skip
    with Store(url) as store:
        assert store.record_db_sizes("prod", datetime(2026, 11, 1, tzinfo=UTC), sizes) == 1
    assert (tmp_path / "home" / "lsops" / "metrics.sqlite").is_file()
    assert not (tmp_path / "~").exists()
    snaps = forecast.stored_snapshots(url, "prod")
    assert snaps is not None and list(snaps["table"]) == ["orders"]
    assert int(snaps["total_bytes"].iloc[0]) == 3000
    opened = gather.open_store(None, url)
    assert opened is not None
    opened.close()


def test_postgres_urls_use_psycopg3() -> None:
    assert engine_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert engine_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert engine_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_url_is_redacted() -> None:
    store = Store.__new__(Store)
    store._url = "postgresql://lsops:s3cret@db.internal/metrics"
    assert "s3cret" not in store.url and "s3cret" not in repr(store)


def test_record_is_idempotent(store: Store) -> None:
    scrape = make_scrape(
        0, {"/copilot/chat": (40, 45.825, 0.025)}, raw={"metrics": b'{"success": true}'}
    )
    assert store.record_scrape(scrape) is True
    assert store.record_scrape(scrape) is False  # a retried write of the same scrape
    assert store.record_scrape(scrape) is False
    df = store.scrapes()
    assert len(df) == 1
    assert df["scrape_id"].tolist() == [scrape.id]
    row = df.iloc[0]
    assert row["ts"] == pd.Timestamp(T0)
    assert str(df["ts"].dt.tz) == "UTC"
    assert bool(row["ok"]) and row["health_status"] == "OK"
    assert row["requests_total"] == 40 and row["uptime_start_ms"] == START
    assert row["rss"] == 70_000_000 and row["rt_p95"] == 20.0
    assert store.targets() == ["default"]
    assert store.extent() == (pd.Timestamp(T0), pd.Timestamp(T0))
    assert store.extent("nope") is None


def test_schema_version_refusal(store_url: str) -> None:
    with Store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE lsops_meta SET value = :v WHERE key = 'schema_version'"),
                {"v": str(SCHEMA_VERSION + 1)},
            )
    with pytest.raises(StoreVersionError) as info:
        Store(store_url)
    message = str(info.value)
    assert "newer" in message and "\n" not in message
    assert str(SCHEMA_VERSION + 1) in message


def test_raw_payload_roundtrip(store: Store) -> None:
    body = b'{"success": true, "metrics": {"requests": {"total": 122}}}' * 50 + bytes(range(256))
    scrape = make_scrape(
        0, {"/a": (1, 2.0, 0.0)}, raw={"metrics": body, "health": b"<html>oops</html>"}
    )
    store.record_scrape(scrape)
    assert store.raw_payload(scrape.id, "metrics") == body
    assert store.raw_payload(scrape.id, "health") == b"<html>oops</html>"
    assert store.raw_payload(scrape.id, "other") is None
    assert store.raw_payload(str(uuid.uuid4()), "metrics") is None
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT body FROM lsops_raw WHERE part = 'metrics'")).scalar()
    assert len(stored) < len(body) / 5  # compressed


def test_health_services_and_failures(store: Store) -> None:
    store.record_scrape(make_scrape(0, {"/a": (1, 1.0, 0.0)}))
    store.record_scrape(make_scrape(1, None))
    store.record_scrape(make_scrape(2, {"/a": (2, 1.0, 0.0)}, status="ERROR"))
    health = store.health()
    assert health["status"].tolist() == ["OK", "NO_ANSWER", "ERROR"]
    assert health["http_status"].tolist()[0] == 200 and health["http_status"].tolist()[2] == 503
    scrapes = store.scrapes()
    assert scrapes["ok"].tolist() == [True, False, True]
    failed = scrapes.iloc[1]
    assert failed["failure_kind"] == "unreachable"
    assert "health: connection refused" in failed["failure_message"]
    assert "metrics: connection refused" in failed["failure_message"]
    services = store.services()
    assert len(services) == 4
    db = services[services["service"] == "database"]
    assert db["status"].tolist() == ["OK", "ERROR"] and db["response_time_ms"].tolist() == [
        142.0,
        142.0,
    ]
    # a window
    assert store.health(at(1), at(2))["status"].tolist() == ["NO_ANSWER"]


def test_narrowed_scrape_reads(store: Store) -> None:
    store.record_scrape(make_scrape(0, {"/a": (1, 1.0, 0.0)}))
    store.record_scrape(make_scrape(1, None))  # no answer: NULL figures
    store.record_scrape(make_scrape(1.5, {"/b": (3, 2.0, 0.0)}, target="other", status="ERROR"))
    store.record_scrape(make_scrape(2, {"/a": (2, 1.0, 0.0)}, status="DEGRADED"))
    for window in [(None, None, None), (at(1), at(3), "default"), (at(5), at(6), None)]:
        full = store.scrapes(*window)
        for columns in (
            ["ts", "target", *FIGURE_COLUMNS],
            ["http_status", "failure_kind", "deep", "ok", "server_ts", "ts"],
            list(reversed(full.columns)),
        ):
            narrow = store.scrapes(*window, columns=columns)
            pd.testing.assert_frame_equal(narrow, full[columns], check_exact=True)
        figures = store.scrape_figures(*window)
        pd.testing.assert_frame_equal(figures, full[["ts", "target", *FIGURE_COLUMNS]])
        both = store.scrape_figures(*window, with_health=True)
        assert list(both.columns) == [*HEALTH_COLUMNS, *FIGURE_COLUMNS]
        pd.testing.assert_frame_equal(both[HEALTH_COLUMNS], store.health(*window))
        pd.testing.assert_frame_equal(both[list(figures.columns)], figures)
    assert len(store.scrapes(columns=["rss"])) == 4
    for bad in (["ts", "nope"], [], ["ts", "ts"], ["status"]):
        with pytest.raises(ValueError):
            store.scrapes(columns=bad)


def test_error_records_are_deduplicated(store: Store) -> None:
    e1 = ErrorRecord("/projects/:id", 1_790_000_000_000, "GET", 404)
    e2 = ErrorRecord(
        "/copilot/chat", 1_790_000_001_000, error="TypeError: x is undefined", context={"k": 1}
    )
    e3 = ErrorRecord("/projects/:id", 1_790_000_002_000, "GET", 404)
    store.record_scrape(make_scrape(0, {"/a": (1, 1.0, 0.0)}, errors=[e1, e2]))
    store.record_scrape(make_scrape(1, {"/a": (2, 1.0, 0.0)}, errors=[e1, e2, e3]))  # seen again
    store.record_scrape(make_scrape(2, {"/a": (3, 1.0, 0.0)}, errors=[e2, e3]))
    errors = store.error_records()
    assert len(errors) == 3
    assert errors["endpoint"].tolist() == ["/projects/:id", "/copilot/chat", "/projects/:id"]
    assert errors["status_code"].tolist()[0] == 404 and pd.isna(errors["status_code"].tolist()[1])
    assert errors["error"].tolist()[1] == "TypeError: x is undefined"
    assert errors["first_seen"].tolist() == [
        pd.Timestamp(at(0)),
        pd.Timestamp(at(0)),
        pd.Timestamp(at(1)),
    ]
    assert str(errors["ts"].dt.tz) == "UTC"


# --- the delta rule -----------------------------------------------------------------------

RESET_AT = START + 10 * 86_400_000  # a later lastReset


def _series(store: Store) -> None:
    """One target through baseline, restart, failure, metrics reset, counter drop."""
    restart = to_ms(at(1.5))
    reset = to_ms(at(3.5))
    scrapes = [
        make_scrape(
            0, {"/a": (100, 10.0, 0.10), "/health": (5, 2.0, 0.0)}, cache=(50, 50)
        ),  # baseline
        make_scrape(1, {"/a": (150, 12.0, 0.20), "/health": (6, 2.0, 0.0)}, cache=(80, 60)),
        # restart: new uptime.start, counters start again
        make_scrape(2, {"/a": (20, 5.0, 0.05)}, uptime_start=restart, cache=(4, 1)),
        make_scrape(3, None),  # no answer
        # metrics reset: same start, new lastReset
        make_scrape(4, {"/a": (7, 4.0, 0.0)}, uptime_start=restart, last_reset=reset, cache=(2, 2)),
        make_scrape(
            5, {"/a": (20, 5.0, 0.10)}, uptime_start=restart, last_reset=reset, cache=(10, 4)
        ),
        # requests.total goes down with neither changing: a counter drop
        make_scrape(
            6, {"/a": (3, 6.0, 0.0)}, uptime_start=restart, last_reset=reset, cache=(11, 5)
        ),
        # /a drops on its own (total still grows), /b appears
        make_scrape(
            7,
            {"/a": (1, 2.0, 0.0), "/b": (50, 8.0, 0.02)},
            uptime_start=restart,
            last_reset=reset,
            cache=(1, 5),
        ),
    ]
    for s in scrapes:
        assert store.record_scrape(s)


def test_deltas_across_restart_reset_and_drops(store: Store) -> None:
    _series(store)
    df = store.endpoint_intervals(bucket="scrape")
    a = by_endpoint(df, "/a")
    assert a["ts"].tolist() == [pd.Timestamp(at(m)) for m in (1, 2, 4, 5, 6, 7)]
    assert a["requests"].tolist() == [50, 20, 7, 13, 3, 1]
    assert a["errors"].tolist() == [20, 1, 0, 2, 0, 0]
    assert a["time_sum_ms"].tolist() == pytest.approx([800.0, 100.0, 28.0, 72.0, 18.0, 2.0])
    assert a["mean_ms"].tolist() == pytest.approx([16.0, 5.0, 4.0, 72 / 13, 6.0, 2.0])
    assert a["resets"].tolist() == [0, 1, 1, 0, 1, 1]
    assert (
        (df["requests"] >= 0).all() and (df["errors"] >= 0).all() and (df["time_sum_ms"] >= 0).all()
    )
    b = by_endpoint(df, "/b")
    assert (
        b["requests"].tolist() == [50]
        and b["errors"].tolist() == [1]
        and b["resets"].tolist() == [0]
    )
    assert "/health" not in set(df["endpoint"])

    # one bucket: sums, and ratios of sums (never averages of averages)
    hour = store.endpoint_intervals(bucket="hour")
    a_hour = by_endpoint(hour, "/a").iloc[0]
    assert a_hour["requests"] == 94 and a_hour["errors"] == 23 and a_hour["resets"] == 4
    assert a_hour["time_sum_ms"] == pytest.approx(1020.0)
    assert a_hour["mean_ms"] == pytest.approx(1020.0 / 94)
    assert a_hour["error_rate"] == pytest.approx(23 / 94)

    kinds = store.resets()
    assert kinds["kind"].tolist() == ["restart", "reset", "counter_drop"]
    assert kinds["ts"].tolist() == [pd.Timestamp(at(m)) for m in (2, 4, 6)]


def test_windows_are_additive(store: Store) -> None:
    _series(store)
    whole = store.endpoint_intervals(bucket="day").set_index("endpoint")
    for cut in (0.5, 1, 1.5, 2, 3, 3.5, 4.5, 6.5):
        left = (
            store.endpoint_intervals(None, at(cut), bucket="day")
            .groupby("endpoint")[["requests", "errors"]]
            .sum()
        )
        right = (
            store.endpoint_intervals(at(cut), None, bucket="day")
            .groupby("endpoint")[["requests", "errors"]]
            .sum()
        )
        both = left.add(right, fill_value=0)
        for endpoint in whole.index:
            assert both.loc[endpoint, "requests"] == whole.loc[endpoint, "requests"], cut
            assert both.loc[endpoint, "errors"] == whole.loc[endpoint, "errors"], cut
    # the first scrape of a window uses the last scrape before it as predecessor
    only_first = store.endpoint_intervals(at(1), at(1.5), bucket="scrape")
    assert by_endpoint(only_first, "/a")["requests"].tolist() == [50]


def test_first_scrape_baseline_rule(store: Store) -> None:
    # target "late": the collector's first scrape failed, the process started after it
    store.record_scrape(make_scrape(0, None, target="late"))
    started = to_ms(at(0.5))
    store.record_scrape(
        make_scrape(1, {"/a": (30, 10.0, 0.1)}, target="late", uptime_start=started)
    )
    store.record_scrape(
        make_scrape(2, {"/a": (35, 10.0, 0.2)}, target="late", uptime_start=started)
    )
    # target "old": the first scrape failed too, but the process was up before it: baseline
    store.record_scrape(make_scrape(0, None, target="old"))
    store.record_scrape(make_scrape(1, {"/a": (30, 10.0, 0.1)}, target="old"))
    store.record_scrape(make_scrape(2, {"/a": (35, 10.0, 0.2)}, target="old"))
    late = by_endpoint(store.endpoint_intervals(bucket="scrape", target="late"), "/a")
    assert late["requests"].tolist() == [30, 5] and late["errors"].tolist() == [3, 4]
    assert late["resets"].tolist() == [1, 0]
    old = by_endpoint(store.endpoint_intervals(bucket="scrape", target="old"), "/a")
    assert old["requests"].tolist() == [5] and old["errors"].tolist() == [4]
    # all targets: summed per bucket
    both = by_endpoint(store.endpoint_intervals(bucket="scrape"), "/a")
    assert both["requests"].tolist() == [30, 10]
    assert store.resets(target="late")["kind"].tolist() == ["restart"]
    assert store.resets(target="old").empty
    assert sorted(store.targets()) == ["late", "old"]


def test_monitoring_endpoints_excluded_by_default(store: Store) -> None:
    paths = {
        "/copilot/chat": (10, 40.0, 0.0),
        "/health": (10, 2.0, 0.1),
        "/metrics": (10, 3.0, 0.0),
        "/metrics/endpoint/%2Fcopilot%2Fchat": (10, 1.0, 0.0),
        "/healthcheck-like": (10, 1.0, 0.0),  # not a monitoring endpoint
    }
    store.record_scrape(make_scrape(0, {p: (0, 0.0, 0.0) for p in paths}))
    store.record_scrape(make_scrape(1, paths))
    default = store.endpoint_intervals(bucket="hour")
    assert sorted(default["endpoint"]) == ["/copilot/chat", "/healthcheck-like"]
    everything = store.endpoint_intervals(bucket="hour", include_monitoring=True)
    assert sorted(everything["endpoint"]) == sorted(paths)
    assert by_endpoint(everything, "/health")["errors"].tolist() == [1]


def test_buckets(store: Store) -> None:
    # scrapes at 00:50, 01:10, 01:50, 02:10 (+1 day 00:10): deltas land in the closing scrape's bucket
    minutes = [50, 70, 110, 130, 24 * 60 + 10]
    counts = [100, 130, 190, 200, 260]
    for m, c in zip(minutes, counts, strict=True):
        store.record_scrape(make_scrape(m, {"/a": (c, 10.0, 0.0)}, cache=(c, c // 10)))
    hour = store.endpoint_intervals(bucket="hour")
    assert hour["ts"].tolist() == [
        pd.Timestamp(at(60)),
        pd.Timestamp(at(120)),
        pd.Timestamp(at(24 * 60)),
    ]
    assert hour["requests"].tolist() == [90, 10, 60]
    day = store.endpoint_intervals(bucket="day")
    assert day["ts"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0 + timedelta(days=1))]
    assert day["requests"].tolist() == [100, 60]
    minute = store.endpoint_intervals(bucket="minute")
    assert minute["ts"].tolist() == [pd.Timestamp(at(m)) for m in minutes[1:]]
    assert minute["requests"].tolist() == [30, 60, 10, 60]
    assert store.endpoint_intervals(at(60), at(120), bucket="hour")["requests"].tolist() == [90]
    with pytest.raises(ValueError):
        store.endpoint_intervals(bucket="fortnight")


def test_counter_intervals(store: Store) -> None:
    _series(store)
    df = store.counter_intervals(bucket="scrape")
    assert df["ts"].tolist() == [pd.Timestamp(at(m)) for m in range(8)]
    # requests.total = sum of the endpoint counts in _series
    assert df["requests"].tolist() == [0, 51, 20, 0, 7, 13, 3, 48]
    # a new series takes every counter whole (the drop at 6); a counter dropping alone (cache
    # hits at 7) takes its own new value
    assert df["cache_hits"].tolist() == [0, 30, 4, 0, 2, 8, 11, 1]
    assert df["cache_misses"].tolist() == [0, 10, 1, 0, 2, 2, 5, 0]
    assert df["resets"].tolist() == [0, 0, 1, 0, 1, 0, 1, 0]
    assert df["scrapes"].tolist() == [1] * 8
    assert df["failures"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    day = store.counter_intervals(bucket="day").iloc[0]
    assert (
        day["requests"] == 142
        and day["scrapes"] == 8
        and day["failures"] == 1
        and day["resets"] == 3
    )
    assert day["cache_hit_ratio"] == pytest.approx(56 / (56 + 20))
    assert store.counter_intervals(at(100), at(200)).empty


def test_empty_reads(store: Store) -> None:
    assert store.scrapes().empty and store.health().empty and store.error_records().empty
    df = store.endpoint_intervals()
    assert df.empty and list(df.columns) == [
        "ts", "endpoint", "requests", "errors", "time_sum_ms", "mean_ms", "error_rate", "resets"
    ]  # fmt: skip
    assert store.counter_intervals().empty and store.resets().empty and store.extent() is None


def test_db_snapshots(store: Store) -> None:
    sizes = pd.DataFrame(
        {
            "schema": ["public", "public"],
            "table": ["documents", "context_embeddings"],
            "total_bytes": [8192 * 10, 8192 * 1000],
            "table_bytes": [8192 * 8, 8192 * 600],
            "index_bytes": [8192 * 2, 8192 * 400],
            "toast_bytes": [0, 0],
            "rows_estimate": [100, float("nan")],
        }
    )
    assert store.record_db_sizes("prod", at(0), sizes) == 2
    assert store.record_db_sizes("prod", at(60), sizes.iloc[:1]) == 1
    got = store.db_sizes("prod")
    assert len(got) == 3 and got["table"].tolist() == [
        "documents",
        "context_embeddings",
        "documents",
    ]
    assert got["total_bytes"].tolist()[1] == 8192 * 1000 and pd.isna(
        got["rows_estimate"].tolist()[1]
    )
    assert len(store.db_sizes("prod", at(30))) == 1 and store.db_sizes("other").empty
    queries = pd.DataFrame(
        {
            "queryid": [-123456789012345, 42],
            "query": ["SELECT 1", "SELECT $1"],
            "calls": [10, 2],
            "total_ms": [1.5, 0.25],
            "rows": [10, 2],
        }
    )
    assert store.record_db_queries("prod", at(0), queries) == 2
    q = store.db_queries("prod")
    assert q["queryid"].tolist() == [-123456789012345, 42] and q["total_ms"].tolist() == [1.5, 0.25]
    assert str(q["ts"].dt.tz) == "UTC"


def test_endpoint_samples_are_compact(tmp_path: Path) -> None:
    """<= 40 bytes per endpoint sample on disk, index included (SQLite dbstat): the rows
    of the latest hour and the packed blocks of the hours before (schema version 4)."""
    path = tmp_path / "m.sqlite"
    endpoints = [f"/copilot/endpoint-{i}" for i in range(40)]
    with Store(f"sqlite:///{path}") as store:
        for minute in range(500):
            counts = {
                p: (
                    minute * (i + 1) * 3,
                    10.0 + (minute * 7 + i) % 97 / 7,
                    ((minute + i) % 9) / 100,
                )
                for i, p in enumerate(endpoints)
            }
            store.record_scrape(make_scrape(minute, counts))
        rows = sum(sample_counts(store).values())
    conn = sqlite3.connect(path)
    try:
        size = conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'lsops_samples%'"
            " OR name LIKE 'lsops_sample_blocks%'"
        ).fetchone()[0]
        indexes = conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND tbl_name='lsops_samples'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert rows == 500 * 40
    assert size / rows <= 40, f"{size / rows:.1f} bytes per sample"
    assert indexes == 0  # WITHOUT ROWID: the primary key is the table


# --- a SIGKILL mid-write --------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, uuid
    sys.path.insert(0, {root!r})
    from tests.fixtures.store import make_scrape
    from lsops_lib.store import Store
    store = Store({url!r})
    endpoints = {{f"/e/{{i}}": (i, 1.0, 0.0) for i in range(300)}}
    minute = 0
    while True:
        scrape = make_scrape(minute, endpoints, raw={{"metrics": bytes(uuid.uuid4().bytes) * 2000}})
        store.record_scrape(scrape)
        print(scrape.id, flush=True)
        minute += 1
    """
)


def test_sigkill_mid_write_loses_nothing_reported(store_url: str) -> None:
    Store(store_url).close()  # the schema exists before the writer starts
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=root, url=store_url)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    reported: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while len(reported) < 15 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(line.strip())
        assert len(reported) >= 15, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.013)  # somewhere inside a later write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # read the rest through the same buffered reader (communicate() would bypass the
        # lines it has already buffered and lose them)
        rest = proc.stdout.read()
        reported += [x.strip() for x in rest.splitlines() if x.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with Store(store_url) as store:
        stored = store.scrapes()
        assert set(reported) <= set(stored["scrape_id"])
        assert len(stored) - len(reported) in (0, 1)  # at most the write that was committing
        # every stored scrape is whole: 300 samples each (rows or packed)
        counts = sample_counts(store)
        assert len(counts) == len(stored) and set(counts.values()) == {300}
        assert store.record_scrape(make_scrape(10_000, {"/a": (1, 1.0, 0.0)}))


def test_bad_store_urls_are_config_errors(tmp_path: Path) -> None:
    from lsops_lib.exceptions import ConfigError, StoreError

    for url in ("mysql://u:s3cret@h/db", "not a url at all"):
        with pytest.raises(ConfigError) as info:
            Store(url)
        assert isinstance(info.value, StoreError) and "s3cret" not in str(info.value)
