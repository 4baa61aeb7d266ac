"""A scripted stand-in for the server's HTTP side, for unit tests that must run without one.

It speaks just enough of the v2 protocol (sessions, events deduplicated by id, updates, JWT
re-authorization, stats) and can be told to fail: answer N requests with a status (and a
Retry-After), or hang. The end-to-end tests in tests/test_sdk_*.py use the real server.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[float, str, dict]] = []  # (time, path, body)
        self.events: dict[str, dict] = {}  # id -> event (first copy)
        self.event_posts: list[list[str]] = []  # ids per create_events request
        self.sessions: dict[str, dict] = {}
        self.updates: list[dict] = []
        self.agents: list[dict] = []
        self.failures: list[tuple[str, int, dict]] = []  # (path suffix, status, headers)
        self.lost_answers: list[str] = []  # path suffixes: process the request, then answer 502
        self.valid_jwts: set[str] = set()
        self.hang = threading.Event()
        self.token_cost: str | None = "0.125"  # None: JSON null, the cost of no call is known
        self.cost_unknown_events: int | None = None  # None: left out, as older servers do
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status, body=None, headers=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle(None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                self._handle(json.loads(raw) if raw else None)

            def _handle(self, body):
                path = self.path
                with server.lock:
                    server.requests.append((time.monotonic(), path, body))
                    failure = next((f for f in server.failures if path.endswith(f[0])), None)
                    if failure is not None:
                        server.failures.remove(failure)
                while server.hang.is_set():
                    time.sleep(0.01)
                if failure is not None:
                    return self._answer(failure[1], {"message": "scripted failure"}, failure[2])
                auth = self.headers.get("Authorization", "")
                if (
                    path.endswith(("/create_events", "/update_session", "/create_agent"))
                    and auth.removeprefix("Bearer ") not in server.valid_jwts
                ):
                    return self._answer(401, {"message": "The session token is not valid."})
                answer = server.route(path, body)
                with server.lock:
                    lose = next((p for p in server.lost_answers if path.endswith(p)), None)
                    if lose is not None:
                        server.lost_answers.remove(lose)
                        answer = (502, {"message": "the proxy lost the answer"})
                return self._answer(*answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def fail(self, path_suffix: str, status: int, times: int = 1, **headers) -> None:
        with self.lock:
            self.failures.extend([(path_suffix, status, headers)] * times)

    def new_jwt(self) -> str:
        token = uuid.uuid4().hex
        self.valid_jwts.add(token)
        return token

    def route(self, path: str, body):
        with self.lock:
            if path.endswith("/create_session"):
                session = body["session"]
                self.sessions.setdefault(session["session_id"], session)
                return 200, {
                    "status": "Success",
                    "jwt": self.new_jwt(),
                    "session_url": f"{self.url}/sessions/{session['session_id']}",
                    "project_id": "11111111-1111-4111-8111-111111111111",
                }
            if path.endswith("/reauthorize_jwt"):
                return 200, {"status": "Success", "jwt": self.new_jwt()}
            if path.endswith("/create_events"):
                ids = [e["id"] for e in body["events"]]
                self.event_posts.append(ids)
                accepted = 0
                for event in body["events"]:
                    if event["id"] not in self.events:
                        self.events[event["id"]] = event
                        accepted += 1
                return 200, {
                    "status": "success",
                    "accepted": accepted,
                    "duplicates": len(ids) - accepted,
                    "rejected": [],
                }
            if path.endswith("/update_session"):
                self.updates.append(body["session"])
                answer = {"status": "success", "token_cost": self.token_cost}
                if self.cost_unknown_events is not None:
                    answer["cost_unknown_events"] = self.cost_unknown_events
                return 200, answer
            if path.endswith("/create_agent"):
                self.agents.append(body)
                return 200, {"status": "success"}
            if "/stats" in path:
                return 200, {"session_id": path.split("/")[-2], "events": len(self.events)}
            return 404, {"message": "not found"}

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.hang.clear()
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.01)
        return False
