import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_status() -> str | None:
    """None when the database answers a query, else the reason it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@require_GET
def healthz(request):
    problem = database_status()
    if problem is None:
        return JsonResponse({"status": "ok", "database": "ok"})
    logger.error("health check: database unreachable: %s", problem)
    return JsonResponse(
        {"status": "error", "database": "unreachable", "reason": problem}, status=503
    )
