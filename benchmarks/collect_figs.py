"""`collect_fanout`: one `lsops collect` round over 100 simulated API targets against 1 target.

The simulated APIs (real clock) run in their own process (`sim_host.py`); a round is the
real command, `lsops collect --once --all-targets --json`, in a fresh process: settings,
store, every target scraped concurrently (`lsops_lib.collect.collect_round`: a thread
pool of 16, deep health + metrics per target) and written into one SQLite store. Wall
time of that process, median of three rounds; the baseline is the same command on an
lsops.toml naming 1 target. The single-target `lsops collect --once` is timed too, for
reference (details).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from common import LSOPS, Context, Result, clean_env, run_timed, tail

HERE = Path(__file__).resolve().parent


def _config(path: Path, urls: list[str], store: Path) -> Path:
    lines = [f'[store]\nurl = "sqlite:///{store}"\n']
    for i, url in enumerate(urls):
        lines.append(f'[targets.t{i:03d}]\nurl = "{url}"\ntimeout_s = 30\n')
    path.write_text("\n".join(lines))
    return path


def _round(ctx: Context, config: Path, n: int) -> float:
    """One `lsops collect --once --all-targets` over the `n` targets of `config`."""
    seconds, proc = run_timed(
        [LSOPS, "--config", str(config), "collect", "--once", "--all-targets", "--json"],
        env=clean_env(),
        cwd=ctx.tmp,
    )
    objects = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode not in (0, 1) or len(objects) != n:
        raise RuntimeError(
            f"collect round failed (exit {proc.returncode}, {len(objects)} of {n} targets): "
            f"{tail(proc.stderr)}"
        )
    ok = sum(1 for o in objects if o["ok"] and o["stored"])
    if ok != n:
        ctx.log(f"  {n - ok} of {n} scrapes not ok (exit {proc.returncode})")
    return seconds


def collect_fanout(ctx: Context) -> list[Result]:
    count = 20 if ctx.quick else 100
    host = subprocess.Popen(
        [sys.executable, str(HERE / "sim_host.py"), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert host.stdout is not None
        urls = json.loads(host.stdout.readline())
        store = ctx.tmp / "collect.sqlite"
        config_one = _config(ctx.tmp / "collect-1.toml", urls[:1], store)
        config_many = _config(ctx.tmp / f"collect-{count}.toml", urls, store)
        _round(ctx, config_one, 1)  # warm-up: creates the store, fills the file cache
        rounds = 3
        one = statistics.median(_round(ctx, config_one, 1) for _ in range(rounds))
        many = statistics.median(_round(ctx, config_many, count) for _ in range(rounds))
        ctx.log(f"  1 target {one:.2f} s, {count} targets {many:.2f} s")
        env = clean_env({"LSOPS_CONFIG": str(config_many), "LSOPS_TARGET": "t000"})
        cli_s, proc = run_timed([LSOPS, "collect", "--once"], env=env, cwd=ctx.tmp)
    finally:
        if host.stdin:
            host.stdin.close()
        host.wait(timeout=60)
    ratio = many / one
    return [
        Result(
            "collect_fanout",
            many,
            "s",
            one,
            "ratio <= 3",
            ratio <= 3.0,
            {
                "targets": count,
                "rounds": rounds,
                "lsops_collect_once_1_target_s": round(cli_s, 3),
                "lsops_collect_once_exit": proc.returncode,
            },
        )
    ]
