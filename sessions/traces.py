"""Reads of a session as an OpenTelemetry trace: its spans (from the events' span ids and the
stored root span) for AgentOps' public API (api/public/). The session page's tree is
dashboard/trace.py."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from events.models import Event
from events.spans import span_attributes
from sessions.models import Session
from sessions.totals import known_cost


@dataclass
class SpanView:
    span_id: str
    parent_span_id: str | None
    otel: dict  # events.spans.span_document's shape (name, kind, status, attributes ...)
    event: Event | None  # None for an AgentOps session root (kept on the session)


def _span_document(payload) -> dict | None:
    """The event's span document with its attributes whole (events.spans.span_attributes)."""
    otel = payload.get("otel") if isinstance(payload, dict) else None
    if not isinstance(otel, dict):
        return None
    return {**otel, "attributes": span_attributes(payload)}


def _nanos_iso(nanos) -> str | None:
    if not nanos:
        return None
    return datetime.fromtimestamp(int(nanos) / 1e9, UTC).isoformat()


def trace_spans(session: Session) -> list[SpanView]:
    """Every span of the session's trace stored so far, root first then by start time."""
    spans: dict[str, SpanView] = {}
    events = Event.objects.filter(session_id=session.id, span_id__isnull=False).order_by(
        "init_timestamp", "id"
    )
    for event in events:
        otel = _span_document(event.payload)
        if otel is not None and "name" in otel and event.span_id not in spans:
            spans[event.span_id] = SpanView(event.span_id, event.parent_span_id, otel, event)
    ordered = list(spans.values())
    root = session.root_span
    if isinstance(root, dict) and root.get("span_id") and root["span_id"] not in spans:
        ordered.insert(0, SpanView(root["span_id"], None, root, None))
    return ordered


def span_summary(span: SpanView) -> dict:
    """AgentOps' public span summary (§6): ids as hex, times ISO 8601 UTC, duration in ns."""
    otel = span.otel
    start, end = otel.get("start_time_unix_nano") or 0, otel.get("end_time_unix_nano") or 0
    status = otel.get("status") or {}
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "span_name": otel.get("name"),
        "span_kind": otel.get("kind"),
        "start_time": _nanos_iso(start),
        "end_time": _nanos_iso(end),
        "duration": max(int(end) - int(start), 0) if start and end else None,
        "status_code": status.get("code"),
        "status_message": status.get("message"),
    }


def nested(flat: dict) -> dict:
    """Dotted keys as nested objects, numeric parts as lists: {"gen_ai.prompt.0.content": x}
    -> {"gen_ai": {"prompt": [{"content": x}]}}. A key that is both a value and a prefix keeps
    its value under "_value"."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else {"_value": child}
                node[part] = child
            node = child
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]["_value"] = value
        else:
            node[parts[-1]] = value
    return _lists(tree)


def _lists(node):
    if not isinstance(node, dict):
        return node
    converted = {k: _lists(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def find_span(*, project_id: uuid.UUID, span_id: str) -> tuple[Session, SpanView] | None:
    """A span of the project by its 16-hex id (span ids are random 64-bit values; the first
    match wins). Scans the project's events by span id: there is no index on span_id (every
    index costs ingest), so this public-API read is slow on very large projects."""
    span_id = span_id.lower()
    event = (
        Event.objects.filter(project_id=project_id, span_id=span_id)
        .exclude(event_type="errors")
        .select_related("session")
        .first()
    )
    if event is not None:
        otel = _span_document(event.payload) or {}
        return event.session, SpanView(span_id, event.parent_span_id, otel, event)
    session = Session.objects.filter(project_id=project_id, root_span__span_id=span_id).first()
    if session is not None:
        return session, SpanView(span_id, None, session.root_span, None)
    return None


def cost_text(value: Decimal | None) -> str | None:
    """Money as AgentOps' public API writes it: a string with 7 decimals; unknown is null."""
    return None if value is None else f"{value:.7f}"


def _usage(attrs: dict, *keys: str) -> int:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def span_metrics(span: SpanView) -> dict:
    attrs = span.otel.get("attributes") or {}
    event = span.event
    prompt = (event.prompt_tokens if event else None) or 0
    completion = (event.completion_tokens if event else None) or 0
    total = prompt + completion
    code = (span.otel.get("status") or {}).get("code")
    cost = event.cost if event is not None else None
    return {
        "total_tokens": total,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cache_read_input_tokens": _usage(
            attrs, "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_read.input_tokens"
        ),
        "reasoning_tokens": _usage(attrs, "gen_ai.usage.reasoning_tokens"),
        "success_tokens": total if code == "OK" else 0,
        "fail_tokens": total if code == "ERROR" else 0,
        "indeterminate_tokens": total if code not in ("OK", "ERROR") else 0,
        "prompt_cost": None,  # we price a call whole, not its two halves
        "completion_cost": None,
        "total_cost": cost_text(cost),
        "cost_source": event.cost_source if event is not None else None,
    }


def trace_metrics(session: Session, spans: list[SpanView]) -> dict:
    codes = [(s.otel.get("status") or {}).get("code") for s in spans]
    cost = known_cost(session.cost, session.cost_unknown_events)
    return {
        "span_count": len(spans),
        "trace_count": 1,
        "success_count": codes.count("OK"),
        "fail_count": codes.count("ERROR"),
        "indeterminate_count": len(codes) - codes.count("OK") - codes.count("ERROR"),
        "prompt_tokens": session.prompt_tokens,
        "completion_tokens": session.completion_tokens,
        "cache_read_input_tokens": sum(
            span_metrics(s)["cache_read_input_tokens"] for s in spans if s.event
        ),
        "reasoning_tokens": sum(span_metrics(s)["reasoning_tokens"] for s in spans if s.event),
        "total_tokens": session.prompt_tokens + session.completion_tokens,
        "prompt_cost": None,
        "completion_cost": None,
        "average_cost_per_trace": cost_text(cost),
        "total_cost": cost_text(cost),
        "cost_unknown_events": session.cost_unknown_events,
    }
