"""The broker of the embedded default: Celery messages as files in one directory, no server.

With no CELERY_BROKER_URL, `make run` still runs a real Celery worker and beat (Procfile); they
and the web processes share this directory. It is kombu's filesystem transport with three
changes, each for a failure kombu's own leaves open:

- A message is written under a hidden temporary name and renamed into place once complete, so a
  worker never reads a half-written file (kombu opens the final name, then writes).
- A worker takes a message by renaming it into `processing/` (atomic on one filesystem: two
  workers never take the same file) and deletes it only when the task is acknowledged. Celery
  acknowledges late (settings: CELERY_TASK_ACKS_LATE), so a worker killed mid-task leaves the
  file there; the next worker to start puts it back in the queue (`recover_unacked`), as Redis
  does after its visibility timeout.
- File names start with wall-clock milliseconds (kombu uses the monotonic clock, which restarts
  at boot), so messages queued before a reboot still come first.

Layout under the directory (settings.CELERY_BROKER_DIR):
  `<ms>_<uuid>.<queue>.msg`   queued messages (JSON, kombu's envelope)
  `processing/<same name>`    taken by a worker, not yet acknowledged
  `control/`                  kombu's exchange tables (fanout bindings)
  `worker.lock`               held (flock) by the worker that recovered `processing/`
"""

import contextlib
import fcntl
import os
import time
import uuid
from pathlib import Path

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

PROCESSING = "processing"
# The URL settings give the directory broker (kombu warns when a URL names no host).
URL = "filesystem://localhost/"


def is_directory_broker(broker_url: str | None) -> bool:
    return (broker_url or "").startswith("filesystem:")


def _queue_of(filename: str) -> str | None:
    """The queue a message file belongs to; None for anything else (temporary files start '.')."""
    if filename.startswith(".") or not filename.endswith(".msg"):
        return None
    return filename.partition(".")[2][: -len(".msg")]


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # delivery tag -> the file under processing/ holding that message until it is acked.
        self._taken: dict[str, str] = {}

    @property
    def _folder(self) -> str:
        return self.data_folder_in

    def _put(self, queue, payload, **kwargs):
        name = f"{time.time_ns() // 1_000_000:015d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        temporary = os.path.join(self.data_folder_out, f".{name}.tmp")
        try:
            with open(temporary, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
                # A message the caller was told is queued must survive a power cut.
                os.fsync(f.fileno())
            os.rename(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise filesystem.ChannelError(f"Cannot add {final!r} to the queue") from exc

    def _get(self, queue):
        processing = os.path.join(self._folder, PROCESSING)
        os.makedirs(processing, exist_ok=True)
        for filename in sorted(os.listdir(self._folder)):
            if _queue_of(filename) != queue:
                continue
            taken = os.path.join(processing, filename)
            try:
                os.rename(os.path.join(self._folder, filename), taken)
            except FileNotFoundError:
                continue  # another worker took it first
            with open(taken, "rb") as f:
                payload = loads(bytes_to_str(f.read()))
            tag = payload.get("properties", {}).get("delivery_tag")
            if tag:
                self._taken[tag] = taken
            else:
                os.unlink(taken)
            return payload
        raise filesystem.Empty()

    def _forget(self, delivery_tag) -> None:
        path = self._taken.pop(delivery_tag, None)
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._forget(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        # With requeue, kombu first puts a copy back in the queue (_restore_at_beginning).
        super().basic_reject(delivery_tag, requeue=requeue)
        self._forget(delivery_tag)

    def _restore(self, message):
        # A warm shutdown hands prefetched messages back: the copy goes to the queue, so the
        # taken file must go, or recover_unacked would queue the message a second time.
        super()._restore(message)
        self._forget(message.delivery_tag)

    def _purge(self, queue):
        count = 0
        for filename in os.listdir(self._folder):
            if _queue_of(filename) == queue:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._folder, filename))
                    count += 1
        return count

    def _size(self, queue):
        return sum(1 for f in os.listdir(self._folder) if _queue_of(f) == queue)


class Transport(filesystem.Transport):
    Channel = Channel
    driver_name = "agentops-filesystem"


def transport_options(directory: Path) -> dict:
    """kombu transport options for a broker directory (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "control").mkdir(exist_ok=True)
    (directory / PROCESSING).mkdir(exist_ok=True)
    return {
        "data_folder_in": str(directory),
        "data_folder_out": str(directory),
        "control_folder": str(directory / "control"),
        # Seconds between polls of the directory when the queue is empty.
        "polling_interval": 0.5,
    }


_worker_lock = None


def recover_unacked(directory: Path) -> int:
    """Put messages a dead worker had taken but never acknowledged back in the queue.

    Called when a worker starts. Only the first worker on the directory recovers (it keeps an
    exclusive lock on `worker.lock` for its life): a second worker started beside a live one must
    not requeue the first one's running tasks. Returns how many messages were put back.
    """
    global _worker_lock
    lock = open(directory / "worker.lock", "a")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return 0
    _worker_lock = lock
    processing = directory / PROCESSING
    count = 0
    for path in sorted(processing.glob("*.msg")):
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, directory / path.name)
            count += 1
    return count
