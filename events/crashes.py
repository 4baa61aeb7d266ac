"""A crash is an error: the one home of the rule that a session ended Fail by an uncaught
exception counts that exception as an error event.

Both SDKs end a crashed session from their excepthook with end_state "Fail" and the traceback in
end_state_reason, and send no error event: our SDK (sdk/agentops/exits.py) sends
"<Type>: <message>\\n\\n<traceback>", the official 0.3.x client "<message>: <traceback>"
(agentops/client.py, handle_exception). The server turns such an end into one error event, so
every surface that counts errors (the session's totals, the "With errors" filter, the rollups,
the export) counts the crash. The event's id is derived from the session id, so a re-sent end
(or a second excepthook) stores nothing new: the crash counts once.
"""

import re
import uuid
from datetime import datetime

from events.ingest import IngestResult, ingest_events

# Fixed: changing it would count every crash already stored a second time.
CRASH_NAMESPACE = uuid.UUID("5f0d8c2e-7c1a-4d5b-9a8e-1c0ffee0c0de")
TRACEBACK_MARK = "Traceback (most recent call last):"
# The last line of a Python traceback: "ValueError: boom", "pkg.mod.Error", "KeyError: 'x'".
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")


def crash_event_id(session_id: uuid.UUID) -> uuid.UUID:
    """The id of a session's crash error event (the same for every end the SDK re-sends)."""
    return uuid.uuid5(CRASH_NAMESPACE, str(session_id))


def crash_event(
    *, session_id: uuid.UUID, end_state: str | None, reason: str | None, ended_at: datetime
) -> dict | None:
    """The error event (AgentOps v2 event JSON) that a session end with a traceback says
    happened, or None when the end is not a crash (not Fail, or no Python traceback in the
    reason). error_type is the exception's class name from the traceback's last line ("" when
    the reason was clipped in the middle of it), details its message, logs the whole reason."""
    if end_state != "Fail" or not reason or TRACEBACK_MARK not in reason:
        return None
    error_type, message = "", ""
    tail = reason.split(TRACEBACK_MARK)[-1].rstrip().splitlines()
    # The exception line is the last unindented line (a chained exception's comes last too).
    for line in reversed(tail):
        if line and not line[0].isspace():
            match = _EXCEPTION_LINE.match(line)
            if match:
                error_type, message = match.group(1).rsplit(".", 1)[-1], match.group(2) or ""
            break
    return {
        "id": str(crash_event_id(session_id)),
        "event_type": "errors",
        "error_type": error_type or "UncaughtException",
        "code": "uncaught_exception",
        "details": message or reason.split("\n", 1)[0],
        "logs": reason,
        "init_timestamp": ended_at.isoformat(),
        "end_timestamp": ended_at.isoformat(),
    }


def record_crash(
    *,
    session_id: uuid.UUID,
    project_id: uuid.UUID,
    key_id: uuid.UUID,
    end_state: str | None,
    reason: str | None,
    ended_at: datetime | None,
) -> IngestResult | None:
    """Store the crash error event of a session that just ended (through the ordinary ingest
    path: totals, rollups); None when the end is not a crash. Idempotent (crash_event_id)."""
    if ended_at is None:
        return None
    raw = crash_event(session_id=session_id, end_state=end_state, reason=reason, ended_at=ended_at)
    if raw is None:
        return None
    return ingest_events(
        session_id=session_id, project_id=project_id, key_id=key_id, raw_events=[raw]
    )
