from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"

    def ready(self):
        # As analytics/apps.py: the queued OTLP write sends its task by name, and a process that
        # runs it in place (CELERY_TASK_ALWAYS_EAGER) must have it registered.
        from events import tasks  # noqa: F401
