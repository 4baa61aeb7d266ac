"""OTLP ingest (POST /v1/traces, protobuf) against gunicorn + Postgres, next to the database's
own COPY-with-dedupe rate of the same rows.

Each round, on a database of its own (agentops_bench_otlp):

1. ceiling: the rows the server would write (decoded and mapped beforehand, outside the clock)
   go into events_event by COPY into a staging table then INSERT ... ON CONFLICT DO NOTHING,
   5,000 rows per transaction (bench/ingest.py's method, span id columns included).
2. http: CLIENTS threads fetch a token from /v3/auth/token, then each POSTs BATCHES protobuf
   ExportTraceServiceRequests of 512 spans shaped like agentops 0.4.21's (bench/otlp_spans.py:
   4 traces of 128 spans, 40 % LLM calls with prompts, 30 % tools, 30 % tasks, each trace's
   root session span included) as fast as the server answers. Bodies are built before the clock.

3. paced: the events table emptied again, the same clients send fresh requests of the same
   shape at Poisson arrival times totalling 0.5 x the ceiling (the rate the target asks for),
   and latency is counted from each request's scheduled time (paced_run says why the
   closed-loop run cannot measure a latency target).

Figures: spans/s and its ratio to the ceiling's rows/s (a span is one row, an ERROR span two;
these have none), p99 per request, errors, and a check that every span is stored exactly once
and every session's totals equal its events.

`--write queued` (the default, as the product's): the server answers once a request is durable
and a Celery worker (started here, `--worker-concurrency` processes, on a queue of its own via
OTLP_WRITE_QUEUE) writes it. Spans/s then counts until the last batch is WRITTEN, not answered
(the answered rate is reported beside it), and the paced phase reports how long the backlog
took to drain after its last request. `--write inline`: the write inside the request (the
figures before the queued write).

    .venv/bin/python bench/otlp_ingest.py [--rounds 3] [--clients 8] [--batches 10]
        [--workers 4] --broker redis://127.0.0.1:6379/7 [--write queued|inline]
        [--worker-concurrency 2]
"""

import argparse
import http.client
import os
import random
import subprocess
import sys
import threading
import time
from datetime import timedelta

import orjson
from common import T0, Timer, ensure_database, machine, median, percentile, report, setup_django
from ingest import (
    ROOT,
    STAGING_CHUNK,
    BackendCpu,
    cpu_seconds,
    purge_queue,
    server_env,
    server_pids,
    setup_project,
    start_gunicorn,
    stop_gunicorn,
    truncate_events,
)
from otlp_spans import export_request

DB_NAME = "agentops_bench_otlp"
WRITE_QUEUE = "bench-otlp-write"
TARGET_RATIO = 0.5
SPANS_PER_REQUEST = 512
COLUMNS = (
    "id, session_id, project_id, event_type, init_timestamp, end_timestamp, received_at, "
    "agent_id, name, model, prompt_tokens, completion_tokens, cost, cost_source, "
    "trigger_event_id, payload, span_id, parent_span_id"
)


def plan(clients: int, batches: int, seed: int):
    rng = random.Random(seed)
    work = []
    for c in range(clients):
        requests = [export_request(rng, T0 + timedelta(hours=c, minutes=b)) for b in range(batches)]
        work.append(
            {
                "bodies": [r.SerializeToString() for r, _ in requests],
                "messages": [r for r, _ in requests],
            }
        )
    return work


def mapped_rows(work):
    """(session id, EventRow) of every span, as the server maps them; and the CPU seconds the
    decode and the mapping took per request (this process, one core)."""
    from api.otlp.decode import decode_export_request
    from events.spans import map_spans

    rows, decode_s, map_s, n = [], 0.0, 0.0, 0
    for w in work:
        for body in w["bodies"]:
            t0 = time.process_time()
            decoded = decode_export_request(body, content_type="application/x-protobuf")
            t1 = time.process_time()
            for m in map_spans(decoded.spans):
                rows.extend((m.session_id, r) for r in m.rows)
            decode_s += t1 - t0
            map_s += time.process_time() - t1
            n += 1
    return rows, decode_s / n, map_s / n


def ceiling(database_url: str, project_id, rows) -> float:
    """COPY into staging + INSERT ... ON CONFLICT DO NOTHING rows/s of these rows (the
    database's own work: the rows' COPY text is built off the clock)."""
    import psycopg
    from django.utils import timezone

    from sessions.models import Session

    Session.objects.bulk_create(
        [
            Session(id=sid, project_id=project_id, init_timestamp=T0, last_seen_at=timezone.now())
            for sid in {sid for sid, _ in rows}
        ]
    )
    now = timezone.now()
    with psycopg.connect(database_url) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY events_event ({COLUMNS}) FROM STDIN") as copy:
            for sid, r in rows:
                copy.write_row(
                    (r.id, sid, project_id, r.event_type, r.init_timestamp, r.end_timestamp,
                     now, r.agent_id, r.name, r.model, r.prompt_tokens, r.completion_tokens,
                     r.cost, r.cost_source, r.trigger_event_id, r.payload_json, r.span_id,
                     r.parent_span_id)
                )  # fmt: skip
        conn.commit()
        text = bytearray()
        # COPY (SELECT ...): a partitioned table (events/storage/partitions.py) has no COPY TO.
        export = f"COPY (SELECT {COLUMNS} FROM events_event) TO STDOUT"
        with conn.cursor() as cur, cur.copy(export) as copy:
            for block in copy:
                text += block
        lines = bytes(text).splitlines(keepends=True)
        conn.execute("TRUNCATE events_event")
        conn.execute(
            "CREATE TEMP TABLE staging (LIKE events_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        chunks = [
            b"".join(lines[i : i + STAGING_CHUNK]) for i in range(0, len(lines), STAGING_CHUNK)
        ]
        with Timer() as dedupe:
            for chunk in chunks:
                with conn.cursor() as cur:
                    with cur.copy(f"COPY staging ({COLUMNS}) FROM STDIN") as copy:
                        copy.write(chunk)
                    cur.execute(
                        f"INSERT INTO events_event ({COLUMNS}) SELECT {COLUMNS} FROM staging "
                        "ON CONFLICT (id, init_timestamp) DO NOTHING"
                    )
                conn.commit()
    return len(lines) / dedupe.seconds


def connect(port: int, api_key: str) -> tuple[http.client.HTTPConnection, dict]:
    """A client's connection and headers, with the token the 0.4 SDK fetches first."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST", "/v3/auth/token", orjson.dumps({"api_key": api_key}),
        {"Content-Type": "application/json"},
    )  # fmt: skip
    token = orjson.loads(conn.getresponse().read())["token"]
    return conn, {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}


def export(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> str | None:
    """POST one request; None when it was stored whole (200, empty answer), else the error."""
    try:
        conn.request("POST", "/v1/traces", body, headers)
        response = conn.getresponse()
        answer = response.read()
    except OSError as exc:
        conn.close()
        return repr(exc)
    if response.status != 200 or answer:  # an empty response: nothing refused
        return f"{response.status} {answer[:200]!r}"
    return None


def http_run(port: int, api_key: str, work) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(work) + 1)

    def client(w):
        conn, headers = connect(port, api_key)
        mine = []
        barrier.wait()
        for body in w["bodies"]:
            started = time.perf_counter()
            error = export(conn, body, headers)
            mine.append(time.perf_counter() - started)
            if error:
                with lock:
                    errors.append(error)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(w,)) for w in work]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    spans = sum(len(s.spans) for w in work for m in w["messages"] for rs in m.resource_spans
                for s in rs.scope_spans)  # fmt: skip
    return {
        "started": started,
        "spans": spans,
        "spans_per_s": spans / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": elapsed,
    }


def paced_run(port: int, api_key: str, work, rate: float, seed: int) -> dict:
    """Latency at a given offered load: the clients send their requests at Poisson arrival
    times whose total rate is `rate` requests/s (open loop), and each request's latency counts
    from its scheduled time, so a request held back by a slow predecessor is charged its wait
    (no coordinated omission). The closed-loop run cannot show a latency target: with every
    client always waiting on an answer, Little's law makes mean latency = clients / throughput
    whatever the server does (8 clients at 3 requests/s: 2.7 s)."""
    rng = random.Random(seed)
    per_client = rate / len(work)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(work) + 1)

    def client(w, offsets):
        conn, headers = connect(port, api_key)
        barrier.wait()
        start = time.perf_counter()
        for body, offset in zip(w["bodies"], offsets, strict=True):
            due = start + offset
            time.sleep(max(0.0, due - time.perf_counter()))
            error = export(conn, body, headers)
            with lock:
                latencies.append(time.perf_counter() - due)
                if error:
                    errors.append(error)

    threads = []
    for w in work:
        offsets, at = [], 0.0
        for _ in w["bodies"]:
            at += rng.expovariate(per_client)
            offsets.append(at)
        threads.append(threading.Thread(target=client, args=(w, offsets)))
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    return {
        "offered_requests_per_s": round(rate, 2),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "errors": len(errors),
    }


def start_write_worker(env: dict, concurrency: int, nice: int = 0) -> subprocess.Popen:
    """The queued write's Celery worker, on WRITE_QUEUE only (rollups stay queued and purged,
    as before the queued write, so the figures compare); `nice` > 0 runs it at that niceness."""
    proc = subprocess.Popen(
        [
            *(["nice", "-n", str(nice)] if nice else []),
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "agentops_site",
            "worker",
            "-Q",
            WRITE_QUEUE,
            "--concurrency",
            str(concurrency),
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    time.sleep(5)  # its pool forks and connects; a message sent earlier waits in Redis anyway
    return proc


def newest_batch_id() -> int:
    """The last id the queued write gave a batch (ids grow; TRUNCATE does not reset them)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM events_otlp_batch_id_seq")
        return cursor.fetchone()[0]


def wait_until_written(since: float, timeout: float = 600) -> float:
    """Seconds from `since` until no accepted batch waits (0 when the write is inline)."""
    from events.models import OtlpBatch

    deadline = time.perf_counter() + timeout
    while OtlpBatch.objects.filter(done_at__isnull=True, failed_at__isnull=True).exists():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"batches still waiting after {timeout} s: is the worker up?")
        time.sleep(0.02)
    return time.perf_counter() - since


def check_exactly_once(rows) -> bool:
    """Every mapped row stored once (no more, no fewer), and every session's totals equal its
    events (recompute_totals finds no mismatch)."""
    from events.models import Event
    from sessions.totals import recompute_totals

    expected = {r.id for _, r in rows}
    stored = list(Event.objects.values_list("id", flat=True))
    _, mismatches = recompute_totals(fix=False)
    return len(stored) == len(expected) and set(stored) == expected and not mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=10, help="requests per client per round")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--broker", default=None, help="e.g. redis://127.0.0.1:6379/7")
    parser.add_argument("--db", default=DB_NAME)
    parser.add_argument("--write", choices=("queued", "inline"), default="queued")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--worker-nice", type=int, default=0, help="the worker's niceness")
    parser.add_argument(
        "--paced-ratio",
        type=float,
        default=TARGET_RATIO,
        help="the paced phase's offered rate as a fraction of the ceiling (the target's: 0.5)",
    )
    args = parser.parse_args()
    if args.write == "queued" and not args.broker:
        parser.error("--write queued needs --broker (the worker's Redis)")

    url = ensure_database(args.db)
    env = server_env(url, args.broker)
    env["OTLP_WRITE"] = args.write
    env["OTLP_WRITE_QUEUE"] = WRITE_QUEUE
    setup_django(
        url,
        **{k: env[k] for k in ("DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")},
        SECURE_SSL_REDIRECT="0",
        **({"CELERY_BROKER_URL": args.broker} if args.broker else {}),
    )
    truncate_events()
    project, api_key = setup_project()
    server = start_gunicorn(env, args.port, args.workers)
    worker = (
        start_write_worker(env, args.worker_concurrency, args.worker_nice)
        if args.write == "queued"
        else None
    )
    rounds = []
    try:
        for n in range(args.rounds):
            work = plan(args.clients, args.batches, seed=n)
            rows, decode_s, map_s = mapped_rows(work)
            truncate_events()
            copy_dedupe = ceiling(url, project.id, rows)
            truncate_events()
            for _ in range(args.workers * 3):
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
            web = server_pids(server)
            writers = server_pids(worker) if worker else []
            db_cpu = BackendCpu(args.db)
            db_cpu.start()
            web_cpu, writer_cpu = cpu_seconds(web), cpu_seconds(writers)
            result = http_run(args.port, api_key, work)
            written_after = wait_until_written(result["started"])
            requests_n = sum(len(w["bodies"]) for w in work)
            web_cpu = (cpu_seconds(web) - web_cpu) / requests_n * 1000
            writer_cpu = (cpu_seconds(writers) - writer_cpu) / requests_n * 1000
            db_cpu = db_cpu.seconds() / requests_n * 1000
            exact = check_exactly_once(rows)
            written_spans_per_s = result["spans"] / max(written_after, result["seconds"])
            if args.broker:
                purge_queue(args.broker)
            # Latency at the throughput the target asks for (0.5 x COPY-with-dedupe), on fresh
            # traces of the same shape.
            truncate_events()
            last_batch = newest_batch_id()
            paced = paced_run(
                args.port,
                api_key,
                plan(args.clients, args.batches, seed=1000 + n),
                rate=args.paced_ratio * copy_dedupe / SPANS_PER_REQUEST,
                seed=n,
            )
            paced["ratio_of_ceiling"] = args.paced_ratio
            paced["queued_requests"] = newest_batch_id() - last_batch
            paced["drained_s_after_last_answer"] = round(
                wait_until_written(time.perf_counter()), 2
            )
            exact = exact and check_exactly_once(
                mapped_rows(plan(args.clients, args.batches, seed=1000 + n))[0]
            )
            if args.broker:
                purge_queue(args.broker)
            figures = {
                "round": n,
                "write": args.write,
                "http_spans_per_s": round(written_spans_per_s),
                "answered_spans_per_s": round(result["spans_per_s"]),
                "copy_dedupe_rows_per_s": round(copy_dedupe),
                "ratio_to_copy_dedupe": round(written_spans_per_s / copy_dedupe, 3),
                "closed_loop_p50_ms": round(result["p50_ms"], 1),
                "closed_loop_p99_ms": round(result["p99_ms"], 1),
                "paced": paced,
                "p99_ms": paced["p99_ms"],
                "errors": result["errors"] + paced["errors"],
                "first_error": result["first_error"],
                "exactly_once": exact,
                "cpu_ms_per_request": {
                    "gunicorn": round(web_cpu, 1),
                    "celery_worker": round(writer_cpu, 1),
                    "postgres_backends": round(db_cpu, 1),
                    "decode_in_process": round(decode_s * 1000, 1),
                    "map_in_process": round(map_s * 1000, 1),
                },
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            report("otlp-ingest-round", **figures)
            rounds.append(figures)
    finally:
        stop_gunicorn(server)
        if worker:
            stop_gunicorn(worker)  # the same: SIGTERM to its process group, then SIGKILL
    ratio = median([r["ratio_to_copy_dedupe"] for r in rounds])
    p99 = median([r["p99_ms"] for r in rounds])
    report(
        "otlp-ingest",
        config=("broker " + args.broker if args.broker else "no broker (rollups in-process)")
        + f", {args.write} write"
        + (f", worker concurrency {args.worker_concurrency}" if worker else "")
        + (f", worker nice {args.worker_nice}" if worker and args.worker_nice else ""),
        clients=args.clients,
        spans_per_request=512,
        workers=args.workers,
        rounds=len(rounds),
        http_spans_per_s=round(median([r["http_spans_per_s"] for r in rounds])),
        copy_dedupe_rows_per_s=round(median([r["copy_dedupe_rows_per_s"] for r in rounds])),
        ratio_to_copy_dedupe=round(ratio, 3),
        p99_ms=round(p99, 1),
        closed_loop_p99_ms=round(median([r["closed_loop_p99_ms"] for r in rounds]), 1),
        errors=sum(r["errors"] for r in rounds),
        exactly_once=all(r["exactly_once"] for r in rounds),
        cpu_ms_per_request={
            part: round(median([r["cpu_ms_per_request"][part] for r in rounds]), 1)
            for part in (
                "gunicorn",
                "celery_worker",
                "postgres_backends",
                "decode_in_process",
                "map_in_process",
            )
        },
        target="ratio >= 0.5 (closed loop), p99 < 200 ms (paced at 0.5 x ceiling), 0 errors",
        met=ratio >= 0.5 and p99 < 200 and all(r["errors"] == 0 for r in rounds),
        machine=machine(),
    )


if __name__ == "__main__":
    sys.exit(main())
