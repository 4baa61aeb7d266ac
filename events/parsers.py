"""The JSON body parser of the v2 API: bounded size, gzip accepted (bombs refused), orjson."""

import zlib

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from agentops_site.errors import ApiError

GZIP_WBITS = 16 + zlib.MAX_WBITS


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
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(f"The request body is not valid JSON: {exc}.", status_code=400) from None
