"""The Celery wiring of the analytics tasks: names the beat schedule uses, delivery guarantees,
retries on database errors (shown on a real worker whose database is unreachable)."""

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError

from agentops_site.celery import app
from analytics.tasks import rollup_days_task
from tests.analytics_data import DAY0
from tests.celery_worker import celery_broker, start_worker

__all__ = ["celery_broker"]

ANALYTICS_TASKS = [
    "analytics.rollup_days",
    "analytics.rollup_recent",
    "analytics.expire_sessions",
    "analytics.purge_old_data",
]


def test_every_scheduled_task_exists():
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry


@pytest.mark.parametrize("name", ANALYTICS_TASKS)
def test_tasks_ack_late_retry_on_database_errors_and_have_time_limits(name):
    task = app.tasks[name]
    assert task.acks_late and task.reject_on_worker_lost
    assert set(task.autoretry_for) == {OperationalError, InterfaceError}
    assert task.retry_backoff and task.max_retries
    assert 0 < task.soft_time_limit < task.time_limit
    # A message must not be redelivered while its task may still legitimately be running.
    assert task.time_limit < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]


def test_a_rollup_retries_with_backoff_when_the_database_is_down(celery_broker, tmp_path, project):
    unreachable = "postgres://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    with start_worker(celery_broker, tmp_path, DATABASE_URL=unreachable) as worker:
        rollup_days_task.delay(str(project.id), [DAY0.date().isoformat()])
        worker.wait_for_log("retry: Retry in", timeout=60)
        assert "OperationalError" in worker.output()
