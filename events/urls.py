from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

from events import views

urlpatterns = [
    path("create_session", views.CreateSessionView.as_view(), name="v2-create-session"),
    path("update_session", views.UpdateSessionView.as_view(), name="v2-update-session"),
    path("create_events", views.CreateEventsView.as_view(), name="v2-create-events"),
    path("create_agent", views.CreateAgentView.as_view(), name="v2-create-agent"),
    path("reauthorize_jwt", views.ReauthorizeView.as_view(), name="v2-reauthorize-jwt"),
    path("developer_errors", views.DeveloperErrorsView.as_view(), name="v2-developer-errors"),
    path("sessions", views.SessionListView.as_view(), name="v2-sessions"),
    path(
        "sessions/<uuid:session_id>/stats",
        views.SessionStatsView.as_view(),
        name="v2-session-stats",
    ),
    path(
        "sessions/<uuid:session_id>/export",
        views.SessionExportView.as_view(),
        name="v2-session-export",
    ),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="v2-openapi"),
    path("docs", SpectacularRedocView.as_view(url_name="v2-openapi"), name="v2-docs"),
]
