"""`db.forecast`: the date the database reaches its size limit, from size snapshots with a
known growth (the expected date computed here, by hand), a spike, a shrink after a VACUUM
FULL, too little history; and `lsops db size --forecast` over a real store."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lsops_lib.cli import main
from lsops_lib.db import forecast
from tests.fixtures.sizes import size_snapshots

MiB = 2**20
GiB = 2**30
DAY0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
RATE = 10 * MiB  # a day


def snapshots(totals: list[float], *, start: datetime = DAY0, every_h: float = 24) -> pd.DataFrame:
    """Size snapshots as `space.growth` reads them: two tables sharing each total 3:1."""
    points = []
    for i, total in enumerate(totals):
        big = int(total * 0.75)
        sizes = {"context_embeddings": big, "agents": int(total) - big}
        points.append((start + timedelta(hours=every_h * i), sizes))
    return size_snapshots(points)


def linear(n: int, start: float = 1 * GiB, rate: float = RATE) -> list[float]:
    return [start + rate * i for i in range(n)]


def expected_date(last_ts: datetime, last_bytes: float, limit: float, rate: float) -> date:
    """By hand: the last snapshot, plus the days the rest takes at `rate` a day."""
    return (last_ts + timedelta(days=(limit - last_bytes) / rate)).date()


def test_a_known_linear_growth_gives_the_date_to_the_day() -> None:
    totals = linear(30)
    fc = forecast.capacity_forecast(snapshots(totals), 2 * GiB)
    last = DAY0 + timedelta(days=29)
    assert fc.status == "ok"
    assert fc.growth_bytes_per_day == pytest.approx(RATE, rel=1e-9)
    assert fc.reaches_limit_on == expected_date(last, totals[-1], 2 * GiB, RATE)
    assert fc.reaches_limit_on == date(2026, 4, 13)  # 73.4 days after 2026-01-30 06:00
    assert fc.reaches_limit_range == (fc.reaches_limit_on, fc.reaches_limit_on)  # no noise
    d = fc.as_dict()
    assert {
        "database_bytes",
        "growth_bytes_per_day",
        "limit_bytes",
        "reaches_limit_on",
        "reaches_limit_range",
        "tables",
    } <= set(d)
    assert d["reaches_limit_on"] == "2026-04-13" and d["limit_bytes"] == 2 * GiB
    assert [t["table"] for t in d["tables"]] == ["context_embeddings", "agents"]
    assert d["tables"][0]["growth_bytes_per_day"] == pytest.approx(0.75 * RATE, rel=1e-6)
    assert d["tables"][0]["share_of_growth"] == pytest.approx(0.75, rel=1e-6)


def test_the_live_size_now_is_where_the_projection_starts() -> None:
    now = DAY0 + timedelta(days=31, hours=3)
    live = 1 * GiB + 310 * MiB + 8 * MiB  # the catalogs: more than the tables' sum
    fc = forecast.capacity_forecast(snapshots(linear(30)), 2 * GiB, database_bytes=live, now=now)
    assert fc.database_bytes == live and fc.measured_at == pd.Timestamp(now)
    assert fc.reaches_limit_on == (now + timedelta(days=(2 * GiB - live) / RATE)).date()
    # drawn as what it is: the live size (catalogs included) the projection starts from
    from lsops_lib import plots

    assert fc.frame.attrs["start"] == "database_size"
    assert fc.frame["projected"].dropna().iloc[0] == pytest.approx(live)
    labels = plots.capacity_projection(fc.frame).get_legend_handles_labels()[1]
    assert "database size now (projection start)" in labels
    fitted = forecast.capacity_forecast(snapshots(linear(30)), 2 * GiB)
    assert fitted.frame.attrs["start"] == "fitted"
    assert (
        "projection start" in plots.capacity_projection(fitted.frame).get_legend_handles_labels()[1]
    )


def test_a_one_off_spike_is_ignored() -> None:
    totals = linear(30)
    totals[15] += 500 * MiB  # a bulk load, deleted and vacuumed away the next day
    fc = forecast.capacity_forecast(snapshots(totals), 2 * GiB)
    clean = forecast.capacity_forecast(snapshots(linear(30)), 2 * GiB)
    assert fc.status == "ok" and fc.shrinks == []  # the way back down is no shrink
    assert fc.growth_bytes_per_day == pytest.approx(RATE, rel=1e-9)
    assert fc.reaches_limit_on == clean.reaches_limit_on


def test_a_spike_on_the_last_snapshot_does_not_move_the_date() -> None:
    totals = linear(30)
    totals[-1] += 300 * MiB
    fc = forecast.capacity_forecast(snapshots(totals), 2 * GiB)
    clean = forecast.capacity_forecast(snapshots(linear(30)), 2 * GiB)
    assert fc.reaches_limit_on == clean.reaches_limit_on


def test_a_shrink_after_vacuum_full_starts_a_new_series() -> None:
    before = linear(20)
    after = linear(10, start=before[-1] - 600 * MiB, rate=4 * MiB)  # VACUUM FULL, slower
    fc = forecast.capacity_forecast(snapshots(before + after), 2 * GiB)
    shrink = DAY0 + timedelta(days=20)
    assert fc.shrinks == [pd.Timestamp(shrink)] and fc.since == pd.Timestamp(shrink)
    assert fc.status == "ok" and fc.snapshots == 10
    assert fc.growth_bytes_per_day == pytest.approx(4 * MiB, rel=1e-9)
    last = DAY0 + timedelta(days=29)
    assert fc.reaches_limit_on == expected_date(last, after[-1], 2 * GiB, 4 * MiB)
    assert fc.reaches_limit_on > last.date()  # never a date in the past
    assert "since the shrink on 2026-01-21" in fc.message
    # the growth between the first and the last snapshot would say "shrinking"
    assert (after[-1] - before[0]) / 29 < 0


def test_a_fresh_shrink_gives_no_date_until_there_is_history_again() -> None:
    before = linear(27)
    after = linear(3, start=before[-1] - 600 * MiB)
    fc = forecast.capacity_forecast(snapshots(before + after), 2 * GiB)
    assert fc.status == "not_enough_history" and fc.reaches_limit_on is None
    assert fc.reaches_limit_range is None and fc.growth_bytes_per_day is None
    assert fc.message.startswith("not enough history: 3 snapshots")
    assert "since the shrink on 2026-01-28" in fc.message


def test_too_few_snapshots_give_not_enough_history() -> None:
    for totals, every_h in ((linear(4), 24), (linear(12), 4)):  # 4 snapshots; 12 over 1.8 days
        fc = forecast.capacity_forecast(snapshots(totals, every_h=every_h), 2 * GiB)
        assert fc.status == "not_enough_history", totals
        assert fc.reaches_limit_on is None and fc.reaches_limit_range is None
        assert fc.message.startswith("not enough history")
        assert fc.as_dict()["reaches_limit_on"] is None
    none = forecast.capacity_forecast(None, 2 * GiB)
    assert none.status == "not_enough_history" and "no size snapshot" in none.message


def test_a_database_that_does_not_grow_gets_no_date() -> None:
    fc = forecast.capacity_forecast(snapshots([GiB] * 20), 2 * GiB)
    assert fc.status == "not_growing" and fc.reaches_limit_on is None
    assert fc.growth_bytes_per_day == 0
    slow = forecast.capacity_forecast(snapshots(linear(20, rate=1000)), 2 * GiB)
    assert slow.status == "beyond_horizon" and slow.reaches_limit_on is None
    over = forecast.capacity_forecast(snapshots(linear(20, start=3 * GiB)), 2 * GiB)
    assert over.status == "over_limit"


def test_noise_gives_a_range_around_the_date() -> None:
    rng = np.random.default_rng(3)
    totals = [t + rng.normal(0, 15 * MiB) for t in linear(40)]
    fc = forecast.capacity_forecast(snapshots(totals), 2 * GiB)
    low, high = fc.growth_range or (0, 0)
    assert low < fc.growth_bytes_per_day < high
    earliest, latest = fc.reaches_limit_range or (None, None)
    assert earliest is not None and latest is not None
    assert earliest < fc.reaches_limit_on < latest


def test_theil_sen_is_the_median_of_the_pairwise_slopes() -> None:
    rng = np.random.default_rng(8)
    x = np.sort(rng.uniform(0, 30, 25))
    y = 3 * x + rng.standard_cauchy(25)  # heavy tails: what a median is for
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i, j in itertools.combinations(range(25), 2)]
    slope, intercept, low, high = forecast.theil_sen(x, y)
    assert slope == pytest.approx(float(np.median(slopes)))
    assert intercept == pytest.approx(float(np.median(y - slope * x)))
    assert low <= slope <= high


def test_the_projection_chart_draws_the_forecast() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lsops_lib import plots

    fc = forecast.capacity_forecast(snapshots(linear(30)), 2 * GiB)
    ax = plots.capacity_projection(fc.frame)
    assert ax.get_title(loc="left") == (
        "The database reaches 2.0 GiB on 2026-04-13 (between 2026-04-13 and 2026-04-13)"
    )
    few = forecast.capacity_forecast(snapshots(linear(3)), 2 * GiB)
    ax = plots.capacity_projection(few.frame)
    assert ax.get_title(loc="left").startswith("Not enough history")
    assert plots.capacity_projection(None) is None
    plt.close("all")


# --- the command, over a real store ------------------------------------------------------------


@pytest.mark.postgres
def test_db_size_forecast_reads_the_store(
    longsang_db: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsops_lib.store import Store

    monkeypatch.chdir(tmp_path)
    store_url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    with Store(store_url) as store:
        snaps = snapshots(linear(30))
        for ts, part in snaps.groupby("ts"):
            store.record_db_sizes("default", ts.to_pydatetime(), part.drop(columns="ts"))
    env = {
        "LSOPS_DATABASE_URL": longsang_db.password_url,  # type: ignore[attr-defined]
        "LSOPS_STORE": store_url,
    }
    (tmp_path / "lsops.toml").write_text("[thresholds]\ndatabase_size_limit_bytes = 2147483648\n")
    result = CliRunner().invoke(main, ["db", "size", "--forecast", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["limit_bytes"] == 2 * GiB and body["status"] == "ok"
    assert body["growth_bytes_per_day"] == pytest.approx(RATE, rel=1e-9)
    # projected from the live database (a few MiB, now) at 10 MiB a day
    days = (2 * GiB - body["database_bytes"]) / RATE
    today = datetime.now(UTC)
    assert body["reaches_limit_on"] in {
        (today + timedelta(days=days) + timedelta(minutes=m)).date().isoformat() for m in (-5, 0, 5)
    }
    assert [t["table"] for t in body["tables"]] == ["context_embeddings", "agents"]
    text = CliRunner().invoke(main, ["db", "size", "--forecast"], env=env)
    assert text.exit_code == 0 and f"reaches the limit on {body['reaches_limit_on']}" in text.stdout
    assert "Fastest-growing tables" in text.stdout
    plain = CliRunner().invoke(main, ["db", "size", "--json"], env=env)  # unchanged without it
    assert set(json.loads(plain.stdout)) == {"database_bytes", "tables"}
    empty = {**env, "LSOPS_STORE": f"sqlite:///{tmp_path / 'none.sqlite'}"}
    none = CliRunner().invoke(main, ["db", "size", "--forecast"], env=empty)
    assert none.exit_code == 0 and "not enough history" in none.stdout
    assert not (tmp_path / "none.sqlite").exists()  # never created by reading
