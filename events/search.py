"""Text search over sessions' events: what an event contributes, and the index kept of it.

The session list's search (sessions/queries.py) looks for a phrase in what users search for in
Langfuse and the AgentOps cloud: prompts, completions, tool names, error types and messages,
models, action names. Each event contributes `search_text`: its name and model, then the head of
each text field (SEARCH_PART characters each, SEARCH_TEXT_MAX in all), lower-cased, whitespace
collapsed, so one plain LIKE '%phrase%' matches.

Where it is kept differs by engine (events/storage/): on Postgres, OFF the ingest path. A
trigram index written with every event tripled Postgres's CPU per ingested batch (measured,
BENCHMARKS.md §1), so `index_new_events` (run after each rollup, i.e. seconds after a batch)
reads the events received since its cursor and appends, per session, their extracts
deduplicated (a system prompt repeated on every call is kept once per run) as SearchChunk rows
under a pg_trgm GIN index. A session is findable by content once indexed: seconds after its
events arrive. On SQLite (the embedded default's scale) the search scans the events' names,
models and payloads directly (LIKE on the JSON text: ASCII case-insensitive) and nothing is
indexed.
"""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger(__name__)

SEARCH_TEXT_MAX = 1000
SEARCH_PART = 300
# Payload fields searched, most telling first (v2 names; OTLP spans are mapped onto the same).
_TEXT_FIELDS = ("details", "prompt", "completion", "params", "returns", "logs", "code")


def search_text(*, name: str, model: str, payload: dict) -> str:
    """The lower-cased search extract of one event (str, at most SEARCH_TEXT_MAX characters):
    name, model, then up to SEARCH_PART characters of each of the payload's text fields, runs of
    whitespace made one space. Message lists contribute their contents, not their JSON."""
    parts = [name, model] if model and model != name else [name]
    for key in _TEXT_FIELDS:
        value = payload.get(key)
        if value is None:
            continue
        text = _flatten(value, SEARCH_PART)
        if text:
            parts.append(text[:SEARCH_PART])
    # Whitespace collapsed as in normalise_query, so a phrase matches across line breaks.
    return " ".join(" ".join(parts).split())[:SEARCH_TEXT_MAX].lower()


def normalise_query(text: str) -> str:
    """A search phrase as it is matched against search_text: whitespace runs made one space,
    lower-cased."""
    return " ".join(text.split()).lower()


def _flatten(value: Any, budget: int) -> str:
    """The text inside a JSON value, depth first, until `budget` characters are collected:
    strings as they are, messages' "content", numbers and keys left out."""
    out: list[str] = []
    size = 0
    stack = [value]
    while stack and size < budget:
        item = stack.pop()
        if isinstance(item, str):
            if item:
                out.append(item)
                size += len(item) + 1
        elif isinstance(item, dict):
            if item.get("type") == "string" and isinstance(item.get("string"), str):
                stack.append(item["string"])
            elif "messages" in item:
                stack.append(item["messages"])
            elif "content" in item:
                stack.append(item["content"])
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return " ".join(out)


# --- The index (Postgres) ---------------------------------------------------------------------

CURSOR_NAME = "events"
# Events received less than this long ago are left for the next run: the ingest statement takes
# its received_at before it commits, so a slower concurrent batch may still commit behind it.
SETTLE = timedelta(seconds=5)
INDEX_BATCH = 20_000
CHUNK_MAX = 8_000  # characters of one SearchChunk row
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ZERO = uuid.UUID(int=0)


def index_new_events(*, limit: int = INDEX_BATCH, now: datetime | None = None) -> int:
    """Append the search extracts of up to `limit` events received since the last run (and at
    least SETTLE ago) to their sessions' SearchChunk rows; how many events were read. Postgres
    only (0 on SQLite, which searches the events directly). Runs one at a time: a call while
    another holds the cursor returns 0 at once."""
    from django.db import transaction

    from events import storage

    if not storage.backend().HAS_SEARCH_INDEX:
        return 0
    from django.db.models import Q
    from django.utils import timezone

    from events.models import Event, SearchChunk, SearchCursor

    now = now or timezone.now()
    with transaction.atomic():
        SearchCursor.objects.get_or_create(
            name=CURSOR_NAME, defaults={"received_at": _EPOCH, "event_id": _ZERO}
        )
        cursor = (
            SearchCursor.objects.select_for_update(skip_locked=True)
            .filter(name=CURSOR_NAME)
            .first()
        )
        if cursor is None:
            return 0
        rows = list(
            Event.objects.filter(received_at__lt=now - SETTLE)
            .filter(
                Q(received_at__gt=cursor.received_at)
                | Q(received_at=cursor.received_at, id__gt=cursor.event_id)
            )
            .order_by("received_at", "id")
            .values_list(
                "id", "received_at", "session_id", "project_id", "name", "model", "payload"
            )[:limit]
        )
        if not rows:
            return 0
        by_session: dict = {}
        for _, _, session_id, project_id, name, model, payload in rows:
            texts = by_session.setdefault((session_id, project_id), {})
            texts[search_text(name=name, model=model, payload=payload or {})] = None
        chunks = []
        for (session_id, project_id), texts in by_session.items():
            # Whole extracts per chunk (each is at most SEARCH_TEXT_MAX), so no phrase is cut.
            pieces: list[str] = []
            size = 0
            for text in (t for t in texts if t):
                if pieces and size + len(text) > CHUNK_MAX:
                    chunks.append(SearchChunk(session_id=session_id, project_id=project_id,
                                              text="\n".join(pieces)))  # fmt: skip
                    pieces, size = [], 0
                pieces.append(text)
                size += len(text) + 1
            if pieces:
                chunks.append(SearchChunk(session_id=session_id, project_id=project_id,
                                          text="\n".join(pieces)))  # fmt: skip
        SearchChunk.objects.bulk_create(chunks, batch_size=1000)
        last_id, last_received = rows[-1][0], rows[-1][1]
        SearchCursor.objects.filter(name=CURSOR_NAME).update(
            received_at=last_received, event_id=last_id
        )
    return len(rows)


def index_all_events(*, limit: int = INDEX_BATCH) -> int:
    """index_new_events until it has caught up; how many events were read in all (a backfill,
    e.g. after migrating a database whose events predate the index)."""
    total = 0
    while True:
        done = index_new_events(limit=limit)
        total += done
        if done < limit:
            return total
