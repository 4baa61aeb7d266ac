"""POST /v2/create_events: a batch of a session's events."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from agentops_site.errors import ApiError
from api.base import ERRORS, SessionTokenView, not_available
from api.v2 import schemas
from events.ingest import ingest_events
from projects.auth import KeyRevoked, SessionTokenAuthentication, refuse_revoked_key
from sessions.services import SessionNotAvailable


class CreateEventsView(SessionTokenView):
    def get_authenticators(self):
        # The token's signature and claims only: ingest_events checks its key in the write.
        return [SessionTokenAuthentication(checks_key=False)]

    @extend_schema(
        request=schemas.EventsBatchSerializer,
        responses={200: schemas.IngestResponse, **ERRORS},
        summary="Record a batch of events; each is accepted, a duplicate, or rejected with reasons",
    )
    def post(self, request):
        events = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(events, list):
            raise ApiError(
                'The body must be {"events": [...]}: a JSON object with a list of events.',
                status_code=400,
                errors={"events": ["Required: a list of events."]},
            )
        limit = settings.INGEST_MAX_EVENTS_PER_BATCH
        if len(events) > limit:
            raise ApiError(
                f"{len(events)} events in one request; send at most {limit} per request.",
                status_code=413,
            )
        grant = request.auth
        try:
            result = ingest_events(
                session_id=grant.session_id,
                project_id=grant.project_id,
                key_id=grant.key_id,
                raw_events=events,
            )
        except KeyRevoked:
            refuse_revoked_key(request)
        except SessionNotAvailable:
            raise not_available() from None
        return Response(result.as_response())
