"""OTLP/HTTP trace requests (`POST /v1/traces`) decoded into plain, bounded spans.

Pure: bytes and two headers in, `DecodedRequest` out, no database and no Django. The endpoint
turns the typed errors into statuses (`OtlpError.http_status`): `UnsupportedMediaType` 415,
`PayloadTooLarge` 413, `UndecodableBody` 400. A span that cannot be stored on its own (bad ids,
absurd times, an unparseable JSON span) is not an error of the request: it is listed in
`DecodedRequest.rejected` so the endpoint refuses that span alone (`partial_success`) and keeps
its neighbours. What is repaired (long strings cut with a marker, NUL replaced, non-finite
numbers nulled, a reversed end clamped) is said in each span's `repairs`.

Sources of the wire facts:
- OTLP/HTTP and its JSON encoding: opentelemetry.io/docs/specs/otlp/ ("JSON Protobuf Encoding":
  lowerCamelCase field names, `traceId`/`spanId`/`parentSpanId` as hex strings, enums as
  integers, 64-bit integers as decimal strings or numbers; receivers ignore unknown fields).
- The messages: `opentelemetry-proto` 1.44.0 (`opentelemetry.proto.trace.v1.trace_pb2`).
- What agentops 0.4.21 sends: shared/protocols/agentops-otlp.md §4 (protobuf, gzip when
  OTEL_EXPORTER_OTLP_COMPRESSION=gzip, ids of 16 and 8 bytes, roots with an empty parent).
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

# The same window v2 events accept (events/validation.py MIN_TIME/MAX_TIME): outside it a time
# is a unit mistake (seconds sent as nanoseconds) or a zero, never a real span.
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TRUNCATION_MARKER = "…[truncated {n} characters]"
DEPTH_MARKER = "[nested deeper than {n} levels]"

KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}


# --- errors of the whole request -----------------------------------------------------------------


class OtlpError(Exception):
    """A request that cannot be decoded at all; `message` is one sentence a person can act on."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UndecodableBody(OtlpError):
    """Bad protobuf, bad JSON, a broken gzip/deflate stream: 400, not retried by senders."""

    http_status = 400


class PayloadTooLarge(OtlpError):
    """The body (after decompression) is over `Limits.max_body_bytes`: 413."""

    http_status = 413


class UnsupportedMediaType(OtlpError):
    """A Content-Type or Content-Encoding OTLP/HTTP does not define: 415."""

    http_status = 415


# --- the normalized shapes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may make us hold. OTel itself bounds nothing by default
    (attribute values are unlimited; the SDK's span limit is 128 attributes and events)."""

    max_body_bytes: int = 10 * 1024 * 1024  # after decompression; the endpoint passes
    #                                          settings.INGEST_MAX_BODY_BYTES
    max_spans: int = 10_000  # the 0.4 SDK sends at most max_queue_size (512) per request
    max_string_chars: int = 64 * 1024
    max_name_chars: int = 1024
    max_array_items: int = 1000
    max_depth: int = 8  # of arrays/kvlists inside one attribute value
    max_attributes: int = 1000
    max_events: int = 1000
    max_links: int = 1000


@dataclass(slots=True)
class SpanEvent:
    """A span event (`exception`, `gen_ai.choice`, `stream_completed` ...)."""

    name: str
    time: datetime | None  # aware UTC; None when the sender gave 0 or an absurd time
    attributes: dict[str, Any]
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class SpanLink:
    trace_id: str  # hex, as sent (a link to an unknown or malformed trace is kept, not refused)
    span_id: str
    trace_state: str
    flags: int
    attributes: dict[str, Any]
    dropped_attributes_count: int = 0


@dataclass(slots=True)
class Span:
    """One span, ids as lowercase hex, times as aware UTC datetimes.

    `attributes`, `resource` and `scope_attributes` are plain dicts of decoded OTLP AnyValues:
    str, bool, int, float (non-finite ones become None), None (an empty AnyValue), list (array),
    dict (kvlist), and bytes as their base64 text (what OTLP/JSON sends for bytes). `resource`
    is shared by the spans of one ResourceSpans: read it, never mutate it.
    """

    index: int  # position in the request, counting every span (rejected ones too), from 0
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None  # 16 hex digits; None for a root
    name: str
    kind: str  # INTERNAL | SERVER | CLIENT | PRODUCER | CONSUMER | UNSPECIFIED
    start: datetime
    end: datetime  # == start when the sender gave none or an earlier one (see repairs)
    start_time_unix_nano: int
    end_time_unix_nano: int  # as sent (0 when missing)
    status_code: str  # UNSET | OK | ERROR
    status_message: str
    attributes: dict[str, Any]
    events: list[SpanEvent]
    links: list[SpanLink]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    scope_attributes: dict[str, Any] = field(default_factory=dict)
    flags: int = 0  # W3C flags + OTLP's parent-is-remote bits (0x100 known, 0x200 remote)
    trace_state: str = ""
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    repairs: list[str] = field(default_factory=list)  # "<where>: <what was changed>"
    wire_bytes: int = 0  # the span's protobuf size (0 when unknown): a bound on its content

    @property
    def is_root(self) -> bool:
        return self.parent_span_id is None

    @property
    def parent_is_remote(self) -> bool:
        """The parent lives in another process (flags 0x300, seen in 05-cross-process)."""
        return bool(self.flags & 0x100) and bool(self.flags & 0x200)


@dataclass(slots=True)
class RejectedSpan:
    index: int
    trace_id: str | None  # hex when it could be read
    span_id: str | None
    reason: str


@dataclass(slots=True)
class DecodedRequest:
    spans: list[Span]
    rejected: list[RejectedSpan]
    encoding: Literal["protobuf", "json"]  # the response must use the request's encoding


# --- entry point ---------------------------------------------------------------------------------

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})


def decode_export_request(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: Limits = Limits(),  # frozen, so one shared default is safe
) -> DecodedRequest:
    """An OTLP `ExportTraceServiceRequest` (protobuf or JSON, identity/gzip/deflate) as spans.

    Raises UnsupportedMediaType (415) for another Content-Type or Content-Encoding,
    PayloadTooLarge (413) when the body or its inflated form is over `limits.max_body_bytes`
    (a compressed body is inflated at most one byte past the limit: a bomb never is whole),
    UndecodableBody (400) when nothing can be read.
    """
    encoding = media_type(content_type)
    raw = decompress(body, content_encoding, limits.max_body_bytes)
    if encoding == "protobuf":
        return _decode_protobuf(raw, limits)
    return _decode_json(raw, limits)


@dataclass(slots=True)
class ScreenedRequest:
    """A request checked span by span without reading attributes (`screen_export_request`).

    `raw` is the inflated body, kept to be decoded in full later; `spans` lists (request
    position, trace id hex, span id hex) of each span the full decode will keep; `rejected` the
    ones it will refuse, with the same reasons.
    """

    raw: bytes
    encoding: Literal["protobuf", "json"]
    spans: list[tuple[int, str, str]]
    rejected: list[RejectedSpan]


def screen_export_request(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: Limits = Limits(),
) -> ScreenedRequest:
    """What `decode_export_request` would keep and refuse, for a fraction of its cost.

    Protobuf: the message is parsed (~1 ms for 512 spans) and only each span's ids and times are
    read, not its ~20 attributes (~13 ms). JSON, rare and already slow, is decoded in full.
    Raises what `decode_export_request` raises, for the same bodies.
    """
    encoding = media_type(content_type)
    raw = decompress(body, content_encoding, limits.max_body_bytes)
    if encoding == "json":
        decoded = _decode_json(raw, limits)
        spans = [(s.index, s.trace_id, s.span_id) for s in decoded.spans]
        return ScreenedRequest(raw, encoding, spans, decoded.rejected)
    request = _parse_protobuf(raw)
    spans: list[tuple[int, str, str]] = []
    rejected: list[RejectedSpan] = []
    index = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for pb in scope_spans.spans:
                raw_trace_id, raw_span_id = pb.trace_id, pb.span_id
                trace_id = raw_trace_id.hex() if len(raw_trace_id) == 16 else None
                span_id = raw_span_id.hex() if len(raw_span_id) == 8 else None
                refusal = _span_refusal(
                    raw_trace_id,
                    raw_span_id,
                    pb.parent_span_id,
                    pb.start_time_unix_nano,
                    pb.end_time_unix_nano,
                    {},
                    index,
                    limits,
                )
                if isinstance(refusal, str):
                    rejected.append(RejectedSpan(index, trace_id, span_id, refusal))
                else:
                    spans.append((index, trace_id, span_id))
                index += 1
    return ScreenedRequest(raw, encoding, spans, rejected)


def media_type(content_type: str | None) -> Literal["protobuf", "json"]:
    """'application/json; charset=utf-8' -> 'json'. OTLP/HTTP defines exactly these two."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in PROTOBUF_TYPES:
        return "protobuf"
    if base in JSON_TYPES:
        return "json"
    raise UnsupportedMediaType(
        f"Content-Type {base or '(none)'!r} is not OTLP: send application/x-protobuf or "
        "application/json."
    )


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body inflated, never past `max_bytes` + 1 bytes of output.

    gzip (also several concatenated members, as `gzip` the tool writes), deflate (zlib-wrapped
    as HTTP defines it, or raw as some clients send it), identity. Unknown codings are a 415
    (RFC 9110 §15.5.16).
    """
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        if len(body) > max_bytes:
            raise PayloadTooLarge(_too_large(max_bytes))
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, zlib.MAX_WBITS | 16, max_bytes, "gzip")
    if coding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate")
        except UndecodableBody:
            return _inflate(body, -zlib.MAX_WBITS, max_bytes, "deflate")
    raise UnsupportedMediaType(
        f"Content-Encoding {coding!r} is not supported: send gzip, deflate or none."
    )


def _too_large(max_bytes: int) -> str:
    return f"The request is over {max_bytes} bytes once decompressed: send fewer spans per request."


def _inflate(data: bytes, wbits: int, max_bytes: int, name: str) -> bytes:
    out = bytearray()
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            while True:
                # max_length bounds each step's output: a bomb stops at the limit + 1 byte. An
                # empty input is fed again while output comes: inflate may hold a pending copy.
                chunk = inflater.decompress(pending, max_bytes + 1 - len(out))
                out += chunk
                if len(out) > max_bytes:
                    raise PayloadTooLarge(_too_large(max_bytes))
                pending = inflater.unconsumed_tail
                if inflater.eof or (not pending and not chunk):
                    break
            if not inflater.eof:
                raise UndecodableBody(f"The {name} stream is truncated.")
            pending = inflater.unused_data
            # Another gzip member may follow (RFC 1952 §2.2); zero padding after the last is
            # tolerated, as gzip(1) does.
            if wbits & 16 and pending.strip(b"\x00"):
                continue
            return bytes(out)
    except zlib.error as exc:
        raise UndecodableBody(f"The body is not valid {name}: {exc}.") from None


# --- protobuf ------------------------------------------------------------------------------------


def _parse_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise UndecodableBody(
            f"The body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}."
        ) from None


def _decode_protobuf(raw: bytes, limits: Limits) -> DecodedRequest:
    request = _parse_protobuf(raw)
    builder = _Builder(limits, "protobuf")
    for resource_spans in request.resource_spans:
        resource_repairs: list[str] = []
        resource = _attributes(
            resource_spans.resource.attributes, "resource", limits, resource_repairs
        )
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_repairs = list(resource_repairs)
            scope_attrs = _attributes(scope.attributes, "scope", limits, scope_repairs)
            for pb in scope_spans.spans:
                builder.add(pb, {}, resource, scope, scope_attrs, scope_repairs)
    return builder.result()


# --- JSON ----------------------------------------------------------------------------------------


def _decode_json(raw: bytes, limits: Limits) -> DecodedRequest:
    """OTLP/JSON, span by span: protobuf's own JSON parser reads each span (types, int64 strings,
    enum names or numbers, camelCase or snake_case keys), so one malformed span costs only itself.
    """
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UndecodableBody(f"The body is not JSON: {exc}.") from None
    if not isinstance(document, dict):
        raise UndecodableBody("The body must be a JSON object with 'resourceSpans'.")
    builder = _Builder(limits, "json")
    for rs_index, resource_spans in enumerate(_list(document, "resourceSpans", "resource_spans")):
        where = f"resourceSpans[{rs_index}]"
        if not isinstance(resource_spans, dict):
            raise UndecodableBody(f"{where} must be an object.")
        resource_msg = Resource()
        resource_error = _parse_into(resource_spans.get("resource") or {}, resource_msg)
        resource_repairs: list[str] = []
        resource = _attributes(resource_msg.attributes, "resource", limits, resource_repairs)
        for ss_index, scope_spans in enumerate(_list(resource_spans, "scopeSpans", "scope_spans")):
            if not isinstance(scope_spans, dict):
                raise UndecodableBody(f"{where}.scopeSpans[{ss_index}] must be an object.")
            scope = InstrumentationScope()
            scope_error = _parse_into(scope_spans.get("scope") or {}, scope)
            scope_repairs = list(resource_repairs)
            scope_attrs = _attributes(scope.attributes, "scope", limits, scope_repairs)
            for span_json in _list(scope_spans, "spans"):
                pb = PbSpan()
                problems: dict[str, str] = {}
                if resource_error or scope_error:
                    problems["envelope"] = (
                        f"its resource cannot be read: {resource_error}"
                        if resource_error
                        else f"its instrumentation scope cannot be read: {scope_error}"
                    )
                elif not isinstance(span_json, dict):
                    problems["envelope"] = "a span must be a JSON object"
                else:
                    converted = _hex_ids_to_base64(span_json, problems)
                    error = _parse_into(converted, pb)
                    if error:
                        problems["envelope"] = f"it cannot be read as an OTLP span: {error}"
                builder.add(pb, problems, resource, scope, scope_attrs, scope_repairs)
    return builder.result()


def _list(obj: dict, *keys: str) -> list:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise UndecodableBody(f"'{key}' must be a JSON array.")
            return value
    return []


def _parse_into(obj: Any, message) -> str | None:
    try:
        json_format.ParseDict(obj, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        return str(exc)[:300]
    return None


_ID_FIELDS = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}


def _hex_ids_to_base64(span_json: dict, problems: dict[str, str]) -> dict:
    """A copy of the span with its ids (and its links' ids) in protobuf-JSON's base64.

    OTLP/JSON sends ids as hex, protobuf's JSON mapping reads bytes as base64. An id sent in
    base64 (an exporter that used the plain protobuf JSON mapping) is accepted too; an id that is
    neither is left out and the problem recorded, to be reported by the span checks.
    """
    converted = dict(span_json)
    for key, size in _ID_FIELDS.items():
        if key in converted:
            converted[key] = _id_to_base64(converted[key], size, key, problems)
    links = converted.get("links")
    if isinstance(links, list):
        converted["links"] = [
            {
                **link,
                **{
                    k: _id_to_base64(link[k], size, f"links.{k}", {})
                    for k, size in _ID_FIELDS.items()
                    if k in link
                },
            }
            if isinstance(link, dict)
            else link
            for link in links
        ]
    return converted


def _id_to_base64(value: Any, size: int, key: str, problems: dict[str, str]) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
        if raw is not None and len(raw) == size:
            return base64.b64encode(raw).decode()
        if raw is None:
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                decoded = None
            if decoded is not None and len(decoded) == size:
                problems[f"{key}:base64"] = f"{key} was base64, not hex"
                return value
    problems[key] = f"{key} must be {size * 2} hexadecimal digits, got {str(value)[:80]!r}"
    return ""


# --- building normalized spans -------------------------------------------------------------------


class _Builder:
    def __init__(self, limits: Limits, encoding: Literal["protobuf", "json"]) -> None:
        self.limits = limits
        self.encoding = encoding
        self.spans: list[Span] = []
        self.rejected: list[RejectedSpan] = []
        self.index = 0

    def result(self) -> DecodedRequest:
        return DecodedRequest(spans=self.spans, rejected=self.rejected, encoding=self.encoding)

    def add(self, pb, problems, resource, scope, scope_attrs, scope_repairs) -> None:
        # Each protobuf field is read once into a local: every read from Python goes through
        # upb and builds a new object (~0.1 µs), and this runs for every span of a request.
        index = self.index
        self.index += 1
        raw_trace_id, raw_span_id, parent = pb.trace_id, pb.span_id, pb.parent_span_id
        trace_id = raw_trace_id.hex() if len(raw_trace_id) == 16 else None
        span_id = raw_span_id.hex() if len(raw_span_id) == 8 else None

        start_nanos, end_nanos = pb.start_time_unix_nano, pb.end_time_unix_nano
        refusal = _span_refusal(
            raw_trace_id, raw_span_id, parent, start_nanos, end_nanos, problems, index, self.limits
        )
        if isinstance(refusal, str):
            return self._refuse(index, trace_id, span_id, refusal)
        start, end, time_repairs = refusal

        repairs = list(scope_repairs)
        if problems:
            repairs.extend(message for key, message in problems.items() if key.endswith(":base64"))
        repairs.extend(time_repairs)

        limits = self.limits
        attributes = _attributes(pb.attributes, "attributes", limits, repairs)
        pb_events, pb_links = pb.events, pb.links
        events = []
        for n, ev in enumerate(pb_events):
            if n >= limits.max_events:
                repairs.append(
                    f"events: {len(pb_events) - n} over the limit of {limits.max_events} left out"
                )
                break
            events.append(
                SpanEvent(
                    name=_text(ev.name, limits.max_name_chars, f"events[{n}].name", repairs),
                    time=_time(ev.time_unix_nano),
                    attributes=_attributes(ev.attributes, f"events[{n}]", limits, repairs),
                    dropped_attributes_count=ev.dropped_attributes_count,
                )
            )
        links = []
        for n, link in enumerate(pb_links):
            if n >= limits.max_links:
                repairs.append(
                    f"links: {len(pb_links) - n} over the limit of {limits.max_links} left out"
                )
                break
            links.append(
                SpanLink(
                    trace_id=link.trace_id.hex(),
                    span_id=link.span_id.hex(),
                    trace_state=_text(
                        link.trace_state, limits.max_name_chars, f"links[{n}].traceState", repairs
                    ),
                    flags=link.flags,
                    attributes=_attributes(link.attributes, f"links[{n}]", limits, repairs),
                    dropped_attributes_count=link.dropped_attributes_count,
                )
            )
        status = pb.status
        self.spans.append(
            Span(
                index=index,
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent.hex() if parent else None,
                name=_text(pb.name, limits.max_name_chars, "name", repairs),
                kind=KIND_NAMES.get(pb.kind, "UNSPECIFIED"),
                start=start,
                end=end,
                start_time_unix_nano=start_nanos,
                end_time_unix_nano=end_nanos,
                status_code=STATUS_NAMES.get(status.code, "UNSET"),
                status_message=_text(
                    status.message, limits.max_string_chars, "status.message", repairs
                ),
                attributes=attributes,
                events=events,
                links=links,
                resource=resource,
                scope_name=_text(scope.name, limits.max_name_chars, "scope.name", repairs),
                scope_version=_text(scope.version, limits.max_name_chars, "scope.version", repairs),
                scope_attributes=scope_attrs,
                flags=pb.flags,
                trace_state=_text(pb.trace_state, limits.max_name_chars, "traceState", repairs),
                dropped_attributes_count=pb.dropped_attributes_count,
                dropped_events_count=pb.dropped_events_count,
                dropped_links_count=pb.dropped_links_count,
                repairs=repairs,
                wire_bytes=pb.ByteSize(),
            )
        )
        return None

    def _refuse(self, index: int, trace_id, span_id, reason: str) -> None:
        self.rejected.append(RejectedSpan(index, trace_id, span_id, reason))


def _span_refusal(
    raw_trace_id: bytes,
    raw_span_id: bytes,
    parent: bytes,
    start_nanos: int,
    end_nanos: int,
    problems: dict[str, str],
    index: int,
    limits: Limits,
) -> str | tuple[datetime, datetime, list[str]]:
    """Why a span cannot be stored (a sentence), or its (start, end, time repairs).

    The one home of the per-span refusals: the full decode and `screen_export_request` (the
    queued write's answer) must refuse exactly the same spans.
    """
    if index >= limits.max_spans:
        return f"over the limit of {limits.max_spans} spans per request"
    if problems:
        if "envelope" in problems:
            return problems["envelope"]
        for key in _ID_FIELDS:
            if key in problems:
                return problems[key]
    reason = _id_problem(raw_trace_id, 16, "traceId") or _id_problem(raw_span_id, 8, "spanId")
    if reason:
        return reason
    if parent and (len(parent) != 8 or not any(parent)):
        # Not taken as a root: that would let a broken child set its session's end state.
        return f"parentSpanId must be empty or 8 bytes (16 hex digits), not {len(parent)}"
    start = _time(start_nanos)
    if start is None:
        return (
            f"startTimeUnixNano {start_nanos} is not a time between "
            f"{MIN_TIME.year} and {MAX_TIME.year} (nanoseconds since 1970)"
        )
    repairs = []
    end = _time(end_nanos)
    if end_nanos == 0:
        end = start
        repairs.append("endTimeUnixNano: missing, set to the start")
    elif end is None:
        return (
            f"endTimeUnixNano {end_nanos} is not a time between "
            f"{MIN_TIME.year} and {MAX_TIME.year} (nanoseconds since 1970)"
        )
    elif end < start:
        end = start
        repairs.append("endTimeUnixNano: earlier than the start, clamped to the start")
    return start, end, repairs


def _id_problem(value: bytes, size: int, name: str) -> str | None:
    if not value:
        return f"{name} is missing"
    if len(value) != size:
        return f"{name} must be {size} bytes ({size * 2} hex digits), not {len(value)}"
    if not any(value):
        return f"{name} is all zeros, which W3C Trace Context defines as invalid"
    return None


def _time(nanos: int) -> datetime | None:
    """Nanoseconds since the Unix epoch as aware UTC (microseconds: what datetime holds)."""
    if not nanos:
        return None
    moment = _EPOCH + timedelta(microseconds=nanos // 1000)
    return moment if MIN_TIME <= moment < MAX_TIME else None


def _text(value: str, limit: int, where: str, repairs: list[str]) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
        repairs.append(f"{where}: NUL characters replaced by U+FFFD")
    if len(value) > limit:
        cut = len(value) - limit
        value = value[:limit] + TRUNCATION_MARKER.format(n=cut)
        repairs.append(f"{where}: truncated from {limit + cut} to {limit} characters")
    return value


def _attributes(kvs, where: str, limits: Limits, repairs: list[str]) -> dict[str, Any]:
    """OTLP KeyValues as a dict; a repeated key keeps its last value (the spec forbids repeats).

    The hot loop of a request (~20 attributes per span): the common case (a short key, a
    string, int, bool or finite double that needs no repair) is read inline; anything else
    goes through _text/_any_value, which repair and say so. Profiled on agentops-shaped
    512-span batches: ~2x faster than calling both for every attribute."""
    out: dict[str, Any] = {}
    max_name, max_chars = limits.max_name_chars, limits.max_string_chars
    if len(kvs) > limits.max_attributes:
        repairs.append(
            f"{where}: {len(kvs) - limits.max_attributes} attributes over the limit of "
            f"{limits.max_attributes} left out"
        )
        kvs = kvs[: limits.max_attributes]
    for kv in kvs:
        key = kv.key
        if len(key) > max_name or "\x00" in key:
            key = _text(key, max_name, f"{where} key", repairs)
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            text = value.string_value
            if len(text) <= max_chars and "\x00" not in text:
                out[key] = text
                continue
        elif which == "int_value":
            out[key] = value.int_value
            continue
        elif which == "bool_value":
            out[key] = value.bool_value
            continue
        out[key] = _any_value(value, f"{where}.{key}", limits, repairs, 1)
    return out


def _any_value(value, where: str, limits: Limits, repairs: list[str], depth: int) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return _text(value.string_value, limits.max_string_chars, where, repairs)
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        number = value.double_value
        if not math.isfinite(number):
            repairs.append(f"{where}: non-finite number {number} replaced by null")
            return None
        return number
    if which == "bytes_value":
        encoded = base64.b64encode(value.bytes_value).decode()
        return _text(encoded, limits.max_string_chars, where, repairs)
    if which in ("array_value", "kvlist_value"):
        if depth > limits.max_depth:
            repairs.append(f"{where}: nested deeper than {limits.max_depth} levels, replaced")
            return DEPTH_MARKER.format(n=limits.max_depth)
        if which == "array_value":
            items = value.array_value.values
            if len(items) > limits.max_array_items:
                repairs.append(
                    f"{where}: array of {len(items)} items cut to {limits.max_array_items}"
                )
            return [
                _any_value(item, f"{where}[{i}]", limits, repairs, depth + 1)
                for i, item in enumerate(items[: limits.max_array_items])
            ]
        entries = value.kvlist_value.values
        if len(entries) > limits.max_array_items:
            repairs.append(
                f"{where}: kvlist of {len(entries)} entries cut to {limits.max_array_items}"
            )
        return {
            _text(kv.key, limits.max_name_chars, f"{where} key", repairs): _any_value(
                kv.value, f"{where}.{kv.key[:80]}", limits, repairs, depth + 1
            )
            for kv in entries[: limits.max_array_items]
        }
    if which == "string_value_strindex":
        # Only meaningful in OTLP profiles (an index into a string table traces do not have).
        repairs.append(f"{where}: a string-table index (profiles only) replaced by null")
    return None


__all__ = [
    "DecodedRequest",
    "Limits",
    "OtlpError",
    "PayloadTooLarge",
    "RejectedSpan",
    "ScreenedRequest",
    "Span",
    "SpanEvent",
    "SpanLink",
    "UndecodableBody",
    "UnsupportedMediaType",
    "decode_export_request",
    "decompress",
    "media_type",
    "screen_export_request",
]
