"""Anthropic's Python client: messages.create (sync, async, stream=True), messages.stream() and
messages.parse().

Completions keep OpenAI's shape (content text, tool_calls with JSON arguments) so that every
provider's LLM events read alike. Token counts follow the server's convention
(`_shapes.anthropic_usage`): prompt_tokens is Anthropic's input_tokens plus the cache reads and
writes it leaves out, which are also sent as cache_read_tokens / cache_write_tokens so the server
prices them at the model's cache prices.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from . import _hooks
from ._record import Call, log_failure, start
from ._shapes import anthropic_usage, assistant, get, messages_of, tool_call
from ._wrap import (
    Accumulator,
    Adapter,
    instrument_async_stream,
    instrument_sync_stream,
    wrap_async,
    wrap_sync,
)

MESSAGES_MODULE = "anthropic.resources.messages.messages"


def prompt_of(kwargs: dict) -> list | None:
    messages = messages_of(kwargs.get("messages"))
    if messages is None:
        return None
    system = kwargs.get("system")
    if isinstance(system, str):
        messages.insert(0, {"role": "system", "content": system})
    elif isinstance(system, (list, tuple)):
        messages.insert(0, {"role": "system", "content": list(system)})
    return messages


def completion_of(blocks: Any) -> dict:
    texts: list = []
    calls: list = []
    for block in blocks or ():
        kind = get(block, "type")
        if kind == "text":
            texts.append(get(block, "text") or "")
        elif kind == "tool_use":
            calls.append(tool_call(get(block, "id"), get(block, "name"), get(block, "input")))
    return assistant("".join(texts) if texts else None, calls)


class MessagesAdapter(Adapter):
    name = "anthropic messages"

    def start(self, args: tuple, kwargs: dict) -> Call | None:
        return start(kwargs.get("model"), prompt_of(kwargs), kwargs)

    def is_stream(self, result: Any, kwargs: dict) -> bool:
        return kwargs.get("stream") is True and hasattr(result, "_iterator")

    def finish(self, call: Call, result: Any) -> None:
        if get(result, "content") is None:  # with_raw_response and the like
            call.succeed(completion=None)
            return
        usage = get(result, "usage")
        call.succeed(
            completion=completion_of(get(result, "content")),
            model=get(result, "model"),
            returns={"id": get(result, "id"), "stop_reason": get(result, "stop_reason")},
            **anthropic_usage(
                get(usage, "input_tokens"),
                get(usage, "output_tokens"),
                get(usage, "cache_read_input_tokens"),
                get(usage, "cache_creation_input_tokens"),
            ),
        )

    def accumulator(self) -> MessagesStream:
        return MessagesStream()


class MessagesStream(Accumulator):
    """message_start gives the model and input tokens; content blocks build up by index;
    message_delta gives the final (cumulative) output tokens."""

    def __init__(self) -> None:
        self.model = None
        self.id = None
        self.stop_reason = None
        self.input_tokens = None
        self.output_tokens = None
        self.cache_read = None
        self.cache_write = None
        self.blocks: dict = {}

    def add(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self.model = get(message, "model")
            self.id = get(message, "id")
            usage = get(message, "usage")
            self.input_tokens = get(usage, "input_tokens")
            self.output_tokens = get(usage, "output_tokens")
            self.cache_read = get(usage, "cache_read_input_tokens")
            self.cache_write = get(usage, "cache_creation_input_tokens")
        elif kind == "content_block_start":
            block = get(event, "content_block")
            self.blocks[get(event, "index", 0)] = {
                "type": get(block, "type"),
                "id": get(block, "id"),
                "name": get(block, "name"),
                "text": get(block, "text") or "",
                "json": "",
            }
        elif kind == "content_block_delta":
            slot = self.blocks.get(get(event, "index", 0))
            delta = get(event, "delta")
            if slot is None:
                return
            if get(delta, "type") == "text_delta":
                slot["text"] += get(delta, "text") or ""
            elif get(delta, "type") == "input_json_delta":
                slot["json"] += get(delta, "partial_json") or ""
        elif kind == "message_delta":
            self.stop_reason = get(get(event, "delta"), "stop_reason") or self.stop_reason
            usage = get(event, "usage")
            if get(usage, "output_tokens") is not None:
                self.output_tokens = get(usage, "output_tokens")
            if get(usage, "input_tokens") is not None:
                self.input_tokens = get(usage, "input_tokens")
            # Newer API versions repeat the (cumulative) cache counts here.
            if get(usage, "cache_read_input_tokens") is not None:
                self.cache_read = get(usage, "cache_read_input_tokens")
            if get(usage, "cache_creation_input_tokens") is not None:
                self.cache_write = get(usage, "cache_creation_input_tokens")

    def result(self) -> dict:
        blocks = []
        for _, slot in sorted(self.blocks.items()):
            if slot["type"] == "tool_use":
                try:
                    arguments = json.loads(slot["json"]) if slot["json"] else {}
                except ValueError:
                    arguments = slot["json"]
                blocks.append(
                    {"type": "tool_use", "id": slot["id"], "name": slot["name"], "input": arguments}
                )
            elif slot["type"] == "text":
                blocks.append({"type": "text", "text": slot["text"]})
        return {
            "completion": completion_of(blocks),
            "model": self.model,
            "returns": {"id": self.id, "stop_reason": self.stop_reason},
            **anthropic_usage(
                self.input_tokens, self.output_tokens, self.cache_read, self.cache_write
            ),
        }


# --- messages.stream(): a manager whose request runs on __enter__ ----------------------------

_SYNC_REQUEST = "_MessageStreamManager__api_request"
_ASYNC_REQUEST = "_AsyncMessageStreamManager__api_request"


def wrap_stream_helper(adapter: MessagesAdapter):
    """`messages.stream(...)` builds a manager holding the request; the call happens when the
    manager is entered. We hand the manager back as it is, with its request recorded."""

    def make(original):
        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            manager = original(self, *args, **kwargs)
            try:
                _instrument_manager(manager, adapter, kwargs)
            except Exception as exc:
                log_failure("anthropic messages.stream", exc)
            return manager

        return wrapper

    return make


def _instrument_manager(manager: Any, adapter: MessagesAdapter, kwargs: dict) -> None:
    from . import _record

    if _record.inside_call.get():
        return
    if hasattr(manager, _SYNC_REQUEST):
        request = getattr(manager, _SYNC_REQUEST)

        def recorded_request():
            call = adapter.start((), kwargs)
            if call is None:
                return request()
            try:
                raw = request()
            except BaseException as exc:
                call.fail(exc)
                raise
            try:
                instrument_sync_stream(raw, call, adapter.accumulator())
            except Exception as exc:
                log_failure("anthropic stream", exc)
            return raw

        setattr(manager, _SYNC_REQUEST, recorded_request)
    elif hasattr(manager, _ASYNC_REQUEST):
        request = getattr(manager, _ASYNC_REQUEST)  # a coroutine, awaited on __aenter__

        async def recorded_request_async():
            call = adapter.start((), kwargs)
            if call is None:
                return await request
            try:
                raw = await request
            except BaseException as exc:
                call.fail(exc)
                raise
            try:
                instrument_async_stream(raw, call, adapter.accumulator())
            except Exception as exc:
                log_failure("anthropic stream", exc)
            return raw

        setattr(manager, _ASYNC_REQUEST, recorded_request_async())


def patch_messages(module: Any) -> None:
    adapter = MessagesAdapter()
    _hooks.patch(module.Messages, "create", wrap_sync(adapter))
    _hooks.patch(module.AsyncMessages, "create", wrap_async(adapter))
    _hooks.patch(module.Messages, "stream", wrap_stream_helper(adapter))
    _hooks.patch(module.AsyncMessages, "stream", wrap_stream_helper(adapter))
    if hasattr(module.Messages, "parse"):  # structured outputs; posts by itself
        _hooks.patch(module.Messages, "parse", wrap_sync(adapter))
    if hasattr(module.AsyncMessages, "parse"):
        _hooks.patch(module.AsyncMessages, "parse", wrap_async(adapter))


TARGETS = {MESSAGES_MODULE: patch_messages}
