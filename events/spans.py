"""OpenTelemetry spans (api/otlp/decode.py's `Span`) mapped onto our sessions and events.

Pure: no database. A span gives a `MappedSpan`: the rows to insert (the span's own event, and one
`errors` event when its status is ERROR), the session it belongs to (`UUID(trace id)`) and, for
the root span only, the session fields it sets. The rules are shared/protocols/agentops-otlp.md
§9-§11 (facts measured on agentops 0.4.21; the GenAI vocabularies of §8 from the OpenTelemetry
GenAI semantic conventions, OpenInference's spec/semantic_conventions.md and OpenLLMetry's
opentelemetry-semantic-conventions-ai). Every span's whole attributes, span events, links,
status, scope and resource stay in its event's payload under "otel", so this mapping can be
redone from stored rows when it is found wrong.

Rows go through `events.validation.validate_event`, the v2 rules, after the repairs v2 clients
are not granted (a long name cut with a marker, an out-of-range token count nulled): an OTLP
span is never refused over a label. LLM costs come from `analytics.pricing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from hashlib import sha1
from typing import Any

import orjson

from analytics.pricing import price_llm_call
from api.otlp.decode import Span
from events.models import CostSource
from events.validation import (
    MAX_EVENT_JSON_BYTES,
    MAX_INT32,
    MAX_JSON_DEPTH,
    MAX_NAME,
    EventRow,
    FieldErrors,
    json_depth_exceeds,
    parse_cost,
    validate_event,
)
from sessions.models import MAX_REASON, MAX_TAG_LENGTH, MAX_TAGS, EndState

# Fixed forever: every stored OTLP event id is derived from it. uuid5(NAMESPACE_URL,
# "https://agentops-selfhosted/otlp/span-event").
OTLP_EVENT_NAMESPACE = uuid.UUID("2d1c5bb0-5b57-5a4b-9a0f-6f1d8c4e2a71")

_NAMESPACE_BYTES = OTLP_EVENT_NAMESPACE.bytes

ROLE_EVENT = "event"
ROLE_ERROR = "error"


@lru_cache(maxsize=4096)  # a request's spans share a few traces; called twice per span
def session_id_of(trace_id: str) -> uuid.UUID:
    """The session of a trace: its 16 bytes as a UUID (decision §11.1; the SDK prints the same
    32 hex digits)."""
    return uuid.UUID(hex=trace_id)


def event_id_of(trace_id: str, span_id: str, role: str = ROLE_EVENT) -> uuid.UUID:
    """The event id of a span: uuid5 over "<trace hex>:<span hex>:<role>".

    Stable: a function of the span's key alone, so a resent span (an exporter's retry, a
    collector in between) has the id of its first copy and the insert-or-ignore path stores it
    once. Collision-safe: (trace id, span id) is unique per span by W3C Trace Context, the role
    separates a span's event from its error, and SHA-1 leaves 122 random bits, so two keys
    meet by chance about once in 2^61 ids. The version nibble (5) differs from the SDKs' uuid4
    ids, and a client cannot aim a v2 event at a span's id without knowing its random trace and
    span ids in advance.
    """
    # uuid.uuid5 written out: it re-imports hashlib and re-encodes the namespace on every call,
    # ~8 % of mapping time under cProfile at one call per span (tests/test_otlp_mapping.py
    # checks the ids are equal).
    digest = sha1(_NAMESPACE_BYTES + f"{trace_id}:{span_id}:{role}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


@dataclass(slots=True)
class RootFields:
    """What the trace's true root span (no parent) sets on its session; nothing else sets them."""

    end_state: str  # Success | Fail | Indeterminate
    end_state_reason: str  # "" when none
    raw_end_state: str | None  # agentops.session.end_state as sent, None when absent
    tags: list[str]
    host_env: dict | None
    init_timestamp: datetime  # the root's start: the session starts no later than this
    end_timestamp: datetime
    metadata: dict  # trace.metadata.*, agentops.legacy.*, dict tags, session.id, user.id ...
    # The root span whole (the "otel" payload shape) when no event carries it: an AgentOps
    # session root is the session itself, not an event (§9: only non-root spans are events).
    span: dict | None = None


@dataclass(slots=True)
class MappedSpan:
    trace_id: str
    span_id: str
    session_id: uuid.UUID
    started: datetime  # the span's start: the session's init_timestamp is the min over spans
    sdk_version: str  # "<telemetry.sdk.name>/<version>" from the resource, "" when not sent
    rows: list[EventRow]  # the span's event (absent for an AgentOps session root), then its error
    root: RootFields | None
    rejected: list[dict] = field(default_factory=list)  # {"role", "errors"} validation refused
    repairs: list[str] = field(default_factory=list)  # decode's and the mapping's


# --- vocabularies (§9 "Event type of a non-root span") -------------------------------------------

_AGENTOPS_KIND = {"llm": "llms", "tool": "tools"}
_OPENINFERENCE_KIND = {"LLM": "llms", "EMBEDDING": "llms", "TOOL": "tools"}
_TRACELOOP_KIND = {"tool": "tools"}
_GENAI_OPERATION = {
    "chat": "llms",
    "text_completion": "llms",
    "generate_content": "llms",
    "embeddings": "llms",
    "execute_tool": "tools",
}
_LLM_SNIFF_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0.content",
    "gen_ai.input.messages",
    "llm.request.type",
    "llm.model_name",
)


def event_type_of(attributes: Mapping[str, Any]) -> str:
    """llms | tools | actions: the first explicit kind wins; only a span with none is sniffed
    (an AgentOps @tool(cost=) span carries gen_ai.usage.total_cost and stays a tool)."""
    kind = attributes.get("agentops.span.kind")
    if isinstance(kind, str) and kind:
        return _AGENTOPS_KIND.get(kind.lower(), "actions")
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        return _OPENINFERENCE_KIND.get(kind.upper(), "actions")
    kind = attributes.get("traceloop.span.kind")
    if isinstance(kind, str) and kind:
        return _TRACELOOP_KIND.get(kind.lower(), "actions")
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return _GENAI_OPERATION.get(operation.lower(), "actions")
    if any(key in attributes for key in _LLM_SNIFF_KEYS) or any(
        key.startswith("llm.token_count.") for key in attributes
    ):
        return "llms"
    if "tool.name" in attributes or "gen_ai.tool.name" in attributes:
        return "tools"
    return "actions"


def is_agent_span(attributes: Mapping[str, Any]) -> bool:
    """An agent in any of the vocabularies: its events are the agent's (agent_id)."""
    return (
        _lower(attributes.get("agentops.span.kind")) == "agent"
        or _lower(attributes.get("openinference.span.kind")) == "agent"
        or _lower(attributes.get("traceloop.span.kind")) == "agent"
        or _lower(attributes.get("gen_ai.operation.name")) in ("invoke_agent", "create_agent")
    )


def is_agentops_session_span(attributes: Mapping[str, Any]) -> bool:
    return _lower(attributes.get("agentops.span.kind")) == "session"


def _lower(value) -> str:
    return value.lower() if isinstance(value, str) else ""


# --- the mapping ---------------------------------------------------------------------------------

Ancestors = Mapping[tuple[str, str], tuple[str | None, bool]]


def map_spans(
    spans: Iterable[Span], *, known_ancestors: Ancestors | Callable | None = None
) -> list[MappedSpan]:
    """Map a request's spans, in order; a repeated (trace id, span id) keeps its first copy.

    `agent_id` is the event id of the nearest agent span among the span itself and its
    ancestors, looked up in this batch and then in `known_ancestors`: a mapping (or a callable
    taking (trace_id, span_id)) giving (parent_span_id, is_agent) of spans stored earlier; the
    write path may pass one read from Event.span_id/parent_span_id, or nothing.
    """
    spans = list(spans)
    in_batch: dict[tuple[str, str], tuple[str | None, bool]] = {}
    for span in spans:
        in_batch.setdefault(
            (span.trace_id, span.span_id), (span.parent_span_id, is_agent_span(span.attributes))
        )

    def lookup(trace_id: str, span_id: str):
        found = in_batch.get((trace_id, span_id))
        if found is None and known_ancestors is not None:
            found = (
                known_ancestors(trace_id, span_id)
                if callable(known_ancestors)
                else known_ancestors.get((trace_id, span_id))
            )
        return found

    mapped: list[MappedSpan] = []
    seen: set[tuple[str, str]] = set()
    for span in spans:
        key = (span.trace_id, span.span_id)
        if key in seen:
            continue
        seen.add(key)
        mapped.append(map_span(span, agent_id=_nearest_agent(span, lookup)))
    return mapped


def _nearest_agent(span: Span, lookup) -> uuid.UUID | None:
    declared = span.attributes.get("gen_ai.agent.id")
    if isinstance(declared, str) and declared:
        try:
            return uuid.UUID(declared)
        except ValueError:
            return uuid.uuid5(OTLP_EVENT_NAMESPACE, f"gen_ai.agent.id:{declared}")
    span_id: str | None = span.span_id
    for _ in range(256):  # a trace deeper than this is a loop sent on purpose
        if span_id is None:
            return None
        found = lookup(span.trace_id, span_id)
        if found is None:
            return None
        parent, is_agent = found
        if is_agent:
            return event_id_of(span.trace_id, span_id)
        span_id = parent
    return None


def map_span(span: Span, *, agent_id: uuid.UUID | None = None) -> MappedSpan:
    """One span as rows and, when it is the trace's root, the session fields it sets."""
    attrs = span.attributes
    repairs = list(span.repairs)
    otel = span_document(span)
    session_root = span.is_root and is_agentops_session_span(attrs)
    rows: list[EventRow] = []
    rejected: list[dict] = []
    event_type = event_type_of(attrs)
    event_id = None if session_root else event_id_of(span.trace_id, span.span_id)

    if event_id is not None:
        # Only an LLM event has chat fields, so only its message attributes can move.
        messages = _message_attributes(attrs) if event_type == "llms" else None
        raw = _event_fields(span, event_type, repairs, messages)
        if messages is not None:
            _move_message_attributes(otel, raw, messages)
        raw.update(
            # The id and times as objects: validate_event takes them as they are (no round trip
            # through text), and they are envelope fields, never stored in the payload.
            id=event_id,
            event_type=event_type,
            init_timestamp=span.start,
            end_timestamp=span.end,
            agent_id=str(agent_id) if agent_id else None,
            otel=otel,
        )
        _validate(raw, span, rows, rejected, repairs, ROLE_EVENT)

    if span.status_code == "ERROR":
        raw = _error_fields(span, repairs)
        raw.update(
            id=event_id_of(span.trace_id, span.span_id, ROLE_ERROR),
            event_type="errors",
            trigger_event_id=str(event_id) if event_id else None,
            trigger_event_type=None if session_root else event_type,
            agent_id=str(agent_id) if agent_id else None,
            otel={"trace_id": span.trace_id, "span_id": span.span_id, "role": ROLE_ERROR},
        )
        _validate(raw, span, rows, rejected, repairs, ROLE_ERROR)

    return MappedSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        session_id=session_id_of(span.trace_id),
        started=span.start,
        sdk_version=_sdk_version(span.resource),
        rows=rows,
        root=root_fields(span, otel if session_root else None) if span.is_root else None,
        rejected=rejected,
        repairs=repairs,
    )


def _validate(raw, span, rows, rejected, repairs, role) -> None:
    # Its JSON holds at most each attribute twice (the mapped fields and "otel"), each string
    # escaped at most 6x: a span this small on the wire cannot reach the event limit, and
    # _fit's trial serialisation is skipped.
    if not span.wire_bytes or span.wire_bytes * 12 >= MAX_EVENT_JSON_BYTES:
        _fit(raw, repairs)
    row, errors = validate_event(raw, session_id=session_id_of(span.trace_id))
    if row is None:
        rejected.append({"role": role, "errors": dict(errors)})
        return
    row.span_id = span.span_id
    row.parent_span_id = span.parent_span_id
    if role == ROLE_EVENT:
        row.cost, row.cost_source = _cost(row, span.attributes, repairs)
    rows.append(row)


def span_document(span: Span) -> dict:
    """The span whole, as JSON-ready data (times as ISO 8601 UTC, ids as hex)."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status": {"code": span.status_code, "message": span.status_message},
        "attributes": span.attributes,
        "events": [
            {
                "name": e.name,
                "time": e.time.isoformat() if e.time else None,
                "attributes": e.attributes,
                "dropped_attributes_count": e.dropped_attributes_count,
            }
            for e in span.events
        ],
        "links": [
            {
                "trace_id": link.trace_id,
                "span_id": link.span_id,
                "trace_state": link.trace_state,
                "flags": link.flags,
                "attributes": link.attributes,
            }
            for link in span.links
        ],
        "scope": {
            "name": span.scope_name,
            "version": span.scope_version,
            "attributes": span.scope_attributes,
        },
        "resource": span.resource,
        "flags": span.flags,
        "trace_state": span.trace_state,
        "dropped": {
            "attributes": span.dropped_attributes_count,
            "events": span.dropped_events_count,
            "links": span.dropped_links_count,
        },
        "repairs": list(span.repairs),
    }


# The flat message attributes of the 0.4 SDK's LLM spans ('gen_ai.prompt.N.content' ...) are
# the bulk of an LLM span and are stored once, as the event's chat messages: the span document
# names the fields that hold them instead of repeating them (~22 % less JSON per span, and as much
# less for Postgres to parse). span_attributes() puts them back.
MESSAGE_ATTRIBUTES = (("gen_ai.prompt.", "prompt"), ("gen_ai.completion.", "completion"))


def _flat_message_attributes(prefix: str, messages) -> dict[str, Any]:
    return {
        f"{prefix}{n}.{name}": value
        for n, message in enumerate(messages)
        if isinstance(message, dict)
        for name, value in message.items()
    }


_MESSAGE_PREFIXES = tuple(prefix for prefix, _ in MESSAGE_ATTRIBUTES)


def _message_attributes(attrs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{prefix: {key: value}} of the attributes under each MESSAGE_ATTRIBUTES prefix, in the
    order sent, read in one pass over the span's attributes: the chat fields are built from them
    and the span document leaves them out, which took four passes over every attribute."""
    found: dict[str, dict[str, Any]] = {prefix: {} for prefix in _MESSAGE_PREFIXES}
    for key, value in attrs.items():
        if key.startswith(_MESSAGE_PREFIXES):
            for prefix in _MESSAGE_PREFIXES:
                if key.startswith(prefix):
                    found[prefix][key] = value
                    break
    return found


def _move_message_attributes(otel: dict, fields: dict, messages: dict[str, dict]) -> None:
    """Leave out of `otel` the message attributes `fields` holds exactly (same keys, same
    values), recording where they are as otel["attributes_in_fields"] {prefix: field}; anything
    the messages would not give back whole (a gap in the indexes, a nested key) stays.
    `messages` is _message_attributes() of the span's attributes."""
    attrs = otel["attributes"]
    moved = {}
    for prefix, name in MESSAGE_ATTRIBUTES:
        chat = fields.get(name)
        if not isinstance(chat, dict) or chat.get("type") != "chatml":
            continue
        sent = messages[prefix]
        if sent and _flat_message_attributes(prefix, chat["messages"]) == sent:
            moved[prefix] = name
    if moved:
        prefixes = tuple(moved)
        otel["attributes"] = {k: v for k, v in attrs.items() if not k.startswith(prefixes)}
        otel["attributes_in_fields"] = moved


def span_attributes(payload: dict) -> dict[str, Any]:
    """The span's attributes whole, from a stored event payload ({} when it holds no span):
    the span document's own, plus the message attributes kept in the event's chat fields
    (`_move_message_attributes`), as they were sent (after the repairs every field gets)."""
    otel = payload.get("otel") if isinstance(payload, dict) else None
    if not isinstance(otel, dict):
        return {}
    attrs = dict(otel.get("attributes") or {})
    for prefix, name in (otel.get("attributes_in_fields") or {}).items():
        chat = payload.get(name)
        if isinstance(chat, dict) and isinstance(chat.get("messages"), list):
            attrs.update(_flat_message_attributes(prefix, chat["messages"]))
    return attrs


# --- event fields per type (§9 "Event fields") ---------------------------------------------------


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _label(value: Any, where: str, repairs: list[str], limit: int = MAX_NAME) -> str:
    """A promoted text column: cut to the column's size with a marker, never refused."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else _json_text(value)
    if len(text) > limit:
        repairs.append(f"{where}: cut from {len(text)} to {limit} characters")
        text = text[: limit - 1] + "…"
    return text


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return str(value)


def _parsed(value: Any) -> Any:
    """AgentOps sends inputs and outputs as JSON text: the parsed value when it is JSON (and not
    absurdly deep), else the text as it came."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or not (
        text[0] in '[{"-' or text[0].isdigit() or text in ("null", "true", "false")
    ):
        return value
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return value
    limit = MAX_JSON_DEPTH // 2
    # Deeper than the limit takes at least that many brackets (those in strings overcount):
    # counting them spares the walk for the short JSON of nearly every tool and task span.
    if text.count("[") + text.count("{") >= limit and json_depth_exceeds(parsed, limit):
        return value
    return parsed


def _count(attrs: Mapping[str, Any], keys: tuple[str, ...], where: str, repairs) -> int | None:
    """A token count: ints, integral floats and numeric strings taken; others nulled and said."""
    value = _first(attrs, *keys)
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                as_float = float(value.strip())
                number = int(as_float) if as_float.is_integer() else None
            except (ValueError, OverflowError):
                number = None
    if number is None or not 0 <= number <= MAX_INT32:
        repairs.append(f"{where}: {str(value)[:40]!r} is not a token count, left out")
        return None
    return number


_PROMPT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
_COMPLETION_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
_EXTRA_TOKENS = {
    "total_tokens": (
        "gen_ai.usage.total_tokens",
        "llm.usage.total_tokens",
        "llm.token_count.total",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
}
_MODEL_KEYS = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.response.model_name",
    "llm.model_name",
    "llm.request.model_name",
)
_PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
_SPAN_COST_KEYS = ("llm.cost.total", "gen_ai.usage.total_cost", "gen_ai.usage.cost")


def _short_name(span: Span) -> str:
    """'search.tool' -> 'search': AgentOps names spans '<operation>.<kind>'."""
    kind = span.attributes.get("agentops.span.kind")
    if isinstance(kind, str) and span.name.endswith(f".{kind}"):
        return span.name[: -len(kind) - 1]
    return span.name


def _io(attrs: Mapping[str, Any], kind: str | None, direction: str) -> Any:
    return _parsed(_first(attrs, *_io_keys(kind, direction)))


@lru_cache(maxsize=256)  # a few span kinds in practice; bounded as the kind is the sender's text
def _io_keys(kind: str | None, direction: str) -> tuple[str, ...]:
    """The attributes that may hold a span's input or output, in order of preference."""
    keys = [f"agentops.{kind}.{direction}"] if kind else []
    keys += [f"agentops.entity.{direction}"]
    if direction == "input":
        keys += ["gen_ai.tool.call.arguments", "tool.parameters", "input.value"]
    else:
        keys += ["gen_ai.tool.call.result", "output.value"]
    keys += [f"traceloop.entity.{direction}"]
    return tuple(keys)


def _event_fields(
    span: Span, event_type: str, repairs: list[str], messages: dict[str, dict] | None = None
) -> dict:
    """The event's fields for its type; `messages` (_message_attributes, LLM spans) spares the
    chat fields another pass over the attributes."""
    attrs = span.attributes
    kind = (
        attrs.get("agentops.span.kind")
        if isinstance(attrs.get("agentops.span.kind"), str)
        else None
    )
    if event_type == "llms":
        return _llm_fields(span, repairs, messages)
    if event_type == "tools":
        name = _first(attrs, "gen_ai.tool.name", "tool.name", "traceloop.entity.name")
        if kind:
            name = _first(attrs, "operation.name") or name
        return {
            "name": _label(name or _short_name(span), "name", repairs),
            "params": _io(attrs, kind, "input"),
            "returns": _io(attrs, kind, "output"),
        }
    name = _first(attrs, "operation.name", "traceloop.entity.name", "gen_ai.agent.name")
    fields = {
        "action_type": _label(name or _short_name(span), "action_type", repairs),
        "params": _io(attrs, kind, "input"),
        "returns": _io(attrs, kind, "output"),
    }
    if kind:
        fields["span_kind"] = kind
    return fields


def _llm_fields(span: Span, repairs: list[str], messages: dict[str, dict] | None = None) -> dict:
    messages = messages if messages is not None else _message_attributes(span.attributes)
    attrs = span.attributes
    model = _first(attrs, *_MODEL_KEYS)
    fields: dict[str, Any] = {
        "model": _label(model, "model", repairs),
        "request_model": _first(attrs, "gen_ai.request.model", "llm.request.model_name"),
        "provider": _first(attrs, *_PROVIDER_KEYS),
        "prompt_tokens": _count(attrs, _PROMPT_TOKENS, "prompt_tokens", repairs),
        "completion_tokens": _count(attrs, _COMPLETION_TOKENS, "completion_tokens", repairs),
        "prompt": _chat(prompt_messages(span, messages["gen_ai.prompt."])),
        "completion": _chat(completion_messages(span, messages["gen_ai.completion."])),
        "params": {
            key.removeprefix("gen_ai.request."): value
            for key, value in attrs.items()
            if key.startswith("gen_ai.request.") and key != "gen_ai.request.model"
        }
        or _parsed(attrs.get("llm.invocation_parameters")),
    }
    for name, keys in _EXTRA_TOKENS.items():
        fields[name] = _count(attrs, keys, name, repairs)
    return fields


def _chat(messages: list | str | None) -> dict | None:
    if messages is None or messages == []:
        return None
    if isinstance(messages, str):
        return {"type": "string", "string": messages}
    return {"type": "chatml", "messages": messages}


def _cost(row: EventRow, attrs: Mapping[str, Any], repairs: list[str]) -> tuple:
    """(cost, cost_source): the span's own cost, else (LLM calls) the price table's price of the
    response model then of the request model, else unknown (null, never 0). §10 "Pricing"."""
    if row.event_type not in ("llms", "tools"):
        return None, CostSource.UNKNOWN
    sent = _first(attrs, *_SPAN_COST_KEYS)
    if sent is None and row.event_type == "llms":
        parts = [attrs.get("llm.cost.prompt"), attrs.get("llm.cost.completion")]
        if all(p is not None for p in parts):
            sent = _sum_costs(parts)
    if sent is not None:
        errors = FieldErrors()
        cost = parse_cost(sent, "cost", errors)
        if cost is not None:
            return cost, CostSource.SDK
        repairs.append(f"cost: {str(sent)[:40]!r} is not an amount of USD, priced instead")
    if row.event_type != "llms":
        return None, CostSource.UNKNOWN
    provider = _first(attrs, *_PROVIDER_KEYS)
    models = (_first(attrs, *_MODEL_KEYS[:1]), _first(attrs, *_MODEL_KEYS[1:]))
    for model in dict.fromkeys(m for m in models if isinstance(m, str)):
        # "openai/gpt-4o-mini": the provider narrows the lookup; pricing falls back to the
        # model alone when the table names the provider otherwise (aws.bedrock, gcp.gemini ...).
        lookup = (
            f"{provider.lower()}/{model}"
            if isinstance(provider, str) and "/" not in model
            else model
        )
        # Prompt counts include cache reads and writes (OTel GenAI and OpenLLMetry report them
        # so, as OpenAI does); pricing gives unknown rather than a low price when they do not fit.
        priced = price_llm_call(
            lookup,
            row.prompt_tokens,
            row.completion_tokens,
            cache_read_tokens=_token_count(row.payload.get("cache_read_tokens")),
            cache_write_tokens=_token_count(row.payload.get("cache_write_tokens")),
        )
        if priced is not None:
            return priced, CostSource.PRICE_TABLE
    return None, CostSource.UNKNOWN


def _token_count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sum_costs(parts) -> str | None:
    try:
        return str(sum(Decimal(str(p)) for p in parts))
    except ArithmeticError:
        return None


def _error_fields(span: Span, repairs: list[str]) -> dict:
    """One error per ERROR span: agentops 0.4 records each exception twice (its own
    record_exception and OTel's context manager, §7.2), so only the first exception event is
    read; how many there were stays in the payload."""
    exceptions = [e for e in span.events if e.name == "exception"]
    first = exceptions[0].attributes if exceptions else {}
    message = span.status_message
    error_type = _first(first, "exception.type") or _first(span.attributes, "error.type")
    if not error_type and ":" in message:
        error_type = message.split(":", 1)[0].strip()
    when = (exceptions[0].time if exceptions else None) or span.end
    return {
        "error_type": _label(error_type or "Error", "error_type", repairs),
        "code": None,
        "details": _first(first, "exception.message") or message or None,
        "logs": _first(first, "exception.stacktrace"),
        "exception_events": len(exceptions),
        "init_timestamp": when,
        "end_timestamp": when,
    }


# --- chat messages (§9 llm prompt / completion) --------------------------------------------------


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict]:
    """Flat 'prefix.N.a.M.b' attributes as a list of nested dicts, in N order (gaps closed).

    The common shape ('prefix.N.field' only: every 0.4 SDK prompt without tool calls) is
    built in one pass; anything deeper goes through the general tree (_indexed_tree). Same
    result either way (tests/test_otlp_mapping.py); the fast path was a fifth of mapping time.
    """
    flat: dict[int, dict] = {}
    cut = len(prefix)
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, dot, name = key[cut:].partition(".")
        if not dot or not index.isdigit() or "." in name or name.isdigit():
            return _indexed_tree(attrs, prefix)
        flat.setdefault(int(index), {})[name] = value
    return [flat[n] for n in sorted(flat)]


def _indexed_tree(attrs: Mapping[str, Any], prefix: str) -> list[dict]:
    tree: dict = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix) :].split(".")
        if not parts[0].isdigit() or len(parts) > 8:
            continue  # deeper keys stay in the raw attributes only: no message is that deep
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    messages = _listify(tree)
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def _openinference_messages(attrs: Mapping[str, Any], prefix: str) -> list[dict]:
    messages = []
    for item in _indexed(attrs, prefix):
        message = dict(item.get("message", item))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [
                c.get("tool_call", c) if isinstance(c, dict) else c for c in calls
            ]
        messages.append(message)
    return messages


def _genai_messages(value: Any) -> list[dict] | None:
    """gen_ai.input/output.messages: [{"role", "parts": [{"type": "text", "content"} ...]}]."""
    value = _parsed(value)
    if not isinstance(value, list):
        return None
    messages = []
    for item in value:
        if not isinstance(item, dict):
            continue
        message = {k: v for k, v in item.items() if k != "parts"}
        parts = item.get("parts")
        if isinstance(parts, list):
            texts = [
                p.get("content") for p in parts if isinstance(p, dict) and p.get("type") == "text"
            ]
            calls = [
                {
                    "id": p.get("id"),
                    "type": "function",
                    "function": {"name": p.get("name"), "arguments": p.get("arguments")},
                }
                for p in parts
                if isinstance(p, dict) and p.get("type") == "tool_call"
            ]
            others = [
                p
                for p in parts
                if not (isinstance(p, dict) and p.get("type") in ("text", "tool_call"))
            ]
            if texts:
                message["content"] = "".join(t for t in texts if isinstance(t, str))
            if calls:
                message["tool_calls"] = calls
            if others:
                message["parts"] = others
        messages.append(message)
    return messages


def _system_instructions(value: Any) -> dict | None:
    value = _parsed(value)
    if isinstance(value, str) and value:
        return {"role": "system", "content": value}
    if isinstance(value, list):
        texts = [p.get("content") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        if texts:
            return {"role": "system", "content": "".join(t for t in texts if isinstance(t, str))}
    return None


_ROLE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def prompt_messages(span: Span, flat: Mapping[str, Any] | None = None) -> list | str | None:
    """The request's messages in chatml form, from whichever vocabulary the span speaks.
    `flat`: the span's 'gen_ai.prompt.*' attributes when the caller has them already."""
    attrs = span.attributes
    messages: list | None = _indexed(attrs if flat is None else flat, "gen_ai.prompt.")
    if messages:
        return messages
    messages = _genai_messages(attrs.get("gen_ai.input.messages"))
    if messages is not None:
        system = _system_instructions(attrs.get("gen_ai.system_instructions"))
        return ([system] if system else []) + messages
    messages = _openinference_messages(attrs, "llm.input_messages.")
    if messages:
        return messages
    from_events = [
        {"role": _ROLE_EVENTS[e.name], **_event_message(e.attributes)}
        for e in span.events
        if e.name in _ROLE_EVENTS
    ]
    if from_events:
        return from_events
    for e in span.events:  # semconv <= 1.26: one event carrying the whole prompt as JSON
        if e.name == "gen_ai.content.prompt" and "gen_ai.prompt" in e.attributes:
            parsed = _parsed(e.attributes["gen_ai.prompt"])
            return parsed if isinstance(parsed, list) else str(parsed)
    value = attrs.get("input.value")
    return value if isinstance(value, str) and value else None


def completion_messages(span: Span, flat: Mapping[str, Any] | None = None) -> list | str | None:
    """The response's messages, as prompt_messages (`flat`: the 'gen_ai.completion.*' ones)."""
    attrs = span.attributes
    messages: list | None = _indexed(attrs if flat is None else flat, "gen_ai.completion.")
    if messages:
        return messages
    messages = _genai_messages(attrs.get("gen_ai.output.messages"))
    if messages is not None:
        return messages
    messages = _openinference_messages(attrs, "llm.output_messages.")
    if messages:
        return messages
    choices = []
    for e in span.events:
        if e.name == "gen_ai.choice":
            message = _event_message(e.attributes)
            inner = _parsed(e.attributes.get("message"))
            if isinstance(inner, dict):
                message.update(inner)
            if "finish_reason" in e.attributes:
                message["finish_reason"] = e.attributes["finish_reason"]
            message.setdefault("role", "assistant")
            choices.append(message)
    if choices:
        return choices
    for e in span.events:
        if e.name == "gen_ai.content.completion" and "gen_ai.completion" in e.attributes:
            parsed = _parsed(e.attributes["gen_ai.completion"])
            return parsed if isinstance(parsed, list) else str(parsed)
    value = attrs.get("output.value")
    return value if isinstance(value, str) and value else None


def _event_message(attributes: Mapping[str, Any]) -> dict:
    message = {}
    if "content" in attributes:
        message["content"] = attributes["content"]
    for key in ("tool_calls", "id"):
        if key in attributes:
            message[key] = _parsed(attributes[key])
    return message


# --- the root span: session fields (§9 "Session", §10 "Ordering") --------------------------------

_FAIL_STATES = frozenset({"fail", "failure", "failed", "error"})


def end_state_of(span: Span) -> tuple[str, str, str | None]:
    """(end_state, reason, raw end state). `agentops.session.end_state` first: Success,
    Fail/Failure/Error -> Fail, anything else (Indeterminate, Shutdown, Unknown, Reinitialized,
    free text) -> Indeterminate; without it the root's status: OK Success, ERROR Fail, UNSET
    Indeterminate. Reason: the legacy end_state_reason, else the raw state when it was mapped to
    another word (e.g. "Shutdown"), else the status message."""
    attrs = span.attributes
    raw = attrs.get("agentops.session.end_state")
    raw = raw.strip() if isinstance(raw, str) and raw.strip() else None
    if raw is not None:
        low = raw.lower()
        if low == "success":
            state = EndState.SUCCESS
        elif low in _FAIL_STATES:
            state = EndState.FAIL
        else:
            state = EndState.INDETERMINATE
    else:
        state = {"OK": EndState.SUCCESS, "ERROR": EndState.FAIL}.get(
            span.status_code, EndState.INDETERMINATE
        )
    reason = _first(attrs, "agentops.legacy.end_state_reason", "agentops.session.end_state_reason")
    if reason is None:
        reason = raw if raw is not None and raw != state.value else span.status_message
    reason = reason if isinstance(reason, str) else _json_text(reason)
    return state.value, reason[:MAX_REASON], raw


def tags_of(span: Span) -> list[str]:
    """agentops.tags (a string array, or the JSON-array text update_trace_metadata writes, or
    one string) and OpenInference's tag.tags; deduplicated, bounded as v2 tags are."""
    found: list = []
    for key in ("agentops.tags", "tag.tags"):
        value = span.attributes.get(key)
        if isinstance(value, str):
            parsed = _parsed(value)
            value = parsed if isinstance(parsed, list) else [value]
        if isinstance(value, list):
            found.extend(value)
    tags: list[str] = []
    for item in found:
        if item is None or isinstance(item, (dict, list)):
            continue
        name = str(item).replace("\x00", "").strip()[:MAX_TAG_LENGTH]
        if name and name not in tags:
            tags.append(name)
        if len(tags) >= MAX_TAGS:
            break
    return tags


_HOST_PREFIXES = ("host.", "cpu.", "memory.")
_RESOURCE_HOST_PREFIXES = ("host.", "os.", "process.runtime.")


def host_env_of(span: Span) -> dict | None:
    env = {k: v for k, v in span.attributes.items() if k.startswith(_HOST_PREFIXES)}
    env.update(
        (k, v)
        for k, v in span.resource.items()
        if k.startswith(_RESOURCE_HOST_PREFIXES) or k == "imported_libraries"
    )
    return env or None


_METADATA_PREFIXES = {
    "trace.metadata.": "",
    "agentops.legacy.": "legacy.",
    "traceloop.association.properties.": "",
}


def metadata_of(span: Span) -> dict:
    metadata: dict[str, Any] = {}
    for key, value in span.attributes.items():
        for prefix, renamed in _METADATA_PREFIXES.items():
            if key.startswith(prefix):
                metadata[renamed + key[len(prefix) :]] = value
                break
        else:
            if "." not in key:  # start_trace(tags={dict}): each key its own attribute (§7.1)
                metadata[key] = value
    metadata.pop("legacy.end_state_reason", None)
    for key in ("session.id", "user.id"):
        if key in span.attributes:
            metadata[key] = span.attributes[key]
    if "metadata" in span.attributes:
        metadata["metadata"] = _parsed(span.attributes["metadata"])
    if "service.name" in span.resource:
        metadata["service.name"] = span.resource["service.name"]
    return metadata


def root_fields(span: Span, span_doc: dict | None = None) -> RootFields:
    state, reason, raw = end_state_of(span)
    return RootFields(
        end_state=state,
        end_state_reason=reason,
        raw_end_state=raw,
        tags=tags_of(span),
        host_env=host_env_of(span),
        init_timestamp=span.start,
        end_timestamp=span.end,
        metadata=metadata_of(span),
        span=span_doc,
    )


def _sdk_version(resource: Mapping[str, Any]) -> str:
    name, version = resource.get("telemetry.sdk.name"), resource.get("telemetry.sdk.version")
    if isinstance(name, str) and isinstance(version, str):
        return f"{name}/{version}"[:50]
    return ""


# --- size: never refuse a span for being big, cut its strings until it fits ----------------------


def _fit(raw: dict, repairs: list[str]) -> None:
    """Cut the longest strings of an event until its JSON is under the v2 event limit (1 MiB):
    an LLM span with a huge context is kept, its text marked as cut. Copies what it cuts: the
    span's attributes and its (shared) resource are not touched."""
    if len(_json_text(raw)) <= MAX_EVENT_JSON_BYTES:
        return
    cap = 64 * 1024
    while cap >= 256:
        cut = _cap_strings(raw, cap)
        if len(_json_text(cut)) <= MAX_EVENT_JSON_BYTES:
            raw.update(cut)
            repairs.append(f"payload: strings cut to {cap} characters to fit the event limit")
            return
        cap //= 4


def _cap_strings(value: Any, cap: int) -> Any:
    if isinstance(value, dict):
        return {key: _cap_strings(item, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_cap_strings(item, cap) for item in value]
    if isinstance(value, str) and len(value) > cap:
        return value[:cap] + f"…[truncated {len(value) - cap} characters]"
    return value
