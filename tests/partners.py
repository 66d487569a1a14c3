"""A scripted partner: a real HTTP server on 127.0.0.1 that answers from a script.

    server.script(Reply(503), Reply(503), Reply(201, json={"id": 7}))

Each request takes the next reply (the last one repeats); a reply may also be a function of
the request, called while the client waits for the answer. Every request is recorded with its
arrival time, method, path, headers and body, so tests assert the exact request the hub sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import connections


@dataclass
class Reply:
    status: int = 200
    json: object = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (to exceed read timeouts)


@dataclass
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the second waits for the
    # client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True
    server: ScriptedServer

    def log_message(self, format, *args):  # keep test output clean
        return

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(time.monotonic(), self.command, self.path, dict(self.headers), body)
        self.server.record(received)
        reply = self.server.next_reply()
        if callable(reply):  # a function of the request, called while the client waits
            try:
                reply = reply(received)
            finally:
                # it may have read the database: this handler thread's connection ends here
                connections.close_all()
        if reply.delay:
            time.sleep(reply.delay)
        payload = json.dumps(reply.json).encode() if reply.json is not None else reply.body
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # the hub may have hung up already (a timeout test): that is not an error here
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1"):
        super().__init__((host, 0), _Handler)
        self._lock = threading.Lock()
        self._script: list[Reply] = [Reply(200, json={"ok": True})]
        self.requests: list[Received] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script = list(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
