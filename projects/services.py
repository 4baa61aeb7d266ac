from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from projects.auth import LAST_USED_RESOLUTION
from projects.keys import IssuedKey, issue_key
from projects.models import ApiKey, Membership, Project


@transaction.atomic
def create_project_with_key(
    *, name: str, owner=None, label: str = ""
) -> tuple[Project, bool, IssuedKey]:
    """The project named `name` (created if missing), with `owner` as owner and a new key."""
    name = name.strip()
    if not name:
        raise ValueError("A project needs a name.")
    project = Project.objects.filter(name=name).first()
    created = project is None
    if created:
        project = Project.objects.create(name=name)
    if owner is not None:
        Membership.objects.update_or_create(
            project=project, user=owner, defaults={"role": Membership.Role.OWNER}
        )
    return project, created, issue_key(project=project, label=label, created_by=owner)


class MembershipError(ValueError):
    """A membership change that would leave a project without an owner."""


class ProjectNameTaken(ValueError):
    """The owner already owns a project of that name."""


def _refuse_taken_name(name: str, owner_ids, *, exclude=None) -> None:
    """ProjectNameTaken when one of these owners owns another project named `name` (compared
    case-insensitively: "Alpha" and "alpha" would be confused in a menu). Two teams may still
    pick the same name. The callers lock the owners' user rows first, so two requests creating
    the same name at once are serialised."""
    from django.contrib.auth import get_user_model

    list(get_user_model().objects.select_for_update().filter(pk__in=owner_ids).values("pk"))
    taken = Project.objects.filter(
        name__iexact=name,
        memberships__user_id__in=owner_ids,
        memberships__role=Membership.Role.OWNER,
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ProjectNameTaken(f"You already own a project named {name!r}; pick another name.")


@transaction.atomic
def create_project(*, name: str, owner) -> Project:
    """A new project owned by `owner`. Names are unique per owner (ProjectNameTaken)."""
    name = name.strip()
    if not name:
        raise ValueError("A project needs a name.")
    _refuse_taken_name(name, [owner.pk])
    project = Project.objects.create(name=name)
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    return project


@transaction.atomic
def rename_project(*, project: Project, name: str) -> Project:
    """Renames; the slug (and so every shared URL) stays as it was. ProjectNameTaken when one
    of its owners already owns another project of that name."""
    name = name.strip()
    if not name:
        raise ValueError("A project needs a name.")
    owners = Membership.objects.filter(project=project, role=Membership.Role.OWNER)
    _refuse_taken_name(name, list(owners.values_list("user_id", flat=True)), exclude=project)
    project.name = name
    project.save(update_fields=["name"])
    return project


@transaction.atomic
def delete_project(*, project: Project) -> dict[str, int]:
    """Delete the project and everything it holds: sessions, events, tags, agents, keys,
    members, rollups, uploaded logs. {"sessions": n, "events": n} deleted. The events go
    first in one DELETE (they depend on nothing), so the cascade never loads them."""
    from events.models import Event
    from sessions.models import Session

    sessions = Session.objects.filter(project=project).count()
    events, _ = Event.objects.filter(project=project).delete()
    project.delete()
    return {"sessions": sessions, "events": events}


@transaction.atomic
def set_member(*, project: Project, user, role: str) -> Membership:
    """Adds `user` with `role`, or changes the role of an existing member."""
    membership, created = Membership.objects.select_for_update().get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        if role != Membership.Role.OWNER:
            _ensure_other_owner(project, membership)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(*, project: Project, membership: Membership) -> None:
    _ensure_other_owner(project, membership)
    membership.delete()


def _ensure_other_owner(project: Project, membership: Membership) -> None:
    # Locking the owners' rows serialises two owners demoting each other at the same moment.
    owners = list(
        Membership.objects.select_for_update()
        .filter(project=project, role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
        .values_list("pk", flat=True)
    )
    if membership.role == Membership.Role.OWNER and not owners:
        raise MembershipError("A project keeps at least one owner: make someone else owner first.")


# A key that fetched tokens and then sent no span for this long is shown with a hint on the
# project's settings page (an agent whose AGENTOPS_EXPORTER_ENDPOINT still points at AgentOps).
NO_SPANS_AFTER_TOKEN = timedelta(minutes=3)


def record_token_issue(api_key: ApiKey, now: datetime) -> None:
    """Note that the key fetched an ingest token (and was used): one UPDATE, at most once a
    minute per key, the same resolution as last_used_at."""
    cutoff = now - LAST_USED_RESOLUTION
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_token_at__isnull=True) | Q(last_token_at__lt=cutoff)
    ).update(last_token_at=now, last_used_at=now)


def record_span_arrival(key_id, last_used_at, last_span_at, last_token_at, now: datetime) -> None:
    """Note that spans arrived with the key (and that it was used): one UPDATE, only when a
    minute has passed since the last note or a token was fetched since (so the project page's
    "tokens but no spans" hint clears at once). The Postgres write does the same in its own
    statement (events/storage/postgres.py `key_use`)."""
    cutoff = now - LAST_USED_RESOLUTION
    if (
        last_used_at is None
        or last_used_at < cutoff
        or last_span_at is None
        or last_span_at < cutoff
        or (last_token_at is not None and last_span_at < last_token_at)
    ):
        ApiKey.objects.filter(pk=key_id).update(last_used_at=now, last_span_at=now)


def keys_fetching_tokens_without_spans(keys, now: datetime) -> list[ApiKey]:
    """Of these keys, those that fetched a token over NO_SPANS_AFTER_TOKEN ago and have sent no
    span since: tokens come from AGENTOPS_API_ENDPOINT, spans go to AGENTOPS_EXPORTER_ENDPOINT,
    and a user who set only the first sends every span to AgentOps' cloud."""
    return [
        k
        for k in keys
        if k.revoked_at is None
        and k.last_token_at is not None
        and k.last_token_at < now - NO_SPANS_AFTER_TOKEN
        and (k.last_span_at is None or k.last_span_at < k.last_token_at)
    ]
