"""Every v2 endpoint against every kind of bad credential: the right 4xx, and nothing revealed."""

import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest

from projects.auth import JWT_ALGORITHM, JWT_AUDIENCE, _jwt_secret
from projects.keys import find_active_key, revoke_key
from tests.v2 import get, llm, post, start

KEY_ENDPOINTS = ["create_session", "reauthorize_jwt", "developer_errors", "stats", "export", "list"]
JWT_ENDPOINTS = ["update_session", "create_events", "create_agent"]


@pytest.fixture
def world(client, api_key, other_api_key):
    sid, token = start(client, api_key)
    other_sid, other_token = start(client, other_api_key)
    return {"sid": sid, "jwt": token, "other_sid": other_sid, "other_jwt": other_token}


def call_with_key(client, endpoint, key, sid):
    headers = {"HTTP_X_AGENTOPS_API_KEY": key} if key is not None else {}
    if endpoint == "create_session":
        return post(client, "/v2/create_session", {"session": {"session_id": sid}}, **headers)
    if endpoint == "reauthorize_jwt":
        return post(client, "/v2/reauthorize_jwt", {"session_id": sid}, **headers)
    if endpoint == "developer_errors":
        return post(client, "/v2/developer_errors", {"type": "X", "message": "m"}, **headers)
    if endpoint == "list":
        return get(client, "/v2/sessions", **headers)
    return get(client, f"/v2/sessions/{sid}/{endpoint}", **headers)


def call_with_jwt(client, endpoint, token, sid=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    if endpoint == "update_session":
        body = {"session": {"tags": ["hacked"], **({"session_id": sid} if sid else {})}}
        return post(client, "/v2/update_session", body, **headers)
    if endpoint == "create_events":
        return post(client, "/v2/create_events", {"events": [llm()]}, **headers)
    return post(client, "/v2/create_agent", {"id": str(uuid.uuid4()), "name": "a"}, **headers)


def forged(claims: dict, secret: bytes | None = None) -> str:
    base = {
        "aud": JWT_AUDIENCE,
        "iat": datetime.now(UTC),
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    return pyjwt.encode({**base, **claims}, secret or _jwt_secret(), algorithm=JWT_ALGORITHM)


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
@pytest.mark.parametrize(
    "credential", ["none", "malformed", "unknown", "revoked", "a session jwt instead"]
)
def test_key_endpoints_refuse_bad_keys_with_401(client, world, api_key, endpoint, credential):
    key = {
        "none": None,
        "malformed": "not-a-key'; DROP TABLE x; --",
        "unknown": str(uuid.uuid4()),
        "revoked": api_key,
        "a session jwt instead": world["jwt"],
    }[credential]
    if credential == "revoked":
        revoke_key(find_active_key(api_key))
    response = call_with_key(client, endpoint, key, world["sid"])
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["message"] and world["sid"] not in str(body)


@pytest.mark.parametrize("endpoint", ["reauthorize_jwt", "stats", "export"])
def test_another_projects_key_gets_404_as_for_a_missing_session(
    client, world, other_api_key, endpoint
):
    theirs = call_with_key(client, endpoint, other_api_key, world["sid"])
    missing = call_with_key(client, endpoint, other_api_key, str(uuid.uuid4()))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


def test_another_projects_key_cannot_join_or_list(client, world, other_api_key):
    assert call_with_key(client, "create_session", other_api_key, world["sid"]).status_code == 404
    listed = call_with_key(client, "list", other_api_key, None).json()
    assert [s["session_id"] for s in listed["sessions"]] == [world["other_sid"]]


@pytest.mark.parametrize("endpoint", JWT_ENDPOINTS)
@pytest.mark.parametrize(
    "credential",
    ["none", "garbage", "expired", "tampered", "wrong secret", "api key instead", "revoked key"],
)
def test_jwt_endpoints_refuse_bad_tokens_with_401(client, world, api_key, endpoint, credential):
    valid = world["jwt"]
    claims = pyjwt.decode(valid, _jwt_secret(), algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE)
    token = {
        "none": None,
        "garbage": "abc.def.ghi",
        "expired": forged({**claims, "exp": datetime.now(UTC) - timedelta(seconds=5)}),
        "tampered": forged({**claims, "sid": world["other_sid"]}, secret=b"guessed"),
        "wrong secret": forged(claims, secret=b"x" * 32),
        "api key instead": api_key,
        "revoked key": valid,
    }[credential]
    if credential == "tampered":
        header, _, signature = valid.split(".")
        token = ".".join(
            [header, forged({**claims, "sid": world["other_sid"]}).split(".")[1], signature]
        )
    if credential == "revoked key":
        revoke_key(find_active_key(api_key))
    response = call_with_jwt(client, endpoint, token)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert world["other_sid"] not in response.content.decode()


def test_another_sessions_token_cannot_touch_this_session(client, world):
    """A token names one session: naming another in the body is refused, never applied."""
    response = call_with_jwt(client, "update_session", world["other_jwt"], sid=world["sid"])
    assert response.status_code == 404
    from sessions.models import Session

    assert not Session.objects.get(pk=world["sid"]).tags.filter(name="hacked").exists()
    events = post(
        client,
        "/v2/create_events",
        {"events": [llm(session_id=world["sid"])]},
        jwt=world["other_jwt"],
    ).json()
    assert events["accepted"] == 0 and "session_id" in events["rejected"][0]["errors"]


def test_a_forged_token_for_another_project_is_refused(client, world, other_api_key):
    from projects.models import ApiKey

    other_key = ApiKey.objects.exclude(project__name="Alpha").first()
    token = forged(
        {"sid": world["sid"], "pid": str(other_key.project_id), "kid": str(other_key.id)},
        secret=b"k",
    )
    assert call_with_jwt(client, "create_events", token).status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(client, api_key):
    from django.utils import timezone

    from projects.models import ApiKey

    key = find_active_key(api_key)
    assert key.last_used_at is None
    sid, token = start(client, api_key)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    call_with_key(client, "stats", api_key, sid)
    call_with_jwt(client, "create_events", token)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    call_with_jwt(client, "create_events", token)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first - timedelta(seconds=1)
    assert ApiKey.objects.get(pk=key.pk).last_used_at <= timezone.now()


@pytest.mark.parametrize("body", ["valid events", "only rejected events", "no events"])
def test_a_revoked_keys_token_stores_nothing(client, world, api_key, body):
    """create_events checks the key inside its write: a revoked key's batch is refused whole,
    the session's totals and the key's last use stay as they were."""
    from events.models import Event
    from projects.models import ApiKey
    from sessions.models import Session

    events = {
        "valid events": [llm(), llm()],
        "only rejected events": [{"id": "not-a-uuid", "event_type": "llms"}],
        "no events": [],
    }[body]
    key = find_active_key(api_key)
    revoke_key(key)
    last_used = ApiKey.objects.get(pk=key.pk).last_used_at
    response = post(
        client, "/v2/create_events", {"events": events}, HTTP_AUTHORIZATION=f"Bearer {world['jwt']}"
    )
    assert response.status_code == 401, response.content
    assert "revoked" in response.json()["message"]
    assert not Event.objects.filter(session_id=world["sid"]).exists()
    assert Session.objects.get(pk=world["sid"]).llm_count == 0
    assert ApiKey.objects.get(pk=key.pk).last_used_at == last_used


def test_a_deleted_sessions_token_gets_404_and_stores_nothing(client, world):
    from events.models import Event
    from sessions.models import Session

    Session.objects.filter(pk=world["sid"]).delete()
    for events in ([llm()], []):
        response = post(
            client,
            "/v2/create_events",
            {"events": events},
            HTTP_AUTHORIZATION=f"Bearer {world['jwt']}",
        )
        assert response.status_code == 404, response.content
    assert not Event.objects.exists()


# --- OTLP: /v1/traces with ingest tokens and project keys ------------------------------------


def _otlp_body(trace_id: bytes) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, b"\x01" * 8, "step"
    span.start_time_unix_nano = span.end_time_unix_nano = 1_790_000_000_000_000_000
    return message.SerializeToString()


def _ingest_token(client, api_key) -> str:
    response = post(client, "/v3/auth/token", {"api_key": api_key})
    return response.json()["token"]


OTLP_CREDENTIALS = [
    "none",
    "malformed bearer",
    "unknown key as bearer",
    "unknown key header",
    "revoked key's token",
    "revoked key as bearer",
    "a v2 session jwt",
    "a forged token",
    "an expired token",
]


def _bearer(key, issued, secret) -> dict:
    from projects.tokens import TOKEN_ALGORITHM, TOKEN_AUDIENCE

    claims = {"pid": str(key.project_id), "kid": str(key.pk), "aud": TOKEN_AUDIENCE}
    claims.update(iat=issued, exp=issued + timedelta(days=30))
    return {
        "HTTP_AUTHORIZATION": "Bearer " + pyjwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)
    }


@pytest.mark.parametrize("credential", OTLP_CREDENTIALS)
def test_otlp_traces_refuse_bad_credentials_with_401_and_store_nothing(
    client, world, api_key, credential
):
    from projects.tokens import _secret as token_secret
    from sessions.models import Session

    before = Session.objects.count()
    key = find_active_key(api_key)
    token = _ingest_token(client, api_key)
    now = datetime.now(UTC)
    headers = {
        "none": {},
        "malformed bearer": {"HTTP_AUTHORIZATION": "Bearer"},
        "unknown key as bearer": {"HTTP_AUTHORIZATION": f"Bearer {uuid.uuid4()}"},
        "unknown key header": {"HTTP_X_AGENTOPS_API_KEY": str(uuid.uuid4())},
        "revoked key's token": {"HTTP_AUTHORIZATION": f"Bearer {token}"},
        "revoked key as bearer": {"HTTP_AUTHORIZATION": f"Bearer {api_key}"},
        "a v2 session jwt": {"HTTP_AUTHORIZATION": f"Bearer {world['jwt']}"},
        "a forged token": _bearer(key, now, b"not-our-secret-but-long-enough-for-hs256"),
        "an expired token": _bearer(key, now - timedelta(days=40), token_secret()),
    }[credential]
    if credential.startswith("revoked"):
        revoke_key(key)
    response = client.post(
        "/v1/traces",
        _otlp_body(uuid.uuid4().bytes),
        content_type="application/x-protobuf",
        **headers,
    )
    assert response.status_code == 401
    assert response["Content-Type"] == "application/x-protobuf"
    assert api_key.encode() not in response.content
    assert Session.objects.count() == before


@pytest.mark.parametrize("credential", ["token", "key as bearer", "key header"])
def test_otlp_traces_accept_tokens_and_project_keys(client, world, api_key, project, credential):
    from sessions.models import Session

    headers = {
        "token": {"HTTP_AUTHORIZATION": f"Bearer {_ingest_token(client, api_key)}"},
        "key as bearer": {"HTTP_AUTHORIZATION": f"Bearer {api_key}"},
        "key header": {"HTTP_X_AGENTOPS_API_KEY": api_key},
    }[credential]
    trace_id = uuid.uuid4()
    response = client.post(
        "/v1/traces", _otlp_body(trace_id.bytes), content_type="application/x-protobuf", **headers
    )
    assert response.status_code == 200
    assert Session.objects.get(pk=trace_id).project == project


def test_a_token_of_another_project_cannot_write_into_this_projects_trace(
    client, world, api_key, other_api_key, project
):
    from sessions.models import Session

    trace_id = uuid.uuid4()
    body = _otlp_body(trace_id.bytes)
    client.post("/v1/traces", body, content_type="application/x-protobuf",
                HTTP_X_AGENTOPS_API_KEY=api_key)  # fmt: skip
    response = client.post(
        "/v1/traces",
        _otlp_body(trace_id.bytes),
        content_type="application/x-protobuf",
        HTTP_AUTHORIZATION=f"Bearer {_ingest_token(client, other_api_key)}",
    )
    assert response.status_code == 200 and b"not available" in response.content
    assert Session.objects.get(pk=trace_id).project == project
