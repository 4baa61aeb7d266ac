"""Rows for analytics tests, written straight with the ORM, and the oracle the rollups must equal:
the same definitions (analytics/rollups.py docstring) computed naively in Python, row by row."""

import math
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from analytics.models import DailyRollup, ModelDailyRollup
from analytics.rollups import tail_rows as rollup_tail_rows
from events.models import CostSource, Event
from sessions.models import Session

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def make_session(project, *, start, end=None, state=None, last_seen=None, **fields) -> Session:
    return Session.objects.create(
        id=uuid.uuid4(),
        project=project,
        init_timestamp=start,
        end_timestamp=end,
        end_state=state,
        last_seen_at=last_seen or end or start,
        **fields,
    )


def make_event(
    session, *, at, event_type="llms", model="", prompt=None, completion=None, cost=None
):
    return Event.objects.create(
        id=uuid.uuid4(),
        session=session,
        project_id=session.project_id,
        event_type=event_type,
        init_timestamp=at,
        end_timestamp=at + timedelta(seconds=1),
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
        cost_source=CostSource.SDK if cost is not None else CostSource.UNKNOWN,
    )


def _percentile(values, fraction):
    values = sorted(values)
    if not values:
        return None
    rank = (len(values) - 1) * fraction
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def expected_rollups(project) -> tuple[dict, dict]:
    """({day: fields}, {(day, model): fields}) computed row by row, with no SQL aggregation."""
    daily = defaultdict(
        lambda: {
            "sessions_total": 0,
            "sessions_success": 0,
            "sessions_fail": 0,
            "sessions_indeterminate": 0,
            "sessions_running": 0,
            "events_llms": 0,
            "events_tools": 0,
            "events_actions": 0,
            "events_errors": 0,
            "events_apis": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": Decimal(0),
            "cost_unknown_events": 0,
            "duration_p50_seconds": None,
            "duration_p95_seconds": None,
        }
    )
    durations = defaultdict(list)
    for s in Session.objects.filter(project=project):
        day = s.init_timestamp.astimezone(UTC).date()
        row = daily[day]
        row["sessions_total"] += 1
        key = {None: "running", "Success": "success", "Fail": "fail"}.get(
            s.end_state, "indeterminate"
        )
        row[f"sessions_{key}"] += 1
        if s.end_timestamp is not None:
            durations[day].append(max((s.end_timestamp - s.init_timestamp).total_seconds(), 0.0))
    for day, values in durations.items():
        daily[day]["duration_p50_seconds"] = _percentile(values, 0.5)
        daily[day]["duration_p95_seconds"] = _percentile(values, 0.95)
    models = defaultdict(
        lambda: {
            "calls": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": Decimal(0),
            "cost_unknown_calls": 0,
        }
    )
    for e in Event.objects.filter(project=project):
        day = e.init_timestamp.astimezone(UTC).date()
        row = daily[day]
        row[f"events_{e.event_type}"] += 1
        row["prompt_tokens"] += e.prompt_tokens or 0
        row["completion_tokens"] += e.completion_tokens or 0
        row["cost"] += e.cost or 0
        if e.event_type == "llms":
            row["cost_unknown_events"] += e.cost is None
            m = models[(day, e.model)]
            m["calls"] += 1
            m["prompt_tokens"] += e.prompt_tokens or 0
            m["completion_tokens"] += e.completion_tokens or 0
            m["cost"] += e.cost or 0
            m["cost_unknown_calls"] += e.cost is None
    return dict(daily), dict(models)


def stored_rollups(project) -> tuple[dict, dict]:
    daily = {}
    for r in DailyRollup.objects.filter(project=project):
        values = {
            f.name: getattr(r, f.name)
            for f in DailyRollup._meta.concrete_fields
            if f.name not in {"id", "project", "day", "computed_at", "tail_since", "tail"}
        }
        daily[r.day] = values
    models = {}
    for r in ModelDailyRollup.objects.filter(project=project):
        models[(r.day, r.model)] = {
            f.name: getattr(r, f.name)
            for f in ModelDailyRollup._meta.concrete_fields
            if f.name not in {"id", "project", "day", "model", "computed_at"}
        }
    return daily, models


def assert_rollups_match(project) -> None:
    """The stored rollups equal the oracle exactly (durations to the microsecond)."""
    expected_daily, expected_models = expected_rollups(project)
    daily, models = stored_rollups(project)
    assert sorted(daily) == sorted(expected_daily)
    for day, want in expected_daily.items():
        got = daily[day]
        for name in ("duration_p50_seconds", "duration_p95_seconds"):
            if want[name] is None:
                assert got[name] is None, (day, name)
            else:
                assert math.isclose(got[name], want[name], abs_tol=1e-6), (day, name, got, want)
        strip = {"duration_p50_seconds", "duration_p95_seconds"}
        assert {k: v for k, v in got.items() if k not in strip} == {
            k: v for k, v in want.items() if k not in strip
        }, day
    assert models == expected_models
    for rollup in DailyRollup.objects.filter(project=project):
        assert rollup.tail_since is not None, rollup.day
        assert _tail_by_group(rollup_tail_rows(rollup)) == expected_tail(
            project, rollup.day, rollup.tail_since
        ), rollup.day


def _tail_by_group(rows) -> dict:
    return {
        (r["event_type"], r["model"]): (
            r["n"],
            r["prompt"],
            r["completion"],
            r["cost_sum"],
            r["unknown"],
        )
        for r in rows
    }


def expected_tail(project, day, since) -> dict:
    """{(event_type, model): (n, prompt, completion, cost, unknown)} of the day's events received
    at or after `since`, row by row."""
    tail = defaultdict(lambda: [0, 0, 0, Decimal(0), 0])
    for e in Event.objects.filter(project=project, received_at__gte=since):
        if e.init_timestamp.astimezone(UTC).date() != day:
            continue
        sums = tail[(e.event_type, e.model)]
        sums[0] += 1
        sums[1] += e.prompt_tokens or 0
        sums[2] += e.completion_tokens or 0
        sums[3] += e.cost or 0
        sums[4] += e.event_type == "llms" and e.cost is None
    return {key: tuple(v) for key, v in tail.items()}
