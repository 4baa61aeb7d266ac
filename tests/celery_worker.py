"""A real Celery worker, as a subprocess, on the real Redis broker and the test database.

Worker tests always use Redis at 127.0.0.1:6379 (database BROKER_DB), whatever CELERY_BROKER_URL
says: in-process tasks would prove nothing about acknowledgement, redelivery or commit order.
A missing Redis fails the test; it is never skipped. Every test gets a queue of its own, so
concurrent runs (or another engineer's) on the same Redis never take each other's messages.

Use the `celery_broker` fixture (with `transactional_db`, so the worker sees committed rows), then
`start_worker(celery_broker, tmp_path, **env)` as a context manager.
"""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.db import connection

from agentops_site.celery import app as celery_app
from events.storage import is_postgres

ROOT = Path(__file__).resolve().parent.parent
CELERY = ROOT / ".venv" / "bin" / "celery"
BROKER_DB = 5
BROKER_URL = f"redis://127.0.0.1:6379/{BROKER_DB}"
READY_TIMEOUT = 60


@dataclass
class Broker:
    url: str
    queue: str
    client: redis.Redis

    def queued(self) -> int:
        """Messages waiting in this test's queue (not yet taken by a worker)."""
        return self.client.llen(self.queue)


def worker_database_url() -> str:
    """DATABASE_URL naming the database this test process uses (pytest-django's test db)."""
    s = connection.settings_dict
    if not is_postgres():
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _reset_app_connections() -> None:
    # The app caches its connection pool and its queue declarations (app.amqp); both must be
    # rebuilt after the broker URL or the default queue change. (Closing the old pool would
    # break kombu's process-wide producer pools, which are keyed by URL.)
    celery_app._pool = None
    celery_app.__dict__.pop("amqp", None)


@contextlib.contextmanager
def sending_to(broker_url: str, queue: str = "celery") -> Iterator[None]:
    """This process's Celery app sends (not runs) tasks, to this broker and queue."""
    saved = {
        key: celery_app.conf[key]
        for key in ("broker_url", "broker_transport", "task_always_eager", "task_default_queue")
    }
    saved_env = os.environ.get("CELERY_BROKER_URL")
    celery_app.conf.update(
        broker_url=broker_url,
        # The directory broker (no CELERY_BROKER_URL) names its transport class; a URL's own
        # scheme must choose the transport here.
        broker_transport=None,
        task_always_eager=False,
        task_default_queue=queue,
    )
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    os.environ["CELERY_BROKER_URL"] = broker_url
    _reset_app_connections()
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        celery_app.conf.update(saved)
        _reset_app_connections()


@contextlib.contextmanager
def in_process() -> Iterator[None]:
    """Tasks run in this process at the call site, as with no CELERY_BROKER_URL (the SQLite pass
    of CI), even when this run has a broker configured (the Postgres pass)."""
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = saved


@pytest.fixture
def celery_broker(transactional_db) -> Iterator[Broker]:
    """This test process sends tasks to the real Redis broker, on a queue of its own."""
    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed for the Celery worker tests at {BROKER_URL}: {exc}")
    queue = f"test-{uuid.uuid4().hex[:12]}"
    try:
        with sending_to(BROKER_URL, queue):
            yield Broker(url=BROKER_URL, queue=queue, client=client)
    finally:
        # kombu keeps unacknowledged messages in these keys; drop what this test left.
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, payload in client.hgetall("unacked").items():
            if queue.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        client.close()


class Worker:
    def __init__(self, broker: Broker, log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "DATABASE_URL", "SESSION_INACTIVITY", "DATA_RETENTION"))
        }
        self.env = {
            **base,
            "DJANGO_SETTINGS_MODULE": "agentops_site.settings",
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": broker.url,
            "CELERY_TASK_DEFAULT_QUEUE": broker.queue,
            **env,
        }
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "agentops_site",
                "worker",
                # The solo pool runs tasks in the worker process itself: killing that process
                # really kills the task mid-way, as a crash or an OOM kill would.
                "--pool=solo",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-Q",
                broker.queue,
                "-n",
                f"{broker.queue}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float = 30, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(text) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"worker never logged {text!r} in {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, nothing flushed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@contextlib.contextmanager
def start_worker(broker: Broker, log_dir: Path, **env: str) -> Iterator[Worker]:
    """A worker consuming this test's queue; `env` adds settings (SESSION_INACTIVITY_TIMEOUT=5)."""
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    worker = Worker(broker, log_path, {k: str(v) for k, v in env.items()})
    try:
        worker.wait_for_log(" ready.", timeout=READY_TIMEOUT)
        yield worker
    finally:
        worker.stop()


def eventually(check: Callable[[], bool], *, timeout: float = 30, what: str = "condition") -> None:
    """Poll `check` (which reads the database) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not hold within {timeout} s")
