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

- The tail (`tail_since`, `tail`): a recompute that starts at time T sets `tail_since` to
  T - TAIL_MARGIN and stores in `tail` the event_groups rows (see `tail_rows`) of the day's events
  received at or after it, counted in the same statement as the totals (one snapshot). A reader
  that wants the day exactly takes the totals, subtracts the tail and adds a live aggregate of
  the events received since `tail_since`: every event received before it was committed before the
  recompute read (the margin is longer than any ingest statement), so each event counts once.

A day with neither sessions nor events has no row. Recomputing is idempotent, and concurrent
recomputes of one project are serialised (the storage seam's `lock_project_for_rollups`), so the
last one to run saw every row committed before it started: running twice, or two workers at
once, gives the same rows.

Each kind of aggregate is one GROUP BY query over the requested days (contiguous days are one
range), not a loop over days, so a 30-day recompute of a busy project stays a handful of queries.
"""

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import DailyRollup, ModelDailyRollup
from events import storage
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
    "tail_since",
    "tail",
    "computed_at",
]
# Longer than any ingest statement (an event's received_at is stamped just before its batch's
# write statement): an event received before `started - TAIL_MARGIN` was committed before a
# recompute that started at `started` took its snapshot. Clocks of the web and worker machines
# must agree to well within it.
TAIL_MARGIN = timedelta(seconds=60)


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


def compute_rollups(
    project_id, days: Iterable[date], *, tail_since: datetime | None = None
) -> tuple[dict, dict]:
    """({day: DailyRollup fields}, {(day, model): ModelDailyRollup fields}) from the source rows.

    With `tail_since`, each day's fields also hold its tail: the part of its event totals that
    came from events received at or after that time (see the module docstring)."""
    days = set(days)
    daily: dict[date, dict] = defaultdict(_empty_daily)
    models: dict[tuple[date, str], dict] = {}
    if not days:
        return {}, {}

    sessions = session_counts(
        Session.objects.filter(_in_days("init_timestamp", days), project_id=project_id),
        _utc_day("init_timestamp"),
    )
    for row in sessions:
        target = daily[row["bucket"]]
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

    # One pass over the events: the day's totals and its per-model rows are folded from the
    # same (day, type, model) groups.
    groups = event_groups(
        Event.objects.filter(_in_days("init_timestamp", days), project_id=project_id),
        _utc_day("init_timestamp"),
        tail_since=tail_since,
    )
    for row in groups:
        target = daily[row["bucket"]]
        add_event_group(target, row)
        if row["event_type"] == EventType.LLM:
            add_model_group(models.setdefault((row["bucket"], row["model"]), _empty_model()), row)
        if tail_since is not None and row["tail_n"]:
            target["tail"].append(_tail_row(row))
    if tail_since is not None:
        for fields in daily.values():
            fields["tail_since"] = tail_since
    # Days outside the request cannot appear (the filters are on the same column), but a
    # database returning a date string instead of a date would; normalise defensively.
    return {_as_date(d): v for d, v in daily.items()}, {
        (_as_date(d), m): v for (d, m), v in models.items()
    }


def session_counts(sessions: QuerySet, bucket) -> QuerySet:
    """Rows of {bucket, total, success, fail, indeterminate, running}: sessions by start bucket
    and current end state. Shared with the dashboard's live overview."""
    return (
        sessions.annotate(bucket=bucket)
        .values("bucket")
        .order_by()
        .annotate(
            total=Count("id"),
            success=Count("id", filter=Q(end_state=EndState.SUCCESS)),
            fail=Count("id", filter=Q(end_state=EndState.FAIL)),
            indeterminate=Count("id", filter=Q(end_state=EndState.INDETERMINATE)),
            running=Count("id", filter=Q(end_state__isnull=True)),
        )
    )


def event_groups(events: QuerySet, bucket, *, tail_since: datetime | None = None) -> QuerySet:
    """Rows of {bucket, event_type, model, n, prompt, completion, cost_sum, unknown}: ONE GROUP
    BY from which both the per-type totals and the per-model rows fold (see add_event_group,
    add_model_group). Shared with the dashboard's live overview.

    With `tail_since`, each row also has the same sums over its events received at or after
    that time (tail_n, tail_prompt, ...): computed in the same statement, so in the same snapshot
    as the totals they are subtracted from."""
    aggregates = _group_sums(Q())
    if tail_since is not None:
        tail = _group_sums(Q(received_at__gte=tail_since))
        aggregates.update({f"tail_{name}": value for name, value in tail.items()})
    return (
        events.annotate(bucket=bucket)
        .values("bucket", "event_type", "model")
        .order_by()
        .annotate(**aggregates)
    )


def _group_sums(where: Q) -> dict:
    return {
        "n": Count("id", filter=where) if where else Count("id"),
        "prompt": Sum("prompt_tokens", filter=where or None),
        "completion": Sum("completion_tokens", filter=where or None),
        "cost_sum": Sum("cost", filter=where or None),
        "unknown": Count("id", filter=where & Q(event_type=EventType.LLM, cost__isnull=True)),
    }


def _tail_row(row: dict) -> dict:
    """The tail sums of one event_groups row, JSON-ready (money as a decimal string)."""
    return {
        "event_type": row["event_type"],
        "model": row["model"],
        "n": row["tail_n"],
        "prompt": row["tail_prompt"] or 0,
        "completion": row["tail_completion"] or 0,
        "cost_sum": str(row["tail_cost_sum"] or ZERO),
        "unknown": row["tail_unknown"],
    }


def tail_rows(rollup: DailyRollup) -> list[dict]:
    """A DailyRollup's tail as event_groups rows (without bucket), money back to Decimal."""
    return [{**row, "cost_sum": Decimal(row["cost_sum"])} for row in rollup.tail]


def add_event_group(target: dict, row: dict) -> None:
    """Add one event_groups row to a day's DailyRollup fields."""
    name = f"events_{row['event_type']}"
    if name in target:
        target[name] += row["n"]
    target["prompt_tokens"] += row["prompt"] or 0
    target["completion_tokens"] += row["completion"] or 0
    target["cost"] += row["cost_sum"] or ZERO
    target["cost_unknown_events"] += row["unknown"]


def add_model_group(target: dict, row: dict) -> None:
    """Add one event_groups row of LLM calls to ModelDailyRollup fields."""
    target["calls"] += row["n"]
    target["prompt_tokens"] += row["prompt"] or 0
    target["completion_tokens"] += row["completion"] or 0
    target["cost"] += row["cost_sum"] or ZERO
    target["cost_unknown_calls"] += row["unknown"]


def _empty_model() -> dict:
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": ZERO,
        "cost_unknown_calls": 0,
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
        tail_since=None,
        tail=[],
    )
    return fields


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
    # Taken before the lock and the reads: waiting only makes the tail longer, never short.
    tail_since = timezone.now() - TAIL_MARGIN
    with transaction.atomic():
        # Whoever takes it second reads after the first has committed, so the rows left behind
        # are those of the latest snapshot whatever the interleaving.
        storage.backend().lock_project_for_rollups(project_id)
        daily, per_model = compute_rollups(project_id, days, tail_since=tail_since)
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


def summarize_new_event_ranges() -> int | None:
    """Keep the events' BRIN summaries current (Postgres; None elsewhere): see the storage
    seam's summarize_new_event_ranges."""
    return storage.backend().summarize_new_event_ranges()


def touched_days(since: datetime) -> dict[uuid.UUID, set[date]]:
    """{project: days} that activity since `since` may have changed: the start day of every
    session seen since then and the days of its events.

    Every ingest, update and end moves the session's last_seen_at, so this finds late events
    without scanning the events table by arrival time (received_at has only a BRIN index, for
    the overview's today; no B-tree, which would cost every ingest).
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
