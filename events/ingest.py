"""Event ingestion: validate each event, price it, insert the batch, keep session totals exact.

The totals on Session are updated from the rows the database actually inserted, in the same
transaction, so a resent batch, a duplicate id or several writers at once never skew them.
On Postgres the insert and the totals update are one statement (one round trip per batch).
"""

import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from analytics.pricing import price_llm_call
from analytics.scheduling import schedule_rollups
from events.models import CostSource, Event
from events.validation import EventRow, validate_event
from projects.auth import LAST_USED_RESOLUTION, KeyRevoked, touch_key
from projects.models import ApiKey
from sessions.models import Session
from sessions.services import SessionNotAvailable


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    days: set[date] = field(default_factory=set)

    def as_response(self) -> dict:
        return {
            "status": "success",
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


def cost_of(row: EventRow) -> tuple:
    """(cost, cost_source): the SDK's own cost, else the price table's, else unknown."""
    if row.cost is not None:
        return row.cost, CostSource.SDK
    if row.event_type == "llms":
        priced = price_llm_call(row.model, row.prompt_tokens, row.completion_tokens)
        if priced is not None:
            return priced, CostSource.PRICE_TABLE
    return None, CostSource.UNKNOWN


def prepare_batch(
    raw_events: list, *, session_id: uuid.UUID
) -> tuple[list[EventRow], IngestResult]:
    """Valid, priced rows (first of each id) and the result with every rejection explained."""
    result = IngestResult()
    rows: list[EventRow] = []
    seen: set[uuid.UUID] = set()
    for index, raw in enumerate(raw_events):
        row, errors = validate_event(raw, session_id=session_id)
        if row is None:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            result.rejected.append(
                {
                    "index": index,
                    "id": raw_id if isinstance(raw_id, str) else None,
                    "errors": errors,
                }
            )
            continue
        if row.id in seen:
            result.duplicates += 1
            continue
        seen.add(row.id)
        row.cost, row.cost_source = cost_of(row)
        rows.append(row)
    return rows, result


def ingest_events(
    *, session_id: uuid.UUID, project_id: uuid.UUID, key_id: uuid.UUID, raw_events: list
) -> IngestResult:
    """Store a batch for a session token's grant. The grant's key is checked here, in the same
    write (KeyRevoked when it was revoked), not by the authentication class: on Postgres the
    key check, the insert, the session totals and the key's last use are one statement."""
    rows, result = prepare_batch(raw_events, session_id=session_id)
    now = timezone.now()
    grant = {"session_id": session_id, "project_id": project_id, "key_id": key_id, "now": now}
    try:
        if connection.vendor == "postgresql":
            with _statement_scope():
                inserted = _write_postgres(rows, **grant)
        else:
            with transaction.atomic():
                inserted = _write_portable(rows, **grant)
        result.accepted = inserted
        result.duplicates += len(rows) - inserted
        if inserted:
            result.days = {r.init_timestamp.date() for r in rows}
            schedule_rollups(project_id, result.days)
    except IntegrityError as exc:
        # The only foreign key a valid row can break is its session's: it was deleted meanwhile.
        raise SessionNotAvailable from exc
    return result


def _statement_scope():
    """In autocommit the write statement is its own transaction (no BEGIN/COMMIT round trips);
    inside a caller's transaction, a savepoint keeps a refused batch from aborting it."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


_COLUMNS = (
    "id, session_id, project_id, event_type, init_timestamp, end_timestamp, received_at, agent_id, "
    "name, model, prompt_tokens, completion_tokens, cost, cost_source, trigger_event_id, payload"
)
# The batch travels as ONE JSON parameter (built by orjson, the payloads embedded as the JSON text
# validation already produced) and is unpacked by jsonb_to_recordset (~10% less Postgres CPU than
# jsonb_array_elements with a ->> per column). Profiled on 100-event
# batches of ~1.4 KB: 1,600 placeholders cost ~9 ms/batch in psycopg's query splitting and
# quoting (client-side binding; the SQL text was too long for its cache) and 16 column arrays
# ~6 ms in array quoting, against ~0.7 ms for this; the server also executes it faster (no
# per-row text-to-jsonb parse of a quoted literal).
# A Session's cached totals as aggregates over event rows (event_type, prompt_tokens,
# completion_tokens, cost), named as _PG_SQL's UPDATE reads them.
SESSION_TOTALS_OF_EVENTS = """
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
#
# The statement refuses the whole batch by itself (no explicit transaction needed): the rows
# go in only when the grant's key is live and the session belongs to the grant's project. It
# returns (key live?, events inserted or NULL when the session is not available).
_PG_SQL = f"""
WITH grant_key AS (
    SELECT EXISTS (
        SELECT 1 FROM projects_apikey
        WHERE id = %(key_id)s AND project_id = %(project_id)s AND revoked_at IS NULL
    ) AS live
),
target AS (
    SELECT s.id FROM agent_sessions_session AS s, grant_key
    WHERE grant_key.live AND s.id = %(session_id)s AND s.project_id = %(project_id)s
),
ins AS (
    INSERT INTO events_event ({_COLUMNS})
    SELECT r.id, %(session_id)s, %(project_id)s, r.event_type, r.init_timestamp, r.end_timestamp,
           %(now)s, r.agent_id, r.name, r.model, r.prompt_tokens, r.completion_tokens, r.cost,
           r.cost_source, r.trigger_event_id, r.payload
    FROM jsonb_to_recordset(%(batch)s::jsonb) AS r(
        id uuid, event_type text, init_timestamp timestamptz, end_timestamp timestamptz,
        agent_id uuid, name text, model text, prompt_tokens integer, completion_tokens integer,
        cost numeric, cost_source text, trigger_event_id uuid, payload jsonb
    )
    WHERE EXISTS (SELECT 1 FROM target)
    ON CONFLICT (id) DO NOTHING
    RETURNING event_type, prompt_tokens, completion_tokens, cost
),
agg AS (
    SELECT count(*) AS n, {SESSION_TOTALS_OF_EVENTS} FROM ins
),
totals AS (
    UPDATE agent_sessions_session AS s SET
        llm_count = s.llm_count + agg.llms,
        tool_count = s.tool_count + agg.tools,
        action_count = s.action_count + agg.actions,
        error_count = s.error_count + agg.errors,
        api_count = s.api_count + agg.apis,
        cost_unknown_events = s.cost_unknown_events + agg.unknown,
        prompt_tokens = s.prompt_tokens + agg.pt,
        completion_tokens = s.completion_tokens + agg.ct,
        cost = s.cost + agg.cost,
        last_seen_at = %(now)s
    FROM agg, target
    WHERE s.id = target.id
    RETURNING agg.n
),
key_use AS (
    -- what touch_key does for the other endpoints: at most one write a minute per key
    UPDATE projects_apikey AS k SET last_used_at = %(now)s
    FROM grant_key
    WHERE grant_key.live AND k.id = %(key_id)s
      AND (k.last_used_at IS NULL OR k.last_used_at < %(used_before)s)
)
SELECT grant_key.live, (SELECT n FROM totals) FROM grant_key
"""


def _batch_document(rows: list[EventRow]) -> str:
    """The rows as one JSON array: money as decimal strings (exact), times as ISO 8601 with
    offset and microseconds, the payload as the validated JSON text itself."""
    return orjson.dumps(
        [
            {
                "id": r.id,
                "event_type": r.event_type,
                "init_timestamp": r.init_timestamp,
                "end_timestamp": r.end_timestamp,
                "agent_id": r.agent_id,
                "name": r.name,
                "model": r.model,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cost": None if r.cost is None else str(r.cost),
                "cost_source": r.cost_source,
                "trigger_event_id": r.trigger_event_id,
                "payload": orjson.Fragment(r.payload_json),
            }
            for r in rows
        ]
    ).decode()


def _write_postgres(rows: list[EventRow], *, session_id, project_id, key_id, now) -> int:
    params = {
        "session_id": session_id,
        "project_id": project_id,
        "key_id": key_id,
        "now": now,
        "used_before": now - LAST_USED_RESOLUTION,
        "batch": _batch_document(rows),
    }
    with server_binding_cursor() as cursor:
        cursor.execute(_PG_SQL, params)
        key_live, inserted = cursor.fetchone()
    if not key_live:
        raise KeyRevoked
    if inserted is None:
        raise SessionNotAvailable
    return inserted


def server_binding_cursor():
    """A cursor whose parameters travel beside the SQL instead of being quoted into it.

    Django's default psycopg cursor binds client-side: quoting a batch's ~140 KB JSON into the
    SQL text cost ~1.2 ms of CPU per batch, and the server then re-parsed the literal and
    re-planned the statement every time. Server-side binding sends the JSON as it is, and psycopg
    prepares the statement after a few executions on a connection, so its plan is reused. Only
    this statement uses it: Django's own queries keep client-side binding (server-side binding
    changes how some ORM expressions with parameters are grouped).
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def _write_portable(rows: list[EventRow], *, session_id, project_id, key_id, now) -> int:
    """SQLite: writers are serialised (IMMEDIATE transactions), so look-then-insert is safe."""
    key = (
        ApiKey.objects.filter(pk=key_id, project_id=project_id, revoked_at__isnull=True)
        .values_list("pk", "last_used_at")
        .first()
    )
    if key is None:
        raise KeyRevoked
    session = Session.objects.select_for_update().filter(id=session_id, project_id=project_id)
    if not session.exists():
        raise SessionNotAvailable
    existing = set(Event.objects.filter(id__in=[r.id for r in rows]).values_list("id", flat=True))
    new = [r for r in rows if r.id not in existing]
    Event.objects.bulk_create(
        [
            Event(
                id=r.id,
                session_id=session_id,
                project_id=project_id,
                event_type=r.event_type,
                init_timestamp=r.init_timestamp,
                end_timestamp=r.end_timestamp,
                received_at=now,
                agent_id=r.agent_id,
                name=r.name,
                model=r.model,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost=r.cost,
                cost_source=r.cost_source,
                trigger_event_id=r.trigger_event_id,
                payload=r.payload,
            )
            for r in new
        ],
        batch_size=500,
    )
    totals = _totals(new)
    session.update(
        last_seen_at=now, **{name: F(name) + value for name, value in totals.items() if value}
    )
    touch_key(key_id, key[1])
    return len(new)


_COUNTER_OF_TYPE = {
    "llms": "llm_count",
    "tools": "tool_count",
    "actions": "action_count",
    "errors": "error_count",
    "apis": "api_count",
}


def _totals(rows: list[EventRow]) -> dict:
    totals = dict.fromkeys(_COUNTER_OF_TYPE.values(), 0)
    totals.update(prompt_tokens=0, completion_tokens=0, cost=0, cost_unknown_events=0)
    for r in rows:
        totals[_COUNTER_OF_TYPE[r.event_type]] += 1
        totals["prompt_tokens"] += r.prompt_tokens or 0
        totals["completion_tokens"] += r.completion_tokens or 0
        if r.cost is not None:
            totals["cost"] += r.cost
        elif r.event_type == "llms":
            totals["cost_unknown_events"] += 1
    return totals
