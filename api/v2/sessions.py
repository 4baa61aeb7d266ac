"""The session endpoints: create (or join), update and end, reauthorize, list, stats, export."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from agentops_site.errors import ApiError
from api.base import (
    ERRORS,
    ApiKeyView,
    SessionTokenView,
    not_available,
    session_url,
    validated,
    validated_repaired,
)
from api.v2 import schemas
from api.v2 import serializers as inputs
from events.crashes import record_crash
from events.export import stream_export
from projects.auth import KeyRevoked, issue_session_jwt, refuse_revoked_key
from sessions import queries
from sessions.filters import parse_session_filters
from sessions.services import (
    SessionNotAvailable,
    get_session_for_key,
    start_or_join_session,
    update_session,
)
from sessions.totals import session_cost_fields, session_stats

DEFAULT_PAGE = 50
MAX_PAGE = 500


class CreateSessionView(ApiKeyView):
    @extend_schema(
        request=inputs.CreateSessionSerializer,
        responses={200: schemas.SessionStartResponse, **ERRORS},
        summary="Start a session, or join it from another process (inherited session)",
    )
    def post(self, request):
        data, repairs = validated_repaired(inputs.CreateSessionSerializer, request.data)
        fields = data["session"]
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
                "warnings": repairs,
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
        data, repairs = validated_repaired(inputs.UpdateSessionSerializer, request.data)
        fields = data["session"]
        if fields.get("session_id") not in (None, grant.session_id):
            raise not_available()
        try:
            session = update_session(
                session_id=grant.session_id, project_id=grant.project_id, fields=fields
            )
            if fields.get("end_timestamp") is not None:
                record_crash(
                    session_id=session.id,
                    project_id=session.project_id,
                    key_id=grant.key_id,
                    end_state=session.end_state,
                    reason=session.end_state_reason,
                    ended_at=session.end_timestamp,
                )
                session.refresh_from_db()
        except KeyRevoked:
            refuse_revoked_key(request)
        except SessionNotAvailable:
            raise not_available() from None
        cost = session_cost_fields(session)
        return Response(
            {
                "status": "success",
                # null when every priced call is of unknown cost: never "0" (see sessions.totals)
                "token_cost": cost["cost"],
                "cost_unknown_events": cost["cost_unknown_events"],
                "session_url": session_url(request, session.id),
                "warnings": repairs,
            }
        )


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
            stream_export(session, queries.tag_names(session)), content_type="application/json"
        )
        response["Content-Disposition"] = f'inline; filename="session-{session.id}.json"'
        return response


class SessionListView(ApiKeyView):
    @extend_schema(
        parameters=schemas.SESSION_LIST_PARAMETERS,
        responses={200: schemas.SessionListResponse, **ERRORS},
        summary="This key's project's sessions, filtered, searched, sorted, cursor-paginated",
    )
    def get(self, request):
        filters, sort, limit, cursor = parse_list_params(request.query_params)
        page = queries.session_page(
            project=request.auth.project_id,
            filters=filters,
            sort=sort,
            after=cursor,
            limit=limit,
            count=False,
        )
        return Response(
            {
                "sessions": [
                    {
                        **session_stats(s),
                        "end_state_reason": s.end_state_reason or None,
                        "tags": sorted(t.name for t in s.tags.all()),
                    }
                    for s in page.sessions
                ],
                "next_cursor": page.next_cursor,
            }
        )


def parse_list_params(params) -> tuple[queries.SessionFilters, str, int, str | None]:
    """(filters, sort, page size, cursor) from GET /v2/sessions' query string; a 400 naming
    every invalid parameter otherwise (the filters' rules: sessions.filters)."""
    parsed = parse_session_filters(params)
    errors = parsed.errors
    limit = DEFAULT_PAGE
    if params.get("limit"):
        if not params["limit"].isdigit() or not 1 <= int(params["limit"]) <= MAX_PAGE:
            errors.add("limit", f"Use a whole number from 1 to {MAX_PAGE}.")
        else:
            limit = int(params["limit"])
    cursor = params.get("cursor") or None
    if cursor is not None and queries.decode_cursor(cursor, queries.SORTS[parsed.sort]) is None:
        errors.add("cursor", "Invalid cursor.")
    if errors:
        if list(errors) == ["cursor"]:
            message = (
                "The cursor is not one this API gave out: pass next_cursor from the previous page."
            )
        else:
            message = "Some filters are invalid."
        raise ApiError(message, status_code=400, errors=errors)
    return parsed.filters, parsed.sort, limit, cursor
