import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops_site.settings")

app = Celery("agentops_site")
# Every CELERY_* Django setting configures the app; with no broker, tasks run eagerly.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
