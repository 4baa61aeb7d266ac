"""The storage seam on SQLite (the embedded default): plain ORM, writers serialised by SQLite's
IMMEDIATE transactions (see settings), so look-then-insert is safe."""

from collections.abc import Iterator

import orjson
from django.db import transaction

from events.models import Event
from events.rows import EXPORT_SECTIONS, comma_joined, event_row
from events.validation import EventRow
from projects.auth import KeyRevoked, touch_key
from projects.models import ApiKey
from sessions.models import Session
from sessions.services import SessionNotAvailable
from sessions.totals import add_totals, totals_of

EXPORT_CHUNK = 2000


def write_events(rows: list[EventRow], *, session_id, project_id, key_id, now) -> int:
    with transaction.atomic():
        key = (
            ApiKey.objects.filter(pk=key_id, project_id=project_id, revoked_at__isnull=True)
            .values_list("pk", "last_used_at")
            .first()
        )
        if key is None:
            raise KeyRevoked
        session = Session.objects.select_for_update().filter(id=session_id, project_id=project_id)
        if not session.exists():
            raise SessionNotAvailable
        existing = set(
            Event.objects.filter(id__in=[r.id for r in rows]).values_list("id", flat=True)
        )
        new = [r for r in rows if r.id not in existing]
        Event.objects.bulk_create(
            [
                Event(
                    id=r.id,
                    session_id=session_id,
                    project_id=project_id,
                    event_type=r.event_type,
                    init_timestamp=r.init_timestamp,
                    end_timestamp=r.end_timestamp,
                    received_at=now,
                    agent_id=r.agent_id,
                    name=r.name,
                    model=r.model,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    cost=r.cost,
                    cost_source=r.cost_source,
                    trigger_event_id=r.trigger_event_id,
                    payload=r.payload,
                    span_id=r.span_id,
                    parent_span_id=r.parent_span_id,
                )
                for r in new
            ],
            batch_size=500,
        )
        add_totals(session, totals_of(new), last_seen_at=now)
        touch_key(key_id, key[1])
    return len(new)


def export_chunks(session_id) -> Iterator[tuple[int, bytes]]:
    for index, section in enumerate(EXPORT_SECTIONS):
        events = (
            Event.objects.filter(session_id=session_id, event_type=section)
            .order_by("init_timestamp", "id")
            .iterator(chunk_size=EXPORT_CHUNK)
        )
        for chunk in comma_joined(orjson.dumps(event_row(e)) for e in events):
            yield index, chunk


def timeline_rows(session_id, limit: int) -> list[tuple]:
    rows = (
        Event.objects.filter(session_id=session_id)
        .order_by("init_timestamp", "id")
        .values_list(
            "id", "event_type", "init_timestamp", "end_timestamp", "name", "model", "prompt_tokens"
        )
    )
    return [
        (i, t, init.timestamp(), end.timestamp() if end else None, n, m, p)
        for i, t, init, end, n, m, p in rows[:limit]
    ]


def lock_project_for_rollups(project_id) -> None:
    """Nothing to take: every transaction here is BEGIN IMMEDIATE, which serialises writers."""


def summarize_new_event_ranges() -> None:
    """SQLite has no BRIN index."""
    return None
