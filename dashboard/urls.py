from django.urls import path

import agentops_site.converters  # noqa: F401  (registers <sid:...>)
from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("switch", views.switch_project, name="switch"),
    path("projects/new", views.project_create, name="project_new"),
    path("p/<slug:slug>/", views.overview, name="overview"),
    path("p/<slug:slug>/sessions/", views.session_list, name="sessions"),
    path(
        "p/<slug:slug>/sessions/export.<str:fmt>",
        views.session_list_export,
        name="sessions_export",
    ),
    path("p/<slug:slug>/sessions/<sid:session_id>/", views.session_detail, name="session"),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/timeline.json",
        views.session_timeline,
        name="session_timeline",
    ),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/tree.json",
        views.session_tree,
        name="session_tree",
    ),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/status.json",
        views.session_status,
        name="session_status",
    ),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/events/<uuid:event_id>/",
        views.session_event,
        name="session_event",
    ),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/export.json",
        views.session_export_json,
        name="session_export",
    ),
    path(
        "p/<slug:slug>/sessions/<sid:session_id>/events.csv",
        views.session_events_csv,
        name="session_events_csv",
    ),
    path("p/<slug:slug>/tags/", views.tag_list, name="tags"),
    path("p/<slug:slug>/settings/", views.project_settings, name="settings"),
    path("p/<slug:slug>/settings/keys/new", views.key_create, name="key_create"),
    path("p/<slug:slug>/settings/keys/<uuid:key_id>/revoke", views.key_revoke, name="key_revoke"),
    path("p/<slug:slug>/settings/rename", views.project_rename, name="project_rename"),
    path("p/<slug:slug>/settings/delete", views.project_delete, name="project_delete"),
    path("p/<slug:slug>/settings/members/add", views.member_add, name="member_add"),
    path(
        "p/<slug:slug>/settings/members/<int:membership_id>/remove",
        views.member_remove,
        name="member_remove",
    ),
]
