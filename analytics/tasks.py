"""Celery tasks: thin wrappers that parse their arguments and call the analytics modules.

Every task acknowledges late (a worker killed mid-task leaves the message to be redelivered;
each task is idempotent, so running it again is safe), retries with exponential backoff on
database connection errors, and has time limits.
"""

import logging
from datetime import date, timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from analytics import retention, rollups
from analytics.scheduling import ROLLUP_TASK, release_pending
from events import storage
from events.search import index_new_events
from sessions import services

logger = logging.getLogger(__name__)

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name=ROLLUP_TASK, soft_time_limit=240, time_limit=300, **TASK_OPTIONS)
def rollup_days_task(project_id: str, days: list[str]) -> int:
    """Recompute the rollups of these days (ISO dates) of one project."""
    app = rollup_days_task.app
    if not app.conf.task_always_eager:
        # Before reading any row: a batch that commits from now on queues its own rollup.
        try:
            release_pending(app, project_id, days)
        except Exception:
            logger.warning("could not release pending rollup keys", exc_info=True)
    done = rollups.rollup_days(project_id, [date.fromisoformat(d) for d in days])
    # The text search index follows the same batches, seconds behind (events/search.py).
    index_new_events()
    return len(done)


@shared_task(name="analytics.rollup_recent", soft_time_limit=240, time_limit=300, **TASK_OPTIONS)
def rollup_recent_task(window_seconds: int = 3600) -> int:
    """Catch-up: queue a recompute of every day that activity in the window may have touched,
    one message per project. Covers rollups whose message was never sent (broker down). Also
    keeps the events' BRIN summaries current (rollups.summarize_new_event_ranges) and the text
    search index caught up (events.search.index_new_events)."""
    rollups.summarize_new_event_ranges()
    index_new_events()
    since = timezone.now() - timedelta(seconds=window_seconds)
    touched = rollups.touched_days(since)
    for project_id, days in touched.items():
        rollup_days_task.delay(str(project_id), sorted(d.isoformat() for d in days))
    return len(touched)


@shared_task(name="analytics.expire_sessions", soft_time_limit=240, time_limit=300, **TASK_OPTIONS)
def expire_sessions_task() -> int:
    """End sessions that went silent as Indeterminate."""
    return services.expire_silent_sessions()


@shared_task(
    name="analytics.maintain_partitions", soft_time_limit=240, time_limit=300, **TASK_OPTIONS
)
def maintain_partitions_task() -> list[str]:
    """Create the event partitions of this month and the next ones ahead (Postgres); the names
    created. Hourly, so a month's table exists long before its first event."""
    return storage.backend().ensure_event_partitions()


@shared_task(name="analytics.purge_old_data", soft_time_limit=3000, time_limit=3300, **TASK_OPTIONS)
def purge_old_data_task() -> int:
    """Delete sessions past DATA_RETENTION_DAYS, in bounded chunks, and the queued OTLP write's
    week-old records of refused spans."""
    from events.otlp_queue import purge_old_records

    purge_old_records()
    return retention.purge_old_data().sessions
