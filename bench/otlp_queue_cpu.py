"""CPU of the queued OTLP write against the inline one, per 512-span request, and the worker's
drain rate (BENCHMARKS.md §5, "the queued write").

1. In this process, one core: `ingest_traces` on decoded requests (the inline write), then
   `otlp_queue.accept` (the queued answer) and `otlp_queue.process_batch` one batch at a time
   (the worker's part without merging): Python CPU (`process_time`), wall, and this
   connection's Postgres backend CPU (/proc), per request.
2. A real Celery worker (`--concurrency` processes) started on a queue of its own once
   `--requests` batches wait: how fast it writes them (merging up to MERGE_BATCHES), and how
   busy the machine's CPUs were meanwhile.

    PYTHONPATH=$PWD .venv/bin/python bench/otlp_queue_cpu.py [--requests 48] [--concurrency 2]
        [--db agentops_bench_otlp] [--broker redis://127.0.0.1:6379/7]
"""

import argparse
import gc
import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from common import ROOT, T0, ensure_database, machine, report, setup_django

QUEUE = "bench-otlp-drain"


def backend_cpu() -> float:
    """CPU seconds of this connection's Postgres backend."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(label: str, calls) -> dict:
    cpu, wall, pg = time.process_time(), time.perf_counter(), backend_cpu()
    for call in calls:
        call()
    n = len(calls)
    return {
        "part": label,
        "python_ms": round((time.process_time() - cpu) / n * 1000, 1),
        "postgres_ms": round((backend_cpu() - pg) / n * 1000, 1),
        "wall_ms": round((time.perf_counter() - wall) / n * 1000, 1),
    }


def cpu_idle() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--db", default="agentops_bench_otlp")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    url = ensure_database(args.db)
    setup_django(url, CELERY_BROKER_URL=args.broker, OTLP_WRITE_QUEUE=QUEUE)
    import redis
    from django.db import transaction
    from ingest import setup_project, truncate_events
    from otlp_spans import export_request

    from api.otlp.decode import decode_export_request
    from events import otlp_queue
    from events.models import OtlpBatch
    from events.otlp_ingest import ingest_traces, request_limits
    from projects.models import ApiKey

    redis.Redis.from_url(args.broker).delete(QUEUE)
    gc.freeze()  # as a web worker (agentops_site/wsgi.py) and a Celery worker (celery.py) do
    truncate_events()
    project, _ = setup_project()
    key = ApiKey.objects.filter(project=project).first()
    rng = random.Random(1)
    n = args.requests
    bodies = [
        export_request(rng, T0 + timedelta(minutes=b))[0].SerializeToString() for b in range(3 * n)
    ]
    pb = "application/x-protobuf"

    def inline(body):
        with transaction.atomic():
            ingest_traces(
                decode_export_request(body, content_type=pb), project_id=project.id, key_id=key.id
            )

    def accept(body):
        otlp_queue.accept(
            body,
            content_type=pb,
            content_encoding=None,
            limits=request_limits(),
            project_id=project.id,
            key_id=key.id,
        )

    parts = [timed("inline write", [lambda b=b: inline(b) for b in bodies[:n]])]
    parts.append(timed("queued: accept", [lambda b=b: accept(b) for b in bodies[n : 2 * n]]))
    ids = list(OtlpBatch.objects.order_by("pk").values_list("pk", flat=True))
    parts.append(
        timed(
            "queued: process one batch",
            [lambda i=i: otlp_queue.process_batch(i, merge=1) for i in ids],
        )
    )
    for part in parts:
        report("otlp-queue-cpu", spans_per_request=512, requests=n, **part)

    # The worker's drain rate: `n` batches wait, then a real worker writes them.
    redis.Redis.from_url(args.broker).delete(QUEUE)
    for body in bodies[2 * n :]:
        accept(body)
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": args.broker}
    env["OTLP_WRITE_QUEUE"] = QUEUE
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "agentops_site", "worker", "-Q", QUEUE,
         "--concurrency", str(args.concurrency), "--without-mingle", "--without-gossip",
         "--loglevel", "WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        while OtlpBatch.objects.count() == n:  # its first write marks its start
            time.sleep(0.005)
        idle0, total0 = cpu_idle()
        started, waiting = time.perf_counter(), OtlpBatch.objects.count()
        while OtlpBatch.objects.exists():
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        idle1, total1 = cpu_idle()
    finally:
        os.killpg(worker.pid, 15)
        worker.wait()
    report(
        "otlp-queue-drain",
        concurrency=args.concurrency,
        batches=waiting,
        seconds=round(elapsed, 2),
        spans_per_s=round(waiting * 512 / elapsed),
        cpu_busy=round(1 - (idle1 - idle0) / (total1 - total0), 2),
        merge_batches=otlp_queue.MERGE_BATCHES,
        machine=machine(),
    )


if __name__ == "__main__":
    sys.exit(main())
