"""Celery tasks of the queued OTLP write (events/otlp_queue.py): thin wrappers.

Like analytics/tasks.py: acknowledged late (a worker killed mid-write leaves the message to be
redelivered; the write is exactly once), retried with backoff while the database is away.
"""

from celery import shared_task

from analytics.tasks import TASK_OPTIONS
from events import otlp_queue


@shared_task(name=otlp_queue.PROCESS_TASK, soft_time_limit=240, time_limit=300, **TASK_OPTIONS)
def process_otlp_batch_task(batch_id: int) -> int:
    """Write one accepted `POST /v1/traces` request; the spans stored (0 when already done)."""
    result = otlp_queue.process_batch(batch_id)
    return result.accepted_spans if result is not None else 0


@shared_task(
    name="events.process_pending_otlp", soft_time_limit=540, time_limit=600, **TASK_OPTIONS
)
def process_pending_otlp_task() -> int:
    """The sweep: write the batches whose message was lost; how many."""
    return otlp_queue.process_pending()
