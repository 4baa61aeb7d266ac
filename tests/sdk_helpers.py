"""Helpers for the SDK's end-to-end tests: a TCP proxy we can cut, and running SDK scripts."""

import contextlib
import os
import selectors
import socket
import subprocess
import sys
import textwrap
import threading
from urllib.parse import urlsplit

import agentops


class CuttableProxy:
    """A TCP proxy in front of the live server, on a fixed port, that can be closed (the SDK
    then sees connection refused), reopened, or made to lose answers: it forwards the request,
    the server stores it, and the client's connection is cut when the answer starts."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname, parts.port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.lose_answers = 0  # how many answers to lose
        self.answers_lost = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            # shutdown() first: close() alone does not wake a thread blocked in accept(), which
            # would go on accepting connections.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in sel.select(timeout=30):
                    source, dest = key.fileobj, key.data
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is upstream:
                        with self._lock:
                            lose = self.lose_answers > 0
                            if lose:
                                self.lose_answers -= 1
                                self.answers_lost += 1
                        if lose:
                            return  # the server answered; the client never hears it
                    dest.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            client.close()
            upstream.close()


def fresh_default_client(monkeypatch, api_key: str, url: str) -> agentops.Client:
    """The process default client (what agentops.init() uses), new for this test."""
    monkeypatch.setattr(agentops, "_client", None)
    monkeypatch.setenv("AGENTOPS_API_KEY", api_key)
    monkeypatch.setenv("AGENTOPS_API_ENDPOINT", url)
    monkeypatch.setenv("AGENTOPS_LOGGING_LEVEL", "WARNING")
    return agentops.get_client()


def stop_sender(client: agentops.Client, timeout: float = 30.0) -> None:
    """Stop the client's background sender and wait for its thread. A request it still has in
    flight (a create_session retry begun while the server was away) must reach the live server
    while the test's database is there, not during its teardown (a deadlock with the TRUNCATE)."""
    sender = client._sender
    sender._stopped = True
    sender.kick()
    if sender._thread is not None:
        sender._thread.join(timeout)
        assert not sender._thread.is_alive(), "the SDK's sender thread did not stop"


def sdk_process(script: str, *, api_key: str, url: str, **env) -> subprocess.Popen:
    """A separate Python process running `script` with our SDK."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**clean, "AGENTOPS_API_KEY": api_key, "AGENTOPS_API_ENDPOINT": url, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
