"""The overview's numbers: past days from the Celery rollups, today (and any past day the worker
has not rolled up yet) aggregated live from Session and Event.

Sessions count on the day they started; events, tokens and cost on the day the event started —
the same attribution the rollups use.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncHour

from analytics.models import DailyRollup, ModelDailyRollup
from events.models import Event, EventType
from sessions.models import EndState, Session

RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "custom": "Custom"}
DEFAULT_RANGE = "7d"
MAX_CUSTOM_DAYS = 366
EVENT_TYPES = tuple(EventType.values)


@dataclass(frozen=True)
class TimeRange:
    key: str
    start: datetime
    end: datetime
    # Whole UTC days for day-bucketed ranges; None for the hourly 24 h range.
    days: tuple[date, ...] | None

    @property
    def label(self) -> str:
        if self.key == "custom" and self.days:
            return f"{self.days[0]:%d %b %Y} to {self.days[-1]:%d %b %Y}"
        return RANGES[self.key]


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def parse_range(
    key: str | None, start: date | None, end: date | None, *, now: datetime
) -> TimeRange:
    today = now.astimezone(UTC).date()
    key = key if key in RANGES else DEFAULT_RANGE
    if key == "24h":
        hour = now.replace(minute=0, second=0, microsecond=0)
        return TimeRange("24h", hour - timedelta(hours=23), now, None)
    if key == "custom":
        if start is None or end is None:
            key = DEFAULT_RANGE
        else:
            start, end = min(start, end), max(start, end)
            start = max(start, end - timedelta(days=MAX_CUSTOM_DAYS - 1))
            days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
            return TimeRange("custom", midnight(start), midnight(end) + timedelta(days=1), days)
    n = 7 if key == "7d" else 30
    days = tuple(today - timedelta(days=i) for i in range(n - 1, -1, -1))
    return TimeRange(key, midnight(days[0]), now, days)


@dataclass
class ModelTotals:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal("0")
    cost_unknown: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Totals:
    sessions: int = 0
    success: int = 0
    fail: int = 0
    indeterminate: int = 0
    running: int = 0
    events: dict = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal("0")
    cost_unknown: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def event_total(self) -> int:
        return sum(self.events.values())

    @property
    def errors(self) -> int:
        return self.events["errors"]

    def rate(self, n: int) -> float | None:
        return n / self.sessions if self.sessions else None

    @property
    def success_rate(self):
        return self.rate(self.success)

    @property
    def fail_rate(self):
        return self.rate(self.fail)

    @property
    def indeterminate_rate(self):
        return self.rate(self.indeterminate)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.event_total if self.event_total else None

    def add(self, other: "Totals") -> None:
        for name in ("sessions", "success", "fail", "indeterminate", "running"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for t in EVENT_TYPES:
            self.events[t] += other.events[t]
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost
        self.cost_unknown += other.cost_unknown


@dataclass
class Overview:
    range: TimeRange
    buckets: list[tuple[datetime | date, Totals]]
    totals: Totals
    models: dict[str, ModelTotals]
    rolled_up_days: int
    live_days: int


def _from_rollup(row: DailyRollup) -> Totals:
    return Totals(
        sessions=row.sessions_total,
        success=row.sessions_success,
        fail=row.sessions_fail,
        indeterminate=row.sessions_indeterminate,
        running=row.sessions_running,
        events={
            "llms": row.events_llms,
            "tools": row.events_tools,
            "actions": row.events_actions,
            "errors": row.events_errors,
            "apis": row.events_apis,
        },
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        cost_unknown=row.cost_unknown_events,
    )


_STATE_FIELD = {
    EndState.SUCCESS: "success",
    EndState.FAIL: "fail",
    EndState.INDETERMINATE: "indeterminate",
    None: "running",
}


def _bucket_key(value):
    # TruncDate gives a date; TruncHour an aware datetime (naive on some backends: make it UTC).
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def live_totals(
    *, project, start: datetime, end: datetime, hourly: bool = False
) -> tuple[dict, dict]:
    """{bucket: Totals} and {(bucket, model): ModelTotals} over [start, end), three queries."""
    trunc = (
        TruncHour("init_timestamp", tzinfo=UTC)
        if hourly
        else TruncDate("init_timestamp", tzinfo=UTC)
    )
    buckets: dict = {}
    sessions = (
        Session.objects.filter(project=project, init_timestamp__gte=start, init_timestamp__lt=end)
        .annotate(bucket=trunc)
        .values("bucket", "end_state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in sessions:
        t = buckets.setdefault(_bucket_key(row["bucket"]), Totals())
        t.sessions += row["n"]
        name = _STATE_FIELD.get(row["end_state"], "running")
        setattr(t, name, getattr(t, name) + row["n"])
    events = (
        Event.objects.filter(project=project, init_timestamp__gte=start, init_timestamp__lt=end)
        .annotate(bucket=trunc)
        .values("bucket", "event_type")
        .annotate(
            n=Count("pk"),
            pt=Sum("prompt_tokens"),
            ct=Sum("completion_tokens"),
            cost_sum=Sum("cost"),
            unknown=Count("pk", filter=Q(event_type=EventType.LLM, cost__isnull=True)),
        )
        .order_by()
    )
    for row in events:
        t = buckets.setdefault(_bucket_key(row["bucket"]), Totals())
        if row["event_type"] in t.events:
            t.events[row["event_type"]] += row["n"]
        t.prompt_tokens += row["pt"] or 0
        t.completion_tokens += row["ct"] or 0
        t.cost += row["cost_sum"] or Decimal("0")
        t.cost_unknown += row["unknown"]
    models: dict = {}
    per_model = (
        Event.objects.filter(
            project=project,
            event_type=EventType.LLM,
            init_timestamp__gte=start,
            init_timestamp__lt=end,
        )
        .annotate(bucket=trunc)
        .values("bucket", "model")
        .annotate(
            n=Count("pk"),
            pt=Sum("prompt_tokens"),
            ct=Sum("completion_tokens"),
            cost_sum=Sum("cost"),
            unknown=Count("pk", filter=Q(cost__isnull=True)),
        )
        .order_by()
    )
    for row in per_model:
        models[(_bucket_key(row["bucket"]), row["model"] or "(no model)")] = ModelTotals(
            calls=row["n"],
            prompt_tokens=row["pt"] or 0,
            completion_tokens=row["ct"] or 0,
            cost=row["cost_sum"] or Decimal("0"),
            cost_unknown=row["unknown"],
        )
    return buckets, models


def _spans(days: list[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days as (first, last)."""
    spans: list[tuple[date, date]] = []
    for d in sorted(days):
        if spans and spans[-1][1] + timedelta(days=1) == d:
            spans[-1] = (spans[-1][0], d)
        else:
            spans.append((d, d))
    return spans


def build_overview(*, project, time_range: TimeRange, now: datetime) -> Overview:
    models: dict[str, ModelTotals] = {}

    def add_model(name: str, m: ModelTotals) -> None:
        acc = models.setdefault(name, ModelTotals())
        acc.calls += m.calls
        acc.prompt_tokens += m.prompt_tokens
        acc.completion_tokens += m.completion_tokens
        acc.cost += m.cost
        acc.cost_unknown += m.cost_unknown

    if time_range.days is None:
        live, live_models = live_totals(
            project=project, start=time_range.start, end=time_range.end, hourly=True
        )
        first = time_range.start
        hours = [first + timedelta(hours=i) for i in range(24)]
        buckets = [(h, live.get(h, Totals())) for h in hours]
        for (_, name), m in live_models.items():
            add_model(name, m)
        rolled, live_days = 0, 1
    else:
        today = now.astimezone(UTC).date()
        past = [d for d in time_range.days if d < today]
        rollups = {
            r.day: _from_rollup(r)
            for r in DailyRollup.objects.filter(project=project, day__in=past)
        }
        per_day: dict = dict(rollups)
        for r in ModelDailyRollup.objects.filter(project=project, day__in=list(rollups)):
            add_model(
                r.model or "(no model)",
                ModelTotals(
                    r.calls, r.prompt_tokens, r.completion_tokens, r.cost, r.cost_unknown_calls
                ),
            )
        missing = [d for d in time_range.days if d not in rollups]
        for first, last in _spans(missing):
            span_end = min(midnight(last) + timedelta(days=1), max(now, midnight(first)))
            live, live_models = live_totals(project=project, start=midnight(first), end=span_end)
            for d in range((last - first).days + 1):
                day = first + timedelta(days=d)
                per_day[day] = live.get(day, Totals())
            for (_, name), m in live_models.items():
                add_model(name, m)
        buckets = [(d, per_day.get(d, Totals())) for d in time_range.days]
        rolled, live_days = len(rollups), len(missing)

    totals = Totals()
    for _, t in buckets:
        totals.add(t)
    ordered = dict(sorted(models.items(), key=lambda kv: (-kv[1].tokens, kv[0])))
    return Overview(time_range, buckets, totals, ordered, rolled, live_days)
