import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeserver import FakeServer

import agentops


@pytest.fixture
def server():
    fake = FakeServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(server):
    """A Client of its own (not the process default), ending its sessions after the test."""
    c = agentops.Client(
        agentops.Configuration(
            api_key=str(uuid.uuid4()), endpoint=server.url, max_wait_time=50, max_flush_time=5000
        )
    )
    yield c
    for session in c.sessions:
        session.end_session("Indeterminate")


@pytest.fixture
def default_client(server, monkeypatch):
    """The process-wide default client (what agentops.init() configures), fresh per test."""
    monkeypatch.setattr(agentops, "_client", None)
    monkeypatch.setenv("AGENTOPS_API_KEY", str(uuid.uuid4()))
    monkeypatch.setenv("AGENTOPS_API_ENDPOINT", server.url)
    c = agentops.get_client()
    c.configure(max_wait_time=50, max_flush_time=5000)
    yield c
    for session in c.sessions:
        session.end_session("Indeterminate")
