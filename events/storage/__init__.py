"""The one seam between the domain and the database engine: Postgres in production and CI,
SQLite as the embedded default.

Whatever differs between the two engines goes through `backend()`, which picks the module for
the connection's engine; nothing outside this package looks at `connection.vendor`. Each backend
module offers the same functions:

- `write_events(rows, *, session_id, project_id, key_id, now) -> int`: store a validated, priced
  batch for a session token's grant and add it to the session's totals; the number of rows
  inserted (a resent id is not). Raises `projects.auth.KeyRevoked` when the grant's key was
  revoked and `sessions.services.SessionNotAvailable` when the session is not the project's.
- `write_traces(traces, *, project_id, key_id, now, received_at=None) -> {session_id: inserted}`:
  a decoded OTLP request's traces (events.otlp_ingest.TraceWrite): create missing sessions
  race-free, insert the events, add them to the totals, apply a root span's session fields and
  tags, record the key's use; a trace missing from the answer is another project's. Raises
  `KeyRevoked` when the key was revoked by `received_at` (default `now`).
- `store_otlp_batch(*, project_id, key_id, received_at, encoding, body, span_count) -> int`:
  insert an accepted OTLP request's row (events.models.OtlpBatch) in the caller's transaction;
  its id.
- `otlp_batch_bodies(ids) -> {id: bytes}`: those batches' bodies.
- `export_chunks(session_id) -> Iterator[(section index, bytes)]`: the session's export rows
  (events.rows.event_row's JSON) in EXPORT_SECTIONS order, joined by commas, streamed.
- `timeline_rows(session_id, limit) -> list[(id text, event_type, init, end, name, model,
  prompt + completion tokens, agent_id text, cost, span_id, parent_span_id, trigger_event_id
  text)]` (dashboard/trace.py Row) in time order (init_timestamp, id), times as epoch seconds
  (float), cost Decimal or None.
- `lock_project_for_rollups(project_id)`: serialise rollups of one project until the
  transaction ends.
- `summarize_new_event_ranges() -> int | None`: keep the events' BRIN summaries current.
- `ensure_event_partitions(now=None) -> list[str]`: create the monthly event partitions due now
  and MONTHS_AHEAD ahead (Postgres; events/storage/partitions.py); SQLite has none.
- `drop_event_partitions_before(cutoff) -> (names, events)`: retention by whole months, for
  the months no kept session holds back (Postgres); SQLite drops nothing.
"""

from types import ModuleType

from django.db import connection

# The event columns timeline_rows reads after (id, event_type, init, end).
TIMELINE_COLUMNS = (
    "name", "model", "prompt_tokens", "completion_tokens", "agent_id", "cost", "span_id",
    "parent_span_id", "trigger_event_id",
)  # fmt: skip


def backend() -> ModuleType:
    """The storage module for the default connection's engine."""
    if connection.vendor == "postgresql":
        from events.storage import postgres

        return postgres
    from events.storage import sqlite

    return sqlite


def is_postgres() -> bool:
    """Whether the default database is Postgres (for the few tests of Postgres-only paths)."""
    return connection.vendor == "postgresql"
