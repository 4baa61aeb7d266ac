import asyncio

import pytest

import agentops


@pytest.fixture
def session(server, default_client):
    return agentops.init()


def sent(server, session):
    session.end_session("Success")
    return sorted(server.events.values(), key=lambda e: e["init_timestamp"])


def test_record_action_records_params_returns_and_timing(server, session):
    @agentops.record_action("plan")
    def plan(goal, steps=3):
        return ("a", "b")

    assert plan("ship it") == ("a", "b")
    [event] = sent(server, session)
    assert event["event_type"] == "actions"
    assert event["action_type"] == "plan"
    assert event["params"] == {"goal": "ship it", "steps": 3}
    assert event["returns"] == ["a", "b"]
    assert event["end_timestamp"] >= event["init_timestamp"]


def test_record_tool_on_an_async_function(server, session):
    @agentops.record_tool("search")
    async def search(query):
        await asyncio.sleep(0)
        return {"hits": 2}

    assert asyncio.run(search("cats")) == {"hits": 2}
    [event] = sent(server, session)
    assert (event["event_type"], event["name"], event["returns"]) == (
        "tools",
        "search",
        {"hits": 2},
    )


@pytest.mark.parametrize("is_async", [False, True])
def test_an_exception_is_recorded_linked_to_its_trigger_and_reraised(server, session, is_async):
    if is_async:

        @agentops.record_tool()
        async def fetch(url):
            raise ConnectionError("no route to " + url)

        with pytest.raises(ConnectionError):
            asyncio.run(fetch("example.org"))
    else:

        @agentops.record_tool()
        def fetch(url):
            raise ConnectionError("no route to " + url)

        with pytest.raises(ConnectionError):
            fetch("example.org")
    events = sent(server, session)
    tool = next(e for e in events if e["event_type"] == "tools")
    error = next(e for e in events if e["event_type"] == "errors")
    assert tool["name"] == "fetch"
    assert error["trigger_event_id"] == tool["id"]
    assert error["trigger_event_type"] == "tools"
    assert error["error_type"] == "ConnectionError"
    assert error["details"] == "no route to example.org"
    assert "raise ConnectionError" in error["logs"]


def test_the_session_keyword_chooses_the_session_when_several_run(server, default_client, caplog):
    first = agentops.init()
    second = agentops.start_session()

    @agentops.record_action()
    def step():
        return 1

    step()  # ambiguous: warned, not recorded
    step(session=second)
    first.end_session("Success")
    second.end_session("Success")
    assert "2 sessions are running" in caplog.text
    assert len(server.events) == 1


def test_track_agent_registers_the_agent_and_tags_its_events(server, session):
    @agentops.track_agent(name="researcher")
    class Researcher:
        def __init__(self, topic):
            self.topic = topic

        def work(self):
            agentops.record(agentops.ActionEvent(action_type="read"))

        async def work_async(self):
            agentops.record(agentops.ActionEvent(action_type="think"))

    agent = Researcher("cats")
    agent.work()
    asyncio.run(agent.work_async())
    agentops.record(agentops.ActionEvent(action_type="outside"))
    events = {e["action_type"]: e for e in sent(server, session)}
    assert events["read"]["agent_id"] == agent.agentops_agent_id
    assert events["think"]["agent_id"] == agent.agentops_agent_id
    assert "agent_id" not in events["outside"]
    assert server.agents == [{"id": agent.agentops_agent_id, "name": "researcher"}]


def test_track_agent_on_a_function(server, session):
    @agentops.track_agent("writer")
    def write():
        agentops.record(agentops.ActionEvent(action_type="write"))

    write()
    [event] = sent(server, session)
    assert event["agent_id"] == write.agentops_agent_id
    assert server.agents[0]["name"] == "writer"
