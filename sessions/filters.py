"""The session list's filters read from a query string: the one home of their validation, shared
by GET /v2/sessions (which answers 400 naming each invalid parameter) and the dashboard's list
and its downloads (which show the same messages above the list and apply the valid filters).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.utils.datastructures import MultiValueDict

from events.validation import FieldErrors, parse_timestamp
from sessions.queries import DEFAULT_SORT, END_STATE_FILTERS, SORTS, SessionFilters

MAX_TAGS = 20
MAX_TEXT = 200
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
# Postgres text cannot hold NUL, and no stored text has one (ingest replaces it with U+FFFD,
# events/validation.py): a filter with one could match nothing, so it is refused, alone.
NUL = "\x00"
NUL_MESSAGE = "Cannot contain a NUL character."


@dataclass(frozen=True)
class ParsedFilters:
    filters: SessionFilters  # the valid ones; an invalid parameter is left out
    sort: str  # a key of sessions.queries.SORTS
    errors: FieldErrors  # {parameter: [message]}, empty when all are valid


def parse_session_filters(params: MultiValueDict) -> ParsedFilters:
    """Read tag (repeated, at most MAX_TAGS of MAX_TEXT characters), tag_mode (all | any),
    end_state (Success | Fail | Indeterminate | running), since and until (ISO 8601 date-times in
    UTC when they carry no offset; a bare date YYYY-MM-DD in `until` includes that whole day),
    has_errors (true/false, 1/0, yes/no), model, q (text search, at most MAX_TEXT characters)
    and sort (a key of SORTS). Empty values mean "no filter"; text with a NUL character is
    invalid. Never raises: each invalid parameter is named in `errors` and left out of
    `filters`."""
    errors = FieldErrors()

    tags = [t.strip() for t in params.getlist("tag") if t and t.strip()]
    if any(NUL in t for t in tags):
        errors.add("tag", NUL_MESSAGE)
        tags = [t for t in tags if NUL not in t]
    if len(tags) > MAX_TAGS:
        errors.add("tag", f"At most {MAX_TAGS} tags.")
        tags = tags[:MAX_TAGS]
    if any(len(t) > MAX_TEXT for t in tags):
        errors.add("tag", f"A tag is at most {MAX_TEXT} characters.")
        tags = [t for t in tags if len(t) <= MAX_TEXT]

    tag_mode = params.get("tag_mode") or "all"
    if tag_mode not in ("all", "any"):
        errors.add("tag_mode", "Use all or any.")
        tag_mode = "all"

    end_state = params.get("end_state") or None
    if end_state is not None and end_state not in END_STATE_FILTERS:
        errors.add("end_state", f"Use one of {', '.join(END_STATE_FILTERS)}.")
        end_state = None

    since = _time_param(params, "since", errors)
    until = _time_param(params, "until", errors, inclusive_day=True)
    if since and until and since >= until:
        errors.add("until", "Must be after since.")
        until = None

    has_errors = None
    raw = (params.get("has_errors") or "").strip().lower()
    if raw in TRUE_WORDS:
        has_errors = True
    elif raw in FALSE_WORDS:
        has_errors = False
    elif raw:
        errors.add("has_errors", "Use true or false.")

    model = _text_param(params, "model", errors)
    text = _text_param(params, "q", errors)

    sort = params.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        errors.add("sort", f"Use one of {', '.join(SORTS)}.")
        sort = DEFAULT_SORT

    filters = SessionFilters(
        tags=tuple(dict.fromkeys(tags)),
        tag_mode=tag_mode,
        end_state=end_state,
        since=since,
        until=until,
        has_errors=has_errors,
        model=model,
        text=text,
    )
    return ParsedFilters(filters=filters, sort=sort, errors=errors)


def _time_param(params, name: str, errors: FieldErrors, *, inclusive_day: bool = False):
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) == 10:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
        if day is not None:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if inclusive_day else start
    return parse_timestamp(raw, name, errors)


def _text_param(params, name: str, errors: FieldErrors) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > MAX_TEXT:
        errors.add(name, f"At most {MAX_TEXT} characters.")
        return None
    if NUL in value:
        errors.add(name, NUL_MESSAGE)
        return None
    return value or None


def error_messages(errors: FieldErrors) -> list[str]:
    """Each invalid parameter as one sentence for a page ("end_state: Use one of ...")."""
    return [f"{name}: {' '.join(messages)}" for name, messages in errors.items()]
