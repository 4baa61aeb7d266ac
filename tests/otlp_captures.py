"""The decoded agentops 0.4.21 captures (tests/fixtures/otlp/, copied from
shared/protocols/otlp-captures/) encoded back into the bytes the SDK sent.

Each capture request lists `ResourceSpans` with ids as hex and an `attribute_types` map naming the
AnyValue field each span attribute travelled in; resource and span-event attributes carry no
types, so theirs are inferred from the JSON value (bool, int, float, str, list of those).
`to_protobuf` rebuilds the `ExportTraceServiceRequest` with opentelemetry-proto; `to_otlp_json`
gives the same request in the OTLP/JSON encoding (hex ids, camelCase, int64 as strings).
"""

import json
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
SPAN_CAPTURES = (
    "02-legacy-session-success-and-fail.json",
    "03-new-api-decorators-and-errors.json",
    "04-llm-openai-chat.json",
    "05-cross-process-traceparent.json",
    "06-unended-traces.json",
)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def trace_requests(name: str) -> list[dict]:
    """The capture's POST /v1/traces requests, in the order they were sent (06 is several runs)."""
    capture = load(name)
    if "requests" in capture:
        runs = [capture["requests"]]
    else:
        runs = [v for k, v in capture.items() if k != "note"]
    return [r for run in runs for r in run if r.get("path") == "/v1/traces"]


def _set_value(any_value, value, field: str | None = None) -> None:
    if field is None:
        if isinstance(value, bool):
            field = "bool_value"
        elif isinstance(value, int):
            field = "int_value"
        elif isinstance(value, float):
            field = "double_value"
        elif isinstance(value, list):
            field = "array_value"
        else:
            field = "string_value"
    if field == "array_value":
        for item in value:
            _set_value(any_value.array_value.values.add(), item)
    else:
        setattr(any_value, field, value)


def _set_attributes(target, attributes: dict, types: dict | None = None) -> None:
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        _set_value(kv.value, value, (types or {}).get(key))


def to_protobuf(request: dict) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    for resource_spans in request["body"]:
        rs = message.resource_spans.add()
        rs.schema_url = resource_spans.get("schema_url", "")
        _set_attributes(rs.resource.attributes, resource_spans["resource"])
        for scope_spans in resource_spans["scopes"]:
            ss = rs.scope_spans.add()
            ss.scope.name = scope_spans["scope"]["name"]
            ss.scope.version = scope_spans["scope"]["version"]
            for captured in scope_spans["spans"]:
                span = ss.spans.add()
                span.trace_id = bytes.fromhex(captured["trace_id"])
                span.span_id = bytes.fromhex(captured["span_id"])
                if captured["parent_span_id"]:
                    span.parent_span_id = bytes.fromhex(captured["parent_span_id"])
                span.flags = captured["flags"]
                span.name = captured["name"]
                span.kind = Span.SpanKind.Value(f"SPAN_KIND_{captured['kind']}")
                span.start_time_unix_nano = captured["start_time_unix_nano"]
                span.end_time_unix_nano = captured["end_time_unix_nano"]
                _set_attributes(
                    span.attributes, captured["attributes"], captured["attribute_types"]
                )
                span.dropped_attributes_count = captured["dropped_attributes_count"]
                for captured_event in captured["events"]:
                    event = span.events.add()
                    event.name = captured_event["name"]
                    event.time_unix_nano = captured_event["time_unix_nano"]
                    _set_attributes(event.attributes, captured_event["attributes"])
                span.status.code = Status.StatusCode.Value(
                    f"STATUS_CODE_{captured['status']['code']}"
                )
                span.status.message = captured["status"]["message"]
    return message


def _ids_to_hex(obj):
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex ids."""
    import base64

    if isinstance(obj, dict):
        return {
            k: (
                base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else _ids_to_hex(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_ids_to_hex(v) for v in obj]
    return obj


def to_otlp_json(message: ExportTraceServiceRequest) -> dict:
    """OTLP/JSON: camelCase names, int64 as strings (protobuf's mapping), enums as integers and
    ids as hex (what the OTLP spec changes in that mapping)."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    return _ids_to_hex(document)


def captured_spans(name: str) -> list[dict]:
    return [
        span
        for request in trace_requests(name)
        for resource_spans in request["body"]
        for scope_spans in resource_spans["scopes"]
        for span in scope_spans["spans"]
    ]
