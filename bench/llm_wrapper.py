"""Overhead of the SDK's LLM instrumentation per call, in microseconds, beside the same call
uninstrumented.

Two transports:
  in-process  the real OpenAI / Anthropic clients over an httpx.MockTransport that answers at
              once, so the figure is the client's own work plus ours, without network noise;
  loopback    the same clients against tests/fake_llm_servers.py over HTTP on 127.0.0.1.

The instrumented calls record into a real SDK session (agentops.init) whose server is a stub on
127.0.0.1 that accepts everything, so the cost includes building the LLMEvent and queueing it;
sending happens on the SDK's background thread, as in production. The stub and the fake provider
run in a child process, as a real server would, so that serving does not take this one's GIL.

    .venv/bin/python bench/llm_wrapper.py [--calls 1000] [--rounds 9] [--loopback-calls 300]

Prints one JSON line per measurement and a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import agentops  # noqa: E402
import anthropic  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
import openai  # noqa: E402
from agentops import llms  # noqa: E402
from agentops.llms import _record  # noqa: E402

from tests.fake_llm_servers import FakeLLMServer  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris today?"},
]
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Sunny, 21 degrees.", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 25, "completion_tokens": 6, "total_tokens": 31},
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "Sunny, 21 degrees."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 25, "output_tokens": 6},
}


def _sse_chat_stream(chunks: int = 10) -> bytes:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    lines = []
    for i in range(chunks):
        delta = {"content": f"w{i} "}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        lines.append({**base, "choices": [choice], "usage": None})
    usage = {"prompt_tokens": 25, "completion_tokens": chunks, "total_tokens": 25 + chunks}
    lines.append({**base, "choices": [], "usage": usage})
    body = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
    return body.encode()


STREAM_BODY = _sse_chat_stream()


def mock_transport(http=httpx):
    """An in-process transport of `http` (httpx for OpenAI, httpx2 for Anthropic)."""

    def handler(request):
        if request.url.path.endswith("/messages"):
            return http.Response(200, json=MESSAGE)
        if json.loads(request.content).get("stream"):
            return http.Response(
                200, content=STREAM_BODY, headers={"content-type": "text/event-stream"}
            )
        return http.Response(200, json=CHAT)

    return http.MockTransport(handler)


class _StubAgentOps(BaseHTTPRequestHandler):
    """Accepts every v2 call: enough for the SDK to run its session."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "status": "Success",
                "jwt": "stub",
                "session_url": "http://127.0.0.1/s",
                "project_id": "p",
                "token_cost": "0",
                "accepted": 0,
                "duplicates": 0,
                "rejected": [],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


SETTLE_SECONDS = 0.3  # > max_wait_time: the SDK's sender has sent the round's events


def _serve(conn) -> None:
    stub = ThreadingHTTPServer(("127.0.0.1", 0), _StubAgentOps)
    stub.daemon_threads = True
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    with FakeLLMServer() as fake:
        conn.send((f"http://127.0.0.1:{stub.server_address[1]}", fake.url))
        conn.recv()  # until the parent says stop


class ServersInChild:
    """The fake LLM provider and the AgentOps stub in a child process, as they would be in
    production: serving requests in this process would take the GIL from the measured calls."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        self.stub_url, self.fake_url = self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(5)


def timed_round(fn, calls: int) -> tuple[float, float]:
    """(wall µs per call on the calling thread, process CPU µs per call). The CPU figure counts
    every thread, over the round and a settle period after it, so it includes the SDK's
    background sender serialising and posting the events the round recorded."""
    cpu0 = time.process_time()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    wall = (time.perf_counter() - start) / calls * 1e6
    time.sleep(SETTLE_SECONDS)
    return wall, (time.process_time() - cpu0) / calls * 1e6


def _quartiles(values: list) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def interleaved(plain_fn, wrapped_fn, calls: int, rounds: int, before=None, after=None) -> dict:
    """Plain and instrumented rounds alternate (ABAB...), so that load from elsewhere on the
    machine falls on both alike; medians over rounds, and the median of per-pair differences."""
    for _ in range(min(50, calls)):  # warm connection pools, caches, code paths
        plain_fn()
    rows = {"plain_wall": [], "wrapped_wall": [], "plain_cpu": [], "wrapped_cpu": []}
    diff_wall, diff_cpu = [], []
    for _ in range(rounds):
        if after:
            after()
        pw, pc = timed_round(plain_fn, calls)
        if before:
            before()
        ww, wc = timed_round(wrapped_fn, calls)
        rows["plain_wall"].append(pw)
        rows["wrapped_wall"].append(ww)
        rows["plain_cpu"].append(pc)
        rows["wrapped_cpu"].append(wc)
        diff_wall.append(ww - pw)
        diff_cpu.append(wc - pc)
    med = statistics.median
    return {
        "uninstrumented_us": round(med(rows["plain_wall"]), 1),
        "instrumented_us": round(med(rows["wrapped_wall"]), 1),
        "overhead_us": round(med(diff_wall), 1),
        # the spread of the per-pair differences: how much of the overhead is noise
        "overhead_us_p25_p75": [round(q, 1) for q in _quartiles(diff_wall)],
        "uninstrumented_cpu_us": round(med(rows["plain_cpu"]), 1),
        "instrumented_cpu_us": round(med(rows["wrapped_cpu"]), 1),
        "overhead_cpu_us": round(med(diff_cpu), 1),
    }


def wrapper_alone(calls: int, rounds: int) -> list[dict]:
    """Our wrapper around a function that returns a ready response at once: the wrapper's own
    cost (read the request, read the response, build the LLMEvent, queue it in the session)."""
    from agentops.llms._wrap import wrap_sync
    from agentops.llms.anthropic import MessagesAdapter
    from agentops.llms.openai import ChatAdapter

    chat = openai.types.chat.ChatCompletion.model_validate(CHAT)
    message = anthropic.types.Message.model_validate(MESSAGE)
    rows = []
    for name, adapter, response, kwargs in (
        ("openai chat", ChatAdapter(), chat, {"model": "gpt-4o-mini", "messages": MESSAGES}),
        (
            "anthropic messages",
            MessagesAdapter(),
            message,
            {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": MESSAGES[1:]},
        ),
    ):

        def original(self, _response=response, **kw):
            return _response

        wrapped = wrap_sync(adapter)(original)
        plain_fn = functools.partial(original, None, **kwargs)
        wrapped_fn = functools.partial(wrapped, None, **kwargs)
        figures = interleaved(plain_fn, wrapped_fn, calls, rounds)
        rows.append({"transport": "none", "call": f"{name} (wrapper+SDK)", **figures})
        # The same with the events dropped into a list: our code alone, without the SDK's
        # Session.record and its background sender.
        kept: list = []
        _record.set_sink(kept.append)
        try:
            figures = interleaved(plain_fn, wrapped_fn, calls, rounds, after=kept.clear)
        finally:
            _record.set_sink(None)
        rows.append({"transport": "none", "call": f"{name} (wrapper only)", **figures})
    return rows


def scenarios(oclient, aclient):
    def chat():
        oclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def chat_stream():
        stream = oclient.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass

    def messages():
        aclient.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES[1:])

    return {
        "openai chat": chat,
        "openai chat stream (11 chunks)": chat_stream,
        "anthropic messages": messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loopback-calls", type=int, default=300)
    args = parser.parse_args()

    servers = ServersInChild()
    stub_url, fake_url = servers.stub_url, servers.fake_url
    try:
        clients = {
            "in-process": (
                openai.OpenAI(
                    api_key="k",
                    base_url="http://llm.invalid/v1",
                    http_client=httpx.Client(transport=mock_transport()),
                ),
                anthropic.Anthropic(
                    api_key="k",
                    base_url="http://llm.invalid",
                    http_client=httpx2.Client(transport=mock_transport(httpx2)),
                ),
                args.calls,
            ),
            "loopback": (
                openai.OpenAI(api_key="k", base_url=fake_url + "/v1", max_retries=0),
                anthropic.Anthropic(api_key="k", base_url=fake_url, max_retries=0),
                args.loopback_calls,
            ),
        }
        session = agentops.init(
            api_key="00000000-0000-4000-8000-000000000000",
            endpoint=stub_url,
            max_wait_time=200,
            env_data_opt_out=True,
        )
        assert session is not None and llms.is_instrumented()
        client = agentops.get_client()
        results = []
        for row in wrapper_alone(args.calls * 5, args.rounds):
            print(json.dumps({"bench": "llm_wrapper", **row}), flush=True)
            results.append(row)
        for transport, (oclient, aclient, calls) in clients.items():
            for name, fn in scenarios(oclient, aclient).items():
                figures = interleaved(
                    fn,
                    fn,
                    calls,
                    args.rounds,
                    before=lambda: llms.instrument(client=client),
                    after=llms.uninstrument,
                )
                row = {"transport": transport, "call": name, "calls_per_round": calls, **figures}
                print(json.dumps({"bench": "llm_wrapper", **row}), flush=True)
                results.append(row)
        session.end_session("Success")
        llms.uninstrument()
    finally:
        servers.stop()

    print()
    print(
        f"{'transport':<11} {'call':<36} {'plain':>8} {'wrapped':>8} {'overhead':>9}"
        f" {'p25..p75':>15} {'plain CPU':>10} {'wrapped CPU':>12} {'overhead CPU':>13}"
        "   (µs per call)"
    )
    for r in results:
        low, high = r["overhead_us_p25_p75"]
        spread = f"{low:.0f}..{high:.0f}"
        print(
            f"{r['transport']:<11} {r['call']:<36} {r['uninstrumented_us']:>8.1f} "
            f"{r['instrumented_us']:>8.1f} {r['overhead_us']:>9.1f} "
            f"{spread:>15} "
            f"{r['uninstrumented_cpu_us']:>10.1f} {r['instrumented_cpu_us']:>12.1f} "
            f"{r['overhead_cpu_us']:>13.1f}"
        )


if __name__ == "__main__":
    main()
