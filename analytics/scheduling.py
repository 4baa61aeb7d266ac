"""Queue rollups for the days a write touched: once per batch, after commit, never failing it.

`schedule_rollups` is called inside the ingest transaction. It registers an on-commit callback,
so a worker never looks for rows that are not committed yet, and that callback sends at most
ONE Celery message for the whole call. Any failure to queue (broker down) is logged and left to
the periodic catch-up (`analytics.rollup_recent`): ingestion must not fail because analytics
cannot be queued.

Coalescing (Redis broker only): a burst of batches for the same project and day should cost one
recompute, not one per batch. Each (project, day) has a short-lived "pending" key; a call sends
a message only for the days whose key it could create (SET NX), and the message waits
COALESCE_SECONDS before running. The task deletes the keys of its days *before* it reads the
source rows, so every batch either created a key (and sent its own message) or found a key whose
task has not started reading yet — and that batch committed before looking — so no batch's rows
are ever missed. The key expires after PENDING_TTL seconds in case its message is lost.
"""

import logging
import threading
from collections.abc import Iterable
from datetime import date
from functools import partial

import redis
from django.db import transaction

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 2
PENDING_TTL = 600
# Publishing happens in the request that ingested: try briefly, then leave it to the catch-up.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def schedule_rollups(project_id, days: Iterable[date]) -> None:
    """Recompute these days of the project's rollups once the current transaction commits."""
    day_list = sorted({d.isoformat() for d in days})
    if not day_list:
        return
    transaction.on_commit(partial(_send, str(project_id), day_list))


def pending_key(project_id: str, day: str) -> str:
    return f"analytics:rollup-pending:{project_id}:{day}"


def redis_client(broker_url: str | None) -> redis.Redis | None:
    """A client for the broker's Redis, or None when the broker is not Redis."""
    if not broker_url or not broker_url.startswith(("redis://", "rediss://")):
        return None
    with _clients_lock:
        client = _clients.get(broker_url)
        if client is None:
            client = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
            _clients[broker_url] = client
        return client


def claim_days(client: redis.Redis, project_id: str, days: list[str]) -> list[str]:
    """The days no queued rollup already covers; this caller now owns their pending keys."""
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.set(pending_key(project_id, day), 1, nx=True, ex=PENDING_TTL)
    return [day for day, created in zip(days, pipe.execute(), strict=True) if created]


def release_days(client: redis.Redis, project_id: str, days: list[str]) -> None:
    client.delete(*[pending_key(project_id, day) for day in days])


def _send(project_id: str, days: list[str]) -> None:
    from analytics.tasks import rollup_days_task  # the tasks import models; keep this import light

    try:
        app = rollup_days_task.app
        if app.conf.task_always_eager:
            rollup_days_task.apply(args=(project_id, days))
            return
        client = redis_client(app.conf.broker_url)
        if client is not None:
            days = claim_days(client, project_id, days)
            if not days:
                return
        try:
            rollup_days_task.apply_async(
                (project_id, days),
                countdown=COALESCE_SECONDS if client is not None else None,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception:
            if client is not None:
                release_days(client, project_id, days)
            raise
    except Exception:
        logger.exception(
            "could not queue the rollup of project %s days %s; the periodic catch-up will",
            project_id,
            days,
        )
