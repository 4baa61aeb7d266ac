import uuid

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


@login_required
def session_by_trace(request):
    """The link agentops 0.4 prints once AGENTOPS_APP_URL points here: /sessions?trace_id=<hex>."""
    try:
        session_id = uuid.UUID(request.GET.get("trace_id", ""))
    except ValueError:
        raise Http404("Give a trace_id: 32 hexadecimal digits.") from None
    return session_permalink(request, session_id)
