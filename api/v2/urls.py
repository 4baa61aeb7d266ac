from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

import agentops_site.converters  # noqa: F401  (registers <sid:...>)
from api.v2 import agents, developer_errors, events, sessions

urlpatterns = [
    path("create_session", sessions.CreateSessionView.as_view(), name="v2-create-session"),
    path("update_session", sessions.UpdateSessionView.as_view(), name="v2-update-session"),
    path("reauthorize_jwt", sessions.ReauthorizeView.as_view(), name="v2-reauthorize-jwt"),
    path("sessions", sessions.SessionListView.as_view(), name="v2-sessions"),
    path(
        "sessions/<sid:session_id>/stats",
        sessions.SessionStatsView.as_view(),
        name="v2-session-stats",
    ),
    path(
        "sessions/<sid:session_id>/export",
        sessions.SessionExportView.as_view(),
        name="v2-session-export",
    ),
    path("create_events", events.CreateEventsView.as_view(), name="v2-create-events"),
    path("create_agent", agents.CreateAgentView.as_view(), name="v2-create-agent"),
    path(
        "developer_errors",
        developer_errors.DeveloperErrorsView.as_view(),
        name="v2-developer-errors",
    ),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="v2-openapi"),
    path("docs", SpectacularRedocView.as_view(url_name="v2-openapi"), name="v2-docs"),
]
