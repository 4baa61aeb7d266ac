"""The overview's today: its rollup minus the rollup's tail plus the events received since the
tail's cut-off must equal a direct aggregate of the raw rows, whenever the rollup ran."""

import random
import uuid
from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics import rollups
from analytics.models import DailyRollup
from dashboard.overview import build_overview, parse_range
from events.models import Event
from tests.analytics_data import make_event, make_session

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", ""]


def _overview(project, now):
    return build_overview(
        project=project, time_range=parse_range("7d", None, None, now=now), now=now
    )


def _received(event, at):
    Event.objects.filter(id=event.id).update(received_at=at)


def _direct(project, day):
    """Today's Totals fields and per-model fields from the raw rows, row by row."""
    totals = defaultdict(int, cost=Decimal(0))
    models = defaultdict(lambda: defaultdict(int, cost=Decimal(0)))
    for s in project.sessions.all():
        if s.init_timestamp.astimezone(UTC).date() == day:
            totals["sessions"] += 1
            state = {None: "running", "Success": "success", "Fail": "fail"}
            totals[state.get(s.end_state, "indeterminate")] += 1
    for e in Event.objects.filter(project=project):
        if e.init_timestamp.astimezone(UTC).date() != day:
            continue
        totals[e.event_type] += 1
        totals["prompt_tokens"] += e.prompt_tokens or 0
        totals["completion_tokens"] += e.completion_tokens or 0
        totals["cost"] += e.cost or 0
        unknown = e.event_type == "llms" and e.cost is None
        totals["cost_unknown"] += unknown
        if e.event_type == "llms":
            m = models[e.model or "(no model)"]
            m["calls"] += 1
            m["prompt_tokens"] += e.prompt_tokens or 0
            m["completion_tokens"] += e.completion_tokens or 0
            m["cost"] += e.cost or 0
            m["cost_unknown"] += unknown
    return dict(totals), {name: dict(m) for name, m in models.items()}


def _shown(ov, day):
    t = dict(ov.buckets)[day]
    fields = {
        "sessions": t.sessions,
        "success": t.success,
        "fail": t.fail,
        "indeterminate": t.indeterminate,
        "running": t.running,
        **t.events,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "cost": t.cost,
        "cost_unknown": t.cost_unknown,
    }
    models = {
        name: {
            "calls": m.calls,
            "prompt_tokens": m.prompt_tokens,
            "completion_tokens": m.completion_tokens,
            "cost": m.cost,
            "cost_unknown": m.cost_unknown,
        }
        for name, m in ov.models.items()
    }
    return {k: v for k, v in fields.items() if v}, models


def _unit(now):
    """A minute, or less in the first minutes of a day: these tests place events up to 30 units
    before `now`, and all of them must fall on today (CI may run at 00:10 UTC)."""
    since_midnight = now - now.replace(hour=0, minute=0, second=0, microsecond=0)
    return min(timedelta(minutes=1), since_midnight / 40)


def assert_today_is_exact(project, now):
    today = now.date()
    want_totals, want_models = _direct(project, today)
    got_totals, got_models = _shown(_overview(project, now), today)
    assert got_totals == {k: v for k, v in want_totals.items() if v}
    assert got_models == want_models


def test_events_after_todays_rollup_show_up_once(project):
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 30 * unit, state="Success", end=now)
    old = make_event(s, at=now - 29 * unit, model="gpt-4o", prompt=10, cost=Decimal(1))
    make_event(s, at=now - 28 * unit, model="gpt-4o", prompt=5)  # received "now": tail
    _received(old, now - timedelta(minutes=20))  # before the cut-off (even yesterday): totals
    rollups.rollup_days(project.id, [now.date()])
    row = DailyRollup.objects.get(project=project, day=now.date())
    assert [r["n"] for r in row.tail] == [1]  # the event received within the margin
    # Arrived after the rollup read, no worker since.
    make_event(s, at=now - 1 * unit, model="claude-3-5-sonnet", completion=3)
    make_event(s, at=now - timedelta(seconds=5), event_type="errors")
    ov = _overview(project, now)
    today = dict(ov.buckets)[now.date()]
    assert (today.events["llms"], today.events["errors"], today.sessions) == (3, 1, 1)
    assert (today.prompt_tokens, today.completion_tokens, today.cost) == (15, 3, Decimal(1))
    assert today.cost_unknown == 2
    assert ov.models["gpt-4o"].calls == 2 and ov.models["claude-3-5-sonnet"].calls == 1
    # No row for the 6 days before; today, corrected by live events, is still shown as live.
    assert (ov.rolled_up_days, ov.live_days) == (0, 7)
    assert_today_is_exact(project, now)


def test_a_batch_still_open_when_the_rollup_read_counts_once(project):
    """Received (stamped) before the rollup started but committed after it read: the margin
    keeps it after the cut-off, so the live part finds it and the tail never held it."""
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 10 * unit)
    make_event(s, at=now - 9 * unit, model="m", prompt=1)
    rollups.rollup_days(project.id, [now.date()])
    cut_off = DailyRollup.objects.get(project=project, day=now.date()).tail_since
    late = make_event(s, at=now - 8 * unit, model="m", prompt=100, cost=Decimal(2))
    _received(late, cut_off + timedelta(seconds=1))  # before the rollup's start
    today = dict(_overview(project, now).buckets)[now.date()]
    assert (today.events["llms"], today.prompt_tokens, today.cost) == (2, 101, Decimal(2))
    assert_today_is_exact(project, now)


def test_the_next_rollup_folds_the_live_part_in(project):
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 10 * unit)
    make_event(s, at=now - 9 * unit, event_type="tools")
    rollups.rollup_days(project.id, [now.date()])
    make_event(s, at=now - 8 * unit, event_type="tools")
    assert_today_is_exact(project, now)
    rollups.rollup_days(project.id, [now.date()])
    assert DailyRollup.objects.get(project=project, day=now.date()).events_tools == 2
    assert_today_is_exact(project, now)


def test_today_without_a_rollup_row_is_aggregated_live(project):
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 10 * unit, state="Fail", end=now)
    make_event(s, at=now - 9 * unit, model="gpt-4o", prompt=7, cost=Decimal("0.5"))
    assert not DailyRollup.objects.filter(project=project).exists()
    ov = _overview(project, now)
    assert (ov.rolled_up_days, ov.live_days) == (0, 7)
    assert_today_is_exact(project, now)


def test_a_todays_row_without_a_tail_is_ignored(project):
    """A row written before rollups kept a tail cannot be corrected: today is read live."""
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 10 * unit)
    make_event(s, at=now - 9 * unit, event_type="apis")
    DailyRollup.objects.create(project=project, day=now.date(), events_apis=40, sessions_total=9)
    assert_today_is_exact(project, now)


def test_the_tail_stores_money_exactly(project):
    now = timezone.now()
    unit = _unit(now)
    s = make_session(project, start=now - 10 * unit)
    make_event(s, at=now - 9 * unit, model="x", cost=Decimal("0.0000000001"))
    make_event(s, at=now - 9 * unit, model="x", cost=Decimal("12.5"))
    rollups.rollup_days(project.id, [now.date()])
    row = DailyRollup.objects.get(project=project, day=now.date())
    (tail,) = rollups.tail_rows(row)
    assert tail["cost_sum"] == Decimal("12.5000000001") and tail["n"] == 2
    assert isinstance(tail["cost_sum"], Decimal)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_today_equals_a_direct_aggregate_whenever_the_rollup_ran(project, seed):
    rng = random.Random(seed)
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def some_time_today():
        return midnight + timedelta(seconds=rng.randrange(0, 86400))

    def add_events(session, n, received):
        for _ in range(n):
            kind = rng.choice(["llms", "llms", "tools", "actions", "errors", "apis"])
            event = make_event(
                session,
                at=some_time_today(),
                event_type=kind,
                model=rng.choice(MODELS) if kind == "llms" else "",
                prompt=rng.choice([None, rng.randrange(0, 5000)]),
                completion=rng.choice([None, rng.randrange(0, 5000)]),
                cost=rng.choice([None, Decimal(rng.randrange(0, 10**6)) / 10**8]),
            )
            _received(event, received())

    sessions = [
        make_session(
            project,
            start=rng.choice([some_time_today(), midnight - timedelta(hours=3)]),
            state=rng.choice([None, "Success", "Fail", "Indeterminate"]),
        )
        for _ in range(6)
    ]
    # Before the rollup: some received long ago (in the totals only), some within the margin
    # (in the totals and the tail).
    for s in sessions:
        add_events(s, rng.randrange(0, 8), lambda: now - timedelta(seconds=rng.randrange(0, 900)))
    for _ in range(rng.randrange(1, 3)):
        rollups.rollup_days(project.id, [now.date()])
    cut_off = DailyRollup.objects.get(project=project, day=now.date()).tail_since
    # After it: received at or after the cut-off (committed after the read), none rolled up.
    for s in sessions:
        add_events(
            s, rng.randrange(0, 8), lambda: cut_off + timedelta(seconds=rng.randrange(0, 120))
        )
    assert_today_is_exact(project, now)


def test_the_catch_up_keeps_the_event_brin_summarized(project, is_postgres):
    from analytics.tasks import rollup_recent_task

    s = make_session(project, start=timezone.now())
    make_event(s, at=timezone.now(), event_type="tools")
    # Enough ~1.4 KB rows to fill whole 32-page BRIN ranges (a partial last range is left).
    rng = random.Random(7)
    Event.objects.bulk_create(
        Event(
            id=uuid.UUID(int=rng.getrandbits(128)),
            session=s,
            project=project,
            event_type="actions",
            init_timestamp=timezone.now(),
            payload={"text": rng.randbytes(700).hex()},
        )
        for _ in range(600)
    )
    rollup_recent_task.apply(args=(3600,)).get()
    left = rollups.summarize_new_event_ranges()
    if is_postgres:
        assert left == 0  # the catch-up summarized every full range
    else:
        assert left is None  # SQLite has no BRIN index
