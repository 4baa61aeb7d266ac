"""CPU seconds per 1,000 ingested events, by process kind: what docs/scaling.md sizes machines by.

The production configuration on one machine: gunicorn (sync workers) and one Celery worker on a
Redis broker, Postgres on loopback. CLIENTS threads each start a session and POST BATCHES
batches of 100 SDK-shaped events (bench/ingest.py's plan and client); then the benchmark waits
until the worker has run every rollup the ingest queued (queue empty, no pending rollup key,
worker CPU flat for 2 s). CPU is read from /proc (user + system): the gunicorn processes, the
Celery worker's processes, and the bench database's Postgres backends (the server's and the
worker's together; BackendCpu follows backends born during the run). CPU seconds, not wall time,
because this machine is shared: a busy neighbour stretches wall time far more than CPU time.

    .venv/bin/python bench/cpu_per_event.py [--rounds 3] [--clients 8] [--batches 50]
        [--broker redis://127.0.0.1:6379/5] [--db agentops_bench_cpu]
"""

import argparse
import http.client
import os
import subprocess
import time

from common import ensure_database, machine, median, report, setup_django
from ingest import (
    BackendCpu,
    check_exactly_once,
    cpu_seconds,
    http_run,
    plan,
    server_env,
    server_pids,
    setup_project,
    start_gunicorn,
    start_worker,
    stop_gunicorn,
    truncate_events,
)

QUEUE = "bench-cpu"


def group_pids(proc: subprocess.Popen) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def wait_drained(broker: str, worker: subprocess.Popen, timeout: float = 300) -> float:
    """Seconds until the worker has run every queued rollup and gone quiet."""
    import redis

    client = redis.Redis.from_url(broker)
    started = time.monotonic()
    last_cpu, quiet_since = cpu_seconds(group_pids(worker)), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        cpu = cpu_seconds(group_pids(worker))
        if cpu > last_cpu + 0.01:
            last_cpu, quiet_since = cpu, time.monotonic()
        pending = client.llen(QUEUE) + sum(
            1 for _ in client.scan_iter("analytics:rollup-pending:*")
        )
        if pending == 0 and time.monotonic() - quiet_since >= 2.0:
            return time.monotonic() - started
    raise SystemExit(f"the worker did not drain its queue within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=50, help="batches per client per round")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--db", default="agentops_bench_cpu")
    args = parser.parse_args()

    url = ensure_database(args.db)
    env = server_env(url, args.broker)
    env["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
    env["CACHE_KEY_PREFIX"] = QUEUE
    setup_django(
        url,
        **{k: env[k] for k in ("DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")},
        SECURE_SSL_REDIRECT="0",
        CELERY_BROKER_URL=args.broker,
        CELERY_TASK_DEFAULT_QUEUE=QUEUE,
    )
    truncate_events()
    _, api_key = setup_project()
    server = start_gunicorn(env, args.port, args.workers)
    worker = start_worker(env)
    rounds = []
    try:
        for n in range(args.rounds):
            truncate_events()
            work = plan(args.clients, args.batches, seed=n)
            events = sum(len(b) for w in work for b in w["raw"])
            for _ in range(args.workers * 3):
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
            web, celery = server_pids(server), group_pids(worker)
            db_cpu = BackendCpu(args.db)
            db_cpu.start()
            web_before, worker_before = cpu_seconds(web), cpu_seconds(celery)
            started = time.monotonic()
            result = http_run(args.port, api_key, work)
            ingest_s = time.monotonic() - started
            drain_s = wait_drained(args.broker, worker)
            per_k = 1000 / events
            figures = {
                "round": n,
                "events": events,
                "http_events_per_s": round(result["events_per_s"]),
                "errors": result["errors"],
                "exactly_once": check_exactly_once(work),
                "rollups_drained_after_s": round(drain_s - 2.0, 1),
                "cpu_s_per_1000_events": {
                    "gunicorn": round((cpu_seconds(web) - web_before) * per_k, 4),
                    "celery_worker": round(
                        (cpu_seconds(group_pids(worker)) - worker_before) * per_k, 4
                    ),
                    "postgres": round(db_cpu.seconds() * per_k, 4),
                },
                "wall_s": round(ingest_s, 2),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            report("cpu-per-event-round", **figures)
            rounds.append(figures)
    finally:
        stop_gunicorn(server)
        stop_gunicorn(worker)
    parts = ("gunicorn", "celery_worker", "postgres")
    report(
        "cpu-per-event",
        config=f"gunicorn -w {args.workers}, one Celery worker (concurrency 1), {args.broker}",
        clients=args.clients,
        events_per_round=rounds[0]["events"],
        rounds=len(rounds),
        errors=sum(r["errors"] for r in rounds),
        exactly_once=all(r["exactly_once"] for r in rounds),
        cpu_s_per_1000_events={
            p: round(median([r["cpu_s_per_1000_events"][p] for r in rounds]), 4) for p in parts
        },
        machine=machine(),
    )


if __name__ == "__main__":
    main()
