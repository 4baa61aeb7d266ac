"""The storage seam on Postgres: one statement per ingested batch, the export built by the
database and streamed by COPY, advisory locks for rollups, BRIN upkeep."""

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import nullcontext

import orjson
from django.db import OperationalError, connection, connections, router, transaction
from psycopg.types.json import set_json_dumps

from events.models import Event
from events.rows import EXPORT_SECTIONS, wrap_message_content
from events.storage.postgres_export import export_query, section_chunks
from events.validation import EventRow
from projects.auth import LAST_USED_RESOLUTION, KeyRevoked
from sessions.services import SessionNotAvailable
from sessions.totals import SQL_NAME_OF_FIELD, SQL_TOTALS_OF_EVENTS

logger = logging.getLogger(__name__)

# Text search reads SearchChunk rows under a pg_trgm index, kept by events.search's indexer.
HAS_SEARCH_INDEX = True


def sessions_matching(project_id, phrase: str):
    """Ids of the project's sessions whose indexed events contain `phrase` (lower-cased,
    events.search.normalise_query), as a subquery: the trigram index finds the chunks."""
    from events.models import SearchChunk

    return SearchChunk.objects.filter(project_id=project_id, text__contains=phrase).values(
        "session_id"
    )


_COLUMNS = (
    "id, session_id, project_id, event_type, init_timestamp, end_timestamp, received_at, agent_id, "
    "name, model, prompt_tokens, completion_tokens, cost, cost_source, trigger_event_id, payload, "
    "span_id, parent_span_id"
)
_ADD_TOTALS = ",\n        ".join(
    f"{field} = s.{field} + agg.{name}" for field, name in SQL_NAME_OF_FIELD.items()
)
# events_event is partitioned by month of init_timestamp and unique on (id, init_timestamp)
# (events/storage/partitions.py says why a re-send always has the same pair). ON CONFLICT catches
# the re-sends, concurrent ones included; this probe catches an id already stored under another
# time within a month either way, which the unique key cannot see. Bounded so that run-time
# pruning leaves at most three partitions to probe: unbounded, it probed every partition's
# primary key (random UUIDs: a cold page each) and cost +45-60% per 100-event batch with only 8
# partitions at 4M events (bench/partition_guard.py), growing with every month kept.
_STORED_UNDER_ANOTHER_TIME = (
    "SELECT 1 FROM events_event AS stored WHERE stored.id = r.id "
    "AND stored.init_timestamp > r.init_timestamp - interval '1 month' "
    "AND stored.init_timestamp < r.init_timestamp + interval '1 month'"
)

# The batch travels as ONE JSON parameter (built by orjson, the payloads embedded as the JSON text
# validation already produced) and is unpacked by jsonb_to_recordset (~10% less Postgres CPU than
# jsonb_array_elements with a ->> per column). Profiled on 100-event
# batches of ~1.4 KB: 1,600 placeholders cost ~9 ms/batch in psycopg's query splitting and
# quoting (client-side binding; the SQL text was too long for its cache) and 16 column arrays
# ~6 ms in array quoting, against ~0.7 ms for this; the server also executes it faster (no
# per-row text-to-jsonb parse of a quoted literal).
#
# The statement refuses the whole batch by itself (no explicit transaction needed): the rows
# go in only when the grant's key is live and the session belongs to the grant's project. It
# returns (key live?, events inserted or NULL when the session is not available).
_INGEST_SQL = f"""
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
           r.cost_source, r.trigger_event_id, r.payload, r.span_id, r.parent_span_id
    FROM jsonb_to_recordset(%(batch)s::jsonb) AS r(
        id uuid, event_type text, init_timestamp timestamptz, end_timestamp timestamptz,
        agent_id uuid, name text, model text, prompt_tokens integer, completion_tokens integer,
        cost numeric, cost_source text, trigger_event_id uuid, payload jsonb, span_id text,
        parent_span_id text
    )
    WHERE EXISTS (SELECT 1 FROM target) AND NOT EXISTS ({_STORED_UNDER_ANOTHER_TIME})
    ON CONFLICT (id, init_timestamp) DO NOTHING
    RETURNING event_type, prompt_tokens, completion_tokens, cost
),
agg AS (
    SELECT count(*) AS n, {SQL_TOTALS_OF_EVENTS} FROM ins
),
totals AS (
    UPDATE agent_sessions_session AS s SET
        {_ADD_TOTALS},
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


def write_events(rows: list[EventRow], *, session_id, project_id, key_id, now) -> int:
    """The key check, the insert, the session totals and the key's last use: one statement."""
    params = {
        "session_id": session_id,
        "project_id": project_id,
        "key_id": key_id,
        "now": now,
        "used_before": now - LAST_USED_RESOLUTION,
        "batch": _batch_document(rows),
    }
    with _statement_scope(), server_binding_cursor() as cursor:
        cursor.execute(_INGEST_SQL, params)
        key_live, inserted = cursor.fetchone()
    if not key_live:
        raise KeyRevoked
    if inserted is None:
        raise SessionNotAvailable
    return inserted


def _statement_scope():
    """In autocommit the write statement is its own transaction (no BEGIN/COMMIT round trips);
    inside a caller's transaction, a savepoint keeps a refused batch from aborting it."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


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
                "span_id": r.span_id,
                "parent_span_id": r.parent_span_id,
            }
            for r in rows
        ]
    ).decode()


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


_EXPORT_COPY = export_query(EXPORT_SECTIONS)


def export_chunks(session_id) -> Iterator[tuple[int, bytes]]:
    """Each row's JSON written by Postgres; one COPY streams the whole session and Python only
    strips its framing and joins the rows (see postgres_export.py). Reads where the ORM would
    read events (the replica for a dashboard export: agentops_site/db_router.py)."""
    db = connections[router.db_for_read(Event)]
    db.ensure_connection()
    with db.connection.transaction(), db.connection.cursor() as cursor:
        # JIT spent ~0.4 s compiling the row expressions on the 100k-event session (off for
        # every connection in settings too; said here as this query depends on it); parallel
        # workers only take the core this process needs to forward the rows. On the partitioned
        # table the planner costed the per-row lookup (one TID scan in the partition the row's
        # time picks, pruned at run time) as a hash join over every partition's rows: 13x
        # slower on the 100k-event session at 1M events (bench/scale.py). Only the nested loop
        # is allowed for this statement.
        cursor.execute(
            "SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; "
            "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
        )
        with cursor.copy(_EXPORT_COPY, [session_id]) as copy:
            yield from section_chunks(copy, _wrap_numbers_in_python)


def _wrap_numbers_in_python(row_json) -> bytes:
    """A row from the SQL path with its prompt and completion wrapped by event_row()'s rules
    (the SQL leaves a number as it is; wrapping an already wrapped value keeps it)."""
    row = orjson.loads(row_json)
    row["prompt"] = wrap_message_content(row["prompt"])
    row["completion"] = wrap_message_content(row["completion"])
    return orjson.dumps(row)


def timeline_rows(session_id, limit: int) -> list[tuple]:
    """The database computes the epoch seconds, the token sums and the ids' text: parsing 20k
    timestamps in Python (Django's timestamptz loader) was nearly half of a 10k-event waterfall,
    and making then printing 30k UUID objects a third of a 10k-event tree's first build.
    date_part gives the float directly; EXTRACT computes a numeric (Postgres 14+) then cast,
    15-25 % of the statement's own time at 10k rows. The ORDER BY names the table's columns: a
    bare `id` would be the output's text (a collated text sort, slower than the uuid's). Reads
    where the ORM would read events (the replica for a dashboard page)."""
    table = Event._meta.db_table
    with connections[router.db_for_read(Event)].cursor() as cursor:
        cursor.execute(
            f"""SELECT id::text, event_type, date_part('epoch', init_timestamp),
                       date_part('epoch', end_timestamp), name, model,
                       coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0),
                       agent_id::text, cost, span_id, parent_span_id, trigger_event_id::text
                FROM {table} AS e WHERE session_id = %s
                ORDER BY e.init_timestamp, e.id LIMIT %s""",
            [session_id, limit],
        )
        return cursor.fetchall()


def lock_project_for_rollups(project_id) -> None:
    """A transaction-scoped advisory lock: whoever takes it second reads after the first has
    committed, so the rows left behind are those of the latest snapshot."""
    digest = hashlib.sha256(f"analytics.rollup:{project_id}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


EVENT_RECEIVED_BRIN = "event_received_brin"  # events/migrations/0003_event_received_brin.py


def summarize_new_event_ranges() -> int | None:
    """Summarize the BRIN ranges of events filled since the last summary; how many.

    Ranges never summarized are read by every "received since" scan (the overview's today).
    Autovacuum summarizes them (the index has autosummarize), but not where it is off or lags
    behind; the periodic catch-up calls this so that part stays within its period of ingest.
    Gives up (None) rather than wait behind a VACUUM of the table, which summarizes too.
    The index is partitioned with the table: each partition's own BRIN is summarized (those of
    past months have nothing new, a no-op each).
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(
                "SELECT coalesce(sum(brin_summarize_new_values(i.oid)), 0)::int FROM pg_class i "
                "WHERE i.relkind = 'i' AND (i.oid = to_regclass(%(index)s) OR i.oid IN ("
                "  SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%(index)s)))",
                {"index": EVENT_RECEIVED_BRIN},
            )
            return cursor.fetchone()[0]
    except OperationalError:
        logger.warning("event BRIN summary skipped: the table is busy", exc_info=True)
        return None


# --- OTLP traces (events/otlp_ingest.py) -----------------------------------------------------
# A request's spans, grouped by trace, are written in two statements whatever the number of
# traces (and a COPY of their rows in between): the first creates the sessions that do not exist
# yet (INSERT ... ON CONFLICT DO NOTHING: several processes may send a trace's first spans at
# once, and a conflicting insert waits for the other's commit instead of failing); the second,
# which starts after it and so sees every session committed by then, keeps only the traces that
# are sessions of the grant's project, inserts their events, adds the inserted rows to the
# totals, applies a root span's session fields and records the key's use. A trace id another
# project owns matches no session of ours: its spans are refused, never joined.

_CREATE_TRACE_SESSIONS_SQL = """
INSERT INTO agent_sessions_session (
    id, project_id, init_timestamp, last_seen_at, created_at, protocol, sdk_version,
    end_state_reason, video, llm_count, tool_count, action_count, error_count, api_count,
    prompt_tokens, completion_tokens, cost, cost_unknown_events
)
SELECT t.id, %(project_id)s, t.started, %(now)s, %(now)s, 'otlp', t.sdk_version,
       '', '', 0, 0, 0, 0, 0, 0, 0, 0, 0
FROM jsonb_to_recordset(%(traces)s::jsonb) AS t(id uuid, started timestamptz, sdk_version text)
WHERE EXISTS (
    SELECT 1 FROM projects_apikey
    WHERE id = %(key_id)s AND project_id = %(project_id)s
      AND (revoked_at IS NULL OR revoked_at > %(received_at)s)
)
ON CONFLICT (id) DO NOTHING
"""

# The rows themselves do not travel as one JSON document (the v2 path's way, above): at 512+
# spans a request, Postgres parsing that document (~1 MB of JSON a request, then every field
# converted out of it) was half its CPU for the write. They are COPYed in binary into a
# temporary table, each payload as the JSON text validation produced, and the statement reads
# them from there: ~10-15 ms less Postgres CPU per 512 spans, ~1 ms more Python
# (bench/otlp_queue_cpu.py; BENCHMARKS.md §5). The table is made once per connection and
# emptied by every commit (ON COMMIT DELETE ROWS, a truncation with no catalog change): one
# created and dropped per write left ~30 dead catalog rows each time. Emptied before each COPY
# too, for two writes in one transaction (tests, a caller's atomic block). Its name carries
# its version: a pooled server connection (PgBouncer) may still hold the previous layout.
_SPAN_ROWS = "otlp_span_rows_v1"
_SPAN_ROW_COLUMNS = (
    ("id", "uuid"),
    ("session_id", "uuid"),
    ("event_type", "text"),
    ("init_timestamp", "timestamptz"),
    ("end_timestamp", "timestamptz"),
    ("agent_id", "uuid"),
    ("name", "text"),
    ("model", "text"),
    ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"),
    ("cost", "numeric"),
    ("cost_source", "text"),
    ("trigger_event_id", "uuid"),
    ("payload", "jsonb"),
    ("span_id", "text"),
    ("parent_span_id", "text"),
)
_CREATE_SPAN_ROWS_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SPAN_ROWS} ("
    + ", ".join(f"{name} {type_}" for name, type_ in _SPAN_ROW_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_COPY_SPAN_ROWS_SQL = f"COPY {_SPAN_ROWS} FROM STDIN (FORMAT BINARY)"

_ADD_TRACE_TOTALS = ",\n        ".join(
    f"{field} = s.{field} + coalesce(agg.{name}, 0)" for field, name in SQL_NAME_OF_FIELD.items()
)
_WRITE_TRACES_SQL = f"""
WITH grant_key AS (
    SELECT EXISTS (
        SELECT 1 FROM projects_apikey
        WHERE id = %(key_id)s AND project_id = %(project_id)s
          AND (revoked_at IS NULL OR revoked_at > %(received_at)s)
    ) AS live
),
traces AS (
    SELECT * FROM jsonb_to_recordset(%(traces)s::jsonb) AS t(
        id uuid, started timestamptz, has_root boolean, end_state text, end_state_reason text,
        root_end timestamptz, host_env jsonb, metadata jsonb, root_span jsonb, tags jsonb
    )
),
target AS (
    SELECT s.id FROM agent_sessions_session AS s, grant_key, traces
    WHERE grant_key.live AND s.id = traces.id AND s.project_id = %(project_id)s
),
ins AS (
    INSERT INTO events_event ({_COLUMNS})
    SELECT r.id, r.session_id, %(project_id)s, r.event_type, r.init_timestamp, r.end_timestamp,
           %(now)s, r.agent_id, r.name, r.model, r.prompt_tokens, r.completion_tokens, r.cost,
           r.cost_source, r.trigger_event_id, r.payload, r.span_id, r.parent_span_id
    FROM {_SPAN_ROWS} AS r
    WHERE r.session_id IN (SELECT id FROM target) AND NOT EXISTS ({_STORED_UNDER_ANOTHER_TIME})
    ON CONFLICT (id, init_timestamp) DO NOTHING
    RETURNING session_id, event_type, prompt_tokens, completion_tokens, cost
),
agg AS (
    SELECT session_id, count(*) AS n, {SQL_TOTALS_OF_EVENTS} FROM ins GROUP BY session_id
),
written AS (
    -- Only the root sets the end fields, and always: a root arriving after the reaper ended
    -- the session replaces its Indeterminate. init is the earliest start seen.
    UPDATE agent_sessions_session AS s SET
        {_ADD_TRACE_TOTALS},
        last_seen_at = %(now)s,
        init_timestamp = LEAST(s.init_timestamp, t.started),
        end_state = CASE WHEN t.has_root THEN t.end_state ELSE s.end_state END,
        end_state_reason = CASE WHEN t.has_root THEN t.end_state_reason
                                ELSE s.end_state_reason END,
        end_timestamp = CASE WHEN t.has_root
                             THEN GREATEST(t.root_end, LEAST(s.init_timestamp, t.started))
                             ELSE s.end_timestamp END,
        host_env = CASE WHEN t.has_root AND t.host_env IS NOT NULL THEN t.host_env
                        ELSE s.host_env END,
        metadata = CASE WHEN t.has_root THEN t.metadata ELSE s.metadata END,
        root_span = CASE WHEN t.has_root THEN t.root_span ELSE s.root_span END
    FROM traces AS t LEFT JOIN agg ON agg.session_id = t.id
    WHERE s.id = t.id AND s.id IN (SELECT id FROM target)
    RETURNING s.id, coalesce(agg.n, 0) AS n
),
key_use AS (
    UPDATE projects_apikey AS k SET last_used_at = %(now)s, last_span_at = %(now)s
    FROM grant_key
    WHERE grant_key.live AND k.id = %(key_id)s
      AND (k.last_used_at IS NULL OR k.last_used_at < %(used_before)s
           OR k.last_span_at IS NULL OR k.last_span_at < %(used_before)s
           OR k.last_span_at < k.last_token_at)
),
-- A root names its session's tags and replaces what was there (sessions.services.set_trace_tags
-- does the same for the other engine). DO UPDATE rather than DO NOTHING: it returns the tag row
-- even when another request created the name after this statement's snapshot was taken.
root_tags AS (
    SELECT DISTINCT t.id AS session_id, tag.name
    FROM traces AS t, jsonb_array_elements_text(t.tags) AS tag(name)
    WHERE t.has_root AND t.id IN (SELECT id FROM target)
),
tag_rows AS (
    INSERT INTO agent_sessions_tag (project_id, name)
    SELECT DISTINCT %(project_id)s::uuid, name FROM root_tags
    ON CONFLICT (project_id, name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id, name
),
untagged AS (
    DELETE FROM agent_sessions_sessiontag AS st
    USING traces AS t, agent_sessions_tag AS tg
    WHERE t.has_root AND t.id IN (SELECT id FROM target) AND st.session_id = t.id
      AND tg.id = st.tag_id AND NOT coalesce(t.tags, '[]'::jsonb) ? tg.name
),
tagged AS (
    INSERT INTO agent_sessions_sessiontag (session_id, tag_id)
    SELECT r.session_id, tag_rows.id FROM root_tags AS r JOIN tag_rows USING (name)
    ON CONFLICT (session_id, tag_id) DO NOTHING
)
SELECT grant_key.live, (SELECT json_agg(json_build_array(id, n)) FROM written) FROM grant_key
"""


def write_traces(traces, *, project_id, key_id, now, received_at=None) -> dict:
    """Store a request's traces (events.otlp_ingest.TraceWrite: session_id, started,
    sdk_version, rows, root) for an ingest grant; {session_id: rows inserted} for the traces
    that are sessions of the project (a trace missing from it is another project's). Raises
    projects.auth.KeyRevoked when the grant's key was revoked by `received_at` (default `now`:
    a queued request accepted before its key was revoked is still stored). Two statements
    (see above)."""
    params = {
        "project_id": project_id,
        "key_id": key_id,
        "now": now,
        "received_at": received_at or now,
        "used_before": now - LAST_USED_RESOLUTION,
        "traces": trace_document(traces),
    }
    # Always a transaction (a savepoint inside the caller's): the rows' table is emptied by its
    # commit, and a refused write leaves nothing behind.
    with transaction.atomic(), server_binding_cursor() as cursor:
        cursor.execute(_CREATE_TRACE_SESSIONS_SQL, params)
        cursor.execute(_CREATE_SPAN_ROWS_SQL)
        cursor.execute(f"DELETE FROM {_SPAN_ROWS}")
        _copy_span_rows(cursor, traces)
        cursor.execute(_WRITE_TRACES_SQL, params)
        key_live, written = cursor.fetchone()
    if not key_live:
        raise KeyRevoked
    if isinstance(written, str):  # json_agg arrives as text through some adapters
        written = orjson.loads(written)
    return {uuid.UUID(sid): n for sid, n in (written or [])}


def trace_document(traces) -> str:
    """The traces parameter of the trace statements, as JSON text: one object per trace (id,
    started, sdk_version, has_root and the root's fields)."""
    return orjson.dumps(
        [
            {
                "id": t.session_id,
                "started": t.started,
                "sdk_version": t.sdk_version,
                "has_root": t.root is not None,
                **(_root_document(t.root) if t.root is not None else {}),
            }
            for t in traces
        ]
    ).decode()


def _copy_span_rows(cursor, traces) -> None:
    """Every trace's rows into the connection's _SPAN_ROWS table, by binary COPY."""
    raw = getattr(cursor, "cursor", cursor)  # Django's wrapper, or psycopg's own cursor
    # A jsonb value goes over binary COPY as a version byte and its JSON text: the payload's
    # text is sent as it is, never decoded and dumped again.
    set_json_dumps(_json_text, context=raw)
    with raw.copy(_COPY_SPAN_ROWS_SQL) as copy:
        copy.set_types([type_ for _, type_ in _SPAN_ROW_COLUMNS])
        for t in traces:
            session_id = t.session_id
            for r in t.rows:
                copy.write_row(
                    (
                        r.id,
                        session_id,
                        r.event_type,
                        r.init_timestamp,
                        r.end_timestamp,
                        r.agent_id,
                        r.name,
                        r.model,
                        r.prompt_tokens,
                        r.completion_tokens,
                        r.cost,
                        r.cost_source,
                        r.trigger_event_id,
                        r.payload_json,
                        r.span_id,
                        r.parent_span_id,
                    )
                )


def _json_text(value: str) -> str:
    return value


def _root_document(root) -> dict:
    return {
        "end_state": root.end_state,
        "end_state_reason": root.end_state_reason,
        "root_end": root.end_timestamp,
        "host_env": root.host_env,
        "metadata": root.metadata,
        "root_span": root.span,
        "tags": root.tags,
    }


# --- The queued OTLP write's batches (events/otlp_queue.py) ----------------------------------
# A request's body (~0.5 MB for 512 spans) travels as a binary parameter and comes back as a
# binary result. Through Django's client-side binding it was quoted into the SQL text as hex
# (twice its size, parsed back by the server) and read back as hex: the answer to a 512-span
# request cost 12-13 ms of Python + 9 ms of Postgres that way, 7-8 + 3.4 ms this way
# (bench/otlp_queue_cpu.py, "queued: accept"; BENCHMARKS.md §5).

_INSERT_OTLP_BATCH_SQL = """
INSERT INTO events_otlp_batch (
    project_id, key_id, received_at, encoding, body, span_count, attempts, last_error,
    refused_spans
) VALUES (
    %(project_id)s, %(key_id)s, %(received_at)s, %(encoding)s, %(body)s, %(span_count)s, 0, '', 0
)
RETURNING id
"""


def store_otlp_batch(*, project_id, key_id, received_at, encoding, body, span_count) -> int:
    """Insert an accepted request's OtlpBatch row (in the caller's transaction); its id."""
    with server_binding_cursor() as cursor:
        cursor.execute(
            _INSERT_OTLP_BATCH_SQL,
            {
                "project_id": project_id,
                "key_id": key_id,
                "received_at": received_at,
                "encoding": encoding,
                "body": bytes(body),
                "span_count": span_count,
            },
        )
        return cursor.fetchone()[0]


def otlp_batch_bodies(ids) -> dict[int, bytes]:
    """{id: body} of these OTLP batches, read as binary."""
    with server_binding_cursor() as cursor:
        raw = getattr(cursor, "cursor", cursor)  # Django's wrapper has no `binary` argument
        raw.execute(
            "SELECT id, body FROM events_otlp_batch WHERE id = ANY(%s)", [list(ids)], binary=True
        )
        return {pk: bytes(body) for pk, body in raw.fetchall()}


# --- Partitions (events/storage/partitions.py) -----------------------------------------------


def ensure_event_partitions(now=None) -> list[str]:
    """Create the monthly event partitions due now and ahead; the names created."""
    from events.storage import partitions

    return partitions.ensure_partitions(now)


def drop_event_partitions_before(cutoff) -> tuple[list[str], int]:
    """Drop the monthly partitions wholly older than `cutoff` that no kept session holds back;
    (names dropped, events in them)."""
    from events.storage import partitions

    dropped, events = [], 0
    with connection.cursor() as cursor:
        months = partitions.droppable_months(cursor, cutoff)
    for month in months:
        rows = partitions.drop_month(month, cutoff)
        if rows is not None:
            dropped.append(partitions.partition_name(month))
            events += rows
    return dropped, events
