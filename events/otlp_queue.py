"""The queued OTLP write: `POST /v1/traces` answered once the request is durable, stored later.

Why: mapping and writing a 512-span request costs ~0.12 s of CPU (Python, then Postgres, in
sequence), so on a small machine a synchronous write cannot answer within 200 ms once requests
overlap (BENCHMARKS.md §5). The OpenTelemetry Collector and Langfuse v3 answer after a durable
append and process behind it; so do we:

1. `accept` (in the request): `screen_export_request` reads each span's ids and times only and
   refuses what the full decode will refuse, with the same reasons; spans of traces that are
   already another project's sessions are refused too (one indexed query); the inflated body is
   inserted as an `OtlpBatch` row and committed; then one Celery message names the row.
   The answer's `partial_success` lists those refusals.
2. `process_batch` (in the worker): in one transaction, the row is locked, decoded in full,
   written through `events.otlp_ingest.ingest_traces` (the inline write's code) and deleted.
   A crash before commit leaves the row for a redelivery or the sweep; a second run finds it
   gone (or locked, and skips it), and event ids are deterministic anyway: exactly once.
3. `process_pending` (beat, every minute): rows older than SWEEP_AFTER whose message was lost
   (broker down at commit, Redis restarted without persistence).

What changes for a client: a 200 means "durable, will be stored", and the spans appear on the
pages once the worker has written them (tens of milliseconds on an idle server). The few
refusals only the write can find (a trace another project created between accept and write,
an event that fails validation) are recorded on the batch row and shown on the project page,
since the answer has gone. A key revoked after a request was accepted does not lose it: the
write checks the key as of the reception (`received_at`).

`settings.OTLP_WRITE` chooses: "queued" (default) or "inline" (decode, map and write in the
request: read-after-write, the full `partial_success`, ~2x the latency). With Celery in eager
mode there is no worker to hand over to, so the write is inline whatever the setting.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from agentops_site.celery import app as celery_app
from api.otlp.decode import (
    DecodedRequest,
    Limits,
    decode_export_request,
    screen_export_request,
)
from events import storage
from events.models import OtlpBatch
from events.otlp_ingest import FOREIGN_TRACE, TracesResult, ingest_traces, request_limits
from events.spans import session_id_of
from projects.auth import KeyRevoked
from projects.models import ApiKey
from projects.services import record_span_arrival
from sessions.models import Session

logger = logging.getLogger(__name__)

PROCESS_TASK = "events.process_otlp_batch"
# A row this old with no worker on it lost its message: the sweep writes it.
SWEEP_AFTER = timedelta(seconds=30)
# Most waiting batches of one grant written together (see process_batch).
MERGE_BATCHES = 8
# A batch waiting this long means no worker is writing: the project page says so.
STALLED_AFTER = timedelta(minutes=1)
# A batch whose write raised this many times (not for the database being away: Celery retries
# those) is set aside with its error until `manage.py otlp_batches --retry`.
MAX_ATTEMPTS = 5
# How long a written batch with refused spans stays as the project page's record of them.
KEEP_REFUSALS = timedelta(days=7)
CONTENT_TYPES = {"protobuf": "application/x-protobuf", "json": "application/json"}
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def queued(now: datetime | None = None) -> bool:
    """True when `POST /v1/traces` should `accept` rather than write inline: the write is
    queued by configuration, and the queue is keeping up.

    Backpressure: when the oldest waiting batch is older than OTLP_QUEUE_MAX_LAG_SECONDS, the
    workers are not keeping up (a sustained overload, or no worker at all), and a request
    writes inline instead: the queue's delay stays bounded, the senders slow down with their
    answers instead of the data falling minutes behind, and an overloaded server spends its CPU
    on the cheaper path (one decode, no copy; BENCHMARKS.md §5). One index probe per request.
    """
    if settings.OTLP_WRITE != "queued" or celery_app.conf.task_always_eager:
        return False
    oldest = (
        OtlpBatch.objects.filter(done_at__isnull=True, failed_at__isnull=True)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    lag = timedelta(seconds=settings.OTLP_QUEUE_MAX_LAG_SECONDS)
    return oldest is None or oldest >= (now or timezone.now()) - lag


def accept(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    limits: Limits,
    project_id: uuid.UUID,
    key_id: uuid.UUID,
    now: datetime | None = None,
) -> TracesResult:
    """Screen a request and keep it durably for the worker; the answer's counts.

    Raises what `screen_export_request` raises (OtlpError subclasses: 400, 413, 415) and
    projects.auth.KeyRevoked when the key is revoked. `accepted_spans` counts the spans kept;
    `sessions` is empty (they are created by the write).
    """
    now = now or timezone.now()
    screened = screen_export_request(
        body, content_type=content_type, content_encoding=content_encoding, limits=limits
    )
    result = TracesResult(
        rejected=[
            {"index": r.index, "trace_id": r.trace_id, "span_id": r.span_id, "reason": r.reason}
            for r in screened.rejected
        ]
    )
    if not screened.spans:
        return result
    foreign = _foreign_traces({trace_id for _, trace_id, _ in screened.spans}, project_id)
    for index, trace_id, span_id in screened.spans:
        if trace_id in foreign:
            result.rejected.append(
                {"index": index, "trace_id": trace_id, "span_id": span_id, "reason": FOREIGN_TRACE}
            )
        else:
            result.accepted_spans += 1
    result.rejected.sort(key=lambda r: r["index"])
    if not result.accepted_spans:
        return result
    with transaction.atomic():
        key = (
            ApiKey.objects.filter(pk=key_id, project_id=project_id, revoked_at__isnull=True)
            .values_list("last_used_at", "last_span_at", "last_token_at")
            .first()
        )
        if key is None:
            raise KeyRevoked
        batch_id = storage.backend().store_otlp_batch(
            project_id=project_id,
            key_id=key_id,
            received_at=now,
            encoding=screened.encoding,
            body=screened.raw,
            span_count=result.accepted_spans,
        )
        record_span_arrival(key_id, *key, now)
        transaction.on_commit(partial(_send, batch_id))
    return result


def _foreign_traces(trace_ids: set[str], project_id: uuid.UUID) -> set[str]:
    """The trace ids (hex) that are already sessions of another project."""
    ids = {session_id_of(t): t for t in trace_ids}
    return {
        ids[sid]
        for sid in Session.objects.filter(id__in=list(ids))
        .exclude(project_id=project_id)
        .values_list("id", flat=True)
    }


def _send(batch_id: int) -> None:
    try:
        if celery_app.conf.task_always_eager:  # scripts, `retry_failed` in the unit tests
            celery_app.tasks[PROCESS_TASK].apply(args=(batch_id,))
            return
        celery_app.send_task(
            PROCESS_TASK,
            args=[batch_id],
            queue=settings.OTLP_WRITE_QUEUE or None,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )
    except Exception:
        # Durable already: the sweep writes it within SWEEP_AFTER plus a minute.
        logger.warning(
            "could not queue OTLP batch %s; the sweep will write it", batch_id, exc_info=True
        )


def process_batch(
    batch_id: int, *, limits: Limits | None = None, merge: int | None = None
) -> TracesResult | None:
    """Write an accepted batch, with up to `merge` - 1 other waiting batches of the same grant
    (default MERGE_BATCHES) in the same statements; None when it is gone (written) or being
    written elsewhere.

    Merging costs nothing when the queue is short (there is nothing to merge) and, under load,
    spares each batch its own transaction, statements and rollup message. Database errors
    propagate (the task retries them) and leave the rows as they were. Any other error in a
    merged write is retried batch by batch, so it is charged to its own batch: recorded on the
    row (`attempts`, `last_error`, and `failed_at` after MAX_ATTEMPTS) and re-raised.
    """
    limits = limits or request_limits()
    merge = MERGE_BATCHES if merge is None else merge
    group: list[OtlpBatch] = []
    try:
        with transaction.atomic():
            pending = (
                OtlpBatch.objects.select_for_update(skip_locked=True)
                .defer("body")
                .filter(done_at__isnull=True, failed_at__isnull=True)
            )
            first = pending.filter(pk=batch_id).first()
            if first is None:
                return None
            group = [first]
            if merge > 1:
                group += list(
                    pending.filter(project_id=first.project_id, key_id=first.key_id)
                    .exclude(pk=first.pk)
                    .order_by("pk")[: merge - 1]
                )
            return _write(group, limits)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        if len(group) <= 1:
            _record_failure(batch_id, exc)
            raise
    # A merged write failed: each batch alone, this one last so its outcome is the answer.
    for other in group[1:]:
        try:
            process_batch(other.pk, limits=limits, merge=1)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("OTLP batch %s could not be written", other.pk)
    return process_batch(batch_id, limits=limits, merge=1)


def _write(group: list[OtlpBatch], limits: Limits) -> TracesResult:
    """Decode the group's batches, write them as one request, then delete each batch, or keep
    it as the record of the spans only the write refused."""
    parts = []
    offset = 0
    spans, rejected = [], []
    bodies = storage.backend().otlp_batch_bodies([b.pk for b in group])
    for batch in group:
        decoded = decode_export_request(
            bodies[batch.pk], content_type=CONTENT_TYPES[batch.encoding], limits=limits
        )
        size = len(decoded.spans) + len(decoded.rejected)  # every position is in one of them
        for item in (*decoded.spans, *decoded.rejected):
            item.index += offset
        spans.extend(decoded.spans)
        rejected.extend(decoded.rejected)
        parts.append((batch, offset, size, {r.index for r in decoded.rejected}))
        offset += size
    first = group[0]
    result = ingest_traces(
        DecodedRequest(spans=spans, rejected=rejected, encoding="protobuf"),
        project_id=first.project_id,
        key_id=first.key_id,
        received_at=max(b.received_at for b in group),
    )
    written = []
    for batch, start, size, screened in parts:
        # The spans the screen refused were answered already; only the write's are news.
        late = [
            {**r, "index": r["index"] - start}
            for r in result.rejected
            if start <= r["index"] < start + size and r["index"] not in screened
        ]
        answered = _foreign_before(late, batch.received_at)
        late = [r for r in late if r["reason"] != FOREIGN_TRACE or r["trace_id"] not in answered]
        if not late:
            written.append(batch.pk)
            continue
        refused = TracesResult(rejected=late)
        OtlpBatch.objects.filter(pk=batch.pk).update(
            body=b"",
            done_at=timezone.now(),
            refused_spans=len(late),
            last_error=refused.error_message(),
        )
        logger.warning("OTLP batch %s: %s (after its answer)", batch.pk, refused.error_message())
    if written:
        OtlpBatch.objects.filter(pk__in=written).delete()
    return result


def _foreign_before(refusals: list[dict], received_at: datetime) -> set:
    """The foreign traces among these refusals that `accept` refused already: those that were
    another project's sessions when the batch was received. (The write reports a trace as
    `session_id.hex`.)"""
    traces = {r["trace_id"] for r in refusals if r["reason"] == FOREIGN_TRACE}
    if not traces:
        return set()
    return {
        sid.hex
        for sid in Session.objects.filter(
            id__in=[uuid.UUID(t) for t in traces], created_at__lte=received_at
        ).values_list("id", flat=True)
    }


def _record_failure(batch_id: int, exc: Exception) -> None:
    message = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, KeyRevoked):
        message = "its API key no longer exists"
    attempts = OtlpBatch.objects.filter(pk=batch_id).values_list("attempts", flat=True).first()
    if attempts is None:
        return
    attempts += 1
    gave_up = attempts >= MAX_ATTEMPTS or isinstance(exc, KeyRevoked)
    OtlpBatch.objects.filter(pk=batch_id).update(
        attempts=attempts, last_error=message, failed_at=timezone.now() if gave_up else None
    )
    logger.error("OTLP batch %s failed (attempt %d): %s", batch_id, attempts, message)


def process_pending(*, older_than: timedelta = SWEEP_AFTER, limit: int = 1000) -> int:
    """Write the batches waiting longer than `older_than` (their message was lost); how many
    were written. One failing batch does not stop the others."""
    cutoff = timezone.now() - older_than
    ids = list(
        OtlpBatch.objects.filter(
            received_at__lt=cutoff, done_at__isnull=True, failed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    written = 0
    for batch_id in ids:
        try:
            if process_batch(batch_id) is not None:
                written += 1
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("OTLP batch %s could not be written by the sweep", batch_id)
    return written


def retry_failed(project_id: uuid.UUID | None = None) -> int:
    """Put the set-aside batches back in the queue (after a fix); how many."""
    failed = OtlpBatch.objects.filter(failed_at__isnull=False, done_at__isnull=True)
    if project_id is not None:
        failed = failed.filter(project_id=project_id)
    ids = list(failed.values_list("pk", flat=True))
    OtlpBatch.objects.filter(pk__in=ids).update(failed_at=None, attempts=0)
    for batch_id in ids:
        _send(batch_id)
    return len(ids)


def purge_old_records(now: datetime | None = None) -> int:
    """Delete the records of refused spans older than KEEP_REFUSALS; how many."""
    cutoff = (now or timezone.now()) - KEEP_REFUSALS
    deleted, _ = OtlpBatch.objects.filter(done_at__lt=cutoff).delete()
    return deleted


@dataclass(frozen=True)
class Backlog:
    """What the project page says about queued requests (all counts of the project)."""

    waiting: int  # batches accepted, not written yet
    waiting_spans: int
    oldest_waiting: datetime | None
    failed: int  # set aside after MAX_ATTEMPTS
    failed_error: str  # the latest failure's error
    refused_spans: int  # refused by the write, within KEEP_REFUSALS
    refused_error: str  # the latest such refusal
    stalled: bool  # some batch has waited over STALLED_AFTER: no worker is writing


def backlog(project_id: uuid.UUID | None = None, *, now: datetime | None = None) -> Backlog:
    """The queued OTLP requests of a project (of all projects with None): one query, plus one
    per kind of trouble there is to name."""
    now = now or timezone.now()
    rows = OtlpBatch.objects.all()
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    waiting = Q(done_at__isnull=True, failed_at__isnull=True)
    failed = Q(failed_at__isnull=False, done_at__isnull=True)
    refused = Q(done_at__isnull=False)
    counts = rows.aggregate(
        waiting=Count("pk", filter=waiting),
        spans=Sum("span_count", filter=waiting),
        oldest=Min("received_at", filter=waiting),
        failed=Count("pk", filter=failed),
        refused=Sum("refused_spans", filter=refused),
    )

    def latest(condition: Q, order: str) -> str:
        return rows.filter(condition).order_by(order).values_list("last_error", flat=True).first()

    return Backlog(
        waiting=counts["waiting"],
        waiting_spans=counts["spans"] or 0,
        oldest_waiting=counts["oldest"],
        failed=counts["failed"],
        failed_error=latest(failed, "-failed_at") if counts["failed"] else "",
        refused_spans=counts["refused"] or 0,
        refused_error=latest(refused, "-done_at") if counts["refused"] else "",
        stalled=counts["oldest"] is not None and counts["oldest"] < now - STALLED_AFTER,
    )
