"""Retention: with DATA_RETENTION_DAYS set, old sessions are deleted with everything they own.

A session is old when both its start (`init_timestamp`) and its last activity (`last_seen_at`)
are more than DATA_RETENTION_DAYS days ago, so a long-running session that is still sending is
never cut from under its agent. Its events, tag links and agents go with it; Tag rows stay (they
are per-project names), and so do the daily rollups (see rollups.frozen_before).

On Postgres the events table is partitioned by month of the events' time
(events/storage/partitions.py): first every month wholly before the cutoff is dropped as a
table (instant, no dead tuples, no vacuum), unless a kept session still has events in it. A
session spanning the boundary is decided as a whole by the rule above: if it is old it goes,
its events in a dropped month with the month and the rest row by row below; if it is kept
(still sending), it keeps all its events and its month waits for a later run. Then the
sessions and the events left (the boundary month, the default partition, SQLite) go row by row.

Deletion goes in bounded chunks, each its own short transaction: events first, EVENT_CHUNK rows
at a time, then the sessions SESSION_CHUNK at a time, so neither table is locked for long and a
purge interrupted half-way simply continues at the next run.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events import storage
from events.models import Event
from sessions.models import Session

logger = logging.getLogger(__name__)

SESSION_CHUNK = 500
EVENT_CHUNK = 5000


@dataclass
class PurgeResult:
    sessions: int = 0
    events: int = 0  # those of dropped partitions as Postgres's estimate (reltuples)
    partitions: list[str] = field(default_factory=list)  # monthly event tables dropped whole


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    if settings.DATA_RETENTION_DAYS <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=settings.DATA_RETENTION_DAYS)


def old_sessions(cutoff: datetime):
    return Session.objects.filter(init_timestamp__lt=cutoff, last_seen_at__lt=cutoff)


def purge_old_data(*, now: datetime | None = None) -> PurgeResult:
    """Delete what is past the retention period; DATA_RETENTION_DAYS=0 keeps everything."""
    result = PurgeResult()
    cutoff = retention_cutoff(now)
    if cutoff is None:
        return result
    result.partitions, result.events = storage.backend().drop_event_partitions_before(cutoff)
    while True:
        session_ids = list(
            old_sessions(cutoff)
            .order_by("init_timestamp")
            .values_list("id", flat=True)[:SESSION_CHUNK]
        )
        if not session_ids:
            break
        while True:
            event_ids = list(
                Event.objects.filter(session_id__in=session_ids).values_list("id", flat=True)[
                    :EVENT_CHUNK
                ]
            )
            if not event_ids:
                break
            with transaction.atomic():
                # Event has no dependants, so this is one DELETE ... WHERE id IN (...).
                deleted, _ = Event.objects.filter(id__in=event_ids).delete()
            result.events += deleted
        with transaction.atomic():
            # Re-check age: a session that received a request meanwhile is kept, with the
            # events it still has. Events that arrived since the loop above go with the rest.
            chunk = old_sessions(cutoff).filter(id__in=session_ids)
            result.events += Event.objects.filter(session__in=chunk).delete()[0]
            deleted, per_model = chunk.delete()
        result.sessions += per_model.get(Session._meta.label, 0)
        if len(session_ids) < SESSION_CHUNK:
            break
    if result.sessions or result.partitions:
        logger.info(
            "retention: deleted %d session(s) and %d event(s) older than %s (partitions: %s)",
            result.sessions,
            result.events,
            cutoff.isoformat(),
            ", ".join(result.partitions) or "none",
        )
    return result
