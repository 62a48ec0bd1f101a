"""A small webhook receiver on 127.0.0.1, for the demo, the benchmark and the tests.

It records every request (headers, body, arrival time), answers what its `answer` function says
(status, headers, a stall before answering), and dedupes by webhook-id as a real receiver should.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    received: float  # time.time() on arrival
    status: int  # what the receiver answered


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


Answerer = Callable[["Receiver", str], Answer]


def always_ok(receiver: Receiver, webhook_id: str) -> Answer:
    return Answer()


class Receiver:
    """Start with `with Receiver() as r:`; `r.url` takes POSTs on any path."""

    def __init__(self, answer: Answerer = always_ok) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> dict[str, Request]:
        """The first successful request per webhook-id."""
        with self.lock:
            out: dict[str, Request] = {}
            for r in self.requests:
                if 200 <= r.status < 300:
                    out.setdefault(r.webhook_id, r)
            return out

    def wait_for(self, count: int, timeout: float) -> bool:
        """Until `count` distinct webhook-ids have been answered with 2xx."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len({r.webhook_id for r in self.requests if 200 <= r.status < 300}) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                webhook_id = self.headers.get("webhook-id", "")
                answer = receiver.answer(receiver, webhook_id)
                # Recorded before answering: a receiver has done its work when it answers, even
                # if the sender dies before it reads the answer (and then sends it again).
                request = Request(
                    webhook_id,
                    self.headers.get("webhook-timestamp", ""),
                    self.headers.get("webhook-signature", ""),
                    body,
                    time.time(),
                    answer.status,
                )
                with receiver.arrived:
                    receiver.requests.append(request)
                    receiver.arrived.notify_all()
                if answer.stall:
                    time.sleep(answer.stall)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
