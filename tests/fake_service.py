"""A tiny stand-in for the serving service, for the probe's tests: the standard library's HTTP server in
a thread, answering ``POST /<pipeline>/predict`` as the serving contract says (``{"model_version",
"predictions": [{"score", "label"}]}``), keeping every request it got. ``answer`` can be swapped to
answer wrong, slowly or with an error; ``stop()`` takes it down while the test goes on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.embedded_stack import free_port

Answer = Callable[[str, dict[str, Any]], tuple[int, Any]]  # (path, body) -> (status, JSON answer)


def tenure_score(row: dict[str, Any]) -> float:
    """The fake champion's score of a row: its tenure over 120 months."""
    return min(max(float(row["tenure_months"]) / 120, 0.0), 1.0)


def contract_answer(version: str = "3", threshold: float = 0.5, delay_s: float = 0.0) -> Answer:
    def answer(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(delay_s)
        scores = [tenure_score(row) for row in body["records"]]
        return 200, {
            "model_version": version,
            "predictions": [{"score": s, "label": int(s >= threshold)} for s in scores],
        }

    return answer


@dataclass
class FakeService:
    port: int
    answer: Answer = field(default_factory=contract_answer)
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)  # path, headers, body
    stop: Callable[[], None] = lambda: None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def fake_service() -> Iterator[FakeService]:
    service = FakeService(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            service.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status, answer = service.answer(self.path, body)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with suppress(BrokenPipeError):  # the client gave up waiting (a probe timeout)
                self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", service.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    service.stop = stop
    try:
        yield service
    finally:
        stop()
