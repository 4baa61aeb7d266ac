"""What text search finds in an event: a bounded, lower-cased extract written beside the event.

The session list's search (sessions/queries.py) looks for a phrase in what users search for in
Langfuse and the AgentOps cloud: prompts, completions, tool names, error types and messages,
models, action names. Searching whole payloads would need an index over every byte ingested (and
payloads reach 1 MB); instead each event gets `search_text` at write time: its name and model,
then the head of each text field, SEARCH_PART characters each, SEARCH_TEXT_MAX in all. It is
lower-cased so one plain LIKE '%phrase%' serves both engines: on Postgres a pg_trgm GIN index
(events migration 0006) answers it, on SQLite it is a scan of the events (the embedded default's
scale). The cost to ingest of the column and its index is measured in BENCHMARKS.md (§1).
"""

from typing import Any

SEARCH_TEXT_MAX = 1000
SEARCH_PART = 300
# Payload fields searched, most telling first (v2 names; OTLP spans are mapped onto the same).
_TEXT_FIELDS = ("details", "prompt", "completion", "params", "returns", "logs", "code")


def search_text(*, name: str, model: str, payload: dict) -> str:
    """The lower-cased search extract of one event (str, at most SEARCH_TEXT_MAX characters):
    name, model, then up to SEARCH_PART characters of each of the payload's text fields, runs of
    whitespace made one space. Message lists contribute their contents, not their JSON."""
    parts = [name, model] if model and model != name else [name]
    for key in _TEXT_FIELDS:
        value = payload.get(key)
        if value is None:
            continue
        text = _flatten(value, SEARCH_PART)
        if text:
            parts.append(text[:SEARCH_PART])
    # Whitespace collapsed as in normalise_query, so a phrase matches across line breaks.
    return " ".join(" ".join(parts).split())[:SEARCH_TEXT_MAX].lower()


def normalise_query(text: str) -> str:
    """A search phrase as it is matched against search_text: whitespace runs made one space,
    lower-cased."""
    return " ".join(text.split()).lower()


def _flatten(value: Any, budget: int) -> str:
    """The text inside a JSON value, depth first, until `budget` characters are collected:
    strings as they are, messages' "content", numbers and keys left out."""
    out: list[str] = []
    size = 0
    stack = [value]
    while stack and size < budget:
        item = stack.pop()
        if isinstance(item, str):
            if item:
                out.append(item)
                size += len(item) + 1
        elif isinstance(item, dict):
            if item.get("type") == "string" and isinstance(item.get("string"), str):
                stack.append(item["string"])
            elif "messages" in item:
                stack.append(item["messages"])
            elif "content" in item:
                stack.append(item["content"])
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return " ".join(out)
