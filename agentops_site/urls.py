from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from agentops_site.errors import api_not_found
from agentops_site.health import healthz
from dashboard.views import drilldown
from sessions.views import session_permalink

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v2/", include("events.urls")),
    re_path(r"^v2/", api_not_found),
    path("sessions/<uuid:session_id>", session_permalink, name="session_permalink"),
    # The official 0.3 SDK prints <its app host>/drilldown?session_id=<id> for every session.
    path("drilldown", drilldown, name="drilldown"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("dashboard.urls")),
]
