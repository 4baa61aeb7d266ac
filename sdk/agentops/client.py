"""Client: the configuration and the sessions of one process (agentops.init() makes one)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

from . import exits
from ._log import logger
from .config import Configuration
from .event import Event
from .host_env import get_host_env
from .protocol import Deadline
from .sender import Sender
from .session import EndState, Session, clip_reason, end_state_value
from .transport import Connection

# How long start_session() waits for the server before going on without it (the session is
# then registered in the background and its events wait in the queue).
START_WAIT_SECONDS = 2.0


class Client:
    def __init__(self, config: Configuration | None = None) -> None:
        if config is None:
            config = Configuration()
            config.apply_environment()
        self._config = config
        # Replaced whole under the lock, never changed in place: the module-level calls
        # (agentops.record() on every event) read it without taking the lock.
        self._sessions: tuple[Session, ...] = ()
        self._lock = threading.RLock()
        self._sender = Sender()
        self._initialized = False
        self._host_env: dict[bool, dict] = {}
        self._agents_waiting: list[tuple[str, str]] = []  # created before any session
        exits.register(self)

    # --- configuration ----------------------------------------------------------------------

    @property
    def config(self) -> Configuration:
        return self._config

    def configure(self, **settings) -> None:
        """Change the configuration of sessions started from now on."""
        self._config.configure(**settings)

    @property
    def is_initialized(self) -> bool:
        return self._initialized

    @property
    def api_key(self) -> str | None:
        return self._config.api_key

    def initialize(self) -> Session | None:
        """Ready the client; start a session unless auto_start_session is off."""
        if self._config.api_key is None:
            self._config.apply_environment()
        if self._config.api_key is None:
            logger.error(
                "agentops: no API key: pass init(api_key=...) or set AGENTOPS_API_KEY. "
                "Nothing will be recorded."
            )
            return None
        exits.install()
        self._initialized = True
        if self._config.instrument_llm_calls:
            from . import llms  # late: it is only needed when the flag is on

            llms.instrument(client=self)
        if self._config.auto_start_session:
            return self.start_session()
        return None

    # --- sessions ---------------------------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        """The running sessions."""
        return list(self._sessions)

    @property
    def has_sessions(self) -> bool:
        return bool(self._sessions)

    @property
    def is_multi_session(self) -> bool:
        return len(self._sessions) > 1

    @property
    def current_session_ids(self) -> list[str]:
        return [str(s.session_id) for s in self.sessions]

    def get_session(self, session_id) -> Session | None:
        for session in self.sessions:
            if str(session.session_id) == str(session_id):
                return session
        return None

    def host_env(self, opt_out: bool) -> dict:
        if opt_out not in self._host_env:
            self._host_env[opt_out] = get_host_env(opt_out)
        return self._host_env[opt_out]

    def start_session(
        self,
        tags: str | list | None = None,
        inherited_session_id: str | uuid.UUID | None = None,
        config: Configuration | None = None,
    ) -> Session | None:
        """A new session (or, with inherited_session_id, this process's part of an existing
        one). `config` applies to this session only."""
        if not self._initialized and config is None and self._config.api_key is None:
            self._config.apply_environment()
        cfg = (config if config is not None else self._config).copy()
        if cfg.api_key is None:
            logger.error(
                "agentops: cannot start a session without an API key: pass init(api_key=...) "
                "or set AGENTOPS_API_KEY."
            )
            return None
        exits.install()
        self._initialized = True
        if inherited_session_id is not None:
            try:
                session_id = uuid.UUID(str(inherited_session_id))
            except ValueError:
                logger.error(
                    "agentops: inherited_session_id %r is not a UUID", inherited_session_id
                )
                return None
        else:
            session_id = uuid.uuid4()
        tag_list = [tags] if isinstance(tags, str) else list(tags or [])
        session = Session(
            session_id,
            cfg,
            tags=[*cfg.default_tags, *tag_list],
            host_env=self.host_env(cfg.env_data_opt_out),
            sender=self._sender,
            on_end=self._session_ended,
        )
        delivery = session.delivery
        conn = Connection()
        try:
            registered = delivery.register(
                conn, Deadline(min(START_WAIT_SECONDS, cfg.max_flush_time / 1000))
            )
        finally:
            conn.close()
        if not registered and delivery.failure is not None:
            logger.error("agentops: could not start a session: %s", delivery.failure)
            return None
        if not registered:
            logger.warning(
                "agentops: the server at %s is not reachable yet; session %s starts anyway and "
                "its events wait in memory until the server answers.",
                cfg.endpoint,
                session_id,
            )
        with self._lock:
            self._sessions = (*self._sessions, session)
            waiting, self._agents_waiting = self._agents_waiting, []
        for name, agent_id in waiting:
            session.create_agent(name, agent_id)
        self._sender.start(delivery)
        if registered:
            logger.info("agentops: session replay: %s", session.session_url)
        return session

    def _session_ended(self, session: Session) -> None:
        with self._lock:
            self._sessions = tuple(s for s in self._sessions if s is not session)

    def _the_session(self, call: str) -> Session | None:
        """The one running session, for module-level calls; None (with a warning) otherwise."""
        sessions = self._sessions
        if len(sessions) == 1:
            return sessions[0]
        if sessions:
            logger.warning(
                "agentops: %d sessions are running, so agentops.%s() does not know which one "
                "to use; nothing done. Call it on the session: session.%s(...)",
                len(sessions),
                call,
                call,
            )
        else:
            logger.warning(
                "agentops: no session is running; agentops.%s() did nothing. Start one with "
                "agentops.init() or agentops.start_session().",
                call,
            )
        return None

    def end_session(
        self,
        end_state: str | EndState = EndState.INDETERMINATE,
        end_state_reason: str | None = None,
        video: str | None = None,
        is_auto_end: bool | None = None,
    ) -> Decimal | None:
        if is_auto_end and self._config.skip_auto_end_session:
            return None
        session = self._the_session("end_session")
        return session.end_session(end_state, end_state_reason, video) if session else None

    def record(self, event: Event) -> None:
        session = self._the_session("record")
        if session is not None:
            session.record(event)

    def add_tags(self, tags) -> None:
        session = self._the_session("add_tags")
        if session is not None:
            session.add_tags(tags)

    def set_tags(self, tags) -> None:
        session = self._the_session("set_tags")
        if session is not None:
            session.set_tags(tags)

    def add_default_tags(self, tags) -> None:
        self._config.configure(default_tags=tags)

    def get_default_tags(self) -> list[str]:
        return list(self._config.default_tags)

    def create_agent(
        self, name: str | None, agent_id: str | None = None, session: Session | None = None
    ) -> str | None:
        agent_id = str(agent_id or uuid.uuid4())
        if session is not None:
            return session.create_agent(name, agent_id)
        sessions = self.sessions
        if not sessions:
            self._agents_waiting.append((name or "", agent_id))  # joins the next session
        elif len(sessions) == 1:
            sessions[0].create_agent(name, agent_id)
        else:
            logger.warning(
                "agentops: %d sessions are running; agent %r joins none of them. Pass "
                "session=... to the agent's constructor or call session.create_agent(...).",
                len(sessions),
                name,
            )
        return agent_id

    def end_all_sessions(
        self,
        end_state: str | EndState = EndState.INDETERMINATE,
        end_state_reason: str | None = None,
    ) -> None:
        for session in self.sessions:
            session.end_session(end_state, end_state_reason)

    # --- process exit -----------------------------------------------------------------------

    def end_for_exit(self, end_state: EndState, reason: str, *, at_exit: bool = False) -> None:
        """End the running sessions (unless skip_auto_end_session at a normal exit) and send
        everything still queued, all within one max_flush_time (the exit handlers call it)."""
        # One window for all sessions: a server that is down delays the exit once, not per session.
        deadline = Deadline(self._config.max_flush_time / 1000)
        state = end_state_value(end_state)
        for session in self.sessions:
            if at_exit and session.config.skip_auto_end_session:
                continue
            session.end_within(deadline, state, clip_reason(reason))
        for delivery in self._sender.flush_all(deadline):
            delivery.warn_lost_at_exit()

    def after_fork(self) -> None:
        """In a forked child: the sender's thread did not survive; start a new one on use."""
        self._sender.after_fork()
