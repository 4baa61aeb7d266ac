"""Writes to sessions: start or join, update (end state, tags, video), agents, and the reaper
(every end-state rule lives here)."""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from analytics.scheduling import schedule_rollups
from projects.models import ApiKey
from sessions.models import Agent, EndState, Protocol, Session, SessionTag, Tag

logger = logging.getLogger(__name__)


class SessionNotAvailable(Exception):
    """The id names no session this key may use. Deliberately says no more than that: the same id
    in another project is refused exactly like an id that does not exist."""


def sdk_version_of(host_env: dict | None) -> str:
    sdk = (host_env or {}).get("SDK")
    version = sdk.get("AgentOps SDK Version") if isinstance(sdk, dict) else None
    return str(version)[:50] if version else ""


def start_or_join_session(*, api_key: ApiKey, fields: dict) -> tuple[Session, bool]:
    """Create the session, or join it when the id already exists in the key's project.

    Several processes of one run (inherited sessions) may call this with the same id in any
    order and at the same time; whichever insert loses the race joins the winner's row.
    """
    session_id: uuid.UUID = fields["session_id"]
    now = timezone.now()
    tags = fields.get("tags") or []
    try:
        with transaction.atomic():
            session = Session.objects.create(
                id=session_id,
                project_id=api_key.project_id,
                init_timestamp=fields.get("init_timestamp") or now,
                host_env=fields.get("host_env"),
                sdk_version=sdk_version_of(fields.get("host_env")),
                last_seen_at=now,
            )
            set_session_tags(session, tags, replace=True)
            schedule_rollups(session.project_id, [session.init_timestamp.date()])
        return session, True
    except IntegrityError:
        pass
    with transaction.atomic():
        session = (
            Session.objects.select_for_update()
            .filter(id=session_id, project_id=api_key.project_id)
            .first()
        )
        if session is None:
            raise SessionNotAvailable
        Session.objects.filter(pk=session.pk).update(last_seen_at=now)
        # A joining process brings its own default tags: they add to the session's.
        set_session_tags(session, tags, replace=False)
    return session, False


def get_session_for_key(*, api_key: ApiKey, session_id: uuid.UUID) -> Session:
    session = Session.objects.filter(id=session_id, project_id=api_key.project_id).first()
    if session is None:
        raise SessionNotAvailable
    return session


def update_session(*, session_id: uuid.UUID, project_id: uuid.UUID, fields: dict) -> Session:
    """Apply what the SDK sends: tags replace; the end state applies only with an end time.

    The official SDK posts end_state "Indeterminate" with no end time on every tag change of a
    running session; only end_session() adds end_timestamp.
    """
    with transaction.atomic():
        session = (
            Session.objects.select_for_update().filter(id=session_id, project_id=project_id).first()
        )
        if session is None:
            raise SessionNotAvailable
        changed = ["last_seen_at"]
        session.last_seen_at = timezone.now()
        end_timestamp: datetime | None = fields.get("end_timestamp")
        if end_timestamp is not None:
            session.end_timestamp = max(end_timestamp, session.init_timestamp)
            session.end_state = fields.get("end_state") or "Indeterminate"
            session.end_state_reason = fields.get("end_state_reason") or ""
            changed += ["end_timestamp", "end_state", "end_state_reason"]
            schedule_rollups(session.project_id, [session.init_timestamp.date()])
        if fields.get("video"):
            session.video = fields["video"]
            changed.append("video")
        if "tags" in fields:
            set_session_tags(session, fields["tags"], replace=True)
        session.save(update_fields=changed)
    return session


def set_session_tags(session: Session, names: Iterable[str], *, replace: bool) -> None:
    """Link the session to these per-project tags (one Tag row per name per project)."""
    names = list(dict.fromkeys(names))
    if replace:
        SessionTag.objects.filter(session=session).exclude(tag__name__in=names).delete()
    if not names:
        return
    Tag.objects.bulk_create(
        [Tag(project_id=session.project_id, name=n) for n in names], ignore_conflicts=True
    )
    tag_ids = Tag.objects.filter(project_id=session.project_id, name__in=names).values_list(
        "id", flat=True
    )
    SessionTag.objects.bulk_create(
        [SessionTag(session=session, tag_id=t) for t in tag_ids], ignore_conflicts=True
    )


def set_trace_tags(session_id: uuid.UUID, project_id: uuid.UUID, names: list[str]) -> None:
    """A trace's root span names the session's tags: they replace whatever was there (a
    re-sent root sets the same ones again)."""
    session = Session(id=session_id, project_id=project_id)
    set_session_tags(session, names, replace=True)


def register_agent(*, session_id: uuid.UUID, project_id: uuid.UUID, agent_id: uuid.UUID, name: str):
    """Idempotent: a resent agent keeps its first row; a newer name replaces an empty one."""
    if not Session.objects.filter(id=session_id, project_id=project_id).exists():
        raise SessionNotAvailable
    Agent.objects.bulk_create(
        [Agent(id=agent_id, session_id=session_id, name=name)], ignore_conflicts=True
    )
    if name:
        Agent.objects.filter(id=agent_id, session_id=session_id, name="").update(name=name)
    Session.objects.filter(id=session_id).update(last_seen_at=timezone.now())


# --- The reaper ------------------------------------------------------------------------------
# An agent process that crashes or is killed never calls end_session(); its session would stay
# "running" forever. A session with no end state whose last request (`last_seen_at`, server
# time) is older than SESSION_INACTIVITY_TIMEOUT seconds is ended as Indeterminate, with its
# last activity as its end time and a reason saying it went silent. Events that arrive for it
# later are still stored, and a late end_session() from the SDK still sets the real end state.
# An OTLP session (a trace) is ended by its root span; one still running when it goes silent
# never got its root, and its reason says that. A root arriving later still sets the real state.

REAPER_CHUNK = 1000


def silence_reason(timeout: int) -> str:
    return (
        f"No activity for over {timeout} seconds: the session went silent without being ended "
        "(the agent process probably exited or was killed before calling end_session)."
    )


def no_root_reason(timeout: int) -> str:
    return (
        f"No root span received: the trace's last span arrived over {timeout} seconds ago and "
        "its root span never did (the agent process probably exited or was killed before "
        "end_trace, or its exporter dropped the root)."
    )


def expire_silent_sessions(*, timeout: int | None = None) -> int:
    """End every running session silent for `timeout` seconds (default
    SESSION_INACTIVITY_TIMEOUT) as Indeterminate; returns how many were ended."""
    timeout = settings.SESSION_INACTIVITY_TIMEOUT if timeout is None else timeout
    reasons = {Protocol.V2: silence_reason(timeout), Protocol.OTLP: no_root_reason(timeout)}
    ended = 0
    while True:
        cutoff = timezone.now() - timedelta(seconds=timeout)
        # The partial index session_running_last_seen serves this look-up.
        candidates = list(
            Session.objects.filter(end_state__isnull=True, last_seen_at__lt=cutoff)
            .order_by("last_seen_at")
            .values_list("id", "project_id", "init_timestamp")[:REAPER_CHUNK]
        )
        if not candidates:
            break
        # The conditions are repeated in the UPDATE itself: a session that received a request
        # (or was ended by its SDK) since the look-up no longer matches and is left alone.
        # An OTLP session still running has had no root span (the root sets the end state).
        for protocol, reason in reasons.items():
            ended += Session.objects.filter(
                id__in=[c[0] for c in candidates],
                end_state__isnull=True,
                last_seen_at__lt=cutoff,
                protocol=protocol,
            ).update(
                end_state=EndState.INDETERMINATE,
                end_timestamp=F("last_seen_at"),
                end_state_reason=reason,
            )
        days = defaultdict(set)
        for _, project_id, started in candidates:
            days[project_id].add(started.astimezone(UTC).date())
        for project_id, project_days in days.items():
            schedule_rollups(project_id, project_days)
        if len(candidates) < REAPER_CHUNK:
            break
    if ended:
        logger.info("ended %d silent session(s) as Indeterminate", ended)
    return ended
