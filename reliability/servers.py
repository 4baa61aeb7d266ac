"""Processes the reliability tests own and may stop, kill and restart at will.

- PrivatePostgres: a PostgreSQL cluster of our own (initdb into a temporary directory, a free
  port), so that "Postgres restarted mid-ingest" never disturbs the shared server other test runs
  use. It holds one migrated template database; each test copies it (CREATE DATABASE ...
  TEMPLATE), which takes well under a second.
- Gunicorn: our server as production runs it (sync workers, wsgi), as a subprocess.
- A Celery worker: tests/celery_worker.py's helper is used as is where a test needs one.

Nothing here mocks our own code: every fault is a real process stopped, killed or restarted.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent


def _pg_bin() -> Path:
    """PG_BIN, else the newest Debian-installed PostgreSQL's bin directory."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PYTHON = Path(sys.executable)
GUNICORN = PYTHON.parent / "gunicorn"
TEMPLATE_DB = "agentops_template"
SECRET = "reliability-tests-secret-key-0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # initdb and the server refuse to run as root; the machine's postgres user owns the cluster.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a server or manage.py subprocess: ours, not the calling shell's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DATABASE_URL", "CELERY_", "CACHE_", "SESSION_INACTIVITY", "AUTH_FAILURE", "API_KEY")
        )
    }
    env.update(
        DJANGO_SETTINGS_MODULE="agentops_site.settings",
        SECRET_KEY=SECRET,
        DJANGO_DEBUG="1",
        LOG_LEVEL="WARNING",
    )
    if "CELERY_BROKER_URL" not in extra:
        # These servers start no Celery worker: without a broker URL their tasks run in-process,
        # as before the directory broker became the default (no files left in the checkout's
        # var/broker for someone's `make run` to consume against another database).
        env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    env.update(extra)
    return env


class PrivatePostgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentops-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"
        shutil.chown(self.dir, "postgres", "postgres") if os.geteuid() == 0 else None
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        """fast: roll back open transactions and disconnect everyone, as a restart does."""
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def migrate_template(self) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=base_env(DATABASE_URL=self.url(TEMPLATE_DB)),
            check=True,
            timeout=300,
        )

    def new_database(self) -> str:
        name = f"rel_{uuid.uuid4().hex[:10]}"
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return name

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class StreamingReplica(PrivatePostgres):
    """A hot standby of a PrivatePostgres on a port of its own: pg_basebackup -R copies the
    primary and writes standby.signal and primary_conninfo, so it streams the primary's WAL as
    a production replica does. initdb's pg_hba.conf already trusts replication from loopback,
    and wal_level=replica, max_wal_senders=10 are the defaults.
    https://www.postgresql.org/docs/15/app-pgbasebackup.html
    """

    def __init__(self, primary: PrivatePostgres) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="agentops-pg-replica-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"
        shutil.chown(self.dir, "postgres", "postgres") if os.geteuid() == 0 else None
        _as_postgres(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(self.data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
            timeout=300,
        )
        # A long dashboard read must not be cancelled by the replay of a vacuum on the primary.
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.write("hot_standby_feedback = on\n")
        self.start()

    def replay_paused(self, paused: bool) -> None:
        """Stop (or resume) applying the primary's WAL: the replica keeps receiving it but its
        data stays as it is, which is what a lagging replica looks like to a reader."""
        with self.connect("postgres") as conn:
            conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")

    def wait_caught_up(self, primary: PrivatePostgres, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary had written when called."""
        with primary.connect("postgres") as conn:
            # The insert position: this cluster commits asynchronously, so the write position
            # (pg_current_wal_lsn) can be short of the last commit.
            target = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with self.connect("postgres") as conn:
            while time.monotonic() < deadline:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
                ).fetchone()[0]
                if done:
                    return
                time.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {target} in {timeout} s")


def create_project(database_url: str, name: str = "Reliability") -> str:
    """A project and a fresh API key through manage.py createproject; returns the raw key."""
    out = subprocess.run(
        [str(PYTHON), "manage.py", "createproject", name],
        cwd=ROOT,
        env=base_env(DATABASE_URL=database_url),
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return out.strip().splitlines()[-1].strip()


class Gunicorn:
    """Our server under gunicorn, sync workers, as the Docker image runs it."""

    def __init__(self, *, database_url: str, workers: int = 2, log_dir: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.workers = workers
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self.access_path = log_dir / f"access-{self.port}.log"
        self.env = base_env(
            DATABASE_URL=database_url,
            PUBLIC_URL=self.url,
            # Tests decide per test whether failed checks and key rates are throttled.
            **{"AUTH_FAILURE_LIMIT": "0", **{k: str(v) for k, v in env.items()}},
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(GUNICORN),
                "agentops_site.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--access-logfile",
                str(self.access_path),
                "--access-logformat",
                "access %(m)s %(U)s %(s)s",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"gunicorn not ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def statuses(self) -> dict[str, int]:
        """Responses so far by status code, from the access log."""
        counts: dict[str, int] = {}
        if not self.access_path.exists():
            return counts
        for line in self.access_path.read_text(errors="replace").splitlines():
            if line.startswith("access "):
                status = line.rsplit(" ", 1)[-1]
                counts[status] = counts.get(status, 0) + 1
        return counts

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]

    def worker_rss_kib(self) -> dict[int, int]:
        rss = {}
        for pid in self.worker_pids():
            with contextlib.suppress(FileNotFoundError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss[pid] = int(line.split()[1])
        return rss

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        if self.process is not None:
            self.log.close()
        self.process = None


@contextlib.contextmanager
def gunicorn(**kwargs) -> Iterator[Gunicorn]:
    server = Gunicorn(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
