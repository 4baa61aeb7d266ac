"""Rollups on the generated dataset: a full recompute, and the incremental one after a batch.

1. full: `analytics.rollups.rollup_days` over every day of the project (30 days, 1M events),
   the same call `manage.py rollup` makes. Ceiling measured in the same run: one raw SQL pass
   over the same events (a GROUP BY day with the same sums), i.e. the database's own cost of
   reading them once.
2. incremental: one batch of 100 events is ingested through `events.ingest.ingest_events` with
   no broker, so its rollup runs in-process on commit, as production's worker would run it.
   The figure is its time and which DailyRollup rows it rewrote (by computed_at): only the
   batch's days may change. The session is removed afterwards and its days recomputed.
3. today's tail (left in place for bench/pages.py): a "recent traffic" session of today
   (always the same id, replaced on every run) receives RECENT_BATCHES batches, today is rolled
   up (its tail holds those events: they arrived within the rollup's margin), then
   RECENT_BATCHES more arrive with no rollup after them, as when the worker has not run yet. The
   overview's today then reads the rollup, subtracts the tail and re-aggregates only the events
   received since the cut-off. Printed: the rollup's time, the tail's size and the events the
   overview must read live (a bench/pages.py run right after this measures it).

    .venv/bin/python bench/rollups.py [--rounds 3]
"""

import argparse
import json
import random
import uuid
from datetime import timedelta

from common import Timer, machine, median, report, sdk_batch, setup_django
from generate import DATASET_FILE

TARGET_SECONDS = 10
RECENT_BATCHES = 10
RECENT_SESSION = uuid.uuid5(uuid.NAMESPACE_URL, "agentops-bench/recent-traffic")

RAW_SCAN = """
SELECT (init_timestamp AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE event_type = 'llms'), count(*) FILTER (WHERE event_type = 'tools'),
       count(*) FILTER (WHERE event_type = 'actions'),
       count(*) FILTER (WHERE event_type = 'errors'), count(*) FILTER (WHERE event_type = 'apis'),
       sum(prompt_tokens), sum(completion_tokens), sum(cost),
       count(*) FILTER (WHERE event_type = 'llms' AND cost IS NULL)
FROM events_event WHERE project_id = %s GROUP BY 1
"""


def full_recompute(project_id) -> tuple[float, int]:
    from analytics.rollups import all_days, rollup_days

    with Timer() as t:
        days = all_days(project_id).get(project_id, set())
        done = rollup_days(project_id, days)
    return t.seconds, len(done)


def raw_scan(project_id) -> float:
    from django.db import connection

    with Timer() as t, connection.cursor() as cursor:
        cursor.execute(RAW_SCAN, [project_id])
        cursor.fetchall()
    return t.seconds


def incremental(project_id, seed: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from analytics.models import DailyRollup
    from analytics.rollups import rollup_days
    from events.ingest import ingest_events
    from projects.models import ApiKey
    from sessions.models import Session

    before = dict(
        DailyRollup.objects.filter(project_id=project_id).values_list("day", "computed_at")
    )
    now = timezone.now()
    at = now - timedelta(days=12, hours=3)
    session = Session.objects.create(
        id=uuid.uuid4(), project_id=project_id, init_timestamp=at, last_seen_at=now
    )
    batch = sdk_batch(random.Random(seed), at + timedelta(seconds=1))
    key_id = ApiKey.objects.filter(project_id=project_id, revoked_at__isnull=True).values_list(
        "pk", flat=True
    )[0]
    with Timer() as t:
        result = ingest_events(
            session_id=session.id, project_id=project_id, key_id=key_id, raw_events=batch
        )
    after = dict(
        DailyRollup.objects.filter(project_id=project_id).values_list("day", "computed_at")
    )
    rewritten = {day for day, stamp in after.items() if before.get(day) != stamp}
    # Put the dataset back as it was: the batch's session gone, its days recomputed.
    days = result.days | {at.date()}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE session_id = %s", [session.id])
    session.delete()
    rollup_days(project_id, days)
    return {
        "ingest_plus_rollup_ms": round(t.seconds * 1000, 1),
        "batch_days": sorted(d.isoformat() for d in result.days),
        "rewritten_days": sorted(d.isoformat() for d in rewritten),
        "only_its_days": rewritten == result.days,
        "rollup_rows": len(after),
    }


def _ingest_without_rollup(project_id, session_id, key_id, batches: list[list[dict]]) -> None:
    """Ingest as a web worker does, but leave the rollup to a worker that has not run yet."""
    from unittest import mock

    from events.ingest import ingest_events

    with mock.patch("events.ingest.schedule_rollups"):
        for batch in batches:
            ingest_events(
                session_id=session_id, project_id=project_id, key_id=key_id, raw_events=batch
            )


def today_tail(project_id, seed: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from analytics.models import DailyRollup
    from analytics.rollups import rollup_days
    from events.models import Event
    from projects.models import ApiKey
    from sessions.models import Session

    now = timezone.now()
    today = now.date()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE session_id = %s", [RECENT_SESSION])
    Session.objects.filter(id=RECENT_SESSION).delete()
    # Starts at most an hour ago but never before midnight: all of it is today's.
    start = max(now - timedelta(hours=1), now.replace(hour=0, minute=0, second=0, microsecond=0))
    Session.objects.create(
        id=RECENT_SESSION, project_id=project_id, init_timestamp=start, last_seen_at=now
    )
    key_id = ApiKey.objects.filter(project_id=project_id, revoked_at__isnull=True).values_list(
        "pk", flat=True
    )[0]
    rng = random.Random(seed)
    span = (now - start) / (2 * RECENT_BATCHES + 1)
    batches = [sdk_batch(rng, start + span * i) for i in range(2 * RECENT_BATCHES)]
    _ingest_without_rollup(project_id, RECENT_SESSION, key_id, batches[:RECENT_BATCHES])
    with Timer() as t:
        rollup_days(project_id, [today])
    _ingest_without_rollup(project_id, RECENT_SESSION, key_id, batches[RECENT_BATCHES:])
    rollup = DailyRollup.objects.get(project_id=project_id, day=today)
    since_cutoff = Event.objects.filter(
        project_id=project_id, init_timestamp__date=today, received_at__gte=rollup.tail_since
    ).count()
    return {
        "today_rollup_ms": round(t.seconds * 1000, 1),
        "today_events_in_rollup": sum(
            getattr(rollup, f"events_{kind}")
            for kind in ("llms", "tools", "actions", "errors", "apis")
        ),
        "tail_rows": len(rollup.tail),
        "tail_events": sum(row["n"] for row in rollup.tail),
        "events_since_cutoff": since_cutoff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dataset = json.loads(DATASET_FILE.read_text())
    # No broker: ingest_events' rollup runs in-process on commit, so it can be observed here.
    setup_django(dataset["database_url"])
    project_id = uuid.UUID(dataset["project_id"])
    raw_scan(project_id)  # warm the cache, so both sides of the ratio read from memory
    runs = []
    for n in range(args.rounds):
        scan = raw_scan(project_id)
        seconds, days = full_recompute(project_id)
        step = incremental(project_id, seed=n)
        figures = {
            "round": n,
            "full_seconds": round(seconds, 2),
            "days": days,
            "raw_scan_seconds": round(scan, 2),
            "ratio_to_raw_scan": round(seconds / scan, 2),
            **step,
        }
        report("rollups-round", **figures)
        runs.append(figures)
    # Last, so that the tail and the events after it are what bench/pages.py finds.
    report("rollups-today-tail", **today_tail(project_id, seed=args.rounds))
    full = median([r["full_seconds"] for r in runs])
    report(
        "rollups",
        events=dataset["events"],
        sessions=dataset["sessions"],
        full_seconds=full,
        raw_scan_seconds=median([r["raw_scan_seconds"] for r in runs]),
        ratio_to_raw_scan=median([r["ratio_to_raw_scan"] for r in runs]),
        ratio_to_target=round(full / TARGET_SECONDS, 3),
        incremental_ms=median([r["ingest_plus_rollup_ms"] for r in runs]),
        incremental_only_its_days=all(r["only_its_days"] for r in runs),
        met=full < TARGET_SECONDS and all(r["only_its_days"] for r in runs),
        machine=machine(),
    )


if __name__ == "__main__":
    main()
