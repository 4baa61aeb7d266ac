"""Small readers shared by the providers: attribute-or-key access and the chatml shapes."""

from __future__ import annotations

import json
from typing import Any


def get(obj: Any, name: str, default: Any = None) -> Any:
    """obj.name for the libraries' response objects, obj[name] for dicts."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def messages_of(value: Any) -> list | None:
    """A shallow copy of the messages list; anything else (a generator the library has yet to
    consume) is left alone rather than used up here."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict:
    """A requested tool call in OpenAI's shape, whichever provider asked for it."""
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments)
        except (TypeError, ValueError):
            arguments = str(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant(content: str | None, tool_calls: list | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def text_of(content: Any) -> Any:
    """A message's content as text when it is a list of text parts; otherwise as it is."""
    if isinstance(content, list):
        texts = []
        for part in content:
            text = get(part, "text")
            if not isinstance(text, str):
                return content  # images, files ...: keep the parts whole
            texts.append(text)
        return "".join(texts)
    return content
