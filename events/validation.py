"""Validation of SDK events: each event on its own, so one bad event never costs its neighbours.

Hand-written rather than a DRF serializer: a batch of 100 events goes through here in well under
a millisecond, so validation is never what limits ingest (DRF's ListSerializer manages ~16k
events/s per core). Every error names the field path relative to the event.
"""

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import orjson

from events.models import EventType

KNOWN_TYPES = frozenset(EventType.values)
MAX_NAME = 200
MAX_INT32 = 2**31 - 1
MAX_EVENT_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)

# Fields promoted to columns; the rest of the event goes whole into `payload`.
ENVELOPE_FIELDS = frozenset({"id", "event_type", "init_timestamp", "end_timestamp", "session_id"})


class FieldErrors(dict):
    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


@dataclass(slots=True)
class EventRow:
    id: uuid.UUID
    event_type: str
    init_timestamp: datetime
    end_timestamp: datetime | None
    agent_id: uuid.UUID | None
    name: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None
    trigger_event_id: uuid.UUID | None
    payload: dict
    payload_json: str
    cost_source: str = "unknown"
    # Set for OTLP spans only (events/spans.py); v2 events have neither.
    span_id: str | None = None
    parent_span_id: str | None = None


def parse_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def parse_timestamp(value, path: str, errors: FieldErrors) -> datetime | None:
    """An ISO 8601 time as aware UTC; a time without offset is taken as UTC, as the SDKs mean it.
    An aware datetime (events/spans.py passes the decoded span times) is taken as it is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        parsed = value.astimezone(UTC)
        if not MIN_TIME <= parsed < MAX_TIME:
            errors.add(path, "Must be between the years 2000 and 2100.")
            return None
        return parsed
    if not isinstance(value, str) or len(value) > 64:
        errors.add(path, "Must be an ISO 8601 date-time string, e.g. 2026-11-21T10:00:00Z.")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.add(path, f"{value!r} is not an ISO 8601 date-time, e.g. 2026-11-21T10:00:00Z.")
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not MIN_TIME <= parsed < MAX_TIME:
        errors.add(path, "Must be between the years 2000 and 2100.")
        return None
    return parsed


def parse_count(value, path: str, errors: FieldErrors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            errors.add(path, "Must be a whole number of tokens.")
            return None
    if not 0 <= value <= MAX_INT32:
        errors.add(path, f"Must be between 0 and {MAX_INT32}.")
        return None
    return value


def parse_cost(value, path: str, errors: FieldErrors) -> Decimal | None:
    """The SDK's own cost in USD; a number or a decimal string, never negative or non-finite."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        errors.add(path, "Must be a number of US dollars.")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors.add(path, "Must be a finite number.")
        return None
    try:
        # str() first: Decimal(0.1) would carry the float's binary noise into the money column.
        cost = Decimal(str(value)) if not isinstance(value, str) else Decimal(value.strip())
    except InvalidOperation:
        errors.add(path, f"{value!r} is not a number.")
        return None
    if not cost.is_finite() or cost < 0 or cost >= Decimal("1e9"):
        errors.add(path, "Must be a finite amount between 0 and 1,000,000,000 US dollars.")
        return None
    return cost.quantize(Decimal("1e-10")) if cost.as_tuple().exponent < -10 else cost


def parse_name(value, path: str, errors: FieldErrors) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value) if isinstance(value, (int, float)) else None
        if value is None:
            errors.add(path, "Must be a string.")
            return ""
    if len(value) > MAX_NAME:
        errors.add(path, f"Must be at most {MAX_NAME} characters.")
        return ""
    return value.replace("\x00", "\ufffd")


def json_depth_exceeds(value, limit: int) -> bool:
    """Whether any value sits deeper than `limit` levels (the value itself is level 1).

    Walked a level at a time with C-level list building: the whole request body goes through
    this, and a per-value generator walk cost ~1 ms of a 100-event batch.
    """
    level = [value]
    depth = 1
    while True:
        children: list = []
        for item in level:
            if type(item) is dict:
                children.extend(item.values())
            elif type(item) is list:
                children.extend(item)
        if not children:
            return False
        depth += 1
        if depth > limit:
            return True
        level = children


def _trigger(raw: dict, errors: FieldErrors) -> tuple[uuid.UUID | None, str | None]:
    """The official SDK nests the triggering event whole; ours sends its id and type flat."""
    trigger_id = raw.get("trigger_event_id")
    trigger_type = raw.get("trigger_event_type")
    nested = raw.get("trigger_event")
    if trigger_id is None and isinstance(nested, dict):
        trigger_id = nested.get("id")
        trigger_type = trigger_type or nested.get("event_type")
    if trigger_id in (None, ""):
        return None, None
    parsed = parse_uuid(trigger_id)
    if parsed is None:
        errors.add("trigger_event_id", "Must be the UUID of the event that triggered the error.")
    return parsed, trigger_type if isinstance(trigger_type, str) else None


def validate_event(raw, *, session_id: uuid.UUID) -> tuple[EventRow | None, FieldErrors]:
    """One SDK event as a row to insert, or the reasons it cannot be stored."""
    errors = FieldErrors()
    if not isinstance(raw, dict):
        errors.add("", "Each event must be a JSON object.")
        return None, errors

    event_id = parse_uuid(raw.get("id"))
    if event_id is None:
        errors.add("id", "Required: a UUID chosen by the SDK (it makes resending safe).")

    payload = raw.copy()  # then pop: C-level, where a comprehension visited every key
    for envelope_field in ENVELOPE_FIELDS:
        payload.pop(envelope_field, None)
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        errors.add("event_type", f"Required: one of {', '.join(sorted(KNOWN_TYPES))}.")
        event_type = "actions"
    elif event_type not in KNOWN_TYPES:
        # AgentOps keeps an event of a type it does not know as an action, type preserved.
        payload["original_event_type"] = event_type[:MAX_NAME]
        event_type = "actions"

    claimed_session = raw.get("session_id")
    if claimed_session not in (None, "") and parse_uuid(claimed_session) != session_id:
        errors.add(
            "session_id",
            "Names another session than the token's; send it with that session's token.",
        )

    init_ts = parse_timestamp(raw.get("init_timestamp"), "init_timestamp", errors)
    end_raw = raw.get("end_timestamp")
    end_ts = None if end_raw in (None, "") else parse_timestamp(end_raw, "end_timestamp", errors)
    if init_ts and end_ts and end_ts < init_ts:
        errors.add("end_timestamp", "Is earlier than init_timestamp.")

    agent_raw = raw.get("agent_id")
    agent_id = None
    if agent_raw not in (None, ""):
        agent_id = parse_uuid(agent_raw)
        if agent_id is None:
            errors.add("agent_id", "Must be a UUID.")

    name, model = "", ""
    prompt_tokens = completion_tokens = None
    cost = None
    trigger_id = None
    if event_type == "llms":
        model = parse_name(raw.get("model"), "model", errors)
        prompt_tokens = parse_count(raw.get("prompt_tokens"), "prompt_tokens", errors)
        completion_tokens = parse_count(raw.get("completion_tokens"), "completion_tokens", errors)
        cost = parse_cost(raw.get("cost"), "cost", errors)
        name = model
    elif event_type == "tools":
        name = parse_name(raw.get("name") or raw.get("tool_name"), "name", errors)
    elif event_type == "errors":
        name = parse_name(raw.get("error_type"), "error_type", errors)
        trigger_id, trigger_type = _trigger(raw, errors)
        payload.pop("trigger_event", None)
        if trigger_id is not None:
            payload["trigger_event_id"] = str(trigger_id)
            payload["trigger_event_type"] = trigger_type
    elif event_type == "actions":
        name = parse_name(
            raw.get("action_type") or raw.get("name") or payload.get("original_event_type"),
            "action_type",
            errors,
        )
    else:
        name = parse_name(raw.get("name") or raw.get("method"), "name", errors)

    payload_json = _payload_json(payload, errors) if not errors else ""
    if errors:
        return None, errors
    return (
        EventRow(
            id=event_id,
            event_type=event_type,
            init_timestamp=init_ts,
            end_timestamp=end_ts,
            agent_id=agent_id,
            name=name,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            trigger_event_id=trigger_id,
            payload=payload,
            payload_json=payload_json,
        ),
        errors,
    )


def _payload_json(payload: dict, errors: FieldErrors) -> str:
    """The payload as JSON text, size-checked; NUL characters (which Postgres text and jsonb
    refuse) become U+FFFD so the event is kept rather than lost."""
    try:
        dumped, failure = orjson.dumps(payload), None
    except (TypeError, orjson.JSONEncodeError) as exc:
        dumped, failure = None, exc
    # Nesting deeper than the limit needs at least that many containers, so a dump with fewer
    # brackets (those inside strings only overcount) cannot be too deep: counting them is ~50x
    # cheaper than walking the payload, which was a third of a batch's validation time.
    may_be_deep = dumped is None or dumped.count(b"{") + dumped.count(b"[") >= MAX_JSON_DEPTH
    if may_be_deep and json_depth_exceeds(payload, MAX_JSON_DEPTH):
        errors.add("", f"Nested deeper than {MAX_JSON_DEPTH} levels.")
        return ""
    if dumped is None:
        errors.add("", f"Cannot be stored as JSON: {failure}.")
        return ""
    if len(dumped) > MAX_EVENT_JSON_BYTES:
        errors.add(
            "", f"Is {len(dumped)} bytes of JSON; an event may hold at most {MAX_EVENT_JSON_BYTES}."
        )
        return ""
    if b"\\u0000" in dumped:
        dumped = dumped.replace(b"\\u0000", b"\\ufffd")
        payload.clear()
        payload.update(orjson.loads(dumped))
    return dumped.decode()
