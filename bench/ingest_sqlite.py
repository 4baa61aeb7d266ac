"""HTTP ingest on the embedded default, as `make run` serves it: SQLite, gunicorn (the Procfile's
2 sync workers), the directory broker and one Celery worker running the rollups meanwhile.

The same clients, batches and exactly-once check as bench/ingest.py, on a fresh SQLite file in a
temporary directory. There is no COPY ceiling for SQLite (bench/ingest.py measures Postgres'), so
the figure is events/s and latency, with the rollups the worker ran.

    .venv/bin/python bench/ingest_sqlite.py [--rounds 3] [--clients 8] [--batches 30]
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, median, report, setup_django
from ingest import (
    SECRET,
    check_exactly_once,
    http_run,
    plan,
    setup_project,
    start_gunicorn,
    start_worker,
    stop_gunicorn,
)

TABLES = (
    "events_event",
    "agent_sessions_sessiontag",
    "agent_sessions_tag",
    "agent_sessions_agent",
    "analytics_dailyrollup",
    "analytics_modeldailyrollup",
    "agent_sessions_session",
)


def empty_tables() -> None:
    from django.db import connection

    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in TABLES:
            if table in existing:
                cursor.execute(f"DELETE FROM {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30, help="batches per client per round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-sqlite-"))
    env_vars = {
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "CELERY_BROKER_DIR": str(tmp / "broker"),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
    }
    for name in ("CELERY_BROKER_URL", "CACHE_URL"):
        os.environ.pop(name, None)
    setup_django(**env_vars)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _, api_key = setup_project()
    env = {**os.environ, **env_vars}
    server = start_gunicorn(env, args.port, args.workers)
    worker = start_worker(env)
    rounds = []
    try:
        for n in range(args.rounds):
            empty_tables()
            work = plan(args.clients, args.batches, seed=n)
            result = http_run(args.port, api_key, work)
            figures = {
                "round": n,
                "http_events_per_s": round(result["events_per_s"]),
                "p50_ms": round(result["p50_ms"], 1),
                "p99_ms": round(result["p99_ms"], 1),
                "errors": result["errors"],
                "first_error": result["first_error"],
                "exactly_once": check_exactly_once(work),
            }
            report("ingest-sqlite-round", **figures)
            rounds.append(figures)
    finally:
        stop_gunicorn(server)
        stop_gunicorn(worker)
        shutil.rmtree(tmp, ignore_errors=True)
    report(
        "ingest-sqlite",
        config="SQLite, directory broker, one Celery worker (make run)",
        clients=args.clients,
        batch=100,
        workers=args.workers,
        rounds=len(rounds),
        http_events_per_s=round(median([r["http_events_per_s"] for r in rounds])),
        p99_ms=round(median([r["p99_ms"] for r in rounds]), 1),
        errors=sum(r["errors"] for r in rounds),
        exactly_once=all(r["exactly_once"] for r in rounds),
        machine=machine(),
    )


if __name__ == "__main__":
    sys.exit(main())
