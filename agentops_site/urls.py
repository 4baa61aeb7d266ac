from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from agentops_site.health import healthz
from dashboard.views import drilldown
from sessions.views import session_by_trace, session_permalink

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("sessions/<uuid:session_id>", session_permalink, name="session_permalink"),
    # agentops 0.4 prints {AGENTOPS_APP_URL}/sessions?trace_id=<32 hex>.
    path("sessions", session_by_trace, name="session_by_trace"),
    # The official 0.3 SDK prints <its app host>/drilldown?session_id=<id> for every session.
    path("drilldown", drilldown, name="drilldown"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("dashboard.urls")),
]
