"""OTLP trace ingest: a decoded `POST /v1/traces` request stored as sessions and events.

A trace is a session (id = the trace id as a UUID, events.spans.session_id_of); each non-root
span is an event (two when its status is ERROR), keyed by (trace id, span id) so a re-sent
span stores nothing twice. The session is created by whichever span of the trace arrives
first; only the true root (no parent) sets the end state, reason, tags, host env, metadata and
end time, and it may come last, never, or after the reaper ended the session
(shared/protocols/agentops-otlp.md §10 "Ordering").

Spans are grouped by trace and the whole request is written through the storage seam in two
statements on Postgres (events/storage/postgres.py `write_traces`), a root's tags included.
Rollups go through the existing `schedule_rollups` path.

Refused alone, each with a reason, its neighbours kept: a span the decoder could not read
(`DecodedRequest.rejected`), a span whose event failed validation, and every span of a trace
whose id is another project's session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.utils import timezone

from analytics.scheduling import schedule_rollups
from api.otlp.decode import DecodedRequest, Limits
from events import storage
from events.spans import MappedSpan, RootFields, map_spans
from events.validation import EventRow

FOREIGN_TRACE = "its trace id is not available to this project"


def request_limits() -> Limits:
    """The bounds on one request, from settings (INGEST_MAX_BODY_BYTES, after decompression;
    OTLP_MAX_SPANS_PER_REQUEST)."""
    return Limits(
        max_body_bytes=settings.INGEST_MAX_BODY_BYTES, max_spans=settings.OTLP_MAX_SPANS_PER_REQUEST
    )


@dataclass(slots=True)
class TraceWrite:
    """One trace's part of a request, as the storage seam writes it."""

    session_id: uuid.UUID
    started: datetime  # earliest span start in this request (aware UTC)
    sdk_version: str
    rows: list[EventRow] = field(default_factory=list)
    root: RootFields | None = None
    span_indexes: list[int] = field(default_factory=list)  # request positions of its spans


@dataclass
class TracesResult:
    """What a request did: spans stored (or already stored), spans refused with reasons
    ({"index": request position, "trace_id", "span_id", "reason"}), rows newly inserted."""

    accepted_spans: int = 0
    rejected: list[dict] = field(default_factory=list)
    inserted_rows: int = 0
    sessions: list[uuid.UUID] = field(default_factory=list)

    def error_message(self) -> str:
        """OTLP's partial_success.error_message: how many were refused and the first reasons."""
        if not self.rejected:
            return ""
        reasons = list(dict.fromkeys(r["reason"] for r in self.rejected))
        shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
        return f"{len(self.rejected)} span(s) refused: {shown}"


def group_by_trace(mapped: list[MappedSpan], indexes: list[int]) -> tuple[list[TraceWrite], list]:
    """(one TraceWrite per trace in first-seen order, refused spans). A span whose event row
    failed validation is refused; its error row, if valid, is kept."""
    traces: dict[uuid.UUID, TraceWrite] = {}
    refused: list[dict] = []
    for span, index in zip(mapped, indexes, strict=True):
        trace = traces.get(span.session_id)
        if trace is None:
            trace = traces[span.session_id] = TraceWrite(
                session_id=span.session_id, started=span.started, sdk_version=span.sdk_version
            )
        elif span.started < trace.started:
            trace.started = span.started
        trace.rows.extend(span.rows)
        if span.root is not None and trace.root is None:
            trace.root = span.root
        if any(r["role"] == "event" for r in span.rejected):
            errors = next(r["errors"] for r in span.rejected if r["role"] == "event")
            refused.append(_refusal(index, span.trace_id, span.span_id, f"invalid: {errors}"))
        else:
            trace.span_indexes.append(index)
    return list(traces.values()), refused


def ingest_traces(
    decoded: DecodedRequest,
    *,
    project_id: uuid.UUID,
    key_id: uuid.UUID,
    now: datetime | None = None,
    received_at: datetime | None = None,
) -> TracesResult:
    """Store a decoded request for an ingest grant (project, key). Raises
    projects.auth.KeyRevoked when the key was revoked by `received_at` (default: now; the
    queued write passes the request's reception, events/otlp_queue.py). The write checks it."""
    now = now or timezone.now()
    result = TracesResult(
        rejected=[_refusal(r.index, r.trace_id, r.span_id, r.reason) for r in decoded.rejected]
    )
    spans = decoded.spans
    mapped = map_spans(spans)
    # map_spans keeps the first copy of a repeated (trace, span): match positions the same way.
    seen: set[tuple[str, str]] = set()
    indexes = []
    for span in spans:
        if (span.trace_id, span.span_id) not in seen:
            seen.add((span.trace_id, span.span_id))
            indexes.append(span.index)
    result.accepted_spans += len(spans) - len(indexes)  # in-request duplicates: stored once
    traces, refused = group_by_trace(mapped, indexes)
    result.rejected.extend(refused)
    if not traces:
        return result
    written = storage.backend().write_traces(
        traces, project_id=project_id, key_id=key_id, now=now, received_at=received_at
    )
    days: set[date] = set()
    for trace in traces:
        if trace.session_id not in written:
            result.rejected.extend(
                _refusal(i, trace.session_id.hex, None, FOREIGN_TRACE) for i in trace.span_indexes
            )
            continue
        result.sessions.append(trace.session_id)
        result.accepted_spans += len(trace.span_indexes)
        inserted = written[trace.session_id]
        result.inserted_rows += inserted
        if inserted:
            days.update(r.init_timestamp.date() for r in trace.rows)
        if trace.root is not None:
            days.add(trace.started.date())
    schedule_rollups(project_id, days)
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _refusal(index: int, trace_id, span_id, reason: str) -> dict:
    return {"index": index, "trace_id": trace_id, "span_id": span_id, "reason": reason}
