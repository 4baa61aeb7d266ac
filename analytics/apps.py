from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        # Rollups are queued by task name (analytics/scheduling.py imports no task): every process
        # that may run one in place (CELERY_TASK_ALWAYS_EAGER: scripts, tests) must have them
        # registered, not only the worker, whose autodiscovery imports them at start.
        from analytics import tasks  # noqa: F401
