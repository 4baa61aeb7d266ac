import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.system  # a real server process

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_is_ok_when_the_database_answers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_with_the_reason_when_the_database_is_unreachable():
    """A real server process whose DATABASE_URL points at a port nothing listens on."""
    port, dead_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_port}/nowhere",
        "DJANGO_SETTINGS_MODULE": "agentops_site.settings",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "agentops_site.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        response = None
        for _ in range(100):
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert response is not None, "server did not start"
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "error"
        assert body["database"] == "unreachable"
        assert "connection" in body["reason"].lower() or str(dead_port) in body["reason"]
    finally:
        server.terminate()
        server.wait(timeout=10)
