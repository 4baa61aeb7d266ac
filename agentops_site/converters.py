"""URL converters shared by the API and the dashboard."""

import uuid

from django.urls import register_converter


class SessionIdConverter:
    """A session id as a dashed UUID or as the 32 hex digits of an OpenTelemetry trace id (what
    agentops 0.4 prints): both give the same uuid.UUID."""

    regex = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


# <sid:session_id> in api/v2/urls.py and dashboard/urls.py (registered once, at import).
register_converter(SessionIdConverter, "sid")
