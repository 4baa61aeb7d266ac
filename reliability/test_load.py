"""Sustained ingest: 16 agents (separate processes, our SDK) record for RELIABILITY_LOAD_SECONDS
(default 20 in CI; the 60 s figure is in docs/reliability.md) against gunicorn on Postgres.
Zero errors, every event sent is stored exactly once, and the web workers' memory stays flat.
"""

import time
import uuid

import psycopg
import redis

from reliability import figures
from reliability.agents import LOAD_AGENT, agent_output, start_agent
from reliability.servers import create_project, gunicorn

CLIENTS = 16
PAUSE = 0.02  # each agent records ~50 events/s: ~800 events/s in all, on a 2-core machine
# A web worker may grow this much between the end of warm-up and the end of the run.
MAX_RSS_GROWTH_KIB = 20 * 1024


def test_sixteen_sdk_clients_sustained_nothing_lost_memory_flat(pg_url, tmp_path, load_seconds):
    key = create_project(pg_url)
    queue = f"load-{uuid.uuid4().hex[:10]}"
    production_shaped = {
        # Rollups go to Redis (a queue of this test's; no worker needed to ingest), and the
        # throttles count there on every request, as in production.
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/5",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CACHE_KEY_PREFIX": queue,
        "AUTH_FAILURE_LIMIT": "20",
        "API_KEY_RATE_LIMIT": "1000000",
    }
    with gunicorn(database_url=pg_url, log_dir=tmp_path, workers=4, **production_shaped) as server:
        logs = [tmp_path / f"agent-{i}.log" for i in range(CLIENTS)]
        started = time.monotonic()
        agents = [
            start_agent(
                log,
                script=LOAD_AGENT,
                key=key,
                endpoint=server.url,
                events=0,
                pause=PAUSE,
                DURATION=load_seconds,
            )
            for log in logs
        ]
        time.sleep(load_seconds / 4)  # warm-up: imports, connections, first batches
        rss_warm = server.worker_rss_kib()
        samples = [rss_warm]
        while any(a.poll() is None for a in agents):
            time.sleep(1)
            samples.append(server.worker_rss_kib())
        elapsed = time.monotonic() - started
        rss_end = server.worker_rss_kib()
        assert "Internal Server Error" not in server.output(), server.output()
        statuses = server.statuses()
    broker = redis.Redis.from_url("redis://127.0.0.1:6379/5")
    figures.note(f"load {load_seconds:.0f}s: rollup messages queued", broker.llen(queue))
    broker.delete(queue)
    failures = [
        agent_output(log)[3] for log, a in zip(logs, agents, strict=True) if a.returncode != 0
    ]
    assert not failures, failures[0]

    total_sent = 0
    with psycopg.connect(pg_url) as conn:
        for log in logs:
            session_id, sent, done, text = agent_output(log)
            # The SDK logs every retry, refusal and drop; here it must have none to report. (It may
            # say the server was slow to answer create_session: 16 agents start on 2 cores.)
            problems = [
                line
                for line in text.splitlines()
                if ("WARNING" in line or "ERROR" in line) and "not reachable yet" not in line
            ]
            assert done and not problems, text
            stored = conn.execute(
                "SELECT id::text FROM events_event WHERE session_id = %s", (session_id,)
            ).fetchall()
            assert sorted(r[0] for r in stored) == sorted(sent)
            total_sent += len(sent)
        total_stored = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
    growth = {pid: rss_end[pid] - rss_warm[pid] for pid in rss_warm if pid in rss_end}
    figures.note(f"load {load_seconds:.0f}s: clients", CLIENTS)
    figures.note(f"load {load_seconds:.0f}s: events sent", total_sent)
    figures.note(f"load {load_seconds:.0f}s: events stored", total_stored)
    figures.note(f"load {load_seconds:.0f}s: events/s", round(total_sent / elapsed))
    figures.note(
        f"load {load_seconds:.0f}s: web worker RSS KiB warm -> end",
        {pid: (rss_warm[pid], rss_end[pid]) for pid in growth},
    )
    figures.note(f"load {load_seconds:.0f}s: responses by status", statuses)
    assert set(statuses) == {"200"}, statuses  # zero errors: not one non-200 answer
    assert total_stored == total_sent > CLIENTS * load_seconds
    # Same workers throughout (none died and was replaced), none grew past the bound.
    assert set(rss_end) == set(rss_warm), (rss_warm, rss_end)
    assert max(growth.values()) < MAX_RSS_GROWTH_KIB, samples
