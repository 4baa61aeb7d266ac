import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops_site.settings")
application = get_wsgi_application()

# Import every view (and what they import: the price table, DRF, ...) now rather than on the
# first request, then move the ~120k objects of a loaded process out of the garbage collector's
# reach: a full collection walked them all, a ~70 ms pause landing on whichever request
# triggered it (the tail of bench/ingest.py's latencies). They live as long as the process.
get_resolver().url_patterns  # noqa: B018 -- the property imports the URLconf
gc.freeze()
