"""Stats, the streamed export in AgentOps' shape, and the session list API."""

from datetime import timedelta

import orjson

from tests.v2 import T0, event, get, iso, llm, post, send, start


def read_stream(response) -> dict:
    return orjson.loads(b"".join(response.streaming_content))


def test_stats_hold_exactly_what_was_recorded(client, api_key):
    sid, jwt = start(client, api_key)
    send(
        client,
        jwt,
        [
            llm(prompt_tokens=1000, completion_tokens=500),
            llm(model="unknown-x"),
            event("tools", name="t"),
            event("errors", error_type="E"),
        ],
    )
    post(
        client,
        "/v2/update_session",
        {"session": {"end_timestamp": iso(T0 + timedelta(seconds=90)), "end_state": "Success"}},
        jwt=jwt,
    )
    stats = get(client, f"/v2/sessions/{sid}/stats", key=api_key).json()
    assert stats == {
        "session_id": sid,
        "init_timestamp": iso(T0),
        "end_timestamp": iso(T0 + timedelta(seconds=90)),
        "end_state": "Success",
        "duration_seconds": 90.0,
        "events": 4,
        "llms": 2,
        "tools": 1,
        "actions": 0,
        "errors": 1,
        "apis": 0,
        "prompt_tokens": 1100,
        "completion_tokens": 550,
        "total_tokens": 1650,
        "cost": "0.0075",
        "cost_unknown_events": 1,
    }


def test_export_keeps_agentops_shapes(client, api_key):
    sid, jwt = start(client, api_key, tags=["t1"])
    trigger = event("actions", action_type="plan", params={"goal": "x"}, returns="ok")
    send(
        client,
        jwt,
        [
            llm(),
            llm(prompt="plain text prompt", completion="plain completion"),
            trigger,
            event("tools", name="search", params={"q": 1}, returns=[1, 2]),
            event(
                "errors",
                error_type="ValueError",
                code="400",
                details="bad",
                logs="tb",
                trigger_event_id=trigger["id"],
                trigger_event_type="actions",
            ),
        ],
    )
    response = get(client, f"/v2/sessions/{sid}/export", key=api_key)
    assert response.status_code == 200 and response.streaming
    doc = read_stream(response)
    assert set(doc) == {"session", "stats", "actions", "llms", "tools", "errors", "apis"}
    assert doc["session"]["session_id"] == sid and doc["session"]["tags"] == ["t1"]
    chat, plain = sorted(doc["llms"], key=lambda r: r["prompt"]["type"])
    assert chat["prompt"] == {"type": "chatml", "messages": [{"role": "user", "content": "Hi"}]}
    assert chat["completion"] == {
        "type": "chatml",
        "messages": [{"role": "assistant", "content": "Hello"}],
    }
    assert plain["prompt"] == {"type": "string", "string": "plain text prompt"}
    assert chat["cost"] == "0.00075" and chat["cost_source"] == "price_table"
    assert doc["actions"][0]["action_type"] == "plan" and doc["actions"][0]["returns"] == "ok"
    assert doc["tools"][0]["name"] == "search" and doc["tools"][0]["returns"] == [1, 2]
    error = doc["errors"][0]
    for field in (
        "error_type",
        "code",
        "details",
        "logs",
        "trigger_event_id",
        "trigger_event_type",
        "timestamp",
    ):
        assert field in error
    assert error["trigger_event_id"] == trigger["id"] and error["trigger_event_type"] == "actions"
    assert doc["apis"] == []


def test_export_of_an_empty_session_is_valid_json(client, api_key):
    sid, _ = start(client, api_key)
    doc = read_stream(get(client, f"/v2/sessions/{sid}/export", key=api_key))
    assert doc["llms"] == [] and doc["stats"]["events"] == 0


def test_export_streams_a_large_session_completely(client, api_key, settings):
    sid, jwt = start(client, api_key)
    ids = set()
    for _ in range(3):
        batch = [llm(at=T0 + timedelta(seconds=i)) for i in range(1000)]
        ids |= {e["id"] for e in batch}
        assert send(client, jwt, batch)["accepted"] == 1000
    response = get(client, f"/v2/sessions/{sid}/export", key=api_key)
    chunks = list(response.streaming_content)
    assert len(chunks) > 6, "produced in pieces, not one document in memory"
    doc = orjson.loads(b"".join(chunks))
    assert {r["id"] for r in doc["llms"]} == ids


def test_session_list_filters_and_pages(client, api_key):
    made = []
    for i in range(7):
        tags = ["prod"] + (["eu"] if i % 2 else [])
        sid, jwt = start(client, api_key, tags=tags, at=T0 + timedelta(minutes=i))
        if i % 3 == 0:
            send(client, jwt, [event("errors", error_type="E")])
        if i < 4:
            post(
                client,
                "/v2/update_session",
                {
                    "session": {
                        "end_timestamp": iso(T0 + timedelta(hours=1)),
                        "end_state": "Success" if i % 2 else "Fail",
                    }
                },
                jwt=jwt,
            )
        made.append(sid)
    newest_first = list(reversed(made))

    def ids(query):
        response = get(client, f"/v2/sessions?{query}", key=api_key)
        assert response.status_code == 200, response.content
        return response.json()

    assert [s["session_id"] for s in ids("")["sessions"]] == newest_first
    assert [s["session_id"] for s in ids("tag=prod&tag=eu")["sessions"]] == [
        made[5],
        made[3],
        made[1],
    ]
    assert [s["session_id"] for s in ids("end_state=Success")["sessions"]] == [made[3], made[1]]
    assert [s["session_id"] for s in ids("end_state=running")["sessions"]] == newest_first[:3]
    assert [s["session_id"] for s in ids("has_errors=true")["sessions"]] == [
        made[6],
        made[3],
        made[0],
    ]
    since = iso(T0 + timedelta(minutes=5))
    assert [
        s["session_id"] for s in ids(f"since={since.replace('+', '%2B')}")["sessions"]
    ] == newest_first[:2]

    seen, cursor = [], ""
    while True:
        page = ids(f"limit=3{'&cursor=' + cursor if cursor else ''}")
        seen += [s["session_id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == newest_first


def test_session_list_rejects_bad_filters_with_field_names(client, api_key):
    response = get(
        client, "/v2/sessions?end_state=Done&limit=0&since=yesterday&cursor=zzz", key=api_key
    )
    assert response.status_code == 400
    assert {"end_state", "limit", "since"} <= set(response.json()["errors"])
    bad_cursor = get(client, "/v2/sessions?cursor=bm9wZQ", key=api_key)
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["errors"]


def test_openapi_schema_lists_every_endpoint(client):
    response = client.get("/v2/openapi.json")
    assert response.status_code == 200
    paths = orjson.loads(response.content)["paths"]
    for path in (
        "/v2/create_session",
        "/v2/update_session",
        "/v2/create_events",
        "/v2/create_agent",
        "/v2/reauthorize_jwt",
        "/v2/developer_errors",
        "/v2/sessions",
        "/v2/sessions/{session_id}/stats",
        "/v2/sessions/{session_id}/export",
    ):
        assert path in paths, path
    assert client.get("/v2/docs").status_code == 200


def test_the_session_url_leads_a_member_to_the_session_page(client, api_key, alice, charlie):
    sid, _ = start(client, api_key)
    url = post(client, "/v2/create_session", {"session": {"session_id": sid}}, key=api_key).json()
    path = url["session_url"].removeprefix("http://testserver")
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].endswith(f"/sessions/{sid}/")
    client.force_login(charlie)
    assert client.get(path).status_code == 404
