"""Who may see and manage a project: the one permission helper every dashboard view calls."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from projects.models import Membership, Project


def get_project_for_user(
    request: HttpRequest, slug: str, *, owner: bool = False
) -> tuple[Project, Membership]:
    """The project with `slug` and the signed-in user's membership of it.

    A project the user is not a member of is a 404, exactly like a slug that does not exist, so
    the dashboard never confirms another team's project names. An owner-only page asked for by a
    plain member is a 403 (PermissionDenied): the member already knows the project exists, and
    "not allowed" tells them to ask an owner, where "not found" would look like a broken link.
    """
    membership = get_object_or_404(
        Membership.objects.select_related("project"),
        project__slug=slug,
        user_id=request.user.pk,
    )
    if owner and membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the project's owners manage its settings.")
    return membership.project, membership
