"""The storage seam on SQLite (the embedded default): plain ORM, writers serialised by SQLite's
IMMEDIATE transactions (see settings), so look-then-insert is safe."""

import json
from collections.abc import Iterator

import orjson
from django.db import transaction
from django.db.models import Q

from events.models import Event
from events.rows import EXPORT_SECTIONS, comma_joined, event_row
from events.storage import TIMELINE_COLUMNS
from events.validation import EventRow
from projects.auth import KeyRevoked, touch_key
from projects.models import ApiKey
from projects.services import record_span_arrival
from sessions.models import Protocol, Session
from sessions.services import SessionNotAvailable, set_trace_tags
from sessions.totals import add_totals, totals_of

EXPORT_CHUNK = 2000

# No search index: the embedded default's search scans the events themselves.
HAS_SEARCH_INDEX = False


def sessions_matching(project_id, phrase: str):
    """Ids of the project's sessions with an event whose name, model or payload contains
    `phrase` (a scan; LIKE is case-insensitive for ASCII). The payload is matched as its JSON
    text, which Django's JSONField writes with every non-ASCII character and quote escaped
    ("caf\\u00e9", "\\"quoted\\""): the phrase is looked for as written and as JSON would
    write it. Keys are part of that text, so a phrase that is also a key ("content") matches
    every event that has the key (Postgres searches the extracted text only)."""
    from django.db.models import Q

    condition = Q(name__icontains=phrase) | Q(model__icontains=phrase)
    condition |= Q(payload__icontains=phrase)
    escaped = json.dumps(phrase)[1:-1]
    if escaped != phrase:
        condition |= Q(payload__icontains=escaped)
    return Event.objects.filter(project_id=project_id).filter(condition).values("session_id")


def write_events(rows: list[EventRow], *, session_id, project_id, key_id, now) -> int:
    with transaction.atomic():
        key = _live_key(key_id, project_id)
        session = Session.objects.select_for_update().filter(id=session_id, project_id=project_id)
        if not session.exists():
            raise SessionNotAvailable
        new = _insert_new(rows, [session_id] * len(rows), project_id=project_id, now=now)
        add_totals(session, totals_of(new), last_seen_at=now)
        touch_key(key_id, key[1])
    return len(new)


def _live_key(key_id, project_id, live_at=None):
    """(pk, last_used_at, last_span_at, last_token_at) of the grant's key; KeyRevoked if none,
    or if it was revoked by `live_at` (when given: a queued request's reception time)."""
    live = Q(revoked_at__isnull=True)
    if live_at is not None:
        live |= Q(revoked_at__gt=live_at)
    key = (
        ApiKey.objects.filter(live, pk=key_id, project_id=project_id)
        .values_list("pk", "last_used_at", "last_span_at", "last_token_at")
        .first()
    )
    if key is None:
        raise KeyRevoked
    return key


def _insert_new(rows, session_ids, *, project_id, now) -> list[EventRow]:
    """Insert the rows whose id is not stored yet (writers are serialised: look, then insert);
    the rows inserted."""
    existing = set(Event.objects.filter(id__in=[r.id for r in rows]).values_list("id", flat=True))
    new = [(r, s) for r, s in zip(rows, session_ids, strict=True) if r.id not in existing]
    Event.objects.bulk_create(
        [
            Event(
                id=r.id,
                session_id=sid,
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
            for r, sid in new
        ],
        batch_size=500,
    )
    return [r for r, _ in new]


def write_traces(traces, *, project_id, key_id, now, received_at=None) -> dict:
    """What postgres.write_traces does, in one IMMEDIATE transaction: {session_id: rows
    inserted} for the traces that are sessions of the project; KeyRevoked."""
    written: dict = {}
    with transaction.atomic():
        key = _live_key(key_id, project_id, live_at=received_at)
        Session.objects.bulk_create(
            [
                Session(
                    id=t.session_id,
                    project_id=project_id,
                    init_timestamp=t.started,
                    last_seen_at=now,
                    protocol=Protocol.OTLP,
                    sdk_version=t.sdk_version,
                )
                for t in traces
            ],
            ignore_conflicts=True,
        )
        ours = {
            sid: init
            for sid, init in Session.objects.filter(
                id__in=[t.session_id for t in traces], project_id=project_id
            ).values_list("id", "init_timestamp")
        }
        for t in traces:
            if t.session_id not in ours:
                continue
            new = _insert_new(t.rows, [t.session_id] * len(t.rows), project_id=project_id, now=now)
            init = min(ours[t.session_id], t.started)
            also = {"last_seen_at": now, "init_timestamp": init}
            if t.root is not None:
                root = t.root
                also.update(
                    end_state=root.end_state,
                    end_state_reason=root.end_state_reason,
                    end_timestamp=max(root.end_timestamp, init),
                    metadata=root.metadata,
                    root_span=root.span,
                )
                if root.host_env is not None:
                    also["host_env"] = root.host_env
            add_totals(Session.objects.filter(id=t.session_id), totals_of(new), **also)
            if t.root is not None:
                set_trace_tags(t.session_id, project_id, t.root.tags)
            written[t.session_id] = len(new)
        record_span_arrival(*key, now)
    return written


def store_otlp_batch(*, project_id, key_id, received_at, encoding, body, span_count) -> int:
    """What postgres.store_otlp_batch does, through the ORM."""
    from events.models import OtlpBatch

    return OtlpBatch.objects.create(
        project_id=project_id,
        key_id=key_id,
        received_at=received_at,
        encoding=encoding,
        body=body,
        span_count=span_count,
    ).pk


def otlp_batch_bodies(ids) -> dict[int, bytes]:
    """{id: body} of these OTLP batches."""
    from events.models import OtlpBatch

    return {
        pk: bytes(body)
        for pk, body in OtlpBatch.objects.filter(pk__in=list(ids)).values_list("pk", "body")
    }


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
        .values_list("id", "event_type", "init_timestamp", "end_timestamp", *TIMELINE_COLUMNS)
    )
    out = []
    for values in rows[:limit]:
        (i, kind, init, end, name, model, prompt, completion, agent, cost, span, parent,
         trigger) = values  # fmt: skip
        out.append(
            (str(i), kind, init.timestamp(), end.timestamp() if end else None, name, model,
             (prompt or 0) + (completion or 0), None if agent is None else str(agent), cost,
             span, parent, None if trigger is None else str(trigger))
        )  # fmt: skip
    return out


def lock_project_for_rollups(project_id) -> None:
    """Nothing to take: every transaction here is BEGIN IMMEDIATE, which serialises writers."""


def summarize_new_event_ranges() -> None:
    """SQLite has no BRIN index."""
    return None


def ensure_event_partitions(now=None) -> list[str]:
    """SQLite keeps one events table: nothing to create."""
    return []


def drop_event_partitions_before(cutoff) -> tuple[list[str], int]:
    """SQLite keeps one events table: retention deletes rows (analytics/retention.py)."""
    return [], 0
