"""Patching by attribute, undoable, and an import hook that patches a module the moment it is
first imported, so that init() may come before or after `import openai`.

The hook watches exact module names (the modules that define the classes we wrap), so no
library is ever imported by us: a module is patched only once the program itself imports it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import threading
from typing import Any, Callable

from ._record import log_failure

MARK = "__agentops_wrapped__"

_lock = threading.RLock()
# (owner, name, original, had_own_attribute), newest last: undone in reverse.
_patched: list = []


def is_wrapped(func: Any) -> bool:
    return bool(getattr(func, MARK, False))


def patch(owner: Any, name: str, make_wrapper: Callable[[Any], Any]) -> None:
    """Replace owner.name with make_wrapper(original), once; unpatch_all() puts it back."""
    with _lock:
        own = name in getattr(owner, "__dict__", {})
        original = owner.__dict__[name] if own else getattr(owner, name)
        if is_wrapped(original):
            return
        wrapper = make_wrapper(original)
        setattr(wrapper, MARK, True)
        wrapper.__wrapped__ = original
        setattr(owner, name, wrapper)
        _patched.append((owner, name, original, own))


def unpatch_all() -> None:
    with _lock:
        while _patched:
            owner, name, original, own = _patched.pop()
            if own or not isinstance(owner, type):
                setattr(owner, name, original)
            else:
                delattr(owner, name)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then the patches for the module it just executed."""

    def __init__(self, loader: Any, on_loaded: Callable[[Any], None]) -> None:
        self._loader = loader
        self._on_loaded = on_loaded

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        # Put the real loader back first: importlib.resources and friends read module.__loader__.
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._on_loaded(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched name it asks the other finders and wraps the loader."""

    def __init__(self, callbacks: dict) -> None:
        self._callbacks = callbacks  # module name -> callable(module)
        self._resolving: set = set()

    def find_spec(self, fullname: str, path=None, target=None):
        callback = self._callbacks.get(fullname)
        if callback is None or fullname in self._resolving:
            return None
        # The import system holds this module's lock here, so one thread at a time per name.
        self._resolving.add(fullname)
        try:
            spec = _find_with_other_finders(self, fullname, path, target)
        finally:
            self._resolving.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, _guarded(fullname, callback))
        return spec


def _find_with_other_finders(me, fullname, path, target):
    for finder in list(sys.meta_path):
        if finder is me or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _guarded(name: str, callback: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module) -> None:
        try:
            callback(module)
        except Exception as exc:
            log_failure(f"patching {name}", exc)

    return run


_finder: PostImportFinder | None = None


def watch(callbacks: dict) -> None:
    """Patch the watched modules already imported now, and the others when they are imported."""
    global _finder
    with _lock:
        for name, callback in callbacks.items():
            module = sys.modules.get(name)
            if module is not None:
                _guarded(name, callback)(module)
        if _finder is None:
            _finder = PostImportFinder(dict(callbacks))
            sys.meta_path.insert(0, _finder)


def unwatch() -> None:
    global _finder
    with _lock:
        if _finder is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(_finder)
            _finder = None


def module_spec_exists(name: str) -> bool:
    """Whether a top-level package is installed, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
