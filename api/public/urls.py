from django.urls import path

from api.public import views

urlpatterns = [
    path("auth/access_token", views.access_token, name="public-access-token"),
    path("project", views.project, name="public-project"),
    path("traces/<str:trace_id>", views.trace, name="public-trace"),
    path("traces/<str:trace_id>/metrics", views.trace_metrics_view, name="public-trace-metrics"),
    path("spans/<str:span_id>", views.span, name="public-span"),
    path("spans/<str:span_id>/metrics", views.span_metrics_view, name="public-span-metrics"),
]
