"""Small helpers to speak the v2 protocol through Django's test client, as an SDK would."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def post(client, path, body, *, key=None, jwt=None, raw: bytes | None = None, **headers):
    if key is not None:
        headers["HTTP_X_AGENTOPS_API_KEY"] = key
    if jwt is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {jwt}"
    data = raw if raw is not None else orjson.dumps(body)
    return client.post(path, data=data, content_type="application/json", **headers)


def get(client, path, *, key=None, **headers):
    if key is not None:
        headers["HTTP_X_AGENTOPS_API_KEY"] = key
    return client.get(path, **headers)


def start(client, key, *, session_id=None, tags=(), at: datetime = T0):
    session_id = session_id or str(uuid.uuid4())
    response = post(
        client,
        "/v2/create_session",
        {"session": {"session_id": session_id, "init_timestamp": iso(at), "tags": list(tags)}},
        key=key,
    )
    assert response.status_code == 200, response.content
    return session_id, response.json()["jwt"]


def llm(model="gpt-4o", prompt_tokens=100, completion_tokens=50, at=T0, **extra):
    return {
        "id": str(uuid.uuid4()),
        "event_type": "llms",
        "init_timestamp": iso(at),
        "end_timestamp": iso(at + timedelta(seconds=1)),
        "model": model,
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": {"role": "assistant", "content": "Hello"},
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        **extra,
    }


def event(event_type, at=T0, **extra):
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "init_timestamp": iso(at),
        "end_timestamp": iso(at + timedelta(milliseconds=200)),
        **extra,
    }


def send(client, jwt, events):
    response = post(client, "/v2/create_events", {"events": events}, jwt=jwt)
    assert response.status_code == 200, response.content
    return response.json()
