"""The reaper ends silent running sessions as Indeterminate, and nothing else."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from analytics.models import DailyRollup
from sessions.models import Session
from sessions.services import expire_silent_sessions
from tests.analytics_data import DAY0, make_session
from tests.celery_worker import in_process


def test_a_silent_session_ends_indeterminate_at_its_last_activity(project, settings):
    settings.SESSION_INACTIVITY_TIMEOUT = 300
    now = datetime.now(UTC)
    silent = make_session(project, start=now - timedelta(hours=1), last_seen=now - timedelta(
        seconds=301))  # fmt: skip
    assert expire_silent_sessions() == 1
    silent.refresh_from_db()
    assert silent.end_state == "Indeterminate"
    assert silent.end_timestamp == silent.last_seen_at == now - timedelta(seconds=301)
    assert "300 seconds" in silent.end_state_reason
    assert "end_session" in silent.end_state_reason


def test_active_and_ended_sessions_are_left_alone(project, settings):
    settings.SESSION_INACTIVITY_TIMEOUT = 300
    now = datetime.now(UTC)
    active = make_session(project, start=now - timedelta(hours=5), last_seen=now - timedelta(
        seconds=200))  # fmt: skip
    ended = make_session(project, start=now - timedelta(hours=5), end=now - timedelta(hours=4),
                         state="Fail", last_seen=now - timedelta(hours=4))  # fmt: skip
    assert expire_silent_sessions() == 0
    assert Session.objects.get(id=active.id).end_state is None
    ended.refresh_from_db()
    assert (ended.end_state, ended.end_timestamp) == ("Fail", now - timedelta(hours=4))


def test_it_works_through_more_than_one_chunk(project, settings, monkeypatch):
    monkeypatch.setattr("sessions.services.REAPER_CHUNK", 3)
    settings.SESSION_INACTIVITY_TIMEOUT = 60
    old = DAY0
    for _ in range(7):
        make_session(project, start=old, last_seen=old)
    assert expire_silent_sessions() == 7
    assert not Session.objects.filter(end_state__isnull=True).exists()


def test_reaping_re_rolls_the_sessions_day(project, settings, django_capture_on_commit_callbacks):
    settings.SESSION_INACTIVITY_TIMEOUT = 60
    make_session(project, start=DAY0, last_seen=DAY0)
    with in_process(), django_capture_on_commit_callbacks(execute=True):
        expire_silent_sessions()
    row = DailyRollup.objects.get(project=project, day=DAY0.date())
    assert (row.sessions_running, row.sessions_indeterminate) == (0, 1)


def test_the_command_runs_the_reaper(project, settings, capsys):
    settings.SESSION_INACTIVITY_TIMEOUT = 60
    make_session(project, start=DAY0, last_seen=DAY0)
    with in_process():
        call_command("expire_sessions")
    assert "Ended 1 silent session(s)" in capsys.readouterr().out
    assert Session.objects.get().end_state == "Indeterminate"


@pytest.mark.django_db(transaction=True)
def test_a_session_that_speaks_while_the_reaper_runs_is_not_reaped(project, settings):
    """The reaper picks its candidates, then a request for one of them commits before the
    reaper's UPDATE can take the row: the UPDATE re-checks the silence and leaves it alone."""
    settings.SESSION_INACTIVITY_TIMEOUT = 60
    session = make_session(project, start=DAY0, last_seen=DAY0)
    holding = threading.Event()

    def request_arrives():
        # What ingestion does: touch last_seen_at in a transaction, here held open for a while.
        try:
            with transaction.atomic():
                Session.objects.filter(id=session.id).update(last_seen_at=datetime.now(UTC))
                holding.set()
                time.sleep(1.5)  # the reaper selects meanwhile, then waits for the row
        finally:
            connection.close()

    writer = threading.Thread(target=request_arrives)
    writer.start()
    assert holding.wait(10)
    ended = expire_silent_sessions()
    writer.join()
    assert ended == 0
    assert Session.objects.get(id=session.id).end_state is None
