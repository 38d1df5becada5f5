"""`collect_fanout`: one collection round over 100 simulated API targets against 1 target.

The simulated APIs (real clock) run in their own process (`sim_host.py`); a round is a
fresh Python process (`collect_round.py`, the imports and work of `lsops collect --once`)
scraping every target concurrently into one SQLite store. Wall time of that process,
median of three rounds. The real `lsops collect --once` over one target is timed too,
for reference (details).
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
    seconds, proc = run_timed(
        [
            sys.executable,
            str(HERE / "collect_round.py"),
            "--config",
            str(config),
            "--targets",
            str(n),
        ],
        env=clean_env(),
        cwd=ctx.tmp,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"collect round failed: {tail(proc.stderr)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["ok"] != n:
        ctx.log(f"  {n - out['ok']} of {n} scrapes not ok")
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
        config = _config(ctx.tmp / "collect.toml", urls, store)
        _round(ctx, config, 1)  # warm-up: creates the store, fills the file cache
        rounds = 3
        one = statistics.median(_round(ctx, config, 1) for _ in range(rounds))
        many = statistics.median(_round(ctx, config, count) for _ in range(rounds))
        ctx.log(f"  1 target {one:.2f} s, {count} targets {many:.2f} s")
        env = clean_env({"LSOPS_CONFIG": str(config), "LSOPS_TARGET": "t000"})
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
