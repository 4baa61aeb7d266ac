"""Rollups: the definitions, equality with a direct aggregate, idempotence, the catch-up."""

import random
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from analytics import rollups
from analytics.models import DailyRollup, ModelDailyRollup
from analytics.scheduling import schedule_rollups
from analytics.tasks import rollup_recent_task
from events.models import Event
from projects.models import Project
from sessions.models import Session
from tests.analytics_data import (
    DAY0,
    assert_rollups_match,
    expected_rollups,
    make_event,
    make_session,
    stored_rollups,
)
from tests.celery_worker import in_process, sending_to

D1 = DAY0.date()
D2 = D1 + timedelta(days=1)


def test_a_day_counts_sessions_by_start_and_events_by_their_own_time(project):
    # Starts at 23:50 on day 1 and ends on day 2: a day-1 session with events on both days.
    late = make_session(
        project,
        start=DAY0 + timedelta(hours=23, minutes=50),
        end=DAY0 + timedelta(days=1, minutes=20),
        state="Fail",
    )
    make_event(late, at=DAY0 + timedelta(hours=23, minutes=55), model="gpt-4o", prompt=100,
               completion=10, cost=Decimal("0.0015"))  # fmt: skip
    make_event(late, at=DAY0 + timedelta(days=1, minutes=5), model="gpt-4o", prompt=7)
    make_event(late, at=DAY0 + timedelta(days=1, minutes=6), event_type="errors")
    ok = make_session(project, start=DAY0 + timedelta(hours=1), end=DAY0 + timedelta(hours=1,
                      seconds=10), state="Success")  # fmt: skip
    make_event(ok, at=DAY0 + timedelta(hours=1), event_type="tools")
    make_session(project, start=DAY0 + timedelta(hours=2))  # still running

    assert rollups.rollup_days(project.id, [D1, D2]) == [D1, D2]

    day1 = DailyRollup.objects.get(project=project, day=D1)
    assert (day1.sessions_total, day1.sessions_success, day1.sessions_fail) == (3, 1, 1)
    assert (day1.sessions_running, day1.sessions_indeterminate) == (1, 0)
    assert (day1.events_llms, day1.events_tools, day1.events_errors) == (1, 1, 0)
    assert (day1.prompt_tokens, day1.completion_tokens) == (100, 10)
    assert day1.cost == Decimal("0.0015") and day1.cost_unknown_events == 0
    # Ended sessions of the day: 10 s and 30 min; linear interpolation between them.
    assert day1.duration_p50_seconds == pytest.approx((10 + 1800) / 2)
    assert day1.duration_p95_seconds == pytest.approx(10 + 0.95 * (1800 - 10))

    day2 = DailyRollup.objects.get(project=project, day=D2)
    assert day2.sessions_total == 0 and day2.duration_p50_seconds is None
    assert (day2.events_llms, day2.events_errors, day2.prompt_tokens) == (1, 1, 7)
    assert day2.cost == 0 and day2.cost_unknown_events == 1
    per_model = ModelDailyRollup.objects.get(project=project, day=D2, model="gpt-4o")
    assert (per_model.calls, per_model.cost_unknown_calls, per_model.prompt_tokens) == (1, 1, 7)


def test_days_are_utc_dates_whatever_the_offset_the_sdk_sent(project):
    # 01:30 at +02:00 is 23:30 UTC the day before.
    start = datetime(2026, 3, 2, 1, 30, tzinfo=UTC) + timedelta(hours=-2)
    s = make_session(project, start=start)
    make_event(s, at=start, event_type="actions")
    rollups.rollup_days(project.id, [D1, D2])
    assert list(DailyRollup.objects.filter(project=project).values_list("day", flat=True)) == [D1]


def _random_history(rng: random.Random, projects: list[Project]) -> None:
    models = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", ""]
    for _ in range(60):
        project = rng.choice(projects)
        start = DAY0 + timedelta(seconds=rng.randrange(0, 6 * 86400))
        state = rng.choice([None, "Success", "Fail", "Indeterminate"])
        end = start + timedelta(seconds=rng.randrange(0, 30 * 3600)) if state else None
        session = make_session(project, start=start, end=end, state=state)
        for _ in range(rng.randrange(0, 12)):
            # Some events land before the session start or days later (late events).
            at = start + timedelta(seconds=rng.randrange(-600, 3 * 86400))
            kind = rng.choice(["llms", "llms", "tools", "actions", "errors", "apis"])
            cost = rng.choice([None, Decimal(rng.randrange(0, 10**6)) / 10**8])
            make_event(
                session,
                at=at,
                event_type=kind,
                model=rng.choice(models) if kind == "llms" else "",
                prompt=rng.choice([None, rng.randrange(0, 5000)]),
                completion=rng.choice([None, rng.randrange(0, 5000)]),
                cost=cost,
            )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_a_direct_aggregate_for_every_project_and_day(db, seed):
    rng = random.Random(seed)
    projects = [Project.objects.create(name=f"P{i}") for i in range(3)]
    _random_history(rng, projects)
    # Recompute in random, overlapping, gappy pieces, as batches and the catch-up would.
    for _ in range(8):
        project = rng.choice(projects)
        days = [D1 + timedelta(days=rng.randrange(-1, 10)) for _ in range(rng.randrange(1, 5))]
        rollups.rollup_days(project.id, days)
    call_command("rollup", stdout=open("/dev/null", "w"))  # noqa: SIM115
    for project in projects:
        assert_rollups_match(project)
        assert stored_rollups(project)[0], "the random history gave this project no rows"


def test_recomputing_is_idempotent_and_repairs_stale_rows(project):
    s = make_session(project, start=DAY0, end=DAY0 + timedelta(minutes=1), state="Success")
    make_event(s, at=DAY0, model="gpt-4o", prompt=5, cost=Decimal("0.5"))
    rollups.rollup_days(project.id, [D1])
    first = stored_rollups(project)
    rollups.rollup_days(project.id, [D1])
    assert stored_rollups(project) == first
    DailyRollup.objects.filter(project=project).update(events_llms=99, cost=Decimal("7"))
    ModelDailyRollup.objects.create(project=project, day=D1, model="ghost", calls=3)
    rollups.rollup_days(project.id, [D1])
    assert stored_rollups(project) == first
    assert_rollups_match(project)


def test_a_day_whose_rows_are_gone_loses_its_rollup(project):
    s = make_session(project, start=DAY0)
    make_event(s, at=DAY0, model="m")
    rollups.rollup_days(project.id, [D1])
    assert DailyRollup.objects.filter(project=project).exists()
    s.delete()
    rollups.rollup_days(project.id, [D1])
    assert not DailyRollup.objects.filter(project=project).exists()
    assert not ModelDailyRollup.objects.filter(project=project).exists()


def test_days_past_the_retention_horizon_are_never_recomputed(project, settings):
    settings.DATA_RETENTION_DAYS = 30
    old_day = (datetime.now(UTC) - timedelta(days=40)).date()
    DailyRollup.objects.create(project=project, day=old_day, sessions_total=12, events_llms=40)
    today = datetime.now(UTC)
    make_session(project, start=today)
    done = rollups.rollup_days(project.id, [old_day, today.date()])
    assert done == [today.date()]
    assert DailyRollup.objects.get(project=project, day=old_day).sessions_total == 12


def test_rollups_of_one_project_leave_the_others_alone(project, other_project):
    make_event(make_session(project, start=DAY0), at=DAY0, event_type="tools")
    make_event(make_session(other_project, start=DAY0), at=DAY0, event_type="apis")
    rollups.rollup_days(project.id, [D1])
    assert not DailyRollup.objects.filter(project=other_project).exists()
    assert DailyRollup.objects.get(project=project).events_apis == 0


def test_schedule_rollups_waits_for_the_commit(project, django_capture_on_commit_callbacks):
    with (
        in_process(),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        s = make_session(project, start=DAY0)
        make_event(s, at=DAY0, event_type="errors")
        schedule_rollups(project.id, [D1, D1, D2])
        # Nothing has run inside the transaction.
        assert not DailyRollup.objects.filter(project=project).exists()
    assert len(callbacks) == 1  # one message per call, not per day
    assert DailyRollup.objects.get(project=project, day=D1).events_errors == 1


def test_a_broker_that_is_down_does_not_fail_the_write(
    project, django_capture_on_commit_callbacks, caplog
):
    # Nothing listens on port 9 here: every connection is refused at once.
    with (
        sending_to("redis://127.0.0.1:9/0"),
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        make_session(project, start=DAY0)
        schedule_rollups(project.id, [D1])
    assert Session.objects.filter(project=project).count() == 1
    assert "could not queue the rollup" in caplog.text
    assert not DailyRollup.objects.filter(project=project).exists()


def test_the_catch_up_recomputes_what_recent_activity_touched(project, other_project):
    recent = make_session(project, start=DAY0, last_seen=datetime.now(UTC))
    make_event(recent, at=DAY0 + timedelta(days=3), event_type="tools")  # a late event's day
    quiet = make_session(other_project, start=DAY0, last_seen=DAY0)
    make_event(quiet, at=DAY0, event_type="tools")
    # No rollup was ever queued for these rows (say the broker was down when they arrived).
    with in_process():
        assert rollup_recent_task.delay(3600).get() == 1
    assert sorted(DailyRollup.objects.filter(project=project).values_list("day", flat=True)) == [
        D1,
        D1 + timedelta(days=3),
    ]
    assert not DailyRollup.objects.filter(project=other_project).exists()
    assert_rollups_match(project)


def test_the_rollup_command_takes_a_project_and_a_first_day(project, other_project, capsys):
    for p in (project, other_project):
        make_event(make_session(p, start=DAY0), at=DAY0, event_type="tools")
        make_event(make_session(p, start=DAY0 + timedelta(days=2)), at=DAY0, event_type="apis")
    call_command("rollup", "--project", project.slug, "--since", str(D2))
    assert "Recomputed 1 project-day(s)." in capsys.readouterr().out
    assert list(DailyRollup.objects.values_list("project", "day")) == [
        (project.id, D1 + timedelta(days=2))
    ]
    call_command("rollup", "--project", str(other_project.id))
    assert DailyRollup.objects.filter(project=other_project).count() == 2
    with pytest.raises(CommandError, match="no-such"):
        call_command("rollup", "--project", "no-such")
    with pytest.raises(CommandError, match="2026-13-01"):
        call_command("rollup", "--since", "2026-13-01")


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_leave_the_same_rows(project):
    rng = random.Random(7)
    _random_history(rng, [project])
    days = sorted(expected_rollups(project)[0])
    errors = []
    barrier = threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            for _ in range(3):
                rollups.rollup_days(project.id, days)
        except Exception as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_rollups_match(project)


def test_the_event_query_is_one_group_by_per_aggregate(project, django_assert_max_num_queries):
    for day in range(30):
        s = make_session(project, start=DAY0 + timedelta(days=day), end=DAY0 + timedelta(days=day,
                         hours=1), state="Success")  # fmt: skip
        make_event(s, at=DAY0 + timedelta(days=day), model="gpt-4o", prompt=1)
    # Lock, 4 aggregates, upsert, 2 deletes, insert (+ savepoint bookkeeping): not 30 x anything.
    with django_assert_max_num_queries(12):
        rollups.rollup_days(project.id, [D1 + timedelta(days=d) for d in range(30)])
    assert DailyRollup.objects.filter(project=project).count() == 30
    assert Event.objects.filter(project=project).count() == 30
