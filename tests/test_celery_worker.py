"""Analytics on a real Celery worker (a subprocess) and the real Redis broker.

The test process sends through the real ingestion endpoints (or the real scheduling call); the
worker reads the committed rows of the test database and writes the rollups.
"""

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from django.db import connection

from analytics.models import DailyRollup, ModelDailyRollup
from analytics.scheduling import pending_key, schedule_rollups
from analytics.tasks import expire_sessions_task, purge_old_data_task, rollup_days_task
from events.models import Event
from events.storage import is_postgres
from sessions.models import Agent, Session, SessionTag, Tag
from tests.analytics_data import DAY0, assert_rollups_match, make_event, make_session
from tests.celery_worker import celery_broker, eventually, start_worker
from tests.v2 import T0, event, llm, send, start

__all__ = ["celery_broker"]

D0 = T0.date()


def rollup_of(project, day):
    return DailyRollup.objects.filter(project=project, day=day).first()


def test_an_ingest_through_the_endpoint_triggers_its_rollup(
    celery_broker, client, api_key, project, tmp_path
):
    with start_worker(celery_broker, tmp_path) as worker:
        _, jwt = start(client, api_key, at=T0)
        send(client, jwt, [llm(model="gpt-4o", cost="0.25", at=T0), event("tools", at=T0)])
        send(client, jwt, [llm(model="gpt-4o", prompt_tokens=7, completion_tokens=3, at=T0)])
        eventually(
            lambda: (r := rollup_of(project, D0)) is not None and r.events_llms == 2,
            what="the rollup of the ingested day",
        )
        worker.wait_for_log("rolled up project")
    assert_rollups_match(project)
    row = rollup_of(project, D0)
    assert (row.sessions_total, row.sessions_running, row.events_tools) == (1, 1, 1)
    assert ModelDailyRollup.objects.get(project=project, day=D0, model="gpt-4o").calls == 2


def test_a_late_event_re_rolls_its_day(celery_broker, client, api_key, project, tmp_path):
    earlier = T0 - timedelta(days=2)
    with start_worker(celery_broker, tmp_path):
        _, jwt = start(client, api_key, at=T0)
        send(client, jwt, [event("errors", at=T0, error_type="E")])
        eventually(lambda: (r := rollup_of(project, D0)) and r.events_errors == 1, what="day 0")
        assert rollup_of(project, earlier.date()) is None
        # Arrives now, but happened on a day that was already rolled up, and on an older one.
        send(client, jwt, [event("errors", at=T0 + timedelta(hours=3), error_type="E")])
        send(client, jwt, [llm(at=earlier, cost="1.5")])
        eventually(lambda: rollup_of(project, D0).events_errors == 2, what="day 0 re-rolled")
        eventually(lambda: rollup_of(project, earlier.date()) is not None, what="older day")
    assert_rollups_match(project)
    assert rollup_of(project, earlier.date()).cost == Decimal("1.5")


def test_batches_in_a_burst_share_one_rollup_message(celery_broker, project, tmp_path):
    """Coalescing: while a rollup of (project, day) is queued, more batches add no message,
    yet the rollup that runs sees every batch (they committed before looking)."""
    session = make_session(project, start=DAY0)
    for n in range(5):
        make_event(session, at=DAY0 + timedelta(minutes=n), model="m", prompt=n)
        schedule_rollups(project.id, [DAY0.date()])  # autocommit: sends at once
    assert celery_broker.queued() == 1
    schedule_rollups(project.id, [DAY0.date(), DAY0.date() + timedelta(days=1)])
    assert celery_broker.queued() == 2  # only the new day went out
    key = pending_key(str(project.id), DAY0.date().isoformat())
    assert celery_broker.client.exists(key)
    with start_worker(celery_broker, tmp_path) as worker:
        worker.wait_for_log("rolled up project", count=2)
        eventually(lambda: not celery_broker.client.exists(key), what="pending key released")
    assert DailyRollup.objects.get(project=project, day=DAY0.date()).events_llms == 5
    assert_rollups_match(project)
    # Once the queued rollup has started, the next batch queues a rollup of its own.
    schedule_rollups(project.id, [DAY0.date()])
    assert celery_broker.queued() == 1


def test_the_reaper_ends_silent_sessions_and_leaves_active_ones(
    celery_broker, client, api_key, project, tmp_path
):
    silent_id, silent_jwt = start(client, api_key, at=T0)
    active_id, _ = start(client, api_key, at=T0)
    finished = make_session(project, start=DAY0, end=DAY0 + timedelta(minutes=5), state="Success")
    went_quiet = datetime.now(UTC) - timedelta(minutes=10)
    Session.objects.filter(id__in=[silent_id, finished.id]).update(last_seen_at=went_quiet)

    with start_worker(celery_broker, tmp_path, SESSION_INACTIVITY_TIMEOUT=60):
        expire_sessions_task.delay()
        eventually(lambda: Session.objects.get(id=silent_id).end_state is not None, what="reaped")
        # The reaper queues the rollup of the day it changed.
        eventually(
            lambda: (r := rollup_of(project, D0)) and r.sessions_indeterminate == 1,
            what="rollup after reaping",
        )
    silent = Session.objects.get(id=silent_id)
    assert silent.end_state == "Indeterminate"
    assert silent.end_timestamp == silent.last_seen_at == went_quiet
    assert "60 seconds" in silent.end_state_reason and "silent" in silent.end_state_reason
    active = Session.objects.get(id=active_id)
    assert active.end_state is None and active.end_timestamp is None
    assert Session.objects.get(id=finished.id).end_state == "Success"
    # The agent was only slow: what it sends later is still stored.
    assert send(client, silent_jwt, [llm(at=T0)])["accepted"] == 1
    assert Event.objects.filter(session_id=silent_id).count() == 1


def test_retention_on_the_worker_deletes_exactly_what_is_old(celery_broker, project, tmp_path):
    now = datetime.now(UTC)
    old_time = now - timedelta(days=40)
    old = make_session(project, start=old_time, last_seen=old_time)
    make_event(old, at=old_time, model="m")
    tag = Tag.objects.create(project=project, name="nightly")
    SessionTag.objects.create(session=old, tag=tag)
    Agent.objects.create(session=old, name="planner")
    # Started long ago but still active: its agent is still sending, so it stays.
    long_running = make_session(project, start=old_time, last_seen=now)
    make_event(long_running, at=old_time, model="m")
    young = make_session(project, start=now - timedelta(days=29), last_seen=now)
    make_event(young, at=now - timedelta(days=29), model="m")
    DailyRollup.objects.create(project=project, day=old_time.date(), sessions_total=1)

    with start_worker(celery_broker, tmp_path, DATA_RETENTION_DAYS=30) as worker:
        purge_old_data_task.delay()
        worker.wait_for_log("analytics.purge_old_data[", count=2)  # received, succeeded
        eventually(lambda: not Session.objects.filter(id=old.id).exists(), what="purged")

    assert set(Session.objects.values_list("id", flat=True)) == {long_running.id, young.id}
    assert set(Event.objects.values_list("session_id", flat=True)) == {long_running.id, young.id}
    assert not SessionTag.objects.exists() and not Agent.objects.exists()
    assert Tag.objects.filter(id=tag.id).exists()
    assert DailyRollup.objects.get(project=project, day=old_time.date()).sessions_total == 1


class RowLock:
    """Holds, from another connection, the lock a rollup of (project, day) must wait for:
    on Postgres the day's DailyRollup row (the rollup blocks in the middle, at its write, after
    its reads); on SQLite the database write lock (it blocks as its transaction begins)."""

    def __init__(self, project, day):
        s = connection.settings_dict
        if is_postgres():
            self.conn = psycopg.connect(
                host=s["HOST"] or "127.0.0.1",
                port=s["PORT"] or 5432,
                user=s["USER"],
                password=s["PASSWORD"] or None,
                dbname=s["NAME"],
            )
            self.conn.execute(
                "SELECT id FROM analytics_dailyrollup WHERE project_id = %s AND day = %s "
                "FOR UPDATE",
                [project.id, day],
            )
        else:
            self.conn = sqlite3.connect(s["NAME"], isolation_level=None, timeout=20)
            self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        self.conn.rollback() if is_postgres() else self.conn.execute("ROLLBACK")
        self.conn.close()


def _rollup_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%%analytics_dailyrollup%%'"
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_rollup_leaves_exact_rows_once_another_takes_over(
    celery_broker, project, tmp_path
):
    for n in range(3):
        session = make_session(
            project, start=DAY0 + timedelta(hours=n), end=DAY0 + timedelta(hours=n, minutes=n + 1),
            state="Success",
        )  # fmt: skip
        for m in range(40):
            make_event(session, at=DAY0 + timedelta(hours=n, seconds=m), model="gpt-4o",
                       prompt=m, completion=1, cost=Decimal("0.001"))  # fmt: skip
    # A stale row, as if an earlier rollup had seen fewer events.
    DailyRollup.objects.create(project=project, day=DAY0.date(), events_llms=7, sessions_total=1)

    # Redelivery of an unacknowledged message after 3 s instead of an hour.
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": 3}
    lock = RowLock(project, DAY0.date())
    try:
        with start_worker(celery_broker, tmp_path, **fast_redelivery) as first:
            rollup_days_task.delay(str(project.id), [DAY0.date().isoformat()])
            first.wait_for_log("rolling up project")
            if is_postgres():
                eventually(_rollup_waiting_on_a_lock, what="the rollup blocked at its write")
            else:
                time.sleep(1)  # it is waiting for the write lock (20 s timeout)
            first.kill()
            assert "rolled up project" not in first.output()
    finally:
        lock.release()
    # Nothing of the killed rollup was committed.
    assert DailyRollup.objects.get(project=project, day=DAY0.date()).events_llms == 7

    with start_worker(celery_broker, tmp_path, **fast_redelivery) as second:
        second.wait_for_log("rolled up project", timeout=60)
        eventually(
            lambda: rollup_of(project, DAY0.date()).events_llms == 120, what="redelivered rollup"
        )
    assert_rollups_match(project)
    row = rollup_of(project, DAY0.date())
    assert (row.sessions_total, row.sessions_success, row.prompt_tokens) == (3, 3, 3 * 780)
    assert row.cost == Decimal("0.120")
