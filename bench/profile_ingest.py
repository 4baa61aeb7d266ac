"""Profile one create_events request in-process (Django test client, Postgres, production-like
settings), to see where a batch's time goes: parsing, auth, validation, SQL, rendering.

    .venv/bin/python bench/profile_ingest.py [--batches 200] [--broker redis://127.0.0.1:6379/7]

Prints the per-batch wall time and the top functions by cumulative time (cProfile), plus the
Postgres-side time of the insert statement (wall time of the cursor.execute call).
"""

import argparse
import cProfile
import pstats
import random
import time
import uuid
from datetime import timedelta

import orjson
from common import T0, ensure_database, report, sdk_batch, setup_django
from ingest import DB_NAME, SECRET, setup_project, truncate_events

AREAS = (
    ("psycopg/connection.py", "waiting on Postgres (execute, commit)"),
    ("psycopg", "psycopg client work"),
    ("/events/validation.py", "validation"),
    ("/events/", "ingest (events/)"),
    ("/analytics/", "pricing and rollup scheduling"),
    ("/projects/", "auth"),
    ("jwt", "auth"),
    ("redis", "redis (throttle cache, rollup coalescing)"),
    ("kombu", "celery publish"),
    ("celery", "celery publish"),
    ("rest_framework", "django + DRF"),
    ("django", "django + DRF"),
    ("/test/client.py", "test client"),
)


def area_of(filename: str) -> str:
    for needle, area in AREAS:
        if needle in filename:
            return area
    return "builtins and C (orjson, uuid, datetime, ...)" if filename == "~" else "other python"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    url = ensure_database(DB_NAME)
    env = {"DJANGO_DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "127.0.0.1"}
    env["SECURE_SSL_REDIRECT"] = "0"
    if args.broker:
        env.update(
            CELERY_BROKER_URL=args.broker,
            CELERY_TASK_DEFAULT_QUEUE="bench-ingest",
            CACHE_KEY_PREFIX="bench-ingest",
        )
    setup_django(url, **env)
    from django.test import Client

    truncate_events()
    _, api_key = setup_project()
    client = Client(HTTP_HOST="127.0.0.1")
    sid = str(uuid.uuid4())
    jwt = client.post(
        "/v2/create_session",
        orjson.dumps({"session": {"session_id": sid, "init_timestamp": T0.isoformat()}}),
        content_type="application/json",
        HTTP_X_AGENTOPS_API_KEY=api_key,
    ).json()["jwt"]
    rng = random.Random(3)
    bodies = [
        orjson.dumps({"events": sdk_batch(rng, T0 + timedelta(seconds=i))})
        for i in range(args.batches)
    ]

    def run():
        for body in bodies:
            response = client.post(
                "/v2/create_events",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {jwt}",
            )
            assert response.status_code == 200, response.content

    started = time.perf_counter()
    run()
    plain_ms = (time.perf_counter() - started) / args.batches * 1000
    started = time.perf_counter()
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    elapsed = time.perf_counter() - started
    ms = round(elapsed / args.batches * 1000, 2)
    stats = pstats.Stats(profiler)
    by_area: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
        by_area[area_of(filename)] = by_area.get(area_of(filename), 0.0) + tottime
    total = sum(by_area.values())
    report(
        "profile-ingest",
        batches=args.batches,
        ms_per_batch=round(plain_ms, 2),
        ms_per_batch_under_cprofile=ms,
        self_time_share={
            k: round(v / total, 3) for k, v in sorted(by_area.items(), key=lambda kv: -kv[1])
        },
    )
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
