"""Postgres restarted mid-ingest: clients get 503 + Retry-After (never a 500), and retrying the
same batches loses and duplicates nothing.

The cluster is private to this run (reliability/servers.py), so stopping it disturbs nobody.
Eight writer threads post batches of fresh events and resend each batch, same ids, until it
gets a 200, as an SDK does; meanwhile Postgres is stopped (fast shutdown: open transactions
are rolled back, connections cut) and started again, twice.
"""

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import psycopg
import requests

from reliability import figures
from reliability.servers import create_project, gunicorn

WRITERS = 8
BATCH = 20


def batch() -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "id": str(uuid.uuid4()),
            "event_type": "llms",
            "init_timestamp": now,
            "end_timestamp": now,
            "model": "gpt-4o",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost": "0.001",
        }
        for _ in range(BATCH)
    ]


def test_postgres_restarted_mid_ingest_gets_503s_and_loses_nothing(private_pg, tmp_path):
    database = private_pg.new_database()
    pg_url = private_pg.url(database)
    key = create_project(pg_url)
    statuses: Counter = Counter()
    retry_after_missing: list[int] = []
    sent: dict[str, set[str]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    with gunicorn(database_url=pg_url, log_dir=tmp_path, workers=3) as server:

        def writer() -> None:
            http = requests.Session()
            sid = str(uuid.uuid4())
            started = http.post(
                f"{server.url}/v2/create_session",
                json={"session": {"session_id": sid}},
                headers={"X-Agentops-Api-Key": key},
                timeout=30,
            )
            assert started.status_code == 200, started.text
            auth = {"Authorization": f"Bearer {started.json()['jwt']}"}
            ids: set[str] = set()
            with lock:
                sent[sid] = ids
            while not stop.is_set():
                events = batch()
                while True:  # resend the same batch until it is acknowledged
                    try:
                        response = http.post(
                            f"{server.url}/v2/create_events",
                            json={"events": events},
                            headers=auth,
                            timeout=30,
                        )
                    except requests.ConnectionError:
                        with lock:
                            statuses["connection error"] += 1
                        time.sleep(0.2)
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                    if response.status_code == 200:
                        with lock:
                            ids.update(e["id"] for e in events)
                        break
                    if response.status_code == 503:
                        if "Retry-After" not in response.headers:
                            retry_after_missing.append(response.status_code)
                        # Honour it, capped, so the test stays short.
                        time.sleep(min(float(response.headers.get("Retry-After", 1)), 0.5))
                        continue
                    raise AssertionError(f"{response.status_code}: {response.text}")

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for t in threads:
            t.start()
        health_during_outage = []
        for _ in range(2):
            time.sleep(2)
            private_pg.stop("fast")
            figures.add("faults injected: Postgres restarted mid-ingest")
            health_during_outage.append(requests.get(f"{server.url}/healthz", timeout=30))
            time.sleep(1.5)
            private_pg.start()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert "Internal Server Error" not in server.output(), server.output()

    assert statuses[500] == 0 and set(statuses) <= {200, 503, "connection error"}, statuses
    assert statuses[503] > 0, f"the restarts were never seen: {statuses}"
    assert not retry_after_missing
    assert all(h.status_code == 503 for h in health_during_outage)
    total_sent = sum(len(ids) for ids in sent.values())
    with psycopg.connect(pg_url) as conn:
        for sid, ids in sent.items():
            rows = conn.execute(
                "SELECT id::text FROM events_event WHERE session_id = %s", (sid,)
            ).fetchall()
            assert {r[0] for r in rows} == ids and len(rows) == len(ids)
            count, tokens = conn.execute(
                "SELECT llm_count, prompt_tokens FROM agent_sessions_session WHERE id = %s",
                (sid,),
            ).fetchone()
            assert count == len(ids) and tokens == 10 * len(ids)  # totals exact: no double count
        total_stored = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
    figures.add("events sent (Postgres restarts)", total_sent)
    figures.add("events stored (Postgres restarts)", total_stored)
    figures.add("503 answers during Postgres restarts", statuses[503])
    assert total_stored == total_sent > 0
