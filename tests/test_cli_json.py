"""Every command with --json: its JSON carries every field its text shows.

The commands are enumerated from the click group, so a new command with --json is covered
(or fails here until it has a case). Each case runs the command twice against real parts
(the simulated API, a store collected from it, the planted PostgreSQL, an archive): once
for people under `render.trace()`, which records every key of the data the text view
read, and once with --json; every key read must be a key of the JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from lsops_lib.cli import main, render
from tests.fixtures.cli import PLACEHOLDER_NOTEBOOKS

Env = Callable[[pytest.FixtureRequest, Path], dict[str, str]]


def json_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[str]:
    """The full names ("db size") of every command that has a --json option."""
    found: list[str] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += json_commands(command, (*prefix, name))
        elif any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params):
            found.append(" ".join((*prefix, name)))
    return found


# --- the environments ----------------------------------------------------------------------


def _world(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    world = request.getfixturevalue("cli_world")
    return {"LSOPS_API_URL": world.api_url, "LSOPS_STORE": world.store_url}


def _dead_api(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"LSOPS_API_URL": f"http://127.0.0.1:{port}"}


def _collect(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    world = request.getfixturevalue("cli_world")
    return {"LSOPS_API_URL": world.api_url, "LSOPS_STORE": f"sqlite:///{tmp / 'own.sqlite'}"}


def _database(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {"LSOPS_DATABASE_URL": request.getfixturevalue("longsang_db").password_url}


def _collect_db(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {**_collect(request, tmp), **_database(request, tmp)}


def _reports(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {
        "LSOPS_NOTEBOOKS": str(PLACEHOLDER_NOTEBOOKS),
        "LSOPS_OUTPUTS": str(tmp / "outputs"),
        "LSOPS_STORE": f"sqlite:///{tmp / 'm.sqlite'}",
    }


def _archive(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {"LSOPS_OUTPUTS": str(request.getfixturevalue("cli_archive"))}


def _backups(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from tests.fixtures.backups import place

    dumps = request.getfixturevalue("backup_dumps")
    folder = tmp / "dumps"
    place(dumps.custom, folder, "older.dump", age_s=30 * 3600)
    place(dumps.custom, folder, "newest.dump", age_s=60)
    return {
        **_database(request, tmp),
        "LSOPS_BACKUPS": str(folder / "*.dump"),
        "LSOPS_STORE": f"sqlite:///{tmp / 'backups.sqlite'}",
    }


def _vectors(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {"LSOPS_DATABASE_URL": request.getfixturevalue("planted_vectors").password_url}


SPAN = ["--since", "2026-10-01T00:00Z", "--until", "2026-10-01T06:01Z"]  # cli_world's window


def _security(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    """cli_world's store, a saved real npm audit and secrets dates (issue 12)."""
    audit = Path(__file__).parent / "data" / "npm-audit" / "vulnerable.json"
    (tmp / "lsops.toml").write_text(
        f'[secrets]\nOPENAI_API_KEY = "2026-01-01"\n[security]\naudit_file = "{audit}"\n'
    )
    return _world(request, tmp)


@dataclass(frozen=True)
class Case:
    """One run of a command: its arguments (without --json), its environment, the exit
    codes it may end with, the fields its text must show (so that the case has rows to
    compare), and the fields of a bare-list JSON's context the text may show besides."""

    id: str
    args: list[str]
    env: Env
    codes: tuple[int, ...] = (0,)
    shows: frozenset[str] = frozenset()
    context: frozenset[str] = frozenset()
    marks: tuple[Any, ...] = ()
    streams: bool = False  # JSON documents one after the other (collect)


def case(id: str, args: list[str], env: Env, **kw: Any) -> Case:
    for name in ("shows", "context"):
        if name in kw:
            kw[name] = frozenset(kw[name])
    return Case(id, args, env, **kw)


PG = (pytest.mark.postgres,)

CASES: dict[str, list[Case]] = {
    "health": [
        case(
            "deep",
            ["health", "--deep"],
            _world,
            codes=(0, 1, 2),
            shows={"status", "memory.rss", "memory_limit_bytes", "services[].response_time_ms"},
        ),
        case("no answer", ["health"], _dead_api, codes=(2,), shows={"status", "error"}),
    ],
    "checklist": [
        case(
            "window",
            ["checklist", *SPAN],
            _world,
            codes=(0, 1, 2),
            shows={"start", "end", "status", "checks[].value", "checks[].threshold"},
        )
    ],
    "endpoints": [
        case(
            "window",
            ["endpoints", *SPAN],
            _world,
            shows={"endpoints[].error_rate", "endpoints[].mean_ms"},
            context={
                *("start", "end", "excluded", "excluded[].endpoint", "excluded[].requests"),
                *("target", "note"),  # issue 13: the selected target, said in the title
            },
        )
    ],
    "cache": [case("live", ["cache"], _world, shows={"hit_rate", "caches[].hit_rate"})],
    "incidents": [
        case(
            "window",
            ["incidents", *SPAN],
            _world,
            shows={"incidents[].duration_s", "incidents[].postmortem_command"},
            context={"start", "end", "target", "note"},  # issue 13: the selected target
        )
    ],
    "collect": [
        case(
            "once",
            ["collect", "--once"],
            _collect,
            shows={"ts", "health", "duration_ms", "stored"},
            streams=True,
        ),
        case(
            "once with the database",
            ["collect", "--once", "--db"],
            _collect_db,
            shows={"db.tables", "db.queries_error"},
            marks=PG,
            streams=True,
        ),
    ],
    "db size": [
        case(
            "planted",
            ["db", "size"],
            _database,
            shows={"database_bytes", "tables[].total_bytes"},
            marks=PG,
        )
    ],
    "db indexes": [
        case(
            "planted",
            ["db", "indexes"],
            _database,
            shows={"stats_reset", "seq_scan[].seq_scan", "unused[].size_bytes"},
            marks=PG,
        )
    ],
    "db queries": [
        case(
            "planted",
            ["db", "queries"],
            _database,
            shows={"available"},
            marks=PG,
        )
    ],
    "db maintenance": [
        case(
            "planted",
            ["db", "maintenance"],
            _database,
            shows={"tables[].last_vacuum", "connections.fraction", "thresholds.long_running_s"},
            marks=PG,
        )
    ],
    "index-stats": [
        case(
            "planted",
            ["index-stats"],
            _database,
            shows={"by_entity_type[].last_indexed", "log.tokens_used", "coverage[].stale"},
            marks=PG,
        )
    ],
    "report": [
        case(
            "postmortem",
            [
                "report",
                "postmortem",
                "--start",
                "2026-10-01T01:30Z",
                "--end",
                "2026-10-01T03:10Z",
                "--title",
                "Chat outage",
            ],
            _reports,
            shows={"status", "duration_s", "html", "index"},
        ),
        case(
            "a batch that fails",
            ["report", "monthly-review", "--months", "2026-10..2026-10", "-p", "fail", "true"],
            _reports,
            codes=(1,),
            shows={"runs[].status", "runs[].error", "runs[].path", "index"},
        ),
    ],
    "reports": [
        case("archive", ["reports"], _archive, shows={"runs[].started", "runs[].duration_s"})
    ],
    # issue 12: reindex-list, security
    "reindex-list": [
        case(
            "planted",
            ["reindex-list"],
            _database,
            shows={"by_type[].stale", "by_type[].note", "entities[].entity_id", "command"},
            marks=PG,
        )
    ],
    "security": [
        case(
            "audit file, store, secrets",
            ["security", *SPAN],
            _security,
            codes=(0, 1),
            shows={
                "audit.counts",
                "audit.vulnerabilities[].fix",
                "auth.hours_covered",
                "auth.sources",
                "secrets.secrets[].status",
            },
        )
    ],
    # issue 12: the dumps of the planted database, the newest restored (a drill)
    "backup check": [
        case(
            "restore drill",
            ["backup", "check", "--restore"],
            _backups,
            codes=(0, 1, 2),
            shows={
                "status",
                "newest",
                "files[].verdict",
                "files[].detail",
                "files[].tables",
                "restore.seconds",
                "restore.tables[].dump_rows",
                "restore.tables[].match",
            },
            marks=PG,
        )
    ],
    "db vectors": [  # issue 15
        case(
            "pgvector",
            ["db", "vectors", "--sample", "10"],
            _vectors,
            shows={
                "columns[].zero_vectors",
                "columns[].duplicate_examples",
                "indexes[].recall_at_k",
                "indexes[].suggested.value",
                "indexes[].suggested.tried[].recall_at_k",
                "threshold.share_with_result",
            },
            marks=PG,
        ),
        case("no pgvector", ["db", "vectors"], _database, shows={"available", "message"}, marks=PG),
    ],
}
CASES["db size"].append(  # issue 15: --forecast
    case(
        "forecast",
        ["db", "size", "--forecast"],
        _database,
        shows={"database_bytes", "limit_bytes", "message", "reaches_limit_range"},
        marks=PG,
    )
)


# issue 13 (schema drift): a figure the database cannot give is null, `unavailable` says why
def _drifted(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {"LSOPS_DATABASE_URL": request.getfixturevalue("longsang_no_optional_tables").url}


CASES["index-stats"].append(
    case(
        "schema drift",
        ["index-stats"],
        _drifted,
        shows={"log", "latest_failures", "unavailable", "coverage[].missing"},
        marks=PG,
    )
)
CASES["db indexes"].append(
    case(
        "statistics age",
        ["db", "indexes"],
        _database,
        shows={"stats_since", "stats_age_days", "unused_index_min_age", "unused[].drop_proposed"},
        marks=PG,
    )
)


# issue 11: alerts. `check` on a store whose last two scrapes got no answer (api_down
# fires; nothing is configured to notify); `test` through a webhook nobody listens to.
def _alerting(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from datetime import UTC, datetime

    from lsops_lib.store import Store
    from tests.fixtures.store import T0, make_scrape

    url = f"sqlite:///{tmp / 'alerts.sqlite'}"
    minutes = (datetime.now(UTC) - T0).total_seconds() / 60
    with Store(url) as store:
        for back in (10, 5):
            store.record_scrape(make_scrape(minutes - back, None))
    return {"LSOPS_STORE": url}


def _dead_webhook(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {"LSOPS_ALERT_WEBHOOK": _dead_api(request, tmp)["LSOPS_API_URL"] + "/hook"}


CASES["alerts check"] = [
    case(
        "api down",
        ["alerts", "check"],
        _alerting,
        shows={"target", "rules[].rule", "rules[].status", "alerts[].name", "alerts[].state"},
    )
]
CASES["alerts test"] = [
    case(
        "unreachable webhook",
        ["alerts", "test"],
        _dead_webhook,
        codes=(1,),
        shows={"notifiers[].notifier", "notifiers[].ok", "notifiers[].error"},
    )
]


# issue 10: lsops errors (Sentry now), lsops logs (the collected log lines), collect's sources
def _sentry(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from datetime import UTC, datetime

    from lsops_lib.sim.sentry import SimIssue
    from tests.fixtures.sources import SENTRY_TOKEN

    stand_in = request.getfixturevalue("sentry_stand_in")
    now = datetime.now(UTC)
    stand_in.issues += [
        SimIssue("1", "API-1", "FATAL ERROR: heap out of memory", "node", "fatal", events=[now]),
        SimIssue("2", "API-2", "Error: connect ECONNREFUSED", "pg", "error", events=[now]),
    ]
    return {
        "LSOPS_SENTRY_URL": stand_in.url,
        "LSOPS_SENTRY_ORG": "longsang",
        "LSOPS_SENTRY_PROJECT": "longsang-api",
        "LSOPS_SENTRY_TOKEN": SENTRY_TOKEN,
    }


def _log_lines(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    from datetime import UTC, datetime, timedelta

    from lsops_lib.sources.collect import collect_logs
    from lsops_lib.sources.settings import source_settings
    from lsops_lib.store import Store
    from tests.fixtures.sources import Pm2Log

    start = datetime(2026, 10, 16, 8, tzinfo=UTC)
    log = Pm2Log(tmp)
    log.write("❌ Express Error: Database query timeout after 8712ms", start, frames=2)
    log.write("⚠️ slow query 812ms", start + timedelta(minutes=1))
    env = {"LSOPS_STORE": f"sqlite:///{tmp / 'logs.sqlite'}", "LSOPS_LOGS": str(tmp / "api-*.log")}
    with Store(env["LSOPS_STORE"]) as store:
        collect_logs(store, source_settings(None, env=env), "default")
    return env


def _collect_sources(request: pytest.FixtureRequest, tmp: Path) -> dict[str, str]:
    return {**_collect(request, tmp), **_log_lines(request, tmp), "LSOPS_PM2": "off"}


LOGS_SPAN = ["--since", "2026-10-16T00:00Z", "--until", "2026-10-17T00:00Z"]
CASES["errors"] = [
    case(
        "sentry",
        ["errors", "--window", "24h"],
        _sentry,
        codes=(2,),
        shows={"issues[].title", "issues[].permalink", "issues[].events", "status", "exit_code"},
    ),
    case("not configured", ["errors"], lambda request, tmp: {}, codes=(3,), shows={"error"}),
]
CASES["logs"] = [
    case(
        "patterns",
        ["logs", *LOGS_SPAN],
        _log_lines,
        shows={"patterns[].template", "patterns[].count", "patterns[].example", "start"},
    ),
    case(
        "around",
        ["logs", "--around", "2026-10-16T08:01Z"],
        _log_lines,
        shows={"lines[].text", "lines[].ts", "lines[].estimated"},
    ),
]
CASES["collect"].append(
    case(
        "once with the logs",
        ["collect", "--once"],
        _collect_sources,
        shows={"source_runs[].source", "source_runs[].items", "source_runs[].ok"},
        streams=True,
    )
)


def _params() -> list[Any]:
    params = []
    for command in json_commands():
        cases = CASES.get(command)
        if not cases:
            params.append(pytest.param(command, None, id=f"{command}: no case"))
            continue
        for c in cases:
            params.append(pytest.param(command, c, id=f"{command}: {c.id}", marks=c.marks))
    return params


def _documents(stdout: str) -> list[Any]:
    """The JSON documents of an output: one, or several one after the other."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(stdout) and stdout[at].isspace():
            at += 1
        if at >= len(stdout):
            return docs
        doc, at = decoder.raw_decode(stdout, at)
        docs.append(doc)


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _instants(document: Any) -> list[str]:
    if isinstance(document, dict):
        return [s for v in document.values() for s in _instants(v)]
    if isinstance(document, list):
        return [s for v in document for s in _instants(v)]
    return [document] if isinstance(document, str) and _INSTANT.match(document) else []


def test_every_command_with_json_is_enumerated() -> None:
    names = json_commands()
    assert {"health", "db indexes", "report", "reports", "collect"} <= set(names)
    assert "demo" not in names  # no --json: nothing to compare


@pytest.mark.parametrize(("command", "the_case"), _params())
def test_the_json_carries_every_field_the_text_shows(
    command: str,
    the_case: Case | None,
    request: pytest.FixtureRequest,
    lsops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    assert the_case is not None, f"`lsops {command}` has --json: add a case to CASES"
    env = {**lsops_env, **the_case.env(request, tmp_path)}
    runner = CliRunner()

    with render.trace() as seen:
        text = runner.invoke(main, the_case.args, env=env)
    assert text.exit_code in the_case.codes, (text.stdout, text.stderr)
    assert "Traceback" not in text.stdout + text.stderr
    assert seen.views, f"the text of `lsops {command}` is not printed by render.emit/show"

    result = runner.invoke(main, [*the_case.args, "--json"], env=env)
    assert result.exit_code in the_case.codes, (result.stdout, result.stderr)
    documents = _documents(result.stdout)
    assert len(documents) == 1 or the_case.streams, result.stdout

    if seen.json_keys:  # a bare list: the JSON is data[key]
        (key,) = seen.json_keys
        assert all(isinstance(d, list) for d in documents)
        in_json = {key} | {key + p for d in documents for p in render.paths(d)}
        context = {r for r in seen.reads if r != key and not r.startswith(key + "[]")}
        assert context <= the_case.context, f"text shows {context - the_case.context}"
        read = seen.reads - context
    else:
        in_json = {p for d in documents for p in render.paths(d)}
        read = seen.reads
    assert read, "the text read nothing from its data"
    assert the_case.shows <= read, f"the case shows no {sorted(the_case.shows - read)}"
    assert read <= in_json, f"text fields missing from the JSON: {sorted(read - in_json)}"

    for instant in _instants(documents):  # instants are ISO 8601 in UTC
        assert instant.endswith(("+00:00", "Z")), instant
