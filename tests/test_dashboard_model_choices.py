"""The session list's model choices: per-model rollups, plus live events of days not rolled up."""

from datetime import UTC, datetime, timedelta

from analytics.models import DailyRollup, ModelDailyRollup
from analytics.rollups import rollup_days
from sessions.queries import llm_models
from tests.factories import llm, make_session


def _recent():
    return datetime.now(UTC) - timedelta(days=1)


def test_models_of_a_rolled_up_day_come_from_the_rollup_not_the_events(project):
    now = datetime.now(UTC)
    s = make_session(project, start=now - timedelta(minutes=5))
    llm(s, at=now - timedelta(minutes=4), model="gpt-4o")
    rollup_days(project.id, {now.date(), (now - timedelta(minutes=4)).date()})
    # A rolled-up day is not scanned again: a rollup row stands for the day's models.
    ModelDailyRollup.objects.create(project=project, day=now.date() - timedelta(days=40),
                                    model="old-model", calls=1)  # fmt: skip
    assert llm_models(project=project, recent_since=_recent()) == ["gpt-4o", "old-model"]


def test_a_recent_day_without_a_rollup_row_is_read_live(project):
    now = datetime.now(UTC)
    s = make_session(project, start=now - timedelta(minutes=5))
    llm(s, at=now - timedelta(minutes=4), model="fresh-model")
    llm(s, at=now - timedelta(minutes=3), model="")  # no model named: never a choice
    ModelDailyRollup.objects.create(project=project, day=now.date() - timedelta(days=3),
                                    model="gpt-4o", calls=2)  # fmt: skip
    assert not DailyRollup.objects.filter(project=project, day=now.date()).exists()
    assert llm_models(project=project, recent_since=_recent()) == ["fresh-model", "gpt-4o"]


def test_events_older_than_the_window_are_not_read_live(project):
    now = datetime.now(UTC)
    s = make_session(project, start=now - timedelta(days=5))
    llm(s, at=now - timedelta(days=5), model="ancient")  # its day was never rolled up
    assert llm_models(project=project, recent_since=_recent()) == []
