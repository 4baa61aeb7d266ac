"""How the modules beneath the package find the process's default Client (what init() sets up).

The decorators and the LLM instrumentation record into the default client's session, but
agentops/__init__ (which keeps the client) imports them: importing it back would close an import
circle. The package hands its getter down instead, once, as it is imported.
"""

from __future__ import annotations

from typing import Any, Callable

_getter: Callable[[], Any] | None = None


def provide(getter: Callable[[], Any]) -> None:
    """Called by agentops/__init__ with its get_client."""
    global _getter
    _getter = getter


def get() -> Any:
    """The default agentops.Client (made on first use). RuntimeError if the package was never
    imported, which cannot happen: importing any of its modules imports it first."""
    if _getter is None:
        raise RuntimeError("agentops/__init__ has not provided the default client")
    return _getter()
