"""POST /v2/developer_errors: an error inside the SDK itself, for the server's log."""

import logging

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api.base import ERRORS, ApiKeyView, validated_repaired
from api.v2.serializers import DeveloperErrorSerializer

logger = logging.getLogger(__name__)


class DeveloperErrorsView(ApiKeyView):
    @extend_schema(
        request=DeveloperErrorSerializer,
        responses={204: None, **ERRORS},
        summary="An error inside the SDK itself, for the server's log",
    )
    def post(self, request):
        data, _ = validated_repaired(
            DeveloperErrorSerializer, request.data
        )  # 204: no body to warn in
        logger.warning(
            "SDK error from project %s (sdk %s, session %s): %s: %s",
            request.auth.project_id,
            data.get("sdk_version"),
            data.get("session_id"),
            data.get("type"),
            (data.get("message") or "")[:500],
        )
        return Response(status=204)
