from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect

from sessions.models import Session


@login_required
def session_permalink(request, session_id):
    """The session_url the API hands to SDKs: it carries no project, so find the member's one."""
    session = (
        Session.objects.filter(id=session_id, project__memberships__user=request.user)
        .select_related("project")
        .first()
    )
    if session is None:
        raise Http404("No such session in your projects.")
    return redirect("dashboard:session", slug=session.project.slug, session_id=session.id)
