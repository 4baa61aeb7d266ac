"""Reads of sessions for the API: tags of one session, the filtered, cursor-paginated list."""

import base64
import binascii
import uuid
from datetime import datetime

from django.db.models import Q

from agentops_site.errors import ApiError
from events.export import session_stats
from events.validation import FieldErrors, parse_timestamp
from sessions.models import EndState, Session, SessionTag
from sessions.queries import SessionFilters, filter_sessions

DEFAULT_PAGE = 50
MAX_PAGE = 500
END_STATE_FILTERS = (*EndState.values, "running")


def tag_names(session: Session) -> list[str]:
    return list(
        SessionTag.objects.filter(session=session)
        .order_by("tag__name")
        .values_list("tag__name", flat=True)
    )


def encode_cursor(session: Session) -> str:
    raw = f"{session.init_timestamp.isoformat()}|{session.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, _, sid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), uuid.UUID(sid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            "The cursor is not one this API gave out: pass next_cursor from the previous page.",
            status_code=400,
            errors={"cursor": ["Invalid cursor."]},
        ) from None


def parse_list_params(params) -> tuple[SessionFilters, int, str | None]:
    errors = FieldErrors()
    since = until = None
    if params.get("since"):
        since = parse_timestamp(params["since"], "since", errors)
    if params.get("until"):
        until = parse_timestamp(params["until"], "until", errors)
    end_state = params.get("end_state") or None
    if end_state is not None and end_state not in END_STATE_FILTERS:
        errors.add("end_state", f"Use one of {', '.join(END_STATE_FILTERS)}.")
    has_errors = None
    if params.get("has_errors") not in (None, ""):
        value = params["has_errors"].lower()
        if value not in ("true", "false", "1", "0"):
            errors.add("has_errors", "Use true or false.")
        has_errors = value in ("true", "1")
    limit = DEFAULT_PAGE
    if params.get("limit"):
        if not params["limit"].isdigit() or not 1 <= int(params["limit"]) <= MAX_PAGE:
            errors.add("limit", f"Use a whole number from 1 to {MAX_PAGE}.")
        else:
            limit = int(params["limit"])
    if errors:
        raise ApiError("Some filters are invalid.", status_code=400, errors=errors)
    tags = tuple(t for t in params.getlist("tag") if t)
    filters = SessionFilters(
        tags=tags,
        tag_mode="all",
        end_state=end_state,
        since=since,
        until=until,
        has_errors=has_errors,
    )
    return filters, limit, params.get("cursor") or None


def session_list_page(*, project_id, params) -> dict:
    """One page of sessions, newest first, with the cursor of the next page (None at the end)."""
    filters, limit, cursor = parse_list_params(params)
    sessions = filter_sessions(project=project_id, filters=filters)
    if cursor:
        stamp, sid = decode_cursor(cursor)
        sessions = sessions.filter(
            Q(init_timestamp__lt=stamp) | Q(init_timestamp=stamp, id__lt=sid)
        )
    page = list(sessions.order_by("-init_timestamp", "-id").prefetch_related("tags")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "sessions": [
            {
                **session_stats(s),
                "end_state_reason": s.end_state_reason or None,
                "tags": sorted(t.name for t in s.tags.all()),
            }
            for s in page
        ],
        "next_cursor": encode_cursor(page[-1]) if more and page else None,
    }
