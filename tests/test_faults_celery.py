"""Analytics down: ingest is unaffected, and the rollups catch up once the worker (or the broker)
is back. A real Celery worker on the real Redis broker (tests/celery_worker.py)."""

from datetime import timedelta

from analytics.models import DailyRollup
from analytics.tasks import rollup_recent_task
from events.models import Event
from tests.analytics_data import assert_rollups_match
from tests.celery_worker import celery_broker, eventually, sending_to, start_worker
from tests.v2 import T0, event, llm, send, start

__all__ = ["celery_broker"]

# An hour of an agent's life that crosses midnight, one batch a minute.
HOUR_START = T0.replace(hour=23, minute=30)


def ingest_an_hour(client, api_key) -> int:
    _, jwt = start(client, api_key, at=HOUR_START)
    sent = 0
    for minute in range(60):
        at = HOUR_START + timedelta(minutes=minute)
        batch = [llm(at=at, cost="0.01"), event("tools", at=at, name="search")]
        if minute % 10 == 0:
            batch.append(event("errors", at=at, error_type="Timeout"))
        result = send(client, jwt, batch)  # 200, or send() fails the test
        assert result["accepted"] == len(batch)
        sent += len(batch)
    return sent


def test_an_hour_of_ingest_with_the_worker_down_then_rollups_catch_up(
    celery_broker, client, api_key, project, tmp_path
):
    sent = ingest_an_hour(client, api_key)
    assert Event.objects.filter(project=project).count() == sent
    assert not DailyRollup.objects.filter(project=project).exists()
    assert celery_broker.queued() >= 1  # the rollups wait in Redis for a worker
    with start_worker(celery_broker, tmp_path):
        days = {HOUR_START.date(), (HOUR_START + timedelta(hours=1)).date()}
        eventually(
            lambda: (
                DailyRollup.objects.filter(project=project, day__in=days).count() == 2
                and celery_broker.queued() == 0
            ),
            timeout=60,
            what="rollups of both days",
        )
        eventually(lambda: _matches(project), timeout=30, what="rollups equal to the events")


def _matches(project) -> bool:
    try:
        assert_rollups_match(project)
    except AssertionError:
        return False
    return True


def test_with_the_broker_down_ingest_succeeds_and_the_catch_up_repairs_rollups(
    celery_broker, client, api_key, project, tmp_path
):
    # Nothing listens on port 9: every publish fails, fast.
    with sending_to("redis://127.0.0.1:9/0", celery_broker.queue):
        sent = ingest_an_hour(client, api_key)
    assert Event.objects.filter(project=project).count() == sent
    assert celery_broker.queued() == 0 and not DailyRollup.objects.filter(project=project).exists()
    with start_worker(celery_broker, tmp_path):
        # The periodic catch-up (beat runs it every 15 minutes) finds what the events touched.
        rollup_recent_task.delay(window_seconds=3600)
        eventually(lambda: _matches(project), timeout=60, what="rollups after the catch-up")
