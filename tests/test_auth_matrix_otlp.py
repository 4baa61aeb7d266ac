"""The OpenTelemetry endpoints against every kind of credential: the 0.4 SDK's ingest token,
the project key as Bearer or X-Agentops-Api-Key (generic exporters), and every bad one. A bad
credential is a 401 in the request's encoding that stores nothing and names nothing; a good one
lands in its own project only."""

import uuid
from datetime import timedelta

import jwt as pyjwt
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from events.models import Event
from projects.keys import find_active_key, revoke_key
from projects.tokens import TOKEN_ALGORITHM, TOKEN_AUDIENCE, issue_ingest_token
from sessions.models import Session, TraceLog
from tests.otlp_captures import _set_attributes, to_otlp_json

pytestmark = pytest.mark.django_db

ENDPOINTS = ["traces protobuf", "traces json", "logs upload", "objects upload", "public project"]
BAD = [
    "none",
    "not bearer",
    "garbage token",
    "expired token",
    "token signed with another secret",
    "token of a revoked key",
    "revoked key as bearer",
    "revoked key as header",
    "unknown key as header",
    "v2 session jwt",
]
GOOD = ["token", "key as bearer", "key as header"]


def one_span_request(trace_id: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, b"\x01" * 8, "work.task"
    span.start_time_unix_nano = 1_790_000_000_000_000_000
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    _set_attributes(span.attributes, {"agentops.span.kind": "task"})
    return message


def call(client, endpoint: str, headers: dict, trace_id: bytes):
    if endpoint == "traces protobuf":
        return client.post(
            "/v1/traces",
            one_span_request(trace_id).SerializeToString(),
            content_type="application/x-protobuf",
            **headers,
        )
    if endpoint == "traces json":
        body = orjson.dumps(to_otlp_json(one_span_request(trace_id)))
        return client.post("/v1/traces", body, content_type="application/json", **headers)
    if endpoint == "logs upload":
        return client.post(
            "/v4/logs/upload/", b"captured output", content_type="text/plain",
            HTTP_TRACE_ID=trace_id.hex(), **headers,
        )  # fmt: skip
    if endpoint == "objects upload":
        return client.post(
            "/v4/objects/upload/", b"\x89PNG...", content_type="application/octet-stream",
            **headers,
        )  # fmt: skip
    return client.get("/public/v1/project", **headers)


def bearer(value: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {value}"}


def token_of(api_key: str, **kwargs) -> str:
    return issue_ingest_token(find_active_key(api_key), **kwargs)[0]


def bad_headers(credential: str, client, api_key: str) -> dict:
    if credential == "none":
        return {}
    if credential == "not bearer":
        return {"HTTP_AUTHORIZATION": f"Basic {api_key}"}
    if credential == "garbage token":
        return bearer("abc.def.ghi")
    if credential == "expired token":
        return bearer(token_of(api_key, ttl=timedelta(seconds=-5)))
    if credential == "token signed with another secret":
        claims = pyjwt.decode(
            token_of(api_key), options={"verify_signature": False}, audience=TOKEN_AUDIENCE
        )
        return bearer(pyjwt.encode(claims, b"s" * 32, algorithm=TOKEN_ALGORITHM))
    if credential == "token of a revoked key":
        token = token_of(api_key)
        revoke_key(find_active_key(api_key))
        return bearer(token)
    if credential in ("revoked key as bearer", "revoked key as header"):
        revoke_key(find_active_key(api_key))
        if credential.endswith("bearer"):
            return bearer(api_key)
        return {"HTTP_X_AGENTOPS_API_KEY": api_key}
    if credential == "unknown key as header":
        return {"HTTP_X_AGENTOPS_API_KEY": str(uuid.uuid4())}
    assert credential == "v2 session jwt"
    response = client.post(
        "/v2/create_session",
        {"session": {"session_id": str(uuid.uuid4())}},
        content_type="application/json",
        HTTP_X_AGENTOPS_API_KEY=api_key,
    )
    return bearer(response.json()["jwt"])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", BAD)
def test_bad_credentials_are_refused_with_401_and_store_nothing(
    client, api_key, project, endpoint, credential
):
    trace_id = uuid.uuid4().bytes
    response = call(client, endpoint, bad_headers(credential, client, api_key), trace_id)
    assert response.status_code == 401, (endpoint, credential, response.content)
    if endpoint == "traces protobuf":
        assert response["Content-Type"] == "application/x-protobuf"
    else:
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["message"] if endpoint == "traces json" else response.json()
    assert str(project.id) not in response.content.decode(errors="replace")
    assert not Session.objects.filter(id=uuid.UUID(bytes=trace_id)).exists()
    assert not Event.objects.exists() and not TraceLog.objects.exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", GOOD)
def test_each_good_credential_reaches_its_own_project(
    client, api_key, other_api_key, project, other_project, endpoint, credential
):
    headers = {
        "token": bearer(token_of(other_api_key)),
        "key as bearer": bearer(other_api_key),
        "key as header": {"HTTP_X_AGENTOPS_API_KEY": other_api_key},
    }[credential]
    trace_id = uuid.uuid4().bytes
    response = call(client, endpoint, headers, trace_id)
    assert response.status_code == 200, (endpoint, credential, response.content)
    if endpoint.startswith("traces"):
        session = Session.objects.get(id=uuid.UUID(bytes=trace_id))
        assert session.project_id == other_project.id
        assert Event.objects.get().project_id == other_project.id
    if endpoint == "public project":
        assert response.json()["id"] == str(other_project.id)
