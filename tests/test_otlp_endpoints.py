"""POST /v1/traces, /v3/auth/token, /v4/... and /public/v1 through Django's test client, with the
bytes agentops 0.4.21 really sent (tests/otlp_captures.py), on the configured database (Postgres
and SQLite: run this file under both)."""

import gzip
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.urls import resolve
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from events.models import Event
from projects.keys import revoke_key
from projects.models import ApiKey
from sessions.models import Session, TraceLog
from sessions.services import expire_silent_sessions
from tests.otlp_captures import (
    _set_attributes,
    captured_spans,
    to_otlp_json,
    to_protobuf,
    trace_requests,
)

pytestmark = pytest.mark.django_db

PB = "application/x-protobuf"
LEGACY = "02-legacy-session-success-and-fail.json"
NEW_API = "03-new-api-decorators-and-errors.json"
LLM = "04-llm-openai-chat.json"
CROSS = "05-cross-process-traceparent.json"
UNENDED = "06-unended-traces.json"


def token_for(client, api_key) -> str:
    response = client.post("/v3/auth/token", {"api_key": api_key}, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def post(client, body: bytes, *, content_type=PB, auth=None, **headers):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {auth}"} if auth else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client.post("/v1/traces", body, content_type=content_type, **extra)


def send_capture(client, name, token, *, encoding="protobuf"):
    for request in trace_requests(name):
        message = to_protobuf(request)
        if encoding == "protobuf":
            response = post(client, message.SerializeToString(), auth=token)
            assert response["Content-Type"] == PB
            assert ExportTraceServiceResponse.FromString(response.content) == (
                ExportTraceServiceResponse()
            )
        else:
            response = post(
                client,
                orjson.dumps(to_otlp_json(message)),
                content_type="application/json",
                auth=token,
            )
            assert response["Content-Type"] == "application/json"
            assert response.json() == {}
        assert response.status_code == 200


def sessions_of(name):
    return {
        uuid.UUID(hex=s["trace_id"]): s for s in captured_spans(name) if not s["parent_span_id"]
    }


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_legacy_sessions_arrive_with_end_state_reason_tags_and_host_env(
    client, api_key, project, encoding
):
    send_capture(client, LEGACY, token_for(client, api_key), encoding=encoding)
    by_state = {s.end_state: s for s in Session.objects.filter(project=project)}
    assert set(by_state) == {"Success", "Fail"}
    success, fail = by_state["Success"], by_state["Fail"]
    assert success.end_state_reason == "acceptance run finished"
    assert sorted(success.tags.values_list("name", flat=True)) == ["legacy", "seed"]
    assert success.host_env["host.system"] and "imported_libraries" in success.host_env
    assert (fail.end_state_reason, fail.metadata["legacy.extra_field"]) == ("on purpose", "42")
    assert success.protocol == "otlp" and success.root_span["name"] == "session.session"
    assert success.tool_count == 1 and success.cost == Decimal("0.02")
    assert success.end_timestamp >= success.init_timestamp


def test_new_api_errors_agents_and_a_resent_request_stored_once(client, api_key, project):
    token = token_for(client, api_key)
    send_capture(client, NEW_API, token)
    before = Event.objects.count()
    totals = list(Session.objects.values_list("id", "tool_count", "error_count", "action_count"))
    send_capture(client, NEW_API, token)  # every request again: exporters retry
    assert Event.objects.count() == before
    assert sorted(totals) == sorted(
        Session.objects.values_list("id", "tool_count", "error_count", "action_count")
    )
    errors = Event.objects.filter(event_type="errors")
    assert errors.count() == 4  # four failed flaky.tool spans, each sent with 2 exception events
    assert {e.name for e in errors} == {"ValueError"}
    assert all(e.trigger_event_id for e in errors)
    states = dict(Session.objects.values_list("root_span__name", "end_state"))
    assert states["research-run.session"] == "Success"
    assert states["failed-run.session"] == "Fail"
    assert states["default-state.session"] == "Indeterminate"  # end_trace(t): enum dropped
    run = Session.objects.get(root_span__name="research-run.session")
    assert run.metadata["user_id"] == "u-1" and list(run.tags.values_list("name", flat=True)) == [
        "meta-tag"
    ]


def test_llm_span_is_priced_and_the_stats_api_takes_the_trace_hex(client, api_key):
    send_capture(client, LLM, token_for(client, api_key))
    (trace_id,) = sessions_of(LLM)
    stats = client.get(f"/v2/sessions/{trace_id.hex}/stats", HTTP_X_AGENTOPS_API_KEY=api_key).json()
    assert (stats["llms"], stats["prompt_tokens"], stats["completion_tokens"]) == (2, 2400, 600)
    assert stats["cost"] is not None and float(stats["cost"]) > 0
    response = client.get(f"/v2/sessions/{trace_id.hex}/export", HTTP_X_AGENTOPS_API_KEY=api_key)
    export = orjson.loads(b"".join(response.streaming_content))
    prompt = export["llms"][0]["prompt"]
    assert prompt["type"] == "chatml" and prompt["messages"][0]["role"] in ("system", "user")
    assert export["session"]["end_state"] == "Success"


def test_children_first_then_root_from_another_process(client, api_key):
    """05: the child process's spans arrive first (one nested session span among them), the
    parent's root last; the true root alone sets the end state."""
    token = token_for(client, api_key)
    first, second = trace_requests(CROSS)
    post(client, to_protobuf(first).SerializeToString(), auth=token)
    session = Session.objects.get()
    assert session.end_state is None and session.root_span is None  # running, no root yet
    post(client, to_protobuf(second).SerializeToString(), auth=token)
    session.refresh_from_db()
    assert session.end_state == "Success" and session.root_span["name"] == "distributed.session"
    assert sorted(session.tags.values_list("name", flat=True)) == ["parent"]
    assert Event.objects.filter(session=session, name="child-trace").exists()  # nested: an action


def test_a_root_that_never_came_is_reaped_with_its_reason_and_a_late_root_wins(client, api_key):
    token = token_for(client, api_key)
    first, second = trace_requests(CROSS)
    post(client, to_protobuf(first).SerializeToString(), auth=token)
    Session.objects.update(last_seen_at=timezone.now() - timedelta(hours=2))
    assert expire_silent_sessions(timeout=60) == 1
    session = Session.objects.get()
    assert session.end_state == "Indeterminate"
    assert session.end_state_reason.startswith("No root span received")
    post(client, to_protobuf(second).SerializeToString(), auth=token)
    session.refresh_from_db()
    assert (session.end_state, session.end_state_reason) == ("Success", "")


def _root_with_tags(trace_id: bytes, tags: list[str]) -> bytes:
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, uuid.uuid4().bytes[:8], "run.session"
    span.start_time_unix_nano = 1_790_000_000_000_000_000
    span.end_time_unix_nano = span.start_time_unix_nano + 10**9
    _set_attributes(span.attributes, {"agentops.span.kind": "session", "agentops.tags": tags})
    return message.SerializeToString()


def test_a_root_sets_its_tags_a_resent_root_replaces_them_and_tag_rows_are_shared(
    client, api_key, project
):
    token = token_for(client, api_key)
    first, second = uuid.uuid4().bytes, uuid.uuid4().bytes
    assert post(client, _root_with_tags(first, ["a", "b", "a"]), auth=token).status_code == 200
    assert post(client, _root_with_tags(second, ["b", "c"]), auth=token).status_code == 200
    assert post(client, _root_with_tags(first, ["b", "d"]), auth=token).status_code == 200

    def names(trace_id):
        session = Session.objects.get(id=uuid.UUID(bytes=trace_id))
        return sorted(session.tags.values_list("name", flat=True))

    assert names(first) == ["b", "d"] and names(second) == ["b", "c"]
    assert sorted(project.tags.values_list("name", flat=True)) == ["a", "b", "c", "d"]


def test_spans_of_a_trace_another_project_owns_are_refused_alone(
    client, api_key, other_api_key, project, other_project
):
    (request,) = trace_requests(LLM)
    body = to_protobuf(request).SerializeToString()
    post(client, body, auth=token_for(client, other_api_key))
    theirs = Session.objects.get()
    # ours: the same trace (3 spans) plus one span of a fresh trace of our own
    message = ExportTraceServiceRequest.FromString(body)
    extra = message.resource_spans[0].scope_spans[0].spans.add()
    extra.CopyFrom(message.resource_spans[0].scope_spans[0].spans[0])
    extra.trace_id = uuid.uuid4().bytes
    extra.parent_span_id = b""
    response = post(client, message.SerializeToString(), X_AGENTOPS_API_KEY=api_key)
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert answer.partial_success.rejected_spans == 3
    assert "not available to this project" in answer.partial_success.error_message
    assert Session.objects.filter(project=project).count() == 1
    theirs.refresh_from_db()
    assert theirs.project == other_project and theirs.llm_count == 2
    assert Event.objects.filter(session=theirs).exclude(project=other_project).count() == 0


def test_span_fields_and_payload_text_round_trip_the_write_exactly(client, api_key):
    """The rows reach Postgres by binary COPY with each payload as its JSON text (and SQLite
    by its own path): what is read back is what was sent, byte for byte, typed as sent."""
    tricky = 'quote " backslash \\ tab \t newline \n é 漢字 🙂 \u2028 {"not": "json"}'
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    trace_id = uuid.uuid4().bytes
    root, child = spans.add(), spans.add()
    for span, name in ((root, "agent run"), (child, tricky)):
        span.trace_id, span.span_id, span.name = trace_id, uuid.uuid4().bytes[:8], name
        span.start_time_unix_nano = 1_790_000_000_123_456_789
        span.end_time_unix_nano = span.start_time_unix_nano + 1_500_000_000
    child.parent_span_id = root.span_id
    attributes = {"tool.name": tricky, "count": 7, "ratio": 0.25, "flag": True, "list": ["a", "\\"]}
    _set_attributes(child.attributes, attributes)
    for _ in range(2):  # the second write of the same spans (a retry) stores nothing
        assert (
            post(client, message.SerializeToString(), X_AGENTOPS_API_KEY=api_key).status_code == 200
        )
    (event,) = Event.objects.filter(span_id=child.span_id.hex())
    assert event.name == tricky and event.event_type == "tools"
    assert event.parent_span_id == root.span_id.hex()
    assert event.init_timestamp == datetime(2026, 9, 21, 14, 13, 20, 123456, tzinfo=UTC)
    assert event.end_timestamp - event.init_timestamp == timedelta(seconds=1.5)
    assert event.payload["otel"]["attributes"] == attributes
    assert Session.objects.get(id=uuid.UUID(bytes=trace_id)).tool_count == 1


def test_the_session_page_says_whether_the_root_span_came(client, api_key, project, alice):
    """A plain OTel root is an event too (only an AgentOps session root is kept on the
    session alone): the page must not call its trace rootless."""
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    trace_id, root_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    child = spans.add()
    child.trace_id, child.span_id, child.parent_span_id = trace_id, uuid.uuid4().bytes[:8], root_id
    child.name, child.start_time_unix_nano = "step", 1_790_000_000_000_000_000
    child.end_time_unix_nano = child.start_time_unix_nano + 10**6
    client.force_login(alice)
    page = f"/p/{project.slug}/sessions/{uuid.UUID(bytes=trace_id)}/"

    assert post(client, message.SerializeToString(), X_AGENTOPS_API_KEY=api_key).status_code == 200
    assert "no root span received yet" in client.get(page).content.decode()

    del spans[:]
    root = spans.add()
    root.trace_id, root.span_id, root.name = trace_id, root_id, "agent run"  # no AgentOps kind
    root.start_time_unix_nano = child.start_time_unix_nano - 10**6
    root.end_time_unix_nano = child.end_time_unix_nano + 10**6
    assert post(client, message.SerializeToString(), X_AGENTOPS_API_KEY=api_key).status_code == 200
    html = client.get(page).content.decode()
    assert "no root span received yet" not in html and "agent run" in html


def test_a_bad_span_is_refused_its_neighbours_kept_in_json(client, api_key):
    (request,) = trace_requests(LLM)
    document = to_otlp_json(to_protobuf(request))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceId"] = "not-hex"
    response = post(
        client, orjson.dumps(document), content_type="application/json", X_AGENTOPS_API_KEY=api_key
    )
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    assert Session.objects.get().llm_count + Session.objects.get().action_count >= 1


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_bodies(client, api_key, coding):
    (request,) = trace_requests(LLM)
    raw = to_protobuf(request).SerializeToString()
    body = gzip.compress(raw) if coding == "gzip" else zlib.compress(raw)
    response = post(client, body, auth=api_key, Content_Encoding=coding)
    assert response.status_code == 200 and Session.objects.get().llm_count == 2


def test_refusals_speak_status_in_the_request_encoding(client, api_key, settings):
    response = post(client, b"\xff\xff garbage", auth=api_key)
    assert response.status_code == 400 and response["Content-Type"] == PB
    assert response.content[:1] == b"\x08" and b"protobuf" in response.content
    response = post(client, b"{nope", content_type="application/json", auth=api_key)
    assert response.status_code == 400 and response.json()["code"] == 3
    response = post(client, b"x", content_type="text/plain", auth=api_key)
    assert response.status_code == 415 and response.json()["code"] == 3
    response = post(client, b"")  # no credentials at all
    assert response.status_code == 401
    response = post(client, b"", auth="not-a-token")
    assert response.status_code == 401
    settings.INGEST_MAX_BODY_BYTES = 2048
    bomb = gzip.compress(b"\x00" * 100_000)
    response = post(client, bomb, auth=api_key, Content_Encoding="gzip")
    assert response.status_code == 413


def test_a_revoked_key_stops_its_tokens_and_itself(client, api_key):
    token = token_for(client, api_key)
    revoke_key(ApiKey.objects.get())
    (request,) = trace_requests(LLM)
    body = to_protobuf(request).SerializeToString()
    assert post(client, body, auth=token).status_code == 401
    assert post(client, body, auth=api_key).status_code == 401
    assert Session.objects.count() == 0


def test_auth_token_answers_json_with_project_and_refuses_bad_keys(client, api_key, project):
    # An endpoint set with a trailing slash asks for //v3/auth/token (the test client would
    # read "//v3" as a host, so the route is checked by resolve()).
    assert resolve("//v3/auth/token").url_name == "v3-auth-token"
    assert resolve("//v4/logs/upload/").url_name == "v4-logs-upload"
    response = client.post("/v3/auth/token", {"api_key": api_key}, content_type="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["project_id"] == str(project.pk) and body["project_prem_status"] == "pro"
    assert api_key not in body["token"]
    assert ApiKey.objects.get().last_token_at is not None
    described = client.get("/v3/auth/token", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert described.json()["payload"]["project_id"] == str(project.pk)
    bad = client.post("/v3/auth/token", {"api_key": "sk-123"}, content_type="application/json")
    assert bad.status_code == 400 and "UUID" in bad.json()["message"]
    unknown = client.post(
        "/v3/auth/token", {"api_key": str(uuid.uuid4())}, content_type="application/json"
    )
    assert unknown.status_code == 401


def test_logs_uploaded_before_any_span_join_the_session(client, api_key, project):
    token = token_for(client, api_key)
    (request,) = trace_requests(LLM)
    (trace_id,) = sessions_of(LLM)
    response = client.post(
        "/v4/logs/upload",
        {"body": "2026-01-01 10:00:00,000 - INFO - hello\n"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_TRACE_ID=str(trace_id.int),  # decimal, as the SDK sends it
    )
    assert response.status_code == 200
    assert response.json()["size"] == 39 and trace_id.hex in response.json()["url"]
    post(client, to_protobuf(request).SerializeToString(), auth=token)
    log = TraceLog.objects.get()
    assert (log.trace_id, log.project_id) == (trace_id, project.pk)
    missing = client.post(
        "/v4/logs/upload/",
        {"body": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert missing.status_code == 400
    assert (
        client.post(
            "/v4/logs/upload/", {"body": "x"}, content_type="application/json", HTTP_TRACE_ID="1"
        ).status_code
        == 401
    )


def test_objects_upload_is_served_back_to_its_project_only(client, api_key, other_api_key):
    response = client.post(
        "/v4/objects/upload/",
        {"body": "audio-bytes"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for(client, api_key)}",
    )
    assert response.status_code == 200 and response.json()["size"] == 11
    path = response.json()["url"].split("testserver", 1)[1]
    assert client.get(path, HTTP_X_AGENTOPS_API_KEY=api_key).content == b"audio-bytes"
    assert client.get(path, HTTP_X_AGENTOPS_API_KEY=other_api_key).status_code == 404


def test_public_api_trace_span_and_metrics(client, api_key, other_api_key):
    send_capture(client, LLM, token_for(client, api_key))
    bearer = client.post(
        "/public/v1/auth/access_token", {"api_key": api_key}, content_type="application/json"
    ).json()["bearer"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"}
    (trace_id,) = sessions_of(LLM)
    trace = client.get(f"/public/v1/traces/{trace_id.hex}", **auth).json()
    assert len(trace["spans"]) == 3 and trace["tags"] == ["llm"]
    llm = next(s for s in trace["spans"] if s["span_name"] == "openai.chat.completion")
    assert llm["status_code"] == "OK" and llm["duration"] > 0
    span = client.get(f"/public/v1/spans/{llm['span_id']}", **auth).json()
    assert span["attributes"]["gen_ai"]["prompt"][0]["role"] in ("system", "user")
    assert span["span_attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    metrics = client.get(f"/public/v1/spans/{llm['span_id']}/metrics", **auth).json()
    assert (metrics["prompt_tokens"], metrics["completion_tokens"]) == (1200, 300)
    assert len(metrics["total_cost"].split(".")[1]) == 7
    trace_metrics = client.get(f"/public/v1/traces/{trace_id.hex}/metrics", **auth).json()
    assert trace_metrics["span_count"] == 3 and trace_metrics["total_tokens"] == 3000
    project = client.get("/public/v1/project", **auth).json()
    assert project["name"] == "Alpha"
    other = {"HTTP_X_AGENTOPS_API_KEY": other_api_key}
    assert client.get(f"/public/v1/traces/{trace_id.hex}", **other).status_code == 404
    assert client.get("/public/v1/project").status_code == 401


def test_unended_traces_stay_running(client, api_key):
    send_capture(client, UNENDED, token_for(client, api_key))
    running = Session.objects.filter(end_state__isnull=True)
    assert running.exists()
    assert all(s.root_span is None for s in running)
