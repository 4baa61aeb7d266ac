"""The same figures at 1M and at 10M events, in one run: does the cost per page and per event
stay flat as the data grows? (issue 18; target: each 10M figure within 1.3x of its 1M value.)

1. 1M: bench/generate.py's load (10k sessions, 1M SDK-shaped events over the last 30 days, by
   COPY, rows made by the real `prepare_batch`), rolled up, measured.
2. 10M: the 9M events of the 270 days before those 30 are added (90k more sessions, 1M events
   a month: a team's history accumulating at the same rate), rolled up, measured again.

History rows are SDK-shaped: TEMPLATE_ROWS rows made by the real `prepare_batch` are copied
server-side (INSERT ... SELECT from generate_series) with fresh ids, sessions and times, each
session's events contiguous in time; sessions get tags and end states as generate.py's do and
their totals from their events. Python building 9M rows one by one would take most of an hour
on this machine for no different row.

Measured at each size, with the functions of the other benchmarks (not copies):
- pages (bench/pages.py `pages` and `measure`): overview 7d and 30d, session list, filtered
  session list, the 10k-event session's drill-down: p95 ms;
- export (bench/export.py `run_child`): the 100k-event session's streamed export, events/s;
- incremental rollup (bench/rollups.py `incremental`): ingest of one batch plus its rollup, ms;
- ingest: ingest_events() of 100-event batches in-process into a new session (validation,
  pricing, the one INSERT with its dedupe probes, totals), each followed at commit by the
  eager rollup of today (CELERY_TASK_ALWAYS_EAGER): ms per batch, rollup included. The HTTP ratio to
  COPY-with-dedupe (bench/ingest.py) runs on its own emptied database and is not repeated here.

    .venv/bin/python manage.py collectstatic --no-input
    .venv/bin/python bench/scale.py [--events 10000000] [--base 1000000] [--repeat 10]
    .venv/bin/python bench/scale.py --measure-only --rounds 9   # the last run's data, again

Each figure is printed with the 1/5/15-minute load averages (`uptime`): the machine is shared.
"""

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import datetime, timedelta

from common import (
    Timer,
    ensure_database,
    machine,
    median,
    report,
    sdk_batch,
    sdk_event,
    setup_production_django,
)

TEMPLATE_ROWS = 2000
PAGES = ("overview 7d", "overview 30d", "session list", "session list filtered",
         "drill-down 10k events")  # fmt: skip
HISTORY_DAYS_PER_MILLION = 30


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def add_history(project_id, *, before, events: int, sessions: int, seed: int) -> None:
    """`events` rows in `sessions` sessions over the HISTORY_DAYS_PER_MILLION days per million
    events before `before`, one month's worth per statement."""
    from django.db import connection, transaction

    from events.ingest import prepare_batch
    from events.storage import partitions
    from sessions.models import Tag
    from sessions.totals import SQL_NAME_OF_FIELD, SQL_TOTALS_OF_EVENTS

    rng = random.Random(seed)
    days = HISTORY_DAYS_PER_MILLION * events / 1_000_000
    start = before - timedelta(days=days)
    first = partitions.month_start(start)
    month = first
    with connection.cursor() as cursor:
        existing = partitions.monthly_partitions(cursor)
    while month <= partitions.month_start(before):
        if month not in existing:
            with transaction.atomic(), connection.cursor() as cursor:
                partitions.create_month(cursor, month)
        month = partitions.next_month(month)
    tags = list(Tag.objects.filter(project_id=project_id).values_list("id", flat=True))
    raw = [sdk_event(rng, start + timedelta(seconds=i)) for i in range(TEMPLATE_ROWS)]
    rows, _ = prepare_batch(raw, session_id=uuid.uuid4())
    per_session = events // sessions
    seconds = days * 86400
    conn = connection.connection
    with conn.cursor() as cur:
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
        cur.execute("CREATE TEMP TABLE sids (n int PRIMARY KEY, id uuid, began timestamptz)")
        session_rows = []
        with cur.copy(
            "COPY agent_sessions_session (id, project_id, init_timestamp, end_timestamp, "
            "end_state, end_state_reason, host_env, video, sdk_version, created_at, "
            "last_seen_at, llm_count, tool_count, action_count, error_count, api_count, "
            "prompt_tokens, completion_tokens, cost, cost_unknown_events, protocol) FROM STDIN"
        ) as copy:
            for n in range(sessions):
                sid = uuid.uuid4()
                began = start + timedelta(seconds=n * seconds / sessions)
                state = rng.choice(["Success"] * 7 + ["Fail"] * 2 + ["Indeterminate"])
                ended = began + timedelta(seconds=per_session * 0.6 + 5)
                copy.write_row(
                    (sid, project_id, began, ended, state, "", '{"os": "Linux"}', "", "0.3.26",
                     began, ended, 0, 0, 0, 0, 0, 0, 0, 0, 0, "v2")
                )  # fmt: skip
                session_rows.append((n, sid, began))
        with cur.copy("COPY sids FROM STDIN") as copy:
            for row in session_rows:
                copy.write_row(row)
        with cur.copy("COPY agent_sessions_sessiontag (session_id, tag_id) FROM STDIN") as copy:
            for _, sid, _ in session_rows:
                for tag in rng.sample(tags, rng.randint(0, 3)):
                    copy.write_row((sid, tag))
        conn.commit()
        # Session n holds events n*per_session ... (n+1)*per_session-1, ~0.6 s apart; a
        # statement per chunk of sessions keeps each transaction a few hundred MB.
        chunk = max(1, sessions // 20)
        for low in range(0, sessions, chunk):
            cur.execute(
                """
                INSERT INTO events_event (id, session_id, project_id, event_type,
                    init_timestamp, end_timestamp, received_at, name, model, prompt_tokens,
                    completion_tokens, cost, cost_source, payload)
                SELECT gen_random_uuid(), s.id, %(project)s, t.event_type, a.at,
                       a.at + interval '1 s', a.at + interval '2 s', t.name, t.model,
                       t.prompt_tokens, t.completion_tokens, t.cost, t.cost_source, t.payload
                FROM sids AS s
                CROSS JOIN generate_series(0, %(per)s - 1) AS k
                CROSS JOIN LATERAL (SELECT s.began + k * interval '600 ms' AS at) AS a
                JOIN template AS t ON t.n = (s.n * %(per)s + k) %% %(templates)s
                WHERE s.n >= %(low)s AND s.n < %(high)s
                ORDER BY a.at
                """,
                {"project": project_id, "per": per_session, "templates": len(rows),
                 "low": low, "high": low + chunk},
            )  # fmt: skip
            conn.commit()
        set_totals = ", ".join(f"{f} = a.{n}" for f, n in SQL_NAME_OF_FIELD.items())
        cur.execute(
            f"""
            UPDATE agent_sessions_session AS s SET {set_totals}
            FROM (SELECT e.session_id, {SQL_TOTALS_OF_EVENTS}
                  FROM events_event AS e JOIN sids ON sids.id = e.session_id
                  GROUP BY e.session_id) AS a
            WHERE s.id = a.session_id
            """
        )
        cur.execute("DROP TABLE template, sids")
        conn.commit()
        cur.execute("VACUUM ANALYZE events_event")
        cur.execute("VACUUM ANALYZE agent_sessions_session")
        conn.commit()


def ingest_batches(project_id, batches: int, seed: int) -> float:
    """Median ms of ingest_events() per 100-event batch into a new session (removed after)."""
    from django.db import connection
    from django.utils import timezone

    from events.ingest import ingest_events
    from projects.models import ApiKey
    from sessions.models import Session

    now = timezone.now()
    session = Session.objects.create(
        id=uuid.uuid4(), project_id=project_id, init_timestamp=now, last_seen_at=now
    )
    key_id = ApiKey.objects.filter(project_id=project_id, revoked_at__isnull=True).values_list(
        "pk", flat=True
    )[0]
    rng = random.Random(seed)
    times = []
    for n in range(batches):
        batch = sdk_batch(rng, now + timedelta(seconds=n))
        started = time.perf_counter()
        ingest_events(session_id=session.id, project_id=project_id, key_id=key_id, raw_events=batch)
        times.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_event WHERE session_id = %s", [session.id])
    session.delete()
    return median(times[2:])  # the first ones prepare the statement


def measure(label: str, dataset: dict, *, repeat: int, rounds: int) -> dict:
    import export
    import pages
    import rollups
    from django.contrib.auth import get_user_model
    from django.test import Client

    project_id = uuid.UUID(dataset["project_id"])
    figures: dict = {}
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=dataset["username"]))
    for name, url in pages.pages(dataset):
        if name in PAGES:
            result = pages.measure(client, url, repeat, 2)
            figures[f"{name} p95_ms"] = result["p95_ms"]
            report("scale.page", size=label, page=name, **result, load=load_avg())
    runs = [export.run_child("export") for _ in range(rounds)]
    figures["export events_per_s"] = round(median([r["events"] / r["seconds"] for r in runs]))
    report("scale.export", size=label, rate=figures["export events_per_s"], load=load_avg())
    steps = [rollups.incremental(project_id, seed=n) for n in range(rounds)]
    figures["incremental rollup ms"] = median([s["ingest_plus_rollup_ms"] for s in steps])
    report("scale.rollup", size=label, ms=figures["incremental rollup ms"],
           only_its_days=all(s["only_its_days"] for s in steps), load=load_avg())  # fmt: skip
    figures["ingest ms per 100-event batch"] = round(ingest_batches(project_id, 30, seed=7), 1)
    report("scale.ingest", size=label, ms=figures["ingest ms per 100-event batch"],
           load=load_avg())  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="agentops_bench_scale")
    parser.add_argument(
        "--reuse-base", action="store_true", help="the 1M load of an earlier run (its dataset file)"
    )
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the dataset of the last run (its dataset file) as it is, loading nothing",
    )
    args = parser.parse_args()
    # The incremental rollup runs at commit, in this process (bench/rollups.py's assumption).
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    url = ensure_database(args.db)
    setup_production_django(url)
    import generate

    from analytics.rollups import all_days, rollup_days

    if args.measure_only:
        dataset = json.loads(generate.DATASET_FILE.read_text())
        assert dataset["database_url"] == url, dataset
        measure(f"{dataset['events'] / 1e6:g}M", dataset, repeat=args.repeat, rounds=args.rounds)
        return

    sessions = args.base // 100
    if args.reuse_base:
        dataset = json.loads(generate.DATASET_FILE.read_text())
        assert dataset["database_url"] == url and dataset["events"] == args.base, dataset
    else:
        with Timer() as t_gen:
            dataset, gen_figures = generate.load(
                sessions=sessions, events=args.base, seed=1, slug="scale"
            )
        dataset["database_url"] = url
        generate.DATASET_FILE.write_text(json.dumps(dataset, indent=2))
        report("scale.generate", size="1M", seconds=round(t_gen.seconds, 1), **gen_figures,
               load=load_avg())  # fmt: skip
    project_id = uuid.UUID(dataset["project_id"])
    with Timer() as t_roll:
        rollup_days(project_id, all_days(project_id).get(project_id, set()))
    report("scale.full_rollup", size="1M", seconds=round(t_roll.seconds, 1), load=load_avg())
    small = measure("1M", dataset, repeat=args.repeat, rounds=args.rounds)

    extra = args.events - args.base
    before = datetime.fromisoformat(dataset["loaded_at"]) - timedelta(days=30)
    with Timer() as t_hist:
        add_history(project_id, before=before, events=extra, sessions=extra // 100, seed=2)
    report("scale.history", events=extra, seconds=round(t_hist.seconds, 1), load=load_avg())
    with Timer() as t_roll:
        rollup_days(project_id, all_days(project_id).get(project_id, set()))
    report(
        "scale.full_rollup",
        size=f"{args.events / 1e6:g}M",
        seconds=round(t_roll.seconds, 1),
        load=load_avg(),
    )
    dataset["events"] = args.events
    dataset["sessions"] = sessions + extra // 100
    generate.DATASET_FILE.write_text(json.dumps(dataset, indent=2))
    large = measure(f"{args.events / 1e6:g}M", dataset, repeat=args.repeat, rounds=args.rounds)

    ratios = {}
    for name, value in small.items():
        # Higher is better for rates: the ratio is always cost at 10M over cost at 1M.
        cost_ratio = value / large[name] if "per_s" in name else large[name] / value
        ratios[name] = round(cost_ratio, 2)
    report(
        "scale",
        base=args.base,
        events=args.events,
        at_1m=small,
        at_large=large,
        cost_ratio_large_to_base=ratios,
        all_within_1_3x=all(r <= 1.3 for r in ratios.values()),
        machine=machine(),
    )


if __name__ == "__main__":
    sys.exit(main())
