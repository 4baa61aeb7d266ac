"""Several processes send the first spans of one trace at the same moment (agentops 0.4 with
W3C traceparent, or several exporter threads): the session is created once, race-free, every
span stored once, the totals exact, never a 5xx. Real threads, each with its own database
connection, through the real view."""

import threading
import uuid

import pytest
from django.db import connection
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from events.models import Event
from sessions.models import Session
from sessions.totals import recompute_totals

pytestmark = pytest.mark.django_db(transaction=True)
SENDERS = 8


def request_of(trace_id: bytes, n: int, root_id: bytes) -> bytes:
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    span = spans.add()
    span.trace_id, span.name = trace_id, f"step-{n}.tool"
    span.start_time_unix_nano = 1_790_000_000_000_000_000 + n * 1_000_000
    span.end_time_unix_nano = span.start_time_unix_nano + 500_000
    if n == 0:  # one sender carries the root
        span.span_id = root_id
        span.name = "run.session"
        span.attributes.add(key="agentops.span.kind").value.string_value = "session"
        span.attributes.add(key="agentops.session.end_state").value.string_value = "Success"
    else:
        span.span_id = n.to_bytes(8, "big")
        span.parent_span_id = root_id
        span.attributes.add(key="agentops.span.kind").value.string_value = "tool"
    return message.SerializeToString()


@pytest.mark.parametrize("rounds", [3])
def test_first_spans_of_one_trace_from_many_senders_at_once(api_key, project, rounds):
    for _ in range(rounds):
        trace_id = uuid.uuid4()
        bodies = [request_of(trace_id.bytes, n, b"\xaa" * 8) for n in range(SENDERS)]
        barrier = threading.Barrier(SENDERS)
        statuses: list[int] = []

        def send(body: bytes, barrier=barrier, statuses=statuses) -> None:
            client = Client()
            barrier.wait()
            for _ in range(2):  # and each one re-sent: exporters retry
                response = client.post(
                    "/v1/traces", body, content_type="application/x-protobuf",
                    HTTP_X_AGENTOPS_API_KEY=api_key,
                )  # fmt: skip
                statuses.append(response.status_code)
            connection.close()

        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * (2 * SENDERS)
        session = Session.objects.get(pk=trace_id)
        assert session.project == project and session.end_state == "Success"
        assert Event.objects.filter(session=session).count() == SENDERS - 1
        assert session.tool_count == SENDERS - 1
    assert recompute_totals(fix=False)[1] == []
