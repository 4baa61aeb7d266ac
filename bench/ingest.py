"""HTTP ingest against gunicorn + Postgres, next to the database's own COPY ceiling.

Each round, on a database of its own (agentops_bench_ingest):

1. ceiling: the same rows (validated and priced beforehand, outside the clock) go into
   events_event by COPY into a temporary staging table then INSERT ... ON CONFLICT DO NOTHING,
   5,000 rows per transaction, one connection. Plain COPY (no dedupe) is timed too.
2. http: the events table is emptied, then CLIENTS threads each start a session
   (/v2/create_session) and POST BATCHES batches of 100 SDK-shaped events (~1.4 KB each) to
   /v2/create_events as fast as the server answers. Bodies are serialised before the clock.

The figure is the ratio http events/s ÷ ceiling rows/s of the same round; the summary is the
median over rounds.

After each round the script checks that every event is stored exactly once
and that the session totals equal the events. Validation is timed in-process too (events/s per
core through events.ingest.prepare_batch).

With --keep-data the database's own data stays (a bench/generate.py or bench/scale.py dataset:
the same ratio at 1M and at 10M events, issue 18): instead of emptying the tables, each step
deletes the rows of the round's own sessions, and the checks look at those sessions only. The
round's events are stamped at T0, in a month that already holds ~1M events in both datasets, as
a live deployment's current month does.

    .venv/bin/python bench/ingest.py [--rounds 3] [--clients 8] [--batches 100]
                                     [--broker redis://127.0.0.1:6379/7] [--workers 4]

--broker unset: no broker server, as `make run` (the embedded default): rollups are queued on the
directory broker (agentops_site/broker.py, in a temporary directory) and a Celery worker runs them
during the benchmark, on the same machine, as `make run`'s does. With --broker: the production
configuration (the rollup is queued on Redis; no worker runs during the benchmark, so the queue is
purged afterwards).
"""

import argparse
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
from common import (
    ROOT,
    T0,
    Timer,
    ensure_database,
    machine,
    median,
    percentile,
    pg_url,
    report,
    sdk_batch,
    setup_django,
)

DB_NAME = "agentops_bench_ingest"
SECRET = "bench-secret-key-" + "x" * 48
STAGING_CHUNK = 5000


def server_env(database_url: str, broker: str | None, broker_dir: str | None = None) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CACHE_URL", None)
    if broker:
        env["CELERY_BROKER_URL"] = broker
        # Keep the benchmark's messages out of anyone else's queue on a shared Redis.
        env["CELERY_TASK_DEFAULT_QUEUE"] = "bench-ingest"
        env["CACHE_KEY_PREFIX"] = "bench-ingest"
    elif broker_dir:
        env["CELERY_BROKER_DIR"] = broker_dir
    return env


def start_worker(env: dict) -> subprocess.Popen:
    """`make run`'s Celery worker (Procfile), consuming the directory broker."""
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "agentops_site", "worker", "--loglevel=WARNING",
         "--concurrency=1", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "agentops_site.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def setup_project():
    from projects.services import create_project_with_key

    project, _, key = create_project_with_key(name="bench-ingest", label=f"bench {uuid.uuid4()}")
    return project, key.raw


def truncate_events(keep: list | None = None) -> None:
    """Empty the ingest tables; with `keep` (--keep-data: the round's session ids), delete only
    those sessions and their rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        if keep is None:
            cursor.execute(
                "TRUNCATE events_event, agent_sessions_sessiontag, agent_sessions_agent, "
                "analytics_dailyrollup, analytics_modeldailyrollup, agent_sessions_session, "
                "events_otlp_batch "
                "CASCADE"
            )
            return
        cursor.execute("DELETE FROM events_event WHERE session_id = ANY(%s)", [keep])
        cursor.execute("DELETE FROM agent_sessions_session WHERE id = ANY(%s)", [keep])


def plan(clients: int, batches: int, seed: int):
    """Per client: a session id, its batches (dicts) and their serialised bodies."""
    rng = random.Random(seed)
    work = []
    for c in range(clients):
        sid = uuid.uuid4()
        at = T0 + timedelta(hours=c)
        raw = [sdk_batch(rng, at + timedelta(seconds=b)) for b in range(batches)]
        bodies = [orjson.dumps({"events": batch}) for batch in raw]
        work.append({"session_id": sid, "raw": raw, "bodies": bodies})
    return work


def validation_rate(work) -> float:
    """Events/s through prepare_batch (validation, payload split, pricing) in this process."""
    from events.ingest import prepare_batch

    batches = [b for w in work for b in w["raw"]][:200]
    sid = work[0]["session_id"]
    with Timer() as t:
        for batch in batches:
            prepare_batch(batch, session_id=sid)
    return sum(len(b) for b in batches) / t.seconds


def prepared_rows(work):
    from events.ingest import prepare_batch

    rows = []
    for w in work:
        for batch in w["raw"]:
            ready, result = prepare_batch(batch, session_id=w["session_id"])
            assert not result.rejected, result.rejected
            rows.extend((w["session_id"], r) for r in ready)
    return rows


COLUMNS = (
    "id, session_id, project_id, event_type, init_timestamp, end_timestamp, received_at, "
    "agent_id, name, model, prompt_tokens, completion_tokens, cost, cost_source, "
    "trigger_event_id, payload"
)


def insert_sessions(project_id, work) -> None:
    from django.utils import timezone

    from sessions.models import Session

    now = timezone.now()
    Session.objects.bulk_create(
        [
            Session(id=w["session_id"], project_id=project_id, init_timestamp=T0, last_seen_at=now)
            for w in work
        ]
    )


def ceiling(database_url: str, project_id, rows, *, keep_data: bool = False) -> tuple:
    """(COPY rows/s, COPY-into-staging + INSERT ON CONFLICT DO NOTHING rows/s, Postgres CPU ms
    per 100 rows of the latter) of these rows.

    The first is COPY from Python (psycopg's write_row: client formatting included). For the
    second, the rows' COPY text is taken back from the table first (COPY TO, off the clock), so
    the timed part is the database's own work: parsing COPY text, staging, the conflict check
    and the insert with its indexes, in STAGING_CHUNK-row transactions.
    """
    import psycopg
    from django.utils import timezone

    now = timezone.now()
    sessions = sorted({sid for sid, _ in rows})
    mine = "WHERE session_id = ANY(%s)" if keep_data else ""
    with psycopg.connect(database_url) as conn:
        with Timer() as plain:
            for start in range(0, len(rows), STAGING_CHUNK):
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY events_event ({COLUMNS}) FROM STDIN") as copy,
                ):
                    for sid, r in rows[start : start + STAGING_CHUNK]:
                        copy.write_row(
                            (r.id, sid, project_id, r.event_type, r.init_timestamp,
                             r.end_timestamp, now, r.agent_id, r.name, r.model, r.prompt_tokens,
                             r.completion_tokens, r.cost, r.cost_source, r.trigger_event_id,
                             r.payload_json)
                        )  # fmt: skip
                conn.commit()
        text = bytearray()
        # COPY (SELECT ...): a partitioned table (events/storage/partitions.py) has no COPY TO.
        export = f"COPY (SELECT {COLUMNS} FROM events_event {mine}) TO STDOUT"
        with conn.cursor() as cur, cur.copy(export, [sessions] if keep_data else None) as copy:
            for block in copy:
                text += block
        lines = bytes(text).splitlines(keepends=True)
        if keep_data:
            conn.execute(f"DELETE FROM events_event {mine}", [sessions])
        else:
            conn.execute("TRUNCATE events_event")
        conn.execute(
            "CREATE TEMP TABLE staging (LIKE events_event INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        chunks = [
            b"".join(lines[i : i + STAGING_CHUNK]) for i in range(0, len(lines), STAGING_CHUNK)
        ]
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.commit()
        cpu_before = cpu_seconds([backend])
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
        cpu = (cpu_seconds([backend]) - cpu_before) / len(lines) * 100 * 1000
    return len(rows) / plain.seconds, len(lines) / dedupe.seconds, cpu


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (Linux /proc)."""
    return sum(cpu_of(pid) or 0.0 for pid in pids)


def cpu_of(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu(threading.Thread):
    """CPU used by the bench database's Postgres backends while running, sampled every 0.2 s.

    Backends come and go (CONN_MAX_AGE reconnects), so each is followed from the first time it
    is seen (a backend born during the run counts from 0) to the last sample it was alive in.
    """

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def sample(self, conn, initial: bool) -> None:
        for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ):
            cpu = cpu_of(pid)
            if cpu is None:
                continue
            self.first.setdefault(pid, cpu if initial else 0.0)
            self.last[pid] = cpu

    def run(self) -> None:
        import psycopg

        with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
            self.sample(conn, initial=True)
            self.ready.set()
            while not self.stop.wait(0.2):
                self.sample(conn, initial=False)
            self.sample(conn, initial=False)

    def start(self) -> None:
        self.ready = threading.Event()
        super().start()
        self.ready.wait()

    def seconds(self) -> float:
        self.stop.set()
        self.join()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def server_pids(gunicorn: subprocess.Popen) -> list[int]:
    """The gunicorn master and its workers."""
    out = subprocess.run(
        ["pgrep", "-g", str(gunicorn.pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def http_run(port: int, api_key: str, work) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(work) + 1)

    def client(w):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = orjson.dumps(
            {"session": {"session_id": str(w["session_id"]), "init_timestamp": T0.isoformat()}}
        )
        conn.request(
            "POST",
            "/v2/create_session",
            body,
            {"Content-Type": "application/json", "X-Agentops-Api-Key": api_key},
        )
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise SystemExit(f"create_session: {response.status} {answer[:300]!r}")
        jwt = orjson.loads(answer)["jwt"]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"}
        mine = []
        barrier.wait()
        for body in w["bodies"]:
            started = time.perf_counter()
            try:
                conn.request("POST", "/v2/create_events", body, headers)
                response = conn.getresponse()
                answer = response.read()
            except OSError as exc:
                with lock:
                    errors.append(repr(exc))
                conn.close()
                continue
            mine.append(time.perf_counter() - started)
            if response.status != 200 or orjson.loads(answer)["accepted"] != 100:
                with lock:
                    errors.append(f"{response.status} {answer[:200]!r}")
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
    events = sum(len(b) for w in work for b in w["raw"])
    return {
        "events_per_s": events / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": elapsed,
    }


def check_exactly_once(work) -> bool:
    """Every event stored once, and each session's totals equal its events."""
    from django.db.models import Count

    from events.models import Event
    from sessions.models import Session
    from sessions.totals import event_count

    expected = {w["session_id"]: sum(len(b) for b in w["raw"]) for w in work}
    events = Event.objects.filter(session_id__in=expected)
    stored = dict(events.values_list("session_id").annotate(n=Count("id")).order_by())
    totals = {s.id: event_count(s) for s in Session.objects.filter(id__in=expected)}
    return stored == expected and totals == expected


def events_in_database() -> int:
    """The planner's count of events (a full count of 10M rows takes seconds)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(c.reltuples), 0)::bigint FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events_event'::regclass"
        )
        return cursor.fetchone()[0]


def statements_per_batch(api_key: str) -> int:
    """SQL statements one create_events request runs (in-process, Django test client)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    sid = str(uuid.uuid4())
    client.post(
        "/v2/create_session",
        orjson.dumps({"session": {"session_id": sid, "init_timestamp": T0.isoformat()}}),
        content_type="application/json",
        HTTP_X_AGENTOPS_API_KEY=api_key,
    )
    jwt = client.post(
        "/v2/reauthorize_jwt",
        orjson.dumps({"session_id": sid}),
        content_type="application/json",
        HTTP_X_AGENTOPS_API_KEY=api_key,
    ).json()["jwt"]
    body = orjson.dumps({"events": sdk_batch(random.Random(5), T0)})
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/v2/create_events",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {jwt}",
        )
    assert response.status_code == 200, response.content
    return len(queries.captured_queries)


def purge_queue(broker: str) -> None:
    import redis

    client = redis.Redis.from_url(broker)
    client.delete("bench-ingest")
    for key in client.scan_iter("analytics:rollup-pending:*"):
        client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=100, help="batches per client per round")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--broker", default=None, help="e.g. redis://127.0.0.1:6379/7")
    parser.add_argument("--db", default=DB_NAME)
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the database's data (a generate.py / scale.py dataset); see the docstring",
    )
    args = parser.parse_args()

    url = ensure_database(args.db)
    broker_dir = None if args.broker else tempfile.mkdtemp(prefix="bench-ingest-broker-")
    env = server_env(url, args.broker, broker_dir)
    # The bench process uses the same settings as the server (broker included), so that the
    # in-process statement count matches what gunicorn runs.
    setup_django(
        url,
        **{k: env[k] for k in ("DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")},
        SECURE_SSL_REDIRECT="0",
        **({"CELERY_BROKER_URL": args.broker} if args.broker else {}),
        **({"CELERY_BROKER_DIR": broker_dir} if broker_dir else {}),
    )
    if not args.keep_data:
        truncate_events()
    project, api_key = setup_project()
    statements = statements_per_batch(api_key)
    server = start_gunicorn(env, args.port, args.workers)
    worker = start_worker(env) if broker_dir else None
    rounds = []
    try:
        for n in range(args.rounds):
            work = plan(args.clients, args.batches, seed=n)
            rows = prepared_rows(work)
            validation = validation_rate(work)

            keep = [w["session_id"] for w in work] if args.keep_data else None
            truncate_events(keep)
            insert_sessions(project.id, work)
            copy_plain, copy_dedupe, copy_cpu = ceiling(
                url, project.id, rows, keep_data=args.keep_data
            )
            truncate_events(keep)

            # Warm every worker's database connection, so their backends can be found.
            for _ in range(args.workers * 3):
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
            web = server_pids(server)
            db_cpu = BackendCpu(args.db)
            db_cpu.start()
            web_cpu, client_cpu = cpu_seconds(web), time.process_time()
            result = http_run(args.port, api_key, work)
            batches = sum(len(w["bodies"]) for w in work)
            web_cpu = (cpu_seconds(web) - web_cpu) / batches * 1000
            db_cpu = db_cpu.seconds() / batches * 1000
            client_cpu = (time.process_time() - client_cpu) / batches * 1000
            exact = check_exactly_once(work)
            if args.broker:
                purge_queue(args.broker)
            figures = {
                "round": n,
                "http_events_per_s": round(result["events_per_s"]),
                "copy_dedupe_rows_per_s": round(copy_dedupe),
                "copy_rows_per_s": round(copy_plain),
                "ratio_to_copy_dedupe": round(result["events_per_s"] / copy_dedupe, 3),
                "p50_ms": round(result["p50_ms"], 1),
                "p99_ms": round(result["p99_ms"], 1),
                "errors": result["errors"],
                "first_error": result["first_error"],
                "exactly_once": exact,
                "validation_events_per_s": round(validation),
                "cpu_ms_per_batch": {
                    "gunicorn": round(web_cpu, 2),
                    "postgres_backends": round(db_cpu, 2),
                    "bench_clients": round(client_cpu, 2),
                    "copy_dedupe_postgres_per_100_rows": round(copy_cpu, 2),
                },
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            if args.keep_data:
                figures["events_in_database"] = events_in_database()
                truncate_events(keep)
            report("ingest-round", **figures)
            rounds.append(figures)
            del work, rows
    finally:
        stop_gunicorn(server)
        if worker is not None:
            stop_gunicorn(worker)  # the same SIGTERM to its process group
            shutil.rmtree(broker_dir, ignore_errors=True)
    report(
        "ingest",
        config="broker " + args.broker
        if args.broker
        else "no broker server (directory broker, one Celery worker)",
        clients=args.clients,
        batch=100,
        workers=args.workers,
        rounds=len(rounds),
        http_events_per_s=round(median([r["http_events_per_s"] for r in rounds])),
        copy_dedupe_rows_per_s=round(median([r["copy_dedupe_rows_per_s"] for r in rounds])),
        copy_rows_per_s=round(median([r["copy_rows_per_s"] for r in rounds])),
        ratio_to_copy_dedupe=round(median([r["ratio_to_copy_dedupe"] for r in rounds]), 3),
        p99_ms=round(median([r["p99_ms"] for r in rounds]), 1),
        errors=sum(r["errors"] for r in rounds),
        exactly_once=all(r["exactly_once"] for r in rounds),
        validation_events_per_s=round(median([r["validation_events_per_s"] for r in rounds])),
        cpu_ms_per_batch={
            part: round(median([r["cpu_ms_per_batch"][part] for r in rounds]), 2)
            for part in (
                "gunicorn",
                "postgres_backends",
                "bench_clients",
                "copy_dedupe_postgres_per_100_rows",
            )
        },
        statements_per_batch=statements,
        target="ratio >= 0.5, p99 < 100 ms, 0 errors",
        met=median([r["ratio_to_copy_dedupe"] for r in rounds]) >= 0.5
        and median([r["p99_ms"] for r in rounds]) < 100
        and all(r["errors"] == 0 for r in rounds),
        machine=machine(),
    )


if __name__ == "__main__":
    sys.exit(main())
