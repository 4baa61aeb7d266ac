"""OpenAI's Python client (1.x, 2.x): chat completions and responses (create and parse);
sync, async, streams.

`client.chat.completions.stream(...)` and `client.responses.stream(...)` call `create` and so
are recorded through it.
"""

from __future__ import annotations

from typing import Any

from . import _hooks
from ._record import Call, start
from ._shapes import (
    assistant,
    get,
    messages_of,
    openai_chat_usage,
    openai_responses_usage,
    text_of,
    tool_call,
)
from ._wrap import Accumulator, Adapter, wrap_async, wrap_sync

CHAT_MODULE = "openai.resources.chat.completions.completions"
RESPONSES_MODULE = "openai.resources.responses.responses"


def _is_stream(result: Any, kwargs: dict) -> bool:
    return kwargs.get("stream") is True and hasattr(result, "_iterator")


# --- chat completions -----------------------------------------------------------------------


def summary(response: Any, finish_reason: Any) -> dict:
    """`returns`: the response's id and why it stopped. Not the whole response: the completion
    and usage have their own fields, and turning a response object into JSON costs ~50 µs."""
    return {"id": get(response, "id"), "finish_reason": finish_reason}


def chat_message(message: Any) -> dict:
    calls = [
        tool_call(
            get(c, "id"), get(get(c, "function"), "name"), get(get(c, "function"), "arguments")
        )
        for c in (get(message, "tool_calls") or [])
    ]
    return assistant(get(message, "content"), calls)


class ChatAdapter(Adapter):
    name = "openai chat"

    def start(self, args: tuple, kwargs: dict) -> Call | None:
        return start(kwargs.get("model"), messages_of(kwargs.get("messages")), kwargs)

    def is_stream(self, result: Any, kwargs: dict) -> bool:
        return _is_stream(result, kwargs)

    def finish(self, call: Call, result: Any) -> None:
        choices = get(result, "choices")
        if choices is None:  # with_raw_response and the like: the request is all we know
            call.succeed(completion=None)
            return
        usage = get(result, "usage")
        call.succeed(
            completion=chat_message(get(choices[0], "message")) if choices else None,
            model=get(result, "model"),
            returns=summary(result, get(choices[0], "finish_reason") if choices else None),
            **openai_chat_usage(usage),
        )

    def accumulator(self) -> ChatStream:
        return ChatStream()


class ChatStream(Accumulator):
    """Deltas of the first choice, joined; the usage of the final chunk (stream_options
    include_usage), when the caller asked for it."""

    def __init__(self) -> None:
        self.model = None
        self.usage = None
        self.id = None
        self.finish_reason = None
        self.parts: list = []
        self.tools: dict = {}

    def add(self, chunk: Any) -> None:
        self.model = get(chunk, "model") or self.model
        self.id = self.id or get(chunk, "id")
        usage = get(chunk, "usage")
        if usage is not None:
            self.usage = usage
        for choice in get(chunk, "choices") or ():
            if get(choice, "index", 0) != 0:
                continue
            self.finish_reason = get(choice, "finish_reason") or self.finish_reason
            delta = get(choice, "delta")
            content = get(delta, "content")
            if content:
                self.parts.append(content)
            for piece in get(delta, "tool_calls") or ():
                slot = self.tools.setdefault(
                    get(piece, "index", 0), {"id": None, "name": "", "args": ""}
                )
                if get(piece, "id"):
                    slot["id"] = get(piece, "id")
                function = get(piece, "function")
                if get(function, "name"):
                    slot["name"] += get(function, "name")
                if get(function, "arguments"):
                    slot["args"] += get(function, "arguments")

    def result(self) -> dict:
        calls = [tool_call(t["id"], t["name"], t["args"]) for _, t in sorted(self.tools.items())]
        return {
            "completion": assistant("".join(self.parts) if self.parts else None, calls),
            "model": self.model,
            "returns": {"id": self.id, "finish_reason": self.finish_reason},
            **openai_chat_usage(self.usage),
        }


# --- responses ------------------------------------------------------------------------------


def responses_prompt(kwargs: dict) -> list | None:
    """Responses' `instructions` and `input` as chatml messages."""
    messages: list = []
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    given = kwargs.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, (list, tuple)):
        for item in given:
            kind = get(item, "type")
            if kind == "function_call":
                call = tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments"))
                messages.append(assistant(None, [call]))
            elif kind == "function_call_output":
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": get(item, "call_id"),
                        "content": get(item, "output"),
                    }
                )
            elif get(item, "role") is not None:
                messages.append(
                    {"role": get(item, "role"), "content": text_of(get(item, "content"))}
                )
            else:
                messages.append(item)
    elif given is not None:
        return None
    return messages


def responses_completion(response: Any) -> dict:
    texts: list = []
    calls: list = []
    for item in get(response, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            for part in get(item, "content") or ():
                if get(part, "type") == "output_text":
                    texts.append(get(part, "text") or "")
                elif get(part, "type") == "refusal":
                    texts.append(get(part, "refusal") or "")
        elif kind == "function_call":
            calls.append(tool_call(get(item, "call_id"), get(item, "name"), get(item, "arguments")))
    return assistant("".join(texts) if texts else None, calls)


def responses_result(response: Any) -> dict:
    usage = get(response, "usage")
    return {
        "completion": responses_completion(response),
        "model": get(response, "model"),
        "returns": {"id": get(response, "id"), "status": get(response, "status")},
        **openai_responses_usage(usage),
    }


class ResponsesAdapter(Adapter):
    name = "openai responses"

    def start(self, args: tuple, kwargs: dict) -> Call | None:
        return start(kwargs.get("model"), responses_prompt(kwargs), kwargs)

    def is_stream(self, result: Any, kwargs: dict) -> bool:
        return _is_stream(result, kwargs)

    def finish(self, call: Call, result: Any) -> None:
        if get(result, "output") is None:
            call.succeed(completion=None)
            return
        call.succeed(**responses_result(result))

    def accumulator(self) -> ResponsesStream:
        return ResponsesStream()


class ResponsesStream(Accumulator):
    """The final event (response.completed / incomplete / failed) carries the whole response."""

    FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        self.final = None
        self.parts: list = []
        self.model = None

    def add(self, event: Any) -> None:
        kind = get(event, "type")
        if kind in self.FINAL:
            self.final = get(event, "response")
        elif kind == "response.output_text.delta":
            self.parts.append(get(event, "delta") or "")
        elif kind == "response.created":
            self.model = get(get(event, "response"), "model")

    def result(self) -> dict:
        if self.final is not None:
            return responses_result(self.final)
        return {"completion": assistant("".join(self.parts) or None), "model": self.model}


# --- patching -------------------------------------------------------------------------------


def _patch_pair(module: Any, sync_name: str, async_name: str, adapter: Adapter) -> None:
    # `parse` (structured outputs) posts by itself rather than through `create`.
    for method in ("create", "parse"):
        if hasattr(getattr(module, sync_name), method):
            _hooks.patch(getattr(module, sync_name), method, wrap_sync(adapter))
        if hasattr(getattr(module, async_name), method):
            _hooks.patch(getattr(module, async_name), method, wrap_async(adapter))


def patch_chat(module: Any) -> None:
    _patch_pair(module, "Completions", "AsyncCompletions", ChatAdapter())


def patch_responses(module: Any) -> None:
    _patch_pair(module, "Responses", "AsyncResponses", ResponsesAdapter())


TARGETS = {CHAT_MODULE: patch_chat, RESPONSES_MODULE: patch_responses}
