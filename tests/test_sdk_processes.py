"""Our SDK across processes and outages, against a live server: inherited sessions from a
second process, SIGINT and an uncaught exception in the agent's process, and a server that
goes away for a while (or loses answers) then comes back: every event arrives exactly once."""

import json
import signal
import time

import agentops
import pytest

from events.models import Event
from sessions.models import Session
from tests.sdk_helpers import CuttableProxy, fresh_default_client, sdk_process, stop_sender

pytestmark = pytest.mark.django_db(transaction=True)

CHILD = """
import json, os, sys, time, agentops
session = agentops.init(inherited_session_id=os.environ["SESSION_ID"], default_tags=["child"],
                        skip_auto_end_session=True)
ids = []
for i in range(40):
    event = agentops.ToolEvent(name="child-tool", params={"i": i})
    ids.append(str(event.id))
    session.record(event)
print(json.dumps({"session_id": str(session.session_id), "ids": ids}), flush=True)
"""


def test_a_second_process_adds_to_an_inherited_session(live_server, api_key, monkeypatch):
    fresh_default_client(monkeypatch, api_key, live_server.url)
    session = agentops.init(default_tags=["parent"])
    parent_ids = set()
    for i in range(25):
        event = agentops.ActionEvent(action_type="parent-step", params={"i": i})
        parent_ids.add(event.id)
        session.record(event)
    child = sdk_process(
        CHILD, api_key=api_key, url=live_server.url, SESSION_ID=str(session.session_id)
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    reported = json.loads(out.strip().splitlines()[-1])
    assert reported["session_id"] == str(session.session_id)
    # The child exited without ending the session (skip_auto_end_session) but sent its events.
    assert Session.objects.get(pk=session.session_id).end_state is None
    cost = session.end_session("Success")

    row = Session.objects.get(pk=session.session_id)
    assert row.end_state == "Success" and cost == row.cost
    stored = {str(i) for i in Event.objects.filter(session=row).values_list("id", flat=True)}
    assert stored == {str(i) for i in parent_ids} | set(reported["ids"])
    assert (row.action_count, row.tool_count) == (25, 40)
    assert set(row.tags.values_list("name", flat=True)) >= {"parent", "child"}
    assert Session.objects.count() == 1


AGENT = """
import json, os, sys, time, agentops
session = agentops.init(max_wait_time=60000)
for i in range(30):
    agentops.record(agentops.ActionEvent(action_type="step", params={"i": i}))
print(json.dumps({"session_id": str(session.session_id)}), flush=True)
"""


def test_sigint_ends_the_session_indeterminate_with_its_events(live_server, api_key):
    proc = sdk_process(AGENT + "time.sleep(60)", api_key=api_key, url=live_server.url)
    session_id = json.loads(proc.stdout.readline())["session_id"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err and proc.returncode != 0
    row = Session.objects.get(pk=session_id)
    assert row.end_state == "Indeterminate"
    assert row.end_state_reason == "user-triggered interrupt (SIGINT)"
    assert row.action_count == 30 == Event.objects.filter(session=row).count()


def test_an_uncaught_exception_ends_the_session_as_fail(live_server, api_key):
    proc = sdk_process(
        AGENT + "raise RuntimeError('out of tokens')", api_key=api_key, url=live_server.url
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "RuntimeError: out of tokens" in err
    row = Session.objects.get(pk=json.loads(out.splitlines()[0])["session_id"])
    assert row.end_state == "Fail"
    assert row.end_state_reason.startswith("RuntimeError: out of tokens")
    assert "Traceback" in row.end_state_reason
    assert row.action_count == 30
    # The crash counts as one error (events/crashes.py), named after the exception.
    assert row.error_count == 1
    crash = Event.objects.get(session=row, event_type="errors")
    assert (crash.name, crash.payload["details"]) == ("RuntimeError", "out of tokens")


def test_a_normal_exit_without_end_session_ends_it_indeterminate(live_server, api_key):
    proc = sdk_process(AGENT, api_key=api_key, url=live_server.url)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    row = Session.objects.get(pk=json.loads(out)["session_id"])
    assert row.end_state == "Indeterminate"
    assert "without calling agentops.end_session" in row.end_state_reason
    assert row.action_count == 30


@pytest.fixture
def proxy(live_server):
    p = CuttableProxy(live_server.url)
    p.open()
    yield p
    p.close()


def record_some(session, n, label):
    events = [agentops.ActionEvent(action_type=label, params={"n": i}) for i in range(n)]
    for event in events:
        session.record(event)
    return {e.id for e in events}


def test_a_server_away_for_a_while_gets_every_event_exactly_once(
    proxy, api_key, monkeypatch, caplog
):
    client = fresh_default_client(monkeypatch, api_key, proxy.url)
    client.configure(max_wait_time=100)
    session = agentops.init()
    sent = record_some(session, 200, "before")
    time.sleep(1.0)
    proxy.close()  # the server is away: connection refused
    sent |= record_some(session, 300, "during")
    time.sleep(2.0)
    assert Event.objects.filter(session_id=session.session_id).count() < len(sent)
    proxy.open()
    sent |= record_some(session, 100, "after")
    session.end_session("Success")
    stored = set(Event.objects.filter(session_id=session.session_id).values_list("id", flat=True))
    assert stored == sent
    row = Session.objects.get(pk=session.session_id)
    assert row.action_count == 600 and row.end_state == "Success"
    assert session.dropped == 0 and session.lost == 0


def test_answers_lost_on_the_way_back_do_not_double_count(proxy, api_key, monkeypatch):
    client = fresh_default_client(monkeypatch, api_key, proxy.url)
    client.configure(max_wait_time=100)
    session = agentops.init()
    proxy.lose_answers = 3  # the server stores these batches; the SDK never hears so
    sent = record_some(session, 500, "lossy")
    session.end_session("Success")
    assert proxy.answers_lost == 3
    assert session.duplicates > 0  # resent with the same ids, recognised by the server
    stored = set(Event.objects.filter(session_id=session.session_id).values_list("id", flat=True))
    assert stored == sent
    assert Session.objects.get(pk=session.session_id).action_count == 500


def test_a_session_started_while_the_server_is_away_is_registered_when_it_returns(
    proxy, api_key, monkeypatch
):
    client = fresh_default_client(monkeypatch, api_key, proxy.url)
    client.configure(max_wait_time=100)
    proxy.close()
    session = agentops.init(default_tags=["offline-start"])
    assert session is not None and session.project_id is None
    sent = record_some(session, 50, "offline")
    time.sleep(1.0)
    proxy.open()
    session.end_session("Success")
    stop_sender(client)  # its create_session retry may still be on its way
    row = Session.objects.get(pk=session.session_id)
    assert row.end_state == "Success"
    assert set(Event.objects.filter(session=row).values_list("id", flat=True)) == sent
    assert session.project_id == str(row.project_id)
