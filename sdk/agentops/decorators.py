"""Decorators: record_action, record_tool (sync and async) and track_agent."""

from __future__ import annotations

import functools
import inspect
import uuid
from typing import Any, Callable

from . import default_client
from ._log import logger
from ._time import get_ISO_time
from .event import ActionEvent, ErrorEvent, Event, ToolEvent, current_agent_id
from .session import Session


def _client():
    return default_client.get()


def _target_session(explicit: Session | None, what: str) -> Session | None:
    if explicit is not None:
        return explicit
    sessions = _client().sessions
    if len(sessions) == 1:
        return sessions[0]
    if len(sessions) > 1:
        logger.warning(
            "agentops: %d sessions are running, so %s is not recorded; pass session=<the "
            "session> to the decorated function.",
            len(sessions),
            what,
        )
    return None


def _params(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> dict:
    if signature is None:
        return {"args": list(args), **kwargs}
    try:
        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
    except TypeError:  # the call itself is wrong; the function will say so
        return {"args": list(args), **kwargs}
    params = dict(bound.arguments)
    params.pop("self", None)
    params.pop("cls", None)
    return params


def _recorder(make_event: Callable[..., Event], default_name: str | None):
    """The body shared by record_action and record_tool."""

    def decorator(func: Callable) -> Callable:
        name = default_name or func.__name__
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None
        # A `session=` keyword chooses the session, unless the function has its own `session`.
        takes_session = signature is not None and "session" in signature.parameters

        def begin(args, kwargs) -> tuple[Session | None, Event | None]:
            explicit = None
            if not takes_session and isinstance(kwargs.get("session"), Session):
                explicit = kwargs.pop("session")
            session = _target_session(explicit, f"{name}()")
            if session is None:
                return None, None
            return session, make_event(name, _params(signature, args, kwargs))

        def succeeded(session: Session, event: Event, returns: Any) -> None:
            event.returns = list(returns) if isinstance(returns, tuple) else returns
            screenshot = getattr(returns, "screenshot", None)
            if isinstance(screenshot, str) and hasattr(event, "screenshot"):
                event.screenshot = screenshot
            event.end_timestamp = get_ISO_time()
            session.record(event)

        def failed(session: Session, event: Event, exc: BaseException) -> None:
            event.end_timestamp = get_ISO_time()
            session.record(event)
            session.record(ErrorEvent(trigger_event=event, exception=exc))

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args, **kwargs):
                session, event = begin(args, kwargs)
                if session is None:
                    return await func(*args, **kwargs)
                try:
                    returns = await func(*args, **kwargs)
                except Exception as exc:
                    failed(session, event, exc)
                    raise
                succeeded(session, event, returns)
                return returns

            return async_wrapper

        @functools.wraps(func)
        def sync_wrapper(*args, **kwargs):
            session, event = begin(args, kwargs)
            if session is None:
                return func(*args, **kwargs)
            try:
                returns = func(*args, **kwargs)
            except Exception as exc:
                failed(session, event, exc)
                raise
            succeeded(session, event, returns)
            return returns

        return sync_wrapper

    return decorator


def record_action(event_name: str | None = None):
    """Record each call as an ActionEvent (params, returns, timing); an exception is recorded
    as an ErrorEvent linked to that action, then re-raised."""
    if callable(event_name):  # used bare: @record_action
        return record_action(None)(event_name)
    return _recorder(lambda name, params: ActionEvent(action_type=name, params=params), event_name)


def record_tool(tool_name: str | None = None):
    """Record each call as a ToolEvent; exceptions as with record_action."""
    if callable(tool_name):
        return record_tool(None)(tool_name)
    return _recorder(lambda name, params: ToolEvent(name=name, params=params), tool_name)


def record_function(event_name: str | None = None):
    """The official SDK's old name of record_action."""
    return record_action(event_name)


def _with_agent(func: Callable, agent_id_of: Callable[[tuple], str | None]) -> Callable:
    """Run func with the agent's id in context, so events made inside carry it."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args, **kwargs):
            token = current_agent_id.set(agent_id_of(args))
            try:
                return await func(*args, **kwargs)
            finally:
                current_agent_id.reset(token)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        token = current_agent_id.set(agent_id_of(args))
        try:
            return func(*args, **kwargs)
        finally:
            current_agent_id.reset(token)

    return wrapper


def track_agent(name: str | None = None):
    """Make a class (each instance) or a function an agent of the session: it is registered
    with a name, and events recorded inside its methods carry its agent_id."""

    def decorator(obj):
        if inspect.isclass(obj):
            original_init = obj.__init__

            @functools.wraps(original_init)
            def __init__(self, *args, **kwargs):
                agent_name = kwargs.pop("agentops_name", None)
                session = kwargs.get("session")
                original_init(self, *args, **kwargs)
                try:
                    agent_name = agent_name or name or getattr(self, "role", None) or obj.__name__
                    agent_id = str(uuid.uuid4())
                    self.agentops_agent_id = agent_id
                    self.agentops_agent_name = agent_name
                    _client().create_agent(
                        agent_name, agent_id, session if isinstance(session, Session) else None
                    )
                except Exception as exc:  # e.g. a class with __slots__ or frozen attributes
                    logger.warning("agentops: could not track agent %r: %s", name, exc)

            obj.__init__ = __init__
            for attr, member in list(vars(obj).items()):
                if attr.startswith("__") and attr != "__call__":
                    continue
                if inspect.isfunction(member) and not inspect.isgeneratorfunction(member):
                    setattr(
                        obj,
                        attr,
                        _with_agent(
                            member,
                            lambda args: (
                                getattr(args[0], "agentops_agent_id", None) if args else None
                            ),
                        ),
                    )
            return obj
        if inspect.isfunction(obj):
            agent_id = str(uuid.uuid4())
            wrapped = _with_agent(obj, lambda args: agent_id)
            wrapped.agentops_agent_id = agent_id
            wrapped.agentops_agent_name = name or obj.__name__
            _client().create_agent(wrapped.agentops_agent_name, agent_id)
            return wrapped
        raise TypeError("track_agent decorates a class or a function")

    return decorator
