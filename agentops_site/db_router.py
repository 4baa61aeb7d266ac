"""Which database a query goes to: the primary, or a streaming replica for dashboard reads.

Without DATABASE_REPLICA_URL there is no "replica" alias and every query goes to "default", as
before (SQLite included). With it, reads leave the primary only where a view asked for it:

- `@replica_reads` on a dashboard or export view marks the request (a context variable), and
  `ReplicaRouter.db_for_read` sends that request's ORM reads to "replica". Routing by marker and
  not by model, because ingest, the reaper and the rollups read the same Session and Event
  tables and must read what they have just written (and what other writers committed).
- Everything else reads the primary: API views (ingest, stats and the v2 export the SDK calls
  right after ending a session), Celery tasks, management commands, and a marked request's
  reads of the login tables (auth, Django sessions, django-axes, admin, contenttypes), so that a
  login is never lost to lag on the page it redirects to.
- Writes always go to the primary, wherever they are made.
- Read-your-writes: a signed-in user's state-changing request (POST, ...) stores the primary's
  WAL position after it in their Django session (`ReadYourWritesMiddleware`). Their next marked
  request reads the primary until the replica has replayed up to that position, then the marker
  is dropped. So a project, key or member one has just created is on the page the form
  redirects to, while telemetry written by SDKs shows up on the dashboard when the replica has
  replayed it (milliseconds on one machine: bench/replica_lag.py, docs/scaling.md).
- A replica that cannot be reached when a marked request starts is skipped: that request reads
  the primary (and the failure is logged), so a replica outage slows the dashboard, never breaks it.
- A page read from a replica that has received changes it has not applied for more than
  LAG_NOTICE_SECONDS says so above its content, with the time of the last change it applied
  (`replica_applied_at` in templates, from the `context` processor): a user looking for a session
  that just ended knows why it is not there yet.

The WAL functions are PostgreSQL's (https://www.postgresql.org/docs/15/functions-admin.html,
pg_current_wal_insert_lsn / pg_last_wal_replay_lsn).
"""

import contextvars
import functools
import logging
from collections.abc import Callable, Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
# Tables a login depends on: read from the primary even inside a replica-read request.
PRIMARY_ONLY_APPS = frozenset({"auth", "sessions", "admin", "contenttypes", "axes"})
# Key in the user's Django session: the primary's WAL position after their last write.
WROTE_AT_LSN = "primary_lsn"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# A replica behind by less than this is not worth a notice (normal streaming: milliseconds).
LAG_NOTICE_SECONDS = 2
# The time of the last transaction the replica applied, when it has received WAL it has not
# applied yet and that transaction is older than LAG_NOTICE_SECONDS; else NULL.
_BEHIND_SINCE_SQL = """
    SELECT pg_last_xact_replay_timestamp() FROM (SELECT 1) AS one
    WHERE pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
      AND pg_last_xact_replay_timestamp() < clock_timestamp() - make_interval(secs => %s)
"""

_reads_on_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reads_on_replica", default=False
)


def replica_configured() -> bool:
    return REPLICA in connections.settings


class ReplicaRouter:
    """Django database router (settings.DATABASE_ROUTERS) for the rules in this module's doc."""

    def db_for_read(self, model, **hints) -> str:
        if _reads_on_replica.get() and model._meta.app_label not in PRIMARY_ONLY_APPS:
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # Both aliases hold the same rows: an object read from the replica may be related to,
        # and saved through, the primary.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        # A replica is read-only and receives the schema by replication.
        return db == DEFAULT_DB_ALIAS


def reading_replica() -> bool:
    """True while the current request's reads go to the replica."""
    return _reads_on_replica.get()


def _replica_has_replayed(lsn: str) -> bool:
    """Whether the replica has replayed the primary's WAL up to `lsn` ('16/B374D848' form)."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [lsn])
        return cursor.fetchone()[0]


def _replica_usable(request: HttpRequest) -> bool:
    """Whether this request may read the replica: it is configured and reachable, and it has
    replayed this user's last write (if any)."""
    if not replica_configured():
        return False
    session = getattr(request, "session", None)
    lsn = session.get(WROTE_AT_LSN) if session is not None else None
    try:
        if lsn is not None:
            if not _replica_has_replayed(lsn):
                return False
            del session[WROTE_AT_LSN]
        # Opening a cursor runs the once-a-request health check of a kept connection
        # (CONN_HEALTH_CHECKS), so a replica that went away is found here, not mid-page.
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(_BEHIND_SINCE_SQL, [LAG_NOTICE_SECONDS])
            row = cursor.fetchone()
        request.replica_applied_at = row[0] if row else None
        return True
    except DatabaseError:
        logger.warning("replica unavailable: this request reads the primary", exc_info=True)
        connections[REPLICA].close()
        return False


def _on_replica(iterable: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed body, each chunk produced with reads on the replica (the rows of a streamed
    export are read while the server sends them, after the view has returned). The marker is set
    around each step only, so it never leaks into whatever runs between two chunks."""
    iterator = iter(iterable)
    try:
        while True:
            token = _reads_on_replica.set(True)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                _reads_on_replica.reset(token)
            yield chunk
    finally:
        # A client that hangs up mid-download closes this generator: close the body's too, now,
        # so its transaction on the replica ends with the request and not at garbage collection.
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def replica_reads(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """View decorator: the view's database reads (and a streamed body's) go to the replica
    when one is configured, reachable and has caught up with this user's own last write;
    otherwise to the primary. For read-only views: their writes would go to the primary anyway,
    but a view that writes and then reads must not use this."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _replica_usable(request):
            return view(request, *args, **kwargs)
        token = _reads_on_replica.set(True)
        try:
            response = view(request, *args, **kwargs)
        finally:
            _reads_on_replica.reset(token)
        if isinstance(response, StreamingHttpResponse):
            response.streaming_content = _on_replica(response.streaming_content)
        return response

    return wrapped


def context(request: HttpRequest) -> dict:
    """Template context processor: `replica_applied_at`, the (aware, UTC) time of the last change
    a lagging replica applied when this page was read from it, else None."""
    return {"replica_applied_at": getattr(request, "replica_applied_at", None)}


class ReadYourWritesMiddleware:
    """After a signed-in user's state-changing request, note the primary's WAL position in their
    session (see the module doc). Does nothing without a replica, and costs one query per such
    request with one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method not in SAFE_METHODS
            and replica_configured()
            and getattr(request, "user", None) is not None
            and request.user.is_authenticated
            and response.status_code < 500
        ):
            with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
                # The insert position, not pg_current_wal_lsn() (the write position): with
                # synchronous_commit=off the latter can be short of this request's own commit.
                cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
                request.session[WROTE_AT_LSN] = cursor.fetchone()[0]
        return response
