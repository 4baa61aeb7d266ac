"""The overview's numbers: past days from the Celery rollups; today from its rollup corrected by
the events received since the rollup's cut-off (exact, at the cost of those events only); any
day with no rollup row yet aggregated live from Session and Event.

Sessions count on the day they started; events, tokens and cost on the day the event started —
the same attribution the rollups use.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models.functions import TruncDate, TruncHour

from analytics.models import DailyRollup, ModelDailyRollup
from analytics.rollups import event_groups, session_counts, tail_rows
from events.models import Event, EventType
from sessions.models import Session

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


def _bucket_key(value):
    # TruncDate gives a date; TruncHour an aware datetime (naive on some backends: make it UTC).
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _fold_group(t: Totals, row: dict, sign: int = 1) -> None:
    """Add (sign=-1: remove) one analytics.rollups.event_groups row to a bucket's totals."""
    if row["event_type"] in t.events:
        t.events[row["event_type"]] += sign * row["n"]
    t.prompt_tokens += sign * (row["prompt"] or 0)
    t.completion_tokens += sign * (row["completion"] or 0)
    t.cost += sign * (row["cost_sum"] or Decimal("0"))
    t.cost_unknown += sign * row["unknown"]


def _fold_model(m: ModelTotals, row: dict, sign: int = 1) -> None:
    m.calls += sign * row["n"]
    m.prompt_tokens += sign * (row["prompt"] or 0)
    m.completion_tokens += sign * (row["completion"] or 0)
    m.cost += sign * (row["cost_sum"] or Decimal("0"))
    m.cost_unknown += sign * row["unknown"]


def _model_name(model: str) -> str:
    return model or "(no model)"


def live_totals(
    *,
    project,
    start: datetime,
    end: datetime,
    hourly: bool = False,
    received_since: datetime | None = None,
) -> tuple[dict, dict]:
    """{bucket: Totals} and {(bucket, model): ModelTotals} over [start, end): two queries, the
    rollups' own aggregates (analytics.rollups) with hour or day buckets.

    `received_since` keeps only the events received at or after it (sessions are all counted):
    the slice of a rolled-up day that its rollup's tail stands for."""
    trunc = (
        TruncHour("init_timestamp", tzinfo=UTC)
        if hourly
        else TruncDate("init_timestamp", tzinfo=UTC)
    )
    buckets: dict = {}
    sessions = session_counts(
        Session.objects.filter(project=project, init_timestamp__gte=start, init_timestamp__lt=end),
        trunc,
    )
    for row in sessions:
        t = buckets.setdefault(_bucket_key(row["bucket"]), Totals())
        t.sessions += row["total"]
        t.success += row["success"]
        t.fail += row["fail"]
        t.indeterminate += row["indeterminate"]
        t.running += row["running"]
    models: dict = {}
    events = Event.objects.filter(
        project=project, init_timestamp__gte=start, init_timestamp__lt=end
    )
    if received_since is not None:
        # A BRIN range scan on Postgres (events 0003_event_received_brin): only the blocks
        # written since `received_since` are read, however busy the day was.
        events = events.filter(received_at__gte=received_since)
    for row in event_groups(events, trunc):
        bucket = _bucket_key(row["bucket"])
        _fold_group(buckets.setdefault(bucket, Totals()), row)
        if row["event_type"] == EventType.LLM:
            _fold_model(models.setdefault((bucket, _model_name(row["model"])), ModelTotals()), row)
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


def _add_models(into: dict[str, ModelTotals], more: dict[str, ModelTotals]) -> None:
    for name, m in more.items():
        acc = into.setdefault(name, ModelTotals())
        acc.calls += m.calls
        acc.prompt_tokens += m.prompt_tokens
        acc.completion_tokens += m.completion_tokens
        acc.cost += m.cost
        acc.cost_unknown += m.cost_unknown


def _today_from_rollup(
    *, project, today: date, rollup: DailyRollup, model_rows: list[ModelDailyRollup]
) -> tuple[Totals, dict[str, ModelTotals]]:
    """Today exactly, at the cost of the events received since its rollup's cut-off: the rollup's
    event totals minus its tail, plus a live aggregate of the events received since the cut-off
    (which includes the tail's events again). Sessions are counted live (a small table)."""
    live, live_models = live_totals(
        project=project,
        start=midnight(today),
        end=midnight(today) + timedelta(days=1),
        received_since=rollup.tail_since,
    )
    totals = _from_rollup(rollup)
    totals.sessions = totals.success = totals.fail = totals.indeterminate = totals.running = 0
    models: dict[str, ModelTotals] = {}
    for r in model_rows:
        models[_model_name(r.model)] = ModelTotals(
            r.calls, r.prompt_tokens, r.completion_tokens, r.cost, r.cost_unknown_calls
        )
    for row in tail_rows(rollup):
        _fold_group(totals, row, sign=-1)
        if row["event_type"] == EventType.LLM:
            name = _model_name(row["model"])
            _fold_model(models.setdefault(name, ModelTotals()), row, sign=-1)
    totals.add(live.get(today, Totals()))
    _add_models(models, {name: m for (_, name), m in live_models.items()})
    # A model whose calls were all in the tail and are gone since (session deleted) drops out.
    return totals, {name: m for name, m in models.items() if m.calls > 0}


def _day_buckets(
    *, project, days: tuple[date, ...], now: datetime, models: dict[str, ModelTotals]
) -> tuple[dict, int, int]:
    """{day: Totals} for whole UTC days (adding their per-model totals to `models`), and how
    many days came from rollups and how many were aggregated live.

    Past days are read from their rollups. Today is read from its rollup corrected by its tail
    (_today_from_rollup) when it has one; a day with no rollup row is aggregated live."""
    today = now.astimezone(UTC).date()
    rollups = {
        r.day: r
        for r in DailyRollup.objects.filter(
            project=project, day__in=[d for d in days if d <= today]
        )
    }
    if today in rollups and rollups[today].tail_since is None:
        del rollups[today]  # computed before rollups kept a tail: cannot be corrected
    model_rows: dict[date, list[ModelDailyRollup]] = {}
    for r in ModelDailyRollup.objects.filter(project=project, day__in=list(rollups)):
        model_rows.setdefault(r.day, []).append(r)
    per_day: dict = {}
    for day, row in rollups.items():
        if day == today:
            per_day[day], today_models = _today_from_rollup(
                project=project, today=today, rollup=row, model_rows=model_rows.get(day, [])
            )
            _add_models(models, today_models)
            continue
        per_day[day] = _from_rollup(row)
        _add_models(
            models,
            {
                _model_name(r.model): ModelTotals(
                    r.calls, r.prompt_tokens, r.completion_tokens, r.cost, r.cost_unknown_calls
                )
                for r in model_rows.get(day, [])
            },
        )
    missing = [d for d in days if d not in rollups]
    # Whole days, today included (as its rollup counts it); days after today stay empty.
    end_of_today = midnight(today) + timedelta(days=1)
    for first, last in _spans(missing):
        span_end = min(midnight(last) + timedelta(days=1), max(end_of_today, midnight(first)))
        live, live_models = live_totals(project=project, start=midnight(first), end=span_end)
        for d in range((last - first).days + 1):
            day = first + timedelta(days=d)
            per_day[day] = live.get(day, Totals())
        _add_models(models, {name: m for (_, name), m in live_models.items()})
    # Today counts as live in the page's "N days from rollups, M live": it includes live events.
    corrected = int(today in rollups)
    return per_day, len(rollups) - corrected, len(missing) + corrected


def build_overview(*, project, time_range: TimeRange, now: datetime) -> Overview:
    models: dict[str, ModelTotals] = {}
    if time_range.days is None:
        live, live_models = live_totals(
            project=project, start=time_range.start, end=time_range.end, hourly=True
        )
        first = time_range.start
        hours = [first + timedelta(hours=i) for i in range(24)]
        buckets = [(h, live.get(h, Totals())) for h in hours]
        for (_, name), m in live_models.items():
            _add_models(models, {name: m})
        rolled, live_days = 0, 1
    else:
        per_day, rolled, live_days = _day_buckets(
            project=project, days=time_range.days, now=now, models=models
        )
        buckets = [(d, per_day.get(d, Totals())) for d in time_range.days]

    totals = Totals()
    for _, t in buckets:
        totals.add(t)
    ordered = dict(sorted(models.items(), key=lambda kv: (-kv[1].tokens, kv[0])))
    return Overview(time_range, buckets, totals, ordered, rolled, live_days)
