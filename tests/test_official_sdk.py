"""The official agentops 0.3.26 SDK, unchanged, against a live server: only its endpoint differs."""

import json
import textwrap
from decimal import Decimal

import pytest

from events.models import Event
from sessions.models import Session
from tests.official_sdk import run_official

pytestmark = pytest.mark.django_db(transaction=True)

PRELUDE = """
import json, os, sys, time
import agentops
from agentops import ActionEvent, ErrorEvent, LLMEvent, ToolEvent
"""


def official(script: str, live_server, api_key, **env) -> dict:
    result = run_official(
        PRELUDE + textwrap.dedent(script),
        env={
            "AGENTOPS_API_KEY": api_key,
            "AGENTOPS_API_ENDPOINT": live_server.url,
            "AGENTOPS_LOGGING_LEVEL": "WARNING",
            # agentops.init() asks pypi.org for a newer version (helpers.check_agentops_update,
            # through requests): every address but the live server's goes to a closed port,
            # so the SDK never phones home from a test.
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            **env,
        },
    )
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "stderr": result.stderr}


def test_everything_one_run_records_lands_in_the_server(live_server, api_key, project):
    out = official(
        """
        session = agentops.init(default_tags=["official", "ci"], max_wait_time=100)
        session.record(LLMEvent(model="gpt-4o", prompt=[{"role": "user", "content": "2+2?"}],
                                completion={"role": "assistant", "content": "4"},
                                prompt_tokens=1000, completion_tokens=500))
        session.record(LLMEvent(model="gpt-4o-mini", prompt="hello", completion="hi",
                                prompt_tokens=10, completion_tokens=5, cost=0.5))
        tool = ToolEvent(name="search", params={"q": "weather"}, returns=["sunny"])
        session.record(tool)
        session.record(ActionEvent(action_type="plan", params={"goal": "x"}, returns="ok",
                                   logs="thinking"))
        try:
            raise ValueError("the tool broke")
        except ValueError as exc:
            session.record(ErrorEvent(trigger_event=tool, exception=exc, code="E42"))
        session.add_tags(["added"])
        cost = session.end_session("Success", "all good")
        print(json.dumps({"session_id": str(session.session_id), "cost": str(cost)}))
        """,
        live_server,
        api_key,
    )
    session = Session.objects.get(pk=out["session_id"])
    assert session.project == project
    assert session.end_state == "Success" and session.end_state_reason == "all good"
    assert sorted(session.tags.values_list("name", flat=True)) == ["added", "ci", "official"]
    assert session.host_env and "OS" in session.host_env
    events = {
        e.event_type: e for e in Event.objects.filter(session=session).exclude(model="gpt-4o-mini")
    }
    assert set(events) == {"llms", "tools", "actions", "errors"}
    assert events["llms"].payload["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert events["llms"].cost == Decimal("0.0075")
    assert events["tools"].name == "search" and events["tools"].payload["returns"] == ["sunny"]
    assert events["actions"].name == "plan" and events["actions"].payload["logs"] == "thinking"
    assert (
        events["errors"].name == "ValueError"
        and events["errors"].payload["details"] == "the tool broke"
    )
    assert events["errors"].payload["code"] == "E42"
    assert (session.llm_count, session.tool_count, session.action_count, session.error_count) == (
        2,
        1,
        1,
        1,
    )
    assert Decimal(out["cost"]) == Decimal("0.5075") == session.cost


def test_set_tags_replaces_and_fail_has_its_reason(live_server, api_key):
    out = official(
        """
        session = agentops.init(tags=["a", "b"], max_wait_time=100)
        session.set_tags(["c"])
        cost = session.end_session("Fail", "the agent gave up")
        print(json.dumps({"session_id": str(session.session_id), "cost": str(cost)}))
        """,
        live_server,
        api_key,
    )
    session = Session.objects.get(pk=out["session_id"])
    assert list(session.tags.values_list("name", flat=True)) == ["c"]
    assert (session.end_state, session.end_state_reason) == ("Fail", "the agent gave up")
    assert Decimal(out["cost"]) == 0


def test_a_second_process_adds_to_the_same_session(live_server, api_key):
    first = official(
        """
        session = agentops.init(max_wait_time=100, skip_auto_end_session=True)
        session.record(ActionEvent(action_type="from-first"))
        session._flush_spans()
        time.sleep(0.5)
        print(json.dumps({"session_id": str(session.session_id)}))
        """,
        live_server,
        api_key,
    )
    sid = first["session_id"]
    second = official(
        f"""
        session = agentops.init(inherited_session_id="{sid}", max_wait_time=100)
        session.record(LLMEvent(model="gpt-4o", prompt="x", completion="y",
                                prompt_tokens=1000, completion_tokens=500))
        cost = session.end_session("Success")
        print(json.dumps({{"session_id": str(session.session_id), "cost": str(cost)}}))
        """,
        live_server,
        api_key,
    )
    assert second["session_id"] == sid
    session = Session.objects.get(pk=sid)
    assert session.action_count == 1 and session.llm_count == 1
    assert Decimal(second["cost"]) == Decimal("0.0075")
    assert Event.objects.get(session=session, event_type="actions").name == "from-first"


def test_two_sessions_at_once_stay_apart(live_server, api_key):
    out = official(
        """
        agentops.init(auto_start_session=False, max_wait_time=100)
        one = agentops.start_session(tags=["one"])
        two = agentops.start_session(tags=["two"])
        for i in range(3):
            one.record(ActionEvent(action_type=f"one-{i}"))
        two.record(ToolEvent(name="two-tool"))
        c1 = one.end_session("Success")
        c2 = two.end_session("Fail", "second failed")
        print(json.dumps({"one": str(one.session_id), "two": str(two.session_id)}))
        """,
        live_server,
        api_key,
    )
    one, two = Session.objects.get(pk=out["one"]), Session.objects.get(pk=out["two"])
    assert (one.action_count, one.tool_count, one.end_state) == (3, 0, "Success")
    assert (two.action_count, two.tool_count, two.end_state) == (0, 1, "Fail")


def test_stats_and_export_afterwards_hold_exactly_what_was_recorded(live_server, api_key):
    import requests

    out = official(
        """
        session = agentops.init(max_wait_time=100)
        for i in range(25):
            session.record(LLMEvent(model="claude-3-5-sonnet-20241022",
                                    prompt=[{"role": "user", "content": f"q{i}"}],
                                    completion={"role": "assistant", "content": f"a{i}"},
                                    prompt_tokens=100, completion_tokens=10))
        session.record(ToolEvent(name="calc", params={"x": 1}, returns=2))
        cost = session.end_session("Success")
        print(json.dumps({"session_id": str(session.session_id), "cost": str(cost)}))
        """,
        live_server,
        api_key,
    )
    sid = out["session_id"]
    headers = {"X-Agentops-Api-Key": api_key}
    stats = requests.get(
        f"{live_server.url}/v2/sessions/{sid}/stats", headers=headers, timeout=10
    ).json()
    assert (stats["llms"], stats["tools"], stats["events"]) == (25, 1, 26)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (2500, 250)
    assert Decimal(stats["cost"]) == Decimal(out["cost"]) == Decimal("0.01125")
    export = requests.get(
        f"{live_server.url}/v2/sessions/{sid}/export", headers=headers, timeout=10
    ).json()
    prompts = sorted(r["prompt"]["messages"][0]["content"] for r in export["llms"])
    assert prompts == sorted(f"q{i}" for i in range(25))
    assert export["tools"][0]["returns"] == 2


def test_odd_input_from_the_official_sdk_loses_nothing_and_is_priced_exactly(live_server, api_key):
    """Issue 15 through the official SDK 0.3.26 itself (its json.dumps writes NaN bare, its
    Anthropic prompt_tokens leave the cache out): every session, event and price kept."""
    out = official(
        """
        from datetime import datetime, timedelta, timezone
        tags = [f"t{i:03}" for i in range(100)] + ["x" * 201]
        session = agentops.init(default_tags=tags, max_wait_time=100)
        t0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
        iso = lambda s: (t0 + timedelta(seconds=s)).isoformat()
        def llm(model, p, c, prompt="q", **extra):
            return LLMEvent(model=model, prompt=prompt, completion="a", prompt_tokens=p,
                            completion_tokens=c, init_timestamp=iso(0), end_timestamp=iso(1),
                            **extra)
        ids = {}
        events = {
            "nan": ToolEvent(name="score", params={"score": float("nan"), "top": float("inf")}),
            "huge": llm("gpt-4.1", 375000, 1000, prompt="p" * 1_500_000),
            "skew": LLMEvent(model="gpt-4o", prompt="q", completion="a", prompt_tokens=10000,
                             completion_tokens=1000, init_timestamp=iso(2), end_timestamp=iso(0)),
            "text_count": llm("gpt-4o", "1000", 500),
            "partial": llm("gpt-4o", 1000, None),
            "claude_cache": llm("claude-3-5-sonnet-20241022", 1000, 1000, returns={
                "type": "message", "model": "claude-3-5-sonnet-20241022",
                "usage": {"input_tokens": 1000, "cache_read_input_tokens": 9000,
                          "cache_creation_input_tokens": 0, "output_tokens": 1000}}),
            "bedrock": llm("anthropic.claude-3-haiku-20240307-v1:0", 10000, 1000),
        }
        for key, event in events.items():
            session.record(event)
            ids[key] = str(event.id)
        cost = session.end_session("Fail", "tool\\x00crashed")
        print(json.dumps({"session_id": str(session.session_id), "cost": str(cost), "ids": ids}))
        """,
        live_server,
        api_key,
    )
    session = Session.objects.get(pk=out["session_id"])
    assert (session.end_state, session.end_state_reason) == ("Fail", "tool\ufffdcrashed")
    names = list(session.tags.values_list("name", flat=True))
    assert len(names) == 100 and "x" * 199 + "…" in names
    stored = {key: Event.objects.get(pk=event_id) for key, event_id in out["ids"].items()}
    assert stored["nan"].payload["params"] == {"score": None, "top": None}
    assert "params.score" in stored["nan"].payload["repaired"]
    assert stored["huge"].cost == Decimal("0.758") and stored["huge"].prompt_tokens == 375_000
    assert "…[truncated " in stored["huge"].payload["prompt"]
    skew = stored["skew"]
    assert skew.end_timestamp == skew.init_timestamp and skew.cost == Decimal("0.035")
    assert stored["text_count"].prompt_tokens == 1000
    assert stored["text_count"].cost == Decimal("0.0075")
    assert stored["partial"].cost is None and stored["partial"].cost_source == "unknown"
    assert stored["claude_cache"].prompt_tokens == 10_000
    assert stored["claude_cache"].cost == Decimal("0.0207")
    assert stored["bedrock"].cost == Decimal("0.00375")
    assert session.cost == Decimal("0.82495") and session.cost_unknown_events == 1
    assert session.llm_count == 6 and session.tool_count == 1
    assert Decimal(out["cost"]) == session.cost
    assert "out of date" not in out["stderr"], "the SDK reached pypi.org"
