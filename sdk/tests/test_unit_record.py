"""What record() keeps of an event, and what it costs the agent's garbage collector."""

import gc
from dataclasses import dataclass
from datetime import datetime, timedelta

import agentops


def quiet_session(client):
    """A session whose sender stays asleep until end_session(): nothing leaves meanwhile."""
    config = client.config.copy()
    config.configure(max_wait_time=60_000, max_queue_size=100_000)
    return client.start_session(config=config)


def test_record_allocates_no_container_for_the_garbage_collector(server, client):
    # Every such allocation counts towards the next collection, which then runs inside
    # record() and costs the agent tens to hundreds of microseconds (bench/sdk_record.py).
    session = quiet_session(client)
    events = [agentops.ActionEvent(action_type="step", params={"i": i}) for i in range(2000)]
    record = session.record
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for event in events:
            record(event)
        allocated = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert allocated < 50, f"{allocated} collectable objects for 2000 record() calls"
    session.end_session("Success")
    assert len(server.events) == 2000


def test_an_event_without_end_time_ends_when_recorded_not_when_sent(server, client):
    session = quiet_session(client)
    event = agentops.ActionEvent(action_type="step")
    session.record(event)
    recorded = datetime.now().astimezone()
    session.end_session("Success")
    sent = datetime.fromisoformat(server.events[str(event.id)]["end_timestamp"])
    assert abs(sent - recorded) < timedelta(milliseconds=100)
    assert event.end_timestamp is None  # the agent's event is left as it was


def test_an_event_is_sent_as_it_is_when_the_sender_takes_it(server, client):
    # As with the official SDK, the queue holds the event itself: a field set after record()
    # but before the batch leaves goes with it. The private record time does not.
    session = quiet_session(client)
    event = agentops.ActionEvent(action_type="step", returns="pending")
    session.record(event)
    event.returns = "done"
    session.end_session("Success")
    sent = server.events[str(event.id)]
    assert sent["returns"] == "done"
    assert not any(key.startswith("_") for key in sent)


def test_a_recorded_dict_is_copied_so_later_changes_stay_out(server, client):
    session = quiet_session(client)
    fields = {"event_type": "actions", "action_type": "from a dict", "returns": 1}
    session.record(fields)
    fields["returns"] = 2
    session.end_session("Success")
    (sent,) = server.events.values()
    assert (sent["action_type"], sent["returns"]) == ("from a dict", 1)
    assert "_recorded_at" not in fields


def test_an_event_that_refuses_new_attributes_is_recorded_from_a_copy(server, client):
    @dataclass(frozen=True)
    class FrozenAction:
        id: str
        action_type: str
        event_type: str = "actions"
        init_timestamp: str = "2026-11-21T10:00:00+00:00"

    session = quiet_session(client)
    session.record(FrozenAction(id="0f0e8a8e-6c39-4a43-9a0b-9bb3b6f1d1a1", action_type="frozen"))
    session.end_session("Success")
    sent = server.events["0f0e8a8e-6c39-4a43-9a0b-9bb3b6f1d1a1"]
    assert sent["action_type"] == "frozen"
    assert sent["end_timestamp"] > sent["init_timestamp"]
