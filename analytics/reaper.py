"""The reaper: a running session that went silent is ended as Indeterminate.

An agent process that crashes or is killed never calls end_session(); its session would stay
"running" forever. A session with no end state whose last request (`last_seen_at`, server time)
is older than SESSION_INACTIVITY_TIMEOUT seconds is ended as Indeterminate, with its last
activity as its end time and a reason saying it went silent. Events that arrive for it later are
still stored, and a late end_session() from the SDK still sets the real end state.
"""

import logging
from collections import defaultdict
from datetime import UTC, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from analytics.scheduling import schedule_rollups
from sessions.models import EndState, Session

logger = logging.getLogger(__name__)

CHUNK = 1000


def silence_reason(timeout: int) -> str:
    return (
        f"No activity for over {timeout} seconds: the session went silent without being ended "
        "(the agent process probably exited or was killed before calling end_session)."
    )


def expire_silent_sessions(*, timeout: int | None = None) -> int:
    """End every silent running session; returns how many were ended."""
    timeout = settings.SESSION_INACTIVITY_TIMEOUT if timeout is None else timeout
    reason = silence_reason(timeout)
    ended = 0
    while True:
        cutoff = timezone.now() - timedelta(seconds=timeout)
        # The partial index session_running_last_seen serves this look-up.
        candidates = list(
            Session.objects.filter(end_state__isnull=True, last_seen_at__lt=cutoff)
            .order_by("last_seen_at")
            .values_list("id", "project_id", "init_timestamp")[:CHUNK]
        )
        if not candidates:
            break
        # The conditions are repeated in the UPDATE itself: a session that received a request
        # (or was ended by its SDK) since the look-up no longer matches and is left alone.
        count = Session.objects.filter(
            id__in=[c[0] for c in candidates], end_state__isnull=True, last_seen_at__lt=cutoff
        ).update(
            end_state=EndState.INDETERMINATE,
            end_timestamp=F("last_seen_at"),
            end_state_reason=reason,
        )
        ended += count
        days = defaultdict(set)
        for _, project_id, started in candidates:
            days[project_id].add(started.astimezone(UTC).date())
        for project_id, project_days in days.items():
            schedule_rollups(project_id, project_days)
        if len(candidates) < CHUNK:
            break
    if ended:
        logger.info("ended %d silent session(s) as Indeterminate", ended)
    return ended
