"""One error shape for every API response: {"message": ..., "errors": {field path: [...]}}."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class ApiError(exceptions.APIException):
    def __init__(self, message: str, *, status_code: int, errors: dict | None = None):
        super().__init__(detail=message)
        self.status_code = status_code
        self.message = message
        self.errors = errors or {}


def error_body(message: str, errors: dict | None = None) -> dict:
    return {"message": message, "errors": errors or {}}


def json_error(status_code: int, message: str, *, field: str | None = None) -> JsonResponse:
    """The error shape as a plain Django response, for the views outside DRF (the OpenTelemetry
    endpoints); `field` names the request field at fault."""
    return JsonResponse(
        error_body(message, {field: [message]} if field else None), status=status_code
    )


def credentials_refused(exc: exceptions.APIException) -> JsonResponse:
    """A refused credential check (projects.ingest_auth, projects.throttle) as its answer: 401
    for AuthenticationFailed, 429 with Retry-After for Throttled."""
    if isinstance(exc, exceptions.Throttled):
        response = json_error(429, str(exc.detail))
        response["Retry-After"] = str(exc.wait)
        return response
    return json_error(401, str(exc.detail))


def flatten_errors(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"a.b.0.c": ["..."]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = key if not path else (path if key == "non_field_errors" else f"{path}.{key}")
            for k, v in flatten_errors(value, sub).items():
                flat.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            flat.setdefault(path or "body", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                sub = f"{path}.{index}" if path else str(index)
                for k, v in flatten_errors(item, sub).items():
                    flat.setdefault(k, []).extend(v)
    else:
        flat.setdefault(path or "body", []).append(str(detail))
    return flat


def api_exception_handler(exc, context):
    if isinstance(exc, ApiError):
        return Response(error_body(exc.message, exc.errors), status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is away (restart, failover): tell the client to come back, never a 500.
        logger.warning("database unavailable during %s: %s", context.get("view"), exc)
        response = Response(
            error_body("The database is temporarily unavailable; retry shortly."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
        return None
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("The request body is invalid.", flatten_errors(exc.detail))
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body(f"The request body is not valid JSON: {exc.detail}")
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        response.data = error_body("Send the body as JSON with Content-Type: application/json.")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = error_body(str(detail))
    return response


# Statuses any API operation may answer besides those its view declares: the parser's 415,
# the throttles' 429 and the database-away 503. Listed in the OpenAPI document so that clients
# (and the schema conformance fuzzing in tests/test_fuzz_schemathesis.py) know them.
COMMON_ERROR_RESPONSES = {
    "415": "The body's Content-Type or Content-Encoding is not supported.",
    "429": "Too many requests (failed credential checks per address, or the key's rate).",
    "503": "A backing service (the database) is temporarily unavailable.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying.",
    }
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: add COMMON_ERROR_RESPONSES to every operation."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, description in COMMON_ERROR_RESPONSES.items():
                entry = {"content": content, "description": description}
                if code in ("429", "503"):
                    entry["headers"] = RETRY_AFTER_HEADER
                responses.setdefault(code, entry)
    return result


def api_not_found(request, *args, **kwargs):
    """A JSON 404 for any /v2/ path no endpoint matches (a session id that is not a UUID, say):
    an API client must never be handed Django's HTML error page."""
    from django.http import JsonResponse

    return JsonResponse(
        error_body(f"No API endpoint at {request.path}: see /v2/docs for the endpoints."),
        status=404,
    )
