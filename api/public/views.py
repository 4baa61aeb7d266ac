"""AgentOps' public API, `/public/v1/...`, for tools written against it (shapes:
shared/protocols/agentops-otlp.md §6). Bearer = an ingest token from `auth/access_token` (or
`/v3/auth/token`), or the project's API key. Unlike AgentOps (400), bad credentials are a 401,
as everywhere else in this API. Costs are strings with 7 decimals; unknown is null, never 0.
"""

import re
import uuid

import orjson
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from agentops_site.errors import credentials_refused, json_error
from projects import throttle
from projects.ingest_auth import ingest_grant
from projects.keys import find_active_key, parse_raw_key
from projects.models import Project
from projects.services import record_token_issue
from projects.tokens import issue_ingest_token
from sessions.models import Session
from sessions.traces import (
    find_span,
    nested,
    span_metrics,
    span_summary,
    trace_metrics,
    trace_spans,
)

_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
NOT_FOUND = "Not found among this project's traces."


def _with_grant(view):
    def wrapped(request, *args, **kwargs):
        if request.method != "GET":
            return json_error(405, "Use GET.")
        try:
            grant = ingest_grant(request, check_key=True)
        except (exceptions.Throttled, exceptions.AuthenticationFailed) as exc:
            return credentials_refused(exc)
        return view(request, grant, *args, **kwargs)

    return wrapped


@csrf_exempt
def access_token(request):
    """POST {"api_key"} -> {"bearer": "<token>"}: 400 malformed key, 401 unknown."""
    if request.method != "POST":
        return json_error(405, 'Use POST with {"api_key": "<key>"}.')
    try:
        throttle.refuse_if_address_blocked(request)
        try:
            data = orjson.loads(request.read(64 * 1024) or b"{}")
        except orjson.JSONDecodeError:
            data = None
        raw = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(raw, str) or parse_raw_key(raw) is None:
            throttle.record_auth_failure(request)
            return json_error(400, "Invalid API key format: an API key is a UUID.")
        api_key = find_active_key(raw)
        if api_key is None:
            throttle.record_auth_failure(request)
            return json_error(401, "Invalid API key.")
        throttle.refuse_if_key_over_rate(api_key.pk)
    except exceptions.Throttled as exc:
        return credentials_refused(exc)
    token, _ = issue_ingest_token(api_key)
    record_token_issue(api_key, timezone.now())
    return JsonResponse({"bearer": token})


@_with_grant
def project(request, grant):
    found = Project.objects.filter(pk=grant.project_id).first()
    if found is None:
        return json_error(404, NOT_FOUND)
    return JsonResponse({"id": str(found.pk), "name": found.name, "environment": "production"})


def _session(grant, trace_id: str) -> Session | None:
    try:
        session_id = uuid.UUID(trace_id)
    except ValueError:
        return None
    return (
        Session.objects.filter(id=session_id, project_id=grant.project_id)
        .prefetch_related("tags")
        .first()
    )


@_with_grant
def trace(request, grant, trace_id):
    session = _session(grant, trace_id)
    if session is None:
        return json_error(404, NOT_FOUND)
    return JsonResponse(
        {
            "trace_id": session.id.hex,
            "project_id": str(session.project_id),
            "tags": sorted(t.name for t in session.tags.all()),
            "spans": [span_summary(s) for s in trace_spans(session)],
        }
    )


@_with_grant
def trace_metrics_view(request, grant, trace_id):
    session = _session(grant, trace_id)
    if session is None:
        return json_error(404, NOT_FOUND)
    return JsonResponse(trace_metrics(session, trace_spans(session)))


def _span(grant, span_id):
    if not _SPAN_ID.fullmatch(span_id):
        return None
    return find_span(project_id=grant.project_id, span_id=span_id)


@_with_grant
def span(request, grant, span_id):
    found = _span(grant, span_id)
    if found is None:
        return json_error(404, NOT_FOUND)
    session, view = found
    attributes = view.otel.get("attributes") or {}
    resource = view.otel.get("resource") or {}
    return JsonResponse(
        {
            **span_summary(view),
            "trace_id": session.id.hex,
            "attributes": nested(attributes),
            "resource_attributes": nested(resource),
            "span_attributes": attributes,
        }
    )


@_with_grant
def span_metrics_view(request, grant, span_id):
    found = _span(grant, span_id)
    if found is None:
        return json_error(404, NOT_FOUND)
    return JsonResponse(span_metrics(found[1]))
