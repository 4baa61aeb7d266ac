"""Dashboard pages. Each view: permission helper, one selector call, one context, render.

Every page makes a fixed number of queries whatever the page size (pinned in
tests/test_dashboard_queries.py)."""

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agentops_site.db_router import replica_reads
from dashboard import exports, figures, payloads, trace
from dashboard.forms import (
    EventFilterForm,
    KeyCreateForm,
    MemberAddForm,
    ProjectDeleteForm,
    ProjectNameForm,
    RangeForm,
    SessionFilterForm,
)
from dashboard.overview import build_overview, parse_range
from dashboard.permissions import get_project_for_user
from events import otlp_queue
from events.export import stream_export
from events.models import Event, EventType
from projects import services
from projects.keys import issue_key, revoke_key
from projects.models import ApiKey, Membership
from sessions.models import Protocol, Session
from sessions.queries import (
    SORTS,
    event_number,
    events_span,
    filter_sessions,
    llm_models,
    session_events_page,
    session_page,
    tag_stats,
    tags_with_counts,
)
from sessions.totals import event_count
from sessions.uploads import trace_logs

SESSIONS_PER_PAGE = 50
EVENTS_PER_PAGE = 50
# A waterfall beyond this many events shows the first ones and says so.
WATERFALL_MAX_EVENTS = 50_000
VIDEO_EXTENSIONS = (".mp4", ".webm", ".ogg", ".ogv", ".mov", ".m4v")


def _base_context(request: HttpRequest, project, membership, section: str) -> dict:
    return {
        "project": project,
        "membership": membership,
        "is_owner": membership.role == Membership.Role.OWNER,
        "section": section,
        # The header's project switcher.
        "user_projects": list(request.user.projects.order_by("name").values("name", "slug")),
    }


@login_required
def home(request):
    projects = list(request.user.projects.order_by("name"))
    if len(projects) >= 1 and "all" not in request.GET:
        return redirect("dashboard:overview", slug=projects[0].slug)
    return render(
        request,
        "dashboard/home.html",
        {
            "projects": projects,
            "user_projects": [{"name": p.name, "slug": p.slug} for p in projects],
        },
    )


@login_required
@require_GET
def switch_project(request):
    slug = request.GET.get("project", "")
    if "\x00" in slug:  # no slug has one, and Postgres refuses to compare text holding one
        raise Http404("No such project.")
    project, _ = get_project_for_user(request, slug)
    return redirect("dashboard:overview", slug=project.slug)


@login_required
def project_create(request):
    form = ProjectNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.create_project(name=form.cleaned_data["name"], owner=request.user)
        except services.ProjectNameTaken as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(
                request, f"Created {project.name}. Create an API key to start sending."
            )
            return redirect("dashboard:settings", slug=project.slug)
    user_projects = list(request.user.projects.order_by("name").values("name", "slug"))
    return render(
        request, "dashboard/project_new.html", {"form": form, "user_projects": user_projects}
    )


@require_GET
def drilldown(request):
    """/drilldown?session_id=<uuid>: the link the official 0.3 SDK prints for a session (its host
    is app.agentops.ai; a user swaps in ours). Redirects to the session's permalink, which asks
    for a login and finds the project; a missing or malformed id is a 404."""
    try:
        session_id = uuid.UUID(request.GET.get("session_id", "").strip())
    except ValueError:
        raise Http404("The link names no session: /drilldown?session_id=<session id>.") from None
    return redirect("session_permalink", session_id=session_id)


# --- Overview -------------------------------------------------------------------------------


@replica_reads
@login_required
@require_GET
def overview(request, slug):
    project, membership = get_project_for_user(request, slug)
    form = RangeForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    now = timezone.now()
    time_range = parse_range(data.get("range"), data.get("start"), data.get("end"), now=now)
    context = _base_context(request, project, membership, "overview")
    has_sessions = Session.objects.filter(project=project).exists()
    context.update(
        form=form,
        range=time_range,
        has_sessions=has_sessions,
        keys_without_spans=services.keys_fetching_tokens_without_spans(
            ApiKey.objects.filter(project=project, last_token_at__isnull=False), now
        ),
        otlp_backlog=otlp_queue.backlog(project.id, now=now),
    )
    if has_sessions:
        ov = build_overview(project=project, time_range=time_range, now=now)
        context.update(
            ov=ov,
            totals=ov.totals,
            charts={
                "chart-sessions": figures.sessions_by_state(ov.buckets),
                "chart-cost": figures.cost_per_bucket(ov.buckets),
                "chart-models": figures.by_model(ov.models),
                "chart-errors": figures.error_rate(ov.buckets),
            },
            since_param=time_range.start.date().isoformat(),
        )
    return render(request, "dashboard/overview.html", context)


# --- Sessions -------------------------------------------------------------------------------


@replica_reads
@login_required
@require_GET
def session_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    form = SessionFilterForm(request.GET)
    filters = form.filters()
    page = session_page(
        project=project,
        filters=filters,
        sort=form.sort_key,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        limit=SESSIONS_PER_PAGE,
    )
    context = _base_context(request, project, membership, "sessions")
    context.update(
        form=form,
        filters=filters,
        filter_errors=form.filter_errors,
        page=page,
        sorts=SORTS.values(),
        models=llm_models(project=project, recent_since=timezone.now() - timedelta(days=1)),
    )
    return render(request, "dashboard/sessions.html", context)


@replica_reads
@login_required
@require_GET
def session_list_export(request, slug, fmt):
    project, _ = get_project_for_user(request, slug)
    if fmt not in ("csv", "jsonl"):
        raise Http404("Download the list as .csv or .jsonl.")
    filters = SessionFilterForm(request.GET).filters()
    sessions = filter_sessions(project=project, filters=filters)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(
            exports.sessions_csv(sessions), content_type="text/csv; charset=utf-8"
        )
    else:
        response = StreamingHttpResponse(
            exports.sessions_jsonl(sessions), content_type="application/x-ndjson"
        )
    response["Content-Disposition"] = (
        f'attachment; filename="{project.slug}-sessions-{stamp}.{fmt}"'
    )
    return response


def _session_for(request, slug, session_id):
    project, membership = get_project_for_user(request, slug)
    session = get_object_or_404(
        Session.objects.prefetch_related("tags"), project=project, pk=session_id
    )
    return project, membership, session


def _safe_url(url: str) -> str | None:
    """Only http(s) URLs become links or players: a javascript: URL from an agent never does."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _event_view(event: Event, triggers: dict, *, number: int | None, seen: dict) -> dict:
    """What the page shows for one event (the list and the trace view's detail); all text is
    escaped by the template except prompts and completions, which payloads.render_markdown
    sanitises. `seen`: system prompts already shown on this page (payloads.message_views)."""
    p = event.payload if isinstance(event.payload, dict) else {}
    item = {"event": event, "duration": None, "number": number}
    if event.end_timestamp:
        item["duration"] = max((event.end_timestamp - event.init_timestamp).total_seconds(), 0)
    repaired = p.get("repaired")
    if isinstance(repaired, dict):  # what ingest changed (events/repairs.py), path -> messages
        item["repaired"] = [
            (str(path) or "event", "; ".join(map(str, messages)))
            for path, messages in repaired.items()
            if isinstance(messages, list)
        ]
    if event.event_type == EventType.LLM:
        # Parts of the prompt and completion counts (events/validation.py _llm_usage).
        item["token_parts"] = [
            (p[key], label)
            for key, label in (
                ("cache_read_tokens", "cache read"),
                ("cache_write_tokens", "cache write"),
                ("reasoning_tokens", "reasoning"),
            )
            if type(p.get(key)) is int and p[key] > 0
        ]
        prompt = payloads.messages(p.get("prompt"), default_role="user")
        completion = payloads.messages(p.get("completion"), default_role="assistant")
        item["prompt"] = payloads.message_views(prompt, seen=seen, number=number)
        item["completion"] = payloads.message_views(completion, seen={}, number=None)
        item["thread_id"] = p.get("thread_id")
    elif event.event_type in (EventType.TOOL, EventType.ACTION, EventType.API):
        for key in ("params", "returns", "logs"):
            text, cut = payloads.clip(payloads.pretty_json(p.get(key)))
            item[key], item[key + "_cut"] = text, cut
            item[key + "_long"] = payloads.is_long(text)
        item["screenshot"] = payloads.image_url(p.get("screenshot"))
    elif event.event_type == EventType.ERROR:
        item["code"] = p.get("code")
        item["details"], _ = payloads.clip(payloads.pretty_json(p.get("details")))
        logs, item["logs_cut"] = payloads.clip(payloads.pretty_json(p.get("logs")))
        item["logs"] = logs
        item["logs_head"] = payloads.last_line(logs)
        if event.trigger_event_id:
            item["trigger"] = triggers.get(event.trigger_event_id)
            item["trigger_id"] = event.trigger_event_id
            item["trigger_type"] = p.get("trigger_event_type")
    return item


LOG_SHOWN_CHARS = 200_000


def _log_view(log) -> dict:
    """An uploaded log as the page shows it: the first LOG_SHOWN_CHARS characters."""
    return {
        "received_at": log.received_at,
        "size": log.size,
        "text": log.body[:LOG_SHOWN_CHARS],
        "cut": len(log.body) > LOG_SHOWN_CHARS,
        "shown": LOG_SHOWN_CHARS,
    }


@replica_reads
@login_required
@require_GET
def session_detail(request, slug, session_id):
    project, membership, session = _session_for(request, slug, session_id)
    form = EventFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    page = session_events_page(
        session,
        event_type=data.get("type") or "",
        page_no=data.get("page") or 1,
        focus=data.get("focus"),
        per_page=EVENTS_PER_PAGE,
    )
    video = _safe_url(session.video)
    seen: dict[str, int] = {}
    events = [
        _event_view(e, page.triggers, number=page.numbers.get(e.id), seen=seen) for e in page.events
    ]
    logs = []
    if session.protocol == Protocol.OTLP:
        # Only the 0.4 SDK uploads logs, keyed by its trace: a v2 session has none to look up.
        logs = [_log_view(log) for log in trace_logs(project_id=project.pk, session_id=session.id)]
    span = events_span(session, tolerance=timedelta(seconds=trace.SKEW_TOLERANCE_S))
    reason = session.end_state_reason or ""
    context = _base_context(request, project, membership, "sessions")
    context.update(
        session=session,
        tags=sorted(t.name for t in session.tags.all()),
        events=events,
        logs=logs,
        metadata=payloads.pretty_json(session.metadata) if session.metadata else "",
        event_type=page.event_type,
        type_choices=[("", "All"), *list(EventType.choices)],
        counts=page.counts,
        event_total=page.counts[""],
        page_no=page.page_no,
        pages=page.pages,
        focus=data.get("focus"),
        video=video,
        video_is_file=bool(video and urlsplit(video).path.lower().endswith(VIDEO_EXTENSIONS)),
        host_env=payloads.pretty_json(session.host_env) if session.host_env else "",
        host_summary=payloads.host_summary(session.host_env),
        first_offset=page.offset,
        events_span=span,
        events_seconds=(span.last - span.first).total_seconds() if span.first else None,
        elapsed=(timezone.now() - session.init_timestamp).total_seconds(),
        reason_multiline="\n" in reason.strip(),
    )
    return render(request, "dashboard/session_detail.html", context)


TREE_PAGE = 200  # rows per request of the trace view
TREE_MAX_EVENTS = 50_000  # a bigger session's tree holds its first ones and says so


def _json(data, status: int = 200) -> HttpResponse:
    # orjson: several times faster than JsonResponse's encoder on a 10k-event figure.
    return HttpResponse(orjson.dumps(data), content_type="application/json", status=status)


@replica_reads
@login_required
@require_GET
def session_tree(request, slug, session_id):
    """The trace view's rows as JSON, a page at a time: `?parent=<key>&offset=N` for a node's
    children (the top level without parent), `?focus=<event id>` for the pages that show that
    event with its ancestors expanded. Shapes: dashboard/trace.py row_json/level."""
    _, _, session = _session_for(request, slug, session_id)
    try:
        offset = max(0, int(request.GET.get("offset") or 0))
    except ValueError:
        return _json({"message": "offset must be a whole number."}, 400)
    tree = trace.session_tree(session, limit=TREE_MAX_EVENTS, now=timezone.now().timestamp())
    focus, parent = request.GET.get("focus"), request.GET.get("parent")
    answer = {
        "axis": trace.axis(tree),
        "skewed": tree.skewed,
        "running": session.end_timestamp is None,
        "truncated": event_count(session) > len(tree.nodes) and len(tree.nodes) >= TREE_MAX_EVENTS,
    }
    if focus:
        if focus not in tree.nodes:
            return _json({"message": "No such event in this session."}, 404)
        answer["levels"] = trace.focus_levels(tree, focus, limit=TREE_PAGE)
        answer["focus"] = focus
    elif parent:
        if parent not in tree.nodes:
            return _json({"message": "No such row in this session."}, 404)
        answer["levels"] = [trace.level(tree, parent, offset=offset, limit=TREE_PAGE)]
    else:
        answer["levels"] = [trace.level(tree, None, offset=offset, limit=TREE_PAGE)]
    if not parent:
        # Every error of the session, so they stay one click away whatever is expanded.
        answer["errors"] = [
            {"key": n.key, "n": n.number, "name": n.name}
            for n in tree.nodes.values()
            if n.kind == "errors"
        ][:500]
    return _json(answer)


@replica_reads
@login_required
@require_GET
def session_event(request, slug, session_id, event_id):
    """One event's detail (an HTML fragment) for the trace view's side panel."""
    _, _, session = _session_for(request, slug, session_id)
    event = get_object_or_404(Event, session=session, pk=event_id)
    triggers = {}
    if event.trigger_event_id:
        triggers = {
            t.id: t for t in Event.objects.filter(session=session, pk=event.trigger_event_id)
        }
    number = event_number(session, event)
    item = _event_view(event, triggers, number=number, seen={})
    return render(request, "dashboard/_event.html", {"item": item, "e": event, "detail": True})


@replica_reads
@login_required
@require_GET
def session_status(request, slug, session_id):
    """What a running session's page polls: {"running", "elapsed_s", "events", "end_state"}."""
    _, _, session = _session_for(request, slug, session_id)
    end = session.end_timestamp or timezone.now()
    return _json(
        {
            "running": session.end_timestamp is None,
            "elapsed_s": round((end - session.init_timestamp).total_seconds(), 3),
            "events": event_count(session),
            "end_state": session.end_state,
        }
    )


@replica_reads
@login_required
@require_GET
def session_timeline(request, slug, session_id):
    """The waterfall figure as JSON, fetched by the page so the HTML stays small at 10k events."""
    _, _, session = _session_for(request, slug, session_id)
    tree = trace.session_tree(session, limit=WATERFALL_MAX_EVENTS, now=timezone.now().timestamp())
    figure = figures.waterfall(tree, session=session)
    figure["truncated"] = event_count(session) > len(tree.nodes) >= WATERFALL_MAX_EVENTS
    return _json(figure)


@replica_reads
@login_required
@require_GET
def session_export_json(request, slug, session_id):
    _, _, session = _session_for(request, slug, session_id)
    tags = sorted(t.name for t in session.tags.all())
    response = StreamingHttpResponse(stream_export(session, tags), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="session-{session.id}.json"'
    return response


@replica_reads
@login_required
@require_GET
def session_events_csv(request, slug, session_id):
    _, _, session = _session_for(request, slug, session_id)
    response = StreamingHttpResponse(
        exports.events_csv(session), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="session-{session.id}-events.csv"'
    return response


# --- Tags -----------------------------------------------------------------------------------


@replica_reads
@login_required
@require_GET
def tag_list(request, slug):
    project, membership = get_project_for_user(request, slug)
    context = _base_context(request, project, membership, "tags")
    context["tags"] = [tag_stats(t) for t in tags_with_counts(project=project)]
    return render(request, "dashboard/tags.html", context)


# --- Settings (owners) ----------------------------------------------------------------------


def _settings_context(request, project, membership, **extra) -> dict:
    context = _base_context(request, project, membership, "settings")
    context.update(
        keys=list(ApiKey.objects.filter(project=project).select_related("created_by")),
        members=list(
            Membership.objects.filter(project=project)
            .select_related("user")
            .order_by("user__username")
        ),
        key_form=KeyCreateForm(),
        name_form=ProjectNameForm(initial={"name": project.name}),
        delete_form=ProjectDeleteForm(project=project),
        member_form=MemberAddForm(),
    )
    context.update(extra)
    return context


# The session key under which a just-created API key waits for the page that shows it once.
NEW_KEY_SESSION_KEY = "dashboard:new-api-key"


@login_required
@require_GET
def project_settings(request, slug):
    project, membership = get_project_for_user(request, slug, owner=True)
    # Shown once: popped, so a reload (or the back button) shows the key list without it.
    new_key = request.session.pop(NEW_KEY_SESSION_KEY, None)
    if new_key and new_key.get("project") != str(project.pk):
        new_key = None  # created in another project's settings, opened here by hand: drop it
    context = _settings_context(request, project, membership, new_key=new_key)
    response = render(request, "dashboard/settings.html", context)
    if new_key:
        # The page holds a secret: no cache (browser or proxy) may keep a copy.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_create(request, slug):
    """Post/Redirect/Get: the raw key travels to the settings page through the user's session
    (server-side, popped on first display), so reloading that page never mints another key."""
    project, membership = get_project_for_user(request, slug, owner=True)
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        context = _settings_context(request, project, membership, key_form=form)
        return render(request, "dashboard/settings.html", context, status=400)
    issued = issue_key(project=project, label=form.cleaned_data["label"], created_by=request.user)
    request.session[NEW_KEY_SESSION_KEY] = {
        "project": str(project.pk),
        "raw": issued.raw,
        "label": issued.api_key.label,
    }
    return redirect(f"{reverse('dashboard:settings', args=[project.slug])}#new-key")


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request, slug, key_id):
    """GET asks for confirmation; POST revokes."""
    project, membership = get_project_for_user(request, slug, owner=True)
    key = get_object_or_404(ApiKey, project=project, pk=key_id)
    if request.method == "POST":
        revoke_key(key)
        messages.success(request, f"Revoked key {key.prefix}… ({key.label or 'no label'}).")
        return redirect("dashboard:settings", slug=project.slug)
    context = _base_context(request, project, membership, "settings")
    context["key"] = key
    return render(request, "dashboard/key_revoke.html", context)


@login_required
@require_POST
def project_rename(request, slug):
    project, membership = get_project_for_user(request, slug, owner=True)
    form = ProjectNameForm(request.POST)
    if not form.is_valid():
        context = _settings_context(request, project, membership, name_form=form)
        return render(request, "dashboard/settings.html", context, status=400)
    try:
        services.rename_project(project=project, name=form.cleaned_data["name"])
    except services.ProjectNameTaken as exc:
        form.add_error("name", str(exc))
        context = _settings_context(request, project, membership, name_form=form)
        return render(request, "dashboard/settings.html", context, status=400)
    messages.success(request, f"Renamed the project to {project.name}.")
    return redirect("dashboard:settings", slug=project.slug)


@login_required
@require_POST
def project_delete(request, slug):
    """Owners only; the POST must carry the project's name typed again (`confirm`)."""
    project, membership = get_project_for_user(request, slug, owner=True)
    form = ProjectDeleteForm(request.POST, project=project)
    if not form.is_valid():
        context = _settings_context(request, project, membership, delete_form=form)
        return render(request, "dashboard/settings.html", context, status=400)
    name = project.name
    deleted = services.delete_project(project=project)
    messages.success(
        request,
        f"Deleted {name}: {_count(deleted['sessions'], 'session')}, "
        f"{_count(deleted['events'], 'event')}, its keys and its rollups.",
    )
    return redirect("dashboard:home")


@login_required
@require_POST
def member_add(request, slug):
    project, membership = get_project_for_user(request, slug, owner=True)
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        context = _settings_context(request, project, membership, member_form=form)
        return render(request, "dashboard/settings.html", context, status=400)
    try:
        services.set_member(
            project=project, user=form.cleaned_data["user"], role=form.cleaned_data["role"]
        )
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}."
        )
    return redirect("dashboard:settings", slug=project.slug)


@login_required
@require_POST
def member_remove(request, slug, membership_id):
    project, _membership = get_project_for_user(request, slug, owner=True)
    target = get_object_or_404(
        Membership.objects.select_related("user"), project=project, pk=membership_id
    )
    try:
        services.remove_member(project=project, membership=target)
    except services.MembershipError as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:settings", slug=project.slug)
    messages.success(request, f"Removed {target.user.username} from {project.name}.")
    if target.user_id == request.user.pk:
        return redirect("dashboard:home")
    return redirect("dashboard:settings", slug=project.slug)


def _count(n: int, noun: str) -> str:
    """'1 session', '2 sessions', '1,200 events'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
