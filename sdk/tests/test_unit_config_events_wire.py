import json
import logging
import math
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import agentops
from agentops.event import current_agent_id
from agentops.transport import parse_retry_after
from agentops.wire import batch_body, encode_event, to_wire


def strict_loads(data: bytes):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(data, parse_constant=refuse)


def test_configuration_refuses_a_key_that_is_not_a_uuid(caplog):
    config = agentops.Configuration()
    with caplog.at_level(logging.ERROR, logger="agentops"):
        config.configure(api_key="sk-not-a-uuid")
    assert config.api_key is None
    assert "not valid" in caplog.text


def test_configuration_reads_key_and_endpoint_from_the_environment(monkeypatch):
    key = str(uuid.uuid4())
    monkeypatch.setenv("AGENTOPS_API_KEY", key)
    monkeypatch.setenv("AGENTOPS_API_ENDPOINT", "http://agentops.internal:9000/")
    config = agentops.Configuration()
    config.apply_environment()
    assert config.api_key == key
    assert config.endpoint == "http://agentops.internal:9000"


def test_configuration_keeps_batches_within_the_servers_limit_and_refuses_nonsense(caplog):
    config = agentops.Configuration(max_batch_size=5000, max_wait_time=-3)
    assert config.max_batch_size == 1000
    assert config.max_wait_time == 5000
    assert "max_wait_time=-3 refused" in caplog.text


def test_error_event_from_an_exception_has_type_message_and_traceback():
    try:
        {}["missing"]
    except KeyError as exc:
        error = agentops.ErrorEvent(exception=exc)
    assert error.error_type == "KeyError"
    assert error.details == "'missing'"
    assert "Traceback" in error.logs and "KeyError" in error.logs
    assert error.exception is None
    assert error.end_timestamp is not None


def test_events_get_unique_ids_and_utc_iso_timestamps():
    a, b = agentops.ActionEvent(), agentops.ToolEvent(name="search")
    assert a.id != b.id
    parsed = datetime.fromisoformat(a.init_timestamp)
    assert parsed.utcoffset().total_seconds() == 0
    assert (a.event_type, b.event_type) == ("actions", "tools")


def test_events_made_inside_an_agent_carry_its_id():
    token = current_agent_id.set("agent-7")
    try:
        inside = agentops.LLMEvent(model="gpt-4o")
    finally:
        current_agent_id.reset(token)
    assert inside.agent_id == "agent-7"
    assert agentops.LLMEvent().agent_id is None


def test_wire_shape_flattens_the_trigger_event_and_fills_the_end_time():
    action = agentops.ActionEvent(action_type="search")
    error = agentops.ErrorEvent(trigger_event=action, error_type="Boom")
    wire = to_wire(error.__dict__.copy(), 0.0)
    assert wire["trigger_event_id"] == str(action.id)
    assert wire["trigger_event_type"] == "actions"
    assert "trigger_event" not in wire
    recorded = to_wire(agentops.ActionEvent().__dict__.copy(), 1_800_000_000.0)
    assert (
        recorded["end_timestamp"]
        == datetime.fromtimestamp(1_800_000_000.0, timezone.utc).isoformat()
    )


def test_any_payload_becomes_strict_json():
    class Model:
        def model_dump(self):
            return {"x": 1}

    cyclic: list = []
    cyclic.append(cyclic)
    event = agentops.LLMEvent(
        params={
            "nan": math.nan,
            "inf": math.inf,
            "uuid": uuid.UUID(int=1),
            "money": Decimal("0.10"),
            "when": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "set": {3},
            "model": Model(),
            "bytes": b"\xff",
            "cycle": cyclic,
            "surrogate": "\ud800",
        },
        cost=Decimal("0.0001"),
    )
    wire = to_wire(event.__dict__.copy(), 0.0)
    body = strict_loads(batch_body([wire]))
    params = body["events"][0]["params"]
    assert params["nan"] is None and params["inf"] is None
    assert params["uuid"] == str(uuid.UUID(int=1))
    assert params["money"] == "0.10"
    assert params["model"] == {"x": 1}
    assert "circular" in json.dumps(params["cycle"])
    assert body["events"][0]["cost"] == "0.0001"
    assert strict_loads(encode_event(wire))["id"] == str(event.id)


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
