"""Delivery against a scripted HTTP endpoint: batching, retries, backoff, dedup, overflow."""

import logging
import time
import uuid
from decimal import Decimal

import agentops


def action(i=0):
    return agentops.ActionEvent(action_type="step", params={"i": i})


def test_init_starts_a_session_with_tags_host_env_and_the_servers_project(server, default_client):
    session = agentops.init(default_tags=["nightly"], tags=None)
    assert isinstance(session, agentops.Session)
    assert session.project_id == "11111111-1111-4111-8111-111111111111"
    assert session.session_url.endswith(str(session.session_id))
    sent = server.sessions[str(session.session_id)]
    assert sent["tags"] == ["nightly"]
    assert sent["end_state"] is None
    assert {"OS", "CPU", "RAM", "Disk", "Installed Packages"} <= set(sent["host_env"])
    assert sent["host_env"]["OS"]["Hostname"]


def test_env_data_opt_out_sends_no_host_data(server, client):
    config = client.config.copy()
    config.configure(env_data_opt_out=True)
    session = client.start_session(config=config)
    assert server.sessions[str(session.session_id)]["host_env"] == {}


def test_auto_start_session_false_only_configures(server, default_client):
    assert agentops.init(auto_start_session=False) is None
    assert server.sessions == {}
    assert agentops.start_session(tags=["later"]) is not None


def test_record_is_sent_in_batches_within_max_wait_time(server, client):
    session = client.start_session()
    for i in range(10):
        session.record(action(i))
    assert server.wait_for(lambda s: len(s.events) == 10, timeout=5)
    assert len(server.event_posts) <= 3  # batched, not one request per event


def test_a_full_queue_leaves_at_once_without_waiting_for_the_timer(server, client):
    config = client.config.copy()
    config.configure(max_wait_time=60_000, max_queue_size=20)
    session = client.start_session(config=config)
    for i in range(20):
        session.record(action(i))
    assert server.wait_for(lambda s: len(s.events) == 20, timeout=5)


def test_batches_never_exceed_max_batch_size(server, client):
    config = client.config.copy()
    config.configure(max_batch_size=100, max_wait_time=60_000)
    session = client.start_session(config=config)
    for i in range(450):
        session.record(action(i))
    assert session.end_session("Success") == Decimal("0.125")
    assert len(server.events) == 450
    assert max(len(ids) for ids in server.event_posts) <= 100


def test_record_never_blocks_on_a_hung_server(server, client):
    session = client.start_session()
    server.hang.set()
    started = time.perf_counter()
    for i in range(2000):
        session.record(action(i))
    elapsed = time.perf_counter() - started
    server.hang.clear()
    assert elapsed < 0.5, elapsed
    assert session.end_session("Success") is not None
    assert len(server.events) == 2000


def test_record_never_raises_on_what_is_not_an_event(server, client, caplog):
    session = client.start_session()
    session.record(object())
    session.record(None)
    session.record({"event_type": "actions", "action_type": "from a dict"})
    session.end_session("Success")
    assert "could not record" in caplog.text
    assert [e["action_type"] for e in server.events.values()] == ["from a dict"]


def test_5xx_and_429_are_retried_honouring_retry_after_with_the_same_ids(server, client):
    session = client.start_session()
    server.fail("/create_events", 503, times=1, **{"Retry-After": "1"})
    server.fail("/create_events", 429, times=1, **{"Retry-After": "0"})
    server.fail("/create_events", 500, times=1)
    for i in range(5):
        session.record(action(i))
    assert server.wait_for(lambda s: len(s.events) == 5, timeout=10)
    posts = [(t, body) for t, path, body in server.requests if path.endswith("/create_events")]
    assert len(posts) == 4
    first_ids = [e["id"] for e in posts[0][1]["events"]]
    assert all([e["id"] for e in body["events"]] == first_ids for _, body in posts)
    assert posts[1][0] - posts[0][0] >= 0.95  # waited for Retry-After: 1


def test_connection_errors_are_retried_until_the_server_comes_back(client):
    from fakeserver import FakeServer

    probe = FakeServer()  # bind a port, then close it: nobody listens there yet
    port = probe.httpd.server_address[1]
    probe.httpd.server_close()
    config = client.config.copy()
    config.configure(endpoint=f"http://127.0.0.1:{port}")
    session = client.start_session(config=config)
    assert session is not None and session.project_id is None  # not registered yet
    for i in range(30):
        session.record(action(i))
    time.sleep(1.0)
    server = FakeServer()
    server.httpd.server_close()
    from http.server import ThreadingHTTPServer

    server.httpd = ThreadingHTTPServer(("127.0.0.1", port), server.httpd.RequestHandlerClass)
    server.httpd.daemon_threads = True
    import threading

    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    try:
        assert session.end_session("Success") == Decimal("0.125")
        assert len(server.events) == 30
        assert session.project_id is not None
    finally:
        server.stop()


def test_a_lost_answer_resends_the_same_ids_and_the_server_counts_them_once(server, client):
    session = client.start_session()
    server.lost_answers.append("/create_events")  # stored, but the SDK hears a 502
    for i in range(50):
        session.record(action(i))
    session.end_session("Success")
    assert len(server.event_posts) == 2
    assert server.event_posts[0] == server.event_posts[1]  # the same ids, resent
    assert len(server.events) == 50
    assert (session.accepted, session.duplicates) == (0, 50)  # the server had them all


def test_401_reauthorizes_and_resends(server, client):
    session = client.start_session()
    server.valid_jwts.clear()  # every token so far is now refused
    session.record(action())
    assert session.end_session("Success") == Decimal("0.125")
    assert len(server.events) == 1
    assert any(path.endswith("/reauthorize_jwt") for _, path, _ in server.requests)


def test_413_splits_the_batch(server, client):
    session = client.start_session()
    server.fail("/create_events", 413, times=1)
    for i in range(40):
        session.record(action(i))
    session.end_session("Success")
    assert len(server.events) == 40
    assert len(server.event_posts) >= 2


def test_a_full_buffer_drops_the_oldest_counts_them_and_warns(server, client, caplog):
    config = client.config.copy()
    config.configure(max_buffer_size=100, max_queue_size=100, max_wait_time=60_000)
    session = client.start_session(config=config)
    server.hang.set()
    time.sleep(0.05)
    events = [action(i) for i in range(350)]
    for event in events:
        session.record(event)
    server.hang.clear()
    with caplog.at_level(logging.WARNING, logger="agentops"):
        session.end_session("Success")
    delivered = set(server.events)
    assert session.dropped + len(delivered) == 350
    assert session.dropped >= 150
    # What was dropped is the oldest: the newest event always arrives.
    assert str(events[-1].id) in delivered
    assert f"dropped the {session.dropped} oldest" in caplog.text or "oldest event" in caplog.text
    # The server was there all along, only slower than the burst: not "unreachable".
    assert "the server took events more slowly than they were recorded" in caplog.text
    assert "unreachable" not in caplog.text and "did not take events" not in caplog.text


def test_end_session_flushes_before_ending_and_returns_the_cost(server, client):
    config = client.config.copy()
    config.configure(max_wait_time=60_000, max_queue_size=100_000)
    session = client.start_session(config=config)
    for i in range(3000):
        session.record(action(i))
    cost = session.end_session(agentops.EndState.SUCCESS, "done", video="https://v.example/1")
    assert cost == Decimal("0.125")
    assert len(server.events) == 3000
    paths = [path for _, path, _ in server.requests]
    assert paths[-1].endswith("/update_session")
    end = server.updates[-1]
    assert (end["end_state"], end["end_state_reason"], end["video"]) == (
        "Success",
        "done",
        "https://v.example/1",
    )
    assert end["end_timestamp"] == session.end_timestamp
    assert session.end_state == "Success"
    assert not session.is_running


def test_an_unknown_end_state_is_refused_and_the_session_keeps_running(server, client, caplog):
    session = client.start_session()
    assert session.end_session("Done") is None
    assert "end_state 'Done' refused: use one of Success, Fail, Indeterminate" in caplog.text
    assert session.is_running
    assert session.end_session("Fail") is not None


def test_record_after_end_is_refused_with_a_warning(server, client, caplog):
    session = client.start_session()
    session.end_session("Success")
    session.record(action())
    assert "has ended" in caplog.text


def test_tags_are_added_and_replaced_in_the_background(server, client):
    session = client.start_session(tags=["a"])
    session.add_tags(["b", "a"])
    assert server.wait_for(lambda s: s.updates and s.updates[-1].get("tags") == ["a", "b"])
    session.set_tags(["c"])
    assert server.wait_for(lambda s: s.updates[-1].get("tags") == ["c"])
    assert session.tags == ["c"]


def test_module_functions_with_two_sessions_warn_and_do_nothing(server, default_client, caplog):
    first = agentops.init()
    second = agentops.start_session()
    agentops.record(action())
    assert agentops.end_session("Success") is None
    assert "session.end_session(...)" in caplog.text
    assert first.is_running and second.is_running
    first.end_session("Success")
    agentops.record(action())  # one session left: module functions work again
    assert agentops.end_session("Success") == Decimal("0.125")
    assert len(server.events) == 1


def test_get_analytics_reads_the_servers_counts(server, client):
    session = client.start_session()
    session.record(action())
    stats = session.get_analytics()
    assert stats["Events"] == 1
    assert set(stats) >= {"LLM calls", "Tool calls", "Actions", "Errors", "Duration", "Cost"}


def test_two_sessions_send_to_their_own_session_tokens(server, client):
    a, b = client.start_session(), client.start_session()
    a.record(action(1))
    b.record(action(2))
    a.end_session("Success")
    b.end_session("Fail")
    assert len(server.events) == 2
    assert [u["end_state"] for u in server.updates] == ["Success", "Fail"]


def test_inherited_session_id_reuses_the_id(server, default_client):
    session_id = str(uuid.uuid4())
    session = agentops.init(inherited_session_id=session_id)
    assert str(session.session_id) == session_id


def _delivery(cap=1000, start=20):
    """A real Delivery (of a real Sender) whose queue holds `start` events, capped at `cap`."""
    from agentops.sender import Sender

    config = agentops.Configuration(
        api_key=str(uuid.uuid4()), max_queue_size=1, max_buffer_size=cap
    )
    delivery = Sender().open(uuid.uuid4(), config, {})
    delivery.queue.extend([None] * start)
    return delivery


def _sleeps_that_grow(monkeypatch, delivery, growth):
    from agentops import sender

    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) <= len(growth):
            delivery.queue.extend([None] * growth[len(calls) - 1])

    monkeypatch.setattr(sender, "_pause", sleep)
    return calls


def test_the_sender_waits_for_a_recording_burst_to_end(monkeypatch):
    from agentops.sender import let_the_burst_end

    delivery = _delivery()
    calls = _sleeps_that_grow(monkeypatch, delivery, growth=[50, 50, 50])
    let_the_burst_end([delivery])
    assert len(calls) == 4  # three looks saw the queue grow, the fourth saw it still


def test_the_sender_sends_at_once_a_queue_half_way_to_its_cap(monkeypatch):
    from agentops.sender import let_the_burst_end

    delivery = _delivery(cap=100, start=50)
    calls = _sleeps_that_grow(monkeypatch, delivery, growth=[10] * 100)
    let_the_burst_end([delivery])
    assert calls == []


def test_the_sender_waits_for_a_burst_at_most_burst_wait(monkeypatch):
    from agentops import sender

    monkeypatch.setattr(sender, "BURST_WAIT", 0.05)
    delivery = _delivery(cap=10**9)
    calls = []
    real_sleep = time.sleep

    def sleep(seconds):
        calls.append(seconds)
        delivery.queue.append(None)
        real_sleep(seconds)

    monkeypatch.setattr(sender, "_pause", sleep)
    started = time.monotonic()
    sender.let_the_burst_end([delivery])
    assert 0.05 <= time.monotonic() - started < 1.0
    assert len(calls) >= 2


def test_a_long_tight_recording_loop_is_still_sent_while_it_runs(server, client):
    config = client.config.copy()
    config.configure(max_wait_time=60_000, max_queue_size=20)
    session = client.start_session(config=config)
    deadline = time.monotonic() + 5
    i = 0
    while not server.events and time.monotonic() < deadline:
        session.record(action(i))
        i += 1
    assert server.events, "nothing was sent during a 5 s burst"


def ended(session, caplog):
    """(what end_session() returned, the line that says how it ended)."""
    with caplog.at_level(logging.INFO, logger="agentops"):
        cost = session.end_session("Success")
    (line,) = [r.getMessage() for r in caplog.records if "ended (Success)" in r.getMessage()]
    return cost, line


def test_a_session_of_unknown_cost_ends_with_none_and_says_cost_unknown(server, client, caplog):
    server.token_cost = None  # JSON null: none of the session's LLM calls could be priced
    server.cost_unknown_events = 3
    session = client.start_session()
    cost, line = ended(session, caplog)
    assert cost is None and session.token_cost is None
    assert session.cost_unknown_events == 3
    assert "cost unknown" in line and "$" not in line


def test_a_partly_known_cost_is_the_known_sum_plus_the_calls_left_out(server, client, caplog):
    server.token_cost = "0.5"
    server.cost_unknown_events = 2
    session = client.start_session()
    cost, line = ended(session, caplog)
    assert cost == Decimal("0.5")
    assert session.cost_unknown_events == 2
    assert "cost $0.5 + 2 calls of unknown cost" in line


def test_an_older_servers_zero_cost_string_is_still_a_known_zero(server, client, caplog):
    server.token_cost = "0"  # no cost_unknown_events in the answer
    session = client.start_session()
    cost, line = ended(session, caplog)
    assert cost == Decimal("0") and session.cost_unknown_events is None
    assert "cost $0:" in line


def test_a_full_buffer_blames_an_unreachable_server_only_when_it_was(client, caplog):
    from fakeserver import FakeServer

    probe = FakeServer()  # a port nobody listens on
    port = probe.httpd.server_address[1]
    probe.httpd.server_close()
    config = client.config.copy()
    config.configure(
        endpoint=f"http://127.0.0.1:{port}",
        max_buffer_size=100,
        max_queue_size=100,
        max_flush_time=500,
    )
    session = client.start_session(config=config)
    for i in range(300):
        session.record(action(i))
    with caplog.at_level(logging.WARNING, logger="agentops"):
        assert session.end_session("Success") is None
    assert session.dropped == 200
    assert "while the server did not take events (no answer (ConnectionRefusedError" in caplog.text


def test_a_revoked_key_is_one_error_naming_what_was_not_recorded_and_no_success_line(
    server, client, caplog
):
    config = client.config.copy()
    config.configure(max_batch_size=2, max_wait_time=60_000)
    session = client.start_session(config=config)
    server.valid_jwts.clear()  # the session token is refused...
    server.fail("/reauthorize_jwt", 401, times=100)  # ...and so is the key
    for i in range(7):
        session.record(action(i))
    session.add_tags(["late"])
    with caplog.at_level(logging.INFO, logger="agentops"):
        assert session.end_session("Success") is None
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
    (error,) = said
    assert error.levelno == logging.ERROR
    assert "the server no longer accepts it: HTTP 401: scripted failure" in error.getMessage()
    assert "not delivered so far), tags and end state will not be recorded" in error.getMessage()
    assert not any("ended (Success)," in r.getMessage() for r in caplog.records)
    assert session.lost == 7 and not server.events and not server.updates
