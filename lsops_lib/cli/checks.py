"""The morning checks: `lsops health`, `checklist`, `endpoints`, `cache`, `incidents`.

`health` and `checklist` follow the monitoring-plugin convention (Nagios, Icinga, Sensu,
cron): exit 0 OK, 1 WARNING (DEGRADED / a warning-level fail), 2 CRITICAL (ERROR, no
answer, a critical fail), 3 UNKNOWN (nothing known, bad usage or settings).
`endpoints`, `cache` and `incidents`: 0 done, 1 the API or the store failed, 2 bad usage.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from .. import fmt
from ..exceptions import ApiError, LsopsError
from . import App, PluginCommand, fail, main, pass_app, run_command
from .render import RIGHT, Column, emit, line, table

PLUGIN_STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
HEALTH_EXIT = {"OK": 0, "DEGRADED": 1, "ERROR": 2}
_STYLE = {"OK": "green", "DEGRADED": "yellow", "WARN": "yellow", "ERROR": "red", "NO_ANSWER": "red"}
_CHECK_STYLE = {"pass": "green", "fail": "red", "unknown": "yellow"}
_SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "dim"}


def _instant(value: Any) -> str:
    """An end of a window, to the minute when it is a whole minute, else to the second
    (`--since 00:04:59Z` is never shown as 00:04); a fraction of a second is not shown
    (the JSON has the exact instants)."""
    whole = not any(getattr(value, unit, 0) for unit in ("second", "microsecond", "nanosecond"))
    return fmt.instant(value, seconds=not whole)


def _span(start: Any, end: Any) -> str:
    return f"{_instant(start)} .. {_instant(end)}"


def _number(value: Any) -> float | None:
    """A float for JSON, None for a missing one (NaN)."""
    return None if value is None or math.isnan(value) else float(value)


def _client(app: App) -> Any:
    from ..api import Client

    return Client.from_target(app.settings().target)


def _store(app: App) -> Any:
    """The store the readers read; a SQLite file that does not exist is a StoreError (the
    command's failure code), never an empty store created on the way."""
    from ..config import redact_url, sqlite_store_missing
    from ..store import Store, StoreError

    url = app.settings().store_url
    if sqlite_store_missing(url):
        raise StoreError(f"the store {redact_url(url)} does not exist: run 'lsops collect' first")
    return Store(url)


def target_note(store: Any, target: str) -> str | None:
    """A line when the store holds no scrape of `target` (but holds others)."""
    try:
        known = store.targets()
    except LsopsError:
        return None
    if not known or target in known:
        return None
    return (
        f"the store holds no scrape of target {target!r}; it holds "
        f"{', '.join(repr(k) for k in known)} (choose with --target NAME or LSOPS_TARGET)"
    )


def _window(
    window: str | None, since: str | None, until: str | None, default: str
) -> tuple[datetime, datetime]:
    """The command's window; without --since it is `default` long, ending at --until or now."""
    from ..times import window as parse_window

    return parse_window(window, since, until, default=default)


# --- lsops health ------------------------------------------------------------------------


def health_data(answer: Any, memory_limit_bytes: int | None) -> dict[str, Any]:
    """What `lsops health` shows: the answer of /api/health."""
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
        "memory_limit_bytes": memory_limit_bytes or None,
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
            "percentage": h.checks_percentage,  # as the server says it: 0-100
            # the server's 0 of 0 checks is "0" (quirk 5): a placeholder, not a measured 0 %
            "fraction": _checks_fraction(h.checks_passed, h.checks_total, h.checks_percentage),
        },
        "error": h.error,
        "notes": list(answer.notes),  # figures of the answer shown as unknown, and why
    }


def _checks_fraction(
    passed: int | None, total: int | None, percentage: float | None
) -> float | None:
    """The share of the health checks that passed (0-1): the server's percentage, else
    (the quick check gives none) passed / total; None for 0 of 0 checks."""
    if not total:
        return None
    if percentage is not None:
        return percentage / 100
    return None if passed is None else passed / total


def no_answer_data(exc: ApiError) -> dict[str, Any]:
    return {
        "status": "NO_ANSWER",
        "kind": exc.kind,
        "http_status": exc.status,
        "url": exc.url,
        "error": str(exc),
    }


_SERVICE_COLUMNS = [
    Column("name", "service"),
    Column("status", "status", style=_STYLE),
    Column("message", "message", lambda v: v or ""),
    Column("response_time_ms", "response time", fmt.ms, RIGHT),
]


def _health_view(d: Any) -> None:
    line(
        Text.assemble(
            (str(d["status"]), f"bold {_STYLE.get(d['status'], '')}"),
            f"  {d['url']}  HTTP {d['http_status']}  {'deep' if d['deep'] else 'quick'} check",
        )
    )
    if d["error"]:
        line(f"error: {d['error']}", style="red")
    memory, limit = d["memory"], d["memory_limit_bytes"]
    rss = memory["rss"]
    of_limit = f" ({fmt.pct(rss / limit, 0)} of {fmt.size(limit)})" if rss and limit else ""
    pid = fmt.DASH if d["pid"] is None else str(d["pid"])
    line(
        f"uptime {fmt.hours(d['uptime_s'])}  pid {pid}  "
        f"memory rss {fmt.size(rss)}{of_limit}, "
        f"heap {fmt.size(memory['heap_used'])} of {fmt.size(memory['heap_total'])}"
    )
    table(d["services"], _SERVICE_COLUMNS, title="services", empty=None)
    summary = d["checks_summary"]
    if summary["total"] is not None:
        share = summary["fraction"]
        share = f" ({fmt.pct(share)})" if share is not None else ""
        line(f"checks passed: {summary['passed']} of {summary['total']}{share}")
    if not d["deep"] and d["services"]:
        line("quick check: services say 'Configured'; --deep tests the connections", style="dim")
    for note in d["notes"]:
        line(note, style="yellow")


def _no_answer_view(d: Any) -> None:
    line(Text.assemble((str(d["status"]).replace("_", " "), "bold red"), f"  {d['error']}"))


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
        limit = app.settings().thresholds.memory_limit_bytes
    with client:
        try:
            answer = client.get_health(deep=deep)
        except ApiError as exc:
            emit(no_answer_data(exc), as_json, _no_answer_view)
            raise SystemExit(2) from None
        except LsopsError as exc:
            fail(str(exc), 3)
    data = health_data(answer, limit)
    emit(data, as_json, _health_view)
    raise SystemExit(HEALTH_EXIT.get(str(data["status"]).upper(), 3))


# --- lsops checklist ---------------------------------------------------------------------

_THRESHOLD_PREFIX = {
    "latency": ">= ",
    "cache_hit_rate": "> ",
    "error_rate": "< ",
    "memory": "< ",
    "cpu": "< ",
    "error_rate_stable": "every hour <= ",
}


def _check_value(value: Any, check: Any) -> str:
    """A check's figure: rates as percents (error rates never rounded to 0), else as is."""
    if value is None:
        return fmt.DASH
    if isinstance(value, float):
        if check["key"] in ("error_rate", "error_rate_stable"):
            return fmt.share(value, 2)
        threshold = check["threshold"]
        if check["key"] == "memory" or isinstance(threshold, float) and threshold <= 1:
            return fmt.pct(value)
        return fmt.number(value)
    return str(value)


def _check_threshold(threshold: Any, check: Any) -> str:
    if threshold is None:
        return fmt.DASH
    if check["key"] == "errors_resolved":  # days
        return f"< {fmt.number(threshold)} days"
    if isinstance(threshold, float) and threshold <= 1:
        return _THRESHOLD_PREFIX.get(check["key"], "") + fmt.exact_pct(threshold)
    return str(threshold)


def _check_name(name: Any, check: Any) -> Text:
    return Text.assemble((str(name), "bold"), "\n", (str(check["detail"]), "dim"))


_CHECK_COLUMNS = [
    Column("status", "", style=_CHECK_STYLE, no_wrap=True),
    Column("name", "check", _check_name, row=True),
    Column("value", "figure", _check_value, RIGHT, row=True, no_wrap=True),
    Column("threshold", "threshold", _check_threshold, row=True, no_wrap=True),
]


def _checklist_view(d: Any) -> None:
    table(
        d["checks"],
        _CHECK_COLUMNS,
        title=f"Monitoring checklist of {d['target']} {_span(d['start'], d['end'])}",
    )
    if d["note"]:
        line(d["note"], style="yellow")
    code = d["exit_code"]
    line(f"{d['status']} (exit {code})", style=["green", "yellow", "red", "yellow"][code])


def window_options(command: Any) -> Any:
    """`--window DURATION | --since T [--until T]`, shared by the commands reading the store."""
    for option in reversed(
        [
            click.option(
                "--window", metavar="DURATION", help="How far back to look (default 24h)."
            ),
            click.option(
                "--since",
                metavar="T",
                help="Start (ISO 8601, UTC) instead of --window; default: 24h before --until.",
            ),
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
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..analysis import checklist, exit_code
    from ..sources.settings import source_settings

    with run_command(usage=3, failure=3):
        start, end = _window(window, since, until, "24h")
        settings = app.settings()
        target = app.selected_target()
        with _store(app) as store:
            checks = checklist(
                store,
                start,
                end,
                settings.thresholds,
                target=target,
                include_monitoring=include_monitoring,
                sources=source_settings(settings),  # issue 10: Sentry, logs, pm2 lines
            )
            note = target_note(store, target)
    code = exit_code(checks)
    data = {
        "target": target,
        "note": note,
        "start": start,
        "end": end,
        "status": PLUGIN_STATUS[code],
        "exit_code": code,
        "checks": [c.as_dict() for c in checks],
    }
    emit(data, as_json, _checklist_view)
    raise SystemExit(code)


# --- lsops endpoints ---------------------------------------------------------------------

_ENDPOINT_COLUMNS = [
    Column("endpoint", "endpoint"),
    Column("requests", "requests", fmt.integer, RIGHT),
    Column("errors", "errors", fmt.integer, RIGHT),
    Column("error_rate", "error rate", lambda v: fmt.share(v, 2), RIGHT),
    Column("mean_ms", "mean latency", fmt.ms, RIGHT),
]


def _endpoints_said(d: Any) -> list[str]:
    """Why the endpoints list is what it is (no row: no scrape, the API never answered;
    a target the store lacks): beside the table, and on stderr with `--json` (a bare list,
    no room for it)."""
    rows, said = d["endpoints"], []
    if d["note"]:
        said.append(d["note"])
    elif not rows and d.get("no_answer") and d["no_answer"] == d.get("scrapes"):
        said.append(
            "the API did not answer in the window "
            f"({fmt.counted(d['no_answer'], 'scrape')} without an answer)"
        )
    elif not rows and d["stored"]:  # set only for a window without a scrape
        said.append(f"no scrape in the window{d['stored']}")
    elif not rows:
        said.append("no requests counted in the window (is the collector running?)")
    return said


def _endpoints_view(d: Any) -> None:
    rows = d["endpoints"]
    title = f"Endpoints of {d['target']} {_span(d['start'], d['end'])}"
    table(rows, _ENDPOINT_COLUMNS, title=title, empty=None)
    for text in _endpoints_said(d):
        line(text, style="yellow")
    excluded = d["excluded"]  # (not said with --json: --include-monitoring lists them)
    if excluded:
        names = ", ".join(f"{e['endpoint']} ({fmt.integer(e['requests'])})" for e in excluded)
        line(
            f"excluded monitoring endpoints: {names}; --include-monitoring keeps them", style="dim"
        )


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
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..analysis import endpoint_summary, summary_and_excluded
    from ..analysis.checklist import stored_span

    with run_command(usage=2, failure=1):
        start, end = _window(window, since, until, "24h")
        target = app.selected_target()
        with _store(app) as store:
            # without --include-monitoring: the summary and the endpoints it left out, of
            # one read of the window
            summary, excluded = (
                (endpoint_summary(store, start, end, target=target, include_monitoring=True), None)
                if include_monitoring
                else summary_and_excluded(store, start, end, target=target)
            )
            note = target_note(store, target)
            # no request counted: the scrapes of the window, and how many had no answer;
            # none at all: where the target's scrapes are (the text says it)
            health = store.health(start, end, target=target) if summary.empty else None
            stored = stored_span(store, target) if health is not None and health.empty else ""
    statuses = health["status"].astype(str).str.upper() if health is not None else None
    data = {
        "target": target,
        "note": note,
        "start": start,
        "end": end,
        "scrapes": None if statuses is None else len(statuses),
        "no_answer": None if statuses is None else int((statuses == "NO_ANSWER").sum()),
        "stored": stored,
        "endpoints": [
            {
                "endpoint": str(r.endpoint),
                "requests": int(r.requests),
                "errors": int(r.errors),
                "error_rate": _number(r.error_rate),
                "mean_ms": _number(r.mean_ms),
            }
            for r in summary.itertuples()
        ],
        "excluded": [
            {"endpoint": str(e), "requests": int(n)}
            for e, n in (
                zip(excluded["endpoint"], excluded["requests"], strict=True)
                if excluded is not None and not excluded.empty
                else ()
            )
        ],
    }
    # the JSON has always been the bare list of endpoints (the window is the one asked for)
    # with --json, the warnings on stderr (why no row), not the routine "excluded" line
    emit(data, as_json, _endpoints_view, json_key="endpoints", notes=_endpoints_said(data))


# --- lsops cache -------------------------------------------------------------------------

_CACHE_COLUMNS = [
    Column("cache", "cache"),
    Column("keys", "keys", fmt.integer, RIGHT),
    Column("hits", "hits", fmt.integer, RIGHT),
    Column("misses", "misses", fmt.integer, RIGHT),
    Column("hit_rate", "hit rate", fmt.pct, RIGHT),
]


def _cache_view(d: Any) -> None:
    if not d["reported"]:
        line("cache: not reported (the /api/metrics answer has no cache object)", style="yellow")
    else:
        line(
            f"cache: {fmt.counted(d['hits'], 'hit')}, {fmt.counted(d['misses'], 'miss', 'misses')}, "
            f"hit rate {fmt.pct(d['hit_rate'])} (since process start or last reset)"
        )
    table(
        d["caches"],
        _CACHE_COLUMNS,
        title=f"per cache (total keys {fmt.integer(d['total_keys'])})",
        empty=None,
    )
    if d["note"]:
        line(d["note"], style="yellow")
    for note in d["notes"]:
        line(note, style="yellow")


def _cache_reported(body: bytes) -> bool:
    """Whether the /api/metrics answer holds a `cache` object with hits or misses (its
    record reads a missing one, or `{}`, as 0 hits and 0 misses)."""
    try:
        metrics = json.loads(body).get("metrics")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return True
    cache = metrics.get("cache") if isinstance(metrics, dict) else None
    return isinstance(cache, dict) and ("hits" in cache or "misses" in cache)


@main.command("cache")
@click.option(
    "--no-deep", "no_deep", is_flag=True, help="Skip the deep health check (no per-cache stats)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def cache_command(app: App, no_deep: bool, as_json: bool) -> None:
    """The runbook's cache stats, live from the API: hits, misses, hit rate, per cache."""
    from ..answers import cache_stats

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
    reported = _cache_reported(metrics.body)
    notes = list(metrics.notes)
    total_keys, per_cache = cache_stats(caches or {}, notes)
    for row in per_cache:  # a rate only of known counts
        hits, misses = row["hits"], row["misses"]
        known = hits is not None and misses is not None and hits + misses > 0
        row["hit_rate"] = hits / (hits + misses) if known else None
    # a counter no server can have is unknown (None, said in the notes): no sum of it
    counted = reported and cache.hits is not None and cache.misses is not None
    operations = cache.hits + cache.misses if counted else None
    data = {
        "url": metrics.url,
        "reported": reported,  # False: no `cache` object in the answer (figures null)
        "hits": cache.hits if reported else None,
        "misses": cache.misses if reported else None,
        "operations": operations,
        "hit_rate": cache.hit_rate if reported and operations != 0 else None,
        "since": "process start or last metrics reset (cumulative counters)",
        "total_keys": total_keys,
        "caches": per_cache,
        "note": note,
        "notes": notes,  # figures of the answers shown as unknown, and why
    }
    emit(data, as_json, _cache_view)


# --- lsops incidents ---------------------------------------------------------------------


def _incident_duration(seconds: Any, incident: Any) -> str:
    return fmt.duration(seconds) + (" (ongoing)" if incident["ongoing"] else "")


_INCIDENT_COLUMNS = [
    Column("start", "start", fmt.instant),
    Column("duration_s", "duration", _incident_duration, row=True),
    Column("kind", "kind"),
    Column("severity", "severity", style=_SEVERITY_STYLE),
    Column("endpoint", "endpoint", lambda v: v or ""),
    Column("detail", "detail"),
]


def _incidents_view(d: Any) -> None:
    rows = d["incidents"]
    if d["note"]:
        line(d["note"], style="yellow")
    if not rows and d["unobserved"]:
        return  # not "no incidents": the note said why nothing is known
    if not rows:
        between = f"{_instant(d['start'])} and {_instant(d['end'])}"
        line(f"no incidents of {d['target']} between {between}")
        return
    table(
        rows, _INCIDENT_COLUMNS, title=f"Incidents of {d['target']} {_span(d['start'], d['end'])}"
    )
    # a restart alone asks for no postmortem (a deploy's; QA 17): its command is in --json
    commands = [r["postmortem_command"] for r in rows if r["kind"] != "restart"]
    if commands:
        line("write a postmortem:", style="bold")
    for command in commands:
        line(f"  {command}")


class _IncidentsCommand(click.Command):
    """`lsops incidents`, whose help lists the kinds from their registry (analysis
    `KINDS`, read only when the help is shown: the analysis imports pandas)."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..analysis import INCIDENT_KINDS

        super().format_help_text(ctx, formatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(f"Kinds: {', '.join(INCIDENT_KINDS)}.")


@main.command("incidents", cls=_IncidentsCommand)
@click.option(
    "--since", metavar="T", help="Start (ISO 8601, UTC); default: 30 days before --until."
)
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
    """Incidents the history shows, each with the command that writes its postmortem
    (a restart's only in --json: a restart alone asks for none)."""
    app.reads_store = True  # a target the store holds, lsops.toml no longer: read
    from ..analysis import incident_window, incidents, with_commands
    from ..analysis.checklist import stored_span

    with run_command(usage=2, failure=1):
        start, end = _window(window, since, until, "30d")
        thresholds = app.settings().thresholds
        target = app.selected_target()
        # the postmortem commands name a target chosen by --target or LSOPS_TARGET (the
        # choices lsops.toml does not keep): each command reads the same target's history
        named = target if app.target is not None or os.environ.get("LSOPS_TARGET") else None
        with _store(app) as store:
            found = with_commands(
                incidents(
                    store,
                    start,
                    end,
                    thresholds,
                    target=target,
                    include_monitoring=include_monitoring,
                ),
                thresholds,
                target=named,
            )
            note = target_note(store, target)
            # no incident: said as "none" only when the window was observed at all
            unobserved = bool(
                found.empty
                and note is None
                and store.scrapes(start, end, target=target, columns=["ts"]).empty
            )
            if unobserved:
                note = f"no scrape in the window{stored_span(store, target)}: incidents unknown"
    rows = []
    for r in found.itertuples():
        # the postmortem's window: analysis.incident_window, the rule of postmortem_command
        window_start, window_end = incident_window(r.start, r.end, thresholds)
        rows.append(
            {
                "start": r.start,
                "end": r.end,
                "duration_s": float(r.duration_s),
                "kind": r.kind,
                "severity": r.severity,
                "endpoint": r.endpoint if isinstance(r.endpoint, str) else None,
                "detail": r.detail,
                "ongoing": bool(r.ongoing),
                "postmortem_start": window_start,
                "postmortem_end": window_end,
                "postmortem_command": r.postmortem_command,
            }
        )
    data = {
        "target": target,
        "note": note,
        "unobserved": unobserved,
        "start": start,
        "end": end,
        "incidents": rows,
    }
    # the JSON has always been the bare list of incidents (the window is the one asked for)
    # with --json, the note on stderr (a target the store lacks, a window without a scrape)
    emit(data, as_json, _incidents_view, json_key="incidents", notes=[note] if note else [])
