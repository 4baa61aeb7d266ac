"""Load a project with 10k sessions and 1M events over the last 30 days, with COPY.

Events are built by the SDK-shaped factory and passed through the ingestion code's own
`prepare_batch` (validation, payload split, pricing), so the stored rows are exactly what the
v2 endpoint would have stored; only the write differs (COPY instead of one INSERT per batch).
Session totals are then set from the events by one aggregate UPDATE, as ingest keeps them.

Two sessions are special: the first has 100k events (the export benchmark), the second 10k (the
drill-down page). The rest share the remaining events (20-160 each).

    .venv/bin/python bench/generate.py [--sessions 10000] [--events 1000000] [--db agentops_bench]

Prints one JSON line with the counts and the load time; writes bench/.dataset.json for the
page, export and rollup benchmarks (project slug, user, the two special session ids).
"""

import argparse
import heapq
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from operator import itemgetter
from pathlib import Path

from common import Timer, ensure_database, machine, report, sdk_event, setup_django

DATASET_FILE = Path(__file__).resolve().parent / ".dataset.json"
EXPORT_EVENTS = 100_000
DRILL_EVENTS = 10_000
RECEIVE_DELAY = timedelta(seconds=2)  # from an event to the server: the SDK's batching
TAGS = [f"tag-{i}" for i in range(20)] + ["prod", "staging", "eval", "nightly", "customer-x"]
END_STATES = ["Success"] * 7 + ["Fail"] * 2 + ["Indeterminate"] + [None]

EVENT_COLUMNS = (
    "id",
    "session_id",
    "project_id",
    "event_type",
    "init_timestamp",
    "end_timestamp",
    "received_at",
    "agent_id",
    "name",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_source",
    "trigger_event_id",
    "payload",
)


def plan_sizes(rng: random.Random, sessions: int, events: int) -> list[int]:
    rest = events - EXPORT_EVENTS - DRILL_EVENTS
    others = sessions - 2
    sizes = [rng.randint(20, 160) for _ in range(others)]
    # Scale to exactly `rest` events.
    total = sum(sizes)
    sizes = [max(1, round(s * rest / total)) for s in sizes]
    sizes[-1] += rest - sum(sizes)
    return [EXPORT_EVENTS, DRILL_EVENTS, *sizes]


def session_events(sid, size: int, began, seed: int) -> Iterator[tuple]:
    """(time, session id, SDK-shaped event) for one session, in time order."""
    rng = random.Random(seed)
    at = began
    for _ in range(size):
        at += timedelta(milliseconds=rng.randint(100, 1100))
        yield at, sid, sdk_event(rng, at)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def reset_project(slug: str):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from projects.models import Membership, Project
    from projects.services import create_project_with_key

    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username="bench")
    user.set_password("bench")
    user.save()
    old = Project.objects.filter(slug=slug).first()
    if old is not None:
        # TRUNCATE rather than a cascade of DELETEs: the bench database holds only bench data.
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE events_event, agent_sessions_sessiontag, agent_sessions_agent, "
                "analytics_dailyrollup, analytics_modeldailyrollup, agent_sessions_session, "
                "agent_sessions_tag CASCADE"
            )
        old.delete()
    project, _, key = create_project_with_key(name=slug, owner=user, label="bench")
    if project.slug != slug:
        project.slug = slug
        project.save(update_fields=["slug"])
    Membership.objects.filter(project=project, user=user).update(role="owner")
    return project, user, key.raw


def load(*, sessions: int, events: int, seed: int, slug: str) -> dict:
    from django.db import connection
    from django.utils import timezone

    from analytics.rollups import summarize_new_event_ranges
    from events.ingest import prepare_batch
    from events.search import index_all_events
    from sessions.models import Tag
    from sessions.totals import SQL_NAME_OF_FIELD, SQL_TOTALS_OF_EVENTS

    rng = random.Random(seed)
    project, _user, raw_key = reset_project(slug)
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=30)
    tags = Tag.objects.bulk_create([Tag(project=project, name=n) for n in TAGS])
    sizes = plan_sizes(rng, sessions, events)
    session_ids = [uuid.uuid4() for _ in range(sessions)]
    # The two big sessions start a day ago so their events fit before now.
    starts = [now - timedelta(days=1), now - timedelta(days=2)] + [
        start + timedelta(seconds=rng.uniform(0, 30 * 86400 - 3 * 3600))
        for _ in range(sessions - 2)
    ]

    connection.ensure_connection()
    conn = connection.connection
    counted = 0
    with Timer() as t_sessions, conn.cursor() as cur:
        with cur.copy(
            "COPY agent_sessions_session (id, project_id, init_timestamp, end_timestamp, "
            "end_state, end_state_reason, host_env, video, sdk_version, created_at, last_seen_at, "
            "llm_count, tool_count, action_count, error_count, api_count, prompt_tokens, "
            "completion_tokens, cost, cost_unknown_events, protocol) FROM STDIN"
        ) as copy:
            for sid, size, began in zip(session_ids, sizes, starts, strict=True):
                state = rng.choice(END_STATES)
                # One event every ~0.6 s on average; the last one ends the session.
                ended = began + timedelta(seconds=size * 0.6 + 5) if state else None
                copy.write_row(
                    (sid, project.id, began, ended, state, "", '{"os": "Linux"}', "", "0.3.26",
                     now, ended or now, 0, 0, 0, 0, 0, 0, 0, 0, 0, "v2")
                )  # fmt: skip
        with cur.copy("COPY agent_sessions_sessiontag (session_id, tag_id) FROM STDIN") as copy:
            for sid in session_ids:
                for tag in rng.sample(tags, rng.randint(0, 3)):
                    copy.write_row((sid, tag.id))
    conn.commit()

    seeds = [rng.getrandbits(64) for _ in session_ids]
    streams = [
        session_events(sid, size, began, seed)
        for sid, size, began, seed in zip(session_ids, sizes, starts, seeds, strict=True)
    ]
    with Timer() as t_events, conn.cursor() as cur:
        with cur.copy(f"COPY events_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            # In the order events reach a server (all sessions interleaved, by time), each
            # received RECEIVE_DELAY after it happened: received_at then grows with the table's
            # physical order as in production, which its BRIN index and the overview rely on.
            for chunk in chunks(heapq.merge(*streams, key=itemgetter(0)), 100):
                rows, _ = prepare_batch([raw for _, _, raw in chunk], session_id=chunk[0][1])
                assert len(rows) == len(chunk), "the generator's events must all be valid"
                for (at, sid, _), r in zip(chunk, rows, strict=True):
                    copy.write_row(
                        (r.id, sid, project.id, r.event_type, r.init_timestamp,
                         r.end_timestamp, min(at + RECEIVE_DELAY, now), r.agent_id, r.name,
                         r.model, r.prompt_tokens, r.completion_tokens, r.cost, r.cost_source,
                         r.trigger_event_id, r.payload_json)
                    )  # fmt: skip
                counted += len(rows)
        conn.commit()

    set_totals = ", ".join(f"{field} = a.{name}" for field, name in SQL_NAME_OF_FIELD.items())
    with Timer() as t_totals, conn.cursor() as cur:
        cur.execute(
            f"""
            UPDATE agent_sessions_session AS s SET {set_totals}
            FROM (
                SELECT session_id, {SQL_TOTALS_OF_EVENTS}
                FROM events_event WHERE project_id = %s GROUP BY session_id
            ) AS a
            WHERE s.id = a.session_id
            """,
            [project.id],
        )
        conn.commit()
        cur.execute("ANALYZE")
        conn.commit()
    # What autovacuum does after a bulk load on a default Postgres (this machine's has it off),
    # and the periodic catch-up does anyway: without it every overview reads the whole table.
    summarize_new_event_ranges()
    # The text search index, as the worker builds it after each rollup (events/search.py); its
    # rate is the indexer's cost per event, paid off the ingest path.
    with Timer() as t_search:
        indexed = index_all_events()
    with conn.cursor() as cur:
        cur.execute("ANALYZE events_searchchunk")
    conn.commit()

    dataset = {
        "project_slug": project.slug,
        "project_id": str(project.id),
        "username": "bench",
        "password": "bench",
        "api_key": raw_key,
        "export_session": str(session_ids[0]),
        "drill_session": str(session_ids[1]),
        "sessions": sessions,
        "events": counted,
        "loaded_at": now.isoformat(),
    }
    figures = {
        "sessions": sessions,
        "events": counted,
        "sessions_seconds": round(t_sessions.seconds, 2),
        "events_seconds": round(t_events.seconds, 2),
        "events_per_s": round(counted / t_events.seconds),
        "totals_update_seconds": round(t_totals.seconds, 2),
        "search_indexed_events": indexed,
        "search_index_seconds": round(t_search.seconds, 2),
        "search_index_events_per_s": round(indexed / t_search.seconds) if indexed else None,
    }
    return dataset, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default="agentops_bench")
    parser.add_argument("--slug", default="bench")
    args = parser.parse_args()
    url = ensure_database(args.db)
    setup_django(url)
    started = time.perf_counter()
    dataset, figures = load(
        sessions=args.sessions, events=args.events, seed=args.seed, slug=args.slug
    )
    dataset["database_url"] = url
    DATASET_FILE.write_text(json.dumps(dataset, indent=2))
    report(
        "generate",
        **figures,
        total_seconds=round(time.perf_counter() - started, 1),
        machine=machine(),
    )


if __name__ == "__main__":
    main()
