"""Reads of sessions: the filters and the keyset pagination shared by the dashboard list and
GET /v2/sessions (one cursor codec for both), a session's tags, tag and model choices.

Everything here reads the cached totals on Session; nothing aggregates events per row.
"""

import base64
import binascii
import contextlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

import orjson
from django.db import connection
from django.db.models import (
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from events import storage
from events.models import Event, EventType
from events.search import normalise_query
from projects.models import Project
from sessions.models import EndState, Session, SessionTag, Tag
from sessions.totals import COUNTER_OF_TYPE, counts_by_type, known_cost

END_STATE_FILTERS = (*EndState.values, "running")
# Shorter phrases match only session ids and reasons: a trigram index cannot serve them.
SEARCH_MIN_CHARS = 3


# A session id typed as it is shown: 8 or more of its leading hex digits, dashes optional.
ID_PREFIX = re.compile(r"[0-9a-f]{8,31}")


@dataclass(frozen=True)
class SessionFilters:
    tags: tuple[str, ...] = ()
    tag_mode: Literal["any", "all"] = "all"
    # Success | Fail | Indeterminate | "running" (no end state yet).
    end_state: str | None = None
    since: datetime | None = None  # inclusive, on init_timestamp
    until: datetime | None = None  # exclusive, on init_timestamp
    has_errors: bool | None = None
    model: str | None = None
    # A session id (whole UUID), a phrase of the end-state reason, or (SEARCH_MIN_CHARS or
    # more) a phrase of its events' prompts, completions, tool names, errors, models
    # (events/search.py).
    text: str | None = None

    @property
    def is_empty(self) -> bool:
        return self == SessionFilters(tag_mode=self.tag_mode)


def _project_id(project: Project | uuid.UUID | str):
    return project.pk if isinstance(project, Project) else project


def filter_sessions(*, project: Project | uuid.UUID | str, filters: SessionFilters) -> QuerySet:
    """The project's sessions matching `filters`, newest first (-init_timestamp, -id), tags
    prefetched. Tag and model conditions are EXISTS subqueries so no row is duplicated and the
    (project, -init_timestamp) index still drives the scan."""
    project_id = _project_id(project)
    qs = Session.objects.filter(project_id=project_id)

    tags = tuple(dict.fromkeys(t for t in filters.tags if t))
    if tags:
        if filters.tag_mode == "any":
            qs = qs.filter(
                Exists(
                    SessionTag.objects.filter(
                        session_id=OuterRef("pk"),
                        tag__project_id=project_id,
                        tag__name__in=tags,
                    )
                )
            )
        else:
            for name in tags:
                qs = qs.filter(
                    Exists(
                        SessionTag.objects.filter(
                            session_id=OuterRef("pk"), tag__project_id=project_id, tag__name=name
                        )
                    )
                )

    if filters.end_state == "running":
        qs = qs.filter(end_state__isnull=True)
    elif filters.end_state:
        qs = qs.filter(end_state=filters.end_state)

    if filters.since is not None:
        qs = qs.filter(init_timestamp__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(init_timestamp__lt=filters.until)

    if filters.has_errors is True:
        qs = qs.filter(error_count__gt=0)
    elif filters.has_errors is False:
        qs = qs.filter(error_count=0)

    if filters.model:
        # Through the (session, init_timestamp) index: one probe per candidate session.
        qs = qs.filter(
            Exists(
                Event.objects.filter(
                    session_id=OuterRef("pk"), event_type=EventType.LLM, model=filters.model
                )
            )
        )

    text = (filters.text or "").strip()
    if text:
        condition = Q(end_state_reason__icontains=text)
        with contextlib.suppress(ValueError):
            condition |= Q(id=uuid.UUID(text))
        compact = text.lower().replace("-", "")
        if ID_PREFIX.fullmatch(compact):
            # The list shows ids by their first 8 characters: a prefix is a range of the key.
            low, high = (uuid.UUID(compact.ljust(32, pad)) for pad in "0f")
            condition |= Q(id__range=(low, high))
        phrase = normalise_query(text)
        if len(phrase) >= SEARCH_MIN_CHARS:
            # The matching events' sessions first (Postgres: through the trigram index), then
            # the page: a semi-join, not one probe of each session's events.
            condition |= Q(pk__in=storage.backend().sessions_matching(project_id, phrase))
        qs = qs.filter(condition)

    # prefetch: one query for the tags of all rows of a page.
    return qs.order_by("-init_timestamp", "-id").prefetch_related("tags")


# --- Sorting and keyset pagination ----------------------------------------------------------


@dataclass(frozen=True)
class SortOption:
    key: str
    label: str
    # Expression annotated as "sort_value" (None: the column itself).
    column: str
    descending: bool


SORTS: dict[str, SortOption] = {
    s.key: s
    for s in (
        SortOption("newest", "Newest first", "init_timestamp", True),
        SortOption("oldest", "Oldest first", "init_timestamp", False),
        SortOption("cost", "Highest cost", "cost", True),
        SortOption("tokens", "Most tokens", "total_tokens", True),
        SortOption("errors", "Most errors", "error_count", True),
        SortOption("events", "Most events", "total_events", True),
        SortOption("duration", "Longest first", "duration", True),
        SortOption("shortest", "Shortest first", "duration", False),
    )
}
DEFAULT_SORT = "newest"


def _annotate_sort(qs: QuerySet, sort: SortOption) -> QuerySet:
    if sort.column == "total_tokens":
        qs = qs.annotate(total_tokens=F("prompt_tokens") + F("completion_tokens"))
    elif sort.column == "total_events":
        counters = [F(counter) for counter in COUNTER_OF_TYPE.values()]
        qs = qs.annotate(total_events=sum(counters[1:], counters[0]))
    elif sort.column == "duration":
        # A running session's duration so far: up to its last request (never NULL, so the
        # keyset order is total).
        qs = qs.annotate(
            duration=ExpressionWrapper(
                Coalesce("end_timestamp", "last_seen_at") - F("init_timestamp"),
                output_field=DurationField(),
            )
        )
    return qs


def _sort_value(session: Session, sort: SortOption):
    value = getattr(session, sort.column)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    return value


def _parse_sort_value(raw, sort: SortOption):
    if sort.column == "init_timestamp":
        return datetime.fromisoformat(raw)
    if sort.column == "cost":
        return Decimal(raw)
    if not isinstance(raw, int):
        raise ValueError("not an integer")
    if sort.column == "duration":
        return timedelta(microseconds=raw)
    return raw


def encode_cursor(session: Session, sort: SortOption) -> str:
    raw = orjson.dumps([_sort_value(session, sort), str(session.id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortOption):
    """(sort value, session id), or None for a cursor this code did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, sid = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        return _parse_sort_value(value, sort), uuid.UUID(sid)
    except (ValueError, TypeError, binascii.Error, InvalidOperation, orjson.JSONDecodeError):
        return None


@dataclass(frozen=True)
class ListTotals:
    """The totals of a filtered set of sessions (the list's summary line)."""

    sessions: int
    cost: Decimal | None  # the known costs' sum; None (unknown) when only unknown ones exist
    cost_unknown_events: int  # LLM calls of unknown cost among them
    tokens: int  # prompt + completion
    errors: int


def list_totals(sessions: QuerySet) -> ListTotals:
    """Sessions, cost, tokens and errors of `sessions` (any filtered QuerySet of Session), from
    their cached totals in one aggregate query; an unknown cost stays unknown (known_cost)."""
    row = sessions.order_by().aggregate(
        n=Count("pk"),
        cost=Sum("cost"),
        unknown=Sum("cost_unknown_events"),
        pt=Sum("prompt_tokens"),
        ct=Sum("completion_tokens"),
        errors=Sum("error_count"),
    )
    unknown = row["unknown"] or 0
    return ListTotals(
        sessions=row["n"],
        cost=known_cost(row["cost"] if row["n"] else None, unknown),
        cost_unknown_events=unknown,
        tokens=(row["pt"] or 0) + (row["ct"] or 0),
        errors=row["errors"] or 0,
    )


@dataclass
class SessionPage:
    sessions: list[Session]
    next_cursor: str | None  # older / further down
    prev_cursor: str | None  # back towards the top; None on the first page
    count: int  # every session of the filtered set (totals.sessions), 0 without count
    sort: SortOption = field(default_factory=lambda: SORTS[DEFAULT_SORT])
    totals: ListTotals | None = None  # None without count


def session_page(
    *,
    project,
    filters: SessionFilters,
    sort: str = DEFAULT_SORT,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    count: bool = True,
) -> SessionPage:
    """One page of the filtered list in keyset order on (sort column, id): the page costs the
    same at row 100,000 as at row 1. `after`/`before` are next_cursor/prev_cursor of another
    page; a cursor this code did not make reads as the first page. With count, the filtered
    set's totals (list_totals: sessions, cost, tokens, errors) in one more query; without,
    count is 0 and totals None."""
    option = SORTS.get(sort, SORTS[DEFAULT_SORT])
    base = _annotate_sort(filter_sessions(project=project, filters=filters), option)
    col, desc = option.column, option.descending
    forward = [f"-{col}", "-id"] if desc else [col, "id"]
    backward = [col, "id"] if desc else [f"-{col}", "-id"]

    def beyond(value, sid, towards_end: bool):
        # "Further down the list" is smaller values for a descending sort.
        smaller = desc == towards_end
        op = "lt" if smaller else "gt"
        return Q(**{f"{col}__{op}": value}) | Q(**{col: value, f"id__{op}": sid})

    qs = base.order_by(*forward)
    cursor = decode_cursor(after, option) if after else None
    back = decode_cursor(before, option) if before and not cursor else None
    if back is not None:
        rows = list(base.filter(beyond(*back, towards_end=False)).order_by(*backward)[: limit + 1])
        has_more_before = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_more_after = True
    else:
        if cursor is not None:
            qs = qs.filter(beyond(*cursor, towards_end=True))
        rows = list(qs[: limit + 1])
        has_more_after = len(rows) > limit
        rows = rows[:limit]
        has_more_before = cursor is not None

    totals = list_totals(filter_sessions(project=project, filters=filters)) if count else None
    return SessionPage(
        sessions=rows,
        next_cursor=encode_cursor(rows[-1], option) if rows and has_more_after else None,
        prev_cursor=encode_cursor(rows[0], option) if rows and has_more_before else None,
        count=totals.sessions if totals else 0,
        sort=option,
        totals=totals,
    )


# --- Tags -----------------------------------------------------------------------------------


def tag_names(session: Session) -> list[str]:
    """The session's tag names, sorted (one query)."""
    return list(
        SessionTag.objects.filter(session=session)
        .order_by("tag__name")
        .values_list("tag__name", flat=True)
    )


def tags_with_counts(*, project) -> QuerySet:
    """Every tag of the project, most used first, one query, each annotated with
    session_count; cost_sum (Decimal, known costs only, None without sessions) and
    cost_unknown_events (int or None); ended and failed (sessions with an end state, and ended
    Fail); last_used (the latest init_timestamp of its sessions, None without). The tags page
    shows cost with known_cost and the failure rate as failed / ended (tag_stats)."""
    return (
        Tag.objects.filter(project_id=_project_id(project))
        .annotate(
            session_count=Count("sessiontag"),
            cost_sum=Sum("sessiontag__session__cost"),
            cost_unknown_events=Sum("sessiontag__session__cost_unknown_events"),
            ended=Count("sessiontag", filter=Q(sessiontag__session__end_state__isnull=False)),
            failed=Count("sessiontag", filter=Q(sessiontag__session__end_state=EndState.FAIL)),
            last_used=Max("sessiontag__session__init_timestamp"),
        )
        .order_by("-session_count", "name")
    )


@dataclass(frozen=True)
class TagStats:
    name: str
    sessions: int
    cost: Decimal | None  # None: unknown (known_cost)
    cost_unknown_events: int
    failure_rate: float | None  # 0..1 of its ended sessions; None when none has ended
    last_used: datetime | None  # the latest start of its sessions


def tag_stats(tag: Tag) -> TagStats:
    """A row of tags_with_counts as the tags page shows it."""
    unknown = tag.cost_unknown_events or 0
    return TagStats(
        name=tag.name,
        sessions=tag.session_count,
        cost=known_cost(tag.cost_sum if tag.session_count else None, unknown),
        cost_unknown_events=unknown,
        failure_rate=tag.failed / tag.ended if tag.ended else None,
        last_used=tag.last_used,
    )


def llm_models(*, project, recent_since: datetime, limit: int = 200) -> list[str]:
    """Models seen in the project's LLM calls, for the list's model filter: from the per-model
    rollups (a small table), plus a live DISTINCT over the events of the recent days that have
    no rollup row yet. The worker rolls a day up seconds after each batch, so a busy day is read
    from its rollup instead of scanning its LLM events on every list page; a model first used
    since the last rollup appears once its day is rolled up again. Two queries either way."""
    from analytics.models import DailyRollup, ModelDailyRollup

    project_id = _project_id(project)
    first_day = recent_since.astimezone(UTC).date()
    today = datetime.now(UTC).date()
    window = [first_day + timedelta(days=i) for i in range((today - first_day).days + 1)]
    rolled_days = set(
        DailyRollup.objects.filter(project_id=project_id, day__in=window).values_list(
            "day", flat=True
        )
    )
    names = ModelDailyRollup.objects.filter(project_id=project_id).values_list("model", flat=True)
    live = _live_days_filter([d for d in window if d not in rolled_days], since=recent_since)
    if live is not None:
        recent = Event.objects.filter(live, project_id=project_id, event_type=EventType.LLM)
        # UNION deduplicates; ordering is cleared because a compound part may not have one.
        names = names.order_by().union(recent.values_list("model", flat=True).order_by())
    else:
        names = names.distinct()
    return [name for name in names.order_by("model")[: limit + 1] if name][:limit]


def _live_days_filter(days: list, *, since: datetime) -> Q | None:
    """init_timestamp on one of these UTC days and not before `since`; None for no days."""
    if not days:
        return None
    condition = Q()
    for day in days:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        condition |= Q(
            init_timestamp__gte=max(start, since), init_timestamp__lt=start + timedelta(days=1)
        )
    return condition


# --- One session's page ---------------------------------------------------------------------


@dataclass
class EventsPage:
    """One page of a session's events in time order, for its dashboard page."""

    events: list[Event]
    triggers: dict[uuid.UUID, Event]  # the events that this page's errors name as trigger
    event_type: str  # the type shown ("" for all): a focus on another type shows all
    counts: dict[str, int]  # {"": all, "llms": n, ...} from the cached counters
    page_no: int  # 1-based, within 1..pages
    pages: int
    offset: int  # how many events of the shown type come before this page
    numbers: dict[uuid.UUID, int] = field(default_factory=dict)  # 1-based among all events


def session_events_page(
    session: Session,
    *,
    event_type: str = "",
    page_no: int = 1,
    focus: uuid.UUID | None = None,
    per_page: int = 50,
) -> EventsPage:
    """The page of the session's events (of `event_type`, or all) that holds `focus` when it is
    an event of the session, else page `page_no`. Five queries at most whatever the page size:
    the focus look-up and its position, the page's keys then its rows, the triggers of its
    errors."""
    counts = counts_by_type(session)

    def of_type(kind: str) -> QuerySet:
        events = Event.objects.filter(session=session).order_by("init_timestamp", "id")
        return events.filter(event_type=kind) if kind else events

    target = None
    if focus:
        target = (
            Event.objects.filter(session=session, pk=focus)
            .only("id", "event_type", "init_timestamp")
            .first()
        )
        if target is not None and event_type and target.event_type != event_type:
            # The linked event is not of the filtered type: show it among all events.
            event_type = ""
    events = of_type(event_type)
    pages = max(1, -(-counts[event_type] // per_page))
    if target is not None:
        earlier = events.filter(
            Q(init_timestamp__lt=target.init_timestamp)
            | Q(init_timestamp=target.init_timestamp, id__lt=target.id)
        ).count()
        page_no = earlier // per_page + 1
    page_no = max(1, min(page_no, pages))
    offset = (page_no - 1) * per_page
    if event_type:
        numbers = _numbered_page(session, event_type, offset=offset, limit=per_page)
        found = {e.id: e for e in Event.objects.filter(session=session, pk__in=list(numbers))}
        rows = [found[i] for i in numbers if i in found]
    else:
        # The page's keys first, then its rows: sorting the session's whole rows (payloads
        # included) to skip `offset` of them took 23 ms at event 9,950 of 10k, the narrow
        # sort 14. The rows are then read by key, in their partition (the time range).
        keys = list(events.values_list("id", "init_timestamp")[offset : offset + per_page])
        found = {}
        if keys:
            times = [t for _, t in keys]
            found = {
                e.id: e
                for e in Event.objects.filter(
                    session=session,
                    pk__in=[i for i, _ in keys],
                    init_timestamp__range=(min(times), max(times)),
                )
            }
        rows = [found[i] for i, _ in keys if i in found]
        numbers = {e.id: offset + i for i, e in enumerate(rows, start=1)}
    trigger_ids = {e.trigger_event_id for e in rows if e.trigger_event_id}
    triggers = (
        {
            t.id: t
            for t in Event.objects.filter(session=session, pk__in=trigger_ids).only(
                "id", "event_type", "name", "model", "init_timestamp"
            )
        }
        if trigger_ids
        else {}
    )
    return EventsPage(rows, triggers, event_type, counts, page_no, pages, offset, numbers)


def _numbered_page(session: Session, event_type: str, *, offset: int, limit: int) -> dict:
    """{event id: its 1-based number among ALL the session's events} for one page of the
    events of `event_type`, in time order: an error is #1818 in the Errors tab as in "All".
    One query (a ROW_NUMBER window over the session's events, filtered outside it)."""
    numbered = (
        Event.objects.filter(session=session)
        .annotate(n=Window(RowNumber(), order_by=(F("init_timestamp").asc(), F("id").asc())))
        .values("id", "event_type", "n")
    )
    inner, params = numbered.query.sql_with_params()
    sql = (
        f"SELECT numbered.id, numbered.n FROM ({inner}) numbered "
        "WHERE numbered.event_type = %s ORDER BY numbered.n LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, event_type, limit, offset])
        rows = cursor.fetchall()
    # SQLite hands the id back as 32 hex characters, Postgres as a UUID.
    return {i if isinstance(i, uuid.UUID) else uuid.UUID(i): n for i, n in rows}


@dataclass(frozen=True)
class EventsSpan:
    """When a session's events say it ran, beside what the session says."""

    first: datetime | None  # the earliest event start
    last: datetime | None  # the latest event end (or start, for events without an end)
    skewed: int  # events stamped outside the session's start..end (dashboard/trace.py's rule)


def events_span(session: Session, *, tolerance: timedelta) -> EventsSpan:
    """The time the session's events cover and how many lie outside the session (more than
    `tolerance` before its start or after its end). One aggregate query on the
    (session, init_timestamp) index."""
    early = Q(init_timestamp__lt=session.init_timestamp - tolerance)
    if session.end_timestamp is not None:
        limit = session.end_timestamp + tolerance
        late = Q(end_timestamp__gt=limit) | Q(end_timestamp__isnull=True, init_timestamp__gt=limit)
        outside = early | late
    else:
        outside = early
    found = Event.objects.filter(session=session).aggregate(
        first=Min("init_timestamp"),
        last=Max(Coalesce("end_timestamp", "init_timestamp")),
        skewed=Count("pk", filter=outside),
    )
    return EventsSpan(found["first"], found["last"], found["skewed"])


def agent_names(session: Session) -> dict[uuid.UUID, str]:
    """{agent id: name} of the session's agents (one query)."""
    from sessions.models import Agent

    return dict(Agent.objects.filter(session=session).values_list("id", "name"))


def event_number(session: Session, event: Event) -> int:
    """The event's 1-based number among the session's events in time order (one query)."""
    earlier = Event.objects.filter(session=session).filter(
        Q(init_timestamp__lt=event.init_timestamp)
        | Q(init_timestamp=event.init_timestamp, id__lt=event.id)
    )
    return earlier.count() + 1
