"""Our SDK against a live server: the session API end to end, in this process."""

import threading
import time
import uuid
from decimal import Decimal

import agentops
import pytest

from events.models import Event
from projects.keys import revoke_key
from projects.models import ApiKey
from sessions.models import Agent, Session
from tests.sdk_helpers import fresh_default_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(live_server, api_key, monkeypatch):
    client = fresh_default_client(monkeypatch, api_key, live_server.url)
    client.configure(max_wait_time=100)
    yield client
    client.end_all_sessions()


def test_the_seed_api_end_to_end(sdk, project):
    session = agentops.init(default_tags=["e2e"])
    assert str(session.project_id) == str(project.id)
    llm = agentops.LLMEvent(
        model="gpt-4o",
        prompt=[{"role": "user", "content": "2+2?"}],
        completion={"role": "assistant", "content": "4"},
        prompt_tokens=1000,
        completion_tokens=500,
    )
    agentops.record(llm)
    agentops.record(
        agentops.LLMEvent(model="own", prompt="hi", completion="yo", cost=Decimal("0.5"))
    )
    tool = agentops.ToolEvent(name="search", params={"q": "weather"}, returns=["sunny"])
    session.record(tool)
    session.record(agentops.ActionEvent(action_type="plan", params={"goal": "x"}, logs="thinking"))
    try:
        raise ValueError("the tool broke")
    except ValueError as exc:
        session.record(agentops.ErrorEvent(trigger_event=tool, exception=exc, code="E42"))
    agentops.add_tags(["added"])
    cost = agentops.end_session("Success", "all good", video="https://videos.example/1.mp4")

    row = Session.objects.get(pk=session.session_id)
    assert row.project == project
    assert (row.end_state, row.end_state_reason) == ("Success", "all good")
    assert row.video == "https://videos.example/1.mp4"
    assert sorted(row.tags.values_list("name", flat=True)) == ["added", "e2e"]
    assert row.host_env["OS"]["Hostname"] and "Installed Packages" in row.host_env
    events = {e.event_type + e.name: e for e in Event.objects.filter(session=row)}
    assert events["llmsgpt-4o"].prompt_tokens == 1000
    assert events["llmsgpt-4o"].payload["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert events["llmsown"].cost == Decimal("0.5")
    assert events["toolssearch"].payload["returns"] == ["sunny"]
    error = events["errorsValueError"]
    assert error.trigger_event_id == tool.id
    assert error.payload["details"] == "the tool broke" and error.payload["code"] == "E42"
    assert "Traceback" in error.payload["logs"]
    # end_session's cost is the server's total, which includes every event just flushed.
    assert cost == row.cost and cost > Decimal("0.5")
    assert (row.llm_count, row.tool_count, row.action_count, row.error_count) == (2, 1, 1, 1)


def test_get_analytics_reports_the_servers_counts(sdk):
    session = agentops.init()
    for _ in range(3):
        session.record(agentops.ToolEvent(name="t"))
    session.record(agentops.LLMEvent(model="m", prompt_tokens=7, completion_tokens=3, cost="0.01"))
    stats = session.get_analytics()
    assert (stats["Tool calls"], stats["LLM calls"], stats["Actions"], stats["Errors"]) == (
        3,
        1,
        0,
        0,
    )
    assert (stats["Prompt tokens"], stats["Completion tokens"]) == (7, 3)
    assert stats["Cost"] == Decimal("0.01")
    assert stats["Duration seconds"] >= 0


def test_decorators_and_agents_end_to_end(sdk):
    session = agentops.init()

    @agentops.track_agent(name="researcher")
    class Researcher:
        @agentops.record_tool("lookup")
        def lookup(self, term):
            if term == "bad":
                raise KeyError(term)
            return {"term": term}

    agent = Researcher()
    agent.lookup("cats")
    with pytest.raises(KeyError):
        agent.lookup("bad")
    session.end_session("Fail", "lookup failed")
    tools = Event.objects.filter(session_id=session.session_id, event_type="tools")
    assert tools.count() == 2
    assert {str(t.agent_id) for t in tools} == {agent.agentops_agent_id}
    error = Event.objects.get(session_id=session.session_id, event_type="errors")
    assert tools.filter(pk=error.trigger_event_id).exists()
    assert Agent.objects.get(pk=agent.agentops_agent_id).name == "researcher"


def test_two_concurrent_sessions_keep_their_own_events(sdk):
    agentops.init(auto_start_session=False)
    sessions = [agentops.start_session(tags=[f"worker-{i}"]) for i in range(2)]
    ids: list[set] = [set(), set()]

    def work(i):
        for n in range(300):
            event = agentops.ActionEvent(action_type=f"w{i}", params={"n": n})
            ids[i].add(event.id)
            sessions[i].record(event)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert agentops.end_session("Success") is None  # ambiguous: refused
    sessions[0].end_session("Success")
    sessions[1].end_session(agentops.EndState.FAIL, "second")
    for i, session in enumerate(sessions):
        stored = set(
            Event.objects.filter(session_id=session.session_id).values_list("id", flat=True)
        )
        assert stored == ids[i]
        assert Session.objects.get(pk=session.session_id).tags.get().name == f"worker-{i}"
    assert Session.objects.get(pk=sessions[1].session_id).end_state == "Fail"


def test_a_refused_token_is_renewed_with_the_api_key(sdk):
    session = agentops.init()
    session.jwt = "not-a-token"
    session.record(agentops.ActionEvent(action_type="after renewal"))
    session.end_session("Success")
    assert Event.objects.filter(session_id=session.session_id).count() == 1
    assert session.jwt != "not-a-token"
    assert Session.objects.get(pk=session.session_id).end_state == "Success"


def test_a_revoked_key_loses_events_with_a_warning_not_silently(sdk, caplog):
    session = agentops.init()
    revoke_key(ApiKey.objects.get())
    session.record(agentops.ActionEvent(action_type="too late"))
    session.end_session("Success")
    assert "not delivered" in caplog.text
    assert session.lost == 1
    assert Event.objects.count() == 0


def test_an_invalid_key_refuses_init_clearly(live_server, monkeypatch, caplog, project):
    fresh_default_client(monkeypatch, str(uuid.uuid4()), live_server.url)
    assert agentops.init() is None
    assert "API key is not valid" in caplog.text


def test_a_burst_of_20k_events_arrives_exactly_once_with_default_settings(
    live_server, api_key, monkeypatch
):
    fresh_default_client(monkeypatch, api_key, live_server.url)
    session = agentops.init()
    events = [agentops.ActionEvent(action_type="burst", params={"n": n}) for n in range(20_000)]
    started = time.perf_counter()
    for event in events:
        session.record(event)
    recording = time.perf_counter() - started
    session.end_session("Success")
    stored = set(Event.objects.filter(session_id=session.session_id).values_list("id", flat=True))
    assert stored == {e.id for e in events}
    assert Session.objects.get(pk=session.session_id).action_count == 20_000
    assert session.accepted == 20_000 and session.dropped == 0 and session.lost == 0
    assert recording < 2.0  # the caller never waited for the network


def test_end_session_reports_an_unknown_cost_as_none_as_the_server_rule_says(sdk, project):
    """Our SDK against the live server: a session whose calls are all of an unpriced model
    ends with cost None (never Decimal 0), as sessions.totals says for every surface."""
    from sessions.totals import session_cost_fields

    session = agentops.init()
    for _ in range(2):
        agentops.record(
            agentops.LLMEvent(model="no-such-model", prompt="hi", completion="yo", prompt_tokens=5)
        )
    cost = agentops.end_session("Success")
    assert session.delivery.end_confirmed
    assert cost is None
    assert session.cost_unknown_events == 2
    row = Session.objects.get(pk=session.session_id)
    assert session_cost_fields(row) == {"cost": None, "cost_unknown_events": 2}
