"""The session-totals rule and how money is shown: the one home of both.

A Session caches totals of its events so list pages never aggregate events per row: one counter
per event type, prompt and completion tokens, the sum of the known costs, and the number of LLM
calls whose cost is unknown. They must always equal what the events say. Ingest keeps them with
`totals_of` (SQLite, in Python) or `SQL_TOTALS_OF_EVENTS` (Postgres, inside the insert
statement); `recompute_totals` proves them against the events and repairs any that differ.

Money is `Decimal` end to end. An unknown cost is unknown, never 0: `known_cost` decides once,
for every page, export, API answer and the SDK, what a session's cost is, and `money` how it is
written in JSON.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.db import transaction
from django.db.models import F

from events.models import Event, EventType
from sessions.models import Session

# The cached counter of each event type, in EventType order (plain str keys: they become JSON
# keys, and orjson refuses str subclasses such as EventType's members).
COUNTER_OF_TYPE: dict[str, str] = {
    EventType.LLM.value: "llm_count",
    EventType.TOOL.value: "tool_count",
    EventType.ACTION.value: "action_count",
    EventType.ERROR.value: "error_count",
    EventType.API.value: "api_count",
}
TOTAL_FIELDS = (
    *COUNTER_OF_TYPE.values(),
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_unknown_events",
)

# The same totals as aggregates over rows of events_event (event_type, prompt_tokens,
# completion_tokens, cost), named llms, tools, actions, errors, apis, unknown, pt, ct, cost.
# Postgres's ingest statement and the bench loader read them under these names.
SQL_TOTALS_OF_EVENTS = """
    count(*) FILTER (WHERE event_type = 'llms') AS llms,
    count(*) FILTER (WHERE event_type = 'tools') AS tools,
    count(*) FILTER (WHERE event_type = 'actions') AS actions,
    count(*) FILTER (WHERE event_type = 'errors') AS errors,
    count(*) FILTER (WHERE event_type = 'apis') AS apis,
    count(*) FILTER (WHERE event_type = 'llms' AND cost IS NULL) AS unknown,
    coalesce(sum(prompt_tokens), 0) AS pt,
    coalesce(sum(completion_tokens), 0) AS ct,
    coalesce(sum(cost), 0) AS cost
"""
# Each cached field beside its name in SQL_TOTALS_OF_EVENTS.
SQL_NAME_OF_FIELD = {
    "llm_count": "llms",
    "tool_count": "tools",
    "action_count": "actions",
    "error_count": "errors",
    "api_count": "apis",
    "cost_unknown_events": "unknown",
    "prompt_tokens": "pt",
    "completion_tokens": "ct",
    "cost": "cost",
}


class EventLike(Protocol):
    event_type: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None


def totals_of(events: Iterable[EventLike]) -> dict[str, Any]:
    """{field of TOTAL_FIELDS: value} over these events: counts and tokens as int, cost as
    Decimal (the known costs only); cost_unknown_events counts LLM events with no cost."""
    totals: dict[str, Any] = dict.fromkeys(TOTAL_FIELDS, 0)
    totals["cost"] = Decimal("0")
    for e in events:
        totals[COUNTER_OF_TYPE[e.event_type]] += 1
        totals["prompt_tokens"] += e.prompt_tokens or 0
        totals["completion_tokens"] += e.completion_tokens or 0
        if e.cost is not None:
            totals["cost"] += e.cost
        elif e.event_type == EventType.LLM:
            totals["cost_unknown_events"] += 1
    return totals


def add_totals(session_rows, totals: dict[str, Any], **also) -> int:
    """Add `totals` (from totals_of) to the cached totals of the sessions in `session_rows` (a
    QuerySet), setting `also` beside them, in one UPDATE; how many rows it changed."""
    return session_rows.update(
        **also, **{name: F(name) + value for name, value in totals.items() if value}
    )


def event_count(session: Session) -> int:
    """Events of every type in the session, from its cached counters."""
    return sum(getattr(session, counter) for counter in COUNTER_OF_TYPE.values())


def counts_by_type(session: Session) -> dict[str, int]:
    """{"": all events, "llms": n, "tools": n, ...} from the cached counters."""
    counts = {t: getattr(session, c) for t, c in COUNTER_OF_TYPE.items()}
    return {"": sum(counts.values()), **counts}


# --- Money -----------------------------------------------------------------------------------


def known_cost(cost: Decimal | None, unknown_calls: int) -> Decimal | None:
    """The cost to show for a sum of costs `cost` beside `unknown_calls` LLM calls of unknown
    cost: None (unknown) when some calls are unknown and the known ones add up to nothing, else
    the known sum. A partly known cost is that sum, shown beside the count of unknown calls."""
    if cost is None or (unknown_calls and not cost):
        return None
    return cost


def money(value: Decimal | None) -> str | None:
    """A Decimal as the API writes money: a plain decimal string with trailing zeros trimmed
    ("0.00375", "12", "0"); None stays None (JSON null)."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def session_cost_fields(session: Session) -> dict[str, Any]:
    """{"cost": decimal string or None, "cost_unknown_events": int}: a session's cost as every
    JSON surface gives it (the API's list, stats and update answer, the exports)."""
    return {
        "cost": money(known_cost(session.cost, session.cost_unknown_events)),
        "cost_unknown_events": session.cost_unknown_events,
    }


def session_stats(session: Session) -> dict[str, Any]:
    """A session's totals as GET /v2/sessions/{id}/stats, the export's "stats" and each row of
    GET /v2/sessions give them: times as ISO 8601, counts per type, tokens, cost fields."""
    return {
        "session_id": str(session.id),
        "init_timestamp": _iso(session.init_timestamp),
        "end_timestamp": _iso(session.end_timestamp),
        "end_state": session.end_state,
        "duration_seconds": session.duration_seconds,
        "events": event_count(session),
        **{t: getattr(session, c) for t, c in COUNTER_OF_TYPE.items()},
        "prompt_tokens": session.prompt_tokens,
        "completion_tokens": session.completion_tokens,
        "total_tokens": session.prompt_tokens + session.completion_tokens,
        **session_cost_fields(session),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


# --- Repair ----------------------------------------------------------------------------------


@dataclass
class Mismatch:
    session_id: uuid.UUID
    cached: dict[str, Any]
    actual: dict[str, Any]


def recompute_totals(
    *, project_id: uuid.UUID | None = None, fix: bool = True, chunk: int = 1000
) -> tuple[int, list[Mismatch]]:
    """Compare every session's cached totals (of one project, or all) with its events;
    (sessions checked, the mismatches). With fix, each mismatched session is set to what its
    events say, under a row lock so a concurrent ingest is not overwritten with stale sums."""
    sessions = Session.objects.order_by("id")
    if project_id is not None:
        sessions = sessions.filter(project_id=project_id)
    checked = 0
    mismatches: list[Mismatch] = []
    last = None
    while True:
        page = sessions.filter(id__gt=last) if last is not None else sessions
        rows = list(page.values("id", *TOTAL_FIELDS)[:chunk])
        if not rows:
            break
        last = rows[-1]["id"]
        checked += len(rows)
        actual = _totals_by_session([r["id"] for r in rows])
        for row in rows:
            sid = row.pop("id")
            want = actual.get(sid) or totals_of(())
            if row != want:
                mismatches.append(Mismatch(sid, row, want))
                if fix:
                    set_totals_from_events(sid)
    return checked, mismatches


def _totals_by_session(session_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    by_session: dict[uuid.UUID, list] = {}
    rows = Event.objects.filter(session_id__in=session_ids).values_list(
        "session_id", "event_type", "prompt_tokens", "completion_tokens", "cost"
    )
    for sid, *values in rows.iterator(chunk_size=5000):
        by_session.setdefault(sid, []).append(_Row(*values))
    return {sid: totals_of(events) for sid, events in by_session.items()}


@dataclass(slots=True)
class _Row:
    event_type: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: Decimal | None


def set_totals_from_events(session_id: uuid.UUID) -> None:
    """Set one session's cached totals to what its events say (a no-op for no session)."""
    with transaction.atomic():
        locked = Session.objects.select_for_update().filter(id=session_id)
        if not locked.exists():
            return
        events = Event.objects.filter(session_id=session_id).values_list(
            "event_type", "prompt_tokens", "completion_tokens", "cost"
        )
        locked.update(**totals_of(_Row(*values) for values in events))
