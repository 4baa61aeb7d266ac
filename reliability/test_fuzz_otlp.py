"""The OpenTelemetry endpoints fuzzed over HTTP against gunicorn on Postgres (a private
cluster), with the generators of tests/test_otlp_fuzz.py: generated spans as protobuf and as
OTLP/JSON, any bytes with any content headers, and anything on the uploads and the token
endpoint. Every answer is a 2xx or a typed 4xx, never a 5xx; a 200 from /v1/traces accounts for
every span (stored or refused, never more refused than sent); the server logs no traceback; and
afterwards every session's counters equal its stored events. The seed is fixed; the number of
examples per test is FUZZ_EXAMPLES (default 100)."""

import os
import uuid

import orjson
import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from reliability import figures
from reliability.servers import create_project, gunicorn
from tests.otlp_captures import to_otlp_json
from tests.test_otlp_fuzz import build, scalars, spans

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
SEED = 20261130


@pytest.fixture(scope="module")
def otlp_server(private_pg, tmp_path_factory):
    database = private_pg.new_database()
    url = private_pg.url(database)
    key = create_project(url, "Fuzzed OTLP")
    with gunicorn(database_url=url, log_dir=tmp_path_factory.mktemp("otlp"), workers=2) as server:
        server.key = key
        server.token = requests.post(
            f"{server.url}/v3/auth/token", json={"api_key": key}, timeout=10
        ).json()["token"]
        yield server
        assert "Traceback" not in server.output(), server.output()
    with private_pg.connect(database) as conn:
        drifted = conn.execute(
            """
            SELECT s.id FROM agent_sessions_session AS s
            LEFT JOIN events_event AS e ON e.session_id = s.id
            GROUP BY s.id
            HAVING s.llm_count + s.tool_count + s.action_count + s.error_count + s.api_count
                   <> count(e.id)
            """
        ).fetchall()
    assert drifted == [], f"sessions whose counters differ from their events: {drifted}"


def _answer(server, path, body, headers, method="POST"):
    response = requests.request(method, f"{server.url}{path}", data=body, headers=headers,
                                timeout=60)  # fmt: skip
    figures.add("otlp fuzz requests sent")
    figures.add(f"otlp fuzz responses {response.status_code}")
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    return response


@seed(SEED)
@FUZZ
@given(drawn=st.lists(spans, max_size=8), as_json=st.booleans(), auth=st.sampled_from(
    ["token", "key as bearer", "key as header"]))  # fmt: skip
def test_generated_spans_are_stored_or_refused_one_by_one(otlp_server, drawn, as_json, auth):
    message = build(drawn)
    headers = {
        "token": {"Authorization": f"Bearer {otlp_server.token}"},
        "key as bearer": {"Authorization": f"Bearer {otlp_server.key}"},
        "key as header": {"X-Agentops-Api-Key": otlp_server.key},
    }[auth]
    if as_json:
        body = orjson.dumps(to_otlp_json(message))
        headers["Content-Type"] = "application/json"
    else:
        body = message.SerializeToString()
        headers["Content-Type"] = "application/x-protobuf"
    response = _answer(otlp_server, "/v1/traces", body, headers)
    assert response.status_code == 200, response.text[:500]
    if as_json:
        rejected = int(response.json().get("partialSuccess", {}).get("rejectedSpans", 0))
    else:
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        rejected = partial.rejected_spans
    assert 0 <= rejected <= len(drawn)


@seed(SEED)
@FUZZ
@given(
    body=st.binary(max_size=400),
    content_type=st.sampled_from(
        ["application/x-protobuf", "application/json", "text/plain", "", "application/protobuf",
         "application/json; charset=utf-8", "multipart/form-data"]
    ),
    encoding=st.sampled_from(["", "gzip", "deflate", "br", "identity", "gzip, deflate"]),
    auth=st.sampled_from(["key", "none", "garbage", "basic"]),
    path=st.sampled_from(["/v1/traces", "//v1/traces", "/v1/traces/"]),
)  # fmt: skip
def test_any_bytes_and_headers_get_a_typed_answer(
    otlp_server, body, content_type, encoding, auth, path
):
    headers = {"key": {"X-Agentops-Api-Key": otlp_server.key}, "none": {},
               "garbage": {"Authorization": "Bearer junk.junk.junk"},
               "basic": {"Authorization": "Basic eDp5"}}[auth]  # fmt: skip
    headers["Content-Type"] = content_type
    if encoding:
        headers["Content-Encoding"] = encoding
    response = _answer(otlp_server, path, body, headers)
    assert response.status_code in {200, 400, 401, 404, 413, 415}, response.text[:300]
    if response.status_code != 200 and content_type.startswith("application/json"):
        assert set(response.json()) == {"code", "message"}


@seed(SEED)
@FUZZ
@given(
    body=st.one_of(st.binary(max_size=200), st.builds(orjson.dumps, st.dictionaries(
        st.sampled_from(["body", "api_key", "x"]), st.one_of(scalars, st.none()), max_size=2))),
    trace_id=st.one_of(st.none(), st.text(st.characters(codec="ascii", exclude_characters="\r\n"),
                                          max_size=45), st.uuids().map(lambda u: u.hex)),
)  # fmt: skip
def test_uploads_token_and_public_api_never_answer_a_5xx(otlp_server, body, trace_id):
    headers = {"Authorization": f"Bearer {otlp_server.token}"}
    # requests itself refuses a header value with surrounding whitespace before sending it.
    if trace_id is not None and trace_id == trace_id.strip():
        headers["Trace-Id"] = trace_id
    for path in ("/v4/logs/upload/", "/v4/objects/upload/"):
        response = _answer(otlp_server, path, body, {**headers, "Content-Type": "text/plain"})
        assert response.status_code in {200, 400, 413}, (path, response.text[:300])
    response = _answer(otlp_server, "/v3/auth/token", body, {"Content-Type": "application/json"})
    assert response.status_code in {200, 400, 401, 429}, response.text[:300]
    for path in (f"/public/v1/traces/{trace_id or uuid.uuid4().hex}",
                 f"/public/v1/spans/{(trace_id or '')[:16] or 'x'}/metrics"):  # fmt: skip
        response = _answer(otlp_server, path, None, headers, method="GET")
        assert response.status_code in {200, 400, 404}, (path, response.text[:300])
