"""Retention deletes old sessions with what they own, in chunks, and keeps the rollups."""

from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import DailyRollup, ModelDailyRollup
from analytics.retention import purge_old_data
from events.models import Event
from sessions.models import Agent, Session, SessionTag, Tag
from tests.analytics_data import make_event, make_session

NOW = datetime.now(UTC)


def _history(project):
    old_time = NOW - timedelta(days=31)
    old = make_session(project, start=old_time, last_seen=old_time)
    for n in range(3):
        make_event(old, at=old_time + timedelta(seconds=n), model="m")
    tag = Tag.objects.create(project=project, name="nightly")
    SessionTag.objects.create(session=old, tag=tag)
    Agent.objects.create(session=old, name="planner")
    still_active = make_session(project, start=old_time, last_seen=NOW)
    make_event(still_active, at=old_time, model="m")
    young = make_session(project, start=NOW - timedelta(days=29), last_seen=NOW)
    SessionTag.objects.create(session=young, tag=tag)
    make_event(young, at=NOW - timedelta(days=29), model="m")
    DailyRollup.objects.create(project=project, day=old_time.date(), sessions_total=2)
    ModelDailyRollup.objects.create(project=project, day=old_time.date(), model="m", calls=4)
    return old, still_active, young


def test_zero_keeps_everything(project, settings):
    settings.DATA_RETENTION_DAYS = 0
    _history(project)
    assert purge_old_data().sessions == 0
    assert Session.objects.count() == 3 and Event.objects.count() == 5


def test_it_deletes_exactly_what_is_old(project, other_project, settings):
    settings.DATA_RETENTION_DAYS = 30
    old, still_active, young = _history(project)
    other_old, other_active, other_young = _history(other_project)
    result = purge_old_data()
    assert (result.sessions, result.events) == (2, 6)
    kept = {still_active.id, young.id, other_active.id, other_young.id}
    assert set(Session.objects.values_list("id", flat=True)) == kept
    assert not Event.objects.filter(session_id__in=[old.id, other_old.id]).exists()
    assert Event.objects.count() == 4
    assert not Agent.objects.exists()
    assert set(SessionTag.objects.values_list("session_id", flat=True)) == {
        young.id,
        other_young.id,
    }
    # Rollups of the deleted days stay.
    assert DailyRollup.objects.count() == 2 and ModelDailyRollup.objects.count() == 2


def test_it_goes_in_bounded_chunks(project, settings, monkeypatch):
    monkeypatch.setattr("analytics.retention.SESSION_CHUNK", 4)
    monkeypatch.setattr("analytics.retention.EVENT_CHUNK", 5)
    settings.DATA_RETENTION_DAYS = 30
    old_time = NOW - timedelta(days=90)
    for _ in range(10):
        s = make_session(project, start=old_time, last_seen=old_time)
        for n in range(3):
            make_event(s, at=old_time + timedelta(seconds=n))
    keep = make_session(project, start=NOW, last_seen=NOW)
    with CaptureQueriesContext(connection) as queries:
        result = purge_old_data()
    assert (result.sessions, result.events) == (10, 30)
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    # 10 sessions in chunks of 4 (3 session deletes); 12, 12 and 6 events in chunks of 5.
    assert sum(sql.startswith('DELETE FROM "agent_sessions_session" ') for sql in deletes) == 3
    event_deletes = [sql for sql in deletes if sql.startswith('DELETE FROM "events_event" WHERE')]
    assert len(event_deletes) >= 8
    assert list(Session.objects.values_list("id", flat=True)) == [keep.id]


def test_the_command_purges_and_says_what_it_did(project, settings, capsys):
    settings.DATA_RETENTION_DAYS = 30
    _history(project)
    call_command("purge_old_data")
    assert "Deleted 1 session(s) and 3 event(s)." in capsys.readouterr().out
    settings.DATA_RETENTION_DAYS = 0
    call_command("purge_old_data")
    assert "everything is kept" in capsys.readouterr().out
