"""QA 17, retrieval and capacity: the forecast over a dense history (`collect --db --every
5m`), with one snapshot, with no size limit (0), with a dropped table and snapshots dated
after now; `db vectors` with integer settings beside an unmeasured index, with one stored
vector, with a similarity threshold from lsops.toml; plurals; `index-stats` tokens_used."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib import db
from lsops_lib.cli import main
from lsops_lib.db import embeddings, forecast, vectors
from lsops_lib.db.recall import problems
from lsops_lib.db.schema import load_longsang_schema
from lsops_lib.exceptions import ParameterError
from tests.fixtures.sizes import size_snapshots

KiB = 2**10
MiB = 2**20
GiB = 2**30
DAY0 = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


def daily(totals: dict[str, list[int]], *, start: datetime = DAY0) -> pd.DataFrame:
    """One snapshot a day; table -> its sizes (a shorter list: the table was dropped)."""
    days = max(len(v) for v in totals.values())
    return size_snapshots(
        (start + timedelta(days=d), {t: v[d] for t, v in totals.items() if d < len(v)})
        for d in range(days)
    )


# --- 1. a dense history: checked and reported on every snapshot --------------------------------


def test_a_dense_history_is_enough_and_reported_as_stored() -> None:
    n = 892  # every 5 minutes over 3.09 days (more than MAX_POINTS)
    step = 4 * KiB  # per 5 minutes: 1,179,648 bytes a day
    points = [
        (DAY0 + timedelta(minutes=5 * i), {"big": GiB + step * i, "small": 10 * MiB})
        for i in range(n)
    ]
    fc = forecast.capacity_forecast(size_snapshots(points), GiB + 100 * MiB)
    rate = step * 288  # by hand
    last_ts, last = points[-1][0], GiB + step * (n - 1) + 10 * MiB
    assert fc.status == "ok", fc.message
    assert fc.snapshots == n and fc.since == pd.Timestamp(DAY0)
    assert fc.growth_bytes_per_day == pytest.approx(rate, rel=1e-9)
    assert fc.reaches_limit_on == (last_ts + timedelta(days=(GiB + 100 * MiB - last) / rate)).date()
    assert fc.message == "projected from 892 snapshots over 3 days"
    tables = fc.tables.set_index("table")
    assert tables.loc["big", "growth_bytes_per_day"] == pytest.approx(rate, rel=1e-9)
    assert tables.loc["small", "growth_bytes_per_day"] == 0
    assert fc.as_dict()["since"] == "2026-11-28T17:00:00+00:00"


def test_a_dense_history_too_short_says_its_own_count() -> None:
    n = 500  # every 5 minutes: 1.7 days
    points = [(DAY0 + timedelta(minutes=5 * i), {"a": GiB + i}) for i in range(n)]
    fc = forecast.capacity_forecast(size_snapshots(points), 2 * GiB)
    assert fc.status == "not_enough_history"
    assert fc.message.startswith("not enough history: 500 snapshots over 1.7 days (")


# --- 2. one snapshot, with thresholds that would allow it ---------------------------------------


def test_one_snapshot_with_the_lowest_thresholds_is_not_enough_history() -> None:
    snaps = daily({"a": [GiB]})
    fc = forecast.capacity_forecast(snaps, 2 * GiB, min_snapshots=1, min_days=0)
    assert fc.status == "not_enough_history" and fc.growth_bytes_per_day is None
    assert fc.reaches_limit_on is None
    assert fc.message == (
        "not enough history: 1 snapshot over 0.0 days (a forecast needs 2 over 0 days)"
    )
    two = forecast.capacity_forecast(
        daily({"a": [GiB, GiB + MiB]}), 2 * GiB, min_snapshots=1, min_days=0
    )
    assert two.status == "ok" and two.growth_bytes_per_day == MiB


# --- 6. a limit of 0: no limit -----------------------------------------------------------------


def test_a_limit_of_zero_is_no_limit() -> None:
    snaps = daily({"a": [GiB + 10 * MiB * d for d in range(10)]})
    fc = forecast.capacity_forecast(snaps, 0)
    assert fc.status == "no_limit" and fc.growth_bytes_per_day == pytest.approx(10 * MiB)
    assert fc.reaches_limit_on is None and fc.reaches_limit_range is None
    assert fc.message.startswith("no size limit set")
    assert fc.frame.attrs["limit_bytes"] is None  # no line drawn at 0 bytes
    with pytest.raises(ParameterError):
        forecast.capacity_forecast(snaps, -1)
    # the review's database rows: no "Size limit 0 B reached on"
    from types import SimpleNamespace

    from lsops_lib.present.database import _forecast_rows

    ((label, text),) = _forecast_rows(SimpleNamespace(forecast=fc))  # type: ignore[arg-type]
    assert (label, text) == ("Size limit", f"none set: {fc.message}")


@pytest.mark.postgres
def test_db_size_forecast_without_a_limit(
    longsang_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsops_lib.store import Store

    monkeypatch.chdir(tmp_path)
    store_url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    now = datetime.now(UTC)
    with Store(store_url) as store:
        snaps = daily({"a": [GiB + MiB * d for d in range(6)]}, start=now - timedelta(days=6))
        for ts, part in snaps.groupby("ts"):
            store.record_db_sizes("default", ts.to_pydatetime(), part.drop(columns="ts"))
    (tmp_path / "lsops.toml").write_text("[thresholds]\ndatabase_size_limit_bytes = 0\n")
    env = {"LSOPS_DATABASE_URL": longsang_db.password_url, "LSOPS_STORE": store_url}
    result = CliRunner().invoke(main, ["db", "size", "--forecast", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["status"] == "no_limit" and body["reaches_limit_on"] is None
    assert body["growth_bytes_per_day"] == pytest.approx(MiB)
    text = CliRunner().invoke(main, ["db", "size", "--forecast"], env=env)
    assert text.exit_code == 0, text.stderr
    assert "; limit: none" in text.stdout and "from 6 snapshots since" in text.stdout


# --- 8. dropped tables, snapshots dated after now ----------------------------------------------


def test_a_dropped_table_is_no_fastest_growing_table() -> None:
    snaps = daily(
        {"a": [GiB + MiB * d for d in range(8)], "gone": [MiB * (d + 1) for d in range(4)]}
    )
    fc = forecast.capacity_forecast(snaps, 2 * GiB)
    assert list(fc.tables["table"]) == ["a"]
    assert forecast.table_growth_rates(snaps, None)["table"].tolist() == ["a"]


def test_snapshots_dated_after_now_are_left_out_and_said() -> None:
    now = DAY0 + timedelta(days=9, hours=1)
    past = daily({"a": [GiB + 10 * MiB * d for d in range(10)]})
    ahead = daily({"a": [5 * GiB, 5 * GiB]}, start=now + timedelta(days=30))
    fc = forecast.capacity_forecast(pd.concat([past, ahead]), 2 * GiB, now=now)
    clean = forecast.capacity_forecast(past, 2 * GiB, now=now)
    assert fc.snapshots == 10 and fc.reaches_limit_on == clean.reaches_limit_on
    assert fc.growth_bytes_per_day == pytest.approx(10 * MiB)
    assert fc.message == (
        clean.message + "; 2 snapshots dated after now (from 2027-01-06 18:00 UTC: a "
        "collector's clock ahead?) left out"
    )
    only = forecast.capacity_forecast(ahead, 2 * GiB, now=now)
    assert only.status == "not_enough_history" and "2 snapshots dated after now" in only.message


# --- 5. plurals: the capacity alert -----------------------------------------------------------


def test_the_capacity_alert_says_1_day(tmp_path: Path) -> None:
    from lsops_lib.alerts import RULES, evaluate, parse_alert_settings
    from lsops_lib.config import load_settings
    from lsops_lib.store import Store

    start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    (tmp_path / "lsops.toml").write_text("[thresholds]\ndatabase_size_limit_bytes = 2147483648\n")
    env = {
        "LSOPS_STORE": f"sqlite:///{tmp_path / 'cap.sqlite'}",
        "LSOPS_CONFIG": str(tmp_path / "lsops.toml"),
        "LSOPS_DATABASE_URL": "postgresql://lsops@127.0.0.1:9/never_connected",
    }
    settings = load_settings(env=env, cwd=tmp_path)
    snaps = daily({"a": [GiB + 10 * MiB * d for d in range(30)]}, start=start)
    with Store(settings.store_url) as store:
        for ts, part in snaps.groupby("ts"):
            store.record_db_sizes("default", ts.to_pydatetime(), part.drop(columns="ts"))
        # by hand: 2 GiB on 2026-04-13 (73.4 days after day 29), one day after 04-12
        (alert,) = evaluate(
            store,
            settings,
            now=datetime(2026, 4, 12, tzinfo=UTC),
            alerts=parse_alert_settings({}, env={}),
            rules={"capacity": RULES["capacity"]},
        )["alerts"]
    assert alert["summary"].endswith("on 2026-04-13, in 1 day"), alert["summary"]
    assert date(2026, 4, 13) - date(2026, 4, 12) == timedelta(days=1)


# --- 3, 4, 5, 6: `db vectors` ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_vectors(pgvector_cluster: Any) -> str:
    """context_embeddings with ONE non-NULL vector (and a NULL), an HNSW index on it; items:
    200 random 3-d vectors, an IVFFlat index (lists = 8, measured) and a partial HNSW index
    (not measured: no setting of its own)."""
    name = "qa17_vectors"
    url = pgvector_cluster.create_database(name)
    rng = np.random.default_rng(17)
    with pgvector_cluster.connect(name) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE TABLE context_embeddings (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO context_embeddings VALUES (1, '[1,0.5,0]'), (2, NULL)")
        conn.execute(
            "CREATE INDEX ce_hnsw ON context_embeddings USING hnsw (embedding vector_cosine_ops)"
        )
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, emb vector(3))")
        for i, v in enumerate(rng.normal(size=(200, 3))):
            conn.execute(
                "INSERT INTO items VALUES (%s, %s::vector)", (i, "[" + ",".join(map(str, v)) + "]")
            )
        conn.execute(
            "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 8)"
        )
        conn.execute(
            "CREATE INDEX items_partial ON items USING hnsw (emb vector_cosine_ops) WHERE id > 10"
        )
        conn.execute("ANALYZE")
    return url


@pytest.mark.postgres
def test_settings_stay_integers_beside_an_unmeasured_index(sparse_vectors: str) -> None:
    with db.connect(sparse_vectors) as insp:
        rq = vectors.retrieval_quality(insp, sample=50, k=10, seed=0)
    by_index = {i["index"]: i for i in rq.as_dict()["indexes"]}
    ivf = by_index["items_ivf"]["suggested"]
    assert ivf["setting"] == "ivfflat.probes" and type(ivf["current"]) is int
    assert ivf["current"] == 1 and type(ivf["value"]) is int and ivf["value"] in (2, 4, 8)
    assert [t["value"] for t in ivf["tried"]][-1] == ivf["value"]
    assert by_index["items_partial"]["suggested"]["current"] is None
    said = problems(rq)
    assert any(p.startswith("items_ivf: recall@10 ") and "ivfflat.probes = 1," in p for p in said)
    assert f"SET ivfflat.probes = {ivf['value']} reaches it" in " ".join(said)
    assert type(rq.summary()["suggested_setting"]) in (int, type(None))
    text = CliRunner().invoke(
        main, ["db", "vectors"], env={"LSOPS_DATABASE_URL": sparse_vectors, "COLUMNS": "250"}
    )
    assert text.exit_code == 0, text.stderr
    assert f"suggested SET ivfflat.probes = {ivf['value']} (recall" in text.stdout
    assert "; now 1; tried 1: " in text.stdout and ".0 (" not in text.stdout


@pytest.mark.postgres
def test_one_stored_vector_is_not_measured_and_no_index_fault(sparse_vectors: str) -> None:
    with db.connect(sparse_vectors) as insp:
        rq = vectors.retrieval_quality(insp, sample=50, k=10, seed=0)
    (ce,) = [i for i in rq.as_dict()["indexes"] if i["index"] == "ce_hnsw"]
    assert ce["recall_at_k"] is None and ce["sample"] == 1
    assert ce["note"] == "no other row with a vector to find: recall not measured"
    assert ce["suggested"]["tried"] == [] and ce["suggested"]["value"] is None
    text = CliRunner().invoke(
        main, ["db", "vectors"], env={"LSOPS_DATABASE_URL": sparse_vectors, "COLUMNS": "250"}
    )
    assert text.exit_code == 0, text.stderr
    assert "rebuild the index" not in text.stdout
    assert "0.0 % of 1 query has a nearest other row at or above it" in text.stdout


def test_a_threshold_from_lsops_toml_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "lsops.toml").write_text("[thresholds]\nsimilarity_threshold = 5\n")
    result = CliRunner().invoke(
        main,
        ["db", "vectors"],
        env={
            "LSOPS_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "LSOPS_CONFIG": str(tmp_path / "lsops.toml"),
        },
    )
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "similarity_threshold" in result.stderr and "--threshold" not in result.stderr
    with pytest.raises(ParameterError) as info:
        vectors.check_parameters(50, 10, 5)
    assert str(info.value) == "the similarity threshold is a cosine similarity (-1 .. 1), not 5"


# --- 7. index-stats: tokens_used stays an integer beside a NULL ---------------------------------


@pytest.mark.postgres
def test_latest_failures_tokens_are_integers_beside_a_null(pg_url: str) -> None:
    load_longsang_schema(pg_url)
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO context_indexing_log (entity_type, entity_id, status, error_message,"
                " tokens_used, created_at) VALUES"
                " ('project', gen_random_uuid(), 'failed', 'timeout', 120, now()),"
                " ('agent', gen_random_uuid(), 'failed', 'bad input', NULL,"
                "  now() - interval '1 hour')"
            )
        )
    engine.dispose()
    with db.connect(pg_url) as insp:
        assert embeddings.latest_failures(insp)["tokens_used"].tolist()[0] == 120
    result = CliRunner().invoke(main, ["index-stats", "--json"], env={"LSOPS_DATABASE_URL": pg_url})
    assert result.exit_code == 0, result.stderr
    tokens = [f["tokens_used"] for f in json.loads(result.stdout)["latest_failures"]]
    assert tokens == [120, None] and type(tokens[0]) is int
