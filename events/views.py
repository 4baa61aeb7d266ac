"""The AgentOps v2 endpoints. Each view parses, calls one service or selector, and answers."""

import logging

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from agentops_site.errors import ApiError
from events import schemas
from events.export import money, session_stats, stream_export
from events.ingest import ingest_events
from events.parsers import OrjsonParser
from projects.auth import (
    ApiKeyAuthentication,
    HasApiKey,
    HasSessionToken,
    KeyRevoked,
    SessionTokenAuthentication,
    issue_session_jwt,
    refuse_revoked_key,
)
from sessions import serializers as inputs
from sessions.selectors import session_list_page, tag_names
from sessions.services import (
    SessionNotAvailable,
    get_session_for_key,
    register_agent,
    start_or_join_session,
    update_session,
)

logger = logging.getLogger(__name__)

ERRORS = {code: schemas.ErrorSerializer for code in (400, 401, 404, 413)}
NOT_AVAILABLE = "No session with this id is available to this API key."


def not_available() -> ApiError:
    return ApiError(NOT_AVAILABLE, status_code=404)


def session_url(request, session_id) -> str:
    return request.build_absolute_uri(f"/sessions/{session_id}")


def validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ApiKeyView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    parser_classes = [OrjsonParser]


class SessionTokenView(APIView):
    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [HasSessionToken]
    parser_classes = [OrjsonParser]


class CreateSessionView(ApiKeyView):
    @extend_schema(
        request=inputs.CreateSessionSerializer,
        responses={200: schemas.SessionStartResponse, **ERRORS},
        summary="Start a session, or join it from another process (inherited session)",
    )
    def post(self, request):
        fields = validated(inputs.CreateSessionSerializer, request.data)["session"]
        try:
            session, _ = start_or_join_session(api_key=request.auth, fields=fields)
        except SessionNotAvailable:
            raise not_available() from None
        token = issue_session_jwt(
            session_id=session.id, project_id=session.project_id, key_id=request.auth.pk
        )
        return Response(
            {
                "status": "Success",
                "jwt": token,
                "session_url": session_url(request, session.id),
                "session_id": str(session.id),
                "project_id": str(session.project_id),
            }
        )


class UpdateSessionView(SessionTokenView):
    @extend_schema(
        request=inputs.UpdateSessionSerializer,
        responses={200: schemas.SessionUpdateResponse, **ERRORS},
        summary="Update a session: tags, video, and its end state when end_timestamp is sent",
    )
    def post(self, request):
        grant = request.auth
        fields = validated(inputs.UpdateSessionSerializer, request.data)["session"]
        if fields.get("session_id") not in (None, grant.session_id):
            raise not_available()
        try:
            session = update_session(
                session_id=grant.session_id, project_id=grant.project_id, fields=fields
            )
        except SessionNotAvailable:
            raise not_available() from None
        return Response(
            {
                "status": "success",
                "token_cost": money(session.cost),
                "cost_unknown_events": session.cost_unknown_events,
                "session_url": session_url(request, session.id),
            }
        )


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


class CreateAgentView(SessionTokenView):
    @extend_schema(
        request=inputs.CreateAgentSerializer,
        responses={200: schemas.StatusResponse, **ERRORS},
        summary="Name an agent of the session",
    )
    def post(self, request):
        data = validated(inputs.CreateAgentSerializer, request.data)
        grant = request.auth
        try:
            register_agent(
                session_id=grant.session_id,
                project_id=grant.project_id,
                agent_id=data["id"],
                name=data["name"],
            )
        except SessionNotAvailable:
            raise not_available() from None
        return Response({"status": "success"})


class ReauthorizeView(ApiKeyView):
    @extend_schema(
        request=inputs.ReauthorizeSerializer,
        responses={200: schemas.JwtResponse, **ERRORS},
        summary="A fresh session token for a session of this key's project",
    )
    def post(self, request):
        data = validated(inputs.ReauthorizeSerializer, request.data)
        try:
            session = get_session_for_key(api_key=request.auth, session_id=data["session_id"])
        except SessionNotAvailable:
            raise not_available() from None
        token = issue_session_jwt(
            session_id=session.id, project_id=session.project_id, key_id=request.auth.pk
        )
        return Response({"status": "Success", "jwt": token})


class DeveloperErrorsView(ApiKeyView):
    @extend_schema(
        request=inputs.DeveloperErrorSerializer,
        responses={204: None, **ERRORS},
        summary="An error inside the SDK itself, for the server's log",
    )
    def post(self, request):
        data = validated(inputs.DeveloperErrorSerializer, request.data)
        logger.warning(
            "SDK error from project %s (sdk %s, session %s): %s: %s",
            request.auth.project_id,
            data.get("sdk_version"),
            data.get("session_id"),
            data.get("type"),
            (data.get("message") or "")[:500],
        )
        return Response(status=204)


class SessionStatsView(ApiKeyView):
    @extend_schema(responses={200: schemas.SessionStatsSerializer, **ERRORS})
    def get(self, request, session_id):
        try:
            session = get_session_for_key(api_key=request.auth, session_id=session_id)
        except SessionNotAvailable:
            raise not_available() from None
        return Response(session_stats(session))


class SessionExportView(ApiKeyView):
    @extend_schema(responses={200: schemas.ExportResponse, **ERRORS})
    def get(self, request, session_id):
        try:
            session = get_session_for_key(api_key=request.auth, session_id=session_id)
        except SessionNotAvailable:
            raise not_available() from None
        response = StreamingHttpResponse(
            stream_export(session, tag_names(session)), content_type="application/json"
        )
        response["Content-Disposition"] = f'inline; filename="session-{session.id}.json"'
        return response


class SessionListView(ApiKeyView):
    @extend_schema(
        parameters=schemas.SESSION_LIST_PARAMETERS,
        responses={200: schemas.SessionListResponse, **ERRORS},
        summary="This key's project's sessions, newest first, filtered, cursor-paginated",
    )
    def get(self, request):
        page = session_list_page(project_id=request.auth.project_id, params=request.query_params)
        return Response(page)
