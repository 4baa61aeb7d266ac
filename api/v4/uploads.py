"""POST /v4/logs/upload/ and /v4/objects/upload/ (agentops 0.4), GET /v4/objects/{id}.

The SDK treats anything but exactly 200 with a JSON body as a failure and prints it in red on
the user's console (201 included), so success is always 200 `{"url", "size"}`
(shared/protocols/agentops-otlp.md §5). Body: JSON `{"body": "<text>"}` (what the SDK sends)
or the raw text itself. `size` is the stored text's length in bytes (UTF-8).
"""

import uuid

import orjson
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from agentops_site.errors import credentials_refused, json_error
from api.otlp.decode import OtlpError, decompress
from api.otlp.traces import read_body
from projects.ingest_auth import ingest_grant
from sessions.uploads import (
    object_of_project,
    parse_trace_id,
    store_object,
    store_trace_log,
)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _authenticated(view):
    """Credentials (projects/ingest_auth.py, key checked: no later write checks it) and every
    refusal as a JSON error; never a 5xx for a client's input."""

    def wrapped(request, *args, **kwargs):
        try:
            grant = ingest_grant(request, check_key=True)
            return view(request, grant, *args, **kwargs)
        except (exceptions.Throttled, exceptions.AuthenticationFailed) as exc:
            return credentials_refused(exc)
        except OtlpError as exc:
            return json_error(exc.http_status, exc.message)
        except _Refused as exc:
            return json_error(exc.status, exc.message)

    return csrf_exempt(wrapped)


def _text_body(request) -> str:
    """The uploaded text: {"body": "..."} or the raw body; gzip/deflate accepted, bounded."""
    limit = settings.INGEST_MAX_BODY_BYTES
    raw = decompress(read_body(request, limit), request.META.get("HTTP_CONTENT_ENCODING"), limit)
    if request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower() == "application/json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Refused(400, 'The body is not JSON: send {"body": "<text>"}.') from None
        body = data.get("body") if isinstance(data, dict) else None
        if not isinstance(body, str):
            raise _Refused(400, 'The body must be {"body": "<text>"} with a string.')
        return body.replace("\x00", "\ufffd")
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


@_authenticated
def upload_logs(request, grant):
    if request.method != "POST":
        raise _Refused(405, "Upload logs with POST.")
    trace_id = parse_trace_id(request.META.get("HTTP_TRACE_ID"))
    if trace_id is None:
        raise _Refused(
            400, "Send the trace's id in the Trace-Id header (decimal, 32 hex digits or a UUID)."
        )
    text = _text_body(request)
    size = len(text.encode())
    store_trace_log(project_id=grant.project_id, trace_id=trace_id, body=text, size=size)
    url = request.build_absolute_uri(f"/sessions?trace_id={trace_id.hex}")
    return JsonResponse({"url": url, "size": size})


@_authenticated
def upload_object(request, grant):
    if request.method != "POST":
        raise _Refused(405, "Upload objects with POST.")
    text = _text_body(request)
    size = len(text.encode())
    stored = store_object(project_id=grant.project_id, body=text, size=size)
    return JsonResponse(
        {"url": request.build_absolute_uri(f"/v4/objects/{stored.id}"), "size": size}
    )


@_authenticated
def get_object(request, grant, object_id):
    try:
        object_id = uuid.UUID(object_id)
    except ValueError:
        raise _Refused(404, "No object with this id is available to these credentials.") from None
    stored = object_of_project(project_id=grant.project_id, object_id=object_id)
    if stored is None:
        raise _Refused(404, "No object with this id is available to these credentials.")
    return HttpResponse(stored.body, content_type="text/plain; charset=utf-8")
