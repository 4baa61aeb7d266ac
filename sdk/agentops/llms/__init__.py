"""LLM calls recorded by themselves: after `agentops.init()` (instrument_llm_calls=True, the
default), each call made through OpenAI's, Anthropic's or LiteLLM's Python client becomes an
LLMEvent in the running session, and a call that raises also records an ErrorEvent linked to it.

Each library is optional and never imported here: the module that defines what we wrap is
patched when it is already imported, or else the moment the program imports it (an import hook),
so init() may come before or after `import openai`.

    from agentops import llms
    llms.instrument()      # what init() does
    llms.uninstrument()    # puts every original function back (tests)
"""

from __future__ import annotations

import threading

from . import _hooks, _record
from . import anthropic as _anthropic
from . import litellm as _litellm
from . import openai as _openai

__all__ = ["PROVIDERS", "instrument", "is_instrumented", "set_sink", "uninstrument"]

# provider -> {module name: patch(module)}
PROVIDERS = {
    "openai": _openai.TARGETS,
    "anthropic": _anthropic.TARGETS,
    "litellm": _litellm.TARGETS,
}

set_sink = _record.set_sink

_lock = threading.Lock()
_active = False


def instrument(providers=None, client=None) -> None:
    """Patch the given providers (all by default): now if imported, else when imported.
    Calls are recorded in the one running session of `client` (default: agentops' own)."""
    global _active
    with _lock:
        if client is not None:
            _record.set_client(client)
        callbacks: dict = {}
        for name, targets in PROVIDERS.items():
            if providers is None or name in providers:
                callbacks.update(targets)
        try:
            _hooks.watch(callbacks)
            _active = True
        except Exception as exc:
            _record.log_failure("instrument", exc)


def uninstrument() -> None:
    """Remove the import hook and restore every patched function."""
    global _active
    with _lock:
        _hooks.unwatch()
        _hooks.unpatch_all()
        _record.set_client(None)
        _active = False


def is_instrumented() -> bool:
    return _active
