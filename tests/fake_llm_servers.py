"""A fake LLM provider on 127.0.0.1 that speaks OpenAI's and Anthropic's HTTP APIs well enough
for their real Python clients (and LiteLLM) to work against it, server-sent-event streams
included.

What it answers is decided by the last user message, so a test says what it wants in its prompt:
  "[tool]"          the model asks for the get_weather tool
  "[error]"         400, in the provider's error shape
  "[stream-error]"  a stream that breaks off with an error event after its first text
  "[json]"          the answer is the JSON {"city": "Paris", "unit": "celsius"} (structured output)
  "[cached]"        half the prompt was read from the prompt cache and a quarter written to it,
                    and (OpenAI) a third of the completion was reasoning; reported in each API's
                    own convention (OpenAI's prompt_tokens includes the cache, Anthropic's
                    input_tokens does not)
  anything else     "Echo: <the message>"

Token counts are deterministic (see _usage) and every answer is kept in `served`, so a test can
compare what it reads on our server with what the provider said.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOL_ARGS = {"city": "Paris", "unit": "celsius"}


@dataclass
class Served:
    api: str  # "chat" | "responses" | "messages"
    model: str
    stream: bool
    text: str | None
    tool: bool
    prompt_tokens: int  # every input token, the cache included
    completion_tokens: int
    status: int = 200
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # Anthropic only: OpenAI's API reports no cache writes
    reasoning_tokens: int = 0  # OpenAI only

    def openai_usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def anthropic_usage(self, output_tokens: int) -> dict:
        cached = self.cache_read_tokens + self.cache_write_tokens
        return {
            "input_tokens": self.prompt_tokens - cached,
            "cache_read_input_tokens": self.cache_read_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "output_tokens": output_tokens,
        }


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _last_user_text(messages) -> str:
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _usage(messages, reply: str) -> tuple[int, int]:
    words = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return 7 + 3 * words, 2 + len(reply.split())


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that stops reading a stream early (as the tests make it) hangs up on us.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeLLMServer:
    """Start with `with FakeLLMServer() as server:`; base URLs: server.openai_url (…/v1) and
    server.anthropic_url."""

    def __init__(self, chunk_delay: float = 0.0) -> None:
        self.served: list[Served] = []
        self.requests: list[dict] = []
        self.chunk_delay = chunk_delay
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def keep(self, served: Served, body: dict) -> None:
        with self._lock:
            self.served.append(served)
            self.requests.append(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    fake: FakeLLMServer

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- plumbing -------------------------------------------------------------------------

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _sse(self, data, event: str | None = None) -> None:
        text = (
            (f"event: {event}\n" if event else "")
            + "data: "
            + (data if isinstance(data, str) else json.dumps(data))
            + "\n\n"
        )
        raw = text.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()
        if self.fake.chunk_delay:
            time.sleep(self.fake.chunk_delay)

    def _end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            self._chat(body)
        elif path.endswith("/responses"):
            self._responses(body)
        elif path.endswith("/v1/messages"):
            self._messages(body)
        else:
            self._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    # --- what to answer -------------------------------------------------------------------

    def _plan(self, api: str, body: dict, messages: list) -> Served:
        prompt = _last_user_text(messages)
        tool = "[tool]" in prompt
        reply = None if tool else json.dumps(TOOL_ARGS) if "[json]" in prompt else f"Echo: {prompt}"
        p, c = _usage(messages, reply or json.dumps(TOOL_ARGS))
        served = Served(
            api=api,
            model=body.get("model", ""),
            stream=bool(body.get("stream")),
            text=reply,
            tool=tool,
            prompt_tokens=p,
            completion_tokens=c,
            status=400 if "[error]" in prompt else 200,
        )
        if "[cached]" in prompt:
            served.cache_read_tokens = p // 2
            served.cache_write_tokens = p // 4 if api == "messages" else 0
            served.reasoning_tokens = c // 3 if api != "messages" else 0
        self.fake.keep(served, body)
        return served

    # --- OpenAI chat completions ----------------------------------------------------------

    def _chat(self, body: dict) -> None:
        s = self._plan("chat", body, body.get("messages") or [])
        if s.status != 200:
            self._json(
                s.status,
                {
                    "error": {
                        "message": "The prompt asked for an error.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "fake_error",
                    }
                },
            )
            return
        n = self.fake.next_id()
        base = {"id": f"chatcmpl-{n}", "created": int(time.time()), "model": s.model}
        call = {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(TOOL_ARGS)},
        }
        usage = s.openai_usage()
        finish = "tool_calls" if s.tool else "stop"
        if not s.stream:
            message = {"role": "assistant", "content": s.text, "refusal": None}
            if s.tool:
                message["tool_calls"] = [call]
            self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": usage,
                },
            )
            return
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if with_usage else {}

        def chunk(delta: dict, finish_reason=None) -> dict:
            return {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }

        self._start_sse()
        self._sse(chunk({"role": "assistant", "content": ""}))
        if s.tool:
            args = call["function"]["arguments"]
            half = len(args) // 2
            first = {**call, "index": 0, "function": {"name": "get_weather", "arguments": ""}}
            self._sse(chunk({"tool_calls": [first]}))
            for piece in (args[:half], args[half:]):
                self._sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            for i, word in enumerate(s.text.split(" ")):
                self._sse(chunk({"content": word if i == 0 else " " + word}))
                if "[stream-error]" in s.text:
                    self._sse({"error": {"message": "The stream broke.", "type": "server_error"}})
                    self._end_sse()
                    return
        self._sse(chunk({}, finish))
        if with_usage:
            self._sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_sse()

    # --- OpenAI responses -----------------------------------------------------------------

    def _responses(self, body: dict) -> None:
        given = body.get("input")
        messages = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        s = self._plan("responses", body, messages)
        if s.status != 200:
            self._json(
                s.status,
                {"error": {"message": "The prompt asked for an error.", "type": "invalid_request"}},
            )
            return
        n = self.fake.next_id()
        if s.tool:
            output = [
                {
                    "type": "function_call",
                    "id": f"fc_{n}",
                    "call_id": f"call_{n}",
                    "name": "get_weather",
                    "arguments": json.dumps(TOOL_ARGS),
                    "status": "completed",
                }
            ]
        else:
            output = [
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": s.text, "annotations": []}],
                }
            ]
        response = {
            "id": f"resp_{n}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": s.model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": {},
            "usage": {
                "input_tokens": s.prompt_tokens,
                "input_tokens_details": {"cached_tokens": s.cache_read_tokens},
                "output_tokens": s.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": s.reasoning_tokens},
                "total_tokens": s.prompt_tokens + s.completion_tokens,
            },
        }
        if not s.stream:
            self._json(200, response)
            return
        seq = itertools.count()

        def send(kind: str, **fields) -> None:
            self._sse({"type": kind, **fields, "sequence_number": next(seq)}, kind)

        self._start_sse()
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        send("response.created", response=started)
        send("response.in_progress", response=started)
        item = output[0]
        if s.tool:
            send("response.output_item.added", output_index=0, item={**item, "arguments": ""})
            for piece in (item["arguments"][:8], item["arguments"][8:]):
                send(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=0,
                    delta=piece,
                )
            send(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=0,
                name=item["name"],
                arguments=item["arguments"],
            )
        else:
            send("response.output_item.added", output_index=0, item={**item, "content": []})
            part = {"type": "output_text", "text": "", "annotations": []}
            place = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            send("response.content_part.added", **place, part=part)
            for i, word in enumerate(s.text.split(" ")):
                send(
                    "response.output_text.delta",
                    **place,
                    delta=word if i == 0 else " " + word,
                    logprobs=[],
                )
            send("response.output_text.done", **place, text=s.text, logprobs=[])
            send("response.content_part.done", **place, part={**part, "text": s.text})
        send("response.output_item.done", output_index=0, item=item)
        send("response.completed", response=response)
        self._end_sse()

    # --- Anthropic messages ---------------------------------------------------------------

    def _messages(self, body: dict) -> None:
        s = self._plan("messages", body, body.get("messages") or [])
        if s.status != 200:
            self._json(
                s.status,
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "The prompt asked for an error.",
                    },
                },
            )
            return
        n = self.fake.next_id()
        block = (
            {"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather", "input": TOOL_ARGS}
            if s.tool
            else {"type": "text", "text": s.text}
        )
        message = {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": s.model,
            "content": [block],
            "stop_reason": "tool_use" if s.tool else "end_turn",
            "stop_sequence": None,
            "usage": s.anthropic_usage(s.completion_tokens),
        }
        if not s.stream:
            self._json(200, message)
            return
        self._start_sse()
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": s.anthropic_usage(1),
        }
        self._sse({"type": "message_start", "message": start}, "message_start")
        empty = {**block, "input": {}} if s.tool else {"type": "text", "text": ""}
        self._sse(
            {"type": "content_block_start", "index": 0, "content_block": empty},
            "content_block_start",
        )
        self._sse({"type": "ping"}, "ping")
        if s.tool:
            args = json.dumps(TOOL_ARGS)
            for piece in (args[:10], args[10:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                self._sse(
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                    "content_block_delta",
                )
        else:
            for i, word in enumerate(s.text.split(" ")):
                delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
                self._sse(
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                    "content_block_delta",
                )
                if "[stream-error]" in s.text:
                    error = {"type": "overloaded_error", "message": "The stream broke."}
                    self._sse({"type": "error", "error": error}, "error")
                    self._end_sse()
                    return
        self._sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self._sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": s.completion_tokens},
            },
            "message_delta",
        )
        self._sse({"type": "message_stop"}, "message_stop")
        self._end_sse()
