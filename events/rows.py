"""One event as the export and the API give it, in AgentOps' shapes.

`event_row` is the reference: the Postgres export builds the same rows in SQL
(events/storage/postgres_export.py) and tests/test_export_sql.py holds the two equal.
"""

from events.models import Event
from sessions.totals import money

EXPORT_SECTIONS = ("actions", "llms", "tools", "errors", "apis")


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None


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


def event_row(event: Event) -> dict:
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


def comma_joined(items, per_chunk: int = 500):
    """Byte strings joined by commas, per_chunk at a time."""
    buffer: list[bytes] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= per_chunk:
            yield b",".join(buffer)
            buffer = []
    if buffer:
        yield b",".join(buffer)
