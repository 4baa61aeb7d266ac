"""Input shapes of the session endpoints. The official SDK posts its whole Session object
(config, jwt, locks ...), so unknown fields are ignored rather than refused."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.validation import FieldErrors, parse_timestamp
from sessions.models import MAX_HOST_ENV_KEYS, MAX_REASON, MAX_TAG_LENGTH, MAX_TAGS, EndState

END_STATE_ALIASES = {"failure": EndState.FAIL, "failed": EndState.FAIL}


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": 200}})
class TagListField(serializers.Field):
    """A list of tag names; a single string is one tag (the SDK accepts that too)."""

    default_error_messages = {
        "invalid": "Must be a list of strings.",
        "too_many": f"At most {MAX_TAGS} tags per session.",
        "too_long": f"Each tag is at most {MAX_TAG_LENGTH} characters.",
    }

    def to_internal_value(self, data):
        if data is None:
            return []
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(t, (str, int, float)) for t in data):
            self.fail("invalid")
        names: list[str] = []
        seen: set[str] = set()  # a set, and stop at the limit: 100k tags were O(n^2), ~50 s
        for item in data:
            name = str(item).replace("\x00", "").strip()
            if len(name) > MAX_TAG_LENGTH:
                self.fail("too_long")
            if name and name not in seen:
                seen.add(name)
                names.append(name)
                if len(names) > MAX_TAGS:
                    self.fail("too_many")
        return names

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.Field):
    """ISO 8601, aware UTC, within the years the events accept too."""

    def to_internal_value(self, data):
        errors = FieldErrors()
        parsed = parse_timestamp(data, "value", errors)
        if parsed is None:
            raise serializers.ValidationError(errors["value"])
        return parsed

    def to_representation(self, value):
        return value.isoformat()


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


class HostEnvField(serializers.JSONField):
    def to_internal_value(self, data):
        if data in (None, ""):
            return None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(data) > MAX_HOST_ENV_KEYS:
            raise serializers.ValidationError(f"At most {MAX_HOST_ENV_KEYS} keys.")
        return super().to_internal_value(data)


class SessionFieldsSerializer(serializers.Serializer):
    session_id = serializers.UUIDField(required=False)
    init_timestamp = TimestampField(required=False, allow_null=True)
    end_timestamp = TimestampField(required=False, allow_null=True)
    end_state = EndStateField(required=False, allow_null=True, allow_blank=True)
    end_state_reason = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=MAX_REASON,
        trim_whitespace=False,
    )
    tags = TagListField(required=False)
    host_env = HostEnvField(required=False, allow_null=True)
    video = serializers.URLField(required=False, allow_null=True, allow_blank=True, max_length=2000)

    def validate_end_state(self, value):
        return value or None


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
    name = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")


class ReauthorizeSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()


class DeveloperErrorSerializer(serializers.Serializer):
    sdk_version = serializers.CharField(
        max_length=50, required=False, allow_null=True, allow_blank=True
    )
    type = serializers.CharField(max_length=200, required=False, allow_blank=True)
    message = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    stack_trace = serializers.CharField(max_length=100_000, required=False, allow_blank=True)
    host_env = HostEnvField(required=False, allow_null=True)
    session_id = serializers.UUIDField(required=False, allow_null=True)
