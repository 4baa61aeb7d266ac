"""Who may see and manage a project: the one permission helper every dashboard view calls."""

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from projects.models import Membership, Project


def get_project_for_user(
    request: HttpRequest, slug: str, *, owner: bool = False
) -> tuple[Project, Membership]:
    """The project with `slug` and the signed-in user's membership of it.

    A project the user is not a member of is a 404, exactly like a slug that does not exist, so
    the dashboard never confirms another team's project names. Owner-only actions asked for by a
    plain member are a 404 too: one rule, and nothing about the settings page leaks.
    """
    membership = get_object_or_404(
        Membership.objects.select_related("project"),
        project__slug=slug,
        user_id=request.user.pk,
    )
    if owner and membership.role != Membership.Role.OWNER:
        raise Http404("Only the project's owners manage its settings.")
    return membership.project, membership
