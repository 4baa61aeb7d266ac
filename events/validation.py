"""Validation of SDK events: each event on its own, so one bad event never costs its neighbours,
and what can be repaired is repaired and said (events/repairs.py) rather than refused.

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

from analytics.pricing import usage_from_response
from events.models import EventType
from events.repairs import (
    NONFINITE_TEXT,
    REPLACEMENT,
    Repairs,
    clean,
    cut,
    fit,
    may_need_walk,
)

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
    # LLM calls: parts of prompt_tokens (cache) and of completion_tokens (reasoning); kept in the
    # payload under the same names (no page filters or sums them yet, so no columns).
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    # Why the token counts cannot give a complete price (then the cost is unknown, never low).
    usage_incomplete: str | None = None
    # What was repaired ({path: [message]}); also in payload["repaired"].
    repairs: dict | None = None


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
    """A token count, strictly: a whole number from 0 to 2**31-1 (errors otherwise). The v2
    ingest uses `coerce_count`, which repairs instead; this stays for callers that refuse."""
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


def coerce_count(value, path: str, repairs: Repairs) -> int | None:
    """A token count: whole numbers, integral floats and numeric strings ("1000", " 1e3 ")
    taken (a string is said); anything else (negative, over 2**31-1, fractional, text, a list)
    left out and said, so the call is kept with that count unknown."""
    if value is None or (type(value) is int and 0 <= value <= MAX_INT32):
        return value  # the common case first: one type check
    number = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) <= 40:
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = math.nan
            if math.isfinite(as_float) and as_float.is_integer():
                number = int(as_float)
        if number is not None and 0 <= number <= MAX_INT32:
            repairs.add(path, f"{value!r} (text) taken as the number {number}.")
            return number
    if number is None or not 0 <= number <= MAX_INT32:
        shown = NONFINITE_TEXT.get(value, value) if isinstance(value, str) else value
        repairs.add(
            path,
            f"{str(shown)[:40]!r} is not a token count (a whole number from 0 to {MAX_INT32}): "
            "left out, the count is unknown.",
        )
        return None
    return number


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


def repair_name(value, path: str, repairs: Repairs) -> str:
    """A promoted label (model, tool name, action or error type): text as sent, a number or a
    JSON value as its text, cut to MAX_NAME characters with "…"; NUL replaced by U+FFFD."""
    if value is None:
        return ""
    if type(value) is not str:
        if isinstance(value, (int, float)):
            value = str(value)
        else:
            try:
                value = orjson.dumps(value).decode()
            except (TypeError, orjson.JSONEncodeError):
                value = str(value)
            repairs.add(path, "Is not text: stored as its JSON text.")
    if "\x00" in value:
        if value in NONFINITE_TEXT:
            repairs.add(path, f"{NONFINITE_TEXT[value]} is not a name: left out.")
            return ""
        value = value.replace("\x00", REPLACEMENT)
    return cut(value, MAX_NAME, path, repairs)


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


def _trigger(raw: dict, repairs: Repairs) -> tuple[uuid.UUID | None, str | None]:
    """The official SDK nests the triggering event whole; ours sends its id and type flat. An id
    that is not a UUID is left out (the error is kept, unlinked) and said."""
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
        repairs.add(
            "trigger_event_id",
            f"{str(trigger_id)[:40]!r} is not the UUID of an event: the error is kept unlinked.",
        )
    return parsed, trigger_type if isinstance(trigger_type, str) else None


def _times(raw: dict, errors: FieldErrors, repairs: Repairs):
    """(init, end) as aware UTC. One unreadable time (missing, not ISO 8601, outside 2000-2100)
    is replaced by the other; an end before the start (clock skew) is clamped to the start, so
    the duration is 0. Only an event with no readable time at all cannot be placed: an error."""
    bad = FieldErrors()
    init_raw, end_raw = raw.get("init_timestamp"), raw.get("end_timestamp")
    init_ts = parse_timestamp(init_raw, "init_timestamp", bad)
    end_ts = None if end_raw in (None, "") else parse_timestamp(end_raw, "end_timestamp", bad)
    if init_ts is None:
        if end_ts is None:
            errors.update(bad)
            errors.add("init_timestamp", "No readable time: the event cannot be placed.")
            return None, None
        repairs.add("init_timestamp", f"{bad['init_timestamp'][0]} Taken as end_timestamp.")
        init_ts = end_ts
    elif "end_timestamp" in bad:
        repairs.add("end_timestamp", f"{bad['end_timestamp'][0]} Left out (no end time).")
    if end_ts is not None and end_ts < init_ts:
        skew = (init_ts - end_ts).total_seconds()
        repairs.add(
            "end_timestamp",
            f"{end_raw} is {skew:g} s before init_timestamp (clock skew?): clamped to "
            "init_timestamp, duration 0.",
        )
        end_ts = init_ts
    return init_ts, end_ts


_COUNT_FIELDS = ("prompt_tokens", "completion_tokens")
_PART_FIELDS = ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_ALL_COUNT_FIELDS = _COUNT_FIELDS + _PART_FIELDS


def _llm_usage(raw: dict, payload: dict, repairs: Repairs) -> dict:
    """Token counts of an LLM call: the wire's fields, coerced; the cache and reasoning parts
    from the provider's response in `returns` when the wire has none (the official SDK 0.3.26
    sends only prompt/completion tokens, and the response whole); and whether the counts can
    price the call completely. Counts that changed are written back into the payload."""
    counts = {}
    changed = False
    for field_name in _ALL_COUNT_FIELDS:
        value = raw.get(field_name)
        # The common case (absent, or a plain count) without a call: this runs for every call.
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_INT32):
            value = coerce_count(value, field_name, repairs)
            changed = True
        counts[field_name] = value
    if counts["cache_read_tokens"] is None and counts["cache_write_tokens"] is None:
        changed = _parts_from_response(raw.get("returns"), counts, repairs) or changed
    if changed:  # the payload keeps the counts as stored, the originals are in the repairs
        for field_name, value in counts.items():
            if value is not None or field_name in payload:
                payload[field_name] = value
    incomplete = None
    prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
    if prompt is None and completion is not None and _has_content(raw.get("prompt")):
        incomplete = "prompt_tokens is missing although the call has a prompt"
    elif completion is None and prompt is not None and _has_content(raw.get("completion")):
        incomplete = "completion_tokens is missing although the call has a completion"
    elif (counts["cache_read_tokens"] or 0) + (counts["cache_write_tokens"] or 0) > (prompt or 0):
        incomplete = (
            "cache_read_tokens + cache_write_tokens exceed prompt_tokens, which includes them"
        )
    counts["usage_incomplete"] = incomplete
    return counts


def _has_content(value) -> bool:
    return value not in (None, "", [], {})


def _parts_from_response(returns, counts: dict, repairs: Repairs) -> bool:
    """Cache and reasoning counts from an OpenAI/Anthropic response the SDK sent as `returns`
    (a dict, or the JSON text of one: the official SDK's OpenAI provider sends
    `model_dump_json()`). Anthropic's input count leaves the cache out, so prompt_tokens becomes
    the response's whole input when the SDK sent Anthropic's number (and that is said)."""
    if isinstance(returns, str):
        # Parse only text that can hold a cache or reasoning count: this runs for every call.
        if not (returns.startswith("{") and ('_tokens"' in returns)) or len(returns) > 2**20:
            return False
        try:
            returns = orjson.loads(returns)
        except orjson.JSONDecodeError:
            return False
    if type(returns) is not dict or type(returns.get("usage")) is not dict:
        return False
    usage = usage_from_response(returns)
    if usage is None:
        return False
    if not (usage.cache_read_tokens or usage.cache_write_tokens or usage.reasoning_tokens):
        return False
    counts["cache_read_tokens"] = usage.cache_read_tokens
    counts["cache_write_tokens"] = usage.cache_write_tokens
    counts["reasoning_tokens"] = usage.reasoning_tokens
    prompt = counts["prompt_tokens"]
    if usage.prompt_tokens != usage.reported_prompt_tokens and prompt in (
        None,
        usage.reported_prompt_tokens,
    ):
        repairs.add(
            "prompt_tokens",
            f"{prompt} is Anthropic's input_tokens, which leave out the "
            f"{usage.prompt_tokens - usage.reported_prompt_tokens} cache tokens: counted as "
            f"{usage.prompt_tokens} (returns.usage).",
        )
        counts["prompt_tokens"] = usage.prompt_tokens
    if counts["completion_tokens"] is None:
        counts["completion_tokens"] = usage.completion_tokens
    return True


def validate_event(raw, *, session_id: uuid.UUID) -> tuple[EventRow | None, FieldErrors]:
    """One SDK event as a row to insert, or the reasons it cannot be stored.

    Keep, repair, say (events/repairs.py): everything that can be stored is, repaired where it
    must be, each repair in `row.repairs` and `payload["repaired"]` ({path: [message]}). Refused
    (errors, no row) only: not an object, no UUID id (it is the idempotency key), a session_id
    naming another session, no readable time at all, nesting deeper than MAX_JSON_DEPTH, or a
    payload over MAX_EVENT_JSON_BYTES whose bulk is not text that can be cut."""
    errors = FieldErrors()
    if not isinstance(raw, dict):
        errors.add("", "Each event must be a JSON object.")
        return None, errors
    repairs = Repairs()

    event_id = parse_uuid(raw.get("id"))
    if event_id is None:
        errors.add("id", "Required: a UUID chosen by the SDK (it makes resending safe).")

    payload = raw.copy()  # then pop: C-level, where a comprehension visited every key
    for envelope_field in ENVELOPE_FIELDS:
        payload.pop(envelope_field, None)
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        repairs.add(
            "event_type",
            f"Missing or not text: stored as an action (one of {', '.join(sorted(KNOWN_TYPES))}).",
        )
        event_type = "actions"
    elif event_type not in KNOWN_TYPES:
        # AgentOps keeps an event of a type it does not know as an action, type preserved.
        payload["original_event_type"] = event_type[:MAX_NAME].replace("\x00", REPLACEMENT)
        event_type = "actions"

    claimed_session = raw.get("session_id")
    if claimed_session not in (None, "") and parse_uuid(claimed_session) != session_id:
        errors.add(
            "session_id",
            "Names another session than the token's; send it with that session's token.",
        )

    init_ts, end_ts = _times(raw, errors, repairs)

    agent_raw = raw.get("agent_id")
    agent_id = None
    if agent_raw not in (None, ""):
        agent_id = parse_uuid(agent_raw)
        if agent_id is None:
            repairs.add("agent_id", "Is not a UUID: kept in the payload, the event has no agent.")

    name, model = "", ""
    usage: dict = {}
    cost = None
    trigger_id = None
    if event_type == "llms":
        model = repair_name(raw.get("model"), "model", repairs)
        usage = _llm_usage(raw, payload, repairs)
        cost_errors = FieldErrors()
        cost = parse_cost(raw.get("cost"), "cost", cost_errors)
        if cost_errors:
            repairs.add(
                "cost", f"{cost_errors['cost'][0]} Left out: priced from the tokens instead."
            )
        name = model
    elif event_type == "tools":
        name = repair_name(raw.get("name") or raw.get("tool_name"), "name", repairs)
    elif event_type == "errors":
        name = repair_name(raw.get("error_type"), "error_type", repairs)
        trigger_id, trigger_type = _trigger(raw, repairs)
        payload.pop("trigger_event", None)
        if trigger_id is not None:
            payload["trigger_event_id"] = str(trigger_id)
            payload["trigger_event_type"] = trigger_type
    elif event_type == "actions":
        name = repair_name(
            raw.get("action_type") or raw.get("name") or payload.get("original_event_type"),
            "action_type",
            repairs,
        )
    else:
        name = repair_name(raw.get("name") or raw.get("method"), "name", repairs)

    if errors:
        return None, errors
    payload, payload_json = _payload_json(payload, errors, repairs)
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
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            cost=cost,
            trigger_event_id=trigger_id,
            payload=payload,
            payload_json=payload_json,
            cache_read_tokens=usage.get("cache_read_tokens"),
            cache_write_tokens=usage.get("cache_write_tokens"),
            reasoning_tokens=usage.get("reasoning_tokens"),
            usage_incomplete=usage.get("usage_incomplete"),
            repairs=repairs or None,
        ),
        errors,
    )


REPAIRED_KEY = "repaired"  # the payload key that says what the server changed
CLIENT_REPAIRED_KEY = "repaired_by_client"  # where a client's own "repaired" field is kept


def _payload_json(payload: dict, errors: FieldErrors, repairs: Repairs) -> tuple[dict, str]:
    """(payload, its JSON text): NULs (which Postgres text and jsonb refuse) replaced by U+FFFD
    and non-finite markers nulled, only when the dump says there may be one; depth checked only
    when the dump has enough brackets; an over-large payload fitted by cutting its longest
    strings; what was repaired added under REPAIRED_KEY. Errors for what cannot be stored."""
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
        return payload, ""
    if dumped is None:
        errors.add("", f"Cannot be stored as JSON: {failure}.")
        return payload, ""
    if may_need_walk(dumped):
        payload = clean(payload, "", repairs)
        dumped = orjson.dumps(payload)
    if len(dumped) > MAX_EVENT_JSON_BYTES:
        fitted = fit(payload, MAX_EVENT_JSON_BYTES - REPAIRS_ROOM, repairs)
        if fitted is None:
            errors.add(
                "",
                f"Is {len(dumped)} bytes of JSON, mostly structure rather than text that could "
                f"be cut; an event may hold at most {MAX_EVENT_JSON_BYTES}.",
            )
            return payload, ""
        payload, dumped = fitted
    if repairs:
        if REPAIRED_KEY in payload:
            payload[CLIENT_REPAIRED_KEY] = payload[REPAIRED_KEY]
        payload[REPAIRED_KEY] = dict(repairs)
        dumped = orjson.dumps(payload)
        if may_need_walk(dumped):  # a message quoting a client's text: never store a NUL
            payload = clean(payload, "", Repairs())
            dumped = orjson.dumps(payload)
    return payload, dumped.decode()


# Room left under the event limit for the repair notes when a payload is fitted.
REPAIRS_ROOM = 16 * 1024
