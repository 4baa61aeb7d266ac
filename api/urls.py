"""Every wire protocol's URLs, mounted at the site root by agentops_site/urls.py."""

from django.urls import include, path, re_path

from agentops_site.errors import api_not_found

urlpatterns = [
    path("v2/", include("api.v2.urls")),
    # Any other /v2/ path answers the API's JSON 404, never the dashboard's HTML page.
    re_path(r"^v2/", api_not_found),
]
