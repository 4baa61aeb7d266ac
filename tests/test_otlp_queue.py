"""The queued OTLP write (events/otlp_queue.py): the answer after a durable copy, the write in a
real Celery worker on the real Redis broker, exactly once; the screen refusing what the full
decode refuses; what the write alone finds, failures and a stalled worker on the project page.
Postgres and SQLite both."""

import uuid
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from api.otlp.decode import (
    Limits,
    OtlpError,
    decode_export_request,
    screen_export_request,
)
from events import otlp_queue
from events.models import Event, OtlpBatch
from events.otlp_ingest import ingest_traces, request_limits
from projects.auth import KeyRevoked
from projects.keys import revoke_key
from projects.models import ApiKey
from sessions.models import Session
from tests.celery_worker import celery_broker, eventually, in_process, start_worker
from tests.otlp_captures import to_otlp_json, to_protobuf, trace_requests
from tests.test_otlp_endpoints import CROSS, LEGACY, LLM, NEW_API, PB, post, sessions_of, token_for

__all__ = ["celery_broker"]

JSON = "application/json"


def bodies(name: str) -> list[bytes]:
    return [to_protobuf(r).SerializeToString() for r in trace_requests(name)]


def accept(body: bytes, project, api_key_row, *, content_type=PB, now=None):
    return otlp_queue.accept(
        body,
        content_type=content_type,
        content_encoding=None,
        limits=request_limits(),
        project_id=project.id,
        key_id=api_key_row.id,
        now=now,
    )


@pytest.fixture
def key_row(api_key, project):
    return ApiKey.objects.get(project=project)


# --- with a real worker ----------------------------------------------------------------------


def test_the_answer_comes_before_the_write_and_a_worker_writes_each_span_once(
    celery_broker, client, api_key, project, settings, tmp_path
):
    settings.OTLP_WRITE = "queued"
    token = token_for(client, api_key)
    sent = bodies(LEGACY) + bodies(NEW_API)
    for body in sent:
        response = post(client, body, auth=token)
        assert response.status_code == 200
        assert ExportTraceServiceResponse.FromString(response.content) == (
            ExportTraceServiceResponse()
        )
    # No worker yet: every request is answered and kept, nothing written.
    assert OtlpBatch.objects.count() == len(sent)
    assert not Session.objects.exists()
    expected = {**sessions_of(LEGACY), **sessions_of(NEW_API)}
    with start_worker(celery_broker, tmp_path) as worker:
        eventually(lambda: not OtlpBatch.objects.exists(), what="every batch written")
        assert Session.objects.count() == len(expected)
        events = Event.objects.count()
        assert events > 0
        # A re-sent request is accepted again and stores nothing twice.
        assert post(client, sent[0], auth=token).status_code == 200
        eventually(lambda: not OtlpBatch.objects.exists(), what="the re-sent batch written")
        worker.wait_for_log("succeeded")
    assert Event.objects.count() == events
    by_state = {s.end_state: s for s in Session.objects.filter(project=project, pk__in=expected)}
    assert {"Success", "Fail"} <= set(by_state)
    assert by_state["Success"].end_state_reason == "acceptance run finished"
    assert sorted(by_state["Success"].tags.values_list("name", flat=True)) == ["legacy", "seed"]


def test_refusals_are_answered_at_once_and_a_lost_message_is_written_by_the_sweep(
    celery_broker, client, api_key, other_api_key, project, other_project, settings
):
    settings.OTLP_WRITE = "queued"
    (request,) = trace_requests(LLM)
    body = to_protobuf(request).SerializeToString()
    settings.OTLP_WRITE = "inline"
    post(client, body, auth=token_for(client, other_api_key))  # the trace is theirs
    settings.OTLP_WRITE = "queued"
    message = ExportTraceServiceRequest.FromString(body)
    spans = message.resource_spans[0].scope_spans[0].spans
    ours = spans.add()
    ours.CopyFrom(spans[0])
    ours.trace_id, ours.parent_span_id = uuid.uuid4().bytes, b""
    broken = spans.add()
    broken.CopyFrom(spans[0])
    broken.trace_id = b"\x00" * 16
    response = post(client, message.SerializeToString(), X_AGENTOPS_API_KEY=api_key)
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert answer.partial_success.rejected_spans == 4  # 3 of their trace, the all-zero id
    assert "not available to this project" in answer.partial_success.error_message
    assert "all zeros" in answer.partial_success.error_message
    (batch,) = OtlpBatch.objects.filter(project=project)
    assert batch.span_count == 1
    # No worker consumes this test's queue: as if the message were lost. Not yet due...
    assert otlp_queue.process_pending() == 0
    # ...and once due, written by the sweep, with nothing reported late.
    assert otlp_queue.process_pending(older_than=timedelta(0)) == 1
    assert not OtlpBatch.objects.exists()
    session = Session.objects.get(project=project)
    assert session.pk == uuid.UUID(bytes=ours.trace_id)
    assert Session.objects.filter(project=other_project).get().llm_count == 2


# --- the screen ------------------------------------------------------------------------------


def _with_broken_spans() -> bytes:
    (request,) = trace_requests(NEW_API)[:1]
    message = to_protobuf(request)
    spans = message.resource_spans[0].scope_spans[0].spans
    template = spans[0]

    def add(**fields):
        span = spans.add()
        span.CopyFrom(template)
        for name, value in fields.items():
            setattr(span, name, value)

    add(trace_id=b"\x01" * 15)
    add(span_id=b"")
    add(span_id=b"\x00" * 8)
    add(parent_span_id=b"\x02" * 4)
    add(start_time_unix_nano=0)
    add(start_time_unix_nano=1_700_000_000)  # seconds sent as nanoseconds
    add(end_time_unix_nano=2**63 - 1)
    add(end_time_unix_nano=template.start_time_unix_nano - 5)  # repaired, kept
    add(end_time_unix_nano=0)  # repaired, kept
    return message.SerializeToString()


@pytest.mark.parametrize("max_spans", [10_000, 3])
def test_the_screen_refuses_exactly_the_spans_the_full_decode_refuses(max_spans):
    limits = Limits(max_spans=max_spans)
    cases = [(b, PB) for b in bodies(LEGACY) + bodies(LLM)]
    cases.append((_with_broken_spans(), PB))
    json_doc = to_otlp_json(ExportTraceServiceRequest.FromString(_with_broken_spans()))
    json_doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"] = "not-hex"
    cases.append((orjson.dumps(json_doc), JSON))
    refused_somewhere = 0
    for body, content_type in cases:
        screened = screen_export_request(body, content_type=content_type, limits=limits)
        decoded = decode_export_request(body, content_type=content_type, limits=limits)
        assert screened.rejected == decoded.rejected
        assert [i for i, _, _ in screened.spans] == [s.index for s in decoded.spans]
        assert [(t, s) for _, t, s in screened.spans] == [
            (s.trace_id, s.span_id) for s in decoded.spans
        ]
        refused_somewhere += len(screened.rejected)
    assert refused_somewhere >= 7


@pytest.mark.parametrize(
    "body, content_type, encoding",
    [(b"\xff\x00garbage", PB, None), (b"{", JSON, None), (b"x" * 10, "text/plain", None)],
)
def test_the_screen_refuses_whole_bodies_as_the_decode_does(body, content_type, encoding):
    with pytest.raises(OtlpError) as screened:
        screen_export_request(body, content_type=content_type, content_encoding=encoding)
    with pytest.raises(OtlpError) as decoded:
        decode_export_request(body, content_type=content_type, content_encoding=encoding)
    assert type(screened.value) is type(decoded.value)
    assert screened.value.message == decoded.value.message


# --- accept and write, in this process -------------------------------------------------------


def _summary(project):
    return {
        s.pk: (
            s.end_state,
            s.end_state_reason,
            s.llm_count,
            s.tool_count,
            s.action_count,
            s.error_count,
            s.cost,
            s.end_timestamp,
            sorted(s.tags.values_list("name", flat=True)),
            sorted(Event.objects.filter(session=s).values_list("id", "event_type", "name")),
        )
        for s in Session.objects.filter(project=project)
    }


@pytest.mark.django_db
def test_a_written_batch_equals_the_inline_write(key_row, project):
    sent = bodies(LEGACY) + bodies(NEW_API)
    for body in sent:
        ingest_traces(
            decode_export_request(body, content_type=PB), project_id=project.id, key_id=key_row.id
        )
    inline = _summary(project)
    Event.objects.filter(project=project).delete()
    Session.objects.filter(project=project).delete()
    for body in sent:
        result = accept(body, project, key_row)
        assert result.accepted_spans > 0 and not result.rejected
    assert not Session.objects.exists()
    ids = list(OtlpBatch.objects.order_by("pk").values_list("pk", flat=True))
    for batch_id in ids:
        # One at a time here (merging is tested below); then gone: written once.
        assert otlp_queue.process_batch(batch_id, merge=1) is not None
        assert otlp_queue.process_batch(batch_id) is None
    assert _summary(project) == inline and len(inline) >= 3
    assert not OtlpBatch.objects.exists()


@pytest.mark.django_db
def test_a_key_revoked_after_acceptance_loses_nothing_before_it_is_refused(
    key_row, project, client
):
    (body,) = bodies(LLM)
    accept(body, project, key_row)
    revoke_key(key_row)
    otlp_queue.process_pending(older_than=timedelta(0))
    assert Session.objects.get(project=project).llm_count == 2
    with pytest.raises(KeyRevoked):
        accept(bodies(LEGACY)[0], project, key_row)
    assert not OtlpBatch.objects.exists()


@pytest.mark.django_db
def test_what_only_the_write_finds_is_kept_on_the_batch_and_shown_on_the_project_page(
    key_row, project, other_project, other_api_key, client, alice
):
    (body,) = bodies(LLM)
    result = accept(body, project, key_row)
    assert result.accepted_spans == 3 and not result.rejected
    # Between the answer and the write, another project takes the trace.
    other_key = ApiKey.objects.get(project=other_project)
    ingest_traces(
        decode_export_request(body, content_type=PB),
        project_id=other_project.id,
        key_id=other_key.id,
    )
    (batch,) = OtlpBatch.objects.all()
    result = otlp_queue.process_batch(batch.pk)
    assert len(result.rejected) == 3
    batch.refresh_from_db()
    assert batch.done_at is not None and batch.refused_spans == 3 and bytes(batch.body) == b""
    assert "not available to this project" in batch.last_error
    assert otlp_queue.backlog(project.id).refused_spans == 3
    client.force_login(alice)
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "3 spans refused after acceptance" in page
    assert "not available to this project" in page
    # Kept a week, then purged with the other old data.
    assert otlp_queue.purge_old_records(timezone.now() + timedelta(days=8)) == 1


@pytest.mark.django_db
def test_a_batch_that_keeps_failing_is_set_aside_shown_and_retried(key_row, project, client, alice):
    (body,) = bodies(LLM)
    accept(body, project, key_row)
    (batch,) = OtlpBatch.objects.all()
    OtlpBatch.objects.filter(pk=batch.pk).update(body=b"\xff\x00 not protobuf any more")
    for attempt in range(1, otlp_queue.MAX_ATTEMPTS + 1):
        assert otlp_queue.process_pending(older_than=timedelta(0)) == 0
        batch.refresh_from_db()
        assert batch.attempts == attempt
    assert batch.failed_at is not None and "UndecodableBody" in batch.last_error
    assert otlp_queue.process_pending(older_than=timedelta(0)) == 0  # set aside: not tried
    backlog = otlp_queue.backlog(project.id)
    assert backlog.failed == 1 and backlog.waiting == 0
    client.force_login(alice)
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "1 span batch could not be written" in page
    # Fixed (here: the body put back), queued again, written.
    OtlpBatch.objects.filter(pk=batch.pk).update(body=body)
    with in_process():  # the worker's part, here
        assert otlp_queue.retry_failed() == 1
    assert not OtlpBatch.objects.exists()
    assert Session.objects.get(project=project).llm_count == 2


@pytest.mark.django_db
def test_a_stalled_worker_is_named_on_the_project_page(key_row, project, client, alice):
    client.force_login(alice)
    (body,) = bodies(LLM)
    accept(body, project, key_row)
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "waiting for the worker" not in page  # seconds old: the worker's normal delay
    accept(bodies(LEGACY)[0], project, key_row, now=timezone.now() - timedelta(minutes=5))
    backlog = otlp_queue.backlog(project.id)
    assert backlog.stalled and backlog.waiting == 2
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "2 span batches waiting for the worker" in page
    assert f"{backlog.waiting_spans} spans" in page


@pytest.mark.django_db
def test_waiting_batches_are_merged_into_one_write_and_a_bad_one_is_charged_alone(key_row, project):
    # The cross-process capture: children from one process, the root from another, in
    # separate requests; merged, the root still sets the end state and the totals add up.
    sent = bodies(CROSS)
    for body in sent:
        accept(body, project, key_row)
    bad = accept(bodies(LLM)[0], project, key_row)
    assert bad.accepted_spans == 3
    bad_id = OtlpBatch.objects.order_by("-pk").values_list("pk", flat=True).first()
    OtlpBatch.objects.filter(pk=bad_id).update(body=b"\xff\x00 broken")
    first = OtlpBatch.objects.order_by("pk").first()
    result = otlp_queue.process_batch(first.pk)
    # The merged write failed on the broken batch; retried one by one, the good ones are
    # written and the broken one alone is charged.
    assert result is not None
    assert list(OtlpBatch.objects.values_list("pk", "attempts")) == [(bad_id, 1)]
    expected = sessions_of(CROSS)
    for session_id in expected:
        session = Session.objects.get(pk=session_id)
        assert session.end_state and session.end_timestamp is not None
    # Without the broken one, the same requests merge into one write with the same outcome.
    inline = _summary(project)
    Event.objects.filter(project=project).delete()
    Session.objects.filter(project=project).delete()
    OtlpBatch.objects.all().delete()
    for body in sent:
        accept(body, project, key_row)
    first = OtlpBatch.objects.order_by("pk").first()
    merged = otlp_queue.process_batch(first.pk)
    assert merged.accepted_spans == sum(
        len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans)
        for b in sent
    )
    assert not OtlpBatch.objects.exists()
    assert _summary(project) == inline


def test_a_queue_falling_behind_makes_requests_write_inline_until_it_catches_up(
    celery_broker, client, api_key, project, settings
):
    settings.OTLP_WRITE = "queued"
    settings.OTLP_QUEUE_MAX_LAG_SECONDS = 2
    key = ApiKey.objects.get(project=project)
    legacy = bodies(LEGACY)
    # A batch that has waited 5 s: no worker is keeping up.
    accept(legacy[0], project, key, now=timezone.now() - timedelta(seconds=5))
    (request,) = trace_requests(LLM)
    response = post(client, to_protobuf(request).SerializeToString(), X_AGENTOPS_API_KEY=api_key)
    assert response.status_code == 200
    # Written before the answer (backpressure), not queued behind the old batch.
    assert OtlpBatch.objects.count() == 1
    assert Session.objects.get(project=project).llm_count == 2
    # Caught up: the next request is queued again.
    otlp_queue.process_pending(older_than=timedelta(0))
    assert post(client, legacy[1], X_AGENTOPS_API_KEY=api_key).status_code == 200
    assert OtlpBatch.objects.count() == 1


@pytest.mark.django_db
def test_the_otlp_batches_command_shows_the_queue_and_writes_it_now(key_row, project):
    from io import StringIO

    from django.core.management import call_command

    (body,) = bodies(LLM)
    accept(body, project, key_row)
    out = StringIO()
    call_command("otlp_batches", stdout=out)
    assert "waiting: 1 batch(es), 3 span(s), oldest received" in out.getvalue()
    out = StringIO()
    call_command("otlp_batches", "--write-now", stdout=out)
    assert "wrote 1 batch(es)" in out.getvalue() and "waiting: 0 batch(es)" in out.getvalue()
    assert Session.objects.get(project=project).llm_count == 2
