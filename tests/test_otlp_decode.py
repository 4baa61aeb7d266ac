"""api/otlp/decode.py against the agentops 0.4.21 captures, re-encoded as the SDK sent them
(protobuf) and as OTLP/JSON, plus the bodies a broken or hostile client sends."""

import gzip
import math
import zlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from api.otlp.decode import (
    Limits,
    PayloadTooLarge,
    UndecodableBody,
    UnsupportedMediaType,
    decode_export_request,
    decompress,
)
from tests.otlp_captures import (
    SPAN_CAPTURES,
    captured_spans,
    to_otlp_json,
    to_protobuf,
    trace_requests,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _decode_capture_both_ways(name):
    """Every request of the capture decoded from protobuf and from OTLP/JSON."""
    for request in trace_requests(name):
        message = to_protobuf(request)
        from_pb = decode_export_request(message.SerializeToString(), content_type=PROTOBUF)
        from_json = decode_export_request(
            orjson.dumps(to_otlp_json(message)), content_type="application/json; charset=utf-8"
        )
        yield request, from_pb, from_json


def _comparable(span):
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        span.status_code,
        span.status_message,
        span.attributes,
        [(e.name, e.time, e.attributes) for e in span.events],
        span.resource,
        span.scope_name,
        span.scope_version,
        span.flags,
    )


@pytest.mark.parametrize("name", SPAN_CAPTURES)
def test_every_captured_span_decodes_to_what_was_captured(name):
    decoded = []
    for _, from_pb, from_json in _decode_capture_both_ways(name):
        assert from_pb.rejected == [] and from_json.rejected == []
        assert from_pb.encoding == "protobuf" and from_json.encoding == "json"
        # The two encodings of one request give the same spans.
        assert [_comparable(s) for s in from_pb.spans] == [_comparable(s) for s in from_json.spans]
        decoded.extend(from_pb.spans)
    captured = captured_spans(name)
    assert len(decoded) == len(captured) > 0
    for span, raw in zip(decoded, captured, strict=True):
        assert span.trace_id == raw["trace_id"]
        assert span.span_id == raw["span_id"]
        assert span.parent_span_id == raw["parent_span_id"]
        assert span.name == raw["name"]
        assert span.kind == raw["kind"]
        assert span.status_code == raw["status"]["code"]
        assert span.status_message == raw["status"]["message"]
        assert span.attributes == raw["attributes"]
        assert span.flags == raw["flags"]
        assert span.start.tzinfo is UTC and span.end.tzinfo is UTC
        assert span.start_time_unix_nano == raw["start_time_unix_nano"]
        assert span.start == EPOCH + timedelta(microseconds=raw["start_time_unix_nano"] // 1000)
        assert span.end == EPOCH + timedelta(microseconds=raw["end_time_unix_nano"] // 1000)
        assert [e.name for e in span.events] == [e["name"] for e in raw["events"]]
        assert [e.attributes for e in span.events] == [e["attributes"] for e in raw["events"]]
        assert span.resource["service.name"] == "agentops"
        assert "agentops" in span.resource["imported_libraries"]
        assert span.repairs == []


def test_llm_capture_keeps_types_scope_and_span_events():
    spans = [
        s for _, pb, _ in _decode_capture_both_ways("04-llm-openai-chat.json") for s in pb.spans
    ]
    plain, streamed, root = spans
    assert (plain.scope_name, plain.scope_version) == ("openai", "3.57.0")
    assert (root.scope_name, root.scope_version) == ("agentops", "")
    assert plain.attributes["gen_ai.request.max_tokens"] == 50
    assert plain.attributes["gen_ai.request.temperature"] == 0.2
    assert plain.attributes["gen_ai.request.streaming"] is False
    assert root.attributes["agentops.tags"] == ["llm"]
    assert root.is_root and not plain.is_root
    assert streamed.events[1].name == "stream_completed"
    assert streamed.events[1].attributes["had_tool_calls"] is False
    assert streamed.events[0].time == datetime(2026, 11, 30, 10, 58, 30, 625046, tzinfo=UTC)


def test_cross_process_child_knows_its_parent_is_remote():
    spans = [
        s
        for _, pb, _ in _decode_capture_both_ways("05-cross-process-traceparent.json")
        for s in pb.spans
    ]
    remote = {s.name for s in spans if s.parent_is_remote}
    assert remote == {"search.tool", "child-trace.session"}


# --- encodings -----------------------------------------------------------------------------------


def _capture_bytes():
    return to_protobuf(
        trace_requests("03-new-api-decorators-and-errors.json")[0]
    ).SerializeToString()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as HTTP defines deflate
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send
        ("identity", lambda b: b),
        ("GZIP ", gzip.compress),
    ],
)
def test_compressed_bodies_decode_like_plain_ones(encoding, compress):
    body = _capture_bytes()
    plain = decode_export_request(body, content_type=PROTOBUF)
    packed = decode_export_request(compress(body), content_type=PROTOBUF, content_encoding=encoding)
    assert [s.span_id for s in packed.spans] == [s.span_id for s in plain.spans]
    assert len(packed.spans) == 7


def test_concatenated_gzip_members_are_one_body():
    body = _capture_bytes()
    half = len(body) // 2
    assert (
        decompress(gzip.compress(body[:half]) + gzip.compress(body[half:]), "gzip", 10**6) == body
    )


def test_a_gzip_bomb_is_cut_at_the_limit_not_inflated():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)  # 50 MiB in ~50 KB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge) as caught:
        decode_export_request(
            bomb, content_type=PROTOBUF, content_encoding="gzip", limits=Limits(max_body_bytes=1024)
        )
    assert caught.value.http_status == 413


def test_a_deflate_bomb_is_cut_too():
    with pytest.raises(PayloadTooLarge):
        decompress(zlib.compress(b"a" * 10_000_000), "deflate", 4096)


def test_a_body_exactly_at_the_limit_is_taken():
    assert decompress(gzip.compress(b"x" * 4096), "gzip", 4096) == b"x" * 4096
    with pytest.raises(PayloadTooLarge):
        decompress(b"x" * 4097, None, 4096)


def test_truncated_and_broken_gzip_are_400():
    packed = gzip.compress(_capture_bytes())
    with pytest.raises(UndecodableBody, match="truncated"):
        decompress(packed[: len(packed) // 2], "gzip", 10**6)
    with pytest.raises(UndecodableBody, match="gzip") as caught:
        decompress(b"not gzip at all", "gzip", 10**6)
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/grpc", "", None, "application/xml"]
)
def test_other_content_types_are_415(content_type):
    with pytest.raises(UnsupportedMediaType) as caught:
        decode_export_request(_capture_bytes(), content_type=content_type)
    assert caught.value.http_status == 415
    assert "application/x-protobuf" in caught.value.message


def test_unknown_content_encoding_is_415():
    with pytest.raises(UnsupportedMediaType, match="br"):
        decode_export_request(_capture_bytes(), content_type=PROTOBUF, content_encoding="br")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff garbage"),
        (JSON, b"{not json"),
        (JSON, b"[1, 2]"),
        (JSON, b'{"resourceSpans": {"not": "a list"}}'),
        (JSON, b'{"resourceSpans": ["not an object"]}'),
    ],
)
def test_garbage_is_400_with_a_message(content_type, body):
    with pytest.raises(UndecodableBody) as caught:
        decode_export_request(body, content_type=content_type)
    assert caught.value.http_status == 400
    assert caught.value.message


def test_empty_bodies_are_empty_requests():
    assert decode_export_request(b"", content_type=PROTOBUF).spans == []
    assert decode_export_request(b"{}", content_type=JSON).spans == []


# --- one bad span among good ones ----------------------------------------------------------------


def _span_json(**overrides):
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "good",
        "kind": 1,
        "startTimeUnixNano": "1796036310567897748",
        "endTimeUnixNano": "1796036310578581281",
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}],
    }
    span.update(overrides)
    return {k: v for k, v in span.items() if v is not None}


def _json_request(*spans, resource=None):
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": resource or {"attributes": []},
                    "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
                }
            ]
        }
    )


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"traceId": None}, "traceId is missing"),
        ({"traceId": "abc"}, "traceId must be 32 hexadecimal digits"),
        ({"traceId": "zz" * 16}, "traceId must be 32 hexadecimal digits"),
        ({"traceId": "00" * 16}, "all zeros"),
        ({"spanId": "0102"}, "spanId must be 16 hexadecimal digits"),
        ({"spanId": None}, "spanId is missing"),
        ({"parentSpanId": "01"}, "parentSpanId must be 16 hexadecimal digits"),
        ({"startTimeUnixNano": "1796036310"}, "startTimeUnixNano 1796036310 is not a time"),
        ({"startTimeUnixNano": None}, "startTimeUnixNano 0 is not a time"),
        ({"endTimeUnixNano": "99999999999999999999"}, "cannot be read"),
        ({"endTimeUnixNano": "4796036310567897748"}, "endTimeUnixNano 4796036310567897748"),
        ({"name": {"not": "a string"}}, "cannot be read as an OTLP span"),
        ({"attributes": "not a list"}, "cannot be read as an OTLP span"),
    ],
)
def test_a_bad_span_is_refused_alone(bad, reason):
    good_before = _span_json(spanId="1111111111111111", name="before")
    good_after = _span_json(spanId="2222222222222222", name="after")
    decoded = decode_export_request(
        _json_request(good_before, _span_json(**bad), good_after), content_type=JSON
    )
    assert [s.name for s in decoded.spans] == ["before", "after"]
    assert [r.index for r in decoded.rejected] == [1]
    assert reason in decoded.rejected[0].reason


def test_a_bad_span_in_protobuf_is_refused_alone():
    message = to_protobuf(trace_requests("03-new-api-decorators-and-errors.json")[0])
    spans = message.resource_spans[0].scope_spans[0].spans
    spans[1].span_id = b"\x01\x02\x03"  # 3 bytes
    spans[2].start_time_unix_nano = 17  # 17 ns after 1970
    decoded = decode_export_request(message.SerializeToString(), content_type=PROTOBUF)
    assert len(decoded.spans) == 5
    assert [(r.index, r.trace_id) for r in decoded.rejected] == [
        (1, "bf8f48faab5a2e95cc96834a569c20dd"),
        (2, "bf8f48faab5a2e95cc96834a569c20dd"),
    ]
    assert "spanId must be 8 bytes" in decoded.rejected[0].reason
    assert decoded.rejected[1].span_id == "61935a17e8d26347"


def test_spans_over_the_per_request_limit_are_refused_not_the_request():
    spans = [_span_json(spanId=f"{n + 1:016x}") for n in range(5)]
    decoded = decode_export_request(
        _json_request(*spans), content_type=JSON, limits=Limits(max_spans=3)
    )
    assert len(decoded.spans) == 3
    assert [r.index for r in decoded.rejected] == [3, 4]


def test_an_unreadable_resource_refuses_its_spans_only():
    body = orjson.dumps(
        {
            "resourceSpans": [
                {"resource": {"attributes": "nope"}, "scopeSpans": [{"spans": [_span_json()]}]},
                {"resource": {}, "scopeSpans": [{"spans": [_span_json(name="kept")]}]},
            ]
        }
    )
    decoded = decode_export_request(body, content_type=JSON)
    assert [s.name for s in decoded.spans] == ["kept"]
    assert "resource" in decoded.rejected[0].reason


# --- JSON encoding details -----------------------------------------------------------------------


def test_json_accepts_snake_case_enum_names_numbers_and_base64_ids():
    span = {
        "trace_id": "W47/95gDgQPSabYzgT/GDA==",  # base64 of 5b8efff7...: said, not refused
        "span_id": "eee19b7ec3c1b174",
        "name": "s",
        "kind": "SPAN_KIND_CLIENT",
        "start_time_unix_nano": 1796036310567897748,
        "end_time_unix_nano": "1796036310578581281",
        "status": {"code": "STATUS_CODE_ERROR", "message": "bad"},
        "attributes": [
            {"key": "n", "value": {"intValue": "12"}},
            {"key": "big", "value": {"intValue": "9007199254740993"}},
            {"key": "d", "value": {"doubleValue": 1.5}},
            {"key": "inf", "value": {"doubleValue": "Infinity"}},
            {"key": "b", "value": {"bytesValue": "AAEC"}},
            {
                "key": "kv",
                "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}},
            },
            {"key": "empty", "value": {}},
            {"key": "unknown-field-is-ignored", "value": {"stringValue": "x"}, "extra": 1},
        ],
        "someFutureField": {"ignored": True},
    }
    decoded = decode_export_request(_json_request(span), content_type=JSON)
    assert decoded.rejected == []
    (got,) = decoded.spans
    assert got.trace_id == "5b8efff798038103d269b633813fc60c"
    assert got.parent_span_id is None
    assert (got.kind, got.status_code, got.status_message) == ("CLIENT", "ERROR", "bad")
    assert got.attributes == {
        "n": 12,
        "big": 9007199254740993,
        "d": 1.5,
        "inf": None,
        "b": "AAEC",
        "kv": {"a": True},
        "empty": None,
        "unknown-field-is-ignored": "x",
    }
    assert any("base64, not hex" in r for r in got.repairs)
    assert any("non-finite number inf replaced by null" in r for r in got.repairs)


def test_an_unknown_kind_name_is_unspecified_not_refused():
    # Receivers ignore what a newer schema may add (OTLP spec); the span is kept.
    (got,) = decode_export_request(
        _json_request(_span_json(kind="SPAN_KIND_FROM_THE_FUTURE")), content_type=JSON
    ).spans
    assert got.kind == "UNSPECIFIED"


def test_an_empty_parent_id_is_a_root():
    (got,) = decode_export_request(
        _json_request(_span_json(parentSpanId="")), content_type=JSON
    ).spans
    assert got.is_root


# --- bounds and repairs --------------------------------------------------------------------------


def _pb_with_attribute(setter):
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes(range(1, 17))
    span.span_id = bytes(range(1, 9))
    span.start_time_unix_nano = 1796036310567897748
    span.end_time_unix_nano = 1796036310567897748
    kv = span.attributes.add()
    kv.key = "a"
    setter(kv.value)
    return message, span


def test_long_strings_are_cut_with_a_marker_and_said():
    message, _ = _pb_with_attribute(lambda v: setattr(v, "string_value", "x" * 100))
    (span,) = decode_export_request(
        message.SerializeToString(), content_type=PROTOBUF, limits=Limits(max_string_chars=10)
    ).spans
    assert span.attributes["a"] == "x" * 10 + "…[truncated 90 characters]"
    assert span.repairs == ["attributes.a: truncated from 100 to 10 characters"]


def test_nul_characters_are_replaced_and_said():
    message, span = _pb_with_attribute(lambda v: setattr(v, "string_value", "a\x00b"))
    span.name = "n\x00"
    (got,) = decode_export_request(message.SerializeToString(), content_type=PROTOBUF).spans
    assert got.attributes["a"] == "a\ufffdb"
    assert got.name == "n\ufffd"
    assert len(got.repairs) == 2


def test_arrays_and_nesting_are_bounded():
    def deep(value, levels=20):
        for _ in range(levels):
            value = value.array_value.values.add()
        value.string_value = "bottom"

    message, span = _pb_with_attribute(deep)
    long_array = span.attributes.add()
    long_array.key = "long"
    for n in range(50):
        long_array.value.array_value.values.add().int_value = n
    (got,) = decode_export_request(
        message.SerializeToString(),
        content_type=PROTOBUF,
        limits=Limits(max_array_items=5, max_depth=3),
    ).spans
    assert got.attributes["long"] == [0, 1, 2, 3, 4]
    value, depth = got.attributes["a"], 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert depth == 3 and value == "[nested deeper than 3 levels]"
    assert any("array of 50 items cut to 5" in r for r in got.repairs)
    assert any("nested deeper than 3 levels" in r for r in got.repairs)


def test_too_many_attributes_are_cut_and_said():
    message, span = _pb_with_attribute(lambda v: setattr(v, "int_value", 1))
    for n in range(20):
        kv = span.attributes.add()
        kv.key = f"k{n}"
        kv.value.int_value = n
    (got,) = decode_export_request(
        message.SerializeToString(), content_type=PROTOBUF, limits=Limits(max_attributes=4)
    ).spans
    assert list(got.attributes) == ["a", "k0", "k1", "k2"]
    assert "17 attributes over the limit of 4" in got.repairs[0]


def test_nan_double_is_nulled():
    message, _ = _pb_with_attribute(lambda v: setattr(v, "double_value", math.nan))
    (got,) = decode_export_request(message.SerializeToString(), content_type=PROTOBUF).spans
    assert got.attributes["a"] is None


def test_reversed_and_missing_end_times_are_clamped_and_said():
    message, span = _pb_with_attribute(lambda v: setattr(v, "bool_value", True))
    span.end_time_unix_nano = span.start_time_unix_nano - 5_000_000_000
    (got,) = decode_export_request(message.SerializeToString(), content_type=PROTOBUF).spans
    assert got.end == got.start
    assert got.repairs == ["endTimeUnixNano: earlier than the start, clamped to the start"]
    span.end_time_unix_nano = 0
    (got,) = decode_export_request(message.SerializeToString(), content_type=PROTOBUF).spans
    assert got.end == got.start and "missing" in got.repairs[0]


def test_bytes_values_are_base64_text():
    message, _ = _pb_with_attribute(lambda v: setattr(v, "bytes_value", b"\x00\x01\xff"))
    (got,) = decode_export_request(message.SerializeToString(), content_type=PROTOBUF).spans
    assert got.attributes["a"] == "AAH/"


# --- anything a client can send is a request or a typed error -------------------------------------


def test_random_bodies_are_decoded_or_refused_with_a_typed_error():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from api.otlp.decode import OtlpError

    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats()
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
        ),
        max_leaves=8,
    )
    span_fields = st.fixed_dictionaries(
        {},
        optional={
            "traceId": st.text(max_size=40) | st.just("5b8efff798038103d269b633813fc60c"),
            "spanId": st.text(max_size=20) | st.just("eee19b7ec3c1b174"),
            "parentSpanId": st.text(max_size=20),
            "name": json_values,
            "kind": json_values,
            "startTimeUnixNano": json_values | st.just("1796036310567897748"),
            "endTimeUnixNano": json_values,
            "attributes": json_values,
            "events": json_values,
            "links": json_values,
            "status": json_values,
        },
    )

    def check(body, content_type, encoding=None):
        try:
            decoded = decode_export_request(
                body, content_type=content_type, content_encoding=encoding
            )
        except OtlpError as exc:
            assert exc.http_status in (400, 413, 415) and exc.message
            return
        for span in decoded.spans:
            assert len(span.trace_id) == 32 and len(span.span_id) == 16
            assert span.start <= span.end

    @settings(max_examples=300, deadline=None)
    @given(body=st.binary(max_size=300), encoding=st.sampled_from([None, "gzip", "deflate"]))
    def random_bytes(body, encoding):
        check(body, PROTOBUF, encoding)
        check(body, JSON, encoding)

    @settings(max_examples=300, deadline=None)
    @given(spans=st.lists(span_fields, max_size=4), resource=json_values)
    def random_json_spans(spans, resource):
        document = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
        check(orjson.dumps(document), JSON)

    random_bytes()
    random_json_spans()
