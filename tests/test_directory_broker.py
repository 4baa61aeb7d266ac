"""The embedded default's broker (no CELERY_BROKER_URL): files in a directory, a real worker.

Ingest hands its rollups to the worker instead of computing them in the request; a burst of
batches for one day queues one message; messages queued while no worker runs wait for it; and a
worker SIGKILLed holding a message leaves it to the next worker, which runs it.
"""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from queue import Empty

import pytest

from agentops_site import broker
from agentops_site.celery import app as celery_app
from analytics.models import DailyRollup
from tests.celery_worker import CELERY, ROOT, _reset_app_connections, worker_database_url
from tests.v2 import event, send, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_dir(tmp_path, transactional_db):
    """This test process sends to a directory broker of its own, as `make run`'s web does."""
    folder = tmp_path / "broker"
    keys = ("broker_url", "broker_transport", "broker_transport_options", "task_always_eager")
    saved = {key: celery_app.conf[key] for key in keys}
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (the
    # Postgres pass of CI sets it to Redis): this process must send to the directory.
    saved_env = os.environ.pop("CELERY_BROKER_URL", None)
    celery_app.conf.update(
        broker_url=broker.URL,
        broker_transport="agentops_site.broker:Transport",
        broker_transport_options=broker.transport_options(folder),
        task_always_eager=False,
    )
    _reset_app_connections()
    try:
        yield folder
    finally:
        if saved_env is not None:
            os.environ["CELERY_BROKER_URL"] = saved_env
        celery_app.conf.update(saved)
        _reset_app_connections()


@contextlib.contextmanager
def worker(folder: Path, log: Path):
    """`make run`'s worker command, on this directory and the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env.update(DATABASE_URL=worker_database_url(), CELERY_BROKER_DIR=str(folder))
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(CELERY), "-A", "agentops_site", "worker", "--loglevel=INFO", "--pool=solo",
             "--without-mingle", "--without-gossip", "-n", f"dir-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: " ready." in log.read_text(errors="replace"), what="worker ready")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def wait_for(check, *, timeout: float = 60, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def queued(folder: Path) -> list[str]:
    return [f for f in os.listdir(folder) if f.endswith(".msg")]


def test_ingest_queues_one_rollup_per_burst_and_the_worker_runs_it(
    broker_dir, client, api_key, project, tmp_path
):
    _, jwt = start(client, api_key)
    for _ in range(5):
        send(client, jwt, [event("tools", name="search")])
    # Nothing was rolled up in the requests; five batches of one day are one queued message.
    assert not DailyRollup.objects.filter(project=project).exists()
    assert len(queued(broker_dir)) == 1
    assert len(os.listdir(broker_dir / "pending")) == 1

    # The message waited for a worker (none ran while it was queued).
    with worker(broker_dir, tmp_path / "worker.log"):
        wait_for(
            lambda: DailyRollup.objects.filter(project=project, events_tools=5).exists(),
            what="the rollup of five tool events",
        )
        wait_for(lambda: not queued(broker_dir / "processing"), what="the acknowledgement")
    assert queued(broker_dir) == []
    # The task released its pending marker before reading, so the next batch queues again.
    assert os.listdir(broker_dir / "pending") == []


def test_a_worker_killed_holding_a_message_leaves_it_to_the_next_worker(
    broker_dir, client, api_key, project, tmp_path
):
    _, jwt = start(client, api_key)
    send(client, jwt, [event("errors", error_type="Boom")])
    log = tmp_path / "worker.log"
    with worker(broker_dir, log) as first:
        # The rollup waits COALESCE_SECONDS (2 s) in the worker, taken but not acknowledged.
        wait_for(lambda: queued(broker_dir / "processing"), what="the worker taking the message")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert not DailyRollup.objects.filter(project=project).exists()
    assert len(queued(broker_dir / "processing")) == 1  # still there, not lost with the worker

    with worker(broker_dir, log):
        wait_for(
            lambda: DailyRollup.objects.filter(project=project, events_errors=1).exists(),
            what="the recovered rollup",
        )
        wait_for(lambda: not queued(broker_dir / "processing"), what="the acknowledgement")
    assert "requeued 1 message(s)" in log.read_text()


def test_a_half_written_message_is_never_read(broker_dir):
    """Writers rename a complete file into place; a file still being written has a hidden
    temporary name, which readers skip (kombu's own transport reads the final name early)."""
    (broker_dir / ".000000000000001_x.celery.msg.tmp").write_bytes(b'{"body": "trunc')
    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        with pytest.raises(Empty):
            channel._get("celery")
        channel._put("celery", {"body": "whole", "properties": {"delivery_tag": "t1"}})
        assert channel._get("celery")["body"] == "whole"
        assert len(queued(broker_dir / "processing")) == 1  # taken, kept until acknowledged
        channel.basic_ack("t1")
        assert queued(broker_dir / "processing") == []
