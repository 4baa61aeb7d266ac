"""Session stats and the streamed export, in AgentOps' shapes."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from operator import itemgetter

import orjson
from django.db import connection
from psycopg.types.json import set_json_loads

from events import export_sql
from events.models import Event
from sessions.models import Session

EXPORT_SECTIONS = ("actions", "llms", "tools", "errors", "apis")
EXPORT_CHUNK = 2000


def money(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def session_stats(session: Session) -> dict:
    return {
        "session_id": str(session.id),
        "init_timestamp": iso(session.init_timestamp),
        "end_timestamp": iso(session.end_timestamp),
        "end_state": session.end_state,
        "duration_seconds": session.duration_seconds,
        "events": session.event_count,
        "llms": session.llm_count,
        "tools": session.tool_count,
        "actions": session.action_count,
        "errors": session.error_count,
        "apis": session.api_count,
        "prompt_tokens": session.prompt_tokens,
        "completion_tokens": session.completion_tokens,
        "total_tokens": session.prompt_tokens + session.completion_tokens,
        "cost": money(session.cost),
        "cost_unknown_events": session.cost_unknown_events,
    }


def session_fields(session: Session, tags: list[str]) -> dict:
    return {
        "session_id": str(session.id),
        "project_id": str(session.project_id),
        "init_timestamp": iso(session.init_timestamp),
        "end_timestamp": iso(session.end_timestamp),
        "end_state": session.end_state,
        "end_state_reason": session.end_state_reason or None,
        "tags": tags,
        "host_env": session.host_env,
        "video": session.video or None,
        "sdk_version": session.sdk_version or None,
    }


def wrap_message_content(value) -> dict | None:
    """AgentOps' prompt/completion shape: chatml messages or a plain string."""
    if value is None:
        return None
    if isinstance(value, dict) and value.get("type") in ("chatml", "string"):
        return value
    if isinstance(value, str):
        return {"type": "string", "string": value}
    if isinstance(value, list):
        return {"type": "chatml", "messages": value}
    if isinstance(value, dict) and "messages" in value:
        return {"type": "chatml", "messages": value["messages"]}
    if isinstance(value, dict):
        return {"type": "chatml", "messages": [value]}
    return {"type": "string", "string": str(value)}


def event_row(event: "Event | StoredEvent") -> dict:
    """One export row: the payload whole, plus the promoted columns in AgentOps' names."""
    row = dict(event.payload)
    row.update(
        id=str(event.id),
        event_type=event.event_type,
        init_timestamp=iso(event.init_timestamp),
        end_timestamp=iso(event.end_timestamp),
        agent_id=str(event.agent_id) if event.agent_id else None,
    )
    if event.event_type == "llms":
        row.update(
            model=event.model or None,
            prompt=wrap_message_content(row.get("prompt")),
            completion=wrap_message_content(row.get("completion")),
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cost=money(event.cost),
            cost_source=event.cost_source,
        )
    elif event.event_type == "tools":
        row["name"] = event.name or None
    elif event.event_type == "actions":
        row["action_type"] = event.name or None
    elif event.event_type == "errors":
        row.update(
            error_type=event.name or None,
            code=row.get("code"),
            details=row.get("details"),
            logs=row.get("logs"),
            trigger_event_id=str(event.trigger_event_id) if event.trigger_event_id else None,
            trigger_event_type=row.get("trigger_event_type"),
            timestamp=iso(event.init_timestamp),
        )
    if event.cost is not None and event.event_type != "llms":
        row["cost"] = money(event.cost)
    return row


@dataclass(slots=True)
class StoredEvent:
    """The columns of an Event that an export row needs, read without building a model."""

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
    cost_source: str
    trigger_event_id: uuid.UUID | None
    payload: dict


_STORED_COLUMNS = ", ".join(StoredEvent.__slots__)


def section_events(session_id, section: str) -> Iterator:
    """A session's events of one type in time order, streamed in EXPORT_CHUNK-row fetches.

    The export's path where the database is not Postgres (SQLite); the reference the SQL path
    is tested against. On Postgres the rows come from a binary server-side cursor with orjson
    decoding the payload (model instances cost ~40% more).
    """
    if connection.vendor != "postgresql":
        yield from (
            Event.objects.filter(session_id=session_id, event_type=section)
            .order_by("init_timestamp", "id")
            .iterator(chunk_size=EXPORT_CHUNK)
        )
        return
    connection.ensure_connection()
    # WITH HOLD, as Django's own server-side cursors in autocommit: the rows are read after
    # the view returned, outside any transaction.
    with connection.connection.cursor(
        name=f"export_{uuid.uuid4().hex}", binary=True, withhold=True
    ) as cursor:
        set_json_loads(orjson.loads, cursor)
        cursor.itersize = EXPORT_CHUNK
        cursor.execute(
            f"SELECT {_STORED_COLUMNS} FROM events_event "
            "WHERE session_id = %s AND event_type = %s ORDER BY init_timestamp, id",
            [session_id, section],
        )
        for row in cursor:
            yield StoredEvent(*row)


def stream_export(session: Session, tags: list[str]) -> Iterator[bytes]:
    """The export document, produced section by section so memory stays flat at any size."""
    yield b'{"session":' + orjson.dumps(session_fields(session, tags))
    yield b',"stats":' + orjson.dumps(session_stats(session))
    if connection.vendor == "postgresql":
        chunks = sql_section_chunks(session.id)
    else:
        chunks = python_section_chunks(session.id)
    yield from _sections_document(chunks)
    yield b"}"


def python_section_chunks(session_id) -> Iterator[tuple[int, bytes]]:
    """(section index, rows joined by commas), each row built by event_row()."""
    for index, section in enumerate(EXPORT_SECTIONS):
        rows = (orjson.dumps(event_row(e)) for e in section_events(session_id, section))
        for chunk in _comma_joined(rows):
            yield index, chunk


_EXPORT_COPY = export_sql.export_query(EXPORT_SECTIONS)


def sql_section_chunks(session_id) -> Iterator[tuple[int, bytes]]:
    """(section index, rows joined by commas), each row's JSON written by Postgres.

    One COPY streams the whole session: Python only strips its framing and joins the rows
    (see events/export_sql.py).
    """
    connection.ensure_connection()
    with connection.connection.transaction(), connection.connection.cursor() as cursor:
        # JIT spent ~0.4 s compiling the row expressions on the 100k-event session (off for
        # every connection in settings too; said here as this query depends on it); parallel
        # workers only take the core this process needs to forward the rows.
        cursor.execute("SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0")
        with cursor.copy(_EXPORT_COPY, [session_id]) as copy:
            yield from export_sql.section_chunks(copy, _wrap_numbers_in_python)


def _wrap_numbers_in_python(row_json) -> bytes:
    """A row from the SQL path with its prompt and completion wrapped by event_row()'s rules
    (the SQL leaves a number as it is; wrapping an already wrapped value keeps it)."""
    row = orjson.loads(row_json)
    row["prompt"] = wrap_message_content(row["prompt"])
    row["completion"] = wrap_message_content(row["completion"])
    return orjson.dumps(row)


def _sections_document(chunks: Iterator[tuple[int, bytes]]) -> Iterator[bytes]:
    """',"actions":[...],"llms":[...]...' from (section index, rows) chunks in section order;
    every section appears, an empty one as []."""
    following = 0
    for index, section_chunks in groupby(chunks, key=itemgetter(0)):
        for empty in EXPORT_SECTIONS[following:index]:
            yield b',"' + empty.encode() + b'":[]'
        separator = b',"' + EXPORT_SECTIONS[index].encode() + b'":['
        for _, rows in section_chunks:
            yield separator + rows
            separator = b","
        yield b"]"
        following = index + 1
    for empty in EXPORT_SECTIONS[following:]:
        yield b',"' + empty.encode() + b'":[]'


def _comma_joined(items, per_chunk: int = 500) -> Iterator[bytes]:
    """Rows joined by commas, per_chunk at a time."""
    buffer: list[bytes] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= per_chunk:
            yield b",".join(buffer)
            buffer = []
    if buffer:
        yield b",".join(buffer)
