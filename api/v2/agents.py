"""POST /v2/create_agent: name an agent of the session."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api.base import ERRORS, SessionTokenView, not_available, validated_repaired
from api.v2 import schemas
from api.v2.serializers import CreateAgentSerializer
from sessions.services import SessionNotAvailable, register_agent


class CreateAgentView(SessionTokenView):
    @extend_schema(
        request=CreateAgentSerializer,
        responses={200: schemas.AgentResponse, **ERRORS},
        summary="Name an agent of the session",
    )
    def post(self, request):
        data, repairs = validated_repaired(CreateAgentSerializer, request.data)
        grant = request.auth
        try:
            register_agent(
                session_id=grant.session_id,
                project_id=grant.project_id,
                agent_id=data["id"],
                name=data["name"] or "",
            )
        except SessionNotAvailable:
            raise not_available() from None
        return Response({"status": "success", "warnings": repairs})
