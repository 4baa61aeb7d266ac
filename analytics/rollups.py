"""Daily rollups: a project's totals per UTC day, recomputed whole from the source rows.

Definitions (every "day" is a UTC calendar date):

- Session counts (`sessions_total`, `sessions_success`, `sessions_fail`, `sessions_indeterminate`,
  `sessions_running`) count the sessions whose `init_timestamp` falls on the day, by their current
  end state (running = no end state yet).
- Session durations (`duration_p50_seconds`, `duration_p95_seconds`) are over the sessions of the
  day (same rule) that have ended: `max(end_timestamp - init_timestamp, 0)` seconds, percentiles by
  linear interpolation between closest ranks (what Postgres' `percentile_cont` gives); NULL when
  no session of the day has ended.
- Event counts (`events_<type>`), tokens, cost and `cost_unknown_events` are over the events whose
  own `init_timestamp` falls on the day, whichever day their session started on. Tokens and cost
  sum every event that carries them (NULL counts as 0); `cost_unknown_events` counts LLM events
  with no cost. Errors are `events_errors`.
- Per-model rollups (`ModelDailyRollup`) are over the day's LLM events, grouped by `model` (the
  empty string for calls that named no model).

A day with neither sessions nor events has no row. Recomputing is idempotent, and concurrent
recomputes of one project are serialised (see `_lock_project`), so the last one to run saw every
row committed before it started: running twice, or two workers at once, gives the same rows.

Each kind of aggregate is one GROUP BY query over the requested days (contiguous days are one
range), not a loop over days, so a 30-day recompute of a busy project stays a handful of queries.
"""

import hashlib
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import DailyRollup, ModelDailyRollup
from events.models import Event, EventType
from sessions.models import EndState, Session

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
EVENT_TYPES = [choice.value for choice in EventType]
DAILY_FIELDS = [
    "sessions_total",
    "sessions_success",
    "sessions_fail",
    "sessions_indeterminate",
    "sessions_running",
    *[f"events_{t}" for t in EVENT_TYPES],
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_unknown_events",
    "duration_p50_seconds",
    "duration_p95_seconds",
    "computed_at",
]


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days -> inclusive (first, last) runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _in_days(field: str, days: Iterable[date]) -> Q:
    """`field` falls on one of `days`: one half-open time range per run of consecutive days,
    so the (project, init_timestamp) indexes serve it."""
    q = Q()
    for first, last in day_runs(days):
        end = _start_of(last) + timedelta(days=1)
        q |= Q(**{f"{field}__gte": _start_of(first), f"{field}__lt": end})
    return q


def _utc_day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=UTC)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (Postgres' percentile_cont)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return sorted_values[low]
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def frozen_before() -> date | None:
    """Days before this one are past the retention horizon: their sessions may have been
    deleted, so their rollups are kept as they are and never recomputed."""
    if settings.DATA_RETENTION_DAYS <= 0:
        return None
    return (timezone.now() - timedelta(days=settings.DATA_RETENTION_DAYS)).date()


def compute_rollups(project_id, days: Iterable[date]) -> tuple[dict, dict]:
    """({day: DailyRollup fields}, {(day, model): ModelDailyRollup fields}) from the source rows."""
    days = set(days)
    daily: dict[date, dict] = defaultdict(_empty_daily)
    models: dict[tuple[date, str], dict] = {}
    if not days:
        return {}, {}

    sessions = (
        Session.objects.filter(_in_days("init_timestamp", days), project_id=project_id)
        .annotate(day=_utc_day("init_timestamp"))
        .values("day")
        .order_by()
        .annotate(
            total=Count("id"),
            success=Count("id", filter=Q(end_state=EndState.SUCCESS)),
            fail=Count("id", filter=Q(end_state=EndState.FAIL)),
            indeterminate=Count("id", filter=Q(end_state=EndState.INDETERMINATE)),
            running=Count("id", filter=Q(end_state__isnull=True)),
        )
    )
    for row in sessions:
        target = daily[row["day"]]
        target["sessions_total"] = row["total"]
        target["sessions_success"] = row["success"]
        target["sessions_fail"] = row["fail"]
        target["sessions_indeterminate"] = row["indeterminate"]
        target["sessions_running"] = row["running"]

    # Only the two timestamps of ended sessions travel; percentiles are computed here so that
    # SQLite and Postgres give the same numbers.
    durations: dict[date, list[float]] = defaultdict(list)
    ended = Session.objects.filter(
        _in_days("init_timestamp", days), project_id=project_id, end_timestamp__isnull=False
    ).values_list("init_timestamp", "end_timestamp")
    for started, ended_at in ended.order_by().iterator(chunk_size=5000):
        seconds = max((ended_at - started).total_seconds(), 0.0)
        durations[started.astimezone(UTC).date()].append(seconds)
    for day, values in durations.items():
        values.sort()
        daily[day]["duration_p50_seconds"] = percentile(values, 0.50)
        daily[day]["duration_p95_seconds"] = percentile(values, 0.95)

    events = (
        Event.objects.filter(_in_days("init_timestamp", days), project_id=project_id)
        .annotate(day=_utc_day("init_timestamp"))
        .values("day")
        .order_by()
        .annotate(
            **{t: Count("id", filter=Q(event_type=t)) for t in EVENT_TYPES},
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost_sum=Sum("cost"),
            unknown=Count("id", filter=Q(event_type=EventType.LLM, cost__isnull=True)),
        )
    )
    for row in events:
        target = daily[row["day"]]
        for t in EVENT_TYPES:
            target[f"events_{t}"] = row[t]
        target["prompt_tokens"] = row["prompt"] or 0
        target["completion_tokens"] = row["completion"] or 0
        target["cost"] = row["cost_sum"] or ZERO
        target["cost_unknown_events"] = row["unknown"]

    per_model = (
        Event.objects.filter(
            _in_days("init_timestamp", days), project_id=project_id, event_type=EventType.LLM
        )
        .annotate(day=_utc_day("init_timestamp"))
        .values("day", "model")
        .order_by()
        .annotate(
            calls=Count("id"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost_sum=Sum("cost"),
            unknown=Count("id", filter=Q(cost__isnull=True)),
        )
    )
    for row in per_model:
        models[(row["day"], row["model"])] = {
            "calls": row["calls"],
            "prompt_tokens": row["prompt"] or 0,
            "completion_tokens": row["completion"] or 0,
            "cost": row["cost_sum"] or ZERO,
            "cost_unknown_calls": row["unknown"],
        }
    # Days outside the request cannot appear (the filters are on the same column), but a
    # database returning a date string instead of a date would; normalise defensively.
    return {_as_date(d): v for d, v in daily.items()}, {
        (_as_date(d), m): v for (d, m), v in models.items()
    }


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _empty_daily() -> dict:
    fields = dict.fromkeys(DAILY_FIELDS[: 5 + len(EVENT_TYPES)], 0)
    fields.update(
        prompt_tokens=0,
        completion_tokens=0,
        cost=ZERO,
        cost_unknown_events=0,
        duration_p50_seconds=None,
        duration_p95_seconds=None,
    )
    return fields


def _lock_project(project_id) -> None:
    """Serialise rollups of one project until the transaction ends.

    Whoever takes the lock second reads after the first has committed, so the rows left behind
    are those of the latest snapshot whatever the interleaving. On SQLite every transaction here
    is BEGIN IMMEDIATE (see settings), which already serialises writers.
    """
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"analytics.rollup:{project_id}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def rollup_days(project_id, days: Iterable[date]) -> list[date]:
    """Recompute and store the rollups of these days of the project; returns the days done.

    Days before the retention horizon are left alone (their source rows may be gone).
    """
    project_id = uuid.UUID(str(project_id))
    days = {_as_date(d) for d in days}
    horizon = frozen_before()
    if horizon is not None:
        days = {d for d in days if d >= horizon}
    if not days:
        return []
    logger.info("rolling up project %s: %s", project_id, ", ".join(map(str, sorted(days))))
    with transaction.atomic():
        _lock_project(project_id)
        daily, per_model = compute_rollups(project_id, days)
        now = timezone.now()
        DailyRollup.objects.bulk_create(
            [
                DailyRollup(project_id=project_id, day=day, computed_at=now, **fields)
                for day, fields in sorted(daily.items())
            ],
            update_conflicts=True,
            unique_fields=["project", "day"],
            update_fields=DAILY_FIELDS,
        )
        # A day whose source rows are all gone (sessions deleted) has no row any more.
        DailyRollup.objects.filter(project_id=project_id, day__in=days - daily.keys()).delete()
        # Models can drop out of a day too, so the day's model rows are replaced whole.
        ModelDailyRollup.objects.filter(project_id=project_id, day__in=days).delete()
        ModelDailyRollup.objects.bulk_create(
            [
                ModelDailyRollup(
                    project_id=project_id, day=day, model=model, computed_at=now, **fields
                )
                for (day, model), fields in sorted(per_model.items())
            ],
            batch_size=1000,
        )
    logger.info("rolled up project %s: %d day(s) with data", project_id, len(daily))
    return sorted(days)


def touched_days(since: datetime) -> dict[uuid.UUID, set[date]]:
    """{project: days} that activity since `since` may have changed: the start day of every
    session seen since then and the days of its events.

    Every ingest, update and end moves the session's last_seen_at, so this finds late events
    without scanning the events table by arrival time (it has no index on received_at).
    """
    touched: dict[uuid.UUID, set[date]] = defaultdict(set)
    recent = Session.objects.filter(last_seen_at__gte=since)
    for project_id, started in recent.values_list("project_id", "init_timestamp").iterator():
        touched[project_id].add(started.astimezone(UTC).date())
    event_days = (
        Event.objects.filter(session__in=recent.values("id"))
        .annotate(day=_utc_day("init_timestamp"))
        .values_list("project_id", "day")
        .order_by()
        .distinct()
    )
    for project_id, day in event_days:
        touched[project_id].add(_as_date(day))
    return dict(touched)


def all_days(project_id=None, since: date | None = None) -> dict[uuid.UUID, set[date]]:
    """{project: days} with any session, event or rollup row (optionally of one project, from
    a day on): what a full recompute must visit, including rows whose source is gone."""
    found: dict[uuid.UUID, set[date]] = defaultdict(set)
    for model, column in ((Session, "init_timestamp"), (Event, "init_timestamp")):
        rows = model.objects.all()
        if project_id is not None:
            rows = rows.filter(project_id=project_id)
        if since is not None:
            rows = rows.filter(**{f"{column}__gte": _start_of(since)})
        pairs = (
            rows.annotate(day=_utc_day(column))
            .values_list("project_id", "day")
            .order_by()
            .distinct()
        )
        for pid, day in pairs:
            found[pid].add(_as_date(day))
    for model in (DailyRollup, ModelDailyRollup):
        rows = model.objects.all()
        if project_id is not None:
            rows = rows.filter(project_id=project_id)
        if since is not None:
            rows = rows.filter(day__gte=since)
        for pid, day in rows.values_list("project_id", "day").order_by().distinct():
            found[pid].add(day)
    return dict(found)
