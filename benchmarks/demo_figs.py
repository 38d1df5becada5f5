"""`demo_wall`: `lsops demo`, once the venv exists, in a fresh folder. No baseline."""

from __future__ import annotations

from common import LSOPS, Context, Result, clean_env, run_timed, tail


def demo_wall(ctx: Context) -> list[Result]:
    goal = "value < 60 s"
    if ctx.quick:  # a minute on its own: only in the full run
        return [Result("demo_wall", None, "s", None, goal, None, {"skipped": "not in a quick run"})]
    _, probe = run_timed([LSOPS, "demo", "--help"], env=clean_env(), cwd=ctx.tmp, timeout=120)
    if probe.returncode != 0:
        ctx.log("  `lsops demo` is not there yet")
        return [
            Result("demo_wall", None, "s", None, goal, None, {"skipped": "no `lsops demo` command"})
        ]
    folder = ctx.tmp / "demo"
    folder.mkdir(exist_ok=True)
    seconds, proc = run_timed([LSOPS, "demo"], env=clean_env(), cwd=folder, timeout=900)
    ctx.log(f"  lsops demo: {seconds:.1f} s (exit {proc.returncode})")
    details = {"exit": proc.returncode}
    if proc.returncode != 0:
        details["stderr"] = tail(proc.stderr, 5)
    return [
        Result(
            "demo_wall", seconds, "s", None, goal, proc.returncode == 0 and seconds < 60.0, details
        )
    ]
