"""ORM builders for dashboard tests: sessions with events whose cached totals
equal what the events say (as ingestion keeps them). Not for the demo data: that goes through
the real ingestion endpoints (dashboard/demo_data.py)."""

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from events.models import Event
from sessions.models import Session, SessionTag, Tag
from sessions.totals import set_totals_from_events


def make_session(
    project,
    *,
    start: datetime,
    end_state: str | None = "Success",
    reason: str = "",
    tags: tuple[str, ...] = (),
    duration: timedelta = timedelta(minutes=2),
    host_env: dict | None = None,
    video: str = "",
) -> Session:
    session = Session.objects.create(
        id=uuid.uuid4(),
        project=project,
        init_timestamp=start,
        end_timestamp=start + duration if end_state else None,
        end_state=end_state,
        end_state_reason=reason,
        last_seen_at=start + duration,
        host_env=host_env,
        video=video,
    )
    for name in tags:
        tag, _ = Tag.objects.get_or_create(project=project, name=name)
        SessionTag.objects.create(session=session, tag=tag)
    return session


def add_event(session: Session, event_type: str, *, at: datetime, **fields) -> Event:
    fields.setdefault("end_timestamp", at + timedelta(milliseconds=800))
    event = Event(
        id=fields.pop("id", uuid.uuid4()),
        session=session,
        project_id=session.project_id,
        event_type=event_type,
        init_timestamp=at,
        **fields,
    )
    event.save(force_insert=True)
    return event


def llm(session, *, at, model="gpt-4o", prompt=None, completion=None, pt=100, ct=50, cost="0.001"):
    return add_event(
        session,
        "llms",
        at=at,
        model=model,
        prompt_tokens=pt,
        completion_tokens=ct,
        cost=Decimal(cost) if cost is not None else None,
        cost_source="sdk" if cost is not None else "unknown",
        payload={
            "prompt": prompt if prompt is not None else [{"role": "user", "content": "Hi"}],
            "completion": completion
            if completion is not None
            else {"role": "assistant", "content": "Hello"},
        },
    )


def refresh_totals(session: Session) -> Session:
    """Set the cached totals from the events (as ingest maintains them) and reload the row."""
    set_totals_from_events(session.pk)
    session.refresh_from_db()
    return session
