"""Shapes for the OpenAPI document. Event validation itself is events/validation.py (hot path)."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from events.models import EventType


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="One sentence a person can act on.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field path -> messages.",
    )


class EventInputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Chosen by the SDK; resending the same id is a no-op.")
    event_type = serializers.ChoiceField(choices=EventType.values)
    init_timestamp = serializers.DateTimeField()
    end_timestamp = serializers.DateTimeField(required=False, allow_null=True)
    agent_id = serializers.UUIDField(required=False, allow_null=True)
    params = serializers.JSONField(required=False)
    returns = serializers.JSONField(required=False)
    action_type = serializers.CharField(required=False, help_text="actions")
    name = serializers.CharField(required=False, help_text="tools")
    model = serializers.CharField(required=False, help_text="llms")
    prompt = serializers.JSONField(required=False, help_text="llms: chatml messages or a string")
    completion = serializers.JSONField(required=False, help_text="llms")
    prompt_tokens = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="llms: every input token, cache reads and writes included (OpenAI's convention)",
    )
    completion_tokens = serializers.IntegerField(
        required=False, min_value=0, help_text="llms: every output token, reasoning included"
    )
    cache_read_tokens = serializers.IntegerField(
        required=False, min_value=0, help_text="llms: of prompt_tokens, read from the cache"
    )
    cache_write_tokens = serializers.IntegerField(
        required=False, min_value=0, help_text="llms: of prompt_tokens, written to the cache"
    )
    reasoning_tokens = serializers.IntegerField(
        required=False, min_value=0, help_text="llms: of completion_tokens, reasoning"
    )
    cost = serializers.DecimalField(max_digits=20, decimal_places=10, required=False)
    error_type = serializers.CharField(required=False, help_text="errors")
    code = serializers.CharField(required=False, help_text="errors")
    details = serializers.JSONField(required=False, help_text="errors")
    logs = serializers.JSONField(required=False)
    trigger_event_id = serializers.UUIDField(required=False, allow_null=True)


class EventsBatchSerializer(serializers.Serializer):
    events = EventInputSerializer(many=True)


class RejectedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


WARNINGS_HELP = "Field path -> what was repaired (cut, replaced, nulled, coerced, left out)."


def warnings_field():
    return serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text=WARNINGS_HELP
    )


class RepairedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    repairs = warnings_field()


IngestResponse = inline_serializer(
    "IngestResponse",
    {
        "status": serializers.CharField(),
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": RejectedEventSerializer(many=True),
        "warnings": RepairedEventSerializer(
            many=True, help_text="Events stored after a repair; each also keeps it as `repaired`"
        ),
    },
)

SessionStartResponse = inline_serializer(
    "SessionStartResponse",
    {
        "status": serializers.CharField(),
        "jwt": serializers.CharField(),
        "session_url": serializers.URLField(),
        "session_id": serializers.UUIDField(),
        "project_id": serializers.UUIDField(),
        "warnings": warnings_field(),
    },
)

SessionUpdateResponse = inline_serializer(
    "SessionUpdateResponse",
    {
        "status": serializers.CharField(),
        "token_cost": serializers.CharField(
            allow_null=True,
            help_text="USD as a decimal string; null when every LLM call is of unknown cost",
        ),
        "cost_unknown_events": serializers.IntegerField(),
        "session_url": serializers.URLField(),
        "warnings": warnings_field(),
    },
)

JwtResponse = inline_serializer(
    "JwtResponse", {"status": serializers.CharField(), "jwt": serializers.CharField()}
)
StatusResponse = inline_serializer("StatusResponse", {"status": serializers.CharField()})
AgentResponse = inline_serializer(
    "AgentResponse", {"status": serializers.CharField(), "warnings": warnings_field()}
)


class SessionStatsSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    init_timestamp = serializers.DateTimeField()
    end_timestamp = serializers.DateTimeField(allow_null=True)
    end_state = serializers.CharField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    events = serializers.IntegerField()
    llms = serializers.IntegerField()
    tools = serializers.IntegerField()
    actions = serializers.IntegerField()
    errors = serializers.IntegerField()
    apis = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.CharField(
        allow_null=True,
        help_text="USD as a decimal string, events of known cost only; null when every LLM call "
        "is of unknown cost (see cost_unknown_events), never 0",
    )
    cost_unknown_events = serializers.IntegerField()


class SessionSummarySerializer(SessionStatsSerializer):
    end_state_reason = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())


SessionListResponse = inline_serializer(
    "SessionListResponse",
    {
        "sessions": SessionSummarySerializer(many=True),
        "next_cursor": serializers.CharField(allow_null=True),
    },
)

ExportResponse = inline_serializer(
    "SessionExport",
    {
        "session": serializers.DictField(),
        "stats": SessionStatsSerializer(),
        "actions": serializers.ListField(child=serializers.DictField()),
        "llms": serializers.ListField(child=serializers.DictField()),
        "tools": serializers.ListField(child=serializers.DictField()),
        "errors": serializers.ListField(child=serializers.DictField()),
        "apis": serializers.ListField(child=serializers.DictField()),
    },
)

SESSION_LIST_PARAMETERS = [
    OpenApiParameter(
        "tag", str, many=True, description="Sessions having every one (tag_mode=any: one) of these"
    ),
    OpenApiParameter("tag_mode", str, enum=["all", "any"]),
    OpenApiParameter("end_state", str, enum=["Success", "Fail", "Indeterminate", "running"]),
    OpenApiParameter("since", str, description="Started at or after (ISO 8601)"),
    OpenApiParameter(
        "until", str, description="Started before (ISO 8601); a bare date includes that day"
    ),
    OpenApiParameter("has_errors", bool),
    OpenApiParameter("model", str, description="Sessions with an LLM call of this model"),
    OpenApiParameter(
        "q",
        str,
        description="Text search: a session id, a phrase of the end-state reason, or (3+ "
        "characters) of the events' prompts, completions, tool names, error messages, models",
    ),
    OpenApiParameter(
        "sort",
        str,
        enum=["newest", "oldest", "cost", "tokens", "errors", "events", "duration", "shortest"],
    ),
    OpenApiParameter("limit", int, description="1-500, default 50"),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
]
