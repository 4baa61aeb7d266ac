"""Faults an agent using our SDK lives through, with nothing lost and nothing counted twice.

The agent is a real program (reliability/agents.py) using sdk/ over HTTP; the server is gunicorn
on a private Postgres; the faults are real: the server process stopped and started again, a
proxy that answers 503 (sometimes after the server stored the batch, so the SDK's resend must
be recognised as a duplicate), the agent SIGKILLed.
"""

import http.client
import itertools
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

from reliability import figures
from reliability.agents import agent_output, start_agent
from reliability.servers import PYTHON, ROOT, base_env, create_project, free_port, gunicorn


def stored(pg_url: str, session_id: str) -> tuple[list[str], dict]:
    with psycopg.connect(pg_url) as conn:
        ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM events_event WHERE session_id = %s", (session_id,)
            ).fetchall()
        ]
        row = conn.execute(
            "SELECT end_state, tool_count, end_state_reason FROM agent_sessions_session "
            "WHERE id = %s",
            (session_id,),
        ).fetchone()
    return ids, {"end_state": row[0], "tool_count": row[1], "reason": row[2]}


def wait_for_events(log, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(agent_output(log)[1]) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the agent did not record {n} events:\n{agent_output(log)[3]}")


def test_the_server_stopped_while_an_agent_records_loses_and_doubles_nothing(pg_url, tmp_path):
    key = create_project(pg_url)
    with gunicorn(database_url=pg_url, log_dir=tmp_path) as server:
        log = tmp_path / "agent.log"
        agent = start_agent(log, key=key, endpoint=server.url, events=400, pause=0.01)
        wait_for_events(log, 100)
        server.stop()  # the whole server: every worker, the listening socket
        figures.add("faults injected: web server stopped")
        wait_for_events(log, 250)  # the agent goes on recording into its buffer
        time.sleep(2)
        server.start()  # same port, same database
        assert agent.wait(timeout=120) == 0, agent_output(log)[3]
    session_id, sent, done, text = agent_output(log)
    assert done, text
    ids, session = stored(pg_url, session_id)
    figures.add("events sent (server stopped)", len(sent))
    figures.add("events stored (server stopped)", len(ids))
    assert sorted(ids) == sorted(sent) and len(sent) == 400
    assert session["end_state"] == "Success" and session["tool_count"] == 400


class FlakyProxy:
    """Forwards to the server, but answers 503 + Retry-After: 0 to one request in three, and to
    another one in three only AFTER the server handled it (the answer is lost on the way)."""

    def __init__(self, upstream_port: int):
        self.port = free_port()
        self.counter = itertools.count()
        self.faults = {"503 before the server": 0, "503 after the server stored it": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                n = next(proxy.counter)
                faulty = self.path.startswith("/v2/") and n % 3 != 2
                if faulty and n % 3 == 0:
                    proxy.faults["503 before the server"] += 1
                    return self._answer(503, b'{"message": "injected", "errors": {}}')
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if faulty:
                    proxy.faults["503 after the server stored it"] += 1
                    return self._answer(503, b'{"message": "injected", "errors": {}}')
                return self._answer(response.status, data, response.getheader("Content-Type"))

            def _answer(self, status, data, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_intermittent_503s_are_retried_into_exactly_once_storage(pg_url, tmp_path):
    key = create_project(pg_url)
    with gunicorn(database_url=pg_url, log_dir=tmp_path) as server:
        proxy = FlakyProxy(server.port)
        try:
            log = tmp_path / "agent.log"
            agent = start_agent(
                log, key=key, endpoint=f"http://127.0.0.1:{proxy.port}", events=300, pause=0.005
            )
            assert agent.wait(timeout=180) == 0, agent_output(log)[3]
        finally:
            proxy.close()
    session_id, sent, done, text = agent_output(log)
    assert done, text
    ids, session = stored(pg_url, session_id)
    for name, n in proxy.faults.items():
        figures.add(f"faults injected: {name}", n)
        assert n > 0
    figures.add("events sent (intermittent 503)", len(sent))
    figures.add("events stored (intermittent 503)", len(ids))
    # Exactly once: each id the agent sent stored once, and nothing else. (A stored id the agent
    # had not listed, about one run in two, was the harness's: an SDK log line written into the
    # agent's "event <id>" line; reliability/agents.py SAY, test_agents.py.)
    assert sorted(ids) == sorted(sent) and len(sent) == 300
    assert session["end_state"] == "Success" and session["tool_count"] == 300


def test_a_sigkilled_agent_ends_indeterminate_through_the_reaper(pg_url, tmp_path):
    key = create_project(pg_url)
    with gunicorn(database_url=pg_url, log_dir=tmp_path) as server:
        log = tmp_path / "agent.log"
        agent = start_agent(log, key=key, endpoint=server.url, events=100_000, pause=0.01)
        wait_for_events(log, 50)
        time.sleep(0.5)  # a few batches reach the server (max_wait_time is 100 ms)
        agent.kill()  # SIGKILL: no exit handler, no end_session, no final flush
        agent.wait(timeout=10)
        figures.add("faults injected: agent SIGKILLed")
        session_id, sent, _, _ = agent_output(log)
        ids, session = stored(pg_url, session_id)
        assert session["end_state"] is None and ids  # still "running", its events kept
        time.sleep(2.5)
        subprocess.run(
            [str(PYTHON), "manage.py", "expire_sessions"],
            cwd=ROOT,
            env=base_env(DATABASE_URL=pg_url, SESSION_INACTIVITY_TIMEOUT="2"),
            check=True,
            timeout=120,
        )
    ids_after, session = stored(pg_url, session_id)
    assert session["end_state"] == "Indeterminate"
    assert "killed" in session["reason"]
    # What reached the server before the kill is all there, and only what the agent recorded.
    assert set(ids_after) <= set(sent) and len(ids_after) == len(ids) == session["tool_count"]
