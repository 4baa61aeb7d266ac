"""What agentops 0.4 uploads beside its spans: the printed output of a trace
(`/v4/logs/upload/`) and objects (`/v4/objects/upload/`). Writes and reads.

Logs are keyed by project and trace, not linked to a session: the SDK uploads them inside the
root span's end(), before the span itself is exported, so the session usually does not exist
yet (shared/protocols/agentops-otlp.md §5). Readers join on (project, trace id = session id).
"""

import re
import uuid

from django.utils import timezone

from sessions.models import Session, TraceLog, UploadedObject

_DECIMAL = re.compile(r"[0-9]{1,39}")
_HEX = re.compile(r"[0-9a-fA-F]{32}")


def parse_trace_id(value: str | None) -> uuid.UUID | None:
    """The trace a `Trace-Id` header names, or None when it names none.

    agentops 0.4 sends the 128-bit trace id as a DECIMAL integer (fewer digits when it has
    leading zero nibbles); other clients send the 32 hex digits or a dashed UUID. All-digit
    values are read as decimal, as the SDK means them: a hex id with no letter a-f among its 32
    digits is a one-in-three-million chance, and such a client can send the dashed form.
    """
    if not value:
        return None
    value = value.strip()
    if _DECIMAL.fullmatch(value):
        number = int(value)
        return uuid.UUID(int=number) if 0 < number < 2**128 else None
    if _HEX.fullmatch(value):
        return uuid.UUID(hex=value) if int(value, 16) else None
    try:
        return uuid.UUID(value) if len(value) == 36 else None
    except ValueError:
        return None


def store_trace_log(
    *, project_id: uuid.UUID, trace_id: uuid.UUID, body: str, size: int
) -> TraceLog:
    """Keep one upload; a log is activity for the reaper, like a span (§9 last_seen_at)."""
    log = TraceLog.objects.create(project_id=project_id, trace_id=trace_id, body=body, size=size)
    Session.objects.filter(id=trace_id, project_id=project_id, end_state__isnull=True).update(
        last_seen_at=timezone.now()
    )
    return log


def trace_logs(*, project_id: uuid.UUID, session_id: uuid.UUID) -> list[TraceLog]:
    """The session's uploaded logs, oldest first (the index tracelog_project_trace serves it)."""
    return list(TraceLog.objects.filter(project_id=project_id, trace_id=session_id))


def store_object(*, project_id: uuid.UUID, body: str, size: int) -> UploadedObject:
    return UploadedObject.objects.create(project_id=project_id, body=body, size=size)


def object_of_project(*, project_id: uuid.UUID, object_id: uuid.UUID) -> UploadedObject | None:
    return UploadedObject.objects.filter(id=object_id, project_id=project_id).first()
