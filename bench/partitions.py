"""Partitioned events (events/storage/partitions.py): the migration's speed per million rows,
and retention by dropping a month against deleting its rows.

One old month is filled with --events SDK-shaped rows (1,000 rows made by the real
`prepare_batch`, copied server-side with fresh ids and times: the rows' width and shape are the
ingest path's), spread over --sessions sessions, all past DATA_RETENTION_DAYS. Then:

1. migration: the table is turned back into a plain one and converted again by the functions
   migration 0006 runs (convert_to_plain / convert_to_partitioned), timed; seconds per 1M rows.
2. retention by partition: analytics.retention.purge_old_data() with every session old; the
   month goes by DROP TABLE. Timed; dead tuples left in events_event's tables afterwards.
3. the same month reloaded, and one session kept (still sending): the month is held back and
   the same purge deletes the other sessions' rows row by row (the boundary path, and what
   retention did before partitioning). Timed; dead tuples left (pgstattuple, exact).

    .venv/bin/python bench/partitions.py [--events 1000000] [--sessions 10000]

Prints one JSON line per step and a summary.
"""

import argparse
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from common import Timer, ensure_database, machine, report, sdk_event, setup_django

TEMPLATE_ROWS = 1000


def uptime_load() -> list[float]:
    """The 1, 5 and 15 minute load averages (`uptime`): the machine is shared."""
    return [round(x, 2) for x in os.getloadavg()]


def old_month(now: datetime):
    from events.storage.partitions import _months_before, month_start

    return _months_before(month_start(now), 4)  # well past a 30-day retention


def fill_month(project, month, *, events: int, sessions: int, seed: int) -> list:
    """Create `sessions` sessions in `month` and `events` rows spread over them; session ids."""
    from django.db import connection, transaction

    from events.ingest import prepare_batch
    from events.storage import partitions

    rng = random.Random(seed)
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    with connection.cursor() as cursor:
        if month not in partitions.monthly_partitions(cursor):
            with transaction.atomic():
                partitions.create_month(cursor, month)
    session_ids = [uuid.uuid4() for _ in range(sessions)]
    conn = connection.connection
    with conn.cursor() as cur:
        with cur.copy(
            "COPY agent_sessions_session (id, project_id, init_timestamp, last_seen_at, "
            "created_at, end_state_reason, video, sdk_version, llm_count, tool_count, "
            "action_count, error_count, api_count, prompt_tokens, completion_tokens, cost, "
            "cost_unknown_events, protocol) FROM STDIN"
        ) as copy:
            for n, sid in enumerate(session_ids):
                at = start + timedelta(seconds=n * 20 * 86400 / sessions)
                copy.write_row((sid, project.id, at, at + timedelta(days=1), at, "", "",
                                "0.3.26", 0, 0, 0, 0, 0, 0, 0, 0, 0, "v2"))  # fmt: skip
        raw = [sdk_event(rng, start + timedelta(seconds=i)) for i in range(TEMPLATE_ROWS)]
        rows, _ = prepare_batch(raw, session_id=session_ids[0])
        cur.execute(
            "CREATE TEMP TABLE template (n int, event_type text, name text, model text, "
            "prompt_tokens int, completion_tokens int, cost numeric, cost_source text, "
            "payload jsonb)"
        )
        with cur.copy("COPY template FROM STDIN") as copy:
            for n, r in enumerate(rows):
                copy.write_row(
                    (n, r.event_type, r.name, r.model, r.prompt_tokens, r.completion_tokens,
                     r.cost, r.cost_source, r.payload_json)
                )  # fmt: skip
        cur.execute("CREATE TEMP TABLE sids (n int, id uuid)")
        with cur.copy("COPY sids FROM STDIN") as copy:
            for n, sid in enumerate(session_ids):
                copy.write_row((n, sid))
        # Event i: template i % 1000, session i % sessions, times spread over 25 days.
        cur.execute(
            """
            INSERT INTO events_event (id, session_id, project_id, event_type, init_timestamp,
                end_timestamp, received_at, name, model, prompt_tokens, completion_tokens, cost,
                cost_source, payload)
            SELECT gen_random_uuid(), s.id, %(project)s, t.event_type, at, at + interval '1 s',
                   at + interval '2 s', t.name, t.model, t.prompt_tokens, t.completion_tokens,
                   t.cost, t.cost_source, t.payload
            FROM generate_series(0, %(events)s - 1) AS i
            CROSS JOIN LATERAL (SELECT %(start)s::timestamptz
                                 + (i * 25 * 86400.0 / %(events)s) * interval '1 s' AS at) AS a
            JOIN template AS t ON t.n = i %% %(templates)s
            JOIN sids AS s ON s.n = i %% %(sessions)s
            """,
            {"project": project.id, "events": events, "start": start,
             "templates": len(rows), "sessions": sessions},
        )  # fmt: skip
        cur.execute("DROP TABLE template, sids")
    conn.commit()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")
    return session_ids


def dead_tuples() -> dict:
    """{partition: dead tuples} exactly (pgstattuple), for every events_event table."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        cursor.execute(
            "SELECT c.relname, (pgstattuple(c.oid)).dead_tuple_count FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events_event'::regclass"
        )
        return {name: dead for name, dead in cursor.fetchall() if dead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--db", default="agentops_bench_part")
    parser.add_argument("--steps", default="migration,drop,rows", help="which of the three")
    args = parser.parse_args()
    os.environ["DATA_RETENTION_DAYS"] = "30"
    setup_django(ensure_database(args.db))
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from projects.services import create_project_with_key

    now = timezone.now()
    month = old_month(now)
    user, _ = get_user_model().objects.get_or_create(username="bench-part")
    project, _, _ = create_project_with_key(
        name=f"part-{uuid.uuid4().hex[:6]}", owner=user, label="bench"
    )
    with Timer() as t_fill:
        fill_month(project, month, events=args.events, sessions=args.sessions, seed=1)
    report("partitions.fill", events=args.events, seconds=round(t_fill.seconds, 1))

    steps = set(args.steps.split(","))
    summary = {}
    if "migration" in steps:
        summary["migration_seconds_per_million"] = migration()
    if "drop" in steps:
        summary.update(drop(month, now))
    if "rows" in steps:
        summary.update(row_deletes(project, month, now, args))
    report("partitions.summary", **summary, machine=machine())


def migration() -> float:
    """1. The migration: back to one table, then partitioned again, as 0006 does it."""
    from django.db import connection, transaction

    from events.storage import partitions

    with Timer() as t_plain, transaction.atomic(), connection.cursor() as cursor:
        partitions.convert_to_plain(cursor)
    with Timer() as t_part, transaction.atomic(), connection.cursor() as cursor:
        moved = partitions.convert_to_partitioned(cursor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        total = cursor.fetchone()[0]
    report(
        "partitions.migration",
        rows=moved,
        rows_after=total,
        seconds=round(t_part.seconds, 1),
        seconds_per_million=round(t_part.seconds / moved * 1e6, 1),
        reverse_seconds=round(t_plain.seconds, 1),
        load=uptime_load(),
    )
    return round(t_part.seconds / moved * 1e6, 1)


def drop(month, now) -> dict:
    """2. Retention by dropping the month."""
    from analytics.retention import purge_old_data
    from events.storage import partitions

    cutoff = now - timedelta(days=30)
    # What drop_event_partitions_before does for the month, in its two steps, timed apart:
    # retire (check + detach: the only time events_event is locked) and the file removal.
    with Timer() as t_retire:
        dropped_events = partitions.retire_month(month, cutoff)
    with Timer() as t_files:
        retired = partitions.drop_retired()
    assert dropped_events is not None and len(retired) == 1, retired
    with Timer() as t_rest:
        result = purge_old_data(now=now)  # the sessions, their tags: rows
    report(
        "partitions.retention_drop",
        events=dropped_events,
        seconds=round(t_retire.seconds, 3),
        files_seconds=round(t_files.seconds, 3),
        sessions_deleted_after=result.sessions,
        sessions_seconds=round(t_rest.seconds, 1),
        dead_tuples=dead_tuples(),
        load=uptime_load(),
    )
    return {"drop_seconds": round(t_retire.seconds, 3),
            "drop_files_seconds": round(t_files.seconds, 3),
            "drop_target_met": t_retire.seconds < 1}  # fmt: skip


def row_deletes(project, month, now, args) -> dict:
    """3. The same month by row deletes: one kept session holds it back."""
    from django.db import connection

    from analytics.retention import purge_old_data
    from events.storage import partitions
    from sessions.models import Session

    name = partitions.partition_name(month)
    ids = fill_month(project, month, events=args.events, sessions=args.sessions, seed=2)
    Session.objects.filter(id=ids[0]).update(last_seen_at=now)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE events_event")  # a clean start: no dead tuples
    started = time.perf_counter()
    result = purge_old_data(now=now)
    row_seconds = time.perf_counter() - started
    assert name not in result.partitions
    left = dead_tuples()
    report(
        "partitions.retention_rows",
        events=result.events,
        sessions=result.sessions,
        seconds=round(row_seconds, 1),
        dead_tuples=left,
        load=uptime_load(),
    )
    return {"row_delete_seconds": round(row_seconds, 1)}


if __name__ == "__main__":
    main()
