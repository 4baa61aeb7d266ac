"""Queue rollups for the days a write touched: once per batch, after commit, never failing it.

`schedule_rollups` is called inside the ingest transaction. It registers an on-commit callback,
so a worker never looks for rows that are not committed yet, and that callback sends at most
ONE Celery message for the whole call. Any failure to queue (broker down) is logged and left to
the periodic catch-up (`analytics.rollup_recent`): ingestion must not fail because analytics
cannot be queued.

The message is sent by task name (ROLLUP_TASK): this module is a leaf that the tasks import, never
the other way round. With CELERY_TASK_ALWAYS_EAGER (scripts, unit tests) the task runs here, at
commit, looked up by the same name.

Coalescing (Redis, and the embedded default's directory broker): a burst of batches for the same
project and day should cost one recompute, not one per batch. Each (project, day) has a short-lived
"pending" key; a call sends a message only for the days whose key it could create (Redis SET NX;
with the directory broker, a file created with O_EXCL under `<broker dir>/pending/`), and the
message waits COALESCE_SECONDS before running. The task deletes the keys of its days *before* it
reads the source rows, so every batch either created a key (and sent its own message) or found a
key whose task has not started reading yet — and that batch committed before looking — so no
batch's rows are ever missed. The key expires after PENDING_TTL seconds in case its message is
lost.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import date
from functools import partial
from pathlib import Path

import redis
from celery import Celery
from django.db import transaction

from agentops_site.broker import is_directory_broker
from agentops_site.celery import app as celery_app

logger = logging.getLogger(__name__)

ROLLUP_TASK = "analytics.rollup_days"

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


def _pending_dir(app: Celery) -> Path | None:
    """The directory broker's folder of pending-rollup markers, or None for other brokers."""
    if not is_directory_broker(app.conf.broker_url):
        return None
    folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
    return Path(folder) / "pending" if folder else None


def _claim_files(folder: Path, project_id: str, days: list[str]) -> list[str]:
    """claim_days for the directory broker: O_EXCL creation is the atomic SET NX; a marker older
    than PENDING_TTL (its message lost) is taken over."""
    folder.mkdir(parents=True, exist_ok=True)
    claimed = []
    for day in days:
        path = folder / f"{project_id}_{day}"
        for _ in range(2):
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.stat().st_mtime > PENDING_TTL:
                        path.unlink()
                        continue
                break
            claimed.append(day)
            break
    return claimed


def claim_pending(app: Celery, project_id: str, days: list[str]) -> tuple[list[str], bool]:
    """(the days this caller must queue, whether a pending-key store coalesces them)."""
    client = redis_client(app.conf.broker_url)
    if client is not None:
        return claim_days(client, project_id, days), True
    folder = _pending_dir(app)
    if folder is not None:
        return _claim_files(folder, project_id, days), True
    return days, False


def release_pending(app: Celery, project_id: str, days: list[str]) -> None:
    """Drop the pending keys of these days (the rollup task, before it reads any row)."""
    client = redis_client(app.conf.broker_url)
    if client is not None:
        release_days(client, project_id, days)
        return
    folder = _pending_dir(app)
    if folder is not None:
        for day in days:
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{project_id}_{day}").unlink()


def _send(project_id: str, days: list[str], app: Celery = celery_app) -> None:
    try:
        if app.conf.task_always_eager:
            app.tasks[ROLLUP_TASK].apply(args=(project_id, days))
            return
        days, coalesced = claim_pending(app, project_id, days)
        if not days:
            return
        try:
            app.send_task(
                ROLLUP_TASK,
                (project_id, days),
                countdown=COALESCE_SECONDS if coalesced else None,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except Exception:
            if coalesced:
                release_pending(app, project_id, days)
            raise
    except Exception:
        logger.exception(
            "could not queue the rollup of project %s days %s; the periodic catch-up will",
            project_id,
            days,
        )
