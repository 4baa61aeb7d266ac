"""The JSON body parser of the v2 API: bounded size, gzip accepted (bombs refused), orjson.

A body with bare NaN / Infinity / -Infinity (what Python's json.dumps, the official SDK 0.3.26's
serialiser, writes for a non-finite float) is read with each one marked (events/repairs.py), so
the endpoint nulls it at its path and says so instead of refusing the whole batch."""

import zlib

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from agentops_site.errors import ApiError
from events.repairs import rewrite_nonfinite
from events.validation import MAX_JSON_DEPTH, json_depth_exceeds

GZIP_WBITS = 16 + zlib.MAX_WBITS
# An event's payload may nest MAX_JSON_DEPTH levels inside {"events": [{...}]}; nothing a client
# sends needs more. Deeper bodies (host_env, say) would otherwise reach json.dumps (RecursionError,
# a 500) or be stored and break the export (orjson writes at most 254 levels).
MAX_BODY_DEPTH = MAX_JSON_DEPTH + 4


def too_large(limit: int) -> ApiError:
    return ApiError(
        f"The request body is larger than {limit} bytes: send fewer events per request.",
        status_code=413,
    )


def read_limited(stream, limit: int) -> bytes:
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise too_large(limit)
    return body


def gunzip_limited(body: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(GZIP_WBITS)
    try:
        out = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise ApiError(
            "The body says Content-Encoding: gzip but is not gzip data.", status_code=400
        ) from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise ApiError(
            f"The gzip body expands beyond {limit} bytes: send fewer events per request.",
            status_code=413,
        )
    return out


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.INGEST_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        body = read_limited(stream, limit)
        encoding = (
            request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        ).lower()
        if encoding == "gzip":
            body = gunzip_limited(body, limit)
        elif encoding not in ("", "identity"):
            raise ApiError(
                f"Content-Encoding {encoding!r} is not supported: use gzip or none.",
                status_code=415,
            )
        if not body.strip():
            raise ApiError("The request body is empty: send a JSON object.", status_code=400)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            data = _with_nonfinite_marked(body, exc)
        if json_depth_exceeds(data, MAX_BODY_DEPTH):
            raise ApiError(
                f"The request body is nested deeper than {MAX_BODY_DEPTH} levels.",
                status_code=400,
                errors={"body": [f"At most {MAX_BODY_DEPTH} levels of nesting."]},
            )
        return data


def _with_nonfinite_marked(body: bytes, error: orjson.JSONDecodeError):
    """The body orjson refused, read again with its bare NaN/Infinity and its numbers beyond a
    double's range marked; a 400 when it has none or is invalid for another reason too. The
    byte search and orjson's message keep a plainly broken body from paying for the rewrite."""
    maybe = b"NaN" in body or b"Infinity" in body or "infinity" in str(error)
    rewritten = rewrite_nonfinite(body) if maybe else None
    if rewritten is not None:
        try:
            return orjson.loads(rewritten)
        except orjson.JSONDecodeError as exc:
            error = exc
    raise ApiError(f"The request body is not valid JSON: {error}.", status_code=400) from None
