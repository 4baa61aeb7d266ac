"""Every wire protocol's URLs, mounted at the site root by agentops_site/urls.py."""

from django.urls import include, path, re_path

from agentops_site.errors import api_not_found
from api.otlp import traces
from api.v3 import auth
from api.v4 import uploads

# agentops 0.4 joins f"{endpoint}{path}": an endpoint configured with a trailing slash asks for
# //v3/auth/token and //v4/logs/upload/ (shared/protocols/agentops-otlp.md §1), so a leading
# slash too many, and the trailing one, are optional.
urlpatterns = [
    path("v2/", include("api.v2.urls")),
    # Any other /v2/ path answers the API's JSON 404, never the dashboard's HTML page.
    re_path(r"^v2/", api_not_found),
    re_path(r"^(?:/)?v1/traces/?$", traces.export_traces, name="otlp-traces"),
    re_path(r"^(?:/)?v3/auth/token/?$", auth.auth_token, name="v3-auth-token"),
    re_path(r"^(?:/)?v4/logs/upload/?$", uploads.upload_logs, name="v4-logs-upload"),
    re_path(r"^(?:/)?v4/objects/upload/?$", uploads.upload_object, name="v4-objects-upload"),
    re_path(r"^(?:/)?v4/objects/(?P<object_id>[0-9a-f-]{36})$", uploads.get_object, name="v4-obj"),
    path("public/v1/", include("api.public.urls")),
]
