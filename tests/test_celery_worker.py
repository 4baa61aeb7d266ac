"""Analytics on a real Celery worker (subprocess) and the real Redis broker."""

from datetime import timedelta
from decimal import Decimal

from analytics.models import DailyRollup
from analytics.scheduling import schedule_rollups
from tests.analytics_data import DAY0, assert_rollups_match, make_event, make_session
from tests.celery_worker import celery_broker, eventually, start_worker

__all__ = ["celery_broker"]


def test_a_scheduled_rollup_runs_on_the_worker(celery_broker, project, tmp_path):
    session = make_session(project, start=DAY0, end=DAY0 + timedelta(minutes=2), state="Success")
    make_event(session, at=DAY0, model="gpt-4o", prompt=10, completion=5, cost=Decimal("0.01"))
    with start_worker(celery_broker, tmp_path):
        schedule_rollups(project.id, [DAY0.date()])
        eventually(lambda: DailyRollup.objects.filter(project=project).exists(), what="rollup")
    assert_rollups_match(project)
