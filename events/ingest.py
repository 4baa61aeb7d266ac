"""Event ingestion: validate each event, price it, insert the batch, keep session totals exact.

The totals on Session are updated from the rows the database actually inserted, in the same
transaction, so a resent batch, a duplicate id or several writers at once never skew them. The
write itself goes through the storage seam (events/storage/): on Postgres the insert and the
totals update are one statement (one round trip per batch).
"""

import uuid
from dataclasses import dataclass, field
from datetime import date

import orjson
from django.db import IntegrityError
from django.utils import timezone

from analytics.pricing import price_llm_call
from analytics.scheduling import schedule_rollups
from events import storage
from events.models import CostSource
from events.validation import EventRow, validate_event
from sessions.services import SessionNotAvailable


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    # {"index", "id", "repairs": {path: [message]}} for each event stored after a repair
    warnings: list[dict] = field(default_factory=list)
    days: set[date] = field(default_factory=set)

    def as_response(self) -> dict:
        return {
            "status": "success",
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "warnings": self.warnings,
        }


def cost_of(row: EventRow) -> tuple:
    """(cost, cost_source): the SDK's own cost, else the price table's (cache reads and writes
    at the table's cache prices), else unknown. Counts that cannot price the whole call
    (row.usage_incomplete) give unknown, never a price that is silently too low."""
    if row.cost is not None:
        return row.cost, CostSource.SDK
    if row.event_type == "llms" and row.usage_incomplete is None:
        priced = price_llm_call(
            row.model,
            row.prompt_tokens,
            row.completion_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
        )
        if priced is not None:
            return priced, CostSource.PRICE_TABLE
    return None, CostSource.UNKNOWN


def _say_unknown_cost(row: EventRow) -> None:
    """An LLM call whose counts are incomplete says why its cost is unknown, in its answer
    and its payload."""
    note = f"Unknown: {row.usage_incomplete}; a price from these counts would be too low."
    repairs = row.repairs if row.repairs is not None else {}
    repairs.setdefault("cost", []).append(note)
    row.repairs = repairs
    row.payload["repaired"] = repairs
    row.payload_json = orjson.dumps(row.payload).decode()


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
        if row.usage_incomplete is not None and row.cost is None:
            _say_unknown_cost(row)
        if row.repairs:
            result.warnings.append({"index": index, "id": str(row.id), "repairs": row.repairs})
        rows.append(row)
    return rows, result


def ingest_events(
    *, session_id: uuid.UUID, project_id: uuid.UUID, key_id: uuid.UUID, raw_events: list
) -> IngestResult:
    """Store a batch for a session token's grant. The grant's key is checked here, in the same
    write (KeyRevoked when it was revoked), not by the authentication class: on Postgres the
    key check, the insert, the session totals and the key's last use are one statement."""
    rows, result = prepare_batch(raw_events, session_id=session_id)
    try:
        inserted = storage.backend().write_events(
            rows, session_id=session_id, project_id=project_id, key_id=key_id, now=timezone.now()
        )
    except IntegrityError as exc:
        # The only foreign key a valid row can break is its session's: it was deleted meanwhile.
        raise SessionNotAvailable from exc
    result.accepted = inserted
    result.duplicates += len(rows) - inserted
    if inserted:
        result.days = {r.init_timestamp.date() for r in rows}
        schedule_rollups(project_id, result.days)
    return result
