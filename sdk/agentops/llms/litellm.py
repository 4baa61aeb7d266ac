"""LiteLLM: `litellm.completion` and `litellm.acompletion` (streams included).

LiteLLM calls OpenAI's client underneath for OpenAI-style providers; the outer call alone is
recorded (see _record.inside_call). Its own cost estimate is not sent: the server prices the
call from its table, as for the other providers.
"""

from __future__ import annotations

import sys
from typing import Any

from . import _hooks
from ._record import Call, start
from ._shapes import get, messages_of, openai_chat_usage
from ._wrap import Accumulator, Adapter, _end, _safe_add, wrap_async, wrap_sync
from .openai import ChatStream, chat_message, summary

PACKAGE = "litellm"
_STATE = "_agentops_recording"


class CompletionAdapter(Adapter):
    name = "litellm completion"

    def start(self, args: tuple, kwargs: dict) -> Call | None:
        model = kwargs.get("model", args[0] if args else None)
        messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
        return start(model, messages_of(messages), kwargs)

    def is_stream(self, result: Any, kwargs: dict) -> bool:
        return kwargs.get("stream") is True and hasattr(type(result), "__next__")

    def finish(self, call: Call, result: Any) -> None:
        choices = get(result, "choices")
        if choices is None:
            call.succeed(completion=None)
            return
        usage = get(result, "usage")
        call.succeed(
            completion=chat_message(get(choices[0], "message")) if choices else None,
            model=get(result, "model"),
            returns=summary(result, get(choices[0], "finish_reason") if choices else None),
            **openai_chat_usage(usage),
        )

    def accumulator(self) -> Accumulator:
        return ChatStream()  # LiteLLM's chunks have OpenAI's shape


# LiteLLM's CustomStreamWrapper is its own iterator (__next__ / __anext__ on the class), so its
# items cannot be wrapped from outside the object. The object handed back stays the same one;
# its class becomes a subclass (isinstance holds) whose __next__ / __anext__ also record.
_recording_classes: dict = {}


def _recording_class(cls: type) -> type:
    sub = _recording_classes.get(cls)
    if sub is not None:
        return sub

    def __next__(self):
        try:
            chunk = cls.__next__(self)
        except StopIteration:
            _stream_end(self)
            raise
        except BaseException as exc:
            _stream_end(self, exc)
            raise
        _stream_add(self, chunk)
        return chunk

    async def __anext__(self):
        try:
            chunk = await cls.__anext__(self)
        except StopAsyncIteration:
            _stream_end(self)
            raise
        except BaseException as exc:
            _stream_end(self, exc)
            raise
        _stream_add(self, chunk)
        return chunk

    body: dict = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if hasattr(cls, "__next__"):
        body["__next__"] = __next__
    if hasattr(cls, "__anext__"):
        body["__anext__"] = __anext__
    sub = type(cls.__name__, (cls,), body)
    _recording_classes[cls] = sub
    return sub


def _stream_add(stream: Any, chunk: Any) -> None:
    state = stream.__dict__.get(_STATE)
    if state is not None:
        _safe_add(state[1], chunk)


def _stream_end(stream: Any, exc: BaseException | None = None) -> None:
    state = stream.__dict__.get(_STATE)
    if state is not None:
        _end(state[0], state[1], exc)


def instrument_stream(stream: Any, call: Call, acc: Accumulator) -> None:
    cls = type(stream)
    sub = _recording_class(cls)
    stream.__dict__[_STATE] = (call, acc)
    stream.__class__ = sub


def patch_litellm(package: Any) -> None:
    """litellm.completion is a dispatcher (litellm.chat_completions.dispatch) that falls back
    to litellm.main.completion: both are wrapped, and the nesting guard records one event."""
    adapter = CompletionAdapter()
    modules = [package]
    main = sys.modules.get("litellm.main")
    if main is not None:
        modules.append(main)
    for module in modules:
        if hasattr(module, "completion"):
            _hooks.patch(module, "completion", wrap_sync(adapter, instrument_stream))
        if hasattr(module, "acompletion"):
            _hooks.patch(module, "acompletion", wrap_async(adapter, instrument_stream))


TARGETS = {PACKAGE: patch_litellm}
