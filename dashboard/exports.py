"""Streamed downloads: the filtered session list as CSV or JSON Lines, one session's events as CSV.
Rows are read with iterator(chunk_size=...) so memory stays flat at any size."""

import csv
from collections.abc import Iterable, Iterator

import orjson

from events.models import Event
from sessions.models import Session
from sessions.totals import COUNTER_OF_TYPE, money, session_cost_fields

CHUNK = 2000

SESSION_COLUMNS = [
    "session_id",
    "init_timestamp",
    "end_timestamp",
    "duration_seconds",
    "end_state",
    "end_state_reason",
    "tags",
    "llms",
    "tools",
    "actions",
    "errors",
    "apis",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_unknown_events",
]

EVENT_COLUMNS = [
    "id",
    "event_type",
    "init_timestamp",
    "end_timestamp",
    "duration_ms",
    "name",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "cost_source",
    "agent_id",
    "trigger_event_id",
    "payload",
]


class _Echo:
    def write(self, value):
        return value


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def session_row(session: Session) -> dict:
    return {
        "session_id": str(session.id),
        "init_timestamp": _iso(session.init_timestamp),
        "end_timestamp": _iso(session.end_timestamp),
        "duration_seconds": session.duration_seconds,
        "end_state": session.end_state,
        "end_state_reason": session.end_state_reason or None,
        "tags": sorted(t.name for t in session.tags.all()),
        **{t: getattr(session, c) for t, c in COUNTER_OF_TYPE.items()},
        "prompt_tokens": session.prompt_tokens,
        "completion_tokens": session.completion_tokens,
        # An unknown cost stays unknown: None (an empty CSV cell), never 0.
        **session_cost_fields(session),
    }


def _csv_safe(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (agent text is untrusted)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_csv_safe(v) for v in row])


def sessions_csv(sessions) -> Iterator[str]:
    def rows():
        for s in sessions.iterator(chunk_size=CHUNK):
            row = session_row(s)
            # Always a JSON array (["prod","eu"], [] for none): one format a script can parse,
            # whatever characters the tags hold.
            row["tags"] = orjson.dumps(row["tags"]).decode()
            yield [row[c] for c in SESSION_COLUMNS]

    return _csv_lines(SESSION_COLUMNS, rows())


def sessions_jsonl(sessions) -> Iterator[bytes]:
    for s in sessions.iterator(chunk_size=CHUNK):
        yield orjson.dumps(session_row(s)) + b"\n"


def events_csv(session: Session) -> Iterator[str]:
    def rows():
        events = (
            Event.objects.filter(session_id=session.id)
            .order_by("init_timestamp", "id")
            .iterator(chunk_size=CHUNK)
        )
        for e in events:
            duration = (
                round((e.end_timestamp - e.init_timestamp).total_seconds() * 1000, 3)
                if e.end_timestamp
                else None
            )
            yield [
                str(e.id),
                e.event_type,
                _iso(e.init_timestamp),
                _iso(e.end_timestamp),
                duration,
                e.name,
                e.model,
                e.prompt_tokens,
                e.completion_tokens,
                money(e.cost),  # unknown: an empty cell, with cost_source "unknown" beside it
                e.cost_source,
                e.agent_id,
                e.trigger_event_id,
                orjson.dumps(e.payload).decode(),
            ]

    return _csv_lines(EVENT_COLUMNS, rows())
