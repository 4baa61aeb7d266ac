"""Turn stored event payloads into what the drill-down page shows: chat messages, readable JSON,
tracebacks. Everything returned is plain text; the templates escape it (agent payloads are
untrusted and may hold HTML or <script>)."""

from dataclasses import dataclass

import orjson

# Long payloads are cut on the page; the JSON export carries them whole.
MAX_SHOWN_CHARS = 20_000


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    extra: str = ""  # tool calls, function calls, non-text parts: as readable JSON


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def pretty_json(value) -> str:
    """Indented JSON for params/returns; strings that hold JSON are shown as that JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                value = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                return value
        else:
            return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def _content_text(content) -> tuple[str, str]:
    """(text, extra) of a message's content: a string, or OpenAI/Anthropic content parts."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if isinstance(content, list):
        texts, others = [], []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                others.append(part)
        return "\n\n".join(texts), pretty_json(others) if others else ""
    return pretty_json(content), ""


def _message(value, default_role: str) -> Message:
    if isinstance(value, dict):
        role = str(value.get("role") or default_role)
        text, extra = _content_text(value.get("content"))
        rest = {
            k: v
            for k, v in value.items()
            if k in ("tool_calls", "function_call", "tool_call_id", "name") and v
        }
        if rest:
            extra = "\n".join(filter(None, [extra, pretty_json(rest)]))
        return Message(role=role, text=text, extra=extra)
    if isinstance(value, str):
        return Message(role=default_role, text=value)
    return Message(role=default_role, text=pretty_json(value))


def messages(value, *, default_role: str) -> list[Message]:
    """Every accepted prompt/completion shape as a list of messages:
    chatml list, plain string, {"type": "chatml", "messages": [...]},
    {"type": "string", "string": ...}, {"messages": [...]}, or one message dict."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        if value.get("type") == "string" and "string" in value:
            return [_message(value.get("string"), default_role)]
        if isinstance(value.get("messages"), list):
            return [_message(m, default_role) for m in value["messages"]]
        if "choices" in value and isinstance(value["choices"], list):
            # A raw OpenAI response object stored as the completion.
            return [
                _message(c.get("message", c) if isinstance(c, dict) else c, default_role)
                for c in value["choices"]
            ]
        return [_message(value, default_role)]
    if isinstance(value, list):
        return [_message(m, default_role) for m in value]
    return [_message(value, default_role)]
