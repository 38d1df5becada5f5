"""`history_query` (the 30-day store) and `year_query` (the 365-day store); the 30-day
store's bytes beside Prometheus's are in `peer_figs.py`.

history_query: hourly per-endpoint requests, errors and mean latency over the whole
    history, `Store.endpoint_intervals(bucket="hour")` (aggregated in SQL), against the
    baseline of loading the raw sample rows into pandas and computing the same deltas
    and hourly groups there.
year_query: the same query over 365 days, against history_query.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from common import Context, Result, timed
from datasets import Dataset, generate, month_start, raw_samples

from lsops_lib.store import Store

HISTORY_START = "2025-09"  # 30 days
YEAR_START = "2025-01"  # 365 days


def sql_hourly(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The figure: the store's own hourly read, in a fresh Store (cold connection pool)."""
    store = Store(url)
    try:
        return store.endpoint_intervals(start, end, bucket="hour")
    finally:
        store.close()


def pandas_hourly(path: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """The baseline: raw rows into pandas, deltas per endpoint across restarts, hourly sums."""
    con = sqlite3.connect(path)
    try:
        scrapes = pd.read_sql_query(
            "SELECT sid, ts, uptime_start_ms AS us, last_reset_ms AS lr FROM lsops_scrapes "
            "WHERE ts >= ? AND ts < ?",
            con,
            params=(int(start.timestamp() * 1000), int(end.timestamp() * 1000)),
        )
        endpoints = pd.read_sql_query(
            "SELECT id AS endpoint_id, path AS endpoint FROM lsops_endpoints WHERE NOT monitoring",
            con,
        )
    finally:
        con.close()
    # the samples as stored (schema 4: packed blocks and recent rows), decoded
    raw = raw_samples(path).merge(scrapes, on="sid").merge(endpoints, on="endpoint_id")
    raw = raw.sort_values(["endpoint", "ts", "sid"], kind="stable")
    raw["tsum"] = raw["avg_time"] * raw["count"]
    raw["errs"] = (raw["error_rate"] * raw["count"]).round()
    prev = raw.groupby("endpoint", sort=False)[["count", "tsum", "errs", "us", "lr"]].shift()
    first = prev["count"].isna()
    new_series = (
        (raw["us"] != prev["us"]) | (raw["lr"] != prev["lr"]) | (raw["count"] < prev["count"])
    )
    whole = new_series & ~first
    d_n = np.where(whole, raw["count"], raw["count"] - prev["count"])
    d_t = np.where(whole, raw["tsum"], (raw["tsum"] - prev["tsum"]).clip(lower=0))
    d_e = np.where(whole, raw["errs"], (raw["errs"] - prev["errs"]).clip(lower=0))
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime((raw["ts"] // 3_600_000) * 3_600_000, unit="ms", utc=True),
            "endpoint": raw["endpoint"],
            "requests": d_n,
            "time_sum_ms": d_t,
            "errors": d_e,
        }
    )[~first.to_numpy()]
    out = frame.groupby(["ts", "endpoint"], as_index=False)[
        ["requests", "errors", "time_sum_ms"]
    ].sum()
    requests = out["requests"].where(out["requests"] > 0)
    out["mean_ms"] = out["time_sum_ms"] / requests
    out["error_rate"] = out["errors"] / requests
    return out


def _best(ctx: Context, fn, repeats: int) -> tuple[float, object, float]:  # noqa: ANN001
    """(best wall seconds, its value, the CPU seconds of this process in that run)."""
    best, value, cpu = float("inf"), None, float("nan")
    for _ in range(repeats):
        gc.collect()
        cpu0 = time.process_time()
        seconds, value = timed(fn)
        if seconds < best:
            best, cpu = seconds, time.process_time() - cpu0
    return best, value, cpu


def history_figures(ctx: Context) -> list[Result]:
    days = 3 if ctx.quick else 30
    ctx.log(f"generating {days} days x 1440 scrapes x 50 endpoints")
    data = generate(ctx.tmp / "history.sqlite", start=month_start(HISTORY_START), days=days, seed=1)
    ctx.cache["history"] = data
    ctx.log(f"  {data.samples:,} samples in {data.seconds:.1f} s")

    repeats = 2 if ctx.quick else 5
    sql_s, sql_df, sql_cpu = _best(ctx, lambda: sql_hourly(data.url, data.start, data.end), repeats)
    ctx.log(f"  SQL hourly read {sql_s:.2f} s ({len(sql_df)} rows)")
    pd_s, pd_df, pd_cpu = _best(ctx, lambda: pandas_hourly(data.path, data.start, data.end), 1)
    ctx.log(f"  pandas baseline {pd_s:.2f} s ({len(pd_df)} rows)")
    ctx.cache["history_query_s"] = sql_s
    ctx.cache["history_query_cpu_s"] = sql_cpu
    speedup = pd_s / sql_s
    agree = int(sql_df["requests"].sum()) == int(pd_df["requests"].sum()) and int(
        sql_df["errors"].sum()
    ) == int(pd_df["errors"].sum())
    if not agree:
        ctx.log("  the SQL read and the pandas baseline DISAGREE on the totals")
    history = Result(
        "history_query",
        sql_s,
        "s",
        pd_s,
        "value < 1 s and >= 10x faster than the baseline (ratio <= 0.1)",
        agree and sql_s < 1.0 and speedup >= 10.0,
        {
            "answers_agree": agree,
            "dataset": data.as_dict(),
            "speedup": round(speedup, 2),
            "us_per_sample": round(sql_s / data.samples * 1e6, 3),
            "cpu_s": round(sql_cpu, 3),
            "baseline_cpu_s": round(pd_cpu, 3),
            "rows": len(sql_df),
            "requests_sql": int(sql_df["requests"].sum()),
            "requests_pandas": int(pd_df["requests"].sum()),
            "repeats": repeats,
        },
    )
    return [history]


def year_figure(ctx: Context) -> list[Result]:
    history_s = ctx.cache.get("history_query_s")
    history_cpu = ctx.cache.get("history_query_cpu_s")
    history: Dataset | None = ctx.cache.get("history")
    days = 36.5 if ctx.quick else 365  # the quick run keeps the year's 12x ratio of data
    ctx.log(f"generating {days} days x 1440 scrapes x 50 endpoints")
    data = generate(ctx.tmp / "year.sqlite", start=month_start(YEAR_START), days=days, seed=2)
    ctx.log(f"  {data.samples:,} samples in {data.seconds:.1f} s")
    try:
        repeats = 3 if not ctx.quick else 1
        seconds, df, cpu = _best(ctx, lambda: sql_hourly(data.url, data.start, data.end), repeats)
        ctx.log(f"  SQL hourly read over the year {seconds:.2f} s ({len(df)} rows)")
        data_ratio = data.samples / history.samples if history else None
        ratio = seconds / history_s if history_s else None
        return [
            Result(
                "year_query",
                seconds,
                "s",
                history_s,
                "ratio <= 12 (the data grows 12.2x)",
                None if ratio is None else ratio <= 12.0,
                {
                    "dataset": data.as_dict(),
                    "data_ratio": round(data_ratio, 2) if data_ratio else None,
                    "us_per_sample": round(seconds / data.samples * 1e6, 3),
                    "cpu_s": round(cpu, 3),
                    "cpu_ratio": round(cpu / history_cpu, 2) if history_cpu else None,
                    "repeats": repeats,
                    "rows": len(df),
                },
            )
        ]
    finally:
        del df
        data.path.unlink(missing_ok=True)  # ~1 GB: not kept for the rest of the run
