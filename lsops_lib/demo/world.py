"""The demo's world: the month, the planted incidents, and the LongSang database.

`plan(...)` fixes everything that happens: the month under review (the last complete
calendar month), the history window (`days` days ending at the month's end), and the
incidents planted in it, placed by fractions of the part of the window inside the month
so that a shorter `--days` keeps all of them:

    cache      the cache hit rate falls to 35 % for 8 hours
    latency    /context/search answers 5x slower for a few days (10 % of the span)
    outage     40 minutes without an answer (02:12 - 02:52 UTC), then the process restarts
    memory     a week (23 % of the span, at most 7 days) of slow RSS growth, 2.3 MiB/h,
               ended by a deploy (a restart)

The history is collected by segments that each begin with a process start of the API
(the first segment with the process started 6 h before the window, the others at the
planted restarts), so that independent workers can collect them side by side: each
segment is its own `SimulatedAPI` on its own loopback port, scraped through the real
collector; at a segment boundary the store sees exactly what it sees at a real restart.

`seed_database(...)` / `grow_day(...)` build the LongSang database (schema, a few
thousand entities, embeddings for most, an indexing log with failures) and a workload
that leaves real statistics behind: pg_stat_statements (when preloaded), a cache table
whose expired rows are deleted every day with autovacuum disabled (dead tuples), an index
nobody uses (`idx_conversations_title`) and the schema's own redundant index
(`idx_context_embeddings_entity_type`, covered by UNIQUE (entity_type, entity_id)).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..sim import Event, Scenario
from ..times import parse_month, previous_month, utcnow

INTERVAL = timedelta(minutes=5)
SLOW_ENDPOINT = "/context/search"
SLOW_FACTOR = 5.0
CACHE_HIT_RATE_FALL = 0.35
MEMORY_CLIMB_PER_HOUR = 2.3 * 1024 * 1024
OUTAGE_MINUTES = 40
MIN_DAYS = 3
MAX_DAYS = 62
DATABASE = "longsang"
UNUSED_INDEX = "idx_conversations_title"
REDUNDANT_INDEX = "idx_context_embeddings_entity_type"
DEAD_TUPLES_TABLE = "response_cache"


@dataclass(frozen=True)
class Segment:
    """One stretch of history served by one API process: scrapes at grid ticks in
    [start, end); the process started at `process_start` (<= start)."""

    index: int
    start: datetime
    end: datetime
    process_start: datetime

    @property
    def scrapes(self) -> int:
        first = first_tick(self.start)
        if first >= self.end:
            return 0
        return int((self.end - first) / INTERVAL) + (1 if (self.end - first) % INTERVAL else 0)


@dataclass(frozen=True)
class Plan:
    month: str
    month_start: datetime
    month_end: datetime
    start: datetime  # history window [start, end)
    end: datetime
    days: int
    seed: int
    scenario: Scenario
    segments: tuple[Segment, ...]
    outage: tuple[datetime, datetime]
    latency: tuple[datetime, datetime]
    cache: tuple[datetime, datetime]
    memory: tuple[datetime, datetime]
    restarts: tuple[datetime, ...]
    slow_endpoint: str = SLOW_ENDPOINT
    notes: list[str] = field(default_factory=list)

    @property
    def scrapes(self) -> int:
        return sum(s.scrapes for s in self.segments)

    def describe(self) -> list[tuple[str, str]]:
        """The planted incidents, for the console and the demo log."""

        def span(a: datetime, b: datetime) -> str:
            return f"{a:%Y-%m-%d %H:%M} - {b:%Y-%m-%d %H:%M} UTC"

        return [
            ("outage", f"{span(*self.outage)} ({OUTAGE_MINUTES} min), then a restart"),
            (
                "latency",
                f"{self.slow_endpoint} x{SLOW_FACTOR:g} slower, {span(*self.latency)}",
            ),
            ("cache", f"hit rate {CACHE_HIT_RATE_FALL:.0%}, {span(*self.cache)}"),
            (
                "memory",
                f"RSS +{MEMORY_CLIMB_PER_HOUR / 2**20:.1f} MiB/h, {span(*self.memory)}, "
                "ended by a deploy (restart)",
            ),
        ]


def first_tick(at: datetime) -> datetime:
    """The first instant of the 5-minute grid at or after `at`."""
    period = INTERVAL.total_seconds()
    ts = at.timestamp()
    return datetime.fromtimestamp(math.ceil(ts / period - 1e-9) * period, UTC)


def last_complete_month(now: datetime | None = None) -> str:
    return previous_month((now or utcnow()).strftime("%Y-%m"))


def plan(month: str | None = None, *, days: int | None = None, seed: int = 0) -> Plan:
    """The demo's month, history window and planted incidents (see the module docstring).

    `days`: the history length, ending at the month's end (default: the whole month).
    """
    month = month or last_complete_month()
    month_start, month_end = parse_month(month)
    month_days = (month_end - month_start).days
    days = month_days if days is None else int(days)
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"--days must be between {MIN_DAYS} and {MAX_DAYS}, not {days}")
    end = month_end
    start = end - timedelta(days=days)
    # incidents go into the part of the window inside the month (whole days)
    base = max(start, month_start)
    span_days = (end - base).days

    def day(fraction: float) -> datetime:
        return base + timedelta(days=int(fraction * span_days))

    cache_start = day(0.2) + timedelta(hours=8)
    cache = (cache_start, cache_start + timedelta(hours=8))
    lat_start = day(0.3) + timedelta(hours=9)
    lat_days = max(1, round(0.1 * span_days))
    latency = (lat_start, lat_start + timedelta(days=lat_days))
    outage_start = day(0.5) + timedelta(hours=2, minutes=12)
    outage = (outage_start, outage_start + timedelta(minutes=OUTAGE_MINUTES))
    back = outage[1] + timedelta(seconds=30)  # the process is started again
    mem_start = max(day(0.62), back + timedelta(hours=12)) + timedelta(hours=10)
    mem_len = timedelta(hours=min(7 * 24, max(12, int(0.23 * span_days * 24))))
    deploy = min(mem_start + mem_len, end - timedelta(hours=6))
    memory = (mem_start, deploy)
    # keep the latency regression clear of the outage (its own days)
    if latency[1] > outage[0]:
        latency = (
            latency[0],
            max(latency[0] + timedelta(hours=12), outage[0] - timedelta(hours=6)),
        )

    events = [
        Event("cache", cache[0], cache[1], value=CACHE_HIT_RATE_FALL),
        Event("latency", latency[0], latency[1], SLOW_ENDPOINT, SLOW_FACTOR),
        Event("outage", outage[0], back),
        Event("restart", back),
        Event("memory_climb", memory[0], memory[1], value=MEMORY_CLIMB_PER_HOUR),
        Event("restart", deploy + timedelta(seconds=20)),
    ]
    first_process = start - timedelta(hours=6)
    scenario = Scenario.default(first_process, seed=seed, incidents=False)
    scenario.events = events
    restarts = (back, deploy + timedelta(seconds=20))
    bounds = [start, *restarts, end]
    segments = tuple(
        Segment(i, a, b, first_process if i == 0 else a)
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    )
    return Plan(
        month=month,
        month_start=month_start,
        month_end=month_end,
        start=start,
        end=end,
        days=days,
        seed=seed,
        scenario=scenario,
        segments=segments,
        outage=outage,
        latency=latency,
        cache=cache,
        memory=memory,
        restarts=restarts,
    )


def segment_scenario(p: Plan, segment: Segment) -> Scenario:
    """The scenario one segment's API process runs: the plan's events, started at the
    segment's process start, with its own random stream."""
    sc = p.scenario
    return Scenario(
        endpoints=list(sc.endpoints),
        events=list(sc.events),
        cache_hit_rate=sc.cache_hit_rate,
        cache_ops_per_minute=sc.cache_ops_per_minute,
        base_rss=sc.base_rss,
        seed=p.seed * 101 + segment.index,
        start=segment.process_start,
        diurnal=sc.diurnal,
    )


# --- the LongSang database ------------------------------------------------------------------

_EMBEDDING = "(SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 1536 + 0 * {ref}))"

_SEED_SQL = """
ALTER TABLE response_cache SET (autovacuum_enabled = false);
INSERT INTO projects (name, slug, description, status, created_at, updated_at)
    SELECT 'Project ' || g, 'project-' || g, 'LongSang client project ' || g,
           (ARRAY['active','active','active','paused','archived'])[1 + mod(g, 5)],
           %(t0)s::timestamptz - make_interval(days => 200 - g),
           %(t0)s::timestamptz - make_interval(days => mod(g, 20))
    FROM generate_series(1, 40) g;
INSERT INTO workflows (project_id, name, description, definition, created_at, updated_at)
    SELECT p.id, 'Workflow ' || p.slug || '-' || g, 'automation ' || g,
           jsonb_build_object('steps', mod(g, 7) + 1), p.created_at, p.updated_at
    FROM projects p, generate_series(1, 3) g;
INSERT INTO agents (project_id, name, type, config, created_at, updated_at)
    SELECT p.id, 'Agent ' || p.slug, (ARRAY['assistant','researcher','writer'])[1 + mod(hashtext(p.slug) & 1023, 3)],
           '{"model": "gpt-4o-mini"}', p.created_at, p.updated_at
    FROM projects p WHERE p.status <> 'archived';
CREATE INDEX idx_conversations_title ON conversations (title);
"""


def _uuid_rows(conn: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    return [r[0] for r in conn.execute(sql, params).fetchall()]


def seed_database(conn: Any, p: Plan, *, vector: bool) -> None:
    """The entities that exist before the window: projects, workflows, agents, their
    embeddings and indexing log, and the unused index. `conn`: psycopg, autocommit."""
    for statement in _SEED_SQL.split(";"):
        if statement.strip():
            conn.execute(statement, {"t0": p.start} if "%(t0)s" in statement else None)
    cast = "::vector" if vector else ""
    for table, entity_type, name in (
        ("projects", "project", "name"),
        ("workflows", "workflow", "name"),
        ("agents", "agent", "name"),
    ):
        # most entities are indexed; a few never were (coverage gaps), one has a NULL embedding
        conn.execute(
            f"""
            INSERT INTO context_embeddings (entity_type, entity_id, entity_name, entity_description,
                                            embedding, project_id, created_at, updated_at)
            SELECT %(type)s, t.id, t.{name}, 'seeded',
                   CASE WHEN row_number() OVER () = 3 THEN NULL
                        ELSE {_EMBEDDING.format(ref="length(t.id::text)")}{cast} END,
                   {"t.id" if table == "projects" else "t.project_id"},
                   t.created_at, t.updated_at - interval '1 day'
            FROM {table} t WHERE mod(abs(hashtext(t.id::text)), 10) <> 0
            """,
            {"type": entity_type},
        )
    conn.execute(
        """
        INSERT INTO context_indexing_log (entity_type, entity_id, status, tokens_used, created_at, completed_at)
        SELECT entity_type, entity_id, 'completed', 400 + length(entity_name) * 7, created_at,
               created_at + interval '2 seconds'
        FROM context_embeddings
        """
    )


_FAILURES = (
    "OpenAI API error: 429 Too Many Requests (rate limited)",
    "OpenAI API error: 502 Bad Gateway",
    "timeout after 30000ms waiting for embeddings",
    "entity not found",
)


def grow_day(conn: Any, p: Plan, day: datetime, rng: random.Random, *, vector: bool) -> int:
    """One day of LongSang activity at virtual date `day`: conversations, agent and
    workflow executions, documents, new embeddings (and their indexing log, with
    failures), cache entries (the expired ones deleted: dead tuples), a news digest;
    then the application's read queries (pg_stat_statements). Returns the cache entries
    deleted (the day's dead tuples)."""
    cast = "::vector" if vector else ""
    params = {"day": day, "n_conv": 90 + rng.randrange(40), "n_exec": 50 + rng.randrange(30)}
    conn.execute(
        """
        INSERT INTO conversations (project_id, user_id, title, messages, created_at, updated_at)
        SELECT (SELECT id FROM projects ORDER BY id OFFSET mod(g * 7, 40) LIMIT 1),
               'user-' || mod(g * 13, 97), 'Conversation about ' || md5(g::text || %(day)s::text),
               jsonb_build_array(
                   jsonb_build_object('role', 'user', 'content', repeat('question ', 20 + mod(g, 30))),
                   jsonb_build_object('role', 'assistant', 'content', repeat('answer ', 60 + mod(g, 80)))),
               %(day)s::timestamptz + make_interval(secs => g * 600),
               %(day)s::timestamptz + make_interval(secs => g * 600 + 90)
        FROM generate_series(1, %(n_conv)s) g
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO agent_executions (agent_id, conversation_id, status, input, output, tokens_used,
                                      duration_ms, error_message, created_at)
        SELECT a.id, c.id, CASE WHEN mod(g, 25) = 0 THEN 'failed' ELSE 'completed' END,
               jsonb_build_object('prompt', left(c.title, 40)), jsonb_build_object('ok', mod(g, 25) <> 0),
               300 + mod(g * 17, 2000), 400 + mod(g * 37, 9000),
               CASE WHEN mod(g, 25) = 0 THEN 'OpenAI API error: 502 Bad Gateway' END,
               c.created_at + interval '5 seconds'
        FROM (SELECT id, title, created_at, row_number() OVER (ORDER BY id) AS g
              FROM conversations WHERE created_at >= %(day)s::timestamptz
              AND created_at < %(day)s::timestamptz + interval '1 day') c
        JOIN LATERAL (SELECT id FROM agents ORDER BY id OFFSET mod(c.g, 30) LIMIT 1) a ON true
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO workflow_executions (workflow_id, status, input, output, error_message,
                                         duration_ms, started_at, completed_at, created_at)
        SELECT w.id, CASE WHEN mod(g, 17) = 0 THEN 'failed' ELSE 'completed' END,
               '{"trigger": "schedule"}', '{"items": 12}',
               CASE WHEN mod(g, 17) = 0 THEN 'step 3: upstream timeout' END, 1200 + mod(g * 53, 20000),
               %(day)s::timestamptz + make_interval(secs => g * 900),
               %(day)s::timestamptz + make_interval(secs => g * 900 + 30),
               %(day)s::timestamptz + make_interval(secs => g * 900)
        FROM generate_series(1, %(n_exec)s) g
        JOIN LATERAL (SELECT id FROM workflows ORDER BY id OFFSET mod(g * 11, 120) LIMIT 1) w ON true
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO documents (project_id, title, content, source, created_at, updated_at)
        SELECT (SELECT id FROM projects ORDER BY id OFFSET mod(g * 3, 40) LIMIT 1),
               'Document ' || md5(g::text || %(day)s::text), repeat('lorem ipsum dolor ', 80 + mod(g, 200)),
               'upload', %(day)s::timestamptz + make_interval(secs => g * 3000),
               %(day)s::timestamptz + make_interval(secs => g * 3000)
        FROM generate_series(1, 25) g
        """,
        params,
    )
    # the indexer: most of the day's executions get an embedding; some attempts fail
    conn.execute(
        f"""
        WITH todo AS (
            SELECT id, created_at, row_number() OVER (ORDER BY id) AS g
            FROM workflow_executions
            WHERE created_at >= %(day)s::timestamptz AND created_at < %(day)s::timestamptz + interval '1 day'
        ), ok AS (
            INSERT INTO context_embeddings (entity_type, entity_id, entity_name, embedding, project_id,
                                            created_at, updated_at)
            SELECT 'execution', t.id, 'execution ' || t.g, {_EMBEDDING.format(ref="t.g")}{cast},
                   NULL, t.created_at + interval '1 minute', t.created_at + interval '1 minute'
            FROM todo t WHERE mod(t.g, 9) <> 0
            RETURNING entity_id, created_at
        )
        INSERT INTO context_indexing_log (entity_type, entity_id, status, error_message, tokens_used,
                                          created_at, completed_at)
        SELECT 'execution', entity_id, 'completed', NULL, 512, created_at, created_at + interval '2 seconds'
        FROM ok
        UNION ALL
        SELECT 'execution', t.id, CASE WHEN mod(t.g, 27) = 0 THEN 'pending' ELSE 'failed' END,
               CASE WHEN mod(t.g, 27) = 0 THEN NULL ELSE (%(failures)s::text[])[1 + mod(t.g, 4)] END,
               CASE WHEN mod(t.g, 27) = 0 THEN 0 ELSE 40 END,
               t.created_at + interval '1 minute',
               CASE WHEN mod(t.g, 27) = 0 THEN NULL ELSE t.created_at + interval '91 seconds' END
        FROM todo t WHERE mod(t.g, 9) = 0
        """,
        {**params, "failures": list(_FAILURES)},
    )
    # the response cache: entries for a day, then yesterday's expired ones deleted
    conn.execute(
        """
        INSERT INTO response_cache (cache_key, response, hits, expires_at, created_at)
        SELECT 'ctx:' || md5(g::text || %(day)s::text), jsonb_build_object('answer', repeat('x', 200)),
               mod(g, 9), %(day)s::timestamptz + interval '1 day', %(day)s::timestamptz + make_interval(secs => g * 200)
        FROM generate_series(1, 400) g
        """,
        params,
    )
    deleted = conn.execute(
        "DELETE FROM response_cache WHERE expires_at < %(day)s::timestamptz", params
    ).rowcount
    conn.execute(
        "INSERT INTO news_digests (title, summary, content, published_at, created_at) "
        "VALUES (%(title)s, 'daily AI news', repeat('news ', 400), %(day)s, %(day)s)",
        {"title": f"AI digest {day:%Y-%m-%d}", "day": day},
    )
    workload(conn, rng)
    return max(0, int(deleted or 0))


def workload(conn: Any, rng: random.Random, *, rounds: int = 6) -> None:
    """The application's reads, as the API issues them (parameterized: one
    pg_stat_statements entry each)."""
    projects = _uuid_rows(conn, "SELECT id FROM projects ORDER BY id", {})
    entities = conn.execute(
        "SELECT entity_type, entity_id FROM context_embeddings ORDER BY id LIMIT 200"
    ).fetchall()
    for _ in range(rounds):
        pid = rng.choice(projects)
        conn.execute(
            "SELECT id, title, updated_at FROM conversations WHERE project_id = %s "
            "ORDER BY created_at DESC LIMIT 20",
            (pid,),
        ).fetchall()
        conn.execute("SELECT * FROM projects WHERE id = %s", (pid,)).fetchall()
        conn.execute(
            "SELECT id, name FROM workflows WHERE project_id = %s ORDER BY name", (pid,)
        ).fetchall()
        etype, eid = rng.choice(entities)
        conn.execute(
            "SELECT id, entity_name, updated_at FROM context_embeddings "
            "WHERE entity_type = %s AND entity_id = %s",
            (etype, eid),
        ).fetchall()
        conn.execute(
            "SELECT response FROM response_cache WHERE cache_key = %s AND expires_at > now()",
            (f"ctx:{rng.randrange(10**6):x}",),
        ).fetchall()
    conn.execute(
        "SELECT entity_type, count(*), max(updated_at) FROM context_embeddings GROUP BY entity_type"
    ).fetchall()
    conn.execute(
        "SELECT status, count(*) FROM context_indexing_log "
        "WHERE created_at > now() - interval '7 days' GROUP BY status"
    ).fetchall()
    # the copilot's text search over past conversations: no index can serve it
    conn.execute(
        "SELECT id FROM conversations WHERE messages::text ILIKE %s LIMIT 10",
        (f"%{rng.choice(['refund', 'invoice', 'deploy', 'embedding'])}%",),
    ).fetchall()
