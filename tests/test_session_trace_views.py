"""The trace view's JSON and fragments: tree pages, focus, event detail, status; bad input
answered 4xx, never 500; another project's events never shown."""

from datetime import timedelta

import orjson
import pytest
from django.urls import reverse
from django.utils import timezone

from sessions.models import Agent
from tests.factories import add_event, llm, make_session, refresh_totals

NOW = timezone.now()


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


def get_json(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.content
    return orjson.loads(response.content)


def test_the_tree_comes_a_page_at_a_time_and_opens_at_a_focused_event(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1), duration=timedelta(minutes=10))
    agent = Agent.objects.create(session=s, name="planner")
    calls = [
        llm(s, at=s.init_timestamp + timedelta(seconds=i)) for i in range(250)
    ]  # no agent: top-level rows
    tool = add_event(s, "tools", at=s.init_timestamp + timedelta(seconds=300), name="search",
                     agent_id=agent.id)  # fmt: skip
    error = add_event(s, "errors", at=tool.init_timestamp + timedelta(milliseconds=1),
                      end_timestamp=None, name="Boom", agent_id=agent.id,
                      trigger_event_id=tool.id)  # fmt: skip
    refresh_totals(s)
    tree = url("session_tree", project.slug, s.id)
    top = get_json(alice_client, tree)
    level = top["levels"][0]
    assert level["total"] == 251 and len(level["rows"]) == 200 and level["offset"] == 0
    assert level["rows"][0]["n"] == 1 and level["rows"][0]["kind"] == "llms"
    assert level["rows"][0]["cost"] == "0.001" and level["rows"][0]["tokens"] == 150
    assert top["errors"] == [{"key": str(error.id), "n": 252, "name": "Boom"}]
    assert top["axis"]["unit"] == ["min", 60.0]
    rest = get_json(alice_client, tree + "?offset=200")["levels"][0]
    assert [r["n"] for r in rest["rows"]][:3] == [201, 202, 203]
    group = rest["rows"][-1]
    assert (group["key"], group["name"], group["errors"]) == (f"agent:{agent.id}", "planner", 1)
    focus = get_json(alice_client, tree + f"?focus={error.id}")
    assert [lv["parent"] for lv in focus["levels"]] == [None, f"agent:{agent.id}", str(tool.id)]
    assert focus["levels"][0]["offset"] == 200  # the page that holds the agent's row
    assert focus["levels"][-1]["rows"][0]["key"] == str(error.id)
    assert focus["levels"][-1]["rows"][0]["dur"] is None  # instant
    children = get_json(alice_client, tree + f"?parent=agent:{agent.id}")["levels"][0]
    assert [r["key"] for r in children["rows"]] == [str(tool.id)]
    assert calls  # (made above)


def test_bad_tree_requests_are_4xx_and_other_projects_events_are_not_found(
    alice_client, project, other_project
):
    s = make_session(project, start=NOW - timedelta(hours=1))
    theirs = make_session(other_project, start=NOW - timedelta(hours=1))
    foreign = add_event(theirs, "tools", at=theirs.init_timestamp, name="secret")
    add_event(s, "tools", at=s.init_timestamp, name="mine")
    refresh_totals(s)
    tree = url("session_tree", project.slug, s.id)
    assert get_json(alice_client, tree + "?offset=abc", 400)["message"]
    assert get_json(alice_client, tree + "?parent=nope", 404)["message"]
    assert get_json(alice_client, tree + f"?focus={foreign.id}", 404)["message"]
    assert get_json(alice_client, tree + "?offset=999999")["levels"][0]["rows"]  # clamped
    detail = url("session_event", project.slug, s.id, foreign.id)
    assert alice_client.get(detail).status_code == 404
    assert alice_client.get(url("session_tree", other_project.slug, theirs.id)).status_code == 404


def test_status_says_running_elapsed_and_event_count(alice_client, project):
    # timezone.now(), not the module's NOW: elapsed time counts from when the test runs.
    s = make_session(project, start=timezone.now() - timedelta(seconds=90), end_state=None)
    add_event(s, "actions", at=s.init_timestamp, name="step")
    refresh_totals(s)
    status = get_json(alice_client, url("session_status", project.slug, s.id))
    assert status["running"] is True and status["events"] == 1 and status["end_state"] is None
    assert 89 <= status["elapsed_s"] < 200


def test_event_detail_is_numbered_and_renders_markdown_safely(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1))
    add_event(s, "tools", at=s.init_timestamp, name="first")
    text = "Here:\n```python\nprint('<b>x</b>')\n```\n[bad](javascript:alert(1)) <i>raw</i>"
    call = llm(s, at=s.init_timestamp + timedelta(seconds=1),
               completion={"role": "assistant", "content": text})  # fmt: skip
    refresh_totals(s)
    body = alice_client.get(url("session_event", project.slug, s.id, call.id)).content.decode()
    assert "#2 ·" in body
    assert '<pre><code class="language-python">' in body and "&lt;b&gt;x&lt;/b&gt;" in body
    assert 'href="javascript' not in body and "<i>" not in body and "&lt;i&gt;raw" in body
