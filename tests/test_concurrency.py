"""Totals stay exact under concurrent writers, resends and joins, through a live server."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests

from events.models import Event
from sessions.models import Session
from tests.v2 import event, llm

pytestmark = pytest.mark.django_db(transaction=True)


def start_remote(url, key, session_id):
    response = requests.post(
        f"{url}/v2/create_session",
        json={"session": {"session_id": session_id}},
        headers={"X-Agentops-Api-Key": key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["jwt"]


def send_remote(url, jwt, events):
    response = requests.post(
        f"{url}/v2/create_events",
        json={"events": events},
        headers={"Authorization": f"Bearer {jwt}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_four_concurrent_writers_with_resends_leave_exact_totals(live_server, api_key):
    sid = str(uuid.uuid4())
    # Every writer joins the same session (as inherited-session processes do), then sends its
    # own batches twice, interleaved with the others.
    tokens = [start_remote(live_server.url, api_key, sid) for _ in range(4)]
    batches = [
        [
            [llm(prompt_tokens=10, completion_tokens=1), event("errors", error_type="E")]
            for _ in range(10)
        ]
        for _ in range(4)
    ]
    barrier = threading.Barrier(4)

    def writer(n):
        barrier.wait()
        accepted = 0
        for batch in batches[n]:
            accepted += send_remote(live_server.url, tokens[n], batch)["accepted"]
        for batch in batches[n]:
            assert send_remote(live_server.url, tokens[n], batch)["accepted"] == 0
        return accepted

    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(writer, range(4)))

    session = Session.objects.get(pk=sid)
    stored = Event.objects.filter(session=session)
    assert accepted == stored.count() == 80
    assert session.llm_count == stored.filter(event_type="llms").count() == 40
    assert session.error_count == stored.filter(event_type="errors").count() == 40
    assert session.prompt_tokens == 400 and session.completion_tokens == 40
    assert session.cost == sum(e.cost for e in stored if e.cost is not None)
    assert session.cost == Decimal("0.0014")


def test_concurrent_creates_of_one_session_id_all_join_it(live_server, api_key):
    sid = str(uuid.uuid4())
    with ThreadPoolExecutor(6) as pool:
        tokens = list(pool.map(lambda _: start_remote(live_server.url, api_key, sid), range(6)))
    assert len(tokens) == 6
    assert Session.objects.filter(pk=sid).count() == 1
    for token in tokens:
        assert send_remote(live_server.url, token, [llm()])["accepted"] == 1
    assert Session.objects.get(pk=sid).llm_count == 6
