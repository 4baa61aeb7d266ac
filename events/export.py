"""The streamed session export in AgentOps' shapes: {"session", "stats", "actions", "llms",
"tools", "errors", "apis"}, produced section by section so memory stays flat at any size.

The rows come from the storage seam (events/storage/): built by Postgres and streamed by COPY,
or by events.rows.event_row on SQLite.
"""

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter

import orjson

from events import storage
from events.rows import EXPORT_SECTIONS, iso
from sessions.models import Session
from sessions.totals import session_stats


def session_fields(session: Session, tags: list[str]) -> dict:
    """The export's "session" object."""
    return {
        "session_id": str(session.id),
        "project_id": str(session.project_id),
        "init_timestamp": iso(session.init_timestamp),
        "end_timestamp": iso(session.end_timestamp),
        "end_state": session.end_state,
        "end_state_reason": session.end_state_reason or None,
        "tags": tags,
        "host_env": session.host_env,
        "video": session.video or None,
        "sdk_version": session.sdk_version or None,
    }


def stream_export(session: Session, tags: list[str]) -> Iterator[bytes]:
    """The export document as a stream of JSON byte strings."""
    yield b'{"session":' + orjson.dumps(session_fields(session, tags))
    yield b',"stats":' + orjson.dumps(session_stats(session))
    yield from _sections_document(storage.backend().export_chunks(session.id))
    yield b"}"


def _sections_document(chunks: Iterator[tuple[int, bytes]]) -> Iterator[bytes]:
    """',"actions":[...],"llms":[...]...' from (section index, rows) chunks in section order;
    every section appears, an empty one as []."""
    following = 0
    for index, section_chunks in groupby(chunks, key=itemgetter(0)):
        for empty in EXPORT_SECTIONS[following:index]:
            yield b',"' + empty.encode() + b'":[]'
        separator = b',"' + EXPORT_SECTIONS[index].encode() + b'":['
        for _, rows in section_chunks:
            yield separator + rows
            separator = b","
        yield b"]"
        following = index + 1
    for empty in EXPORT_SECTIONS[following:]:
        yield b',"' + empty.encode() + b'":[]'
