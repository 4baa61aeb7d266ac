import gc
import logging
import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentops_site.settings")

app = Celery("agentops_site")
# Every CELERY_* Django setting configures the app (the broker included: with no
# CELERY_BROKER_URL, the directory broker of agentops_site/broker.py).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@worker_init.connect
def _recover_unacknowledged(sender=None, **kwargs) -> None:
    """A worker starting on the directory broker requeues what a killed worker left taken."""
    from agentops_site import broker

    conf = app.conf
    if not broker.is_directory_broker(conf.broker_url):
        return
    count = broker.recover_unacked(Path(conf.broker_transport_options["data_folder_in"]))
    if count:
        logger.warning("requeued %d message(s) a stopped worker had not acknowledged", count)


@worker_process_init.connect  # each prefork child, after the fork
@worker_ready.connect  # the solo and thread pools run tasks in the worker process itself
def _freeze_loaded_objects(sender=None, **kwargs) -> None:
    """Move the loaded process's objects out of the garbage collector's reach, as
    agentops_site/wsgi.py does for the web workers: an OTLP write (events/otlp_queue.py) makes
    many short-lived dicts and lists per span, and the collections they trigger walked Django's
    whole heap each time: 61 -> 47 ms of Python CPU per 512 spans with it (bench/
    otlp_queue_cpu.py, BENCHMARKS.md §5)."""
    gc.freeze()
