"""Events to JSON, in the background sender: whatever an agent puts in an event must become
valid JSON (the server refuses a whole body that is not), and must never raise."""

from __future__ import annotations

import dataclasses
import json
import math
import time as time_module
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from ._time import iso_from_epoch

MAX_DEPTH = 48  # the server refuses payloads nested deeper than 64 levels
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=lambda o: _default(o)
)


def _default(obj: Any) -> Any:
    """JSON for what json cannot encode on its own."""
    if isinstance(obj, (UUID, Decimal)):
        return str(obj)
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    for method in ("model_dump", "to_dict", "dict"):  # pydantic v2, many libraries, pydantic v1
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                value = fn()
            except Exception:
                continue
            if isinstance(value, dict):
                return value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    try:
        return str(obj)
    except Exception:
        return f"<unserialisable {type(obj).__qualname__}>"


def _sanitise(obj: Any, depth: int = 0, seen: frozenset = frozenset()) -> Any:
    """A JSON-safe copy: non-finite floats become null, cycles and excess depth become text.
    Only used when plain encoding failed, so its cost is paid by odd events alone."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if id(obj) in seen:
        return "<circular reference>"
    inner = seen | {id(obj)}
    if isinstance(obj, dict):
        return {str(k): _sanitise(v, depth + 1, inner) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_sanitise(v, depth + 1, inner) for v in obj]
    converted = _default(obj)
    if converted is obj or isinstance(converted, str):
        return converted if isinstance(converted, str) else str(converted)
    return _sanitise(converted, depth + 1, inner)


def recorded_fields(event: Any) -> tuple[dict, float]:
    """(a copy of the fields of an event from a session's queue, when it was recorded).

    dict.copy() runs in C without letting another thread in, so an agent changing the event
    meanwhile cannot break the copy; record() made dict events' own copy already."""
    fields = event if event.__class__ is dict else event.__dict__.copy()
    recorded_at = fields.pop("_recorded_at", None)
    return fields, time_module.time() if recorded_at is None else recorded_at


def to_wire(snapshot: dict, recorded_at: float) -> dict:
    """The wire shape of one recorded event (from a shallow copy of its fields)."""
    out = {k: v for k, v in snapshot.items() if v is not None}
    out.pop("session_id", None)  # the session token names the session
    out.pop("exception", None)
    event_type = out.get("event_type")
    if isinstance(event_type, Enum):
        out["event_type"] = event_type.value
    out["id"] = str(out.get("id"))
    agent_id = out.get("agent_id")
    if agent_id is not None and agent_id.__class__ is not str:
        out["agent_id"] = str(agent_id)
    thread_id = out.get("thread_id")
    if thread_id is not None and thread_id.__class__ is not str:
        out["thread_id"] = str(thread_id)
    for stamp in ("init_timestamp", "end_timestamp"):
        if isinstance(out.get(stamp), datetime):
            out[stamp] = out[stamp].isoformat()
    if "end_timestamp" not in out:
        out["end_timestamp"] = iso_from_epoch(recorded_at)
    if "init_timestamp" not in out:
        out["init_timestamp"] = out["end_timestamp"]
    trigger = out.pop("trigger_event", None)
    if trigger is not None:
        # Flat ids, not the nested object the official SDK sends: smaller, and no cycles.
        trigger_id = getattr(trigger, "id", None)
        if trigger_id is not None:
            out.setdefault("trigger_event_id", str(trigger_id))
        trigger_type = getattr(trigger, "event_type", None)
        if isinstance(trigger_type, Enum):
            trigger_type = trigger_type.value
        if trigger_type is not None:
            out.setdefault("trigger_event_type", trigger_type)
    return out


def encode_event(event: dict) -> bytes:
    """One event as compact JSON bytes; never raises."""
    try:
        return _ENCODER.encode(event).encode("utf-8", "replace")
    except (ValueError, TypeError, RecursionError, UnicodeError):
        pass
    try:
        text = json.dumps(_sanitise(event), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8", "replace")
    except Exception as exc:  # last resort: keep the event, say why its data is missing
        slim = {k: event.get(k) for k in ("id", "event_type", "init_timestamp", "end_timestamp")}
        slim["details"] = f"agentops could not serialise this event: {type(exc).__name__}"
        return json.dumps(_sanitise(slim)).encode()


def batch_body(events: list) -> bytes:
    """{"events": [...]} as JSON bytes. One C-encoder call for the whole batch; only when
    that fails (NaN, a cycle, an odd object) are the events encoded one by one."""
    try:
        return _ENCODER.encode({"events": events}).encode("utf-8", "replace")
    except (ValueError, TypeError, RecursionError, UnicodeError):
        return b'{"events":[' + b",".join(encode_event(e) for e in events) + b"]}"


def encode_json(payload: Any) -> bytes:
    try:
        return _ENCODER.encode(payload).encode("utf-8", "replace")
    except (ValueError, TypeError, RecursionError, UnicodeError):
        return json.dumps(_sanitise(payload), allow_nan=False).encode("utf-8", "replace")
