"""Input shapes of the session endpoints. The official SDK posts its whole Session object
(config, jwt, locks ...), so unknown fields are ignored rather than refused.

Keep, repair, say (events/repairs.py): a bounded field over its bound is cut or trimmed, an
unusable one (a video that is not a URL, a host_env that is not an object) is left out, and a
timestamp that cannot be read is replaced by the server's time; each repair is added to the
serializer's context["repairs"] under its field path ("session.tags"), which the endpoint answers
as `warnings`. Only what leaves nothing to store is refused: a session id that is not a UUID, an
end state outside the enum (its meaning cannot be guessed).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.repairs import REPLACEMENT, Repairs, cut
from events.validation import FieldErrors, parse_timestamp
from sessions.models import (
    MAX_HOST_ENV_KEYS,
    MAX_REASON,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    EndState,
    Session,
)

MAX_VIDEO_LENGTH = Session._meta.get_field("video").max_length
END_STATE_ALIASES = {"failure": EndState.FAIL, "failed": EndState.FAIL}


def field_path(field) -> str:
    """'session.tags' for the tags field of the nested session serializer."""
    names = []
    while field is not None and field.field_name:
        names.append(field.field_name)
        field = field.parent
    return ".".join(reversed(names))


def repairs_of(field) -> Repairs:
    """Where a field says what it repaired; a throwaway when the caller did not ask."""
    return field.context.get("repairs", Repairs()) if field.root is not None else Repairs()


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": 200}})
class TagListField(serializers.Field):
    """A list of tag names; a single string is one tag (the SDK accepts that too).

    Kept: the first MAX_TAGS distinct names, each cut to MAX_TAG_LENGTH characters with "…" and
    NUL replaced by U+FFFD; numbers become their text. Left out, and said: items that are not
    text or numbers, names past the hundredth, and a value that is not a list at all. Linear in
    the list's length: 100,000 tags (a 1 MB body) once held a worker ~50 s with a list search."""

    def to_internal_value(self, data):
        path, repairs = field_path(self), repairs_of(self)
        if data is None:
            return []
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list):
            repairs.add(path, f"Must be a list of strings, was {type(data).__name__}: left out.")
            return None
        names: list[str] = []
        seen: set[str] = set()
        dropped = not_text = nul = 0
        for index, item in enumerate(data):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                not_text += 1
                continue
            name = str(item)
            if "\x00" in name:
                nul += 1
                name = name.replace("\x00", REPLACEMENT)
            name = cut(name.strip(), MAX_TAG_LENGTH, f"{path}[{index}]", repairs)
            if not name or name in seen:
                continue
            if len(names) >= MAX_TAGS:
                dropped += 1
                continue
            seen.add(name)
            names.append(name)
        if not_text:
            repairs.add(path, f"{not_text} items that are not text left out.")
        if nul:
            repairs.add(path, f"NUL characters replaced by U+FFFD in {nul} tags.")
        if dropped:
            repairs.add(path, f"At most {MAX_TAGS} tags per session: {dropped} more left out.")
        return names

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.Field):
    """ISO 8601, aware UTC, within the years the events accept too. One that cannot be read is
    replaced by the server's time (the request is happening now), and said."""

    def to_internal_value(self, data):
        errors = FieldErrors()
        parsed = parse_timestamp(data, "value", errors)
        if parsed is None:
            now = timezone.now()
            repairs_of(self).add(
                field_path(self),
                f"{errors['value'][0]} Taken as the server's time, {now.isoformat()}.",
            )
            return now
        return parsed

    def to_representation(self, value):
        return value.isoformat()


@extend_schema_field({"type": "string", "nullable": True, "description": "Longer text is cut."})
class TextField(serializers.Field):
    """Free text: NUL replaced by U+FFFD, cut to `max_length` characters with "…", numbers as
    their text; anything else left out. Never refuses."""

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        path, repairs = field_path(self), repairs_of(self)
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            repairs.add(path, f"Must be text, was {type(data).__name__}: left out.")
            return None
        text = str(data)
        if "\x00" in text:
            repairs.add(path, "NUL characters replaced by U+FFFD.")
            text = text.replace("\x00", REPLACEMENT)
        return cut(text, self.max_length, path, repairs)

    def to_representation(self, value):
        return value


class EndStateField(serializers.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value in EndState.values:
            return value
        alias = END_STATE_ALIASES.get(value.lower())
        if alias:
            return alias.value
        raise serializers.ValidationError(
            f"{value!r} is not an end state: use one of {', '.join(EndState.values)}."
        )


@extend_schema_field({"type": "string", "format": "uri", "nullable": True})
class VideoField(serializers.Field):
    """An http(s) URL of the run's recording; one that is not (or is over MAX_VIDEO_LENGTH) is
    left out, and said: a URL cut short would point elsewhere."""

    _valid = URLValidator(schemes=["http", "https"])

    def to_internal_value(self, data):
        if data in (None, ""):
            return ""
        path, repairs = field_path(self), repairs_of(self)
        if not isinstance(data, str) or len(data) > MAX_VIDEO_LENGTH:
            repairs.add(
                path, f"Must be an http(s) URL of at most {MAX_VIDEO_LENGTH} characters: left out."
            )
            return ""
        try:
            self._valid(data)
        except DjangoValidationError:
            repairs.add(path, "Is not an http(s) URL: left out.")
            return ""
        return data

    def to_representation(self, value):
        return value


class HostEnvField(serializers.JSONField):
    """A JSON object; past MAX_HOST_ENV_KEYS keys the rest are left out; not an object: left out.
    Its NULs and non-finite numbers were already repaired with the whole body (api.base)."""

    def to_internal_value(self, data):
        if data in (None, ""):
            return None
        path, repairs = field_path(self), repairs_of(self)
        if not isinstance(data, dict):
            repairs.add(path, f"Must be a JSON object, was {type(data).__name__}: left out.")
            return None
        if len(data) > MAX_HOST_ENV_KEYS:
            repairs.add(
                path,
                f"At most {MAX_HOST_ENV_KEYS} keys: {len(data) - MAX_HOST_ENV_KEYS} more left out.",
            )
            data = dict(list(data.items())[:MAX_HOST_ENV_KEYS])
        return super().to_internal_value(data)


class SessionFieldsSerializer(serializers.Serializer):
    session_id = serializers.UUIDField(required=False)
    init_timestamp = TimestampField(required=False, allow_null=True)
    end_timestamp = TimestampField(required=False, allow_null=True)
    end_state = EndStateField(required=False, allow_null=True, allow_blank=True)
    end_state_reason = TextField(max_length=MAX_REASON)
    tags = TagListField(required=False)
    host_env = HostEnvField(required=False, allow_null=True)
    video = VideoField(required=False, allow_null=True)

    def validate_end_state(self, value):
        return value or None

    def validate(self, attrs):
        # A field that was left out is not "sent as empty": tags=None must not clear the tags.
        return {k: v for k, v in attrs.items() if not (k == "tags" and v is None)}


class CreateSessionSerializer(serializers.Serializer):
    session = SessionFieldsSerializer()

    def validate_session(self, value):
        if "session_id" not in value:
            raise serializers.ValidationError(
                {"session_id": ["Required: a UUID chosen by the SDK for this run."]}
            )
        return value


class UpdateSessionSerializer(serializers.Serializer):
    session = SessionFieldsSerializer()


class CreateAgentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = TextField(max_length=200, default="")


class ReauthorizeSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()


class DeveloperErrorSerializer(serializers.Serializer):
    sdk_version = TextField(max_length=50)
    type = TextField(max_length=200)
    message = TextField(max_length=10_000)
    stack_trace = TextField(max_length=100_000)
    host_env = HostEnvField(required=False, allow_null=True)
    session_id = serializers.UUIDField(required=False, allow_null=True)
