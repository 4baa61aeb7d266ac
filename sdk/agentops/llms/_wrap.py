"""Wrappers around a library's call, sync and async, and around the streams it returns.

The contract with the user's program: the library's function is called with the very same
arguments; its return value (the same object), its exception (re-raised untouched, with its
traceback) and its streaming behaviour are the library's own. What we add runs in try/except
and only logs when it fails.
"""

from __future__ import annotations

import functools
import sys
import weakref
from typing import Any, Callable

from . import _record
from ._record import Call, log_failure


class Adapter:
    """What a provider knows: how to read a request, a response and a stream's chunks."""

    name = "llm"

    def start(self, args: tuple, kwargs: dict) -> Call | None:
        raise NotImplementedError

    def finish(self, call: Call, result: Any) -> None:
        """A non-streamed result: call.succeed(...) with what it says."""
        raise NotImplementedError

    def is_stream(self, result: Any, kwargs: dict) -> bool:
        return False

    def accumulator(self) -> Accumulator:
        raise NotImplementedError


class Accumulator:
    """Gathers a stream's chunks; end() turns them into call.succeed(...) arguments."""

    def add(self, chunk: Any) -> None:
        raise NotImplementedError

    def result(self) -> dict:
        raise NotImplementedError


def _begin(adapter: Adapter, args: tuple, kwargs: dict) -> Call | None:
    try:
        return adapter.start(args, kwargs)
    except Exception as exc:
        log_failure(f"{adapter.name} request", exc)
        return None


def _after(adapter: Adapter, call: Call, result: Any, kwargs: dict, instrument_stream) -> None:
    try:
        if adapter.is_stream(result, kwargs):
            instrument_stream(result, call, adapter.accumulator())
        else:
            adapter.finish(call, result)
    except Exception as exc:
        log_failure(f"{adapter.name} response", exc)


def wrap_sync(
    adapter: Adapter, instrument_stream: Callable | None = None
) -> Callable[[Callable], Callable]:
    instrument_stream = instrument_stream or instrument_sync_stream

    def make(original: Callable) -> Callable:
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            call = _begin(adapter, args, kwargs) if not _record.inside_call.get() else None
            if call is None:
                return original(*args, **kwargs)
            token = _record.enter()
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            finally:
                _record.leave(token)
            _after(adapter, call, result, kwargs, instrument_stream)
            return result

        return wrapper

    return make


def wrap_async(
    adapter: Adapter, instrument_stream: Callable | None = None
) -> Callable[[Callable], Callable]:
    instrument_stream = instrument_stream or instrument_async_stream

    def make(original: Callable) -> Callable:
        @functools.wraps(original)
        async def wrapper(*args, **kwargs):
            call = _begin(adapter, args, kwargs) if not _record.inside_call.get() else None
            if call is None:
                return await original(*args, **kwargs)
            token = _record.enter()
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            finally:
                _record.leave(token)
            _after(adapter, call, result, kwargs, instrument_stream)
            return result

        return wrapper

    return make


def _safe_add(acc: Accumulator, chunk: Any) -> None:
    try:
        acc.add(chunk)
    except Exception as exc:
        log_failure("stream chunk", exc)


def _end(call: Call, acc: Accumulator, exc: BaseException | None = None) -> None:
    if sys.is_finalizing():  # a stream dropped at exit: the SDK can no longer send anything
        return
    try:
        gathered = acc.result()
    except Exception as inner:
        log_failure("stream end", inner)
        gathered = {}
    if exc is None:
        call.succeed(**gathered)
    else:
        call.fail(exc, **gathered)


def _recording_iterator(source, call: Call, acc: Accumulator):
    """Yields the library's items unchanged; records once the stream ends, fails or is dropped.
    It refers to the source iterator only, never to the stream object (no reference cycle)."""
    try:
        for item in source:
            _safe_add(acc, item)
            yield item
    except GeneratorExit:
        _end(call, acc)  # closed or garbage-collected before the end: record what came
        raise
    except BaseException as exc:
        _end(call, acc, exc)
        raise
    _end(call, acc)


async def _recording_async_iterator(source, call: Call, acc: Accumulator):
    try:
        async for item in source:
            _safe_add(acc, item)
            yield item
    except GeneratorExit:
        _end(call, acc)
        raise
    except BaseException as exc:
        _end(call, acc, exc)
        raise
    _end(call, acc)


def _close_of(stream: Any):
    """A way to call the stream's own close() later without holding the stream: a closure over
    the bound method, kept on the stream, would make it a reference cycle, and Anthropic's
    client relies on a dropped stream being freed (and its connection closed) at once."""
    if "close" in getattr(stream, "__dict__", {}):
        return stream.__dict__["close"]  # someone else's wrapper: keep it as it is
    ref = weakref.ref(stream)
    close = type(stream).close

    def original_close():
        target = ref()
        if target is not None:
            return close(target)
        return None

    return original_close


def instrument_sync_stream(stream: Any, call: Call, acc: Accumulator) -> None:
    """For the Stainless clients' Stream (OpenAI, Anthropic): both iterate `self._iterator`, so
    the returned object stays the library's own and only its item source is wrapped."""
    recording = _recording_iterator(stream._iterator, call, acc)
    original_close = _close_of(stream)

    def close() -> None:
        try:
            original_close()
        finally:
            _end(call, acc)  # a no-op if the stream already ended

    stream._iterator = recording
    stream.close = close


def instrument_async_stream(stream: Any, call: Call, acc: Accumulator) -> None:
    recording = _recording_async_iterator(stream._iterator, call, acc)
    original_close = _close_of(stream)

    async def close() -> None:
        try:
            result = original_close()
            if result is not None:
                await result
        finally:
            _end(call, acc)

    stream._iterator = recording
    stream.close = close
