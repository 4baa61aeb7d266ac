"""`make run` itself, as a new user starts it: one process group (gunicorn, Celery worker and
beat on the directory broker), DEBUG off, on a non-default port.

The inactivity reaper runs on its own: a session silent past SESSION_INACTIVITY_TIMEOUT becomes
Indeterminate within a minute of the timeout, with nothing but `make run` running. Ingest hands
the rollup to the worker. The pages a user meets first are production pages (our 404, static
files from WhiteNoise, no debug output).

Slow (migrations, the demo data, a beat period): marked `system`. Uses a database, broker
directory and port of its own, so it never touches the checkout's own `make run` state.
"""

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5  # SESSION_INACTIVITY_TIMEOUT for this run, in seconds
BEAT_PERIOD = 60  # the reaper's schedule (settings.CELERY_BEAT_SCHEDULE)

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """`make run` on a free port; yields (base URL, API key, log path)."""
    tmp = tmp_path_factory.mktemp("make-run")
    port = free_port()
    log = tmp / "make-run.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "DATABASE_URL", "CACHE_", "PUBLIC_URL", "DJANGO_DEBUG"))
    }
    env.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        CELERY_BROKER_DIR=str(tmp / "broker"),
        SESSION_INACTIVITY_TIMEOUT=str(TIMEOUT),
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["make", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            text = log.read_text(errors="replace")
            if "Listening at" in text and "ready." in text and "beat: Starting" in text:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"make run did not start:\n{log.read_text(errors='replace')}")
        key = re.search(r"API key:\s+([0-9a-f-]{36})", log.read_text()).group(1)
        yield base, key, log
    finally:
        # Ctrl-C, as a user stops it: the whole group gets SIGINT.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def api(base, path, *, key=None, jwt=None, body=None):
    headers = {"X-Agentops-Api-Key": key} if key else {"Authorization": f"Bearer {jwt}"}
    if body is None:
        return requests.get(f"{base}{path}", headers=headers, timeout=10)
    return requests.post(f"{base}{path}", json=body, headers=headers, timeout=10)


def test_a_silent_session_is_reaped_and_ingest_is_rolled_up_by_the_worker(make_run):
    base, key, log = make_run
    sid = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    started = api(base, "/v2/create_session", key=key,
                  body={"session": {"session_id": sid, "init_timestamp": now}})  # fmt: skip
    assert started.status_code == 200, started.text
    events = [{"id": str(uuid.uuid4()), "event_type": "tools", "name": "probe",
               "init_timestamp": now, "end_timestamp": now}]  # fmt: skip
    sent = api(base, "/v2/create_events", jwt=started.json()["jwt"], body={"events": events})
    assert sent.status_code == 200, sent.text
    last_activity = time.monotonic()

    # The agent dies without ending the session (SIGKILL, or the official 0.3.26 SDK's exit).
    deadline = last_activity + TIMEOUT + BEAT_PERIOD + 10  # 10 s: process start-up slack
    state = None
    while time.monotonic() < deadline:
        state = api(base, f"/v2/sessions/{sid}/export", key=key).json()["session"]["end_state"]
        if state is not None:
            break
        time.sleep(1)
    assert state == "Indeterminate", log.read_text(errors="replace")[-3000:]
    output = log.read_text(errors="replace")
    assert "analytics.expire_sessions" in output
    # The batch's rollup ran in the worker, not in the request.
    assert re.search(r"worker\.1\s+\|.*rolled up project", output)


def test_it_serves_production_pages(make_run):
    base, _, log = make_run
    missing = requests.get(f"{base}/no-such-page", timeout=10)
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    assert "URLconf" not in missing.text and "DEBUG" not in missing.text  # no debug page
    assert missing.headers["Server"].startswith("gunicorn")
    login = requests.get(f"{base}/login/", timeout=10)
    css = re.search(r'href="(/static/css/app\.[0-9a-f]+\.css)"', login.text)
    assert css, "static files are not served with hashed names (DEBUG on?)"
    static = requests.get(f"{base}{css.group(1)}", timeout=10)
    assert static.status_code == 200
    assert "immutable" in static.headers["Cache-Control"]  # WhiteNoise
    session = str(uuid.uuid4())
    drill = requests.get(
        f"{base}/drilldown?session_id={session}", allow_redirects=False, timeout=10
    )
    assert drill.status_code == 302 and drill.headers["Location"] == f"/sessions/{session}"
    assert "Starting development server" not in log.read_text(errors="replace")
