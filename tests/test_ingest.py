"""Ingestion through the v2 endpoints: events, idempotency, validation, cost, session updates."""

import gzip
import uuid
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from events.models import Event
from events.storage import is_postgres
from sessions.models import Session
from tests.v2 import T0, event, iso, llm, post, send, start

HOST_ENV = {"SDK": {"AgentOps SDK Version": "0.3.26"}, "OS": {"OS": "Linux"}}


@pytest.fixture
def live(client, api_key):
    session_id, jwt = start(client, api_key, tags=["prod", "support"])
    return session_id, jwt


def test_create_session_answers_a_jwt_the_session_url_and_the_project(client, api_key, project):
    response = post(
        client,
        "/v2/create_session",
        {"session": {"session_id": str(uuid.uuid4()), "tags": ["a"], "host_env": HOST_ENV}},
        key=api_key,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "Success"
    assert body["jwt"].count(".") == 2
    assert body["project_id"] == str(project.id)
    assert body["session_url"].endswith(f"/sessions/{body['session_id']}")
    session = Session.objects.get(pk=body["session_id"])
    assert session.end_state is None
    assert session.host_env == HOST_ENV
    assert session.sdk_version == "0.3.26"


def test_the_official_sdks_extra_session_fields_are_ignored(client, api_key):
    sid = str(uuid.uuid4())
    body = {
        "session": {
            "session_id": sid,
            "init_timestamp": iso(T0),
            "end_state": "Indeterminate",
            "end_timestamp": None,
            "config": "",
            "jwt": None,
            "_lock": "",
            "token_cost": "",
            "event_counts": {"llms": 0},
            "is_running": False,
            "tags": ["x"],
            "video": None,
        }
    }
    assert post(client, "/v2/create_session", body, key=api_key).status_code == 200
    session = Session.objects.get(pk=sid)
    assert session.end_state is None, "a running session has no end state yet"


def test_every_event_type_is_stored_with_its_fields(client, live):
    sid, jwt = live
    trigger = event("tools", name="search", params={"q": "x"}, returns=["r"])
    events = [
        llm(thread_id=str(uuid.uuid4())),
        trigger,
        event("actions", action_type="click", logs="clicked", screenshot="http://x/s.png"),
        event(
            "errors",
            error_type="ValueError",
            code="E1",
            details="bad",
            logs="Traceback...",
            trigger_event={"id": trigger["id"], "event_type": "tools"},
        ),
        event("apis", name="GET /x", params={"a": 1}),
    ]
    result = send(client, jwt, events)
    assert result == {
        "status": "success",
        "accepted": 5,
        "duplicates": 0,
        "rejected": [],
        "warnings": [],
    }
    stored = {e.event_type: e for e in Event.objects.filter(session_id=sid)}
    assert stored["llms"].model == "gpt-4o" and stored["llms"].prompt_tokens == 100
    assert stored["llms"].payload["prompt"] == [{"role": "user", "content": "Hi"}]
    assert stored["tools"].name == "search" and stored["tools"].payload["returns"] == ["r"]
    assert stored["actions"].name == "click" and stored["actions"].payload["screenshot"]
    assert stored["errors"].name == "ValueError"
    assert str(stored["errors"].trigger_event_id) == trigger["id"]
    assert stored["errors"].payload["trigger_event_type"] == "tools"
    assert "trigger_event" not in stored["errors"].payload
    assert stored["apis"].name == "GET /x"


def test_an_unknown_event_type_is_kept_as_an_action_with_its_type(client, live):
    sid, jwt = live
    send(client, jwt, [event("screenshots", url="http://x")])
    stored = Event.objects.get(session_id=sid)
    assert stored.event_type == "actions"
    assert stored.payload["original_event_type"] == "screenshots"


def test_resending_a_batch_changes_nothing(client, live):
    sid, jwt = live
    batch = [llm(), llm(model="gpt-4o-mini"), event("errors", error_type="X")]
    assert send(client, jwt, batch)["accepted"] == 3
    again = send(client, jwt, batch)
    assert again["accepted"] == 0 and again["duplicates"] == 3
    session = Session.objects.get(pk=sid)
    assert (session.llm_count, session.error_count, session.prompt_tokens) == (2, 1, 200)
    assert Event.objects.filter(session_id=sid).count() == 3


def test_a_duplicate_id_inside_one_batch_counts_once(client, live):
    sid, jwt = live
    one = llm()
    result = send(client, jwt, [one, dict(one)])
    assert (result["accepted"], result["duplicates"]) == (1, 1)
    assert Session.objects.get(pk=sid).llm_count == 1


def test_one_bad_event_does_not_cost_its_neighbours(client, live):
    sid, jwt = live
    repaired = llm(prompt_tokens=-5)
    batch = [llm(), repaired, {"event_type": "tools"}, "not an object", llm(init_timestamp="x")]
    result = send(client, jwt, batch)
    assert result["accepted"] == 3
    rejected = {r["index"]: r for r in result["rejected"]}
    assert set(rejected) == {2, 3}
    assert "id" in rejected[2]["errors"] and "init_timestamp" in rejected[2]["errors"]
    assert "" in rejected[3]["errors"]
    warned = {w["index"]: w for w in result["warnings"]}
    assert set(warned) == {1, 4}
    assert warned[1]["id"] == repaired["id"] and "prompt_tokens" in warned[1]["repairs"]
    assert "init_timestamp" in warned[4]["repairs"]
    assert Event.objects.filter(session_id=sid).count() == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "not-a-uuid"),
        ("session_id", str(uuid.uuid4())),
    ],
)
def test_what_cannot_be_stored_is_refused_naming_the_field(client, live, field, value):
    _, jwt = live
    result = send(client, jwt, [llm(**{field: value})])
    assert result["accepted"] == 0
    assert field in result["rejected"][0]["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt_tokens", 2**40),
        ("prompt_tokens", "12"),
        ("prompt_tokens", True),
        ("completion_tokens", 1.5),
        ("cost", -1),
        ("cost", "abc"),
        ("init_timestamp", "0001-01-01T00:00:00Z"),
        ("end_timestamp", "2026-11-20T08:00:00Z"),
        ("agent_id", "agent-7"),
        ("model", "m" * 300),
    ],
)
def test_what_can_be_repaired_is_stored_and_the_repair_named(client, live, field, value):
    sid, jwt = live
    sent = llm(**{field: value})
    result = send(client, jwt, [sent])
    assert result["accepted"] == 1 and result["rejected"] == []
    assert field in result["warnings"][0]["repairs"]
    stored = Event.objects.get(session_id=sid)
    assert field in stored.payload["repaired"]


def test_the_envelope_must_be_an_events_list(client, live):
    _, jwt = live
    for body in ({"event": []}, {"events": {}}, [], {"events": "x"}):
        response = post(client, "/v2/create_events", body, jwt=jwt)
        assert response.status_code == 400
        assert "events" in response.json()["message"]


def test_invalid_json_is_a_400_with_a_message(client, live):
    _, jwt = live
    for raw in (b"{", b'{"events": [NaNa]}', b"\xff\xfe", b"", b'{"events": [Infinity'):
        response = post(client, "/v2/create_events", None, jwt=jwt, raw=raw)
        assert response.status_code == 400, raw
        assert response.json()["message"]


def test_too_many_events_is_a_413(client, live, settings):
    settings.INGEST_MAX_EVENTS_PER_BATCH = 3
    _, jwt = live
    response = post(client, "/v2/create_events", {"events": [llm() for _ in range(4)]}, jwt=jwt)
    assert response.status_code == 413
    assert "at most 3" in response.json()["message"]


def test_too_large_a_body_is_a_413(client, live, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    _, jwt = live
    response = post(client, "/v2/create_events", {"events": [llm(pad="x" * 20_000)]}, jwt=jwt)
    assert response.status_code == 413


def test_a_gzip_body_is_accepted_and_a_gzip_bomb_is_a_413(client, live, settings):
    _, jwt = live
    body = b'{"events": [' + orjson.dumps(llm()) + b"]}"
    ok = post(
        client,
        "/v2/create_events",
        None,
        jwt=jwt,
        raw=gzip.compress(body),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    settings.INGEST_MAX_BODY_BYTES = 1_000_000
    bomb = gzip.compress(b'{"events": ["' + b"a" * 50_000_000 + b'"]}')
    assert len(bomb) < 100_000
    response = post(
        client, "/v2/create_events", None, jwt=jwt, raw=bomb, HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413


def test_a_nul_character_is_kept_as_replacement_not_a_500(client, live):
    sid, jwt = live
    result = send(client, jwt, [event("tools", name="a\x00b", returns="x\x00y")])
    assert result["accepted"] == 1
    stored = Event.objects.get(session_id=sid)
    assert stored.name == "a\ufffdb" and stored.payload["returns"] == "x\ufffdy"


def test_cost_comes_from_the_sdk_then_the_price_table_then_is_unknown(client, live):
    sid, jwt = live
    send(
        client,
        jwt,
        [
            llm(cost=0.25),
            llm(model="gpt-4o", prompt_tokens=1000, completion_tokens=500),
            llm(model="my-own-finetune", prompt_tokens=10, completion_tokens=10),
        ],
    )
    by_model = {}
    for e in Event.objects.filter(session_id=sid):
        by_model.setdefault(e.model, []).append(e)
    sources = sorted(
        (e.cost_source, e.cost) for e in Event.objects.filter(session_id=sid) if e.model == "gpt-4o"
    )
    assert sources == [("price_table", Decimal("0.0075")), ("sdk", Decimal("0.25"))]
    unknown = by_model["my-own-finetune"][0]
    assert unknown.cost is None and unknown.cost_source == "unknown"
    session = Session.objects.get(pk=sid)
    assert session.cost == Decimal("0.2575")
    assert session.cost_unknown_events == 1


def test_update_session_replaces_tags_and_ends_with_the_cost(client, live):
    sid, jwt = live
    send(client, jwt, [llm(model="gpt-4o", prompt_tokens=1000, completion_tokens=500)])
    response = post(
        client,
        "/v2/update_session",
        {"session": {"session_id": sid, "tags": ["b", "c"], "end_state": "Indeterminate"}},
        jwt=jwt,
    )
    assert response.status_code == 200
    session = Session.objects.get(pk=sid)
    assert sorted(session.tags.values_list("name", flat=True)) == ["b", "c"]
    assert session.end_state is None, "no end_timestamp: still running"
    end = iso(T0 + timedelta(minutes=5))
    response = post(
        client,
        "/v2/update_session",
        {
            "session": {
                "end_timestamp": end,
                "end_state": "Fail",
                "end_state_reason": "boom",
                "video": "https://cdn.example.com/run.mp4",
            }
        },
        jwt=jwt,
    )
    assert response.json()["token_cost"] == "0.0075"
    session.refresh_from_db()
    assert (session.end_state, session.end_state_reason) == ("Fail", "boom")
    assert session.duration_seconds == 300
    assert session.video == "https://cdn.example.com/run.mp4"


@pytest.mark.parametrize("state", ["Done", "success", 3])
def test_an_end_state_outside_the_enum_is_a_400_naming_the_field(client, live, state):
    _, jwt = live
    response = post(
        client,
        "/v2/update_session",
        {"session": {"end_timestamp": iso(T0), "end_state": state}},
        jwt=jwt,
    )
    assert response.status_code == 400
    assert "session.end_state" in response.json()["errors"]


def test_tags_are_one_row_per_name_per_project(client, api_key, project):
    start(client, api_key, tags=["prod", "prod", " x "])
    start(client, api_key, tags=["prod"])
    assert sorted(project.tags.values_list("name", flat=True)) == ["prod", "x"]


def test_the_same_session_id_joins_in_the_same_project(client, api_key):
    sid, _ = start(client, api_key, tags=["a"])
    again, jwt2 = start(client, api_key, session_id=sid, tags=["b"])
    assert again == sid
    send(client, jwt2, [llm()])
    session = Session.objects.get(pk=sid)
    assert session.llm_count == 1
    assert sorted(session.tags.values_list("name", flat=True)) == ["a", "b"]


def test_the_same_session_id_in_another_project_is_refused(client, api_key, other_api_key):
    sid, _ = start(client, api_key)
    response = post(
        client, "/v2/create_session", {"session": {"session_id": sid}}, key=other_api_key
    )
    assert response.status_code == 404
    assert Session.objects.get(pk=sid).project.name == "Alpha"
    never = post(client, "/v2/reauthorize_jwt", {"session_id": str(uuid.uuid4())}, key=api_key)
    assert response.json() == never.json(), "refused exactly like an id that does not exist"


def test_an_ended_session_still_accepts_late_events_and_joins(client, api_key):
    sid, jwt = start(client, api_key)
    post(
        client,
        "/v2/update_session",
        {"session": {"end_timestamp": iso(T0), "end_state": "Success"}},
        jwt=jwt,
    )
    _, jwt2 = start(client, api_key, session_id=sid)
    assert send(client, jwt2, [llm()])["accepted"] == 1
    session = Session.objects.get(pk=sid)
    assert session.end_state == "Success" and session.llm_count == 1


def test_create_agent_is_idempotent(client, live):
    sid, jwt = live
    agent_id = str(uuid.uuid4())
    for _ in range(2):
        response = post(client, "/v2/create_agent", {"id": agent_id, "name": "planner"}, jwt=jwt)
        assert response.status_code == 200
    session = Session.objects.get(pk=sid)
    assert list(session.agents.values_list("name", flat=True)) == ["planner"]


def test_reauthorize_gives_a_working_token(client, api_key, live):
    sid, _ = live
    response = post(client, "/v2/reauthorize_jwt", {"session_id": sid}, key=api_key)
    assert response.status_code == 200
    assert send(client, response.json()["jwt"], [llm()])["accepted"] == 1


def test_developer_errors_are_accepted(client, api_key):
    body = {
        "sdk_version": "0.3.26",
        "type": "KeyError",
        "message": "x",
        "stack_trace": "...",
        "host_env": {},
    }
    assert post(client, "/v2/developer_errors", body, key=api_key).status_code == 204
    assert (
        post(client, "/v2/developer_errors", {"session_id": "nope"}, key=api_key).status_code == 400
    )


def test_a_batch_on_postgres_is_one_statement_key_check_included(transactional_db, client, live):
    """One round trip per batch: the key check, insert, totals and key last-use are one write,
    in autocommit as in production (no BEGIN/COMMIT around it)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if not is_postgres():
        pytest.skip("SQLite serialises writers and checks the key with the ORM")
    _, jwt = live
    with CaptureQueriesContext(connection) as queries:
        answer = send(client, jwt, [llm(), event("tools", name="search"), llm()])
    assert answer["accepted"] == 3
    statements = [q["sql"] for q in queries.captured_queries]
    # Without a broker the day's rollup follows in the request (the embedded default): it reads
    # events and sessions and writes analytics tables, never what the ingest writes.
    write, rest = statements[0], statements[1:]  # first: no BEGIN or SAVEPOINT before it
    assert "projects_apikey" in write and "INSERT INTO events_event" in write
    assert "UPDATE agent_sessions_session" in write
    for sql in rest:
        assert "projects_apikey" not in sql and "INSERT INTO events_event" not in sql, sql
        assert "UPDATE agent_sessions_session" not in sql, sql
