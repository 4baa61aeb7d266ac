"""POST /v1/traces: OTLP/HTTP trace export (protobuf or JSON; gzip, deflate or none).

Thin: credentials (projects/ingest_auth.py), decoding (api/otlp/decode.py), the write
(events/otlp_ingest.py; by default queued behind a durable copy, events/otlp_queue.py), and the
answer in the request's own encoding, as OTLP/HTTP requires:
`ExportTraceServiceResponse` (with `partial_success{rejected_spans, error_message}` when some
spans were refused, the rest stored), or a `google.rpc.Status` for a refused request (400 body
unreadable, 401 credentials, 413 too large once inflated, 415 media type, 429 throttled, 503
database away). Never a 5xx for what a client sends: agentops 0.4 retries every 5xx for 10 s
while its `end_trace()` blocks (shared/protocols/agentops-otlp.md §4, §10).
"""

import logging

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework import exceptions

from agentops_site.errors import RETRY_AFTER_SECONDS
from api.otlp.decode import (
    OtlpError,
    PayloadTooLarge,
    decode_export_request,
    media_type,
)
from events import otlp_queue
from events.otlp_ingest import ingest_traces, request_limits
from projects.auth import KEY_REVOKED_MESSAGE, KeyRevoked
from projects.ingest_auth import ingest_grant
from projects.throttle import record_auth_failure

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code of each status we answer (OTLP/HTTP: the body of a failure is a Status).
RPC_CODE = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}


@csrf_exempt
def export_traces(request):
    if request.method != "POST":
        return status_response(405, "Send spans with POST.", "json")
    content_type = request.META.get("CONTENT_TYPE")
    try:
        encoding = media_type(content_type)
    except OtlpError:
        encoding = "json"  # an answer the sender can read, whatever it sent
    try:
        grant = ingest_grant(request, check_key=False)
        body = read_body(request, settings.INGEST_MAX_BODY_BYTES)
        content_encoding = request.META.get("HTTP_CONTENT_ENCODING")
        if otlp_queue.queued():
            result = otlp_queue.accept(
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                limits=request_limits(),
                project_id=grant.project_id,
                key_id=grant.key_id,
            )
        else:
            decoded = decode_export_request(
                body,
                content_type=content_type,
                content_encoding=content_encoding,
                limits=request_limits(),
            )
            result = ingest_traces(decoded, project_id=grant.project_id, key_id=grant.key_id)
    except OtlpError as exc:
        return status_response(exc.http_status, exc.message, encoding)
    except KeyRevoked:
        record_auth_failure(request)
        return status_response(401, KEY_REVOKED_MESSAGE, encoding)
    except exceptions.Throttled as exc:
        return status_response(429, str(exc.detail), encoding, retry_after=exc.wait)
    except exceptions.AuthenticationFailed as exc:
        return status_response(401, str(exc.detail), encoding)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("database unavailable during /v1/traces: %s", exc)
        return status_response(
            503,
            "The database is temporarily unavailable; retry shortly.",
            encoding,
            retry_after=RETRY_AFTER_SECONDS,
        )
    if result.rejected:
        logger.info(
            "/v1/traces: %d span(s) stored, %d refused (%s)",
            result.accepted_spans,
            len(result.rejected),
            result.rejected[0]["reason"],
        )
    message = ExportTraceServiceResponse()
    if result.rejected:
        message.partial_success.rejected_spans = len(result.rejected)
        message.partial_success.error_message = result.error_message()
    if encoding == "protobuf":
        return HttpResponse(message.SerializeToString(), content_type=PROTOBUF)
    return HttpResponse(orjson.dumps(json_format.MessageToDict(message)), content_type=JSON)


def read_body(request, limit: int) -> bytes:
    """The raw body, never more than `limit` + 1 bytes read (PayloadTooLarge past it)."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is over {limit} bytes: send fewer spans.")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is over {limit} bytes: send fewer spans.")
    return body


def status_response(
    http_status: int, message: str, encoding: str, *, retry_after: int | None = None
) -> HttpResponse:
    """A google.rpc.Status {code, message} in the request's encoding (protobuf written by hand:
    field 1 varint, field 2 string; the message class lives in googleapis-common-protos, a
    dependency for two fields)."""
    code = RPC_CODE.get(http_status, 2)
    if encoding == "protobuf":
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        response = HttpResponse(body, status=http_status, content_type=PROTOBUF)
    else:
        response = HttpResponse(
            orjson.dumps({"code": code, "message": message}), status=http_status, content_type=JSON
        )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    if http_status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="agentops"'
    return response


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
