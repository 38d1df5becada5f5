"""The morning checks: `lsops health`, `checklist`, `endpoints`, `cache`, `incidents`.

`health` and `checklist` follow the monitoring-plugin convention (Nagios, Icinga, Sensu,
cron): exit 0 OK, 1 WARNING (DEGRADED / a warning-level fail), 2 CRITICAL (ERROR, no
answer, a critical fail), 3 UNKNOWN (nothing known, bad usage or settings).
`endpoints`, `cache` and `incidents`: 0 done, 1 the API or the store failed, 2 bad usage.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..exceptions import ApiError, LsopsError
from . import App, PluginCommand, console, emit_json, fail, main, pass_app, run_command

PLUGIN_STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
HEALTH_EXIT = {"OK": 0, "DEGRADED": 1, "ERROR": 2}
_STYLE = {"OK": "green", "DEGRADED": "yellow", "WARN": "yellow", "ERROR": "red", "NO_ANSWER": "red"}
_CHECK_STYLE = {"pass": "green", "fail": "red", "unknown": "yellow"}


def _mib(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value / 2**20:,.1f} MiB"


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 100:.{digits}f} %"


def _ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.1f} ms"


def _of_limit(rss: int | None, app: App) -> str:
    """RSS against thresholds.memory_limit_bytes, e.g. " (18 % of 512.0 MiB)"."""
    limit = app.settings().thresholds.memory_limit_bytes
    if rss is None or not limit:
        return ""
    return f" ({rss / limit:.0%} of {_mib(limit)})"


def _styled(text: Any, style_map: dict[str, str]) -> Text:
    value = "-" if text is None else str(text)
    return Text(value, style=style_map.get(value, ""))


def _client(app: App) -> Any:
    from ..api import Client

    return Client.from_target(app.settings().target)


def _store(app: App) -> Any:
    from ..store import Store

    return Store(app.settings().store_url)


def _window(
    window: str | None, since: str | None, until: str | None, default: str
) -> tuple[datetime, datetime]:
    from ..times import window as parse_window

    if window is None and since is None and until is None:
        window = default
    return parse_window(window, since, until)


# --- lsops health ------------------------------------------------------------------------


def _health_dict(answer: Any) -> dict[str, Any]:
    h = answer.record
    return {
        "status": h.status,
        "http_status": answer.status,
        "url": answer.url,
        "elapsed_ms": answer.elapsed_ms,
        "deep": h.deep,
        "timestamp": h.timestamp,
        "uptime_s": h.uptime_s,
        "pid": h.pid,
        "memory": {
            "rss": h.memory.rss,
            "heap_total": h.memory.heap_total,
            "heap_used": h.memory.heap_used,
            "external": h.memory.external,
            "array_buffers": h.memory.array_buffers,
        },
        "services": [
            {
                "name": s.name,
                "status": s.status,
                "message": s.message,
                "response_time_ms": s.response_time_ms,
                "stats": s.stats or None,
            }
            for s in h.services.values()
        ],
        "checks": h.checks,
        "checks_summary": {
            "passed": h.checks_passed,
            "total": h.checks_total,
            "percentage": h.checks_percentage,
        },
        "error": h.error,
    }


@main.command("health", cls=PluginCommand)
@click.option(
    "--deep", is_flag=True, help="Run the server's real checks (database, pgvector, tables)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def health_command(app: App, deep: bool, as_json: bool) -> None:
    """The API's health now: 0 OK, 1 DEGRADED, 2 ERROR or no answer, 3 unknown."""
    with run_command(usage=3, failure=3):
        client = _client(app)
    with client:
        try:
            answer = client.get_health(deep=deep)
        except ApiError as exc:
            if as_json:
                emit_json(
                    {
                        "status": "NO_ANSWER",
                        "kind": exc.kind,
                        "http_status": exc.status,
                        "error": str(exc),
                    }
                )
            else:
                console.print(Text.assemble(("NO ANSWER", "bold red"), f"  {exc}"))
            raise SystemExit(2) from None
        except LsopsError as exc:
            fail(str(exc), 3)
    data = _health_dict(answer)
    code = HEALTH_EXIT.get(str(data["status"]).upper(), 3)
    if as_json:
        emit_json(data)
        raise SystemExit(code)
    h = answer.record
    head = Text.assemble(
        (str(h.status), f"bold {_STYLE.get(h.status, '')}"),
        f"  {answer.url}  HTTP {answer.status}  {'deep' if deep else 'quick'} check",
    )
    console.print(head)
    if h.error:
        console.print(Text(f"error: {h.error}", style="red"))
    uptime = f"{h.uptime_s / 3600:.1f} h" if h.uptime_s is not None else "-"
    console.print(
        Text(
            f"uptime {uptime}  pid {h.pid if h.pid is not None else '-'}  "
            f"memory rss {_mib(h.memory.rss)}{_of_limit(h.memory.rss, app)}, "
            f"heap {_mib(h.memory.heap_used)} of {_mib(h.memory.heap_total)}"
        )
    )
    if h.services:
        table = Table(title="services", title_justify="left")
        for col in ("service", "status", "message", "response time"):
            table.add_column(col)
        for s in h.services.values():
            table.add_row(
                Text(s.name),
                _styled(s.status, _STYLE),
                Text(s.message or ""),
                _ms(s.response_time_ms),
            )
        console.print(table)
    if h.checks_total is not None:
        pct = f" ({h.checks_percentage:.1f} %)" if h.checks_percentage is not None else ""
        console.print(Text(f"checks passed: {h.checks_passed} of {h.checks_total}{pct}"))
    if not deep:
        console.print(
            Text(
                "quick check: services say 'Configured'; --deep tests the connections", style="dim"
            )
        )
    raise SystemExit(code)


# --- lsops checklist ---------------------------------------------------------------------


def _fmt_value(check: Any) -> str:
    value = check.value
    if value is None:
        return "-"
    if isinstance(value, float):
        if check.key in ("error_rate", "error_rate_stable"):
            return _pct(value, 2)
        if check.key == "memory" or isinstance(check.threshold, float) and check.threshold <= 1:
            return _pct(value)
        return f"{value:g}"
    return str(value)


def _fmt_threshold(check: Any) -> str:
    t = check.threshold
    if t is None:
        return "-"
    if isinstance(t, float) and t <= 1:
        prefix = {
            "latency": ">= ",
            "cache_hit_rate": "> ",
            "error_rate": "< ",
            "memory": "< ",
            "cpu": "< ",
            "error_rate_stable": "every hour <= ",
        }.get(check.key, "")
        return prefix + _pct(t, 0)
    return str(t)


def window_options(command: Any) -> Any:
    """`--window DURATION | --since T [--until T]`, shared by the commands reading the store."""
    for option in reversed(
        [
            click.option(
                "--window", metavar="DURATION", help="How far back to look (default 24h)."
            ),
            click.option("--since", metavar="T", help="Start (ISO 8601, UTC) instead of --window."),
            click.option("--until", metavar="T", help="End (ISO 8601, UTC; default now)."),
        ]
    ):
        command = option(command)
    return command


@main.command("checklist", cls=PluginCommand)
@window_options
@click.option("--include-monitoring", is_flag=True, help="Count /health and /metrics requests too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def checklist_command(
    app: App,
    window: str | None,
    since: str | None,
    until: str | None,
    include_monitoring: bool,
    as_json: bool,
) -> None:
    """The runbook's Monitoring Checklist from the store: 0 pass, 1 warning, 2 critical, 3 unknown."""
    from ..analysis import checklist, exit_code

    with run_command(usage=3, failure=3):
        start, end = _window(window, since, until, "24h")
        settings = app.settings()
        with _store(app) as store:
            checks = checklist(
                store,
                start,
                end,
                settings.thresholds,
                target=app.target,
                include_monitoring=include_monitoring,
            )
    code = exit_code(checks)
    if as_json:
        emit_json(
            {
                "start": start,
                "end": end,
                "status": PLUGIN_STATUS[code],
                "exit_code": code,
                "checks": [c.as_dict() for c in checks],
            }
        )
        raise SystemExit(code)
    table = Table(
        title=f"Monitoring checklist {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC",
        title_justify="left",
    )
    table.add_column("", no_wrap=True)
    table.add_column("check", overflow="fold", ratio=1)
    table.add_column("figure", no_wrap=True, justify="right")
    table.add_column("threshold", no_wrap=True)
    for c in checks:
        table.add_row(
            _styled(c.status, _CHECK_STYLE),
            Text.assemble((c.name, "bold"), "\n", (c.detail, "dim")),
            Text(_fmt_value(c)),
            Text(_fmt_threshold(c)),
        )
    console.print(table)
    console.print(
        Text(
            f"{PLUGIN_STATUS[code]} (exit {code})", style=["green", "yellow", "red", "yellow"][code]
        )
    )
    raise SystemExit(code)


# --- lsops endpoints ---------------------------------------------------------------------


@main.command("endpoints")
@window_options
@click.option(
    "--include-monitoring",
    is_flag=True,
    help="Keep /health and /metrics (the collector's own requests).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: a list of objects.")
@pass_app
def endpoints_command(
    app: App,
    window: str | None,
    since: str | None,
    until: str | None,
    include_monitoring: bool,
    as_json: bool,
) -> None:
    """Per endpoint from the store: requests, errors, error rate, mean latency (weighted)."""
    from ..analysis import endpoint_summary, excluded_monitoring

    with run_command(usage=2, failure=1):
        start, end = _window(window, since, until, "24h")
        with _store(app) as store:
            summary = endpoint_summary(
                store, start, end, target=app.target, include_monitoring=include_monitoring
            )
            excluded = (
                None
                if include_monitoring
                else excluded_monitoring(store, start, end, target=app.target)
            )
    rows = [
        {
            "endpoint": str(r.endpoint),
            "requests": int(r.requests),
            "errors": int(r.errors),
            "error_rate": None if math.isnan(r.error_rate) else float(r.error_rate),
            "mean_ms": None if math.isnan(r.mean_ms) else float(r.mean_ms),
        }
        for r in summary.itertuples()
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(
        title=f"Endpoints {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", title_justify="left"
    )
    table.add_column("endpoint")
    for col in ("requests", "errors", "error rate", "mean latency"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            Text(r["endpoint"]),
            f"{r['requests']:,}",
            f"{r['errors']:,}",
            _pct(r["error_rate"], 2),
            _ms(r["mean_ms"]),
        )
    console.print(table)
    if not rows:
        console.print(
            Text("no requests counted in the window (is the collector running?)", style="yellow")
        )
    if excluded is not None and not excluded.empty:
        names = ", ".join(
            f"{e} ({n:,})" for e, n in zip(excluded["endpoint"], excluded["requests"], strict=True)
        )
        console.print(
            Text(
                f"excluded monitoring endpoints: {names}; --include-monitoring keeps them",
                style="dim",
            )
        )


# --- lsops cache -------------------------------------------------------------------------


@main.command("cache")
@click.option(
    "--no-deep", "no_deep", is_flag=True, help="Skip the deep health check (no per-cache stats)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def cache_command(app: App, no_deep: bool, as_json: bool) -> None:
    """The runbook's cache stats, live from the API: hits, misses, hit rate, per cache."""
    with run_command(usage=2, failure=1):
        client = _client(app)
        with client:
            metrics = client.get_metrics()
            caches: dict[str, Any] | None = None
            note = None
            if not no_deep:
                try:
                    health = client.get_health(deep=True).record
                    svc = health.services.get("cache")
                    caches = dict(svc.stats) if svc is not None and svc.stats else None
                    if caches is None:
                        note = "the deep health check gave no per-cache stats"
                except ApiError as exc:
                    note = f"deep health check failed: {exc}"
    cache = metrics.record.cache
    per_cache = []
    for name, value in (caches or {}).items():
        if isinstance(value, dict):
            hits, misses = value.get("hits"), value.get("misses")
            ops = (hits or 0) + (misses or 0)
            per_cache.append(
                {
                    "cache": name,
                    "keys": value.get("keys"),
                    "hits": hits,
                    "misses": misses,
                    "hit_rate": (hits or 0) / ops if ops else None,
                }
            )
    data = {
        "url": metrics.url,
        "hits": cache.hits,
        "misses": cache.misses,
        "operations": cache.hits + cache.misses,
        "hit_rate": cache.hit_rate if cache.hits + cache.misses else None,
        "since": "process start or last metrics reset (cumulative counters)",
        "total_keys": (caches or {}).get("totalKeys"),
        "caches": per_cache,
        "note": note,
    }
    if as_json:
        emit_json(data)
        return
    console.print(
        Text(
            f"cache: {cache.hits:,} hits, {cache.misses:,} misses, hit rate {_pct(data['hit_rate'])} "
            f"(since process start or last reset)"
        )
    )
    if per_cache:
        table = Table(title=f"per cache (total keys {data['total_keys']})", title_justify="left")
        table.add_column("cache")
        for col in ("keys", "hits", "misses", "hit rate"):
            table.add_column(col, justify="right")
        for c in per_cache:
            table.add_row(
                Text(c["cache"]),
                str(c["keys"]),
                str(c["hits"]),
                str(c["misses"]),
                _pct(c["hit_rate"]),
            )
        console.print(table)
    if note:
        console.print(Text(note, style="yellow"))


# --- lsops incidents ---------------------------------------------------------------------


@main.command("incidents")
@click.option("--since", metavar="T", help="Start (ISO 8601, UTC); default: 30 days back.")
@click.option("--until", metavar="T", help="End (ISO 8601, UTC; default now).")
@click.option(
    "--window", metavar="DURATION", help="How far back to look instead of --since (e.g. 7d)."
)
@click.option("--include-monitoring", is_flag=True, help="Keep /health and /metrics.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: a list of incidents.")
@pass_app
def incidents_command(
    app: App,
    since: str | None,
    until: str | None,
    window: str | None,
    include_monitoring: bool,
    as_json: bool,
) -> None:
    """Incidents the history shows (no answer, ERROR/DEGRADED health, error-rate and latency
    breaches, restarts), each with the command that writes its postmortem."""
    from ..analysis import incidents, with_commands

    with run_command(usage=2, failure=1):
        start, end = _window(window, since, until, "30d")
        settings = app.settings()
        with _store(app) as store:
            found = with_commands(
                incidents(
                    store,
                    start,
                    end,
                    settings.thresholds,
                    target=app.target,
                    include_monitoring=include_monitoring,
                ),
                settings.thresholds,
            )
    rows = [
        {
            "start": r.start,
            "end": r.end,
            "duration_s": float(r.duration_s),
            "kind": r.kind,
            "severity": r.severity,
            "endpoint": r.endpoint if isinstance(r.endpoint, str) else None,
            "detail": r.detail,
            "ongoing": bool(r.ongoing),
            "postmortem_command": r.postmortem_command,
        }
        for r in found.itertuples()
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(
            Text(f"no incident between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC")
        )
        return
    table = Table(
        title=f"Incidents {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", title_justify="left"
    )
    for col in ("start", "duration", "kind", "severity", "endpoint", "detail"):
        table.add_column(col, overflow="fold")
    sev = {"critical": "red", "warning": "yellow", "info": "dim"}
    for r in rows:
        minutes = r["duration_s"] / 60
        table.add_row(
            f"{r['start']:%Y-%m-%d %H:%M}",
            f"{minutes:.0f} min" + (" (ongoing)" if r["ongoing"] else ""),
            Text(r["kind"]),
            Text(r["severity"], style=sev.get(r["severity"], "")),
            Text(r["endpoint"] or ""),
            Text(r["detail"]),
        )
    console.print(table)
    console.print(Text("write a postmortem:", style="bold"))
    for r in rows:
        if r["kind"] != "restart":
            console.print(Text(f"  {r['postmortem_command']}"), soft_wrap=True)
