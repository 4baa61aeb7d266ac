"""Schemathesis against our own OpenAPI document, with valid credentials, over every operation.

The server is gunicorn on Postgres (a private cluster); the test process only speaks HTTP.
Every generated request must get an answer that is not a 5xx and that conforms to the
document: a documented status, the documented content type and headers, a body of the
documented shape. The seed is fixed, so CI tries the same examples every run; the number of
examples per operation is FUZZ_EXAMPLES (default 100).
"""

import os
import uuid
from datetime import UTC, datetime

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reliability import figures
from reliability.servers import create_project, gunicorn

# What the issue asks of every response. Schemathesis' request-strictness checks
# (negative_data_rejection, positive_data_acceptance) are left out on purpose: the v2 protocol
# answers 200 to a batch whose events are rejected one by one, and ignores unknown fields,
# because the official SDK depends on both.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
SEED = 20261121


@pytest.fixture(scope="module")
def fuzz_server(private_pg, tmp_path_factory):
    url = private_pg.url(private_pg.new_database())
    key = create_project(url, "Fuzzed")
    with gunicorn(database_url=url, log_dir=tmp_path_factory.mktemp("fuzz"), workers=2) as server:
        session_id = str(uuid.uuid4())
        started = requests.post(
            f"{server.url}/v2/create_session",
            json={"session": {"session_id": session_id, "init_timestamp": _now()}},
            headers={"X-Agentops-Api-Key": key},
            timeout=10,
        )
        assert started.status_code == 200, started.text
        server.key, server.session_id, server.jwt = key, session_id, started.json()["jwt"]
        yield server
        assert "Traceback" not in server.output(), server.output()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def our_openapi_document() -> dict:
    """The document GET /v2/openapi.json serves, generated in this process.

    Loaded at import (not from a fixture): schemathesis' lazy fixture loader does not work with
    pytest 9 (it sets a node attribute pytest 9 no longer has).
    """
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(our_openapi_document())


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_per_its_schema_and_never_5xx(case, fuzz_server):
    # Half the cases that name a session name ours, so stats and export are fuzzed past the 404.
    if "session_id" in (case.path_parameters or {}) and hash(str(case.query)) % 2 == 0:
        case.path_parameters["session_id"] = fuzz_server.session_id
    response = case.call_and_validate(
        base_url=fuzz_server.url,
        headers={
            "X-Agentops-Api-Key": fuzz_server.key,
            "Authorization": f"Bearer {fuzz_server.jwt}",
        },
        checks=CHECKS,
        timeout=30,
    )
    figures.add("schemathesis requests sent")
    figures.add(f"schemathesis responses {response.status_code}")
    if (case.method.upper(), case.path, response.status_code) == ("POST", "/v2/create_events", 200):
        assert_no_storable_event_rejected(case.body, response.json(), fuzz_server.session_id)


def _readable_time(value) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return datetime(2000, 1, 1, tzinfo=UTC) <= moment < datetime(2100, 1, 1, tzinfo=UTC)


def _storable(event, session_id: str) -> bool:
    """What docs/reliability.md ("Keep, repair, say") promises to store, repaired if need be:
    an object with a UUID id, no other session's id, and one readable time (the size and depth
    limits are far beyond what the generator writes)."""
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        return False
    if len(event["id"]) > 64:
        return False
    try:
        uuid.UUID(event["id"])
    except ValueError:
        return False
    claimed = event.get("session_id")
    if claimed not in (None, "") and str(claimed).lower() != session_id:
        return False
    return _readable_time(event.get("init_timestamp")) or _readable_time(event.get("end_timestamp"))


def assert_no_storable_event_rejected(body, answer: dict, session_id: str) -> None:
    """No generated input loses an event that could be stored, nor a valid neighbour."""
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return
    rejected = {r["index"] for r in answer["rejected"]}
    storable = {i for i, e in enumerate(events) if _storable(e, session_id)}
    assert not storable & rejected, (answer["rejected"], events)
    figures.add("schemathesis events that could be stored", len(storable))
