"""Each database constraint refuses a violating row, on SQLite and on Postgres."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from analytics.models import DailyRollup, ModelDailyRollup
from events.models import Event
from projects.keys import hash_key
from projects.models import ApiKey, Membership
from sessions.models import Session, SessionTag, Tag

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_session(project, **fields):
    defaults = {"id": uuid.uuid4(), "project": project, "init_timestamp": NOW, "last_seen_at": NOW}
    return Session.objects.create(**{**defaults, **fields})


def make_event(session, **fields):
    defaults = {
        "id": uuid.uuid4(),
        "session": session,
        "project": session.project,
        "event_type": "actions",
        "init_timestamp": NOW,
    }
    return Event.objects.create(**{**defaults, **fields})


def refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_event_id_is_unique(project):
    session = make_session(project)
    event = make_event(session)
    refused(lambda: make_event(session, id=event.id))


def test_tag_name_is_unique_per_project_but_not_across_projects(project, other_project):
    Tag.objects.create(project=project, name="prod")
    refused(lambda: Tag.objects.create(project=project, name="prod"))
    assert Tag.objects.create(project=other_project, name="prod").pk


def test_session_tag_link_is_unique(project):
    session = make_session(project)
    tag = Tag.objects.create(project=project, name="x")
    SessionTag.objects.create(session=session, tag=tag)
    refused(lambda: SessionTag.objects.create(session=session, tag=tag))


@pytest.mark.parametrize("state", ["Success", "Fail", "Indeterminate", None])
def test_end_state_accepts_its_three_values_and_null(project, state):
    assert make_session(project, end_state=state).end_state == state


@pytest.mark.parametrize("state", ["Failure", "success", "", "Done"])
def test_end_state_refuses_anything_else(project, state):
    refused(lambda: make_session(project, end_state=state))


def test_session_tokens_are_non_negative(project):
    refused(lambda: make_session(project, prompt_tokens=-1))
    refused(lambda: make_session(project, completion_tokens=-5))


def test_event_tokens_and_cost_are_non_negative(project):
    session = make_session(project)
    refused(lambda: make_event(session, prompt_tokens=-1))
    refused(lambda: make_event(session, completion_tokens=-1))
    refused(lambda: make_event(session, cost=Decimal("-0.01")))
    assert make_event(session, prompt_tokens=0, completion_tokens=0, cost=Decimal("0")).pk


def test_event_type_and_cost_source_are_limited(project):
    session = make_session(project)
    refused(lambda: make_event(session, event_type="bogus"))
    refused(lambda: make_event(session, cost_source="guess"))


def test_api_key_hash_is_unique(project):
    ApiKey.objects.create(project=project, prefix="abcdefgh", key_hash=hash_key("a"))
    refused(
        lambda: ApiKey.objects.create(project=project, prefix="abcdefgh", key_hash=hash_key("a"))
    )


def test_membership_is_unique_and_role_limited(project, alice, charlie):
    refused(lambda: Membership.objects.create(project=project, user=alice))
    refused(lambda: Membership.objects.create(project=project, user=charlie, role="admin"))


def test_rollups_are_unique_per_day_and_model(project):
    day = NOW.date()
    DailyRollup.objects.create(project=project, day=day)
    refused(lambda: DailyRollup.objects.create(project=project, day=day))
    refused(
        lambda: DailyRollup.objects.create(
            project=project, day=NOW.date().replace(day=2), prompt_tokens=-1
        )
    )
    ModelDailyRollup.objects.create(project=project, day=day, model="gpt-4o")
    refused(lambda: ModelDailyRollup.objects.create(project=project, day=day, model="gpt-4o"))


def test_deleting_a_session_deletes_its_events(project):
    session = make_session(project)
    make_event(session)
    session.delete()
    assert Event.objects.count() == 0
