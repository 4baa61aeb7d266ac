"""POST /v3/auth/token: an agentops 0.4 SDK trades its API key for an ingest token.

The SDK asks once per process, in a background thread, and exports spans without credentials
until the answer arrives (shared/protocols/agentops-otlp.md §3): this must answer in
milliseconds (one indexed query by key hash, one conditional UPDATE). It needs
`Content-Type: application/json` and both `token` and `project_id`, or it silently keeps no
token. GET with the Bearer token answers what the token says (never the key).
"""

import orjson
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from agentops_site.errors import credentials_refused, json_error
from projects import throttle
from projects.ingest_auth import ingest_grant
from projects.keys import find_active_key, parse_raw_key
from projects.services import record_token_issue
from projects.tokens import issue_ingest_token

BAD_FORMAT = "Invalid API key format: an AgentOps API key is a UUID."
UNKNOWN_KEY = "Invalid API key: no active key of any project matches it."


@csrf_exempt
def auth_token(request):
    try:
        if request.method == "GET":
            return _describe(request)
        if request.method != "POST":
            return _error(405, 'Use POST with {"api_key": "<key>"}.')
        throttle.refuse_if_address_blocked(request)
        try:
            data = orjson.loads(request.read(64 * 1024) or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, 'The body must be JSON: {"api_key": "<your project key>"}.')
        raw = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(raw, str) or parse_raw_key(raw) is None:
            throttle.record_auth_failure(request)
            return _error(400, BAD_FORMAT, field="api_key")
        api_key = find_active_key(raw)
        if api_key is None:
            throttle.record_auth_failure(request)
            return _error(401, UNKNOWN_KEY, field="api_key")
        throttle.refuse_if_key_over_rate(api_key.pk)
    except exceptions.Throttled as exc:
        return _with_error_key(credentials_refused(exc))
    token, expires_at = issue_ingest_token(api_key)
    record_token_issue(api_key, timezone.now())
    return JsonResponse(
        {
            "token": token,
            "project_id": str(api_key.project_id),
            # Anything but "pro" makes the SDK print "You're on the agentops free plan".
            "project_prem_status": "pro",
            "expires_at": expires_at.isoformat(),
        }
    )


def _describe(request):
    try:
        grant = ingest_grant(request, check_key=True)
    except (exceptions.Throttled, exceptions.AuthenticationFailed) as exc:
        return _with_error_key(credentials_refused(exc))
    expires_at = grant.expires_at.isoformat() if grant.expires_at else None
    return JsonResponse(
        {
            "message": "The token is valid.",
            "payload": {"project_id": str(grant.project_id), "key_id": str(grant.key_id)},
            "expires_at": expires_at,
        }
    )


def _error(status: int, message: str, *, field: str | None = None) -> JsonResponse:
    return _with_error_key(json_error(status, message, field=field))


def _with_error_key(response: JsonResponse) -> JsonResponse:
    # "error" too: AgentOps' own server answers {"error": ...} and scripts may read it.
    body = orjson.loads(response.content)
    body["error"] = body["message"]
    response.content = orjson.dumps(body)
    return response
