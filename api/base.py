"""What every endpoint shares: the two credentials (a project API key, a session token), the
"not available" answer, input validation, and the session link handed to SDKs."""

import orjson
from rest_framework.views import APIView

from agentops_site.errors import ApiError
from api.parsers import OrjsonParser
from api.v2 import schemas
from events.repairs import Repairs, clean, may_need_walk
from projects.auth import (
    ApiKeyAuthentication,
    HasApiKey,
    HasSessionToken,
    SessionTokenAuthentication,
)

ERRORS = {code: schemas.ErrorSerializer for code in (400, 401, 404, 413)}
NOT_AVAILABLE = "No session with this id is available to this API key."


class ApiKeyView(APIView):
    """An endpoint authenticated by the project's API key (X-Agentops-Api-Key); request.auth is
    the ApiKey."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    parser_classes = [OrjsonParser]


class SessionTokenView(APIView):
    """An endpoint authenticated by a session JWT (Bearer); request.auth is its grant."""

    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [HasSessionToken]
    parser_classes = [OrjsonParser]


def not_available() -> ApiError:
    """404 for a session that does not exist or is another project's: the same answer for
    both, so an id's existence never leaks across projects."""
    return ApiError(NOT_AVAILABLE, status_code=404)


def session_url(request, session_id) -> str:
    """The dashboard link of a session, on the host the client reached us at."""
    return request.build_absolute_uri(f"/sessions/{session_id}")


def validated(serializer_class, data) -> dict:
    """The serializer's validated data; a 400 with field errors otherwise."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_repaired(serializer_class, data) -> tuple[dict, Repairs]:
    """(validated data, what was repaired): the body's NULs and non-finite numbers first (only
    walked when its JSON text says it may hold one), then the serializer's own repairs, each
    under its field path. A 400 with field errors for what cannot be repaired."""
    repairs = Repairs()
    try:
        dumped = orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError):
        dumped = b"\\u0000"  # cannot tell cheaply: walk
    if may_need_walk(dumped):
        data = clean(data, "", repairs)
    serializer = serializer_class(data=data, context={"repairs": repairs})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data, repairs
